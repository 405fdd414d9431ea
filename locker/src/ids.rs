//! Identifiers: issuer and requester ids, document types, document URIs, and the URNs that
//! appear in credentials.
//!
//! A document URI is `<issuer_id>-<DOCTYPE>-<doc_id>` (DigiLocker style). Neither an issuer id
//! nor a document type contains `-`, so the URI splits unambiguously; the doc id is 128 random
//! bits in lowercase hex, so URIs reveal nothing about the holder or the order of issue.
//! Self-attested uploads use the reserved issuer id [`SELF_ISSUER`].

use crate::error::FormatError;
use rand::RngExt as _;

/// Issuer id of self-attested documents (no issuer may register it).
pub const SELF_ISSUER: &str = "self";
/// Longest issuer or requester id.
pub const MAX_ORG_ID_LEN: usize = 48;
/// Longest document type.
pub const MAX_DOC_TYPE_LEN: usize = 16;
/// Length of a doc id (hex characters).
pub const DOC_ID_LEN: usize = 32;
/// Longest document URI.
pub const MAX_URI_LEN: usize = MAX_ORG_ID_LEN + 1 + MAX_DOC_TYPE_LEN + 1 + DOC_ID_LEN;

/// Checks an issuer or requester id: 3–48 characters of `a-z 0-9 .`, starting and ending with a
/// letter or digit (e.g. `in.gov.transport`).
pub fn check_org_id(field: &'static str, id: &str) -> Result<(), FormatError> {
    let ok = (3..=MAX_ORG_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.')
        && id.bytes().next().is_some_and(|b| b != b'.')
        && id.bytes().last().is_some_and(|b| b != b'.');
    if ok {
        Ok(())
    } else {
        Err(FormatError::field(
            field,
            format!(
                "{id:?} must be 3–{MAX_ORG_ID_LEN} characters of a-z 0-9 and '.', not starting or ending with '.'"
            ),
        ))
    }
}

/// Checks a document type: 2–16 characters of `A-Z 0-9` (e.g. `DRVLC`).
pub fn check_doc_type(field: &'static str, t: &str) -> Result<(), FormatError> {
    if (2..=MAX_DOC_TYPE_LEN).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(FormatError::field(
            field,
            format!("{t:?} must be 2–{MAX_DOC_TYPE_LEN} characters of A-Z 0-9"),
        ))
    }
}

/// Checks a holder id (the wallet id at the locker node: 1–64 of `A-Za-z0-9._:-`).
pub fn check_holder_id(field: &'static str, id: &str) -> Result<(), FormatError> {
    dlocker_proto::manifest::validate_wallet_id(id)
        .map_err(|e| FormatError::field(field, e.to_string()))
}

/// A document URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocUri {
    issuer: String,
    doc_type: String,
    doc_id: String,
}

impl DocUri {
    /// A URI with a fresh random doc id.
    pub fn new(issuer: &str, doc_type: &str) -> Result<Self, FormatError> {
        if issuer != SELF_ISSUER {
            check_org_id("issuer_id", issuer)?;
        }
        check_doc_type("doc_type", doc_type)?;
        Ok(Self {
            issuer: issuer.to_owned(),
            doc_type: doc_type.to_owned(),
            doc_id: random_hex(),
        })
    }

    /// Parses `<issuer_id>-<DOCTYPE>-<doc_id>`.
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        let bad = || {
            FormatError::field(
                "document_uri",
                format!("{s:?} is not <issuer_id>-<DOCTYPE>-<32 hex>"),
            )
        };
        if s.len() > MAX_URI_LEN {
            return Err(bad());
        }
        let mut it = s.split('-');
        let (Some(issuer), Some(doc_type), Some(doc_id), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Err(bad());
        };
        if issuer != SELF_ISSUER {
            check_org_id("document_uri", issuer).map_err(|_| bad())?;
        }
        check_doc_type("document_uri", doc_type).map_err(|_| bad())?;
        if doc_id.len() != DOC_ID_LEN
            || !doc_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            doc_type: doc_type.to_owned(),
            doc_id: doc_id.to_owned(),
        })
    }

    /// The issuer id (or [`SELF_ISSUER`]).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// The document type.
    pub fn doc_type(&self) -> &str {
        &self.doc_type
    }
    /// The random doc id.
    pub fn doc_id(&self) -> &str {
        &self.doc_id
    }
    /// Whether this is a self-attested upload.
    pub fn is_self_attested(&self) -> bool {
        self.issuer == SELF_ISSUER
    }
}

impl std::fmt::Display for DocUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.issuer, self.doc_type, self.doc_id)
    }
}

/// 128 random bits as 32 lowercase hex characters.
pub fn random_hex() -> String {
    hex::encode(rand::rng().random::<[u8; 16]>())
}

/// `urn:dlocker:issuer:<issuer_id>`: a credential's `issuer` / `iss`.
pub fn issuer_urn(issuer_id: &str) -> String {
    format!("urn:dlocker:issuer:{issuer_id}")
}

