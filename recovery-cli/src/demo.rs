//! `dlocker demo`: a whole dLocker deployment in one process, for a first look.
//!
//! Real `trustee-node` servers (tonic gRPC on loopback, sled storage, each in its own data
//! directory) are started in-process; the customer side is the SDK with a software passkey.
//! The demo never prints the wallet secret.

use crate::backup::{print_report, require_healthy as require_verified, verify};
use crate::cluster::{print_health, probe_all, require_healthy};
use crate::output::{hinted, print_json, progress, short, table};
use anyhow::Context as _;
use clap::Args;
use dlocker_sdk::{
    BackupPolicy, BackupReceipts, PreparedBackup, ProgressEvent, Role, SoftwareAuthenticator, TlsFiles, TrusteeInfo,
    TrusteeSet, VerifyReport,
};
use rand::RngExt as _;
use serde::Serialize;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Instant;
use trustee_node::config::Role as NodeRole;
use trustee_node::init::{InitOptions, init_node};
use trustee_node::server::{RunningNode, spawn};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Number of trustee nodes (the first is the bank).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=32))]
    nodes: u16,
    /// Shares needed to recover (at least 2: no single node may rebuild the secret).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=32))]
    threshold: u16,
    /// Recovery delay written into the manifest, in seconds.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    recovery_delay: u64,
    /// Directory for the nodes' data and the trustees file (kept afterwards). Default: a
    /// temporary directory, removed at the end unless --keep.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the temporary directory (node data, trustees file, manifest) after the demo.
    #[arg(long)]
    keep: bool,
}

/// Prints the walk-through: to stdout normally, to stderr under `--json` (stdout is the summary).
struct Narrator {
    json: bool,
}

impl Narrator {
    fn say(&self, line: impl AsRef<str>) {
        if self.json {
            eprintln!("{}", line.as_ref());
        } else {
            println!("{}", line.as_ref());
        }
    }
    fn step(&self, n: usize, of: usize, title: &str) {
        self.say(format!("\n[{n}/{of}] {title}"));
    }
}

const STEPS: usize = 6;

#[derive(Serialize)]
struct ReceiptJson {
    trustee: String,
    node_id: String,
    share_index: u16,
    issued_at: u64,
}

#[derive(Serialize)]
struct DemoSummary {
    ok: bool,
    dir: Option<String>,
    trustees_file: Option<String>,
    manifest_file: Option<String>,
    wallet_id: String,
    threshold: u16,
    nodes: usize,
    manifest_hash: String,
    receipts: Vec<ReceiptJson>,
    verify: VerifyReport,
    elapsed_ms: u128,
}

/// A small word list: the demo secret only has to look like a seed phrase.
const WORDS: &[&str] = &[
    "anchor", "banner", "candle", "dragon", "ember", "falcon", "garden", "harbor", "island", "jungle", "kettle",
    "lantern", "meadow", "needle", "orbit", "pepper", "quartz", "river", "saddle", "timber", "umbrella", "velvet",
    "walnut", "xenon", "yonder", "zephyr", "atlas", "breeze", "cobalt", "delta", "echo", "fable",
];

fn demo_seed_words() -> Vec<u8> {
    let mut rng = rand::rng();
    let words: Vec<&str> = (0..12).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect();
    words.join(" ").into_bytes()
}

/// Distinct free loopback ports (all held open while choosing so they differ).
fn free_ports(n: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("finding free loopback ports")?;
    listeners.iter().map(|l| l.local_addr().context("reading a bound port")).collect()
}

fn prepare_dir(args: &DemoArgs) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &args.dir {
        Some(dir) => {
            let non_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
            if non_empty {
                return Err(hinted(
                    format!("{} is not empty", dir.display()),
                    "pass a new or empty --dir (the demo never overwrites node data)",
                ));
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok((dir.clone(), None))
        }
        None => {
            let tmp =
                tempfile::Builder::new().prefix("dlocker-demo-").tempdir().context("creating a temporary directory")?;
            Ok((tmp.path().to_owned(), Some(tmp)))
        }
    }
}

