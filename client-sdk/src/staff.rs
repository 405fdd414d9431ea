//! Bank staff: a staff signing key and a client for the bank node's `Staff` service.
//!
//! Every call signs a fresh [`StaffRequest`] (the bank's pinned node id, the time now, a random
//! 16-byte nonce), so the bank can refuse stale and replayed requests. The bank knows staff by
//! their public key (listed with roles in its config).

use crate::error::ConnectError;
use crate::transport::{connect_channel, describe_status, staff_client};
use crate::trustees::TrusteeInfo;
use dlocker_proto::keys::public_key_hex;
use dlocker_proto::pb::{
    ApprovePasskeyResetRequest, ApproveRecoveryRequest, ListPasskeyResetsRequest,
    ListRecoveriesRequest, ManageStaffRequest, StaffCancelRequest,
};
use dlocker_proto::statement::{
    BankApproval, BankCancellation, PasskeyResetApproval, Signed, StaffAction, StaffAdminRequest,
    StaffChange, StaffRequest,
};
use k256::PublicKey;
use k256::ecdsa::SigningKey;
use rand::RngExt as _;
use serde::Serialize;
use std::path::Path;
use zeroize::Zeroizing;

/// A staff member's request-signing key. `Debug` prints `REDACTED`; the key is zeroed on drop
/// (`SigningKey` zeroizes itself).
pub struct StaffKey(SigningKey);

impl std::fmt::Debug for StaffKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StaffKey {{ public_key: {}, secret: REDACTED }}",
            self.public_key_hex()
        )
    }
}

/// Why a staff key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaffKeyError {
    /// Reading or writing the file failed.
    #[error("staff key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold 64 hex characters of a valid secp256k1 secret, nor an encrypted
    /// PKCS#8 key.
    #[error(
        "staff key file {0} does not hold a valid key (64 hex characters or an encrypted PKCS#8 PEM)"
    )]
    Invalid(String),
    /// The file is passphrase-encrypted and no passphrase was given.
    #[error("staff key file {0} is encrypted and no passphrase was given")]
    NeedsPassphrase(String),
    /// The passphrase does not open the file (or the file was altered).
    #[error("staff key file {0}: wrong passphrase, or the file is damaged")]
    WrongPassphrase(String),
    /// Encrypting the key failed.
    #[error("encrypting the staff key: {0}")]
    Encrypt(String),
}

/// First line of a passphrase-encrypted key file (PKCS#8 `EncryptedPrivateKeyInfo`, PEM).
pub const ENCRYPTED_KEY_PEM_LABEL: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";

