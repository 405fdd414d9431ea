//! Enrollment records: ceremonies, the wallet tables (one record per enrolled wallet, written
//! whole in one transaction) and their codecs. Layout: [`crate::db`].

use super::{
    BLOBS_TREE, CEREMONIES_TREE, Database, MANIFESTS_TREE, PASSKEYS_TREE, RECEIPTS_TREE,
    SHARES_TREE, StoreError, Table, WALLETS_TREE, corrupt, from_json, to_json, wallet_key,
};
use dlocker_store::{Tree, Tx, TxAbort};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// A passkey ceremony in progress, or finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CeremonyRecord {
    /// The wallet the passkey is for.
    pub wallet_id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; refused from then on and swept later.
    pub expires_at: u64,
    /// Where the ceremony is.
    pub state: CeremonyState,
    /// Bank role: the customer identity given at `BeginEnrollment`, sealed
    /// ([`crate::at_rest::seal_customer`]); recorded for the wallet when the deposit is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_sealed: Option<Vec<u8>>,
}

/// The state of a ceremony.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CeremonyState {
    /// Waiting for FinishEnrollment: the serialised `webauthn_rs::PasskeyRegistration`.
    Pending {
        /// JSON of the registration state (server-side secret: holds the challenge).
        registration: String,
    },
    /// FinishEnrollment succeeded; kept until expiry so an identical retry of that very request
    /// gets the stored receipt instead of NOT_FOUND.
    Completed {
        /// SHA-256 (hex) of the credential JSON that completed it.
        credential_sha256: String,
    },
}

impl std::fmt::Debug for CeremonyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CeremonyState::Pending { .. } => f.write_str("Pending { registration: REDACTED }"),
            CeremonyState::Completed { credential_sha256 } => {
                write!(f, "Completed {{ credential_sha256: {credential_sha256} }}")
            }
        }
    }
}

/// What the node holds for a wallet, without the large or sealed parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletMeta {
    /// Epoch.
    pub epoch: u64,
    /// This node's share index.
    pub share_index: u16,
    /// Manifest hash (hex).
    pub manifest_hash: String,
    /// Unix seconds.
    pub enrolled_at: u64,
    /// Size of the stored blob.
    pub blob_size: u64,
}

/// Everything stored for one enrolled wallet.
#[derive(Clone, PartialEq, Eq)]
pub struct WalletRecord {
    /// Metadata.
    pub meta: WalletMeta,
    /// The share sealed under the storage key.
    pub sealed_share: Vec<u8>,
    /// The manifest (canonical encoding).
    pub manifest: Vec<u8>,
    /// The owner's passkey (JSON).
    pub passkey_json: Vec<u8>,
    /// The encrypted wallet blob.
    pub blob: Vec<u8>,
    /// The signed receipt (canonical encoding).
    pub receipt: Vec<u8>,
}

impl std::fmt::Debug for WalletRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletRecord")
            .field("meta", &self.meta)
            .field(
                "sealed_share",
                &format_args!("{} bytes", self.sealed_share.len()),
            )
            .field("manifest", &format_args!("{} bytes", self.manifest.len()))
            .field(
                "passkey_json",
                &format_args!("{} bytes", self.passkey_json.len()),
            )
            .field("blob", &format_args!("{} bytes", self.blob.len()))
            .field("receipt", &format_args!("{} bytes", self.receipt.len()))
            .finish()
    }
}

/// What [`Database::commit_enrollment`] did.
#[derive(Debug)]
pub enum CommitOutcome {
    /// The record was written (and the ceremony updated) atomically.
    Stored,
    /// A record for the wallet already existed; nothing was written. It is returned so the
    /// caller can tell an identical retry from a conflict.
    AlreadyPresent(Box<WalletRecord>),
}

/// Reads a wallet inside a transaction over (wallets, shares, manifests, passkeys, blobs,
/// receipts).
fn read_wallet_tx(
    tx: &mut Tx<'_>,
    trees: [&Tree; 6],
    key: &[u8],
) -> Result<Option<WalletRecord>, TxAbort<StoreError>> {
    let [w, s, m, p, b, r] = trees;
    let Some(meta) = tx.get(w, key)? else {
        return Ok(None);
    };
    let meta: WalletMeta = from_json(WALLETS_TREE, &meta).map_err(TxAbort::Abort)?;
    let mut need = |t: &Tree, name: &'static str| -> Result<Vec<u8>, TxAbort<StoreError>> {
        tx.get(t, key)?
            .ok_or_else(|| TxAbort::Abort(corrupt(name, "missing part of an enrolled wallet")))
    };
    Ok(Some(WalletRecord {
        meta,
        sealed_share: need(s, SHARES_TREE)?,
        manifest: need(m, MANIFESTS_TREE)?,
        passkey_json: need(p, PASSKEYS_TREE)?,
        blob: need(b, BLOBS_TREE)?,
        receipt: need(r, RECEIPTS_TREE)?,
    }))
}

