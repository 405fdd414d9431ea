//! Compact JWS with ES256K: RFC 7515 §7.1 serialisation, RFC 8812 §3.2 signatures.
//!
//! * signing input: the ASCII bytes `BASE64URL(header) "." BASE64URL(payload)`;
//! * signature: ECDSA over secp256k1 with SHA-256 of the signing input, RFC 6979 nonces,
//!   encoded as the 64-byte `R ‖ S` (each 32 bytes big-endian), low-S;
//! * every part base64url without padding, decoded strictly ([`crate::b64`]).
//!
//! The parser is strict: three non-empty parts, a header that is a JSON object with unique
//! members, `alg` exactly `ES256K` (never `none`, never another algorithm), no `crit`, no
//! unencoded payload (`b64`), a 64-byte low-S signature. It checks nothing about the payload;
//! [`crate::vc`] and [`crate::status_list`] do.

use crate::b64;
use crate::error::FormatError;
use crate::json::{opt_str_member, parse_object, str_member};
use k256::PublicKey;
use k256::ecdsa::signature::{Signer as _, Verifier as _};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::Serialize;
use serde_json::{Map, Value};

/// The only algorithm: ECDSA secp256k1 + SHA-256 (RFC 8812).
pub const ALG: &str = "ES256K";
/// The `typ` of a VC-JOSE credential (VC-JOSE-COSE §3.1.1).
pub const TYP_VC: &str = "vc+jwt";
/// The `cty` written alongside it.
pub const CTY_VC: &str = "vc";
/// Largest compact JWS accepted anywhere (a credential with a self-attested upload inside).
pub const MAX_JWS_LEN: usize = 128 * 1024;

/// The protected header this crate writes (members in this order).
#[derive(Debug, Clone, Serialize)]
pub struct HeaderOut<'a> {
    /// Always [`ALG`].
    pub alg: &'a str,
    /// Media type of the whole JWS.
    pub typ: &'a str,
    /// Media type of the payload.
    pub cty: &'a str,
    /// Key id: `<issuer uri>#<JWK thumbprint>`.
    pub kid: &'a str,
}

/// Signs `payload` (JSON bytes) under `header`; returns the compact serialisation.
pub fn sign(header: &HeaderOut<'_>, payload: &[u8], key: &SigningKey) -> String {
    // A struct of strings always serialises.
    let header_json = serde_json::to_vec(header).unwrap_or_default();
    let input = format!("{}.{}", b64::encode(&header_json), b64::encode(payload));
    // k256 hashes with SHA-256, uses RFC 6979 nonces and always returns a low-S signature.
    let sig: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64::encode(&sig.to_bytes()))
}

/// A parsed compact JWS whose signature has NOT been checked yet.
#[derive(Debug, Clone)]
pub struct UnverifiedJws<'a> {
    signing_input: &'a str,
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature: Signature,
}

/// Parses and checks the structure and header of a compact JWS.
pub fn parse(compact: &str) -> Result<UnverifiedJws<'_>, FormatError> {
    if compact.len() > MAX_JWS_LEN {
        return Err(FormatError::TooLarge {
            what: "JWS",
            len: compact.len(),
            max: MAX_JWS_LEN,
        });
    }
    let mut parts = compact.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(FormatError::Structure("expected three dot-separated parts"));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(FormatError::Structure("a part is empty"));
    }
    let header = parse_object("JWS header", &b64::decode("JWS header", h)?)?;
    let alg = str_member(&header, "alg", "header.alg")?;
    if alg != ALG {
        return Err(FormatError::Unsupported(format!(
            "alg {alg:?}; only ES256K is accepted"
        )));
    }
    if header.contains_key("crit") {
        return Err(FormatError::Unsupported(
            "critical header parameters (crit)".into(),
        ));
    }
    if header.contains_key("b64") {
        return Err(FormatError::Unsupported("unencoded payloads (b64)".into()));
    }
    // `jwk`/`x5c`/`jku` would invite trusting a key the token names for itself.
    for k in ["jwk", "jku", "x5c", "x5u"] {
        if header.contains_key(k) {
            return Err(FormatError::Unsupported(format!(
                "header parameter {k:?}: keys come from the registry"
            )));
        }
    }
    opt_str_member(&header, "kid", "header.kid")?;
    opt_str_member(&header, "typ", "header.typ")?;
    let payload = b64::decode("JWS payload", p)?;
    let sig_bytes = b64::decode("JWS signature", s)?;
    if sig_bytes.len() != 64 {
        return Err(FormatError::BadSignature);
    }
    let signature = Signature::from_slice(&sig_bytes).map_err(|_| FormatError::BadSignature)?;
    // RFC 8812 leaves S unrestricted; this profile accepts only the low-S form so a signature
    // has exactly one encoding (its high-S twin is refused).
    if signature.normalize_s() != signature {
        return Err(FormatError::BadSignature);
    }
    let signing_input = &compact[..h.len() + 1 + p.len()];
    Ok(UnverifiedJws {
        signing_input,
        header,
        payload,
        signature,
    })
}

