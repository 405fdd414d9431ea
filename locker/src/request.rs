//! Signed locker requests: how issuers, holders, requesters and the locker itself authenticate
//! a call.
//!
//! A request is a dLocker signed statement (`dlocker_proto::statement::Signed`, kind
//! [`LockerRequest::KIND`]) whose body names the locker addressed, the action, the principal
//! acting (issuer id, holder id or requester id), a timestamp, a random single-use nonce, and
//! `params`: SHA-256 over `"dlocker/locker/params/v1" ‖ action ‖` the call's parameters in the
//! canonical length-prefixed encoding ([`Params`]). The parameters travel as ordinary protobuf
//! fields; the locker recomputes `params` from them, so protobuf's encoding never enters a
//! signature and no field can be changed in transit. A consent is therefore exactly what the
//! holder signed.

use crate::error::FormatError;
use dlocker_proto::codec::{DecodeError, Reader, Writer};
use dlocker_proto::statement::{MAX_ID_LEN, Signed, StatementBody};
use k256::PublicKey;
use k256::ecdsa::SigningKey;
use rand::RngExt as _;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// Domain-separation label of request parameter digests.
pub const PARAMS_LABEL: &[u8] = b"dlocker/locker/params/v1";
/// Largest encoded request accepted.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024;

/// What a signed request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockerAction {
    /// An issuer registers (signed with the key it registers).
    RegisterIssuer,
    /// A requester registers (signed with the key it registers).
    RegisterRequester,
    /// A holder binds its wallet key (signed with that key).
    RegisterHolder,
    /// An issuer reserves a document to sign and push.
    ReserveDocument,
    /// An issuer pushes a credential it signed.
    PushDocument,
    /// An issuer asks the locker to sign with its hosted key.
    IssueDocument,
    /// A holder asks the locker to pull a document from an issuer's repository.
    PullDocument,
    /// A holder lists its documents.
    ListDocuments,
    /// A holder uploads a self-attested document.
    UploadDocument,
    /// A holder asks an issuer to attest an upload.
    RequestAttestation,
    /// An issuer lists its pending tasks.
    ListIssuerTasks,
    /// An issuer grants or rejects an attestation.
    DecideAttestation,
    /// A holder grants a consent.
    GrantConsent,
    /// A holder revokes a consent.
    RevokeConsent,
    /// A holder lists its consents.
    ListConsents,
    /// A requester fetches a document under a consent.
    FetchDocument,
    /// Re-issue to a new wallet key (signed with the NEW key).
    Reissue,
    /// The locker asks an issuer repository for a document (signed with the locker's key).
    RepositoryPull,
}

impl LockerAction {
    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::RegisterIssuer => 1,
            Self::RegisterRequester => 2,
            Self::RegisterHolder => 3,
            Self::ReserveDocument => 4,
            Self::PushDocument => 5,
            Self::IssueDocument => 6,
            Self::PullDocument => 7,
            Self::ListDocuments => 8,
            Self::UploadDocument => 9,
            Self::RequestAttestation => 10,
            Self::ListIssuerTasks => 11,
            Self::DecideAttestation => 12,
            Self::GrantConsent => 13,
            Self::RevokeConsent => 14,
            Self::ListConsents => 15,
            Self::FetchDocument => 16,
            Self::Reissue => 17,
            Self::RepositoryPull => 18,
        }
    }

    /// From a wire code.
    pub fn from_code(c: u8) -> Result<Self, DecodeError> {
        Ok(match c {
            1 => Self::RegisterIssuer,
            2 => Self::RegisterRequester,
            3 => Self::RegisterHolder,
            4 => Self::ReserveDocument,
            5 => Self::PushDocument,
            6 => Self::IssueDocument,
            7 => Self::PullDocument,
            8 => Self::ListDocuments,
            9 => Self::UploadDocument,
            10 => Self::RequestAttestation,
            11 => Self::ListIssuerTasks,
            12 => Self::DecideAttestation,
            13 => Self::GrantConsent,
            14 => Self::RevokeConsent,
            15 => Self::ListConsents,
            16 => Self::FetchDocument,
            17 => Self::Reissue,
            18 => Self::RepositoryPull,
            _ => return Err(DecodeError::Invalid("locker action")),
        })
    }

    /// A short name for messages and audit.
    pub fn name(self) -> &'static str {
        match self {
            Self::RegisterIssuer => "register_issuer",
            Self::RegisterRequester => "register_requester",
            Self::RegisterHolder => "register_holder",
            Self::ReserveDocument => "reserve_document",
            Self::PushDocument => "push_document",
            Self::IssueDocument => "issue_document",
            Self::PullDocument => "pull_document",
            Self::ListDocuments => "list_documents",
            Self::UploadDocument => "upload_document",
            Self::RequestAttestation => "request_attestation",
            Self::ListIssuerTasks => "list_issuer_tasks",
            Self::DecideAttestation => "decide_attestation",
            Self::GrantConsent => "grant_consent",
            Self::RevokeConsent => "revoke_consent",
            Self::ListConsents => "list_consents",
            Self::FetchDocument => "fetch_document",
            Self::Reissue => "reissue",
            Self::RepositoryPull => "repository_pull",
        }
    }
}

