//! `dlocker-bench`: measures a dLocker cluster.
//!
//! - `dlocker-bench [run]`: C concurrent clients back up, verify and recover wallets through the
//!   SDK (staff approval automated, zero recovery delay), against a local in-process cluster it
//!   starts (default) or a running one (`--trustees FILE --staff-key FILE`); prints throughput,
//!   latency p50/p95/p99, node CPU per operation and bytes stored per wallet, then the physical
//!   limits measured in the same run and the ratios to them (see [`limits`]).
//! - `dlocker-bench growth`: latency for n = 3, 5, 7, 10 trustees, and one node's throughput and
//!   memory with 10k, 100k, 1M stored wallets (see [`growth`]).
//!
//! `--json` prints one JSON document on stdout; progress bars go to stderr.

mod growth;
mod limits;
mod local;
mod measure;
mod passkey;
mod report;
mod workload;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use dlocker_sdk::{BackupPolicy, StaffClient};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use workload::Budget;

#[derive(Debug, Parser)]
#[command(
    name = "dlocker-bench",
    version,
    about = "Load, limits and growth measurements of dLocker"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
    /// Local nodes keep their records in PostgreSQL at this connection string (a fresh schema
    /// per node, dropped at the end) instead of sled.
    #[arg(long, global = true, value_name = "URL")]
    postgres: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Backups, verifications and recoveries under load, then the limits (the default).
    Run(RunArgs),
    /// Latency vs number of trustees; node throughput and memory vs stored wallets.
    Growth(GrowthArgs),
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// Trustees file of a running cluster (default: start a local cluster in this process).
    #[arg(long, value_name = "FILE")]
    trustees: Option<PathBuf>,
    /// Bank staff key file (hex) that may approve recoveries on the running cluster.
    #[arg(long, value_name = "FILE", requires = "trustees")]
    staff_key: Option<PathBuf>,
    /// PIDs of the running cluster's nodes, for node CPU per operation.
    #[arg(long, value_delimiter = ',', requires = "trustees")]
    node_pids: Vec<u32>,
    /// Data directories of the running cluster's nodes, for bytes stored per wallet.
    #[arg(long, value_delimiter = ',', requires = "trustees")]
    node_dirs: Vec<PathBuf>,
    /// Nodes of the local cluster (the first is the bank).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=32))]
    nodes: u16,
    /// Servers per node of the local cluster: with 2 or more (PostgreSQL only), each node also
    /// runs as further replicas over its schema, listed as `replicas` in the trustees set.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    replicas: u16,
    /// Shares needed to recover.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=32))]
    threshold: u16,
    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 8)]
    clients: usize,
    /// Operations per phase: backups, then as many verifications and recoveries (recoveries:
    /// at most one per wallet backed up). Default 200 without --duration.
    #[arg(long)]
    count: Option<u64>,
    /// Time limit per phase, in seconds (with --count too: whichever comes first).
    #[arg(long, value_name = "SECS")]
    duration: Option<u64>,
    /// Phases to run (backups always run: the other phases use their wallets).
    #[arg(long, value_delimiter = ',', default_value = "backup,verify,recover")]
    ops: Vec<Op>,
    /// Bytes of wallet data per backup.
    #[arg(long, default_value_t = 64)]
    data_bytes: usize,
    /// The owner passkeys' attestation at backup: `software` (the SDK's software passkey, a
    /// packed self-attestation every trustee checks) or `platform` (format `none`, as a phone's
    /// passkey answers). Limit (a) storms with both whatever this says.
    #[arg(long, value_enum, default_value_t = passkey::PasskeyKind::Software)]
    passkey: passkey::PasskeyKind,
    /// Skip the limits.
    #[arg(long)]
    no_limits: bool,
    /// Deposits in the single-node storm of limit (a).
    #[arg(long, default_value_t = 2000)]
    storm_count: usize,
    /// Sequential backups for limit (b).
    #[arg(long, default_value_t = 30)]
    limit_backups: usize,
    /// Sequential recoveries for limit (c) (half through kept connections, half opening new
    /// ones).
    #[arg(long, default_value_t = 30)]
    limit_recoveries: usize,
    /// Worker threads of the in-process nodes' runtime.
    #[arg(long, default_value_t = 2)]
    node_threads: usize,
    /// Worker threads of the clients' runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// One JSON document on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Op {
    Backup,
    Verify,
    Recover,
}

#[derive(Debug, Clone, Args)]
struct GrowthArgs {
    /// Trustee counts to measure latency with (t = a majority).
    #[arg(long, value_delimiter = ',', default_value = "3,5,7,10")]
    trustees: Vec<usize>,
    /// Sequential samples per trustee count.
    #[arg(long, default_value_t = 10)]
    samples: u64,
    /// Stored-wallet sizes (cumulative, increasing).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    wallets: Vec<u64>,
    /// Skip the trustee-count part.
    #[arg(long)]
    no_trustees: bool,
    /// Skip the stored-wallets part.
    #[arg(long)]
    no_stored: bool,
    /// The trustee-node binary (default: next to dlocker-bench).
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// Concurrent clients for the stored-wallet storms.
    #[arg(long, short = 'c', default_value_t = 8)]
    clients: usize,
    /// New deposits measured at each size.
    #[arg(long, default_value_t = 1000)]
    deposits: usize,
    /// Seconds of possession proofs measured at each size.
    #[arg(long, default_value_t = 5)]
    prove_secs: u64,
    /// One JSON document on stdout.
    #[arg(long)]
    json: bool,
}

