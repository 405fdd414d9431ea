//! Finding the `trustee-node` and `dlocker` binaries the tests run.
//!
//! `cargo test --workspace` builds other packages' binaries only as test harnesses, not as the
//! programs themselves, so the first test that needs them runs
//! `cargo build --workspace --bins` once per test process (a no-op when they are fresh). That
//! keeps "`cargo test --workspace`" the only command a newcomer needs, and never tests a stale
//! binary. Set `DLOCKER_BIN_DIR` to use prebuilt binaries instead (no build is attempted).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The trustee node server.
pub const TRUSTEE_NODE: &str = "trustee-node";
/// The operator / staff / demo CLI.
pub const DLOCKER: &str = "dlocker";
/// The SDK example (`client-sdk/examples/resumable.rs`): a wallet app whose ceremonies survive
/// being killed.
pub const RESUMABLE_EXAMPLE: &str = "resumable";

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_dir.parent().unwrap_or(tests_dir).to_path_buf()
}

/// The directory the binaries are in: `$DLOCKER_BIN_DIR`, else the profile directory of the
/// running test executable (`target/debug` for `target/debug/deps/<test>`).
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DLOCKER_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("test executable is in a directory");
    let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    profile_dir.to_path_buf()
}

fn exe_name(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// Builds the workspace binaries once per process (unless `DLOCKER_BIN_DIR` is set), then
/// returns the binaries' directory, panicking with a clear message when one is missing.
fn ensure_built() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = bin_dir();
        if std::env::var_os("DLOCKER_BIN_DIR").is_none() {
            build_binaries(&dir, &["--workspace", "--bins"]);
            // The SDK's example app, which the resumable-ceremony tests run and kill.
            build_binaries(&dir, &["-p", "dlocker-sdk", "--example", RESUMABLE_EXAMPLE]);
        }
        for name in [TRUSTEE_NODE, DLOCKER] {
            let p = dir.join(exe_name(name));
            assert!(
                p.is_file(),
                "binary {} is missing — run `cargo build --workspace` first (or set DLOCKER_BIN_DIR)",
                p.display()
            );
        }
        dir
    })
}

fn build_binaries(profile_dir: &Path, what: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .args(what)
        .arg("--quiet");
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    // `cargo test` runs us with the variables it sets for a crate (CARGO_MANIFEST_DIR,
    // CARGO_PKG_NAME, OUT_DIR, ...). Build scripts such as ring's declare
    // `rerun-if-env-changed` on those, so passing them on would make the nested build think
    // ring changed and rebuild half the dependency tree (and the next plain build rebuild it
    // back). Keep only cargo's own configuration variables.
    const KEEP: &[&str] = &[
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_",
        "CARGO_PROFILE_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_TERM_",
        "CARGO_INCREMENTAL",
        "CARGO_LOG",
    ];
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        let cargo_set = k.starts_with("CARGO_") && !KEEP.iter().any(|p| k.starts_with(p));
        if cargo_set || k == "OUT_DIR" {
            cmd.env_remove(k);
        }
    }
    match cmd.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "building the workspace binaries failed — run `cargo build --workspace` to see why:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "could not run cargo to build the binaries ({e}) — run `cargo build --workspace`"
        ),
    }
}

/// Path of a workspace binary (`trustee-node` or `dlocker`), building it first if needed.
pub fn bin_path(name: &str) -> PathBuf {
    ensure_built().join(exe_name(name))
}

/// Path of an SDK example built by [`ensure_built`] (`examples/` beside the binaries).
pub fn example_path(name: &str) -> PathBuf {
    let p = ensure_built().join("examples").join(exe_name(name));
    assert!(
        p.is_file(),
        "example {} is missing — run `cargo build -p dlocker-sdk --example {name}`",
        p.display()
    );
    p
}

/// A `Command` for `trustee-node`.
pub fn node_command() -> Command {
    Command::new(bin_path(TRUSTEE_NODE))
}

/// A `Command` for `dlocker`, with logs kept quiet unless the caller sets `RUST_LOG`.
pub fn cli_command() -> Command {
    let mut cmd = Command::new(bin_path(DLOCKER));
    // Stable, uncoloured output for assertions.
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs `trustee-node serve` on `dir` and expects it to refuse to start: asserts it exits
/// non-zero within 30 s (a node that serves instead is killed and the test fails); returns its
/// stderr.
pub fn serve_refused(dir: &Path) -> String {
    serve_refused_with(dir, &[])
}

/// [`serve_refused`] with more `serve` arguments (e.g. `--log-format json`).
pub fn serve_refused_with(dir: &Path, extra: &[&str]) -> String {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = node_command()
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trustee-node serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "trustee-node serve {} started instead of refusing",
                    dir.display()
                );
            }
        }
    };
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        use std::io::Read as _;
        let _ = s.read_to_string(&mut err);
    }
    assert!(!status.success(), "serve exited successfully:\n{err}");
    err
}