impl<'a> UnverifiedJws<'a> {
    /// The protected header.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// `typ`, lower-cased, with an `application/` prefix removed (RFC 7515 §4.1.9).
    pub fn typ(&self) -> Option<String> {
        let t = self.header.get("typ")?.as_str()?.to_ascii_lowercase();
        Some(
            t.strip_prefix("application/")
                .map(str::to_owned)
                .unwrap_or(t),
        )
    }

    /// The payload bytes, NOT yet authenticated: only for finding which key to verify with.
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }

    /// Verifies the signature with `key`; returns the authenticated payload bytes.
    pub fn verify(&self, key: &PublicKey) -> Result<&[u8], FormatError> {
        VerifyingKey::from(key)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| FormatError::BadSignature)?;
        Ok(&self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate as _;
    use sha2::Digest as _;

    fn key() -> SigningKey {
        SigningKey::generate_from_rng(&mut rand::rng())
    }

    const H: HeaderOut<'static> = HeaderOut {
        alg: ALG,
        typ: TYP_VC,
        cty: CTY_VC,
        kid: "k",
    };

    #[test]
    fn sign_parse_verify() {
        let k = key();
        let pk = PublicKey::from(k.verifying_key());
        let jws = sign(&H, br#"{"a":1}"#, &k);
        let p = parse(&jws).expect("parses");
        assert_eq!(p.typ().as_deref(), Some("vc+jwt"));
        assert_eq!(p.verify(&pk).expect("verifies"), br#"{"a":1}"#);
        let other = PublicKey::from(key().verifying_key());
        assert_eq!(p.verify(&other), Err(FormatError::BadSignature));
    }

    /// Interop: the signature is checked from the raw parts, with nothing of this module but
    /// the bytes it produced — base64url decoded by the `base64` crate, SHA-256 of the ASCII
    /// signing input, k256 prehash verification of R‖S — as any JOSE library would.
    #[test]
    fn independent_verification_from_raw_parts() {
        use base64::Engine as _;
        use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
        let k = key();
        let jws = sign(&H, br#"{"hello":"world"}"#, &k);
        let (input, sig_b64) = jws.rsplit_once('.').expect("three parts");
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig_b64)
            .expect("b64");
        assert_eq!(sig.len(), 64);
        let r = &sig[..32];
        let s = &sig[32..];
        // Low-S: s ≤ n/2.
        let half_n =
            hex::decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")
                .expect("hex");
        assert!(s <= half_n.as_slice());
        assert!(r.iter().any(|b| *b != 0));
        let digest = sha2::Sha256::digest(input.as_bytes());
        let sig = Signature::from_slice(&sig).expect("r||s");
        k.verifying_key()
            .verify_prehash(&digest, &sig)
            .expect("verifies independently");
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(input.split('.').next().expect("header"))
            .expect("b64");
        assert_eq!(
            header,
            br#"{"alg":"ES256K","typ":"vc+jwt","cty":"vc","kid":"k"}"#
        );
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let k = key();
        let pk = PublicKey::from(k.verifying_key());
        let jws = sign(&H, br#"{"a":"some payload"}"#, &k);
        for i in 0..jws.len() {
            let mut b = jws.clone().into_bytes();
            b[i] ^= 1;
            let Ok(t) = String::from_utf8(b) else {
                continue;
            };
            let ok = parse(&t).and_then(|p| p.verify(&pk).map(|_| ()));
            assert!(ok.is_err(), "flipping byte {i} still verified");
        }
    }

    #[test]
    fn structural_refusals() {
        let k = key();
        let jws = sign(&H, b"{}", &k);
        let (h, rest) = jws.split_once('.').expect("dot");
        let enc = |v: &str| b64::encode(v.as_bytes());
        for (bad, why) in [
            (format!("{jws}.x"), "four parts"),
            (format!(".{rest}"), "empty header"),
            (format!("{}.{rest}", enc(r#"{"alg":"none"}"#)), "alg none"),
            (format!("{}.{rest}", enc(r#"{"alg":"ES256"}"#)), "ES256"),
            (
                format!("{}.{rest}", enc(r#"{"alg":"ES256K","alg":"ES256K"}"#)),
                "duplicate",
            ),
            (
                format!("{}.{rest}", enc(r#"{"alg":"ES256K","crit":["x"]}"#)),
                "crit",
            ),
            (
                format!("{}.{rest}", enc(r#"{"alg":"ES256K","b64":false}"#)),
                "b64",
            ),
            (
                format!("{}.{rest}", enc(r#"{"alg":"ES256K","jwk":{}}"#)),
                "embedded jwk",
            ),
            (format!("{h}.e30.AAAA"), "short signature"),
        ] {
            assert!(parse(&bad).is_err(), "{why}");
        }
        // The high-S twin of a valid signature is refused.
        let sig = Signature::from_slice(
            &b64::decode("s", jws.rsplit('.').next().expect("sig")).expect("b64"),
        )
        .expect("sig");
        let n = k256::Scalar::ZERO - *sig.s();
        let high = Signature::from_scalars(sig.r().to_bytes(), n.to_bytes()).expect("sig");
        let (input, _) = jws.rsplit_once('.').expect("dot");
        let twin = format!("{input}.{}", b64::encode(&high.to_bytes()));
        assert_eq!(parse(&twin).err(), Some(FormatError::BadSignature));
    }
}
