//! W3C Bitstring Status List v1.0: the `BitstringStatusListEntry` inside a credential, the
//! bitstring, and the `BitstringStatusListCredential` the locker serves (as VC-JOSE, ES256K).
//!
//! * Bit order: index 0 is the most significant bit of the first byte (the spec's left-most bit).
//! * `encodedList`: the multibase base64url prefix `u`, then base64url without padding of the
//!   GZIP (RFC 1952) compression of the bitstring.
//! * Size: at least 131,072 entries (16 KiB), so a set bit hides among many; indices are drawn
//!   at random by the locker, never sequentially, so a position says nothing about issue order.
//! * Purpose: `revocation` (a set bit is final).
//!
//! The locker is the revocation authority for the credentials it holds (it must be able to
//! revoke on re-issue even for credentials an issuer signed with its own key), so status list
//! credentials are issued by the locker (`urn:dlocker:locker:<node id>`) and signed with its
//! node identity key — the key pinned in every client's trustees file. The specification allows
//! the status list's issuer to differ from the credential's.

use crate::b64;
use crate::datetime;
use crate::error::FormatError;
use crate::ids::locker_urn;
use crate::json::{obj_member, opt_str_member, opt_u64_member, parse_object, str_member};
use crate::jwk::Jwk;
use crate::jws::{self, CTY_VC, HeaderOut, TYP_VC};
use crate::vc::VC_CONTEXT;
use flate2::Compression;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use k256::PublicKey;
use k256::ecdsa::SigningKey;
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::{Read as _, Write as _};

/// Entries in every list this locker makes (the specification's minimum).
pub const LIST_ENTRIES: u32 = 131_072;
/// Bytes of such a list.
pub const LIST_BYTES: usize = LIST_ENTRIES as usize / 8;
/// Largest decompressed bitstring accepted (a 16 Mi-entry list): bounds a gzip bomb.
pub const MAX_LIST_BYTES: usize = 2 * 1024 * 1024;
/// The only purpose used.
pub const PURPOSE: &str = "revocation";

/// A `BitstringStatusListEntry`: where a credential's status bit is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// URL of the `BitstringStatusListCredential`.
    pub list_url: String,
    /// Bit index in that list.
    pub index: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryJson<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'a str,
    status_purpose: &'a str,
    status_list_index: String,
    status_list_credential: &'a str,
}

impl StatusEntry {
    /// The JSON object written into `credentialStatus`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(EntryJson {
            id: format!("{}#{}", self.list_url, self.index),
            kind: "BitstringStatusListEntry",
            status_purpose: PURPOSE,
            status_list_index: self.index.to_string(),
            status_list_credential: &self.list_url,
        })
        .unwrap_or(Value::Null)
    }

    /// Parses a `credentialStatus` object: type `BitstringStatusListEntry`, purpose
    /// `revocation`, a decimal `statusListIndex` string, an absolute `statusListCredential` URL,
    /// no `statusSize` other than 1.
    pub fn from_json(v: &Map<String, Value>) -> Result<Self, FormatError> {
        if str_member(v, "type", "credentialStatus.type")? != "BitstringStatusListEntry" {
            return Err(FormatError::field(
                "credentialStatus.type",
                "must be BitstringStatusListEntry",
            ));
        }
        if str_member(v, "statusPurpose", "credentialStatus.statusPurpose")? != PURPOSE {
            return Err(FormatError::field(
                "credentialStatus.statusPurpose",
                "must be \"revocation\"",
            ));
        }
        if let Some(size) = v.get("statusSize")
            && size.as_u64() != Some(1)
        {
            return Err(FormatError::field(
                "credentialStatus.statusSize",
                "only 1-bit entries are supported",
            ));
        }
        let idx = str_member(v, "statusListIndex", "credentialStatus.statusListIndex")?;
        if idx.is_empty()
            || idx.len() > 10
            || !idx.bytes().all(|b| b.is_ascii_digit())
            || (idx.len() > 1 && idx.starts_with('0'))
        {
            return Err(FormatError::field(
                "credentialStatus.statusListIndex",
                "must be a decimal string",
            ));
        }
        let index: u32 = idx
            .parse()
            .map_err(|_| FormatError::field("credentialStatus.statusListIndex", "too large"))?;
        let list_url = str_member(
            v,
            "statusListCredential",
            "credentialStatus.statusListCredential",
        )?;
        url::Url::parse(list_url).map_err(|_| {
            FormatError::field(
                "credentialStatus.statusListCredential",
                "must be an absolute URL",
            )
        })?;
        opt_str_member(v, "id", "credentialStatus.id")?;
        Ok(Self {
            list_url: list_url.to_owned(),
            index,
        })
    }
}