/// Initialises and starts `n` nodes; returns them (started ones, even on error, via `running`).
async fn start_cluster(dir: &Path, n: usize, running: &mut Vec<RunningNode>) -> anyhow::Result<TrusteeSet> {
    let addrs = free_ports(n)?;
    let mut infos = Vec::with_capacity(n);
    for (i, addr) in addrs.into_iter().enumerate() {
        let (name, role) = if i == 0 {
            ("bank".to_owned(), NodeRole::Bank)
        } else {
            (format!("trustee-{}", i + 1), NodeRole::Trustee)
        };
        let node_dir = dir.join(format!("node-{}", i + 1));
        let desc = init_node(&InitOptions::new(node_dir.clone(), name.clone(), addr, role))
            .with_context(|| format!("initialising node {name} in {}", node_dir.display()))?;
        let node = spawn(&node_dir).await.with_context(|| format!("starting node {name} on {addr}"))?;
        let endpoint = node.url();
        running.push(node);
        let public_key = dlocker_proto::keys::public_key_from_hex(&desc.public_key)
            .map_err(|e| anyhow::anyhow!("node {name} reported an invalid key: {e}"))?;
        infos.push(TrusteeInfo {
            node_id: dlocker_proto::keys::node_id(&public_key),
            name,
            endpoint,
            public_key,
            role: if i == 0 { Role::Bank } else { Role::Trustee },
            tls: TlsFiles::default(),
        });
    }
    Ok(TrusteeSet::new(infos)?)
}

async fn stop_cluster(running: Vec<RunningNode>) -> Result<usize, String> {
    let n = running.len();
    let results = futures::future::join_all(running.into_iter().map(RunningNode::shutdown)).await;
    let errors: Vec<String> = results.into_iter().filter_map(|r| r.err().map(|e| e.to_string())).collect();
    if errors.is_empty() { Ok(n) } else { Err(errors.join("; ")) }
}

fn print_receipts(receipts: &BackupReceipts) {
    let mut t = table(&["Trustee", "Share", "Node id", "Issued at (unix)", "Manifest hash"]);
    for r in &receipts.receipts {
        t.add_row(vec![
            r.name.clone(),
            r.share_index.to_string(),
            short(&r.node_id),
            r.receipt.body().issued_at.to_string(),
            short(&r.receipt.body().manifest_hash.to_string()),
        ]);
    }
    println!("{t}");
}

struct Outcome {
    wallet_id: String,
    manifest_hash: String,
    manifest_file: PathBuf,
    receipts: BackupReceipts,
    verify: VerifyReport,
}

/// Steps 2–5, against a running cluster.
async fn walk_through(
    say: &Narrator,
    args: &DemoArgs,
    dir: &Path,
    set: &TrusteeSet,
    json: bool,
) -> anyhow::Result<Outcome> {
    let n = set.len();
    say.step(2, STEPS, "Cluster health: grpc.health.v1, GetInfo and the pinned key of every node");
    let health = probe_all(set, json).await;
    if !json {
        print_health(&health);
    }
    require_healthy(&health)?;
    say.say(format!("  all {n} nodes serving and presenting their pinned keys"));

    say.step(3, STEPS, "Creating the customer's wallet secret");
    let wallet_id = format!("demo-wallet-{}", hex::encode(rand::rng().random::<[u8; 4]>()));
    let seed = zeroize::Zeroizing::new(demo_seed_words());
    say.say(format!("  wallet id {wallet_id}: 12 random demo seed words ({} bytes; never printed)", seed.len()));

    say.step(
        4,
        STEPS,
        &format!(
            "Backing up {}-of-{n}: fresh random secret k, Feldman shares, encrypted blob, one passkey per trustee",
            args.threshold
        ),
    );
    say.say("  (software passkey: for demos and tests only, NOT FOR PRODUCTION)");
    let policy = BackupPolicy { threshold: args.threshold, recovery_delay_secs: args.recovery_delay };
    let prepared = PreparedBackup::new(set, &wallet_id, &seed, policy)?;
    let mut auth = SoftwareAuthenticator::new();
    let pb = progress(n, "enrolling at trustees", json);
    let on_progress = |e: ProgressEvent| match e {
        ProgressEvent::TrusteeDone { .. } | ProgressEvent::TrusteeFailed { .. } => pb.inc(1),
        ProgressEvent::PasskeyRequested { name } => pb.set_message(format!("passkey for {name}")),
        ProgressEvent::TrusteeStarted { .. } => {}
    };
    let result = dlocker_sdk::backup(set, &prepared, "demo-customer", &mut auth, &on_progress).await;
    pb.finish_and_clear();
    let receipts = result.map_err(|e| hinted(e.to_string(), "run with RUST_LOG=info to see the nodes' logs"))?;
    if !json {
        print_receipts(&receipts);
    }
    let manifest_file = dir.join(format!("{wallet_id}.manifest"));
    std::fs::write(&manifest_file, prepared.manifest_bytes())
        .with_context(|| format!("writing {}", manifest_file.display()))?;
    say.say(format!(
        "  {n} of {n} receipts verified (signed by each pinned key, for this wallet, epoch, share and manifest {})",
        short(&prepared.manifest_hash().to_string())
    ));
    say.say(format!("  manifest saved to {}", manifest_file.display()));

    say.step(5, STEPS, "Verifying the backup: each trustee proves it holds its share, without revealing it");
    let report = verify(set, prepared.manifest(), json).await;
    if !json {
        print_report(&report);
    }
    require_verified(&report)?;

    Ok(Outcome {
        wallet_id,
        manifest_hash: prepared.manifest_hash().to_string(),
        manifest_file,
        receipts,
        verify: report,
    })
}

