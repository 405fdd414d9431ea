//! Signed statements: receipts, bank approvals, staff requests, audit checkpoints, releases, and
//! the epoch-rotation receipts (stage, commit, retire) and a holder's credential attestation.
//!
//! A statement is a typed body with a kind byte, signed with ECDSA over secp256k1 (SHA-256,
//! low-S, RFC 6979) on the *signing input*
//! `"dlocker/statement/v1" ‖ kind u8 ‖ signer [33] ‖ body (u32 length ‖ bytes)`.
//! Wire format: `version u8 ‖ kind u8 ‖ signer [33] ‖ body (u32 length ‖ bytes) ‖ signature [64]`.
//! The kind byte and the label keep a signature for one purpose from being accepted for another.

use crate::codec::{DecodeError, Reader, Writer};
use crate::keys::{decode_public_key, encode_public_key};
use crate::labels;
use crate::manifest::{MAX_WALLET_ID_LEN, ManifestHash, NODE_ID_LEN};
use k256::PublicKey;
use k256::ecdsa::signature::{Signer, Verifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};

const VERSION: u8 = 1;
/// Largest statement body.
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// Why a statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// Not a statement, or a body that does not decode.
    #[error("malformed statement: {0}")]
    Malformed(#[from] DecodeError),
    /// A statement of another kind.
    #[error("expected a {expected} statement, got kind {got}")]
    WrongKind {
        /// The kind wanted.
        expected: &'static str,
        /// The kind byte found.
        got: u8,
    },
    /// The signature does not verify.
    #[error("statement signature is invalid")]
    BadSignature,
    /// Signed by a key the caller does not trust.
    #[error("statement is signed by an untrusted key")]
    UntrustedSigner,
}

/// A statement body: its kind byte and canonical encoding.
pub trait StatementBody: Sized {
    /// The kind byte (unique per body type; 0x40–0x4f belong to the document locker's
    /// requests in `dlocker-locker`).
    const KIND: u8;
    /// A name for errors.
    const NAME: &'static str;
    /// Writes the body.
    fn encode_body(&self, w: &mut Writer);
    /// Reads the body (the reader is finished by the caller).
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A body with its signer and signature. The signature is verified on decode; whether the signer
/// is *trusted* is the caller's question ([`Signed::decode_trusted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    body: T,
    signer: PublicKey,
    signature: [u8; 64],
}

fn signing_input(kind: u8, signer: &PublicKey, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(labels::STATEMENT)
        .u8(kind)
        .fixed(&encode_public_key(signer))
        .bytes(body);
    w.finish()
}

impl<T: StatementBody> Signed<T> {
    /// Signs `body` with `key`.
    pub fn sign(body: T, key: &SigningKey) -> Self {
        let signer = PublicKey::from(key.verifying_key());
        let mut w = Writer::new();
        body.encode_body(&mut w);
        let input = signing_input(T::KIND, &signer, &w.finish());
        let sig: Signature = key.sign(&input);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&sig.to_bytes());
        Self {
            body,
            signer,
            signature,
        }
    }

    /// The body.
    pub fn body(&self) -> &T {
        &self.body
    }
    /// The signer's key.
    pub fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::new();
        self.body.encode_body(&mut body);
        let mut w = Writer::new();
        w.u8(VERSION)
            .u8(T::KIND)
            .fixed(&encode_public_key(&self.signer))
            .bytes(&body.finish())
            .fixed(&self.signature);
        w.finish()
    }

    /// Decodes and verifies the signature against the embedded signer.
    pub fn decode(bytes: &[u8]) -> Result<Self, StatementError> {
        let parts = Parts::read(bytes, T::KIND, T::NAME)?;
        let signer = decode_public_key(&parts.signer)?;
        parts.verify(signer)
    }

    /// [`Self::decode`], and the signer must be one of `trusted`.
    ///
    /// A trusted signer is recognised by its encoding and the signature checked against the key
    /// given, so no point is decompressed (about a tenth of a check); a signer that is not
    /// trusted is decoded and checked as by [`Self::decode`] first, so the errors are the same.
    pub fn decode_trusted(bytes: &[u8], trusted: &[PublicKey]) -> Result<Self, StatementError> {
        let parts = Parts::read(bytes, T::KIND, T::NAME)?;
        match trusted
            .iter()
            .find(|k| encode_public_key(k) == parts.signer)
        {
            Some(key) => parts.verify(*key),
            None => {
                parts.verify::<T>(decode_public_key(&parts.signer)?)?;
                Err(StatementError::UntrustedSigner)
            }
        }
    }
}

/// A statement's fields as read, its signature not yet checked.
struct Parts<'a> {
    kind: u8,
    signer: [u8; 33],
    body: &'a [u8],
    signature: Signature,
    /// As read (low-S, so the same bytes `signature` encodes to).
    raw_signature: [u8; 64],
}

