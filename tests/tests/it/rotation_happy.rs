//! Epoch rotation on real nodes: a 3-of-5 backup (bank + trustees 2–5) is rotated to 2-of-3 over
//! bank, trustee-2 and trustee-6 (trustee-6 replaces 3, 4 and 5), recovered from epoch 2, then
//! refreshed again with a NEW secret k (epoch 3) from the recovered wallet and recovered from
//! epoch 3. At the end the nodes are stopped and their databases read: the trustees that stayed
//! hold only their epoch-3 share, the ones that left hold nothing of the wallet.

use dlocker_integration_tests::postgres::Storage;
use dlocker_integration_tests::rotation::{
    RotationCluster, db_mentions_wallet, events_naming_wallet, source, stored_share_epoch,
};
use dlocker_sdk::{BackupPolicy, protocol::verify_backup};
use dlocker_sdk::{
    RotateEvent, RotateOptions, RotationSource, TrusteeRole,
    protocol::{epoch_status, rotate},
};
use std::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_3_of_5_to_2_of_3_with_a_trustee_replaced_then_refresh_with_new_k() {
    rotate_replace_refresh(Storage::Sled).await;
}

/// The same rotations with every node's records in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_replace_refresh_on_postgres() {
    if let Some(pg) = Storage::postgres("rotate") {
        rotate_replace_refresh(pg).await;
    }
}

