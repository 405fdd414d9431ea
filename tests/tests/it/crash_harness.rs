//! Crash harness: a deposit storm against a real `trustee-node` process, `kill -9`ed at random
//! moments several times and restarted each time. Every acknowledged deposit must come back
//! intact and provable; a deposit that was never acknowledged must be absent or complete.
//!
//! Bounded by counts, not by time: a fixed number of rounds, each killed after a random short
//! pause once the storm has made progress; nothing asserts on speed.
//!
//! The round count is `DLOCKER_CRASH_ROUNDS` (default 4, what CI runs; at most 1000). For the
//! reliability figures run, for example,
//! `DLOCKER_CRASH_ROUNDS=20 cargo test -p dlocker-integration-tests --test it crash_harness -- --nocapture`;
//! the last line reports the rounds, the deposits and how many acknowledged ones were lost
//! (the test fails before printing if that is not zero).

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::crash::{
    Fate, Storm, Tally, Tracked, check_all, manifest_keys, rounds,
};
use rand::RngExt as _;
use std::time::{Duration, Instant};

/// Rounds of storm → kill -9 → restart → check, unless `DLOCKER_CRASH_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 4;
/// Concurrent depositing clients.
const WRITERS: usize = 4;
/// Acknowledged deposits a round waits for before arming the kill (so the kill lands mid-storm).
const MIN_ACKS_PER_ROUND: usize = 3;
/// Liveness bound for reaching MIN_ACKS_PER_ROUND (generous: two cores are shared with the
/// compiler and other tests). Readiness only; nothing asserts on speed.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_storm_loses_no_acknowledged_deposit() {
    let rounds = rounds(DEFAULT_ROUNDS);
    let started = Instant::now();
    let mut cluster = Cluster::start(1).await;
    let keys = manifest_keys(&cluster.node(0).public_key, 4);
    let mut all: Vec<Tracked> = Vec::new();
    let mut total = Tally::default();
    for round in 1..=rounds {
        let mut clients = Vec::with_capacity(WRITERS);
        for _ in 0..WRITERS {
            clients.push(cluster.node(0).client().await);
        }
        let storm = Storm::start(clients, keys.clone(), 3);
        let deadline = Instant::now() + PROGRESS_TIMEOUT;
        while storm.acked() < MIN_ACKS_PER_ROUND {
            assert!(
                Instant::now() < deadline,
                "round {round}: the storm made no progress; node log:\n{}",
                cluster.node(0).log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A random moment in the middle of the storm.
        let pause = rand::rng().random_range(0..250u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        cluster.kill(0);
        let tracked = storm.stop().await;
        cluster.start_node(0).await;

        let when =
            format!("round {round} (killed {pause} ms after the {MIN_ACKS_PER_ROUND}th ack)");
        let tally = check_all(cluster.node(0), &tracked, &when).await;
        assert!(
            tally.acked_intact >= MIN_ACKS_PER_ROUND,
            "{when}: {tally:?}"
        );
        total.acked_intact += tally.acked_intact;
        total.unacked_absent += tally.unacked_absent;
        total.unacked_complete += tally.unacked_complete;
        all.extend(tracked);
        // Everything from earlier rounds survives the later crashes too.
        let again = check_all(
            cluster.node(0),
            &all,
            &format!("after round {round}, all rounds"),
        )
        .await;
        assert_eq!(again.acked_intact, total.acked_intact, "{when}");
    }
    // Every round checked every acknowledged deposit so far and panicked on a missing one, so
    // reaching this line means none was lost.
    let acked = all
        .iter()
        .filter(|t| matches!(t.fate, Fate::Acked(_)))
        .count();
    assert_eq!(acked, total.acked_intact);
    eprintln!(
        "crash harness: {rounds} kill -9 rounds in {} s, {} deposits sent, {acked} acknowledged, \
         0 acknowledged lost; not acknowledged: {} absent, {} complete",
        started.elapsed().as_secs(),
        all.len(),
        total.unacked_absent,
        total.unacked_complete
    );
}
