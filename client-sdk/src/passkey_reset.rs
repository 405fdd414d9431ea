//! Bank-assisted passkey reset: the passkey is lost, the phone (and the wallet secret `k`) is
//! not (`docs/protocol.md` §13a, "Passkey reset").
//!
//! [`reset_passkey`] asks every trustee for a reset nonce (`BeginEpochAction(RESET_PASSKEY)`),
//! has the NEW authenticator register one credential over the one-touch challenge (action
//! reset-passkey, nothing authorized), proves knowledge of `k` over the challenge naming the new
//! credential's fingerprint, files the request at the wallet's bank
//! (`Staff.RequestPasskeyReset`) and asks again, the bank holding each call (`wait_secs`), until
//! the bank's staff approved it (they check who the customer is, and that the fingerprint the
//! app shows — [`ResetEvent::Requested`] — is the request's), then sends registration, proof and
//! the bank's approval to every trustee (`Epochs.ResetPasskey`). From then on only the new
//! passkey works.
//!
//! `k` is only borrowed, as the protocol's zeroizing [`SecretScalar`]; nothing derived from it
//! but the proof leaves this function. The reset's nonces live the trustees'
//! `limits.passkey_reset_ttl_secs` (an hour by default): the bank's approval must come within it.
//! A trustee that did not confirm keeps the lost credential: [`PasskeyResetError::Incomplete`]
//! carries a [`PendingReset`] that [`resume_passkey_reset`] sends again, within that time,
//! without a new touch or approval.
//!
//! A reset waits for people (the bank's staff), so the app may be killed meanwhile: with a
//! [`ResetCheckpoint`] the SDK hands the app the sealed [`PendingReset`] once the request is
//! filed, again once the bank approved it and again when some trustees did not confirm;
//! [`PendingReset::open_sealed`] + [`resume_passkey_reset`] pick it up there (waiting for the
//! approval of the same request, no new touch).

use crate::authenticator::Passkey;
use crate::ceremony;
use crate::error::{AuthError, Failure, TrusteeFailure};
use crate::passkey_change::{begin, registered_fingerprint};
use crate::runtime::{Instant, sleep};
use crate::saved::{SavedStateError, open_json, seal_json};
use crate::transport::{
    answered_at_once, approval_wait_secs, connect_channel, describe_failures, describe_status,
    epochs_client, is_refusal, staff_client, transport_failure,
};
use crate::trustees::{TrusteeInfo, TrusteeSet};
use dlocker_proto::client_state::{StateKey, StateKind};
use dlocker_proto::ids::WalletId;
use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge, TrusteeNonce};
use dlocker_proto::pb::{self, EpochAction, RequestPasskeyResetRequest, ResetPasskeyRequest};
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::reset_proof::ResetProof;
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::statement::{PasskeyResetApproval, Signed};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

/// What [`reset_passkey`] reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetEvent {
    /// The bank holds the request: show the customer the fingerprint (its first characters) to
    /// read out to the bank's staff.
    Requested {
        /// The bank's request id (what staff approve).
        request_id: String,
        /// The new credential's fingerprint.
        credential_fingerprint: [u8; 32],
    },
    /// The bank's staff have not approved it yet.
    ApprovalPending {
        /// Staff who approved so far.
        approvers: Vec<String>,
        /// Approvals the bank requires.
        approvals_required: u32,
    },
    /// The bank approved it.
    Approved {
        /// Staff whose approvals met the policy.
        approvers: Vec<String>,
    },
}

fn no_progress(_: ResetEvent) {}

/// How [`reset_passkey`] waits for the bank and reports.
pub struct ResetOptions<'a> {
    /// The pause between two questions to the bank about its approval when the bank answers at
    /// once (one that does not hold the call until staff approve). A bank that holds the call
    /// (`RequestPasskeyReset`'s `wait_secs`) is asked again at once.
    pub poll_interval: Duration,
    /// Give up waiting for the bank's approval after this long (at most the nonces' hour helps).
    pub approval_timeout: Duration,
    /// Progress callback.
    pub progress: &'a (dyn Fn(ResetEvent) + Sync),
    /// Where to save the sealed reset so a killed app resumes it ([`PendingReset::open_sealed`],
    /// [`resume_passkey_reset`]); `None`: not saved.
    pub checkpoint: Option<ResetCheckpoint<'a>>,
}

