//! `dlocker`: the command line for dLocker operators, bank staff, and the customer demo.
//!
//! Every command prints a human table by default and JSON with `--json`; on failure it exits
//! non-zero with one `error:` line (and a `hint:` line when there is a next step to suggest).

mod audit;
mod backup;
mod cluster;
mod demo;
mod docs;
mod node;
mod output;
mod owner;
mod resets;
mod staff;
mod web;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "dlocker",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DLOCKER_GIT_COMMIT"), ")"),
    about = "dLocker: social-recovery wallet backup — operator CLI and demo"
)]
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
    /// The wallet owner: erase the backup at every trustee (one passkey touch); each trustee
    /// returns a signed erasure receipt. Running it again completes a partial delete.
    Delete(owner::DeleteArgs),
    /// The wallet owner: close every open recovery session of the wallet at every trustee (one
    /// passkey touch), whoever opened it; each trustee lists the sessions it closed. For a
    /// recovery the owner did not start, or whose device is lost.
    CancelRecoveries(owner::CancelRecoveriesArgs),
    /// The wallet owner's passkey.
    #[command(subcommand)]
    Passkey(owner::PasskeyCommand),
    /// Bank staff keys.
    #[command(subcommand)]
    Staff(staff::StaffCommand),
    /// Bank staff: list, approve and cancel recoveries.
    #[command(subcommand)]
    Recoveries(staff::RecoveriesCommand),
    /// Bank staff: list and approve passkey reset requests (a customer who lost the passkey but
    /// still has the wallet).
    #[command(subcommand)]
    PasskeyResets(resets::PasskeyResetsCommand),
    /// A node's hash-chained audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// A node's event outbox (for notifiers).
    #[command(subcommand)]
    Events(audit::EventsCommand),
    /// Start a local in-process cluster and walk through backup, verification, device loss,
    /// recovery (bank approval by a staff key, passkey, waiting period) and a rotation to a new
    /// epoch (new secret, smaller trustee set).
    Demo(demo::DemoArgs),
    /// Serve the customer's wallet page (backup and recovery in the browser) for a trustees
    /// file, on loopback; prints the URL.
    Web(web::WebArgs),
    /// The document locker: a holder's documents and consents, fetch, verify, status lists.
    #[command(subcommand)]
    Docs(docs::DocsCommand),
    /// The locker's operator: list, approve and suspend issuers.
    #[command(subcommand)]
    Issuers(docs::RegistryCommand),
    /// The locker's operator: list, approve and suspend requesters.
    #[command(subcommand)]
    Requesters(docs::RegistryCommand),
    /// Print a shell completion script to stdout (`dlocker completions bash`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout (`dlocker man > dlocker.1`).
    Man,
}

/// `dlocker … | head` closes stdout early; `println!` then panics. A reader that stopped reading
/// is not an error of ours, so end quietly like other Unix tools instead of printing a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

#[tokio::main]
async fn main() -> ExitCode {
    quiet_on_broken_pipe();
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
        Command::Delete(a) => owner::run_delete(a, cli.json).await,
        Command::CancelRecoveries(a) => owner::run_cancel_recoveries(a, cli.json).await,
        Command::Passkey(c) => owner::run_passkey(c, cli.json).await,
        Command::Staff(c) => staff::run_staff(c, cli.json).await,
        Command::Recoveries(c) => staff::run_recoveries(c, cli.json).await,
        Command::PasskeyResets(c) => resets::run_staff(c, cli.json).await,
        Command::Audit(c) => audit::run_audit(c, cli.json).await,
        Command::Events(c) => audit::run_events(c, cli.json).await,
        Command::Demo(a) => demo::run(a, cli.json).await,
        Command::Web(a) => web::run(a, cli.json).await,
        Command::Docs(c) => docs::run_docs(c, cli.json).await,
        Command::Issuers(c) => docs::run_registry(c, true, cli.json).await,
        Command::Requesters(c) => docs::run_registry(c, false, cli.json).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "dlocker", &mut out);
            print_generated(&out).map_err(anyhow::Error::from)
        }
        Command::Man => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .and_then(|()| print_generated(&out))
                .map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::print_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Writes generated text (completions, man page) to stdout; a reader that stopped reading
/// (`| head`) is not an error.
fn print_generated(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}
