//! Shares at rest: sealed under the share-sealing key, the node storage key's HKDF purpose key
//! for this use alone ([`crate::keys::StoragePurpose::ShareSealing`]).
//!
//! AES-256-GCM with a fresh random 96-bit nonce per record (a record is written once per
//! deposit, so random nonces stay far from the collision bound) and associated data naming the
//! record: `"dlocker/at-rest/share/v1" ‖ node_id ‖ wallet_id ‖ epoch ‖ share_index` in the
//! protocol codec. A record copied to another wallet, epoch, index or node fails to open.
//!
//! Record format: `version (1) ‖ nonce (12) ‖ ciphertext+tag (34 + 16)`.

use crate::keys::ShareSealingKey;
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use dlocker_proto::codec::Writer;
use dlocker_proto::share::{SHARE_LEN, Share};
use rand::RngExt as _;
use zeroize::Zeroizing;

/// Associated-data label for sealed shares.
pub const SHARE_AAD_LABEL: &[u8] = b"dlocker/at-rest/share/v1";
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Length of a sealed share record.
pub const SEALED_SHARE_LEN: usize = 1 + NONCE_LEN + SHARE_LEN + TAG_LEN;

/// A sealed record failed to open. Deliberately without detail: tampering, a wrong key and a
/// moved record look the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealed record failed its integrity check")]
pub struct IntegrityError;

/// The identity of a stored share; bound into its associated data.
#[derive(Debug, Clone, Copy)]
pub struct ShareRecordId<'a> {
    /// This node.
    pub node_id: &'a str,
    /// The wallet.
    pub wallet_id: &'a str,
    /// The epoch.
    pub epoch: u64,
    /// The share index.
    pub share_index: u16,
}

impl ShareRecordId<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(SHARE_AAD_LABEL)
            .str(self.node_id)
            .str(self.wallet_id)
            .u64(self.epoch)
            .u16(self.share_index);
        w.finish()
    }
}

fn cipher(key: &ShareSealingKey) -> Aes256Gcm {
    Aes256Gcm::new(key.expose().into())
}

/// Seals a share for storage.
pub fn seal_share(
    key: &ShareSealingKey,
    id: &ShareRecordId<'_>,
    share: &Share,
) -> Result<Vec<u8>, IntegrityError> {
    let nonce: [u8; NONCE_LEN] = rand::rng().random();
    let plaintext = share.encode();
    let aad = id.aad();
    let ct = cipher(key)
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| IntegrityError)?;
    let mut out = Vec::with_capacity(SEALED_SHARE_LEN);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a sealed share and checks it is the share the record claims to be.
pub fn open_share(
    key: &ShareSealingKey,
    id: &ShareRecordId<'_>,
    sealed: &[u8],
) -> Result<Share, IntegrityError> {
    if sealed.len() != SEALED_SHARE_LEN || sealed[0] != VERSION {
        return Err(IntegrityError);
    }
    let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    let aad = id.aad();
    let plaintext = Zeroizing::new(
        cipher(key)
            .decrypt((&n).into(), Payload { msg: ct, aad: &aad })
            .map_err(|_| IntegrityError)?,
    );
    let share = Share::decode(&plaintext).map_err(|_| IntegrityError)?;
    if share.index() != id.share_index {
        return Err(IntegrityError);
    }
    Ok(share)
}

/// Associated-data label for the sealed customer identity.
pub const CUSTOMER_AAD_LABEL: &[u8] = b"dlocker/at-rest/customer/v1";

/// Who a wallet's owner is, as the bank node recorded it at enrollment: the passkey user name
/// and the bank's own customer reference. Personal data: sealed at rest, shown to staff only.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomerIdentity {
    /// The passkey user name given at enrollment.
    pub user_name: String,
    /// The bank's customer reference, when the backup gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_reference: Option<String>,
}

impl std::fmt::Debug for CustomerIdentity {
    // Kept out of logs like every other personal datum.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerIdentity(REDACTED)")
    }
}

fn customer_aad(node_id: &str, wallet_id: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(CUSTOMER_AAD_LABEL).str(node_id).str(wallet_id);
    w.finish()
}