/// The app's saving of a reset in progress: `save` gets the sealed [`PendingReset`] once the
/// request is filed at the bank, once the bank approved it, and when some trustees did not
/// confirm; keep the last one (it replaces the previous) and delete it once the reset completed.
/// A failed save stops the reset before anything more is sent.
#[derive(Clone, Copy)]
pub struct ResetCheckpoint<'a> {
    /// The device keystore's key.
    pub key: &'a StateKey,
    /// Stores the sealed bytes durably (an error stops the reset).
    pub save: &'a (dyn Fn(&[u8]) -> Result<(), String> + Sync),
}

impl std::fmt::Debug for ResetCheckpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetCheckpoint").finish_non_exhaustive()
    }
}

impl Default for ResetOptions<'_> {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            approval_timeout: Duration::from_secs(3600),
            progress: &no_progress,
            checkpoint: None,
        }
    }
}

impl std::fmt::Debug for ResetOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetOptions")
            .field("poll_interval", &self.poll_interval)
            .field("approval_timeout", &self.approval_timeout)
            .finish_non_exhaustive()
    }
}

/// Every trustee's confirmation.
#[derive(Debug, Clone, Default)]
pub struct PasskeyResetReport {
    /// The new credential's fingerprint (`docs/protocol.md` §12a).
    pub new_fingerprint: [u8; 32],
    /// Names of the trustees that now hold the new credential, in trustee-set order.
    pub reset: Vec<String>,
}

/// A reset filed at the bank but not confirmed everywhere: what [`resume_passkey_reset`] waits
/// for the bank's approval of (when it has none yet) and sends again. It holds no secret (a
/// registration, a proof bound to spent-or-pending nonces, the approval); sealed
/// ([`Self::seal`]) it is what a [`ResetCheckpoint`] saves.
#[derive(Clone)]
pub struct PendingReset {
    wallet_id: String,
    request: ResetPasskeyRequest,
    new_fingerprint: [u8; 32],
    /// Trustees (names) still to confirm.
    pub pending: Vec<String>,
}

impl std::fmt::Debug for PendingReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingReset")
            .field("wallet_id", &self.wallet_id)
            .field("new_fingerprint", &hex::encode(self.new_fingerprint))
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// A [`PendingReset`] as saved (JSON inside the seal).
#[derive(Serialize, Deserialize)]
struct SavedReset {
    wallet_id: String,
    registration_json: String,
    /// `(node id, nonce hex)` in trustee-set order.
    nonces: Vec<(String, String)>,
    key_proof: String,
    /// The bank's approval, hex; empty until it approved.
    approval: String,
    new_fingerprint: String,
    pending: Vec<String>,
}

impl PendingReset {
    /// The wallet.
    pub fn wallet_id(&self) -> &str {
        &self.wallet_id
    }

    /// The new credential's fingerprint (what the bank's staff compare).
    pub fn new_fingerprint(&self) -> &[u8; 32] {
        &self.new_fingerprint
    }

    /// Whether it holds the bank's approval (else [`resume_passkey_reset`] waits for it).
    pub fn is_approved(&self) -> bool {
        !self.request.reset_approval_encoded.is_empty()
    }

    /// Sealed under the app's `key`, to store anywhere.
    pub fn seal(&self, key: &StateKey) -> Vec<u8> {
        let r = &self.request;
        let saved = SavedReset {
            wallet_id: self.wallet_id.clone(),
            registration_json: r.registration_json.clone(),
            nonces: r
                .nonces
                .iter()
                .map(|n| (n.node_id.clone(), hex::encode(&n.nonce)))
                .collect(),
            key_proof: hex::encode(&r.key_proof),
            approval: hex::encode(&r.reset_approval_encoded),
            new_fingerprint: hex::encode(self.new_fingerprint),
            pending: self.pending.clone(),
        };
        seal_json(key, StateKind::PasskeyReset, &saved)
    }

    /// What [`Self::seal`] sealed, opened with the same key.
    pub fn open_sealed(saved: &[u8], key: &StateKey) -> Result<Self, SavedStateError> {
        let s: SavedReset = open_json(key, StateKind::PasskeyReset, saved)?;
        let bytes = |what: &str, h: &str| {
            hex::decode(h).map_err(|_| SavedStateError::Content(format!("{what} is not hex")))
        };
        let new_fingerprint: [u8; 32] = bytes("new_fingerprint", &s.new_fingerprint)?
            .try_into()
            .map_err(|_| SavedStateError::Content("new_fingerprint is not 32 bytes".into()))?;
        let nonces = s
            .nonces
            .iter()
            .map(|(node_id, n)| {
                Ok(pb::TrusteeNonce {
                    node_id: node_id.clone(),
                    nonce: bytes("nonce", n)?,
                })
            })
            .collect::<Result<Vec<_>, SavedStateError>>()?;
        Ok(Self {
            request: ResetPasskeyRequest {
                wallet_id: s.wallet_id.clone(),
                registration_json: s.registration_json,
                nonces,
                key_proof: bytes("key_proof", &s.key_proof)?,
                reset_approval_encoded: bytes("approval", &s.approval)?,
            },
            wallet_id: s.wallet_id,
            new_fingerprint,
            pending: s.pending,
        })
    }

