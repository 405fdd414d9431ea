//! The SDK's `Client` on real nodes: one kept connection per trustee serves a wallet's whole life
//! (backup, verify, status, cancel all, passkey change, delete) — counted on the nodes'
//! `/metrics` as `GetInfo` calls, against the free functions that connect on every call — and
//! TLS roots handed over in memory reach an https trustee whose file names no CA.

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::cluster::free_ports;
use dlocker_integration_tests::craft;
use dlocker_integration_tests::http::{get, metric};
use dlocker_integration_tests::recovery_cluster::set_config_value;
use dlocker_proto::ids::WalletId;
use dlocker_sdk::{
    BackupPolicy, Client, Error, OwnerIdentity, PreparedBackup, SoftwareAuthenticator,
    TrusteeErasure, TrusteeFailure, TrusteeInfo, TrusteeSet, TrusteeStatus,
};
use std::net::SocketAddr;

const GET_INFO: &str =
    r#"dlocker_grpc_requests_total{service="dlocker.v1.Trustee",method="GetInfo",code="Ok"}"#;
const POLICY: BackupPolicy = BackupPolicy {
    threshold: 2,
    recovery_delay_secs: 3600,
};

/// `GetInfo` calls each node has answered so far.
fn get_info_calls(admin: &[SocketAddr]) -> Vec<f64> {
    admin
        .iter()
        .map(|a| metric(&get(*a, "/metrics").text(), GET_INFO).unwrap_or(0.0))
        .collect()
}

