//! The document locker from every side: a wallet app (holder), an issuer, a
//! requester and the bank's operator.
//!
//! The locker runs on the bank's node; every client here reaches it through the trustees file,
//! so its identity key is *pinned*: status lists are verified against that key, never one the
//! node only claims. The formats (VC-JOSE credentials, Bitstring Status Lists, signed requests)
//! are `dlocker_locker`'s, re-exported here.
//!
//! * [`HolderClient`]: bind the wallet key with the owner's passkey, list documents, upload and
//!   self-attest, pull from an issuer, ask for attestation, grant / revoke / list consents;
//!   [`request_key_approval`] + [`reissue`] after a recovery;
//! * [`IssuerClient`]: register, issue with a hosted key, reserve + sign + push with an own key,
//!   work through tasks (attestations, re-issues); pull issuers implement
//!   [`repository::DocumentSource`] and serve [`repository::RepositoryServer`];
//! * [`RequesterClient`]: register, fetch under a consent (verified);
//! * [`OperatorClient`]: bank staff with the `operator` role approve and suspend issuers and
//!   requesters;
//! * [`LockerClient::verify`]: what `dlocker docs verify FILE` prints.
//!
//! ```no_run
//! # async fn run(set: &dlocker_sdk::TrusteeSet, auth: &mut dyn dlocker_sdk::Passkey)
//! # -> Result<(), dlocker_sdk::documents::DocError> {
//! use dlocker_sdk::documents::{HolderClient, LockerClient, PrincipalKey};
//! let locker = LockerClient::new(set.bank());
//! let wallet_key = PrincipalKey::generate(); // kept by the wallet app
//! let holder = HolderClient::new(locker.clone(), "wallet-42", wallet_key);
//! holder.register(auth).await?;
//! for d in holder.documents().await? {
//!     println!("{} {} {}", d.document_uri, d.issuer_id, d.state);
//! }
//! # Ok(()) }
//! ```

use crate::authenticator::Passkey;
use crate::ceremony;
use crate::error::ConnectError;
use crate::staff::StaffKey;
use crate::transport::Channel;
use crate::transport::{
    MAX_MESSAGE_BYTES, NodeRefusal, connect_channel, describe_status, is_refusal, recovery_client,
    staff_client,
};
use crate::trustees::TrusteeInfo;
use dlocker_locker::request::{self, LockerAction, params};
use dlocker_locker::status_list::{StatusEntry, StatusList};
use dlocker_locker::vc::{Claims, Credential, IssuedBy, Upload};
use dlocker_proto::keys::{decode_public_key, encode_public_key};
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::document_service_client::DocumentServiceClient;
use dlocker_proto::statement::{BankApproval, Signed, StaffAction};
use k256::PublicKey;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tonic::Code;
use zeroize::Zeroizing;

pub use dlocker_locker::refusal::RefusalCode;
pub use dlocker_locker::{
    FormatError, PrincipalKey, b64, datetime, ids, jwk, jws, status_list, vc,
};
// A pull issuer's server side (a tonic server) and the example issuer: native only.
#[cfg(not(target_arch = "wasm32"))]
pub use dlocker_locker::{example_issuer, repository};

/// Allowed clock difference when checking validity windows.
pub const VALIDITY_SKEW_SECS: u64 = 60;

/// Why a locker call failed. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// The locker node could not be reached or is not the pinned node.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The locker refused; for a fetch, `refusal` says exactly why.
    #[error("the locker refused {action}: {message}")]
    Refused {
        /// What was asked.
        action: &'static str,
        /// The gRPC code.
        code: Code,
        /// The locker's message.
        message: String,
        /// A fetch refusal's reason.
        refusal: Option<RefusalCode>,
    },
    /// The locker (or the bank) answered with something that does not verify.
    #[error("{action}: invalid answer: {reason}")]
    BadAnswer {
        /// What was asked.
        action: &'static str,
        /// Why.
        reason: String,
    },
    /// A local input is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The passkey could not answer.
    #[error("passkey: {0}")]
    Passkey(String),
    /// Waiting for the bank's approval timed out.
    #[error(
        "no bank approval after {waited_secs} s (bank session {bank_session_id}: {last_status})"
    )]
    ApprovalTimeout {
        /// Seconds waited.
        waited_secs: u64,
        /// The bank's session staff approve.
        bank_session_id: String,
        /// The bank's last answer.
        last_status: String,
    },
}

impl DocError {
    /// The fetch refusal reason, if this is one.
    pub fn refusal(&self) -> Option<RefusalCode> {
        match self {
            Self::Refused { refusal, .. } => *refusal,
            _ => None,
        }
    }
    /// The gRPC code of a refusal.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn refused(action: &'static str) -> impl FnOnce(tonic::Status) -> DocError {
    move |s| DocError::Refused {
        action,
        code: s.code(),
        message: s.message().lines().next().unwrap_or("").to_owned(),
        refusal: RefusalCode::of_status(&s),
    }
}

/// Reads a principal key file (64 hex characters).
pub fn load_key(path: &Path) -> Result<PrincipalKey, DocError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| DocError::Invalid(format!("key file {}: {e}", path.display())))?,
    );
    PrincipalKey::from_hex(&text).ok_or_else(|| {
        DocError::Invalid(format!(
            "key file {} does not hold a valid key (64 hex characters)",
            path.display()
        ))
    })
}

/// Writes a NEW key file (hex, mode 0600); refuses to overwrite.
pub fn save_key(key: &PrincipalKey, path: &Path) -> Result<(), DocError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| DocError::Invalid(format!("key file {}: {e}", path.display()));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(io)?;
    let hex = key.to_hex();
    f.write_all(hex.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(io)
}