fn client_runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .thread_name("bench-client")
        .enable_all()
        .build()
        .context("building the client runtime")
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let quiet = false;
    let machine_before = report::Machine::read();
    let node_rt = local::node_runtime(args.node_threads.max(1))?;
    let client_rt = client_runtime(args.client_threads)?;
    let mut target = match &args.trustees {
        Some(file) => local::Target::external(
            file,
            args.staff_key.as_deref(),
            args.node_pids.clone(),
            args.node_dirs.clone(),
        )?,
        None => local::Target::start_local(
            &node_rt,
            usize::from(args.nodes),
            usize::from(args.replicas),
        )?,
    };
    let threshold = args
        .threshold
        .min(u16::try_from(target.set.len()).unwrap_or(u16::MAX));
    let budget = Budget {
        count: args.count.or(if args.duration.is_none() {
            Some(200)
        } else {
            None
        }),
        duration: args.duration.map(Duration::from_secs),
    };
    let set = Arc::new(target.set.clone());
    let cpu = target.cpu.clone();
    let staff = target
        .staff
        .take()
        .map(|k| Arc::new(StaffClient::new(k, set.bank())));
    let scratch = tempfile::Builder::new()
        .prefix("dlocker-bench-raw-")
        .tempdir()
        .context("creating a temporary directory")?;
    let clients = args.clients.max(1);
    let result = client_rt.block_on(async {
        let mut out = report::RunReport::new(
            &target.description,
            set.len(),
            threshold,
            clients,
            &args.ops_names(),
            args.data_bytes,
        );
        let policy = BackupPolicy {
            threshold,
            recovery_delay_secs: 0,
        };
        let tag = hex::encode(rand::random::<[u8; 4]>());
        let (wallets, backup, per_wallet) = workload::backups(
            set.clone(),
            &cpu,
            &target.dirs,
            clients,
            budget,
            policy,
            args.data_bytes,
            args.passkey,
            &tag,
            quiet,
        )
        .await?;
        out.bytes_per_wallet_per_node = per_wallet;
        out.phases.push(("backup".into(), backup));
        let wallets = Arc::new(wallets);
        if args.ops.contains(&Op::Verify) {
            let v =
                workload::verifications(set.clone(), &cpu, wallets.clone(), clients, budget, quiet)
                    .await?;
            out.phases.push(("verify".into(), v));
        }
        if args.ops.contains(&Op::Recover) {
            match &staff {
                Some(staff) => {
                    let wallets = Arc::try_unwrap(wallets).map_err(|_| {
                        anyhow::anyhow!("wallets still shared after the verify phase")
                    })?;
                    let r = workload::recoveries(
                        set.clone(),
                        &cpu,
                        staff.clone(),
                        wallets,
                        clients,
                        budget,
                        quiet,
                    )
                    .await?;
                    out.phases.push(("recover".into(), r));
                }
                None => out
                    .notes
                    .push("recoveries skipped: no --staff-key for the running cluster".into()),
            }
        }
        if !args.no_limits {
            let at = usize::from(set.len() > 1);
            out.deposit_limit = Some(
                limits::deposit_limit(
                    &set,
                    &cpu,
                    at,
                    clients,
                    args.storm_count,
                    threshold,
                    args.data_bytes,
                    scratch.path(),
                    quiet,
                )
                .await?,
            );
            out.backup_limit = Some(
                limits::backup_limit(
                    &set,
                    threshold,
                    args.data_bytes,
                    args.limit_backups,
                    args.passkey,
                )
                .await?,
            );
            match &staff {
                Some(staff) => {
                    out.recovery_limit = Some(
                        limits::recovery_limit(
                            &set,
                            staff,
                            threshold,
                            args.data_bytes,
                            args.limit_recoveries.div_ceil(2),
                            args.passkey,
                        )
                        .await?,
                    );
                }
                None => out
                    .notes
                    .push("limit (c) skipped: no --staff-key for the running cluster".into()),
            }
        }
        Ok::<_, anyhow::Error>(out)
    });
    target.shutdown(&node_rt)?;
    let mut out = result?;
    out.machine = machine_before;
    out.machine.load_after = report::Machine::read().load_before;
    if args.json {
        report::print_json(&out)
    } else {
        out.print();
        Ok(())
    }
}

impl RunArgs {
    fn ops_names(&self) -> Vec<String> {
        let mut v = vec!["backup".to_owned()];
        if self.ops.contains(&Op::Verify) {
            v.push("verify".into());
        }
        if self.ops.contains(&Op::Recover) {
            v.push("recover".into());
        }
        v
    }
}

fn growth(args: GrowthArgs) -> anyhow::Result<()> {
    let quiet = false;
    let machine = report::Machine::read();
    let node_rt = local::node_runtime(2)?;
    let client_rt = client_runtime(2)?;
    let trustees = if args.no_trustees {
        Vec::new()
    } else {
        growth::trustee_growth(&node_rt, &client_rt, &args.trustees, args.samples, quiet)?
    };
    let stored = if args.no_stored || args.wallets.is_empty() {
        Vec::new()
    } else {
        let bin = local::node_binary(args.node_bin.as_deref())?;
        growth::stored_growth(
            &node_rt,
            &client_rt,
            &args.wallets,
            &bin,
            args.clients.max(1),
            args.deposits,
            args.prove_secs,
            quiet,
        )?
    };
    let mut out = report::GrowthReport {
        machine,
        trustees,
        stored,
    };
    out.machine.load_after = report::Machine::read().load_before;
    if args.json {
        report::print_json(&out)
    } else {
        out.print();
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Some(url) = cli.postgres {
        let _ = local::POSTGRES_URL.set(url);
    }
    let mut res = match cli.cmd {
        Some(Cmd::Growth(g)) => growth(g),
        Some(Cmd::Run(r)) => run(r),
        None => run(cli.run),
    };
    if let Err(e) = local::drop_bench_schemas() {
        res = res.and(Err(e.context("dropping the benchmark's PostgreSQL schemas")));
    }
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dlocker-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
