//! A client's saved ceremony state (a recovery or a backup in progress), sealed under a key the
//! wallet app supplies (its device keystore's), so the app can write it anywhere and resume the
//! ceremony after being killed.
//!
//! AES-256-GCM under the app's 32-byte key, random nonce,
//! `aad = "dlocker/client-state/aad/v1" ‖ version ‖ kind`.
//! Wire format: `version (1) ‖ kind (1) ‖ nonce (12) ‖ ciphertext+tag`. The kind keeps a saved
//! backup from being opened as a saved recovery (and the reverse).

use crate::codec::DecodeError;
use crate::labels;
use crate::secret::SecretBytes;
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use rand::RngExt as _;
use zeroize::Zeroizing;

/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Which ceremony a saved state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateKind {
    /// A recovery in progress.
    Recovery,
    /// A backup in progress.
    Backup,
    /// A rotation (epoch e to e+1) in progress.
    Rotation,
    /// A bank-assisted passkey reset filed at the bank (waiting for its approval, or sent).
    PasskeyReset,
}

impl StateKind {
    fn byte(self) -> u8 {
        match self {
            Self::Recovery => 1,
            Self::Backup => 2,
            Self::Rotation => 3,
            Self::PasskeyReset => 4,
        }
    }
}

/// The app's key for its saved ceremony states (32 random bytes from the device keystore).
/// `Debug` never shows it; it is wiped on drop.
#[derive(Clone)]
pub struct StateKey(Zeroizing<[u8; 32]>);

impl StateKey {
    /// The key's bytes, as the keystore holds them.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key (for an app that stores it in its keystore, and for tests).
    pub fn generate() -> Self {
        Self::from_bytes(rand::rng().random())
    }

    /// The key's bytes, to store in the keystore.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for StateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateKey(REDACTED)")
    }
}

/// Why a saved state did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Not a saved state, or one of a version this build does not read.
    #[error("malformed saved state: {0}")]
    Malformed(#[from] DecodeError),
    /// A saved state of another ceremony.
    #[error("the saved state is not of the expected kind")]
    WrongKind,
    /// Wrong key or tampered bytes.
    #[error("the saved state does not decrypt under this key (another key, or tampered)")]
    Decrypt,
}

fn aad(kind: StateKind) -> Vec<u8> {
    [labels::CLIENT_STATE_AAD, &[VERSION, kind.byte()]].concat()
}

/// Seals `plaintext` (the serialised state) under `key`.
pub fn seal(key: &StateKey, kind: StateKind, plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = rand::rng().random();
    // AES-GCM encryption only fails for inputs over 64 GiB.
    let ct = Aes256Gcm::new((&*key.0).into())
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: plaintext,
                aad: &aad(kind),
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(2 + NONCE_LEN + ct.len());
    out.push(VERSION);
    out.push(kind.byte());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens bytes made by [`seal`] with the same key and kind.
pub fn open(key: &StateKey, kind: StateKind, sealed: &[u8]) -> Result<SecretBytes, StateError> {
    let [version, k, rest @ ..] = sealed else {
        return Err(DecodeError::Truncated.into());
    };
    if *version != VERSION {
        return Err(DecodeError::UnsupportedVersion(*version).into());
    }
    if *k != kind.byte() {
        return Err(StateError::WrongKind);
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(DecodeError::Truncated.into());
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    Aes256Gcm::new((&*key.0).into())
        .decrypt(
            (&n).into(),
            Payload {
                msg: ct,
                aad: &aad(kind),
            },
        )
        .map(SecretBytes::new)
        .map_err(|_| StateError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let key = StateKey::generate();
        let sealed = seal(&key, StateKind::Recovery, b"state");
        assert_eq!(
            open(&key, StateKind::Recovery, &sealed)
                .expect("open")
                .expose(),
            b"state"
        );
        assert_eq!(
            open(&key, StateKind::Backup, &sealed).err(),
            Some(StateError::WrongKind)
        );
        assert_eq!(
            open(&StateKey::generate(), StateKind::Recovery, &sealed).err(),
            Some(StateError::Decrypt)
        );
        // The kind byte is authenticated too: relabelling a backup as a recovery fails.
        let mut relabelled = seal(&key, StateKind::Backup, b"state");
        relabelled[1] = StateKind::Recovery.byte();
        assert_eq!(
            open(&key, StateKind::Recovery, &relabelled).err(),
            Some(StateError::Decrypt)
        );
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert_eq!(
            open(&key, StateKind::Recovery, &tampered).err(),
            Some(StateError::Decrypt)
        );
        let mut other_version = sealed;
        other_version[0] = 2;
        assert!(matches!(
            open(&key, StateKind::Recovery, &other_version),
            Err(StateError::Malformed(DecodeError::UnsupportedVersion(2)))
        ));
        assert!(open(&key, StateKind::Recovery, &[]).is_err());
        let reset = seal(&key, StateKind::PasskeyReset, b"state");
        assert_eq!(
            open(&key, StateKind::Rotation, &reset).err(),
            Some(StateError::WrongKind)
        );
        assert_eq!(
            open(&key, StateKind::PasskeyReset, &reset)
                .expect("opens")
                .expose(),
            b"state"
        );
        assert!(format!("{key:?}").contains("REDACTED"));
    }
}