/// The locker node (pinned from the trustees file).
#[derive(Debug, Clone)]
pub struct LockerClient {
    info: TrusteeInfo,
}

/// An issuer as the locker's registry lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuerEntry {
    /// Id.
    pub issuer_id: String,
    /// Name.
    pub name: String,
    /// Document types.
    pub doc_types: Vec<String>,
    /// "push", "pull" or "hosted".
    pub mode: String,
    /// "pending", "approved" or "suspended".
    pub state: String,
    /// The key its credentials verify under (hex).
    pub signing_key: String,
    /// Fingerprint of its request key ([`ids::key_fingerprint`]): what the operator approves.
    pub key_fingerprint: String,
    /// Repository endpoint (pull issuers).
    pub pull_endpoint: String,
    /// Staff id of the last decision.
    pub decided_by: String,
}

impl IssuerEntry {
    fn from_pb(i: pb::IssuerInfo) -> Result<Self, DocError> {
        let key = decode_public_key(&i.signing_key).map_err(|_| DocError::BadAnswer {
            action: "get_issuer",
            reason: "signing key".into(),
        })?;
        Ok(Self {
            issuer_id: i.issuer_id,
            name: i.name,
            doc_types: i.doc_types,
            mode: i.mode,
            state: i.state,
            signing_key: dlocker_proto::keys::public_key_hex(&key),
            key_fingerprint: fingerprint_of(&i.request_key, "get_issuer")?,
            pull_endpoint: i.pull_endpoint,
            decided_by: i.decided_by,
        })
    }
    /// The signing key.
    pub fn key(&self) -> Option<PublicKey> {
        dlocker_proto::keys::public_key_from_hex(&self.signing_key).ok()
    }
}

/// The key fingerprint of SEC1 key bytes from the locker.
fn fingerprint_of(key: &[u8], action: &'static str) -> Result<String, DocError> {
    decode_public_key(key)
        .map(|k| ids::key_fingerprint(&k))
        .map_err(|_| DocError::BadAnswer {
            action,
            reason: "registered key".into(),
        })
}

/// A requester as the registry lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequesterEntry {
    /// Id.
    pub requester_id: String,
    /// Name.
    pub name: String,
    /// "pending", "approved" or "suspended".
    pub state: String,
    /// Staff id of the last decision.
    pub decided_by: String,
    /// Fingerprint of its key ([`ids::key_fingerprint`]): what the operator approves.
    pub key_fingerprint: String,
}

/// The status of a credential in its status list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredentialStatus {
    /// The bit is not set.
    Valid,
    /// The bit is set: revoked.
    Revoked,
    /// No status entry (a self-attested upload).
    NotApplicable,
}

/// What [`LockerClient::verify`] found. `ok` is true only if every check passed.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// All checks passed.
    pub ok: bool,
    /// Credential id.
    pub credential_id: String,
    /// Document URI.
    pub document_uri: String,
    /// Issuer id (`self` for an upload).
    pub issuer_id: String,
    /// Issuer name.
    pub issuer_name: String,
    /// Issuer registry state ("approved", "suspended", "pending", "unknown", "holder").
    pub issuer_state: String,
    /// Signature check.
    pub signature_valid: bool,
    /// Holder id.
    pub holder_id: String,
    /// Holder key (hex) from `cnf`.
    pub holder_key: String,
    /// Holder key JWK thumbprint.
    pub holder_key_thumbprint: String,
    /// Status.
    pub status: CredentialStatus,
    /// Status entry, as `list url#index`.
    pub status_entry: String,
    /// Unix seconds.
    pub valid_from: u64,
    /// Unix seconds.
    pub valid_until: Option<u64>,
    /// Within its validity window now.
    pub in_validity_period: bool,
    /// Claims.
    pub claims: BTreeMap<String, String>,
    /// Everything that failed.
    pub problems: Vec<String>,
}

impl LockerClient {
    /// The locker on `node` (normally `TrusteeSet::bank()`).
    pub fn new(node: &TrusteeInfo) -> Self {
        Self { info: node.clone() }
    }

    /// The node.
    pub fn node(&self) -> &TrusteeInfo {
        &self.info
    }

    /// The locker's id (the pinned node id).
    pub fn locker_id(&self) -> &str {
        &self.info.node_id
    }

