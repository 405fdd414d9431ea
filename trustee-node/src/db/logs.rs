//! [`SeqLog`]: an append-only table keyed by a monotonic sequence number (the audit log and the
//! event outbox). Layout: [`crate::db`].

use super::EngineError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a [`SeqLog`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SeqLogError {
    /// The database failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The record with this sequence number does not encode or decode.
    #[error("record {0} is unreadable")]
    Corrupt(u64),
    /// An append before the head was settled (a bug: the owner opens the log first).
    #[error("the log's head was not read before appending")]
    HeadNotOpened,
}

impl From<dlocker_store::Error> for SeqLogError {
    fn from(e: dlocker_store::Error) -> Self {
        SeqLogError::Engine(EngineError(e))
    }
}

/// An append-only table of JSON records keyed by sequence number (8 bytes big-endian, so key
/// order is sequence order), and its head (last sequence number and hash).
///
/// Where several processes may append (PostgreSQL: replicas of one node on one schema), the
/// head is a record of the node metadata table that each append reads and advances in the same
/// transaction as it writes the record, so every process appends to one log: two concurrent
/// appends conflict on the head and one is run again (PostgreSQL's SERIALIZABLE transaction is
/// retried on the serialization failure).
///
/// Where one process owns the database (sled holds a file lock), the head is kept in memory,
/// taken from the stored log at [`SeqLog::open_head`], and an append is one plain insert: a sled
/// transaction writes its log and wakes its I/O pool even when it has little to do, and the
/// audit and event appends would otherwise cost a deposit three transactions besides its own.
/// The stored head record is then not advanced; [`SeqLog::open_head`] never trusts it alone
/// (it takes the later of it and the last record), so a database copied to PostgreSQL by
/// `migrate` starts from the right head.
///
/// Owners serialise their own appends under a lock, so conflicts arise only between processes.
#[derive(Debug, Clone)]
pub struct SeqLog {
    store: dlocker_store::Store,
    tree: dlocker_store::Tree,
    meta: dlocker_store::Tree,
    head_key: &'static [u8],
    /// `Some` where this process is the only writer: the head, set by `open_head`.
    owned_head: Option<std::sync::Arc<std::sync::Mutex<Option<Head>>>>,
}

/// A log's head: the last sequence number assigned (0: none) and, for a hash chain, that
/// record's hash (hex; empty otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Head {
    /// The last sequence number assigned.
    pub seq: u64,
    /// The last record's hash (hex), or empty.
    #[serde(default)]
    pub hash: String,
}

fn seq_of(k: &[u8]) -> u64 {
    <[u8; 8]>::try_from(k).map(u64::from_be_bytes).unwrap_or(0)
}

impl SeqLog {
    pub(super) fn new(
        store: dlocker_store::Store,
        tree: dlocker_store::Tree,
        meta: dlocker_store::Tree,
        head_key: &'static [u8],
    ) -> Self {
        let owned_head = (store.backend() == dlocker_store::Backend::Sled)
            .then(|| std::sync::Arc::new(std::sync::Mutex::new(None)));
        Self {
            store,
            tree,
            meta,
            head_key,
            owned_head,
        }
    }

    /// The record with the highest sequence number.
    pub fn last<T: DeserializeOwned>(&self) -> Result<Option<(u64, T)>, SeqLogError> {
        match self.tree.last()? {
            None => Ok(None),
            Some((k, v)) => {
                let seq = seq_of(&k);
                let rec = serde_json::from_slice(&v).map_err(|_| SeqLogError::Corrupt(seq))?;
                Ok(Some((seq, rec)))
            }
        }
    }

