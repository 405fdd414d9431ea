//! Document credentials: W3C VC Data Model 2.0 secured as VC-JOSE (a compact JWS, `typ`
//! `vc+jwt`, `cty` `vc`, `alg` `ES256K`).
//!
//! The JWS payload *is* the credential (no `vc` claim). Alongside the data-model members it
//! carries the registered JWT claims with the same values — `iss` = `issuer.id`, `sub` =
//! `credentialSubject.id`, `jti` = `id`, `nbf`/`exp` = `validFrom`/`validUntil`, `iat` — and
//! the holder's key in `cnf.jwk` (RFC 7800), so a plain JWT library sees a consistent token.
//! The parser refuses any conflict between the two.
//!
//! ```json
//! { "@context": ["https://www.w3.org/ns/credentials/v2"],
//!   "id": "urn:dlocker:credential:<32 hex>",
//!   "type": ["VerifiableCredential", "DlockerDocumentCredential"],
//!   "issuer": { "id": "urn:dlocker:issuer:<issuer_id>", "name": "…" },
//!   "validFrom": "2025-01-01T00:00:00Z", "validUntil": "…",
//!   "credentialSubject": { "id": "urn:dlocker:holder:<holder_id>",
//!       "documentUri": "<issuer_id>-<DOCTYPE>-<doc_id>", "documentType": "<DOCTYPE>",
//!       "<claim>": "<string>", … },
//!   "credentialStatus": { "type": "BitstringStatusListEntry", … },
//!   "iss": …, "sub": …, "jti": …, "iat": …, "nbf": …, "exp": …,
//!   "cnf": { "jwk": { "kty": "EC", "crv": "secp256k1", "x": …, "y": … } } }
//! ```
//!
//! A self-attested upload has the same shape, issued by the holder (`urn:dlocker:holder:…`),
//! signed with the holder's wallet key, typed `DlockerSelfAttestedDocument`, with the file in
//! `credentialSubject.document` and no `credentialStatus` (the holder deletes it instead).

use crate::b64;
use crate::datetime;
use crate::error::FormatError;
use crate::ids::{self, DocUri, SELF_ISSUER, holder_urn, issuer_urn};
use crate::json::{obj_member, opt_str_member, opt_u64_member, parse_object, str_member};
use crate::jwk::Jwk;
use crate::jws::{self, CTY_VC, HeaderOut, TYP_VC, UnverifiedJws};
use crate::status_list::StatusEntry;
use k256::PublicKey;
use k256::ecdsa::SigningKey;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// The VC Data Model 2.0 base context.
pub const VC_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";
/// The type of a document issued through the locker.
pub const DOCUMENT_TYPE: &str = "DlockerDocumentCredential";
/// The type of a self-attested upload.
pub const SELF_ATTESTED_TYPE: &str = "DlockerSelfAttestedDocument";
/// Most claims in one credential.
pub const MAX_CLAIMS: usize = 64;
/// Longest claim name.
pub const MAX_CLAIM_NAME_LEN: usize = 64;
/// Longest claim value.
pub const MAX_CLAIM_VALUE_LEN: usize = 1024;
/// Longest issuer display name.
pub const MAX_NAME_LEN: usize = 128;
/// Members of `credentialSubject` that are not claims.
const RESERVED: [&str; 5] = [
    "id",
    "documentUri",
    "documentType",
    "selfAttested",
    "document",
];

/// The subject's claims: flat string members of `credentialSubject` (sorted by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims(BTreeMap<String, String>);

