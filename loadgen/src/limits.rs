//! The physical limits, measured in the same run as the load, and the ratios to them.
//!
//! (a) A node's durable deposit throughput ÷ the raw throughput of sled (the node's storage
//!     engine) inserting a record of the same size and flushing it, with the same number of
//!     concurrent writers, in a database on the same file system.
//! (b) End-to-end backup latency (sequential, one client) ÷ the crypto work a backup must do
//!     (split, n envelope seals, the blob seal, n receipt verifications; each measured here) plus
//!     n loopback gRPC round trips of `GetInfo` (measured on warm channels).
//! (c) End-to-end recovery latency with no waiting period (sequential, one client, the staff
//!     approval excluded) ÷ the client's crypto work plus the round trips of its calls.

use crate::measure::{NodeCpu, OpSummary, median, time_median_ms};
use crate::passkey::{PasskeyKind, owner_passkey};
use crate::workload;
use anyhow::Context as _;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::manifest::ManifestHash;
use dlocker_proto::pb::GetInfoRequest;
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::split;
use dlocker_proto::statement::{Receipt, Signed};
use dlocker_sdk::{BackupPolicy, PreparedBackup, TrusteeSet, protocol::OwnerAuthenticator as _};
use k256::SecretKey;
use k256::elliptic_curve::Generate as _;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How the raw baseline flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawFlush {
    /// `sled::Db::flush` per record, each writer an OS thread. (Not `flush_async`: sled 0.34
    /// runs it on its own thread pool, where ≥ 7 concurrent calls block every pool thread
    /// waiting for a log write queued to that same pool — a deadlock.)
    Sled,
    /// The node's `Store::flush` (group commit over `flush_async`) per record.
    GroupCommit,
}

/// Raw sled: `writers` concurrent writers each inserting a `record_bytes` value under a fresh key
/// and then flushing (see [`RawFlush`]), `count` records in all (or until `max_time`). Returns
/// records per second.
pub(crate) async fn raw_sled(
    dir: &Path,
    record_bytes: usize,
    writers: usize,
    count: u64,
    max_time: Duration,
    how: RawFlush,
) -> anyhow::Result<f64> {
    use trustee_node::db::Database;
    let store = Arc::new(
        Database::open(dir)
            .with_context(|| format!("opening a raw sled database in {}", dir.display()))?,
    );
    let db = store
        .engine()
        .context("a sled database has its engine")?
        .clone();
    let tree = db.open_tree("raw")?;
    let value: Arc<[u8]> = vec![0x5a; record_bytes.max(1)].into();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    if how == RawFlush::Sled {
        let threads: Vec<_> = (0..writers.max(1))
            .map(|_| {
                let (db, tree, value, next) =
                    (db.clone(), tree.clone(), value.clone(), next.clone());
                std::thread::spawn(move || {
                    let mut done = 0u64;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count || started.elapsed() > max_time {
                            break;
                        }
                        tree.insert(i.to_be_bytes(), &*value)?;
                        db.flush()?;
                        done += 1;
                    }
                    Ok::<u64, sled::Error>(done)
                })
            })
            .collect();
        let mut total = 0;
        for t in threads {
            total += t
                .join()
                .map_err(|_| anyhow::anyhow!("a raw sled writer panicked"))??;
        }
        let secs = started.elapsed().as_secs_f64();
        return Ok(if secs > 0.0 { total as f64 / secs } else { 0.0 });
    }
    let tasks: Vec<_> = (0..writers.max(1))
        .map(|_| {
            let (tree, value, next, store) =
                (tree.clone(), value.clone(), next.clone(), store.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || started.elapsed() > max_time {
                        break;
                    }
                    tree.insert(i.to_be_bytes(), &*value)?;
                    store.flush().await?;
                    done += 1;
                }
                Ok::<u64, anyhow::Error>(done)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.context("a raw sled writer panicked")??;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(if secs > 0.0 { total as f64 / secs } else { 0.0 })
}

/// Limit (a).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DepositLimit {
    /// The trustee stormed.
    pub(crate) node: String,
    /// Concurrent clients (and raw sled writers).
    pub(crate) clients: usize,
    /// One storm per passkey kind, software first (ratio (a) is taken from it).
    pub(crate) storms: Vec<DepositStorm>,
    /// Record size used for the raw baseline.
    pub(crate) record_bytes: usize,
    /// Raw sled insert+flush per second with `clients` writers.
    pub(crate) raw_sled_per_s: f64,
    /// Raw sled insert+flush per second with one writer.
    pub(crate) raw_sled_single_writer_per_s: f64,
    /// Raw sled insert + the node's group-commit flush, `clients` writers.
    pub(crate) raw_sled_group_commit_per_s: f64,
    /// deposits/s (software passkey) ÷ raw_sled_per_s.
    pub(crate) ratio_a: f64,
}