/// The signed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockerRequest {
    /// The locker addressed (its node id): a request for one locker is useless at another.
    pub locker: String,
    /// What to do.
    pub action: LockerAction,
    /// Who acts: issuer, requester or holder id (the locker's node id for repository pulls).
    pub principal: String,
    /// Unix seconds; the locker refuses requests outside its allowed skew.
    pub timestamp: u64,
    /// Random, single use.
    pub nonce: [u8; 16],
    /// Digest of the call's parameters ([`Params`]).
    pub params: [u8; 32],
}

impl StatementBody for LockerRequest {
    /// Statement kinds 0x40–0x4f belong to the document locker.
    const KIND: u8 = 0x40;
    const NAME: &'static str = "locker request";
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.locker)
            .u8(self.action.code())
            .str(&self.principal)
            .u64(self.timestamp)
            .fixed(&self.nonce)
            .fixed(&self.params);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            locker: r.str("locker", MAX_ID_LEN)?.to_owned(),
            action: LockerAction::from_code(r.u8()?)?,
            principal: r.str("principal", MAX_ID_LEN)?.to_owned(),
            timestamp: r.u64()?,
            nonce: r.array::<16>()?,
            params: r.array::<32>()?,
        })
    }
}

/// The canonical parameters of one call, digested into [`LockerRequest::params`].
pub struct Params {
    w: Writer,
}

impl Params {
    /// Starts the parameters of `action`.
    pub fn new(action: LockerAction) -> Self {
        let mut w = Writer::new();
        w.fixed(PARAMS_LABEL).u8(action.code());
        Self { w }
    }
    /// A string.
    pub fn str(mut self, s: &str) -> Self {
        self.w.str(s);
        self
    }
    /// Bytes.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.w.bytes(b);
        self
    }
    /// A number.
    pub fn u64(mut self, v: u64) -> Self {
        self.w.u64(v);
        self
    }
    /// A flag.
    pub fn bool(mut self, v: bool) -> Self {
        self.w.u8(u8::from(v));
        self
    }
    /// A list of strings (count, then each).
    pub fn strs<S: AsRef<str>>(mut self, items: &[S]) -> Self {
        self.w.u32(items.len() as u32);
        for s in items {
            self.w.str(s.as_ref());
        }
        self
    }
    /// A string map, in key order (count, then key, value pairs).
    pub fn map(mut self, m: &BTreeMap<String, String>) -> Self {
        self.w.u32(m.len() as u32);
        for (k, v) in m {
            self.w.str(k).str(v);
        }
        self
    }
    /// SHA-256 of a large value, as bytes.
    pub fn digest_of(self, b: &[u8]) -> Self {
        let d: [u8; 32] = Sha256::digest(b).into();
        self.bytes(&d)
    }
    /// The digest.
    pub fn finish(self) -> [u8; 32] {
        Sha256::digest(self.w.finish()).into()
    }
}

/// Signs a fresh request (the time now and a random nonce).
pub fn sign(
    key: &SigningKey,
    locker: &str,
    action: LockerAction,
    principal: &str,
    params: [u8; 32],
) -> Vec<u8> {
    sign_at(
        key,
        locker,
        action,
        principal,
        params,
        dlocker_proto::time::unix_now(),
        rand::rng().random(),
    )
}

/// Signs a request with a given time and nonce (tests and vectors).
pub fn sign_at(
    key: &SigningKey,
    locker: &str,
    action: LockerAction,
    principal: &str,
    params: [u8; 32],
    timestamp: u64,
    nonce: [u8; 16],
) -> Vec<u8> {
    Signed::sign(
        LockerRequest {
            locker: locker.to_owned(),
            action,
            principal: principal.to_owned(),
            timestamp,
            nonce,
            params,
        },
        key,
    )
    .encode()
}

/// A request whose signature verified and whose body matches the call; freshness, the nonce and
/// whether the signer is the principal's registered key are the receiver's checks.
#[derive(Debug, Clone)]
pub struct CheckedRequest {
    /// The body.
    pub request: LockerRequest,
    /// The key that signed.
    pub signer: PublicKey,
}