    /// Settles the head before the first append: the later of the stored head record and the
    /// last stored record (`hash` gives a record's hash for the head). The record alone would
    /// be wrong after a removal of the newest records; the head record alone is absent in a
    /// database written before heads were kept and stale in one a single process (sled) wrote
    /// and `migrate` copied. Where processes share the database the settled head is written
    /// back if it moved; a replica appending or settling at the same moment wins (the swap
    /// expects the head it read). Where this process owns the database it is kept in memory.
    pub fn open_head<T: DeserializeOwned>(
        &self,
        hash: impl Fn(&T) -> Option<String>,
    ) -> Result<(), SeqLogError> {
        let stored_bytes = self.meta.get(self.head_key)?;
        let stored: Option<Head> = match &stored_bytes {
            None => None,
            Some(v) => Some(serde_json::from_slice(v).map_err(|_| SeqLogError::Corrupt(0))?),
        };
        let from_last = match self.last::<T>()? {
            None => None,
            Some((seq, rec)) => Some(Head {
                seq,
                hash: hash(&rec).ok_or(SeqLogError::Corrupt(seq))?,
            }),
        };
        let head = match (stored.clone(), from_last) {
            (Some(s), Some(l)) if l.seq > s.seq => l,
            (Some(s), _) => s,
            (None, Some(l)) => l,
            (None, None) => Head::default(),
        };
        if let Some(owned) = &self.owned_head {
            *owned.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
            return Ok(());
        }
        if stored.as_ref() != Some(&head) {
            let bytes = serde_json::to_vec(&head).map_err(|_| SeqLogError::Corrupt(head.seq))?;
            // `false`: another replica moved the head first; its head is at least as late.
            self.meta.compare_and_swap(
                self.head_key,
                stored_bytes.as_deref(),
                Some(bytes.as_slice()),
            )?;
        }
        Ok(())
    }

    /// The head as committed now (every process's appends included).
    pub fn head(&self) -> Result<Head, SeqLogError> {
        if let Some(owned) = &self.owned_head {
            let owned = owned.lock().unwrap_or_else(|p| p.into_inner());
            return owned.clone().ok_or(SeqLogError::HeadNotOpened);
        }
        match self.meta.get(self.head_key)? {
            None => Ok(Head::default()),
            Some(v) => serde_json::from_slice(&v).map_err(|_| SeqLogError::Corrupt(0)),
        }
    }

    /// The highest sequence number assigned (0 when none).
    pub fn last_seq(&self) -> Result<u64, SeqLogError> {
        Ok(self.head()?.seq)
    }

    /// Appends the record `build` makes from the current head under the next sequence number,
    /// and makes that number (with the hash `build` returns) the head. Where processes share
    /// the database this is one transaction, which may run more than once (`build` must compute
    /// from its argument only; `None`: the head is unreadable). Not yet durable.
    pub fn append_next<T: Serialize + Send>(
        &self,
        build: impl Fn(&Head) -> Option<(T, String)> + Sync,
    ) -> Result<T, SeqLogError> {
        if let Some(owned) = &self.owned_head {
            let mut guard = owned.lock().unwrap_or_else(|p| p.into_inner());
            // Not settled by `open_head`: a stale head would overwrite records.
            let Some(head) = guard.as_ref() else {
                return Err(SeqLogError::HeadNotOpened);
            };
            let seq = head.seq + 1;
            let (rec, hash) = build(head).ok_or(SeqLogError::Corrupt(head.seq))?;
            let bytes = serde_json::to_vec(&rec).map_err(|_| SeqLogError::Corrupt(seq))?;
            self.tree.insert(&seq.to_be_bytes(), &bytes)?;
            *guard = Some(Head { seq, hash });
            return Ok(rec);
        }
        self.store.transaction(&[&self.tree, &self.meta], |tx| {
            let head: Head = match tx.get(&self.meta, self.head_key)? {
                Some(v) => serde_json::from_slice(&v)
                    .map_err(|_| dlocker_store::TxAbort::Abort(SeqLogError::Corrupt(0)))?,
                None => Head::default(),
            };
            let seq = head.seq + 1;
            let (rec, hash) = build(&head).ok_or(dlocker_store::TxAbort::Abort(
                SeqLogError::Corrupt(head.seq),
            ))?;
            let corrupt = || dlocker_store::TxAbort::Abort(SeqLogError::Corrupt(seq));
            let bytes = serde_json::to_vec(&rec).map_err(|_| corrupt())?;
            let next = serde_json::to_vec(&Head { seq, hash }).map_err(|_| corrupt())?;
            tx.insert(&self.tree, &seq.to_be_bytes(), &bytes)?;
            tx.insert(&self.meta, self.head_key, &next)?;
            Ok(rec)
        })?
    }

