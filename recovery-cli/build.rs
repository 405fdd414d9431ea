//! Records the git commit the binary is built from, for `--version`, and whether the wallet
//! page's WebAssembly bundle (`web/pkg/`, from `scripts/build-web.sh`) exists to be embedded.

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown commit".to_owned());
    println!("cargo:rustc-env=DLOCKER_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    // `dlocker web` embeds the bundle when it was built; `web/` is watched as a whole (a missing
    // path would re-run this script on every build).
    println!("cargo::rustc-check-cfg=cfg(dlocker_web_bundle)");
    println!("cargo:rerun-if-changed=../web");
    let pkg = std::path::Path::new("../web/pkg");
    if pkg.join("dlocker_web.js").is_file() && pkg.join("dlocker_web_bg.wasm").is_file() {
        println!("cargo:rustc-cfg=dlocker_web_bundle");
    }
}
