//! The durable event outbox (table `events` of [`crate::db`]) behind `WatchEvents`.
//!
//! Events are appended under a big-endian sequence number and flushed with the state change
//! they announce; only then are they broadcast to live watchers. A watcher resumes from any
//! cursor: it reads the stored backlog, then follows the broadcast, skipping what it already
//! sent — so nothing is lost across reconnects or node restarts.
//!
//! Each open stream holds a slot: at most `limits.event_streams_per_reader` per reader (a staff
//! member or an mTLS identity) and `limits.max_event_streams` on the node. A stream that closes
//! frees its slot, so the caps count only what is open.

use crate::db::{Database, SeqLog, SeqLogError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
            SeqLogError::HeadNotOpened => EventError::NotOpened,
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
    /// Appended to before its head was read (`EventOutbox::open` reads it: not reachable).
    #[error("event outbox appended to before it was opened")]
    NotOpened,
}

/// Why a new event stream was refused (`RESOURCE_EXHAUSTED`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamRefused {
    /// The reader has as many streams open as it may.
    #[error(
        "this reader already has {open} event streams open \
         (limits.event_streams_per_reader = {cap}); close one before opening another"
    )]
    PerReader {
        /// Streams the reader has open.
        open: usize,
        /// The cap.
        cap: usize,
    },
    /// The node serves as many streams as it may.
    #[error(
        "this node already serves {open} event streams (limits.max_event_streams = {cap}); \
         retry when one closes"
    )]
    NodeWide {
        /// Streams open on the node.
        open: usize,
        /// The cap.
        cap: usize,
    },
}

/// Open streams, in all and per reader (a reader is in the map only while it has one open, so
/// the map never outgrows the node-wide cap).
#[derive(Debug, Default)]
struct StreamCounts {
    total: usize,
    per_reader: HashMap<String, usize>,
}

/// An open event stream's slot; dropping it (the stream ended or the client went away) frees it.
#[derive(Debug)]
pub struct StreamSlot {
    counts: Arc<Mutex<StreamCounts>>,
    reader: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_reader.get_mut(&self.reader) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_reader.remove(&self.reader);
            }
        }
    }
}

/// The outbox.
///
/// Sequence numbers come from the database ([`SeqLog::append_next`]), so replicas of the node
/// on one PostgreSQL schema number one outbox. A replica's watchers also poll the stored
/// outbox ([`EventOutbox::polls`]) and so see what another replica appended.
#[derive(Debug)]
pub struct EventOutbox {
    log: SeqLog,
    /// The newest sequence number this process appended (metrics) and, held, serialises its
    /// appends (they would only conflict on the head and be retried).
    last: Mutex<u64>,
    /// Whether other processes may append too (PostgreSQL): watchers then poll the database.
    shared: bool,
    /// The newest sequence number announced to live watchers (metrics: the outbox lag).
    announced: AtomicU64,
    live: broadcast::Sender<StoredEvent>,
    streams: Arc<Mutex<StreamCounts>>,
}

impl EventOutbox {
    /// Opens the outbox in `db`.
    pub fn open(db: &Database) -> Result<Self, EventError> {
        let log = db.event_log();
        log.open_head(|_: &StoredEvent| Some(String::new()))?;
        let last = log.last_seq()?;
        let (live, _) = broadcast::channel(1024);
        Ok(Self {
            log,
            last: Mutex::new(last),
            shared: db.backend() == dlocker_store::Backend::Postgres,
            // Whatever is stored at open was flushed by an earlier run.
            announced: AtomicU64::new(last),
            live,
            streams: Arc::default(),
        })
    }

    /// Takes a stream slot for `reader` (its identity: staff id or client certificate), at most
    /// `per_reader` for it and `node_wide` in all; the stream keeps the slot while it is open.
    pub fn open_stream(
        &self,
        reader: &str,
        per_reader: usize,
        node_wide: usize,
    ) -> Result<StreamSlot, StreamRefused> {
        let mut c = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.per_reader.get(reader).copied().unwrap_or(0);
        if mine >= per_reader {
            return Err(StreamRefused::PerReader {
                open: mine,
                cap: per_reader,
            });
        }
        if c.total >= node_wide {
            return Err(StreamRefused::NodeWide {
                open: c.total,
                cap: node_wide,
            });
        }
        c.total += 1;
        *c.per_reader.entry(reader.to_owned()).or_insert(0) += 1;
        Ok(StreamSlot {
            counts: Arc::clone(&self.streams),
            reader: reader.to_owned(),
        })
    }

    /// Event streams open now (those holding a slot).
    pub fn open_streams(&self) -> usize {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).total
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
        let ev = self.log.append_next(|head| {
            Some((
                StoredEvent {
                    seq: head.seq + 1,
                    at,
                    kind: kind.to_owned(),
                    wallet_id: wallet_id.to_owned(),
                    session_id: session_id.to_owned(),
                    detail: detail.to_owned(),
                },
                String::new(),
            ))
        })?;
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

    /// Whether watchers must also poll the stored outbox: other processes (replicas on one
    /// PostgreSQL schema) append events this process never announces.
    pub fn polls(&self) -> bool {
        self.shared
    }

    /// The newest sequence number this process wrote (0 when none).
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
    fn stream_slots_are_capped_per_reader_and_node_wide_and_freed_on_drop() {
        let db = crate::db::Database::open_temporary().expect("db");
        let o = EventOutbox::open(&db).expect("open");
        let a1 = o.open_stream("staff alice", 2, 3).expect("a1");
        let _a2 = o.open_stream("staff alice", 2, 3).expect("a2");
        assert_eq!(
            o.open_stream("staff alice", 2, 3).expect_err("a3"),
            StreamRefused::PerReader { open: 2, cap: 2 }
        );
        let _b1 = o.open_stream("staff bob", 2, 3).expect("b1");
        assert_eq!(
            o.open_stream("staff carol", 2, 3).expect_err("node full"),
            StreamRefused::NodeWide { open: 3, cap: 3 }
        );
        drop(a1);
        assert_eq!(o.open_streams(), 2);
        let _a3 = o
            .open_stream("staff alice", 2, 3)
            .expect("a slot was freed");
        assert_eq!(o.open_streams(), 3);
    }

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
