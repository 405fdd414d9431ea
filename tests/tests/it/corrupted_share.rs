//! A node whose stored share was corrupted on disk fails `ProveShare`, and `verify_backup` names
//! exactly that node while the other four stay healthy. The corruption is done from the test on
//! the stopped node's database (there is deliberately no server-side hook for it).

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::craft;
use dlocker_proto::pb::ProveShareRequest;
use dlocker_sdk::{BackupPolicy, PreparedBackup, SoftwareAuthenticator};
use tonic::Code;
use trustee_node::db::{SHARES_TREE, wallet_key};

/// Flips one bit of the sealed share record of `wallet_id` in the sled database at `db`.
fn flip_sealed_share_bit(db: &std::path::Path, wallet_id: &str) {
    let db = dlocker_integration_tests::postgres::open_stopped_sled(db);
    let tree = db.open_tree(SHARES_TREE).expect("shares tree");
    let mut record = tree
        .get(wallet_key(wallet_id))
        .expect("read")
        .expect("the node stored a sealed share")
        .to_vec();
    // The last byte is inside the AES-GCM tag of the sealed record.
    let last = record.len() - 1;
    record[last] ^= 0x01;
    tree.insert(wallet_key(wallet_id), record).expect("write");
    db.flush().expect("flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_share_fails_prove_share_and_is_named() {
    let mut cluster = Cluster::start(5).await;
    let trustees = cluster.trustees();
    let wallet = craft::wallet_id("corrupt");
    let prepared = PreparedBackup::new(
        &trustees,
        &wallet,
        b"seed",
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
    assert!(
        dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest())
            .await
            .all_healthy()
    );

    let victim = 2;
    cluster.stop(victim);
    flip_sealed_share_bit(&cluster.data_dir(victim).join("db"), &wallet);
    cluster.start_node(victim).await;

    // Raw ProveShare: the node notices its own record is damaged.
    let mut client = cluster.node(victim).client().await;
    let err = client
        .prove_share(ProveShareRequest {
            wallet_id: wallet.clone(),
            nonce: vec![7; 32],
        })
        .await
        .expect_err("a corrupted share cannot be proved");
    assert_eq!(
        err.code(),
        Code::DataLoss,
        "ProveShare on a corrupted record: {err:?}"
    );

    // The SDK names exactly that node.
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    for (i, e) in report.entries.iter().enumerate() {
        assert_eq!(e.name, cluster.node(i).name);
        if i == victim {
            assert!(!e.status.is_healthy(), "{} must be unhealthy", e.name);
        } else {
            assert!(
                e.status.is_healthy(),
                "{} must stay healthy: {:?}",
                e.name,
                e.status
            );
        }
    }
    assert_eq!(report.healthy_count(), 4);
    assert!(report.recoverable());

    // The node keeps serving other calls: metadata is intact, other wallets are unaffected.
    let st = craft::status(&mut client, &wallet)
        .await
        .expect("status still answers");
    assert_eq!(st.share_index as usize, victim + 1);
}