    async fn client(&self) -> Result<DocumentServiceClient<Channel>, DocError> {
        let ch = connect_channel(&self.info).await?;
        Ok(DocumentServiceClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// The locker's info.
    pub async fn info(&self) -> Result<pb::LockerInfo, DocError> {
        Ok(self
            .client()
            .await?
            .get_locker_info(pb::GetLockerInfoRequest {})
            .await
            .map_err(refused("get_locker_info"))?
            .into_inner())
    }

    /// One issuer's registry entry.
    pub async fn issuer(&self, issuer_id: &str) -> Result<IssuerEntry, DocError> {
        let i = self
            .client()
            .await?
            .get_issuer(pb::GetIssuerRequest {
                issuer_id: issuer_id.to_owned(),
            })
            .await
            .map_err(refused("get_issuer"))?
            .into_inner();
        IssuerEntry::from_pb(i)
    }

    /// An issuer's status list, verified under the locker's PINNED key; returns it with its
    /// signed credential.
    pub async fn status_list(
        &self,
        issuer_id: &str,
        list: u32,
    ) -> Result<(StatusList, String), DocError> {
        let r = self
            .client()
            .await?
            .get_status_list(pb::GetStatusListRequest {
                issuer_id: issuer_id.to_owned(),
                list,
            })
            .await
            .map_err(refused("get_status_list"))?
            .into_inner();
        let sl = status_list::verify_list(
            &r.credential_jws,
            &self.info.public_key,
            dlocker_proto::time::unix_now(),
            VALIDITY_SKEW_SECS,
        )
        .map_err(|e| DocError::BadAnswer {
            action: "get_status_list",
            reason: e.to_string(),
        })?;
        if sl.locker_id != self.info.node_id {
            return Err(DocError::BadAnswer {
                action: "get_status_list",
                reason: "issued by another locker".into(),
            });
        }
        Ok((sl, r.credential_jws))
    }

    /// The status of `entry` (fetching its list).
    pub async fn status_of(&self, issuer_id: &str, entry: &StatusEntry) -> Result<bool, DocError> {
        let (_, _, list) = status_list::parse_list_url(&entry.list_url).ok_or_else(|| {
            DocError::Invalid(format!(
                "{} is not a status list of this locker",
                entry.list_url
            ))
        })?;
        let (sl, _) = self.status_list(issuer_id, list).await?;
        sl.is_revoked(entry).map_err(|e| DocError::BadAnswer {
            action: "status",
            reason: e.to_string(),
        })
    }

    /// Verifies a credential: structure, issuer (registry state and key), signature, validity
    /// window, status bit. Never fails on a bad credential — the report says what is wrong;
    /// errors are for an unreachable locker.
    pub async fn verify(&self, jws: &str) -> Result<VerifyReport, DocError> {
        let now = dlocker_proto::time::unix_now();
        let jws = jws.trim();
        let mut r = VerifyReport {
            ok: false,
            credential_id: String::new(),
            document_uri: String::new(),
            issuer_id: String::new(),
            issuer_name: String::new(),
            issuer_state: "unknown".into(),
            signature_valid: false,
            holder_id: String::new(),
            holder_key: String::new(),
            holder_key_thumbprint: String::new(),
            status: CredentialStatus::NotApplicable,
            status_entry: String::new(),
            valid_from: 0,
            valid_until: None,
            in_validity_period: false,
            claims: BTreeMap::new(),
            problems: Vec::new(),
        };
        let (p, c) = match vc::parse(jws) {
            Ok(x) => x,
            Err(e) => {
                r.problems.push(format!("not a valid credential: {e}"));
                return Ok(r);
            }
        };
        fill(&mut r, &c);
        let key = match &c.issued_by {
            IssuedBy::Holder(_) => {
                r.issuer_state = "holder (self-attested)".into();
                Some(c.holder_key)
            }
            IssuedBy::Issuer(id) => match self.issuer(id).await {
                Ok(i) => {
                    r.issuer_state = i.state.clone();
                    if r.issuer_name.is_empty() {
                        r.issuer_name = i.name.clone();
                    }
                    if i.state != "approved" {
                        r.problems.push(format!(
                            "issuer {id} is {} by the locker's operator",
                            i.state
                        ));
                    }
                    i.key()
                }
                Err(DocError::Refused {
                    code: Code::NotFound,
                    ..
                }) => {
                    r.problems
                        .push(format!("issuer {id} is not registered at this locker"));
                    None
                }
                Err(e) => return Err(e),
            },
        };
        if let Some(k) = key {
            match p.verify(&k) {
                Ok(_) => r.signature_valid = true,
                Err(e) => r.problems.push(format!("signature: {e}")),
            }
        }
        match c.check_time(now, VALIDITY_SKEW_SECS) {
            Ok(()) => r.in_validity_period = true,
            Err(e) => r.problems.push(format!("validity: {e}")),
        }
        if let Some(entry) = &c.status {
            match self.status_of(c.issuer_id(), entry).await {
                Ok(true) => {
                    r.status = CredentialStatus::Revoked;
                    r.problems
                        .push("revoked: its bit is set in the issuer's status list".into());
                }
                Ok(false) => r.status = CredentialStatus::Valid,
                Err(e) => r.problems.push(format!("status: {e}")),
            }
        }
        r.ok = r.problems.is_empty();
        Ok(r)
    }
}

fn fill(r: &mut VerifyReport, c: &Credential) {
    r.credential_id = c.credential_id.clone();
    r.document_uri = c.uri.to_string();
    r.issuer_id = c.issuer_id().to_owned();
    r.issuer_name = c.issuer_name.clone().unwrap_or_default();
    r.holder_id = c.holder_id.clone();
    r.holder_key = dlocker_proto::keys::public_key_hex(&c.holder_key);
    r.holder_key_thumbprint = jwk::Jwk::from_public_key(&c.holder_key).thumbprint();
    r.status_entry = c
        .status
        .as_ref()
        .map(|s| format!("{}#{}", s.list_url, s.index))
        .unwrap_or_default();
    r.valid_from = c.valid_from;
    r.valid_until = c.valid_until;
    r.claims = c.claims.as_map().clone();
}

/// The owner's one touch for a locker holder action (`docs/protocol.md` §12a): the challenge
/// has the locker's single `(node id, nonce)` entry and authorizes `key` (the holder key for
/// holder-register, the new key for reissue), so a relay cannot put its own key under the touch.
/// Returns the assertion JSON.
async fn locker_touch(
    auth: &mut dyn Passkey,
    locker: &LockerClient,
    action: OwnerAction,
    holder_id: &str,
    key: &PublicKey,
    ch: &pb::OwnerChallenge,
) -> Result<String, DocError> {
    let node_id = if ch.node_id.is_empty() {
        locker.locker_id()
    } else {
        ch.node_id.as_str()
    };
    let nonce =
        ceremony::trustee_nonce(node_id, &ch.nonce).map_err(|reason| DocError::BadAnswer {
            action: "begin_owner_challenge",
            reason,
        })?;
    let touch = ceremony::assert(
        auth,
        action,
        holder_id,
        &encode_public_key(key),
        vec![nonce],
        &ch.request_options_json,
    )
    .await
    .map_err(|e| DocError::Passkey(e.to_string()))?;
    Ok(touch.response_json)
}

/// A holder: the wallet app with its wallet key.
#[derive(Debug, Clone)]
pub struct HolderClient {
    locker: LockerClient,
    holder_id: String,
    key: PrincipalKey,
}

impl HolderClient {
    /// The wallet `holder_id` (its wallet id at the bank) with its wallet key.
    pub fn new(locker: LockerClient, holder_id: &str, key: PrincipalKey) -> Self {
        Self {
            locker,
            holder_id: holder_id.to_owned(),
            key,
        }
    }

    /// The wallet key.
    pub fn key(&self) -> &PrincipalKey {
        &self.key
    }

    /// The holder id.
    pub fn holder_id(&self) -> &str {
        &self.holder_id
    }

    fn sign(&self, action: LockerAction, p: [u8; 32]) -> Vec<u8> {
        request::sign(
            self.key.signing_key(),
            self.locker.locker_id(),
            action,
            &self.holder_id,
            p,
        )
    }

    /// Binds the wallet key to the holder: one touch of the owner's passkey whose challenge covers
    /// this key (action holder-register), and a request signed with the key.
    pub async fn register(&self, auth: &mut dyn Passkey) -> Result<pb::HolderInfo, DocError> {
        let mut c = self.locker.client().await?;
        let ch = c
            .begin_owner_challenge(pb::BeginOwnerChallengeRequest {
                holder_id: self.holder_id.clone(),
                purpose: "register".into(),
            })
            .await
            .map_err(refused("begin_owner_challenge"))?
            .into_inner();
        let pk = self.key.public_key();
        let assertion = locker_touch(
            auth,
            &self.locker,
            OwnerAction::HolderRegister,
            &self.holder_id,
            &pk,
            &ch,
        )
        .await?;
        let p = params::register_holder(&self.holder_id, &pk, &ch.challenge_id);
        Ok(c.register_holder(pb::RegisterHolderRequest {
            request_encoded: self.sign(LockerAction::RegisterHolder, p),
            holder_id: self.holder_id.clone(),
            holder_key: encode_public_key(&pk).to_vec(),
            challenge_id: ch.challenge_id,
            assertion_json: assertion,
        })
        .await
        .map_err(refused("register_holder"))?
        .into_inner())
    }

    /// Every document (uploads without their credential).
    pub async fn documents(&self) -> Result<Vec<pb::LockerDocument>, DocError> {
        self.list("").await
    }

    /// One document with its credential.
    pub async fn document(&self, uri: &str) -> Result<pb::LockerDocument, DocError> {
        self.list(uri)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| DocError::BadAnswer {
                action: "list_documents",
                reason: "empty answer".into(),
            })
    }

    async fn list(&self, uri: &str) -> Result<Vec<pb::LockerDocument>, DocError> {
        let p = params::list_documents(&self.holder_id, uri);
        Ok(self
            .locker
            .client()
            .await?
            .list_documents(pb::ListDocumentsRequest {
                request_encoded: self.sign(LockerAction::ListDocuments, p),
                holder_id: self.holder_id.clone(),
                document_uri: uri.to_owned(),
            })
            .await
            .map_err(refused("list_documents"))?
            .into_inner()
            .documents)
    }

    /// Uploads a file as a self-attested document of `doc_type`, signed with the wallet key.
    pub async fn upload(
        &self,
        doc_type: &str,
        upload: &Upload,
    ) -> Result<pb::LockerDocument, DocError> {
        let uri = ids::DocUri::new(ids::SELF_ISSUER, doc_type)
            .map_err(|e| DocError::Invalid(e.to_string()))?;
        let jws = vc::self_attest(
            &self.holder_id,
            &uri,
            upload,
            self.key.signing_key(),
            dlocker_proto::time::unix_now(),
        );
        let p = params::upload_document(&self.holder_id, &jws);
        Ok(self
            .locker
            .client()
            .await?
            .upload_document(pb::UploadDocumentRequest {
                request_encoded: self.sign(LockerAction::UploadDocument, p),
                holder_id: self.holder_id.clone(),
                credential_jws: jws,
            })
            .await
            .map_err(refused("upload_document"))?
            .into_inner())
    }

    /// Asks the locker to pull a document from `issuer_id`'s repository.
    pub async fn pull(
        &self,
        issuer_id: &str,
        doc_type: &str,
        lookup: &BTreeMap<String, String>,
    ) -> Result<pb::LockerDocument, DocError> {
        let p = params::pull_document(&self.holder_id, issuer_id, doc_type, lookup);
        Ok(self
            .locker
            .client()
            .await?
            .pull_document(pb::HolderPullRequest {
                request_encoded: self.sign(LockerAction::PullDocument, p),
                holder_id: self.holder_id.clone(),
                issuer_id: issuer_id.to_owned(),
                doc_type: doc_type.to_owned(),
                lookup: lookup.clone().into_iter().collect(),
            })
            .await
            .map_err(refused("pull_document"))?
            .into_inner())
    }

    /// Asks `issuer_id` to attest the upload `upload_uri`.
    pub async fn request_attestation(
        &self,
        upload_uri: &str,
        issuer_id: &str,
    ) -> Result<pb::IssuerTask, DocError> {
        let p = params::request_attestation(&self.holder_id, upload_uri, issuer_id);
        Ok(self
            .locker
            .client()
            .await?
            .request_attestation(pb::RequestAttestationRequest {
                request_encoded: self.sign(LockerAction::RequestAttestation, p),
                holder_id: self.holder_id.clone(),
                upload_uri: upload_uri.to_owned(),
                issuer_id: issuer_id.to_owned(),
            })
            .await
            .map_err(refused("request_attestation"))?
            .into_inner())
    }

    /// Consents to `requester_id` fetching `uris` for `purpose` until `not_after` (unix s).
    pub async fn grant_consent(
        &self,
        requester_id: &str,
        uris: &[String],
        purpose: &str,
        not_after: u64,
    ) -> Result<pb::ConsentRecord, DocError> {
        let p = params::grant_consent(&self.holder_id, requester_id, uris, purpose, not_after);
        Ok(self
            .locker
            .client()
            .await?
            .grant_consent(pb::GrantConsentRequest {
                request_encoded: self.sign(LockerAction::GrantConsent, p),
                holder_id: self.holder_id.clone(),
                requester_id: requester_id.to_owned(),
                document_uris: uris.to_vec(),
                purpose: purpose.to_owned(),
                not_after,
            })
            .await
            .map_err(refused("grant_consent"))?
            .into_inner())
    }

    /// Revokes a consent.
    pub async fn revoke_consent(&self, consent_id: &str) -> Result<pb::ConsentRecord, DocError> {
        let p = params::revoke_consent(&self.holder_id, consent_id);
        Ok(self
            .locker
            .client()
            .await?
            .revoke_consent(pb::RevokeConsentRequest {
                request_encoded: self.sign(LockerAction::RevokeConsent, p),
                holder_id: self.holder_id.clone(),
                consent_id: consent_id.to_owned(),
            })
            .await
            .map_err(refused("revoke_consent"))?
            .into_inner())
    }

    /// Every consent.
    pub async fn consents(&self) -> Result<Vec<pb::ConsentRecord>, DocError> {
        let p = params::list_consents(&self.holder_id);
        Ok(self
            .locker
            .client()
            .await?
            .list_consents(pb::ListConsentsRequest {
                request_encoded: self.sign(LockerAction::ListConsents, p),
                holder_id: self.holder_id.clone(),
            })
            .await
            .map_err(refused("list_consents"))?
            .into_inner()
            .consents)
    }
}

/// A bank approval obtained for a new wallet key.
#[derive(Debug, Clone)]
pub struct KeyApproval {
    /// The signed `BankApproval` (session key = the new wallet key).
    pub approval: Vec<u8>,
    /// The bank's session staff approved. It is never owner-authenticated, so it blocks nothing
    /// and expires on its own; [`close_key_approval`] closes it earlier (one passkey touch).
    pub bank_session_id: String,
    /// Staff who approved.
    pub approvers: Vec<String>,
}

/// Asks the bank to approve `new_key` for `wallet_id`: opens a session at the bank towards the
/// new key (nothing is released: only the bank takes part) and polls for the approval its
/// staff sign after verifying the customer, as in a recovery. `on_session` gets the bank's
/// session id for staff (`dlocker recoveries approve SESSION`).
///
/// Right after a recovery whose device key already is the new wallet key, the recovery's own
/// approval can be used instead.
pub async fn request_key_approval(
    bank: &TrusteeInfo,
    wallet_id: &str,
    new_key: &PublicKey,
    poll_interval: Duration,
    timeout: Duration,
    on_session: &(dyn Fn(&str) + Sync),
) -> Result<KeyApproval, DocError> {
    let ch = connect_channel(bank).await?;
    let opened = recovery_client(ch.clone())
        .open_recovery(pb::OpenRecoveryRequest {
            wallet_id: wallet_id.to_owned(),
            session_key: encode_public_key(new_key).to_vec(),
        })
        .await
        .map_err(refused("open_recovery (bank approval session)"))?
        .into_inner();
    on_session(&opened.session_id);
    let started = crate::runtime::Instant::now();
    let wait_secs = crate::transport::approval_wait_secs(bank);
    loop {
        let asked = crate::runtime::Instant::now();
        let ans = staff_client(ch.clone())
            .get_approval(pb::GetApprovalRequest {
                wait_secs,
                wallet_id: wallet_id.to_owned(),
                session_key: encode_public_key(new_key).to_vec(),
            })
            .await;
        let last = match ans {
            Ok(r) => {
                let bytes = r.into_inner().bank_approval_encoded;
                let signed =
                    Signed::<BankApproval>::decode(&bytes).map_err(|e| DocError::BadAnswer {
                        action: "get_approval",
                        reason: e.to_string(),
                    })?;
                let a = signed.body();
                if a.wallet_id != wallet_id
                    || a.session_key != *new_key
                    || a.bank_node_id != bank.node_id
                {
                    return Err(DocError::BadAnswer {
                        action: "get_approval",
                        reason: "approval for another wallet, key or bank".into(),
                    });
                }
                return Ok(KeyApproval {
                    approvers: a.approvers.clone(),
                    approval: bytes,
                    bank_session_id: opened.session_id,
                });
            }
            Err(s) if is_refusal(&s, NodeRefusal::AwaitingApproval) => describe_status(&s),
            Err(s) => return Err(refused("get_approval")(s)),
        };
        if started.elapsed() >= timeout {
            return Err(DocError::ApprovalTimeout {
                waited_secs: started.elapsed().as_secs(),
                bank_session_id: opened.session_id,
                last_status: last,
            });
        }
        if crate::transport::answered_at_once(asked, wait_secs) {
            crate::runtime::sleep(poll_interval).await;
        }
    }
}

/// Closes the bank session [`request_key_approval`] opened (the owner cancels it with one touch
/// of the passkey: action cancel, towards the new key). Optional: the session is never
/// owner-authenticated, so it blocks nothing and expires on its own within minutes.
pub async fn close_key_approval(
    bank: &TrusteeInfo,
    approval: &KeyApproval,
    auth: &mut dyn Passkey,
) -> Result<(), DocError> {
    // What the cancel touch authorizes: the approval's wallet and key (the bank recomputes the
    // challenge from its own record of the session).
    let signed =
        Signed::<BankApproval>::decode(&approval.approval).map_err(|e| DocError::BadAnswer {
            action: "close_key_approval",
            reason: e.to_string(),
        })?;
    let a = signed.body();
    let bank_session_id = approval.bank_session_id.as_str();
    let mut c = recovery_client(connect_channel(bank).await?);
    let begin = c
        .begin_owner_cancel(pb::BeginOwnerCancelRequest {
            session_id: bank_session_id.to_owned(),
        })
        .await
        .map_err(refused("begin_owner_cancel"))?
        .into_inner();
    let nonce = ceremony::trustee_nonce(&bank.node_id, &begin.nonce).map_err(|reason| {
        DocError::BadAnswer {
            action: "begin_owner_cancel",
            reason,
        }
    })?;
    let touch = ceremony::assert(
        auth,
        OwnerAction::Cancel,
        &a.wallet_id,
        &encode_public_key(&a.session_key),
        vec![nonce],
        &begin.request_options_json,
    )
    .await
    .map_err(|e| DocError::Passkey(e.to_string()))?;
    c.cancel_recovery(pb::CancelRecoveryRequest {
        session_id: bank_session_id.to_owned(),
        authority: Some(pb::cancel_recovery_request::Authority::OwnerAssertionJson(
            touch.response_json,
        )),
        nonces: touch.nonces,
    })
    .await
    .map_err(refused("cancel_recovery"))?;
    Ok(())
}

/// Re-issues every document of `holder_id` to `new_key`, with a bank approval bound to that
/// key and one touch of the owner's passkey whose challenge covers `new_key` (action reissue).
/// `carry_over_consents`: keep the holder's consents (they then
/// cover the new credentials) or end them.
pub async fn reissue(
    locker: &LockerClient,
    holder_id: &str,
    new_key: &PrincipalKey,
    bank_approval: &[u8],
    auth: &mut dyn Passkey,
    carry_over_consents: bool,
) -> Result<pb::ReissueResponse, DocError> {
    let mut c = locker.client().await?;
    let ch = c
        .begin_owner_challenge(pb::BeginOwnerChallengeRequest {
            holder_id: holder_id.to_owned(),
            purpose: "reissue".into(),
        })
        .await
        .map_err(refused("begin_owner_challenge"))?
        .into_inner();
    let pk = new_key.public_key();
    let assertion = locker_touch(auth, locker, OwnerAction::Reissue, holder_id, &pk, &ch).await?;
    let p = params::reissue(
        holder_id,
        &pk,
        bank_approval,
        &ch.challenge_id,
        carry_over_consents,
    );
    let resp = c
        .reissue(pb::ReissueRequest {
            request_encoded: request::sign(
                new_key.signing_key(),
                locker.locker_id(),
                LockerAction::Reissue,
                holder_id,
                p,
            ),
            holder_id: holder_id.to_owned(),
            new_holder_key: encode_public_key(&pk).to_vec(),
            bank_approval_encoded: bank_approval.to_vec(),
            challenge_id: ch.challenge_id,
            assertion_json: assertion,
            carry_over_consents,
        })
        .await
        .map_err(refused("reissue"))?
        .into_inner();
    // Every new credential must be bound to the new key.
    for d in &resp.reissued {
        let (_, cred) = vc::parse(&d.credential_jws).map_err(|e| DocError::BadAnswer {
            action: "reissue",
            reason: e.to_string(),
        })?;
        if cred.holder_key != pk {
            return Err(DocError::BadAnswer {
                action: "reissue",
                reason: format!("{} is not bound to the new key", d.document_uri),
            });
        }
    }
    Ok(resp)
}

/// Right after a recovery: re-issues every document of the recovered wallet to the new
/// device's key ([`crate::Recovered::device_key`], the recovery's `R`), with the bank approval
/// the recovery already obtained for `R` — no second approval — and one touch of the owner's
/// passkey. Returns the new wallet key (keep it in the device's keystore) and the locker's answer.
///
/// `wallet_id` is the recovered wallet's (`recovered.manifest.wallet_id()`), `device` its
/// [`crate::Recovered::device_key`].
pub async fn reissue_to_recovered_device(
    locker: &LockerClient,
    wallet_id: &str,
    device: &crate::DeviceKey,
    auth: &mut dyn Passkey,
    carry_over_consents: bool,
) -> Result<(PrincipalKey, pb::ReissueResponse), DocError> {
    let key = PrincipalKey::from_signing_key(k256::ecdsa::SigningKey::from(device.secret_key()));
    let resp = reissue(
        locker,
        wallet_id,
        &key,
        device.bank_approval(),
        auth,
        carry_over_consents,
    )
    .await?;
    Ok((key, resp))
}

/// An issuer with its request key.
#[derive(Debug, Clone)]
pub struct IssuerClient {
    locker: LockerClient,
    issuer_id: String,
    key: PrincipalKey,
}

impl IssuerClient {
    /// Issuer `issuer_id` signing requests (and, unless hosted, credentials) with `key`.
    pub fn new(locker: LockerClient, issuer_id: &str, key: PrincipalKey) -> Self {
        Self {
            locker,
            issuer_id: issuer_id.to_owned(),
            key,
        }
    }