pub(crate) async fn run(args: DemoArgs, json: bool) -> anyhow::Result<()> {
    if args.threshold > args.nodes {
        return Err(hinted(
            format!("threshold {} is larger than the number of nodes {}", args.threshold, args.nodes),
            "use --threshold ≤ --nodes",
        ));
    }
    let started = Instant::now();
    let say = Narrator { json };
    let (dir, tmp) = prepare_dir(&args)?;
    let n = usize::from(args.nodes);
    say.say(format!("dLocker demo: {n} trustee nodes, {}-of-{n} backup of a wallet secret", args.threshold));
    say.say(format!("data directory: {}", dir.display()));

    say.step(
        1,
        STEPS,
        &format!("Starting {n} trustee nodes in-process (real gRPC servers on 127.0.0.1, sled storage)"),
    );
    let mut running = Vec::new();
    let cluster = start_cluster(&dir, n, &mut running).await;
    let result = match cluster {
        Ok(set) => {
            let trustees_file = dir.join("trustees.toml");
            let text = format!(
                "# Trustees of the `dlocker demo` cluster. Each public_key is PINNED: the SDK refuses a node\n\
                 # presenting any other key. Share i goes to the i-th [[trustee]].\n\n{}",
                set.to_toml()
            );
            let written = std::fs::write(&trustees_file, text)
                .with_context(|| format!("writing {}", trustees_file.display()));
            match written {
                Ok(()) => {
                    if !json {
                        let mut t = table(&["Node", "Role", "Endpoint", "Node id", "Public key"]);
                        for i in set.trustees() {
                            t.add_row(vec![
                                i.name.clone(),
                                i.role.to_string(),
                                i.endpoint.clone(),
                                short(&i.node_id),
                                short(&dlocker_proto::keys::public_key_hex(&i.public_key)),
                            ]);
                        }
                        println!("{t}");
                    }
                    say.say(format!("  trustees file (pins each node's key): {}", trustees_file.display()));
                    walk_through(&say, &args, &dir, &set, json).await.map(|o| (o, trustees_file))
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };

    // Always stop what was started, even when a step failed.
    say.step(6, STEPS, "Stopping the cluster (graceful shutdown, databases flushed)");
    let stopped = stop_cluster(running).await;
    match &stopped {
        Ok(count) => say.say(format!("  {count} nodes stopped cleanly")),
        Err(e) => say.say(format!("  shutdown problem: {e}")),
    }
    let (outcome, trustees_file) = result?;
    stopped.map_err(|e| anyhow::anyhow!("cluster did not shut down cleanly: {e}"))?;

    let kept_dir = match tmp {
        Some(tmp) if args.keep => Some(tmp.keep()),
        Some(_) => None,
        None => Some(dir.clone()),
    };
    say.say(format!(
        "\nDemo complete: wallet {} is backed up {}-of-{n} and all {n} trustees proved they hold their shares ({:.1}s).",
        outcome.wallet_id,
        args.threshold,
        started.elapsed().as_secs_f64()
    ));
    match &kept_dir {
        Some(d) => say.say(format!(
            "Kept {}. Restart nodes with `trustee-node serve --data-dir {}/node-1` (etc.), then e.g. `dlocker backup verify --trustees {} --manifest {}`.",
            d.display(),
            d.display(),
            trustees_file.display(),
            outcome.manifest_file.display()
        )),
        None => say.say("Temporary data removed (pass --keep or --dir to keep it)."),
    }
    if json {
        print_json(&DemoSummary {
            ok: true,
            dir: kept_dir.as_ref().map(|d| d.display().to_string()),
            trustees_file: kept_dir.as_ref().map(|_| trustees_file.display().to_string()),
            manifest_file: kept_dir.as_ref().map(|_| outcome.manifest_file.display().to_string()),
            wallet_id: outcome.wallet_id,
            threshold: args.threshold,
            nodes: n,
            manifest_hash: outcome.manifest_hash,
            receipts: outcome
                .receipts
                .receipts
                .iter()
                .map(|r| ReceiptJson {
                    trustee: r.name.clone(),
                    node_id: r.node_id.clone(),
                    share_index: r.share_index,
                    issued_at: r.receipt.body().issued_at,
                })
                .collect(),
            verify: outcome.verify,
            elapsed_ms: started.elapsed().as_millis(),
        })?;
    }
    Ok(())
}