    /// Hands the sealed state to the app's checkpoint, if any.
    fn save(&self, checkpoint: Option<ResetCheckpoint<'_>>) -> Result<(), PasskeyResetError> {
        match checkpoint {
            Some(c) => (c.save)(&self.seal(c.key)).map_err(PasskeyResetError::Checkpoint),
            None => Ok(()),
        }
    }

    /// The bank's request for this reset (asking again finds the same one).
    fn bank_request(&self) -> RequestPasskeyResetRequest {
        RequestPasskeyResetRequest {
            wallet_id: self.wallet_id.clone(),
            registration_json: self.request.registration_json.clone(),
            nonces: self.request.nonces.clone(),
            key_proof: self.request.key_proof.clone(),
            wait_secs: 0,
        }
    }
}

/// Why a passkey reset did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyResetError {
    /// The wallet id is not acceptable.
    #[error("invalid wallet id: {0}")]
    InvalidWalletId(String),
    /// The new authenticator failed; nothing was changed.
    #[error("passkey: {0}")]
    Auth(#[from] AuthError),
    /// A trustee did not hand out a reset nonce: a reset must reach every trustee (one left on
    /// the lost passkey could never be reset by this ceremony); nothing was changed.
    #[error("not every trustee can take the reset: {}", describe_failures(.0))]
    Unavailable(Vec<Failure>),
    /// The bank refused the request or its approval; nothing was changed.
    #[error("the bank ({bank}) refused the reset: {reason}")]
    Bank {
        /// The bank trustee.
        bank: String,
        /// Why.
        reason: String,
        /// Its refusal code, when it sent one.
        refusal: Option<NodeRefusal>,
    },
    /// The bank did not approve in time; nothing was changed.
    #[error("the bank has not approved the reset after {waited_secs} s ({last_status})")]
    ApprovalTimeout {
        /// Seconds waited.
        waited_secs: u64,
        /// The bank's last answer.
        last_status: String,
    },
    /// The app's checkpoint could not save the reset; it stopped before sending anything more.
    #[error("could not save the reset's state: {0}")]
    Checkpoint(String),
    /// Some trustees did not confirm and still hold the lost credential: call
    /// [`resume_passkey_reset`] with `pending` (within the hour the nonces live).
    #[error("passkey reset incomplete: {} trustees did not confirm ({})", failed.len(), describe_failures(failed))]
    Incomplete {
        /// `(trustee name, reason)` for every trustee that did not confirm.
        failed: Vec<Failure>,
        /// What the others confirmed.
        done: PasskeyResetReport,
        /// What to send them again.
        pending: Box<PendingReset>,
    },
}

/// The bank's approval, checked to name this bank, wallet and credential (the trustees check
/// its signature against the bank keys they accept).
fn check_approval(
    bytes: &[u8],
    bank: &TrusteeInfo,
    wallet_id: &str,
    fingerprint: &[u8; 32],
) -> Result<PasskeyResetApproval, String> {
    let a = Signed::<PasskeyResetApproval>::decode(bytes)
        .map_err(|e| format!("reset approval: {e}"))?;
    let a = a.body();
    if a.bank_node_id != bank.node_id
        || a.wallet_id != wallet_id
        || a.credential_fingerprint != *fingerprint
    {
        return Err("the bank's approval is for another bank, wallet or credential".into());
    }
    Ok(a.clone())
}

