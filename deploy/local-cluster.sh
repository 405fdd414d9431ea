#!/usr/bin/env bash
# A local dLocker cluster: N real trustee-node servers on 127.0.0.1, the first with the bank role.
#
#   deploy/local-cluster.sh up [N]   initialise (first time) and start N nodes (default 5)
#   deploy/local-cluster.sh status   show each node and, if any run, `dlocker cluster health`
#   deploy/local-cluster.sh down     stop the nodes cleanly (SIGTERM, then wait); data is kept
#
# Environment:
#   DLOCKER_CLUSTER_DIR  where nodes live (default .dlocker-cluster in the current directory)
#   DLOCKER_BASE_PORT    port of the first node (default 7101; node i listens on BASE+i-1)
#   DLOCKER_BIN_DIR      where trustee-node and dlocker are (default <target dir>/debug; built
#                        with `cargo build --bins` only if missing)
#   RUST_LOG             node log filter (default info)
#
# Layout: $DLOCKER_CLUSTER_DIR/<name>/ is a node data directory (config.toml, keys/, db/) with its
# log (node.log) and pid file (node.pid); $DLOCKER_CLUSTER_DIR/trustees.toml lists the running
# nodes with their pinned public keys, for the SDK and the CLI:
#   dlocker cluster health --trustees "$DLOCKER_CLUSTER_DIR/trustees.toml"
# Wiring, as `dlocker demo` does: every node (the bank included) accepts the bank's approval key,
# every node knows the others' identity keys (rotations), and the bank lists one staff member,
# id "operator" (roles admin, approver, canceller; 1 approval required), whose unencrypted key is
# $DLOCKER_CLUSTER_DIR/staff-operator.key:
#   dlocker recoveries list --trustees "$DLOCKER_CLUSTER_DIR/trustees.toml" --key "$DLOCKER_CLUSTER_DIR/staff-operator.key"
# Fail fast: if a node's port is already taken or a node exits during `up`, the script names the
# node and its log, stops the nodes it started and exits non-zero.
# `up` after `down` restarts the same nodes with their data. To start afresh: `down`, then delete
# the cluster directory.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${DLOCKER_CLUSTER_DIR:-.dlocker-cluster}"
BASE_PORT="${DLOCKER_BASE_PORT:-7101}"
BIN_DIR="${DLOCKER_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug}"
NODE_BIN="$BIN_DIR/trustee-node"
CLI_BIN="$BIN_DIR/dlocker"
READY_TIMEOUT_SECS=60
STOP_TIMEOUT_SECS=30

STAFF_ID=operator
STARTED_PIDS=()

die() { echo "local-cluster: $*" >&2; exit 1; }
say() { echo "local-cluster: $*"; }

