//! Sealing of the secret part of a client's rotation record (the shares of the epoch being
//! rotated to), so an interrupted rotation can be resumed from a file without that file holding
//! any share in the clear.
//!
//! `key = HKDF-SHA256(ikm = k (32 bytes BE), salt = wallet_id, info = "dlocker/rotation-record/key/v1")`,
//! AES-256-GCM with a random nonce, `aad = "dlocker/rotation-record/aad/v1" ‖ wallet_id str ‖
//! target manifest hash [32]` (codec-encoded), wire format `version (1) ‖ nonce (12) ‖
//! ciphertext+tag`. `k` is a wallet secret of the rotation (the old or the new one): only a holder
//! of `k` (the live device, or a device that just recovered the wallet) can open it. The label keeps
//! the key apart from the blob key derived from the same `k`.

use crate::codec::{DecodeError, Writer};
use crate::labels;
use crate::manifest::ManifestHash;
use crate::secret::{SecretBytes, SecretScalar};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use rand::RngExt as _;
use sha2::Sha256;
use zeroize::Zeroizing;

const VERSION: u8 = 1;

/// Why a sealed record did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not a sealed record.
    #[error("malformed sealed record: {0}")]
    Malformed(#[from] DecodeError),
    /// Wrong secret, wrong wallet or rotation, or a tampered record.
    #[error("sealed record does not open under this secret")]
    Decrypt,
}

fn cipher(k: &SecretScalar, wallet_id: &str) -> Aes256Gcm {
    let ikm = k.to_bytes();
    let hk = Hkdf::<Sha256>::new(Some(wallet_id.as_bytes()), ikm.as_ref());
    let mut key = Zeroizing::new([0u8; 32]);
    let _ = hk.expand(labels::ROTATION_RECORD_KEY, key.as_mut());
    Aes256Gcm::new((&*key).into())
}

fn aad(wallet_id: &str, target: &ManifestHash) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(labels::ROTATION_RECORD_AAD).str(wallet_id).fixed(&target.0);
    w.finish()
}

/// Seals `plaintext` under `k` for the rotation of `wallet_id` to the manifest `target`.
pub fn seal(k: &SecretScalar, wallet_id: &str, target: &ManifestHash, plaintext: &[u8]) -> Vec<u8> {
    let nonce: [u8; 12] = rand::rng().random();
    // AES-GCM encryption only fails for inputs over 64 GiB.
    let ct = cipher(k, wallet_id)
        .encrypt((&nonce).into(), Payload { msg: plaintext, aad: &aad(wallet_id, target) })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + 12 + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens a record sealed by [`seal`] with the same `k`, wallet and target.
pub fn open(
    k: &SecretScalar,
    wallet_id: &str,
    target: &ManifestHash,
    sealed: &[u8],
) -> Result<SecretBytes, RecordError> {
    let (&version, rest) = sealed.split_first().ok_or(DecodeError::Truncated)?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version).into());
    }
    if rest.len() < 12 + 16 {
        return Err(DecodeError::Truncated.into());
    }
    let (nonce, ct) = rest.split_at(12);
    let mut n = [0u8; 12];
    n.copy_from_slice(nonce);
    cipher(k, wallet_id)
        .decrypt((&n).into(), Payload { msg: ct, aad: &aad(wallet_id, target) })
        .map(SecretBytes::new)
        .map_err(|_| RecordError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = SecretScalar::random();
        let h = ManifestHash([1; 32]);
        let sealed = seal(&k, "w", &h, b"shares");
        assert_eq!(open(&k, "w", &h, &sealed).expect("open").expose(), b"shares");
        assert_eq!(open(&k, "w2", &h, &sealed).err(), Some(RecordError::Decrypt));
        assert_eq!(open(&k, "w", &ManifestHash([2; 32]), &sealed).err(), Some(RecordError::Decrypt));
        assert_eq!(open(&SecretScalar::random(), "w", &h, &sealed).err(), Some(RecordError::Decrypt));
        // A blob sealed under the same k is not a record (different key label).
        let blob = crate::blob::seal(&k, "w", b"shares");
        assert!(open(&k, "w", &h, &blob).is_err());
        assert!(open(&k, "w", &h, &[]).is_err());
    }
}
