//! [`Batch`]: one atomic multi-record change.

use super::{
    Database, EPOCHS_TREE, Key, SESSIONS_TREE, StagedRecord, StoreError, StoredSession, Table,
    WALLETS_TREE, WalletMeta, recovery::session_index_key, to_json, wallet_key,
};
use crate::epochs::state::EpochState;
use dlocker_store::TxAbort;

/// One atomic change: typed puts and removes over any tables, and preconditions. A plain value,
/// so a backend can run it again after a conflict.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<(Table, Vec<u8>, Option<Vec<u8>>)>,
    require_not_enrolled: Option<Vec<u8>>,
}

/// What [`Database::apply`] did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Every change was written.
    Done,
    /// A precondition did not hold; nothing was written.
    PreconditionFailed,
}

impl Batch {
    fn put(&mut self, t: Table, key: &[u8], value: Vec<u8>) {
        self.ops.push((t, key.to_vec(), Some(value)));
    }

    fn remove(&mut self, t: Table, key: &[u8]) {
        self.ops.push((t, key.to_vec(), None));
    }

    /// Refuses the whole batch if the wallet is enrolled when it is applied (a joining node
    /// must not overwrite a deposit that raced it).
    pub fn require_not_enrolled(&mut self, wallet_id: &str) {
        self.require_not_enrolled = Some(wallet_key(wallet_id).to_vec());
    }

    /// Writes the wallet's epoch state.
    pub fn put_epoch_state(&mut self, wallet_id: &str, s: &EpochState) -> Result<(), StoreError> {
        self.put(
            Table::Epochs,
            wallet_key(wallet_id),
            to_json(EPOCHS_TREE, s)?,
        );
        Ok(())
    }

    /// Removes the wallet's epoch state.
    pub fn remove_epoch_state(&mut self, wallet_id: &str) {
        self.remove(Table::Epochs, wallet_key(wallet_id));
    }

    /// Writes the wallet's staged epoch.
    pub fn put_staged(&mut self, wallet_id: &str, record: &StagedRecord) {
        self.put(Table::Staged, wallet_key(wallet_id), record.encode());
    }

    /// Removes the wallet's staged epoch.
    pub fn remove_staged(&mut self, wallet_id: &str) {
        self.remove(Table::Staged, wallet_key(wallet_id));
    }

    /// Writes the wallet's metadata.
    pub fn put_wallet_meta(
        &mut self,
        wallet_id: &str,
        meta: &WalletMeta,
    ) -> Result<(), StoreError> {
        self.put(
            Table::Wallets,
            wallet_key(wallet_id),
            to_json(WALLETS_TREE, meta)?,
        );
        Ok(())
    }

    /// Writes the wallet's sealed share.
    pub fn put_sealed_share(&mut self, wallet_id: &str, sealed: Vec<u8>) {
        self.put(Table::Shares, wallet_key(wallet_id), sealed);
    }

    /// Writes the wallet's manifest.
    pub fn put_manifest(&mut self, wallet_id: &str, manifest: Vec<u8>) {
        self.put(Table::Manifests, wallet_key(wallet_id), manifest);
    }

    /// Writes the wallet's passkey JSON.
    pub fn put_passkey_json(&mut self, wallet_id: &str, json: Vec<u8>) {
        self.put(Table::Passkeys, wallet_key(wallet_id), json);
    }

    /// Writes the wallet's encrypted blob.
    pub fn put_blob(&mut self, wallet_id: &str, blob: Vec<u8>) {
        self.put(Table::Blobs, wallet_key(wallet_id), blob);
    }

    /// Writes the wallet's signed receipt.
    pub fn put_receipt(&mut self, wallet_id: &str, receipt: Vec<u8>) {
        self.put(Table::Receipts, wallet_key(wallet_id), receipt);
    }

    /// Removes every wallet-keyed record but the bank's customer record: the wallet record, its
    /// epoch state and staged epoch, and its unconfirmed-backup entry.
    pub fn remove_wallet_data(&mut self, wallet_id: &str) {
        for t in [
            Table::Wallets,
            Table::Shares,
            Table::Manifests,
            Table::Passkeys,
            Table::Blobs,
            Table::Receipts,
            Table::Epochs,
            Table::Staged,
            Table::Unconfirmed,
        ] {
            self.remove(t, wallet_key(wallet_id));
        }
    }