impl Claims {
    /// Checks and wraps `map`: at most 64 claims, names of `A-Za-z0-9_` (1–64, not a reserved
    /// member), values up to 1024 bytes without control characters.
    pub fn new(map: BTreeMap<String, String>) -> Result<Self, FormatError> {
        if map.len() > MAX_CLAIMS {
            return Err(FormatError::field(
                "claims",
                format!("at most {MAX_CLAIMS} claims"),
            ));
        }
        for (k, v) in &map {
            if k.is_empty()
                || k.len() > MAX_CLAIM_NAME_LEN
                || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                || RESERVED.contains(&k.as_str())
            {
                return Err(FormatError::field(
                    "claims",
                    format!("{k:?} is not a usable claim name"),
                ));
            }
            if v.len() > MAX_CLAIM_VALUE_LEN || v.chars().any(char::is_control) {
                return Err(FormatError::field(
                    "claims",
                    format!("the value of {k:?} is too long or has control characters"),
                ));
            }
        }
        Ok(Self(map))
    }
    /// The claims.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
    /// Pairs, for building from literals.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FormatError> {
        Self::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

/// Everything about a credential but its claims and signature: what the locker hands an
/// issuer (push, pull, attestation) so the issuer signs exactly what the locker will accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// `urn:dlocker:credential:<hex>`, fresh per issuance.
    pub credential_id: String,
    /// The issuer's id.
    pub issuer_id: String,
    /// The issuer's display name.
    pub issuer_name: String,
    /// The holder (the wallet id at the locker).
    pub holder_id: String,
    /// The holder's current wallet key (goes into `cnf`).
    pub holder_key: PublicKey,
    /// The document URI (kept across re-issues).
    pub uri: DocUri,
    /// Where the status bit is.
    pub status: StatusEntry,
    /// Unix seconds.
    pub valid_from: u64,
    /// Unix seconds, if the document expires.
    pub valid_until: Option<u64>,
}

#[derive(Serialize)]
struct IssuerJson<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct CnfJson {
    jwk: Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    #[serde(rename = "@context")]
    context: [&'a str; 1],
    id: &'a str,
    #[serde(rename = "type")]
    kind: [&'a str; 2],
    issuer: IssuerJson<'a>,
    valid_from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
    credential_subject: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_status: Option<Value>,
    iss: &'a str,
    sub: &'a str,
    jti: &'a str,
    iat: u64,
    nbf: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    cnf: CnfJson,
}

fn subject_base(holder_id: &str, uri: &DocUri) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("id".into(), Value::String(holder_urn(holder_id)));
    s.insert("documentUri".into(), Value::String(uri.to_string()));
    s.insert(
        "documentType".into(),
        Value::String(uri.doc_type().to_owned()),
    );
    s
}

/// `<issuer uri>#<thumbprint of the signing key>`.
pub fn key_id(issuer_uri: &str, key: &PublicKey) -> String {
    format!("{issuer_uri}#{}", Jwk::from_public_key(key).thumbprint())
}

/// Signs the credential for `draft` with `claims`, issued at `issued_at`.
pub fn issue(draft: &Draft, claims: &Claims, key: &SigningKey, issued_at: u64) -> String {
    let issuer = issuer_urn(&draft.issuer_id);
    let subject_id = holder_urn(&draft.holder_id);
    let mut subject = subject_base(&draft.holder_id, &draft.uri);
    for (k, v) in claims.as_map() {
        subject.insert(k.clone(), Value::String(v.clone()));
    }
    let payload = Payload {
        context: [VC_CONTEXT],
        id: &draft.credential_id,
        kind: ["VerifiableCredential", DOCUMENT_TYPE],
        issuer: IssuerJson {
            id: &issuer,
            name: &draft.issuer_name,
        },
        valid_from: datetime::format(draft.valid_from),
        valid_until: draft.valid_until.map(datetime::format),
        credential_subject: subject,
        credential_status: Some(draft.status.to_json()),
        iss: &issuer,
        sub: &subject_id,
        jti: &draft.credential_id,
        iat: issued_at,
        nbf: draft.valid_from,
        exp: draft.valid_until,
        cnf: CnfJson {
            jwk: Jwk::from_public_key(&draft.holder_key).to_json(),
        },
    };
    sign_payload(&payload, &issuer, key)
}

fn sign_payload(payload: &Payload<'_>, issuer_uri: &str, key: &SigningKey) -> String {
    let kid = key_id(issuer_uri, &PublicKey::from(key.verifying_key()));
    let body = serde_json::to_vec(payload).unwrap_or_default();
    jws::sign(
        &HeaderOut {
            alg: jws::ALG,
            typ: TYP_VC,
            cty: CTY_VC,
            kid: &kid,
        },
        &body,
        key,
    )
}

/// A file a holder uploads and self-attests.
#[derive(Clone, PartialEq, Eq)]
pub struct Upload {
    /// File name (display only).
    pub name: String,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("len", &self.data.len())
            .finish()
    }
}

