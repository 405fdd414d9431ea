//! The locker's records, in one tree ([`LOCKER_TREE`]) of the node's database.
//!
//! | key | value |
//! |---|---|
//! | `iss/<issuer_id>` | [`IssuerRecord`] JSON |
//! | `req/<requester_id>` | [`RequesterRecord`] JSON |
//! | `hol/<holder_id>` | [`HolderRecord`] JSON |
//! | `doc/<holder_id>\0<uri>` | [`DocRecord`] JSON |
//! | `uri/<uri>` | holder id (every URI ever used, so none is reused) |
//! | `con/<consent_id>` | [`ConsentRecord`] JSON |
//! | `hcon/<holder_id>\0<consent_id>` | empty (index) |
//! | `slb/<issuer_id>/<list u32 BE>` | revocation bits (16 KiB) |
//! | `sla/<issuer_id>/<list u32 BE>` | allocation bits (16 KiB) |
//! | `slm/<issuer_id>` | [`ListMeta`] JSON |
//! | `dft/<credential_id>` | [`DraftRecord`] JSON |
//! | `tsk/<issuer_id>\0<task_id>` | [`TaskRecord`] JSON |
//! | `non/<16 bytes>` | timestamp of a used request nonce |
//!
//! Writers hold the locker's write lock, read what they need, and apply all their changes in one
//! atomic batch; the database is flushed before any answer.

use super::error::LockerError;
use crate::ids::DocUri;
use crate::status_list::StatusEntry;
use crate::vc::Draft;
use dlocker_proto::keys::{public_key_from_hex, public_key_hex};
use k256::PublicKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The tree's name.
pub const LOCKER_TREE: &str = "locker";

/// Registration state of an issuer or requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegState {
    /// Registered, awaiting the operator.
    Pending,
    /// Approved by the operator.
    Approved,
    /// Suspended by the operator.
    Suspended,
}

impl RegState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Suspended => "suspended",
        }
    }
}

/// How an issuer's credentials are signed.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signing {
    /// With the issuer's own key (its request key).
    Own,
    /// With a key the locker generated and keeps sealed.
    Hosted {
        /// Hex SEC1 public key.
        public_key: String,
        /// The secret, sealed under the locker's sealing key (hex).
        sealed: String,
    },
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Own => f.write_str("Own"),
            Self::Hosted { public_key, .. } => {
                write!(f, "Hosted {{ public_key: {public_key}, sealed: REDACTED }}")
            }
        }
    }
}

/// An issuer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerRecord {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Document types it issues.
    pub doc_types: Vec<String>,
    /// Hex SEC1: signs its requests (and its credentials unless hosted).
    pub request_key: String,
    /// How credentials are signed.
    pub signing: Signing,
    /// IssuerRepository endpoint, for pull.
    pub pull_endpoint: Option<String>,
    /// State.
    pub state: RegState,
    /// Unix seconds.
    pub registered_at: u64,
    /// Unix seconds of the last decision.
    pub decided_at: u64,
    /// Staff id of the last decision.
    pub decided_by: String,
}

impl IssuerRecord {
    /// The request key.
    pub fn request_key(&self) -> Result<PublicKey, LockerError> {
        parse_key(&self.request_key)
    }
    /// The key its credentials verify under.
    pub fn signing_key(&self) -> Result<PublicKey, LockerError> {
        match &self.signing {
            Signing::Own => self.request_key(),
            Signing::Hosted { public_key, .. } => parse_key(public_key),
        }
    }
    /// "push", "pull" or "hosted".
    pub fn mode(&self) -> &'static str {
        match (&self.signing, &self.pull_endpoint) {
            (Signing::Hosted { .. }, _) => "hosted",
            (Signing::Own, Some(_)) => "pull",
            (Signing::Own, None) => "push",
        }
    }
    /// Whether the issuer is hosted.
    pub fn is_hosted(&self) -> bool {
        matches!(self.signing, Signing::Hosted { .. })
    }
}