impl<'a> Parts<'a> {
    fn read(bytes: &'a [u8], kind: u8, name: &'static str) -> Result<Self, StatementError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version).into());
        }
        let got = r.u8()?;
        if got != kind {
            return Err(StatementError::WrongKind {
                expected: name,
                got,
            });
        }
        let signer = r.array::<33>()?;
        let body = r.bytes("statement body", MAX_BODY_LEN)?;
        let raw_signature = r.array::<64>()?;
        r.finish()?;
        let signature =
            Signature::from_slice(&raw_signature).map_err(|_| StatementError::BadSignature)?;
        // Only low-S signatures are canonical; a high-S twin would be a second encoding.
        if signature.normalize_s() != signature {
            return Err(StatementError::BadSignature);
        }
        Ok(Self {
            kind: got,
            signer,
            body,
            signature,
            raw_signature,
        })
    }

    /// Checks the signature as `signer`'s (whose encoding is `self.signer`), then the body.
    fn verify<T: StatementBody>(&self, signer: PublicKey) -> Result<Signed<T>, StatementError> {
        VerifyingKey::from(&signer)
            .verify(
                &signing_input(self.kind, &signer, self.body),
                &self.signature,
            )
            .map_err(|_| StatementError::BadSignature)?;
        let mut br = Reader::new(self.body);
        let body = T::decode_body(&mut br)?;
        br.finish()?;
        Ok(Signed {
            body,
            signer,
            signature: self.raw_signature,
        })
    }
}

fn read_hash(r: &mut Reader<'_>) -> Result<ManifestHash, DecodeError> {
    Ok(ManifestHash(r.array::<32>()?))
}

/// A trustee's receipt for a deposit: it durably holds a verified share for this manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The trustee.
    pub node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The epoch.
    pub epoch: u64,
    /// The share index held.
    pub share_index: u16,
    /// The manifest deposited.
    pub manifest_hash: ManifestHash,
    /// Unix seconds.
    pub issued_at: u64,
}

impl StatementBody for Receipt {
    const KIND: u8 = 1;
    const NAME: &'static str = "receipt";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id)
            .str(&self.wallet_id)
            .u64(self.epoch)
            .u16(self.share_index)
            .fixed(&self.manifest_hash.0)
            .u64(self.issued_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            epoch: r.u64()?,
            share_index: r.u16()?,
            manifest_hash: read_hash(r)?,
            issued_at: r.u64()?,
        })
    }
}

/// Longest list of approvers in a bank approval.
pub const MAX_APPROVERS: usize = 16;
/// Longest staff id or session id.
pub const MAX_ID_LEN: usize = 64;

fn read_key(r: &mut Reader<'_>) -> Result<PublicKey, DecodeError> {
    decode_public_key(&r.array::<33>()?)
}

/// `u16 count ‖ count × str`; the signer never lists more than [`MAX_APPROVERS`].
fn write_approvers(w: &mut Writer, approvers: &[String]) {
    w.u16(approvers.len() as u16);
    for a in approvers {
        w.str(a);
    }
}

fn read_approvers(r: &mut Reader<'_>) -> Result<Vec<String>, DecodeError> {
    let count = usize::from(r.u16()?);
    if count > MAX_APPROVERS {
        return Err(DecodeError::Invalid("approver count"));
    }
    let mut approvers = Vec::with_capacity(count);
    for _ in 0..count {
        approvers.push(r.str("approver", MAX_ID_LEN)?.to_owned());
    }
    Ok(approvers)
}

/// The bank's approval of one recovery: this wallet, towards this device key `R`, until
/// `expires_at`. Signed with the bank approval key; every trustee checks it before release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankApproval {
    /// The bank node that signed.
    pub bank_node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The new device's session key `R`.
    pub session_key: PublicKey,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; refused after.
    pub expires_at: u64,
    /// Staff ids whose approvals satisfied the policy.
    pub approvers: Vec<String>,
}

impl StatementBody for BankApproval {
    const KIND: u8 = 2;
    const NAME: &'static str = "bank approval";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.bank_node_id)
            .str(&self.wallet_id)
            .fixed(&encode_public_key(&self.session_key))
            .u64(self.issued_at)
            .u64(self.expires_at);
        write_approvers(w, &self.approvers);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bank_node_id = r.str("bank node id", NODE_ID_LEN)?.to_owned();
        let wallet_id = r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned();
        let session_key = read_key(r)?;
        let issued_at = r.u64()?;
        let expires_at = r.u64()?;
        let approvers = read_approvers(r)?;
        Ok(Self {
            bank_node_id,
            wallet_id,
            session_key,
            issued_at,
            expires_at,
            approvers,
        })
    }
}