/// One storm of deposits at one node, with owner passkeys of one kind.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DepositStorm {
    pub(crate) passkey: PasskeyKind,
    /// The node's deposits (Begin + passkey + Finish, each acknowledged after a flush).
    pub(crate) deposit: OpSummary,
    /// What the node alone could do if it had every core: cores ÷ node CPU per deposit.
    pub(crate) node_cpu_bound_per_s: Option<f64>,
    /// The cryptography the protocol requires of the node for one such deposit, timed in this
    /// run.
    pub(crate) mandatory: DepositCrypto,
    /// Node CPU per deposit ÷ `mandatory.total_ms`.
    pub(crate) cpu_ratio: Option<f64>,
}

/// What a trustee must compute for one deposit, whatever its software around it: open the
/// share's envelope (ECDH + AEAD), check the share against the t commitments (Feldman), check
/// the passkey's registration (WebAuthn; for the software passkey that includes a P-256
/// attestation signature), sign the receipt. Medians of repeated runs in this process, the same
/// build as the node.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DepositCrypto {
    pub(crate) envelope_open_ms: f64,
    pub(crate) feldman_check_ms: f64,
    pub(crate) registration_check_ms: f64,
    pub(crate) receipt_signature_ms: f64,
    pub(crate) total_ms: f64,
}

/// Measures limit (a) against trustee `at` of `set`: a storm of `count` pre-made deposits from
/// `clients` clients, then raw sled with the same concurrency and record size.
#[allow(clippy::too_many_arguments)] // the knobs of one measurement, passed through from the CLI
pub(crate) async fn deposit_limit(
    set: &TrusteeSet,
    cpu: &NodeCpu,
    at: usize,
    clients: usize,
    count: usize,
    threshold: u16,
    data_len: usize,
    scratch: &Path,
    quiet: bool,
) -> anyhow::Result<DepositLimit> {
    let info = set.trustees().get(at).context("no such trustee")?;
    let keys: Vec<_> = set.trustees().iter().map(|t| t.public_key).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut storms = Vec::new();
    let mut record_bytes = 0;
    for passkey in [PasskeyKind::Software, PasskeyKind::Platform] {
        let tag = hex::encode(rand::random::<[u8; 4]>());
        let deps = workload::pre_deposits(&keys, at, threshold, count, data_len, &tag)?;
        let storm = workload::deposit_storm(info, cpu, deps, clients, passkey, quiet).await?;
        record_bytes = record_bytes.max(storm.record_bytes);
        let mandatory = deposit_crypto(passkey, threshold, keys.len())?;
        let cpu_ms = storm.summary.node_cpu_ms_per_op.filter(|ms| *ms > 0.0);
        storms.push(DepositStorm {
            passkey,
            node_cpu_bound_per_s: cpu_ms.map(|ms| cores * 1000.0 / ms),
            cpu_ratio: cpu_ms
                .filter(|_| mandatory.total_ms > 0.0)
                .map(|ms| ms / mandatory.total_ms),
            mandatory,
            deposit: storm.summary,
        });
    }
    let raw = raw_sled(
        &scratch.join("raw-sled"),
        record_bytes,
        clients,
        count as u64,
        Duration::from_secs(30),
        RawFlush::Sled,
    )
    .await?;
    let raw_group = raw_sled(
        &scratch.join("raw-sled-group"),
        record_bytes,
        clients,
        count as u64,
        Duration::from_secs(30),
        RawFlush::GroupCommit,
    )
    .await?;
    let raw1 = raw_sled(
        &scratch.join("raw-sled-1"),
        record_bytes,
        1,
        (count as u64).min(2000),
        Duration::from_secs(15),
        RawFlush::Sled,
    )
    .await?;
    let software_per_s = storms.first().map_or(0.0, |s| s.deposit.throughput_per_s);
    Ok(DepositLimit {
        node: info.name.clone(),
        clients,
        ratio_a: if raw > 0.0 { software_per_s / raw } else { 0.0 },
        storms,
        record_bytes,
        raw_sled_per_s: raw,
        raw_sled_single_writer_per_s: raw1,
        raw_sled_group_commit_per_s: raw_group,
    })
}

