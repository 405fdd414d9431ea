//! A cluster whose nodes keep their records in PostgreSQL (one schema each): deposits survive
//! SIGKILL of every node, the tables hold the same sealed records as on sled, and a node refuses
//! a schema that is not its own or that a newer build migrated. Skipped (with the reason) when no
//! PostgreSQL answers, a failure under `DLOCKER_REQUIRE_POSTGRES=1` (CI).

use dlocker_integration_tests::node_command;
use dlocker_integration_tests::postgres::{Storage, with_client};
use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, set_config_value,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `trustee-node serve` on `dir` and expects it to refuse to start; returns its stderr.
fn serve_refuses(dir: &Path) -> String {
    let mut child = node_command()
        .args(["serve", "--data-dir"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn trustee-node serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(!status.success(), "serve exited successfully");
            let mut err = String::new();
            use std::io::Read as _;
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("read stderr");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve did not refuse within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(schema: &str, table: &str) -> i64 {
    with_client(|c| {
        c.query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
            .map(|r| r.get::<_, i64>(0))
            .expect("count")
    })
    .expect("postgres")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_survive_sigkill_and_a_node_refuses_a_schema_not_its_own() {
    let Some(pg) = Storage::postgres("durable") else {
        return;
    };
    let mut rc = RecoveryCluster::start(RecoverySpec {
        storage: pg.clone(),
        ..RecoverySpec::default()
    })
    .await;
    let trustees = rc.trustees();
    let data = b"twelve words of a wallet seed, kept in postgres".to_vec();
    let (wallet, prepared, _auth) = rc.backup("pgdurable", &data, 3600).await;

    // Every node's schema holds exactly the wallet's records; nothing in clear.
    for i in 0..rc.len() {
        let schema = pg.schema(i).expect("schema");
        for table in [
            "wallets",
            "shares",
            "manifests",
            "passkeys",
            "blobs",
            "receipts",
        ] {
            assert_eq!(count(&schema, table), 1, "{schema}.{table}");
        }
        assert!(
            !rc.data_dir(i).join("db").exists(),
            "no sled database beside it"
        );
        let stored: Vec<Vec<u8>> = with_client(|c| {
            c.query(
                &format!("SELECT v FROM {schema}.blobs UNION ALL SELECT v FROM {schema}.shares"),
                &[],
            )
            .expect("read")
            .iter()
            .map(|r| r.get(0))
            .collect()
        })
        .expect("postgres");
        assert!(
            stored
                .iter()
                .all(|v| !v.windows(12).any(|w| w == &data[..12])),
            "wallet data in clear in {schema}"
        );
    }

    // SIGKILL every node: each acknowledged deposit is in the database (committed before the
    // acknowledgement), so all verify after the restart.
    for i in 0..rc.len() {
        rc.kill(i);
    }
    rc.start_all().await;
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    assert!(
        report.all_healthy(),
        "after SIGKILL of every node: {:?}",
        report.entries
    );

    // Node 1 pointed at node 2's (stopped) schema: refused, nothing written there.
    rc.stop(1);
    rc.stop(2);
    let dir1 = rc.data_dir(1).to_path_buf();
    let other = pg.schema(2).expect("schema");
    set_config_value(
        &dir1,
        "storage",
        "schema",
        toml::Value::String(other.clone()),
    );
    let before = count(&other, "audit");
    let err = serve_refuses(&dir1);
    assert!(
        err.contains("belongs to node") && err.contains(&format!("PostgreSQL schema {other}")),
        "{err}"
    );
    assert_eq!(
        count(&other, "audit"),
        before,
        "the foreign schema is untouched"
    );
    rc.start_node(2).await;

    // Its own schema, but migrated by a newer build: refused with both versions named.
    let own = pg.schema(1).expect("schema");
    set_config_value(&dir1, "storage", "schema", toml::Value::String(own.clone()));
    with_client(|c| {
        c.batch_execute(&format!(
            "INSERT INTO {own}.dlocker_schema_version (version, description) VALUES (99, 'future')"
        ))
        .expect("insert")
    })
    .expect("postgres");
    let err = serve_refuses(&dir1);
    let newest = trustee_node::db::migrations::ALL
        .last()
        .map_or(0, |m| m.version);
    assert!(
        err.contains("version 99") && err.contains(&format!("up to {newest}")),
        "{err}"
    );

    // Back to the right schema: the node serves the wallet as before.
    with_client(|c| {
        c.batch_execute(&format!(
            "DELETE FROM {own}.dlocker_schema_version WHERE version = 99"
        ))
        .expect("delete")
    })
    .expect("postgres");
    rc.start_node(1).await;
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    assert!(report.all_healthy(), "{:?}", report.entries);
    let mut client = rc.node(1).client().await;
    dlocker_integration_tests::craft::status(&mut client, &wallet)
        .await
        .expect("node 1 serves the wallet from its schema");
}
