//! Crash harness for recovery sessions and epoch commits: the same contract as the deposit storm
//! (`crash_harness`), extended to the other state a node acknowledges. A real `trustee-node`
//! process is `kill -9`ed at a random moment after it acknowledged a step, restarted, and read
//! back:
//! - a recovery session transition it acknowledged (`OpenRecovery`, `AuthenticateOwner`, a staff
//!   approval at the bank) is still there, in that state or a later one (`GetRecoveryStatus`);
//! - a `CommitEpoch` it acknowledged (a refresh committed at the node) survives: the node reports
//!   the new epoch active and proves its share of the new manifest (`ProveShare`).
//!
//! Bounded by counts (`DLOCKER_CRASH_ROUNDS`, default 2 per test; at most 1000), not by time.
//! For the figures:
//! `DLOCKER_CRASH_ROUNDS=20 cargo test -p dlocker-integration-tests --test it crash_sessions -- --nocapture --test-threads=1`.

use dlocker_integration_tests::crash::{kill_9, rounds};
use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec, session_key};
use dlocker_integration_tests::rotation::{RotationCluster, source};
use dlocker_proto::pb::{AuthenticateOwnerRequest, GetRecoveryStatusRequest, RecoverySession};
use dlocker_sdk::{BackupPolicy, ShareStatus, protocol::verify_backup};
use dlocker_sdk::{RotateEvent, RotateOptions, RotationRecord, protocol::rotate};
use rand::RngExt as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rounds per test unless `DLOCKER_CRASH_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 2;
/// The bank (share index 1, where staff approve) is node 0.
const BANK: usize = 0;

/// How far a recovery session got, in the order a recovery walks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    Open,
    OwnerAuthenticated,
    Approved,
}

/// The session's progress as the node reports it; `None` for a state that is not on the way
/// forward (cancelled, expired, unknown).
fn reached(s: &RecoverySession) -> Option<Reached> {
    match s.state.as_str() {
        "open" => Some(Reached::Open),
        "owner_authenticated" if s.approved => Some(Reached::Approved),
        "owner_authenticated" => Some(Reached::OwnerAuthenticated),
        "released" => Some(Reached::Approved),
        _ => None,
    }
}

/// `GetRecoveryStatus` at the bank; panics with the node log on any error.
async fn status_at_bank(rc: &RecoveryCluster, session_id: &str, when: &str) -> RecoverySession {
    rc.recovery(BANK)
        .await
        .get_recovery_status(GetRecoveryStatusRequest {
            session_id: session_id.to_owned(),
        })
        .await
        .unwrap_or_else(|s| {
            panic!(
                "{when}: GetRecoveryStatus of {session_id}: {:?}: {}; node log:\n{}",
                s.code(),
                s.message(),
                rc.node(BANK).log_tail(20)
            )
        })
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_every_acknowledged_recovery_session_transition() {
    let rounds = rounds(DEFAULT_ROUNDS);
    let started = Instant::now();
    let mut rc = RecoveryCluster::start(RecoverySpec {
        nodes: 3,
        ..RecoverySpec::default()
    })
    .await;
    // Every session so far and the furthest step the bank acknowledged for it.
    let mut sessions: Vec<(String, Reached)> = Vec::new();
    let mut in_flight_landed = 0usize;
    for round in 1..=rounds {
        let (wallet, _prepared, mut auth) = rc.backup("crash-rec", b"crash session data", 0).await;
        let r = session_key().public_key();
        // Walk the session to a random step, each one acknowledged by the bank.
        let target = match rand::rng().random_range(0..3u8) {
            0 => Reached::Open,
            1 => Reached::OwnerAuthenticated,
            _ => Reached::Approved,
        };
        let opened = rc
            .open(BANK, &wallet, &r)
            .await
            .unwrap_or_else(|s| panic!("round {round}: OpenRecovery: {s:?}"));
        let sid = opened.session_id.clone();
        let touch = rc.recovery_touch(BANK, &wallet, &r, &opened, &mut auth);
        let mut acked = Reached::Open;
        if target >= Reached::OwnerAuthenticated {
            rc.authenticate(BANK, &sid, &touch)
                .await
                .unwrap_or_else(|s| panic!("round {round}: AuthenticateOwner: {s:?}"));
            acked = Reached::OwnerAuthenticated;
        }
        if target >= Reached::Approved {
            rc.staff_client(0)
                .approve(&sid)
                .await
                .unwrap_or_else(|e| panic!("round {round}: staff approval: {e}"));
            acked = Reached::Approved;
        }
        // The next step is in flight when the kill lands (after a random pause): it may or may
        // not take effect, but it must not undo what was acknowledged.
        let next = match acked {
            Reached::Open => {
                let mut client = rc.recovery(BANK).await;
                let req = AuthenticateOwnerRequest {
                    session_id: sid.clone(),
                    assertion_json: touch.assertion_json.clone(),
                    nonces: touch.nonces.wire(),
                };
                tokio::spawn(async move { client.authenticate_owner(req).await.is_ok() })
            }
            Reached::OwnerAuthenticated => {
                let staff = rc.staff_client(0);
                let id = sid.clone();
                tokio::spawn(async move { staff.approve(&id).await.is_ok() })
            }
            Reached::Approved => {
                let mut client = rc.recovery(BANK).await;
                let req = GetRecoveryStatusRequest {
                    session_id: sid.clone(),
                };
                tokio::spawn(async move { client.get_recovery_status(req).await.is_ok() })
            }
        };
        let pause = rand::rng().random_range(0..100u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        kill_9(rc.node(BANK).pid().expect("the bank is running"));
        let next_acked = next.await.unwrap_or(false);
        rc.kill(BANK);
        rc.start_node(BANK).await;

        let when = format!("round {round} (acknowledged {acked:?}, killed after {pause} ms)");
        let s = status_at_bank(&rc, &sid, &when).await;
        let seen = reached(&s);
        assert!(
            seen.is_some_and(|seen| seen >= acked),
            "{when}: the session reads back as {:?} (approved {}), behind what was \
             acknowledged; node log:\n{}",
            s.state,
            s.approved,
            rc.node(BANK).log_tail(20)
        );
        if next_acked && acked < Reached::Approved {
            // The in-flight step was acknowledged before the kill: it must have stuck too.
            assert!(
                seen > Some(acked),
                "{when}: acknowledged next step lost: {s:?}"
            );
            in_flight_landed += 1;
            acked = seen.expect("checked above");
        }
        sessions.push((sid, acked));
        // Every session of the earlier rounds survives the later crashes too.
        for (id, at_least) in &sessions {
            let s = status_at_bank(&rc, id, &format!("after round {round}")).await;
            assert!(
                reached(&s).is_some_and(|seen| seen >= *at_least),
                "after round {round}: session {id} went back from {at_least:?} to {:?}",
                s.state
            );
        }
    }
    eprintln!(
        "crash sessions: {rounds} kill -9 rounds in {} s, {} acknowledged recovery session \
         transitions (plus {in_flight_landed} in-flight ones acknowledged), 0 lost",
        started.elapsed().as_secs(),
        sessions.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_an_acknowledged_epoch_commit_keeps_the_new_epoch() {
    let rounds = rounds(DEFAULT_ROUNDS);
    let started = Instant::now();
    let mut rc = RotationCluster::start(3, None).await;
    let idx = [0, 1, 2];
    let names: Vec<String> = idx.iter().map(|&i| rc.node(i).name.clone()).collect();
    let mut commits_checked = 0usize;
    for round in 1..=rounds {
        let data = b"crash epoch data".to_vec();
        let (wallet, prepared, mut auth) = rc.backup("crash-epoch", &idx, 2, &data).await;
        let set = rc.set(&idx);
        // Which acknowledged commit triggers the kill, and how long after it.
        let nth = rand::rng().random_range(1..=idx.len());
        let pause = rand::rng().random_range(0..50u64);
        let pids: Vec<u32> = idx
            .iter()
            .map(|&i| rc.node(i).pid().expect("node running"))
            .collect();
        let committed: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let killed: Mutex<Option<usize>> = Mutex::new(None);
        let progress = |e: RotateEvent| {
            if let RotateEvent::Committed { name, .. } = e {
                let mut c = committed.lock().expect("lock");
                c.push(name.clone());
                if c.len() == nth
                    && let Some(i) = names.iter().position(|n| *n == name)
                {
                    std::thread::sleep(Duration::from_millis(pause));
                    kill_9(pids[i]);
                    *killed.lock().expect("lock") = Some(i);
                }
            }
        };
        let record_file = rc.root_dir().join(format!("crash-{round}.rotation.json"));
        let opts = RotateOptions::new("alice")
            .record_path(&record_file)
            .progress(&progress);
        let policy = BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        };
        // The rotation may fail after the kill (a node it still needs is down): what it got
        // acknowledged before is what is checked.
        let outcome = rotate(
            &set,
            &set,
            &source(&prepared),
            policy,
            false,
            &mut auth,
            &opts,
        )
        .await;
        let killed = killed
            .into_inner()
            .expect("lock")
            .unwrap_or_else(|| panic!("round {round}: no commit was acknowledged: {outcome:?}"));
        rc.kill(idx[killed]);
        rc.start_node(idx[killed]).await;

        let when = format!(
            "round {round} ({} killed {pause} ms after commit #{nth} was acknowledged)",
            names[killed]
        );
        let record = RotationRecord::load(&record_file)
            .unwrap_or_else(|e| panic!("{when}: rotation record: {e}"));
        let manifest = record
            .manifest()
            .unwrap_or_else(|e| panic!("{when}: new manifest: {e}"));
        assert_eq!(manifest.epoch(), 2, "{when}");
        let report = verify_backup(&rc.all(), &manifest).await;
        let committed = committed.into_inner().expect("lock");
        for name in &committed {
            let i = names
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| panic!("{when}: unknown trustee {name}"));
            let (active, _staged) = rc
                .epochs_at(idx[i], &wallet)
                .await
                .unwrap_or_else(|| panic!("{when}: {name} holds nothing after the crash"));
            assert_eq!(
                active,
                2,
                "{when}: {name} acknowledged the commit of epoch 2 but reports epoch {active} \
                 active; node log:\n{}",
                rc.node(idx[i]).log_tail(20)
            );
            let entry = report
                .entries
                .iter()
                .find(|e| &e.name == name)
                .unwrap_or_else(|| panic!("{when}: {name} missing from the verify report"));
            assert_eq!(
                entry.status,
                ShareStatus::Healthy,
                "{when}: {name} does not prove its epoch-2 share"
            );
            commits_checked += 1;
        }
        assert!(committed.len() >= nth, "{when}: {committed:?}");
    }
    eprintln!(
        "crash epochs: {rounds} kill -9 rounds in {} s, {commits_checked} acknowledged epoch \
         commits checked after the crash (active epoch 2 and a verified ProveShare), 0 lost",
        started.elapsed().as_secs(),
    );
}