    fn sign(&self, action: LockerAction, p: [u8; 32]) -> Vec<u8> {
        request::sign(
            self.key.signing_key(),
            self.locker.locker_id(),
            action,
            &self.issuer_id,
            p,
        )
    }

    /// Registers (pending until the operator approves). `hosted`: the locker keeps the signing
    /// key; `pull_endpoint`: an IssuerRepository URL (empty for none).
    pub async fn register(
        &self,
        name: &str,
        doc_types: &[String],
        hosted: bool,
        pull_endpoint: &str,
    ) -> Result<IssuerEntry, DocError> {
        let pk = self.key.public_key();
        let p =
            params::register_issuer(&self.issuer_id, name, doc_types, &pk, hosted, pull_endpoint);
        let i = self
            .locker
            .client()
            .await?
            .register_issuer(pb::RegisterIssuerRequest {
                request_encoded: self.sign(LockerAction::RegisterIssuer, p),
                issuer_id: self.issuer_id.clone(),
                name: name.to_owned(),
                doc_types: doc_types.to_vec(),
                request_key: encode_public_key(&pk).to_vec(),
                hosted_signing: hosted,
                pull_endpoint: pull_endpoint.to_owned(),
            })
            .await
            .map_err(refused("register_issuer"))?
            .into_inner();
        IssuerEntry::from_pb(i)
    }

