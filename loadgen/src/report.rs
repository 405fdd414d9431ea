//! Printing the results: tables for people, one JSON document for machines.

use crate::growth::{StoredRow, TrusteeRow};
use crate::limits::{BackupLimit, DepositLimit, RecoveryLimit, flush_latency_note};
use crate::measure::OpSummary;
use crate::workload::PhaseResult;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// The machine the numbers come from.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Machine {
    pub(crate) nproc: usize,
    pub(crate) cpu_model: String,
    pub(crate) mem_total_gib: f64,
    /// 1-minute load average when the run started and ended (other work on the machine).
    pub(crate) load_before: f64,
    pub(crate) load_after: f64,
}

impl Machine {
    pub(crate) fn read() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default();
        let mem_total_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| t.split_whitespace().next().and_then(|x| x.parse().ok()))
            .unwrap_or(0.0);
        Self {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_total_gib,
            load_before: load,
            load_after: load,
        }
    }

    fn print(&self) {
        println!(
            "machine: {} cores, {}, {:.1} GiB RAM; load average {:.2} at start, {:.2} at end",
            self.nproc, self.cpu_model, self.mem_total_gib, self.load_before, self.load_after
        );
    }
}

/// `dlocker-bench run`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunReport {
    pub(crate) machine: Machine,
    pub(crate) cluster: String,
    pub(crate) trustees: usize,
    pub(crate) threshold: u16,
    pub(crate) clients: usize,
    pub(crate) ops: Vec<String>,
    pub(crate) data_bytes: usize,
    pub(crate) phases: Vec<(String, PhaseResult)>,
    /// Growth of the nodes' data directories during the backup phase ÷ wallets, per node.
    pub(crate) bytes_per_wallet_per_node: Option<f64>,
    pub(crate) deposit_limit: Option<DepositLimit>,
    pub(crate) backup_limit: Option<BackupLimit>,
    pub(crate) recovery_limit: Option<RecoveryLimit>,
    pub(crate) notes: Vec<String>,
}

impl RunReport {
    pub(crate) fn new(
        cluster: &str,
        trustees: usize,
        threshold: u16,
        clients: usize,
        ops: &[String],
        data_bytes: usize,
    ) -> Self {
        Self {
            machine: Machine::default(),
            cluster: cluster.to_owned(),
            trustees,
            threshold,
            clients,
            ops: ops.to_vec(),
            data_bytes,
            phases: Vec::new(),
            bytes_per_wallet_per_node: None,
            deposit_limit: None,
            backup_limit: None,
            recovery_limit: None,
            notes: Vec::new(),
        }
    }

