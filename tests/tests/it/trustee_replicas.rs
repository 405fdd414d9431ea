//! A trustee reachable at several endpoints of one node identity (`replicas` in the trustees
//! file) on real nodes: with an endpoint that does not answer listed for every trustee, a backup,
//! its possession check and the CLI's health check go through the endpoint that answers, with
//! the free functions and with a `Client`, whichever endpoint a client happens to try first. An
//! endpoint that answers with ANOTHER node's key is refused as a key mismatch naming it, never
//! passed over quietly.

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::cluster::free_ports;
use dlocker_integration_tests::{cli_command, craft};
use dlocker_proto::ids::WalletId;
use dlocker_sdk::ConnectError;
use dlocker_sdk::{
    BackupPolicy, Client, OwnerIdentity, PreparedBackup, SoftwareAuthenticator, TrusteeFailure,
    TrusteeInfo, TrusteeSet,
};

const POLICY: BackupPolicy = BackupPolicy {
    threshold: 2,
    recovery_delay_secs: 3600,
};

/// `set` with every trustee also listing `extra(i)` as a replica (a replica first when
/// `extra_first`).
fn with_replicas(
    set: &TrusteeSet,
    extra: impl Fn(usize) -> String,
    extra_first: bool,
) -> TrusteeSet {
    let trustees = set
        .trustees()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (primary, replica) = if extra_first {
                (extra(i), t.endpoint.clone())
            } else {
                (t.endpoint.clone(), extra(i))
            };
            TrusteeInfo::new(&t.name, primary, t.public_key, t.role, t.tls.clone())
                .with_replicas([replica])
        })
        .collect();
    TrusteeSet::new(trustees).expect("a valid set")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trustee_that_answers_at_one_of_its_endpoints_serves() {
    let mut cluster = Cluster::init(3, &[], &[]);
    cluster.start_all().await;
    let real = cluster.trustees();
    // Ports nothing listens on: connection refused, as from a replica that is down.
    let dead: Vec<u16> = free_ports(3);
    let dead_endpoint = |i: usize| format!("http://127.0.0.1:{}", dead[i]);

    for extra_first in [true, false] {
        let set = with_replicas(&real, dead_endpoint, extra_first);
        // The file format keeps them.
        let reread = TrusteeSet::from_toml(&set.to_toml()).expect("round trip");
        assert_eq!(reread.trustees()[0].replicas, set.trustees()[0].replicas);

        // Free functions: every call picks a starting endpoint at random; ten backups make both
        // orders all but certain, and each must go through.
        for k in 0..10 {
            let wallet = craft::wallet_id(&format!("replicas-{extra_first}-{k}"));
            let prepared = PreparedBackup::new(&set, &wallet, b"seed", POLICY).expect("prepare");
            let mut auth = SoftwareAuthenticator::new();
            let receipts =
                dlocker_sdk::protocol::backup(&set, &prepared, "alice", &mut auth, &|_| {})
                    .await
                    .expect("backup through the endpoint that answers");
            assert_eq!(receipts.receipts.len(), 3);
            assert!(
                dlocker_sdk::protocol::verify_backup(&set, prepared.manifest())
                    .await
                    .all_healthy()
            );
        }

        // A Client keeps the endpoint that answered.
        let client = Client::builder()
            .trustees(set.clone())
            .build()
            .expect("client");
        let id = WalletId::parse(craft::wallet_id("replicas-client")).expect("wallet id");
        let prepared = client
            .prepare_backup(&id, b"seed words", POLICY)
            .expect("prepare");
        let mut owner = SoftwareAuthenticator::new();
        let owner_id = OwnerIdentity {
            user_name: "alice",
            customer_reference: None,
        };
        client
            .backup(&prepared, &owner_id, &mut owner, None)
            .await
            .expect("client backup");
        assert!(
            client
                .verify(prepared.manifest())
                .await
                .expect("verify")
                .all_healthy()
        );
    }

    // The CLI reads the same file; its health check probes every endpoint, so the operator sees
    // the replica that is down (and the command fails for it) beside the one that serves.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trustees.toml");
    std::fs::write(&file, with_replicas(&real, dead_endpoint, true).to_toml()).expect("write");
    let out = cli_command()
        .args(["--json", "cluster", "health", "--trustees"])
        .arg(&file)
        .output()
        .expect("run dlocker cluster health");
    assert!(!out.status.success(), "a replica is down");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(rows["healthy"], false);
    let rows = rows["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 6, "two endpoints per trustee: {rows:?}");
    for (i, t) in real.trustees().iter().enumerate() {
        let row = |e: &str| {
            rows.iter()
                .find(|r| r["endpoint"] == e)
                .unwrap_or_else(|| panic!("no row for {e}: {rows:?}"))
                .clone()
        };
        assert_eq!(row(&t.endpoint)["healthy"], true, "{rows:?}");
        assert_eq!(row(&dead_endpoint(i))["serving"], "UNREACHABLE", "{rows:?}");
    }

    // A "replica" that is another node: refused as a key mismatch naming that endpoint.
    let impostor = |i: usize| real.trustees()[(i + 1) % 3].endpoint.clone();
    let set = with_replicas(&real, impostor, true);
    let wallet = craft::wallet_id("replicas-impostor");
    let prepared = PreparedBackup::new(&set, &wallet, b"seed", POLICY).expect("prepare");
    let mut auth = SoftwareAuthenticator::new();
    let mut mismatches = 0;
    // Whichever endpoint a call tries first, the impostor is never used: either the real
    // endpoint answered first, or the call stops at the mismatch.
    for _ in 0..10 {
        match dlocker_sdk::protocol::backup(&set, &prepared, "alice", &mut auth, &|_| {}).await {
            Ok(_) => {}
            Err(dlocker_sdk::BackupError::Incomplete { failed, .. }) => {
                for (name, f) in &failed {
                    if let TrusteeFailure::Connect(ConnectError::KeyMismatch { endpoint, .. }) = f {
                        let i = (0..3)
                            .find(|&i| &real.trustees()[i].name == name)
                            .expect("a trustee");
                        assert_eq!(*endpoint, impostor(i), "{f:?}");
                        mismatches += 1;
                    }
                }
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert!(
        mismatches > 0,
        "in ten tries some call met an impostor endpoint first and stopped there"
    );
}
