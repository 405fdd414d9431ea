//! The node's secret keys.
//!
//! Two separate keys, in separate files, so that a copy of the database alone (backups, a stolen
//! disk image of `db/`) reveals no share, and so that the storage key can move to a KMS/HSM
//! without touching the identity key:
//! - **identity key** (`keys/identity.key`): a secp256k1 secret; signs receipts and proofs and
//!   opens the share envelopes clients seal to this node;
//! - **storage key** (`keys/storage.key`): 32 random bytes; AES-256-GCM key for shares at rest.
//!
//! Also `keys/audit.key` (32 random bytes, HMAC key for audit wallet tags) on every node and
//! `keys/bank-approval.key` (secp256k1, signs bank approvals and cancellations) on the bank node.
//! All are hex in files created with mode 0600. [`KeyProvider`] is the seam for other backends.

use dlocker_proto::keys::{node_id, public_key_hex};
use k256::ecdsa::SigningKey;
use k256::elliptic_curve::Generate;
use k256::{PublicKey, SecretKey};
use rand::RngExt as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Directory holding the key files, inside the data directory.
pub const KEYS_DIR: &str = "keys";
/// Identity key file name.
pub const IDENTITY_KEY_FILE: &str = "identity.key";
/// Storage key file name.
pub const STORAGE_KEY_FILE: &str = "storage.key";
/// Audit key file name (HMAC key for wallet tags in the audit log).
pub const AUDIT_KEY_FILE: &str = "audit.key";
/// Bank approval key file name (bank role only; separate from the identity key).
pub const BANK_APPROVAL_KEY_FILE: &str = "bank-approval.key";

/// Why a key could not be created or loaded. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file's content is not a key of the right form.
    #[error("{path}: not a valid {what} (expected {expected})")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Which key.
        what: &'static str,
        /// The expected form.
        expected: &'static str,
    },
    /// Others can read the key file.
    #[error(
        "{path}: permissions {mode:o} let other users read a secret key; run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

/// The node's identity key (secp256k1). Zeroized on drop by `k256`; prints as `REDACTED`.
#[derive(Clone)]
pub struct IdentityKey {
    secret: SecretKey,
    // Built once: `SigningKey::from` derives the verifying key (a scalar multiplication), which
    // every receipt and release signature would otherwise pay again.
    signing: SigningKey,
    public: PublicKey,
    node_id: String,
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IdentityKey {{ node_id: {}, secret: REDACTED }}",
            self.node_id
        )
    }
}

impl IdentityKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_secret(SecretKey::generate_from_rng(&mut rand::rng()))
    }

    /// Wraps a secret key.
    pub fn from_secret(secret: SecretKey) -> Self {
        let public = secret.public_key();
        let node_id = node_id(&public);
        let signing = SigningKey::from(&secret);
        Self {
            secret,
            signing,
            public,
            node_id,
        }
    }

    /// The secret, for opening envelopes.
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret
    }
    /// The ECDSA signing key (zeroized on drop). A clone of the one built at load: copying it
    /// costs nothing, deriving it again costs a scalar multiplication.
    pub fn signing_key(&self) -> SigningKey {
        self.signing.clone()
    }
    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
    /// The node id derived from the public key.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }
    /// The public key as SEC1-compressed hex.
    pub fn public_key_hex(&self) -> String {
        public_key_hex(&self.public)
    }

    fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.secret.to_bytes()))
    }
}

/// The at-rest storage root key: only ever HKDF input ([`StorageKey::derive`]). Zeroized on drop;
/// prints as `REDACTED`.
#[derive(Clone)]
pub struct StorageKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey(REDACTED)")
    }
}

impl StorageKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(Zeroizing::new(rand::rng().random()))
    }
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
    /// The root key bytes (to write the key file; never used as a key directly).
    fn expose(&self) -> &[u8; 32] {
        &self.0
    }
    /// The purpose key for `purpose`: HKDF-SHA256(salt, root) expanded with the purpose label.
    pub fn derive(&self, purpose: StoragePurpose) -> Zeroizing<[u8; 32]> {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(STORAGE_KDF_SALT), self.0.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        let _ = hk.expand(purpose.label(), out.as_mut());
        out
    }
    /// The key sealing shares at rest.
    pub fn share_sealing_key(&self) -> ShareSealingKey {
        ShareSealingKey(self.derive(StoragePurpose::ShareSealing))
    }
}

/// What a key derived from the storage key is for. Each purpose gets its own HKDF-SHA256 output
/// (`info` = the purpose's label), so no key is ever used both as an AES key and as HKDF input,
/// nor for two purposes: a break of one use tells nothing about another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoragePurpose {
    /// AES-256-GCM key sealing wallet shares at rest ([`crate::at_rest`]).
    ShareSealing,
    /// AES-256-GCM key sealing the document locker's hosted issuer keys.
    LockerSealing,
    /// HMAC-SHA256 key for the wallet pseudonyms in log lines ([`crate::wallet`]).
    LogTag,
    /// HMAC-SHA256 key for the key check value recorded in the database ([`crate::startup`]).
    KeyCheck,
    /// AES-256-GCM key sealing the customer identity the bank node records at enrollment
    /// ([`crate::at_rest::seal_customer`]).
    CustomerSealing,
}