/// Times the node's mandatory cryptography for one deposit of a `threshold`-of-`n` wallet with
/// a passkey of `kind` (see [`DepositCrypto`]).
pub(crate) fn deposit_crypto(
    kind: PasskeyKind,
    threshold: u16,
    n: usize,
) -> anyhow::Result<DepositCrypto> {
    use webauthn_rs::prelude::Uuid;
    let reps = 200;
    let k = SecretScalar::random();
    let (shares, commitments) = split(&k, usize::from(threshold), n)?;
    let share = shares.first().context("no share")?;
    let key = SecretKey::generate_from_rng(&mut rand::rng());
    let pk = key.public_key();
    let ctx = EnvelopeContext {
        wallet_id: "limit-wallet",
        epoch: 1,
        share_index: share.index(),
        recipient: &pk,
    };
    let envelope = ShareEnvelope::seal(share, &ctx)?;
    let envelope_open_ms = time_median_ms(reps, || {
        let _ = envelope.open(&ctx, &key);
    });
    let feldman_check_ms = time_median_ms(reps, || {
        let _ = commitments.verify(share);
    });
    let signing = k256::ecdsa::SigningKey::from(key.clone());
    let receipt = Receipt {
        node_id: dlocker_proto::keys::node_id(&pk),
        wallet_id: "limit-wallet".into(),
        epoch: 1,
        share_index: share.index(),
        manifest_hash: ManifestHash([3; 32]),
        issued_at: 1,
    };
    let receipt_signature_ms = time_median_ms(reps, || {
        let _ = Signed::sign(receipt.clone(), &signing);
    });
    // Each check needs its own registration (the passkey signs outside the timing).
    let webauthn = bench_webauthn()?;
    let mut passkey = owner_passkey(kind);
    let mut checks = Vec::with_capacity(reps / 4);
    for _ in 0..reps / 4 {
        let (ccr, reg) = webauthn
            .start_passkey_registration(Uuid::new_v4(), "bench", "bench", None)
            .map_err(|e| anyhow::anyhow!("start registration: {e}"))?;
        let cred = passkey.register(ccr)?;
        let t = Instant::now();
        webauthn
            .finish_passkey_registration(&cred, &reg)
            .map_err(|e| anyhow::anyhow!("finish registration: {e}"))?;
        checks.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let registration_check_ms = median(&mut checks);
    Ok(DepositCrypto {
        envelope_open_ms,
        feldman_check_ms,
        registration_check_ms,
        receipt_signature_ms,
        total_ms: envelope_open_ms
            + feldman_check_ms
            + registration_check_ms
            + receipt_signature_ms,
    })
}

/// Limit (b).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BackupLimit {
    pub(crate) trustees: usize,
    pub(crate) threshold: u16,
    /// The owner passkeys' attestation.
    pub(crate) passkey: PasskeyKind,
    /// Sequential backups (one client) measured.
    pub(crate) backups: u64,
    /// Through an SDK client that keeps its connections (as an app does).
    pub(crate) backup_p50_ms: f64,
    /// Every backup opening and checking new connections to the n trustees.
    pub(crate) backup_cold_p50_ms: f64,
    /// Medians of the crypto work a backup must do (client side).
    pub(crate) split_ms: f64,
    pub(crate) envelope_seals_ms: f64,
    pub(crate) blob_seal_ms: f64,
    pub(crate) receipt_verifications_ms: f64,
    /// `GetInfo` round trip on a warm channel, median per trustee, summed over the trustees.
    pub(crate) getinfo_round_trips_ms: f64,
    /// split + seals + blob + receipts + round trips.
    pub(crate) floor_ms: f64,
    /// backup_p50_ms ÷ floor_ms.
    pub(crate) ratio_b: f64,
    /// Not in the floor, shown for scale: the one passkey registration of a backup
    /// (client; one touch for all n trustees), and the trustees' mandatory deposit crypto
    /// ([`DepositCrypto`]) times n.
    pub(crate) passkey_registrations_ms: f64,
    pub(crate) node_side_crypto_ms: f64,
}