    /// Marks the wallet's backup confirmed complete (a committed rotation proves the owner's
    /// app finished with it).
    pub fn remove_unconfirmed(&mut self, wallet_id: &str) {
        self.remove(Table::Unconfirmed, wallet_key(wallet_id));
    }

    /// Removes the bank's sealed record of who the wallet's customer is.
    pub fn remove_customer(&mut self, wallet_id: &str) {
        self.remove(Table::Customers, wallet_key(wallet_id));
    }

    /// Writes the retirement receipt under the wallet's tag.
    pub fn put_retired(&mut self, wallet_tag: &str, receipt: Vec<u8>) {
        self.put(Table::Retired, wallet_tag.as_bytes(), receipt);
    }

    /// Removes the retirement receipt under the wallet's tag.
    pub fn remove_retired(&mut self, wallet_tag: &str) {
        self.remove(Table::Retired, wallet_tag.as_bytes());
    }

    /// Writes a recovery session; `index` also files it under its wallet (on creation).
    pub fn put_session(&mut self, s: &StoredSession, index: bool) -> Result<(), StoreError> {
        let id = s.session.id.as_bytes();
        self.put(Table::Sessions, id, to_json(SESSIONS_TREE, s)?);
        if index {
            self.put(
                Table::SessionIndex,
                &session_index_key(&s.session.wallet_id, &s.session.id),
                id.to_vec(),
            );
        }
        Ok(())
    }

    /// Removes a recovery session and its index entry.
    pub fn remove_session(&mut self, wallet_id: &str, session_id: &str) {
        self.remove(
            Table::SessionIndex,
            &session_index_key(wallet_id, session_id),
        );
        self.remove(Table::Sessions, session_id.as_bytes());
    }

    /// Removes an owner nonce found by a listing.
    pub fn remove_owner_nonce(&mut self, key: &Key) {
        self.remove(Table::OwnerNonces, &key.0);
    }

    /// Records a spent single-use token (a passkey reset approval's hash) among the owner
    /// nonces, as used, until its expiry.
    pub fn put_spent_token(
        &mut self,
        token: &[u8; 32],
        rec: &super::NonceRecord,
    ) -> Result<(), StoreError> {
        self.put(
            Table::OwnerNonces,
            token,
            to_json(super::OWNER_NONCES_TREE, rec)?,
        );
        Ok(())
    }

    /// Removes a passkey reset request found by a listing.
    pub fn remove_passkey_reset(&mut self, key: &Key) {
        self.remove(Table::PasskeyResets, &key.0);
    }

    /// Removes a ceremony found by a listing.
    pub fn remove_ceremony(&mut self, key: &Key) {
        self.remove(Table::Ceremonies, &key.0);
    }
}

impl Database {
    /// Applies `batch` atomically (not yet durable: flush before acknowledging).
    pub fn apply(&self, batch: &Batch) -> Result<Applied, StoreError> {
        // The transaction spans exactly the tables the batch touches.
        let mut tables: Vec<Table> = batch.ops.iter().map(|(t, _, _)| *t).collect();
        if batch.require_not_enrolled.is_some() {
            tables.push(Table::Wallets);
        }
        tables.sort();
        tables.dedup();
        if tables.is_empty() {
            return Ok(Applied::Done);
        }
        let trees: Vec<_> = tables.iter().map(|t| self.t(*t)).collect();
        let outcome = self.db.transaction(&trees, |tx| {
            if let Some(key) = &batch.require_not_enrolled
                && tx.get(self.t(Table::Wallets), key)?.is_some()
            {
                return Err(TxAbort::Abort(()));
            }
            for (t, key, value) in &batch.ops {
                match value {
                    Some(v) => tx.insert(self.t(*t), key, v)?,
                    None => tx.remove(self.t(*t), key)?,
                }
            }
            Ok(())
        })?;
        Ok(match outcome {
            Ok(()) => Applied::Done,
            Err(()) => Applied::PreconditionFailed,
        })
    }
}
