//! Housekeeping on real nodes (`[housekeeping]`, trustee-node/src/housekeeping.rs).
//!
//! - An ended (owner-cancelled) recovery session is pruned after the retention: the node answers
//!   `session_not_found` for it and `admin stats` no longer counts it, while a live session of
//!   the same wallet opened before it is kept; the audit log keeps the session's entries, gains a
//!   `recovery_session_pruned` entry and still verifies (`dlocker audit verify`).
//! - A backup abandoned after 3 of 5 deposits (two trustees die while the owner touches the
//!   passkey) is never confirmed; every confirmation with a bad receipt set is refused with
//!   `confirmation_rejected` and changes nothing (a forged receipt signed by a key the manifest
//!   does not name, another wallet's receipts, too few receipts). Once the expiry is short the
//!   three nodes that hold it erase it (`wallet_not_found`, `admin stats`, audit entry), while a
//!   confirmed backup of another wallet, older, is kept and still recovers.
//!
//! The second runs on PostgreSQL too (each node in its own schema; skipped without a server).
//!
//! Short periods come from the config (`sweep_interval_secs = 1`, 1 s retention/expiry); the
//! waits are bounded polls, never timing assertions.

use dlocker_integration_tests::bins::node_command;
use dlocker_integration_tests::postgres::Storage;
use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, THRESHOLD, session_key, set_config_value, wait_for,
};
use dlocker_proto::pb::{ConfirmBackupRequest, GetBackupStatusRequest, GetRecoveryStatusRequest};
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::statement::{Receipt, Signed};
use dlocker_sdk::{
    BackupError, BackupPolicy, Passkey, PasskeyFuture, PreparedBackup, SoftwareAuthenticator,
};
use k256::ecdsa::SigningKey;
use std::path::Path;
use std::time::Duration;

/// Bounds every poll; never asserted.
const PATIENCE: Duration = Duration::from_secs(60);

/// `trustee-node admin stats --json` of a stopped node.
fn stats(dir: &Path) -> serde_json::Value {
    let out = node_command()
        .args(["admin", "stats", "--json", "--data-dir"])
        .arg(dir)
        .output()
        .expect("run admin stats");
    assert!(
        out.status.success(),
        "admin stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stats JSON")
}

