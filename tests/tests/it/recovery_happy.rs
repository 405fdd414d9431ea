//! The happy path on 5 real nodes (3-of-5, the bank one of them): the SDK's `recover()` gets the
//! wallet back byte for byte once a staff member approved, the passkey signed and the delay
//! passed. The latency of everything except the delay is measured and printed (not asserted).

use dlocker_integration_tests::postgres::Storage;
use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec};
use dlocker_sdk::{RecoverEvent, RecoverOptions};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_recovers_the_exact_blob() {
    happy_path(Storage::Sled).await;
}

/// The same deposit and recovery with every node's records in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_recovers_the_exact_blob_on_postgres() {
    if let Some(pg) = Storage::postgres("happy") {
        happy_path(pg).await;
    }
}

async fn happy_path(storage: Storage) {
    let backend = if matches!(storage, Storage::Sled) {
        "sled"
    } else {
        "postgres"
    };
    let rc = RecoveryCluster::start(RecoverySpec {
        storage,
        ..RecoverySpec::default()
    })
    .await;
    let trustees = rc.trustees();
    let data = b"correct horse battery staple -- the wallet seed".to_vec();
    let delay = 2;
    let (wallet, prepared, mut auth) = rc.backup("happy", &data, delay).await;

    // Staff approve as soon as the SDK reports the bank session (a human would, out of band).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let marks: Mutex<Vec<(Instant, RecoverEvent)>> = Mutex::new(Vec::new());
    let progress = |e: RecoverEvent| {
        if let RecoverEvent::AwaitingApproval { bank_session_id } = &e {
            let _ = tx.send(bank_session_id.clone());
        }
        marks.lock().expect("marks").push((Instant::now(), e));
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(200),
        approval_timeout: Duration::from_secs(120),
        cancel: None,
        progress: &progress,
        checkpoint: None,
    };
    let staff = rc.staff_client(0);
    let started = Instant::now();
    let (recovered, approved) = tokio::join!(
        dlocker_sdk::protocol::recover(&trustees, &wallet, &mut auth, opts),
        async {
            let session = rx
                .recv()
                .await
                .expect("the SDK reports the bank session to approve");
            let listed = staff
                .list_recoveries()
                .await
                .expect("staff list recoveries");
            assert!(
                listed
                    .iter()
                    .any(|p| p.session_id == session && p.wallet_id == wallet),
                "the bank lists the pending recovery: {listed:?}"
            );
            staff.approve(&session).await.expect("staff approve")
        }
    );
    let finished = Instant::now();
    let recovered = recovered.expect("recovery succeeds");
    assert!(
        approved.approval.is_some(),
        "one approval is the default policy"
    );

    assert_eq!(
        recovered.data().expose(),
        data.as_slice(),
        "the exact wallet data comes back"
    );
    assert_eq!(
        recovered.manifest.hash(),
        prepared.manifest().hash(),
        "recovered against the backup's manifest"
    );
    assert!(
        recovered.faulty.is_empty(),
        "no trustee lied: {:?}",
        recovered.faulty
    );
    assert!(
        recovered.unavailable.is_empty(),
        "every trustee took part: {:?}",
        recovered.unavailable
    );
    assert_eq!(
        recovered.used.len(),
        usize::from(prepared.manifest().threshold()),
        "exactly t shares combined"
    );
    assert_eq!(recovered.handle.sessions.len(), 5);

    // Every trustee recorded the release; none is left with a live session.
    for i in 0..5 {
        let sid = recovered
            .handle
            .session_at(&rc.node(i).name)
            .expect("session at every trustee");
        let st = rc
            .recovery(i)
            .await
            .get_recovery_status(dlocker_proto::pb::GetRecoveryStatusRequest {
                session_id: sid.to_owned(),
            })
            .await
            .expect("status")
            .into_inner();
        assert!(
            st.owner_authenticated,
            "{}: owner authenticated",
            rc.node(i).name
        );
        assert_eq!(
            st.state,
            "released",
            "{}: the SDK released at every trustee",
            rc.node(i).name
        );
    }

    // Latency, excluding the waiting period (printed for the closing note; never asserted).
    let marks = marks.into_inner().expect("marks");
    let at =
        |pred: &dyn Fn(&RecoverEvent) -> bool| marks.iter().find(|(_, e)| pred(e)).map(|(t, _)| *t);
    let awaiting =
        at(&|e| matches!(e, RecoverEvent::AwaitingApproval { .. })).expect("awaiting event");
    let approved_at = at(&|e| matches!(e, RecoverEvent::Approved { .. })).expect("approved event");
    let last_wait = marks
        .iter()
        .rev()
        .find(|(_, e)| matches!(e, RecoverEvent::Waiting { .. }))
        .map(|(t, _)| *t);
    // The SDK sleeps 1 s after each Waiting event, then releases.
    let release_start = last_wait.map_or(approved_at, |t| t + Duration::from_secs(1));
    let open_auth = awaiting - started;
    let approval = approved_at - awaiting;
    let waiting = release_start.saturating_duration_since(approved_at);
    let release = finished.saturating_duration_since(release_start);
    let total = finished - started;
    eprintln!(
        "recovery latency on the local 5-node debug cluster ({backend}; delay {delay} s \
         excluded): {:?} \
         [open+passkey {:?}, bank approval (staff list+approve, 200 ms polling) {:?}, \
         release+verify+combine+decrypt {:?}; waited {:?} for the delay; total {:?}]",
        total.saturating_sub(waiting),
        open_auth,
        approval,
        release,
        waiting,
        total
    );
}