/// The bank's approval of one passkey reset: this wallet's credential may be replaced by the
/// credential with this fingerprint, until `expires_at`. Signed with the bank approval key once
/// the staff policy held for the bank's reset request `request_id`; every trustee checks it (and
/// spends it) before it swaps the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyResetApproval {
    /// The bank node that signed.
    pub bank_node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The new credential's fingerprint (`owner_challenge::credential_fingerprint`).
    pub credential_fingerprint: [u8; 32],
    /// The bank's reset request it approves.
    pub request_id: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; refused after.
    pub expires_at: u64,
    /// Staff ids whose approvals satisfied the policy.
    pub approvers: Vec<String>,
}

impl StatementBody for PasskeyResetApproval {
    const KIND: u8 = 13;
    const NAME: &'static str = "passkey reset approval";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.bank_node_id)
            .str(&self.wallet_id)
            .fixed(&self.credential_fingerprint)
            .str(&self.request_id)
            .u64(self.issued_at)
            .u64(self.expires_at);
        write_approvers(w, &self.approvers);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            bank_node_id: r.str("bank node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            credential_fingerprint: r.array::<32>()?,
            request_id: r.str("request id", MAX_ID_LEN)?.to_owned(),
            issued_at: r.u64()?,
            expires_at: r.u64()?,
            approvers: read_approvers(r)?,
        })
    }
}

/// What a staff member asks the bank node to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffAction {
    /// List pending recoveries.
    ListRecoveries,
    /// Approve the recovery session named by `target`.
    ApproveRecovery,
    /// Cancel the recovery session named by `target`.
    CancelRecovery,
    /// Subscribe to the node's event stream (`Recovery.WatchEvents`), which names wallets.
    WatchEvents,
    /// List the bank's staff and approval policy (a [`StaffAdminRequest`]).
    ListStaff,
    /// Change the bank's staff or approval policy (a [`StaffAdminRequest`]).
    ManageStaff,
    /// Approve the passkey reset request named by `target`.
    ApprovePasskeyReset,
    /// List pending passkey reset requests.
    ListPasskeyResets,
    // Codes 16–31 belong to the document locker.
    /// List the locker's issuers and requesters.
    ListRegistry,
    /// Approve the issuer named by `target`.
    ApproveIssuer,
    /// Suspend the issuer named by `target`.
    SuspendIssuer,
    /// Approve the requester named by `target`.
    ApproveRequester,
    /// Suspend the requester named by `target`.
    SuspendRequester,
}

impl StaffAction {
    fn code(self) -> u8 {
        match self {
            Self::ListRecoveries => 1,
            Self::ApproveRecovery => 2,
            Self::CancelRecovery => 3,
            Self::WatchEvents => 4,
            Self::ListStaff => 5,
            Self::ManageStaff => 6,
            Self::ApprovePasskeyReset => 7,
            Self::ListPasskeyResets => 8,
            Self::ListRegistry => 16,
            Self::ApproveIssuer => 17,
            Self::SuspendIssuer => 18,
            Self::ApproveRequester => 19,
            Self::SuspendRequester => 20,
        }
    }
    fn from_code(c: u8) -> Result<Self, DecodeError> {
        match c {
            1 => Ok(Self::ListRecoveries),
            2 => Ok(Self::ApproveRecovery),
            3 => Ok(Self::CancelRecovery),
            4 => Ok(Self::WatchEvents),
            5 => Ok(Self::ListStaff),
            6 => Ok(Self::ManageStaff),
            7 => Ok(Self::ApprovePasskeyReset),
            8 => Ok(Self::ListPasskeyResets),
            16 => Ok(Self::ListRegistry),
            17 => Ok(Self::ApproveIssuer),
            18 => Ok(Self::SuspendIssuer),
            19 => Ok(Self::ApproveRequester),
            20 => Ok(Self::SuspendRequester),
            _ => Err(DecodeError::Invalid("staff action")),
        }
    }
    /// A short name for logs and audit.
    pub fn name(self) -> &'static str {
        match self {
            Self::ListRecoveries => "list_recoveries",
            Self::ApproveRecovery => "approve_recovery",
            Self::CancelRecovery => "cancel_recovery",
            Self::WatchEvents => "watch_events",
            Self::ListStaff => "list_staff",
            Self::ManageStaff => "manage_staff",
            Self::ApprovePasskeyReset => "approve_passkey_reset",
            Self::ListPasskeyResets => "list_passkey_resets",
            Self::ListRegistry => "list_registry",
            Self::ApproveIssuer => "approve_issuer",
            Self::SuspendIssuer => "suspend_issuer",
            Self::ApproveRequester => "approve_requester",
            Self::SuspendRequester => "suspend_requester",
        }
    }
}

/// A staff member's signed request to the bank node. Fresh (`timestamp` within the node's
/// allowed skew) and single-use (`nonce` remembered by the node), so a captured request cannot
/// be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRequest {
    /// The bank node addressed (a request for one bank cannot be used at another).
    pub node_id: String,
    /// What to do.
    pub action: StaffAction,
    /// The session id acted on (empty for listing).
    pub target: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// Random, single use.
    pub nonce: [u8; 16],
}