impl Upload {
    /// `sha256-<base64>`: the Subresource Integrity digest of the bytes.
    pub fn digest_sri(&self) -> String {
        use base64::Engine as _;
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&self.data))
        )
    }
}

/// The holder's self-attested credential for `upload` under `uri` (issuer `self`), signed with
/// the holder's wallet key.
pub fn self_attest(
    holder_id: &str,
    uri: &DocUri,
    upload: &Upload,
    key: &SigningKey,
    now: u64,
) -> String {
    let holder = holder_urn(holder_id);
    let mut subject = subject_base(holder_id, uri);
    subject.insert("selfAttested".into(), Value::Bool(true));
    let mut doc = Map::new();
    doc.insert("name".into(), Value::String(upload.name.clone()));
    doc.insert("mediaType".into(), Value::String(upload.media_type.clone()));
    doc.insert("digestSRI".into(), Value::String(upload.digest_sri()));
    doc.insert("data".into(), Value::String(b64::encode(&upload.data)));
    subject.insert("document".into(), Value::Object(doc));
    let credential_id = ids::new_credential_id();
    let payload = Payload {
        context: [VC_CONTEXT],
        id: &credential_id,
        kind: ["VerifiableCredential", SELF_ATTESTED_TYPE],
        issuer: IssuerJson {
            id: &holder,
            name: "self-attested",
        },
        valid_from: datetime::format(now),
        valid_until: None,
        credential_subject: subject,
        credential_status: None,
        iss: &holder,
        sub: &holder,
        jti: &credential_id,
        iat: now,
        nbf: now,
        exp: None,
        cnf: CnfJson {
            jwk: Jwk::from_public_key(&PublicKey::from(key.verifying_key())).to_json(),
        },
    };
    sign_payload(&payload, &holder, key)
}

/// Who issued a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuedBy {
    /// A registered issuer.
    Issuer(String),
    /// The holder (a self-attested upload).
    Holder(String),
}

/// A credential's content, as parsed (see [`parse`] and [`verify`] for what has been checked).
#[derive(Debug, Clone)]
pub struct Credential {
    /// `kid` from the header.
    pub kid: Option<String>,
    /// `id` / `jti`.
    pub credential_id: String,
    /// Who issued it.
    pub issued_by: IssuedBy,
    /// `issuer.name`, when given.
    pub issuer_name: Option<String>,
    /// The holder id from `credentialSubject.id`.
    pub holder_id: String,
    /// The key in `cnf.jwk`.
    pub holder_key: PublicKey,
    /// The document URI.
    pub uri: DocUri,
    /// The claims (empty for a self-attested upload).
    pub claims: Claims,
    /// The uploaded file of a self-attested credential.
    pub upload: Option<Upload>,
    /// `credentialStatus` (issued credentials always have one).
    pub status: Option<StatusEntry>,
    /// Unix seconds.
    pub valid_from: u64,
    /// Unix seconds.
    pub valid_until: Option<u64>,
    /// `iat`.
    pub issued_at: u64,
}

