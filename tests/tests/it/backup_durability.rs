//! The main path through the SDK: a 3-of-5 backup on five real nodes, every node receipts,
//! every node proves its share; and all of it survives a clean restart and a crash of every node.

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::craft;
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, SoftwareAuthenticator, TrusteeSet, protocol::ProgressEvent,
};
use std::sync::Mutex;

fn assert_all_healthy(report: &dlocker_sdk::VerifyReport, trustees: &TrusteeSet, when: &str) {
    assert_eq!(
        report.entries.len(),
        trustees.len(),
        "{when}: one entry per trustee"
    );
    let bad: Vec<String> = report
        .entries
        .iter()
        .filter(|e| !e.status.is_healthy())
        .map(|e| format!("{}: {:?}", e.name, e.status))
        .collect();
    assert!(bad.is_empty(), "{when}: unhealthy trustees: {bad:?}");
    assert!(report.all_healthy() && report.recoverable(), "{when}");
    assert_eq!(report.healthy_count(), trustees.len(), "{when}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_three_of_five_verify_restart_and_crash() {
    let mut cluster = Cluster::start(5).await;
    let trustees = cluster.trustees();
    assert_eq!(trustees.len(), 5);
    let wallet = craft::wallet_id("durable");
    let policy = BackupPolicy {
        threshold: 3,
        recovery_delay_secs: 3600,
    };
    let prepared =
        PreparedBackup::new(&trustees, &wallet, b"twelve words of a wallet seed", policy)
            .expect("prepare");
    assert!(
        !format!("{prepared:?}").contains("twelve"),
        "PreparedBackup's Debug must not show wallet data"
    );
    let mut auth = SoftwareAuthenticator::new();

    let events = Mutex::new(Vec::new());
    let progress = |e: ProgressEvent| events.lock().expect("lock").push(e);
    let receipts =
        dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &progress)
            .await
            .unwrap_or_else(|e| panic!("backup failed: {e}"));

    // Every node receipted, each receipt signed by that node's pinned key for its own index.
    assert_eq!(receipts.receipts.len(), 5, "every trustee receipts");
    assert_eq!(receipts.wallet_id, wallet);
    assert_eq!(receipts.manifest_hash, prepared.manifest_hash());
    for (i, node) in cluster.nodes().iter().enumerate() {
        let r = receipts
            .receipts
            .iter()
            .find(|r| r.name == node.name)
            .unwrap_or_else(|| panic!("no receipt from {}", node.name));
        assert_eq!(r.node_id, node.node_id);
        assert_eq!(r.share_index as usize, i + 1);
        craft::check_receipt(
            &r.receipt.encode(),
            &node.public_key,
            prepared.manifest(),
            r.share_index,
        );
    }
    let done = events
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| matches!(e, ProgressEvent::TrusteeDone { .. }))
        .count();
    assert_eq!(done, 5, "one TrusteeDone progress event per trustee");

    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    assert_all_healthy(&report, &trustees, "after backup");

    // What each node says it holds, to compare after restarts.
    let mut before = Vec::new();
    for node in cluster.nodes() {
        let mut c = node.client().await;
        before.push(craft::status(&mut c, &wallet).await.expect("status"));
    }

    // Crash of every node (SIGKILL, no graceful shutdown) right after the backup: every
    // acknowledged deposit was flushed before its receipt, so nothing is lost.
    for i in 0..cluster.len() {
        cluster.kill(i);
    }
    cluster.start_all().await;
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    assert_all_healthy(&report, &trustees, "after SIGKILL of all nodes");

    // Clean restart of every node (SIGTERM; each must exit 0), then verify again.
    cluster.stop_all();
    cluster.start_all().await;
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    assert_all_healthy(&report, &trustees, "after a clean restart of all nodes");

    for (node, b) in cluster.nodes().iter().zip(&before) {
        let mut c = node.client().await;
        let after = craft::status(&mut c, &wallet)
            .await
            .expect("status after restarts");
        assert_eq!(
            &after, b,
            "{}: stored record changed across restarts",
            node.name
        );
    }
}

/// Nodes that are down are named by verify_backup, the rest stay healthy, and the backup is
/// still reported recoverable while at least `t` are healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_nodes_that_are_down() {
    let mut cluster = Cluster::start(5).await;
    let trustees = cluster.trustees();
    let wallet = craft::wallet_id("down");
    let prepared = PreparedBackup::new(
        &trustees,
        &wallet,
        b"data",
        BackupPolicy {
            threshold: 3,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    dlocker_sdk::protocol::backup(
        &trustees,
        &prepared,
        "alice",
        &mut SoftwareAuthenticator::new(),
        &|_| {},
    )
    .await
    .expect("backup");
    cluster.stop(1);
    cluster.kill(4);
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    let unhealthy: Vec<&str> = report
        .entries
        .iter()
        .filter(|e| !e.status.is_healthy())
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        unhealthy,
        vec![cluster.node(1).name.as_str(), cluster.node(4).name.as_str()]
    );
    assert_eq!(report.healthy_count(), 3);
    assert!(
        report.recoverable(),
        "3 of 5 healthy still meets the threshold"
    );
    cluster.kill(2);
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    assert!(
        !report.recoverable(),
        "2 of 5 healthy is below the threshold"
    );
}