async fn await_approval(
    bank: &TrusteeInfo,
    request: &RequestPasskeyResetRequest,
    fingerprint: &[u8; 32],
    opts: &ResetOptions<'_>,
) -> Result<Vec<u8>, PasskeyResetError> {
    let started = Instant::now();
    let mut last_status = String::new();
    let mut announced = false;
    // Once the request is filed, the bank holds each call until staff approve (or `wait_secs`
    // pass), so the approval is seen the moment it is given, without a polling interval.
    let wait_secs = approval_wait_secs(bank);
    loop {
        let mut ask = request.clone();
        // The first answer is wanted at once: it names the request the app shows to staff.
        ask.wait_secs = if announced { wait_secs } else { 0 };
        let asked = Instant::now();
        let answer = match connect_channel(bank).await {
            Ok(ch) => staff_client(ch)
                .request_passkey_reset(ask.clone())
                .await
                .map(tonic::Response::into_inner),
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        };
        let mut just_filed = false;
        match answer {
            Ok(s) => {
                if !announced {
                    just_filed = true;
                    (opts.progress)(ResetEvent::Requested {
                        request_id: s.request_id.clone(),
                        credential_fingerprint: *fingerprint,
                    });
                    announced = true;
                }
                if !s.reset_approval_encoded.is_empty() {
                    let a = check_approval(
                        &s.reset_approval_encoded,
                        bank,
                        &request.wallet_id,
                        fingerprint,
                    )
                    .map_err(|reason| PasskeyResetError::Bank {
                        bank: bank.name.clone(),
                        reason,
                        refusal: None,
                    })?;
                    (opts.progress)(ResetEvent::Approved {
                        approvers: a.approvers,
                    });
                    return Ok(s.reset_approval_encoded);
                }
                let status = format!(
                    "awaiting bank approval ({} of {} staff)",
                    s.approvers.len(),
                    s.approvals_required
                );
                if status != last_status {
                    (opts.progress)(ResetEvent::ApprovalPending {
                        approvers: s.approvers,
                        approvals_required: s.approvals_required,
                    });
                    last_status = status;
                }
            }
            Err(s) if transport_failure(&s) || is_refusal(&s, NodeRefusal::RateLimited) => {
                last_status = describe_status(&s);
            }
            Err(s) => {
                return Err(PasskeyResetError::Bank {
                    bank: bank.name.clone(),
                    reason: format!("RequestPasskeyReset: {}", describe_status(&s)),
                    refusal: NodeRefusal::of_status(&s),
                });
            }
        }
        if started.elapsed() >= opts.approval_timeout {
            return Err(PasskeyResetError::ApprovalTimeout {
                waited_secs: started.elapsed().as_secs(),
                last_status,
            });
        }
        // Asked again at once after the filing answer and after a held one; a pause only when
        // the bank answered at once (it does not hold calls, or refused for the moment).
        let held = ask.wait_secs > 0 && !answered_at_once(asked, ask.wait_secs);
        if !(just_filed || held) {
            sleep(opts.poll_interval).await;
        }
    }
}

async fn send(
    info: &TrusteeInfo,
    request: ResetPasskeyRequest,
    fingerprint: &[u8; 32],
) -> Result<(), TrusteeFailure> {
    let ch = connect_channel(info).await?;
    let resp = epochs_client(ch)
        .reset_passkey(request)
        .await
        .map_err(|s| TrusteeFailure::refused("ResetPasskey", &s))?
        .into_inner();
    if resp.credential_fingerprint != fingerprint {
        return Err(TrusteeFailure::BadAnswer(
            "stored another credential than the one approved".to_owned(),
        ));
    }
    Ok(())
}

/// Sends `pending` to the trustees it names; the report, or `Incomplete` again.
async fn send_all(
    trustees: &TrusteeSet,
    mut pending: PendingReset,
    mut done: PasskeyResetReport,
    checkpoint: Option<ResetCheckpoint<'_>>,
) -> Result<PasskeyResetReport, PasskeyResetError> {
    let targets: Vec<&TrusteeInfo> = trustees
        .trustees()
        .iter()
        .filter(|t| pending.pending.contains(&t.name))
        .collect();
    let answers = join_all(
        targets
            .iter()
            .map(|info| send(info, pending.request.clone(), &pending.new_fingerprint)),
    )
    .await;
    let mut failed = Vec::new();
    for (info, r) in targets.iter().zip(answers) {
        match r {
            Ok(()) => done.reset.push(info.name.clone()),
            Err(e) => failed.push((info.name.clone(), e)),
        }
    }
    if failed.is_empty() {
        Ok(done)
    } else {
        pending.pending = failed.iter().map(|(n, _)| n.clone()).collect();
        // The trustees that confirmed spent the approval: a resume must only ask the others.
        pending.save(checkpoint)?;
        Err(PasskeyResetError::Incomplete {
            failed,
            done,
            pending: Box::new(pending),
        })
    }
}

