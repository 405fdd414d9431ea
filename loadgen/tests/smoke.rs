//! `dlocker-bench` end to end on a tiny local cluster: every phase and both limits run, nothing
//! fails, and `--json` is one parseable document. Counts only; no timing is asserted.

use std::process::Command;

#[test]
fn tiny_run_reports_every_phase_and_both_limits() {
    let out = Command::new(env!("CARGO_BIN_EXE_dlocker-bench"))
        .args([
            "--nodes",
            "3",
            "--threshold",
            "2",
            "--clients",
            "2",
            "--count",
            "2",
        ])
        .args(["--storm-count", "20", "--limit-backups", "2"])
        .args(["--limit-recoveries", "2", "--json"])
        .output()
        .expect("run dlocker-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dlocker-bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&stdout).expect("--json prints one JSON document");
    let phases = v["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases.iter().filter_map(|p| p[0].as_str()).collect();
    assert_eq!(names, ["backup", "verify", "recover"]);
    for p in phases {
        for op in p[1]["ops"].as_array().expect("ops") {
            assert_eq!(op["errors"], 0, "{op}");
            assert_eq!(op["count"], 2, "{op}");
        }
    }
    // One storm per passkey kind, each with its mandatory crypto timed in the run.
    let storms = v["deposit_limit"]["storms"].as_array().expect("storms");
    let kinds: Vec<&str> = storms
        .iter()
        .filter_map(|s| s["passkey"].as_str())
        .collect();
    assert_eq!(kinds, ["software", "platform"]);
    for s in storms {
        assert_eq!(s["deposit"]["count"], 20, "{s}");
        assert_eq!(s["deposit"]["errors"], 0, "{s}");
        assert!(
            s["mandatory"]["total_ms"].as_f64().is_some_and(|x| x > 0.0),
            "{s}"
        );
    }
    assert!(
        v["deposit_limit"]["raw_sled_per_s"]
            .as_f64()
            .is_some_and(|x| x > 0.0)
    );
    assert!(
        v["backup_limit"]["floor_ms"]
            .as_f64()
            .is_some_and(|x| x > 0.0)
    );
    assert_eq!(v["recovery_limit"]["recoveries"], 2);
    for k in ["recover_p50_ms", "recover_cold_p50_ms", "floor_ms"] {
        assert!(
            v["recovery_limit"][k].as_f64().is_some_and(|x| x > 0.0),
            "{k}"
        );
    }
    assert!(
        v["bytes_per_wallet_per_node"]
            .as_f64()
            .is_some_and(|x| x > 0.0)
    );
}
