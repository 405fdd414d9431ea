//! `dlocker-bench growth`: how costs grow with the number of trustees and with the number of
//! wallets a node stores.
//!
//! Stored wallets are loaded with the node's documented bulk path
//! ([`trustee_node::enrollment::bulk`]: the real deposit transaction, audit entry and flush, without gRPC, the
//! passkey ceremony or the envelope), in this process, while the node is not serving. The node is
//! then served by a separate `trustee-node serve` process so its memory and CPU are its own.

use crate::local::{NodeProcess, Target, init_cluster};
use crate::measure::{NodeCpu, OpSummary, dir_bytes, rss_mib};
use crate::passkey::PasskeyKind;
use crate::workload::{self, Budget};
use anyhow::Context as _;
use dlocker_proto::keys::node_id;
use dlocker_proto::manifest::{Manifest, ManifestParts, TrusteeEntry};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{Commitments, Share, split};
use dlocker_sdk::{
    BackupPolicy, SoftwareAuthenticator, StaffClient, StaffKey, protocol::OwnerAuthenticator as _,
};
use k256::PublicKey;
use k256::SecretKey;
use k256::elliptic_curve::Generate as _;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trustee_node::enrollment::bulk::{BulkDeposit, BulkOutcome};

/// Latency with n trustees.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TrusteeRow {
    pub(crate) trustees: usize,
    pub(crate) threshold: u16,
    pub(crate) backup: OpSummary,
    pub(crate) verify: OpSummary,
    pub(crate) recover_excluding_delay: OpSummary,
    pub(crate) recover_total: OpSummary,
}

/// The `t` used for `n` trustees: a majority.
pub(crate) fn majority(n: usize) -> u16 {
    u16::try_from(n / 2 + 1).unwrap_or(u16::MAX)
}

/// For each n: a fresh local cluster, `samples` sequential backups, verifications and
/// recoveries (one client: latency, not contention).
pub(crate) fn trustee_growth(
    node_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    ns: &[usize],
    samples: u64,
    quiet: bool,
) -> anyhow::Result<Vec<TrusteeRow>> {
    let mut rows = Vec::new();
    for &n in ns {
        let mut target = Target::start_local(node_rt, n, 1)?;
        let t = majority(n);
        let staff = target
            .staff
            .take()
            .context("local cluster without staff key")?;
        let set = Arc::new(target.set.clone());
        let cpu = target.cpu.clone();
        let budget = Budget {
            count: Some(samples),
            duration: None,
        };
        let row = client_rt.block_on(async {
            let policy = BackupPolicy {
                threshold: t,
                recovery_delay_secs: 0,
            };
            let (wallets, b, _) = workload::backups(
                set.clone(),
                &cpu,
                &[],
                1,
                budget,
                policy,
                64,
                PasskeyKind::Software,
                &format!("n{n}"),
                quiet,
            )
            .await?;
            let wallets_arc = Arc::new(wallets);
            let v =
                workload::verifications(set.clone(), &cpu, wallets_arc.clone(), 1, budget, quiet)
                    .await?;
            let wallets = Arc::try_unwrap(wallets_arc)
                .map_err(|_| anyhow::anyhow!("wallets still shared after the verify phase"))?;
            let staff = Arc::new(StaffClient::new(staff, set.bank()));
            let r =
                workload::recoveries(set.clone(), &cpu, staff, wallets, 1, budget, quiet).await?;
            let pick = |p: &workload::PhaseResult, i: usize| {
                p.ops.get(i).cloned().context("missing phase summary")
            };
            Ok::<_, anyhow::Error>(TrusteeRow {
                trustees: n,
                threshold: t,
                backup: pick(&b, 0)?,
                verify: pick(&v, 0)?,
                recover_total: pick(&r, 0)?,
                recover_excluding_delay: pick(&r, 1)?,
            })
        })?;
        target.shutdown(node_rt)?;
        rows.push(row);
    }
    Ok(rows)
}