/// `urn:dlocker:holder:<holder_id>`: `credentialSubject.id` / `sub` (and the issuer of a
/// self-attested upload).
pub fn holder_urn(holder_id: &str) -> String {
    format!("urn:dlocker:holder:{holder_id}")
}

/// `urn:dlocker:locker:<node_id>`: the issuer of status list credentials.
pub fn locker_urn(locker_id: &str) -> String {
    format!("urn:dlocker:locker:{locker_id}")
}

/// `urn:dlocker:credential:<32 hex>`: a credential's `id` / `jti` (fresh for every issuance,
/// while the document URI stays the same across re-issues).
pub fn new_credential_id() -> String {
    format!("urn:dlocker:credential:{}", random_hex())
}

/// Checks a credential id's shape.
pub fn check_credential_id(field: &'static str, id: &str) -> Result<(), FormatError> {
    match id.strip_prefix("urn:dlocker:credential:") {
        Some(h)
            if h.len() == 32
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(())
        }
        _ => Err(FormatError::field(
            field,
            format!("{id:?} is not urn:dlocker:credential:<32 hex>"),
        )),
    }
}

/// Strips a URN prefix, checking the rest with `check`.
pub fn from_urn<'a>(
    field: &'static str,
    urn: &'a str,
    prefix: &str,
    check: fn(&'static str, &str) -> Result<(), FormatError>,
) -> Result<&'a str, FormatError> {
    let id = urn
        .strip_prefix(prefix)
        .ok_or_else(|| FormatError::field(field, format!("must start with {prefix}")))?;
    check(field, id)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let u = DocUri::new("in.gov.transport", "DRVLC").expect("uri");
        let s = u.to_string();
        assert_eq!(DocUri::parse(&s).expect("parses"), u);
        assert!(s.starts_with("in.gov.transport-DRVLC-"));
        assert_ne!(DocUri::new("in.gov.transport", "DRVLC").expect("uri"), u);
        for bad in [
            "in.gov.transport-DRVLC",
            "in-gov-DRVLC-00000000000000000000000000000000",
            "x-DRVLC-00000000000000000000000000000000",
            "ok.id-drvlc-00000000000000000000000000000000",
            "ok.id-DRVLC-0000000000000000000000000000000G",
            "ok.id-DRVLC-0000000000000000000000000000000",
        ] {
            assert!(DocUri::parse(bad).is_err(), "{bad}");
        }
        assert!(
            DocUri::parse("self-PHOTO-00000000000000000000000000000000")
                .expect("self")
                .is_self_attested()
        );
        assert!(check_org_id("x", ".ab").is_err());
        assert!(check_org_id("x", "Ab.c").is_err());
        assert!(check_credential_id("x", &new_credential_id()).is_ok());
    }
}

/// Bytes of SHA-256 in a key fingerprint: 88 bits, so that the longest id, `:` and the
/// fingerprint fit a staff request's 64-character target.
const FINGERPRINT_BYTES: usize = 11;
const FINGERPRINT_LABEL: &[u8] = b"dlocker/locker/key-fingerprint/v1";

/// The fingerprint of an issuer's request key or a requester's key: base64url (15 characters)
/// of the first 88 bits of SHA-256 over a label and the SEC1-compressed key. The operator
/// compares it out of band with the organisation before approving.
pub fn key_fingerprint(key: &k256::PublicKey) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::new()
        .chain_update(FINGERPRINT_LABEL)
        .chain_update(dlocker_proto::keys::encode_public_key(key))
        .finalize();
    crate::b64::encode(&d[..FINGERPRINT_BYTES])
}

/// The staff request target approving `id` bound to the key with fingerprint `fingerprint`.
pub fn approval_target(id: &str, fingerprint: &str) -> String {
    format!("{id}:{fingerprint}")
}

/// Splits an approval target into the id and the fingerprint (ids contain no `:`).
pub fn parse_approval_target(target: &str) -> Option<(&str, &str)> {
    target
        .split_once(':')
        .filter(|(id, fp)| !id.is_empty() && fp.len() == 15)
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;

    #[test]
    fn fingerprints_fit_the_target_and_differ() {
        use k256::elliptic_curve::Generate as _;
        let a = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let b = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let fa = key_fingerprint(&a);
        assert_eq!(fa.len(), 15);
        assert_eq!(fa, key_fingerprint(&a));
        assert_ne!(fa, key_fingerprint(&b));
        let t = approval_target(&"a".repeat(MAX_ORG_ID_LEN), &fa);
        assert_eq!(t.len(), dlocker_proto::statement::MAX_ID_LEN);
        assert_eq!(
            parse_approval_target(&t),
            Some(("a".repeat(MAX_ORG_ID_LEN).as_str(), fa.as_str()))
        );
        assert_eq!(parse_approval_target("acme.employer"), None);
    }
}
