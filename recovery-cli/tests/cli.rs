//! Runs the real `dlocker` binary.

use std::process::Command;

fn dlocker() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dlocker"));
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn demo_backs_up_and_verifies_on_a_local_cluster() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let out = dlocker()
        .args(["demo", "--dir"])
        .arg(&dir)
        .output()
        .expect("run dlocker demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for line in [
        "[1/10] Starting 5 trustee nodes",
        "bank staff key for alice generated",
        "all 5 nodes serving and presenting their pinned keys",
        "5 of 5 receipts verified",
        "5 of 5 trustees healthy, threshold 3 — recoverable",
        "[6/10] The customer loses the phone",
        "[7/10] Recovering on a new device",
        "session opened at bank",
        "passkey assertion accepted by trustee-5",
        "approved by alice (1 of 1 required)",
        "waiting period: 1 s left",
        "released share 3: signed release, opens with R, matches the commitments",
        "combined exactly 3 shares",
        "equals the original's: the wallet is back",
        "[8/10] Rotating the recovered wallet to epoch 2: 3-of-5 → 2-of-3 over bank, trustee-2, trustee-4, with a NEW secret k",
        "trustee-4   committed epoch 2 (share 3) and erased its epoch-1 share",
        "retire:  trustee-5   left the wallet and erased everything it held for it",
        "names epoch 1's",
        "3 of 3 trustees healthy, threshold 2 — recoverable",
        "trustee-3, trustee-5 hold nothing of the wallet any more",
        "5 nodes stopped cleanly",
        "Demo complete",
        // One passkey, one touch per ceremony.
        "owner's passkey: 1 touch for all 5 trustees (one credential, registered at every trustee)",
        "owner's passkey: 1 touch for all 5 trustees of the recovery",
        "owner's passkey: 2 touches for the rotation",
        "[touches] The owner's passkey, counted by the software authenticator (5 trustees):",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // The demo leaves a usable trustees file and manifest behind.
    let trustees = std::fs::read_to_string(dir.join("trustees.toml")).expect("trustees file");
    assert_eq!(trustees.lines().filter(|l| *l == "[[trustee]]").count(), 5);
    let manifests: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "manifest"))
        .collect();
    assert_eq!(manifests.len(), 1);

    // A second demo into the same directory refuses to overwrite node data.
    let again = dlocker()
        .args(["demo", "--dir"])
        .arg(&dir)
        .output()
        .expect("run again");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).starts_with("error: "));

    // With the demo's nodes stopped, verification (of epoch 2, the manifest file's content after
    // the rotation) fails, naming the trustees, in one error line.
    let manifest = manifests[0].path();
    let out = dlocker()
        .args(["backup", "verify", "--trustees"])
        .arg(dir.join("trustees.toml"))
        .arg("--manifest")
        .arg(&manifest)
        .arg("--json")
        .output()
        .expect("run verify");
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["entries"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["epoch"], 2);
    assert_eq!(
        report["epochs"].as_array().map(Vec::len),
        Some(5),
        "every trustee's epochs are listed"
    );
    assert_eq!(report["entries"][0]["status"], "unhealthy");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("3 of 3 trustees unhealthy"), "{stderr}");
}

#[test]
fn demo_json_summary() {
    let out = dlocker()
        .args(["demo", "--nodes", "3", "--threshold", "2", "--json"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is only the JSON summary");
    assert_eq!(v["ok"], true);
    assert_eq!(v["nodes"], 3);
    assert_eq!(v["receipts"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["verify"]["entries"][2]["status"], "healthy");
    assert!(
        v["dir"].is_null(),
        "temporary directory is removed without --keep"
    );
    assert_eq!(v["recovery"]["matches_original"], true);
    assert_eq!(v["recovery"]["approvers"][0], "alice");
    assert_eq!(v["recovery"]["used"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["recovery"]["sessions"].as_array().map(Vec::len), Some(3));
    // Then rotated to epoch 2 over bank and trustee-2 (trustee-3 leaves), with a new k.
    assert_eq!(v["rotation"]["to_epoch"], 2);
    assert_eq!(v["rotation"]["new_k"], true);
    assert_eq!(v["rotation"]["retired"][0], "trustee-3");
    // One touch per ceremony, at most two for the rotation.
    assert_eq!(v["touches"]["backup"], 1);
    assert_eq!(v["touches"]["recovery"], 1);
    assert_eq!(v["touches"]["rotation"], 2);
    assert_eq!(v["touches"]["holder_registration"], 1);
    assert_eq!(v["touches"]["reissue"], 1);
    assert_eq!(
        v["rotation"]["verify"]["entries"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn node_info_on_a_dead_port_fails_with_one_error_line() {
    let out = dlocker()
        .args(["node", "info", "--node", "http://127.0.0.1:1"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: cannot reach http://127.0.0.1:1"),
        "{stderr}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
    assert!(
        lines.len() <= 2 && lines.get(1).is_none_or(|l| l.starts_with("hint: ")),
        "{stderr}"
    );
}

#[test]
fn bad_inputs_fail_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = tmp.path().join("trustees.toml");
    std::fs::write(&bad, "[[trustee]]\nname = \"x\"\n").expect("write");
    for args in [
        vec![
            "cluster",
            "health",
            "--trustees",
            bad.to_str().unwrap_or_default(),
        ],
        vec![
            "cluster",
            "health",
            "--trustees",
            "/nonexistent/trustees.toml",
        ],
        vec!["node", "info", "--node", "ftp://example"],
        vec!["demo", "--nodes", "2", "--threshold", "3"],
    ] {
        let out = dlocker().args(&args).output().expect("run");
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn staff_keygen_writes_a_private_key_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = tmp.path().join("alice.key");
    let out = dlocker()
        .args(["staff", "keygen", "--out"])
        .arg(&key)
        .arg("--json")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let public = v["public_key"].as_str().expect("public key");
    assert_eq!(public.len(), 66);
    let secret = std::fs::read_to_string(&key).expect("key file");
    assert_eq!(secret.trim().len(), 64);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(secret.trim()),
        "the secret is never printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }
    let again = dlocker()
        .args(["staff", "keygen", "--out"])
        .arg(&key)
        .output()
        .expect("run");
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("hint: "),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&key).expect("unchanged"), secret);
}

#[test]
fn version_names_the_commit_and_completions_and_man_page_are_generated() {
    let out = dlocker().arg("--version").output().expect("run");
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let commit = v
        .trim()
        .strip_prefix(concat!("dlocker ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("version line {v:?}"));
    assert!(!commit.is_empty(), "{v}");
    let completions = dlocker()
        .args(["completions", "bash"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&completions.stdout);
    assert!(completions.status.success());
    assert!(
        text.contains("_dlocker()") && text.contains("recoveries"),
        "{text}"
    );
    let man = dlocker().arg("man").output().expect("run");
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success());
    assert!(
        text.contains(".TH dlocker 1") && text.contains("recoveries"),
        "{text}"
    );
}
