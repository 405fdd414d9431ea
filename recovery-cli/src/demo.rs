//! `dlocker demo`: a whole dLocker deployment in one process, for a first look.
//!
//! Real `trustee-node` servers (tonic gRPC on loopback, sled storage, each in its own data
//! directory) are started in-process; the customer side is the SDK with a software passkey.
//! The demo never prints the wallet secret.

use crate::backup::{print_epochs, print_report, require_healthy as require_verified, verify};
use crate::cluster::{print_health, probe_all, require_healthy};
use crate::output::{hinted, print_json, progress, short, table};
use anyhow::Context as _;
use clap::Args;
use dlocker_sdk::{
    BackupPolicy, BackupReceipts, PreparedBackup, RecoverEvent, RecoverOptions, Role,
    SoftwareAuthenticator, StaffClient, StaffKey, TlsFiles, TrusteeInfo, TrusteeSet, VerifyReport,
    protocol::ProgressEvent,
};
use rand::RngExt as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;
use std::time::Instant;
use trustee_node::config::Role as NodeRole;
use trustee_node::config::edit::ConfigDoc;
use trustee_node::init::{InitOptions, StaffSpec, init_node};
use trustee_node::server::{RunningNode, spawn};
use trustee_node::staff::auth::StaffRole;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Number of trustee nodes (the first is the bank).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=32))]
    pub(crate) nodes: u16,
    /// Shares needed to recover (at least 2: no single node may rebuild the secret).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=32))]
    threshold: u16,
    /// Recovery delay written into the manifest, in seconds (the waiting period before any
    /// trustee releases a share; days in production).
    #[arg(long, default_value_t = 3, value_name = "SECS")]
    recovery_delay: u64,
    /// Directory for the nodes' data and the trustees file (kept afterwards). Default: a
    /// temporary directory, removed at the end unless --keep.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the temporary directory (node data, trustees file, manifest) after the demo.
    #[arg(long)]
    pub(crate) keep: bool,
    /// Start the cluster and the wallet page (`dlocker web`) instead of the scripted walk-through;
    /// prints the URL and runs until Ctrl-C.
    #[arg(long)]
    pub(crate) web: bool,
    /// With --web: where the wallet page listens (loopback).
    #[arg(long, default_value = crate::web::DEFAULT_LISTEN, value_name = "ADDR", requires = "web")]
    pub(crate) web_listen: SocketAddr,
}

/// Prints the walk-through: to stdout normally, to stderr under `--json` (stdout is the summary).
#[derive(Debug, Clone, Copy)]
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

const STEPS: usize = 10;

/// The demo's bank staff member.
pub(crate) const STAFF_ID: &str = "alice";

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
    recovery: RecoveryJson,
    rotation: RotationJson,
    touches: Touches,
    elapsed_ms: u128,
}

#[derive(Serialize)]
struct RotationJson {
    from_epoch: u64,
    to_epoch: u64,
    threshold: u16,
    trustees: Vec<String>,
    retired: Vec<String>,
    new_k: bool,
    manifest_hash: String,
    previous_manifest_hash: String,
    verify: VerifyReport,
    epochs: Vec<dlocker_sdk::protocol::TrusteeEpochs>,
    elapsed_ms: u128,
}

#[derive(Serialize)]
struct RecoveryJson {
    sessions: Vec<dlocker_sdk::TrusteeSession>,
    approvers: Vec<String>,
    used: Vec<String>,
    faulty: Vec<(String, String)>,
    unavailable: Vec<(String, String)>,
    data_sha256: String,
    matches_original: bool,
    elapsed_ms: u128,
    waiting_ms: u128,
}

/// A small word list: the demo secret only has to look like a seed phrase.
const WORDS: &[&str] = &[
    "anchor", "banner", "candle", "dragon", "ember", "falcon", "garden", "harbor", "island",
    "jungle", "kettle", "lantern", "meadow", "needle", "orbit", "pepper", "quartz", "river",
    "saddle", "timber", "umbrella", "velvet", "walnut", "xenon", "yonder", "zephyr", "atlas",
    "breeze", "cobalt", "delta", "echo", "fable",
];

fn demo_seed_words() -> Vec<u8> {
    let mut rng = rand::rng();
    let words: Vec<&str> = (0..12)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    words.join(" ").into_bytes()
}