impl StaffKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        use k256::elliptic_curve::Generate as _;
        Self(SigningKey::generate_from_rng(&mut rand::rng()))
    }
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = Zeroizing::new(hex::decode(s.trim()).ok()?);
        SigningKey::from_slice(&bytes).ok().map(Self)
    }
    /// The secret as hex (zeroed when dropped). Only for writing the key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.to_bytes()))
    }
    /// The public key (what the bank config lists).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.0.verifying_key())
    }
    /// The public key as hex SEC1 compressed.
    pub fn public_key_hex(&self) -> String {
        public_key_hex(&self.public_key())
    }
    /// Reads an unencrypted key file (hex); an encrypted one is refused with
    /// [`StaffKeyError::NeedsPassphrase`].
    pub fn load(path: &Path) -> Result<Self, StaffKeyError> {
        Self::load_with(path, None)
    }
    /// Whether the key file at `path` is passphrase-encrypted.
    pub fn is_encrypted(path: &Path) -> Result<bool, StaffKeyError> {
        Ok(Self::read(path)?
            .trim_start()
            .starts_with(ENCRYPTED_KEY_PEM_LABEL))
    }
    fn read(path: &Path) -> Result<Zeroizing<String>, StaffKeyError> {
        std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|source| StaffKeyError::Io {
                path: path.display().to_string(),
                source,
            })
    }
    /// Reads a key file: hex, or a PKCS#8 key encrypted under `passphrase` (PBES2: scrypt and
    /// AES-256-CBC, as written by [`StaffKey::save_encrypted`]).
    pub fn load_with(path: &Path, passphrase: Option<&[u8]>) -> Result<Self, StaffKeyError> {
        use pkcs8::DecodePrivateKey as _;
        let text = Self::read(path)?;
        let name = || path.display().to_string();
        if !text.trim_start().starts_with(ENCRYPTED_KEY_PEM_LABEL) {
            return Self::from_hex(&text).ok_or_else(|| StaffKeyError::Invalid(name()));
        }
        let passphrase = passphrase.ok_or_else(|| StaffKeyError::NeedsPassphrase(name()))?;
        let secret = k256::SecretKey::from_pkcs8_encrypted_pem(text.trim(), passphrase)
            .map_err(|_| StaffKeyError::WrongPassphrase(name()))?;
        Ok(Self(SigningKey::from(secret)))
    }
    /// Writes a NEW key file encrypted under `passphrase` (PKCS#8 PEM, PBES2 with scrypt and
    /// AES-256-CBC; mode 0600); refuses to overwrite an existing file.
    pub fn save_encrypted(&self, path: &Path, passphrase: &[u8]) -> Result<(), StaffKeyError> {
        use pkcs8::EncodePrivateKey as _;
        let secret = k256::SecretKey::from(&self.0);
        let pem = secret
            .to_pkcs8_encrypted_pem(passphrase, pkcs8::LineEnding::LF)
            .map_err(|e| StaffKeyError::Encrypt(e.to_string()))?;
        Self::write_new(path, pem.as_bytes())
    }
    /// Writes a NEW key file (hex, mode 0600); refuses to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<(), StaffKeyError> {
        let mut text = self.to_hex();
        text.push('\n');
        Self::write_new(path, text.as_bytes())
    }
    fn write_new(path: &Path, contents: &[u8]) -> Result<(), StaffKeyError> {
        use std::io::Write as _;
        let io = |source| StaffKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            o.mode(0o600);
        }
        let mut f = o.open(path).map_err(io)?;
        f.write_all(contents)
            .and_then(|()| f.sync_all())
            .map_err(io)
    }
    /// Signs a staff request (pure; [`StaffClient`] supplies the time and nonce).
    pub fn sign_request(&self, request: StaffRequest) -> Vec<u8> {
        Signed::sign(request, &self.0).encode()
    }
}

/// Builds a fresh request for `bank_node_id`: the time now and a random nonce.
pub fn new_request(bank_node_id: &str, action: StaffAction, target: &str) -> StaffRequest {
    StaffRequest {
        node_id: bank_node_id.to_owned(),
        action,
        target: target.to_owned(),
        timestamp: dlocker_proto::time::unix_now(),
        nonce: rand::rng().random(),
    }
}

/// Why a staff call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaffError {
    /// The bank node could not be reached or is not the pinned node.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The bank refused the request; `refusal` says exactly why (`code` says how: permission,
    /// not found, ...).
    #[error("{bank} refused {action}: {message}")]
    Refused {
        /// The bank trustee.
        bank: String,
        /// The action.
        action: &'static str,
        /// The gRPC code.
        code: tonic::Code,
        /// The node's refusal code (none from a node that predates them).
        refusal: Option<dlocker_proto::refusal::NodeRefusal>,
        /// The bank's message.
        message: String,
    },
    /// The bank answered with something that does not verify.
    #[error("{bank} sent an invalid answer to {action}: {reason}")]
    BadAnswer {
        /// The bank trustee.
        bank: String,
        /// The action.
        action: &'static str,
        /// Why.
        reason: String,
    },
}

/// A recovery as the bank sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingRecovery {
    /// The bank's session id (what approve/cancel take).
    pub session_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The new device's `R` (hex).
    pub session_key: String,
    /// Unix seconds.
    pub opened_at: u64,
    /// Unix seconds.
    pub release_not_before: u64,
    /// Session state.
    pub state: String,
    /// Staff who approved so far.
    pub approvers: Vec<String>,
    /// Distinct approvals the bank's policy requires.
    pub approvals_required: u32,
    /// Whether the policy holds (the approval is signed).
    pub approved: bool,
    /// The passkey user name the bank recorded at enrollment (None: not recorded).
    pub customer_user_name: Option<String>,
    /// The bank's customer reference recorded at enrollment (None: not given).
    pub customer_reference: Option<String>,
    /// Whether the owner's passkey verified in this session.
    pub owner_authenticated: bool,
    /// Unix seconds after which the session is expired.
    pub expires_at: u64,
}