async fn rotate_replace_refresh(storage: Storage) {
    let mut rc = RotationCluster::start_on(6, None, storage).await;
    let (old_idx, new_idx) = ([0, 1, 2, 3, 4], [0, 1, 5]);
    let data = b"correct horse battery staple -- rotated".to_vec();
    let (wallet, prepared, mut auth) = rc.backup("rot-happy", &old_idx, 3, &data).await;
    let (old, new, all) = (rc.set(&old_idx), rc.set(&new_idx), rc.all());

    // 1. Rotate 3-of-5 → 2-of-3 (same k), trustee-6 replacing trustees 3–5.
    let events: Mutex<Vec<RotateEvent>> = Mutex::new(Vec::new());
    let progress = |e: RotateEvent| events.lock().expect("events").push(e);
    let record_file = rc.root_dir().join("happy.rotation.json");
    let opts = RotateOptions::new("alice")
        .record_path(&record_file)
        .progress(&progress);
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 0,
    };
    let record = rotate(
        &old,
        &new,
        &source(&prepared),
        policy,
        false,
        &mut auth,
        &opts,
    )
    .await
    .unwrap_or_else(|e| panic!("rotation: {e}"));
    assert!(record.is_done());
    let roles: Vec<(&str, TrusteeRole)> = record
        .trustees
        .iter()
        .map(|t| (t.name.as_str(), t.role))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("bank", TrusteeRole::Continuing),
            ("trustee-2", TrusteeRole::Continuing),
            ("trustee-6", TrusteeRole::Joining),
            ("trustee-3", TrusteeRole::Leaving),
            ("trustee-4", TrusteeRole::Leaving),
            ("trustee-5", TrusteeRole::Leaving),
        ]
    );
    let events = events.into_inner().expect("events");
    match &events[0] {
        RotateEvent::Planned {
            from_epoch: 1,
            to_epoch: 2,
            threshold: 2,
            window_safe: true,
            joining,
            leaving,
            ..
        } => {
            assert_eq!(joining, &vec!["trustee-6".to_owned()]);
            assert_eq!(leaving.len(), 3);
        }
        other => panic!("first event {other:?}"),
    }
    // Stage everywhere first, then commit (the joining trustee first), then retire.
    let order: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            RotateEvent::Staged { name, .. } => Some(format!("stage {name}")),
            RotateEvent::Committed { name, .. } => Some(format!("commit {name}")),
            RotateEvent::Retired { name } => Some(format!("retire {name}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "stage bank",
            "stage trustee-2",
            "stage trustee-6",
            "commit trustee-6",
            "commit bank",
            "commit trustee-2",
            "retire trustee-3",
            "retire trustee-4",
            "retire trustee-5",
        ]
    );
    println!(
        "rotation 1 (3-of-5 → 2-of-3, trustee-6 replaces 3–5): {}",
        order.join(" → ")
    );

    // Every trustee reports its epochs: epoch 2 active at the three, nothing staged, nothing left
    // at the trustees that left.
    let m2 = record.manifest().expect("manifest 2");
    for s in epoch_status(&all, &wallet).await {
        let expected_active = ["bank", "trustee-2", "trustee-6"]
            .contains(&s.name.as_str())
            .then_some(2);
        assert_eq!(s.active.as_ref().map(|a| a.0), expected_active, "{s:?}");
        assert_eq!(s.staged, None, "{s:?}");
        assert_eq!(s.error, None, "{s:?}");
    }
    let report = verify_backup(&new, &m2).await;
    assert!(report.all_healthy(), "{report:?}");

    // 2. Recover from epoch 2 (the device asks every node it knows).
    let (epoch, recovered) = rc.recover_expecting(&wallet, &mut auth, &data).await;
    assert_eq!(epoch, 2);
    assert_eq!(recovered.manifest.hash(), m2.hash());
    assert!(
        recovered
            .used
            .iter()
            .all(|n| ["bank", "trustee-2", "trustee-6"].contains(&n.as_str())),
        "{:?}",
        recovered.used
    );
    assert!(recovered.faulty.is_empty(), "{:?}", recovered.faulty);

    // 3. Refresh with a NEW k from the recovered wallet: epoch 3 over the same three, 2-of-3.
    let src = RotationSource::from_recovered(&recovered);
    let opts = RotateOptions::new("alice").record_path(rc.root_dir().join("refresh.rotation.json"));
    let record3 = rotate(&new, &new, &src, policy, true, &mut auth, &opts)
        .await
        .unwrap_or_else(|e| panic!("refresh: {e}"));
    assert!(record3.is_done() && record3.new_k);
    let m3 = record3.manifest().expect("manifest 3");
    assert_eq!(
        m3.previous(),
        Some(&m2.hash()),
        "epoch 3 names epoch 2: a verifiable history"
    );
    assert_eq!(m2.previous(), Some(&prepared.manifest_hash()));
    let k3 = record3
        .secret(recovered.secret())
        .expect("the new k, from the old one");
    assert_ne!(k3.to_bytes(), recovered.secret().to_bytes(), "a new k");
    let (epoch, recovered3) = rc.recover_expecting(&wallet, &mut auth, &data).await;
    assert_eq!(epoch, 3);
    assert_eq!(recovered3.secret().to_bytes(), k3.to_bytes());
    println!("rotation 2 (refresh, new k): epoch 3 recovered, data intact");

    // Erased stays erased: a trustee that retired refuses a new deposit of the wallet (a replay
    // of the original enrollment with a fresh ceremony and another passkey), and holds nothing.
    let left = rc.node(2);
    let keys = [
        left.public_key,
        rc.node(3).public_key,
        rc.node(4).public_key,
    ];
    let deposit = dlocker_integration_tests::craft::Deposit::new(&wallet, &keys, 2, &data);
    let mut client = dlocker_proto::pb::trustee_client::TrusteeClient::new(
        left.channel().await.expect("connect"),
    );
    let err = dlocker_integration_tests::craft::Owner::new()
        .enroll(&mut client, &wallet, &deposit.parts(0))
        .await
        .expect_err("a retired trustee accepts no deposit of the wallet");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("retired from this wallet"),
        "{err:?}"
    );
    let st = dlocker_integration_tests::craft::status(&mut client, &wallet)
        .await
        .expect_err("nothing stored");
    assert_eq!(st.code(), tonic::Code::NotFound);

    // 4. Old shares are gone: stop the nodes and read their databases.
    rc.stop_all();
    let m1 = prepared.manifest().clone();
    for i in 0..6 {
        let node = rc.node(i);
        let held = stored_share_epoch(&node.dir, &node.node_id, &wallet, &[&m1, &m2, &m3]);
        match i {
            0 | 1 | 5 => assert_eq!(held, Some(3), "{} holds only its epoch-3 share", node.name),
            _ => {
                assert_eq!(held, None, "{} left: no share", node.name);
                assert!(
                    db_mentions_wallet(&node.dir, &wallet).is_empty(),
                    "{} left: nothing of the wallet",
                    node.name
                );
                let events = events_naming_wallet(&node.dir, &wallet);
                assert!(
                    events.is_empty(),
                    "{} left: its events of the wallet stopped: {events:?}",
                    node.name
                );
            }
        }
    }
}