/// Distinct free loopback ports (all held open while choosing so they differ).
pub(crate) fn free_ports(n: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("finding free loopback ports")?;
    listeners
        .iter()
        .map(|l| l.local_addr().context("reading a bound port"))
        .collect()
}

pub(crate) fn prepare_dir(args: &DemoArgs) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &args.dir {
        Some(dir) => {
            let non_empty = std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
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
            let tmp = tempfile::Builder::new()
                .prefix("dlocker-demo-")
                .tempdir()
                .context("creating a temporary directory")?;
            Ok((tmp.path().to_owned(), Some(tmp)))
        }
    }
}

/// Initialises and starts `n` nodes; returns them (started ones, even on error, via `running`).
///
/// The bank node (first) lists `staff_public_key` as staff (approver, canceller; one approval
/// required) and every node, the bank included, accepts the bank's approval key.
pub(crate) async fn start_cluster(
    dir: &Path,
    n: usize,
    staff_public_key: &str,
    web_origin: Option<&str>,
    running: &mut Vec<RunningNode>,
) -> anyhow::Result<TrusteeSet> {
    let addrs = free_ports(n)?;
    let mut infos = Vec::with_capacity(n);
    let mut bank_approval_key: Option<String> = None;
    let mut inited = Vec::with_capacity(n);
    for (i, addr) in addrs.into_iter().enumerate() {
        let (name, role) = if i == 0 {
            ("bank".to_owned(), NodeRole::Bank)
        } else {
            (format!("trustee-{}", i + 1), NodeRole::Trustee)
        };
        let node_dir = dir.join(format!("node-{}", i + 1));
        let mut opts = InitOptions::new(node_dir.clone(), name.clone(), addr, role);
        // `--web`: the wallet page's origin may run passkey ceremonies (and gRPC-Web follows).
        opts.origins.extend(web_origin.map(str::to_owned));
        if i == 0 {
            opts.staff = vec![StaffSpec {
                id: STAFF_ID.to_owned(),
                public_key: staff_public_key.to_owned(),
                roles: vec![
                    StaffRole::Approver,
                    StaffRole::Canceller,
                    StaffRole::Operator,
                ],
            }];
            opts.approvals_required = Some(1);
        }
        opts.accept_bank_keys = bank_approval_key.iter().cloned().collect();
        let desc = init_node(&opts)
            .with_context(|| format!("initialising node {name} in {}", node_dir.display()))?;
        if i == 0 {
            let key = desc
                .bank_approval_key
                .clone()
                .context("the bank node reported no bank approval key")?;
            // The bank is also a trustee of its customers' wallets: it checks its own approvals.
            let mut doc = ConfigDoc::load(&node_dir)?;
            doc.accept_bank_key(&key)?;
            doc.save(&node_dir)?;
            bank_approval_key = Some(key);
        }
        inited.push((node_dir, name, addr, desc));
    }
    // Every node knows every other one, so a node joining a wallet at the rotation accepts the
    // credential the others attest.
    for (dir, _, _, _) in &inited {
        let mut doc = ConfigDoc::load(dir)?;
        for (other, _, _, desc) in &inited {
            if other != dir {
                doc.accept_trustee_key(&desc.public_key)?;
            }
        }
        doc.save(dir)?;
    }
    for (i, (node_dir, name, addr, desc)) in inited.into_iter().enumerate() {
        let node = spawn(&node_dir)
            .await
            .with_context(|| format!("starting node {name} on {addr}"))?;
        let endpoint = node.url();
        running.push(node);
        let public_key = dlocker_proto::keys::public_key_from_hex(&desc.public_key)
            .map_err(|e| anyhow::anyhow!("node {name} reported an invalid key: {e}"))?;
        infos.push(TrusteeInfo::new(
            name,
            endpoint,
            public_key,
            if i == 0 { Role::Bank } else { Role::Trustee },
            TlsFiles::default(),
        ));
    }
    Ok(TrusteeSet::new(infos)?)
}

pub(crate) async fn stop_cluster(running: Vec<RunningNode>) -> Result<usize, String> {
    let n = running.len();
    let results = futures::future::join_all(running.into_iter().map(RunningNode::shutdown)).await;
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    if errors.is_empty() {
        Ok(n)
    } else {
        Err(errors.join("; "))
    }
}