fn hk(key: &str, v: i64) -> (String, String, toml::Value) {
    ("housekeeping".into(), key.into(), toml::Value::Integer(v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_sessions_are_pruned_after_retention_and_keep_their_audit_entries() {
    let mut rc = RecoveryCluster::start(RecoverySpec {
        nodes: 3,
        config: vec![
            hk("recovery_session_retention_secs", 1),
            hk("sweep_interval_secs", 1),
        ],
        ..Default::default()
    })
    .await;
    let (wallet, _p, mut auth) = rc.backup("prune", b"seed", 0).await;
    let i = 1;

    // A live session (waiting for the passkey), opened first: every sweep that prunes the ended
    // one has seen it.
    let live_r = session_key().public_key();
    let live = rc.open(i, &wallet, &live_r).await.expect("open live");
    // An ended one: cancelled by the owner.
    let r = session_key().public_key();
    let ended = rc.open(i, &wallet, &r).await.expect("open");
    rc.owner_cancel(i, &wallet, &r, &ended.session_id, &mut auth)
        .await
        .expect("owner cancel");

    let c = rc.recovery(i).await;
    wait_for(PATIENCE, "the cancelled session to be pruned", || {
        let mut c = c.clone();
        let id = ended.session_id.clone();
        async move {
            match c
                .get_recovery_status(GetRecoveryStatusRequest { session_id: id })
                .await
            {
                Err(s) if NodeRefusal::of_status(&s) == Some(NodeRefusal::SessionNotFound) => {
                    Some(())
                }
                _ => None,
            }
        }
    })
    .await;
    let kept = c
        .clone()
        .get_recovery_status(GetRecoveryStatusRequest {
            session_id: live.session_id.clone(),
        })
        .await
        .expect("the live session is never pruned")
        .into_inner();
    assert_eq!(kept.state, "open", "{kept:?}");

    // The stopped node's database: the live session only.
    rc.stop(i);
    let s = stats(rc.data_dir(i));
    assert_eq!(s["recovery_sessions"]["cancelled"], 0, "{s}");
    assert_eq!(s["recovery_sessions"]["open"], 1, "{s}");
    assert_eq!(s["recovery_sessions_prunable"], 0, "{s}");
    rc.start_node(i).await;

    // The audit log kept the session's entries and still verifies.
    let tf = rc.write_trustees();
    let tf = tf.to_str().expect("utf-8");
    let name = rc.node(i).name.clone();
    let show = rc.dlocker(&["--json", "audit", "show", "--trustees", tf, "--name", &name]);
    assert!(show.status.success());
    let shown = String::from_utf8_lossy(&show.stdout);
    for kind in [
        "recovery_opened",
        "recovery_cancelled",
        "recovery_session_pruned",
    ] {
        assert!(shown.contains(kind), "audit show lists {kind}: {shown}");
    }
    let verify = rc.dlocker(&[
        "--json",
        "audit",
        "verify",
        "--trustees",
        tf,
        "--name",
        &name,
    ]);
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "audit verify: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["ok"], true, "{v}");
}

/// The owner's authenticator, which kills two trustees while it registers the passkey: they
/// began the enrollment but never store the deposit.
struct KillDuringTouch {
    inner: SoftwareAuthenticator,
    pids: Vec<u32>,
}

impl Passkey for KillDuringTouch {
    fn create(&mut self, options_json: String) -> PasskeyFuture<'_> {
        for pid in self.pids.drain(..) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        self.inner.create(options_json)
    }
    fn get(&mut self, options_json: String) -> PasskeyFuture<'_> {
        self.inner.get(options_json)
    }
}

async fn confirm(
    rc: &RecoveryCluster,
    i: usize,
    wallet: &str,
    receipts: Vec<Vec<u8>>,
) -> Result<bool, tonic::Status> {
    rc.node(i)
        .client()
        .await
        .confirm_backup(ConfirmBackupRequest {
            wallet_id: wallet.to_owned(),
            receipts_encoded: receipts,
        })
        .await
        .map(|r| r.into_inner().newly_confirmed)
}

async fn holds(rc: &RecoveryCluster, i: usize, wallet: &str) -> bool {
    match rc
        .node(i)
        .client()
        .await
        .get_backup_status(GetBackupStatusRequest {
            wallet_id: wallet.to_owned(),
        })
        .await
    {
        Ok(_) => true,
        Err(s) if NodeRefusal::of_status(&s) == Some(NodeRefusal::WalletNotFound) => false,
        Err(s) => panic!("backup status at node {i}: {s}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_backup_expires_and_a_confirmed_one_stays() {
    abandoned_backup(Storage::Sled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_backup_expires_and_a_confirmed_one_stays_on_postgres() {
    if let Some(pg) = Storage::postgres("abandoned") {
        abandoned_backup(pg).await;
    }
}

async fn abandoned_backup(storage: Storage) {
    let mut rc = RecoveryCluster::start(RecoverySpec {
        storage,
        ..Default::default()
    })
    .await;
    // Confirmed: the SDK's backup confirms at every trustee.
    let (kept, kept_prepared, mut kept_auth) = rc.backup("kept", b"kept secret", 0).await;

    // Abandoned: nodes 3 and 4 die during the passkey touch; 0, 1 and 2 store the deposit.
    let trustees = rc.trustees();
    let wallet = dlocker_integration_tests::craft::wallet_id("abandoned");
    let prepared = PreparedBackup::new(
        &trustees,
        &wallet,
        b"abandoned secret",
        BackupPolicy {
            threshold: THRESHOLD,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    let mut auth = KillDuringTouch {
        inner: SoftwareAuthenticator::new(),
        pids: [3, 4]
            .iter()
            .map(|&i| rc.node(i).pid().expect("running"))
            .collect(),
    };
    let err = dlocker_sdk::protocol::backup(&trustees, &prepared, "bob", &mut auth, &|_| {})
        .await
        .expect_err("two trustees died");
    let BackupError::Incomplete { receipts, .. } = err else {
        panic!("expected an incomplete backup: {err}");
    };
    assert_eq!(receipts.receipts.len(), 3);
    rc.kill(3);
    rc.kill(4);
    rc.start_node(3).await;
    rc.start_node(4).await;

    // GetBackupStatus tells: the abandoned deposit is unconfirmed, the kept one confirmed.
    let status = |i: usize, w: String| {
        let rc = &rc;
        async move {
            rc.node(i)
                .client()
                .await
                .get_backup_status(GetBackupStatusRequest { wallet_id: w })
                .await
                .expect("status")
                .into_inner()
        }
    };
    assert!(status(0, wallet.clone()).await.unconfirmed_since > 0);
    assert_eq!(status(0, kept.clone()).await.unconfirmed_since, 0);

    // Refused confirmations, each changing nothing.
    let mut partial: Vec<Vec<u8>> = receipts
        .receipts
        .iter()
        .map(|r| r.receipt.encode())
        .collect();
    let stranger = SigningKey::from(session_key());
    let manifest = prepared.manifest();
    for entry in &manifest.trustees()[3..] {
        partial.push(
            Signed::sign(
                Receipt {
                    node_id: entry.node_id.clone(),
                    wallet_id: wallet.clone(),
                    epoch: manifest.epoch(),
                    share_index: entry.share_index,
                    manifest_hash: prepared.manifest_hash(),
                    issued_at: dlocker_proto::time::unix_now(),
                },
                &stranger,
            )
            .encode(),
        );
    }
    let kept_receipts: Vec<Vec<u8>> = {
        let mut v = Vec::new();
        for i in 0..rc.len() {
            let st = rc
                .node(i)
                .client()
                .await
                .get_backup_status(GetBackupStatusRequest {
                    wallet_id: kept.clone(),
                })
                .await
                .expect("kept status")
                .into_inner();
            v.push(st.receipt_encoded);
        }
        v
    };
    let three: Vec<Vec<u8>> = partial[..3].to_vec();
    for (what, set) in [
        (
            "forged receipts for the two missing trustees",
            partial.clone(),
        ),
        ("another wallet's receipts", kept_receipts.clone()),
        ("three receipts of five", three),
    ] {
        for i in 0..3 {
            let s = confirm(&rc, i, &wallet, set.clone()).await.expect_err(what);
            assert_eq!(
                NodeRefusal::of_status(&s),
                Some(NodeRefusal::ConfirmationRejected),
                "{what} at node {i}: {s:?}"
            );
        }
    }
    // The kept wallet's own receipts confirm it again: idempotent, nothing new.
    assert!(
        !confirm(&rc, 0, &kept, kept_receipts)
            .await
            .expect("repeat confirmation")
    );

    // Stopped nodes: 0..3 hold one unconfirmed backup, 3 and 4 none. Then the expiry becomes
    // 1 s, swept every second.
    for i in 0..rc.len() {
        rc.stop(i);
        let s = stats(rc.data_dir(i));
        let expect = if i < 3 { 1 } else { 0 };
        assert_eq!(s["unconfirmed_backups"], expect, "node {i}: {s}");
        assert_eq!(s["wallets"], expect + 1, "node {i}: {s}");
        set_config_value(
            rc.data_dir(i),
            "housekeeping",
            "unconfirmed_backup_expiry_secs",
            toml::Value::Integer(1),
        );
        set_config_value(
            rc.data_dir(i),
            "housekeeping",
            "sweep_interval_secs",
            toml::Value::Integer(1),
        );
        rc.start_node(i).await;
    }
    for i in 0..3 {
        let rc = &rc;
        let w = wallet.clone();
        wait_for(PATIENCE, "the abandoned backup to be erased", move || {
            let w = w.clone();
            async move { (!holds(rc, i, &w).await).then_some(()) }
        })
        .await;
        assert!(
            holds(rc, i, &kept).await,
            "node {i} erased a confirmed backup"
        );
    }
    rc.stop(0);
    let s = stats(rc.data_dir(0));
    assert_eq!(s["unconfirmed_backups"], 0, "{s}");
    assert_eq!(s["wallets"], 1, "{s}");
    rc.start_node(0).await;
    let tf = rc.write_trustees();
    let show = rc.dlocker(&[
        "--json",
        "audit",
        "show",
        "--trustees",
        tf.to_str().expect("utf-8"),
        "--name",
        &rc.node(0).name.clone(),
    ]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("wallet_expired_unconfirmed") && shown.contains("backup_confirmed"),
        "{shown}"
    );

    // The confirmed backup still recovers.
    let got = rc
        .recover_with_approval(&kept, &mut kept_auth, &|_| {})
        .await
        .expect("the confirmed backup recovers");
    assert_eq!(got.data().expose(), b"kept secret");
    drop(kept_prepared);
}
