//! Crash harness helpers: a deposit storm against one real `trustee-node` process that is
//! `kill -9`ed mid-storm, and the checks run after it restarts.
//!
//! The contract under test: a deposit the node *acknowledged* (answered `FinishEnrollment` with a
//! receipt) was flushed first, so it survives any crash intact and still proves; a deposit whose
//! answer never arrived is either absent (`NOT_FOUND`) or complete and provable — never half
//! written.

use crate::cluster::Node;
use crate::craft::{self, Deposit};
use dlocker_proto::pb::trustee_client::TrusteeClient;
use dlocker_proto::pb::{
    BeginEnrollmentRequest, BeginEnrollmentResponse, FinishEnrollmentRequest, ProveShareRequest,
};
use dlocker_proto::schnorr::{PossessionProof, ProofContext};
use k256::PublicKey;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tonic::Code;
use tonic::transport::Channel;
use webauthn_authenticator_rs::prelude::{Url, WebauthnAuthenticator as _};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// Upper bound on `DLOCKER_CRASH_ROUNDS` (each round is a few seconds; this keeps a typo finite).
pub const MAX_ROUNDS: usize = 1000;

/// The round count of a crash test: `DLOCKER_CRASH_ROUNDS` if set (1..=[`MAX_ROUNDS`]), else
/// `default`.
pub fn rounds(default: usize) -> usize {
    match std::env::var("DLOCKER_CRASH_ROUNDS") {
        Err(_) => default,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_ROUNDS).contains(&n) => n,
            _ => panic!("DLOCKER_CRASH_ROUNDS must be a number from 1 to {MAX_ROUNDS}, not {v:?}"),
        },
    }
}

/// Sends SIGKILL to `pid` (the node gets no chance to flush or clean up).
pub fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("running kill -9 {pid}: {e}"));
    assert!(status.success(), "kill -9 {pid} failed: {status}");
}

/// How a deposit of the storm ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// `FinishEnrollment` answered with this receipt (verified against the node's key).
    Acked(Vec<u8>),
    /// `FinishEnrollment` was sent but no answer came (the node died) or it failed.
    Unacked(String),
}

/// One deposit of the storm.
pub struct Tracked {
    /// What was sent.
    pub deposit: Deposit,
    /// What the client saw.
    pub fate: Fate,
}

/// What the storm's writers share.
struct Shared {
    tracked: Mutex<Vec<Tracked>>,
    acked: AtomicUsize,
    stop: AtomicBool,
}

