//! Owner ceremony nonces and staff request nonces. Layout: [`crate::db`].

use super::{Database, Key, OWNER_NONCES_TREE, StoreError, Table, from_json, to_json};
use serde::{Deserialize, Serialize};

/// One issued owner nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceRecord {
    /// The wallet it was issued for.
    pub wallet_id: String,
    /// The owner action byte.
    pub action: u8,
    /// Unix seconds; refused from then on.
    pub expires_at: u64,
    /// Spent by a verified response.
    pub used: bool,
}

/// A nonce record as read, to spend it with a compare-and-swap against exactly that value.
#[derive(Debug, Clone)]
pub struct NonceSnapshot {
    bytes: Vec<u8>,
    /// The record.
    pub record: NonceRecord,
}

impl Database {
    /// Writes an owner nonce (not yet durable).
    pub fn put_owner_nonce(&self, nonce: &[u8], rec: &NonceRecord) -> Result<(), StoreError> {
        self.t(Table::OwnerNonces)
            .insert(nonce, &to_json(OWNER_NONCES_TREE, rec)?)?;
        Ok(())
    }

    /// The owner nonce record, if issued and not swept.
    pub fn owner_nonce(&self, nonce: &[u8]) -> Result<Option<NonceSnapshot>, StoreError> {
        let Some(bytes) = self.t(Table::OwnerNonces).get(nonce)? else {
            return Ok(None);
        };
        Ok(Some(NonceSnapshot {
            record: from_json(OWNER_NONCES_TREE, &bytes)?,
            bytes,
        }))
    }

    /// Marks the nonce used if its record is still `old`; `false` when another request spent
    /// or changed it first (not yet durable).
    pub fn spend_owner_nonce(&self, nonce: &[u8], old: &NonceSnapshot) -> Result<bool, StoreError> {
        let mut rec = old.record.clone();
        rec.used = true;
        let new = to_json(OWNER_NONCES_TREE, &rec)?;
        Ok(self.t(Table::OwnerNonces).compare_and_swap(
            nonce,
            Some(old.bytes.as_slice()),
            Some(new.as_slice()),
        )?)
    }

    /// Removes owner nonces that expired by `now` (spent or not, and unreadable ones); returns
    /// how many.
    pub fn sweep_owner_nonces(&self, now: u64) -> Result<usize, StoreError> {
        let mut removed = 0;
        let tree = self.t(Table::OwnerNonces);
        for (k, v) in tree.entries()? {
            let expired = serde_json::from_slice::<NonceRecord>(&v)
                .map(|r| r.expires_at <= now)
                .unwrap_or(true);
            if expired && tree.remove(&k)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The keys of owner nonces issued for `wallet_id`, in no stated order.
    pub fn owner_nonces_of_wallet(&self, wallet_id: &str) -> Result<Vec<Key>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.t(Table::OwnerNonces).entries()? {
            if serde_json::from_slice::<NonceRecord>(&v).is_ok_and(|r| r.wallet_id == wallet_id) {
                out.push(Key(k));
            }
        }
        Ok(out)
    }

    /// Records a staff request nonce with its timestamp if it is new (atomic insert-if-absent);
    /// `false` if it was used before.
    pub fn claim_staff_nonce(
        &self,
        nonce: &[u8],
        timestamp: u64,
    ) -> Result<bool, super::EngineError> {
        Ok(self.t(Table::StaffNonces).compare_and_swap(
            nonce,
            None,
            Some(&timestamp.to_be_bytes()[..]),
        )?)
    }

    /// Drops staff nonces older than `horizon`, looking at no more than 64 of them (a cheap
    /// step done on every accepted request).
    pub fn prune_staff_nonces(&self, horizon: u64) -> Result<(), super::EngineError> {
        let tree = self.t(Table::StaffNonces);
        for (k, v) in tree.range(None, None, 64)? {
            let ts = <[u8; 8]>::try_from(&v[..])
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if ts < horizon {
                tree.remove(&k)?;
            }
        }
        Ok(())
    }
}
