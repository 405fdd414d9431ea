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
use crate::sealed_under_k::{self, OpenError};
use crate::secret::{SecretBytes, SecretScalar};
use rand::RngExt as _;

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

fn aad(wallet_id: &str, target: &ManifestHash) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(labels::ROTATION_RECORD_AAD)
        .str(wallet_id)
        .fixed(&target.0);
    w.finish()
}

/// Seals `plaintext` under `k` for the rotation of `wallet_id` to the manifest `target`.
pub fn seal(k: &SecretScalar, wallet_id: &str, target: &ManifestHash, plaintext: &[u8]) -> Vec<u8> {
    let aad = aad(wallet_id, target);
    sealed_under_k::seal(
        k,
        wallet_id,
        labels::ROTATION_RECORD_KEY,
        &aad,
        plaintext,
        rand::rng().random(),
    )
}

/// Opens a record sealed by [`seal`] with the same `k`, wallet and target.
pub fn open(
    k: &SecretScalar,
    wallet_id: &str,
    target: &ManifestHash,
    sealed: &[u8],
) -> Result<SecretBytes, RecordError> {
    let aad = aad(wallet_id, target);
    sealed_under_k::open(k, wallet_id, labels::ROTATION_RECORD_KEY, &aad, sealed).map_err(|e| {
        match e {
            OpenError::Malformed(d) => RecordError::Malformed(d),
            OpenError::Decrypt => RecordError::Decrypt,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = SecretScalar::random();
        let h = ManifestHash([1; 32]);
        let sealed = seal(&k, "w", &h, b"shares");
        assert_eq!(
            open(&k, "w", &h, &sealed).expect("open").expose(),
            b"shares"
        );
        assert_eq!(
            open(&k, "w2", &h, &sealed).err(),
            Some(RecordError::Decrypt)
        );
        assert_eq!(
            open(&k, "w", &ManifestHash([2; 32]), &sealed).err(),
            Some(RecordError::Decrypt)
        );
        assert_eq!(
            open(&SecretScalar::random(), "w", &h, &sealed).err(),
            Some(RecordError::Decrypt)
        );
        // A blob sealed under the same k is not a record (different key label).
        let blob = crate::blob::seal(&k, "w", b"shares");
        assert!(open(&k, "w", &h, &blob).is_err());
        assert!(open(&k, "w", &h, &[]).is_err());
    }
}