impl Credential {
    /// The issuer id (`self` for an upload).
    pub fn issuer_id(&self) -> &str {
        match &self.issued_by {
            IssuedBy::Issuer(i) => i,
            IssuedBy::Holder(_) => SELF_ISSUER,
        }
    }
    /// Whether this is a self-attested upload.
    pub fn is_self_attested(&self) -> bool {
        matches!(self.issued_by, IssuedBy::Holder(_))
    }
    /// Checks the validity window at `now` (± `skew` seconds).
    pub fn check_time(&self, now: u64, skew: u64) -> Result<(), FormatError> {
        if self.valid_from > now.saturating_add(skew) {
            return Err(FormatError::NotYetValid(self.valid_from));
        }
        if let Some(u) = self.valid_until
            && now >= u.saturating_add(skew)
        {
            return Err(FormatError::Expired(u));
        }
        Ok(())
    }
    /// Whether the credential matches `draft` in every field the locker allocated or knows
    /// (id, issuer, holder and key, URI, status entry, validity window).
    pub fn matches(&self, draft: &Draft) -> Result<(), FormatError> {
        let want = |ok: bool, field: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(FormatError::field(
                    field,
                    "differs from what the locker allocated for it",
                ))
            }
        };
        want(self.credential_id == draft.credential_id, "id")?;
        want(
            self.issued_by == IssuedBy::Issuer(draft.issuer_id.clone()),
            "issuer",
        )?;
        want(self.holder_id == draft.holder_id, "credentialSubject.id")?;
        want(self.holder_key == draft.holder_key, "cnf.jwk")?;
        want(self.uri == draft.uri, "credentialSubject.documentUri")?;
        want(
            self.status.as_ref() == Some(&draft.status),
            "credentialStatus",
        )?;
        want(self.valid_from == draft.valid_from, "validFrom")?;
        want(self.valid_until == draft.valid_until, "validUntil")
    }
}

fn issuer_of(payload: &Map<String, Value>) -> Result<(String, Option<String>), FormatError> {
    match payload.get("issuer") {
        Some(Value::String(s)) => Ok((s.clone(), None)),
        Some(Value::Object(o)) => {
            let name = opt_str_member(o, "name", "issuer.name")?.map(str::to_owned);
            if name.as_ref().is_some_and(|n| n.len() > MAX_NAME_LEN) {
                return Err(FormatError::field("issuer.name", "too long"));
            }
            Ok((str_member(o, "id", "issuer.id")?.to_owned(), name))
        }
        Some(_) => Err(FormatError::field(
            "issuer",
            "must be a URL or an object with an id",
        )),
        None => Err(FormatError::field("issuer", "is missing")),
    }
}

fn upload_of(doc: &Map<String, Value>) -> Result<Upload, FormatError> {
    let upload = Upload {
        name: str_member(doc, "name", "document.name")?.to_owned(),
        media_type: str_member(doc, "mediaType", "document.mediaType")?.to_owned(),
        data: b64::decode("document.data", str_member(doc, "data", "document.data")?)?,
    };
    if str_member(doc, "digestSRI", "document.digestSRI")? != upload.digest_sri() {
        return Err(FormatError::field(
            "document.digestSRI",
            "does not match the data",
        ));
    }
    Ok(upload)
}

