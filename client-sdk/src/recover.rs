//! Recovery on a new device: the wallet comes back only when the bank approves AND the owner's
//! passkey signs, after the waiting period — each trustee checks all of it on its own.
//!
//! [`recover`] makes a fresh session key `R`, opens a session at every trustee concurrently,
//! picks the manifest at least `t` trustees agree on (and that lists exactly the *pinned* keys),
//! asks the owner's passkey ONCE for every trustee (the one-touch challenge of
//! `docs/protocol.md` §12a: action recover, the session key `R`, every session's nonce in manifest
//! order — so the touch is bound to this device key and useless for any other), sends the one
//! assertion to every trustee (`AuthenticateOwner`), polls the bank for its approval, waits out the delay
//! (progress and cancel through [`RecoverOptions`]), asks every trustee to release, and verifies
//! each release: signed by the pinned key, for this wallet, manifest, share and `R`; the envelope
//! opens with `R`; the share matches the manifest commitments. A trustee whose share fails is
//! *named* ([`Recovered::faulty`]); exactly `t` good shares are combined (checking `k·G = C_0`),
//! the blob's hash is checked against the manifest and the blob decrypted.
//!
//! Up to `n − t` trustees may be down or lying. With fewer than `t` good ones,
//! [`RecoverError::NotEnoughTrustees`] names every trustee that failed and why.
//!
//! In the middle of a rotation ([`mod@crate::rotate`]) trustees may answer with different epochs of
//! the wallet: the newest epoch whose threshold of trustees hold it *active* is used; when none
//! has (some trustees committed the new epoch, the others still hold it staged), staged shares
//! count too and are released with `Epochs.ReleaseStagedShare`. Trustees holding another epoch
//! are reported as unavailable, not faulty.
//!
//! A wallet may have several recovery sessions at a trustee, each bound to its own `R`; a session
//! the owner did not authenticate expires on its own (`OpenRecoveryResponse.authenticate_by`) and
//! blocks nothing, so nobody who only knows the wallet id can stand in the owner's way. Only an
//! owner-authenticated session blocks a rotation there: sessions this recovery authenticated but
//! did not release are closed again (one owner cancellation, [`Recovered::closed`]).

use crate::authenticator::Passkey;
use crate::ceremony;
use crate::runtime::{Instant, sleep};
use crate::transport::Channel;
use crate::transport::{
    NodeRefusal, answered_at_once, approval_wait_secs, connect_channel, describe_status,
    is_refusal, recovery_client, release_wait_secs, staff_client, transport_failure,
};
use crate::trustees::{TrusteeInfo, TrusteeSet};
use dlocker_proto::client_state::StateKey;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::{encode_public_key, public_key_from_hex, public_key_hex};
use dlocker_proto::manifest::{Manifest, ManifestHash, TrusteeEntry, validate_wallet_id};
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::pb::{
    AuthenticateOwnerRequest, BeginOwnerCancelRequest, CancelRecoveryRequest, GetApprovalRequest,
    GetRecoveryStatusRequest, OpenRecoveryRequest, ReleaseShareRequest, ReleaseShareResponse,
    cancel_recovery_request,
};
use dlocker_proto::secret::{SecretBytes, SecretScalar};
use dlocker_proto::share::Share;
use dlocker_proto::statement::{BankApproval, BankCancellation, ShareRelease, Signed};
use futures::future::join_all;
use k256::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

pub(crate) use crate::error::{Failure, TrusteeFailure};

/// One trustee's open recovery session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrusteeSession {
    /// Trustee name (trustees file).
    pub name: String,
    /// Node id.
    pub node_id: String,
    /// The session id this trustee assigned.
    pub session_id: String,
    /// Unix seconds before which this trustee will not release.
    pub release_not_before: u64,
}

/// What a later [`cancel_recovery`] or [`present_bank_cancellation`] needs to know about a
/// recovery: the wallet, the new device's session key `R` (public) and each trustee's session id.
/// Nothing in it is secret; apps may persist it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryHandle {
    /// The wallet.
    pub wallet_id: String,
    /// `R`, hex SEC1 compressed.
    pub session_key: String,
    /// One entry per trustee where a session is open.
    pub sessions: Vec<TrusteeSession>,
}

impl RecoveryHandle {
    /// The session id at the named trustee.
    pub fn session_at(&self, name: &str) -> Option<&str> {
        self.sessions
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.session_id.as_str())
    }
}

/// What [`recover`] is doing, in order. A test or app can act on `AwaitingApproval` (e.g. have
/// staff approve `bank_session_id`) while `recover` polls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoverEvent {
    /// [`resume_recovery`]: where a saved session stands at its trustee.
    SessionStatus {
        /// Trustee.
        name: String,
        /// `open`, `owner_authenticated`, `released`, `cancelled` or `expired`.
        state: String,
    },
    /// A session opened at a trustee.
    SessionOpened {
        /// Trustee.
        name: String,
        /// Its session id.
        session_id: String,
        /// Unix seconds.
        release_not_before: u64,
    },
    /// A trustee could not open a session (down, refused, ...).
    TrusteeFailed {
        /// Trustee.
        name: String,
        /// Why.
        reason: String,
    },
    /// All opens are done and the manifest is chosen. Keep `handle` to cancel later.
    SessionsOpened {
        /// Session ids per trustee.
        handle: RecoveryHandle,
        /// The manifest ≥ t trustees agreed on.
        manifest_hash: ManifestHash,
    },
    /// The authenticator is asked, once, for the owner's passkey assertion that every listed
    /// trustee checks (one touch).
    PasskeyRequested {
        /// The trustees the assertion is for (manifest order).
        trustees: Vec<String>,
    },
    /// The trustee accepted the owner's passkey assertion.
    OwnerAuthenticated {
        /// Trustee.
        name: String,
    },
    /// Polling the bank for its approval; staff approve the bank's session `bank_session_id`.
    AwaitingApproval {
        /// The bank node's session id (what `dlocker recoveries approve` takes).
        bank_session_id: String,
    },
    /// The bank's answer changed while waiting (e.g. "awaiting bank approval (1 of 2 staff)").
    ApprovalPending {
        /// The bank's message.
        status: String,
    },
    /// The bank approval arrived.
    Approved {
        /// Staff ids that approved.
        approvers: Vec<String>,
        /// Unix seconds.
        expires_at: u64,
    },
    /// Waiting out the recovery delay (about once a second).
    Waiting {
        /// Seconds until the last trustee's `release_not_before`.
        seconds_left: u64,
    },
    /// A trustee released a share that verified.
    ShareVerified {
        /// Trustee.
        name: String,
        /// Share index.
        share_index: u16,
    },
    /// A trustee's release failed or did not verify.
    ShareRejected {
        /// Trustee.
        name: String,
        /// Why.
        reason: String,
    },
}

fn no_progress(_: RecoverEvent) {}

/// How [`recover`] waits, reports and stops.
pub struct RecoverOptions<'a> {
    /// The pause between two questions to the bank about its approval when the bank answers at
    /// once (one that does not hold the call until staff approve). A bank that holds the call
    /// (`GetApproval`'s `wait_secs`) is asked again at once. Releases never pause: a trustee a
    /// little early holds the call until its delay is over (`ReleaseShare`'s `wait_secs`).
    pub poll_interval: Duration,
    /// Give up waiting for the bank's approval after this long.
    pub approval_timeout: Duration,
    /// When this becomes `true`, `recover` stops waiting and returns [`RecoverError::Cancelled`]
    /// (the sessions stay open: call [`cancel_recovery`] to close them).
    pub cancel: Option<watch::Receiver<bool>>,
    /// Progress callback.
    pub progress: &'a (dyn Fn(RecoverEvent) + Sync),
    /// Where to save the recovery's sealed state after each step, so [`resume_recovery`] can
    /// finish it after the app is killed. `None`: nothing is saved.
    pub checkpoint: Option<Checkpoint<'a>>,
}

/// The step a saved recovery had reached when it was saved. [`resume_recovery`] does not trust
/// it: it asks the trustees where each session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RecoveryStep {
    /// Sessions are open and the manifest is chosen; the owner has not authenticated yet.
    SessionsOpened,
    /// At least `t` trustees accepted the owner's passkey; waiting for the bank's approval.
    OwnerAuthenticated,
    /// The approval is in and the delay has passed; releasing.
    Releasing,
}

/// The app's function that stores a sealed recovery state durably (the step is for display).
pub type SaveRecoveryState<'a> = dyn Fn(RecoveryStep, &[u8]) -> Result<(), String> + Sync + 'a;

/// Saves a recovery's state: `save` receives the sealed blob (sealed under `key`, the app's
/// keystore key) after each step and must store it durably before returning (the recovery does
/// not go on until it has). An `Err` stops the recovery with [`RecoverError::Checkpoint`].
#[derive(Clone, Copy)]
pub struct Checkpoint<'a> {
    /// The app's key the state is sealed with.
    pub key: &'a StateKey,
    /// Stores the sealed state (replacing the previous one); the step is for the app's display.
    pub save: &'a SaveRecoveryState<'a>,
}

impl std::fmt::Debug for Checkpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Checkpoint { key: REDACTED, .. }")
    }
}

