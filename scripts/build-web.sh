#!/usr/bin/env bash
# Builds the browser SDK for the wallet page: web-sdk (dlocker-sdk compiled to WebAssembly, JS
# bindings by wasm-bindgen) into web/pkg/ (git-ignored), which `dlocker web` serves.
#
#   scripts/build-web.sh            # release build (what the page and the browser test use)
#   scripts/build-web.sh --dev      # unoptimised, faster to build
#
# On a fresh machine it first installs what it needs, and only what is missing:
#   - the Rust target wasm32-unknown-unknown (rustup target add);
#   - wasm-bindgen-cli at exactly the wasm-bindgen version Cargo.lock pins (the CLI and the
#     library must match), with `cargo install --locked`.
# Honors CARGO_TARGET_DIR. Prints the bundle's size, raw and gzipped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

profile=release
profile_flag=(--release)
if [[ "${1:-}" == "--dev" ]]; then
    profile=debug
    profile_flag=()
elif [[ $# -gt 0 ]]; then
    echo "usage: scripts/build-web.sh [--dev]" >&2
    exit 2
fi

target=wasm32-unknown-unknown
if ! rustup target list --installed | grep -qx "$target"; then
    echo "==> rustup target add $target"
    rustup target add "$target"
fi

# The wasm-bindgen version Cargo.lock pins: the CLI must be the same version.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [[ -z "$want" ]]; then
    echo "error: Cargo.lock pins no wasm-bindgen (is web-sdk in the workspace?)" >&2
    exit 1
fi
have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [[ "$have" != "$want" ]]; then
    echo "==> cargo install wasm-bindgen-cli --locked --version $want (found: ${have:-none})"
    # --locked: the CLI's own tested dependency versions. A registry mirror that lacks one of
    # them (seen: webpki-roots) makes that fail; then resolve afresh (same CLI version).
    if ! cargo install wasm-bindgen-cli --locked --version "$want"; then
        echo "==> --locked failed; retrying without --locked" >&2
        cargo install wasm-bindgen-cli --version "$want"
    fi
fi

echo "==> cargo build -p dlocker-web --target $target ${profile_flag[*]:-}"
cargo build -p dlocker-web --lib --target "$target" "${profile_flag[@]}"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
wasm="$target_dir/$target/$profile/dlocker_web.wasm"
out="$root/web/pkg"
echo "==> wasm-bindgen --target web --out-dir web/pkg"
rm -rf "$out"
wasm-bindgen --target web --out-dir "$out" "$wasm"

bundle="$out/dlocker_web_bg.wasm"
raw=$(wc -c <"$bundle")
gz=$(gzip -9 -c "$bundle" | wc -c)
js=$(wc -c <"$out/dlocker_web.js")
printf 'built web/pkg: dlocker_web_bg.wasm %d bytes (%d KiB), gzipped %d bytes (%d KiB); dlocker_web.js %d bytes\n' \
    "$raw" $((raw / 1024)) "$gz" $((gz / 1024)) "$js"