/// A requester.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequesterRecord {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Hex SEC1.
    pub public_key: String,
    /// State.
    pub state: RegState,
    /// Unix seconds.
    pub registered_at: u64,
    /// Unix seconds.
    pub decided_at: u64,
    /// Staff id.
    pub decided_by: String,
}

/// A holder: a wallet enrolled at this node, with its current wallet key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HolderRecord {
    /// The wallet id.
    pub id: String,
    /// Hex SEC1 wallet key.
    pub key: String,
    /// Unix seconds.
    pub registered_at: u64,
    /// Number of re-issues to a new key.
    pub key_generation: u32,
}

impl HolderRecord {
    /// The current wallet key.
    pub fn key(&self) -> Result<PublicKey, LockerError> {
        parse_key(&self.key)
    }
}

/// Where a document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Pushed by an own-key issuer.
    Push,
    /// Signed by the locker with a hosted key.
    Hosted,
    /// Pulled from an issuer repository.
    Pull,
    /// Uploaded and self-attested by the holder.
    SelfAttested,
    /// Issued by an issuer attesting an upload.
    Attested,
}

impl Source {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Hosted => "hosted",
            Self::Pull => "pull",
            Self::SelfAttested => "self",
            Self::Attested => "attested",
        }
    }
}

/// A document's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocState {
    /// Its current credential is valid (as far as the locker knows).
    Active,
    /// Re-issued to a new key: the old credential is revoked and the issuer has a task to sign
    /// the new one.
    AwaitingIssuer,
}

/// A credential the document had before.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PastCredential {
    /// Its id.
    pub credential_id: String,
    /// Its status entry.
    pub list: u32,
    /// Its index.
    pub index: u32,
    /// When it was revoked.
    pub revoked_at: u64,
}

/// A holder's document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocRecord {
    /// The URI (stable across re-issues).
    pub uri: String,
    /// The holder.
    pub holder: String,
    /// The issuer (`self` for uploads).
    pub issuer_id: String,
    /// The type.
    pub doc_type: String,
    /// Where it came from.
    pub source: Source,
    /// State.
    pub state: DocState,
    /// The current credential (empty while awaiting the issuer).
    pub jws: String,
    /// Its id.
    pub credential_id: String,
    /// Its status entry `(list, index)` (none for uploads).
    pub status: Option<(u32, u32)>,
    /// Pull lookup fields (to pull again at a re-issue).
    #[serde(default)]
    pub lookup: BTreeMap<String, String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
    /// Earlier credentials, all revoked.
    #[serde(default)]
    pub history: Vec<PastCredential>,
}

/// A consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Id.
    pub id: String,
    /// The holder.
    pub holder: String,
    /// The requester.
    pub requester: String,
    /// Covered URIs.
    pub uris: Vec<String>,
    /// Purpose, as the holder gave it.
    pub purpose: String,
    /// Unix seconds; refused from then on.
    pub not_after: u64,
    /// Unix seconds.
    pub granted_at: u64,
    /// Set when revoked.
    pub revoked_at: Option<u64>,
    /// Set when a re-issue ended it.
    pub ended_at: Option<u64>,
    /// Set when a re-issue carried it over.
    pub carried_over_at: Option<u64>,
    /// The holder's signed grant request (hex), kept as evidence.
    pub grant_request: String,
}

impl ConsentRecord {
    /// "active", "expired", "revoked" or "ended" at `now`.
    pub fn state(&self, now: u64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.ended_at.is_some() {
            "ended"
        } else if now >= self.not_after {
            "expired"
        } else {
            "active"
        }
    }
}

/// The current list of an issuer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListMeta {
    /// Current list number (from 1).
    pub current: u32,
    /// Entries allocated in it.
    pub used: u32,
}

/// Why a draft exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DraftPurpose {
    /// An issuer's reservation, to push.
    Push,
    /// An attestation task's credential.
    Attestation {
        /// The task.
        task_id: String,
    },
    /// A push issuer's re-issue task.
    Reissue {
        /// The task.
        task_id: String,
    },
}

