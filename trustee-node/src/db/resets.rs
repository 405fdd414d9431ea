//! The bank's passkey reset requests. Layout: [`crate::db`].

use super::{Database, Key, PASSKEY_RESETS_TREE, StoreError, Table, from_json, to_json};
use serde::{Deserialize, Serialize};

/// A passkey reset request at the bank: what the staff approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyResetRecord {
    /// Request id (hex, derived from the wallet and the new credential's fingerprint).
    pub id: String,
    /// The wallet.
    pub wallet_id: String,
    /// The new credential's fingerprint (hex).
    pub credential_fingerprint: String,
    /// Unix seconds.
    pub opened_at: u64,
    /// Unix seconds: no approval is signed for it from then on.
    pub expires_at: u64,
    /// Staff ids who approved (distinct).
    #[serde(default)]
    pub approvals: Vec<String>,
    /// The signed `PasskeyResetApproval` once the policy held.
    #[serde(default)]
    pub approval: Option<Vec<u8>>,
}

impl Database {
    /// The request stored under `id`, if any.
    pub fn passkey_reset(&self, id: &str) -> Result<Option<PasskeyResetRecord>, StoreError> {
        self.t(Table::PasskeyResets)
            .get(id.as_bytes())?
            .map(|v| from_json(PASSKEY_RESETS_TREE, &v))
            .transpose()
    }

    /// Writes a request (not yet durable).
    pub fn put_passkey_reset(&self, rec: &PasskeyResetRecord) -> Result<(), StoreError> {
        self.t(Table::PasskeyResets)
            .insert(rec.id.as_bytes(), &to_json(PASSKEY_RESETS_TREE, rec)?)?;
        Ok(())
    }

    /// Every stored request with its key, in key (request id) order.
    pub fn passkey_resets(&self) -> Result<Vec<(Key, PasskeyResetRecord)>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.t(Table::PasskeyResets).entries()? {
            out.push((Key(k), from_json(PASSKEY_RESETS_TREE, &v)?));
        }
        Ok(out)
    }
}