fn print_receipts(receipts: &BackupReceipts) {
    let mut t = table(&[
        "Trustee",
        "Share",
        "Node id",
        "Issued at (unix)",
        "Manifest hash",
    ]);
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
    for (name, why) in &receipts.unconfirmed {
        println!(
            "warning: {name} did not take the backup-complete confirmation ({why}); it erases \
             the deposit after its unconfirmed_backup_expiry unless confirmed again"
        );
    }
}

struct Outcome {
    wallet_id: String,
    manifest_hash: String,
    manifest_file: PathBuf,
    receipts: BackupReceipts,
    verify: VerifyReport,
    recovery: RecoveryJson,
    rotation: RotationJson,
    touches: Touches,
}

/// The owner's passkey touches of each ceremony of the demo (the software authenticator counts
/// them): one per ceremony whatever the number of trustees, at most two for a rotation.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Touches {
    backup: u64,
    recovery: u64,
    rotation: u64,
    holder_registration: u64,
    reissue: u64,
}

fn touch_count(n: u64) -> String {
    if n == 1 {
        "1 touch".into()
    } else {
        format!("{n} touches")
    }
}

fn print_touches(say: &Narrator, t: &Touches, n: usize, json: bool) {
    say.say(format!(
        "\n[touches] The owner's passkey, counted by the software authenticator ({n} trustees):"
    ));
    let rows = [
        (
            "backup",
            t.backup,
            "one registration, the same credential at every trustee",
        ),
        (
            "recovery",
            t.recovery,
            "one assertion over every session's nonce and R",
        ),
        ("rotation", t.rotation, "stage; commit + retire"),
        (
            "locker holder registration",
            t.holder_registration,
            "covers the wallet key",
        ),
        ("document re-issue", t.reissue, "covers the new wallet key"),
    ];
    if json {
        for (what, k, _) in rows {
            say.say(format!("  {what}: {}", touch_count(k)));
        }
        return;
    }
    let mut table = table(&["Ceremony", "Touches", "What the one touch covers"]);
    for (what, k, note) in rows {
        table.add_row(vec![what.to_owned(), k.to_string(), note.to_owned()]);
    }
    println!("{table}");
}