impl Database {
    /// Writes a ceremony record.
    pub fn put_ceremony(&self, id: &str, record: &CeremonyRecord) -> Result<(), StoreError> {
        let replaced = self
            .t(Table::Ceremonies)
            .insert(id.as_bytes(), &to_json(CEREMONIES_TREE, record)?)?;
        if !replaced {
            self.ceremony_count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Reads a ceremony record.
    pub fn ceremony(&self, id: &str) -> Result<Option<CeremonyRecord>, StoreError> {
        self.t(Table::Ceremonies)
            .get(id.as_bytes())?
            .map(|v| from_json(CEREMONIES_TREE, &v))
            .transpose()
    }

    /// How many ceremony records exist (pending or completed, until swept).
    pub fn ceremony_count(&self) -> Result<usize, StoreError> {
        Ok(self.ceremony_count.load(Ordering::Relaxed))
    }

    /// Deletes ceremonies whose `expires_at <= now`; returns how many.
    pub fn remove_expired_ceremonies(&self, now: u64) -> Result<usize, StoreError> {
        let (mut removed, mut kept) = (0, 0);
        for (k, v) in self.t(Table::Ceremonies).entries()? {
            // An undecodable record is garbage either way; sweep it too.
            let expired = from_json::<CeremonyRecord>(CEREMONIES_TREE, &v)
                .map(|c| c.expires_at <= now)
                .unwrap_or(true);
            // compare_and_swap: only remove the exact value we judged, never a fresher write.
            if expired
                && self
                    .t(Table::Ceremonies)
                    .compare_and_swap(&k, Some(&v), None)?
            {
                removed += 1;
            } else {
                kept += 1;
            }
        }
        // Resynchronise the count (a record inserted during the walk may be missed until the
        // next sweep: the count bounds open ceremonies, it need not be exact to the record).
        self.ceremony_count.store(kept, Ordering::Relaxed);
        Ok(removed)
    }

    /// The keys of ceremonies that name `wallet_id` (pending or finished), in no stated order.
    pub fn ceremonies_of_wallet(&self, wallet_id: &str) -> Result<Vec<super::Key>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.t(Table::Ceremonies).entries()? {
            if serde_json::from_slice::<CeremonyRecord>(&v).is_ok_and(|c| c.wallet_id == wallet_id)
            {
                out.push(super::Key(k));
            }
        }
        Ok(out)
    }

    /// Everything stored for a wallet, read atomically.
    pub fn wallet(&self, wallet_id: &str) -> Result<Option<WalletRecord>, StoreError> {
        let key = wallet_key(wallet_id);
        // A wallet not held here (every new backup asks) costs one key lookup: a sled 0.34
        // transaction writes to its log and wakes its I/O threads even when it only reads. The
        // answer is as consistent as the transaction's: the six tables are written together.
        if !self.wallet_exists(wallet_id)? {
            return Ok(None);
        }
        let trees = self.wallet_trees();
        self.db
            .transaction(&trees, |tx| read_wallet_tx(tx, trees, key))?
    }

    /// The six tables a wallet's record spans, in [`read_wallet_tx`]'s order.
    fn wallet_trees(&self) -> [&Tree; 6] {
        [
            self.t(Table::Wallets),
            self.t(Table::Shares),
            self.t(Table::Manifests),
            self.t(Table::Passkeys),
            self.t(Table::Blobs),
            self.t(Table::Receipts),
        ]
    }

    /// The wallet's stored manifest (one key lookup; a record is written and erased whole).
    pub fn stored_manifest(&self, wallet_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.t(Table::Manifests).get(wallet_key(wallet_id))?)
    }

