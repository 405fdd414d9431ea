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
}

impl From<dlocker_store::Error> for SeqLogError {
    fn from(e: dlocker_store::Error) -> Self {
        SeqLogError::Engine(EngineError(e))
    }
}

/// An append-only table of JSON records keyed by sequence number (8 bytes big-endian, so key
/// order is sequence order), with its head (last sequence number and hash) in a record of the
/// node metadata table. Each append reads and advances the head in the same transaction as it
/// writes the record, so every process on the database appends to one log: two concurrent
/// appends conflict on the head and one is run again (sled retries itself; PostgreSQL's
/// SERIALIZABLE transaction is retried on the serialization failure). Owners still serialise
/// their own appends under a lock, so conflicts arise only between processes.
#[derive(Debug, Clone)]
pub struct SeqLog {
    store: dlocker_store::Store,
    tree: dlocker_store::Tree,
    meta: dlocker_store::Tree,
    head_key: &'static [u8],
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
        Self {
            store,
            tree,
            meta,
            head_key,
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

    /// Records the head from the last stored record when none is recorded yet (a database
    /// written before heads were kept, or a new one). `hash` gives a record's hash for the head.
    /// A replica doing the same at the same moment computes the same head; the first write wins.
    pub fn ensure_head<T: DeserializeOwned>(
        &self,
        hash: impl Fn(&T) -> Option<String>,
    ) -> Result<(), SeqLogError> {
        if self.meta.get(self.head_key)?.is_some() {
            return Ok(());
        }
        let head = match self.last::<T>()? {
            None => Head::default(),
            Some((seq, rec)) => Head {
                seq,
                hash: hash(&rec).ok_or(SeqLogError::Corrupt(seq))?,
            },
        };
        let bytes = serde_json::to_vec(&head).map_err(|_| SeqLogError::Corrupt(head.seq))?;
        self.meta
            .compare_and_swap(self.head_key, None, Some(bytes.as_slice()))?;
        Ok(())
    }

    /// The head as committed now (every process's appends included).
    pub fn head(&self) -> Result<Head, SeqLogError> {
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
    /// and makes that number (with the hash `build` returns) the head: one transaction, which
    /// may run more than once (`build` must compute from its argument only; `None`: the head
    /// is unreadable). Not yet durable.
    pub fn append_next<T: Serialize + Send>(
        &self,
        build: impl Fn(&Head) -> Option<(T, String)> + Sync,
    ) -> Result<T, SeqLogError> {
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