impl Default for RecoverOptions<'_> {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            approval_timeout: Duration::from_secs(24 * 3600),
            cancel: None,
            progress: &no_progress,
            checkpoint: None,
        }
    }
}

impl std::fmt::Debug for RecoverOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoverOptions")
            .field("poll_interval", &self.poll_interval)
            .field("approval_timeout", &self.approval_timeout)
            .field("cancellable", &self.cancel.is_some())
            .field("checkpoint", &self.checkpoint.is_some())
            .finish()
    }
}

/// A recovered wallet. `Debug` never shows the data or the secret.
#[derive(Debug)]
pub struct Recovered {
    data: SecretBytes,
    secret: SecretScalar,
    /// The manifest recovered against.
    pub manifest: Manifest,
    /// The sessions used (all are `released` now).
    pub handle: RecoveryHandle,
    /// Trustees whose shares were combined.
    pub used: Vec<String>,
    /// Trustees that answered with something that did not verify (a bad share, a bad
    /// signature, another manifest): investigate these.
    pub faulty: Vec<Failure>,
    /// Trustees that could not be used (down, refused, passkey rejected, another epoch).
    pub unavailable: Vec<Failure>,
    /// Trustees whose session this recovery authenticated but did not release, closed again
    /// (one owner cancellation) so it does not block a later rotation there. Sessions it did not
    /// authenticate expire on their own and block nothing.
    pub closed: Vec<String>,
    device: DeviceKey,
}

impl Recovered {
    /// The wallet data.
    pub fn data(&self) -> &SecretBytes {
        &self.data
    }
    /// The wallet's shared secret `k` (to re-split it to a new epoch).
    pub fn secret(&self) -> &SecretScalar {
        &self.secret
    }
    /// The new device's key: this recovery's session key `R`, with the bank's approval bound to
    /// it. The document locker re-issues the wallet's documents to it
    /// ([`crate::documents::reissue_to_recovered_device`]) without a second bank approval.
    pub fn device_key(&self) -> &DeviceKey {
        &self.device
    }
}

/// The key a recovery made on the new device (`R`) and the bank's signed approval of the
/// recovery of this wallet to it. `R`'s part in the recovery (the trustees sealed their shares
/// to it) is over once the shares are released; from then on it is the new device's wallet key.
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct DeviceKey {
    key: SecretKey,
    bank_approval: Vec<u8>,
}

impl DeviceKey {
    /// A device key an app kept (the secret key and the approval bytes it read from a
    /// [`Recovered`]), rebuilt.
    pub fn new(key: SecretKey, bank_approval: Vec<u8>) -> Self {
        Self { key, bank_approval }
    }
    /// The secret key.
    pub fn secret_key(&self) -> &SecretKey {
        &self.key
    }
    /// Its public key (`R`).
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }
    /// The bank's signed `BankApproval` for this wallet and `R` (the statement's encoding).
    pub fn bank_approval(&self) -> &[u8] {
        &self.bank_approval
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("key", &"REDACTED")
            .field("public_key", &public_key_hex(&self.public_key()))
            .field(
                "bank_approval",
                &format_args!("{} bytes", self.bank_approval.len()),
            )
            .finish()
    }
}

/// Why a recovery did not complete. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// The app's checkpoint could not save the state; the recovery stopped before the next step
    /// (resume from the last state saved, or cancel).
    #[error("could not save the recovery state: {0}")]
    Checkpoint(String),
    /// The saved state given to [`resume_recovery`] cannot be used (another key, tampered, not
    /// a recovery's, or from an incompatible version).
    #[error("saved recovery state: {0}")]
    SavedState(String),
    /// The wallet id is not acceptable.
    #[error("invalid wallet id: {0}")]
    InvalidWalletId(String),
    /// Fewer than `t` trustees can take part at this stage: fix or wait for the named ones.
    #[error(
        "{stage}: only {available} of the {needed} trustees needed are usable ({})",
        describe(failed)
    )]
    NotEnoughTrustees {
        /// Where it stopped (e.g. "opening sessions").
        stage: &'static str,
        /// `t`.
        needed: usize,
        /// How many are usable.
        available: usize,
        /// Every trustee that failed, and why.
        failed: Vec<Failure>,
    },
    /// No manifest was returned by `t` trustees, or it does not match the pinned trustees.
    #[error("no trustworthy manifest: {reason} ({})", describe(failed))]
    NoTrustedManifest {
        /// Why.
        reason: String,
        /// Trustees that failed, and why.
        failed: Vec<Failure>,
    },
    /// The bank could not be asked for its approval (down, or not a bank node).
    #[error("cannot get the bank approval from {bank}: {reason}")]
    Bank {
        /// The bank trustee.
        bank: String,
        /// Why.
        reason: String,
    },
    /// The bank did not approve in time: ask staff to approve `bank_session_id`, then resume
    /// ([`resume_recovery`] with the last saved state), or cancel with [`cancel_recovery`].
    #[error(
        "bank approval did not arrive within {waited_secs} s ({last_status}); bank session {bank_session_id}"
    )]
    ApprovalTimeout {
        /// How long was waited.
        waited_secs: u64,
        /// The bank's last answer.
        last_status: String,
        /// The bank's session id.
        bank_session_id: String,
        /// Sessions to cancel.
        handle: Box<RecoveryHandle>,
    },
    /// The caller cancelled; the sessions are still open (use `handle` with [`cancel_recovery`],
    /// or resume later with [`resume_recovery`]).
    #[error("recovery cancelled by the caller")]
    Cancelled {
        /// Sessions to cancel.
        handle: Box<RecoveryHandle>,
    },
    /// The bank reports this recovery's session cancelled (the owner's cancel, from this or
    /// another device, or the bank's): nothing will be released to it.
    #[error("recovery cancelled at the bank: {reason}")]
    CancelledAtBank {
        /// The bank's message (who cancelled).
        reason: String,
    },
    /// `t` shares verified but the result does not decrypt the blob (should be impossible:
    /// every trustee agreed on the manifest; report it).
    #[error("recovered secret does not open the wallet blob: {0}")]
    Blob(String),
}

