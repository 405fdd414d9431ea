//! In-process gRPC tests of recovery: a bank node on loopback with a manual clock, a software
//! passkey (test only), staff keys signing requests.

use crate::config::{NodeConfig, Role};
use crate::db::Database;
use crate::enrollment::trustee_service::tests::{Backup, begin};
use crate::init::{InitOptions, StaffSpec, init_node};
use crate::keys::{FileKeyProvider, KeyProvider as _};
use crate::node::{Clock, Node};
use crate::owner_touch_tests as touch;
use crate::server::{RunningNode, spawn, spawn_on};
use crate::staff::auth::StaffRole;
use dlocker_proto::audit::verify_chain;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::{decode_public_key, encode_public_key, public_key_hex};
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_proto::pb::staff_client::StaffClient;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use dlocker_proto::statement::{
    AuditCheckpoint, BankApproval, ShareRelease, Signed, StaffAction, StaffRequest,
};
use k256::ecdsa::SigningKey;
use k256::elliptic_curve::Generate;
use k256::{PublicKey, SecretKey};
use rand::RngExt as _;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic::transport::Channel;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const T0: u64 = 1_700_000_000;
const WALLET: &str = "wallet-r";

struct ManualClock(AtomicU64);
impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Harness {
    _tmp: tempfile::TempDir,
    node: RunningNode,
    clock: Arc<ManualClock>,
    _trustee: TrusteeClient<Channel>,
    recovery: RecoveryClient<Channel>,
    staff: StaffClient<Channel>,
    auth: SoftPasskey,
    backup: Backup,
    node_id: String,
    alice: SigningKey,
    bob: SigningKey,
    bank_key: SigningKey,
    /// The nonces of the last owner touch.
    nonces: Vec<pb::TrusteeNonce>,
}

fn key() -> SigningKey {
    SigningKey::generate_from_rng(&mut rand::rng())
}

fn init_bank(dir: &Path, alice: &SigningKey, bob: &SigningKey, approvals: u32) {
    let mut opts = InitOptions::new(
        dir.to_path_buf(),
        "bank",
        "127.0.0.1:0".parse().expect("addr"),
        Role::Bank,
    );
    opts.endpoint = Some("http://127.0.0.1:7101".into());
    opts.approvals_required = Some(approvals);
    for (id, k) in [("alice", alice), ("bob", bob)] {
        opts.staff.push(StaffSpec {
            id: id.into(),
            public_key: public_key_hex(&PublicKey::from(k.verifying_key())),
            roles: vec![StaffRole::Approver, StaffRole::Canceller],
        });
    }
    init_node(&opts).expect("init");
}