    /// A hosted issuer: the locker signs `claims` for `holder_id`.
    pub async fn issue(
        &self,
        holder_id: &str,
        doc_type: &str,
        claims: &Claims,
        valid_until: u64,
    ) -> Result<pb::LockerDocument, DocError> {
        let p = params::issue_document(
            &self.issuer_id,
            holder_id,
            doc_type,
            claims.as_map(),
            valid_until,
        );
        Ok(self
            .locker
            .client()
            .await?
            .issue_document(pb::IssueDocumentRequest {
                request_encoded: self.sign(LockerAction::IssueDocument, p),
                issuer_id: self.issuer_id.clone(),
                holder_id: holder_id.to_owned(),
                doc_type: doc_type.to_owned(),
                claims: claims.as_map().clone().into_iter().collect(),
                valid_until,
            })
            .await
            .map_err(refused("issue_document"))?
            .into_inner())
    }

    /// An own-key issuer: reserve, sign `claims` with the own key, push.
    pub async fn push(
        &self,
        holder_id: &str,
        doc_type: &str,
        claims: &Claims,
        valid_until: u64,
    ) -> Result<pb::LockerDocument, DocError> {
        let p = params::reserve_document(&self.issuer_id, holder_id, doc_type, valid_until);
        let draft = self
            .locker
            .client()
            .await?
            .reserve_document(pb::ReserveDocumentRequest {
                request_encoded: self.sign(LockerAction::ReserveDocument, p),
                issuer_id: self.issuer_id.clone(),
                holder_id: holder_id.to_owned(),
                doc_type: doc_type.to_owned(),
                valid_until,
            })
            .await
            .map_err(refused("reserve_document"))?
            .into_inner();
        self.sign_and_push(&draft, claims).await
    }

