//! The shell blocks of README.md and docs/operating-a-node.md run as written: each doc's blocks
//! are run in order by one bash (`set -euo pipefail`) in a temporary directory, with the
//! workspace's `trustee-node` and `dlocker` first on `PATH` and the docs' host-specific variables
//! set to loopback values. A documented command that fails fails the test, naming the block.
//!
//! The convention (stated at the top of each doc):
//! - ```` ```sh ```` runs; ```` ```sh no-run ```` is shown only (a production host: real host
//!   names, certificates from a CA, systemd; a synopsis; the test suite itself);
//! - ```` ```sh background ```` is long-running (a node serving): it is started in the background
//!   (its own process group, output to a log), the run waits until each node it names with
//!   `--data-dir` listens, and it is stopped (SIGTERM) when the doc's blocks are done;
//! - host-specific values are shell variables the doc names at its top (`$DIR`, `$PORT`, …).
//!
//! Blocks run from a directory that looks like the repository's root for them (`deploy/` is
//! linked in), so `deploy/local-cluster.sh` runs as the README shows it.

use dlocker_integration_tests::bin_path;
use dlocker_integration_tests::bins::{DLOCKER, TRUSTEE_NODE, workspace_root};
use dlocker_integration_tests::cluster::free_ports;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Run,
    NoRun,
    Background,
}

/// The `sh` blocks of a doc (kind, first line number, text). Every fence is tracked, whatever
/// its language, so a line inside another block is never taken for a fence.
fn sh_blocks(doc: &str) -> Vec<(Kind, usize, String)> {
    let text = std::fs::read_to_string(workspace_root().join(doc)).expect("read doc");
    let mut out = Vec::new();
    let mut fence: Option<(Option<Kind>, usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            if let Some((_, _, body)) = fence.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        };
        if let Some((kind, start, body)) = fence.take() {
            if let Some(kind) = kind {
                out.push((kind, start, body));
            }
            continue;
        }
        let mut words = info.split_whitespace();
        let kind = match (words.next(), words.next()) {
            (Some("sh"), None) => Some(Kind::Run),
            (Some("sh"), Some("no-run")) => Some(Kind::NoRun),
            (Some("sh"), Some("background")) => Some(Kind::Background),
            (Some("sh"), Some(other)) => {
                panic!("{doc}:{}: unknown sh block marker {other:?}", n + 1)
            }
            _ => None,
        };
        fence = Some((kind, n + 2, String::new()));
    }
    assert!(fence.is_none(), "{doc}: unclosed code fence");
    out
}

/// The bash script that runs `doc`'s blocks in order.
fn script(doc: &str) -> (String, usize) {
    let mut s = String::from(
        r#"set -euo pipefail
__bg=()
__block="(start)"
__stop() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then echo "DOC BLOCK FAILED: $__block (exit $rc)" >&2; fi
  for p in "${__bg[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  # A local cluster the blocks started and did not stop.
  if [[ -f .dlocker-cluster/trustees.toml ]]; then bash deploy/local-cluster.sh down >/dev/null 2>&1 || true; fi
  for p in "${__bg[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  exit $rc
}
trap __stop EXIT
__wait_node() {
  local addr port
  addr=$(sed -n 's/^listen *= *"\([^"]*\)".*/\1/p' "$1/config.toml" | head -n 1)
  port=${addr##*:}
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "node $1 does not listen on $addr after the background block" >&2
  return 1
}
"#,
    );
    let mut ran = 0;
    for (i, (kind, line, body)) in sh_blocks(doc).into_iter().enumerate() {
        match kind {
            Kind::NoRun => continue,
            Kind::Run => {
                s.push_str(&format!("__block='{doc}:{line}'\nset -x\n{body}set +x\n"));
            }
            Kind::Background => {
                let file = format!(".doc-block-{i}.sh");
                s.push_str(&format!(
                    "__block='{doc}:{line} (background)'\ncat > {file} <<'__DOC_BLOCK__'\n{body}__DOC_BLOCK__\nsetsid bash -eu {file} > .doc-block-{i}.log 2>&1 &\n__bg+=($!)\n"
                ));
                // Wait for every node the block serves (its `--data-dir` words, as written).
                let words: Vec<&str> = body.split_whitespace().collect();
                let dirs: Vec<&str> = words
                    .windows(2)
                    .filter(|w| w[0] == "--data-dir")
                    .map(|w| w[1])
                    .collect();
                assert!(
                    !dirs.is_empty(),
                    "{doc}:{line}: a background block serves no --data-dir node"
                );
                for d in dirs {
                    s.push_str(&format!("__wait_node {d}\n"));
                }
            }
        }
        ran += 1;
    }
    s.push_str("__block='(end)'\n");
    (s, ran)
}

