//! The `dlocker` CLI against real nodes: `node info`, `cluster health`, `backup verify`, error
//! exits, and `dlocker demo` end to end.

use dlocker_integration_tests::{Cluster, cli_command};
use std::process::Output;

fn run(args: &[&str]) -> Output {
    cli_command().args(args).output().expect("run dlocker")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "dlocker {args:?} failed ({}):\nstdout:\n{out}\nstderr:\n{err}",
        o.status
    );
    out
}

/// A failing command: non-zero exit and a one-line reason (`error: …`, optionally a `hint:` line).
fn fails(args: &[&str]) -> String {
    let o = run(args);
    let (out, err) = text(&o);
    assert!(
        !o.status.success(),
        "dlocker {args:?} should fail:\nstdout:\n{out}\nstderr:\n{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        !lines.is_empty() && lines[0].starts_with("error:"),
        "first stderr line is `error: …`:\n{err}"
    );
    assert!(
        lines.len() <= 2 && lines.get(1).is_none_or(|l| l.starts_with("hint:")),
        "one error line (+ hint):\n{err}"
    );
    format!("{out}{err}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_info_and_cluster_health_against_real_nodes() {
    let mut cluster = Cluster::start(5).await;
    let file = cluster.write_trustees();
    let file = file.to_str().expect("utf-8 path");

    // node info --json: exactly what `trustee-node show` says about the node.
    for node in cluster.nodes() {
        let out = ok(&["node", "info", "--node", &node.endpoint, "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
        assert_eq!(v["node_id"], node.node_id.as_str());
        assert_eq!(v["name"], node.name.as_str());
        assert_eq!(v["role"], node.role.as_str());
        assert_eq!(v["public_key"], node.public_key_hex().as_str());
        assert_eq!(v["protocol_version"], dlocker_proto::PROTOCOL_VERSION);
    }
    // node info as a table names the fields.
    let out = ok(&["node", "info", "--node", cluster.endpoint(0)]);
    assert!(
        out.contains(&cluster.node(0).node_id) && out.contains("bank"),
        "{out}"
    );

    // cluster health: a table with every trustee; JSON with one healthy entry per trustee.
    let out = ok(&["cluster", "health", "--trustees", file]);
    for n in cluster.nodes() {
        assert!(
            out.contains(&n.name) && out.contains(&n.endpoint),
            "table lists {}:\n{out}",
            n.name
        );
    }
    let out = ok(&["cluster", "health", "--trustees", file, "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    let text = v.to_string();
    for n in cluster.nodes() {
        assert!(
            text.contains(&n.name) && text.contains(&n.node_id),
            "JSON has {}:\n{out}",
            n.name
        );
    }

    // A node down: non-zero exit, and the down node is named.
    cluster.stop(3);
    let out = fails(&["cluster", "health", "--trustees", file]);
    assert!(
        out.contains(&cluster.node(3).name),
        "names the down node:\n{out}"
    );
    cluster.start_node(3).await;
    ok(&["cluster", "health", "--trustees", file]);

    // A trustees file whose pinned key for one node is wrong: refused, naming the node.
    let wrong = cluster.trustees_toml().replace(
        &cluster.node(2).public_key_hex(),
        &cluster.node(0).public_key_hex(),
    );
    // (that also makes two entries share a key; use a fresh key instead when the loader refuses it)
    let fresh = dlocker_proto::keys::public_key_hex(
        &k256::SecretKey::from_slice(&[9u8; 32])
            .expect("key")
            .public_key(),
    );
    let wrong = if dlocker_sdk::TrusteeSet::from_toml(&wrong).is_ok() {
        wrong
    } else {
        cluster
            .trustees_toml()
            .replace(&cluster.node(2).public_key_hex(), &fresh)
    };
    let wrong_path = cluster.root().join("wrong-key.toml");
    std::fs::write(&wrong_path, wrong).expect("write");
    let out = fails(&[
        "cluster",
        "health",
        "--trustees",
        wrong_path.to_str().expect("utf-8"),
    ]);
    assert!(
        out.contains(&cluster.node(2).name),
        "names the node whose key does not match:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_exit_non_zero_with_one_line() {
    // Nothing listens on this port any more.
    let port = dlocker_integration_tests::cluster::free_ports(1)[0];
    fails(&[
        "node",
        "info",
        "--node",
        &format!("http://127.0.0.1:{port}"),
    ]);
    fails(&["node", "info", "--node", "not a url"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing.toml");
    fails(&[
        "cluster",
        "health",
        "--trustees",
        missing.to_str().expect("utf-8"),
    ]);
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[[trustee]]\nname = \"x\"\n").expect("write");
    fails(&[
        "cluster",
        "health",
        "--trustees",
        bad.to_str().expect("utf-8"),
    ]);
}

/// `dlocker demo` runs to completion (backup, recovery, rotation to epoch 2 over bank, trustee-2
/// and trustee-4); then its data directories, served again by the real `trustee-node` binary,
/// still hold the backup: `dlocker backup verify` on the manifest the demo saved (epoch 2) reports
/// its trustees healthy and every trustee's epochs, and names a trustee that is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_then_backup_verify_on_its_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let o = cli_command()
        .arg("demo")
        .arg("--dir")
        .arg(&dir)
        .current_dir(tmp.path())
        .output()
        .expect("run dlocker demo");
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "dlocker demo failed ({}):\nstdout:\n{out}\nstderr:\n{err}",
        o.status
    );
    let lower = out.to_lowercase();
    assert!(lower.contains("receipt"), "the demo shows receipts:\n{out}");
    assert!(
        lower.contains("healthy"),
        "the demo shows the verification:\n{out}"
    );

    // What the demo left: node data directories, the trustees file, the manifest.
    let mut node_dirs: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .expect("demo dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.toml").is_file())
        .collect();
    node_dirs.sort();
    assert_eq!(
        node_dirs.len(),
        5,
        "five node directories in {}",
        dir.display()
    );
    let manifest = std::fs::read_dir(&dir)
        .expect("demo dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "manifest"))
        .expect("the demo saves the manifest");
    let trustees = dir.join("trustees.toml");

    let mut cluster = Cluster::adopt(&node_dirs);
    cluster.start_all().await;
    let args = [
        "backup",
        "verify",
        "--trustees",
        trustees.to_str().expect("utf-8"),
        "--manifest",
        manifest.to_str().expect("utf-8"),
    ];
    let out = ok(&args);
    for n in cluster.nodes() {
        let row = out
            .lines()
            .find(|l| l.contains(&n.name))
            .unwrap_or_else(|| panic!("no row for {}:\n{out}", n.name));
        if ["trustee-3", "trustee-5"].contains(&n.name.as_str()) {
            // They left the wallet in the rotation: only the epochs table lists them.
            assert!(row.contains("holds nothing"), "{} left:\n{out}", n.name);
        } else {
            assert!(
                row.contains("healthy") && !row.contains("UNHEALTHY"),
                "{} healthy:\n{out}",
                n.name
            );
        }
    }
    assert!(
        out.contains("3 of 3"),
        "summary counts 3 of 3 healthy:\n{out}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = ok(&json_args);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    assert_eq!(v.to_string().matches("\"healthy\"").count(), 3, "{out}");

    // One trustee of epoch 2 down: verify exits non-zero and names it.
    cluster.stop(3);
    let out = fails(&args);
    assert!(
        out.contains(&cluster.node(3).name),
        "names the down trustee:\n{out}"
    );
}
