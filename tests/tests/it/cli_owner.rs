//! The owner's CLI commands on real nodes: `dlocker delete` (one touch of the software passkey
//! file; each trustee's signed erasure receipt printed; a second run completes a partial delete;
//! a later recovery finds nothing at any trustee; a wrong passkey is refused and changes nothing),
//! `dlocker passkey change` (the old passkey is refused afterwards, the new one recovers) and
//! `dlocker cancel-recoveries` (a stranger's sessions closed by the owner's passkey file).
//!
//! Nodes: bank, trustee-2, trustee-3 hold a 2-of-3 backup.

use dlocker_integration_tests::cli_command;
use dlocker_integration_tests::rotation::RotationCluster;
use dlocker_proto::statement::{EraseReceipt, Signed};
use dlocker_sdk::{BackupPolicy, PreparedBackup, SoftwareAuthenticator};
use std::path::{Path, PathBuf};
use std::process::Output;

const ALL: [usize; 3] = [0, 1, 2];
const DATA: &[u8] = b"cli owner: delete and passkey change";

fn dlocker(args: &[&str]) -> Output {
    cli_command().args(args).output().expect("run dlocker")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn succeeded(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\n{}\n{}",
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(o)
}

/// A failure: non-zero exit, one `error:` line (plus a `hint:` line) containing `needle`.
fn failed(o: &Output, what: &str, needle: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{what} succeeded:\n{}", stdout(o));
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !lines.is_empty()
            && lines[0].starts_with("error:")
            && lines.len() <= 2
            && lines.get(1).is_none_or(|l| l.starts_with("hint:")),
        "{what}: one error line (+ hint):\n{err}"
    );
    assert!(lines[0].contains(needle), "{what}: {err}");
    err
}

