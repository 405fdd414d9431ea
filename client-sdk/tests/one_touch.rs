//! One passkey, one touch (`docs/protocol.md` §12a), on real in-process trustee nodes: the
//! software authenticator counts its touches, and every owner ceremony — backup, recovery,
//! cancel, the two phases of a rotation that adds a trustee, a rollback — costs exactly one,
//! whatever the number of trustees.

mod common;

use common::{Cluster, approval_forwarder, cluster};
use dlocker_sdk::proto::owner_challenge::OwnerAction;
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, RecoverError, RecoverEvent, RecoverOptions, Recovered,
    SoftwareAuthenticator, TrusteeSet,
    protocol::{backup, cancel_recovery, epoch_status, recover},
};
use dlocker_sdk::{
    RotateError, RotateEvent, RotateOptions, RotationSource, RotationStep,
    protocol::{rollback_rotation, rotate},
};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const DATA: &[u8] = b"twelve seed words, one passkey";

/// Recovers `wallet` from `set`, bank staff approving from another task.
async fn recover_approved(
    c: &Cluster,
    set: &TrusteeSet,
    wallet: &str,
    auth: &mut SoftwareAuthenticator,
) -> Recovered {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let staff = c.staff();
    let approver = tokio::spawn(async move {
        let session = rx.recv().await.expect("awaiting approval");
        staff.approve(&session).await.expect("approve")
    });
    let forward = approval_forwarder(tx);
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(100),
        approval_timeout: Duration::from_secs(30),
        progress: &forward,
        ..RecoverOptions::default()
    };
    let rec = recover(set, wallet, auth, opts).await.expect("recovered");
    approver.await.expect("approver");
    assert_eq!(rec.data().expose(), DATA);
    rec
}