impl StatementBody for StaffRequest {
    const KIND: u8 = 3;
    const NAME: &'static str = "staff request";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id)
            .u8(self.action.code())
            .str(&self.target)
            .u64(self.timestamp)
            .fixed(&self.nonce);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            action: StaffAction::from_code(r.u8()?)?,
            target: r.str("target", MAX_ID_LEN)?.to_owned(),
            timestamp: r.u64()?,
            nonce: r.array::<16>()?,
        })
    }
}

/// Longest staff role list in a [`StaffChange`] (`"viewer,approver,canceller,operator,admin"`).
pub const MAX_ROLES_LEN: usize = 128;

/// A change to the bank's staff or approval policy, or a listing of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffChange {
    /// List staff and policy (changes nothing).
    List,
    /// Add a staff member.
    Add {
        /// Their staff id.
        id: String,
        /// Their request-signing key.
        public_key: PublicKey,
        /// Comma-separated roles (`approver,canceller`).
        roles: String,
    },
    /// Remove a staff member.
    Remove {
        /// Their staff id.
        id: String,
    },
    /// Replace a staff member's roles.
    SetRoles {
        /// Their staff id.
        id: String,
        /// Comma-separated roles.
        roles: String,
    },
    /// Set the distinct approvals a recovery needs.
    SetPolicy {
        /// Approvals required.
        approvals_required: u32,
    },
}

impl StaffChange {
    /// The staff action it needs the signer's role to permit.
    pub fn action(&self) -> StaffAction {
        match self {
            Self::List => StaffAction::ListStaff,
            _ => StaffAction::ManageStaff,
        }
    }
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::List => {
                w.u8(1);
            }
            Self::Add {
                id,
                public_key,
                roles,
            } => {
                w.u8(2)
                    .str(id)
                    .fixed(&encode_public_key(public_key))
                    .str(roles);
            }
            Self::Remove { id } => {
                w.u8(3).str(id);
            }
            Self::SetRoles { id, roles } => {
                w.u8(4).str(id).str(roles);
            }
            Self::SetPolicy { approvals_required } => {
                w.u8(5).u32(*approvals_required);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => Self::List,
            2 => Self::Add {
                id: r.str("staff id", MAX_ID_LEN)?.to_owned(),
                public_key: decode_public_key(&r.array::<33>()?)?,
                roles: r.str("roles", MAX_ROLES_LEN)?.to_owned(),
            },
            3 => Self::Remove {
                id: r.str("staff id", MAX_ID_LEN)?.to_owned(),
            },
            4 => Self::SetRoles {
                id: r.str("staff id", MAX_ID_LEN)?.to_owned(),
                roles: r.str("roles", MAX_ROLES_LEN)?.to_owned(),
            },
            5 => Self::SetPolicy {
                approvals_required: r.u32()?,
            },
            _ => return Err(DecodeError::Invalid("staff change")),
        })
    }
}

/// A staff administrator's signed request to the bank node: list or change the staff and the
/// approval policy. Fresh and single-use like a [`StaffRequest`] (the node shares their nonce
/// store), and of its own kind, so no staff request can be taken for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAdminRequest {
    /// The bank node addressed.
    pub node_id: String,
    /// What to do.
    pub change: StaffChange,
    /// Unix seconds.
    pub timestamp: u64,
    /// Random, single use.
    pub nonce: [u8; 16],
}

impl StatementBody for StaffAdminRequest {
    const KIND: u8 = 12;
    const NAME: &'static str = "staff admin request";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id);
        self.change.encode(w);
        w.u64(self.timestamp).fixed(&self.nonce);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            change: StaffChange::decode(r)?,
            timestamp: r.u64()?,
            nonce: r.array::<16>()?,
        })
    }
}

/// A signed checkpoint of a node's audit log head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The node.
    pub node_id: String,
    /// Sequence number of the last entry covered (0 = empty log).
    pub seq: u64,
    /// Hash of that entry (zeros for an empty log).
    pub head_hash: [u8; 32],
    /// Unix seconds.
    pub at: u64,
}

impl StatementBody for AuditCheckpoint {
    const KIND: u8 = 4;
    const NAME: &'static str = "audit checkpoint";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id)
            .u64(self.seq)
            .fixed(&self.head_hash)
            .u64(self.at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            seq: r.u64()?,
            head_hash: r.array::<32>()?,
            at: r.u64()?,
        })
    }
}

/// A trustee's statement that it released its share for this manifest to session key `R`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRelease {
    /// The trustee.
    pub node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The epoch.
    pub epoch: u64,
    /// The share index released.
    pub share_index: u16,
    /// The manifest the share belongs to.
    pub manifest_hash: ManifestHash,
    /// The recipient `R`.
    pub session_key: PublicKey,
    /// SHA-256 of the envelope bytes released.
    pub envelope_hash: [u8; 32],
    /// Unix seconds.
    pub released_at: u64,
}