/// Measures limit (b) on `set`.
pub(crate) async fn backup_limit(
    set: &TrusteeSet,
    threshold: u16,
    data_len: usize,
    backups: usize,
    passkey: PasskeyKind,
) -> anyhow::Result<BackupLimit> {
    let n = set.len();
    let policy = BackupPolicy {
        threshold,
        recovery_delay_secs: 0,
    };
    let tag = hex::encode(rand::random::<[u8; 4]>());
    let data = vec![7u8; data_len];

    // End to end, one at a time: through an app's SDK client, which keeps one checked
    // connection per trustee (the floor's round trips are on warm channels too), then with
    // every backup opening and checking new connections (`protocol::backup`).
    let client = dlocker_sdk::Client::builder()
        .trustees(set.clone())
        .retry(dlocker_sdk::RetryPolicy::none())
        .build()?;
    let owner = dlocker_sdk::OwnerIdentity {
        user_name: "bench",
        customer_reference: None,
    };
    let mut lat = Vec::with_capacity(backups);
    let mut cold = Vec::with_capacity(backups);
    for i in 0..backups.max(1) {
        let p = PreparedBackup::new(set, &format!("limit-{tag}-{i}"), &data, policy)?;
        let mut auth = owner_passkey(passkey);
        let t = Instant::now();
        client.backup(&p, &owner, &mut auth, None).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        let p = PreparedBackup::new(set, &format!("limit-{tag}-{i}-cold"), &data, policy)?;
        let mut auth = owner_passkey(passkey);
        let t = Instant::now();
        dlocker_sdk::protocol::backup(set, &p, "bench", &mut auth, &|_| {}).await?;
        cold.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let backup_p50_ms = median(&mut lat);
    let backup_cold_p50_ms = median(&mut cold);

    // The crypto work, measured piecewise (median of `reps`).
    let reps = 50;
    let k = SecretScalar::random();
    let t = usize::from(threshold);
    let split_ms = time_median_ms(reps, || {
        let _ = split(&k, t, n);
    });
    let (shares, _) = split(&k, t, n)?;
    let keys: Vec<SecretKey> = (0..n)
        .map(|_| SecretKey::generate_from_rng(&mut rand::rng()))
        .collect();
    let envelope_seals_ms = time_median_ms(reps, || {
        for (s, key) in shares.iter().zip(&keys) {
            let pk = key.public_key();
            let ctx = EnvelopeContext {
                wallet_id: "limit-wallet",
                epoch: 1,
                share_index: s.index(),
                recipient: &pk,
            };
            let _ = ShareEnvelope::seal(s, &ctx);
        }
    });
    let blob_seal_ms = time_median_ms(reps, || {
        let _ = dlocker_proto::blob::seal(&k, "limit-wallet", &data);
    });
    let receipts: Vec<(Vec<u8>, k256::PublicKey)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let body = Receipt {
                node_id: dlocker_proto::keys::node_id(&key.public_key()),
                wallet_id: "limit-wallet".into(),
                epoch: 1,
                share_index: u16::try_from(i + 1).unwrap_or(u16::MAX),
                manifest_hash: ManifestHash([3; 32]),
                issued_at: 1,
            };
            let signing = k256::ecdsa::SigningKey::from(key.clone());
            (Signed::sign(body, &signing).encode(), key.public_key())
        })
        .collect();
    let receipt_verifications_ms = time_median_ms(reps, || {
        for (bytes, pk) in &receipts {
            let _ = Signed::<Receipt>::decode_trusted(bytes, &[*pk]);
        }
    });

    // GetInfo round trips on warm channels.
    let getinfo_round_trips_ms: f64 = warm_round_trips(set, reps).await?.iter().sum();

    // For scale: the owner's one registration and the trustees' mandatory deposit crypto.
    let passkey_registrations_ms = passkey_times(passkey)?.registration_ms;
    let node_side_crypto_ms = n as f64 * deposit_crypto(passkey, threshold, n)?.total_ms;

    let floor_ms = split_ms
        + envelope_seals_ms
        + blob_seal_ms
        + receipt_verifications_ms
        + getinfo_round_trips_ms;
    Ok(BackupLimit {
        trustees: n,
        threshold,
        passkey,
        backups: lat.len() as u64,
        backup_p50_ms,
        backup_cold_p50_ms,
        split_ms,
        envelope_seals_ms,
        blob_seal_ms,
        receipt_verifications_ms,
        getinfo_round_trips_ms,
        floor_ms,
        ratio_b: if floor_ms > 0.0 {
            backup_p50_ms / floor_ms
        } else {
            0.0
        },
        passkey_registrations_ms,
        node_side_crypto_ms,
    })
}