/// The URL of issuer `issuer_id`'s list number `list` at a locker whose base URL is `base`
/// (its advertised endpoint): `<base>/status-lists/<issuer_id>/<list>`. Clients map it to the
/// locker's `GetStatusList(issuer_id, list)`.
pub fn list_url(base: &str, issuer_id: &str, list: u32) -> String {
    format!(
        "{}/status-lists/{issuer_id}/{list}",
        base.trim_end_matches('/')
    )
}

/// Splits a list URL made by [`list_url`] into `(base, issuer_id, list)`.
pub fn parse_list_url(url: &str) -> Option<(&str, &str, u32)> {
    let (rest, list) = url.rsplit_once('/')?;
    let (base, issuer) = rest.rsplit_once("/status-lists/")?;
    crate::ids::check_org_id("issuer_id", issuer).ok()?;
    Some((base, issuer, list.parse().ok()?))
}

/// A status bitstring.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitstring(Vec<u8>);

impl std::fmt::Debug for Bitstring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bitstring({} entries, {} set)",
            self.len(),
            self.count_set()
        )
    }
}

impl Bitstring {
    /// An all-zero list of [`LIST_ENTRIES`].
    pub fn new() -> Self {
        Self(vec![0; LIST_BYTES])
    }
    /// Wraps raw bytes (e.g. from storage); `None` unless the size is in range.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (LIST_BYTES..=MAX_LIST_BYTES)
            .contains(&bytes.len())
            .then_some(Self(bytes))
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Number of entries.
    pub fn len(&self) -> u32 {
        (self.0.len() * 8) as u32
    }
    /// Never empty (at least [`LIST_ENTRIES`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Bit `i` (`None` past the end).
    pub fn get(&self, i: u32) -> Option<bool> {
        let byte = self.0.get(i as usize / 8)?;
        Some(byte & (0x80 >> (i % 8)) != 0)
    }
    /// Sets bit `i`; false past the end.
    pub fn set(&mut self, i: u32) -> bool {
        match self.0.get_mut(i as usize / 8) {
            Some(b) => {
                *b |= 0x80 >> (i % 8);
                true
            }
            None => false,
        }
    }
    /// How many bits are set.
    pub fn count_set(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }

    /// `u` + base64url(gzip(bits)).
    pub fn encode(&self) -> String {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        // Writing to a Vec cannot fail.
        let _ = enc.write_all(&self.0);
        let gz = enc.finish().unwrap_or_default();
        format!("u{}", b64::encode(&gz))
    }

    /// Decodes an `encodedList`: refuses a missing multibase prefix, bad base64url, bad gzip,
    /// trailing data, and a bitstring shorter than 16 KiB or longer than [`MAX_LIST_BYTES`].
    pub fn decode(encoded: &str) -> Result<Self, FormatError> {
        let b = encoded.strip_prefix('u').ok_or_else(|| {
            FormatError::StatusList("encodedList must start with the multibase prefix 'u'".into())
        })?;
        if b.len() > MAX_LIST_BYTES {
            return Err(FormatError::TooLarge {
                what: "encodedList",
                len: b.len(),
                max: MAX_LIST_BYTES,
            });
        }
        let gz = b64::decode("encodedList", b)?;
        let mut dec = GzDecoder::new(gz.as_slice());
        let mut bits = Vec::new();
        (&mut dec)
            .take(MAX_LIST_BYTES as u64 + 1)
            .read_to_end(&mut bits)
            .map_err(|e| FormatError::StatusList(format!("not gzip: {e}")))?;
        if bits.len() > MAX_LIST_BYTES {
            return Err(FormatError::StatusList(format!(
                "decompresses to more than {MAX_LIST_BYTES} bytes"
            )));
        }
        // `bufread` leaves the slice positioned right after the gzip member.
        if !dec.into_inner().is_empty() {
            return Err(FormatError::StatusList(
                "trailing data after the gzip member".into(),
            ));
        }
        Self::from_bytes(bits).ok_or_else(|| {
            FormatError::StatusList(format!(
                "a list must hold at least {LIST_ENTRIES} entries (16 KiB)"
            ))
        })
    }
}

impl Default for Bitstring {
    fn default() -> Self {
        Self::new()
    }
}

/// A verified status list credential.
#[derive(Debug, Clone)]
pub struct StatusList {
    /// Its URL (`id`).
    pub url: String,
    /// The issuing locker's id.
    pub locker_id: String,
    /// The bits.
    pub bits: Bitstring,
    /// Unix seconds.
    pub valid_from: u64,
    /// Unix seconds: a verifier fetches a fresh list after this.
    pub valid_until: u64,
}

