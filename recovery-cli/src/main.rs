//! `dlocker`: the command line for dLocker operators, bank staff, and the customer demo.
//!
//! Every command prints a human table by default and JSON with `--json`; on failure it exits
//! non-zero with one `error:` line (and a `hint:` line when there is a next step to suggest).

mod backup;
mod cluster;
mod demo;
mod node;
mod output;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "dlocker", version, about = "dLocker: social-recovery wallet backup — operator CLI and demo")]
struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect a single trustee node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Check a whole set of trustees.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Work with wallet backups.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Start a local in-process cluster and walk through a backup with verification.
    Demo(demo::DemoArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs (including the demo's in-process nodes) only when asked for: stdout is for results.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(c) => node::run(c, cli.json).await,
        Command::Cluster(c) => cluster::run(c, cli.json).await,
        Command::Backup(c) => backup::run(c, cli.json).await,
        Command::Demo(a) => demo::run(a, cli.json).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