fn describe(failed: &[Failure]) -> String {
    if failed.is_empty() {
        return "no failures recorded".into();
    }
    failed
        .iter()
        .map(|(n, r)| format!("{n}: {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One trustee's answer to `OpenRecovery`.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) session_id: String,
    pub(crate) request_options_json: String,
    /// The session's single-use nonce for the owner's authentication.
    pub(crate) nonce: Vec<u8>,
    pub(crate) release_not_before: u64,
    pub(crate) manifest_encoded: Vec<u8>,
    /// A successor manifest the trustee holds staged (a rotation in progress); may be empty.
    pub(crate) staged_manifest_encoded: Vec<u8>,
}

/// The manifest chosen, the trustees that returned another manifest of the same epoch or garbage
/// (`faulty`), and those that hold another epoch of the wallet (a rotation in progress: not
/// faulty, just not usable for this epoch).
pub(crate) type Selected = (Manifest, Vec<Failure>, Vec<Failure>);

/// Picks the manifest to recover: among the manifests returned by at least their own threshold
/// of trustees, the newest epoch (after a partial rotation both epochs may qualify; the newer one
/// is where the wallet is going), otherwise the one returned by the most trustees (for the error).
/// Checks it against the pinned set: this wallet, every manifest trustee pinned with the same
/// key, the bank the set's bank.
pub(crate) fn select_manifest(
    wallet_id: &str,
    set: &TrusteeSet,
    opened: &[(&TrusteeInfo, &[u8])],
) -> Result<Selected, RecoverError> {
    let mut votes: BTreeMap<[u8; 32], (Manifest, Vec<&str>)> = BTreeMap::new();
    let mut failed = Vec::new();
    for (info, bytes) in opened {
        match Manifest::decode(bytes) {
            Ok(m) => votes
                .entry(m.hash().0)
                .or_insert_with(|| (m, Vec::new()))
                .1
                .push(info.name.as_str()),
            Err(e) => failed.push((
                info.name.clone(),
                TrusteeFailure::BadAnswer(format!("returned a malformed manifest: {e}")),
            )),
        }
    }
    let qualified = votes
        .iter()
        .filter(|(_, (m, v))| v.len() >= usize::from(m.threshold()))
        .max_by_key(|(_, (m, v))| (m.epoch(), v.len()));
    let Some((best_hash, (manifest, voters))) =
        qualified.or_else(|| votes.iter().max_by_key(|(_, (_, v))| v.len()))
    else {
        return Err(RecoverError::NoTrustedManifest {
            reason: "no trustee returned a manifest".into(),
            failed,
        });
    };
    let best_hash = *best_hash;
    let t = usize::from(manifest.threshold());
    if voters.len() < t {
        // Too few trustees answered alike: the caller adds the ones that did not answer at all.
        return Err(RecoverError::NotEnoughTrustees {
            stage: "opening sessions",
            needed: t,
            available: voters.len(),
            failed,
        });
    }
    let bad = |reason: String| {
        Err(RecoverError::NoTrustedManifest {
            reason,
            failed: failed.clone(),
        })
    };
    if manifest.wallet_id() != wallet_id {
        return bad(format!(
            "the manifest is for wallet {:?}",
            manifest.wallet_id()
        ));
    }
    for e in manifest.trustees() {
        match set.by_node_id(&e.node_id) {
            Some(info) if info.public_key == e.public_key => {}
            Some(info) => return bad(format!("the manifest pins another key for {}", info.name)),
            None => {
                return bad(format!(
                    "the manifest lists node {} which is not in the trustees file",
                    e.node_id
                ));
            }
        }
    }
    if manifest.bank_node_id() != set.bank().node_id {
        return bad("the manifest names another bank than the trustees file".into());
    }
    let mut other_epoch = Vec::new();
    for (hash, (m, names)) in &votes {
        if *hash != best_hash {
            for n in names {
                if m.wallet_id() == wallet_id && m.epoch() != manifest.epoch() {
                    other_epoch.push((
                        (*n).to_owned(),
                        format!(
                            "holds epoch {} of this wallet, not epoch {} (a rotation is in progress)",
                            m.epoch(),
                            manifest.epoch()
                        )
                        .into(),
                    ));
                } else {
                    failed.push((
                        (*n).to_owned(),
                        TrusteeFailure::BadAnswer(
                            "returned a different manifest than the other trustees".into(),
                        ),
                    ));
                }
            }
        }
    }
    Ok((manifest.clone(), failed, other_epoch))
}

/// A verified release: the share and the blob the trustee sent.
#[derive(Debug)]
pub(crate) struct GoodShare {
    pub(crate) share: Share,
    pub(crate) blob: Vec<u8>,
}

/// Checks one trustee's release: statement signed by the pinned key and about this node, wallet,
/// epoch, share index, manifest and `R` and these envelope bytes; the envelope opens with `R`;
/// the share matches the commitments. The error says which check failed (never the share).
pub(crate) fn check_release(
    info: &TrusteeInfo,
    entry: &TrusteeEntry,
    manifest: &Manifest,
    r: &SecretKey,
    resp: &ReleaseShareResponse,
) -> Result<GoodShare, String> {
    let r_pub = r.public_key();
    let release = Signed::<ShareRelease>::decode_trusted(&resp.release_encoded, &[info.public_key])
        .map_err(|e| format!("release statement not accepted: {e}"))?;
    let b = release.body();
    let wrong = |what: &str| Err(format!("release statement is for the wrong {what}"));
    if b.node_id != info.node_id {
        return wrong("node");
    }
    if b.wallet_id != manifest.wallet_id() {
        return wrong("wallet");
    }
    if b.epoch != manifest.epoch() {
        return wrong("epoch");
    }
    if b.share_index != entry.share_index {
        return wrong("share index");
    }
    if b.manifest_hash != manifest.hash() {
        return wrong("manifest");
    }
    if b.session_key != r_pub {
        return wrong("session key");
    }
    let env_hash: [u8; 32] = Sha256::digest(&resp.share_envelope_encoded).into();
    if b.envelope_hash != env_hash {
        return Err("release statement does not cover the envelope sent".into());
    }
    let ctx = EnvelopeContext {
        wallet_id: manifest.wallet_id(),
        epoch: manifest.epoch(),
        share_index: entry.share_index,
        recipient: &r_pub,
    };
    let share = ShareEnvelope::decode(&resp.share_envelope_encoded)
        .and_then(|env| env.open(&ctx, r))
        .map_err(|e| format!("share envelope: {e}"))?;
    manifest.commitments().verify(&share).map_err(|_| {
        "returned a bad share: it does not match the manifest commitments".to_owned()
    })?;
    Ok(GoodShare {
        share,
        blob: resp.blob.clone(),
    })
}

/// Combines exactly `t` verified shares (first in manifest order), finds a blob whose hash the
/// manifest records, and decrypts it.
pub(crate) fn assemble(
    manifest: &Manifest,
    good: &[(String, GoodShare)],
    failed: &[Failure],
) -> Result<(SecretScalar, SecretBytes, Vec<String>), RecoverError> {
    let t = usize::from(manifest.threshold());
    if good.len() < t {
        return Err(RecoverError::NotEnoughTrustees {
            stage: "releasing shares",
            needed: t,
            available: good.len(),
            failed: failed.to_vec(),
        });
    }
    let chosen = &good[..t];
    let shares: Vec<Share> = chosen.iter().map(|(_, g)| g.share.clone()).collect();
    let k = dlocker_proto::share::combine(&shares, manifest.commitments())
        .map_err(|e| RecoverError::Blob(format!("combining verified shares: {e}")))?;
    let blob = good
        .iter()
        .map(|(_, g)| &g.blob)
        .find(|b| dlocker_proto::blob::hash(b) == *manifest.blob_hash())
        .ok_or_else(|| {
            RecoverError::Blob("no trustee returned the blob the manifest records".into())
        })?;
    let data = dlocker_proto::blob::open(&k, manifest.wallet_id(), blob)
        .map_err(|e| RecoverError::Blob(e.to_string()))?;
    Ok((k, data, chosen.iter().map(|(n, _)| n.clone()).collect()))
}

/// Sleeps `d`; returns `true` if `cancel` became true meanwhile.
async fn sleep_or_cancel(d: Duration, cancel: &mut Option<watch::Receiver<bool>>) -> bool {
    or_cancel(sleep(d), cancel).await.is_none()
}

/// Runs `fut` to its end unless `cancel` becomes true first (`None`: cancelled; `fut` is
/// dropped, which abandons a call in flight).
async fn or_cancel<F: std::future::Future>(
    fut: F,
    cancel: &mut Option<watch::Receiver<bool>>,
) -> Option<F::Output> {
    let Some(rx) = cancel else {
        return Some(fut.await);
    };
    if *rx.borrow() {
        return None;
    }
    let mut fut = std::pin::pin!(fut);
    loop {
        // `futures`' select, not tokio's: the browser build has no tokio runtime.
        let woke = {
            let changed = std::pin::pin!(rx.changed());
            match futures::future::select(fut.as_mut(), changed).await {
                futures::future::Either::Left((out, _)) => return Some(out),
                futures::future::Either::Right((r, _)) => r.is_ok(),
            }
        };
        if !woke {
            // The sender is gone: nobody can cancel any more.
            return Some(fut.await);
        }
        if *rx.borrow() {
            return None;
        }
    }
}

struct Participant<'a> {
    info: &'a TrusteeInfo,
    channel: Channel,
    opened: Opened,
    /// The chosen manifest is this trustee's staged epoch (released by `ReleaseStagedShare`).
    staged: bool,
    /// The trustee accepted the owner's passkey for this session.
    authenticated: bool,
}

async fn open_one(
    info: &TrusteeInfo,
    wallet_id: &str,
    r_pub: &PublicKey,
) -> Result<(Channel, Opened), TrusteeFailure> {
    let channel = connect_channel(info).await?;
    let resp = recovery_client(channel.clone())
        .open_recovery(OpenRecoveryRequest {
            wallet_id: wallet_id.to_owned(),
            session_key: encode_public_key(r_pub).to_vec(),
        })
        .await
        .map_err(|s| TrusteeFailure::refused("OpenRecovery", &s))?
        .into_inner();
    Ok((
        channel,
        Opened {
            session_id: resp.session_id,
            request_options_json: resp.request_options_json,
            nonce: resp.nonce,
            release_not_before: resp.release_not_before,
            manifest_encoded: resp.manifest_encoded,
            staged_manifest_encoded: resp.staged_manifest_encoded,
        },
    ))
}

/// A recovery between two steps: everything the next steps need. [`Run::save`] turns it into
/// the app's sealed [`crate::saved::SavedRecovery`] blob, [`resume_recovery`] back into a run.
struct Run<'a> {
    trustees: &'a TrusteeSet,
    wallet_id: String,
    r: SecretKey,
    manifest: Manifest,
    handle: RecoveryHandle,
    participants: Vec<Participant<'a>>,
    unavailable: Vec<Failure>,
    faulty: Vec<Failure>,
}

impl Run<'_> {
    fn not_enough(&self, stage: &'static str, available: usize) -> RecoverError {
        RecoverError::NotEnoughTrustees {
            stage,
            needed: usize::from(self.manifest.threshold()),
            available,
            failed: self
                .faulty
                .iter()
                .chain(&self.unavailable)
                .cloned()
                .collect(),
        }
    }

    /// Hands the app this run's sealed state (when it asked for checkpoints). A failed save
    /// stops the recovery before the next step: going on would spend the owner's touch or the
    /// bank's approval on sessions the app could not resume.
    fn save(&self, step: RecoveryStep, opts: &RecoverOptions<'_>) -> Result<(), RecoverError> {
        let Some(cp) = &opts.checkpoint else {
            return Ok(());
        };
        let state = crate::saved::RecoveryState {
            wallet_id: self.wallet_id.clone(),
            handle: self.handle.clone(),
            session_secret: hex::encode(self.r.to_bytes()).into(),
            manifest: hex::encode(self.manifest.encode()),
            step,
            sessions: self
                .participants
                .iter()
                .map(|p| crate::saved::SavedSession {
                    name: p.info.name.clone(),
                    node_id: p.info.node_id.clone(),
                    session_id: p.opened.session_id.clone(),
                    release_not_before: p.opened.release_not_before,
                    staged: p.staged,
                    authenticated: p.authenticated,
                    nonce: hex::encode(&p.opened.nonce),
                    request_options_json: p.opened.request_options_json.clone(),
                })
                .collect(),
        };
        let saved = state.seal(cp.key);
        (cp.save)(step, &saved).map_err(RecoverError::Checkpoint)
    }
}

