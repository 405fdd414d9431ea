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
/// order is sequence order). The owner assigns numbers under its own lock.
#[derive(Debug, Clone)]
pub struct SeqLog {
    tree: dlocker_store::Tree,
}

fn seq_of(k: &[u8]) -> u64 {
    <[u8; 8]>::try_from(k).map(u64::from_be_bytes).unwrap_or(0)
}

impl SeqLog {
    pub(super) fn new(tree: dlocker_store::Tree) -> Self {
        Self { tree }
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

    /// The highest sequence number stored (0 when empty or unreadable).
    pub fn last_seq(&self) -> Result<u64, SeqLogError> {
        Ok(self.tree.last()?.map(|(k, _)| seq_of(&k)).unwrap_or(0))
    }

    /// Writes `rec` under `seq` (not yet durable).
    pub fn append<T: Serialize>(&self, seq: u64, rec: &T) -> Result<(), SeqLogError> {
        let bytes = serde_json::to_vec(rec).map_err(|_| SeqLogError::Corrupt(seq))?;
        self.tree.insert(&seq.to_be_bytes(), &bytes)?;
        Ok(())
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
