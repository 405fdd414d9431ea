//! A recovery survives the app being killed. The app is a separate process
//! (the SDK example `client-sdk/examples/resumable.rs`) that saves its sealed recovery state at every checkpoint; it is killed
//! with SIGKILL at each step — after the sessions opened, after the owner authenticated, while
//! awaiting the bank's approval, during the waiting period, after a partial release — and run
//! again with `--resume` on the saved file. Each time the wallet comes back with ONE staff
//! approval (the bank's approvers are unchanged), no second waiting period (every trustee's
//! release time is the one set when the session opened), no new session, and no second
//! passkey touch once the owner had authenticated.
//!
//! A backup killed after 3 of 5 receipts (two trustees down when it deposited) completes on
//! resume from its sealed `PreparedBackup`: the three answer with their stored receipts, the two
//! get the saved registration, no second passkey touch, and every trustee then proves its share.
//!
//! A rotation killed in the middle of its commit phase completes on resume from its sealed
//! record (`RotationRecord::open_sealed`).

use dlocker_integration_tests::bins::{RESUMABLE_EXAMPLE, example_path};
use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec, THRESHOLD};
use dlocker_proto::pb::GetRecoveryStatusRequest;
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, RecoveryHandle, SoftwareAuthenticator, StateKey,
    protocol::saved_recovery_handle,
};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Bounds every wait on the app so a broken build fails instead of hanging; never asserted.
const PATIENCE: Duration = Duration::from_secs(120);

struct App {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl App {
    fn start(
        trustees: &Path,
        wallet: &str,
        dir: &Path,
        resume: bool,
        pause_at: Option<&str>,
    ) -> Self {
        Self::start_with(trustees, wallet, dir, resume, pause_at, &[])
    }