impl Harness {
    async fn new(approvals: u32) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let (alice, bob) = (key(), key());
        init_bank(dir, &alice, &bob, approvals);
        let config = NodeConfig::load(dir).expect("config");
        let clock = Arc::new(ManualClock(AtomicU64::new(T0)));
        let store = Database::open(&config.db_path()).expect("db");
        let keys = FileKeyProvider::new(dir);
        let bank_key = keys.bank_approval_key().expect("bank key").signing_key();
        let node = Node::new(config, &keys, store, clock.clone()).expect("node");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let node = spawn_on(Arc::new(node), listener).expect("spawn");
        let mut trustee = TrusteeClient::connect(node.url()).await.expect("connect");
        let recovery = RecoveryClient::connect(node.url()).await.expect("connect");
        let staff = StaffClient::connect(node.url()).await.expect("connect");
        let info = trustee
            .get_info(pb::GetInfoRequest {})
            .await
            .expect("info")
            .into_inner();
        assert_eq!(
            info.bank_approval_key,
            encode_public_key(&PublicKey::from(bank_key.verifying_key())).to_vec()
        );
        let node_key = decode_public_key(&info.public_key).expect("key");
        let backup = Backup::new(WALLET, node_key);
        let mut auth = SoftPasskey::new(true);
        let (ceremony, cred) = begin(&mut trustee, &mut auth, &backup).await;
        trustee
            .finish_enrollment(backup.request(&ceremony, &cred))
            .await
            .expect("enroll");
        Self {
            _tmp: tmp,
            node,
            clock,
            _trustee: trustee,
            recovery,
            staff,
            auth,
            backup,
            node_id: info.node_id,
            alice,
            bob,
            bank_key,
            nonces: Vec::new(),
        }
    }

    fn now(&self) -> u64 {
        self.clock.0.load(Ordering::SeqCst)
    }

    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    fn staff_request(&self, key: &SigningKey, action: StaffAction, target: &str) -> Vec<u8> {
        Signed::sign(
            StaffRequest {
                node_id: self.node_id.clone(),
                action,
                target: target.into(),
                timestamp: self.now(),
                nonce: rand::rng().random(),
            },
            key,
        )
        .encode()
    }

    async fn open(&mut self, r: &PublicKey) -> Result<pb::OpenRecoveryResponse, tonic::Status> {
        self.recovery
            .open_recovery(pb::OpenRecoveryRequest {
                wallet_id: WALLET.into(),
                session_key: encode_public_key(r).to_vec(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// The owner's one touch for `action` about `r` with this node's `nonce`; the nonces are kept
    /// for the next `authenticate` / `owner_cancel`.
    fn assertion(
        &mut self,
        action: OwnerAction,
        r: &PublicKey,
        request_options_json: &str,
        nonce: &[u8],
    ) -> String {
        let pairs = vec![(self.node_id.clone(), nonce.to_vec())];
        let challenge = touch::challenge(action, WALLET, &encode_public_key(r), &pairs);
        self.nonces = touch::wire(&pairs);
        touch::assert(&mut self.auth, request_options_json, &challenge)
    }

    /// The owner's recovery touch for an opened session.
    fn recover_assertion(&mut self, opened: &pb::OpenRecoveryResponse, r: &PublicKey) -> String {
        self.assertion(
            OwnerAction::Recover,
            r,
            &opened.request_options_json,
            &opened.nonce,
        )
    }

    async fn authenticate(&mut self, session: &str, assertion: &str) -> Result<u64, tonic::Status> {
        self.recovery
            .authenticate_owner(pb::AuthenticateOwnerRequest {
                session_id: session.into(),
                assertion_json: assertion.into(),
                nonces: self.nonces.clone(),
            })
            .await
            .map(|r| r.into_inner().release_not_before)
    }

    async fn approve(&mut self, who: &SigningKey, session: &str) -> pb::ApproveRecoveryResponse {
        let req = self.staff_request(who, StaffAction::ApproveRecovery, session);
        self.staff
            .approve_recovery(pb::ApproveRecoveryRequest {
                staff_request_encoded: req,
            })
            .await
            .expect("approve")
            .into_inner()
    }

    async fn release(
        &mut self,
        session: &str,
        approval: Vec<u8>,
    ) -> Result<pb::ReleaseShareResponse, tonic::Status> {
        self.recovery
            .release_share(pb::ReleaseShareRequest {
                session_id: session.into(),
                bank_approval_encoded: approval,
                wait_secs: 0,
            })
            .await
            .map(|r| r.into_inner())
    }

    async fn release_held_now(
        &mut self,
        session: &str,
        approval: Vec<u8>,
        wait_secs: u32,
    ) -> Result<pb::ReleaseShareResponse, tonic::Status> {
        release_held(self, session, approval, wait_secs)
            .await
            .expect("task")
    }

    /// An owner-authenticated session towards a fresh `R` with the bank's approval, the clock
    /// `left` seconds before its release_not_before (T0 + 60).
    async fn approved_before_delay(&mut self, left: u64) -> (String, Vec<u8>) {
        let r = new_r().public_key();
        let opened = self.open(&r).await.expect("open");
        let assertion = self.recover_assertion(&opened, &r);
        self.authenticate(&opened.session_id, &assertion)
            .await
            .expect("auth");
        let approval = self.approval(&self.bank_key.clone(), &r, T0 + 3600);
        self.advance(60 - left);
        (opened.session_id, approval)
    }

    fn approval(&self, signer: &SigningKey, r: &PublicKey, expires_at: u64) -> Vec<u8> {
        Signed::sign(
            BankApproval {
                bank_node_id: self.node_id.clone(),
                wallet_id: WALLET.into(),
                session_key: *r,
                issued_at: self.now(),
                expires_at,
                approvers: vec!["alice".into()],
            },
            signer,
        )
        .encode()
    }
}

fn new_r() -> SecretKey {
    SecretKey::generate_from_rng(&mut rand::rng())
}

fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, needle: &str) {
    let s = r.expect_err("must be refused");
    assert_eq!(s.code(), code, "{}", s.message());
    assert!(
        s.message().contains(needle),
        "{:?} lacks {needle:?}",
        s.message()
    );
}

/// A valid assertion with its signature replaced.
fn forged(assertion: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(assertion).expect("json");
    v["response"]["signature"] = serde_json::Value::String("MEUC".to_owned() + &"A".repeat(92));
    v.to_string()
}

#[tokio::test]
async fn happy_path_and_release_refusals() {
    let mut h = Harness::new(1).await;
    let r_secret = new_r();
    let r = r_secret.public_key();
    let opened = h.open(&r).await.expect("open");
    assert_eq!(opened.release_not_before, T0 + 60);
    assert_eq!(opened.manifest_encoded, h.backup.manifest.encode());
    // Opening again (a retry, another device, a stranger) is a new session: it neither
    // replaces nor names the first one.
    let again = h.open(&r).await.expect("retry");
    assert_ne!(again.session_id, opened.session_id);
    let other = h.open(&new_r().public_key()).await.expect("another device");
    assert_ne!(other.session_id, opened.session_id);
    let sid = opened.session_id.clone();

    // No passkey yet.
    let fake_approval = h.approval(&h.bank_key.clone(), &r, T0 + 3600);
    refused(
        h.release(&sid, fake_approval).await,
        Code::PermissionDenied,
        "passkey",
    );

    let assertion = h.recover_assertion(&opened, &r);
    assert_eq!(
        h.authenticate(&sid, &assertion).await.expect("auth"),
        T0 + 60
    );
    refused(
        h.authenticate(&sid, &assertion).await,
        Code::FailedPrecondition,
        "already authenticated",
    );

    // No approval; the bank has none yet either.
    refused(
        h.release(&sid, Vec::new()).await,
        Code::InvalidArgument,
        "malformed",
    );
    let mut staff = h.staff.clone();
    refused(
        staff
            .get_approval(pb::GetApprovalRequest {
                wait_secs: 0,
                wallet_id: WALLET.into(),
                session_key: encode_public_key(&r).to_vec(),
            })
            .await,
        Code::FailedPrecondition,
        "awaiting bank approval (0 of 1 staff)",
    );

    // Staff approval; a replay of the same request is refused.
    let alice = h.alice.clone();
    let req = h.staff_request(&alice, StaffAction::ApproveRecovery, &sid);
    let a = staff
        .approve_recovery(pb::ApproveRecoveryRequest {
            staff_request_encoded: req.clone(),
        })
        .await
        .expect("approve")
        .into_inner();
    assert_eq!(a.approvers, vec!["alice".to_owned()]);
    assert!(!a.bank_approval_encoded.is_empty());
    refused(
        staff
            .approve_recovery(pb::ApproveRecoveryRequest {
                staff_request_encoded: req,
            })
            .await,
        Code::PermissionDenied,
        "replay",
    );
    let approval = staff
        .get_approval(pb::GetApprovalRequest {
            wait_secs: 0,
            wallet_id: WALLET.into(),
            session_key: encode_public_key(&r).to_vec(),
        })
        .await
        .expect("get approval")
        .into_inner()
        .bank_approval_encoded;
    assert_eq!(approval, a.bank_approval_encoded);

    // Unknown signer, another R, expired.
    let stranger = key();
    refused(
        h.release(&sid, h.approval(&stranger, &r, T0 + 3600)).await,
        Code::PermissionDenied,
        "does not accept",
    );
    let bank = h.bank_key.clone();
    refused(
        h.release(&sid, h.approval(&bank, &new_r().public_key(), T0 + 3600))
            .await,
        Code::PermissionDenied,
        "another device key",
    );
    refused(
        h.release(&sid, h.approval(&bank, &r, T0)).await,
        Code::PermissionDenied,
        "expired",
    );

    // Before the delay.
    refused(
        h.release(&sid, approval.clone()).await,
        Code::FailedPrecondition,
        "(60 s left)",
    );
    h.advance(59);
    refused(
        h.release(&sid, approval.clone()).await,
        Code::FailedPrecondition,
        "(1 s left)",
    );
    h.advance(1);

    // Release: the envelope opens with R's secret and the share matches the manifest.
    let rel = h.release(&sid, approval).await.expect("release");
    assert_eq!(rel.manifest_encoded, h.backup.manifest.encode());
    assert_eq!(rel.blob, h.backup.blob);
    let ctx = EnvelopeContext {
        wallet_id: WALLET,
        epoch: 1,
        share_index: 1,
        recipient: &r,
    };
    let share = ShareEnvelope::decode(&rel.share_envelope_encoded)
        .expect("decode")
        .open(&ctx, &r_secret)
        .expect("open with R");
    h.backup
        .manifest
        .commitments()
        .verify(&share)
        .expect("share verifies");
    assert_eq!(share.index(), h.backup.shares[0].index());
    let statement =
        Signed::<ShareRelease>::decode_trusted(&rel.release_encoded, &[h.backup.node_key])
            .expect("release statement");
    let body = statement.body();
    assert_eq!(body.session_key, r);
    assert_eq!(body.manifest_hash, h.backup.manifest.hash());
    assert_eq!(
        body.envelope_hash,
        <[u8; 32]>::from(Sha256::digest(&rel.share_envelope_encoded))
    );
    let status = h
        .recovery
        .get_recovery_status(pb::GetRecoveryStatusRequest {
            session_id: sid.clone(),
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.state, "released");
    assert!(status.approved);
    assert_eq!(status.approvers, vec!["alice".to_owned()]);

    // The audit log: chained, checkpointed, wallet ids anonymised; tampering is detected.
    let log = h
        .recovery
        .get_audit_log(pb::GetAuditLogRequest {
            from_seq: 1,
            limit: 0,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect("audit")
        .into_inner();
    let kinds: Vec<&str> = log.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "enrollment",
            // The owner's session, a retry and another device's.
            "recovery_opened",
            "recovery_opened",
            "recovery_opened",
            "owner_authenticated",
            "recovery_approved",
            "share_released"
        ]
    );
    assert!(
        log.entries
            .iter()
            .all(|e| !e.wallet_tag.contains(WALLET) && !e.detail.contains(WALLET))
    );
    let cp =
        Signed::<AuditCheckpoint>::decode_trusted(&log.checkpoint_encoded, &[h.backup.node_key])
            .expect("checkpoint");
    let records: Vec<_> = log
        .entries
        .iter()
        .map(|e| {
            (
                dlocker_proto::audit::AuditRecord {
                    seq: e.seq,
                    at: e.at,
                    kind: e.kind.clone(),
                    wallet_tag: e.wallet_tag.clone(),
                    detail: e.detail.clone(),
                    prev_hash: e.prev_hash.clone().try_into().expect("32"),
                },
                <[u8; 32]>::try_from(e.hash.clone()).expect("32"),
            )
        })
        .collect();
    verify_chain(&records, cp.body().seq, &cp.body().head_hash).expect("chain verifies");
    let mut tampered = records.clone();
    tampered[3].0.detail = "staff mallory (1 of 1)".into();
    assert!(verify_chain(&tampered, cp.body().seq, &cp.body().head_hash).is_err());

    h.node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn owner_and_staff_cancellations() {
    let mut h = Harness::new(1).await;
    // Owner cancel.
    let r = new_r().public_key();
    let opened = h.open(&r).await.expect("open");
    let sid = opened.session_id.clone();
    let assertion = h.recover_assertion(&opened, &r);
    h.authenticate(&sid, &assertion).await.expect("auth");
    let begun = h
        .recovery
        .begin_owner_cancel(pb::BeginOwnerCancelRequest {
            session_id: sid.clone(),
        })
        .await
        .expect("begin cancel")
        .into_inner();
    let cancel_assertion = h.assertion(
        OwnerAction::Cancel,
        &r,
        &begun.request_options_json,
        &begun.nonce,
    );
    use pb::cancel_recovery_request::Authority;
    h.recovery
        .cancel_recovery(pb::CancelRecoveryRequest {
            session_id: sid.clone(),
            authority: Some(Authority::OwnerAssertionJson(cancel_assertion)),
            nonces: h.nonces.clone(),
        })
        .await
        .expect("owner cancel");
    let alice = h.alice.clone();
    let bank = h.bank_key.clone();
    h.advance(60);
    let approval = h.approval(&bank, &r, h.now() + 3600);
    refused(
        h.release(&sid, approval).await,
        Code::FailedPrecondition,
        "cancelled by owner",
    );

    // Staff cancel of a new, approved session.
    let r2 = new_r().public_key();
    let opened = h
        .open(&r2)
        .await
        .expect("a cancelled session does not block a new one");
    let sid2 = opened.session_id.clone();
    let assertion = h.recover_assertion(&opened, &r2);
    h.authenticate(&sid2, &assertion).await.expect("auth");
    let approval = h.approve(&alice, &sid2).await.bank_approval_encoded;
    let list = h
        .staff
        .list_recoveries(pb::ListRecoveriesRequest {
            staff_request_encoded: h.staff_request(&alice, StaffAction::ListRecoveries, ""),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.recoveries.len(), 1);
    assert_eq!(list.recoveries[0].session_id, sid2);
    assert!(list.recoveries[0].approved);
    let cancel_req = h.staff_request(&alice, StaffAction::CancelRecovery, &sid2);
    let cancellation = h
        .staff
        .cancel_recovery(pb::StaffCancelRequest {
            staff_request_encoded: cancel_req,
        })
        .await
        .expect("staff cancel")
        .into_inner()
        .bank_cancellation_encoded;
    h.advance(60);
    refused(
        h.release(&sid2, approval).await,
        Code::FailedPrecondition,
        "cancelled by bank staff alice",
    );
    // Presenting the cancellation (as the CLI does at every trustee) by wallet, without the
    // session id, is accepted and idempotent.
    h.recovery
        .cancel_recovery(pb::CancelRecoveryRequest {
            session_id: String::new(),
            authority: Some(Authority::BankCancellationEncoded(cancellation)),
            nonces: Vec::new(),
        })
        .await
        .expect("present cancellation");
    let log = h
        .recovery
        .get_audit_log(pb::GetAuditLogRequest {
            from_seq: 1,
            limit: 1000,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect("audit")
        .into_inner();
    let cancels: Vec<_> = log
        .entries
        .iter()
        .filter(|e| e.kind == "recovery_cancelled")
        .map(|e| e.detail.clone())
        .collect();
    assert_eq!(cancels.len(), 2, "{cancels:?}");
    assert!(cancels[0].ends_with("by owner"));
    assert!(cancels[1].ends_with("by bank staff alice"));
    h.node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_get_approval_does_not_hold_the_shutdown() {
    let mut h = Harness::new(1).await;
    let r = new_r().public_key();
    h.open(&r).await.expect("open");
    let mut staff = h.staff.clone();
    let held = tokio::spawn(async move {
        staff
            .get_approval(pb::GetApprovalRequest {
                wallet_id: WALLET.into(),
                session_key: encode_public_key(&r).to_vec(),
                wait_secs: 30,
            })
            .await
    });
    // The call is held (nobody approves); then the node is asked to stop.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !held.is_finished(),
        "the call is held while the approval is pending"
    );
    // Well inside the call's 30 s: the shutdown does not wait for it.
    tokio::time::timeout(std::time::Duration::from_secs(15), h.node.shutdown())
        .await
        .expect("the shutdown did not wait for the held call")
        .expect("clean shutdown");
    let answer = held.await.expect("task");
    assert!(answer.is_err(), "no approval was given: {answer:?}");
}

/// `ReleaseShare` with `wait_secs` in a task (the call may be held).
fn release_held(
    h: &Harness,
    sid: &str,
    approval: Vec<u8>,
    wait_secs: u32,
) -> tokio::task::JoinHandle<Result<pb::ReleaseShareResponse, tonic::Status>> {
    let mut recovery = h.recovery.clone();
    let sid = sid.to_owned();
    tokio::spawn(async move {
        recovery
            .release_share(pb::ReleaseShareRequest {
                session_id: sid,
                bank_approval_encoded: approval,
                wait_secs,
            })
            .await
            .map(|r| r.into_inner())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_held_for_its_delay_releases_when_the_clock_reaches_it() {
    let mut h = Harness::new(1).await;
    let (sid, approval) = h.approved_before_delay(2).await;
    // Further away than the wait: refused at once.
    refused(
        h.release_held_now(&sid, approval.clone(), 1).await,
        Code::FailedPrecondition,
        "(2 s left)",
    );
    let held = release_held(&h, &sid, approval, 10);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "the release is held for its delay");
    h.advance(2);
    let rel = tokio::time::timeout(std::time::Duration::from_secs(15), held)
        .await
        .expect("answered once the clock reached release_not_before")
        .expect("task")
        .expect("released");
    let statement = Signed::<ShareRelease>::decode(&rel.release_encoded).expect("release");
    assert_eq!(
        statement.body().released_at,
        T0 + 60,
        "not before the delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_release_does_not_hold_the_shutdown_and_releases_nothing() {
    let mut h = Harness::new(1).await;
    let (sid, approval) = h.approved_before_delay(5).await;
    let held = release_held(&h, &sid, approval, 30);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "the release is held for its delay");
    // The clock never reaches release_not_before: the shutdown answers the call, "not yet".
    tokio::time::timeout(std::time::Duration::from_secs(15), h.node.shutdown())
        .await
        .expect("the shutdown did not wait for the held call")
        .expect("clean shutdown");
    refused(held.await.expect("task"), Code::FailedPrecondition, "delay");
}

#[tokio::test]
async fn four_eyes() {
    let mut h = Harness::new(2).await;
    let r = new_r().public_key();
    let opened = h.open(&r).await.expect("open");
    let sid = opened.session_id.clone();
    let (alice, bob) = (h.alice.clone(), h.bob.clone());
    let a = h.approve(&alice, &sid).await;
    assert_eq!((a.approvers.len(), a.approvals_required), (1, 2));
    assert!(a.bank_approval_encoded.is_empty());
    let a = h.approve(&alice, &sid).await;
    assert_eq!(
        a.approvers,
        vec!["alice".to_owned()],
        "the same staff twice is not two"
    );
    assert!(a.bank_approval_encoded.is_empty());
    refused(
        h.staff
            .get_approval(pb::GetApprovalRequest {
                wait_secs: 0,
                wallet_id: WALLET.into(),
                session_key: encode_public_key(&r).to_vec(),
            })
            .await,
        Code::FailedPrecondition,
        "1 of 2",
    );
    let a = h.approve(&bob, &sid).await;
    assert_eq!(a.approvers, vec!["alice".to_owned(), "bob".to_owned()]);
    let approval = Signed::<BankApproval>::decode(&a.bank_approval_encoded).expect("approval");
    assert_eq!(approval.body().approvers, ["alice", "bob"]);

    // Expired, the approval is not renewed by one click: both approve again (the owner has
    // authenticated, so the session outlives its authentication window).
    let assertion = h.recover_assertion(&opened, &r);
    h.authenticate(&sid, &assertion).await.expect("auth");
    h.advance(3600);
    let a = h.approve(&alice, &sid).await;
    assert_eq!(
        a.approvers,
        vec!["alice".to_owned()],
        "the old approvals lapsed"
    );
    assert!(
        a.bank_approval_encoded.is_empty(),
        "one of two is not enough"
    );
    let a = h.approve(&bob, &sid).await;
    let renewed = Signed::<BankApproval>::decode(&a.bank_approval_encoded).expect("renewed");
    assert!(renewed.body().issued_at > approval.body().issued_at);
    h.node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn an_old_bank_cancellation_does_not_cancel_a_later_session() {
    let mut h = Harness::new(1).await;
    let r = new_r().public_key();
    let first = h.open(&r).await.expect("open");
    let alice = h.alice.clone();
    let cancel_req = h.staff_request(&alice, StaffAction::CancelRecovery, &first.session_id);
    let cancellation = h
        .staff
        .cancel_recovery(pb::StaffCancelRequest {
            staff_request_encoded: cancel_req,
        })
        .await
        .expect("staff cancel")
        .into_inner()
        .bank_cancellation_encoded;
    // An hour later the same device (same R) opens again; the old cancellation is replayed.
    h.advance(3600);
    let later = h.open(&r).await.expect("open later");
    use pb::cancel_recovery_request::Authority;
    refused(
        h.recovery
            .cancel_recovery(pb::CancelRecoveryRequest {
                session_id: later.session_id.clone(),
                authority: Some(Authority::BankCancellationEncoded(cancellation.clone())),
                nonces: Vec::new(),
            })
            .await,
        Code::PermissionDenied,
        "before this session opened",
    );
    let st = h
        .recovery
        .get_recovery_status(pb::GetRecoveryStatusRequest {
            session_id: later.session_id.clone(),
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(st.state, "open", "nothing changed");
    h.node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn failed_assertions_close_the_session_never_the_wallet() {
    let mut h = Harness::new(1).await;
    // A stranger's session: five bad responses close it.
    let stranger_r = new_r().public_key();
    let opened = h.open(&stranger_r).await.expect("open");
    let sid = opened.session_id.clone();
    let good = h.recover_assertion(&opened, &stranger_r);
    let bad = forged(&good);
    for _ in 0..5 {
        refused(
            h.authenticate(&sid, &bad).await,
            Code::Unauthenticated,
            "does not verify",
        );
    }
    refused(
        h.authenticate(&sid, &good).await,
        Code::FailedPrecondition,
        "failed passkey attempts",
    );
    // The owner, at once: a new session authenticates; nothing waits for a cool-down.
    let r = new_r().public_key();
    let mine = h.open(&r).await.expect("the wallet is not locked");
    let assertion = h.recover_assertion(&mine, &r);
    h.authenticate(&mine.session_id, &assertion)
        .await
        .expect("owner authenticates without waiting");
    let log = h
        .recovery
        .get_audit_log(pb::GetAuditLogRequest {
            from_seq: 1,
            limit: 1000,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect("audit")
        .into_inner();
    let n = |k: &str| log.entries.iter().filter(|e| e.kind == k).count();
    assert_eq!((n("assertion_failed"), n("owner_authenticated")), (5, 1));
    assert!(log.entries.iter().all(|e| e.kind != "wallet_locked"));
    h.node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn staff_requests_are_checked() {
    let mut h = Harness::new(1).await;
    let r = new_r().public_key();
    let sid = h.open(&r).await.expect("open").session_id;
    let stranger = key();
    let req = h.staff_request(&stranger, StaffAction::ApproveRecovery, &sid);
    refused(
        h.staff
            .approve_recovery(pb::ApproveRecoveryRequest {
                staff_request_encoded: req,
            })
            .await,
        Code::PermissionDenied,
        "unknown key",
    );
    // A request signed for listing cannot approve.
    let alice = h.alice.clone();
    let req = h.staff_request(&alice, StaffAction::ListRecoveries, &sid);
    refused(
        h.staff
            .approve_recovery(pb::ApproveRecoveryRequest {
                staff_request_encoded: req,
            })
            .await,
        Code::PermissionDenied,
        "not approve_recovery",
    );
    // Stale.
    let req = h.staff_request(&alice, StaffAction::ApproveRecovery, &sid);
    h.advance(301);
    refused(
        h.staff
            .approve_recovery(pb::ApproveRecoveryRequest {
                staff_request_encoded: req,
            })
            .await,
        Code::Unauthenticated,
        "window",
    );
    h.node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn trustee_nodes_have_no_staff_service() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut opts = InitOptions::new(
        tmp.path().to_path_buf(),
        "t2",
        "127.0.0.1:0".parse().expect("addr"),
        Role::Trustee,
    );
    opts.endpoint = Some("http://127.0.0.1:7102".into());
    let bank = key();
    opts.accept_bank_keys = vec![public_key_hex(&PublicKey::from(bank.verifying_key()))];
    let d = init_node(&opts).expect("init");
    assert!(d.bank_approval_key.is_none());
    let cfg = NodeConfig::load(tmp.path()).expect("config");
    assert_eq!(
        cfg.recovery.bank_approval_keys,
        vec![PublicKey::from(bank.verifying_key())]
    );
    let node = spawn(tmp.path()).await.expect("spawn");
    let mut staff = StaffClient::connect(node.url()).await.expect("connect");
    let s = staff
        .get_approval(pb::GetApprovalRequest {
            wait_secs: 0,
            wallet_id: WALLET.into(),
            session_key: vec![],
        })
        .await
        .expect_err("no staff service");
    assert_eq!(s.code(), Code::Unimplemented);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn watch_events_resumes_after_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let alice = key();
    init_bank(dir, &alice, &key(), 1);
    let node = spawn(dir).await.expect("spawn");
    let mut trustee = TrusteeClient::connect(node.url()).await.expect("connect");
    let mut recovery = RecoveryClient::connect(node.url()).await.expect("connect");
    let info = trustee
        .get_info(pb::GetInfoRequest {})
        .await
        .expect("info")
        .into_inner();
    let node_key = decode_public_key(&info.public_key).expect("key");
    let mut auth = SoftPasskey::new(true);
    let enroll = |wallet: &'static str| {
        let backup = Backup::new(wallet, node_key);
        (wallet, backup)
    };
    let (w1, b1) = enroll("wallet-e1");
    let (c, cred) = begin(&mut trustee, &mut auth, &b1).await;
    trustee
        .finish_enrollment(b1.request(&c, &cred))
        .await
        .expect("enroll");
    recovery
        .open_recovery(pb::OpenRecoveryRequest {
            wallet_id: w1.into(),
            session_key: encode_public_key(&new_r().public_key()).to_vec(),
        })
        .await
        .expect("open");
    // Without credentials: refused.
    let s = recovery
        .watch_events(pb::WatchEventsRequest {
            cursor: 0,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect_err("anonymous watcher");
    assert_eq!(s.code(), Code::Unauthenticated, "{}", s.message());
    let watch = |node_id: &str| {
        Signed::sign(
            StaffRequest {
                node_id: node_id.to_owned(),
                action: StaffAction::WatchEvents,
                target: String::new(),
                timestamp: dlocker_proto::time::unix_now(),
                nonce: rand::rng().random(),
            },
            &alice,
        )
        .encode()
    };
    let mut stream = recovery
        .watch_events(pb::WatchEventsRequest {
            cursor: 0,
            staff_request_encoded: watch(&info.node_id),
        })
        .await
        .expect("watch")
        .into_inner();
    let e1 = stream.next().await.expect("event").expect("ok");
    let e2 = stream.next().await.expect("event").expect("ok");
    assert_eq!((e1.seq, e1.kind.as_str()), (1, "enrollment"));
    assert_eq!(
        (e2.seq, e2.kind.as_str(), e2.wallet_id.as_str()),
        (2, "recovery_opened", w1)
    );
    drop(stream);
    drop((trustee, recovery));
    node.shutdown().await.expect("shutdown");

    // Restart: resume after seq 1, then follow live events.
    let node = spawn(dir).await.expect("respawn");
    let mut trustee = TrusteeClient::connect(node.url()).await.expect("connect");
    let mut recovery = RecoveryClient::connect(node.url()).await.expect("connect");
    let mut stream = recovery
        .watch_events(pb::WatchEventsRequest {
            cursor: 1,
            staff_request_encoded: watch(&info.node_id),
        })
        .await
        .expect("watch")
        .into_inner();
    let e = stream.next().await.expect("event").expect("ok");
    assert_eq!((e.seq, e.kind.as_str()), (2, "recovery_opened"));
    let (w2, b2) = enroll("wallet-e2");
    let (c, cred) = begin(&mut trustee, &mut auth, &b2).await;
    trustee
        .finish_enrollment(b2.request(&c, &cred))
        .await
        .expect("enroll");
    let e = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .expect("live event in time")
        .expect("event")
        .expect("ok");
    assert_eq!(
        (e.seq, e.kind.as_str(), e.wallet_id.as_str()),
        (3, "enrollment", w2)
    );
    drop(stream);
    drop((trustee, recovery));
    node.shutdown().await.expect("shutdown");
}

#[test]
fn config_edits_keep_comments_and_validate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    init_bank(dir, &key(), &key(), 2);
    let cfg = NodeConfig::load(dir).expect("config");
    let bank = cfg.bank.expect("bank settings");
    assert_eq!(bank.approvals_required, 2);
    assert_eq!(bank.staff.len(), 2);
    let mut doc = crate::config::edit::ConfigDoc::load(dir).expect("doc");
    let k = public_key_hex(&PublicKey::from(key().verifying_key()));
    assert!(doc.accept_bank_key(&k).expect("accept"));
    assert!(!doc.accept_bank_key(&k).expect("again"));
    let carol = public_key_hex(&PublicKey::from(key().verifying_key()));
    doc.add_staff("carol", &carol, &[StaffRole::Viewer])
        .expect("add");
    doc.save(dir).expect("save");
    let text = std::fs::read_to_string(dir.join("config.toml")).expect("read");
    assert!(text.contains("# Distinct staff approvals needed"));
    let cfg = NodeConfig::load(dir).expect("config");
    assert_eq!(cfg.recovery.bank_approval_keys.len(), 1);
    assert_eq!(cfg.bank.expect("bank").staff.len(), 3);
    // Duplicates and bad keys are refused and leave the file alone.
    let mut doc = crate::config::edit::ConfigDoc::load(dir).expect("doc");
    doc.add_staff("carol", &k, &[StaffRole::Viewer])
        .expect("added in memory");
    assert!(doc.save(dir).is_err());
    assert!(
        crate::config::edit::ConfigDoc::load(dir)
            .expect("doc")
            .accept_bank_key("zz")
            .is_err()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("config.toml")).expect("read"),
        text
    );
}
