//! The durable event outbox (table `events` of [`crate::db`]) behind `WatchEvents`.
//!
//! Events are appended under a big-endian sequence number and flushed with the state change
//! they announce; only then are they broadcast to live watchers. A watcher resumes from any
//! cursor: it reads the stored backlog, then follows the broadcast, skipping what it already
//! sent — so nothing is lost across reconnects or node restarts.

use crate::db::{Database, SeqLog, SeqLogError};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;

pub use crate::db::EVENTS_TREE;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// 1-based, increasing.
    pub seq: u64,
    /// Unix seconds.
    pub at: u64,
    /// `recovery_opened`, `owner_authenticated`, `recovery_approved`, `share_released`,
    /// `recovery_cancelled`, `assertion_failed`, `enrollment`, `epoch_*`, `wallet_retired`.
    pub kind: String,
    /// The wallet (the bank's notifier needs it to reach the customer).
    pub wallet_id: String,
    /// The session, if any.
    pub session_id: String,
    /// Non-secret details.
    pub detail: String,
}

impl From<SeqLogError> for EventError {
    fn from(e: SeqLogError) -> Self {
        match e {
            SeqLogError::Engine(e) => EventError::Storage(e),
            SeqLogError::Corrupt(seq) => EventError::Corrupt(seq),
        }
    }
}

/// Why the outbox failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Storage failed.
    #[error("event storage: {0}")]
    Storage(#[from] crate::db::EngineError),
    /// A stored event does not parse.
    #[error("event {0} is unreadable")]
    Corrupt(u64),
}

/// The outbox.
#[derive(Debug)]
pub struct EventOutbox {
    log: SeqLog,
    last: Mutex<u64>,
    /// The newest sequence number announced to live watchers (metrics: the outbox lag).
    announced: AtomicU64,
    live: broadcast::Sender<StoredEvent>,
}

impl EventOutbox {
    /// Opens the outbox in `db`.
    pub fn open(db: &Database) -> Result<Self, EventError> {
        let log = db.event_log();
        let last = log.last_seq()?;
        let (live, _) = broadcast::channel(1024);
        Ok(Self {
            log,
            last: Mutex::new(last),
            // Whatever is stored at open was flushed by an earlier run.
            announced: AtomicU64::new(last),
            live,
        })
    }

    /// Appends an event (not yet flushed, not yet announced).
    pub fn append(
        &self,
        at: u64,
        kind: &str,
        wallet_id: &str,
        session_id: &str,
        detail: &str,
    ) -> Result<StoredEvent, EventError> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let ev = StoredEvent {
            seq: *last + 1,
            at,
            kind: kind.to_owned(),
            wallet_id: wallet_id.to_owned(),
            session_id: session_id.to_owned(),
            detail: detail.to_owned(),
        };
        self.log.append(ev.seq, &ev)?;
        *last = ev.seq;
        Ok(ev)
    }

    /// Tells live watchers about events that are now durable.
    pub fn announce(&self, events: impl IntoIterator<Item = StoredEvent>) {
        for ev in events {
            self.announced.fetch_max(ev.seq, Ordering::Relaxed);
            // No receivers is fine: watchers catch up from the tree.
            let _ = self.live.send(ev);
        }
    }

    /// Stored events with `seq > cursor`, at most `limit`.
    pub fn since(&self, cursor: u64, limit: usize) -> Result<Vec<StoredEvent>, EventError> {
        Ok(self.log.read_from(cursor.saturating_add(1), limit)?)
    }

    /// Removes every stored event naming `wallet_id` with `seq < before` (a wallet this node
    /// retired from: its history stops being served; the retirement event itself stays).
    /// Written, not yet durable. Sequence numbers are never reused, so watchers just skip the
    /// gap.
    pub fn forget_wallet(&self, wallet_id: &str, before: u64) -> Result<usize, EventError> {
        Ok(self
            .log
            .remove_before_where(before, |e: &StoredEvent| e.wallet_id == wallet_id)?)
    }

    /// The newest sequence number written (0 when empty).
    pub fn last_seq(&self) -> u64 {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest sequence number announced to live watchers.
    pub fn announced_seq(&self) -> u64 {
        self.announced.load(Ordering::Relaxed)
    }

    /// Live watchers now.
    pub fn watchers(&self) -> usize {
        self.live.receiver_count()
    }

    /// Subscribes to live events (subscribe *before* reading the backlog, then skip seen seqs).
    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.live.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_from_cursor_after_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = crate::db::Database::open(dir.path()).expect("db");
            let o = EventOutbox::open(&db).expect("open");
            for i in 0..5 {
                o.append(i, "recovery_opened", "w", &format!("s{i}"), "")
                    .expect("append");
            }
            db.flush_blocking().expect("flush");
        }
        let db = crate::db::Database::open(dir.path()).expect("db");
        let o = EventOutbox::open(&db).expect("reopen");
        let ev = o
            .append(9, "share_released", "w", "s9", "")
            .expect("append");
        assert_eq!(ev.seq, 6);
        let after = o.since(3, 100).expect("since");
        assert_eq!(
            after.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
    }
}
