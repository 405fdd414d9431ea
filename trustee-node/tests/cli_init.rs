//! The `trustee-node` binary: `init` creates a node once and refuses a second time; `show`
//! prints the same descriptor.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trustee-node"))
}

#[test]
fn init_once_then_refuse_and_show() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("bank");
    let init = |name: &str| {
        bin()
            .args(["init", "--data-dir"])
            .arg(&dir)
            .args([
                "--name",
                name,
                "--listen",
                "127.0.0.1:7101",
                "--role",
                "bank",
            ])
            .output()
            .expect("run trustee-node")
    };
    let first = init("bank");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(out.contains("node_id"), "{out}");
    assert!(dir.join("config.toml").exists());
    assert!(dir.join("keys/identity.key").exists());
    assert!(dir.join("keys/storage.key").exists());

    let second = init("other");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("refusing to overwrite"), "{err}");

    let show = bin()
        .args(["show", "--json", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run show");
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&show.stdout).expect("json");
    assert_eq!(d["name"], "bank");
    assert_eq!(d["role"], "bank");
    assert_eq!(d["endpoint"], "http://127.0.0.1:7101");
    assert!(
        out.contains(d["node_id"].as_str().expect("node_id")),
        "init and show agree"
    );
    assert_eq!(d["public_key"].as_str().map(str::len), Some(66));

    // Configuration from the environment (how container platforms configure a service):
    // DLOCKER_<SECTION>__<KEY> overrides the file; a misspelt key is refused by name.
    let renamed = bin()
        .env("DLOCKER_NODE__NAME", "from-env")
        .args(["show", "--json", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run show");
    let d: serde_json::Value = serde_json::from_slice(&renamed.stdout).expect("json");
    assert_eq!(d["name"], "from-env");
    let typo = bin()
        .env("DLOCKER_NODE__NAEM", "x")
        .args(["show", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("run show");
    assert!(!typo.status.success());
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("naem"),
        "{}",
        String::from_utf8_lossy(&typo.stderr)
    );
}

#[test]
fn version_completions_and_man_page() {
    let out = bin().arg("--version").output().expect("run");
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        v.starts_with(concat!("trustee-node ", env!("CARGO_PKG_VERSION"), " ("))
            && v.trim().ends_with(')'),
        "{v}"
    );
    let zsh = bin().args(["completions", "zsh"]).output().expect("run");
    assert!(zsh.status.success());
    assert!(String::from_utf8_lossy(&zsh.stdout).contains("#compdef trustee-node"));
    let man = bin().arg("man").output().expect("run");
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success());
    assert!(
        text.contains(".TH trustee-node 1") && text.contains("serve"),
        "{text}"
    );
}