impl StatementBody for ShareRelease {
    const KIND: u8 = 5;
    const NAME: &'static str = "share release";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id)
            .str(&self.wallet_id)
            .u64(self.epoch)
            .u16(self.share_index)
            .fixed(&self.manifest_hash.0)
            .fixed(&encode_public_key(&self.session_key))
            .fixed(&self.envelope_hash)
            .u64(self.released_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            epoch: r.u64()?,
            share_index: r.u16()?,
            manifest_hash: read_hash(r)?,
            session_key: read_key(r)?,
            envelope_hash: r.array::<32>()?,
            released_at: r.u64()?,
        })
    }
}

/// The bank's signed order to cancel one recovery of `wallet_id` towards `session_key`: the one
/// whose session at the bank is `session_id`, opened at `session_opened_at`. Trustees accept it
/// under the bank approval keys they are configured with, for a session of theirs that belongs
/// to that recovery only (`docs/protocol.md` §11): naming the session and its opening time keeps
/// an old cancellation from cancelling a later recovery with the same `(wallet, R)`. A body
/// without the session fields (the first layout) does not decode and is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankCancellation {
    /// The bank node that signed.
    pub bank_node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The session key `R` of the recovery being cancelled.
    pub session_key: PublicKey,
    /// The bank's session id of the recovery being cancelled.
    pub session_id: String,
    /// Unix seconds: when that session opened at the bank.
    pub session_opened_at: u64,
    /// The staff member who asked.
    pub staff_id: String,
    /// Unix seconds.
    pub issued_at: u64,
}

impl StatementBody for BankCancellation {
    const KIND: u8 = 6;
    const NAME: &'static str = "bank cancellation";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.bank_node_id)
            .str(&self.wallet_id)
            .fixed(&encode_public_key(&self.session_key))
            .str(&self.session_id)
            .u64(self.session_opened_at)
            .str(&self.staff_id)
            .u64(self.issued_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            bank_node_id: r.str("bank node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            session_key: read_key(r)?,
            session_id: r.str("session id", MAX_ID_LEN)?.to_owned(),
            session_opened_at: r.u64()?,
            staff_id: r.str("staff id", MAX_ID_LEN)?.to_owned(),
            issued_at: r.u64()?,
        })
    }
}

fn read_optional_hash(r: &mut Reader<'_>) -> Result<Option<ManifestHash>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(read_hash(r)?)),
        _ => Err(DecodeError::Invalid("optional hash flag")),
    }
}

fn write_optional_hash(w: &mut Writer, h: Option<&ManifestHash>) {
    match h {
        None => w.u8(0),
        Some(h) => w.u8(1).fixed(&h.0),
    };
}

/// A trustee's receipt for a *staged* epoch (rotation phase 1): it durably holds a verified share
/// of the successor manifest beside its active epoch, until `expires_at` unless committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageReceipt {
    /// The trustee.
    pub node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The staged epoch.
    pub epoch: u64,
    /// The share index held in the staged epoch.
    pub share_index: u16,
    /// The staged manifest.
    pub manifest_hash: ManifestHash,
    /// The manifest it succeeds (the staged manifest's `previous`).
    pub previous_manifest_hash: ManifestHash,
    /// Unix seconds.
    pub staged_at: u64,
    /// Unix seconds; the staged epoch is dropped from then on unless committed.
    pub expires_at: u64,
}

impl StatementBody for StageReceipt {
    const KIND: u8 = 7;
    const NAME: &'static str = "stage receipt";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id)
            .str(&self.wallet_id)
            .u64(self.epoch)
            .u16(self.share_index)
            .fixed(&self.manifest_hash.0)
            .fixed(&self.previous_manifest_hash.0)
            .u64(self.staged_at)
            .u64(self.expires_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            epoch: r.u64()?,
            share_index: r.u16()?,
            manifest_hash: read_hash(r)?,
            previous_manifest_hash: read_hash(r)?,
            staged_at: r.u64()?,
            expires_at: r.u64()?,
        })
    }
}

/// A trustee's statement that it committed an epoch (rotation phase 2): the manifest is now its
/// active epoch and the share of the epoch it replaced (`erased`) is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The trustee.
    pub node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The epoch now active.
    pub epoch: u64,
    /// The share index held.
    pub share_index: u16,
    /// The manifest now active.
    pub manifest_hash: ManifestHash,
    /// The manifest whose share was erased (none for a trustee new to the wallet).
    pub erased: Option<ManifestHash>,
    /// Unix seconds.
    pub committed_at: u64,
}