    /// Signs a draft (from a reservation or a task) and pushes it.
    pub async fn sign_and_push(
        &self,
        draft: &pb::DocumentDraft,
        claims: &Claims,
    ) -> Result<pb::LockerDocument, DocError> {
        let d = dlocker_locker::wire::draft_from_pb(draft).map_err(|e| DocError::BadAnswer {
            action: "draft",
            reason: e.to_string(),
        })?;
        let jws = vc::issue(
            &d,
            claims,
            self.key.signing_key(),
            dlocker_proto::time::unix_now(),
        );
        let p = params::push_document(&self.issuer_id, &jws);
        Ok(self
            .locker
            .client()
            .await?
            .push_document(pb::PushDocumentRequest {
                request_encoded: self.sign(LockerAction::PushDocument, p),
                issuer_id: self.issuer_id.clone(),
                credential_jws: jws,
            })
            .await
            .map_err(refused("push_document"))?
            .into_inner())
    }

    /// Pending tasks (attestations, re-issues).
    pub async fn tasks(&self) -> Result<Vec<pb::IssuerTask>, DocError> {
        let p = params::list_issuer_tasks(&self.issuer_id);
        Ok(self
            .locker
            .client()
            .await?
            .list_issuer_tasks(pb::ListIssuerTasksRequest {
                request_encoded: self.sign(LockerAction::ListIssuerTasks, p),
                issuer_id: self.issuer_id.clone(),
            })
            .await
            .map_err(refused("list_issuer_tasks"))?
            .into_inner()
            .tasks)
    }