/// Raw sled's flush alone, for the report: how long one insert+flush takes with one writer.
pub(crate) fn flush_latency_note(single_writer_per_s: f64) -> String {
    if single_writer_per_s > 0.0 {
        format!(
            "{:.2} ms per insert+flush with one writer",
            1000.0 / single_writer_per_s
        )
    } else {
        "n/a".into()
    }
}

/// Limit (c): a recovery with no waiting period, end to end, against the work it must do.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RecoveryLimit {
    pub(crate) trustees: usize,
    pub(crate) threshold: u16,
    /// Sequential recoveries (one client) measured.
    pub(crate) recoveries: u64,
    /// Through an SDK client that keeps its connections, the staff approval excluded (a
    /// person's step: the bench's staff approve as soon as the SDK asks).
    pub(crate) recover_p50_ms: f64,
    /// The staff approval alone (one `ApproveRecovery` call), median.
    pub(crate) approve_p50_ms: f64,
    /// Every recovery opening new connections (a new phone), approval excluded.
    pub(crate) recover_cold_p50_ms: f64,
    /// The client's crypto (medians): the session key, one manifest decode, the bank
    /// approval's check, n release checks (statement, envelope, Feldman), combining t shares
    /// (each checked again) and opening the blob.
    pub(crate) session_key_ms: f64,
    pub(crate) manifest_decode_ms: f64,
    pub(crate) approval_check_ms: f64,
    pub(crate) release_checks_ms: f64,
    pub(crate) combine_and_open_ms: f64,
    /// Warm `GetInfo` round trips: one per trustee for each of OpenRecovery,
    /// AuthenticateOwner and ReleaseShare, and one to the bank for GetApproval.
    pub(crate) round_trips_ms: f64,
    pub(crate) floor_ms: f64,
    /// recover_p50_ms ÷ floor_ms.
    pub(crate) ratio_c: f64,
    /// Not in the floor: the owner's one passkey assertion (software), median.
    pub(crate) passkey_assertion_ms: f64,
}

