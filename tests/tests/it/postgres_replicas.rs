//! Two `trustee-node serve` replicas of one node (the bank) over one PostgreSQL schema: the same
//! keys copied into a second data directory, the same `[storage]`, another listener.
//!
//! - A storm of deposits and recoveries through the SDK, with the trustees file listing both
//!   endpoints of the bank as `replicas`; one replica is SIGKILLed mid-storm and restarted. No
//!   acknowledged deposit is lost, every recovery completes, the audit log verifies as ONE chain
//!   at either replica (`dlocker audit verify`), and a `WatchEvents` stream opened on the
//!   surviving replica receives every event once, in order, those the other replica produced
//!   included. A staff member added at one replica is known at the other; removed there, he is
//!   refused at the first.
//! - Races, driven with raw gRPC at both replicas at once: one owner assertion (one single-use
//!   nonce, one session transition), one signed staff request (one staff nonce), and a commit
//!   against an abandon of the same staged epoch. Exactly one of each pair succeeds; the other
//!   gets a refusal with its refusal code, and the state shows the one change.
//!
//! Skipped (with the reason) when no PostgreSQL answers, a failure under
//! `DLOCKER_REQUIRE_POSTGRES=1` (CI).

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::craft;
use dlocker_integration_tests::postgres::{Storage, replica_of};
use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, Touch, recover_approved, session_key,
};
use dlocker_integration_tests::rotation::{RotationCluster, epoch_owner, source, stage_only};
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_proto::pb::staff_client::StaffClient as RawStaffClient;
use dlocker_proto::refusal::NodeRefusal;
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, SoftwareAuthenticator, StaffClient, StaffKey, TrusteeInfo,
    TrusteeSet,
};
use futures::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::transport::Channel;

/// Deposits in the storm, how many of them are then recovered, and how many run at once.
const WALLETS: usize = 12;
const RECOVERIES: usize = 6;
const AT_ONCE: usize = 4;
/// Acknowledged deposits before one replica is killed.
const KILL_AFTER: usize = 3;

const POLICY: BackupPolicy = BackupPolicy {
    threshold: 2,
    recovery_delay_secs: 0,
};

/// Every call of the storm comes from 127.0.0.1: lift the per-caller limits (per replica).
fn storm_limits() -> Vec<(String, String, toml::Value)> {
    vec![
        (
            "limits".into(),
            "owner_calls_per_minute".into(),
            toml::Value::Integer(1_000_000),
        ),
        (
            "limits".into(),
            "pending_ceremonies_per_caller".into(),
            toml::Value::Integer(100_000),
        ),
    ]
}

/// `set` with the bank also reachable at `replica`.
fn with_bank_replica(set: &TrusteeSet, replica: &str) -> TrusteeSet {
    let trustees = set
        .trustees()
        .iter()
        .map(|t| {
            let info = TrusteeInfo::new(
                &t.name,
                t.endpoint.clone(),
                t.public_key,
                t.role,
                t.tls.clone(),
            );
            if t.role == dlocker_sdk::Role::Bank {
                info.with_replicas([replica.to_owned()])
            } else {
                info
            }
        })
        .collect();
    TrusteeSet::new(trustees).expect("a valid set")
}

async fn channel(c: &Cluster, i: usize) -> Channel {
    c.node(i).channel().await.expect("connect")
}