impl StoragePurpose {
    /// Every purpose (the tests check they all differ).
    pub const ALL: [StoragePurpose; 5] = [
        Self::ShareSealing,
        Self::LockerSealing,
        Self::LogTag,
        Self::KeyCheck,
        Self::CustomerSealing,
    ];

    /// The HKDF `info` label.
    pub fn label(self) -> &'static [u8] {
        match self {
            Self::ShareSealing => b"dlocker/storage-key/share-sealing/v1",
            Self::LockerSealing => b"dlocker/storage-key/locker-sealing/v1",
            Self::LogTag => b"dlocker/storage-key/log-tag/v1",
            Self::KeyCheck => b"dlocker/storage-key/key-check/v1",
            Self::CustomerSealing => b"dlocker/storage-key/customer-sealing/v1",
        }
    }
}

/// HKDF salt for every purpose key: fixes the extraction to this scheme.
pub const STORAGE_KDF_SALT: &[u8] = b"dlocker/storage-key/kdf/v1";

/// The AES-256 key sealing shares at rest: the storage key's [`StoragePurpose::ShareSealing`]
/// key. Zeroized on drop; prints as `REDACTED`.
#[derive(Clone)]
pub struct ShareSealingKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for ShareSealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShareSealingKey(REDACTED)")
    }
}

impl ShareSealingKey {
    /// A fresh random key (tests).
    pub fn generate() -> Self {
        StorageKey::generate().share_sealing_key()
    }
    /// The key bytes, for the cipher.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The bank approval key (secp256k1): signs `BankApproval` and `BankCancellation`. Kept apart
/// from the identity key so it can live in an HSM operated by the bank's approval process.
#[derive(Clone)]
pub struct BankApprovalKey {
    secret: SecretKey,
    public: PublicKey,
}

impl std::fmt::Debug for BankApprovalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BankApprovalKey {{ public: {}, secret: REDACTED }}",
            public_key_hex(&self.public)
        )
    }
}

impl BankApprovalKey {
    /// Wraps a secret key.
    pub fn from_secret(secret: SecretKey) -> Self {
        let public = secret.public_key();
        Self { secret, public }
    }
    /// An ECDSA signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from(&self.secret)
    }
    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
}

/// Where the node's keys come from. The file implementation is the default; a KMS or HSM backend
/// implements the same trait.
pub trait KeyProvider: Send + Sync {
    /// The identity key.
    fn identity_key(&self) -> Result<IdentityKey, KeyError>;
    /// The at-rest storage key.
    fn storage_key(&self) -> Result<StorageKey, KeyError>;
    /// The audit key (HMAC key for wallet tags).
    fn audit_key(&self) -> Result<Zeroizing<[u8; 32]>, KeyError>;
    /// The bank approval key (bank role only).
    fn bank_approval_key(&self) -> Result<BankApprovalKey, KeyError>;
}

/// Keys in hex files under `DIR/keys/`.
#[derive(Debug, Clone)]
pub struct FileKeyProvider {
    dir: PathBuf,
}

impl FileKeyProvider {
    /// Keys under `data_dir/keys`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(KEYS_DIR),
        }
    }
    /// The identity key file.
    pub fn identity_path(&self) -> PathBuf {
        self.dir.join(IDENTITY_KEY_FILE)
    }
    /// The storage key file.
    pub fn storage_path(&self) -> PathBuf {
        self.dir.join(STORAGE_KEY_FILE)
    }
    /// The audit key file.
    pub fn audit_path(&self) -> PathBuf {
        self.dir.join(AUDIT_KEY_FILE)
    }
    /// The bank approval key file.
    pub fn bank_approval_path(&self) -> PathBuf {
        self.dir.join(BANK_APPROVAL_KEY_FILE)
    }
    /// Whether any key file exists.
    pub fn any_exists(&self) -> bool {
        self.identity_path().exists()
            || self.storage_path().exists()
            || self.audit_path().exists()
            || self.bank_approval_path().exists()
    }

    /// Creates the audit key if missing (data directories made before the audit log existed).
    pub fn ensure_audit_key(&self) -> Result<bool, KeyError> {
        if self.audit_path().exists() {
            return Ok(false);
        }
        create_private_dir(&self.dir)?;
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(rand::rng().random());
        write_secret_file(
            &self.audit_path(),
            &Zeroizing::new(hex::encode(key.as_ref())),
        )?;
        Ok(true)
    }

    /// Creates the bank approval key if missing; returns its public key.
    pub fn ensure_bank_approval_key(&self) -> Result<PublicKey, KeyError> {
        if !self.bank_approval_path().exists() {
            create_private_dir(&self.dir)?;
            let secret = SecretKey::generate_from_rng(&mut rand::rng());
            write_secret_file(
                &self.bank_approval_path(),
                &Zeroizing::new(hex::encode(secret.to_bytes())),
            )?;
        }
        Ok(*self.bank_approval_key()?.public_key())
    }

    /// Creates both keys; refuses to overwrite an existing file.
    pub fn create(&self) -> Result<(IdentityKey, StorageKey), KeyError> {
        create_private_dir(&self.dir)?;
        let identity = IdentityKey::generate();
        let storage = StorageKey::generate();
        write_secret_file(&self.identity_path(), &identity.to_hex())?;
        write_secret_file(
            &self.storage_path(),
            &Zeroizing::new(hex::encode(storage.expose())),
        )?;
        Ok((identity, storage))
    }
}