/// Parses a credential and checks everything but its signature and time: structure, the VC 2.0
/// context and type, consistency of the JWT claims with the data model, the document URI and
/// type, the holder key, the status entry. Returns the JWS for [`UnverifiedJws::verify`].
pub fn parse(compact: &str) -> Result<(UnverifiedJws<'_>, Credential), FormatError> {
    let p = jws::parse(compact)?;
    if p.typ().as_deref() != Some(TYP_VC) {
        return Err(FormatError::field("header.typ", "must be vc+jwt"));
    }
    let kid = opt_str_member(p.header(), "kid", "header.kid")?.map(str::to_owned);
    let payload = parse_object("credential", p.unverified_payload())?;
    if payload.contains_key("vc") || payload.contains_key("vp") {
        return Err(FormatError::field(
            "vc",
            "VC-JOSE payloads are the credential itself; a vc/vp claim is not allowed",
        ));
    }
    let ctx = payload.get("@context").and_then(Value::as_array);
    if ctx.and_then(|c| c.first()).and_then(Value::as_str) != Some(VC_CONTEXT) {
        return Err(FormatError::field(
            "@context",
            "must start with https://www.w3.org/ns/credentials/v2",
        ));
    }
    let types: Vec<&str> = payload
        .get("type")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !types.contains(&"VerifiableCredential") {
        return Err(FormatError::field(
            "type",
            "must include VerifiableCredential",
        ));
    }
    let self_typed = types.contains(&SELF_ATTESTED_TYPE);
    let credential_id = str_member(&payload, "id", "id")?.to_owned();
    ids::check_credential_id("id", &credential_id)?;
    let (issuer_uri, issuer_name) = issuer_of(&payload)?;
    let subject = obj_member(&payload, "credentialSubject", "credentialSubject")?;
    let subject_id = str_member(subject, "id", "credentialSubject.id")?;
    let holder_id = ids::from_urn(
        "credentialSubject.id",
        subject_id,
        "urn:dlocker:holder:",
        ids::check_holder_id,
    )?
    .to_owned();
    let issued_by = if let Some(h) = issuer_uri.strip_prefix("urn:dlocker:holder:") {
        if h != holder_id || !self_typed {
            return Err(FormatError::field(
                "issuer",
                "a holder may only issue self-attested credentials about themself",
            ));
        }
        IssuedBy::Holder(h.to_owned())
    } else {
        let id = ids::from_urn(
            "issuer",
            &issuer_uri,
            "urn:dlocker:issuer:",
            ids::check_org_id,
        )?;
        if self_typed {
            return Err(FormatError::field(
                "type",
                "only the holder issues self-attested documents",
            ));
        }
        if !types.contains(&DOCUMENT_TYPE) {
            return Err(FormatError::field(
                "type",
                "must include DlockerDocumentCredential",
            ));
        }
        IssuedBy::Issuer(id.to_owned())
    };
    // JWT claims must agree with the data model.
    let same = |claim: &str, field: &'static str, want: &str| -> Result<(), FormatError> {
        match opt_str_member(&payload, claim, field)? {
            Some(v) if v != want => Err(FormatError::field(field, "conflicts with the credential")),
            _ => Ok(()),
        }
    };
    same("iss", "iss", &issuer_uri)?;
    same("sub", "sub", subject_id)?;
    same("jti", "jti", &credential_id)?;
    let uri = DocUri::parse(str_member(
        subject,
        "documentUri",
        "credentialSubject.documentUri",
    )?)?;
    if str_member(subject, "documentType", "credentialSubject.documentType")? != uri.doc_type() {
        return Err(FormatError::field(
            "credentialSubject.documentType",
            "differs from the URI's type",
        ));
    }
    let issuer_in_uri = match &issued_by {
        IssuedBy::Issuer(i) => i.as_str(),
        IssuedBy::Holder(_) => SELF_ISSUER,
    };
    if uri.issuer() != issuer_in_uri {
        return Err(FormatError::field(
            "credentialSubject.documentUri",
            "names another issuer",
        ));
    }
    let mut claims = BTreeMap::new();
    let mut upload = None;
    for (k, v) in subject {
        match (k.as_str(), v) {
            ("id" | "documentUri" | "documentType", _) => {}
            ("selfAttested", Value::Bool(true)) if self_typed => {}
            ("document", Value::Object(doc)) if self_typed => upload = Some(upload_of(doc)?),
            (_, Value::String(s)) if !self_typed => {
                claims.insert(k.clone(), s.clone());
            }
            _ => {
                return Err(FormatError::field(
                    "credentialSubject",
                    format!("member {k:?} is not allowed here"),
                ));
            }
        }
    }
    if self_typed && upload.is_none() {
        return Err(FormatError::field(
            "credentialSubject.document",
            "a self-attested credential carries its document",
        ));
    }
    let claims = Claims::new(claims)?;
    let cnf = obj_member(&payload, "cnf", "cnf")?;
    let holder_key = Jwk::from_json(obj_member(cnf, "jwk", "cnf.jwk")?)?.to_public_key()?;
    let status = match payload.get("credentialStatus") {
        Some(Value::Object(o)) => Some(StatusEntry::from_json(o)?),
        Some(_) => {
            return Err(FormatError::field(
                "credentialStatus",
                "must be one BitstringStatusListEntry object",
            ));
        }
        None => None,
    };
    if status.is_none() && !self_typed {
        return Err(FormatError::field(
            "credentialStatus",
            "an issued credential must carry its status entry",
        ));
    }
    let valid_from = datetime::parse("validFrom", str_member(&payload, "validFrom", "validFrom")?)?;
    let valid_until = opt_str_member(&payload, "validUntil", "validUntil")?
        .map(|s| datetime::parse("validUntil", s))
        .transpose()?;
    if opt_u64_member(&payload, "nbf", "nbf")?.is_some_and(|n| n != valid_from) {
        return Err(FormatError::field("nbf", "conflicts with validFrom"));
    }
    if opt_u64_member(&payload, "exp", "exp")? != valid_until && payload.contains_key("exp") {
        return Err(FormatError::field("exp", "conflicts with validUntil"));
    }
    if valid_until.is_some_and(|u| u <= valid_from) {
        return Err(FormatError::field("validUntil", "is not after validFrom"));
    }
    let issued_at = opt_u64_member(&payload, "iat", "iat")?.unwrap_or(valid_from);
    Ok((
        p,
        Credential {
            kid,
            credential_id,
            issued_by,
            issuer_name,
            holder_id,
            holder_key,
            uri,
            claims,
            upload,
            status,
            valid_from,
            valid_until,
            issued_at,
        },
    ))
}

