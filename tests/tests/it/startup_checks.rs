//! A node refuses to start when its keys and its data disagree: a missing key file is never
//! regenerated, and a database written with other keys (another node's, or a wrong backup) is
//! refused before anything is served or written.

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::bins::{serve_refused, serve_refused_with};
use std::path::Path;

/// Two nodes (a bank and a trustee) that have run once, so each has a database.
async fn cluster_with_data() -> Cluster {
    let mut c = Cluster::init(2, &[], &[]);
    c.start_all().await;
    c.stop_all();
    for i in 0..2 {
        assert!(c.data_dir(i).join("db").exists());
    }
    c
}

/// Every tree's entries (sled rewrites its files on open, so compare contents, not files).
fn db_contents(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let db = dlocker_integration_tests::postgres::open_stopped_sled(&dir.join("db"));
    let mut out = Vec::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).expect("tree");
        for kv in tree.iter() {
            let (k, v) = kv.expect("entry");
            out.push((name.to_vec(), k.to_vec(), v.to_vec()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_file_on_a_node_with_data_refuses_to_start() {
    let mut c = cluster_with_data().await;
    for (node, file) in [
        (0, "bank-approval.key"),
        (0, "audit.key"),
        (1, "audit.key"),
        (1, "storage.key"),
    ] {
        let dir = c.data_dir(node).to_path_buf();
        let path = dir.join("keys").join(file);
        let saved = std::fs::read(&path).expect("key");
        std::fs::remove_file(&path).expect("remove");
        let err = serve_refused(&dir);
        assert!(
            err.contains(&format!("{file} is missing")) && err.contains("holds this node's data"),
            "{err}"
        );
        assert!(
            err.contains("restore it from the node's key backup"),
            "{err}"
        );
        assert_eq!(
            err.matches("is missing").count(),
            1,
            "one line, said once: {err}"
        );
        assert!(!path.exists(), "{file} was not regenerated");
        // With JSON logs the refusal is one JSON log line too.
        let json = serve_refused_with(&dir, &["--log-format", "json"]);
        let line: serde_json::Value = serde_json::from_str(json.trim())
            .unwrap_or_else(|e| panic!("not one JSON line ({e}): {json}"));
        assert_eq!(line["level"], "ERROR", "{line}");
        let msg = line["fields"]["error"].as_str().unwrap_or_default();
        assert!(msg.contains(&format!("{file} is missing")), "{line}");
        // Put back, the node serves again.
        std::fs::write(&path, saved).expect("restore");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }
    c.start_all().await;
    // A log file gets plain text: colour only on a terminal.
    let log = std::fs::read_to_string(c.node(0).log_path()).expect("node log");
    assert!(log.contains("trustee node serving"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_keys_on_this_nodes_data_are_refused() {
    let mut c = cluster_with_data().await;
    let (a, b) = (c.data_dir(0).to_path_buf(), c.data_dir(1).to_path_buf());
    let (id_a, id_b) = (c.node(0).node_id.clone(), c.node(1).node_id.clone());
    let keys_b = b.join("keys");
    let saved = b.join("keys.saved");
    std::fs::rename(&keys_b, &saved).expect("move B's keys aside");
    std::fs::create_dir(&keys_b).expect("keys dir");
    for f in ["identity.key", "storage.key", "audit.key"] {
        std::fs::copy(a.join("keys").join(f), keys_b.join(f)).expect("copy A's key");
    }
    let before = db_contents(&b);
    let err = serve_refused(&b);
    assert!(
        err.contains(&format!("belongs to node {id_b}"))
            && err.contains(&format!("keys/identity.key is node {id_a}")),
        "{err}"
    );
    assert_eq!(db_contents(&b), before, "nothing written to B's database");

    // Only the storage key from the wrong backup: refused, naming the file.
    std::fs::copy(saved.join("identity.key"), keys_b.join("identity.key")).expect("B's id");
    std::fs::copy(saved.join("audit.key"), keys_b.join("audit.key")).expect("B's audit");
    let err = serve_refused(&b);
    assert!(
        err.contains("keys/storage.key is not the key") && err.contains("key check value"),
        "{err}"
    );

    // B's own keys back: B serves.
    std::fs::remove_dir_all(&keys_b).expect("rm");
    std::fs::rename(&saved, &keys_b).expect("restore");
    c.start_node(1).await;
}