impl StatusList {
    /// Whether the credential at `entry` is revoked (`Err` if the entry names another list or an
    /// index past its end).
    pub fn is_revoked(&self, entry: &StatusEntry) -> Result<bool, FormatError> {
        if entry.list_url != self.url {
            return Err(FormatError::StatusList(format!(
                "the credential's status is in {}, not {}",
                entry.list_url, self.url
            )));
        }
        self.bits.get(entry.index).ok_or_else(|| {
            FormatError::StatusList(format!("index {} is past the end of the list", entry.index))
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListSubject<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'a str,
    status_purpose: &'a str,
    encoded_list: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListPayload<'a> {
    #[serde(rename = "@context")]
    context: [&'a str; 1],
    id: &'a str,
    #[serde(rename = "type")]
    kind: [&'a str; 2],
    issuer: &'a str,
    valid_from: String,
    valid_until: String,
    credential_subject: ListSubject<'a>,
    iss: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Issues the `BitstringStatusListCredential` at `url` for `bits`, valid from `now` for
/// `ttl_secs`, signed by the locker `locker_id`'s key.
pub fn issue_list(
    url: &str,
    locker_id: &str,
    bits: &Bitstring,
    key: &SigningKey,
    now: u64,
    ttl_secs: u64,
) -> String {
    let issuer = locker_urn(locker_id);
    let until = now.saturating_add(ttl_secs);
    let payload = ListPayload {
        context: [VC_CONTEXT],
        id: url,
        kind: ["VerifiableCredential", "BitstringStatusListCredential"],
        issuer: &issuer,
        valid_from: datetime::format(now),
        valid_until: datetime::format(until),
        credential_subject: ListSubject {
            id: format!("{url}#list"),
            kind: "BitstringStatusList",
            status_purpose: PURPOSE,
            encoded_list: bits.encode(),
        },
        iss: &issuer,
        iat: now,
        nbf: now,
        exp: until,
    };
    let kid = format!(
        "{issuer}#{}",
        Jwk::from_public_key(&PublicKey::from(key.verifying_key())).thumbprint()
    );
    let body = serde_json::to_vec(&payload).unwrap_or_default();
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

/// Verifies a status list credential signed by `locker_key` and valid at `now` (with `skew`
/// seconds of tolerance on both ends).
pub fn verify_list(
    compact: &str,
    locker_key: &PublicKey,
    now: u64,
    skew: u64,
) -> Result<StatusList, FormatError> {
    let p = jws::parse(compact)?;
    if p.typ().as_deref() != Some(TYP_VC) {
        return Err(FormatError::field("header.typ", "must be vc+jwt"));
    }
    let payload = parse_object("status list credential", p.verify(locker_key)?)?;
    let ctx = payload.get("@context").and_then(Value::as_array);
    if ctx.and_then(|c| c.first()).and_then(Value::as_str) != Some(VC_CONTEXT) {
        return Err(FormatError::field(
            "@context",
            "must start with the VC 2.0 context",
        ));
    }
    let types = payload.get("type").and_then(Value::as_array);
    if !types.is_some_and(|t| {
        t.iter()
            .any(|x| x.as_str() == Some("BitstringStatusListCredential"))
    }) {
        return Err(FormatError::field(
            "type",
            "must include BitstringStatusListCredential",
        ));
    }
    let url = str_member(&payload, "id", "id")?.to_owned();
    let issuer = str_member(&payload, "issuer", "issuer")?;
    let locker_id = issuer
        .strip_prefix("urn:dlocker:locker:")
        .ok_or_else(|| FormatError::field("issuer", "must be urn:dlocker:locker:<id>"))?
        .to_owned();
    if let Some(iss) = opt_str_member(&payload, "iss", "iss")?
        && iss != issuer
    {
        return Err(FormatError::field("iss", "conflicts with issuer"));
    }
    let subject = obj_member(&payload, "credentialSubject", "credentialSubject")?;
    if str_member(subject, "type", "credentialSubject.type")? != "BitstringStatusList" {
        return Err(FormatError::field(
            "credentialSubject.type",
            "must be BitstringStatusList",
        ));
    }
    if str_member(subject, "statusPurpose", "credentialSubject.statusPurpose")? != PURPOSE {
        return Err(FormatError::field(
            "credentialSubject.statusPurpose",
            "must be revocation",
        ));
    }
    let bits = Bitstring::decode(str_member(
        subject,
        "encodedList",
        "credentialSubject.encodedList",
    )?)?;
    let valid_from = datetime::parse("validFrom", str_member(&payload, "validFrom", "validFrom")?)?;
    let valid_until = datetime::parse(
        "validUntil",
        str_member(&payload, "validUntil", "validUntil")?,
    )?;
    if opt_u64_member(&payload, "exp", "exp")?.is_some_and(|e| e != valid_until)
        || opt_u64_member(&payload, "nbf", "nbf")?.is_some_and(|n| n != valid_from)
    {
        return Err(FormatError::field(
            "exp/nbf",
            "conflict with validUntil/validFrom",
        ));
    }
    if valid_from > now.saturating_add(skew) {
        return Err(FormatError::NotYetValid(valid_from));
    }
    if now >= valid_until.saturating_add(skew) {
        return Err(FormatError::Expired(valid_until));
    }
    Ok(StatusList {
        url,
        locker_id,
        bits,
        valid_from,
        valid_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate as _;

    #[test]
    fn bit_order_and_round_trip() {
        let mut b = Bitstring::new();
        assert_eq!(b.len(), LIST_ENTRIES);
        assert!(b.set(0) && b.set(9) && b.set(LIST_ENTRIES - 1));
        assert!(!b.set(LIST_ENTRIES));
        assert_eq!(b.as_bytes()[0], 0x80);
        assert_eq!(b.as_bytes()[1], 0x40);
        assert_eq!(b.as_bytes()[LIST_BYTES - 1], 0x01);
        let enc = b.encode();
        assert!(enc.starts_with('u'));
        // 16 KiB of mostly zeros compresses to a few dozen bytes.
        assert!(enc.len() < 200, "{}", enc.len());
        let back = Bitstring::decode(&enc).expect("decodes");
        assert_eq!(back, b);
        assert_eq!(back.count_set(), 3);
        assert_eq!(back.get(9), Some(true));
        assert_eq!(back.get(10), Some(false));
    }

    #[test]
    fn decode_refusals() {
        let enc = Bitstring::new().encode();
        assert!(Bitstring::decode(&enc[1..]).is_err(), "no multibase prefix");
        assert!(Bitstring::decode("uAAAA").is_err(), "not gzip");
        // Too short a list.
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(&[0u8; 100]).expect("write");
        assert!(Bitstring::decode(&format!("u{}", b64::encode(&e.finish().expect("gz")))).is_err());
        // A gzip bomb: 4 MiB of zeros.
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(&vec![0u8; 4 * 1024 * 1024]).expect("write");
        assert!(Bitstring::decode(&format!("u{}", b64::encode(&e.finish().expect("gz")))).is_err());
        // Trailing bytes after the member.
        let mut gz = b64::decode("x", &enc[1..]).expect("b64");
        gz.push(0);
        assert!(Bitstring::decode(&format!("u{}", b64::encode(&gz))).is_err());
    }

    #[test]
    fn list_credential() {
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let pk = PublicKey::from(key.verifying_key());
        let mut bits = Bitstring::new();
        bits.set(4242);
        let url = list_url("http://127.0.0.1:7101", "in.gov.transport", 1);
        assert_eq!(
            parse_list_url(&url),
            Some(("http://127.0.0.1:7101", "in.gov.transport", 1))
        );
        let jws = issue_list(&url, "abcd", &bits, &key, 1_000_000, 3600);
        let list = verify_list(&jws, &pk, 1_000_010, 60).expect("verifies");
        assert_eq!(list.url, url);
        assert_eq!(list.locker_id, "abcd");
        assert_eq!(
            list.is_revoked(&StatusEntry {
                list_url: url.clone(),
                index: 4242
            }),
            Ok(true)
        );
        assert_eq!(
            list.is_revoked(&StatusEntry {
                list_url: url.clone(),
                index: 4243
            }),
            Ok(false)
        );
        assert!(
            list.is_revoked(&StatusEntry {
                list_url: "http://x/y".into(),
                index: 1
            })
            .is_err()
        );
        assert!(matches!(
            verify_list(&jws, &pk, 1_000_000 + 3600 + 61, 60),
            Err(FormatError::Expired(_))
        ));
        let other =
            PublicKey::from(SigningKey::generate_from_rng(&mut rand::rng()).verifying_key());
        assert_eq!(
            verify_list(&jws, &other, 1_000_010, 60).err(),
            Some(FormatError::BadSignature)
        );
    }

    #[test]
    fn entry_json() {
        let e = StatusEntry {
            list_url: "https://locker.example/status-lists/a.b/1".into(),
            index: 77,
        };
        let v = e.to_json();
        assert_eq!(v["statusListIndex"], "77");
        assert_eq!(v["type"], "BitstringStatusListEntry");
        let back = StatusEntry::from_json(v.as_object().expect("obj")).expect("parses");
        assert_eq!(back, e);
        let mut bad = v.clone();
        bad["statusListIndex"] = Value::from(77);
        assert!(StatusEntry::from_json(bad.as_object().expect("obj")).is_err());
        let mut bad = v;
        bad["statusListIndex"] = Value::from("077");
        assert!(StatusEntry::from_json(bad.as_object().expect("obj")).is_err());
    }
}
