#!/usr/bin/env python3
"""The tables of loadgen/profile.sh.

    profile_table.py SAMPLES BENCH_JSON                 perf: node CPU by what it was spent on
    profile_table.py --callgrind ANNOTATED COUNT        callgrind: instructions per deposit

SAMPLES is `perf script -F comm,tid,period,ip,sym,dso` output; BENCH_JSON is `dlocker-bench --json` of
the same run (for the node CPU per deposit). ANNOTATED is `callgrind_annotate --inclusive=yes`.
"""
import json
import re
import sys
from collections import Counter

# The nodes' threads in dlocker-bench's process (loadgen/src/measure.rs, `is_node_thread`).
def is_node_thread(comm):
    return comm.startswith("dlocker-node") or comm.startswith("sled") or comm == "log flusher"

# What a sampled function belongs to; the first match wins.
CATEGORIES = [
    ("storage engine (sled)", ("sled::", "crossbeam_epoch", "crc32fast")),
    ("secp256k1 (k256: envelope, Feldman check, signatures)",
     ("k256::", "elliptic_curve::", "primeorder::", "crypto_bigint::", "ecdsa::", "rfc6979",
      "wnaf::", "subtle::")),
    ("P-256 (the passkey's attestation signature)", ("p256::", "p384::")),
    ("hashes and AEAD (SHA-2, HMAC, AES-GCM)",
     ("sha2::", "aes::", "aes_gcm", "ghash", "polyval", "hmac::", "hkdf::", "digest::")),
    ("WebAuthn, CBOR, JSON, base64",
     ("webauthn_rs", "serde_cbor", "serde_json", "base64::", "serde::", "serde_core::", "url::",
      "uuid::", "hex::")),
    ("gRPC, HTTP/2, tokio",
     ("tokio::", "hyper", "h2::", "tonic", "tower", "prost", "mio::", "bytes::", "http::",
      "futures", "parking_lot", "crossbeam", "matchit::", "http_body")),
    ("metrics (prometheus-client)", ("prometheus_client",)),
    ("allocation and copies",
     ("malloc", "free", "realloc", "calloc", "_int_", "memcpy", "memmove", "memset", "memcmp",
      "alloc::", "__rust_alloc", "__rust_dealloc", "__rust_realloc", "__rdl_", "unlink_chunk",
      "__rust_no_alloc_shim")),
    ("dLocker's own code", ("trustee_node", "dlocker_")),
]
KERNEL = "kernel (system calls: fsync, network, scheduling)"
# libc's system call entry points count with the kernel.
LIBC_SYSCALLS = {"syscall", "sync_file_range", "clock_gettime@@GLIBC_2.17", "__sched_yield",
                 "sched_yield", "__libc_write", "__libc_read", "fsync", "fdatasync", "epoll_wait",
                 "__send", "__recv", "writev", "__GI___writev", "__libc_sendmsg", "__libc_recvmsg"}


def category(sym, dso):
    if "kernel" in dso or sym.startswith("[k]") or sym in LIBC_SYSCALLS or "vdso" in dso + sym:
        return KERNEL
    for name, pats in CATEGORIES:
        if any(p in sym for p in pats):
            return name
    return "other"


LINE = re.compile(r"^\s*(.+?)\s+\d+\s+(\d+)\s+[0-9a-f]+\s+(.*?)\s+\(([^()]*)\)\s*$")


def perf_table(samples_path, bench_path):
    by_cat, by_sym, other_threads = Counter(), Counter(), 0
    with open(samples_path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            comm, period, sym, dso = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            if not is_node_thread(comm):
                other_threads += period
                continue
            by_cat[category(sym, dso)] += period
            by_sym[sym] += period
    total = sum(by_cat.values())
    if total == 0:
        sys.exit("profile_table: no samples of the nodes' threads")
    with open(bench_path) as f:
        bench = json.load(f)
    phase = dict(bench["phases"]).get("backup", {})
    backup = next((o for o in phase.get("ops", []) if o["op"] == "backup"), {})
    per_backup = backup.get("node_cpu_ms_per_op")
    trustees = bench["trustees"]
    per_deposit = per_backup / trustees if per_backup else None
    print(f"Node CPU during {backup.get('count')} backups ({bench['threshold']}-of-{trustees}, "
          f"{bench['clients']} clients): {per_deposit:.3f} ms per deposit"
          if per_deposit else "Node CPU per deposit: not measured")
    print(f"(node threads {100 * total / (total + other_threads):.0f} % of the process's samples)\n")
    print("| share | µs per deposit | where |")
    print("|---:|---:|---|")
    for cat, n in by_cat.most_common():
        us = f"{1000 * per_deposit * n / total:.0f}" if per_deposit else "—"
        print(f"| {100 * n / total:.1f} % | {us} | {cat} |")
    print("\nTop functions (self time, node threads):\n")
    print("| share | function |")
    print("|---:|---|")
    for sym, n in by_sym.most_common(15):
        print(f"| {100 * n / total:.1f} % | `{sym[:110]}` |")


# Work a deposit must do, as callgrind names it (inclusive counts; the largest match wins, so a
# function and its callees are not counted twice): the four, plus the confirmation's
# check of every trustee's receipt (`ConfirmBackup`, docs/protocol.md §12b).
MANDATORY = [
    ("envelope open (ECDH + AEAD)", r"dlocker_proto::envelope::.*open"),
    ("Feldman check of the share", r"dlocker_proto::share::.*(verify|check)"),
    ("receipt signature", r"dlocker_proto::statement::.*sign"),
    ("passkey registration check (webauthn-rs)",
     r"webauthn_rs.*finish_passkey_registration|webauthn_rs_core::core::.*register_credential"),
    ("confirmation: the n receipts' signatures", r"trustee_node::enrollment::confirm::check_receipts"),
]
# Not required by the protocol: where the rest goes.
OTHER_WORK = [
    ("manifest decode (every key decompressed; twice: deposit and confirmation)",
     r"dlocker_proto::manifest::Manifest::decode"),
    ("storage transactions (sled)", r"sled::transaction::Transactional::transaction"),
    ("audit entry", r"trustee_node::audit_log::AuditLog::append"),
    ("HTTP/2 connection handling", r"hyper::server::conn::http2::Connection.*poll"),
]
ANNOTATED = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$")


def callgrind_table(path, count):
    count = int(count)
    total, funcs = None, []
    with open(path, errors="replace") as f:
        for line in f:
            m = ANNOTATED.match(line)
            if not m:
                continue
            n = int(m.group(1).replace(",", ""))
            rest = m.group(2)
            if "PROGRAM TOTALS" in rest:
                total = n
            else:
                funcs.append((n, rest))
    if not total:
        sys.exit("profile_table: no PROGRAM TOTALS in the callgrind annotation")
    def row(name, pat):
        best = max((n for n, fn in funcs if re.search(pat, fn)), default=0)
        print(f"| {name} | {best / count:,.0f} | {100 * best / total:.1f} % |")
        return best

    print(f"Instructions at one node per deposit ({count} deposits): {total / count:,.0f}\n")
    print("| work | instructions per deposit | share |")
    print("|---|---:|---:|")
    found = sum(row(name, pat) for name, pat in MANDATORY)
    print(f"| **mandatory, sum** | **{found / count:,.0f}** | **{100 * found / total:.1f} %** |")
    for name, pat in OTHER_WORK:
        row(name, pat)
    if found:
        print(f"\nAll of a deposit ÷ its mandatory work: {total / found:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--callgrind":
        callgrind_table(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3:
        perf_table(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)