    /// Records with `seq >= first`, at most `limit`, in sequence order.
    pub fn read_from<T: DeserializeOwned>(
        &self,
        first: u64,
        limit: usize,
    ) -> Result<Vec<T>, SeqLogError> {
        let mut out = Vec::new();
        for (k, v) in self.tree.range(Some(&first.to_be_bytes()), None, limit)? {
            let seq = seq_of(&k);
            out.push(serde_json::from_slice(&v).map_err(|_| SeqLogError::Corrupt(seq))?);
        }
        Ok(out)
    }

    /// Removes every record with `seq < before` that decodes and matches `pred`; returns how
    /// many (not yet durable).
    pub fn remove_before_where<T: DeserializeOwned>(
        &self,
        before: u64,
        pred: impl Fn(&T) -> bool,
    ) -> Result<usize, SeqLogError> {
        let mut removed = 0;
        for (k, v) in self
            .tree
            .range(None, Some(&before.to_be_bytes()), usize::MAX)?
        {
            let matches = serde_json::from_slice::<T>(&v)
                .map(|r| pred(&r))
                .unwrap_or(false);
            if matches && self.tree.remove(&k)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// How many records (walks the table; 0 if the database fails).
    pub fn len(&self) -> usize {
        self.tree.len().unwrap_or(0)
    }

    /// Whether the log is empty (also if the database fails).
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{AUDIT_HEAD_KEY, Database, Table};

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Rec {
        seq: u64,
        hash: String,
    }

    fn build(head: &Head) -> Option<(Rec, String)> {
        let hash = format!("h{}", head.seq + 1);
        Some((
            Rec {
                seq: head.seq + 1,
                hash: hash.clone(),
            },
            hash,
        ))
    }

    fn hash_of(r: &Rec) -> Option<String> {
        Some(r.hash.clone())
    }

    /// The same tables as `db.audit_log()`, but appended to as processes sharing the database
    /// do (one transaction per append, the head record advanced): PostgreSQL's path, run on sled.
    fn shared(db: &Database) -> SeqLog {
        let mut log = db.audit_log();
        log.owned_head = None;
        log
    }

    fn put_head(db: &Database, seq: u64) {
        let head = serde_json::to_vec(&Head {
            seq,
            hash: format!("h{seq}"),
        })
        .expect("json");
        db.t(Table::NodeMeta)
            .insert(AUDIT_HEAD_KEY, &head)
            .expect("head");
    }

    #[test]
    fn one_writer_appends_without_a_transaction_and_a_copied_stale_head_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path()).expect("db");
        // An earlier version left a head record at 1; three appends follow with this one.
        put_head(&db, 1);
        let mut owned = db.audit_log();
        assert!(owned.owned_head.is_some(), "sled: one writer");
        assert!(matches!(
            owned.append_next(build),
            Err(SeqLogError::HeadNotOpened)
        ));
        owned.open_head(hash_of).expect("open");
        assert_eq!(
            owned.head().expect("head").seq,
            1,
            "the later of head and records"
        );
        for want in 2..=4 {
            assert_eq!(owned.append_next(build).expect("append").seq, want);
        }
        assert_eq!(owned.head().expect("head").seq, 4);
        // The stored head record was not advanced: as `migrate` would copy it, stale.
        owned = shared(&db);
        assert_eq!(owned.head().expect("stored head").seq, 1);

        // Opened where processes share the database, the last record wins over the stale
        // head record, which is written back; the next append does not overwrite record 4.
        owned.open_head(hash_of).expect("open shared");
        assert_eq!(
            owned.head().expect("head"),
            Head {
                seq: 4,
                hash: "h4".into()
            }
        );
        assert_eq!(owned.append_next(build).expect("append").seq, 5);
        let all: Vec<Rec> = owned.read_from(1, 100).expect("read");
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4, 5]);

        // A head record later than the last record (newest records removed) is kept.
        put_head(&db, 9);
        let reopened = db.audit_log();
        reopened.open_head(hash_of).expect("reopen");
        assert_eq!(reopened.head().expect("head").seq, 9);
        assert_eq!(reopened.append_next(build).expect("append").seq, 10);
    }
}
