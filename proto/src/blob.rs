//! The wallet blob: the owner's recovery data encrypted under a key derived from the shared
//! secret `k`. Every trustee stores it; it is useless without `k`.
//!
//! `key = HKDF-SHA256(ikm = k (32 bytes BE), salt = wallet_id, info = "dlocker/blob/key/v1")`,
//! AES-256-GCM, random nonce, `aad = "dlocker/blob/aad/v1" ‖ wallet_id`.
//! Wire format: `version (1) ‖ nonce (12) ‖ ciphertext+tag`.

use crate::codec::DecodeError;
use crate::labels;
use crate::sealed_under_k::{self, OpenError};
use crate::secret::{SecretBytes, SecretScalar};
use rand::RngExt as _;
use sha2::{Digest, Sha256};

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

fn aad(wallet_id: &str) -> Vec<u8> {
    [labels::BLOB_AAD, wallet_id.as_bytes()].concat()
}

/// Encrypts the wallet data.
pub fn seal(k: &SecretScalar, wallet_id: &str, plaintext: &[u8]) -> Vec<u8> {
    seal_with_nonce(k, wallet_id, plaintext, rand::rng().random())
}

/// Encrypts with a given nonce (test vectors only; a nonce must never repeat under one key).
#[doc(hidden)]
pub fn seal_with_nonce(
    k: &SecretScalar,
    wallet_id: &str,
    plaintext: &[u8],
    nonce: [u8; 12],
) -> Vec<u8> {
    sealed_under_k::seal(
        k,
        wallet_id,
        labels::BLOB_KEY,
        &aad(wallet_id),
        plaintext,
        nonce,
    )
}

/// Decrypts the wallet data.
pub fn open(k: &SecretScalar, wallet_id: &str, blob: &[u8]) -> Result<SecretBytes, BlobError> {
    sealed_under_k::open(k, wallet_id, labels::BLOB_KEY, &aad(wallet_id), blob).map_err(|e| match e
    {
        OpenError::Malformed(d) => BlobError::Malformed(d),
        OpenError::Decrypt => BlobError::Decrypt,
    })
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
        assert_eq!(
            open(&SecretScalar::random(), "w", &blob).err(),
            Some(BlobError::Decrypt)
        );
        let mut t = blob.clone();
        t[20] ^= 1;
        assert_eq!(open(&k, "w", &t).err(), Some(BlobError::Decrypt));
        assert!(open(&k, "w", &[]).is_err());
    }
}