fn delta(after: &[f64], before: &[f64]) -> Vec<f64> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_per_trustee_serves_a_wallets_life() {
    let mut cluster = Cluster::init(3, &[], &[]);
    let admin: Vec<SocketAddr> = free_ports(3)
        .into_iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        .collect();
    for (i, addr) in admin.iter().enumerate() {
        set_config_value(
            cluster.data_dir(i),
            "admin",
            "listen",
            toml::Value::String(addr.to_string()),
        );
    }
    cluster.start_all().await;
    let trustees = cluster.trustees();

    // Before the Client: the free functions open and check a connection on every call.
    let wallet = craft::wallet_id("free-fns");
    let start = get_info_calls(&admin);
    let prepared = PreparedBackup::new(&trustees, &wallet, b"seed", POLICY).expect("prepare");
    let mut auth = SoftwareAuthenticator::new();
    dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("backup");
    assert!(
        dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest())
            .await
            .all_healthy()
    );
    let _ = dlocker_sdk::protocol::epoch_status(&trustees, &wallet).await;
    let free = delta(&get_info_calls(&admin), &start);
    assert!(
        free.iter().all(|&n| n >= 3.0),
        "three calls, a GetInfo each at every node: {free:?}"
    );

    // The Client: the same calls and more, one GetInfo per node in all.
    let client = Client::builder()
        .trustees(trustees.clone())
        .build()
        .expect("client");
    let id = WalletId::parse(craft::wallet_id("client")).expect("wallet id");
    let start = get_info_calls(&admin);
    let prepared = client
        .prepare_backup(&id, b"seed words", POLICY)
        .expect("prepare");
    let mut owner = SoftwareAuthenticator::new();
    let owner_id = OwnerIdentity {
        user_name: "alice",
        customer_reference: None,
    };
    let receipts = client
        .backup(&prepared, &owner_id, &mut owner, None)
        .await
        .expect("backup");
    assert_eq!(receipts.receipts.len(), 3);
    let report = client.verify(prepared.manifest()).await.expect("verify");
    assert!(report.all_healthy(), "{report:?}");
    let status: Vec<TrusteeStatus> = client.status(&id).await.expect("status");
    for s in &status {
        assert_eq!(s.error, None, "{s:?}");
        assert_eq!(s.active.as_ref().map(|a| a.epoch), Some(1), "{s:?}");
        assert_eq!(
            s.active.as_ref().map(|a| a.manifest_hash),
            Some(prepared.manifest_hash().0)
        );
    }
    let none = client
        .cancel_all_recoveries(&id, &mut owner)
        .await
        .expect("cancel all");
    assert_eq!(none.closed(), 0);
    let mut new_passkey = SoftwareAuthenticator::new();
    client
        .change_passkey(&id, &mut owner, &mut new_passkey)
        .await
        .expect("change passkey");
    // The old passkey is refused now; the new one deletes the wallet.
    let old = client
        .delete(&id, &mut owner)
        .await
        .expect_err("the old passkey no longer works");
    assert!(
        !old.is_retryable(),
        "a refused passkey is not retried: {old}"
    );
    let deleted = client.delete(&id, &mut new_passkey).await.expect("delete");
    assert!(
        deleted
            .trustees
            .iter()
            .all(|(_, e)| matches!(e, TrusteeErasure::Erased(_)))
    );
    let with_client = delta(&get_info_calls(&admin), &start);
    assert_eq!(
        with_client,
        vec![1.0; 3],
        "one checked connection per trustee for eight calls"
    );
    assert_eq!(client.connections_opened(), 3);
    println!(
        "GetInfo calls per node: free functions (3 calls) {free:?}; Client (8 calls) {with_client:?}"
    );

    // A trustee that is down: the failure is typed and worth retrying.
    cluster.stop(2);
    let down = Client::builder()
        .trustees(cluster.trustees())
        .retry(dlocker_sdk::RetryPolicy::none())
        .build()
        .expect("client");
    let id2 = WalletId::parse(craft::wallet_id("down")).expect("wallet id");
    let prepared = down.prepare_backup(&id2, b"seed", POLICY).expect("prepare");
    let mut owner2 = SoftwareAuthenticator::new();
    let e = down
        .backup(&prepared, &owner_id, &mut owner2, None)
        .await
        .expect_err("trustee-3 is down");
    assert!(matches!(e, Error::Backup(_)), "{e:?}");
    assert!(e.is_retryable(), "{e}");
    assert!(
        e.failures()
            .iter()
            .any(|(name, f)| matches!(f, TrusteeFailure::Connect(_))
                && *name == cluster.node(2).name),
        "{:?}",
        e.failures()
    );
    // As the error said: once it is back, the same call completes.
    cluster.start_node(2).await;
    down.backup(&prepared, &owner_id, &mut owner2, None)
        .await
        .expect("the retried backup completes");
    assert_eq!(owner2.touches(), 1, "one registration in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_roots_from_memory_reach_an_https_trustee() {
    // Node 1 serves TLS under its own private CA.
    let mut cluster = Cluster::init(3, &[1], &[]);
    cluster.start_all().await;
    let ca_pem = cluster.node(1).tls.as_ref().expect("tls").ca_pem.clone();
    // The trustees as an app would ship them: no CA file anywhere.
    let bare = TrusteeSet::new(
        cluster
            .trustees()
            .trustees()
            .iter()
            .map(|t| {
                TrusteeInfo::new(
                    t.name.clone(),
                    t.endpoint.clone(),
                    t.public_key,
                    t.role,
                    Default::default(),
                )
            })
            .collect(),
    )
    .expect("trustees");
    let owner_id = OwnerIdentity {
        user_name: "alice",
        customer_reference: None,
    };

    // Without roots the https trustee cannot be used, and waiting will not help.
    let without = Client::builder()
        .trustees(bare.clone())
        .build()
        .expect("client");
    let id = WalletId::parse(craft::wallet_id("tls-mem")).expect("wallet id");
    let prepared = without
        .prepare_backup(&id, b"seed", POLICY)
        .expect("prepare");
    let e = without
        .backup(
            &prepared,
            &owner_id,
            &mut SoftwareAuthenticator::new(),
            None,
        )
        .await
        .expect_err("no CA for the https trustee");
    assert!(!e.is_retryable(), "{e}");
    assert!(
        e.failures()
            .iter()
            .any(|(_, f)| matches!(f, TrusteeFailure::Connect(c) if !c.is_retryable())),
        "{:?}",
        e.failures()
    );

    // With the CA handed over in memory: the backup completes and verifies.
    let with = Client::builder()
        .trustees(bare)
        .tls_roots_pem(ca_pem.into_bytes())
        .build()
        .expect("client");
    let id = WalletId::parse(craft::wallet_id("tls-mem2")).expect("wallet id");
    let prepared = with.prepare_backup(&id, b"seed", POLICY).expect("prepare");
    with.backup(
        &prepared,
        &owner_id,
        &mut SoftwareAuthenticator::new(),
        None,
    )
    .await
    .expect("backup over TLS with in-memory roots");
    assert!(
        with.verify(prepared.manifest())
            .await
            .expect("verify")
            .all_healthy()
    );
}
