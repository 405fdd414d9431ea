//! The load: C concurrent clients doing backups, verifications and full recoveries through the
//! SDK (as a wallet app would), and the single-node storms used for limits and growth
//! (deposits over raw gRPC, possession proofs).

use crate::measure::{Latencies, NodeCpu, OpSummary, dir_bytes};
use crate::passkey::{BenchPasskey, PasskeyKind, owner_passkey};
use anyhow::Context as _;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::node_id;
use dlocker_proto::manifest::{Manifest, ManifestParts, TrusteeEntry};
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb::{BeginEnrollmentRequest, FinishEnrollmentRequest, ProveShareRequest};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::split;
use dlocker_sdk::{
    BackupPolicy, Client, OwnerIdentity, PreparedBackup, RecoverEvent, RecoverOptions, RetryPolicy,
    StaffClient, TrusteeInfo, TrusteeSet, WalletId, protocol::OwnerAuthenticator as _,
};
use indicatif::{ProgressBar, ProgressStyle};
use k256::PublicKey;
use rand::RngExt as _;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much work a phase does: a number of operations, a time limit, or both (first reached).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) count: Option<u64>,
    pub(crate) duration: Option<Duration>,
}

impl Budget {
    fn bar_len(&self) -> u64 {
        match (self.count, self.duration) {
            (Some(c), _) => c,
            (None, Some(d)) => d.as_secs().max(1),
            (None, None) => 0,
        }
    }
    fn by_time(&self) -> bool {
        self.count.is_none()
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal, as indicatif does).
pub(crate) fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{spinner} {msg:<28} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Hands out operation numbers to clients until the budget is spent.
struct Dispenser {
    next: AtomicU64,
    budget: Budget,
    started: Instant,
    pb: ProgressBar,
}

impl Dispenser {
    fn new(budget: Budget, pb: ProgressBar) -> Self {
        Self {
            next: AtomicU64::new(0),
            budget,
            started: Instant::now(),
            pb,
        }
    }
    fn take(&self) -> Option<u64> {
        if let Some(d) = self.budget.duration
            && self.started.elapsed() >= d
        {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.budget.count {
            Some(c) if i >= c => None,
            _ => Some(i),
        }
    }
    fn done(&self) {
        if self.budget.by_time() {
            self.pb.set_position(self.started.elapsed().as_secs());
        } else {
            self.pb.inc(1);
        }
    }
}

/// A wallet backed up during the run: what its owner keeps to verify and recover it.
pub(crate) struct Wallet {
    pub(crate) id: String,
    manifest: Manifest,
    auth: BenchPasskey,
    data: Vec<u8>,
}

/// The numbers of one phase.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PhaseResult {
    pub(crate) elapsed_s: f64,
    pub(crate) ops: Vec<OpSummary>,
}

fn phase_result(
    elapsed: Duration,
    ops: Vec<(&str, &Latencies)>,
    cpu: (Option<f64>, f64),
) -> PhaseResult {
    // CPU is attributed to the phase's main operation (the first); sub-steps share it.
    let mut out = Vec::new();
    for (i, (name, lat)) in ops.into_iter().enumerate() {
        let mut s = lat.summary(name, elapsed);
        if i == 0 && s.count > 0 {
            s.node_cpu_ms_per_op = cpu.0.map(|n| n * 1000.0 / s.count as f64);
            s.client_cpu_ms_per_op = Some(cpu.1 * 1000.0 / s.count as f64);
        }
        out.push(s);
    }
    PhaseResult {
        elapsed_s: elapsed.as_secs_f64(),
        ops: out,
    }
}

/// Random wallet data of `len` bytes.
fn wallet_data(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rng().fill(&mut v[..]);
    v
}

/// A simulated app's SDK client (no retries: the bench counts failures as they come).
pub(crate) fn client(set: &TrusteeSet) -> anyhow::Result<Client> {
    Ok(Client::builder()
        .trustees(set.clone())
        .retry(RetryPolicy::none())
        .build()?)
}

/// Phase 1: backups of fresh wallets. Returns the wallets (for the next phases), the phase's
/// numbers and the bytes the nodes' data directories grew by per wallet (per node, mean).
#[allow(clippy::too_many_arguments)] // the knobs of one measurement, passed through from the CLI
pub(crate) async fn backups(
    set: Arc<TrusteeSet>,
    cpu: &NodeCpu,
    dirs: &[PathBuf],
    clients: usize,
    budget: Budget,
    policy: BackupPolicy,
    data_len: usize,
    passkey: PasskeyKind,
    run_tag: &str,
    quiet: bool,
) -> anyhow::Result<(Vec<Wallet>, PhaseResult, Option<f64>)> {
    let bytes_before: u64 = dirs.iter().map(|d| dir_bytes(d)).sum();
    let d = Arc::new(Dispenser::new(
        budget,
        bar(budget.bar_len(), "backups", quiet),
    ));
    let wallets = Arc::new(Mutex::new(Vec::new()));
    let cpu0 = cpu.read();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (set, d, wallets, tag) =
                (set.clone(), d.clone(), wallets.clone(), run_tag.to_owned());
            tokio::spawn(async move {
                let mut lat = Latencies::new();
                // One app: its client keeps one connection per trustee across its backups.
                let client = client(&set)?;
                let owner = OwnerIdentity {
                    user_name: "bench",
                    customer_reference: None,
                };
                while let Some(i) = d.take() {
                    let id = format!("bench-{tag}-{i}");
                    let data = wallet_data(data_len);
                    let t = Instant::now();
                    let mut auth = owner_passkey(passkey);
                    let res = match PreparedBackup::new(&set, &id, &data, policy) {
                        Ok(p) => client
                            .backup(&p, &owner, &mut auth, None)
                            .await
                            .map(|_| p)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match res {
                        Ok(p) => {
                            lat.record(t.elapsed());
                            let w = Wallet {
                                id,
                                manifest: p.manifest().clone(),
                                auth,
                                data,
                            };
                            if let Ok(mut ws) = wallets.lock() {
                                ws.push(w);
                            }
                        }
                        Err(e) => lat.error(e),
                    }
                    d.done();
                }
                Ok::<_, anyhow::Error>(lat)
            })
        })
        .collect();
    let mut all = Latencies::new();
    for t in tasks {
        all.merge(&t.await.context("a backup client panicked")??);
    }
    let elapsed = started.elapsed();
    d.pb.finish_and_clear();
    let cpu1 = cpu.read();
    let wallets = std::mem::take(&mut *wallets.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let per_wallet = (!dirs.is_empty() && !wallets.is_empty()).then(|| {
        let after: u64 = dirs.iter().map(|d| dir_bytes(d)).sum();
        after.saturating_sub(bytes_before) as f64 / dirs.len() as f64 / wallets.len() as f64
    });
    Ok((
        wallets,
        phase_result(elapsed, vec![("backup", &all)], cpu0.until(&cpu1)),
        per_wallet,
    ))
}

/// Phase 2: every client asks every trustee of a wallet for a possession proof and checks it.
pub(crate) async fn verifications(
    set: Arc<TrusteeSet>,
    cpu: &NodeCpu,
    wallets: Arc<Vec<Wallet>>,
    clients: usize,
    budget: Budget,
    quiet: bool,
) -> anyhow::Result<PhaseResult> {
    if wallets.is_empty() {
        return Err(anyhow::anyhow!(
            "no wallet was backed up: nothing to verify"
        ));
    }
    let d = Arc::new(Dispenser::new(
        budget,
        bar(budget.bar_len(), "verifications", quiet),
    ));
    let cpu0 = cpu.read();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (set, d, wallets) = (set.clone(), d.clone(), wallets.clone());
            tokio::spawn(async move {
                let mut lat = Latencies::new();
                let client = client(&set)?;
                while let Some(i) = d.take() {
                    let w = &wallets[(i % wallets.len() as u64) as usize];
                    let t = Instant::now();
                    match client.verify(&w.manifest).await {
                        Ok(report) if report.all_healthy() => lat.record(t.elapsed()),
                        Ok(report) => lat.error(format!(
                            "{:?}",
                            report.entries.iter().find(|e| !e.status.is_healthy())
                        )),
                        Err(e) => lat.error(e.to_string()),
                    }
                    d.done();
                }
                Ok::<_, anyhow::Error>(lat)
            })
        })
        .collect();
    let mut all = Latencies::new();
    for t in tasks {
        all.merge(&t.await.context("a verify client panicked")??);
    }
    let elapsed = started.elapsed();
    d.pb.finish_and_clear();
    Ok(phase_result(
        elapsed,
        vec![("verify", &all)],
        cpu0.until(&cpu.read()),
    ))
}