    /// Grants (with `claims`; an own-key issuer signs them here) or rejects an attestation.
    pub async fn decide_attestation(
        &self,
        task: &pb::IssuerTask,
        grant: bool,
        claims: &Claims,
        hosted: bool,
        reason: &str,
    ) -> Result<pb::DecideAttestationResponse, DocError> {
        let (jws, claims_sent) = match (grant, hosted, &task.draft) {
            (true, false, Some(draft)) => {
                let d = dlocker_locker::wire::draft_from_pb(draft).map_err(|e| {
                    DocError::BadAnswer {
                        action: "draft",
                        reason: e.to_string(),
                    }
                })?;
                (
                    vc::issue(
                        &d,
                        claims,
                        self.key.signing_key(),
                        dlocker_proto::time::unix_now(),
                    ),
                    BTreeMap::new(),
                )
            }
            (true, true, _) => (String::new(), claims.as_map().clone()),
            (true, false, None) => {
                return Err(DocError::Invalid("the task has no draft to sign".into()));
            }
            (false, _, _) => (String::new(), BTreeMap::new()),
        };
        let p = params::decide_attestation(
            &self.issuer_id,
            &task.task_id,
            grant,
            &jws,
            &claims_sent,
            reason,
        );
        Ok(self
            .locker
            .client()
            .await?
            .decide_attestation(pb::DecideAttestationRequest {
                request_encoded: self.sign(LockerAction::DecideAttestation, p),
                issuer_id: self.issuer_id.clone(),
                task_id: task.task_id.clone(),
                grant,
                credential_jws: jws,
                claims: claims_sent.into_iter().collect(),
                reason: reason.to_owned(),
            })
            .await
            .map_err(refused("decide_attestation"))?
            .into_inner())
    }
}

/// A requester with its key.
#[derive(Debug, Clone)]
pub struct RequesterClient {
    locker: LockerClient,
    requester_id: String,
    key: PrincipalKey,
}

/// A fetched, verified credential.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The compact JWS.
    pub credential_jws: String,
    /// Its content.
    pub credential: Credential,
    /// The verification report.
    pub report: VerifyReport,
}