/// Recovers `wallet_id` from `trustees` on this (new) device. See the module docs for every step
/// and check. Sessions stay open on error; `RecoverEvent::SessionsOpened` (and the `Cancelled` /
/// `ApprovalTimeout` errors) carry the [`RecoveryHandle`] to cancel them with.
///
/// With [`RecoverOptions::checkpoint`] the app receives the recovery's sealed state after each
/// step; if the app is killed, [`resume_recovery`] with the last one picks up where the trustees
/// are, without a new bank approval or a new waiting period.
pub async fn recover(
    trustees: &TrusteeSet,
    wallet_id: &str,
    auth: &mut dyn Passkey,
    opts: RecoverOptions<'_>,
) -> Result<Recovered, RecoverError> {
    use k256::elliptic_curve::Generate as _;
    validate_wallet_id(wallet_id).map_err(|e| RecoverError::InvalidWalletId(e.to_string()))?;
    let progress = opts.progress;
    // A fresh R per recovery: an approval or release for one device is useless to another.
    let r = SecretKey::generate_from_rng(&mut rand::rng());
    let r_pub = r.public_key();

    // 1. Open sessions everywhere, concurrently.
    let results = join_all(trustees.trustees().iter().map(|info| {
        let r_pub = &r_pub;
        async move { (info, open_one(info, wallet_id, r_pub).await) }
    }))
    .await;
    let mut unavailable: Vec<Failure> = Vec::new();
    let mut participants = Vec::new();
    for (info, res) in results {
        match res {
            Ok((channel, opened)) => {
                progress(RecoverEvent::SessionOpened {
                    name: info.name.clone(),
                    session_id: opened.session_id.clone(),
                    release_not_before: opened.release_not_before,
                });
                participants.push(Participant {
                    info,
                    channel,
                    opened,
                    staged: false,
                    authenticated: false,
                });
            }
            Err(reason) => {
                progress(RecoverEvent::TrusteeFailed {
                    name: info.name.clone(),
                    reason: reason.to_string(),
                });
                unavailable.push((info.name.clone(), reason));
            }
        }
    }
    let handle = RecoveryHandle {
        wallet_id: wallet_id.to_owned(),
        session_key: public_key_hex(&r_pub),
        sessions: participants
            .iter()
            .map(|p| TrusteeSession {
                name: p.info.name.clone(),
                node_id: p.info.node_id.clone(),
                session_id: p.opened.session_id.clone(),
                release_not_before: p.opened.release_not_before,
            })
            .collect(),
    };

    // 2. The manifest ≥ t trustees agree on, checked against the pinned keys: the newest epoch
    // with its threshold of ACTIVE shares; in the middle of a rotation where no epoch has that
    // (commits done at some trustees, the rest only staged), staged shares count too.
    let votes: Vec<(&TrusteeInfo, &[u8])> = participants
        .iter()
        .map(|p| (p.info, p.opened.manifest_encoded.as_slice()))
        .collect();
    let selected = match select_manifest(wallet_id, trustees, &votes) {
        Err(e @ RecoverError::NotEnoughTrustees { .. }) => {
            let mut with_staged = votes.clone();
            with_staged.extend(
                participants
                    .iter()
                    .filter(|p| !p.opened.staged_manifest_encoded.is_empty())
                    .map(|p| (p.info, p.opened.staged_manifest_encoded.as_slice())),
            );
            select_manifest(wallet_id, trustees, &with_staged).or(Err(e))
        }
        other => other,
    };
    let (manifest, faulty) = match selected {
        Ok((m, _, _)) => {
            // Who holds it, and how; everyone else is named (another epoch is not a fault).
            let chosen = m.hash();
            let mut faulty = Vec::new();
            for p in &mut participants {
                let staged = Manifest::decode(&p.opened.staged_manifest_encoded).ok();
                match Manifest::decode(&p.opened.manifest_encoded) {
                    Ok(a) if a.hash() == chosen => {}
                    _ if staged.as_ref().is_some_and(|s| s.hash() == chosen) => p.staged = true,
                    Ok(a) if a.wallet_id() == wallet_id && a.epoch() != m.epoch() => unavailable.push((
                        p.info.name.clone(),
                        format!(
                            "holds epoch {} of this wallet, not epoch {} (a rotation is in progress)",
                            a.epoch(),
                            m.epoch()
                        ).into(),
                    )),
                    Ok(_) => faulty
                        .push((p.info.name.clone(), TrusteeFailure::BadAnswer("returned a different manifest than the other trustees".to_owned()))),
                    Err(e) => faulty.push((p.info.name.clone(), TrusteeFailure::BadAnswer(format!("returned a malformed manifest: {e}")))),
                }
            }
            (m, faulty)
        }
        Err(RecoverError::NoTrustedManifest { reason, mut failed }) => {
            failed.extend(unavailable);
            return Err(RecoverError::NoTrustedManifest { reason, failed });
        }
        Err(RecoverError::NotEnoughTrustees {
            stage,
            needed,
            available,
            mut failed,
        }) => {
            failed.extend(unavailable);
            return Err(RecoverError::NotEnoughTrustees {
                stage,
                needed,
                available,
                failed,
            });
        }
        Err(e) => return Err(e),
    };
    progress(RecoverEvent::SessionsOpened {
        handle: handle.clone(),
        manifest_hash: manifest.hash(),
    });
    let excluded: Vec<String> = faulty
        .iter()
        .chain(&unavailable)
        .map(|(n, _)| n.clone())
        .collect();
    participants.retain(|p| {
        !excluded.contains(&p.info.name) && manifest.trustee(&p.info.node_id).is_some()
    });
    let run = Run {
        trustees,
        wallet_id: wallet_id.to_owned(),
        r,
        manifest,
        handle,
        participants,
        unavailable,
        faulty,
    };
    if run.participants.len() < usize::from(run.manifest.threshold()) {
        return Err(run.not_enough("opening sessions", run.participants.len()));
    }
    run.save(RecoveryStep::SessionsOpened, &opts)?;
    finish(run, auth, opts).await
}

/// Resumes a recovery from the state the app saved ([`RecoverOptions::checkpoint`]) before it
/// was killed: asks every trustee of the saved sessions where its session stands
/// (`GetRecoveryStatus`) and picks up there — the owner's passkey only if fewer than `t`
/// sessions are owner-authenticated, the bank's approval as the bank already holds it (the
/// same staff approval, never a new one), the waiting period until the release times the
/// trustees set when the sessions were opened, then the release (again, at trustees that
/// already released). `key` is the app's key the state was sealed with.
///
/// Checkpoints continue as with [`recover`] when `opts.checkpoint` is set.
pub async fn resume_recovery(
    trustees: &TrusteeSet,
    saved: &[u8],
    key: &StateKey,
    auth: &mut dyn Passkey,
    opts: RecoverOptions<'_>,
) -> Result<Recovered, RecoverError> {
    let state = crate::saved::RecoveryState::open(saved, key)
        .map_err(|e| RecoverError::SavedState(e.to_string()))?;
    let bad = |what: &str| RecoverError::SavedState(format!("the saved state's {what} is invalid"));
    validate_wallet_id(&state.wallet_id).map_err(|_| bad("wallet id"))?;
    let r = state.session_secret().ok_or_else(|| bad("session key"))?;
    let r_pub = r.public_key();
    let manifest = hex::decode(&state.manifest)
        .ok()
        .and_then(|b| Manifest::decode(&b).ok())
        .ok_or_else(|| bad("manifest"))?;
    if manifest.wallet_id() != state.wallet_id {
        return Err(bad("manifest"));
    }
    let progress = opts.progress;
    let wallet_id = state.wallet_id.as_str();
    let encoded_r = encode_public_key(&r_pub).to_vec();

    // Every saved session's status, concurrently.
    let asked = join_all(state.sessions.iter().map(|s| {
        let (encoded_r, manifest) = (&encoded_r, &manifest);
        async move {
            let res = async {
                let info = trustees
                    .by_node_id(&s.node_id)
                    .ok_or("no longer in the trustees file")?;
                if manifest.trustee(&info.node_id).is_none() {
                    return Err(TrusteeFailure::from("not a trustee of the saved manifest"));
                }
                let channel = connect_channel(info).await?;
                let st = recovery_client(channel.clone())
                    .get_recovery_status(GetRecoveryStatusRequest {
                        session_id: s.session_id.clone(),
                    })
                    .await
                    .map_err(|st| TrusteeFailure::refused("GetRecoveryStatus", &st))?
                    .into_inner();
                if st.wallet_id != wallet_id || &st.session_key != encoded_r {
                    return Err(TrusteeFailure::BadAnswer(
                        "the trustee reports another wallet or device for the saved session".into(),
                    ));
                }
                Ok((info, channel, st))
            }
            .await;
            (s, res)
        }
    }))
    .await;
    let mut unavailable: Vec<Failure> = Vec::new();
    let mut participants = Vec::new();
    for (s, res) in asked {
        let (info, channel, st) = match res {
            Ok(x) => x,
            Err(reason) => {
                unavailable.push((s.name.clone(), reason));
                continue;
            }
        };
        progress(RecoverEvent::SessionStatus {
            name: info.name.clone(),
            state: st.state.clone(),
        });
        let authenticated = match st.state.as_str() {
            "open" => false,
            "owner_authenticated" | "released" => true,
            other => {
                unavailable.push((
                    info.name.clone(),
                    format!("the saved session is {other} at this trustee").into(),
                ));
                continue;
            }
        };
        participants.push(Participant {
            info,
            channel,
            opened: Opened {
                session_id: s.session_id.clone(),
                request_options_json: s.request_options_json.clone(),
                nonce: hex::decode(&s.nonce).unwrap_or_default(),
                // The trustee's own, which is what it enforces.
                release_not_before: st.release_not_before,
                manifest_encoded: Vec::new(),
                staged_manifest_encoded: Vec::new(),
            },
            staged: s.staged,
            authenticated,
        });
    }
    let mut handle = state.handle.clone();
    if handle.wallet_id != wallet_id || handle.session_key != public_key_hex(&r_pub) {
        return Err(bad("handle"));
    }
    for s in &mut handle.sessions {
        if let Some(p) = participants
            .iter()
            .find(|p| p.opened.session_id == s.session_id)
        {
            s.release_not_before = p.opened.release_not_before;
        }
    }
    let run = Run {
        trustees,
        wallet_id: wallet_id.to_owned(),
        r,
        manifest,
        handle,
        participants,
        unavailable,
        faulty: Vec::new(),
    };
    if run.participants.len() < usize::from(run.manifest.threshold()) {
        return Err(run.not_enough("resuming", run.participants.len()));
    }
    finish(run, auth, opts).await
}