impl KeyProvider for FileKeyProvider {
    fn identity_key(&self) -> Result<IdentityKey, KeyError> {
        let path = self.identity_path();
        let bytes = read_secret_hex(
            &path,
            "identity key",
            "64 hex characters of a secp256k1 secret",
        )?;
        let secret = SecretKey::from_slice(bytes.as_ref()).map_err(|_| KeyError::Malformed {
            path,
            what: "identity key",
            expected: "a non-zero secp256k1 scalar",
        })?;
        Ok(IdentityKey::from_secret(secret))
    }

    fn storage_key(&self) -> Result<StorageKey, KeyError> {
        let bytes = read_secret_hex(&self.storage_path(), "storage key", "64 hex characters")?;
        Ok(StorageKey::from_bytes(*bytes))
    }

    fn audit_key(&self) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        read_secret_hex(&self.audit_path(), "audit key", "64 hex characters")
    }

    fn bank_approval_key(&self) -> Result<BankApprovalKey, KeyError> {
        let path = self.bank_approval_path();
        let bytes = read_secret_hex(
            &path,
            "bank approval key",
            "64 hex characters of a secp256k1 secret",
        )?;
        let secret = SecretKey::from_slice(bytes.as_ref()).map_err(|_| KeyError::Malformed {
            path,
            what: "bank approval key",
            expected: "a non-zero secp256k1 scalar",
        })?;
        Ok(BankApprovalKey::from_secret(secret))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir).map_err(io_err(dir))
}

fn write_secret_file(path: &Path, hex: &str) -> Result<(), KeyError> {
    let mut opts = std::fs::OpenOptions::new();
    // create_new: never overwrite a key.
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(hex.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn read_secret_hex(
    path: &Path,
    what: &'static str,
    expected: &'static str,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(io_err(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io_err(path))?);
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), out.as_mut()).map_err(|_| KeyError::Malformed {
        path: path.to_path_buf(),
        what,
        expected,
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_and_refuse_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = FileKeyProvider::new(dir.path());
        assert!(!p.any_exists());
        let (id, st) = p.create().expect("create");
        assert!(p.any_exists());
        let id2 = p.identity_key().expect("load");
        assert_eq!(id.public_key(), id2.public_key());
        assert_eq!(id.node_id().len(), 32);
        assert_eq!(st.expose(), p.storage_key().expect("load").expose());
        assert_ne!(st.expose(), &[0u8; 32]);
        assert!(
            matches!(p.create(), Err(KeyError::Io { .. })),
            "never overwrites"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(p.identity_path())
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(p.storage_path(), std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            assert!(matches!(p.storage_key(), Err(KeyError::Permissions { .. })));
        }
    }

    #[test]
    fn purposes_give_different_keys() {
        let root = StorageKey::from_bytes([7; 32]);
        let keys: Vec<_> = StoragePurpose::ALL
            .iter()
            .map(|p| root.derive(*p))
            .collect();
        for (i, a) in keys.iter().enumerate() {
            assert_ne!(a.as_ref(), root.expose(), "a purpose key is not the root");
            for b in &keys[i + 1..] {
                assert_ne!(a.as_ref(), b.as_ref());
            }
        }
        // Deterministic (a restart opens what was sealed), and bound to the root.
        assert_eq!(
            root.derive(StoragePurpose::ShareSealing).as_ref(),
            root.share_sealing_key().expose()
        );
        let other = StorageKey::from_bytes([8; 32]);
        assert_ne!(
            root.derive(StoragePurpose::LogTag).as_ref(),
            other.derive(StoragePurpose::LogTag).as_ref()
        );
        let labels: std::collections::HashSet<_> =
            StoragePurpose::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(labels.len(), StoragePurpose::ALL.len());
        assert_eq!(
            format!("{:?}", root.share_sealing_key()),
            "ShareSealingKey(REDACTED)"
        );
    }

    #[test]
    fn malformed_and_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = FileKeyProvider::new(dir.path());
        let (id, st) = p.create().expect("create");
        let secret_hex = hex::encode(id.secret_key().to_bytes());
        assert!(!format!("{id:?}").contains(&secret_hex));
        assert!(format!("{id:?}").contains("REDACTED"));
        assert_eq!(format!("{st:?}"), "StorageKey(REDACTED)");
        std::fs::write(p.identity_path(), "zz").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(p.identity_path(), std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let err = p.identity_key().expect_err("malformed");
        assert!(matches!(err, KeyError::Malformed { .. }));
        std::fs::write(p.identity_path(), "00".repeat(32)).expect("write");
        assert!(
            matches!(p.identity_key(), Err(KeyError::Malformed { .. })),
            "zero scalar refused"
        );
    }
}
