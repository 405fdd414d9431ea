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