/// Steps 3 to 8: the owner's passkey where needed, the bank's approval, the delay, the releases.
async fn finish(
    mut run: Run<'_>,
    auth: &mut dyn Passkey,
    mut opts: RecoverOptions<'_>,
) -> Result<Recovered, RecoverError> {
    let progress = opts.progress;
    let t = usize::from(run.manifest.threshold());
    let r_pub = run.r.public_key();
    let trustees = run.trustees;
    let wallet_id = run.wallet_id.clone();
    let (mut authenticated, mut asked): (Vec<_>, Vec<_>) = std::mem::take(&mut run.participants)
        .into_iter()
        .partition(|p| p.authenticated);

    // 3. The owner's passkey, ONCE for every trustee not yet authenticated (a resumed recovery
    // with t owner-authenticated sessions needs none): the one-touch challenge (action recover,
    // R, every session's nonce in manifest order), then AuthenticateOwner everywhere.
    if authenticated.len() < t {
        asked.sort_by_key(|p| {
            run.manifest
                .trustees()
                .iter()
                .position(|e| e.node_id == p.info.node_id)
        });
        let mut nonces = Vec::with_capacity(asked.len());
        let mut ready = Vec::with_capacity(asked.len());
        for p in asked {
            match ceremony::trustee_nonce(&p.info.node_id, &p.opened.nonce) {
                Ok(n) => {
                    nonces.push(n);
                    ready.push(p);
                }
                Err(reason) => {
                    progress(RecoverEvent::TrusteeFailed {
                        name: p.info.name.clone(),
                        reason: reason.clone(),
                    });
                    run.faulty
                        .push((p.info.name.clone(), TrusteeFailure::BadAnswer(reason)));
                }
            }
        }
        const STAGE: &str = "authenticating the owner";
        if authenticated.len() + ready.len() < t {
            return Err(run.not_enough(STAGE, authenticated.len() + ready.len()));
        }
        progress(RecoverEvent::PasskeyRequested {
            trustees: ready.iter().map(|p| p.info.name.clone()).collect(),
        });
        let template = ceremony::first_request_template(
            ready.iter().map(|p| p.opened.request_options_json.as_str()),
        );
        let touch = ceremony::assert(
            auth,
            OwnerAction::Recover,
            &wallet_id,
            &encode_public_key(&r_pub),
            nonces,
            template,
        )
        .await;
        let touch = match touch {
            Ok(t) => t,
            Err(e) => {
                let reason = format!("passkey: {e}");
                for p in &ready {
                    run.unavailable
                        .push((p.info.name.clone(), reason.as_str().into()));
                }
                return Err(run.not_enough(STAGE, authenticated.len()));
            }
        };
        let answers = join_all(ready.into_iter().map(|p| {
            let touch = &touch;
            async move {
                let res = recovery_client(p.channel.clone())
                    .authenticate_owner(AuthenticateOwnerRequest {
                        session_id: p.opened.session_id.clone(),
                        assertion_json: touch.response_json.clone(),
                        nonces: touch.nonces.clone(),
                    })
                    .await
                    .map(|r| r.into_inner().release_not_before)
                    .map_err(|s| TrusteeFailure::refused("AuthenticateOwner", &s));
                (p, res)
            }
        }))
        .await;
        for (mut p, res) in answers {
            match res {
                Ok(rnb) => {
                    progress(RecoverEvent::OwnerAuthenticated {
                        name: p.info.name.clone(),
                    });
                    p.opened.release_not_before = p.opened.release_not_before.max(rnb);
                    p.authenticated = true;
                    authenticated.push(p);
                }
                Err(reason) => {
                    progress(RecoverEvent::TrusteeFailed {
                        name: p.info.name.clone(),
                        reason: reason.to_string(),
                    });
                    run.unavailable.push((p.info.name.clone(), reason));
                }
            }
        }
        if authenticated.len() < t {
            return Err(run.not_enough(STAGE, authenticated.len()));
        }
    }
    // Sessions left unauthenticated (resumed with t already authenticated) expire on their own
    // and block nothing.
    let authenticated_names: Vec<String> =
        authenticated.iter().map(|p| p.info.name.clone()).collect();
    run.participants = authenticated;
    run.save(RecoveryStep::OwnerAuthenticated, &opts)?;

    // 4. The bank's approval for (wallet, R): GetApproval only reads what staff decided.
    let bank = trustees.bank();
    let bank_session_id = run
        .handle
        .session_at(&bank.name)
        .unwrap_or_default()
        .to_owned();
    let approval = await_approval(
        bank,
        &wallet_id,
        &r_pub,
        &bank_session_id,
        &run.handle,
        &mut opts,
    )
    .await?;

    // 5. The delay: wait until the last trustee's release_not_before, exactly (a trustee
    // releases from that second on), reporting progress at most once a second. A trustee whose
    // clock is a little behind holds step 6's call until its own release_not_before.
    let not_before = run
        .participants
        .iter()
        .map(|p| p.opened.release_not_before)
        .max()
        .unwrap_or(0);
    let deadline = web_time::UNIX_EPOCH + Duration::from_secs(not_before);
    while let Ok(left) = deadline.duration_since(web_time::SystemTime::now()) {
        if left.is_zero() {
            break;
        }
        progress(RecoverEvent::Waiting {
            seconds_left: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        });
        if sleep_or_cancel(left.min(Duration::from_secs(1)), &mut opts.cancel).await {
            return Err(RecoverError::Cancelled {
                handle: Box::new(run.handle),
            });
        }
    }
    run.save(RecoveryStep::Releasing, &opts)?;

    // 6. Release everywhere, concurrently. A trustee whose clock is a little behind (its
    // release_not_before a few seconds away) holds the call until then (`wait_secs`) and
    // releases; one that answers "not yet" at once (it does not hold calls) is asked again at
    // once, twice at most. No pause: the delay is over by the SDK's clock. A trustee that
    // already released to this session (a resumed recovery) releases again.
    let mut good: Vec<(String, GoodShare)> = Vec::new();
    let mut released: Vec<String> = Vec::new();
    let mut pending: Vec<Participant<'_>> = std::mem::take(&mut run.participants);
    for attempt in 0..3 {
        let answers = join_all(pending.into_iter().map(|p| {
            let approval = approval.clone();
            async move {
                let wait_secs = release_wait_secs(p.info);
                let req = ReleaseShareRequest {
                    session_id: p.opened.session_id.clone(),
                    bank_approval_encoded: approval,
                    wait_secs,
                };
                let asked = Instant::now();
                let resp = if p.staged {
                    EpochsClient::new(p.channel.clone())
                        .max_decoding_message_size(crate::transport::MAX_MESSAGE_BYTES)
                        .release_staged_share(req)
                        .await
                } else {
                    recovery_client(p.channel.clone()).release_share(req).await
                };
                let held = !answered_at_once(asked, wait_secs);
                (p, resp, held)
            }
        }))
        .await;
        pending = Vec::new();
        for (p, resp, held) in answers {
            let name = p.info.name.clone();
            match resp {
                Ok(resp) => {
                    released.push(name.clone());
                    let entry = run.manifest.trustee(&p.info.node_id);
                    let checked = entry
                        .ok_or_else(|| "not in the manifest".to_owned())
                        .and_then(|e| {
                            check_release(p.info, e, &run.manifest, &run.r, &resp.into_inner())
                                .map(|g| (e, g))
                        });
                    match checked {
                        Ok((e, g)) => {
                            progress(RecoverEvent::ShareVerified {
                                name: name.clone(),
                                share_index: e.share_index,
                            });
                            good.push((name, g));
                        }
                        Err(reason) => {
                            progress(RecoverEvent::ShareRejected {
                                name: name.clone(),
                                reason: reason.clone(),
                            });
                            run.faulty.push((name, TrusteeFailure::BadAnswer(reason)));
                        }
                    }
                }
                // "Not yet" at once (clock skew, a trustee that does not hold calls): asked
                // again. A trustee that held the call and still says "not yet" (it is shutting
                // down) is not. The refusal code decides; a session refused for good is not
                // retried.
                Err(s) if release_not_yet(&s) && !held && attempt < 2 => {
                    pending.push(p);
                }
                Err(s) => {
                    let reason = TrusteeFailure::refused("ReleaseShare", &s);
                    progress(RecoverEvent::ShareRejected {
                        name: name.clone(),
                        reason: reason.to_string(),
                    });
                    run.unavailable.push((name, reason));
                }
            }
        }
        if pending.is_empty() || good.len() >= t {
            break;
        }
    }
    for p in pending {
        run.unavailable.push((
            p.info.name.clone(),
            "ReleaseShare: the delay has not passed at this trustee".into(),
        ));
    }
    // Manifest order, so the same trustees are preferred each time.
    good.sort_by_key(|(n, _)| trustees.trustees().iter().position(|i| &i.name == n));

    // 7. Combine exactly t, check C_0 and the blob hash, decrypt.
    let all_failed: Vec<Failure> = run.faulty.iter().chain(&run.unavailable).cloned().collect();
    let (secret, data, used) = assemble(&run.manifest, &good, &all_failed)?;

    // 8. Sessions this recovery authenticated but did not release (a release refused or not
    // verified) block a rotation at that trustee until they expire: close them with ONE owner
    // cancellation (best effort). Sessions it did not authenticate expire on their own.
    let to_close: Vec<TrusteeSession> = run
        .handle
        .sessions
        .iter()
        .filter(|s| authenticated_names.contains(&s.name) && !released.contains(&s.name))
        .cloned()
        .collect();
    let mut closed = Vec::new();
    if !to_close.is_empty() {
        let results = owner_cancel(trustees, &wallet_id, &r_pub, &to_close, auth).await;
        for (s, res) in to_close.iter().zip(results) {
            match res {
                Ok(()) => closed.push(s.name.clone()),
                Err(e) => {
                    tracing::debug!(trustee = %s.name, error = %e, "could not close an unused recovery session")
                }
            }
        }
    }
    Ok(Recovered {
        data,
        secret,
        manifest: run.manifest,
        handle: run.handle,
        used,
        faulty: run.faulty,
        unavailable: run.unavailable,
        closed,
        device: DeviceKey {
            key: run.r,
            bank_approval: approval,
        },
    })
}