/// A credential the locker allocated and an issuer is to sign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DraftRecord {
    /// `urn:dlocker:credential:…`.
    pub credential_id: String,
    /// Issuer.
    pub issuer_id: String,
    /// Issuer name.
    pub issuer_name: String,
    /// Holder.
    pub holder_id: String,
    /// Hex SEC1 holder key.
    pub holder_key: String,
    /// URI.
    pub uri: String,
    /// Status list number.
    pub list: u32,
    /// Status index.
    pub index: u32,
    /// Unix seconds.
    pub valid_from: u64,
    /// Unix seconds.
    pub valid_until: Option<u64>,
    /// Why.
    pub purpose: DraftPurpose,
    /// Dropped after (unix seconds); tasks' drafts never expire.
    pub expires_at: u64,
}

impl DraftRecord {
    /// The format-level draft (`base_url` makes the status list URL).
    pub fn to_draft(&self, base_url: &str) -> Result<Draft, LockerError> {
        Ok(Draft {
            credential_id: self.credential_id.clone(),
            issuer_id: self.issuer_id.clone(),
            issuer_name: self.issuer_name.clone(),
            holder_id: self.holder_id.clone(),
            holder_key: parse_key(&self.holder_key)?,
            uri: DocUri::parse(&self.uri).map_err(|e| LockerError::corrupt("draft uri", e))?,
            status: StatusEntry {
                list_url: crate::status_list::list_url(base_url, &self.issuer_id, self.list),
                index: self.index,
            },
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        })
    }
}

/// Kind of issuer task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Attest a holder's upload.
    Attestation,
    /// Sign a re-issued credential bound to the holder's new key.
    Reissue,
}

/// A task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for the issuer.
    Pending,
    /// Done: a credential was issued.
    Granted,
    /// The issuer refused.
    Rejected,
}

/// An issuer task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: TaskKind,
    /// Issuer.
    pub issuer_id: String,
    /// Holder.
    pub holder_id: String,
    /// Document type.
    pub doc_type: String,
    /// Attestation: the upload's URI.
    pub upload_uri: String,
    /// The draft to sign (credential id).
    pub credential_id: String,
    /// State.
    pub state: TaskState,
    /// Rejection reason.
    pub reason: String,
    /// Unix seconds.
    pub created_at: u64,
}

/// Parses a stored hex key.
pub fn parse_key(hex: &str) -> Result<PublicKey, LockerError> {
    public_key_from_hex(hex).map_err(|e| LockerError::corrupt("stored key", e))
}

/// Hex of a key, for storage.
pub fn key_hex(k: &PublicKey) -> String {
    public_key_hex(k)
}