/// Seals a customer identity for `wallet_id` on `node_id` (AES-256-GCM, fresh nonce, associated
/// data naming node and wallet: a record moved to another wallet fails to open).
pub fn seal_customer(
    key: &[u8; 32],
    node_id: &str,
    wallet_id: &str,
    identity: &CustomerIdentity,
) -> Result<Vec<u8>, IntegrityError> {
    let plaintext = Zeroizing::new(serde_json::to_vec(identity).map_err(|_| IntegrityError)?);
    let nonce: [u8; NONCE_LEN] = rand::rng().random();
    let aad = customer_aad(node_id, wallet_id);
    let ct = Aes256Gcm::new(key.into())
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| IntegrityError)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens what [`seal_customer`] sealed for the same node and wallet.
pub fn open_customer(
    key: &[u8; 32],
    node_id: &str,
    wallet_id: &str,
    sealed: &[u8],
) -> Result<CustomerIdentity, IntegrityError> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
        return Err(IntegrityError);
    }
    let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    let aad = customer_aad(node_id, wallet_id);
    let plaintext = Zeroizing::new(
        Aes256Gcm::new(key.into())
            .decrypt((&n).into(), Payload { msg: ct, aad: &aad })
            .map_err(|_| IntegrityError)?,
    );
    serde_json::from_slice(&plaintext).map_err(|_| IntegrityError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlocker_proto::secret::SecretScalar;
    use dlocker_proto::share::split;

    #[test]
    fn round_trip_tamper_and_rebinding() {
        let key = ShareSealingKey::generate();
        let (shares, _) = split(&SecretScalar::random(), 2, 3).expect("split");
        let share = &shares[1];
        let id = ShareRecordId {
            node_id: "n1",
            wallet_id: "w1",
            epoch: 1,
            share_index: 2,
        };
        let sealed = seal_share(&key, &id, share).expect("seal");
        assert_eq!(sealed.len(), SEALED_SHARE_LEN);
        let back = open_share(&key, &id, &sealed).expect("open");
        assert_eq!(back.encode(), share.encode());
        // The plaintext share is nowhere in the record.
        let raw = share.value().to_bytes();
        assert!(!sealed.windows(32).any(|w| w == raw.as_slice()));

        // Every single-byte flip is caught.
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(
                open_share(&key, &id, &t).err(),
                Some(IntegrityError),
                "byte {i}"
            );
        }
        // Truncated or extended.
        assert!(open_share(&key, &id, &sealed[..sealed.len() - 1]).is_err());
        let mut long = sealed.clone();
        long.push(0);
        assert!(open_share(&key, &id, &long).is_err());
        // Another key, node, wallet, epoch or index.
        assert!(open_share(&ShareSealingKey::generate(), &id, &sealed).is_err());
        assert!(
            open_share(
                &key,
                &ShareRecordId {
                    node_id: "n2",
                    ..id
                },
                &sealed
            )
            .is_err()
        );
        assert!(
            open_share(
                &key,
                &ShareRecordId {
                    wallet_id: "w2",
                    ..id
                },
                &sealed
            )
            .is_err()
        );
        assert!(open_share(&key, &ShareRecordId { epoch: 2, ..id }, &sealed).is_err());
        assert!(
            open_share(
                &key,
                &ShareRecordId {
                    share_index: 3,
                    ..id
                },
                &sealed
            )
            .is_err()
        );
        // Two seals of the same share differ (fresh nonce).
        assert_ne!(seal_share(&key, &id, share).expect("seal"), sealed);
    }

    #[test]
    fn customer_round_trip_and_rebinding() {
        let key = [9u8; 32];
        let who = CustomerIdentity {
            user_name: "alice@example.com".into(),
            customer_reference: Some("CUST-42".into()),
        };
        let sealed = seal_customer(&key, "n1", "w1", &who).expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"CUST-42"), "not in clear");
        assert_eq!(open_customer(&key, "n1", "w1", &sealed).expect("open"), who);
        assert!(open_customer(&key, "n1", "w2", &sealed).is_err());
        assert!(open_customer(&key, "n2", "w1", &sealed).is_err());
        assert!(open_customer(&[8u8; 32], "n1", "w1", &sealed).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open_customer(&key, "n1", "w1", &flipped).is_err());
        assert_eq!(format!("{who:?}"), "CustomerIdentity(REDACTED)");
    }
}