/// A storm in progress: `writers` clients depositing fresh wallets at one node as fast as they
/// can, until [`Storm::stop`].
pub struct Storm {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Trustee keys for the storm's manifests: the node under test first (share index 1), then
/// `others` keys of trustees that exist only in the manifests.
pub fn manifest_keys(node_key: &PublicKey, others: usize) -> Vec<PublicKey> {
    use k256::elliptic_curve::Generate as _;
    let mut keys = vec![*node_key];
    keys.extend(
        (0..others).map(|_| k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key()),
    );
    keys
}

impl Storm {
    /// Starts `writers` clients on `clients` (one channel each) depositing `threshold`-of-n
    /// deposits for `keys` (`keys[0]` is the node under test).
    pub fn start(
        clients: Vec<TrusteeClient<Channel>>,
        keys: Vec<PublicKey>,
        threshold: u16,
    ) -> Self {
        let shared = Arc::new(Shared {
            tracked: Mutex::new(Vec::new()),
            acked: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let tasks = clients
            .into_iter()
            .map(|mut client| {
                let shared = shared.clone();
                let keys = keys.clone();
                tokio::spawn(async move {
                    let mut owner = StormOwner(SoftPasskey::new(true));
                    while !shared.stop.load(Ordering::SeqCst) {
                        let wallet = craft::wallet_id("storm");
                        let deposit = Deposit::new(&wallet, &keys, threshold, b"storm wallet data");
                        let parts = deposit.parts(0);
                        // Begin + passkey registration: nothing is stored for the wallet yet.
                        let begin = client
                            .begin_enrollment(BeginEnrollmentRequest {
                                wallet_id: wallet.clone(),
                                user_name: "storm".into(),
                                customer_reference: String::new(),
                            })
                            .await;
                        let Ok(begin) = begin.map(tonic::Response::into_inner) else {
                            // The node is down: this writer is done for the round.
                            break;
                        };
                        let Some((ceremony_id, credential_json, nonces)) =
                            owner.register(&begin, &keys[0], &deposit.manifest)
                        else {
                            break;
                        };
                        let finish = client
                            .finish_enrollment(FinishEnrollmentRequest {
                                ceremony_id,
                                credential_json,
                                manifest_encoded: parts.manifest,
                                share_envelope_encoded: parts.envelope,
                                blob: parts.blob,
                                nonces,
                            })
                            .await;
                        let fate = match finish {
                            Ok(r) => {
                                let receipt = r.into_inner().receipt_encoded;
                                craft::check_receipt(&receipt, &keys[0], &deposit.manifest, 1);
                                Fate::Acked(receipt)
                            }
                            Err(s) => Fate::Unacked(format!("{:?}: {}", s.code(), s.message())),
                        };
                        let acked = matches!(fate, Fate::Acked(_));
                        if let Ok(mut t) = shared.tracked.lock() {
                            t.push(Tracked { deposit, fate });
                        }
                        if acked {
                            shared.acked.fetch_add(1, Ordering::SeqCst);
                        } else {
                            break;
                        }
                    }
                })
            })
            .collect();
        Self { shared, tasks }
    }

    /// Deposits acknowledged so far.
    pub fn acked(&self) -> usize {
        self.shared.acked.load(Ordering::SeqCst)
    }

    /// Stops the writers (call after killing the node) and returns every deposit whose
    /// `FinishEnrollment` was sent.
    pub async fn stop(self) -> Vec<Tracked> {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            // A writer panics only on an invalid receipt: surface it.
            if let Err(e) = t.await
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        let mut t = self
            .shared
            .tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *t)
    }
}

/// A software passkey that answers creation challenges (never panics: the node may die).
struct StormOwner(SoftPasskey);

impl StormOwner {
    /// `(ceremony id, credential JSON, nonces)`: the one-touch registration for `manifest` at
    /// the node (`node_key`) that answered `begin`.
    fn register(
        &mut self,
        begin: &BeginEnrollmentResponse,
        node_key: &PublicKey,
        manifest: &dlocker_proto::manifest::Manifest,
    ) -> Option<(String, String, Vec<dlocker_proto::pb::TrusteeNonce>)> {
        let mut nonces = crate::touch::Nonces::default();
        nonces.push(&dlocker_proto::keys::node_id(node_key), &begin.nonce);
        let challenge = nonces.challenge(
            dlocker_proto::owner_challenge::OwnerAction::Backup,
            manifest.wallet_id(),
            &manifest.hash().0,
        );
        let options = crate::touch::creation_options(&begin.creation_options_json, &challenge);
        let origin = Url::parse(craft::ORIGIN).ok()?;
        let credential = self.0.do_registration(origin, options).ok()?;
        Some((
            begin.ceremony_id.clone(),
            serde_json::to_string(&credential).ok()?,
            nonces.wire(),
        ))
    }
}

/// What the node shows for one deposit after the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Stored completely: status matches the deposit and a fresh possession proof verifies.
    Complete,
    /// `NOT_FOUND`.
    Absent,
}

/// Checks one deposit on a running node: `GetBackupStatus` is either NOT_FOUND or describes
/// exactly this deposit (manifest hash, share index 1, blob size, and — when `acked` — the very
/// receipt the client got); in the latter case `ProveShare` for a fresh nonce verifies against
/// the manifest's commitments. Any other answer (an internal error from a half-written record, a
/// different manifest, a bad proof) is returned as an error message.
pub async fn check_deposit(
    client: &mut TrusteeClient<Channel>,
    node_key: &PublicKey,
    t: &Tracked,
) -> Result<Seen, String> {
    let d = &t.deposit;
    let status = match craft::status(client, &d.wallet_id).await {
        Ok(s) => s,
        Err(s) if s.code() == Code::NotFound => return Ok(Seen::Absent),
        Err(s) => return Err(format!("GetBackupStatus: {:?}: {}", s.code(), s.message())),
    };
    if status.manifest_hash != d.manifest.hash().0.to_vec() {
        return Err("stored manifest hash differs from the deposit's".into());
    }
    if status.share_index != 1 || status.epoch != 1 {
        return Err(format!(
            "stored share index {} epoch {}",
            status.share_index, status.epoch
        ));
    }
    if status.blob_size != d.blob.len() as u64 {
        return Err(format!(
            "stored blob size {} != {}",
            status.blob_size,
            d.blob.len()
        ));
    }
    if let Fate::Acked(receipt) = &t.fate
        && &status.receipt_encoded != receipt
    {
        return Err("stored receipt differs from the acknowledged one".into());
    }
    let nonce: [u8; 32] = rand::random();
    let proof = client
        .prove_share(ProveShareRequest {
            wallet_id: d.wallet_id.clone(),
            nonce: nonce.to_vec(),
        })
        .await
        .map_err(|s| format!("ProveShare: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    let ctx = ProofContext {
        wallet_id: &d.wallet_id,
        epoch: 1,
        share_index: 1,
        node_key,
        nonce: &nonce,
    };
    PossessionProof::decode(&proof.proof_encoded)
        .map_err(|e| format!("proof does not decode: {e}"))?
        .verify(&d.commitments.expected_public_share(1), &ctx)
        .map_err(|_| "possession proof does not verify".to_owned())?;
    Ok(Seen::Complete)
}

/// Tallies of a check over many deposits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Acknowledged and intact.
    pub acked_intact: usize,
    /// Not acknowledged, and absent.
    pub unacked_absent: usize,
    /// Not acknowledged, but stored completely (the crash came between flush and answer).
    pub unacked_complete: usize,
}

/// Checks every tracked deposit on `node`; panics naming the first that breaks the contract.
pub async fn check_all(node: &Node, tracked: &[Tracked], when: &str) -> Tally {
    let mut client = node.client().await;
    let mut tally = Tally::default();
    for t in tracked {
        let seen = check_deposit(&mut client, &node.public_key, t).await;
        match (&t.fate, seen) {
            (Fate::Acked(_), Ok(Seen::Complete)) => tally.acked_intact += 1,
            (Fate::Acked(_), Ok(Seen::Absent)) => panic!(
                "{when}: acknowledged deposit of {} is missing after the crash",
                t.deposit.wallet_id
            ),
            (Fate::Unacked(_), Ok(Seen::Absent)) => tally.unacked_absent += 1,
            (Fate::Unacked(_), Ok(Seen::Complete)) => tally.unacked_complete += 1,
            (fate, Err(e)) => panic!(
                "{when}: deposit of {} ({}) is visible but broken: {e}; node log:\n{}",
                t.deposit.wallet_id,
                if matches!(fate, Fate::Acked(_)) {
                    "acknowledged"
                } else {
                    "not acknowledged"
                },
                node.log_tail(20)
            ),
        }
    }
    tally
}
