//! In-process gRPC tests of epochs on one node (a trustee node with a manual clock, a software
//! passkey — test only): stage verified like a deposit, commit erases the previous share, commit
//! needs the passkey and a quorum, expiry, abandon, retirement, a joining node, and the exclusion
//! with recovery sessions. The other trustees of the manifests are keys the test holds, so it can
//! sign their receipts.

use crate::config::{NodeConfig, Role};
use crate::db::{Database, SHARES_TREE, wallet_key};
use crate::enrollment::trustee_service::tests::begin_for;
use crate::init::{InitOptions, init_node};
use crate::keys::FileKeyProvider;
use crate::node::{Clock, Node};
use crate::owner_touch_tests as touch;
use crate::server::{RunningNode, spawn_on};
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::{decode_public_key, encode_public_key, node_id};
use dlocker_proto::manifest::{Manifest, ManifestHash, ManifestParts, TrusteeEntry};
use dlocker_proto::owner_challenge::{OwnerAction, stage_authorized};
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use dlocker_proto::schnorr::{PossessionProof, ProofContext};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{Share, split};
use dlocker_proto::statement::{
    CommitReceipt, CredentialAttestation, RetireReceipt, Signed, StageReceipt,
};
use k256::ecdsa::SigningKey;
use k256::elliptic_curve::Generate;
use k256::{PublicKey, SecretKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::Code;
use tonic::transport::Channel;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const T0: u64 = 1_700_000_000;
const TTL: u64 = 600;

struct ManualClock(AtomicU64);
impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One epoch of a wallet: the node under test holds share `node_index` (1-based) when listed;
/// the other trustees are keys the test holds.
struct Epoch {
    manifest: Manifest,
    shares: Vec<Share>,
    blob: Vec<u8>,
    others: Vec<SigningKey>,
}

impl Epoch {
    /// `t`-of-(1 + others) with the node first (it is the bank) when `with_node`; otherwise the
    /// first other key is the bank.
    fn new(
        wallet: &str,
        epoch: u64,
        t: u16,
        node: Option<&PublicKey>,
        others: usize,
        previous: Option<ManifestHash>,
    ) -> Self {
        let others: Vec<SigningKey> = (0..others)
            .map(|_| SigningKey::generate_from_rng(&mut rand::rng()))
            .collect();
        let mut keys: Vec<PublicKey> = node.into_iter().copied().collect();
        keys.extend(others.iter().map(|k| PublicKey::from(k.verifying_key())));
        let (shares, commitments) =
            split(&SecretScalar::random(), usize::from(t), keys.len()).expect("split");
        let trustees: Vec<TrusteeEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, pk)| TrusteeEntry {
                share_index: i as u16 + 1,
                node_id: node_id(pk),
                public_key: *pk,
            })
            .collect();
        let blob = dlocker_proto::blob::seal(&SecretScalar::random(), wallet, b"seed");
        let manifest = Manifest::new(ManifestParts {
            wallet_id: wallet.into(),
            epoch,
            threshold: t,
            bank_node_id: trustees[0].node_id.clone(),
            trustees,
            commitments,
            recovery_delay_secs: 0,
            blob_hash: dlocker_proto::blob::hash(&blob),
            created_at: T0,
            previous,
        })
        .expect("manifest");
        Self {
            manifest,
            shares,
            blob,
            others,
        }
    }

    fn envelope(&self, share: &Share, to: &PublicKey) -> Vec<u8> {
        ShareEnvelope::seal(
            share,
            &EnvelopeContext {
                wallet_id: self.manifest.wallet_id(),
                epoch: self.manifest.epoch(),
                share_index: share.index(),
                recipient: to,
            },
        )
        .expect("seal")
        .encode()
    }

    /// Stage receipts signed by the other trustees (positions `from..`).
    fn other_stage_receipts(&self, from: usize) -> Vec<Vec<u8>> {
        let offset = self.manifest.trustees().len() - self.others.len();
        self.others
            .iter()
            .enumerate()
            .skip(from)
            .map(|(i, k)| {
                let e = &self.manifest.trustees()[offset + i];
                Signed::sign(
                    StageReceipt {
                        node_id: e.node_id.clone(),
                        wallet_id: self.manifest.wallet_id().into(),
                        epoch: self.manifest.epoch(),
                        share_index: e.share_index,
                        manifest_hash: self.manifest.hash(),
                        previous_manifest_hash: self
                            .manifest
                            .previous()
                            .copied()
                            .unwrap_or(ManifestHash([0; 32])),
                        staged_at: T0,
                        expires_at: T0 + TTL,
                    },
                    k,
                )
                .encode()
            })
            .collect()
    }

    fn other_commit_receipts(&self) -> Vec<Vec<u8>> {
        let offset = self.manifest.trustees().len() - self.others.len();
        self.others
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let e = &self.manifest.trustees()[offset + i];
                Signed::sign(
                    CommitReceipt {
                        node_id: e.node_id.clone(),
                        wallet_id: self.manifest.wallet_id().into(),
                        epoch: self.manifest.epoch(),
                        share_index: e.share_index,
                        manifest_hash: self.manifest.hash(),
                        erased: self.manifest.previous().copied(),
                        committed_at: T0,
                    },
                    k,
                )
                .encode()
            })
            .collect()
    }
}