/// Steps 2–9, against a running cluster.
async fn walk_through(
    say: &Narrator,
    args: &DemoArgs,
    dir: &Path,
    set: &TrusteeSet,
    staff_key: StaffKey,
    json: bool,
) -> anyhow::Result<Outcome> {
    let n = set.len();
    say.step(
        2,
        STEPS,
        "Cluster health: grpc.health.v1, GetInfo and the pinned key of every node",
    );
    let health = probe_all(set, json).await;
    if !json {
        print_health(&health);
    }
    require_healthy(&health)?;
    say.say(format!(
        "  all {n} nodes serving and presenting their pinned keys"
    ));

    say.step(3, STEPS, "Creating the customer's wallet secret");
    let wallet_id = format!(
        "demo-wallet-{}",
        hex::encode(rand::rng().random::<[u8; 4]>())
    );
    let seed = zeroize::Zeroizing::new(demo_seed_words());
    say.say(format!(
        "  wallet id {wallet_id}: 12 random demo seed words ({} bytes; never printed)",
        seed.len()
    ));

    say.step(
        4,
        STEPS,
        &format!(
            "Backing up {}-of-{n}: fresh random secret k, Feldman shares, encrypted blob, one passkey for all trustees",
            args.threshold
        ),
    );
    say.say("  (software passkey: for demos and tests only, NOT FOR PRODUCTION)");
    let policy = BackupPolicy {
        threshold: args.threshold,
        recovery_delay_secs: args.recovery_delay,
    };
    let prepared = PreparedBackup::new(set, &wallet_id, &seed, policy)?;
    // Exportable, so `--dir` can keep it for `dlocker delete` / `dlocker passkey change`.
    let mut auth = SoftwareAuthenticator::exportable()
        .map_err(|e| anyhow::anyhow!("creating the demo's software passkey: {e}"))?;
    let pb = progress(n, "enrolling at trustees", json);
    let on_progress = |e: ProgressEvent| match e {
        ProgressEvent::TrusteeDone { .. } | ProgressEvent::TrusteeFailed { .. } => pb.inc(1),
        ProgressEvent::PasskeyRequested { trustees } => {
            pb.set_message(format!("one passkey for {} trustees", trustees.len()))
        }
        _ => {}
    };
    // What the bank's staff see when they approve the demo recovery.
    let owner = dlocker_sdk::OwnerIdentity {
        user_name: "demo-customer",
        customer_reference: Some("DEMO-0001"),
    };
    let result =
        dlocker_sdk::protocol::backup_for(set, &prepared, &owner, &mut auth, &on_progress).await;
    pb.finish_and_clear();
    let mut touches = Touches {
        backup: auth.touches(),
        ..Touches::default()
    };
    let receipts = result.map_err(|e| {
        hinted(
            e.to_string(),
            "run with RUST_LOG=info to see the nodes' logs",
        )
    })?;
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
    say.say(format!(
        "  owner's passkey: {} for all {n} trustees (one credential, registered at every trustee)",
        touch_count(touches.backup)
    ));

    say.step(
        5,
        STEPS,
        "Verifying the backup: each trustee proves it holds its share, without revealing it",
    );
    let report = verify(set, prepared.manifest(), json).await;
    if !json {
        print_report(&report);
    }
    require_verified(&report)?;
    let manifest_hash = prepared.manifest_hash().to_string();

    say.step(6, STEPS, "The customer loses the phone");
    let original_sha256: [u8; 32] = Sha256::digest(seed.as_slice()).into();
    // Everything the old device held is gone: the wallet data and the backup's secret k.
    drop(seed);
    drop(prepared);
    say.say(format!(
        "  wallet data and secret k dropped from this device (only their SHA-256 {} is kept, to compare)",
        short(&hex::encode(original_sha256))
    ));
    say.say("  the passkey survives: it lives in the customer's cloud keychain / other device");
    say.say("  (the demo's software authenticator stands in for it)");

    say.step(
        7,
        STEPS,
        &format!(
            "Recovering on a new device: sessions, passkey, bank approval by staff, a {} s waiting period, release",
            args.recovery_delay
        ),
    );
    let before = auth.touches();
    let (recovery, recovered) =
        recover_on_new_device(say, set, &wallet_id, staff_key, &mut auth, &original_sha256).await?;
    touches.recovery = auth.touches() - before;
    say.say(format!(
        "  owner's passkey: {} for all {} trustees of the recovery (bound to the device key R)",
        touch_count(touches.recovery),
        recovered.handle.sessions.len()
    ));

    let before = auth.touches();
    let rotation =
        rotate_after_recovery(say, dir, set, &recovered, &manifest_file, &mut auth, json).await?;
    touches.rotation = auth.touches() - before;
    say.say(format!(
        "  owner's passkey: {} for the rotation (stage, then commit + retire)",
        touch_count(touches.rotation)
    ));
    let docs =
        crate::docs::demo_documents(&|l: &str| say.say(l), dir, set, &wallet_id, &mut auth).await?;
    touches.holder_registration = docs.holder_registration;
    touches.reissue = docs.reissue;
    print_touches(say, &touches, n, json);
    if args.dir.is_some() {
        let passkey_file = dir.join(format!("{wallet_id}.passkey"));
        save_passkey(&passkey_file, &auth)?;
        say.say(format!(
            "  owner's software passkey saved to {} (for `dlocker delete` / `dlocker passkey change`; demo only)",
            passkey_file.display()
        ));
    }

    Ok(Outcome {
        wallet_id,
        manifest_hash,
        manifest_file,
        receipts,
        verify: report,
        recovery,
        rotation,
        touches,
    })
}