/// A release refused only because the delay has not passed here yet (clocks a little apart).
fn release_not_yet(s: &tonic::Status) -> bool {
    is_refusal(s, NodeRefusal::DelayNotPassed)
}

/// The bank has not approved yet (or could not be reached): keep polling. Any other refusal
/// ends the wait.
pub(crate) fn approval_pending(s: &tonic::Status) -> bool {
    is_refusal(s, NodeRefusal::AwaitingApproval) || transport_failure(s)
}

async fn await_approval(
    bank: &TrusteeInfo,
    wallet_id: &str,
    r_pub: &PublicKey,
    bank_session_id: &str,
    handle: &RecoveryHandle,
    opts: &mut RecoverOptions<'_>,
) -> Result<Vec<u8>, RecoverError> {
    let bank_err = |reason: String| RecoverError::Bank {
        bank: bank.name.clone(),
        reason,
    };
    if bank_session_id.is_empty() {
        return Err(bank_err(
            "no recovery session is open at the bank, so it cannot approve".into(),
        ));
    }
    (opts.progress)(RecoverEvent::AwaitingApproval {
        bank_session_id: bank_session_id.to_owned(),
    });
    let started = Instant::now();
    let mut last_status = String::new();
    // The bank holds each call until staff approve (or `wait_secs` pass), so the approval is
    // seen the moment it is given, without a polling interval.
    let wait_secs = approval_wait_secs(bank);
    loop {
        let asked = Instant::now();
        let ask = async {
            match connect_channel(bank).await {
                Ok(ch) => staff_client(ch)
                    .get_approval(GetApprovalRequest {
                        wallet_id: wallet_id.to_owned(),
                        session_key: encode_public_key(r_pub).to_vec(),
                        wait_secs,
                    })
                    .await
                    .map(|r| r.into_inner().bank_approval_encoded),
                Err(e) => Err(tonic::Status::unavailable(e.to_string())),
            }
        };
        // The bank may hold the call for a while: a cancel does not wait for it.
        let Some(answer) = or_cancel(ask, &mut opts.cancel).await else {
            return Err(RecoverError::Cancelled {
                handle: Box::new(handle.clone()),
            });
        };
        match answer {
            Ok(bytes) => {
                let approval =
                    check_approval(&bytes, &bank.node_id, wallet_id, r_pub).map_err(bank_err)?;
                (opts.progress)(RecoverEvent::Approved {
                    approvers: approval.approvers.clone(),
                    expires_at: approval.expires_at,
                });
                return Ok(bytes);
            }
            Err(s) if approval_pending(&s) => {
                let status = describe_status(&s);
                if status != last_status {
                    (opts.progress)(RecoverEvent::ApprovalPending {
                        status: status.clone(),
                    });
                    last_status = status;
                }
            }
            Err(s) if is_refusal(&s, NodeRefusal::SessionCancelled) => {
                return Err(RecoverError::CancelledAtBank {
                    reason: s.message().lines().next().unwrap_or("").to_owned(),
                });
            }
            Err(s) => return Err(bank_err(format!("GetApproval: {}", describe_status(&s)))),
        }
        if started.elapsed() >= opts.approval_timeout {
            return Err(RecoverError::ApprovalTimeout {
                waited_secs: started.elapsed().as_secs(),
                last_status,
                bank_session_id: bank_session_id.to_owned(),
                handle: Box::new(handle.clone()),
            });
        }
        let pause = if answered_at_once(asked, wait_secs) {
            opts.poll_interval
        } else {
            Duration::ZERO
        };
        if sleep_or_cancel(pause, &mut opts.cancel).await {
            return Err(RecoverError::Cancelled {
                handle: Box::new(handle.clone()),
            });
        }
    }
}

/// Sanity checks on the bank's approval before handing it to the trustees (which verify its
/// signature against the bank keys they are configured with; the SDK does not pin that key).
pub(crate) fn check_approval(
    bytes: &[u8],
    bank_node_id: &str,
    wallet_id: &str,
    r_pub: &PublicKey,
) -> Result<BankApproval, String> {
    let signed =
        Signed::<BankApproval>::decode(bytes).map_err(|e| format!("bank approval: {e}"))?;
    let a = signed.body();
    if a.bank_node_id != bank_node_id || a.wallet_id != wallet_id || a.session_key != *r_pub {
        return Err("the bank's approval is for another bank, wallet or device".into());
    }
    if a.expires_at <= dlocker_proto::time::unix_now() {
        return Err("the bank's approval has already expired".into());
    }
    Ok(a.clone())
}

/// Per-trustee result of a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelOutcome {
    /// Trustee.
    pub name: String,
    /// `None` when cancelled; the reason otherwise.
    pub error: Option<String>,
}

/// The owner cancels a recovery: every session in `handle` with ONE touch of the passkey.
/// `BeginOwnerCancel` at every trustee concurrently (each hands out a fresh nonce; earlier ones
/// stay valid, so nobody else's call can spoil the owner's), one assertion over the one-touch
/// challenge (action cancel, the handle's `R`, every nonce in the handle's order), then
/// `CancelRecovery` at every trustee with it. Returns one outcome per session.
pub async fn cancel_recovery(
    trustees: &TrusteeSet,
    handle: &RecoveryHandle,
    auth: &mut dyn Passkey,
) -> Vec<CancelOutcome> {
    let results = match handle_session_key(handle) {
        Ok(r) => owner_cancel(trustees, &handle.wallet_id, &r, &handle.sessions, auth).await,
        Err(e) => vec![Err(format!("the handle's session key: {e}")); handle.sessions.len()],
    };
    handle
        .sessions
        .iter()
        .zip(results)
        .map(|(s, res)| CancelOutcome {
            name: s.name.clone(),
            error: res.err(),
        })
        .collect()
}