    fn start_with(
        trustees: &Path,
        wallet: &str,
        dir: &Path,
        resume: bool,
        pause_at: Option<&str>,
        extra: &[&str],
    ) -> Self {
        let mut cmd = Command::new(example_path(RESUMABLE_EXAMPLE));
        cmd.args(extra);
        cmd.arg("--trustees")
            .arg(trustees)
            .args(["--wallet", wallet])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if resume {
            cmd.arg("--resume");
        }
        if let Some(p) = pause_at {
            cmd.args(["--pause-at", p]);
        }
        let mut child = cmd.spawn().expect("start the resumable example");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads the app's lines until one starts with `prefix`; returns it.
    fn wait_for(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "the app never printed {prefix:?} (exit: {:?}); it printed:\n{}",
                    self.child.try_wait(),
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGKILL: the app gets no chance to save anything more.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the app");
        let _ = self.child.wait();
    }

    /// Waits for the app to finish successfully; returns every line it printed.
    fn finish(self) -> Vec<String> {
        self.finish_at("RECOVERED")
    }

    fn finish_at(mut self, last: &str) -> Vec<String> {
        self.wait_for(last);
        let status = self.child.wait().expect("wait for the app");
        assert!(
            status.success(),
            "the app failed:\n{}",
            self.seen.join("\n")
        );
        // The app's output, for `--nocapture` readers (the closing note quotes it).
        eprintln!("--- app output ---\n{}", self.seen.join("\n"));
        self.seen
    }
}

/// What one trustee says about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    state: String,
    release_not_before: u64,
    approvers: Vec<String>,
}

async fn statuses(rc: &RecoveryCluster, handle: &RecoveryHandle) -> Vec<(String, Status)> {
    let mut out = Vec::new();
    for s in &handle.sessions {
        let i = (0..rc.len())
            .find(|&i| rc.node(i).name == s.name)
            .expect("a cluster node");
        let st = rc
            .recovery(i)
            .await
            .get_recovery_status(GetRecoveryStatusRequest {
                session_id: s.session_id.clone(),
            })
            .await
            .expect("status of a saved session")
            .into_inner();
        out.push((
            s.name.clone(),
            Status {
                state: st.state,
                release_not_before: st.release_not_before,
                approvers: st.approvers,
            },
        ));
    }
    out
}

struct Phone {
    dir: tempfile::TempDir,
    key: StateKey,
}

impl Phone {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn handle(&self) -> RecoveryHandle {
        let saved = std::fs::read(self.state()).expect("the app saved its state");
        saved_recovery_handle(&saved, &self.key).expect("the saved state opens with the app's key")
    }
}

/// Backs up a fresh wallet with an exportable passkey and lays out the app's files.
async fn phone(rc: &RecoveryCluster, prefix: &str, data: &[u8], delay: u64) -> (String, Phone) {
    let trustees = rc.trustees();
    let wallet = dlocker_integration_tests::craft::wallet_id(prefix);
    let prepared = PreparedBackup::new(
        &trustees,
        &wallet,
        data,
        BackupPolicy {
            threshold: THRESHOLD,
            recovery_delay_secs: delay,
        },
    )
    .expect("prepare backup");
    let mut auth = SoftwareAuthenticator::exportable().expect("software token");
    dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("backup on 5 nodes");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = StateKey::generate();
    std::fs::write(dir.path().join("state-key"), hex::encode(key.expose())).expect("key");
    std::fs::write(
        dir.path().join("passkey"),
        auth.to_bytes().expect("exportable"),
    )
    .expect("passkey");
    (wallet, Phone { dir, key })
}

/// The checks every scenario ends with: the data is back, every trustee's release time is the
/// one before the kill, the bank's approvers are the one approval given, no passkey touch
/// unless the owner had not authenticated yet.
fn check_resumed(
    lines: &[String],
    data: &[u8],
    before: &[(String, Status)],
    after: &[(String, Status)],
    touches: u64,
) {
    assert!(
        lines.contains(&format!("RECOVERED {}", hex::encode(data))),
        "the exact data came back: {lines:?}"
    );
    assert!(
        lines.contains(&format!("TOUCHES {touches}")),
        "{touches} passkey touch(es) when resuming: {lines:?}"
    );
    for ((name, b), (_, a)) in before.iter().zip(after) {
        assert_eq!(
            a.release_not_before, b.release_not_before,
            "{name}: the release time is the original one (no second waiting period)"
        );
    }
    let bank = &after[0].1;
    assert_eq!(
        bank.approvers,
        vec!["alice".to_owned()],
        "the bank holds the one approval given"
    );
    let released = after.iter().filter(|(_, s)| s.state == "released").count();
    assert!(
        released >= usize::from(THRESHOLD),
        "at least t trustees released: {after:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("EVENT SessionOpened")),
        "resuming opened no new session: {lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_resumes_after_the_app_is_killed_at_each_step() {
    let mut rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let trustees_file = rc.write_trustees();
    let staff = rc.staff_client(0);
    let data = b"seed words the app must not lose".to_vec();

    // 1. Killed right after the sessions opened: the resumed app asks the passkey (one touch)
    // and the bank approves the saved sessions' R once.
    let (wallet, p) = phone(&rc, "resume-open", &data, 1).await;
    let app = App::start(
        &trustees_file,
        &wallet,
        p.dir.path(),
        false,
        Some("checkpoint:SessionsOpened"),
    );
    let mut app = app;
    app.wait_for("PAUSED");
    app.kill();
    let handle = p.handle();
    let before = statuses(&rc, &handle).await;
    assert!(before.iter().all(|(_, s)| s.state == "open"), "{before:?}");
    let mut app = App::start(&trustees_file, &wallet, p.dir.path(), true, None);
    let bank_session = app.wait_for("EVENT AwaitingApproval");
    let bank_session = bank_session
        .rsplit(' ')
        .next()
        .expect("session id")
        .to_owned();
    assert_eq!(
        Some(bank_session.as_str()),
        handle.session_at(&rc.node(0).name)
    );
    staff.approve(&bank_session).await.expect("approve");
    let lines = app.finish();
    let after = statuses(&rc, &handle).await;
    check_resumed(&lines, &data, &before, &after, 1);

    // 2. Killed after the owner authenticated (before asking the bank).
    let (wallet, p) = phone(&rc, "resume-auth", &data, 1).await;
    let mut app = App::start(
        &trustees_file,
        &wallet,
        p.dir.path(),
        false,
        Some("checkpoint:OwnerAuthenticated"),
    );
    app.wait_for("PAUSED");
    app.kill();
    let handle = p.handle();
    let before = statuses(&rc, &handle).await;
    assert!(
        before.iter().all(|(_, s)| s.state == "owner_authenticated"),
        "{before:?}"
    );
    let mut app = App::start(&trustees_file, &wallet, p.dir.path(), true, None);
    let bank_session = app.wait_for("EVENT AwaitingApproval");
    staff
        .approve(bank_session.rsplit(' ').next().expect("session id"))
        .await
        .expect("approve");
    let lines = app.finish();
    check_resumed(&lines, &data, &before, &statuses(&rc, &handle).await, 0);

    // 3. Killed while awaiting the bank's approval; staff approve while the app is dead.
    let (wallet, p) = phone(&rc, "resume-approval", &data, 1).await;
    let mut app = App::start(&trustees_file, &wallet, p.dir.path(), false, None);
    let bank_session = app.wait_for("EVENT AwaitingApproval");
    app.kill();
    staff
        .approve(bank_session.rsplit(' ').next().expect("session id"))
        .await
        .expect("approve");
    let handle = p.handle();
    let before = statuses(&rc, &handle).await;
    let app = App::start(&trustees_file, &wallet, p.dir.path(), true, None);
    let lines = app.finish();
    check_resumed(&lines, &data, &before, &statuses(&rc, &handle).await, 0);

    // 4. Killed during the waiting period (a delay long enough to be in it).
    let (wallet, p) = phone(&rc, "resume-wait", &data, 8).await;
    let mut app = App::start(&trustees_file, &wallet, p.dir.path(), false, None);
    let bank_session = app.wait_for("EVENT AwaitingApproval");
    staff
        .approve(bank_session.rsplit(' ').next().expect("session id"))
        .await
        .expect("approve");
    app.wait_for("EVENT Waiting");
    app.kill();
    let handle = p.handle();
    let before = statuses(&rc, &handle).await;
    assert!(
        before.iter().all(|(_, s)| s.state == "owner_authenticated"),
        "{before:?}"
    );
    let app = App::start(&trustees_file, &wallet, p.dir.path(), true, None);
    let lines = app.finish();
    check_resumed(&lines, &data, &before, &statuses(&rc, &handle).await, 0);

    // 5. Killed after a partial release: two trustees are down when the app releases, so only
    // three release; the app is killed as the first share verifies. The two come back and the
    // resumed app releases everywhere (again where it already had).
    let (wallet, p) = phone(&rc, "resume-release", &data, 8).await;
    let mut app = App::start(
        &trustees_file,
        &wallet,
        p.dir.path(),
        false,
        Some("event:ShareVerified"),
    );
    let bank_session = app.wait_for("EVENT AwaitingApproval");
    staff
        .approve(bank_session.rsplit(' ').next().expect("session id"))
        .await
        .expect("approve");
    app.wait_for("EVENT Waiting");
    rc.stop(3);
    rc.stop(4);
    app.wait_for("PAUSED");
    app.kill();
    rc.start_node(3).await;
    rc.start_node(4).await;
    let handle = p.handle();
    let before = statuses(&rc, &handle).await;
    let states: Vec<&str> = before.iter().map(|(_, s)| s.state.as_str()).collect();
    assert!(
        states.contains(&"released"),
        "some trustees released: {before:?}"
    );
    assert_eq!(
        (before[3].1.state.as_str(), before[4].1.state.as_str()),
        ("owner_authenticated", "owner_authenticated"),
        "the two that were down did not release"
    );
    let app = App::start(&trustees_file, &wallet, p.dir.path(), true, None);
    let lines = app.finish();
    let after = statuses(&rc, &handle).await;
    check_resumed(&lines, &data, &before, &after, 0);
    assert!(
        after.iter().all(|(_, s)| s.state == "released"),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_resumes_after_the_app_is_killed_after_some_receipts() {
    let mut rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let trustees_file = rc.write_trustees();
    let wallet = dlocker_integration_tests::craft::wallet_id("resume-backup");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = StateKey::generate();
    std::fs::write(dir.path().join("state-key"), hex::encode(key.expose())).expect("key");
    let data = hex::encode(b"backed up across a kill");

    // Held right after the passkey registration is saved: two trustees go down, then the app
    // deposits (3 receipts, 2 failures) and is killed.
    let mut app = App::start_with(
        &trustees_file,
        &wallet,
        dir.path(),
        false,
        Some("event:TrusteeFailed"),
        &["--backup", &data, "--hold-at", "checkpoint:Backup2"],
    );
    app.wait_for("HELD");
    rc.stop(3);
    rc.stop(4);
    std::fs::write(dir.path().join("go"), b"").expect("go");
    app.wait_for("PAUSED");
    let done = app
        .seen
        .iter()
        .filter(|l| l.starts_with("EVENT TrusteeDone"))
        .count();
    assert_eq!(done, 3, "three receipts before the kill: {:?}", app.seen);
    app.kill();
    rc.start_node(3).await;
    rc.start_node(4).await;

    // A NEW backup of the same wallet is refused by the three that receipted: resuming is the
    // only way to complete it.
    let trustees = rc.trustees();
    let fresh = PreparedBackup::new(
        &trustees,
        &wallet,
        b"another secret",
        BackupPolicy {
            threshold: THRESHOLD,
            recovery_delay_secs: 1,
        },
    )
    .expect("prepare");
    let mut other = SoftwareAuthenticator::new();
    let err = dlocker_sdk::protocol::backup(&trustees, &fresh, "alice", &mut other, &|_| {})
        .await
        .expect_err("a second backup of the wallet is refused");
    assert!(err.to_string().contains("must be rotated"), "{err}");

    let app = App::start_with(
        &trustees_file,
        &wallet,
        dir.path(),
        true,
        None,
        &["--backup", &data],
    );
    let lines = app.finish_at("BACKED-UP");
    assert!(lines.contains(&"BACKED-UP 5".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"UNCONFIRMED 0".to_owned()),
        "the resumed backup is confirmed complete at every trustee: {lines:?}"
    );
    assert!(
        lines.contains(&"TOUCHES 0".to_owned()),
        "the saved registration is re-sent, no second touch: {lines:?}"
    );
    let saved = std::fs::read(dir.path().join("backup-state")).expect("saved");
    let prepared = PreparedBackup::open_sealed(&saved, &key).expect("opens");
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    assert!(
        report.all_healthy(),
        "every trustee proves its share: {report:?}"
    );
}

/// A rotation survives the app being killed: the app saves its sealed rotation record at every
/// step and is SIGKILLed in the middle of the commit phase (one trustee committed epoch 2, the
/// next one's commit recorded as attempted but not sent). Run again with `--resume` on the saved
/// record, it completes: every trustee holds epoch 2 only and proves its share, with one more
/// touch (the commit's) and no new stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_resumes_after_the_app_is_killed_mid_commit() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let trustees_file = rc.write_trustees();
    let trustees = rc.trustees();
    let wallet = dlocker_integration_tests::craft::wallet_id("resume-rotation");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = StateKey::generate();
    std::fs::write(dir.path().join("state-key"), hex::encode(key.expose())).expect("key");
    let data = hex::encode(b"rotated across a kill");
    App::start_with(
        &trustees_file,
        &wallet,
        dir.path(),
        false,
        None,
        &["--backup", &data],
    )
    .finish_at("BACKED-UP");

    // Killed after the first trustee's commit and the second one's "attempted" mark.
    let mut app = App::start_with(
        &trustees_file,
        &wallet,
        dir.path(),
        false,
        Some("checkpoint:RotationCommitting#4"),
        &["--rotate"],
    );
    app.wait_for("PAUSED");
    app.kill();
    let status = dlocker_sdk::protocol::epoch_status(&trustees, &wallet).await;
    let active = |e: u64| {
        status
            .iter()
            .filter(|s| s.active.as_ref().map(|a| a.0) == Some(e))
            .count()
    };
    assert_eq!(
        active(2),
        1,
        "one trustee committed before the kill: {status:?}"
    );
    assert_eq!(active(1), 4, "{status:?}");
    assert!(
        status
            .iter()
            .filter(|s| s.active.as_ref().map(|a| a.0) == Some(1))
            .all(|s| s.staged.as_ref().map(|st| st.0) == Some(2)),
        "the others hold epoch 2 staged: {status:?}"
    );

    // The saved record is sealed: it opens with the app's key only.
    let saved = std::fs::read(dir.path().join("rotation-state")).expect("saved record");
    assert!(dlocker_sdk::RotationRecord::open_sealed(&saved, &StateKey::generate()).is_err());
    let record = dlocker_sdk::RotationRecord::open_sealed(&saved, &key).expect("opens");
    assert_eq!(record.phase, dlocker_sdk::RotationPhase::Committing);
    assert!(record.any_commit());

    let app = App::start_with(
        &trustees_file,
        &wallet,
        dir.path(),
        true,
        None,
        &["--rotate"],
    );
    let lines = app.finish_at("ROTATED");
    assert!(
        lines.contains(&"RESUMING committing".to_owned()),
        "{lines:?}"
    );
    assert!(lines.contains(&"ROTATED 2 done".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"TOUCHES 1".to_owned()),
        "the commit's touch only, nothing staged again: {lines:?}"
    );
    for s in dlocker_sdk::protocol::epoch_status(&trustees, &wallet).await {
        assert_eq!(s.active.as_ref().map(|a| a.0), Some(2), "{s:?}");
        assert_eq!(s.staged, None, "{s:?}");
    }
    let report =
        dlocker_sdk::protocol::verify_backup(&trustees, &record.manifest().expect("manifest"))
            .await;
    assert!(report.all_healthy(), "{report:?}");
    assert_eq!(report.threshold, 2);
}