/// What one recovery measured.
pub(crate) struct RecoveryTimes {
    pub(crate) total: Duration,
    waiting_ticks: u32,
    /// The staff approval given inside the recovery (a person's step, not the protocol's).
    pub(crate) approve: Option<Duration>,
}

/// One full recovery of `w` with the bank's staff approving automatically, through `client`
/// (its kept connections) when given, else opening new ones: the approval is given inside the
/// SDK's `AwaitingApproval` callback, before its first poll, so no poll interval is ever
/// waited. The SDK's `Waiting` reports during the delay are counted so it can be excluded.
pub(crate) async fn recover_with(
    set: &TrusteeSet,
    client: Option<&Client>,
    staff: &StaffClient,
    w: &mut Wallet,
) -> Result<RecoveryTimes, String> {
    let ticks = AtomicU32::new(0);
    let approve_time: Mutex<Option<Result<Duration, String>>> = Mutex::new(None);
    let rt = tokio::runtime::Handle::current();
    let on_event = |e: RecoverEvent| match e {
        RecoverEvent::AwaitingApproval { bank_session_id } => {
            let t = Instant::now();
            let r = tokio::task::block_in_place(|| rt.block_on(staff.approve(&bank_session_id)));
            if let Ok(mut a) = approve_time.lock() {
                *a = Some(r.map(|_| t.elapsed()).map_err(|e| e.to_string()));
            }
        }
        RecoverEvent::Waiting { .. } => {
            ticks.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(20),
        approval_timeout: Duration::from_secs(60),
        cancel: None,
        progress: &on_event,
        checkpoint: None,
    };
    let t = Instant::now();
    let res = match client {
        Some(c) => match WalletId::parse(w.id.clone()) {
            Ok(id) => c
                .recover(&id, &mut w.auth, opts)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        None => dlocker_sdk::protocol::recover(set, &w.id, &mut w.auth, opts)
            .await
            .map_err(|e| e.to_string()),
    };
    let total = t.elapsed();
    let approve = approve_time.lock().ok().and_then(|mut a| a.take());
    if let Some(Err(e)) = &approve {
        return Err(format!("staff approval: {e}"));
    }
    let rec = res?;
    if rec.data().expose() != w.data.as_slice() {
        return Err("recovered data differs from the backed-up data".into());
    }
    Ok(RecoveryTimes {
        total,
        waiting_ticks: ticks.load(Ordering::Relaxed),
        approve: approve.and_then(Result::ok),
    })
}

/// Phase 3: full recoveries (each wallet at most once).
pub(crate) async fn recoveries(
    set: Arc<TrusteeSet>,
    cpu: &NodeCpu,
    staff: Arc<StaffClient>,
    wallets: Vec<Wallet>,
    clients: usize,
    budget: Budget,
    quiet: bool,
) -> anyhow::Result<PhaseResult> {
    let budget = Budget {
        count: Some(
            budget
                .count
                .map_or(wallets.len() as u64, |c| c.min(wallets.len() as u64)),
        ),
        duration: budget.duration,
    };
    let d = Arc::new(Dispenser::new(
        budget,
        bar(budget.bar_len(), "recoveries", quiet),
    ));
    let queue = Arc::new(Mutex::new(wallets));
    let cpu0 = cpu.read();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (set, d, queue, staff) = (set.clone(), d.clone(), queue.clone(), staff.clone());
            tokio::spawn(async move {
                let (mut total, mut excl, mut approve) =
                    (Latencies::new(), Latencies::new(), Latencies::new());
                while d.take().is_some() {
                    let Some(mut w) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        break;
                    };
                    match recover_with(&set, None, &staff, &mut w).await {
                        Ok(t) => {
                            total.record(t.total);
                            let waited = Duration::from_secs(u64::from(t.waiting_ticks));
                            excl.record(t.total.saturating_sub(waited));
                            if let Some(a) = t.approve {
                                approve.record(a);
                            }
                        }
                        Err(e) => total.error(e),
                    }
                    d.done();
                }
                (total, excl, approve)
            })
        })
        .collect();
    let (mut total, mut excl, mut approve) = (Latencies::new(), Latencies::new(), Latencies::new());
    for t in tasks {
        let (a, b, c) = t.await.context("a recovery client panicked")?;
        total.merge(&a);
        excl.merge(&b);
        approve.merge(&c);
    }
    let elapsed = started.elapsed();
    d.pb.finish_and_clear();
    Ok(phase_result(
        elapsed,
        vec![
            ("recover", &total),
            ("recover (delay excluded)", &excl),
            ("staff approve (within recover)", &approve),
        ],
        cpu0.until(&cpu.read()),
    ))
}