/// Record keys.
pub mod keys {
    /// `iss/<id>`.
    pub fn issuer(id: &str) -> Vec<u8> {
        [b"iss/".as_slice(), id.as_bytes()].concat()
    }
    /// `req/<id>`.
    pub fn requester(id: &str) -> Vec<u8> {
        [b"req/".as_slice(), id.as_bytes()].concat()
    }
    /// `hol/<id>`.
    pub fn holder(id: &str) -> Vec<u8> {
        [b"hol/".as_slice(), id.as_bytes()].concat()
    }
    /// `doc/<holder>\0` (prefix of a holder's documents).
    pub fn docs_of(holder: &str) -> Vec<u8> {
        [b"doc/".as_slice(), holder.as_bytes(), b"\0"].concat()
    }
    /// `doc/<holder>\0<uri>`.
    pub fn doc(holder: &str, uri: &str) -> Vec<u8> {
        [docs_of(holder).as_slice(), uri.as_bytes()].concat()
    }
    /// `uri/<uri>`.
    pub fn uri(uri: &str) -> Vec<u8> {
        [b"uri/".as_slice(), uri.as_bytes()].concat()
    }
    /// `con/<id>`.
    pub fn consent(id: &str) -> Vec<u8> {
        [b"con/".as_slice(), id.as_bytes()].concat()
    }
    /// `hcon/<holder>\0` (prefix).
    pub fn consents_of(holder: &str) -> Vec<u8> {
        [b"hcon/".as_slice(), holder.as_bytes(), b"\0"].concat()
    }
    /// `hcon/<holder>\0<id>`.
    pub fn holder_consent(holder: &str, id: &str) -> Vec<u8> {
        [consents_of(holder).as_slice(), id.as_bytes()].concat()
    }
    /// `slb/<issuer>/<list>`.
    pub fn list_bits(issuer: &str, list: u32) -> Vec<u8> {
        [
            b"slb/".as_slice(),
            issuer.as_bytes(),
            b"/",
            &list.to_be_bytes(),
        ]
        .concat()
    }
    /// `sla/<issuer>/<list>`.
    pub fn list_alloc(issuer: &str, list: u32) -> Vec<u8> {
        [
            b"sla/".as_slice(),
            issuer.as_bytes(),
            b"/",
            &list.to_be_bytes(),
        ]
        .concat()
    }
    /// `slm/<issuer>`.
    pub fn list_meta(issuer: &str) -> Vec<u8> {
        [b"slm/".as_slice(), issuer.as_bytes()].concat()
    }
    /// `dft/<credential id>`.
    pub fn draft(credential_id: &str) -> Vec<u8> {
        [b"dft/".as_slice(), credential_id.as_bytes()].concat()
    }
    /// `tsk/<issuer>\0` (prefix).
    pub fn tasks_of(issuer: &str) -> Vec<u8> {
        [b"tsk/".as_slice(), issuer.as_bytes(), b"\0"].concat()
    }
    /// `tsk/<issuer>\0<id>`.
    pub fn task(issuer: &str, id: &str) -> Vec<u8> {
        [tasks_of(issuer).as_slice(), id.as_bytes()].concat()
    }
    /// `non/<nonce>`.
    pub fn nonce(n: &[u8; 16]) -> Vec<u8> {
        [b"non/".as_slice(), n.as_slice()].concat()
    }
    /// Prefix of every issuer.
    pub const ISSUERS: &[u8] = b"iss/";
    /// Prefix of every requester.
    pub const REQUESTERS: &[u8] = b"req/";
    /// Prefix of every nonce.
    pub const NONCES: &[u8] = b"non/";
    /// The first key after every nonce's.
    pub const NONCES_END: &[u8] = b"non0";
    /// Prefix of every draft.
    pub const DRAFTS: &[u8] = b"dft/";
    /// Prefix of every issuer task.
    pub const TASKS: &[u8] = b"tsk/";
}

/// Typed reads over the tree.
#[derive(Debug, Clone)]
pub struct Store {
    /// The tree.
    pub tree: dlocker_store::Tree,
}

impl Store {
    /// Opens the tree.
    pub fn open(db: &dlocker_store::Store) -> Result<Self, LockerError> {
        Ok(Self {
            tree: db.tree(LOCKER_TREE)?,
        })
    }

    /// A JSON record.
    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, LockerError> {
        match self.tree.get(key)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| LockerError::corrupt("record", e)),
            None => Ok(None),
        }
    }

    /// Raw bytes.
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LockerError> {
        Ok(self.tree.get(key)?)
    }

    /// Every JSON record under `prefix` (at most `max`).
    pub fn scan<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        max: usize,
    ) -> Result<Vec<T>, LockerError> {
        let mut out = Vec::new();
        for (_, v) in self.tree.range(
            Some(prefix),
            dlocker_store::prefix_end(prefix).as_deref(),
            max,
        )? {
            out.push(serde_json::from_slice(&v).map_err(|e| LockerError::corrupt("record", e))?);
        }
        Ok(out)
    }

    /// The keys under `prefix` (at most `max`), with the prefix removed.
    pub fn scan_keys(&self, prefix: &[u8], max: usize) -> Result<Vec<Vec<u8>>, LockerError> {
        let mut out = Vec::new();
        for (k, _) in self.tree.range(
            Some(prefix),
            dlocker_store::prefix_end(prefix).as_deref(),
            max,
        )? {
            out.push(k[prefix.len()..].to_vec());
        }
        Ok(out)
    }
}

/// JSON bytes of a record (records are plain data: serialising cannot fail).
pub fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
