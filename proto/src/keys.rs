//! Public-key encodings and node identifiers.

use crate::codec::DecodeError;
use crate::labels;
use k256::PublicKey;
use k256::elliptic_curve::sec1::ToSec1Point;
use sha2::{Digest, Sha256};

/// Length of a SEC1 compressed secp256k1 point.
pub const PUBLIC_KEY_LEN: usize = 33;

/// SEC1 compressed encoding of a public key or non-identity point.
pub fn encode_public_key(pk: &PublicKey) -> [u8; PUBLIC_KEY_LEN] {
    let point = pk.to_sec1_point(true);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(point.as_bytes());
    out
}

/// Parses a SEC1 compressed point; refuses the identity, uncompressed forms and bad lengths.
pub fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, DecodeError> {
    if bytes.len() != PUBLIC_KEY_LEN {
        return Err(DecodeError::Invalid("public key length"));
    }
    // Only the compressed tags. The SEC1 parser also reads the 33-byte "compact" form
    // (`0x05 ‖ x`), which would give every key a second encoding: a signed statement with its
    // signer re-tagged would still verify, and a manifest or envelope would decode to an object
    // that re-encodes to other bytes (found by the `statement_body` fuzz target).
    if !matches!(bytes[0], 0x02 | 0x03) {
        return Err(DecodeError::Invalid("public key"));
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| DecodeError::Invalid("public key"))
}

/// A node's id: hex of the first 16 bytes of SHA-256(label ‖ compressed public key).
pub fn node_id(pk: &PublicKey) -> String {
    let digest = Sha256::new()
        .chain_update(labels::NODE_ID)
        .chain_update(encode_public_key(pk))
        .finalize();
    hex::encode(&digest[..16])
}

/// A `PublicKey` as hex (for configs and display).
pub fn public_key_hex(pk: &PublicKey) -> String {
    hex::encode(encode_public_key(pk))
}

/// Parses a hex public key (configs, trustee files).
pub fn public_key_from_hex(s: &str) -> Result<PublicKey, DecodeError> {
    let bytes = hex::decode(s.trim()).map_err(|_| DecodeError::Invalid("public key hex"))?;
    decode_public_key(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate as _;

    /// Regression (fuzz target `statement_body`): a key has exactly one encoding. The SEC1
    /// "compact" tag 0x05 and every other tag are refused, for both parities of y.
    #[test]
    fn only_the_compressed_encoding_decodes() {
        for _ in 0..16 {
            let pk = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
            let enc = encode_public_key(&pk);
            assert_eq!(decode_public_key(&enc), Ok(pk));
            for tag in [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff] {
                let mut other = enc;
                other[0] = tag;
                assert!(
                    decode_public_key(&other).is_err(),
                    "tag {tag:#04x} accepted"
                );
            }
        }
    }

    /// The case the fuzzer found: `0x05 ‖ x`, which the SEC1 parser reads as this very key.
    #[test]
    fn compact_form_of_a_key_is_refused() {
        let mut seen = 0;
        for _ in 0..64 {
            let pk = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
            let mut compact = encode_public_key(&pk);
            compact[0] = 0x05;
            if PublicKey::from_sec1_bytes(&compact) == Ok(pk) {
                seen += 1;
                assert!(decode_public_key(&compact).is_err());
            }
        }
        assert!(
            seen > 0,
            "no key in 64 had a compact twin (expected about half)"
        );
    }
}