impl StatementBody for CommitReceipt {
    const KIND: u8 = 8;
    const NAME: &'static str = "commit receipt";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id)
            .str(&self.wallet_id)
            .u64(self.epoch)
            .u16(self.share_index)
            .fixed(&self.manifest_hash.0);
        write_optional_hash(w, self.erased.as_ref());
        w.u64(self.committed_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            epoch: r.u64()?,
            share_index: r.u16()?,
            manifest_hash: read_hash(r)?,
            erased: read_optional_hash(r)?,
            committed_at: r.u64()?,
        })
    }
}

/// A trustee's statement that it left a wallet's trustee set: it erased everything it held for
/// the wallet (share, manifest, passkey, blob) after being shown the successor manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetireReceipt {
    /// The trustee.
    pub node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The epoch it held until now.
    pub retired_epoch: u64,
    /// The manifest whose share it erased.
    pub retired_manifest_hash: ManifestHash,
    /// The successor manifest (which does not list this trustee).
    pub successor_manifest_hash: ManifestHash,
    /// Unix seconds.
    pub retired_at: u64,
}

impl StatementBody for RetireReceipt {
    const KIND: u8 = 9;
    const NAME: &'static str = "retire receipt";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id)
            .str(&self.wallet_id)
            .u64(self.retired_epoch)
            .fixed(&self.retired_manifest_hash.0)
            .fixed(&self.successor_manifest_hash.0)
            .u64(self.retired_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            retired_epoch: r.u64()?,
            retired_manifest_hash: read_hash(r)?,
            successor_manifest_hash: read_hash(r)?,
            retired_at: r.u64()?,
        })
    }
}

/// A trustee's statement that it holds a wallet's active epoch and which passkey credential the
/// wallet has. A trustee joining the wallet at a stage accepts the credential it is handed only
/// when a trustee it knows vouches for it this way, for the epoch the staged manifest succeeds:
/// a stranger cannot make a node join a wallet under a credential of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialAttestation {
    /// The trustee holding the wallet.
    pub node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// Its active epoch.
    pub epoch: u64,
    /// Its active manifest.
    pub manifest_hash: ManifestHash,
    /// The wallet credential's fingerprint (`owner_challenge::credential_fingerprint`).
    pub credential_fingerprint: [u8; 32],
    /// Unix seconds.
    pub issued_at: u64,
}

impl StatementBody for CredentialAttestation {
    const KIND: u8 = 10;
    const NAME: &'static str = "credential attestation";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id)
            .str(&self.wallet_id)
            .u64(self.epoch)
            .fixed(&self.manifest_hash.0)
            .fixed(&self.credential_fingerprint)
            .u64(self.issued_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            epoch: r.u64()?,
            manifest_hash: read_hash(r)?,
            credential_fingerprint: r.array::<32>()?,
            issued_at: r.u64()?,
        })
    }
}

/// A trustee's statement that it erased a wallet at its owner's request (delete): everything it
/// held for the wallet is gone — the active epoch's share, manifest and blob, a staged epoch,
/// the passkey credential, recovery sessions and pending owner nonces. Its own kind, not a
/// [`RetireReceipt`]: a retirement says the wallet lives on under a successor manifest, a
/// deletion says it lives on nowhere, and neither may pass for the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseReceipt {
    /// The trustee.
    pub node_id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The active epoch erased (0 for a trustee that only held a staged epoch).
    pub epoch: u64,
    /// The active manifest whose share was erased (none for a trustee that only held a staged
    /// epoch).
    pub manifest_hash: Option<ManifestHash>,
    /// The staged manifest whose share was erased, if one was staged.
    pub staged_manifest_hash: Option<ManifestHash>,
    /// Unix seconds.
    pub erased_at: u64,
}

impl StatementBody for EraseReceipt {
    const KIND: u8 = 11;
    const NAME: &'static str = "erase receipt";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.node_id).str(&self.wallet_id).u64(self.epoch);
        write_optional_hash(w, self.manifest_hash.as_ref());
        write_optional_hash(w, self.staged_manifest_hash.as_ref());
        w.u64(self.erased_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            node_id: r.str("node id", NODE_ID_LEN)?.to_owned(),
            wallet_id: r.str("wallet id", MAX_WALLET_ID_LEN)?.to_owned(),
            epoch: r.u64()?,
            manifest_hash: read_optional_hash(r)?,
            staged_manifest_hash: read_optional_hash(r)?,
            erased_at: r.u64()?,
        })
    }
}

