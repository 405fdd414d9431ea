//! `SIGHUP` reloads a bank node's config on a real process: a staff member added to
//! `config.toml` can act at once, a policy change applies, the node keeps serving, a change that
//! needs a restart is logged as such, and a config that no longer loads leaves the running one in
//! force.

use dlocker_integration_tests::bins::node_command;
use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec, wait_for};
use dlocker_proto::pb::ListRecoveriesRequest;
use dlocker_proto::statement::StaffAction;
use dlocker_sdk::StaffKey;
use dlocker_sdk::staff::new_request;
use std::time::Duration;
use tonic::Code;

fn hup(rc: &RecoveryCluster) {
    let pid = rc.node(0).pid().expect("the bank runs");
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -HUP {pid}");
}

fn count(rc: &RecoveryCluster, needle: &str) -> usize {
    std::fs::read_to_string(rc.node(0).log_path())
        .unwrap_or_default()
        .matches(needle)
        .count()
}

/// Sends SIGHUP and waits until the node logged its handling of it (`needle` once more).
async fn hup_and_wait(rc: &RecoveryCluster, needle: &str) {
    let before = count(rc, needle);
    hup(rc);
    wait_for(Duration::from_secs(30), needle, || async {
        (count(rc, needle) > before).then_some(())
    })
    .await;
}

async fn list_as(rc: &RecoveryCluster, key: &StaffKey) -> Result<usize, tonic::Status> {
    let req = key.sign_request(new_request(
        &rc.bank_node_id(),
        StaffAction::ListRecoveries,
        "",
    ));
    rc.raw_staff(0)
        .await
        .list_recoveries(ListRecoveriesRequest {
            staff_request_encoded: req,
        })
        .await
        .map(|r| r.into_inner().recoveries.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_staff_and_keeps_serving() {
    let mut rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let bank_dir = rc.data_dir(0).to_owned();
    let erin = StaffKey::generate();

    // Not yet staff.
    let err = list_as(&rc, &erin).await.expect_err("unknown staff listed");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("unknown key"), "{err:?}");

    // Added to config.toml, then SIGHUP: the running node knows her, and still serves.
    let out = node_command()
        .args(["config", "add-staff", "--data-dir"])
        .arg(&bank_dir)
        .args([
            "--id",
            "erin",
            "--public-key",
            &erin.public_key_hex(),
            "--roles",
            "viewer",
        ])
        .output()
        .expect("add-staff");
    assert!(out.status.success(), "{out:?}");
    hup_and_wait(&rc, "SIGHUP: config reloaded").await;
    assert!(rc.node_mut(0).is_running(), "SIGHUP ended the node");
    list_as(&rc, &erin)
        .await
        .expect("a staff member added by reload can list");
    assert!(
        rc.node(0).log_tail(40).contains("[[bank.staff]]"),
        "{}",
        rc.node(0).log_tail(40)
    );

    // A setting that needs a restart is named as such; the node serves on.
    let cfg = bank_dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    let mut doc: toml::Table = text.parse().expect("toml");
    doc.entry("limits")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[limits]")
        .insert("max_trustees".into(), toml::Value::Integer(9));
    std::fs::write(&cfg, toml::to_string(&doc).expect("toml")).expect("write");
    hup_and_wait(&rc, "take effect only after a restart").await;
    assert!(rc.node(0).log_tail(20).contains("[limits]"));
    list_as(&rc, &erin).await.expect("still serving");

    // A config that does not load: refused, the running config stays (erin still staff).
    std::fs::write(&cfg, "this is not toml [").expect("write");
    hup_and_wait(&rc, "SIGHUP: config not reloaded").await;
    assert!(rc.node_mut(0).is_running(), "a bad config ended the node");
    list_as(&rc, &erin)
        .await
        .expect("the running config stays in force");
}

/// A passphrase-encrypted staff key, end to end through the CLI: `keygen --passphrase-file`
/// writes an encrypted PKCS#8 file, the bank learns the key by reload, and the key signs only
/// with the right passphrase (from a file or `DLOCKER_STAFF_PASSPHRASE`), never without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_staff_key_needs_its_passphrase() {
    use dlocker_integration_tests::bins::cli_command;
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let root = rc.root_dir().to_owned();
    let trustees = rc.write_trustees();
    let key_file = root.join("frank.pem");
    let pass_file = root.join("frank.pass");
    std::fs::write(&pass_file, "correct horse battery staple\n").expect("write");
    let out = rc.dlocker(&[
        "--json",
        "staff",
        "keygen",
        "--out",
        key_file.to_str().expect("utf-8"),
        "--passphrase-file",
        pass_file.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(made["encrypted"], true, "{made}");
    let text = std::fs::read_to_string(&key_file).expect("key file");
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    let public = made["public_key"].as_str().expect("public key").to_owned();

    let add = node_command()
        .args(["config", "add-staff", "--data-dir"])
        .arg(rc.data_dir(0))
        .args([
            "--id",
            "frank",
            "--public-key",
            &public,
            "--roles",
            "viewer",
        ])
        .output()
        .expect("add-staff");
    assert!(add.status.success(), "{add:?}");
    hup_and_wait(&rc, "SIGHUP: config reloaded").await;

    let list = |extra: &[&str], env: Option<&str>| {
        let mut c = cli_command();
        c.args(["--json", "recoveries", "list", "--trustees"])
            .arg(&trustees)
            .arg("--key")
            .arg(&key_file)
            .args(extra)
            .env_remove("DLOCKER_STAFF_PASSPHRASE");
        if let Some(p) = env {
            c.env("DLOCKER_STAFF_PASSPHRASE", p);
        }
        c.output().expect("run dlocker")
    };
    // No passphrase (stdin is not a terminal): refused before anything is sent.
    let none = list(&[], None);
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(!none.status.success(), "listed without a passphrase");
    assert!(
        err.contains("is encrypted and no passphrase was given"),
        "{err}"
    );
    // A wrong one: refused.
    let wrong = list(&[], Some("not it"));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "listed with a wrong passphrase");
    assert!(err.contains("wrong passphrase"), "{err}");
    // The right one, from the file or the environment: the bank accepts the signature.
    let ok = list(
        &["--passphrase-file", pass_file.to_str().expect("utf-8")],
        None,
    );
    assert!(ok.status.success(), "{ok:?}");
    let ok = list(&[], Some("correct horse battery staple"));
    assert!(ok.status.success(), "{ok:?}");
}
