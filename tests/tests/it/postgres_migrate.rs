//! `trustee-node migrate --to postgres` on real nodes: a node of a running sled cluster is
//! stopped, moved into a PostgreSQL schema (every table copied, read back and compared), started
//! again on it, and the wallet backed up before the move recovers. Refused, changing nothing: a
//! migration of a running node, one into a schema that already holds another node's records,
//! and a second migration of a node already on PostgreSQL.

use dlocker_integration_tests::bins::node_command;
use dlocker_integration_tests::postgres::{Storage, postgres_url};
use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, stale_audit_head,
};
use std::path::Path;
use std::process::Output;
use trustee_node::config::NodeConfig;
use trustee_node::config::storage::StorageConfig;

fn migrate(dir: &Path, schema: &str) -> Output {
    node_command()
        .args(["migrate", "--data-dir"])
        .arg(dir)
        .args([
            "--to",
            "postgres",
            "--postgres-url",
            &postgres_url(),
            "--postgres-schema",
            schema,
        ])
        .output()
        .expect("run trustee-node migrate")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn config_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("config.toml")).expect("config.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_node_moves_to_postgres_and_its_wallets_recover() {
    let Some(pg) = Storage::postgres("migrate") else {
        return;
    };
    let mut rc = RecoveryCluster::start(RecoverySpec {
        nodes: 3,
        ..RecoverySpec::default()
    })
    .await;
    let (wallet, _prepared, mut auth) = rc.backup("migrate", b"moved to postgres", 0).await;
    let schema = pg.claim_schema(1).expect("a schema");
    let dir1 = rc.node(1).dir.clone();
    let dir2 = rc.node(2).dir.clone();

    // A running node is not migrated: its sled database is locked.
    let before = config_text(&dir1);
    let out = migrate(&dir1, &schema);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("stop the node first"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(config_text(&dir1), before, "config.toml unchanged");

    // Stopped, it moves: every table copied and compared, the config switched, sled kept aside.
    // Its head record names only the first audit entry (sled keeps the head in memory): the
    // node on PostgreSQL must continue the chain after the last entry, not overwrite it.
    rc.stop(1);
    let before_move = stale_audit_head(&dir1);
    assert!(before_move.len() >= 2, "{before_move:?}");
    let out = migrate(&dir1, &schema);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("PostgreSQL schema {schema}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("wallets"),
        "every table is listed: {stdout}"
    );
    assert!(!dir1.join("db").exists(), "the sled files moved aside");
    assert!(dir1.join("db.migrated-to-postgres").is_dir());
    match NodeConfig::load(&dir1).expect("config").storage {
        StorageConfig::Postgres(p) => assert_eq!(p.schema, schema),
        other => panic!("still {other:?}"),
    }

    // Started on PostgreSQL it serves the wallet stored before the move: a recovery uses it.
    rc.start_node(1).await;
    let recovered = rc
        .recover_with_approval(&wallet, &mut auth, &|_| {})
        .await
        .expect("recovery after the move");
    assert_eq!(recovered.data().expose(), b"moved to postgres");
    assert!(
        recovered.used.iter().any(|n| *n == rc.node(1).name),
        "the migrated node took part: {:?}",
        recovered.used
    );
    // Its audit chain goes on after the last entry copied: intact, nothing overwritten.
    let tf = rc.write_trustees();
    let tf = tf.to_str().expect("utf-8");
    let name = rc.node(1).name.clone();
    let audit =
        |cmd: &str| rc.dlocker(&["--json", "audit", cmd, "--trustees", tf, "--name", &name]);
    let verified = audit("verify");
    let verified_out = text(&verified.stdout);
    assert!(
        verified.status.success(),
        "the chain on PostgreSQL: {verified_out}\n{}",
        text(&verified.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&verified_out).expect("JSON");
    assert_eq!(v["ok"], true, "{v}");
    let shown: serde_json::Value =
        serde_json::from_slice(&audit("show").stdout).expect("audit show JSON");
    let after: Vec<(u64, String)> = shown
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let seq = e["seq"].as_u64().expect("seq");
            (seq, e["hash"].as_str().expect("hash").to_owned())
        })
        .collect();
    assert!(
        after.len() > before_move.len() && after.starts_with(&before_move),
        "the entries from before the move stay as they were, new ones follow:\n\
         before {before_move:?}\nafter {after:?}"
    );

    // Another node into the same schema: refused while node 1 serves it (the schema's serving
    // lock), and with node 1 stopped because the schema holds records. Nothing changes.
    rc.stop(2);
    let before = config_text(&dir2);
    let out = migrate(&dir2, &schema);
    assert!(
        text(&out.stderr).contains("another trustee-node process serves PostgreSQL schema"),
        "{}",
        text(&out.stderr)
    );
    rc.stop(1);
    let out = migrate(&dir2, &schema);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("already holds records"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(config_text(&dir2), before);
    assert!(dir2.join("db").is_dir(), "its sled files stay");
    rc.start_node(2).await;

    // A node already on PostgreSQL: nothing to migrate.
    let out = migrate(&dir1, &schema);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already keeps its records in PostgreSQL"),
        "{}",
        text(&out.stderr)
    );
    rc.start_node(1).await;
}