/// A node holding `wallets` wallets.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StoredRow {
    pub(crate) wallets: u64,
    /// Time the bulk loader took to go from the previous size to this one.
    pub(crate) load_secs: f64,
    pub(crate) load_per_s: f64,
    /// Payload bytes per wallet the loader wrote into the wallet trees.
    pub(crate) record_bytes_per_wallet: f64,
    /// Size of the node's data directory, total and per wallet.
    pub(crate) disk_bytes: u64,
    pub(crate) disk_bytes_per_wallet: f64,
    /// `trustee-node serve` until gRPC health answers.
    pub(crate) startup_secs: f64,
    pub(crate) rss_idle_mib: f64,
    pub(crate) prove: OpSummary,
    pub(crate) deposit: OpSummary,
    pub(crate) rss_after_mib: f64,
    pub(crate) rss_peak_mib: f64,
}

/// Wallet id `i` of the bulk loader.
fn bulk_id(i: u64) -> String {
    format!("bulk-{i:09}")
}

/// A real passkey (`webauthn_rs::Passkey` JSON) registered by the software authenticator with
/// the node's own relying party: every bulk wallet stores a copy (same size as a real one).
fn template_passkey(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let config = trustee_node::config::NodeConfig::load(dir)?;
    let webauthn = trustee_node::node::build_webauthn(&config)?;
    let (ccr, reg) = webauthn
        .start_passkey_registration(webauthn_rs::prelude::Uuid::new_v4(), "bench", "bench", None)
        .map_err(|e| anyhow::anyhow!("start registration: {e}"))?;
    let cred = SoftwareAuthenticator::new().register(ccr)?;
    let pk = webauthn
        .finish_passkey_registration(&cred, &reg)
        .map_err(|e| anyhow::anyhow!("finish registration: {e}"))?;
    Ok(serde_json::to_vec(&pk)?)
}

/// Splits reused across bulk wallets (each wallet still has its own id, blob and manifest).
struct Pool {
    splits: Vec<(SecretScalar, Vec<Share>, Commitments)>,
    trustees: Vec<TrusteeEntry>,
    passkey: Vec<u8>,
}

