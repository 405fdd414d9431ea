#!/usr/bin/env bash
# Where a trustee node's CPU goes during a deposit storm, and what a deposit costs in instructions.
#
#   loadgen/profile.sh perf        sampled profile of the nodes during backups (needs `perf`)
#   loadgen/profile.sh callgrind   instructions per deposit at one node (needs `valgrind`)
#   loadgen/profile.sh all         both (the default)
#
# Environment:
#   COUNT       backups in the perf storm (default 1000); the callgrind run does CALLGRIND_COUNT
#               (default 100: every instruction is simulated, ~50x slower)
#   CALLGRIND_OPS  what the callgrind run's bench does (default `backup`; `backup,recover` adds
#               a recovery of each wallet: subtract a `backup` run's count for a recovery's)
#   OUT         where the profiles, reports and the callgrind cluster go (default target/profile)
#   SKIP_BUILD  set to 1 to use the release binaries already built
#
# perf: `dlocker-bench --ops backup --no-limits` (5 in-process nodes, 3-of-5, 8 clients; see
# docs/performance.md) runs under `perf record`. Only samples of the nodes' own threads are kept
# (`dlocker-node*`, sled's `sled-*` and `log flusher`; the clients run on `bench-client*`), and
# their time is grouped by what the sampled function belongs to. The time is "self" time of the
# function the sample landed in: code the compiler inlined counts for the function it was
# inlined into.
#
# callgrind: a 3-node local cluster of release binaries (deploy/local-cluster.sh); trustee-2 is
# restarted under callgrind with instrumentation off, which is switched on for CALLGRIND_COUNT
# 2-of-3 backups driven by dlocker-bench, then off again. Each backup is one deposit at
# trustee-2, so its instructions ÷ the count are the instructions per deposit, all of the
# deposit's calls (GetInfo, GetBackupStatus, BeginEnrollment, FinishEnrollment, ConfirmBackup)
# included. Repeatable on a busy machine: it counts work, not time.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
BIN="$TARGET_DIR/release"
OUT="${OUT:-$TARGET_DIR/profile}"
COUNT="${COUNT:-1000}"
CALLGRIND_COUNT="${CALLGRIND_COUNT:-100}"
WHAT="${1:-all}"

die() { echo "profile: $*" >&2; exit 1; }
case "$WHAT" in perf|callgrind|all) ;; *) sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;; esac

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  (cd "$REPO_ROOT" && cargo build --release -p dlocker-loadgen -p trustee-node -p recovery-cli)
fi
for b in dlocker-bench trustee-node dlocker; do
  [[ -x "$BIN/$b" ]] || die "$BIN/$b missing (build with: cargo build --release -p dlocker-loadgen -p trustee-node -p recovery-cli)"
done

run_perf() {
  command -v perf >/dev/null || die "perf not found (Debian: apt-get install linux-perf)"
  echo "==> perf: $COUNT backups (3-of-5, 8 clients), nodes in the bench's process"
  perf record -F 1999 -o "$OUT/perf.data" -- \
    "$BIN/dlocker-bench" --ops backup --count "$COUNT" --no-limits --json > "$OUT/perf-bench.json"
  perf script -i "$OUT/perf.data" -F comm,tid,period,ip,sym,dso 2> /dev/null > "$OUT/perf-samples.txt"
  python3 "$REPO_ROOT/loadgen/profile_table.py" "$OUT/perf-samples.txt" "$OUT/perf-bench.json" | tee "$OUT/perf-table.md"
}

run_callgrind() {
  command -v valgrind >/dev/null || die "valgrind not found (Debian: apt-get install valgrind)"
  local cluster="$OUT/cluster" port
  port=$(( 21000 + RANDOM % 8000 ))
  rm -rf "$cluster"
  export DLOCKER_CLUSTER_DIR="$cluster" DLOCKER_BIN_DIR="$BIN" DLOCKER_BASE_PORT="$port"
  trap 'bash "$REPO_ROOT/deploy/local-cluster.sh" down >/dev/null 2>&1 || true; [[ -n "${VG_PID:-}" ]] && kill "$VG_PID" 2>/dev/null || true' EXIT
  echo "==> callgrind: a 3-node cluster on 127.0.0.1:$port.., trustee-2 under callgrind"
  bash "$REPO_ROOT/deploy/local-cluster.sh" up 3 > "$OUT/cluster-up.log"
  local pidfile="$cluster/trustee-2/node.pid"
  kill -TERM "$(cat "$pidfile")"
  for _ in $(seq 100); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
    "$BIN/trustee-node" serve --data-dir "$cluster/trustee-2" > "$OUT/callgrind-node.log" 2>&1 &
  VG_PID=$!
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null; then break; fi
    sleep 0.1
  done
  # One warm-up backup (lazily built tables, first connections), then the measured ones.
  "$BIN/dlocker-bench" --trustees "$cluster/trustees.toml" --staff-key "$cluster/staff-operator.key" \
    --threshold 2 --ops backup --count 1 --clients 1 --no-limits > /dev/null
  callgrind_control -i on "$VG_PID" > /dev/null
  "$BIN/dlocker-bench" --trustees "$cluster/trustees.toml" --staff-key "$cluster/staff-operator.key" \
    --threshold 2 --ops "${CALLGRIND_OPS:-backup}" --count "$CALLGRIND_COUNT" --clients 2 --no-limits --json > "$OUT/callgrind-bench.json"
  callgrind_control -i off "$VG_PID" > /dev/null
  kill -TERM "$VG_PID"; wait "$VG_PID" || true; VG_PID=
  callgrind_annotate --inclusive=yes "$OUT/callgrind.out" > "$OUT/callgrind-inclusive.txt" 2>/dev/null
  python3 "$REPO_ROOT/loadgen/profile_table.py" --callgrind "$OUT/callgrind-inclusive.txt" "$CALLGRIND_COUNT" | tee "$OUT/callgrind-table.md"
}

case "$WHAT" in
  perf) run_perf ;;
  callgrind) run_callgrind ;;
  all) run_perf; run_callgrind ;;
esac
echo "profile: reports in $OUT"