/// Reads the kind byte of an encoded statement without verifying it (to dispatch a list that
/// may mix kinds; the chosen type's `decode` then checks everything).
pub fn peek_kind(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [VERSION, kind, ..] => Some(*kind),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate;

    fn receipt() -> Receipt {
        Receipt {
            node_id: "ab".repeat(16),
            wallet_id: "w".into(),
            epoch: 1,
            share_index: 2,
            manifest_hash: ManifestHash([3; 32]),
            issued_at: 42,
        }
    }

    #[test]
    fn sign_decode_verify() {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let other = SigningKey::generate_from_rng(&mut rand::rng());
        let s = Signed::sign(receipt(), &key);
        let enc = s.encode();
        let back = Signed::<Receipt>::decode_trusted(&enc, &[PublicKey::from(key.verifying_key())])
            .expect("ok");
        assert_eq!(back.body(), &receipt());
        assert_eq!(
            Signed::<Receipt>::decode_trusted(&enc, &[PublicKey::from(other.verifying_key())])
                .err(),
            Some(StatementError::UntrustedSigner)
        );
        // Flip any byte of the body or signature: refused.
        for i in [1usize, 40, enc.len() - 70, enc.len() - 1] {
            let mut t = enc.clone();
            t[i] ^= 1;
            assert!(Signed::<Receipt>::decode(&t).is_err(), "byte {i}");
        }
        let mut long = enc.clone();
        long.push(0);
        assert!(Signed::<Receipt>::decode(&long).is_err());
        // A receipt is never accepted as another kind of statement.
        assert!(matches!(
            Signed::<BankApproval>::decode(&enc),
            Err(StatementError::WrongKind { .. })
        ));
    }

    /// `decode_trusted` finds a trusted signer by its encoding and skips only the point
    /// decompression: every flipped bit is still refused, and for a signer it does not trust it
    /// answers what `decode` answers for a broken statement, `UntrustedSigner` for a sound one.
    #[test]
    fn decode_trusted_checks_as_much_as_decode() {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let other = SigningKey::generate_from_rng(&mut rand::rng());
        let trusted = [PublicKey::from(key.verifying_key())];
        let untrusted = [PublicKey::from(other.verifying_key())];
        let enc = Signed::sign(receipt(), &key).encode();
        let back = Signed::<Receipt>::decode_trusted(&enc, &trusted).expect("sound");
        assert_eq!(back.encode(), enc);
        assert_eq!(back.signer(), &trusted[0]);
        for i in 0..enc.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = enc.clone();
                t[i] ^= bit;
                assert!(
                    Signed::<Receipt>::decode_trusted(&t, &trusted).is_err(),
                    "byte {i} ^ {bit:#x} accepted"
                );
                let expected = match Signed::<Receipt>::decode(&t) {
                    Ok(_) => StatementError::UntrustedSigner,
                    Err(e) => e,
                };
                assert_eq!(
                    Signed::<Receipt>::decode_trusted(&t, &untrusted).err(),
                    Some(expected),
                    "byte {i} ^ {bit:#x}"
                );
            }
        }
    }

    #[test]
    fn epoch_statements_round_trip_and_stay_apart() {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let stage = StageReceipt {
            node_id: "ab".repeat(16),
            wallet_id: "w".into(),
            epoch: 2,
            share_index: 3,
            manifest_hash: ManifestHash([4; 32]),
            previous_manifest_hash: ManifestHash([5; 32]),
            staged_at: 6,
            expires_at: 7,
        };
        let enc = Signed::sign(stage.clone(), &key).encode();
        assert_eq!(peek_kind(&enc), Some(StageReceipt::KIND));
        assert_eq!(
            Signed::<StageReceipt>::decode(&enc).expect("ok").body(),
            &stage
        );
        assert!(matches!(
            Signed::<CommitReceipt>::decode(&enc),
            Err(StatementError::WrongKind { .. })
        ));
        for erased in [None, Some(ManifestHash([5; 32]))] {
            let commit = CommitReceipt {
                node_id: "ab".repeat(16),
                wallet_id: "w".into(),
                epoch: 2,
                share_index: 3,
                manifest_hash: ManifestHash([4; 32]),
                erased,
                committed_at: 8,
            };
            let enc = Signed::sign(commit.clone(), &key).encode();
            assert_eq!(
                Signed::<CommitReceipt>::decode(&enc).expect("ok").body(),
                &commit
            );
            assert!(matches!(
                Signed::<Receipt>::decode(&enc),
                Err(StatementError::WrongKind { .. })
            ));
        }
        let retire = RetireReceipt {
            node_id: "ab".repeat(16),
            wallet_id: "w".into(),
            retired_epoch: 1,
            retired_manifest_hash: ManifestHash([5; 32]),
            successor_manifest_hash: ManifestHash([4; 32]),
            retired_at: 9,
        };
        let enc = Signed::sign(retire.clone(), &key).encode();
        assert_eq!(
            Signed::<RetireReceipt>::decode(&enc).expect("ok").body(),
            &retire
        );
        for (manifest_hash, staged) in [
            (Some(ManifestHash([5; 32])), None),
            (Some(ManifestHash([5; 32])), Some(ManifestHash([6; 32]))),
            (None, Some(ManifestHash([6; 32]))),
        ] {
            let erase = EraseReceipt {
                node_id: "ab".repeat(16),
                wallet_id: "w".into(),
                epoch: 1,
                manifest_hash,
                staged_manifest_hash: staged,
                erased_at: 10,
            };
            let enc = Signed::sign(erase.clone(), &key).encode();
            assert_eq!(
                Signed::<EraseReceipt>::decode(&enc).expect("ok").body(),
                &erase
            );
            // An erasure never passes for a retirement, nor the other way round.
            assert!(matches!(
                Signed::<RetireReceipt>::decode(&enc),
                Err(StatementError::WrongKind { .. })
            ));
        }
        assert!(matches!(
            Signed::<EraseReceipt>::decode(&Signed::sign(retire, &key).encode()),
            Err(StatementError::WrongKind { .. })
        ));
        assert_eq!(peek_kind(b""), None);
    }

    #[test]
    fn credential_attestation_round_trips_and_is_no_receipt() {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let att = CredentialAttestation {
            node_id: "ab".repeat(16),
            wallet_id: "w".into(),
            epoch: 1,
            manifest_hash: ManifestHash([4; 32]),
            credential_fingerprint: [9; 32],
            issued_at: 10,
        };
        let enc = Signed::sign(att.clone(), &key).encode();
        assert_eq!(peek_kind(&enc), Some(CredentialAttestation::KIND));
        assert_eq!(
            Signed::<CredentialAttestation>::decode(&enc)
                .expect("ok")
                .body(),
            &att
        );
        for other in [
            Signed::<Receipt>::decode(&enc).err(),
            Signed::<StageReceipt>::decode(&enc).err(),
            Signed::<CommitReceipt>::decode(&enc).err(),
        ] {
            assert!(matches!(other, Some(StatementError::WrongKind { .. })));
        }
        let mut long = enc;
        long.push(0);
        assert!(Signed::<CredentialAttestation>::decode(&long).is_err());
    }

    #[test]
    fn bank_cancellation_names_its_session_and_the_first_layout_is_refused() {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let r = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let c = BankCancellation {
            bank_node_id: "cd".repeat(16),
            wallet_id: "w".into(),
            session_key: r,
            session_id: "ab".repeat(16),
            session_opened_at: 100,
            staff_id: "alice".into(),
            issued_at: 160,
        };
        let enc = Signed::sign(c.clone(), &key).encode();
        assert_eq!(
            Signed::<BankCancellation>::decode(&enc).expect("ok").body(),
            &c
        );
        // The first layout (no session id, no opening time), validly signed: never decodes.
        let mut w = Writer::new();
        w.str(&c.bank_node_id)
            .str(&c.wallet_id)
            .fixed(&encode_public_key(&r))
            .str(&c.staff_id)
            .u64(c.issued_at);
        let body = w.finish();
        let signer = PublicKey::from(key.verifying_key());
        let sig: Signature = key.sign(&signing_input(BankCancellation::KIND, &signer, &body));
        let mut old = Writer::new();
        old.u8(VERSION)
            .u8(BankCancellation::KIND)
            .fixed(&encode_public_key(&signer))
            .bytes(&body)
            .fixed(&sig.to_bytes());
        assert!(matches!(
            Signed::<BankCancellation>::decode(&old.finish()),
            Err(StatementError::Malformed(_))
        ));
    }

    #[test]
    fn approval_and_staff_request_round_trip() {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let r = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let approval = BankApproval {
            bank_node_id: "cd".repeat(16),
            wallet_id: "w".into(),
            session_key: r,
            issued_at: 1,
            expires_at: 2,
            approvers: vec!["alice".into(), "bob".into()],
        };
        let enc = Signed::sign(approval.clone(), &key).encode();
        assert_eq!(
            Signed::<BankApproval>::decode(&enc).expect("ok").body(),
            &approval
        );
        let req = StaffRequest {
            node_id: "cd".repeat(16),
            action: StaffAction::ApproveRecovery,
            target: "session-1".into(),
            timestamp: 5,
            nonce: [1; 16],
        };
        for change in [
            StaffChange::List,
            StaffChange::Add {
                id: "bob".into(),
                public_key: PublicKey::from(key.verifying_key()),
                roles: "approver".into(),
            },
            StaffChange::Remove { id: "bob".into() },
            StaffChange::SetRoles {
                id: "bob".into(),
                roles: "viewer".into(),
            },
            StaffChange::SetPolicy {
                approvals_required: 2,
            },
        ] {
            let admin = StaffAdminRequest {
                node_id: "cd".repeat(16),
                change,
                timestamp: 5,
                nonce: [2; 16],
            };
            let enc = Signed::sign(admin.clone(), &key).encode();
            assert_eq!(
                Signed::<StaffAdminRequest>::decode(&enc)
                    .expect("ok")
                    .body(),
                &admin
            );
            // Never accepted as a staff request (another kind).
            assert!(Signed::<StaffRequest>::decode(&enc).is_err());
        }
        let enc = Signed::sign(req.clone(), &key).encode();
        assert_eq!(
            Signed::<StaffRequest>::decode(&enc).expect("ok").body(),
            &req
        );
    }
}