struct Harness {
    tmp: tempfile::TempDir,
    node: Option<RunningNode>,
    clock: Arc<ManualClock>,
    trustee: TrusteeClient<Channel>,
    epochs: EpochsClient<Channel>,
    recovery: RecoveryClient<Channel>,
    auth: SoftPasskey,
    node_key: PublicKey,
    /// A trustee this node knows (`[epochs] known_trustee_keys`): its credential attestations
    /// let the node join a wallet.
    known: SigningKey,
}

impl Harness {
    async fn new() -> Self {
        Self::with_config(|text| text).await
    }

    /// A node whose rendered config `edit` changed first.
    async fn with_config(edit: impl Fn(String) -> String) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let mut opts = InitOptions::new(
            dir.to_path_buf(),
            "t1",
            "127.0.0.1:0".parse().expect("addr"),
            Role::Trustee,
        );
        opts.endpoint = Some("http://127.0.0.1:7101".into());
        init_node(&opts).expect("init");
        let known = SigningKey::generate_from_rng(&mut rand::rng());
        let path = dir.join("config.toml");
        let text = edit(std::fs::read_to_string(&path).expect("read"));
        assert!(text.contains("[epochs]"), "init documents [epochs]");
        let text = text
            .replace(
                &format!(
                    "staged_ttl_secs = {}",
                    crate::config::defaults::STAGED_EPOCH_TTL_SECS
                ),
                &format!("staged_ttl_secs = {TTL}"),
            )
            .replace(
                "known_trustee_keys = []",
                &format!(
                    "known_trustee_keys = [\"{}\"]",
                    dlocker_proto::keys::public_key_hex(&PublicKey::from(known.verifying_key()))
                ),
            );
        std::fs::write(&path, text).expect("write");
        let config = NodeConfig::load(dir).expect("config");
        assert_eq!(config.epochs.staged_ttl_secs, TTL);
        assert_eq!(config.epochs.known_trustee_keys.len(), 1);
        let clock = Arc::new(ManualClock(AtomicU64::new(T0)));
        let store = Database::open(&config.db_path()).expect("db");
        let node =
            Node::new(config, &FileKeyProvider::new(dir), store, clock.clone()).expect("node");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let node = spawn_on(Arc::new(node), listener).expect("spawn");
        let mut trustee = TrusteeClient::connect(node.url()).await.expect("connect");
        let epochs = EpochsClient::connect(node.url()).await.expect("connect");
        let recovery = RecoveryClient::connect(node.url()).await.expect("connect");
        let info = trustee
            .get_info(pb::GetInfoRequest {})
            .await
            .expect("info")
            .into_inner();
        Self {
            tmp,
            node: Some(node),
            clock,
            trustee,
            epochs,
            recovery,
            auth: SoftPasskey::new(true),
            node_key: decode_public_key(&info.public_key).expect("key"),
            known,
        }
    }

    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    async fn enroll(&mut self, e: &Epoch) {
        let (ceremony, cred, nonces) = begin_for(
            &mut self.trustee,
            &mut self.auth,
            &e.manifest,
            &self.node_key,
        )
        .await;
        self.trustee
            .finish_enrollment(pb::FinishEnrollmentRequest {
                ceremony_id: ceremony,
                credential_json: cred,
                manifest_encoded: e.manifest.encode(),
                share_envelope_encoded: e.envelope(&e.shares[0], &self.node_key),
                blob: e.blob.clone(),
                nonces,
            })
            .await
            .expect("enroll");
    }

    /// BeginEpochAction + the owner's assertion.
    async fn owner(
        &mut self,
        wallet: &str,
        action: pb::EpochAction,
        hash: &ManifestHash,
    ) -> pb::OwnerAssertion {
        let c = self
            .epochs
            .begin_epoch_action(pb::BeginEpochActionRequest {
                wallet_id: wallet.into(),
                action: action as i32,
                manifest_hash: hash.0.to_vec(),
            })
            .await
            .expect("begin epoch action")
            .into_inner();
        let (owner_action, authorized) = match action {
            pb::EpochAction::Stage => (
                OwnerAction::Stage,
                stage_authorized(
                    &hash.0,
                    &c.credential_fingerprint
                        .as_slice()
                        .try_into()
                        .expect("fingerprint"),
                ),
            ),
            pb::EpochAction::Abandon => (OwnerAction::Abandon, hash.0.to_vec()),
            _ => (OwnerAction::Commit, hash.0.to_vec()),
        };
        let pairs = vec![(node_id(&self.node_key), c.nonce.clone())];
        let challenge = touch::challenge(owner_action, wallet, &authorized, &pairs);
        pb::OwnerAssertion {
            challenge_id: c.challenge_id,
            assertion_json: touch::assert(&mut self.auth, &c.request_options_json, &challenge),
            nonces: touch::wire(&pairs),
        }
    }

    fn stage_req(
        &self,
        e: &Epoch,
        share: &Share,
        authority: Option<pb::stage_epoch_request::Authority>,
    ) -> pb::StageEpochRequest {
        pb::StageEpochRequest {
            manifest_encoded: e.manifest.encode(),
            share_envelope_encoded: e.envelope(share, &self.node_key),
            blob: e.blob.clone(),
            authority,
        }
    }

    async fn status(&mut self, wallet: &str) -> Result<pb::GetBackupStatusResponse, tonic::Status> {
        self.trustee
            .get_backup_status(pb::GetBackupStatusRequest {
                wallet_id: wallet.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    async fn commit(
        &mut self,
        e: &Epoch,
        owner: Option<pb::OwnerAssertion>,
        quorum: Vec<Vec<u8>>,
    ) -> Result<Vec<u8>, tonic::Status> {
        self.epochs
            .commit_epoch(pb::CommitEpochRequest {
                wallet_id: e.manifest.wallet_id().into(),
                manifest_hash: e.manifest.hash().0.to_vec(),
                owner,
                quorum_encoded: quorum,
            })
            .await
            .map(|r| r.into_inner().commit_receipt_encoded)
    }

    async fn stop(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown().await.expect("shutdown");
        }
    }
}

fn owner_authority(o: pb::OwnerAssertion) -> Option<pb::stage_epoch_request::Authority> {
    Some(pb::stage_epoch_request::Authority::Owner(o))
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let s = r.expect_err("must be refused");
    (s.code(), s.message().to_owned())
}

/// A reset's nonces live `limits.passkey_reset_ttl_secs` (the bank's check of the customer
/// happens while they wait), an ordinary ceremony's `limits.ceremony_ttl_secs`.
#[tokio::test]
async fn reset_nonces_live_the_configured_reset_ttl() {
    let default = format!(
        "passkey_reset_ttl_secs = {}",
        crate::config::defaults::PASSKEY_RESET_TTL_SECS
    );
    let mut h =
        Harness::with_config(|text| text.replace(&default, "passkey_reset_ttl_secs = 120")).await;
    let wallet = "wallet-reset-ttl";
    let e1 = Epoch::new(wallet, 1, 2, Some(&h.node_key), 2, None);
    h.enroll(&e1).await;
    let now = h.clock.0.load(Ordering::SeqCst);
    let mut begin = async |action: pb::EpochAction| {
        h.epochs
            .begin_epoch_action(pb::BeginEpochActionRequest {
                wallet_id: wallet.into(),
                action: action as i32,
                manifest_hash: Vec::new(),
            })
            .await
            .expect("begin epoch action")
            .into_inner()
            .expires_at
    };
    assert_eq!(begin(pb::EpochAction::ResetPasskey).await, now + 120);
    assert_eq!(
        begin(pb::EpochAction::ChangePasskey).await,
        now + crate::config::defaults::CEREMONY_TTL_SECS
    );
}

#[tokio::test]
async fn stage_commit_retire_on_one_node() {
    let mut h = Harness::new().await;
    let wallet = "wallet-epochs";
    let e1 = Epoch::new(wallet, 1, 2, Some(&h.node_key), 2, None);
    h.enroll(&e1).await;
    let e2 = Epoch::new(wallet, 2, 2, Some(&h.node_key), 2, Some(e1.manifest.hash()));
    let h2 = e2.manifest.hash();

    // No authority: refused; a stage assertion bound to another manifest: refused.
    let (c, m) = code(
        h.epochs
            .stage_epoch(h.stage_req(&e2, &e2.shares[0], None))
            .await,
    );
    assert_eq!(c, Code::Unauthenticated, "{m}");
    let wrong = h
        .owner(wallet, pb::EpochAction::Stage, &e1.manifest.hash())
        .await;
    let (c, m) = code(
        h.epochs
            .stage_epoch(h.stage_req(&e2, &e2.shares[0], owner_authority(wrong)))
            .await,
    );
    // The touch covered another manifest: it does not verify for this one.
    assert_eq!(c, Code::Unauthenticated, "{m}");

    // A bad share (sealed correctly, not on the polynomial) is refused and nothing is staged.
    let bad = Share::new(1, SecretScalar::random()).expect("share");
    let o = h.owner(wallet, pb::EpochAction::Stage, &h2).await;
    let (c, m) = code(
        h.epochs
            .stage_epoch(h.stage_req(&e2, &bad, owner_authority(o)))
            .await,
    );
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(
        m.contains("share does not match the manifest commitments"),
        "{m}"
    );
    assert!(
        h.status(wallet).await.expect("status").staged.is_none(),
        "nothing staged"
    );

    // A manifest that is not the successor of the active one: refused.
    let stray = Epoch::new(
        wallet,
        2,
        2,
        Some(&h.node_key),
        2,
        Some(ManifestHash([9; 32])),
    );
    let o = h
        .owner(wallet, pb::EpochAction::Stage, &stray.manifest.hash())
        .await;
    let (c, m) = code(
        h.epochs
            .stage_epoch(h.stage_req(&stray, &stray.shares[0], owner_authority(o)))
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    assert!(m.contains("previous"), "{m}");

    // The real stage.
    let o = h.owner(wallet, pb::EpochAction::Stage, &h2).await;
    let receipt = h
        .epochs
        .stage_epoch(h.stage_req(&e2, &e2.shares[0], owner_authority(o)))
        .await
        .expect("stage")
        .into_inner()
        .stage_receipt_encoded;
    let st =
        Signed::<StageReceipt>::decode_trusted(&receipt, &[h.node_key]).expect("stage receipt");
    assert_eq!(
        (
            st.body().epoch,
            st.body().manifest_hash,
            st.body().expires_at
        ),
        (2, h2, T0 + TTL)
    );
    assert_eq!(st.body().previous_manifest_hash, e1.manifest.hash());
    let s = h.status(wallet).await.expect("status");
    assert_eq!(s.epoch, 1, "epoch 1 stays active while 2 is staged");
    let staged = s.staged.expect("staged reported");
    assert_eq!(
        (staged.epoch, staged.manifest_hash.as_slice()),
        (2, h2.0.as_slice())
    );
    assert_eq!(staged.stage_receipt_encoded, receipt);

    // Possession proofs for both epochs.
    for (epoch, m, share_index) in [(1, &e1.manifest, 1u16), (2, &e2.manifest, 1)] {
        let nonce = [epoch as u8; 32];
        let p = h
            .epochs
            .prove_epoch_share(pb::ProveEpochShareRequest {
                wallet_id: wallet.into(),
                nonce: nonce.to_vec(),
                epoch,
            })
            .await
            .expect("prove")
            .into_inner();
        assert_eq!(p.epoch, epoch);
        let ctx = ProofContext {
            wallet_id: wallet,
            epoch,
            share_index,
            node_key: &h.node_key,
            nonce: &nonce,
        };
        PossessionProof::decode(&p.proof_encoded)
            .expect("proof")
            .verify(&m.commitments().expected_public_share(share_index), &ctx)
            .expect("verifies");
    }
    let (c, _) = code(
        h.epochs
            .prove_epoch_share(pb::ProveEpochShareRequest {
                wallet_id: wallet.into(),
                nonce: vec![0; 32],
                epoch: 3,
            })
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition);

    // A second, different rotation cannot be staged meanwhile.
    let other = Epoch::new(wallet, 2, 2, Some(&h.node_key), 2, Some(e1.manifest.hash()));
    let o = h
        .owner(wallet, pb::EpochAction::Stage, &other.manifest.hash())
        .await;
    let (c, m) = code(
        h.epochs
            .stage_epoch(h.stage_req(&other, &other.shares[0], owner_authority(o)))
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    assert!(m.contains("staged here"), "{m}");

    // Commit: without the passkey refused; with too little evidence refused; then done.
    let (c, m) = code(h.commit(&e2, None, e2.other_stage_receipts(0)).await);
    assert_eq!(c, Code::Unauthenticated, "{m}");
    let o = h.owner(wallet, pb::EpochAction::Commit, &h2).await;
    let (c, m) = code(h.commit(&e2, Some(o.clone()), vec![]).await);
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    assert!(m.contains("only 1 of the 2"), "{m}");
    // (the assertion was not consumed by the quorum refusal)
    let commit = h
        .commit(&e2, Some(o), e2.other_stage_receipts(1))
        .await
        .expect("commit");
    let cr =
        Signed::<CommitReceipt>::decode_trusted(&commit, &[h.node_key]).expect("commit receipt");
    assert_eq!(
        (cr.body().epoch, cr.body().manifest_hash, cr.body().erased),
        (2, h2, Some(e1.manifest.hash()))
    );
    // A retry gets the same receipt, without a passkey.
    assert_eq!(h.commit(&e2, None, vec![]).await.expect("retry"), commit);
    let s = h.status(wallet).await.expect("status");
    assert_eq!((s.epoch, s.manifest_hash.as_slice()), (2, h2.0.as_slice()));
    assert!(s.staged.is_none());
    // Abandoning a committed epoch is refused: resume instead.
    let o = h.owner(wallet, pb::EpochAction::Abandon, &h2).await;
    let (c, m) = code(
        h.epochs
            .abandon_epoch(pb::AbandonEpochRequest {
                wallet_id: wallet.into(),
                manifest_hash: h2.0.to_vec(),
                owner: Some(o),
            })
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{m}");

    // Retire: epoch 3 does not list this node; needs commit receipts of its threshold.
    let e3 = Epoch::new(wallet, 3, 2, None, 3, Some(h2));
    let h3 = e3.manifest.hash();
    let retire = |o: Option<pb::OwnerAssertion>, receipts: Vec<Vec<u8>>| pb::RetireWalletRequest {
        wallet_id: wallet.into(),
        successor_manifest_encoded: e3.manifest.encode(),
        commit_receipts_encoded: receipts,
        owner: o,
    };
    let (c, m) = code(
        h.epochs
            .retire_wallet(retire(None, e3.other_commit_receipts()))
            .await,
    );
    assert_eq!(c, Code::Unauthenticated, "{m}");
    let o = h.owner(wallet, pb::EpochAction::Retire, &h3).await;
    let (c, m) = code(
        h.epochs
            .retire_wallet(retire(Some(o.clone()), e3.other_stage_receipts(0)))
            .await,
    );
    assert_eq!(
        c,
        Code::FailedPrecondition,
        "stage receipts do not prove a commit: {m}"
    );
    let r = h
        .epochs
        .retire_wallet(retire(Some(o), e3.other_commit_receipts()))
        .await
        .expect("retire")
        .into_inner()
        .retire_receipt_encoded;
    let rr = Signed::<RetireReceipt>::decode_trusted(&r, &[h.node_key]).expect("retire receipt");
    assert_eq!(
        (rr.body().retired_epoch, rr.body().successor_manifest_hash),
        (2, h3)
    );
    assert_eq!(
        h.status(wallet).await.expect_err("gone").code(),
        Code::NotFound
    );
    // A retry gets the same receipt.
    assert_eq!(
        h.epochs
            .retire_wallet(retire(None, vec![]))
            .await
            .expect("retry")
            .into_inner()
            .retire_receipt_encoded,
        r
    );

    // Nothing of the wallet is left in the share, passkey or epoch trees.
    h.stop().await;
    let db = Database::open(&h.tmp.path().join("db")).expect("db");
    for t in [
        SHARES_TREE,
        crate::db::PASSKEYS_TREE,
        crate::db::BLOBS_TREE,
        crate::epochs::EPOCHS_TREE,
        crate::epochs::STAGED_TREE,
    ] {
        assert!(
            db.raw_get(t, wallet_key(wallet)).is_none(),
            "{t} still holds the wallet"
        );
    }
}

#[tokio::test]
async fn expiry_abandon_joining_and_recovery_exclusion() {
    let mut h = Harness::new().await;
    let wallet = "wallet-expiry";
    let e1 = Epoch::new(wallet, 1, 2, Some(&h.node_key), 2, None);
    h.enroll(&e1).await;
    let e2 = Epoch::new(wallet, 2, 2, Some(&h.node_key), 2, Some(e1.manifest.hash()));
    let h2 = e2.manifest.hash();
    let o = h.owner(wallet, pb::EpochAction::Stage, &h2).await;
    h.epochs
        .stage_epoch(h.stage_req(&e2, &e2.shares[0], owner_authority(o)))
        .await
        .expect("stage");
    let o = h.owner(wallet, pb::EpochAction::Commit, &h2).await;

    // Stale: past the TTL the staged epoch is gone; commit refused; the active epoch untouched.
    h.advance(TTL);
    assert!(h.status(wallet).await.expect("status").staged.is_none());
    let (c, m) = code(h.commit(&e2, Some(o), e2.other_stage_receipts(0)).await);
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    assert!(m.contains("no epoch is staged"), "{m}");
    assert_eq!(h.status(wallet).await.expect("status").epoch, 1);

    // Stage again, then abandon (rollback).
    let o = h.owner(wallet, pb::EpochAction::Stage, &h2).await;
    h.epochs
        .stage_epoch(h.stage_req(&e2, &e2.shares[0], owner_authority(o)))
        .await
        .expect("stage again");
    let o = h.owner(wallet, pb::EpochAction::Abandon, &h2).await;
    let abandoned = h
        .epochs
        .abandon_epoch(pb::AbandonEpochRequest {
            wallet_id: wallet.into(),
            manifest_hash: h2.0.to_vec(),
            owner: Some(o),
        })
        .await
        .expect("abandon")
        .into_inner()
        .abandoned;
    assert!(abandoned);
    assert!(h.status(wallet).await.expect("status").staged.is_none());

    // A recovery session the owner has not authenticated blocks nothing; once the owner
    // authenticates it, staging is refused. Rotation never blocks recovery.
    let r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
    let opened = h
        .recovery
        .open_recovery(pb::OpenRecoveryRequest {
            wallet_id: wallet.into(),
            session_key: encode_public_key(&r).to_vec(),
        })
        .await
        .expect("open recovery")
        .into_inner();
    let pairs = vec![(node_id(&h.node_key), opened.nonce.clone())];
    let challenge = touch::challenge(OwnerAction::Recover, wallet, &encode_public_key(&r), &pairs);
    let assertion = touch::assert(&mut h.auth, &opened.request_options_json, &challenge);
    h.recovery
        .authenticate_owner(pb::AuthenticateOwnerRequest {
            session_id: opened.session_id.clone(),
            assertion_json: assertion,
            nonces: touch::wire(&pairs),
        })
        .await
        .expect("owner authenticates");
    let o = h.owner(wallet, pb::EpochAction::Stage, &h2).await;
    let (c, m) = code(
        h.epochs
            .stage_epoch(h.stage_req(&e2, &e2.shares[0], owner_authority(o)))
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    assert!(
        m.contains("owner-authenticated recovery") && !m.contains(&opened.session_id),
        "{m}"
    );

    // A node new to a wallet joins with the wallet's credential (handed over by a trustee that
    // holds it; here a relying party of the same configuration plays that trustee), under the
    // owner's stage touch covering its fingerprint; it is not open to enrollment then.
    let joining_wallet = "wallet-joining";
    let j1 = Epoch::new(joining_wallet, 1, 2, None, 3, None);
    let j2 = Epoch::new(
        joining_wallet,
        2,
        2,
        Some(&h.node_key),
        2,
        Some(j1.manifest.hash()),
    );
    let rp =
        crate::node::build_webauthn(&NodeConfig::load(h.tmp.path()).expect("config")).expect("rp");
    let (ccr, reg) = rp
        .start_passkey_registration(
            crate::enrollment::user_handle(
                &crate::wallet::parse_wallet_id(joining_wallet.into()).expect("id"),
            ),
            "alice",
            "alice",
            None,
        )
        .expect("start");
    let created = touch::register(
        &mut h.auth,
        &serde_json::to_string(&ccr).expect("json"),
        &[0u8; 32],
    );
    let passkey = rp
        .finish_passkey_registration(
            &serde_json::from_str(&created).expect("cred"),
            &serde_json::from_value({
                let mut v = serde_json::to_value(&reg).expect("state");
                v["rs"]["challenge"] = serde_json::Value::String(base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    [0u8; 32],
                ));
                v
            })
            .expect("state"),
        )
        .expect("the wallet's credential");
    let c = h
        .epochs
        .begin_epoch_action(pb::BeginEpochActionRequest {
            wallet_id: joining_wallet.into(),
            action: pb::EpochAction::Stage as i32,
            manifest_hash: j2.manifest.hash().0.to_vec(),
        })
        .await
        .expect("a joining node issues a stage nonce")
        .into_inner();
    assert!(c.request_options_json.is_empty() && c.passkey_json.is_empty());
    let fingerprint = crate::owner_touch::passkey_fingerprint(&passkey).expect("fp");
    let pairs = vec![(node_id(&h.node_key), c.nonce.clone())];
    let challenge = touch::challenge(
        OwnerAction::Stage,
        joining_wallet,
        &stage_authorized(&j2.manifest.hash().0, &fingerprint),
        &pairs,
    );
    let (rcr, _) = rp
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .expect("options");
    // The known trustee vouches that it holds epoch 1 of the wallet under this credential.
    let attest = |key: &SigningKey, manifest_hash: ManifestHash| {
        Signed::sign(
            CredentialAttestation {
                node_id: node_id(&PublicKey::from(key.verifying_key())),
                wallet_id: joining_wallet.into(),
                epoch: 1,
                manifest_hash,
                credential_fingerprint: fingerprint,
                issued_at: h.clock.now(),
            },
            key,
        )
        .encode()
    };
    let good = attest(&h.known, j1.manifest.hash());
    let joining = |assertion_json: String, attestations: Vec<Vec<u8>>| {
        Some(pb::stage_epoch_request::Authority::Joining(
            pb::JoiningOwner {
                owner: Some(pb::OwnerAssertion {
                    challenge_id: c.challenge_id.clone(),
                    assertion_json,
                    nonces: touch::wire(&pairs),
                }),
                passkey_json: serde_json::to_string(&passkey).expect("json"),
                credential_attestations: attestations,
            },
        ))
    };
    let assertion = touch::assert(
        &mut h.auth,
        &serde_json::to_string(&rcr).expect("json"),
        &challenge,
    );
    // A new registration is refused: a wallet has one credential.
    let (c2, m) = code(
        h.epochs
            .stage_epoch(h.stage_req(
                &j2,
                &j2.shares[0],
                Some(pb::stage_epoch_request::Authority::Registration(
                    pb::PasskeyRegistration {
                        ceremony_id: String::new(),
                        credential_json: created.clone(),
                    },
                )),
            ))
            .await,
    );
    assert_eq!(c2, Code::PermissionDenied, "{m}");
    // Without a known trustee's attestation (none, a stranger's key, or one for another epoch)
    // the owner's assertion is not even looked at: nothing is staged, the nonce stays unspent.
    let stranger = SigningKey::generate_from_rng(&mut rand::rng());
    for (attestations, why) in [
        (vec![], "no credential attestation was sent"),
        (
            vec![attest(&stranger, j1.manifest.hash())],
            "no attestation is signed by a trustee this node knows",
        ),
        (
            vec![attest(&h.known, j2.manifest.hash())],
            "holds another epoch than the one this manifest succeeds",
        ),
    ] {
        let (c3, m) = code(
            h.epochs
                .stage_epoch(h.stage_req(
                    &j2,
                    &j2.shares[0],
                    joining(assertion.clone(), attestations),
                ))
                .await,
        );
        assert_eq!(c3, Code::PermissionDenied, "{m}");
        assert!(m.contains(why), "{m}");
        assert!(
            h.status(joining_wallet).await.is_err(),
            "nothing staged after a refused join"
        );
    }
    h.epochs
        .stage_epoch(h.stage_req(&j2, &j2.shares[0], joining(assertion, vec![good])))
        .await
        .expect("stage joining");
    let s = h.status(joining_wallet).await.expect("joining status");
    assert_eq!(s.epoch, 0, "nothing active yet");
    assert_eq!(s.staged.map(|x| x.epoch), Some(2));
    let o = h
        .owner(joining_wallet, pb::EpochAction::Commit, &j2.manifest.hash())
        .await;
    h.commit(&j2, Some(o), j2.other_stage_receipts(0))
        .await
        .expect("joining commit");
    let s = h.status(joining_wallet).await.expect("status");
    assert_eq!((s.epoch, s.staged.is_none()), (2, true));
    h.stop().await;
}