usage() {
  sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

# Node i (1-based): the bank first, then trustee-2, trustee-3, ...
node_name() { if [[ "$1" -eq 1 ]]; then echo bank; else echo "trustee-$1"; fi; }
node_role() { if [[ "$1" -eq 1 ]]; then echo bank; else echo trustee; fi; }

abs_cluster_dir() {
  mkdir -p "$CLUSTER_DIR"
  CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
}

ensure_binaries() {
  if [[ ! -x "$NODE_BIN" || ! -x "$CLI_BIN" ]]; then
    if [[ -n "${DLOCKER_BIN_DIR:-}" ]]; then
      die "DLOCKER_BIN_DIR=$DLOCKER_BIN_DIR does not hold trustee-node and dlocker"
    fi
    say "binaries missing in $BIN_DIR; running cargo build --bins"
    (cd "$REPO_ROOT" && cargo build --bins)
  fi
  [[ -x "$NODE_BIN" ]] || die "$NODE_BIN not found after building"
  [[ -x "$CLI_BIN" ]] || die "$CLI_BIN not found after building"
}

is_running() { # pid file
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# A string field from `trustee-node show --json` (flat object of strings; no jq needed).
json_field() { # json key
  printf '%s' "$1" | tr -d '\n' | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p"
}

# `trustee-node show --json` of a node; stops the script, naming the node, if its config is bad.
node_show() { # name
  "$NODE_BIN" show --data-dir "$CLUSTER_DIR/$1" --json ||
    die "node $1: cannot read its data directory $CLUSTER_DIR/$1 (error above)"
}

port_open() { # port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Stop the nodes this run started (a failed `up` leaves nothing running it created).
stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    local deadline=$((SECONDS + STOP_TIMEOUT_SECS))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  done
  shopt -s nullglob
  local f
  for f in "$CLUSTER_DIR"/*/node.pid; do
    is_running "$f" || rm -f "$f"
  done
  shopt -u nullglob
}

# A node failed during `up`: name it and its log, stop what this run started, exit non-zero.
node_failed() { # name dir reason [show-log]
  if [[ "${4:-1}" == 1 && -f "$2/node.log" ]]; then
    tail -n 20 "$2/node.log" >&2 || true
  fi
  echo "local-cluster: node $1 $3 (log: $2/node.log)" >&2
  if ((${#STARTED_PIDS[@]})); then
    echo "local-cluster: stopping the ${#STARTED_PIDS[@]} node(s) this run started" >&2
    stop_started
  fi
  exit 1
}

cmd_up() {
  local n="${1:-5}"
  [[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 && "$n" -le 32 ]] || die "N must be 1..32, got '$n'"
  [[ "$BASE_PORT" =~ ^[0-9]+$ && $((BASE_PORT + n - 1)) -le 65535 ]] || die "bad DLOCKER_BASE_PORT '$BASE_PORT'"
  ensure_binaries
  abs_cluster_dir

  local trustees="$CLUSTER_DIR/trustees.toml.tmp"
  {
    echo "# dLocker trustees file, written by deploy/local-cluster.sh."
    echo "# Public keys are pinned: the SDK refuses a node whose GetInfo key differs."
  } >"$trustees"

  local i j
  for ((i = 1; i <= n; i++)); do
    local name role dir port
    name="$(node_name "$i")"
    role="$(node_role "$i")"
    dir="$CLUSTER_DIR/$name"
    port=$((BASE_PORT + i - 1))
    if [[ ! -f "$dir/config.toml" ]]; then
      "$NODE_BIN" init --data-dir "$dir" --name "$name" --listen "127.0.0.1:$port" --role "$role" >/dev/null
      say "initialised $name in $dir"
    fi
  done
  # Every node, the bank included (it is also a trustee of its customers' wallets), accepts the
  # bank's approval key, bound to the bank's node id.
  local bank_dir bank_info bank_key bank_id
  bank_dir="$CLUSTER_DIR/$(node_name 1)"
  bank_info="$(node_show "$(node_name 1)")" || exit 1
  bank_key="$(json_field "$bank_info" bank_approval_key)"
  bank_id="$(json_field "$bank_info" node_id)"
  [[ -n "$bank_key" && -n "$bank_id" ]] || die "could not read bank_approval_key/node_id of the bank: $bank_info"
  for ((i = 1; i <= n; i++)); do
    "$NODE_BIN" config accept-bank-key --data-dir "$CLUSTER_DIR/$(node_name "$i")" \
      --bank-node-id "$bank_id" "$bank_key" >/dev/null
  done
  # One staff member at the bank, so a recovery can be approved and staff administered.
  local staff_key_file="$CLUSTER_DIR/staff-$STAFF_ID.key"
  if [[ ! -f "$staff_key_file" ]]; then
    local staff_pk
    staff_pk="$(json_field "$(env -u DLOCKER_STAFF_PASSPHRASE "$CLI_BIN" --json staff keygen --out "$staff_key_file")" public_key)"
    [[ -n "$staff_pk" ]] || die "dlocker staff keygen printed no public key"
    "$NODE_BIN" config add-staff --data-dir "$bank_dir" --id "$STAFF_ID" \
      --public-key "$staff_pk" --roles admin,approver,canceller >/dev/null
    say "bank staff $STAFF_ID (admin, approver, canceller): key $staff_key_file"
  fi
  # Every node knows the others' identity keys, so a rotation can add any of them to a wallet
  # (a joining trustee needs a known trustee's attestation of the wallet's credential).
  for ((i = 1; i <= n; i++)); do
    for ((j = 1; j <= n; j++)); do
      ((i == j)) && continue
      local other_key other_info
      other_info="$(node_show "$(node_name "$j")")" || exit 1
      other_key="$(json_field "$other_info" public_key)"
      "$NODE_BIN" config accept-trustee-key --data-dir "$CLUSTER_DIR/$(node_name "$i")" "$other_key" >/dev/null
    done
  done
  for ((i = 1; i <= n; i++)); do
    local name role dir port
    name="$(node_name "$i")"
    role="$(node_role "$i")"
    dir="$CLUSTER_DIR/$name"
    port=$((BASE_PORT + i - 1))
    if is_running "$dir/node.pid"; then
      say "$name already running (pid $(cat "$dir/node.pid"))"
    else
      # Another process on the port would pass the readiness check below in this node's place.
      port_open "$port" && node_failed "$name" "$dir" "cannot start: port $port is already taken" 0
      RUST_LOG="${RUST_LOG:-info}" nohup "$NODE_BIN" serve --data-dir "$dir" >>"$dir/node.log" 2>&1 </dev/null &
      echo $! >"$dir/node.pid"
      STARTED_PIDS+=("$!")
      say "started $name (pid $!), log $dir/node.log"
    fi
    local info endpoint pk
    info="$("$NODE_BIN" show --data-dir "$dir" --json)"
    endpoint="$(json_field "$info" endpoint)"
    pk="$(json_field "$info" public_key)"
    [[ -n "$endpoint" && -n "$pk" ]] || die "could not read endpoint/public_key from trustee-node show --json: $info"
    {
      echo
      echo "[[trustee]]"
      echo "name = \"$name\""
      echo "endpoint = \"$endpoint\""
      echo "public_key = \"$pk\""
      echo "role = \"$role\""
    } >>"$trustees"
  done
  mv "$trustees" "$CLUSTER_DIR/trustees.toml"

  # Readiness: each process alive and its port open, then the CLI's health table.
  local deadline=$((SECONDS + READY_TIMEOUT_SECS))
  for ((i = 1; i <= n; i++)); do
    local name dir port
    name="$(node_name "$i")"
    dir="$CLUSTER_DIR/$name"
    port=$((BASE_PORT + i - 1))
    until port_open "$port"; do
      is_running "$dir/node.pid" || node_failed "$name" "$dir" "exited during startup"
      ((SECONDS < deadline)) || node_failed "$name" "$dir" "did not open port $port within ${READY_TIMEOUT_SECS}s"
      sleep 0.2
    done
  done
  until "$CLI_BIN" cluster health --trustees "$CLUSTER_DIR/trustees.toml" >/dev/null 2>&1; do
    for ((i = 1; i <= n; i++)); do
      is_running "$CLUSTER_DIR/$(node_name "$i")/node.pid" ||
        node_failed "$(node_name "$i")" "$CLUSTER_DIR/$(node_name "$i")" "exited during startup"
    done
    ((SECONDS < deadline)) || {
      "$CLI_BIN" cluster health --trustees "$CLUSTER_DIR/trustees.toml" || true
      echo "local-cluster: cluster not healthy within ${READY_TIMEOUT_SECS}s" >&2
      stop_started
      exit 1
    }
    sleep 0.5
  done
  "$CLI_BIN" cluster health --trustees "$CLUSTER_DIR/trustees.toml"
  say "$n nodes up; trustees file: $CLUSTER_DIR/trustees.toml"
}

pid_files() {
  shopt -s nullglob
  PID_FILES=("$CLUSTER_DIR"/*/node.pid)
  shopt -u nullglob
}

cmd_down() {
  [[ -d "$CLUSTER_DIR" ]] || { say "no cluster at $CLUSTER_DIR"; return 0; }
  abs_cluster_dir
  pid_files
  local f
  for f in "${PID_FILES[@]}"; do
    local name pid
    name="$(basename "$(dirname "$f")")"
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      local deadline=$((SECONDS + STOP_TIMEOUT_SECS))
      while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
          echo "local-cluster: $name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT_SECS}s; killing" >&2
          kill -KILL "$pid" 2>/dev/null || true
          break
        fi
        sleep 0.1
      done
      say "stopped $name (pid $pid)"
    else
      say "$name was not running"
    fi
    rm -f "$f"
  done
}

cmd_status() {
  [[ -d "$CLUSTER_DIR" ]] || { say "no cluster at $CLUSTER_DIR"; return 0; }
  abs_cluster_dir
  local any=0 d
  printf '%-12s %-8s %-8s %s\n' NODE STATE PID ENDPOINT
  shopt -s nullglob
  for d in "$CLUSTER_DIR"/*/; do
    d="${d%/}"
    [[ -f "$d/config.toml" ]] || continue
    local name state pid endpoint info
    name="$(basename "$d")"
    info="$("$NODE_BIN" show --data-dir "$d" --json 2>/dev/null || true)"
    endpoint="$(json_field "$info" endpoint)"
    if is_running "$d/node.pid"; then
      state=running
      pid="$(cat "$d/node.pid")"
      any=1
    else
      state=stopped
      pid=-
    fi
    printf '%-12s %-8s %-8s %s\n' "$name" "$state" "$pid" "${endpoint:-?}"
  done
  shopt -u nullglob
  if ((any)) && [[ -f "$CLUSTER_DIR/trustees.toml" ]]; then
    echo
    "$CLI_BIN" cluster health --trustees "$CLUSTER_DIR/trustees.toml"
  fi
}

main() {
  local cmd="${1:-}"
  shift || true
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) [[ -x "$NODE_BIN" && -x "$CLI_BIN" ]] || ensure_binaries; cmd_status ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
  esac
}

main "$@"
