//! The one AEAD construction for data sealed under a key derived from a wallet secret `k` (the
//! wallet blob, the rotation record): `key = HKDF-SHA256(ikm = k (32 bytes BE), salt = wallet_id,
//! info = key_label)`, AES-256-GCM with a random nonce, wire format
//! `version (1) ‖ nonce (12) ‖ ciphertext+tag`. Callers differ only in the key label and the AAD.

use crate::codec::DecodeError;
use crate::secret::{SecretBytes, SecretScalar};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why sealed bytes did not open.
pub(crate) enum OpenError {
    /// Not in the wire format.
    Malformed(DecodeError),
    /// Wrong key, wrong AAD or tampered.
    Decrypt,
}

fn cipher(k: &SecretScalar, wallet_id: &str, key_label: &[u8]) -> Aes256Gcm {
    let ikm = k.to_bytes();
    let hk = Hkdf::<Sha256>::new(Some(wallet_id.as_bytes()), ikm.as_ref());
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
    let _ = hk.expand(key_label, key.as_mut());
    Aes256Gcm::new((&*key).into())
}

/// Seals `plaintext` with the given nonce (which must never repeat under one key).
pub(crate) fn seal(
    k: &SecretScalar,
    wallet_id: &str,
    key_label: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Vec<u8> {
    // AES-GCM encryption only fails for inputs over 64 GiB.
    let ct = cipher(k, wallet_id, key_label)
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens bytes made by [`seal`] with the same `k`, wallet, key label and AAD.
pub(crate) fn open(
    k: &SecretScalar,
    wallet_id: &str,
    key_label: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<SecretBytes, OpenError> {
    let (&version, rest) = sealed
        .split_first()
        .ok_or(OpenError::Malformed(DecodeError::Truncated))?;
    if version != VERSION {
        return Err(OpenError::Malformed(DecodeError::UnsupportedVersion(
            version,
        )));
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError::Malformed(DecodeError::Truncated));
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    cipher(k, wallet_id, key_label)
        .decrypt((&n).into(), Payload { msg: ct, aad })
        .map(SecretBytes::new)
        .map_err(|_| OpenError::Decrypt)
}