/// `base`..`base+n` all free on loopback, below the ephemeral range (as the cluster script test).
fn consecutive_free_ports(n: u16) -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand::random::<u16>() % 12_000);
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return base;
        }
    }
    panic!("no {n} consecutive free ports");
}

/// `trustee-node show` of a fresh node in `dir` (a second node the docs' commands can name).
fn other_node(dir: &Path, role: &str) -> serde_json::Value {
    let ok = |c: &mut Command| {
        let o = c.output().expect("run trustee-node");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    ok(Command::new(bin_path(TRUSTEE_NODE))
        .args(["init", "--data-dir"])
        .arg(dir)
        .args(["--name", "other", "--role", role, "--listen", "127.0.0.1:1"]));
    let out = ok(Command::new(bin_path(TRUSTEE_NODE))
        .args(["show", "--json", "--data-dir"])
        .arg(dir));
    serde_json::from_slice(&out).expect("show --json")
}

/// Runs `doc`'s blocks; panics with the failing block and the run's output.
fn run_doc(doc: &str, min_blocks: usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    std::os::unix::fs::symlink(workspace_root().join("deploy"), root.join("deploy"))
        .expect("link deploy/");
    let bin_dir = bin_path(TRUSTEE_NODE).parent().expect("bin dir").to_owned();
    assert!(bin_path(DLOCKER).exists());
    let bank = other_node(&root.join("other-bank"), "bank");
    let trustee = other_node(&root.join("other-trustee"), "trustee");
    let ports = free_ports(3);
    let (tls_ca, tls_cert, tls_key) =
        dlocker_integration_tests::tls::write_server_files(&root.join("certs"));
    let (text, ran) = script(doc);
    assert!(
        ran >= min_blocks,
        "{doc}: only {ran} runnable blocks (expected at least {min_blocks})"
    );
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&text)
        .current_dir(root)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        // The docs' variables (each doc says which it uses, at its top).
        .env("DIR", root.join("node"))
        .env("PORT", ports[0].to_string())
        .env("ADMIN_PORT", ports[1].to_string())
        // A second node, served over TLS with a private CA's certificate for localhost.
        .env("TLS_DIR", root.join("tls-node"))
        .env("TLS_PORT", ports[2].to_string())
        .env("TLS_CERT", &tls_cert)
        .env("TLS_KEY", &tls_key)
        .env("TLS_CA", &tls_ca)
        .env("ENDPOINT", format!("http://127.0.0.1:{}", ports[0]))
        .env("TRUSTEE_KEY", trustee["public_key"].as_str().expect("key"))
        .env("BANK_NODE_ID", bank["node_id"].as_str().expect("id"))
        .env(
            "BANK_KEY",
            bank["bank_approval_key"].as_str().expect("bank key"),
        )
        // README: the local cluster's ports and binaries.
        .env("DLOCKER_BASE_PORT", consecutive_free_ports(5).to_string())
        .env("DLOCKER_BIN_DIR", &bin_dir)
        .output()
        .expect("run bash");
    if !out.status.success() {
        let mut logs = String::new();
        for e in std::fs::read_dir(root).expect("read tmp").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".doc-block-") && name.ends_with(".log") {
                let t = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(30).collect();
                logs.push_str(&format!("--- {name} (tail)\n"));
                for l in tail.into_iter().rev() {
                    logs.push_str(l);
                    logs.push('\n');
                }
            }
        }
        panic!(
            "{doc}: a documented command failed ({}):\nstdout:\n{}\nstderr:\n{}\n{logs}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn readme_shell_blocks_run_as_written() {
    run_doc("README.md", 4);
}

#[test]
fn operator_doc_shell_blocks_run_as_written() {
    run_doc("docs/operating-a-node.md", 6);
}
