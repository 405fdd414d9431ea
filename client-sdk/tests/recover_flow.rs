//! `recover` against real in-process trustee nodes (bank with a staff key; every node accepts the
//! bank's approval key): approval from another task, trustees down, owner and bank cancellation.

mod common;

use common::{Cluster, approval_forwarder, cluster};
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, RecoverError, RecoverEvent, RecoverOptions, RecoveryHandle,
    SoftwareAuthenticator,
    protocol::{backup, cancel_recovery, present_bank_cancellation, recover},
};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Backs up `data` 3-of-5 with a 1 s delay; returns the owner's authenticator.
async fn backed_up(c: &Cluster, wallet: &str, data: &[u8]) -> SoftwareAuthenticator {
    let p = PreparedBackup::new(
        &c.set,
        wallet,
        data,
        BackupPolicy {
            threshold: 3,
            recovery_delay_secs: 1,
        },
    )
    .expect("prepare");
    let mut auth = SoftwareAuthenticator::new();
    backup(&c.set, &p, "owner", &mut auth, &|_| {})
        .await
        .expect("backup");
    auth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_with_staff_approval_and_a_trustee_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 5).await;
    let mut auth = backed_up(&c, "w-happy", b"twelve seed words").await;
    c.stop(4).await; // n - t = 2 may be down; one is.

    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let staff = c.staff();
    let approver = tokio::spawn(async move {
        let session = rx.recv().await.expect("awaiting approval");
        staff.approve(&session).await.expect("approve")
    });
    let forward = approval_forwarder(tx);
    // The latest release time a trustee set: the shares must come back only after it (whether
    // the SDK still had to wait depends on how long the approval took, so that is not asserted).
    let release_at = Mutex::new(0u64);
    let progress = |e: RecoverEvent| {
        if let RecoverEvent::SessionOpened {
            release_not_before, ..
        } = &e
        {
            let mut r = release_at.lock().expect("lock");
            *r = (*r).max(*release_not_before);
        }
        forward(e);
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(100),
        approval_timeout: Duration::from_secs(30),
        progress: &progress,
        ..RecoverOptions::default()
    };
    let rec = recover(&c.set, "w-happy", &mut auth, opts)
        .await
        .expect("recovered");
    assert_eq!(rec.data().expose(), b"twelve seed words");
    assert_eq!(rec.used.len(), 3);
    assert!(rec.faulty.is_empty(), "{:?}", rec.faulty);
    assert_eq!(rec.unavailable.len(), 1);
    assert_eq!(rec.unavailable[0].0, "n4");
    assert_eq!(rec.handle.sessions.len(), 4);
    let release_at = *release_at.lock().expect("lock");
    assert!(release_at > 0, "the trustees set a release time");
    assert!(
        dlocker_sdk::proto::time::unix_now() >= release_at,
        "released only after the delay"
    );
    let st = approver.await.expect("task");
    assert_eq!(st.approvers, vec!["alice"]);
    assert!(st.approval.is_some());
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_trustees_down_names_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 5).await;
    let mut auth = backed_up(&c, "w-down", b"data").await;
    for i in [2, 3, 4] {
        c.stop(i).await;
    }
    let err = recover(&c.set, "w-down", &mut auth, RecoverOptions::default())
        .await
        .expect_err("too few");
    let msg = err.to_string();
    match &err {
        RecoverError::NotEnoughTrustees {
            needed: 3, failed, ..
        }
        | RecoverError::NoTrustedManifest { failed, .. } => {
            for name in ["n2", "n3", "n4"] {
                assert!(
                    failed.iter().any(|(n, _)| n == name),
                    "{name} not named: {msg}"
                );
            }
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(msg.contains("n2") && msg.contains("n4"), "{msg}");
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_cancels_and_bank_cancels() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 5).await;
    let mut auth = backed_up(&c, "w-cancel", b"data").await;

    // The owner stops waiting for the approval and cancels everywhere with the passkey.
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let handle_slot: Mutex<Option<RecoveryHandle>> = Mutex::new(None);
    let progress = |e: RecoverEvent| match e {
        RecoverEvent::SessionsOpened { handle, .. } => {
            *handle_slot.lock().expect("lock") = Some(handle)
        }
        RecoverEvent::AwaitingApproval { .. } => {
            let _ = cancel_tx.send(true);
        }
        _ => {}
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(100),
        cancel: Some(cancel_rx),
        progress: &progress,
        ..RecoverOptions::default()
    };
    let handle = match recover(&c.set, "w-cancel", &mut auth, opts).await {
        Err(RecoverError::Cancelled { handle }) => *handle,
        other => panic!("expected Cancelled, got {other:?}"),
    };
    assert_eq!(Some(&handle), handle_slot.lock().expect("lock").as_ref());
    let outcomes = cancel_recovery(&c.set, &handle, &mut auth).await;
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");

    // A new recovery can open (the cancelled sessions are closed); the bank cancels it.
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let staff = c.staff();
    let set = c.set.clone();
    let canceller = tokio::spawn(async move {
        let session = rx.recv().await.expect("awaiting approval");
        let issued = staff.cancel(&session).await.expect("bank cancels");
        let outcomes = present_bank_cancellation(&set, None, &issued.encoded).await;
        let _ = cancel_tx.send(true);
        (issued.statement.body().staff_id.clone(), outcomes)
    });
    let forward = approval_forwarder(tx);
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(100),
        cancel: Some(cancel_rx),
        progress: &forward,
        ..RecoverOptions::default()
    };
    let err = recover(&c.set, "w-cancel", &mut auth, opts)
        .await
        .expect_err("cancelled by the bank");
    let (staff_id, outcomes) = canceller.await.expect("task");
    assert_eq!(staff_id, "alice");
    assert_eq!(outcomes.len(), 5);
    // The bank's own session was cancelled by the staff call; the other four by the statement.
    assert!(
        outcomes.iter().skip(1).all(|o| o.error.is_none()),
        "{outcomes:?}"
    );
    assert!(
        matches!(
            err,
            RecoverError::Cancelled { .. } | RecoverError::CancelledAtBank { .. }
        ),
        "{err:?}"
    );
    c.stop_all().await;
}
