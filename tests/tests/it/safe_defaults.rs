//! Safe defaults, through the real binary: `init` and `serve` refuse plaintext on a public
//! address, `http://` passkey origins off loopback, and an approval policy the staff cannot meet;
//! each refusal names the key and the fix, and writes nothing.

use dlocker_integration_tests::bins::serve_refused;
use dlocker_integration_tests::node_command;
use dlocker_integration_tests::recovery_cluster::set_config_value;
use std::path::Path;
use std::process::Output;

fn init(dir: &Path, extra: &[&str]) -> Output {
    node_command()
        .arg("init")
        .arg("--data-dir")
        .arg(dir)
        .args(["--name", "n"])
        .args(extra)
        .output()
        .expect("run trustee-node init")
}

fn refused(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted:\n{err}");
    for n in needles {
        assert!(err.contains(n), "message lacks {n:?}:\n{err}");
    }
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one line, no log noise:\n{err}"
    );
}

fn staff_key(seed: u8) -> String {
    let k = k256::SecretKey::from_slice(&[seed; 32]).expect("key");
    dlocker_proto::keys::public_key_hex(&k.public_key())
}

#[test]
fn init_refuses_plaintext_on_a_public_address_unless_insecure_plaintext() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("n");
    let public = [
        "--listen",
        "0.0.0.0:7101",
        "--endpoint",
        "http://node.example:7101",
    ];
    let out = init(&dir, &public);
    refused(&out, &["node.listen", "[tls]", "--insecure-plaintext"]);
    assert!(!dir.exists(), "a refused init writes nothing");

    // The explicit opt-in is written into the config, where an auditor can find it.
    let mut args = public.to_vec();
    args.push("--insecure-plaintext");
    let out = init(&dir, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("config.toml")).expect("config");
    assert!(text.contains("insecure_plaintext = true"), "{text}");

    // With TLS files a public address needs no opt-in; the endpoint defaults to https.
    let dir = tmp.path().join("tls");
    let out = init(
        &dir,
        &[
            "--listen",
            "0.0.0.0:7101",
            "--endpoint",
            "https://node.example:7101",
            "--tls-cert",
            "tls/node.crt",
            "--tls-key",
            "tls/node.key",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("config.toml")).expect("config");
    assert!(
        text.contains("[tls]") && text.contains("cert = \"tls/node.crt\""),
        "{text}"
    );
}

#[test]
fn serve_refuses_a_plaintext_config_on_a_public_address() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("n");
    let out = init(&dir, &["--listen", "127.0.0.1:7101"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An operator edits the address by hand.
    set_config_value(
        &dir,
        "node",
        "listen",
        toml::Value::String("0.0.0.0:7101".into()),
    );
    let err = serve_refused(&dir);
    assert!(
        err.contains("node.listen") && err.contains("insecure_plaintext"),
        "{err}"
    );
    assert!(
        !dir.join("db").exists(),
        "the refused node opened no database"
    );
}

#[test]
fn http_passkey_origins_are_refused_off_loopback() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("n");
    let out = init(
        &dir,
        &[
            "--listen",
            "127.0.0.1:7101",
            "--rp-id",
            "bank.example",
            "--origin",
            "http://wallet.bank.example",
        ],
    );
    refused(&out, &["webauthn.origins", "https://", "localhost"]);
    assert!(!dir.exists());
    for (rp, origin) in [
        ("localhost", "http://localhost:8080"),
        ("bank.example", "https://wallet.bank.example"),
    ] {
        let d = tmp.path().join(rp).join(origin.replace([':', '/'], "_"));
        let out = init(
            &d,
            &[
                "--listen",
                "127.0.0.1:7101",
                "--rp-id",
                rp,
                "--origin",
                origin,
            ],
        );
        assert!(
            out.status.success(),
            "{origin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Edited into the config afterwards: serve refuses the same way.
    let dir = tmp.path().join("edited");
    assert!(init(&dir, &["--listen", "127.0.0.1:7101"]).status.success());
    set_config_value(
        &dir,
        "webauthn",
        "origins",
        toml::Value::Array(vec![toml::Value::String("http://wallet.example".into())]),
    );
    let err = serve_refused(&dir);
    assert!(err.contains("webauthn.origins"), "{err}");
    assert!(!dir.join("db").exists());
}

#[test]
fn approval_policy_the_staff_cannot_meet_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("bank");
    let alice = format!("alice={}:approver", staff_key(1));
    let carol = format!("carol={}:viewer,canceller", staff_key(3));
    let out = init(
        &dir,
        &[
            "--listen",
            "127.0.0.1:7101",
            "--role",
            "bank",
            "--staff",
            &alice,
            "--staff",
            &carol,
            "--approvals-required",
            "2",
        ],
    );
    refused(&out, &["bank.approvals_required", "approver", "lower"]);
    assert!(!dir.exists());

    let bob = format!("bob={}:approver", staff_key(2));
    let out = init(
        &dir,
        &[
            "--listen",
            "127.0.0.1:7101",
            "--role",
            "bank",
            "--staff",
            &alice,
            "--staff",
            &bob,
            "--approvals-required",
            "2",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Raised by hand past the approvers: serve refuses, the config is untouched.
    set_config_value(&dir, "bank", "approvals_required", toml::Value::Integer(3));
    let before = std::fs::read_to_string(dir.join("config.toml")).expect("config");
    let err = serve_refused(&dir);
    assert!(err.contains("bank.approvals_required"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("config.toml")).expect("config"),
        before
    );
    assert!(!dir.join("db").exists());
}