/// Measures limit (c) on `set`: backs up `recoveries` wallets, then recovers each, one at a
/// time, half through a client that keeps its connections, half opening new ones.
pub(crate) async fn recovery_limit(
    set: &Arc<TrusteeSet>,
    staff: &Arc<dlocker_sdk::StaffClient>,
    threshold: u16,
    data_len: usize,
    recoveries: usize,
    passkey: PasskeyKind,
) -> anyhow::Result<RecoveryLimit> {
    let n = set.len();
    let t = usize::from(threshold);
    let policy = BackupPolicy {
        threshold,
        recovery_delay_secs: 0,
    };
    let tag = format!("rl{}", hex::encode(rand::random::<[u8; 4]>()));
    let (wallets, _, _) = workload::backups(
        set.clone(),
        &NodeCpu::Unknown,
        &[],
        1,
        workload::Budget {
            count: Some(2 * recoveries.max(1) as u64),
            duration: None,
        },
        policy,
        data_len,
        passkey,
        &tag,
        true,
    )
    .await?;
    let client = workload::client(set)?;
    let (mut warm, mut cold, mut approve) = (Vec::new(), Vec::new(), Vec::new());
    for (i, mut w) in wallets.into_iter().enumerate() {
        let via = (i % 2 == 0).then_some(&client);
        let r = workload::recover_with(set, via, staff, &mut w)
            .await
            .map_err(|e| anyhow::anyhow!("recovery of {}: {e}", w.id))?;
        let a = r.approve.unwrap_or_default();
        approve.push(a.as_secs_f64() * 1000.0);
        let ms = r.total.saturating_sub(a).as_secs_f64() * 1000.0;
        if via.is_some() {
            warm.push(ms);
        } else {
            cold.push(ms);
        }
    }

    // The client's crypto, piecewise (median of `reps`).
    let reps = 50;
    let k = SecretScalar::random();
    let (shares, commitments) = split(&k, t, n)?;
    let r = SecretKey::generate_from_rng(&mut rand::rng());
    let r_pub = r.public_key();
    let session_key_ms = time_median_ms(reps, || {
        let _ = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
    });
    let node_keys: Vec<SecretKey> = (0..n)
        .map(|_| SecretKey::generate_from_rng(&mut rand::rng()))
        .collect();
    let trustees: Vec<dlocker_proto::manifest::TrusteeEntry> = node_keys
        .iter()
        .zip(&shares)
        .map(|(key, s)| dlocker_proto::manifest::TrusteeEntry {
            share_index: s.index(),
            node_id: dlocker_proto::keys::node_id(&key.public_key()),
            public_key: key.public_key(),
        })
        .collect();
    let data = vec![7u8; data_len];
    let blob = dlocker_proto::blob::seal(&k, "limit-wallet", &data);
    let manifest =
        dlocker_proto::manifest::Manifest::new(dlocker_proto::manifest::ManifestParts {
            wallet_id: "limit-wallet".into(),
            epoch: 1,
            threshold,
            bank_node_id: trustees[0].node_id.clone(),
            trustees: trustees.clone(),
            commitments: commitments.clone(),
            recovery_delay_secs: 0,
            blob_hash: dlocker_proto::blob::hash(&blob),
            created_at: 1,
            previous: None,
        })?;
    let manifest_bytes = manifest.encode();
    let manifest_decode_ms = time_median_ms(reps, || {
        let _ = dlocker_proto::manifest::Manifest::decode(&manifest_bytes);
    });
    let bank_key = k256::ecdsa::SigningKey::from(node_keys[0].clone());
    let approval = Signed::sign(
        dlocker_proto::statement::BankApproval {
            bank_node_id: trustees[0].node_id.clone(),
            wallet_id: "limit-wallet".into(),
            session_key: r_pub,
            issued_at: 1,
            expires_at: 2,
            approvers: vec!["a".into()],
        },
        &bank_key,
    )
    .encode();
    let approval_check_ms = time_median_ms(reps, || {
        let _ = Signed::<dlocker_proto::statement::BankApproval>::decode(&approval);
    });
    // What each trustee sends: the share sealed to R and its signed release.
    let released: Vec<(Vec<u8>, Vec<u8>, k256::PublicKey)> = shares
        .iter()
        .zip(&node_keys)
        .map(|(s, key)| {
            let ctx = EnvelopeContext {
                wallet_id: "limit-wallet",
                epoch: 1,
                share_index: s.index(),
                recipient: &r_pub,
            };
            let env = ShareEnvelope::seal(s, &ctx)?.encode();
            let release = Signed::sign(
                dlocker_proto::statement::ShareRelease {
                    node_id: dlocker_proto::keys::node_id(&key.public_key()),
                    wallet_id: "limit-wallet".into(),
                    epoch: 1,
                    share_index: s.index(),
                    manifest_hash: manifest.hash(),
                    session_key: r_pub,
                    envelope_hash: [0; 32],
                    released_at: 1,
                },
                &k256::ecdsa::SigningKey::from(key.clone()),
            )
            .encode();
            Ok((env, release, key.public_key()))
        })
        .collect::<anyhow::Result<_>>()?;
    let release_checks_ms = time_median_ms(reps, || {
        for (i, (env, release, pk)) in released.iter().enumerate() {
            let _ = Signed::<dlocker_proto::statement::ShareRelease>::decode_trusted(
                release,
                std::slice::from_ref(pk),
            );
            let ctx = EnvelopeContext {
                wallet_id: "limit-wallet",
                epoch: 1,
                share_index: shares[i].index(),
                recipient: &r_pub,
            };
            if let Ok(e) = ShareEnvelope::decode(env)
                && let Ok(s) = e.open(&ctx, &r)
            {
                let _ = commitments.verify(&s);
            }
        }
    });
    let combine_and_open_ms = time_median_ms(reps, || {
        if let Ok(k) = dlocker_proto::share::combine(&shares[..t], &commitments) {
            let _ = dlocker_proto::blob::open(&k, "limit-wallet", &blob);
        }
    });
    let round_trip = warm_round_trips(set, reps).await?;
    let round_trips_ms = 3.0 * round_trip.iter().sum::<f64>() + round_trip.first().unwrap_or(&0.0);
    let passkey_assertion_ms = passkey_times(passkey)?.assertion_ms;
    let floor_ms = session_key_ms
        + manifest_decode_ms
        + approval_check_ms
        + release_checks_ms
        + combine_and_open_ms
        + round_trips_ms;
    let recover_p50_ms = median(&mut warm);
    Ok(RecoveryLimit {
        trustees: n,
        threshold,
        recoveries: (warm.len() + cold.len()) as u64,
        recover_p50_ms,
        approve_p50_ms: median(&mut approve),
        recover_cold_p50_ms: median(&mut cold),
        session_key_ms,
        manifest_decode_ms,
        approval_check_ms,
        release_checks_ms,
        combine_and_open_ms,
        round_trips_ms,
        floor_ms,
        ratio_c: if floor_ms > 0.0 {
            recover_p50_ms / floor_ms
        } else {
            0.0
        },
        passkey_assertion_ms,
    })
}

