//! secp256k1 public keys as JSON Web Keys (RFC 7517, RFC 8812 §3.1: `kty` "EC", `crv`
//! "secp256k1") and their RFC 7638 thumbprints.

use crate::b64;
use crate::error::FormatError;
use k256::PublicKey;
use k256::elliptic_curve::sec1::ToSec1Point as _;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// A secp256k1 public key as a JWK: the affine coordinates, 32 bytes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jwk {
    x: [u8; 32],
    y: [u8; 32],
}

/// The JSON form, members in the order this crate writes them.
#[derive(Serialize)]
struct JwkJson<'a> {
    kty: &'a str,
    crv: &'a str,
    x: String,
    y: String,
}

impl Jwk {
    /// The JWK of `pk`.
    pub fn from_public_key(pk: &PublicKey) -> Self {
        let point = pk.to_sec1_point(false);
        let bytes = point.as_bytes();
        let mut x = [0u8; 32];
        let mut y = [0u8; 32];
        // Uncompressed SEC1: 0x04 ‖ x ‖ y.
        x.copy_from_slice(&bytes[1..33]);
        y.copy_from_slice(&bytes[33..65]);
        Self { x, y }
    }

    /// The key, checked to be a point on secp256k1 (not the identity).
    pub fn to_public_key(&self) -> Result<PublicKey, FormatError> {
        let mut sec1 = [0u8; 65];
        sec1[0] = 4;
        sec1[1..33].copy_from_slice(&self.x);
        sec1[33..].copy_from_slice(&self.y);
        PublicKey::from_sec1_bytes(&sec1)
            .map_err(|_| FormatError::Key("the JWK is not a point on secp256k1"))
    }

    /// `{"kty":"EC","crv":"secp256k1","x":…,"y":…}`.
    pub fn to_json(&self) -> Value {
        // A struct of strings always serialises.
        serde_json::to_value(self.json_form()).unwrap_or(Value::Null)
    }

    /// The JWK as compact JSON text.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(&self.json_form()).unwrap_or_default()
    }

    fn json_form(&self) -> JwkJson<'static> {
        JwkJson {
            kty: "EC",
            crv: "secp256k1",
            x: b64::encode(&self.x),
            y: b64::encode(&self.y),
        }
    }

    /// Parses a public secp256k1 JWK. Refuses any other key type or curve, coordinates that are
    /// not 32 bytes, a point off the curve, and a JWK carrying a private part (`d`). Other
    /// members (`kid`, `use`, `alg` = ES256K) are allowed.
    pub fn from_json(v: &Map<String, Value>) -> Result<Self, FormatError> {
        let s = |k: &str, field: &'static str| crate::json::str_member(v, k, field);
        if s("kty", "jwk.kty")? != "EC" {
            return Err(FormatError::field("jwk.kty", "must be \"EC\""));
        }
        if s("crv", "jwk.crv")? != "secp256k1" {
            return Err(FormatError::field("jwk.crv", "must be \"secp256k1\""));
        }
        if v.contains_key("d") {
            return Err(FormatError::field(
                "jwk.d",
                "a public JWK must not carry the private key",
            ));
        }
        if let Some(alg) = crate::json::opt_str_member(v, "alg", "jwk.alg")?
            && alg != crate::jws::ALG
        {
            return Err(FormatError::field(
                "jwk.alg",
                "must be \"ES256K\" when present",
            ));
        }
        let coord = |k: &str, field: &'static str| -> Result<[u8; 32], FormatError> {
            b64::decode(field, s(k, field)?)?
                .try_into()
                .map_err(|_| FormatError::field(field, "must be 32 bytes"))
        };
        let jwk = Self {
            x: coord("x", "jwk.x")?,
            y: coord("y", "jwk.y")?,
        };
        jwk.to_public_key()?;
        Ok(jwk)
    }

    /// Parses JWK JSON text.
    pub fn from_json_str(s: &str) -> Result<Self, FormatError> {
        Self::from_json(&crate::json::parse_object("jwk", s.as_bytes())?)
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256 of the required members in lexicographic
    /// order, no whitespace).
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"secp256k1","kty":"EC","x":"{}","y":"{}"}}"#,
            b64::encode(&self.x),
            b64::encode(&self.y)
        );
        b64::encode(&Sha256::digest(canonical.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate as _;

    #[test]
    fn round_trip_and_refusals() {
        let pk = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let jwk = Jwk::from_public_key(&pk);
        let text = jwk.to_json_string();
        assert!(text.starts_with(r#"{"kty":"EC","crv":"secp256k1","x":""#));
        let back = Jwk::from_json_str(&text).expect("parses");
        assert_eq!(back.to_public_key().expect("key"), pk);
        assert_eq!(jwk.thumbprint().len(), 43);

        let mut v = jwk.to_json();
        v["d"] = Value::String("AAAA".into());
        assert!(Jwk::from_json_str(&v.to_string()).is_err());
        let mut v = jwk.to_json();
        v["crv"] = Value::String("P-256".into());
        assert!(Jwk::from_json_str(&v.to_string()).is_err());
        // y of another point: off the curve.
        let mut v = jwk.to_json();
        let mut y = b64::decode("y", v["y"].as_str().expect("y")).expect("b64");
        y[31] ^= 1;
        v["y"] = Value::String(b64::encode(&y));
        assert!(Jwk::from_json_str(&v.to_string()).is_err());
    }
}