/// A deposit for ONE node, prepared before a storm so the storm's clients only do what must
/// happen live (the ceremony and the passkey registration).
pub(crate) struct PreDeposit {
    pub(crate) wallet_id: String,
    pub(crate) manifest: Vec<u8>,
    pub(crate) manifest_hash: [u8; 32],
    pub(crate) envelope: Vec<u8>,
    pub(crate) blob: Vec<u8>,
}

/// `count` deposits for trustee `at` of `keys` (the manifest lists all of `keys`, `keys[0]` the
/// bank), `threshold`-of-`keys.len()`, `data_len` bytes of wallet data each.
pub(crate) fn pre_deposits(
    keys: &[PublicKey],
    at: usize,
    threshold: u16,
    count: usize,
    data_len: usize,
    tag: &str,
) -> anyhow::Result<Vec<PreDeposit>> {
    let trustees: Vec<TrusteeEntry> = keys
        .iter()
        .enumerate()
        .map(|(i, pk)| TrusteeEntry {
            share_index: u16::try_from(i + 1).unwrap_or(u16::MAX),
            node_id: node_id(pk),
            public_key: *pk,
        })
        .collect();
    (0..count)
        .map(|i| {
            let wallet_id = format!("storm-{tag}-{i}");
            let k = SecretScalar::random();
            let (shares, commitments) = split(&k, usize::from(threshold), keys.len())?;
            let blob = dlocker_proto::blob::seal(&k, &wallet_id, &wallet_data(data_len));
            let manifest = Manifest::new(ManifestParts {
                wallet_id: wallet_id.clone(),
                epoch: 1,
                threshold,
                bank_node_id: trustees[0].node_id.clone(),
                trustees: trustees.clone(),
                commitments,
                recovery_delay_secs: 0,
                blob_hash: dlocker_proto::blob::hash(&blob),
                created_at: dlocker_proto::time::unix_now(),
                previous: None,
            })?;
            let ctx = EnvelopeContext {
                wallet_id: &wallet_id,
                epoch: 1,
                share_index: shares[at].index(),
                recipient: &keys[at],
            };
            let envelope = ShareEnvelope::seal(&shares[at], &ctx)?.encode();
            Ok(PreDeposit {
                wallet_id,
                manifest_hash: manifest.hash().0,
                manifest: manifest.encode(),
                envelope,
                blob,
            })
        })
        .collect()
}

