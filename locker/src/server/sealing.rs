//! Hosted issuer keys at rest: AES-256-GCM under the locker's sealing key, a fresh random nonce
//! per record, associated data binding the record to its issuer, so a sealed key copied onto
//! another issuer's record does not open.
//!
//! The sealing key is the node storage key's purpose key for this use (HKDF-SHA256 with its own
//! label, derived by the node): separate from the key sealing wallet shares, while needing no
//! new key file.

use super::error::LockerError;
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use dlocker_proto::codec::Writer;
use k256::ecdsa::SigningKey;
use rand::RngExt as _;
use zeroize::Zeroizing;

/// Associated-data label of a sealed hosted key.
pub const HOSTED_KEY_AAD: &[u8] = b"dlocker/locker/hosted-key/v1";
const VERSION: u8 = 1;

fn aad(issuer_id: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(HOSTED_KEY_AAD).str(issuer_id);
    w.finish()
}

/// Seals a hosted signing key for `issuer_id`.
pub fn seal(
    sealing_key: &[u8; 32],
    issuer_id: &str,
    key: &SigningKey,
) -> Result<Vec<u8>, LockerError> {
    let nonce: [u8; 12] = rand::rng().random();
    let secret = Zeroizing::new(key.to_bytes());
    let aad = aad(issuer_id);
    let ct = Aes256Gcm::new(sealing_key.into())
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: secret.as_slice(),
                aad: &aad,
            },
        )
        .map_err(|_| LockerError::Internal("sealing a hosted key failed".into()))?;
    Ok([&[VERSION][..], &nonce, &ct].concat())
}

/// Opens a hosted signing key sealed for `issuer_id`.
pub fn open(
    sealing_key: &[u8; 32],
    issuer_id: &str,
    sealed: &[u8],
) -> Result<SigningKey, LockerError> {
    let fail = || LockerError::corrupt("hosted key", "failed its integrity check");
    if sealed.len() != 1 + 12 + 32 + 16 || sealed[0] != VERSION {
        return Err(fail());
    }
    let nonce: [u8; 12] = sealed[1..13].try_into().map_err(|_| fail())?;
    let aad = aad(issuer_id);
    let pt = Zeroizing::new(
        Aes256Gcm::new(sealing_key.into())
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: &sealed[13..],
                    aad: &aad,
                },
            )
            .map_err(|_| fail())?,
    );
    SigningKey::from_slice(&pt).map_err(|_| fail())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate as _;

    #[test]
    fn seal_open_and_bind() {
        let sk = [7u8; 32];
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let sealed = seal(&sk, "a.issuer", &key).expect("seal");
        assert_eq!(
            open(&sk, "a.issuer", &sealed).expect("open").to_bytes(),
            key.to_bytes()
        );
        assert!(
            open(&sk, "b.issuer", &sealed).is_err(),
            "bound to its issuer"
        );
        let mut t = sealed.clone();
        t[20] ^= 1;
        assert!(open(&sk, "a.issuer", &t).is_err());
        assert!(open(&[8u8; 32], "a.issuer", &sealed).is_err());
    }
}
