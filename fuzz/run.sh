#!/usr/bin/env bash
# Runs every fuzz target for a bounded number of executions and prints, per target, the
# executions done and the findings (crash / timeout / out-of-memory inputs saved by libFuzzer).
#
#   fuzz/run.sh                      every target, 1,000,000 executions each (the node targets too)
#   fuzz/run.sh --smoke              every target without the node, 2,000 executions each (CI)
#   fuzz/run.sh --runs 50000 vc jws_jwk
#   fuzz/run.sh --max-time 180 statement_body
#
# Options:
#   --runs N       executions per target (default 1000000; --smoke: 2000)
#   --max-time S   wall-clock bound per target in seconds (default 900; --smoke: 60); a target
#                  stopped by it reports the executions it reached
#   --smoke        2,000 runs per target, a fixed seed, without the node targets (which need the
#                  whole trustee node built instrumented)
#   --no-node      leave out the targets that need the `node` feature (node_config, staff_request)
#   --build-only   build and stop
#
# Bounds: per-input timeout 10 s, RSS limit 2 GiB, inputs up to 64 KiB, and the two bounds above.
# Nothing runs unbounded.
#
# Toolchain: cargo-fuzz (`cargo install cargo-fuzz --locked`) on the stable toolchain. Targets
# are built with `-s none` (no AddressSanitizer: the dLocker crates forbid `unsafe`, and the
# sanitizer would cost a third of the speed), `-O -a` (release, with debug assertions and
# overflow checks). That build needs no nightly flag; RUSTC_BOOTSTRAP=1 is still exported so
# `FUZZ_SANITIZER=address fuzz/run.sh` (which passes the nightly-only `-Zsanitizer`) works on a
# stable toolchain too. Nothing else in the project uses nightly features.
#
# Corpora: the committed seeds are in fuzz/corpus/<target>/ and are only read; what libFuzzer
# finds on the way is kept in fuzz/target/corpus/<target>/ (ignored by git), so repeated runs
# build on each other. Findings are written to fuzz/artifacts/<target>/ (ignored by git); the
# script exits non-zero if any target produced one. Reproduce one with
#   fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/<file>
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

runs=1000000
max_time=900
smoke=0
node=1
build_only=0
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --max-time) max_time="$2"; shift 2 ;;
    --smoke) smoke=1; runs=2000; max_time=60; node=0; shift ;;
    --no-node) node=0; shift ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    -*) echo "fuzz/run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

command -v cargo-fuzz >/dev/null 2>&1 || {
  echo "fuzz/run.sh: cargo-fuzz not found; install it with: cargo install cargo-fuzz --locked" >&2
  exit 1
}

export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-none}"
target_dir="$PWD/fuzz/target"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/release"

node_targets=(staff_request node_config node_requests)
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^dlocker-fuzz$')
  if [[ $node -eq 0 ]]; then
    filtered=()
    for t in "${targets[@]}"; do
      [[ " ${node_targets[*]} " == *" $t "* ]] || filtered+=("$t")
    done
    targets=("${filtered[@]}")
  fi
else
  for t in "${targets[@]}"; do
    [[ " ${node_targets[*]} " == *" $t "* ]] && node=1
  done
fi

features=()
[[ $node -eq 1 ]] && features=(--features node)

echo "== building fuzz targets (cargo fuzz build -O -a -s $sanitizer ${features[*]})"
start=$(date +%s)
cargo fuzz build -O -a -s "$sanitizer" "${features[@]}" --target-dir "$target_dir"
echo "   built in $(( $(date +%s) - start )) s"
[[ $build_only -eq 1 ]] && exit 0

seed_args=()
[[ $smoke -eq 1 ]] && seed_args=(-seed=1)

summary=()
total_findings=0
for t in "${targets[@]}"; do
  work="$target_dir/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$work" "$artifacts" "fuzz/corpus/$t"
  before=$(find "$artifacts" -type f | wc -l)
  log="$target_dir/logs/$t.log"
  mkdir -p "$(dirname "$log")"
  echo "== $t: up to $runs executions, at most $max_time s"
  t0=$(date +%s)
  set +e
  "$bin_dir/$t" "$work" "fuzz/corpus/$t" \
    -runs="$runs" -max_total_time="$max_time" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "${seed_args[@]}" >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - t0 ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  after=$(find "$artifacts" -type f | wc -l)
  found=$(( after - before ))
  if [[ $rc -ne 0 && $found -eq 0 ]]; then
    found=1 # died without saving an input: count it, the log says why
  fi
  total_findings=$(( total_findings + found ))
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  line=$(printf '%-18s %10s execs %6s s  cov %-6s findings %s' "$t" "${execs:-?}" "$secs" "${cov:-?}" "$found")
  echo "   $line"
  if [[ $found -ne 0 ]]; then
    echo "   exit $rc; log: $log"
    grep -E '^(==|SUMMARY|panicked|thread .* panicked|.*Test unit written)' "$log" | head -20 | sed 's/^/   | /'
  fi
  summary+=("$line")
done

echo "== summary (runs=$runs, max-time=${max_time}s per target, sanitizer=$sanitizer)"
printf '%s\n' "${summary[@]}"
if [[ $total_findings -ne 0 ]]; then
  echo "fuzz/run.sh: $total_findings finding(s); inputs are in fuzz/artifacts/" >&2
  exit 1
fi