/// The audit entries' kinds at the node behind `ch` (read over gRPC, from the start).
async fn audit_kinds(ch: Channel) -> Vec<String> {
    RecoveryClient::new(ch)
        .get_audit_log(pb::GetAuditLogRequest {
            from_seq: 0,
            limit: 0,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect("audit log")
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// `dlocker --json audit verify` of the bank at the endpoint in `trustees_file`.
fn audit_verify(trustees_file: &std::path::Path) -> serde_json::Value {
    let out = dlocker_integration_tests::cli_command()
        .args(["--json", "audit", "verify", "--trustees"])
        .arg(trustees_file)
        .args(["--name", "bank"])
        .output()
        .expect("run dlocker audit verify");
    assert!(
        out.status.success(),
        "audit verify failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// One wallet of the storm: backed up through `trustees`; if `recover`, then recovered (tried
/// again when a replica went down under the attempt). `None` when the backup was not
/// acknowledged (a replica died under it): such a deposit is not owed to anyone.
async fn storm_wallet(
    k: usize,
    trustees: TrusteeSet,
    staff_key: zeroize::Zeroizing<String>,
    recover: bool,
    acked: Arc<AtomicUsize>,
) -> Option<(String, PreparedBackup)> {
    let key = StaffKey::from_hex(&staff_key).expect("staff key");
    let staff = StaffClient::new(key, trustees.bank());
    let wallet = craft::wallet_id(&format!("storm{k}"));
    let data = format!("storm wallet {k}: twelve words of seed").into_bytes();
    let prepared = PreparedBackup::new(&trustees, &wallet, &data, POLICY).expect("prepare");
    let mut auth = SoftwareAuthenticator::new();
    if let Err(e) =
        dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &|_| {}).await
    {
        eprintln!("storm: backup {k} not acknowledged: {e}");
        return None;
    }
    acked.fetch_add(1, Ordering::SeqCst);
    if recover {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match recover_approved(&trustees, &staff, &wallet, &mut auth, &|_| {}).await {
                Ok(r) => {
                    assert_eq!(r.data().expose(), &data[..], "wallet {k} recovered intact");
                    break;
                }
                Err(e) if attempt < 5 => {
                    eprintln!("storm: recovery {k} attempt {attempt}: {e}; again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("recovery {k} did not complete: {e}"),
            }
        }
    }
    Some((wallet, prepared))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_the_bank_on_one_schema_lose_nothing_when_one_is_killed_mid_storm() {
    let Some(pg) = Storage::postgres("replicas") else {
        return;
    };
    // The bank on PostgreSQL, the two other trustees on sled.
    let mut rc = RecoveryCluster::init(RecoverySpec {
        nodes: 3,
        config: storm_limits(),
        staff: vec![
            ("alice".into(), "approver,canceller".into()),
            ("root".into(), "admin".into()),
        ],
        ..RecoverySpec::default()
    });
    pg.configure(rc.data_dir(0), 0);
    rc.start_all().await;
    let mut twin = replica_of(rc.data_dir(0), &rc.root_dir().join("bank-replica"));
    twin.start_all().await;
    let only_a = rc.trustees();
    let both = with_bank_replica(&only_a, twin.endpoint(0));

    // A WatchEvents stream on replica B, from the start; B is never killed.
    let mut stream = RecoveryClient::new(channel(&twin, 0).await)
        .watch_events(pb::WatchEventsRequest {
            cursor: 0,
            staff_request_encoded: rc.staff_watch_request(0),
        })
        .await
        .expect("WatchEvents at replica B")
        .into_inner();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, String)>();
    let watcher = tokio::spawn(async move {
        while let Ok(Some(e)) = stream.message().await {
            if seen_tx.send((e.seq, e.kind)).is_err() {
                return;
            }
        }
    });
    let mut seen: Vec<(u64, String)> = Vec::new();

    // A deposit through replica A alone: its event reaches the watcher on replica B.
    let first = craft::wallet_id("replica-a");
    let first_prepared =
        PreparedBackup::new(&only_a, &first, b"through replica A", POLICY).expect("prepare");
    dlocker_sdk::protocol::backup(
        &only_a,
        &first_prepared,
        "alice",
        &mut SoftwareAuthenticator::new(),
        &|_| {},
    )
    .await
    .expect("a backup through replica A");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|(_, k)| k == "enrollment") {
        match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
            Ok(Some(e)) => seen.push(e),
            _ => panic!("replica B's watcher never saw replica A's enrollment event: {seen:?}"),
        }
    }

    // The storm: WALLETS deposits, AT_ONCE at a time, the first RECOVERIES then recovered;
    // replica A is SIGKILLed after KILL_AFTER acknowledged deposits and restarted.
    let staff_key = rc.staff[0].key.to_hex();
    let acked = Arc::new(AtomicUsize::new(0));
    let storm = {
        let (both, acked) = (both.clone(), acked.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..WALLETS)
                .map(|k| {
                    storm_wallet(
                        k,
                        both.clone(),
                        staff_key.clone(),
                        k < RECOVERIES,
                        acked.clone(),
                    )
                })
                .buffer_unordered(AT_ONCE)
                .collect::<Vec<_>>()
                .await
        })
    };
    while acked.load(Ordering::SeqCst) < KILL_AFTER && !storm.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rc.kill(0);
    let killed_at = acked.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    rc.start_node(0).await;
    let outcomes = storm.await.expect("storm task");
    let acknowledged: Vec<(String, PreparedBackup)> = outcomes.into_iter().flatten().collect();
    println!(
        "storm: {} of {WALLETS} deposits acknowledged, {RECOVERIES} recovered; replica A \
         SIGKILLed after {killed_at} acknowledgements and restarted",
        acknowledged.len()
    );
    assert!(
        killed_at < WALLETS,
        "the kill came before the storm ended (killed after {killed_at})"
    );
    assert!(
        acknowledged.len() >= WALLETS / 2,
        "most deposits went through the surviving replica: {}",
        acknowledged.len()
    );

    // Zero acknowledged deposits lost: each verifies at every trustee (the bank at either
    // replica, whichever the SDK picks; and at each replica alone).
    let only_b = TrusteeSet::new(
        only_a
            .trustees()
            .iter()
            .map(|t| {
                let endpoint = if t.role == dlocker_sdk::Role::Bank {
                    twin.endpoint(0).to_owned()
                } else {
                    t.endpoint.clone()
                };
                TrusteeInfo::new(&t.name, endpoint, t.public_key, t.role, t.tls.clone())
            })
            .collect(),
    )
    .expect("set");
    let mut all = acknowledged;
    all.push((first, first_prepared));
    for (wallet, prepared) in &all {
        for set in [&only_a, &only_b] {
            let report = dlocker_sdk::protocol::verify_backup(set, prepared.manifest()).await;
            assert!(
                report.all_healthy(),
                "acknowledged deposit {wallet} lost: {:?}",
                report.entries
            );
        }
    }

    // One chain: it verifies at either replica, and both serve the same entries.
    let file_a = rc.root_dir().join("trustees-a.toml");
    let file_b = rc.root_dir().join("trustees-b.toml");
    std::fs::write(&file_a, only_a.to_toml()).expect("write");
    std::fs::write(&file_b, only_b.to_toml()).expect("write");
    let (va, vb) = (audit_verify(&file_a), audit_verify(&file_b));
    assert_eq!(va["ok"], true, "{va}");
    assert_eq!(vb["ok"], true, "{vb}");
    assert_eq!(va["checkpoint_signed_by_pinned_key"], true, "{va}");
    let (ka, kb) = (
        audit_kinds(channel(&rc, 0).await).await,
        audit_kinds(channel(&twin, 0).await).await,
    );
    assert_eq!(ka, kb, "both replicas serve one audit log");
    let enrollments = ka.iter().filter(|k| *k == "enrollment").count();
    assert!(
        enrollments >= all.len(),
        "every acknowledged deposit is in the one chain ({enrollments} enrollment entries)"
    );
    println!(
        "audit: one chain of {} entries, verified at both replicas",
        ka.len()
    );

    // The watcher on B missed nothing: every event seq from 1 to the outbox's last, once, in
    // order (the outbox as stored is the reference; both replicas appended to it).
    let stored = pg_events(&pg.schema(0).expect("schema"));
    let last = stored.last().copied().unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.last().map(|(s, _)| *s) < Some(last) {
        match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
            Ok(Some(e)) => seen.push(e),
            _ => break,
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs, stored,
        "the watcher on replica B saw exactly the stored outbox"
    );
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "no gap, no duplicate");
    println!("events: replica B's watcher received all {last} events, in order");
    watcher.abort();

    // A staff change made at one replica holds at the other from its next staff request: bob,
    // added at A, is known at B; removed at B, he is refused at A.
    let bob = StaffKey::generate();
    let bob_file = rc.root_dir().join("bob.key");
    bob.save(&bob_file).expect("save bob");
    let root_key = rc.staff[1].key_file.clone();
    let staff_cli = |file: &std::path::Path, key: &std::path::Path, args: &[&str]| {
        dlocker_integration_tests::cli_command()
            .args(["--json"])
            .args(args)
            .arg("--trustees")
            .arg(file)
            .arg("--key")
            .arg(key)
            .output()
            .expect("run dlocker")
    };
    let added = staff_cli(
        &file_a,
        &root_key,
        &[
            "staff",
            "add",
            "--id",
            "bob",
            "--public-key",
            &bob.public_key_hex(),
            "--roles",
            "viewer",
        ],
    );
    assert!(added.status.success(), "add bob at A: {added:?}");
    let at_b = staff_cli(&file_b, &bob_file, &["recoveries", "list"]);
    assert!(
        at_b.status.success(),
        "bob, added at A, lists at B: {at_b:?}"
    );
    let removed = staff_cli(&file_b, &root_key, &["staff", "remove", "bob"]);
    assert!(removed.status.success(), "remove bob at B: {removed:?}");
    let at_a = staff_cli(&file_a, &bob_file, &["recoveries", "list"]);
    assert!(
        !at_a.status.success(),
        "bob, removed at B, still lists at A"
    );
    let err = String::from_utf8_lossy(&at_a.stderr);
    assert!(err.contains("unknown key"), "{err}");
}