    /// This node's signed receipt for the wallet's stored manifest (one key lookup; written
    /// with the manifest, in the same record).
    pub fn stored_receipt(&self, wallet_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.t(Table::Receipts).get(wallet_key(wallet_id))?)
    }

    /// Whether the wallet has a record: one key lookup, no transaction (a record is written
    /// whole by [`Database::commit_enrollment`], so its metadata stands for all of it).
    pub fn wallet_exists(&self, wallet_id: &str) -> Result<bool, StoreError> {
        Ok(self.t(Table::Wallets).contains_key(wallet_key(wallet_id))?)
    }

    /// Every wallet whose backup is not confirmed complete, with when its deposit was stored,
    /// oldest first. Entries that do not decode are skipped (the next deposit rewrites them).
    pub fn unconfirmed_backups(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.t(Table::Unconfirmed).entries()? {
            let (Ok(wallet), Ok(at)) = (String::from_utf8(k), <[u8; 8]>::try_from(v.as_slice()))
            else {
                continue;
            };
            out.push((wallet, u64::from_be_bytes(at)));
        }
        out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(out)
    }

    /// When the wallet's deposit was stored, if its backup is not confirmed complete.
    pub fn unconfirmed_since(&self, wallet_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .t(Table::Unconfirmed)
            .get(wallet_key(wallet_id))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    /// Marks the wallet's backup confirmed complete (not yet durable); returns whether it was
    /// unconfirmed.
    pub fn confirm_backup(&self, wallet_id: &str) -> Result<bool, StoreError> {
        Ok(self.t(Table::Unconfirmed).remove(wallet_key(wallet_id))?)
    }

    /// In one transaction: if the wallet has no record, writes `record` into every wallet table,
    /// `ceremony` under `ceremony_id` and the wallet into the unconfirmed-backup index (until
    /// `ConfirmBackup`); otherwise writes nothing and returns the existing record.
    pub fn commit_enrollment(
        &self,
        wallet_id: &str,
        record: &WalletRecord,
        ceremony_id: &str,
        ceremony: &CeremonyRecord,
    ) -> Result<CommitOutcome, StoreError> {
        let key = wallet_key(wallet_id);
        let meta = to_json(WALLETS_TREE, &record.meta)?;
        let ceremony_bytes = to_json(CEREMONIES_TREE, ceremony)?;
        let trees = self.wallet_trees();
        let [w, s, m, p, b, r] = trees;
        let c = self.t(Table::Ceremonies);
        let u = self.t(Table::Unconfirmed);
        let stored_at = record.meta.enrolled_at.to_be_bytes();
        self.db.transaction(&[c, w, s, m, p, b, r, u], |tx| {
            if let Some(existing) = read_wallet_tx(tx, trees, key)? {
                return Ok(CommitOutcome::AlreadyPresent(Box::new(existing)));
            }
            tx.insert(w, key, &meta)?;
            tx.insert(s, key, &record.sealed_share)?;
            tx.insert(m, key, &record.manifest)?;
            tx.insert(p, key, &record.passkey_json)?;
            tx.insert(b, key, &record.blob)?;
            tx.insert(r, key, &record.receipt)?;
            tx.insert(c, ceremony_id.as_bytes(), &ceremony_bytes)?;
            tx.insert(u, key, &stored_at)?;
            Ok(CommitOutcome::Stored)
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tag: u8) -> WalletRecord {
        WalletRecord {
            meta: WalletMeta {
                epoch: 1,
                share_index: u16::from(tag),
                manifest_hash: hex::encode([tag; 32]),
                enrolled_at: 100,
                blob_size: 3,
            },
            sealed_share: vec![tag; 63],
            manifest: vec![tag; 10],
            passkey_json: br#"{"k":1}"#.to_vec(),
            blob: vec![tag; 3],
            receipt: vec![tag; 20],
        }
    }

    fn ceremony(expires_at: u64, done: bool) -> CeremonyRecord {
        CeremonyRecord {
            wallet_id: "w1".into(),
            created_at: 1,
            expires_at,
            state: if done {
                CeremonyState::Completed {
                    credential_sha256: "00".into(),
                }
            } else {
                CeremonyState::Pending {
                    registration: "{}".into(),
                }
            },
            customer_sealed: None,
        }
    }

    #[tokio::test]
    async fn commit_is_all_or_nothing_and_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        {
            let store = Database::open(&path).expect("open");
            store.put_ceremony("c1", &ceremony(10, false)).expect("put");
            assert!(store.wallet("w1").expect("read").is_none());

            let out = store
                .commit_enrollment("w1", &record(1), "c1", &ceremony(10, true))
                .expect("commit");
            assert!(matches!(out, CommitOutcome::Stored));
            // A second commit, even of a different record, writes nothing and reports the first.
            store.put_ceremony("c2", &ceremony(10, false)).expect("put");
            match store
                .commit_enrollment("w1", &record(2), "c2", &ceremony(10, true))
                .expect("commit")
            {
                CommitOutcome::AlreadyPresent(existing) => assert_eq!(*existing, record(1)),
                CommitOutcome::Stored => panic!("overwrote an enrolled wallet"),
            }
            assert!(matches!(
                store.ceremony("c2").expect("read").map(|c| c.state),
                Some(CeremonyState::Pending { .. })
            ));
            assert!(matches!(
                store.ceremony("c1").expect("read").map(|c| c.state),
                Some(CeremonyState::Completed { .. })
            ));
            store.flush().await.expect("flush");
        }
        // Reopen: everything is there.
        let store = Database::open(&path).expect("reopen");
        assert_eq!(store.wallet("w1").expect("read"), Some(record(1)));
    }

    #[test]
    fn concurrent_commits_never_mix_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Database::open(&dir.path().join("db")).expect("open");
        for round in 0..20u8 {
            let wallet = format!("w{round}");
            let handles: Vec<_> = (1..=4u8)
                .map(|tag| {
                    let s = store.clone();
                    let wallet = wallet.clone();
                    std::thread::spawn(move || {
                        s.commit_enrollment(
                            &wallet,
                            &record(tag),
                            &format!("c{tag}"),
                            &ceremony(9, true),
                        )
                        .map(|o| matches!(o, CommitOutcome::Stored))
                    })
                })
                .collect();
            let stored: Vec<bool> = handles
                .into_iter()
                .map(|h| h.join().expect("join").expect("commit"))
                .collect();
            assert_eq!(
                stored.iter().filter(|s| **s).count(),
                1,
                "exactly one writer wins"
            );
            let got = store.wallet(&wallet).expect("read").expect("present");
            let tag = got.sealed_share[0];
            assert_eq!(
                got,
                record(tag),
                "every tree holds the same writer's record"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_flushes_are_shared_and_every_write_is_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let writers = 64u32;
        {
            let store = Database::open(&path).expect("open");
            let tasks: Vec<_> = (0..writers)
                .map(|i| {
                    let s = store.clone();
                    tokio::spawn(async move {
                        let id = format!("c{i}");
                        s.put_ceremony(&id, &ceremony(u64::from(i), false))?;
                        s.flush().await
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("join").expect("flush");
            }
            let flushes = store.flushes_started();
            assert!(
                (1..=u64::from(writers)).contains(&flushes),
                "{flushes} flushes for {writers} callers"
            );
        }
        let store = Database::open(&path).expect("reopen");
        for i in 0..writers {
            let c = store.ceremony(&format!("c{i}")).expect("read");
            assert_eq!(
                c.map(|c| c.expires_at),
                Some(u64::from(i)),
                "write {i} lost"
            );
        }
    }

    #[test]
    fn missing_part_is_reported_as_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Database::open(&dir.path().join("db")).expect("open");
        store
            .commit_enrollment("w1", &record(1), "c", &ceremony(9, true))
            .expect("commit");
        store
            .t(Table::Blobs)
            .remove(wallet_key("w1"))
            .expect("remove");
        assert!(matches!(
            store.wallet("w1"),
            Err(StoreError::Corrupt {
                tree: BLOBS_TREE,
                ..
            })
        ));
    }

    #[test]
    fn sweep_removes_only_expired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Database::open(&dir.path().join("db")).expect("open");
        store
            .put_ceremony("old", &ceremony(10, false))
            .expect("put");
        store
            .put_ceremony("done", &ceremony(10, true))
            .expect("put");
        store
            .put_ceremony("new", &ceremony(100, false))
            .expect("put");
        assert_eq!(store.ceremony_count().expect("count"), 3);
        assert_eq!(store.remove_expired_ceremonies(50).expect("sweep"), 2);
        assert!(store.ceremony("old").expect("read").is_none());
        assert!(store.ceremony("new").expect("read").is_some());
        assert_eq!(store.ceremony_count().expect("count"), 1);
    }
}