/// Backs up a fresh wallet with an exportable software passkey saved to `ROOT/NAME.passkey`.
async fn backup(rc: &RotationCluster, prefix: &str, name: &str) -> (String, PathBuf) {
    let set = rc.set(&ALL);
    let wallet = dlocker_integration_tests::craft::wallet_id(prefix);
    let prepared = PreparedBackup::new(
        &set,
        &wallet,
        DATA,
        BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare backup");
    let mut auth = SoftwareAuthenticator::exportable().expect("software token");
    dlocker_sdk::protocol::backup(&set, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("backup");
    let file = rc.root_dir().join(format!("{name}.passkey"));
    std::fs::write(&file, auth.to_bytes().expect("exportable")).expect("write passkey");
    (wallet, file)
}

fn load(file: &Path) -> SoftwareAuthenticator {
    SoftwareAuthenticator::from_bytes(&std::fs::read(file).expect("read passkey"))
        .expect("passkey file")
}

/// Every node's `(active, staged)` epochs of `wallet` (`None`: holds nothing).
async fn held(rc: &RotationCluster, wallet: &str) -> Vec<Option<(u64, u64)>> {
    let mut out = Vec::new();
    for i in ALL {
        out.push(rc.epochs_at(i, wallet).await);
    }
    out
}

/// Checks the `--json` erasure rows: every `erased` row carries a receipt that verifies under
/// that node's pinned key and names it and the wallet; returns the names of the erased ones.
fn verified_receipts(rc: &RotationCluster, json: &serde_json::Value, wallet: &str) -> Vec<String> {
    let mut erased = Vec::new();
    for row in json["trustees"].as_array().expect("trustees") {
        if row["result"] != "erased" {
            assert_eq!(row["result"], "held_nothing", "{row}");
            continue;
        }
        let name = row["trustee"].as_str().expect("name");
        let i = ALL
            .into_iter()
            .find(|i| rc.node(*i).name == name)
            .expect("a node of the cluster");
        let bytes = hex::decode(row["receipt"].as_str().expect("receipt")).expect("hex");
        let receipt = Signed::<EraseReceipt>::decode_trusted(&bytes, &[*rc.public_key(i)])
            .expect("signed by the node's pinned key");
        assert_eq!(receipt.body().node_id, rc.node(i).node_id);
        assert_eq!(receipt.body().wallet_id, wallet);
        assert_eq!(receipt.body().epoch, 1);
        erased.push(name.to_owned());
    }
    erased
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_delete_completes_on_rerun_and_recovery_finds_nothing() {
    let mut rc = RotationCluster::start(3, None).await;
    let tf = rc.write_trustees();
    let tf = tf.to_str().expect("utf-8").to_owned();
    let (wallet, passkey) = backup(&rc, "cli-delete", "owner").await;
    let (_, stranger) = backup(&rc, "cli-stranger", "stranger").await;
    let passkey = passkey.to_str().expect("utf-8").to_owned();
    let stranger = stranger.to_str().expect("utf-8").to_owned();
    let before = held(&rc, &wallet).await;
    assert_eq!(before, vec![Some((1, 0)); 3]);

    // Another wallet's passkey: refused before anything is erased.
    let o = dlocker(&[
        "delete",
        "--trustees",
        &tf,
        "--wallet",
        &wallet,
        "--passkey",
        &stranger,
    ]);
    failed(&o, "a delete with a wrong passkey", "refused");
    assert_eq!(
        held(&rc, &wallet).await,
        before,
        "the refusal changed nothing"
    );

    // trustee-3 is down: the others erase and print their receipts; the run fails naming it.
    rc.stop(2);
    let o = dlocker(&[
        "--json",
        "delete",
        "--trustees",
        &tf,
        "--wallet",
        &wallet,
        "--passkey",
        &passkey,
    ]);
    let err = failed(&o, "a delete with trustee-3 down", "delete incomplete");
    assert!(err.contains(&rc.node(2).name), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(json["complete"], false);
    assert_eq!(
        verified_receipts(&rc, &json, &wallet),
        vec![rc.node(0).name.clone(), rc.node(1).name.clone()]
    );

    // The same command again completes it: trustee-3 erases, the others held nothing.
    rc.start_node(2).await;
    assert_eq!(held(&rc, &wallet).await[2], Some((1, 0)));
    let o = dlocker(&[
        "--json",
        "delete",
        "--trustees",
        &tf,
        "--wallet",
        &wallet,
        "--passkey",
        &passkey,
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&succeeded(&o, "the second delete")).expect("json");
    assert_eq!(json["complete"], true);
    assert_eq!(
        verified_receipts(&rc, &json, &wallet),
        vec![rc.node(2).name.clone()]
    );
    // The table form once more: every trustee confirms it holds nothing.
    let out = succeeded(
        &dlocker(&[
            "delete",
            "--trustees",
            &tf,
            "--wallet",
            &wallet,
            "--passkey",
            &passkey,
        ]),
        "a third delete",
    );
    assert!(
        out.contains("deleted at every trustee (0 erased now, 3 held nothing)"),
        "{out}"
    );
    assert_eq!(held(&rc, &wallet).await, vec![None; 3]);

    // A recovery finds nothing: every trustee says it holds no backup.
    let mut auth = load(Path::new(&passkey));
    let e = rc
        .recover(&wallet, &mut auth)
        .await
        .expect_err("the wallet is deleted");
    let e = e.to_string();
    assert!(e.contains("holds no backup for this wallet"), "{e}");
    for i in ALL {
        assert!(
            e.contains(&rc.node(i).name),
            "names {}: {e}",
            rc.node(i).name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_passkey_change_old_refused_new_recovers() {
    let rc = RotationCluster::start(3, None).await;
    let tf = rc.write_trustees();
    let tf = tf.to_str().expect("utf-8").to_owned();
    let (wallet, old) = backup(&rc, "cli-pk", "old").await;
    let old = old.to_str().expect("utf-8").to_owned();
    let new = rc.root_dir().join("new.passkey");
    let new_s = new.to_str().expect("utf-8").to_owned();

    let out = succeeded(
        &dlocker(&[
            "passkey",
            "change",
            "--trustees",
            &tf,
            "--wallet",
            &wallet,
            "--passkey",
            &old,
            "--new-passkey",
            &new_s,
        ]),
        "passkey change",
    );
    assert!(out.contains("passkey changed at every trustee"), "{out}");
    for i in ALL {
        assert!(out.contains(&rc.node(i).name), "{out}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&new)
            .expect("new passkey")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the new passkey file is private");
    }
    // An existing file is never overwritten.
    let o = dlocker(&[
        "passkey",
        "change",
        "--trustees",
        &tf,
        "--wallet",
        &wallet,
        "--passkey",
        &new_s,
        "--new-passkey",
        &new_s,
    ]);
    failed(&o, "overwriting the passkey file", "cannot create");

    // The old passkey is refused: another change, a delete; nothing changed.
    let newer = rc.root_dir().join("newer.passkey");
    let o = dlocker(&[
        "passkey",
        "change",
        "--trustees",
        &tf,
        "--wallet",
        &wallet,
        "--passkey",
        &old,
        "--new-passkey",
        newer.to_str().expect("utf-8"),
    ]);
    failed(&o, "a change with the old passkey", "refused");
    assert!(
        !newer.exists(),
        "a refused change leaves no new passkey file"
    );
    let o = dlocker(&[
        "delete",
        "--trustees",
        &tf,
        "--wallet",
        &wallet,
        "--passkey",
        &old,
    ]);
    failed(&o, "a delete with the old passkey", "refused");
    assert_eq!(
        held(&rc, &wallet).await,
        vec![Some((1, 0)); 3],
        "the refused delete erased nothing"
    );
    // ...and a recovery with it.
    let mut old_auth = load(Path::new(&old));
    rc.recover(&wallet, &mut old_auth)
        .await
        .expect_err("the old passkey cannot recover");

    // The new passkey recovers the wallet.
    let mut new_auth = load(&new);
    rc.recover_expecting(&wallet, &mut new_auth, DATA).await;
}

/// `dlocker cancel-recoveries`: a stranger's recovery sessions (opened at every trustee with the
/// wallet id alone) are closed by the owner's passkey file, listed per trustee; another wallet's
/// passkey is refused and closes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_cancel_recoveries_closes_a_strangers_sessions() {
    let rc = RotationCluster::start(3, None).await;
    let tf = rc.write_trustees();
    let tf = tf.to_str().expect("utf-8").to_owned();
    let (wallet, passkey) = backup(&rc, "cli-cancel-all", "owner").await;
    let (_, stranger) = backup(&rc, "cli-cancel-stranger", "stranger").await;
    let passkey = passkey.to_str().expect("utf-8").to_owned();
    let stranger = stranger.to_str().expect("utf-8").to_owned();
    let raw = rc.recovery_cluster();
    let r = dlocker_integration_tests::recovery_cluster::session_key().public_key();
    let mut sessions = Vec::new();
    for i in ALL {
        sessions.push(raw.open(i, &wallet, &r).await.expect("open").session_id);
    }
    let state = |i: usize| {
        let sid = sessions[i].clone();
        async move {
            raw.recovery(i)
                .await
                .get_recovery_status(dlocker_proto::pb::GetRecoveryStatusRequest {
                    session_id: sid,
                })
                .await
                .expect("status")
                .into_inner()
                .state
        }
    };

    let args = |key: &str| {
        vec![
            "cancel-recoveries".to_owned(),
            "--trustees".to_owned(),
            tf.clone(),
            "--wallet".to_owned(),
            wallet.clone(),
            "--passkey".to_owned(),
            key.to_owned(),
        ]
    };
    let run = |a: Vec<String>| dlocker(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&stranger));
    failed(&o, "cancel-recoveries with a wrong passkey", "refused");
    for i in ALL {
        assert_eq!(state(i).await, "open", "a refusal closes nothing");
    }

    let mut json = args(&passkey);
    json.push("--json".to_owned());
    let out = succeeded(&run(json), "cancel-recoveries");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["complete"], true, "{v}");
    assert_eq!(v["closed"], 3, "{v}");
    for i in ALL {
        let t = &v["trustees"][i];
        assert_eq!(t["trustee"], rc.node(i).name.as_str(), "{v}");
        assert_eq!(t["result"], "closed", "{v}");
        assert_eq!(t["closed_sessions"][0], sessions[i].as_str(), "{v}");
        assert_eq!(state(i).await, "cancelled");
    }
    // Again, as a table: nothing left to close.
    let out = succeeded(&run(args(&passkey)), "cancel-recoveries again");
    assert!(out.contains("0 closed"), "{out}");
    assert!(
        out.contains("no recovery session is open at any trustee"),
        "{out}"
    );
}