/// The sequence numbers stored in the schema's event outbox, in order.
fn pg_events(schema: &str) -> Vec<u64> {
    dlocker_integration_tests::postgres::with_client(|c| {
        c.query(&format!("SELECT k FROM {schema}.events ORDER BY k"), &[])
            .expect("events")
            .iter()
            .map(|r| {
                let k: Vec<u8> = r.get(0);
                u64::from_be_bytes(k.try_into().expect("8-byte key"))
            })
            .collect()
    })
    .expect("postgres")
}

/// Asserts exactly one of `a`, `b` succeeded and the other was refused with `refusal`; returns
/// the winner's answer.
fn exactly_one<T: std::fmt::Debug>(
    what: &str,
    a: Result<T, tonic::Status>,
    b: Result<T, tonic::Status>,
    expected: NodeRefusal,
) -> T {
    match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => {
            let refusal = NodeRefusal::of_status(&lost);
            assert_eq!(
                refusal,
                Some(expected),
                "{what}: the loser's refusal: {lost:?}"
            );
            assert_eq!(lost.code(), expected.grpc_code(), "{what}: {lost:?}");
            println!(
                "race {what}: one OK; the other {:?} ({}): {}",
                lost.code(),
                refusal.map(|r| r.as_str()).unwrap_or_default(),
                lost.message()
            );
            won
        }
        (a, b) => panic!("{what}: expected exactly one success, got {a:?} and {b:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_racing_on_one_nonce_one_session_and_one_epoch_let_exactly_one_through() {
    let Some(pg) = Storage::postgres("races") else {
        return;
    };
    let rc = RotationCluster::start_on(3, None, pg.clone()).await;
    let mut twin = replica_of(rc.data_dir(0), &rc.root_dir().join("bank-replica"));
    twin.start_all().await;
    let bank_id = rc.node(0).node_id.clone();
    let (wallet, prepared, mut auth) = rc.backup("races", &[0, 1, 2], 2, b"raced").await;

    // 1. One owner assertion (one nonce, one Open → OwnerAuthenticated transition), sent to
    // both replicas at once.
    let r = session_key().public_key();
    let opened = rc
        .recovery_cluster()
        .open(0, &wallet, &r)
        .await
        .expect("OpenRecovery at replica A");
    let mut nonces = Nonces::default();
    nonces.push(&bank_id, &opened.nonce);
    let touch = Touch::new(
        &mut auth,
        OwnerAction::Recover,
        &wallet,
        &encode_public_key(&r),
        nonces,
        &opened.request_options_json,
    );
    let req = pb::AuthenticateOwnerRequest {
        session_id: opened.session_id.clone(),
        assertion_json: touch.assertion_json.clone(),
        nonces: touch.nonces.wire(),
    };
    let (mut ra, mut rb) = (
        RecoveryClient::new(channel(&rc, 0).await),
        RecoveryClient::new(channel(&twin, 0).await),
    );
    let (a, b) = tokio::join!(
        ra.authenticate_owner(req.clone()),
        rb.authenticate_owner(req)
    );
    // Serialised by the advisory lock, the second finds the session already authenticated.
    exactly_one("AuthenticateOwner", a, b, NodeRefusal::AlreadyAuthenticated);
    let kinds = audit_kinds(channel(&twin, 0).await).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "owner_authenticated").count(),
        1,
        "one transition: {kinds:?}"
    );

    // 2. One signed staff approval (one staff nonce), sent to both replicas at once.
    let staff_key = StaffKey::from_hex(&rc.recovery_cluster().staff[0].key.to_hex()).expect("key");
    let approve = staff_key.sign_request(dlocker_sdk::staff::new_request(
        &bank_id,
        dlocker_proto::statement::StaffAction::ApproveRecovery,
        &opened.session_id,
    ));
    let (mut sa, mut sb) = (
        RawStaffClient::new(channel(&rc, 0).await),
        RawStaffClient::new(channel(&twin, 0).await),
    );
    let req = pb::ApproveRecoveryRequest {
        staff_request_encoded: approve,
    };
    let (a, b) = tokio::join!(sa.approve_recovery(req.clone()), sb.approve_recovery(req));
    let won = exactly_one(
        "ApproveRecovery (one staff nonce)",
        a,
        b,
        NodeRefusal::StaffReplayed,
    );
    assert_eq!(won.into_inner().approvers, vec!["alice".to_owned()]);
    let kinds = audit_kinds(channel(&rc, 0).await).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "recovery_approved").count(),
        1,
        "one approval recorded: {kinds:?}"
    );
    // An open session holds rotations off: staff cancel it (at replica B) before staging.
    let cancel = staff_key.sign_request(dlocker_sdk::staff::new_request(
        &bank_id,
        dlocker_proto::statement::StaffAction::CancelRecovery,
        &opened.session_id,
    ));
    sb.cancel_recovery(pb::StaffCancelRequest {
        staff_request_encoded: cancel,
    })
    .await
    .expect("staff cancel at replica B");

    // 3. A staged epoch 2 (a refresh over the same trustees, stopped before any commit), then
    // CommitEpoch at replica A against AbandonEpoch at replica B, each with its own touch.
    let set = rc.set(&[0, 1, 2]);
    let (_, h2, quorum) = stage_only(
        rc.root_dir(),
        &wallet,
        &set,
        &set,
        &source(&prepared),
        POLICY,
        &mut auth,
        3,
    )
    .await;
    assert_eq!(rc.epochs_at(0, &wallet).await, Some((1, 2)), "staged");
    let commit_owner = epoch_owner(
        channel(&rc, 0).await,
        &bank_id,
        &wallet,
        pb::EpochAction::Commit,
        &h2,
        &mut auth,
        false,
    )
    .await;
    let abandon_owner = epoch_owner(
        channel(&twin, 0).await,
        &bank_id,
        &wallet,
        pb::EpochAction::Abandon,
        &h2,
        &mut auth,
        false,
    )
    .await;
    let (mut ea, mut eb) = (
        EpochsClient::new(channel(&rc, 0).await),
        EpochsClient::new(channel(&twin, 0).await),
    );
    let (a, b) = tokio::join!(
        ea.commit_epoch(pb::CommitEpochRequest {
            wallet_id: wallet.clone(),
            manifest_hash: h2.0.to_vec(),
            owner: Some(commit_owner),
            quorum_encoded: quorum,
        }),
        eb.abandon_epoch(pb::AbandonEpochRequest {
            wallet_id: wallet.clone(),
            manifest_hash: h2.0.to_vec(),
            owner: Some(abandon_owner),
        })
    );
    let committed = a.is_ok();
    exactly_one(
        "CommitEpoch against AbandonEpoch",
        a.map(drop),
        b.map(drop),
        if committed {
            NodeRefusal::EpochAlreadyCommitted
        } else {
            NodeRefusal::EpochNotStaged
        },
    );
    let expected = if committed { (2, 0) } else { (1, 0) };
    assert_eq!(rc.epochs_at(0, &wallet).await, Some(expected));
    let kinds = audit_kinds(channel(&twin, 0).await).await;
    let (commits, abandons) = (
        kinds.iter().filter(|k| *k == "epoch_committed").count(),
        kinds.iter().filter(|k| *k == "epoch_abandoned").count(),
    );
    assert_eq!(
        (commits, abandons),
        if committed { (1, 0) } else { (0, 1) },
        "one epoch transition: {kinds:?}"
    );
}