/// Writes the demo's software passkey (its private keys, in the clear: a demo only), mode 0600.
fn save_passkey(path: &Path, auth: &SoftwareAuthenticator) -> anyhow::Result<()> {
    use std::io::Write as _;
    let bytes = auth
        .to_bytes()
        .ok_or_else(|| anyhow::anyhow!("the demo's software passkey cannot be exported"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The trustees of the demo's epoch 2: the bank, trustee-2, then every other one (with 5 nodes:
/// bank, trustee-2, trustee-4; trustee-3 and trustee-5 leave).
fn epoch2_members(n: usize) -> Vec<usize> {
    (0..n).filter(|i| *i < 2 || i % 2 == 1).collect()
}

/// Steps 8–9: right after the recovery, the customer refreshes the backup with a NEW secret k
/// (the lost phone's copy of k becomes useless) and a smaller trustee set, then verifies it.
async fn rotate_after_recovery(
    say: &Narrator,
    dir: &Path,
    set: &TrusteeSet,
    recovered: &dlocker_sdk::Recovered,
    manifest_file: &Path,
    auth: &mut SoftwareAuthenticator,
    json: bool,
) -> anyhow::Result<RotationJson> {
    use dlocker_sdk::{RotateEvent, RotateOptions, RotationSource, RotationStep, protocol::rotate};
    let started = Instant::now();
    let members = epoch2_members(set.len());
    let new_set = TrusteeSet::new(members.iter().map(|&i| set.trustees()[i].clone()).collect())?;
    let old = recovered.manifest.clone();
    let names: Vec<String> = new_set.trustees().iter().map(|t| t.name.clone()).collect();
    say.step(
        8,
        STEPS,
        &format!(
            "Rotating the recovered wallet to epoch {}: {}-of-{} → 2-of-{} over {}, with a NEW secret k",
            old.epoch() + 1,
            old.threshold(),
            old.trustees().len(),
            new_set.len(),
            names.join(", ")
        ),
    );
    say.say(
        "  a fresh k makes the lost phone's copy useless; the wallet blob is re-encrypted under it",
    );
    let say2 = *say;
    let step_name = |s: &RotationStep| s.to_string();
    let on_event = |e: RotateEvent| {
        match e {
        RotateEvent::Planned { leaving, joining, window_safe, .. } => say2.say(format!(
            "  planned: {} leave, {} join; {}",
            if leaving.is_empty() { "none".to_owned() } else { leaving.join(", ") },
            if joining.is_empty() { "none".to_owned() } else { joining.join(", ") },
            if window_safe {
                "at every moment one epoch has its threshold of active shares"
            } else {
                "between commits the staged shares are needed: resume before they expire"
            }
        )),
        RotateEvent::Staged { name, share_index, expires_at } => say2.say(format!(
            "  phase 1: {name:<11} staged share {share_index} of epoch 2 beside epoch 1 (verified like a deposit; expires at {expires_at} unless committed)"
        )),
        RotateEvent::Committed { name, share_index } => say2.say(format!(
            "  phase 2: {name:<11} committed epoch 2 (share {share_index}) and erased its epoch-1 share"
        )),
        RotateEvent::Retired { name } => {
            say2.say(format!("  retire:  {name:<11} left the wallet and erased everything it held for it"))
        }
        RotateEvent::Failed { step, reason } => say2.say(format!("  {}: FAILED: {reason}", step_name(&step))),
        _ => {}
    }
    };
    let record_file = dir.join(format!("{}.rotation.json", old.wallet_id()));
    let opts = RotateOptions::new("demo-customer")
        .record_path(&record_file)
        .progress(&on_event);
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: old.recovery_delay_secs(),
    };
    let source = RotationSource::from_recovered(recovered);
    let record = rotate(set, &new_set, &source, policy, true, auth, &opts)
        .await
        .map_err(|e| {
            hinted(
                e.to_string(),
                format!(
                    "the wallet still recovers; resume with the rotation record {}",
                    record_file.display()
                ),
            )
        })?;
    let m2 = record.manifest()?;
    std::fs::write(manifest_file, record.manifest_bytes()?)
        .with_context(|| format!("writing {}", manifest_file.display()))?;
    let retired: Vec<String> = record
        .trustees
        .iter()
        .filter(|t| t.role == dlocker_sdk::TrusteeRole::Leaving)
        .map(|t| t.name.clone())
        .collect();
    say.say(format!(
        "  epoch {} manifest {} names epoch {}'s {} as previous: a verifiable history",
        m2.epoch(),
        short(&m2.hash().to_string()),
        old.epoch(),
        short(&old.hash().to_string())
    ));
    say.say(format!(
        "  manifest file {} now holds epoch {}; rotation record (no share in the clear) in {}",
        manifest_file.display(),
        m2.epoch(),
        record_file.display()
    ));

    say.step(
        9,
        STEPS,
        "Verifying epoch 2: its trustees prove possession; every trustee reports its epochs",
    );
    let report = verify(&new_set, &m2, json).await;
    let epochs = dlocker_sdk::protocol::epoch_status(set, m2.wallet_id()).await;
    if !json {
        print_report(&report);
        print_epochs(&m2, &epochs);
    }
    require_verified(&report)?;
    say.say(format!(
        "  {} hold epoch {} and nothing staged; {} hold nothing of the wallet any more",
        names.join(", "),
        m2.epoch(),
        if retired.is_empty() {
            "no trustee left, so none".to_owned()
        } else {
            retired.join(", ")
        }
    ));
    Ok(RotationJson {
        from_epoch: old.epoch(),
        to_epoch: m2.epoch(),
        threshold: m2.threshold(),
        trustees: names,
        retired,
        new_k: record.new_k,
        manifest_hash: m2.hash().to_string(),
        previous_manifest_hash: old.hash().to_string(),
        verify: report,
        epochs,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

/// Step 7: `dlocker_sdk::protocol::recover`, with bank staff approving from another task as soon
/// as the SDK starts polling the bank.
async fn recover_on_new_device(
    say: &Narrator,
    set: &TrusteeSet,
    wallet_id: &str,
    staff_key: StaffKey,
    auth: &mut SoftwareAuthenticator,
    original_sha256: &[u8; 32],
) -> anyhow::Result<(RecoveryJson, dlocker_sdk::Recovered)> {
    let say = *say;
    let started = Instant::now();
    let staff = StaffClient::new(staff_key, set.bank());
    let (to_staff, mut staff_inbox) = tokio::sync::mpsc::unbounded_channel::<String>();
    // Bank support: verifies the customer out of band (here: instantly), then approves.
    let staff_task = tokio::spawn(async move {
        let Some(session) = staff_inbox.recv().await else {
            return Ok(Vec::new());
        };
        say.say(format!("  bank staff {STAFF_ID} checks the customer out of band and approves bank session {session}"));
        let st = staff.approve(&session).await?;
        say.say(format!(
            "  approved by {} ({} of {} required): the bank signs its approval for this wallet and this device key R",
            st.approvers.join(", "),
            st.approvers.len(),
            st.approvals_required
        ));
        Ok::<_, dlocker_sdk::StaffError>(st.approvers)
    });
    let waiting_since = std::sync::Mutex::new(None::<Instant>);
    let on_event = |e: RecoverEvent| {
        match e {
        RecoverEvent::SessionOpened { name, session_id, release_not_before } => {
            say.say(format!("  session opened at {name:<11} {session_id} (release not before {release_not_before})"))
        }
        RecoverEvent::TrusteeFailed { name, reason } => say.say(format!("  {name}: FAILED: {reason}")),
        RecoverEvent::SessionsOpened { handle, manifest_hash } => say.say(format!(
            "  {} sessions open towards a fresh device key R {}; manifest {} agreed by the trustees",
            handle.sessions.len(),
            short(&handle.session_key),
            short(&manifest_hash.to_string())
        )),
        RecoverEvent::PasskeyRequested { .. } => {}
        RecoverEvent::OwnerAuthenticated { name } => say.say(format!("  passkey assertion accepted by {name}")),
        RecoverEvent::AwaitingApproval { bank_session_id } => {
            say.say("  waiting for the bank's approval (the SDK polls the bank)");
            let _ = to_staff.send(bank_session_id);
        }
        RecoverEvent::ApprovalPending { status } => say.say(format!("  bank: {status}")),
        RecoverEvent::Approved { approvers, expires_at } => say.say(format!(
            "  bank approval received (approvers: {}; valid until {expires_at})",
            approvers.join(", ")
        )),
        RecoverEvent::Waiting { seconds_left } => {
            if let Ok(mut w) = waiting_since.lock() {
                w.get_or_insert_with(Instant::now);
            }
            say.say(format!("  waiting period: {seconds_left} s left (the owner or the bank could still cancel)"))
        }
        RecoverEvent::ShareVerified { name, share_index } => say.say(format!(
            "  {name:<11} released share {share_index}: signed release, opens with R, matches the commitments"
        )),
        RecoverEvent::ShareRejected { name, reason } => say.say(format!("  {name:<11} share REJECTED: {reason}")),
        _ => {}
    }
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(250),
        approval_timeout: Duration::from_secs(60),
        cancel: None,
        progress: &on_event,
        checkpoint: None,
    };
    let result = dlocker_sdk::protocol::recover(set, wallet_id, auth, opts).await;
    let recovered = result.map_err(|e| {
        hinted(
            e.to_string(),
            "run with RUST_LOG=info to see the nodes' logs",
        )
    })?;
    let approvers = match staff_task.await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(hinted(e.to_string(), "the bank refused the demo staff key")),
        Err(e) => return Err(anyhow::anyhow!("staff task failed: {e}")),
    };
    let elapsed = started.elapsed();
    let waiting = waiting_since
        .lock()
        .ok()
        .and_then(|w| *w)
        .map(|w| w.elapsed())
        .unwrap_or_default();
    let sha: [u8; 32] = Sha256::digest(recovered.data().expose()).into();
    let matches = sha == *original_sha256;
    say.say(format!(
        "  combined exactly {} shares ({}), checked k·G = C_0 and the blob hash, decrypted the wallet",
        recovered.used.len(),
        recovered.used.join(", ")
    ));
    if !matches {
        return Err(anyhow::anyhow!(
            "the recovered wallet data does NOT match the original"
        ));
    }
    say.say(format!(
        "  recovered data SHA-256 {} equals the original's: the wallet is back ({:.1} s, of which {:.1} s waiting period)",
        short(&hex::encode(sha)),
        elapsed.as_secs_f64(),
        waiting.as_secs_f64()
    ));
    Ok((
        RecoveryJson {
            sessions: recovered.handle.sessions.clone(),
            approvers,
            used: recovered.used.clone(),
            faulty: crate::output::reason_pairs(&recovered.faulty),
            unavailable: crate::output::reason_pairs(&recovered.unavailable),
            data_sha256: hex::encode(sha),
            matches_original: matches,
            elapsed_ms: elapsed.as_millis(),
            waiting_ms: waiting.as_millis(),
        },
        recovered,
    ))
}

pub(crate) async fn run(args: DemoArgs, json: bool) -> anyhow::Result<()> {
    if args.web {
        return crate::web::demo(&args, json).await;
    }
    if args.threshold > args.nodes {
        return Err(hinted(
            format!(
                "threshold {} is larger than the number of nodes {}",
                args.threshold, args.nodes
            ),
            "use --threshold ≤ --nodes",
        ));
    }
    let started = Instant::now();
    let say = Narrator { json };
    let (dir, tmp) = prepare_dir(&args)?;
    let n = usize::from(args.nodes);
    say.say(format!(
        "dLocker demo: {n} trustee nodes, {}-of-{n} backup of a wallet secret",
        args.threshold
    ));
    say.say(format!("data directory: {}", dir.display()));

    say.step(
        1,
        STEPS,
        &format!(
            "Starting {n} trustee nodes in-process (real gRPC servers on 127.0.0.1, sled storage)"
        ),
    );
    let mut running = Vec::new();
    let staff_key = StaffKey::generate();
    let staff_key_file = dir.join(format!("staff-{STAFF_ID}.key"));
    staff_key
        .save(&staff_key_file)
        .with_context(|| format!("writing {}", staff_key_file.display()))?;
    say.say(format!(
        "  bank staff key for {STAFF_ID} generated (public key {}, secret in {}, mode 0600)",
        short(&staff_key.public_key_hex()),
        staff_key_file.display()
    ));
    say.say(format!("  the bank node lists {STAFF_ID} as approver and canceller (1 approval required); every node accepts the bank's approval key"));
    let cluster = start_cluster(&dir, n, &staff_key.public_key_hex(), None, &mut running).await;
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
                    say.say(format!(
                        "  trustees file (pins each node's key): {}",
                        trustees_file.display()
                    ));
                    walk_through(&say, &args, &dir, &set, staff_key, json)
                        .await
                        .map(|o| (o, trustees_file))
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };

    // Always stop what was started, even when a step failed.
    say.step(
        10,
        STEPS,
        "Stopping the cluster (graceful shutdown, databases flushed)",
    );
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
        "\nDemo complete: wallet {} was backed up {}-of-{n}, verified at all {n} trustees, lost, recovered with the bank's approval, the owner's passkey and the waiting period, then rotated to epoch {} ({}-of-{} with a new k) ({:.1}s).",
        outcome.wallet_id,
        args.threshold,
        outcome.rotation.to_epoch,
        outcome.rotation.threshold,
        outcome.rotation.trustees.len(),
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
            trustees_file: kept_dir
                .as_ref()
                .map(|_| trustees_file.display().to_string()),
            manifest_file: kept_dir
                .as_ref()
                .map(|_| outcome.manifest_file.display().to_string()),
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
            recovery: outcome.recovery,
            rotation: outcome.rotation,
            touches: outcome.touches,
            elapsed_ms: started.elapsed().as_millis(),
        })?;
    }
    Ok(())
}
