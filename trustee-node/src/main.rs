//! `trustee-node`: initialise, serve and describe a dLocker trustee node.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use trustee_node::config::Role;
use trustee_node::config::edit::ConfigDoc;
use trustee_node::descriptor::NodeDescriptorInfo;
use trustee_node::init::{InitOptions, StaffSpec, init_node};

#[derive(Parser)]
#[command(
    name = "trustee-node",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DLOCKER_GIT_COMMIT"), ")"),
    about = "dLocker trustee node"
)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Trustee,
    Bank,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MigrateTarget {
    Postgres,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StorageArg {
    Sled,
    Postgres,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Trustee => Role::Trustee,
            RoleArg::Bank => Role::Bank,
        }
    }
}

#[derive(Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start; boxing the init options buys nothing"
)]
enum Command {
    /// Create keys and a documented config.toml in a new data directory.
    Init {
        /// Data directory (created if missing; refused if it already holds a node).
        #[arg(long)]
        data_dir: PathBuf,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Socket address to listen on, e.g. 127.0.0.1:7101.
        #[arg(long)]
        listen: SocketAddr,
        /// Role of the node.
        #[arg(long, value_enum, default_value_t = RoleArg::Trustee)]
        role: RoleArg,
        /// URL clients use to reach the node (default http://<listen>).
        #[arg(long)]
        endpoint: Option<String>,
        /// WebAuthn relying party id.
        #[arg(long, default_value = trustee_node::config::defaults::RP_ID)]
        rp_id: String,
        /// WebAuthn allowed origin (repeatable).
        #[arg(long = "origin", default_value = trustee_node::config::defaults::ORIGIN)]
        origins: Vec<String>,
        /// Bank approval public key (hex) this node accepts (repeatable).
        #[arg(long = "accept-bank-key", value_name = "HEX")]
        accept_bank_keys: Vec<String>,
        /// Bank role: a staff member, ID=PUBLIC_KEY_HEX[:role,role] (roles: viewer, approver,
        /// canceller; default approver,canceller). Repeatable.
        #[arg(long = "staff", value_name = "ID=HEX[:ROLES]")]
        staff: Vec<StaffSpec>,
        /// Bank role: distinct staff approvals needed (2 = "four eyes").
        #[arg(long)]
        approvals_required: Option<u32>,
        /// Shortest recovery delay this node applies, in seconds.
        #[arg(long)]
        recovery_delay_floor: Option<u64>,
        /// TLS certificate chain (PEM; relative paths are relative to the data directory).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Client CA (PEM): require client certificates it signed (mutual TLS).
        #[arg(long, requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
        /// Serve plaintext on a non-loopback --listen address (only behind a TLS-terminating
        /// proxy; without it, init refuses such an address unless TLS is configured).
        #[arg(long, conflicts_with = "tls_cert")]
        insecure_plaintext: bool,
        /// Where records are kept: sled (embedded, in the data directory) or postgres.
        #[arg(long, value_enum, default_value_t = StorageArg::Sled)]
        storage: StorageArg,
        /// PostgreSQL connection string, e.g. "host=db.internal user=dlocker dbname=dlocker"
        /// (written into config.toml; prefer --postgres-url-file when it holds a password).
        #[arg(long, conflicts_with = "postgres_url_file")]
        postgres_url: Option<String>,
        /// A file holding the PostgreSQL connection string (relative to the data directory).
        #[arg(long)]
        postgres_url_file: Option<PathBuf>,
        /// The PostgreSQL schema for this node's tables (default "dlocker"); replicas of one
        /// node share it, different nodes must not.
        #[arg(long)]
        postgres_schema: Option<String>,
        /// CA certificates (PEM) to verify the database server with: TLS required, the server's
        /// name checked (relative to the data directory).
        #[arg(long)]
        postgres_tls_ca_file: Option<PathBuf>,
    },
    /// Edit config.toml (restart the node afterwards).
    Config {
        #[command(subcommand)]
        edit: ConfigEdit,
    },
    /// Serve the node until SIGTERM or Ctrl-C.
    Serve {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Print the node's descriptor (from disk, without serving).
    Show {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move a stopped node's records from its embedded sled database to PostgreSQL: every table
    /// copied, read back and compared (rows and SHA-256), then config.toml switched to the
    /// schema; the sled files are kept aside in DATA_DIR/db.migrated-to-postgres.
    Migrate {
        /// Data directory of the stopped node.
        #[arg(long)]
        data_dir: PathBuf,
        /// The backend to move to.
        #[arg(long, value_enum)]
        to: MigrateTarget,
        /// PostgreSQL connection string (written into config.toml; prefer --postgres-url-file
        /// when it holds a password).
        #[arg(
            long,
            conflicts_with = "postgres_url_file",
            required_unless_present = "postgres_url_file"
        )]
        postgres_url: Option<String>,
        /// A file holding the PostgreSQL connection string (relative to the data directory).
        #[arg(long)]
        postgres_url_file: Option<PathBuf>,
        /// The schema to move into: new or empty (a schema that holds records is refused).
        #[arg(long, default_value = "dlocker")]
        postgres_schema: String,
        /// CA certificates (PEM) to verify the database server with: TLS required, the server's
        /// name checked (relative to the data directory).
        #[arg(long)]
        postgres_tls_ca_file: Option<PathBuf>,
    },
    /// Read a stopped node's database: counts, sizes, oldest pending items, wallets.
    Admin {
        #[command(subcommand)]
        what: AdminCommand,
    },
    /// Print a shell completion script to stdout (`trustee-node completions bash`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout (`trustee-node man > trustee-node.1`).
    Man,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Counts and sizes: wallets, pending ceremonies, recovery sessions by state, staged epochs,
    /// events, audit entries, database size.
    Stats {
        /// Data directory (the node must be stopped; a running node's figures are on /metrics).
        #[arg(long)]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every wallet this node holds a deposit for, oldest first.
    Wallets {
        /// Data directory (the node must be stopped).
        #[arg(long)]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn print_stats(s: &trustee_node::db::stats::DbStats, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    let when = |t: Option<u64>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
    println!("database size         {} bytes", s.db_size_bytes);
    println!("wallets               {}", s.wallets);
    println!("wallet blob bytes     {}", s.wallet_blob_bytes);
    println!("oldest deposit at     {}", when(s.oldest_deposit_at));
    println!("newest deposit at     {}", when(s.newest_deposit_at));
    println!("pending ceremonies    {}", s.pending_ceremonies);
    println!(
        "oldest pending at     {}",
        when(s.oldest_pending_ceremony_at)
    );
    for (state, n) in &s.recovery_sessions {
        println!("sessions {state:<20} {n}");
    }
    println!("sessions prunable     {}", s.recovery_sessions_prunable);
    println!("unconfirmed backups   {}", s.unconfirmed_backups);
    println!("oldest unconfirmed at {}", when(s.oldest_unconfirmed_at));
    println!("unconfirmed expired   {}", s.unconfirmed_backups_expired);
    println!("epochs staged         {}", s.epochs_staged);
    println!("events                {}", s.events);
    println!("audit entries         {}", s.audit_entries);
    Ok(())
}

#[derive(Subcommand)]
enum ConfigEdit {
    /// Accept approvals and cancellations signed by this bank approval key.
    AcceptBankKey {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The bank approval public key, hex SEC1.
        key: String,
        /// The bank node whose approvals this key signs (its node id, from `trustee-node show`
        /// on the bank). Required once the node accepts more than one bank.
        #[arg(long, value_name = "NODE_ID")]
        bank_node_id: Option<String>,
    },
    /// Know this trustee: accept its attestation of a wallet's credential when this node joins
    /// the wallet by rotation.
    AcceptTrusteeKey {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The trustee's identity public key, hex SEC1 (`trustee-node show` on that node).
        key: String,
    },
    /// Add a staff member (bank role).
    AddStaff {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Staff id (appears in approvals and the audit log).
        #[arg(long)]
        id: String,
        /// The staff member's public key, hex SEC1 (`dlocker staff keygen` prints it).
        #[arg(long)]
        public_key: String,
        /// Comma-separated roles: viewer, approver, canceller, admin, operator.
        #[arg(long, default_value = "approver,canceller")]
        roles: String,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: a log file or the journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

fn print_descriptor(d: &NodeDescriptorInfo, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(d)?);
    } else {
        println!("name        {}", d.name);
        println!("role        {}", d.role);
        println!("node_id     {}", d.node_id);
        println!("endpoint    {}", d.endpoint);
        println!("public_key  {}", d.public_key);
        if let Some(k) = &d.bank_approval_key {
            println!("bank_approval_key  {k}");
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "trustee-node", &mut out);
            print_generated(&out).map_err(anyhow::Error::from)
        }
        Command::Man => {
            use clap::CommandFactory as _;
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            print_generated(&out).map_err(anyhow::Error::from)
        }
        Command::Init {
            data_dir,
            name,
            listen,
            role,
            endpoint,
            rp_id,
            origins,
            accept_bank_keys,
            staff,
            approvals_required,
            recovery_delay_floor,
            tls_cert,
            tls_key,
            tls_client_ca,
            insecure_plaintext,
            storage,
            postgres_url,
            postgres_url_file,
            postgres_schema,
            postgres_tls_ca_file,
        } => {
            let postgres = match storage {
                StorageArg::Sled => {
                    if postgres_url.is_some()
                        || postgres_url_file.is_some()
                        || postgres_schema.is_some()
                        || postgres_tls_ca_file.is_some()
                    {
                        anyhow::bail!("--postgres-* options need --storage postgres");
                    }
                    None
                }
                StorageArg::Postgres => Some(trustee_node::init::InitPostgres {
                    url: postgres_url,
                    url_file: postgres_url_file,
                    schema: postgres_schema,
                    tls_ca_file: postgres_tls_ca_file,
                }),
            };
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(trustee_node::init::InitTls {
                    cert,
                    key,
                    client_ca: tls_client_ca,
                }),
                _ => None,
            };
            let opts = InitOptions {
                data_dir: data_dir.clone(),
                name,
                listen,
                role: role.into(),
                endpoint,
                rp_id,
                origins,
                accept_bank_keys,
                staff,
                approvals_required,
                recovery_delay_floor_secs: recovery_delay_floor,
                tls,
                insecure_plaintext,
                postgres,
            };
            let d = init_node(&opts).context("init failed")?;
            println!("initialised trustee node in {}", data_dir.display());
            print_descriptor(&d, false)
        }
        Command::Config { edit } => match edit {
            ConfigEdit::AcceptBankKey {
                data_dir,
                key,
                bank_node_id,
            } => {
                let mut doc = ConfigDoc::load(&data_dir)?;
                let entry = match &bank_node_id {
                    Some(id) => format!("{id}={key}"),
                    None => key.clone(),
                };
                if doc.accept_bank_key(&entry)? {
                    doc.save(&data_dir)?;
                    println!("accepted bank approval key {key}; restart the node to apply");
                } else {
                    println!("bank approval key {key} was already accepted");
                }
                Ok(())
            }
            ConfigEdit::AcceptTrusteeKey { data_dir, key } => {
                let mut doc = ConfigDoc::load(&data_dir)?;
                if doc.accept_trustee_key(&key)? {
                    doc.save(&data_dir)?;
                    println!("accepted trustee key {key}; restart the node to apply");
                } else {
                    println!("trustee key {key} was already accepted");
                }
                Ok(())
            }
            ConfigEdit::AddStaff {
                data_dir,
                id,
                public_key,
                roles,
            } => {
                let roles = roles
                    .split(',')
                    .map(trustee_node::config::parse_staff_role)
                    .collect::<Result<Vec<_>, _>>()?;
                // Once `dlocker staff` changed the staff, the stored roster is authoritative and
                // this file's staff are ignored: refuse rather than edit something without effect.
                let running = match trustee_node::db::stats::staff_roster_is_managed(&data_dir) {
                    Ok(true) => anyhow::bail!(
                        "staff on this node are managed with `dlocker staff` (stored in its \
                         database), so `config add-staff` would have no effect: use `dlocker \
                         staff add --id {id} --public-key {public_key} --roles {} --trustees FILE \
                         --key ADMIN_KEY`",
                        roles_arg(&roles)
                    ),
                    Err(trustee_node::db::stats::DbStatsError::InUse(_)) => true,
                    // No database yet, or a config this edit may be fixing: the file seeds.
                    Ok(false) | Err(_) => false,
                };
                let mut doc = ConfigDoc::load(&data_dir)?;
                doc.add_staff(&id, &public_key, &roles)?;
                doc.save(&data_dir)?;
                if running {
                    println!(
                        "added staff member {id} to config.toml; send SIGHUP to apply (if staff \
                         are managed with `dlocker staff`, the node ignores it and logs so: use \
                         `dlocker staff add` instead)"
                    );
                } else {
                    println!("added staff member {id}; restart the node (or send SIGHUP) to apply");
                }
                Ok(())
            }
        },
        Command::Serve { data_dir } => trustee_node::server::serve(&data_dir, shutdown_signal())
            .await
            .with_context(|| format!("serving {}", data_dir.display())),
        Command::Migrate {
            data_dir,
            to: MigrateTarget::Postgres,
            postgres_url,
            postgres_url_file,
            postgres_schema,
            postgres_tls_ca_file,
        } => {
            use trustee_node::db::migrate::{PostgresUrl, sled_to_postgres};
            let url = match (postgres_url, postgres_url_file) {
                (Some(u), _) => PostgresUrl::Inline(u),
                (None, Some(f)) => PostgresUrl::File(f),
                (None, None) => anyhow::bail!("give --postgres-url or --postgres-url-file"),
            };
            let report = sled_to_postgres(
                &data_dir,
                &url,
                &postgres_schema,
                postgres_tls_ca_file.as_deref(),
            )
            .with_context(|| format!("migrating {}", data_dir.display()))?;
            let rows: usize = report.tables.iter().map(|t| t.rows).sum();
            println!(
                "copied {rows} rows in {} tables into PostgreSQL schema {}; each table read back and compared:",
                report.tables.len(),
                report.schema
            );
            for t in &report.tables {
                println!(
                    "  {:<28} {:>8} rows  sha256 {}…",
                    t.table,
                    t.rows,
                    &t.digest[..16]
                );
            }
            println!(
                "config.toml now names PostgreSQL; the sled files are kept in {} (delete them once the node serves correctly)",
                report.sled_moved_to.display()
            );
            Ok(())
        }
        Command::Admin { what } => match what {
            AdminCommand::Stats { data_dir, json } => {
                let s = trustee_node::db::stats::stats(&data_dir, unix_now())?;
                print_stats(&s, json)
            }
            AdminCommand::Wallets { data_dir, json } => {
                let rows = trustee_node::db::stats::wallets(&data_dir)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    println!("wallet\tepoch\tshare_index\tenrolled_at\tblob_bytes");
                    for r in &rows {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            r.wallet_id, r.epoch, r.share_index, r.enrolled_at, r.blob_bytes
                        );
                    }
                }
                Ok(())
            }
        },
        Command::Show { data_dir, json } => {
            let d = NodeDescriptorInfo::load(&data_dir)
                .with_context(|| format!("reading {}", data_dir.display()))?;
            print_descriptor(&d, json)
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format;
    init_logging(format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            match format {
                // One JSON line like every other log line, for collectors that parse them.
                LogFormat::Json => {
                    tracing::error!(error = %format!("{e:#}"), "trustee-node: fatal")
                }
                LogFormat::Text => eprintln!("trustee-node: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Roles as `--roles` takes them.
fn roles_arg(roles: &[trustee_node::staff::auth::StaffRole]) -> String {
    roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")
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