/// A passkey reset request as the bank sees it (`docs/protocol.md` §13a, "Passkey reset").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingPasskeyReset {
    /// The bank's request id (what approve takes).
    pub request_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The new credential's fingerprint (hex): the customer's app shows it, staff compare.
    pub credential_fingerprint: String,
    /// Unix seconds.
    pub opened_at: u64,
    /// Unix seconds after which no approval is signed for it.
    pub expires_at: u64,
    /// Staff who approved so far.
    pub approvers: Vec<String>,
    /// Distinct approvals the bank's policy requires.
    pub approvals_required: u32,
    /// Whether the policy holds (the approval is signed).
    pub approved: bool,
    /// The passkey user name the bank recorded at enrollment (None: not recorded).
    pub customer_user_name: Option<String>,
    /// The bank's customer reference recorded at enrollment (None: not given).
    pub customer_reference: Option<String>,
}

impl PendingPasskeyReset {
    fn from_pb(r: dlocker_proto::pb::PasskeyResetStatus) -> Self {
        Self {
            request_id: r.request_id,
            wallet_id: r.wallet_id,
            credential_fingerprint: hex::encode(&r.credential_fingerprint),
            opened_at: r.opened_at,
            expires_at: r.expires_at,
            approved: !r.reset_approval_encoded.is_empty(),
            approvers: r.approvers,
            approvals_required: r.approvals_required,
            customer_user_name: Some(r.customer_user_name).filter(|s| !s.is_empty()),
            customer_reference: Some(r.customer_reference).filter(|s| !s.is_empty()),
        }
    }
}

/// The bank's staff and approval policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffRoster {
    /// Staff members.
    pub staff: Vec<StaffMemberInfo>,
    /// Distinct approvals a recovery needs.
    pub approvals_required: u32,
    /// Whether staff are managed by staff-admin requests (the config only seeded them).
    pub managed: bool,
}

/// One staff member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffMemberInfo {
    /// Staff id.
    pub id: String,
    /// Public key (hex, SEC1 compressed).
    pub public_key: String,
    /// Roles.
    pub roles: Vec<String>,
}

/// The state after an approval.
#[derive(Debug, Clone)]
pub struct ApprovalState {
    /// Staff who approved so far.
    pub approvers: Vec<String>,
    /// Required.
    pub approvals_required: u32,
    /// The signed approval, once the policy holds.
    pub approval: Option<Signed<BankApproval>>,
}

/// A bank cancellation issued by staff, to present to every trustee
/// ([`crate::protocol::present_bank_cancellation`]).
#[derive(Debug, Clone)]
pub struct IssuedCancellation {
    /// The statement.
    pub statement: Signed<BankCancellation>,
    /// Its canonical bytes.
    pub encoded: Vec<u8>,
}

/// A staff member's client for the bank node.
#[derive(Debug)]
pub struct StaffClient {
    key: StaffKey,
    bank: TrusteeInfo,
}

impl StaffClient {
    /// A client for `bank` (its key pinned from the trustees file) signing with `key`.
    pub fn new(key: StaffKey, bank: &TrusteeInfo) -> Self {
        Self {
            key,
            bank: bank.clone(),
        }
    }

    /// The staff public key (hex).
    pub fn public_key_hex(&self) -> String {
        self.key.public_key_hex()
    }

    fn signed(&self, action: StaffAction, target: &str) -> Vec<u8> {
        self.key
            .sign_request(new_request(&self.bank.node_id, action, target))
    }

    fn refused(&self, action: StaffAction, s: &tonic::Status) -> StaffError {
        StaffError::Refused {
            bank: self.bank.name.clone(),
            action: action.name(),
            code: s.code(),
            refusal: dlocker_proto::refusal::NodeRefusal::of_status(s),
            message: describe_status(s),
        }
    }

    fn bad(&self, action: StaffAction, reason: String) -> StaffError {
        StaffError::BadAnswer {
            bank: self.bank.name.clone(),
            action: action.name(),
            reason,
        }
    }