impl RequesterClient {
    /// Requester `requester_id` signing with `key`.
    pub fn new(locker: LockerClient, requester_id: &str, key: PrincipalKey) -> Self {
        Self {
            locker,
            requester_id: requester_id.to_owned(),
            key,
        }
    }

    /// Registers (pending until the operator approves).
    pub async fn register(&self, name: &str) -> Result<pb::RequesterInfo, DocError> {
        let pk = self.key.public_key();
        let p = params::register_requester(&self.requester_id, name, &pk);
        Ok(self
            .locker
            .client()
            .await?
            .register_requester(pb::RegisterRequesterRequest {
                request_encoded: request::sign(
                    self.key.signing_key(),
                    self.locker.locker_id(),
                    LockerAction::RegisterRequester,
                    &self.requester_id,
                    p,
                ),
                requester_id: self.requester_id.clone(),
                name: name.to_owned(),
                public_key: encode_public_key(&pk).to_vec(),
            })
            .await
            .map_err(refused("register_requester"))?
            .into_inner())
    }

    /// The raw `FetchDocument` answer (not verified here).
    pub async fn fetch_raw(
        &self,
        uri: &str,
        consent_id: &str,
    ) -> Result<pb::FetchDocumentResponse, DocError> {
        let p = params::fetch_document(&self.requester_id, uri, consent_id);
        Ok(self
            .locker
            .client()
            .await?
            .fetch_document(pb::FetchDocumentRequest {
                request_encoded: request::sign(
                    self.key.signing_key(),
                    self.locker.locker_id(),
                    LockerAction::FetchDocument,
                    &self.requester_id,
                    p,
                ),
                requester_id: self.requester_id.clone(),
                document_uri: uri.to_owned(),
                consent_id: consent_id.to_owned(),
            })
            .await
            .map_err(refused("fetch_document"))?
            .into_inner())
    }

    /// Fetches `uri` under `consent_id` and verifies it independently (issuer key from the
    /// registry, signature, validity, status list under the pinned locker key).
    pub async fn fetch(&self, uri: &str, consent_id: &str) -> Result<Fetched, DocError> {
        let r = self.fetch_raw(uri, consent_id).await?;
        let report = self.locker.verify(&r.credential_jws).await?;
        if !report.ok {
            return Err(DocError::BadAnswer {
                action: "fetch_document",
                reason: report.problems.join("; "),
            });
        }
        if report.document_uri != uri {
            return Err(DocError::BadAnswer {
                action: "fetch_document",
                reason: "another document was returned".into(),
            });
        }
        let (_, credential) = vc::parse(&r.credential_jws).map_err(|e| DocError::BadAnswer {
            action: "fetch_document",
            reason: e.to_string(),
        })?;
        Ok(Fetched {
            credential_jws: r.credential_jws,
            credential,
            report,
        })
    }
}

/// The bank's locker operator (staff key with the `operator` role).
#[derive(Debug)]
pub struct OperatorClient {
    key: StaffKey,
    locker: LockerClient,
}

impl OperatorClient {
    /// Operator signing with `key` at `locker`.
    pub fn new(key: StaffKey, locker: LockerClient) -> Self {
        Self { key, locker }
    }

    fn staff_request(&self, action: StaffAction, target: &str) -> Vec<u8> {
        self.key.sign_request(crate::staff::new_request(
            self.locker.locker_id(),
            action,
            target,
        ))
    }

    /// Every issuer and requester.
    pub async fn list(&self) -> Result<(Vec<IssuerEntry>, Vec<RequesterEntry>), DocError> {
        let r = self
            .locker
            .client()
            .await?
            .list_registry(pb::ListRegistryRequest {
                staff_request_encoded: self.staff_request(StaffAction::ListRegistry, ""),
            })
            .await
            .map_err(refused("list_registry"))?
            .into_inner();
        let issuers = r
            .issuers
            .into_iter()
            .map(IssuerEntry::from_pb)
            .collect::<Result<Vec<_>, _>>()?;
        let requesters = r
            .requesters
            .into_iter()
            .map(|q| {
                Ok(RequesterEntry {
                    key_fingerprint: fingerprint_of(&q.public_key, "list_registry")?,
                    requester_id: q.requester_id,
                    name: q.name,
                    state: q.state,
                    decided_by: q.decided_by,
                })
            })
            .collect::<Result<Vec<_>, DocError>>()?;
        Ok((issuers, requesters))
    }

    /// Approves `id` bound to the key with `fingerprint` (as the registry lists it, checked
    /// with the organisation out of band): the locker refuses if the registered key differs.
    pub async fn approve(
        &self,
        action: StaffAction,
        id: &str,
        fingerprint: &str,
    ) -> Result<pb::RegistryDecision, DocError> {
        self.decide(action, &ids::approval_target(id, fingerprint))
            .await
    }

    /// Decides (`action`) on `target`: an id to suspend, or `ID:FINGERPRINT` to approve
    /// ([`OperatorClient::approve`]).
    pub async fn decide(
        &self,
        action: StaffAction,
        id: &str,
    ) -> Result<pb::RegistryDecision, DocError> {
        Ok(self
            .locker
            .client()
            .await?
            .decide_registration(pb::DecideRegistrationRequest {
                staff_request_encoded: self.staff_request(action, id),
            })
            .await
            .map_err(refused(action.name()))?
            .into_inner())
    }
}