/// The result of a storm against one node.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StormResult {
    pub(crate) summary: OpSummary,
    /// Bytes the client handed the node per deposit (manifest, envelope, blob, passkey
    /// credential) plus the receipt it got back: the record size used for the raw-sled baseline.
    pub(crate) record_bytes: usize,
}

/// C clients deposit `deps` at one node over raw gRPC (one channel each, pinned-key checked):
/// `BeginEnrollment`, a passkey registration of `passkey`'s kind, `FinishEnrollment`.
pub(crate) async fn deposit_storm(
    info: &TrusteeInfo,
    cpu: &NodeCpu,
    deps: Vec<PreDeposit>,
    clients: usize,
    passkey: PasskeyKind,
    quiet: bool,
) -> anyhow::Result<StormResult> {
    let n = deps.len() as u64;
    let deps = Arc::new(deps);
    let d = Arc::new(Dispenser::new(
        Budget {
            count: Some(n),
            duration: None,
        },
        bar(n, &format!("deposits at {}", info.name), quiet),
    ));
    let record_bytes = Arc::new(AtomicU64::new(0));
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(dlocker_sdk::protocol::connect(info).await?);
    }
    let cpu0 = cpu.read();
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let (deps, d, record_bytes) = (deps.clone(), d.clone(), record_bytes.clone());
            let storm_node = info.node_id.clone();
            tokio::spawn(async move {
                let mut lat = Latencies::new();
                let mut auth = owner_passkey(passkey);
                while let Some(i) = d.take() {
                    let dep = &deps[i as usize];
                    let t = Instant::now();
                    let r = async {
                        let begin = c
                            .begin_enrollment(BeginEnrollmentRequest {
                                wallet_id: dep.wallet_id.clone(),
                                user_name: "bench".into(),
                                customer_reference: String::new(),
                            })
                            .await
                            .map_err(|s| format!("BeginEnrollment: {s}"))?
                            .into_inner();
                        // The one-touch challenge with this trustee's single nonce (a storm
                        // deposits at one node only).
                        let nonce =
                            dlocker_sdk::protocol::trustee_nonce(&storm_node, &begin.nonce)?;
                        let nonces = dlocker_sdk::protocol::to_wire(std::slice::from_ref(&nonce));
                        let challenge = dlocker_sdk::protocol::challenge(
                            OwnerAction::Backup,
                            &dep.wallet_id,
                            &dep.manifest_hash,
                            vec![nonce],
                        )
                        .map_err(|e| e.to_string())?;
                        let opts = dlocker_sdk::protocol::creation_options(
                            &begin.creation_options_json,
                            &challenge,
                        )
                        .map_err(|e| e.to_string())?;
                        let cred = auth.register(opts).map_err(|e| e.to_string())?;
                        let credential_json =
                            serde_json::to_string(&cred).map_err(|e| e.to_string())?;
                        let cred_len = credential_json.len();
                        let resp = c
                            .finish_enrollment(FinishEnrollmentRequest {
                                ceremony_id: begin.ceremony_id,
                                credential_json,
                                manifest_encoded: dep.manifest.clone(),
                                share_envelope_encoded: dep.envelope.clone(),
                                blob: dep.blob.clone(),
                                nonces,
                            })
                            .await
                            .map_err(|s| format!("FinishEnrollment: {s}"))?
                            .into_inner();
                        Ok::<usize, String>(
                            dep.manifest.len()
                                + dep.envelope.len()
                                + dep.blob.len()
                                + cred_len
                                + resp.receipt_encoded.len(),
                        )
                    }
                    .await;
                    match r {
                        Ok(bytes) => {
                            lat.record(t.elapsed());
                            record_bytes.store(bytes as u64, Ordering::Relaxed);
                        }
                        Err(e) => lat.error(e),
                    }
                    d.done();
                }
                lat
            })
        })
        .collect();
    let mut all = Latencies::new();
    for t in tasks {
        all.merge(&t.await.context("a deposit client panicked")?);
    }
    let elapsed = started.elapsed();
    d.pb.finish_and_clear();
    let result = phase_result(elapsed, vec![("deposit", &all)], cpu0.until(&cpu.read()));
    let summary = result
        .ops
        .into_iter()
        .next()
        .context("no deposit summary")?;
    Ok(StormResult {
        summary,
        record_bytes: record_bytes.load(Ordering::Relaxed) as usize,
    })
}