impl Pool {
    fn new(keys: &[PublicKey], passkey: Vec<u8>) -> anyhow::Result<Self> {
        let splits = (0..64)
            .map(|_| {
                let k = SecretScalar::random();
                let (s, c) = split(&k, 3, keys.len())?;
                Ok((k, s, c))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let trustees = keys
            .iter()
            .enumerate()
            .map(|(i, pk)| TrusteeEntry {
                share_index: u16::try_from(i + 1).unwrap_or(u16::MAX),
                node_id: node_id(pk),
                public_key: *pk,
            })
            .collect();
        Ok(Self {
            splits,
            trustees,
            passkey,
        })
    }

    fn deposit(&self, i: u64) -> anyhow::Result<BulkDeposit> {
        let id = bulk_id(i);
        let (k, shares, commitments) = &self.splits[(i % self.splits.len() as u64) as usize];
        let mut data = [0u8; 64];
        data[..8].copy_from_slice(&i.to_be_bytes());
        let blob = dlocker_proto::blob::seal(k, &id, &data);
        let manifest = Manifest::new(ManifestParts {
            wallet_id: id,
            epoch: 1,
            threshold: 3,
            bank_node_id: self.trustees[0].node_id.clone(),
            trustees: self.trustees.clone(),
            commitments: commitments.clone(),
            recovery_delay_secs: 0,
            blob_hash: dlocker_proto::blob::hash(&blob),
            created_at: dlocker_proto::time::unix_now(),
            previous: None,
        })?;
        Ok(BulkDeposit {
            manifest,
            share: shares[0].clone(),
            blob,
            passkey_json: self.passkey.clone(),
        })
    }
}

/// Loads wallets `from..to` into the node in `dir` (not serving) through the bulk path.
fn bulk_load(
    node_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    dir: &Path,
    pool: &Pool,
    from: u64,
    to: u64,
    quiet: bool,
) -> anyhow::Result<BulkOutcome> {
    const BATCH: u64 = 1000;
    let node = trustee_node::server::open_node(dir)?;
    let pb = workload::bar(to - from, &format!("bulk load to {to}"), quiet);
    let mut total = BulkOutcome::default();
    let res = client_rt.block_on(async {
        let mut inflight = VecDeque::new();
        let mut start = from;
        while start < to {
            let end = (start + BATCH).min(to);
            let batch = (start..end)
                .map(|i| pool.deposit(i))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let node = node.clone();
            inflight.push_back((
                end - start,
                node_rt.spawn(async move { node.enrollment().bulk_deposit(batch).await }),
            ));
            while inflight.len() >= 2 {
                if let Some((n, h)) = inflight.pop_front() {
                    let o = h.await.context("bulk task panicked")??;
                    add(&mut total, o);
                    pb.inc(n);
                }
            }
            start = end;
        }
        while let Some((n, h)) = inflight.pop_front() {
            let o = h.await.context("bulk task panicked")??;
            add(&mut total, o);
            pb.inc(n);
        }
        node.enrollment().bulk_finish().await?;
        Ok::<_, anyhow::Error>(())
    });
    pb.finish_and_clear();
    res?;
    drop(node);
    Ok(total)
}

fn add(total: &mut BulkOutcome, o: BulkOutcome) {
    total.stored += o.stored;
    total.already_present += o.already_present;
    total.record_bytes += o.record_bytes;
}

/// For each size: load up to it, serve the node as a process, measure possession proofs over the
/// whole population for `prove_secs`, then `deposits` new deposits, and memory.
#[allow(clippy::too_many_arguments)] // the knobs of one measurement, passed through from the CLI
pub(crate) fn stored_growth(
    node_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    sizes: &[u64],
    bin: &Path,
    clients: usize,
    deposits: usize,
    prove_secs: u64,
    quiet: bool,
) -> anyhow::Result<Vec<StoredRow>> {
    let tmp = tempfile::Builder::new()
        .prefix("dlocker-bench-growth-")
        .tempdir()
        .context("creating a temporary directory")?;
    let staff = StaffKey::generate();
    let (dirs, infos) = init_cluster(tmp.path(), 1, &staff.public_key_hex())?;
    let (dir, info) = (dirs[0].clone(), infos[0].clone());
    // The node first, then four trustees that exist only in the manifests.
    let mut keys = vec![info.public_key];
    keys.extend((0..4).map(|_| SecretKey::generate_from_rng(&mut rand::rng()).public_key()));
    let pool = Pool::new(&keys, template_passkey(&dir)?)?;
    let mut loaded = 0u64;
    let mut rows = Vec::new();
    for &size in sizes {
        let t = Instant::now();
        let out = bulk_load(
            node_rt,
            client_rt,
            &dir,
            &pool,
            loaded,
            size.max(loaded),
            quiet,
        )?;
        let load_secs = t.elapsed().as_secs_f64();
        let added = size.saturating_sub(loaded);
        loaded = loaded.max(size);
        let db = dir.join("db");
        let disk_bytes = dir_bytes(&db);
        let row = client_rt.block_on(async {
            let t = Instant::now();
            let proc_ = NodeProcess::start(bin, &dir, &info.endpoint).await?;
            let startup_secs = t.elapsed().as_secs_f64();
            let pid = proc_.pid();
            let cpu = NodeCpu::Pids(vec![pid]);
            let (rss_idle_mib, _) = rss_mib(pid).unwrap_or_default();
            let ids: Arc<dyn Fn(u64) -> String + Send + Sync> = Arc::new(bulk_id);
            let prove = workload::prove_storm(
                &info,
                &cpu,
                ids,
                loaded,
                clients,
                Budget {
                    count: None,
                    duration: Some(Duration::from_secs(prove_secs)),
                },
                quiet,
            )
            .await?;
            let tag = format!("g{size}");
            let deps = workload::pre_deposits(&keys, 0, 3, deposits, 64, &tag)?;
            let storm =
                workload::deposit_storm(&info, &cpu, deps, clients, PasskeyKind::Software, quiet)
                    .await?;
            let (rss_after_mib, rss_peak_mib) = rss_mib(pid).unwrap_or_default();
            proc_.stop()?;
            Ok::<_, anyhow::Error>(StoredRow {
                wallets: loaded,
                load_secs,
                load_per_s: if load_secs > 0.0 {
                    added as f64 / load_secs
                } else {
                    0.0
                },
                record_bytes_per_wallet: if out.stored > 0 {
                    out.record_bytes as f64 / out.stored as f64
                } else {
                    0.0
                },
                disk_bytes,
                disk_bytes_per_wallet: if loaded > 0 {
                    disk_bytes as f64 / loaded as f64
                } else {
                    0.0
                },
                startup_secs,
                rss_idle_mib,
                prove,
                deposit: storm.summary,
                rss_after_mib,
                rss_peak_mib,
            })
        })?;
        rows.push(row);
    }
    Ok(rows)
}
