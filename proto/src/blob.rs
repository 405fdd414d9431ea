//! The wallet blob: the owner's recovery data encrypted under a key derived from the shared
//! secret `k`. Every trustee stores it; it is useless without `k`.
//!
//! `key = HKDF-SHA256(ikm = k (32 bytes BE), salt = wallet_id, info = "dlocker/blob/key/v1")`,
//! AES-256-GCM, random nonce, `aad = "dlocker/blob/aad/v1" ‖ wallet_id`.
//! Wire format: `version (1) ‖ nonce (12) ‖ ciphertext+tag`.

use crate::codec::DecodeError;
use crate::labels;
use crate::secret::{SecretBytes, SecretScalar};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use rand::RngExt as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const VERSION: u8 = 1;

/// Why a blob did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Not a blob.
    #[error("malformed wallet blob: {0}")]
    Malformed(#[from] DecodeError),
    /// Wrong key or tampered blob.
    #[error("wallet blob does not decrypt under this secret")]
    Decrypt,
}

fn cipher(k: &SecretScalar, wallet_id: &str) -> Aes256Gcm {
    let ikm = k.to_bytes();
    let hk = Hkdf::<Sha256>::new(Some(wallet_id.as_bytes()), ikm.as_ref());
    let mut key = Zeroizing::new([0u8; 32]);
    let _ = hk.expand(labels::BLOB_KEY, key.as_mut());
    Aes256Gcm::new((&*key).into())
}

fn aad(wallet_id: &str) -> Vec<u8> {
    [labels::BLOB_AAD, wallet_id.as_bytes()].concat()
}

/// Encrypts the wallet data.
pub fn seal(k: &SecretScalar, wallet_id: &str, plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; 12] = rand::rng().random();
    seal_with_nonce(k, wallet_id, plaintext, nonce)
}

/// Encrypts with a given nonce (test vectors only; a nonce must never repeat under one key).
#[doc(hidden)]
pub fn seal_with_nonce(k: &SecretScalar, wallet_id: &str, plaintext: &[u8], nonce: [u8; 12]) -> Vec<u8> {
    let aad = aad(wallet_id);
    // AES-GCM encryption only fails for inputs over 64 GiB.
    let ct = cipher(k, wallet_id)
        .encrypt((&nonce).into(), Payload { msg: plaintext, aad: &aad })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + 12 + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Decrypts the wallet data.
pub fn open(k: &SecretScalar, wallet_id: &str, blob: &[u8]) -> Result<SecretBytes, BlobError> {
    let (&version, rest) = blob.split_first().ok_or(DecodeError::Truncated)?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version).into());
    }
    if rest.len() < 12 + 16 {
        return Err(DecodeError::Truncated.into());
    }
    let (nonce, ct) = rest.split_at(12);
    let mut n = [0u8; 12];
    n.copy_from_slice(nonce);
    let aad = aad(wallet_id);
    cipher(k, wallet_id)
        .decrypt((&n).into(), Payload { msg: ct, aad: &aad })
        .map(SecretBytes::new)
        .map_err(|_| BlobError::Decrypt)
}

/// SHA-256 of the blob, as recorded in the manifest.
pub fn hash(blob: &[u8]) -> [u8; 32] {
    Sha256::digest(blob).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_failures() {
        let k = SecretScalar::random();
        let blob = seal(&k, "w", b"seed words");
        assert_eq!(open(&k, "w", &blob).expect("open").expose(), b"seed words");
        assert_eq!(open(&k, "other", &blob).err(), Some(BlobError::Decrypt));
        assert_eq!(open(&SecretScalar::random(), "w", &blob).err(), Some(BlobError::Decrypt));
        let mut t = blob.clone();
        t[20] ^= 1;
        assert_eq!(open(&k, "w", &t).err(), Some(BlobError::Decrypt));
        assert!(open(&k, "w", &[]).is_err());
    }
}