/// Decodes `bytes` and checks the signature, the locker, the action, the principal and the
/// parameters digest.
pub fn check(
    bytes: &[u8],
    locker: &str,
    action: LockerAction,
    principal: &str,
    params: [u8; 32],
) -> Result<CheckedRequest, FormatError> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(FormatError::TooLarge {
            what: "signed request",
            len: bytes.len(),
            max: MAX_REQUEST_BYTES,
        });
    }
    if bytes.is_empty() {
        return Err(FormatError::Request(
            "missing (request_encoded is empty)".into(),
        ));
    }
    let signed =
        Signed::<LockerRequest>::decode(bytes).map_err(|e| FormatError::Request(e.to_string()))?;
    let body = signed.body();
    if body.action != action {
        return Err(FormatError::Request(format!(
            "signed for {}, not {}",
            body.action.name(),
            action.name()
        )));
    }
    if body.locker != locker {
        return Err(FormatError::Request("addressed to another locker".into()));
    }
    if body.principal != principal {
        return Err(FormatError::Request(format!(
            "signed as {:?}, not {principal:?}",
            body.principal
        )));
    }
    if body.params != params {
        return Err(FormatError::Request(
            "the parameters differ from what was signed".into(),
        ));
    }
    Ok(CheckedRequest {
        request: body.clone(),
        signer: *signed.signer(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate as _;

    #[test]
    fn sign_and_check() {
        let k = SigningKey::generate_from_rng(&mut rand::rng());
        let p = Params::new(LockerAction::GrantConsent)
            .str("wallet-1")
            .str("acme.bank")
            .strs(&["u1", "u2"])
            .u64(99)
            .finish();
        let bytes = sign(&k, "locker", LockerAction::GrantConsent, "wallet-1", p);
        let c = check(&bytes, "locker", LockerAction::GrantConsent, "wallet-1", p).expect("ok");
        assert_eq!(c.signer, PublicKey::from(k.verifying_key()));
        let p2 = Params::new(LockerAction::GrantConsent)
            .str("wallet-1")
            .str("acme.bank")
            .strs(&["u1"])
            .u64(99)
            .finish();
        assert!(
            check(&bytes, "locker", LockerAction::GrantConsent, "wallet-1", p2).is_err(),
            "params changed"
        );
        assert!(
            check(&bytes, "other", LockerAction::GrantConsent, "wallet-1", p).is_err(),
            "other locker"
        );
        assert!(
            check(&bytes, "locker", LockerAction::RevokeConsent, "wallet-1", p).is_err(),
            "other action"
        );
        assert!(
            check(&bytes, "locker", LockerAction::GrantConsent, "wallet-2", p).is_err(),
            "other principal"
        );
        // ["ab"] and ["a","b"] digest differently (length prefixes).
        let a = Params::new(LockerAction::GrantConsent)
            .strs(&["ab"])
            .finish();
        let b = Params::new(LockerAction::GrantConsent)
            .strs(&["a", "b"])
            .finish();
        assert_ne!(a, b);
        for c in 1..=18u8 {
            assert_eq!(LockerAction::from_code(c).expect("code").code(), c);
        }
        assert!(LockerAction::from_code(0).is_err());
    }
}

/// The parameter digests of every call, shared by callers (SDK) and the locker so both encode
/// the same fields in the same order.
pub mod params {
    use super::{LockerAction as A, Params};
    use k256::PublicKey;
    use std::collections::BTreeMap;

    fn key(k: &PublicKey) -> [u8; 33] {
        dlocker_proto::keys::encode_public_key(k)
    }

    /// `RegisterIssuer`.
    pub fn register_issuer(
        issuer_id: &str,
        name: &str,
        doc_types: &[String],
        request_key: &PublicKey,
        hosted: bool,
        pull_endpoint: &str,
    ) -> [u8; 32] {
        Params::new(A::RegisterIssuer)
            .str(issuer_id)
            .str(name)
            .strs(doc_types)
            .bytes(&key(request_key))
            .bool(hosted)
            .str(pull_endpoint)
            .finish()
    }
    /// `RegisterRequester`.
    pub fn register_requester(requester_id: &str, name: &str, public_key: &PublicKey) -> [u8; 32] {
        Params::new(A::RegisterRequester)
            .str(requester_id)
            .str(name)
            .bytes(&key(public_key))
            .finish()
    }
    /// `RegisterHolder`.
    pub fn register_holder(
        holder_id: &str,
        holder_key: &PublicKey,
        challenge_id: &str,
    ) -> [u8; 32] {
        Params::new(A::RegisterHolder)
            .str(holder_id)
            .bytes(&key(holder_key))
            .str(challenge_id)
            .finish()
    }
    /// `ReserveDocument`.
    pub fn reserve_document(
        issuer_id: &str,
        holder_id: &str,
        doc_type: &str,
        valid_until: u64,
    ) -> [u8; 32] {
        Params::new(A::ReserveDocument)
            .str(issuer_id)
            .str(holder_id)
            .str(doc_type)
            .u64(valid_until)
            .finish()
    }
    /// `PushDocument`.
    pub fn push_document(issuer_id: &str, credential_jws: &str) -> [u8; 32] {
        Params::new(A::PushDocument)
            .str(issuer_id)
            .digest_of(credential_jws.as_bytes())
            .finish()
    }
    /// `IssueDocument`.
    pub fn issue_document(
        issuer_id: &str,
        holder_id: &str,
        doc_type: &str,
        claims: &BTreeMap<String, String>,
        valid_until: u64,
    ) -> [u8; 32] {
        Params::new(A::IssueDocument)
            .str(issuer_id)
            .str(holder_id)
            .str(doc_type)
            .map(claims)
            .u64(valid_until)
            .finish()
    }
    /// `PullDocument` (holder → locker).
    pub fn pull_document(
        holder_id: &str,
        issuer_id: &str,
        doc_type: &str,
        lookup: &BTreeMap<String, String>,
    ) -> [u8; 32] {
        Params::new(A::PullDocument)
            .str(holder_id)
            .str(issuer_id)
            .str(doc_type)
            .map(lookup)
            .finish()
    }
    /// `ListDocuments`.
    pub fn list_documents(holder_id: &str, document_uri: &str) -> [u8; 32] {
        Params::new(A::ListDocuments)
            .str(holder_id)
            .str(document_uri)
            .finish()
    }
    /// `UploadDocument`.
    pub fn upload_document(holder_id: &str, credential_jws: &str) -> [u8; 32] {
        Params::new(A::UploadDocument)
            .str(holder_id)
            .digest_of(credential_jws.as_bytes())
            .finish()
    }
    /// `RequestAttestation`.
    pub fn request_attestation(holder_id: &str, upload_uri: &str, issuer_id: &str) -> [u8; 32] {
        Params::new(A::RequestAttestation)
            .str(holder_id)
            .str(upload_uri)
            .str(issuer_id)
            .finish()
    }
    /// `ListIssuerTasks`.
    pub fn list_issuer_tasks(issuer_id: &str) -> [u8; 32] {
        Params::new(A::ListIssuerTasks).str(issuer_id).finish()
    }
    /// `DecideAttestation`.
    pub fn decide_attestation(
        issuer_id: &str,
        task_id: &str,
        grant: bool,
        credential_jws: &str,
        claims: &BTreeMap<String, String>,
        reason: &str,
    ) -> [u8; 32] {
        Params::new(A::DecideAttestation)
            .str(issuer_id)
            .str(task_id)
            .bool(grant)
            .digest_of(credential_jws.as_bytes())
            .map(claims)
            .str(reason)
            .finish()
    }
    /// `GrantConsent`: exactly what the holder consents to.
    pub fn grant_consent(
        holder_id: &str,
        requester_id: &str,
        uris: &[String],
        purpose: &str,
        not_after: u64,
    ) -> [u8; 32] {
        Params::new(A::GrantConsent)
            .str(holder_id)
            .str(requester_id)
            .strs(uris)
            .str(purpose)
            .u64(not_after)
            .finish()
    }
    /// `RevokeConsent`.
    pub fn revoke_consent(holder_id: &str, consent_id: &str) -> [u8; 32] {
        Params::new(A::RevokeConsent)
            .str(holder_id)
            .str(consent_id)
            .finish()
    }
    /// `ListConsents`.
    pub fn list_consents(holder_id: &str) -> [u8; 32] {
        Params::new(A::ListConsents).str(holder_id).finish()
    }
    /// `FetchDocument`.
    pub fn fetch_document(requester_id: &str, uri: &str, consent_id: &str) -> [u8; 32] {
        Params::new(A::FetchDocument)
            .str(requester_id)
            .str(uri)
            .str(consent_id)
            .finish()
    }
    /// `Reissue` (signed by the new key).
    pub fn reissue(
        holder_id: &str,
        new_key: &PublicKey,
        bank_approval: &[u8],
        challenge_id: &str,
        carry_over: bool,
    ) -> [u8; 32] {
        Params::new(A::Reissue)
            .str(holder_id)
            .bytes(&key(new_key))
            .digest_of(bank_approval)
            .str(challenge_id)
            .bool(carry_over)
            .finish()
    }
    /// `IssuerRepository.PullDocument` (signed by the locker).
    pub fn repository_pull(
        holder_id: &str,
        doc_type: &str,
        lookup: &BTreeMap<String, String>,
        draft: &crate::vc::Draft,
    ) -> [u8; 32] {
        Params::new(A::RepositoryPull)
            .str(holder_id)
            .str(doc_type)
            .map(lookup)
            .str(&draft.credential_id)
            .str(&draft.issuer_id)
            .bytes(&key(&draft.holder_key))
            .str(&draft.uri.to_string())
            .str(&draft.status.list_url)
            .u64(u64::from(draft.status.index))
            .u64(draft.valid_from)
            .u64(draft.valid_until.unwrap_or(0))
            .finish()
    }
}