/// What the owner's passkey of `kind` takes on the client: a registration and an assertion,
/// each the median of a few.
struct PasskeyTimes {
    registration_ms: f64,
    assertion_ms: f64,
}

fn passkey_times(kind: PasskeyKind) -> anyhow::Result<PasskeyTimes> {
    use webauthn_rs::prelude::Uuid;
    let webauthn = bench_webauthn()?;
    let mut auth = owner_passkey(kind);
    let (mut registrations, mut assertions) = (Vec::new(), Vec::new());
    let mut registered = None;
    for _ in 0..20 {
        let (ccr, reg) = webauthn
            .start_passkey_registration(Uuid::new_v4(), "bench", "bench", None)
            .map_err(|e| anyhow::anyhow!("start registration: {e}"))?;
        let t = Instant::now();
        let cred = auth.register(ccr)?;
        registrations.push(t.elapsed().as_secs_f64() * 1000.0);
        if registered.is_none() {
            registered = Some(
                webauthn
                    .finish_passkey_registration(&cred, &reg)
                    .map_err(|e| anyhow::anyhow!("finish registration: {e}"))?,
            );
        }
    }
    let pk = registered.context("no registration")?;
    for _ in 0..20 {
        let (rcr, _) = webauthn
            .start_passkey_authentication(std::slice::from_ref(&pk))
            .map_err(|e| anyhow::anyhow!("start authentication: {e}"))?;
        let t = Instant::now();
        auth.authenticate(rcr)?;
        assertions.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(PasskeyTimes {
        registration_ms: median(&mut registrations),
        assertion_ms: median(&mut assertions),
    })
}

/// A relying party for `https://localhost`, as the bench's software passkeys claim.
fn bench_webauthn() -> anyhow::Result<webauthn_rs::Webauthn> {
    let origin = webauthn_rs::prelude::Url::parse("https://localhost").context("origin")?;
    webauthn_rs::WebauthnBuilder::new("localhost", &origin)
        .and_then(|b| b.build())
        .map_err(|e| anyhow::anyhow!("webauthn: {e}"))
}

/// The median `GetInfo` round trip to each trustee of `set` on a warm channel.
async fn warm_round_trips(set: &TrusteeSet, reps: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(set.len());
    for info in set.trustees() {
        let mut c = dlocker_sdk::protocol::connect(info).await?;
        let mut v = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            c.get_info(GetInfoRequest {}).await.context("GetInfo")?;
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        out.push(median(&mut v));
    }
    Ok(out)
}
