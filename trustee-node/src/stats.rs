//! In-memory counters of things the node deliberately does not write down: refusals any
//! stranger can cause, which must cost the node no disk. Read with [`crate::node::Node::stats`];
//! reset at restart.

use std::sync::atomic::{AtomicU64, Ordering};

/// The node's counters.
#[derive(Debug, Default)]
pub struct NodeStats {
    unauthenticated_fetch_refusals: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// `FetchDocument` calls refused before the requester was authenticated (unknown
    /// requester, bad signature); not audited.
    pub unauthenticated_fetch_refusals: u64,
}

impl NodeStats {
    /// Counts an unauthenticated fetch refusal.
    pub fn count_unauthenticated_fetch_refusal(&self) {
        self.unauthenticated_fetch_refusals
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            unauthenticated_fetch_refusals: self
                .unauthenticated_fetch_refusals
                .load(Ordering::Relaxed),
        }
    }
}

/// Buckets for latencies: 1 ms to ~33 s, doubling.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 16)
}
