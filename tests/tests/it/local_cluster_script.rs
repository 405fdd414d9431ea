//! `deploy/local-cluster.sh up 3 / status / down` in a temporary directory on random ports: the
//! trustees file it writes is usable by the SDK, the bank approval key and the staff key it wires
//! let a recovery finish, and a taken port fails `up` fast, naming the node, leaving nothing running.

use dlocker_integration_tests::bins::{TRUSTEE_NODE, workspace_root};
use dlocker_integration_tests::{bin_path, craft};
use dlocker_sdk::proto::statement::StaffChange;
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, SoftwareAuthenticator, StaffClient, StaffKey, TrusteeSet,
};
use dlocker_sdk::{RecoverEvent, RecoverOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// `n` consecutive free loopback ports (the script numbers nodes from a base port).
fn consecutive_free_ports(n: u16) -> u16 {
    for _ in 0..200 {
        // Below Linux's ephemeral range (32768+), so other tests' nodes and outgoing
        // connections do not take these ports between this check and the script's start.
        let base = 20_000 + (rand::random::<u16>() % 12_000);
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports found");
}

struct Script {
    dir: PathBuf,
    base: u16,
}

impl Script {
    fn run(&self, args: &[&str]) -> Output {
        let bin_dir = bin_path(TRUSTEE_NODE)
            .parent()
            .expect("bin dir")
            .to_path_buf();
        Command::new("bash")
            .arg(workspace_root().join("deploy/local-cluster.sh"))
            .args(args)
            .env("DLOCKER_CLUSTER_DIR", &self.dir)
            .env("DLOCKER_BASE_PORT", self.base.to_string())
            .env("DLOCKER_BIN_DIR", bin_dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("run bash deploy/local-cluster.sh")
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "local-cluster.sh {args:?} failed ({}):\n{text}",
            out.status
        );
        text
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        // Never leave nodes running, even when an assertion failed.
        let _ = self.run(&["down"]);
    }
}

/// Whether a process runs (the shell's `kill -0`, so no procps is needed).
fn alive(pid: &str) -> bool {
    Command::new("sh")
        .args(["-c", "kill -0 \"$1\" 2>/dev/null", "sh", pid.trim()])
        .status()
        .is_ok_and(|s| s.success())
}

fn pid_alive(pid_file: &Path) -> Option<bool> {
    Some(alive(&std::fs::read_to_string(pid_file).ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_up_status_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = Script {
        dir: tmp.path().join("cluster"),
        base: consecutive_free_ports(3),
    };

    let up = script.run_ok(&["up", "3"]);
    assert!(up.contains("3 nodes up"), "up output:\n{up}");

    let trustees = TrusteeSet::load(script.dir.join("trustees.toml"))
        .expect("the script's trustees file loads");
    assert_eq!(trustees.len(), 3);
    assert_eq!(trustees.trustees()[0].name, "bank");
    assert_eq!(trustees.bank().name, "bank");
    for (i, t) in trustees.trustees().iter().enumerate() {
        assert_eq!(
            t.endpoint,
            format!("http://127.0.0.1:{}", script.base + i as u16)
        );
        assert!(
            pid_alive(&script.dir.join(&t.name).join("node.pid")) == Some(true),
            "{} has a live pid",
            t.name
        );
        assert!(
            script.dir.join(&t.name).join("node.log").is_file(),
            "{} logs into the cluster dir",
            t.name
        );
    }

    let status = script.run_ok(&["status"]);
    assert_eq!(status.matches("running").count(), 3, "status:\n{status}");

    // The cluster is usable: a 2-of-3 backup through the SDK, verified.
    let wallet = craft::wallet_id("script");
    let data = b"seed".to_vec();
    let mut auth = SoftwareAuthenticator::new();
    let prepared = PreparedBackup::new(
        &trustees,
        &wallet,
        &data,
        BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("backup against the script's cluster");
    assert!(
        dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest())
            .await
            .all_healthy()
    );

    // The staff key the script wrote is an admin at the bank (the only member)...
    let staff_key_file = script.dir.join("staff-operator.key");
    let staff = StaffClient::new(
        StaffKey::load(&staff_key_file).expect("the script's staff key loads"),
        trustees.bank(),
    );
    let roster = staff
        .manage_staff(StaffChange::List)
        .await
        .expect("the script's staff key is an admin");
    assert_eq!(roster.approvals_required, 1);
    assert_eq!(roster.staff.len(), 1, "{:?}", roster.staff);
    assert_eq!(roster.staff[0].id, "operator");
    // ...and an approver whose approval every trustee accepts: a recovery finishes, byte for byte.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let progress = |e: RecoverEvent| {
        if let RecoverEvent::AwaitingApproval { bank_session_id } = e {
            let _ = tx.send(bank_session_id);
        }
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(200),
        approval_timeout: Duration::from_secs(120),
        cancel: None,
        progress: &progress,
        checkpoint: None,
    };
    let (recovered, approved) = tokio::join!(
        dlocker_sdk::protocol::recover(&trustees, &wallet, &mut auth, opts),
        async {
            let session = rx.recv().await.expect("the SDK reports the bank session");
            staff
                .approve(&session)
                .await
                .expect("the script's staff key approves")
        }
    );
    let recovered = recovered.expect("a recovery finishes on the script's cluster");
    assert_eq!(approved.approvers, vec!["operator".to_owned()]);
    assert_eq!(recovered.data().expose(), data.as_slice());

    let pids: Vec<PathBuf> = trustees
        .trustees()
        .iter()
        .map(|t| script.dir.join(&t.name).join("node.pid"))
        .collect();
    let pid_values: Vec<String> = pids
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("pid"))
        .collect();
    let down = script.run_ok(&["down"]);
    assert_eq!(down.matches("stopped").count(), 3, "down:\n{down}");
    for (p, v) in pids.iter().zip(&pid_values) {
        assert!(!p.exists(), "down removes {}", p.display());
        assert!(!alive(v), "process {} still alive after down", v.trim());
    }
    let status = script.run_ok(&["status"]);
    assert_eq!(
        status.matches("stopped").count(),
        3,
        "status after down:\n{status}"
    );

    // `up` again restarts the same nodes with their data: the backup still verifies.
    script.run_ok(&["up", "3"]);
    let again = TrusteeSet::load(script.dir.join("trustees.toml")).expect("trustees");
    assert_eq!(again, trustees, "same nodes, same keys");
    assert!(
        dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest())
            .await
            .all_healthy()
    );
    script.run_ok(&["down"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_fails_fast_on_taken_port_or_dead_node() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = Script {
        dir: tmp.path().join("cluster"),
        base: consecutive_free_ports(3),
    };
    // Another process holds trustee-2's port.
    let squatter = TcpListener::bind(("127.0.0.1", script.base + 1)).expect("hold the port");

    let out = script.run(&["up", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up must fail:\n{stdout}{stderr}");
    let port = script.base + 1;
    assert!(
        stderr.contains(&format!(
            "node trustee-2 cannot start: port {port} is already taken (log: {}",
            script.dir.join("trustee-2/node.log").display()
        )),
        "stderr names the node, the port and its log:\n{stderr}"
    );
    assert!(!stdout.contains("nodes up"), "no success line:\n{stdout}");
    // The bank had started before trustee-2 was reached: the script stopped it again.
    let bank_pid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("local-cluster: started bank (pid "))
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("the bank was started first:\n{stdout}"))
        .to_owned();
    assert!(!alive(&bank_pid), "the bank (pid {bank_pid}) was stopped");
    for name in ["bank", "trustee-2", "trustee-3"] {
        assert!(
            !script.dir.join(name).join("node.pid").exists(),
            "{name} has no pid file left"
        );
    }
    assert!(
        !stdout.contains("started trustee-3"),
        "up stopped at the first failure:\n{stdout}"
    );

    // Once the port is free, `up` succeeds with the same nodes.
    drop(squatter);
    let up = script.run_ok(&["up", "3"]);
    assert!(up.contains("3 nodes up"), "up output:\n{up}");
    script.run_ok(&["down"]);

    // A node that exits after it was started (its admin port is taken) fails `up` too.
    let admin_squatter = TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin_addr = admin_squatter.local_addr().expect("addr");
    let config = script.dir.join("trustee-3/config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!("\n[admin]\nlisten = \"{admin_addr}\"\n"));
    std::fs::write(&config, text).expect("write config");
    let out = script.run(&["up", "3"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "up must fail:\n{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "node trustee-3 exited during startup (log: {})",
            script.dir.join("trustee-3/node.log").display()
        )),
        "stderr names the node and its log:\n{stderr}"
    );
    assert!(
        stderr.contains("stopping the 3 node(s) this run started"),
        "{stderr}"
    );
    for name in ["bank", "trustee-2", "trustee-3"] {
        assert!(
            !script.dir.join(name).join("node.pid").exists(),
            "{name} has no pid file left"
        );
    }
    for pid in stdout.lines().filter_map(|l| {
        l.split(" (pid ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
    }) {
        assert!(!alive(pid), "pid {pid} was stopped");
    }
}