/// Replaces the lost passkey of `wallet_id` by a new one at every trustee: one touch of `new`
/// (registration), a proof of knowledge of the wallet secret `k`, and the bank's approval (its
/// staff approve the request this files; see [`ResetEvent::Requested`]).
pub async fn reset_passkey(
    trustees: &TrusteeSet,
    wallet_id: &str,
    k: &SecretScalar,
    new: &mut dyn Passkey,
    opts: ResetOptions<'_>,
) -> Result<PasskeyResetReport, PasskeyResetError> {
    WalletId::parse(wallet_id).map_err(|e| PasskeyResetError::InvalidWalletId(e.to_string()))?;
    let infos = trustees.trustees();
    let begun = join_all(
        infos
            .iter()
            .map(|info| begin(info, wallet_id, EpochAction::ResetPasskey)),
    )
    .await;
    let mut ready = Vec::new();
    let mut failed = Vec::new();
    for (info, b) in infos.iter().zip(begun) {
        match b {
            Ok((_, resp, nonce)) => ready.push((resp, nonce)),
            Err(e) => failed.push((info.name.clone(), e)),
        }
    }
    if !failed.is_empty() {
        return Err(PasskeyResetError::Unavailable(failed));
    }
    let nonces: Vec<TrusteeNonce> = ready.iter().map(|(_, n)| n.clone()).collect();
    let wire = ceremony::to_wire(&nonces);
    // The touch: the new credential, over the reset's challenge (nothing authorized).
    let creation = ceremony::first_creation_template(
        ready.iter().map(|(r, _)| r.creation_options_json.as_str()),
    );
    let c1 = ceremony::challenge(OwnerAction::ResetPasskey, wallet_id, b"", nonces.clone())?;
    let options = ceremony::creation_options(creation, &c1)?;
    let options_json = serde_json::to_string(&options)
        .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?;
    let registration_json = new.create(options_json).await?;
    let cred: RegisterPublicKeyCredential = serde_json::from_str(&registration_json)
        .map_err(|e| AuthError::Authenticator(format!("new passkey: {e}")))?;
    let new_fingerprint = registered_fingerprint(&options, &cred, &c1)?;
    // The owner's factor: k, bound to the wallet, the new credential and every nonce.
    let c2 = OwnerChallenge::new(
        OwnerAction::ResetPasskey,
        wallet_id,
        &new_fingerprint,
        nonces,
    )
    .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?;
    let key_proof = ResetProof::prove(k, &c2)
        .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?
        .encode();
    let pending = PendingReset {
        wallet_id: wallet_id.to_owned(),
        request: ResetPasskeyRequest {
            wallet_id: wallet_id.to_owned(),
            registration_json,
            nonces: wire,
            key_proof,
            reset_approval_encoded: Vec::new(),
        },
        new_fingerprint,
        pending: infos.iter().map(|i| i.name.clone()).collect(),
    };
    // Saved before the bank is asked: from here a killed app resumes without a new touch.
    pending.save(opts.checkpoint)?;
    approve_and_send(trustees, pending, &opts).await
}

/// Waits for the bank's approval of `pending` if it has none, saves it approved, then sends it
/// to the trustees still pending.
async fn approve_and_send(
    trustees: &TrusteeSet,
    mut pending: PendingReset,
    opts: &ResetOptions<'_>,
) -> Result<PasskeyResetReport, PasskeyResetError> {
    if !pending.is_approved() {
        let bank = trustees.bank();
        let request = pending.bank_request();
        let approval = await_approval(bank, &request, &pending.new_fingerprint, opts).await?;
        pending.request.reset_approval_encoded = approval;
        pending.save(opts.checkpoint)?;
    }
    let done = PasskeyResetReport {
        new_fingerprint: pending.new_fingerprint,
        reset: Vec::new(),
    };
    send_all(trustees, pending, done, opts.checkpoint).await
}

/// Resumes a reset [`reset_passkey`] did not complete (from its error's `pending`, or from the
/// state its checkpoint saved, [`PendingReset::open_sealed`]): without the bank's approval yet,
/// it asks the bank again for the same request and waits for it (bounded by `opts`); then it
/// sends the reset to the trustees still pending. No touch: the new credential's registration
/// is in `pending`. Within the reset's lifetime (`limits.passkey_reset_ttl_secs`, an hour by
/// default).
pub async fn resume_passkey_reset(
    trustees: &TrusteeSet,
    pending: PendingReset,
    opts: ResetOptions<'_>,
) -> Result<PasskeyResetReport, PasskeyResetError> {
    if WalletId::parse(&pending.wallet_id).is_err() {
        return Err(PasskeyResetError::InvalidWalletId(pending.wallet_id));
    }
    approve_and_send(trustees, pending, &opts).await
}