/// Verifies a credential's signature with `signer` (the issuer's key from the registry, or for
/// a self-attested upload the holder's key) and its validity window at `now` (± `skew`). The
/// status bit is the caller's next step ([`crate::status_list`]).
pub fn verify(
    compact: &str,
    signer: &PublicKey,
    now: u64,
    skew: u64,
) -> Result<Credential, FormatError> {
    let (p, c) = parse(compact)?;
    p.verify(signer)?;
    if c.is_self_attested() && c.holder_key != *signer {
        return Err(FormatError::field(
            "cnf.jwk",
            "a self-attested credential is signed by the key it binds",
        ));
    }
    c.check_time(now, skew)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate as _;

    fn draft(holder_key: PublicKey) -> Draft {
        Draft {
            credential_id: ids::new_credential_id(),
            issuer_id: "in.gov.transport".into(),
            issuer_name: "Transport Department".into(),
            holder_id: "wallet-1".into(),
            holder_key,
            uri: DocUri::new("in.gov.transport", "DRVLC").expect("uri"),
            status: StatusEntry {
                list_url: "http://127.0.0.1:7101/status-lists/in.gov.transport/1".into(),
                index: 9,
            },
            valid_from: 1_735_689_600,
            valid_until: Some(2_000_000_000),
        }
    }

    #[test]
    fn issue_parse_verify() {
        let issuer = SigningKey::generate_from_rng(&mut rand::rng());
        let holder = SigningKey::generate_from_rng(&mut rand::rng());
        let d = draft(PublicKey::from(holder.verifying_key()));
        let claims =
            Claims::from_pairs([("name", "Asha Rao"), ("licenceNumber", "KA01 2020 0001234")])
                .expect("claims");
        let jws = issue(&d, &claims, &issuer, 1_735_689_600);
        let c = verify(
            &jws,
            &PublicKey::from(issuer.verifying_key()),
            1_800_000_000,
            60,
        )
        .expect("verifies");
        c.matches(&d).expect("matches the draft");
        assert_eq!(c.claims, claims);
        assert_eq!(c.issuer_name.as_deref(), Some("Transport Department"));
        assert!(
            c.kid
                .as_deref()
                .is_some_and(|k| k.starts_with("urn:dlocker:issuer:in.gov.transport#"))
        );
        assert!(matches!(
            verify(
                &jws,
                &PublicKey::from(issuer.verifying_key()),
                2_000_000_100,
                60
            ),
            Err(FormatError::Expired(_))
        ));
        assert_eq!(
            verify(
                &jws,
                &PublicKey::from(holder.verifying_key()),
                1_800_000_000,
                60
            )
            .err(),
            Some(FormatError::BadSignature)
        );
        // The JWT claims mirror the data model.
        let payload: Value = serde_json::from_slice(
            &b64::decode("p", jws.split('.').nth(1).expect("payload")).expect("b64"),
        )
        .expect("json");
        assert_eq!(payload["iss"], payload["issuer"]["id"]);
        assert_eq!(payload["sub"], payload["credentialSubject"]["id"]);
        assert_eq!(payload["jti"], payload["id"]);
        assert_eq!(payload["nbf"], 1_735_689_600);
        assert_eq!(payload["validFrom"], "2025-01-01T00:00:00Z");
    }

    #[test]
    fn self_attested() {
        let holder = SigningKey::generate_from_rng(&mut rand::rng());
        let uri = DocUri::new(SELF_ISSUER, "PHOTO").expect("uri");
        let up = Upload {
            name: "me.png".into(),
            media_type: "image/png".into(),
            data: vec![1, 2, 3],
        };
        let jws = self_attest("wallet-1", &uri, &up, &holder, 1_735_689_600);
        let c = verify(
            &jws,
            &PublicKey::from(holder.verifying_key()),
            1_735_689_600,
            60,
        )
        .expect("verifies");
        assert!(c.is_self_attested());
        assert_eq!(c.upload.as_ref(), Some(&up));
        assert!(c.status.is_none());
    }

    #[test]
    fn conflicting_or_missing_members_refused() {
        let issuer = SigningKey::generate_from_rng(&mut rand::rng());
        let holder = SigningKey::generate_from_rng(&mut rand::rng());
        let d = draft(PublicKey::from(holder.verifying_key()));
        let jws = issue(&d, &Claims::default(), &issuer, 1);
        let payload: Value = serde_json::from_slice(
            &b64::decode("p", jws.split('.').nth(1).expect("payload")).expect("b64"),
        )
        .expect("json");
        let resign = |edit: &dyn Fn(&mut Value)| {
            let mut p = payload.clone();
            edit(&mut p);
            let kid = "k";
            jws::sign(
                &HeaderOut {
                    alg: jws::ALG,
                    typ: TYP_VC,
                    cty: CTY_VC,
                    kid,
                },
                p.to_string().as_bytes(),
                &issuer,
            )
        };
        type Edit = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "iss conflict",
                Box::new(|p| p["iss"] = "urn:dlocker:issuer:other.issuer".into()),
            ),
            (
                "sub conflict",
                Box::new(|p| p["sub"] = "urn:dlocker:holder:someone-else".into()),
            ),
            (
                "jti conflict",
                Box::new(|p| p["jti"] = ids::new_credential_id().into()),
            ),
            ("nbf conflict", Box::new(|p| p["nbf"] = 5.into())),
            (
                "vc claim",
                Box::new(|p| p["vc"] = Value::Object(Map::new())),
            ),
            (
                "no cnf",
                Box::new(|p| drop(p.as_object_mut().map(|o| o.remove("cnf")))),
            ),
            (
                "no status",
                Box::new(|p| drop(p.as_object_mut().map(|o| o.remove("credentialStatus")))),
            ),
            (
                "uri of another issuer",
                Box::new(|p| {
                    p["credentialSubject"]["documentUri"] =
                        "other.issuer-DRVLC-00000000000000000000000000000000".into();
                }),
            ),
            (
                "non-string claim",
                Box::new(|p| p["credentialSubject"]["age"] = 5.into()),
            ),
            (
                "wrong context",
                Box::new(|p| {
                    p["@context"] =
                        Value::Array(vec!["https://www.w3.org/2018/credentials/v1".into()])
                }),
            ),
        ];
        for (why, edit) in cases {
            let t = resign(edit.as_ref());
            assert!(parse(&t).is_err(), "{why} was accepted");
        }
        assert!(
            parse(&resign(&|_| {})).is_ok(),
            "an unedited re-signing parses"
        );
    }
}