    /// A signed staff-admin request: lists (`StaffChange::List`) or changes the bank's staff
    /// and approval policy (the key needs the `admin` role). Returns the roster in force after.
    pub async fn manage_staff(&self, change: StaffChange) -> Result<StaffRoster, StaffError> {
        let action = change.action();
        let req = Signed::sign(
            StaffAdminRequest {
                node_id: self.bank.node_id.clone(),
                change,
                timestamp: dlocker_proto::time::unix_now(),
                nonce: rand::rng().random(),
            },
            &self.key.0,
        )
        .encode();
        let mut c = staff_client(connect_channel(&self.bank).await?);
        let r = c
            .manage_staff(ManageStaffRequest {
                staff_admin_request_encoded: req,
            })
            .await
            .map_err(|s| self.refused(action, &s))?
            .into_inner();
        let staff = r
            .staff
            .into_iter()
            .map(|m| {
                dlocker_proto::keys::decode_public_key(&m.public_key)
                    .map(|k| StaffMemberInfo {
                        id: m.id,
                        public_key: public_key_hex(&k),
                        roles: m.roles,
                    })
                    .map_err(|e| self.bad(action, format!("staff public key: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StaffRoster {
            staff,
            approvals_required: r.approvals_required,
            managed: r.managed,
        })
    }

    /// Live recoveries at the bank.
    pub async fn list_recoveries(&self) -> Result<Vec<PendingRecovery>, StaffError> {
        let action = StaffAction::ListRecoveries;
        let mut c = staff_client(connect_channel(&self.bank).await?);
        let resp = c
            .list_recoveries(ListRecoveriesRequest {
                staff_request_encoded: self.signed(action, ""),
            })
            .await
            .map_err(|s| self.refused(action, &s))?
            .into_inner();
        Ok(resp
            .recoveries
            .into_iter()
            .map(|r| PendingRecovery {
                session_id: r.session_id,
                wallet_id: r.wallet_id,
                session_key: hex::encode(&r.session_key),
                opened_at: r.opened_at,
                release_not_before: r.release_not_before,
                state: r.state,
                approvers: r.approvers,
                approvals_required: r.approvals_required,
                approved: r.approved,
                customer_user_name: Some(r.customer_user_name).filter(|s| !s.is_empty()),
                customer_reference: Some(r.customer_reference).filter(|s| !s.is_empty()),
                owner_authenticated: r.owner_authenticated,
                expires_at: r.expires_at,
            })
            .collect())
    }

    /// Approves the bank's session `session_id`. Once enough distinct staff approved, the
    /// answer carries the signed approval (checked to be from this bank).
    pub async fn approve(&self, session_id: &str) -> Result<ApprovalState, StaffError> {
        let action = StaffAction::ApproveRecovery;
        let mut c = staff_client(connect_channel(&self.bank).await?);
        let resp = c
            .approve_recovery(ApproveRecoveryRequest {
                staff_request_encoded: self.signed(action, session_id),
            })
            .await
            .map_err(|s| self.refused(action, &s))?
            .into_inner();
        let approval = if resp.bank_approval_encoded.is_empty() {
            None
        } else {
            let a = Signed::<BankApproval>::decode(&resp.bank_approval_encoded)
                .map_err(|e| self.bad(action, e.to_string()))?;
            if a.body().bank_node_id != self.bank.node_id {
                return Err(self.bad(action, "approval names another bank".into()));
            }
            Some(a)
        };
        Ok(ApprovalState {
            approvers: resp.approvers,
            approvals_required: resp.approvals_required,
            approval,
        })
    }

    /// Live passkey reset requests at the bank.
    pub async fn list_passkey_resets(&self) -> Result<Vec<PendingPasskeyReset>, StaffError> {
        let action = StaffAction::ListPasskeyResets;
        let mut c = staff_client(connect_channel(&self.bank).await?);
        let resp = c
            .list_passkey_resets(ListPasskeyResetsRequest {
                staff_request_encoded: self.signed(action, ""),
            })
            .await
            .map_err(|s| self.refused(action, &s))?
            .into_inner();
        Ok(resp
            .resets
            .into_iter()
            .map(PendingPasskeyReset::from_pb)
            .collect())
    }

    /// Approves the bank's passkey reset request `request_id` (after checking who the customer
    /// is and that the fingerprint their app shows is the request's). Once enough distinct staff
    /// approved, the answer says so; the customer's app collects the signed approval itself.
    pub async fn approve_passkey_reset(
        &self,
        request_id: &str,
    ) -> Result<PendingPasskeyReset, StaffError> {
        let action = StaffAction::ApprovePasskeyReset;
        let mut c = staff_client(connect_channel(&self.bank).await?);
        let resp = c
            .approve_passkey_reset(ApprovePasskeyResetRequest {
                staff_request_encoded: self.signed(action, request_id),
            })
            .await
            .map_err(|s| self.refused(action, &s))?
            .into_inner();
        if !resp.reset_approval_encoded.is_empty() {
            let a = Signed::<PasskeyResetApproval>::decode(&resp.reset_approval_encoded)
                .map_err(|e| self.bad(action, e.to_string()))?;
            if a.body().bank_node_id != self.bank.node_id || a.body().request_id != request_id {
                return Err(self.bad(action, "approval names another bank or request".into()));
            }
        }
        Ok(PendingPasskeyReset::from_pb(resp))
    }

    /// Cancels the bank's session `session_id` and returns the signed cancellation to present
    /// to every other trustee.
    pub async fn cancel(&self, session_id: &str) -> Result<IssuedCancellation, StaffError> {
        let action = StaffAction::CancelRecovery;
        let mut c = staff_client(connect_channel(&self.bank).await?);
        let resp = c
            .cancel_recovery(StaffCancelRequest {
                staff_request_encoded: self.signed(action, session_id),
            })
            .await
            .map_err(|s| self.refused(action, &s))?
            .into_inner();
        let statement = Signed::<BankCancellation>::decode(&resp.bank_cancellation_encoded)
            .map_err(|e| self.bad(action, e.to_string()))?;
        if statement.body().bank_node_id != self.bank.node_id {
            return Err(self.bad(action, "cancellation names another bank".into()));
        }
        // Trustees accept it only for the recovery whose bank session it names.
        if statement.body().session_id != session_id {
            return Err(self.bad(action, "cancellation names another session".into()));
        }
        Ok(IssuedCancellation {
            statement,
            encoded: resp.bank_cancellation_encoded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_redacted_and_round_trips() {
        let k = StaffKey::generate();
        let secret_hex = k.to_hex();
        let dbg = format!("{k:?}");
        assert!(dbg.contains("REDACTED"));
        assert!(dbg.contains(&k.public_key_hex()));
        assert!(!dbg.contains(secret_hex.as_str()));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("staff.key");
        k.save(&path).expect("save");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = StaffKey::load(&path).expect("load");
        assert_eq!(back.public_key(), k.public_key());
        // Never overwrites.
        assert!(matches!(
            StaffKey::generate().save(&path),
            Err(StaffKeyError::Io { .. })
        ));
        std::fs::write(&path, "zz").expect("write");
        assert!(matches!(
            StaffKey::load(&path),
            Err(StaffKeyError::Invalid(_))
        ));
        assert!(StaffKey::from_hex(&"00".repeat(32)).is_none());
    }

    #[test]
    fn encrypted_key_needs_the_right_passphrase() {
        let k = StaffKey::generate();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("staff.pem");
        k.save_encrypted(&path, b"correct horse").expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with(ENCRYPTED_KEY_PEM_LABEL), "{text}");
        assert!(
            !text.contains(k.to_hex().as_str()),
            "the secret is not in clear"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(StaffKey::is_encrypted(&path).expect("read"));
        let back = StaffKey::load_with(&path, Some(b"correct horse")).expect("opens");
        assert_eq!(back.public_key(), k.public_key());
        assert!(matches!(
            StaffKey::load(&path),
            Err(StaffKeyError::NeedsPassphrase(_))
        ));
        assert!(matches!(
            StaffKey::load_with(&path, Some(b"wrong")),
            Err(StaffKeyError::WrongPassphrase(_))
        ));
        // Never overwrites.
        assert!(matches!(
            StaffKey::generate().save_encrypted(&path, b"x"),
            Err(StaffKeyError::Io { .. })
        ));
    }

    #[test]
    fn requests_are_fresh_signed_and_addressed() {
        let k = StaffKey::generate();
        let a = new_request(
            "ab".repeat(16).as_str(),
            StaffAction::ApproveRecovery,
            "session-1",
        );
        let b = new_request(
            "ab".repeat(16).as_str(),
            StaffAction::ApproveRecovery,
            "session-1",
        );
        assert_ne!(a.nonce, b.nonce);
        assert!(a.timestamp.abs_diff(dlocker_proto::time::unix_now()) <= 1);
        let enc = k.sign_request(a.clone());
        let back =
            Signed::<StaffRequest>::decode_trusted(&enc, &[k.public_key()]).expect("verifies");
        assert_eq!(back.body(), &a);
        assert_eq!(back.body().node_id, "ab".repeat(16));
        assert_eq!(back.body().target, "session-1");
        assert_eq!(back.body().action, StaffAction::ApproveRecovery);
    }
}