/// Active and staged epoch of `wallet` at every node of `c`.
async fn epochs(c: &Cluster, wallet: &str) -> Vec<(Option<u64>, Option<u64>)> {
    epoch_status(&c.set, wallet)
        .await
        .into_iter()
        .map(|t| (t.active.map(|a| a.0), t.staged.map(|s| s.0)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_owner_ceremony_is_one_touch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 6).await;
    let old = c.subset(&[0, 1, 2, 3, 4]);
    let new = c.subset(&[0, 1, 5]);
    let wallet = "w-one-touch";
    let mut auth = SoftwareAuthenticator::new();

    // Backup 3-of-5: one registration, the same credential at all five trustees.
    let p = PreparedBackup::new(
        &old,
        wallet,
        DATA,
        BackupPolicy {
            threshold: 3,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    let receipts = backup(&old, &p, "owner", &mut auth, &|_| {})
        .await
        .expect("backup");
    assert_eq!(receipts.receipts.len(), 5);
    assert_eq!(auth.touches(), 1, "backup");

    // Recovery: one assertion for the five sessions.
    let rec = recover_approved(&c, &old, wallet, &mut auth).await;
    assert_eq!(auth.touches(), 2, "recovery");
    assert!(rec.closed.is_empty(), "{:?}", rec.closed);
    assert!(rec.unavailable.is_empty(), "{:?}", rec.unavailable);

    // Rotation 3-of-5 → 2-of-3 over n0, n1 and n5 (new to the wallet), n2..n4 leaving: two
    // touches, stage then commit (which also retires the leaving trustees).
    let asked = Mutex::new(Vec::new());
    let progress = |e: RotateEvent| {
        if let RotateEvent::PasskeyRequested { action, trustees } = e {
            asked.lock().expect("lock").push((action, trustees));
        }
    };
    let opts = RotateOptions::new("owner").progress(&progress);
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 0,
    };
    let record = rotate(
        &old,
        &new,
        &RotationSource::from_recovered(&rec),
        policy,
        false,
        &mut auth,
        &opts,
    )
    .await
    .expect("rotated");
    assert!(record.is_done());
    assert_eq!(auth.touches(), 4, "rotation: stage + commit");
    let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        *asked.lock().expect("lock"),
        vec![
            (OwnerAction::Stage, names(&["n0", "n1", "n5"])),
            (
                OwnerAction::Commit,
                names(&["n0", "n1", "n5", "n2", "n3", "n4"])
            ),
        ]
    );
    assert_eq!(
        epochs(&c, wallet).await,
        vec![
            (Some(2), None),
            (Some(2), None),
            (None, None),
            (None, None),
            (None, None),
            (Some(2), None),
        ]
    );

    // The joining trustee registered no passkey of its own: it took the wallet's credential,
    // and the next recovery's one assertion verifies there too.
    let rec2 = recover_approved(&c, &new, wallet, &mut auth).await;
    assert_eq!(auth.touches(), 5, "recovery from epoch 2");
    assert_eq!(rec2.manifest.epoch(), 2);
    assert!(
        rec2.unavailable.is_empty() && rec2.faulty.is_empty(),
        "{:?} {:?}",
        rec2.unavailable,
        rec2.faulty
    );

    // The owner stops a recovery and cancels it everywhere: one touch for all sessions.
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let progress = |e: RecoverEvent| {
        if let RecoverEvent::AwaitingApproval { .. } = e {
            let _ = cancel_tx.send(true);
        }
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(100),
        cancel: Some(cancel_rx),
        progress: &progress,
        ..RecoverOptions::default()
    };
    let handle = match recover(&new, wallet, &mut auth, opts).await {
        Err(RecoverError::Cancelled { handle }) => *handle,
        other => panic!("expected Cancelled, got {other:?}"),
    };
    assert_eq!(auth.touches(), 6);
    let outcomes = cancel_recovery(&new, &handle, &mut auth).await;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");
    assert_eq!(auth.touches(), 7, "cancel");

    // A rotation stopped before its first commit and rolled back: one touch to stage, one to
    // abandon.
    let stop_at_commit = |s: &RotationStep| matches!(s, RotationStep::Commit(_));
    let opts = RotateOptions::new("owner").interrupt(&stop_at_commit);
    let mut record = match rotate(
        &new,
        &new,
        &RotationSource::from_recovered(&rec2),
        policy,
        false,
        &mut auth,
        &opts,
    )
    .await
    {
        Err(RotateError::Interrupted { record, .. }) => *record,
        other => panic!("expected an interruption before the commit, got {other:?}"),
    };
    assert_eq!(auth.touches(), 8, "stage");
    assert_eq!(
        epochs(&c, wallet).await[0],
        (Some(2), Some(3)),
        "epoch 3 staged at the bank"
    );
    rollback_rotation(&mut record, &new, &new, &mut auth, &opts)
        .await
        .expect("rolled back");
    assert_eq!(auth.touches(), 9, "abandon");
    for i in [0, 1, 5] {
        assert_eq!(epochs(&c, wallet).await[i], (Some(2), None), "node {i}");
    }
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_trustees_one_touch_each() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 10).await;
    let set = c.set.clone();
    let mut auth = SoftwareAuthenticator::new();
    let p = PreparedBackup::new(
        &set,
        "w-ten",
        DATA,
        BackupPolicy {
            threshold: 6,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    backup(&set, &p, "owner", &mut auth, &|_| {})
        .await
        .expect("backup");
    assert_eq!(auth.touches(), 1);
    let rec = recover_approved(&c, &set, "w-ten", &mut auth).await;
    assert_eq!(auth.touches(), 2);
    assert_eq!(rec.handle.sessions.len(), 10);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trustee_joining_alone_gets_the_wallets_credential_from_another_trustee() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 6).await;
    let old = c.subset(&[0, 1, 2, 3, 4]);
    let new = c.subset(&[0, 1, 5]);
    let wallet = "w-join-alone";
    let mut auth = SoftwareAuthenticator::new();
    let p = PreparedBackup::new(
        &old,
        wallet,
        DATA,
        BackupPolicy {
            threshold: 3,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    backup(&old, &p, "owner", &mut auth, &|_| {})
        .await
        .expect("backup");
    let source = RotationSource::from_prepared(&p).expect("source");
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 0,
    };

    // Stopped before staging at n5: n0 and n1 hold epoch 2 staged, n5 nothing.
    let stop_at_n5 = |s: &RotationStep| *s == RotationStep::Stage("n5".into());
    let opts = RotateOptions::new("owner").interrupt(&stop_at_n5);
    let mut record = match rotate(&old, &new, &source, policy, false, &mut auth, &opts).await {
        Err(RotateError::Interrupted { record, .. }) => *record,
        other => panic!("expected an interruption before staging at n5, got {other:?}"),
    };
    assert_eq!(auth.touches(), 2, "backup + stage");

    // Resumed: n5 stages alone. No trustee of that stage holds the wallet, so the SDK takes the
    // wallet's credential (and its fingerprint, which the touch covers) from n0.
    let opts = RotateOptions::new("owner");
    dlocker_sdk::protocol::resume_rotation(
        &mut record,
        &old,
        &new,
        source.secret(),
        &mut auth,
        &opts,
    )
    .await
    .expect("resumed");
    assert!(record.is_done());
    assert_eq!(auth.touches(), 4, "stage at n5 + commit");
    assert_eq!(epochs(&c, wallet).await[5], (Some(2), None));

    // n5 took the wallet's one credential: the recovery's one assertion verifies there too.
    let rec = recover_approved(&c, &new, wallet, &mut auth).await;
    assert_eq!(auth.touches(), 5);
    assert!(
        rec.unavailable.is_empty() && rec.faulty.is_empty(),
        "{:?} {:?}",
        rec.unavailable,
        rec.faulty
    );
    c.stop_all().await;
}