/// The owner cancels `sessions` (all towards `r_pub`) with one touch; one result per session.
async fn owner_cancel(
    trustees: &TrusteeSet,
    wallet_id: &str,
    r_pub: &PublicKey,
    sessions: &[TrusteeSession],
    auth: &mut dyn Passkey,
) -> Vec<Result<(), String>> {
    let begun = join_all(sessions.iter().map(|s| async move {
        let info = trustees
            .by_node_id(&s.node_id)
            .or_else(|| trustees.by_name(&s.name))
            .ok_or("not in the trustees file")?;
        let mut c = recovery_client(connect_channel(info).await.map_err(|e| e.to_string())?);
        let begin = c
            .begin_owner_cancel(BeginOwnerCancelRequest {
                session_id: s.session_id.clone(),
            })
            .await
            .map_err(|st| format!("BeginOwnerCancel: {}", describe_status(&st)))?
            .into_inner();
        let nonce = ceremony::trustee_nonce(&info.node_id, &begin.nonce)?;
        Ok::<_, String>((c, begin.request_options_json, nonce))
    }))
    .await;
    let mut out: Vec<Result<(), String>> = Vec::with_capacity(sessions.len());
    let mut ready = Vec::new();
    for (i, b) in begun.into_iter().enumerate() {
        match b {
            Ok(b) => {
                out.push(Ok(()));
                ready.push((i, b));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    if ready.is_empty() {
        return out;
    }
    let template = ceremony::first_request_template(ready.iter().map(|(_, (_, t, _))| t.as_str()));
    let touch = ceremony::assert(
        auth,
        OwnerAction::Cancel,
        wallet_id,
        &encode_public_key(r_pub),
        ready.iter().map(|(_, (_, _, n))| n.clone()).collect(),
        template,
    )
    .await;
    let touch = match touch {
        Ok(t) => t,
        Err(e) => {
            for (i, _) in ready {
                out[i] = Err(format!("passkey: {e}"));
            }
            return out;
        }
    };
    let cancelled = join_all(ready.into_iter().map(|(i, (mut c, _, _))| {
        let (touch, session_id) = (&touch, sessions[i].session_id.clone());
        async move {
            let res = c
                .cancel_recovery(CancelRecoveryRequest {
                    session_id,
                    authority: Some(cancel_recovery_request::Authority::OwnerAssertionJson(
                        touch.response_json.clone(),
                    )),
                    nonces: touch.nonces.clone(),
                })
                .await
                .map(|_| ())
                .map_err(|st| format!("CancelRecovery: {}", describe_status(&st)));
            (i, res)
        }
    }))
    .await;
    for (i, res) in cancelled {
        out[i] = res;
    }
    out
}

/// Presents the bank's signed cancellation (from `StaffClient::cancel`) to every trustee.
/// Session ids come from `handle` when known; otherwise the session id is left empty and the
/// trustee finds its live session by the cancellation's wallet and `R`.
pub async fn present_bank_cancellation(
    trustees: &TrusteeSet,
    handle: Option<&RecoveryHandle>,
    cancellation: &[u8],
) -> Vec<CancelOutcome> {
    let invalid = Signed::<BankCancellation>::decode(cancellation)
        .err()
        .map(|e| e.to_string());
    let invalid = invalid.as_deref();
    join_all(trustees.trustees().iter().map(|info| async move {
        let res = async {
            if let Some(e) = invalid {
                return Err(format!("not a valid bank cancellation: {e}"));
            }
            let session_id = handle
                .and_then(|h| h.session_at(&info.name))
                .unwrap_or_default()
                .to_owned();
            let mut c = recovery_client(connect_channel(info).await.map_err(|e| e.to_string())?);
            c.cancel_recovery(CancelRecoveryRequest {
                session_id,
                authority: Some(cancel_recovery_request::Authority::BankCancellationEncoded(
                    cancellation.to_vec(),
                )),
                nonces: Vec::new(),
            })
            .await
            .map_err(|st| format!("CancelRecovery: {}", describe_status(&st)))?;
            Ok(())
        }
        .await;
        CancelOutcome {
            name: info.name.clone(),
            error: res.err(),
        }
    }))
    .await
}

/// Parses a handle's `R` (for callers that stored the handle).
pub(crate) fn handle_session_key(handle: &RecoveryHandle) -> Result<PublicKey, String> {
    public_key_from_hex(&handle.session_key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_and_approval_waits_are_decided_by_refusal_codes() {
        use tonic::Status;
        // Retried: the delay has not passed at this trustee (whatever the message says).
        assert!(release_not_yet(
            &NodeRefusal::DelayNotPassed.status("anything")
        ));
        // Not retried: other "not possible" refusals share the gRPC code but are final.
        for final_refusal in [
            NodeRefusal::SessionCancelled,
            NodeRefusal::SessionExpired,
            NodeRefusal::AlreadyReleased,
            NodeRefusal::SessionEpochReplaced,
        ] {
            let s = final_refusal.status("recovery delay has not passed (s left)");
            assert_eq!(s.code(), tonic::Code::FailedPrecondition);
            assert!(!release_not_yet(&s), "{final_refusal}");
        }
        assert!(!release_not_yet(&NodeRefusal::ApprovalExpired.status("")));
        // A node without codes: its gRPC code decides, as before codes existed.
        assert!(release_not_yet(&Status::failed_precondition("")));
        assert!(!release_not_yet(&Status::permission_denied("")));

        // The bank: keep polling while it awaits its staff or cannot be reached; stop on a
        // refusal (a node that is not a bank, an unknown wallet, a rate limit).
        assert!(approval_pending(
            &NodeRefusal::AwaitingApproval.status("awaiting bank approval (0 of 2 staff)")
        ));
        assert!(approval_pending(&Status::unavailable("connection refused")));
        assert!(approval_pending(&Status::deadline_exceeded("")));
        assert!(!approval_pending(&NodeRefusal::NoBankStaff.status("")));
        assert!(!approval_pending(&NodeRefusal::WalletNotFound.status("")));
        assert!(!approval_pending(&NodeRefusal::RateLimited.status("")));
        assert!(!approval_pending(
            &NodeRefusal::SessionExpired.status("awaiting bank approval")
        ));
    }

    /// Apps spawn these on multi-threaded runtimes: the futures must stay `Send`.
    #[allow(dead_code)]
    fn futures_are_send(
        set: &TrusteeSet,
        auth: &mut crate::SoftwareAuthenticator,
        h: &RecoveryHandle,
    ) {
        fn is_send<T: Send>(_: T) {}
        is_send(recover(set, "w", auth, RecoverOptions::default()));
        is_send(cancel_recovery(set, h, auth));
        is_send(present_bank_cancellation(set, Some(h), &[]));
    }
    use crate::backup::{BackupPolicy, PreparedBackup};
    use k256::elliptic_curve::Generate;

    fn set(n: usize) -> (TrusteeSet, Vec<SecretKey>) {
        crate::trustees::test_set(n, 0)
    }

    fn prepared(set: &TrusteeSet) -> PreparedBackup {
        PreparedBackup::new(
            set,
            "w1",
            b"seed words",
            BackupPolicy {
                threshold: 3,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare")
    }

    /// What an honest trustee `i` (0-based) would answer to ReleaseShare.
    fn release(
        p: &PreparedBackup,
        set: &TrusteeSet,
        keys: &[SecretKey],
        i: usize,
        r: &PublicKey,
    ) -> ReleaseShareResponse {
        let m = p.manifest();
        let entry = &m.trustees()[i];
        let share = p.share(entry.share_index).expect("share");
        let ctx = EnvelopeContext {
            wallet_id: m.wallet_id(),
            epoch: m.epoch(),
            share_index: entry.share_index,
            recipient: r,
        };
        let env = ShareEnvelope::seal(share, &ctx).expect("seal").encode();
        let body = ShareRelease {
            node_id: set.trustees()[i].node_id.clone(),
            wallet_id: m.wallet_id().into(),
            epoch: m.epoch(),
            share_index: entry.share_index,
            manifest_hash: m.hash(),
            session_key: *r,
            envelope_hash: Sha256::digest(&env).into(),
            released_at: 1,
        };
        let sk = k256::ecdsa::SigningKey::from(keys[i].clone());
        ReleaseShareResponse {
            share_envelope_encoded: env,
            manifest_encoded: p.manifest_bytes().to_vec(),
            release_encoded: Signed::sign(body, &sk).encode(),
            blob: p.blob().to_vec(),
        }
    }

    #[test]
    fn manifest_needs_threshold_agreement_and_pinned_keys() {
        let (s, _) = set(5);
        let p = prepared(&s);
        let (other_set, _) = set(5);
        let other = prepared(&other_set); // lists keys that are not pinned
        let good = p.manifest_bytes();
        let bad = other.manifest_bytes();
        let ts = s.trustees();
        // 3 agree, one sends another manifest, one garbage: the 3 win, the others are named.
        let votes: Vec<(&TrusteeInfo, &[u8])> = vec![
            (&ts[0], good),
            (&ts[1], bad),
            (&ts[2], good),
            (&ts[3], b"junk"),
            (&ts[4], good),
        ];
        let (m, failed, _) = select_manifest("w1", &s, &votes).expect("selected");
        assert_eq!(m.hash(), p.manifest_hash());
        let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&"t2") && names.contains(&"t4") && names.len() == 2,
            "{failed:?}"
        );
        // Only 2 agree: below t = 3.
        let votes: Vec<(&TrusteeInfo, &[u8])> = vec![(&ts[0], good), (&ts[1], bad), (&ts[2], good)];
        assert!(matches!(
            select_manifest("w1", &s, &votes),
            Err(RecoverError::NotEnoughTrustees {
                needed: 3,
                available: 2,
                ..
            })
        ));
        // Three trustees agreeing on a manifest with unpinned keys is still refused.
        let votes: Vec<(&TrusteeInfo, &[u8])> = vec![(&ts[0], bad), (&ts[1], bad), (&ts[2], bad)];
        let err = select_manifest("w1", &s, &votes).expect_err("unpinned");
        assert!(
            err.to_string().contains("not in the trustees file"),
            "{err}"
        );
        // Another wallet's manifest is refused.
        let votes: Vec<(&TrusteeInfo, &[u8])> =
            vec![(&ts[0], good), (&ts[1], good), (&ts[2], good)];
        assert!(select_manifest("w2", &s, &votes).is_err());
    }

    #[test]
    fn releases_are_verified_and_bad_shares_named() {
        let (s, keys) = set(5);
        let p = prepared(&s);
        let m = p.manifest();
        let r = SecretKey::generate_from_rng(&mut rand::rng());
        let r_pub = r.public_key();
        let check = |i: usize, resp: &ReleaseShareResponse| {
            check_release(&s.trustees()[i], &m.trustees()[i], m, &r, resp)
        };

        let mut good = Vec::new();
        for i in 0..5 {
            let g = check(i, &release(&p, &s, &keys, i, &r_pub)).expect("honest release verifies");
            good.push((s.trustees()[i].name.clone(), g));
        }

        // A trustee that releases ANOTHER valid-looking share (its index, wrong value) — correctly
        // signed and sealed to R — is caught by the commitments.
        let lying = {
            let entry = &m.trustees()[1];
            let fake = Share::new(entry.share_index, SecretScalar::random()).expect("share");
            let ctx = EnvelopeContext {
                wallet_id: "w1",
                epoch: 1,
                share_index: entry.share_index,
                recipient: &r_pub,
            };
            let env = ShareEnvelope::seal(&fake, &ctx).expect("seal").encode();
            let mut resp = release(&p, &s, &keys, 1, &r_pub);
            let body = ShareRelease {
                node_id: s.trustees()[1].node_id.clone(),
                wallet_id: "w1".into(),
                epoch: 1,
                share_index: entry.share_index,
                manifest_hash: m.hash(),
                session_key: r_pub,
                envelope_hash: Sha256::digest(&env).into(),
                released_at: 1,
            };
            resp.release_encoded =
                Signed::sign(body, &k256::ecdsa::SigningKey::from(keys[1].clone())).encode();
            resp.share_envelope_encoded = env;
            resp
        };
        let err = check(1, &lying).expect_err("bad share");
        assert!(err.contains("bad share"), "{err}");

        // Signed by another trustee's key; envelope swapped; sealed to another R.
        let mut resp = release(&p, &s, &keys, 2, &r_pub);
        resp.release_encoded = release(&p, &s, &keys, 3, &r_pub).release_encoded;
        assert!(
            check(2, &resp)
                .expect_err("wrong signer")
                .contains("not accepted")
        );
        let mut resp = release(&p, &s, &keys, 2, &r_pub);
        resp.share_envelope_encoded = release(&p, &s, &keys, 2, &r_pub).share_envelope_encoded;
        assert!(check(2, &resp).expect_err("swapped").contains("envelope"));
        let other_r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        assert!(
            check(2, &release(&p, &s, &keys, 2, &other_r))
                .expect_err("other R")
                .contains("session key")
        );

        // Exactly t good shares suffice, whichever they are; t−1 do not, and the failures are named.
        let (k, data, used) = assemble(m, &good[2..], &[]).expect("assemble");
        assert_eq!(data.expose(), b"seed words");
        assert_eq!(used, vec!["t3", "t4", "t5"]);
        assert_eq!(
            k.to_bytes(),
            assemble(m, &good[..3], &[]).expect("again").0.to_bytes()
        );
        let failed: Vec<Failure> = vec![
            ("t1".to_owned(), "down".into()),
            ("t2".to_owned(), TrusteeFailure::BadAnswer(err.clone())),
            ("t3".to_owned(), "down".into()),
        ];
        match assemble(m, &good[3..], &failed) {
            Err(
                e @ RecoverError::NotEnoughTrustees {
                    needed: 3,
                    available: 2,
                    ..
                },
            ) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("t1: down")
                        && msg.contains("t2: returned a bad share")
                        && msg.contains("t3"),
                    "{msg}"
                );
            }
            other => panic!("expected NotEnoughTrustees, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn resume_refuses_a_state_it_cannot_trust() {
        let (s, _) = set(3);
        let key = StateKey::generate();
        let r = SecretKey::generate_from_rng(&mut rand::rng());
        let p = prepared(&s);
        let state = crate::saved::RecoveryState {
            wallet_id: "w1".into(),
            handle: RecoveryHandle {
                wallet_id: "w1".into(),
                session_key: public_key_hex(&r.public_key()),
                sessions: vec![],
            },
            session_secret: hex::encode(r.to_bytes()).into(),
            manifest: hex::encode(p.manifest_bytes()),
            step: RecoveryStep::OwnerAuthenticated,
            sessions: vec![],
        };
        let sealed = state.seal(&key);
        let mut auth = crate::SoftwareAuthenticator::new();
        // Another key, a tampered byte, a backup's state: refused before any trustee is asked.
        let mut tampered = sealed.clone();
        tampered[30] ^= 1;
        let backup_state = p.seal(&key);
        for (bytes, k, why) in [
            (&sealed, &StateKey::generate(), "decrypt"),
            (&tampered, &key, "decrypt"),
            (&backup_state, &key, "kind"),
        ] {
            let err = resume_recovery(&s, bytes, k, &mut auth, RecoverOptions::default())
                .await
                .expect_err("refused");
            assert!(
                matches!(err, RecoverError::SavedState(ref m) if m.contains(why)),
                "{err}"
            );
        }
        assert_eq!(auth.touches(), 0);
        // A state whose handle names another device key is refused too.
        let other = crate::saved::RecoveryState {
            handle: RecoveryHandle {
                session_key: public_key_hex(
                    &SecretKey::generate_from_rng(&mut rand::rng()).public_key(),
                ),
                ..state.handle.clone()
            },
            ..state
        };
        let err = resume_recovery(
            &s,
            &other.seal(&key),
            &key,
            &mut auth,
            RecoverOptions::default(),
        )
        .await
        .expect_err("refused");
        assert!(err.to_string().contains("handle"), "{err}");
        assert!(!format!("{err:?}").contains(&hex::encode(r.to_bytes())));
    }

    #[test]
    fn approval_sanity_checks() {
        let bank_key = k256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
        let r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let now = dlocker_proto::time::unix_now();
        let a = BankApproval {
            bank_node_id: "ab".repeat(16),
            wallet_id: "w1".into(),
            session_key: r,
            issued_at: now,
            expires_at: now + 60,
            approvers: vec!["alice".into()],
        };
        let enc = Signed::sign(a.clone(), &bank_key).encode();
        assert_eq!(
            check_approval(&enc, &"ab".repeat(16), "w1", &r)
                .expect("ok")
                .approvers,
            vec!["alice"]
        );
        assert!(check_approval(&enc, &"ab".repeat(16), "w2", &r).is_err());
        let other = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        assert!(check_approval(&enc, &"ab".repeat(16), "w1", &other).is_err());
        let expired = Signed::sign(
            BankApproval {
                expires_at: now - 1,
                ..a
            },
            &bank_key,
        )
        .encode();
        assert!(
            check_approval(&expired, &"ab".repeat(16), "w1", &r)
                .expect_err("expired")
                .contains("expired")
        );
    }

    #[test]
    fn debug_of_recovered_hides_secrets() {
        let (s, keys) = set(3);
        let p = PreparedBackup::new(
            &s,
            "w1",
            b"seed words",
            BackupPolicy {
                threshold: 2,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        let r = SecretKey::generate_from_rng(&mut rand::rng());
        let good: Vec<(String, GoodShare)> = (0..2)
            .map(|i| {
                let resp = release(&p, &s, &keys, i, &r.public_key());
                (
                    s.trustees()[i].name.clone(),
                    check_release(
                        &s.trustees()[i],
                        &p.manifest().trustees()[i],
                        p.manifest(),
                        &r,
                        &resp,
                    )
                    .expect("ok"),
                )
            })
            .collect();
        let (secret, data, used) = assemble(p.manifest(), &good, &[]).expect("assemble");
        let rec = Recovered {
            data,
            secret,
            manifest: p.manifest().clone(),
            handle: RecoveryHandle {
                wallet_id: "w1".into(),
                session_key: String::new(),
                sessions: vec![],
            },
            used,
            faulty: vec![],
            unavailable: vec![],
            closed: vec![],
            device: DeviceKey::new(r.clone(), vec![1, 2, 3]),
        };
        let dbg = format!("{rec:?}");
        assert!(
            !dbg.contains(&hex::encode(r.to_bytes())),
            "the device key is not shown: {dbg}"
        );
        assert!(
            !dbg.contains("seed words") && dbg.contains("REDACTED"),
            "{dbg}"
        );
        assert!(!dbg.contains(&hex::encode(rec.secret().to_bytes().as_ref())));
    }
}