/// C clients ask one node for possession proofs of `wallet_ids` (uniformly random), for
/// `budget`. Proofs are not verified here (that is client work); the node does all of its part.
pub(crate) async fn prove_storm(
    info: &TrusteeInfo,
    cpu: &NodeCpu,
    wallet_ids: Arc<dyn Fn(u64) -> String + Send + Sync>,
    population: u64,
    clients: usize,
    budget: Budget,
    quiet: bool,
) -> anyhow::Result<OpSummary> {
    let d = Arc::new(Dispenser::new(
        budget,
        bar(budget.bar_len(), &format!("proofs at {}", info.name), quiet),
    ));
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(dlocker_sdk::protocol::connect(info).await?);
    }
    let cpu0 = cpu.read();
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let (d, ids) = (d.clone(), wallet_ids.clone());
            tokio::spawn(async move {
                let mut lat = Latencies::new();
                while d.take().is_some() {
                    let i = rand::rng().random_range(0..population.max(1));
                    let nonce: [u8; 32] = rand::rng().random();
                    let t = Instant::now();
                    match c
                        .prove_share(ProveShareRequest {
                            wallet_id: ids(i),
                            nonce: nonce.to_vec(),
                        })
                        .await
                    {
                        Ok(_) => lat.record(t.elapsed()),
                        Err(s) => lat.error(format!("ProveShare: {s}")),
                    }
                    d.done();
                }
                lat
            })
        })
        .collect();
    let mut all = Latencies::new();
    for t in tasks {
        all.merge(&t.await.context("a prove client panicked")?);
    }
    let elapsed = started.elapsed();
    d.pb.finish_and_clear();
    let result = phase_result(
        elapsed,
        vec![("prove_share", &all)],
        cpu0.until(&cpu.read()),
    );
    result.ops.into_iter().next().context("no prove summary")
}