    pub(crate) fn print(&self) {
        self.machine.print();
        println!(
            "cluster: {}; {}-of-{}; {} concurrent clients; {} bytes of wallet data",
            self.cluster, self.threshold, self.trustees, self.clients, self.data_bytes
        );
        let mut t = ops_table();
        for (_, p) in &self.phases {
            for s in &p.ops {
                t.add_row(op_row(s));
            }
        }
        println!("{t}");
        if let Some(b) = self.bytes_per_wallet_per_node {
            println!(
                "bytes stored per wallet: {b:.0} per node ({:.0} across the {} nodes) — data directory growth during the backups",
                b * self.trustees as f64,
                self.trustees
            );
        }
        for (name, p) in &self.phases {
            let errs: Vec<String> = p
                .ops
                .iter()
                .filter_map(|s| s.first_error.as_ref().map(|e| format!("{}: {e}", s.op)))
                .collect();
            if !errs.is_empty() {
                println!("first errors in {name}: {}", errs.join("; "));
            }
        }
        if let Some(a) = &self.deposit_limit {
            println!(
                "\nlimit (a): deposits at one node vs raw sled insert+flush, same record size ({} bytes), {} concurrent writers",
                a.record_bytes, a.clients
            );
            let mut t = table(&["measure", "value"]);
            for storm in &a.storms {
                let d = &storm.deposit;
                let m = &storm.mandatory;
                t.add_row(vec![storm.passkey.label().to_owned(), String::new()]);
                t.add_row(vec![
                    format!("  node {}: durable deposits/s", a.node),
                    format!("{:.0}", d.throughput_per_s),
                ]);
                t.add_row(vec![
                    "  deposit latency p50 / p99 (ms)".into(),
                    format!("{:.2} / {:.2}", d.p50_ms, d.p99_ms),
                ]);
                if let Some(cpu) = d.node_cpu_ms_per_op {
                    t.add_row(vec![
                        "  node CPU per deposit (ms)".into(),
                        format!("{cpu:.3}"),
                    ]);
                }
                if let Some(b) = storm.node_cpu_bound_per_s {
                    t.add_row(vec![
                        "  node CPU bound: cores ÷ CPU per deposit (/s)".into(),
                        format!("{b:.0}"),
                    ]);
                }
                t.add_row(vec![
                    "  mandatory crypto: envelope open + Feldman + registration check + receipt signature (ms)".into(),
                    format!(
                        "{:.3} + {:.3} + {:.3} + {:.3} = {:.3}",
                        m.envelope_open_ms,
                        m.feldman_check_ms,
                        m.registration_check_ms,
                        m.receipt_signature_ms,
                        m.total_ms
                    ),
                ]);
                if let Some(r) = storm.cpu_ratio {
                    t.add_row(vec![
                        "  node CPU per deposit ÷ mandatory crypto".into(),
                        format!("{r:.2}"),
                    ]);
                }
            }
            t.add_row(vec![
                format!("raw sled insert+flush/s ({} writers)", a.clients),
                format!("{:.0}", a.raw_sled_per_s),
            ]);
            t.add_row(vec![
                "raw sled insert+flush/s (1 writer)".into(),
                format!(
                    "{:.0} ({})",
                    a.raw_sled_single_writer_per_s,
                    flush_latency_note(a.raw_sled_single_writer_per_s)
                ),
            ]);
            t.add_row(vec![
                format!(
                    "raw sled insert + node's group-commit flush/s ({} writers)",
                    a.clients
                ),
                format!("{:.0}", a.raw_sled_group_commit_per_s),
            ]);
            t.add_row(vec![
                "ratio (a) = node (software passkey) ÷ raw".into(),
                format!("{:.2}", a.ratio_a),
            ]);
            println!("{t}");
        }
        if let Some(b) = &self.backup_limit {
            println!(
                "\nlimit (b): backup {}-of-{} end to end (one client, {} backups) vs crypto work + {} GetInfo round trips",
                b.threshold, b.trustees, b.backups, b.trustees
            );
            println!("owner passkeys: {}", b.passkey.label());
            print_ms_rows(
                &[
                    (
                        "backup p50, end to end (SDK client, kept connections)",
                        b.backup_p50_ms,
                    ),
                    (
                        "(not in ratio) backup p50 opening new connections",
                        b.backup_cold_p50_ms,
                    ),
                    ("split", b.split_ms),
                    ("envelope seals (n)", b.envelope_seals_ms),
                    ("blob seal", b.blob_seal_ms),
                    ("receipt verifications (n)", b.receipt_verifications_ms),
                    (
                        "GetInfo round trips (n, warm channels)",
                        b.getinfo_round_trips_ms,
                    ),
                    ("floor = sum of the above five", b.floor_ms),
                    (
                        "(not in floor) passkey registration (1 for all n)",
                        b.passkey_registrations_ms,
                    ),
                    (
                        "(not in floor) trustees' mandatory deposit crypto × n",
                        b.node_side_crypto_ms,
                    ),
                ],
                ("ratio (b) = backup p50 ÷ floor", b.ratio_b),
            );
        }
        if let Some(c) = &self.recovery_limit {
            println!(
                "\nlimit (c): recovery {}-of-{} with no waiting period, end to end (one client, {} recoveries, staff approval excluded) vs crypto work + round trips",
                c.threshold, c.trustees, c.recoveries
            );
            print_ms_rows(
                &[
                    (
                        "recover p50, end to end (SDK client, kept connections)",
                        c.recover_p50_ms,
                    ),
                    (
                        "(not in ratio) recover p50 opening new connections",
                        c.recover_cold_p50_ms,
                    ),
                    (
                        "(not in ratio) staff approval (ApproveRecovery) p50",
                        c.approve_p50_ms,
                    ),
                    ("session key R", c.session_key_ms),
                    ("manifest decode", c.manifest_decode_ms),
                    ("bank approval check", c.approval_check_ms),
                    (
                        "release checks (n: statement, envelope, Feldman)",
                        c.release_checks_ms,
                    ),
                    ("combine t shares + open the blob", c.combine_and_open_ms),
                    (
                        "GetInfo round trips (3 per trustee + 1 to the bank, warm)",
                        c.round_trips_ms,
                    ),
                    ("floor = sum of the above six", c.floor_ms),
                    (
                        "(not in floor) passkey assertion (1 for all n)",
                        c.passkey_assertion_ms,
                    ),
                ],
                ("ratio (c) = recover p50 ÷ floor", c.ratio_c),
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
    }
}

/// A limit's table: its measures in ms, then its ratio.
fn print_ms_rows(rows: &[(&str, f64)], (ratio_label, ratio): (&str, f64)) {
    let mut t = table(&["measure", "ms"]);
    for (k, v) in rows {
        t.add_row(vec![(*k).to_owned(), format!("{v:.3}")]);
    }
    t.add_row(vec![ratio_label.to_owned(), format!("{ratio:.1}")]);
    println!("{t}");
}

/// `dlocker-bench growth`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GrowthReport {
    pub(crate) machine: Machine,
    pub(crate) trustees: Vec<TrusteeRow>,
    pub(crate) stored: Vec<StoredRow>,
}

impl GrowthReport {
    pub(crate) fn print(&self) {
        self.machine.print();
        if !self.trustees.is_empty() {
            println!("\nlatency vs number of trustees (one client, sequential; ms)");
            let mut t = table(&[
                "n",
                "t",
                "backup p50",
                "backup p95",
                "verify p50",
                "recover p50 (excl. delay)",
                "recover p95 (excl. delay)",
                "recover p50 (total)",
                "errors",
            ]);
            for r in &self.trustees {
                t.add_row(vec![
                    r.trustees.to_string(),
                    r.threshold.to_string(),
                    format!("{:.1}", r.backup.p50_ms),
                    format!("{:.1}", r.backup.p95_ms),
                    format!("{:.1}", r.verify.p50_ms),
                    format!("{:.1}", r.recover_excluding_delay.p50_ms),
                    format!("{:.1}", r.recover_excluding_delay.p95_ms),
                    format!("{:.1}", r.recover_total.p50_ms),
                    (r.backup.errors + r.verify.errors + r.recover_total.errors).to_string(),
                ]);
            }
            println!("{t}");
        }
        if !self.stored.is_empty() {
            println!("\none node vs stored wallets (node as a separate trustee-node process)");
            let mut t = table(&[
                "wallets",
                "bulk load (s)",
                "load/s",
                "disk MiB",
                "disk B/wallet",
                "startup (s)",
                "RSS idle MiB",
                "ProveShare/s",
                "prove p50/p99 ms",
                "deposits/s",
                "deposit p50/p99 ms",
                "RSS after MiB",
                "RSS peak MiB",
            ]);
            for r in &self.stored {
                t.add_row(vec![
                    r.wallets.to_string(),
                    format!("{:.1}", r.load_secs),
                    format!("{:.0}", r.load_per_s),
                    format!("{:.0}", r.disk_bytes as f64 / 1024.0 / 1024.0),
                    format!("{:.0}", r.disk_bytes_per_wallet),
                    format!("{:.2}", r.startup_secs),
                    format!("{:.0}", r.rss_idle_mib),
                    format!("{:.0}", r.prove.throughput_per_s),
                    format!("{:.2}/{:.2}", r.prove.p50_ms, r.prove.p99_ms),
                    format!("{:.0}", r.deposit.throughput_per_s),
                    format!("{:.2}/{:.2}", r.deposit.p50_ms, r.deposit.p99_ms),
                    format!("{:.0}", r.rss_after_mib),
                    format!("{:.0}", r.rss_peak_mib),
                ]);
            }
            println!("{t}");
            let errs: Vec<String> = self
                .stored
                .iter()
                .flat_map(|r| [&r.prove, &r.deposit])
                .filter_map(|s| s.first_error.as_ref().map(|e| format!("{}: {e}", s.op)))
                .collect();
            if !errs.is_empty() {
                println!("errors: {}", errs.join("; "));
            }
        }
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

fn ops_table() -> Table {
    table(&[
        "operation",
        "ok",
        "errors",
        "per s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "node CPU ms/op",
        "client CPU ms/op",
    ])
}

fn op_row(s: &OpSummary) -> Vec<String> {
    let opt = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |x| format!("{x:.2}"));
    vec![
        s.op.clone(),
        s.count.to_string(),
        s.errors.to_string(),
        format!("{:.1}", s.throughput_per_s),
        format!("{:.2}", s.p50_ms),
        format!("{:.2}", s.p95_ms),
        format!("{:.2}", s.p99_ms),
        format!("{:.2}", s.max_ms),
        opt(s.node_cpu_ms_per_op),
        opt(s.client_cpu_ms_per_op),
    ]
}

pub(crate) fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
