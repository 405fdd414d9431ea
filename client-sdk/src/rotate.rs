//! Epochs: refresh the shares, change the threshold, replace trustees — without ever losing the
//! wallet.
//!
//! The owner, holding the wallet secret `k` (on the live device, or right after a recovery:
//! [`RotationSource::from_recovered`]), re-splits it into epoch e+1 for a new trustee set and
//! threshold (the same `k` by default; a fresh `k` on request, re-encrypting the wallet blob).
//! Two phases, each authorised by ONE touch of the owner's passkey for all its trustees
//! (`docs/protocol.md` §12a; a rotation is at most two touches):
//!
//! 1. **Stage** e+1 at every trustee of e+1 (`Epochs.StageEpoch`: verified like a deposit). One
//!    assertion over (stage, e+1's manifest hash ‖ the wallet credential's fingerprint, every
//!    trustee's `BeginEpochAction` nonce). A trustee new to the wallet registers no passkey of
//!    its own: it is handed the wallet's one credential (`passkey_json`, from a trustee holding
//!    the wallet) with the same assertion, and the fingerprint in the challenge, checked by the
//!    wallet's trustees, pins which credential that is. Epoch e is untouched everywhere.
//! 2. **Commit** at each (`Epochs.CommitEpoch`): e+1 becomes active there and that trustee's share
//!    of e is erased. Trustees new to the wallet commit first (they lose nothing), then the
//!    others. Each commit carries the stage receipts, so no trustee erases its share of e before
//!    e+1's threshold of trustees hold e+1.
//! 3. **Retire** every trustee of e that is not in e+1 (`Epochs.RetireWallet`), once every trustee
//!    of e+1 has committed, with their commit receipts as evidence. The commit's one assertion
//!    (action commit, e+1's manifest hash) covers the retirements too: its nonces come from the
//!    trustees committing and from those leaving.
//!
//! A rotation that is resumed, renews stages about to expire, or re-stages an expired one asks for
//! a touch per such ceremony; [`rollback_rotation`] is one touch (action abandon).
//!
//! Until every commit is done, epoch e still recovers ([`crate::protocol::recover()`] picks the
//! epoch whose threshold of trustees answer alike). The [`RotationRecord`] is the SDK's persisted progress:
//! the new manifest and blob (public), each trustee's receipts, and the new shares **sealed**
//! under keys derived from the old and the new `k` (never in the clear). From any interruption —
//! the app killed, a trustee down — [`resume_rotation`] completes it; before any commit,
//! [`rollback_rotation`] abandons the staged epoch everywhere instead. Each step first asks the
//! trustee what it holds (`GetBackupStatus`), so a step whose answer was lost is not redone.
//!
//! ```no_run
//! # async fn run(old: dlocker_sdk::TrusteeSet, new: dlocker_sdk::TrusteeSet,
//! #              recovered: dlocker_sdk::Recovered) -> Result<(), Box<dyn std::error::Error>> {
//! use dlocker_sdk::protocol::rotate;
//! use dlocker_sdk::{BackupPolicy, RotateOptions, RotationSource, SoftwareAuthenticator};
//! let source = RotationSource::from_recovered(&recovered);
//! let policy = BackupPolicy { threshold: 2, recovery_delay_secs: 86_400 };
//! let mut auth = SoftwareAuthenticator::new(); // the owner's platform passkey in a real app
//! let opts = RotateOptions::new("alice").record_path("rotation.json");
//! let record = rotate(&old, &new, &source, policy, false, &mut auth, &opts).await?;
//! assert!(record.is_done());
//! # Ok(()) }
//! ```

use crate::authenticator::Passkey;
use crate::backup::{BackupPolicy, MIN_THRESHOLD, PreparedBackup};
use crate::ceremony::{self, Touch};
use crate::error::{Failure, TrusteeFailure};
use crate::recover::Recovered;
use crate::saved::SavedStateError;
use crate::transport::Channel;
use crate::transport::{
    client, connect_channel, describe_failures, describe_status, epochs_client, not_held,
};
use crate::trustees::{TrusteeInfo, TrusteeSet};
use dlocker_proto::client_state::{StateKey, StateKind};
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::manifest::{Manifest, ManifestHash, ManifestParts, TrusteeEntry};
use dlocker_proto::owner_challenge::{OwnerAction, TrusteeNonce, stage_authorized};
use dlocker_proto::pb::{
    AbandonEpochRequest, BeginEpochActionRequest, BeginEpochActionResponse, CommitEpochRequest,
    EpochAction, GetBackupStatusRequest, GetBackupStatusResponse, JoiningOwner, OwnerAssertion,
    RetireWalletRequest, StageEpochRequest, stage_epoch_request,
};
use dlocker_proto::secret::{SecretBytes, SecretScalar};
use dlocker_proto::share::{Share, split};
use dlocker_proto::statement::{CommitReceipt, RetireReceipt, Signed, StageReceipt};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the [`RotationRecord`] file format.
pub const RECORD_FORMAT: u32 = 1;

/// What a rotation starts from: the current epoch's manifest, the wallet secret `k` and the
/// wallet data. `Debug` never shows `k` or the data.
pub struct RotationSource {
    manifest: Manifest,
    k: SecretScalar,
    data: SecretBytes,
}

impl std::fmt::Debug for RotationSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationSource")
            .field("wallet_id", &self.manifest.wallet_id())
            .field("epoch", &self.manifest.epoch())
            .field("secret", &"REDACTED")
            .field("data", &"REDACTED")
            .finish()
    }
}

impl RotationSource {
    /// From the parts; refuses a `k` that is not the manifest's secret (`k·G ≠ C_0`).
    pub fn new(
        manifest: Manifest,
        k: SecretScalar,
        data: SecretBytes,
    ) -> Result<Self, RotateError> {
        let image = k256::ProjectivePoint::mul_by_generator(k.expose());
        if image != manifest.commitments().secret_commitment().to_projective() {
            return Err(RotateError::WrongSecret);
        }
        Ok(Self { manifest, k, data })
    }

    /// Right after a recovery: the recovered manifest, secret and data.
    pub fn from_recovered(r: &Recovered) -> Self {
        Self {
            manifest: r.manifest.clone(),
            k: r.secret().clone(),
            data: r.data().clone(),
        }
    }

    /// On the device that made the backup.
    pub fn from_prepared(p: &PreparedBackup) -> Result<Self, RotateError> {
        let data = dlocker_proto::blob::open(p.secret(), p.wallet_id(), p.blob())
            .map_err(|e| RotateError::Internal(format!("opening the backup's own blob: {e}")))?;
        Self::new(p.manifest().clone(), p.secret().clone(), data)
    }

    /// The current epoch's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The wallet secret `k` of the current epoch.
    pub fn secret(&self) -> &SecretScalar {
        &self.k
    }
}

/// A trustee's part in a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrusteeRole {
    /// Holds epoch e and is in e+1: stages, then commits (its share of e is erased).
    Continuing,
    /// New to the wallet: stages with the wallet's credential (handed over, no new passkey),
    /// then commits.
    Joining,
    /// Holds epoch e, not in e+1: retires (erases everything) after every commit.
    Leaving,
}

/// One trustee's progress. Receipts are hex of signed statements, each verified against the
/// pinned key before it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrusteeProgress {
    /// Name (trustees file).
    pub name: String,
    /// Node id.
    pub node_id: String,
    /// Its part.
    pub role: TrusteeRole,
    /// Share index in e+1 (none when leaving).
    pub share_index: Option<u16>,
    /// Its `StageReceipt` (or, found already committed, its enrollment-style `Receipt`).
    pub stage_receipt: Option<String>,
    /// When its staged epoch expires, Unix seconds.
    pub staged_expires_at: Option<u64>,
    /// A commit was sent (its answer may have been lost): rollback is no longer safe unless the
    /// trustee shows it did not commit.
    pub commit_attempted: bool,
    /// Its `CommitReceipt` (or its `Receipt` for e+1 when the commit's answer was lost).
    pub commit_receipt: Option<String>,
    /// Its `RetireReceipt` (leaving trustees).
    pub retire_receipt: Option<String>,
    /// Its staged epoch was abandoned (rollback).
    pub abandoned: bool,
}

/// Where a rotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RotationPhase {
    /// Staging e+1 at every trustee of e+1 (rollback possible).
    Staging,
    /// Committing (rollback possible only while no trustee has committed).
    Committing,
    /// Every trustee of e+1 committed; retiring the trustees that leave.
    Retiring,
    /// Complete: e+1 is the wallet's only epoch.
    Done,
    /// Abandoned before any commit: e is the wallet's only epoch.
    RolledBack,
}

impl RotationPhase {
    /// A name for displays.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staging => "staging",
            Self::Committing => "committing",
            Self::Retiring => "retiring",
            Self::Done => "done",
            Self::RolledBack => "rolled back",
        }
    }
}

/// The new shares, sealed under a key derived from one of the rotation's secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SealedShares {
    /// The epoch whose `k` seals it (e, or e+1 when `k` changes).
    under_epoch: u64,
    /// Hex of `dlocker_proto::record::seal(k, wallet, manifest hash of e+1, shares)`.
    sealed: String,
}

/// The SDK's persisted progress of a rotation. It holds no secret in the clear: the new shares are
/// sealed (AES-256-GCM) under keys derived from the old and the new wallet secret, so whoever
/// resumes must hold one of them. Keep it with the wallet until [`RotationRecord::is_done`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationRecord {
    /// [`RECORD_FORMAT`].
    pub format: u32,
    /// The wallet.
    pub wallet_id: String,
    /// Epoch e.
    pub from_epoch: u64,
    /// Epoch e+1.
    pub to_epoch: u64,
    /// Whether e+1 has a new `k` (and a re-encrypted blob).
    pub new_k: bool,
    /// Shown by authenticators when a joining trustee registers the passkey.
    pub user_name: String,
    /// Where it is.
    pub phase: RotationPhase,
    /// Every trustee of e and e+1: e+1's in share order, then those leaving.
    pub trustees: Vec<TrusteeProgress>,
    /// Hex of e's manifest (canonical encoding).
    from_manifest: String,
    /// Hex of e+1's manifest.
    to_manifest: String,
    /// Hex of e+1's blob (encrypted under e+1's `k`).
    to_blob: String,
    sealed: Vec<SealedShares>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
}

impl RotationRecord {
    /// Epoch e+1's manifest.
    pub fn manifest(&self) -> Result<Manifest, RotateError> {
        decode_manifest(&self.to_manifest)
    }
    /// Epoch e's manifest.
    pub fn previous_manifest(&self) -> Result<Manifest, RotateError> {
        decode_manifest(&self.from_manifest)
    }
    /// Epoch e+1's manifest, canonical encoding (what a manifest file holds).
    pub fn manifest_bytes(&self) -> Result<Vec<u8>, RotateError> {
        hex::decode(&self.to_manifest).map_err(|e| RotateError::Record(format!("manifest: {e}")))
    }
    /// Epoch e+1's wallet blob (encrypted under e+1's `k`; what every trustee of e+1 stores).
    pub fn blob(&self) -> Result<Vec<u8>, RotateError> {
        hex::decode(&self.to_blob).map_err(|e| RotateError::Record(format!("blob: {e}")))
    }
    /// Complete.
    pub fn is_done(&self) -> bool {
        self.phase == RotationPhase::Done
    }
    /// Whether any trustee of e+1 committed (or may have: its commit's answer was lost).
    pub fn any_commit(&self) -> bool {
        self.trustees
            .iter()
            .any(|t| t.commit_attempted || t.commit_receipt.is_some())
    }
    /// The progress of the named trustee.
    pub fn trustee(&self, name: &str) -> Option<&TrusteeProgress> {
        self.trustees.iter().find(|t| t.name == name)
    }

    /// Opens the sealed shares with `k` (e's or e+1's secret).
    fn shares(&self, k: &SecretScalar) -> Result<Vec<Share>, RotateError> {
        let target = self.manifest()?.hash();
        for s in &self.sealed {
            let Ok(bytes) = hex::decode(&s.sealed) else {
                continue;
            };
            let Ok(plain) = dlocker_proto::record::open(k, &self.wallet_id, &target, &bytes) else {
                continue;
            };
            return decode_shares(plain.expose());
        }
        Err(RotateError::WrongSecret)
    }

    /// Epoch e+1's wallet secret, given either e's or e+1's (combines the sealed shares and
    /// checks the result against e+1's commitments). With `new_k` the caller keeps this one.
    pub fn secret(&self, k: &SecretScalar) -> Result<SecretScalar, RotateError> {
        let m = self.manifest()?;
        let shares = self.shares(k)?;
        dlocker_proto::share::combine(&shares, m.commitments())
            .map_err(|e| RotateError::Internal(format!("combining the new shares: {e}")))
    }

    /// Writes the record as JSON (mode 0600; replaced atomically).
    pub fn save(&self, path: &Path) -> Result<(), RotateError> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| RotateError::Record(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        write_private(&tmp, text.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| RotateError::Record(format!("writing {}: {e}", path.display())))
    }

    /// Reads a record written by [`RotationRecord::save`].
    pub fn load(path: &Path) -> Result<Self, RotateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RotateError::Record(format!("reading {}: {e}", path.display())))?;
        let r: Self = serde_json::from_str(&text).map_err(|e| {
            RotateError::Record(format!("{} is not a rotation record: {e}", path.display()))
        })?;
        r.checked()
    }

    /// The record as an opaque blob sealed under the app's keystore key (what a
    /// [`RotationCheckpoint`] receives), like a recovery's or a backup's saved state.
    pub fn seal(&self, key: &StateKey) -> Vec<u8> {
        crate::saved::seal_json(key, StateKind::Rotation, self)
    }

    /// Opens what [`RotationRecord::seal`] sealed (another key, tampered bytes or another
    /// ceremony's state are refused); [`resume_rotation`] completes it.
    pub fn open_sealed(saved: &[u8], key: &StateKey) -> Result<Self, SavedStateError> {
        let r: Self = crate::saved::open_json(key, StateKind::Rotation, saved)?;
        r.checked()
            .map_err(|e| SavedStateError::Content(e.to_string()))
    }

    /// Checks a record read back: its format, and that both manifests decode and chain.
    fn checked(self) -> Result<Self, RotateError> {
        let r = self;
        if r.format != RECORD_FORMAT {
            return Err(RotateError::Record(format!(
                "unsupported record format {}",
                r.format
            )));
        }
        // Both manifests must decode and chain.
        let (from, to) = (r.previous_manifest()?, r.manifest()?);
        if to.previous() != Some(&from.hash()) || to.wallet_id() != r.wallet_id {
            return Err(RotateError::Record(
                "the record's manifests do not chain".into(),
            ));
        }
        Ok(r)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn decode_manifest(h: &str) -> Result<Manifest, RotateError> {
    let bytes = hex::decode(h).map_err(|e| RotateError::Record(format!("manifest: {e}")))?;
    Manifest::decode(&bytes).map_err(|e| RotateError::Record(format!("manifest: {e}")))
}

fn encode_shares(shares: &[Share]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(
        shares.len() * dlocker_proto::share::SHARE_LEN,
    ));
    for s in shares {
        out.extend_from_slice(&s.encode());
    }
    out
}

fn decode_shares(bytes: &[u8]) -> Result<Vec<Share>, RotateError> {
    let n = dlocker_proto::share::SHARE_LEN;
    if bytes.is_empty() || !bytes.len().is_multiple_of(n) {
        return Err(RotateError::Record(
            "sealed shares have the wrong length".into(),
        ));
    }
    bytes
        .chunks(n)
        .map(|c| Share::decode(c).map_err(|e| RotateError::Record(format!("sealed share: {e}"))))
        .collect()
}

/// Why a rotation step did not complete. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// The new policy does not fit the new trustee set (2 ≤ t ≤ n ≤ 32, one bank).
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    /// The trustee sets do not match the manifests (a manifest trustee missing from the files,
    /// another key pinned): fix the trustees files.
    #[error("trustee sets do not match the wallet: {0}")]
    TrusteesMismatch(String),
    /// The secret given is neither epoch's `k`.
    #[error("the secret given is not this wallet's (neither the old nor the new epoch's k)")]
    WrongSecret,
    /// The record could not be read, written or understood.
    #[error("rotation record: {0}")]
    Record(String),
    /// The caller's interrupt hook stopped the rotation before `step`; `resume_rotation` (or,
    /// before any commit, `rollback_rotation`) continues from `record`.
    #[error("rotation interrupted before {step}; resume it (or roll it back before any commit)")]
    Interrupted {
        /// The step not taken.
        step: String,
        /// The progress so far.
        record: Box<RotationRecord>,
    },
    /// Some trustees failed in this phase; fix or wait for them and resume (nothing is lost:
    /// epoch e recovers until every commit is done, e+1 once its threshold committed).
    #[error("rotation {}: {} trustee(s) failed ({}); resume it when they are back", phase.as_str(), failed.len(), describe_failures(failed))]
    Incomplete {
        /// The phase.
        phase: RotationPhase,
        /// Every trustee that failed, and why.
        failed: Vec<Failure>,
        /// The progress so far.
        record: Box<RotationRecord>,
    },
    /// A trustee committed e+1 (or may have): rolling back would lose its share of e. Resume.
    #[error("cannot roll back: epoch {epoch} is (or may be) committed at {}; resume the rotation instead", committed.join(", "))]
    RollbackImpossible {
        /// The new epoch.
        epoch: u64,
        /// Trustees that committed, or whose commit's outcome is unknown.
        committed: Vec<String>,
    },
    /// A bug or an impossible state.
    #[error("rotation failed: {0}")]
    Internal(String),
}

/// A network step of a rotation (what the interrupt hook is asked about).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationStep {
    /// StageEpoch at the trustee.
    Stage(String),
    /// CommitEpoch at the trustee.
    Commit(String),
    /// RetireWallet at the trustee.
    Retire(String),
    /// AbandonEpoch at the trustee (rollback).
    Abandon(String),
}

impl std::fmt::Display for RotationStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stage(n) => write!(f, "stage at {n}"),
            Self::Commit(n) => write!(f, "commit at {n}"),
            Self::Retire(n) => write!(f, "retire at {n}"),
            Self::Abandon(n) => write!(f, "abandon at {n}"),
        }
    }
}

/// What a rotation is doing, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateEvent {
    /// The new epoch is planned.
    Planned {
        /// e.
        from_epoch: u64,
        /// e+1.
        to_epoch: u64,
        /// t of e+1.
        threshold: u16,
        /// Trustees of e+1, in share order.
        trustees: Vec<String>,
        /// Trustees new to the wallet.
        joining: Vec<String>,
        /// Trustees leaving.
        leaving: Vec<String>,
        /// True when, committing in the SDK's order, either e or e+1 always has its threshold of
        /// *active* shares; false when some moment relies on staged shares (e.g. a 3-of-3
        /// refresh): then an interrupted commit phase must be resumed before the staged epochs
        /// expire.
        window_safe: bool,
    },
    /// The authenticator is asked, once, for the owner's passkey assertion that every listed
    /// trustee checks (one touch for a phase: stage, commit with the retirements, abandon).
    PasskeyRequested {
        /// The ceremony (stage, commit — which also covers the retirements —, abandon).
        action: OwnerAction,
        /// The trustees the assertion is for, in ceremony order.
        trustees: Vec<String>,
    },
    /// Staged at the trustee.
    Staged {
        /// Trustee.
        name: String,
        /// Share index in e+1.
        share_index: u16,
        /// Unix seconds.
        expires_at: u64,
    },
    /// Committed at the trustee.
    Committed {
        /// Trustee.
        name: String,
        /// Share index in e+1.
        share_index: u16,
    },
    /// The trustee left the wallet (everything erased).
    Retired {
        /// Trustee.
        name: String,
    },
    /// The staged epoch was abandoned at the trustee.
    Abandoned {
        /// Trustee.
        name: String,
    },
    /// The trustee had done this step already (an answer lost earlier).
    AlreadyDone {
        /// The step.
        step: RotationStep,
    },
    /// The step failed at the trustee.
    Failed {
        /// The step.
        step: RotationStep,
        /// Why.
        reason: String,
    },
}

fn no_progress(_: RotateEvent) {}

/// How a rotation reports, persists and stops.
pub struct RotateOptions<'a> {
    /// Shown by the authenticator when a joining trustee registers the passkey.
    pub user_name: String,
    /// Where to persist the [`RotationRecord`] after every step (recommended).
    pub record_path: Option<PathBuf>,
    /// Progress callback.
    pub progress: &'a (dyn Fn(RotateEvent) + Sync),
    /// Asked before every network step; `true` stops there with [`RotateError::Interrupted`]
    /// (e.g. the app is being suspended). The record stays resumable.
    pub interrupt: Option<&'a (dyn Fn(&RotationStep) -> bool + Sync)>,
    /// Where to save the rotation's sealed record after every step, so a killed app resumes it
    /// ([`RotationRecord::open_sealed`], then [`resume_rotation`]). `None`: nothing is saved.
    pub checkpoint: Option<RotationCheckpoint<'a>>,
}

/// The app's function that stores a sealed rotation record durably, replacing the previous one
/// (the phase is for display). An `Err` stops the rotation with [`RotateError::Record`].
pub type SaveRotationState<'a> = dyn Fn(RotationPhase, &[u8]) -> Result<(), String> + Sync + 'a;

/// Saves a rotation's record sealed under the app's keystore key after every step.
#[derive(Clone, Copy)]
pub struct RotationCheckpoint<'a> {
    /// The app's key the record is sealed with.
    pub key: &'a StateKey,
    /// Stores the sealed record; the rotation does not go on until it returned.
    pub save: &'a SaveRotationState<'a>,
}

impl std::fmt::Debug for RotationCheckpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotationCheckpoint { key: REDACTED, .. }")
    }
}

impl std::fmt::Debug for RotateOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotateOptions")
            .field("user_name", &self.user_name)
            .field("record_path", &self.record_path)
            .field("interruptible", &self.interrupt.is_some())
            .field("checkpoint", &self.checkpoint.is_some())
            .finish()
    }
}

impl<'a> RotateOptions<'a> {
    /// Options with `user_name`, no record file, no progress, no interrupt.
    pub fn new(user_name: impl Into<String>) -> Self {
        Self {
            user_name: user_name.into(),
            record_path: None,
            progress: &no_progress,
            interrupt: None,
            checkpoint: None,
        }
    }
    /// Save the sealed record through `checkpoint` after every step.
    pub fn checkpoint(mut self, checkpoint: RotationCheckpoint<'a>) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }
    /// Persist the record at `path` after every step.
    pub fn record_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.record_path = Some(path.into());
        self
    }
    /// Report progress.
    pub fn progress(mut self, f: &'a (dyn Fn(RotateEvent) + Sync)) -> Self {
        self.progress = f;
        self
    }
    /// Ask before every step whether to stop.
    pub fn interrupt(mut self, f: &'a (dyn Fn(&RotationStep) -> bool + Sync)) -> Self {
        self.interrupt = Some(f);
        self
    }
}

/// Plans epoch e+1 without touching the network: new shares of the same `k` (or of a fresh one
/// with `new_k`, re-encrypting the wallet data), the manifest (epoch e+1, `previous` = e's hash,
/// bank = `new`'s bank, shares in `new`'s file order) and the record.
pub fn prepare_rotation(
    old: &TrusteeSet,
    new: &TrusteeSet,
    source: &RotationSource,
    policy: BackupPolicy,
    new_k: bool,
    user_name: &str,
) -> Result<RotationRecord, RotateError> {
    let current = &source.manifest;
    let wallet_id = current.wallet_id().to_owned();
    let n = new.len();
    let t = usize::from(policy.threshold);
    if t < MIN_THRESHOLD || t > n {
        return Err(RotateError::InvalidPolicy(format!(
            "threshold {t} with {n} trustees; need {MIN_THRESHOLD} ≤ threshold ≤ number of trustees"
        )));
    }
    // Every trustee of e must be pinned in `old` with the manifest's key.
    for e in current.trustees() {
        match old.by_node_id(&e.node_id) {
            Some(info) if info.public_key == e.public_key => {}
            Some(info) => {
                return Err(RotateError::TrusteesMismatch(format!(
                    "{} is pinned to another key than the manifest's",
                    info.name
                )));
            }
            None => {
                return Err(RotateError::TrusteesMismatch(format!(
                    "node {} of epoch {} is not in the old trustees file",
                    e.node_id,
                    current.epoch()
                )));
            }
        }
    }
    // A node in both sets must be pinned to the same key in both.
    for info in new.trustees() {
        if let Some(o) = old.by_node_id(&info.node_id)
            && o.public_key != info.public_key
        {
            return Err(RotateError::TrusteesMismatch(format!(
                "{} is pinned to different keys in the two files",
                info.name
            )));
        }
    }
    let k = if new_k {
        SecretScalar::random()
    } else {
        source.k.clone()
    };
    let (shares, commitments) =
        split(&k, t, n).map_err(|e| RotateError::InvalidPolicy(e.to_string()))?;
    let blob = dlocker_proto::blob::seal(&k, &wallet_id, source.data.expose());
    let entries: Vec<TrusteeEntry> = new
        .trustees()
        .iter()
        .zip(&shares)
        .map(|(info, s)| TrusteeEntry {
            share_index: s.index(),
            node_id: info.node_id.clone(),
            public_key: info.public_key,
        })
        .collect();
    let now = dlocker_proto::time::unix_now();
    let to = Manifest::new(ManifestParts {
        wallet_id: wallet_id.clone(),
        epoch: current.epoch() + 1,
        threshold: policy.threshold,
        trustees: entries,
        commitments,
        bank_node_id: new.bank().node_id.clone(),
        recovery_delay_secs: policy.recovery_delay_secs,
        blob_hash: dlocker_proto::blob::hash(&blob),
        created_at: now,
        previous: Some(current.hash()),
    })
    .map_err(|e| RotateError::Internal(format!("manifest: {e}")))?;
    let target = to.hash();
    let plain = encode_shares(&shares);
    let mut sealed = vec![SealedShares {
        under_epoch: current.epoch(),
        sealed: hex::encode(dlocker_proto::record::seal(
            &source.k, &wallet_id, &target, &plain,
        )),
    }];
    if new_k {
        sealed.push(SealedShares {
            under_epoch: to.epoch(),
            sealed: hex::encode(dlocker_proto::record::seal(&k, &wallet_id, &target, &plain)),
        });
    }
    let mut trustees: Vec<TrusteeProgress> = new
        .trustees()
        .iter()
        .zip(&shares)
        .map(|(info, s)| TrusteeProgress {
            name: info.name.clone(),
            node_id: info.node_id.clone(),
            role: if current.trustee(&info.node_id).is_some() {
                TrusteeRole::Continuing
            } else {
                TrusteeRole::Joining
            },
            share_index: Some(s.index()),
            stage_receipt: None,
            staged_expires_at: None,
            commit_attempted: false,
            commit_receipt: None,
            retire_receipt: None,
            abandoned: false,
        })
        .collect();
    for e in current.trustees() {
        if to.trustee(&e.node_id).is_none() {
            let name = old
                .by_node_id(&e.node_id)
                .map(|i| i.name.clone())
                .unwrap_or_else(|| e.node_id.clone());
            trustees.push(TrusteeProgress {
                name,
                node_id: e.node_id.clone(),
                role: TrusteeRole::Leaving,
                share_index: None,
                stage_receipt: None,
                staged_expires_at: None,
                commit_attempted: false,
                commit_receipt: None,
                retire_receipt: None,
                abandoned: false,
            });
        }
    }
    Ok(RotationRecord {
        format: RECORD_FORMAT,
        wallet_id,
        from_epoch: current.epoch(),
        to_epoch: to.epoch(),
        new_k,
        user_name: user_name.to_owned(),
        phase: RotationPhase::Staging,
        trustees,
        from_manifest: hex::encode(current.encode()),
        to_manifest: hex::encode(to.encode()),
        to_blob: hex::encode(&blob),
        sealed,
        created_at: now,
        updated_at: now,
    })
}

/// Whether committing in the SDK's order (joining trustees first) keeps e or e+1 at its
/// threshold of *active* shares at every moment.
pub fn window_safe(record: &RotationRecord) -> Result<bool, RotateError> {
    let (from, to) = (record.previous_manifest()?, record.manifest()?);
    let (t_old, t_new) = (usize::from(from.threshold()), usize::from(to.threshold()));
    let order = commit_order(record);
    let mut old_active = from.trustees().len();
    let mut new_active = 0;
    for i in order {
        if record.trustees[i].role == TrusteeRole::Continuing {
            old_active -= 1;
        }
        new_active += 1;
        if old_active < t_old && new_active < t_new {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Trustees of e+1 in commit order: joining first (they lose nothing), then continuing.
fn commit_order(record: &RotationRecord) -> Vec<usize> {
    let idx = |role| {
        record
            .trustees
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.role == role)
            .map(|(i, _)| i)
    };
    idx(TrusteeRole::Joining)
        .chain(idx(TrusteeRole::Continuing))
        .collect()
}

/// Rotates the wallet of `source` from its epoch e (held by `old`) to epoch e+1 over `new` with
/// `policy`: plans it ([`prepare_rotation`]), then stages, commits and retires (module docs).
/// `new_k` draws a fresh wallet secret and re-encrypts the blob (get it with
/// [`RotationRecord::secret`]). On error the record in the error (and in `opts.record_path`)
/// resumes it.
pub async fn rotate(
    old: &TrusteeSet,
    new: &TrusteeSet,
    source: &RotationSource,
    policy: BackupPolicy,
    new_k: bool,
    auth: &mut dyn Passkey,
    opts: &RotateOptions<'_>,
) -> Result<RotationRecord, RotateError> {
    let mut record = prepare_rotation(old, new, source, policy, new_k, &opts.user_name)?;
    persist(&mut record, opts)?;
    let m = record.manifest()?;
    (opts.progress)(RotateEvent::Planned {
        from_epoch: record.from_epoch,
        to_epoch: record.to_epoch,
        threshold: m.threshold(),
        trustees: names(&record, |t| t.role != TrusteeRole::Leaving),
        joining: names(&record, |t| t.role == TrusteeRole::Joining),
        leaving: names(&record, |t| t.role == TrusteeRole::Leaving),
        window_safe: window_safe(&record)?,
    });
    resume_rotation(&mut record, old, new, source.secret(), auth, opts).await?;
    Ok(record)
}

fn names(record: &RotationRecord, f: impl Fn(&TrusteeProgress) -> bool) -> Vec<String> {
    record
        .trustees
        .iter()
        .filter(|t| f(t))
        .map(|t| t.name.clone())
        .collect()
}

fn persist(record: &mut RotationRecord, opts: &RotateOptions<'_>) -> Result<(), RotateError> {
    record.updated_at = dlocker_proto::time::unix_now();
    if let Some(cp) = &opts.checkpoint {
        (cp.save)(record.phase, &record.seal(cp.key))
            .map_err(|e| RotateError::Record(format!("saving the sealed record: {e}")))?;
    }
    match &opts.record_path {
        Some(p) => record.save(p),
        None => Ok(()),
    }
}

/// Continues a rotation from wherever it stopped (an interrupt, a crash — load the record with
/// [`RotationRecord::load`] — or trustees that were down) to the end. `secret` is either epoch's
/// `k` (the old one from the live device, or either one from a recovery): it unseals the new
/// shares in case a trustee must be staged (again).
pub async fn resume_rotation(
    record: &mut RotationRecord,
    old: &TrusteeSet,
    new: &TrusteeSet,
    secret: &SecretScalar,
    auth: &mut dyn Passkey,
    opts: &RotateOptions<'_>,
) -> Result<(), RotateError> {
    if record.phase == RotationPhase::RolledBack {
        return Err(RotateError::Record(
            "this rotation was rolled back; start a new one".into(),
        ));
    }
    let shares = record.shares(secret)?;
    let mut ctx = Ctx::new(record, old, new, shares, auth, opts)?;
    loop {
        match ctx.record.phase {
            RotationPhase::Staging => ctx.stage_all().await?,
            RotationPhase::Committing => ctx.commit_all().await?,
            RotationPhase::Retiring => ctx.retire_all().await?,
            RotationPhase::Done | RotationPhase::RolledBack => return Ok(()),
        }
    }
}

/// Abandons the rotation: drops the staged epoch e+1 at every trustee of e+1, leaving epoch e the
/// wallet's only epoch. Only possible while no trustee committed (each is asked first); after a
/// commit, [`RotateError::RollbackImpossible`] says to resume instead. A trustee that cannot be
/// reached keeps its staged epoch until it expires (`Incomplete` names it; call again).
pub async fn rollback_rotation(
    record: &mut RotationRecord,
    old: &TrusteeSet,
    new: &TrusteeSet,
    auth: &mut dyn Passkey,
    opts: &RotateOptions<'_>,
) -> Result<(), RotateError> {
    if record.phase == RotationPhase::RolledBack {
        return Ok(());
    }
    let mut ctx = Ctx::new(record, old, new, Vec::new(), auth, opts)?;
    ctx.rollback().await
}

/// One trustee's answer to `GetBackupStatus`.
#[derive(Debug, Default)]
struct Observed {
    /// (epoch, manifest hash, receipt) of the active epoch.
    active: Option<(u64, [u8; 32], Vec<u8>)>,
    /// (epoch, manifest hash, expires_at, stage receipt) of a staged epoch.
    staged: Option<(u64, [u8; 32], u64, Vec<u8>)>,
}

impl From<GetBackupStatusResponse> for Observed {
    fn from(s: GetBackupStatusResponse) -> Self {
        let active = (s.epoch != 0)
            .then(|| {
                <[u8; 32]>::try_from(s.manifest_hash.as_slice())
                    .ok()
                    .map(|h| (s.epoch, h, s.receipt_encoded))
            })
            .flatten();
        let staged = s.staged.and_then(|st| {
            <[u8; 32]>::try_from(st.manifest_hash.as_slice())
                .ok()
                .map(|h| (st.epoch, h, st.expires_at, st.stage_receipt_encoded))
        });
        Self { active, staged }
    }
}

async fn open_channel(info: &TrusteeInfo) -> Result<Channel, TrusteeFailure> {
    Ok(connect_channel(info).await?)
}

async fn observe(ch: &Channel, wallet_id: &str) -> Result<Option<Observed>, TrusteeFailure> {
    match client(ch.clone())
        .get_backup_status(GetBackupStatusRequest {
            wallet_id: wallet_id.to_owned(),
        })
        .await
    {
        Ok(r) => Ok(Some(r.into_inner().into())),
        Err(s) if not_held(&s) => Ok(None),
        Err(s) => Err(TrusteeFailure::refused("GetBackupStatus", &s)),
    }
}

struct Ctx<'r, 'a, 'o> {
    record: &'r mut RotationRecord,
    infos: Vec<TrusteeInfo>,
    shares: Vec<Share>,
    from: Manifest,
    to: Manifest,
    to_bytes: Vec<u8>,
    blob: Vec<u8>,
    auth: &'a mut dyn Passkey,
    opts: &'o RotateOptions<'o>,
    /// The commit phase's touch, which also covers the retirements that follow it.
    retire_touch: Option<PhaseTouch>,
}

impl<'r, 'a, 'o> Ctx<'r, 'a, 'o> {
    fn new(
        record: &'r mut RotationRecord,
        old: &TrusteeSet,
        new: &TrusteeSet,
        shares: Vec<Share>,
        auth: &'a mut dyn Passkey,
        opts: &'o RotateOptions<'o>,
    ) -> Result<Self, RotateError> {
        let from = record.previous_manifest()?;
        let to = record.manifest()?;
        let mut infos = Vec::with_capacity(record.trustees.len());
        for t in &record.trustees {
            let info = new
                .by_node_id(&t.node_id)
                .or_else(|| old.by_node_id(&t.node_id))
                .ok_or_else(|| {
                    RotateError::TrusteesMismatch(format!("{} is in neither trustees file", t.name))
                })?;
            let pinned = to
                .trustee(&t.node_id)
                .or_else(|| from.trustee(&t.node_id))
                .map(|e| e.public_key);
            if pinned != Some(info.public_key) {
                return Err(RotateError::TrusteesMismatch(format!(
                    "{} is pinned to another key than the manifest's",
                    t.name
                )));
            }
            infos.push(info.clone());
        }
        Ok(Self {
            to_bytes: record.manifest_bytes()?,
            blob: record.blob()?,
            record,
            infos,
            shares,
            from,
            to,
            auth,
            opts,
            retire_touch: None,
        })
    }

    fn save(&mut self) -> Result<(), RotateError> {
        persist(self.record, self.opts)
    }

    fn progress(&self, e: RotateEvent) {
        (self.opts.progress)(e);
    }

    fn check_interrupt(&self, step: &RotationStep) -> Result<(), RotateError> {
        if self.opts.interrupt.is_some_and(|f| f(step)) {
            return Err(RotateError::Interrupted {
                step: step.to_string(),
                record: Box::new(self.record.clone()),
            });
        }
        Ok(())
    }

    /// `BeginEpochAction` at one trustee: its nonce (and template, and on a trustee holding the
    /// wallet its credential and the credential's fingerprint).
    async fn begin_action(
        wallet_id: String,
        ch: Channel,
        action: EpochAction,
        hash: ManifestHash,
        node_id: String,
    ) -> Result<(BeginEpochActionResponse, TrusteeNonce), TrusteeFailure> {
        let resp = epochs_client(ch)
            .begin_epoch_action(BeginEpochActionRequest {
                wallet_id,
                action: action as i32,
                manifest_hash: hash.0.to_vec(),
            })
            .await
            .map_err(|s| TrusteeFailure::refused("BeginEpochAction", &s))?
            .into_inner();
        let nonce = ceremony::trustee_nonce(&node_id, &resp.nonce)?;
        Ok((resp, nonce))
    }

    /// `BeginEpochAction(action)` at every trustee in `members` (record indices) concurrently.
    /// Those that answer, in `members`' order; the others are reported as failed under `step`.
    async fn begin_all(
        &mut self,
        members: &[(usize, Channel)],
        action: EpochAction,
        step: impl Fn(String) -> RotationStep,
        failed: &mut Vec<Failure>,
    ) -> Vec<(usize, BeginEpochActionResponse, TrusteeNonce)> {
        let h_new = self.to.hash();
        let futures: Vec<_> = members
            .iter()
            .map(|(i, ch)| {
                let i = *i;
                let fut = Self::begin_action(
                    self.record.wallet_id.clone(),
                    ch.clone(),
                    action,
                    h_new,
                    self.record.trustees[i].node_id.clone(),
                );
                async move { (i, fut.await) }
            })
            .collect();
        let answers = join_all(futures).await;
        let mut ok = Vec::new();
        for (i, r) in answers {
            match r {
                Ok((resp, nonce)) => ok.push((i, resp, nonce)),
                Err(reason) => self.fail(i, &step, reason, failed),
            }
        }
        ok
    }

    /// Reports trustee `i`'s failure in `step`.
    fn fail(
        &self,
        i: usize,
        step: &impl Fn(String) -> RotationStep,
        reason: impl Into<TrusteeFailure>,
        failed: &mut Vec<Failure>,
    ) {
        let reason = reason.into();
        let name = self.record.trustees[i].name.clone();
        self.progress(RotateEvent::Failed {
            step: step(name.clone()),
            reason: reason.to_string(),
        });
        failed.push((name, reason));
    }

    /// Asks the owner ONCE for every trustee in `members` (ceremony order): the one-touch
    /// challenge over `action`, `authorized` and their nonces, in the first usable template
    /// (`extra_template` is a template from a trustee outside the ceremony, for a ceremony of
    /// joining trustees only, which have none).
    async fn touch(
        &mut self,
        action: OwnerAction,
        authorized: &[u8],
        members: &[(usize, BeginEpochActionResponse, TrusteeNonce)],
        extra_template: Option<&str>,
    ) -> Result<PhaseTouch, String> {
        self.progress(RotateEvent::PasskeyRequested {
            action,
            trustees: members
                .iter()
                .map(|(i, _, _)| self.record.trustees[*i].name.clone())
                .collect(),
        });
        let template = ceremony::first_request_template(
            members
                .iter()
                .map(|(_, r, _)| r.request_options_json.as_str())
                .chain(extra_template),
        );
        let touch = ceremony::assert(
            self.auth,
            action,
            &self.record.wallet_id,
            authorized,
            members.iter().map(|(_, _, n)| n.clone()).collect(),
            template,
        )
        .await
        .map_err(|e| format!("passkey: {e}"))?;
        Ok(PhaseTouch {
            touch,
            challenges: members
                .iter()
                .map(|(i, r, _)| (*i, r.challenge_id.clone()))
                .collect(),
        })
    }

    fn entry(&self, i: usize) -> Result<&TrusteeEntry, String> {
        self.to
            .trustee(&self.record.trustees[i].node_id)
            .ok_or_else(|| "not a trustee of the new epoch".to_owned())
    }

    fn verify_stage_receipt(&self, i: usize, bytes: &[u8]) -> Result<u64, String> {
        let info = &self.infos[i];
        let entry = self.entry(i)?;
        let s = Signed::<StageReceipt>::decode_trusted(bytes, &[info.public_key])
            .map_err(|e| format!("stage receipt not accepted: {e}"))?;
        let b = s.body();
        if b.node_id != info.node_id
            || b.wallet_id != self.to.wallet_id()
            || b.epoch != self.to.epoch()
            || b.share_index != entry.share_index
            || b.manifest_hash != self.to.hash()
            || b.previous_manifest_hash != self.from.hash()
        {
            return Err(
                "stage receipt is for another node, wallet, epoch, share or manifest".into(),
            );
        }
        Ok(b.expires_at)
    }

    /// An enrollment-style receipt for e+1 (what GetBackupStatus shows once committed).
    fn verify_active_receipt(&self, i: usize, bytes: &[u8]) -> Result<(), String> {
        let info = &self.infos[i];
        let entry = self.entry(i)?;
        crate::backup::verify_receipt(info, entry.share_index, &self.to, self.to.hash(), bytes)
            .map(|_| ())
    }

    // ----- phase 1 -----------------------------------------------------------------------

    async fn stage_all(&mut self) -> Result<(), RotateError> {
        let todo: Vec<usize> = (0..self.record.trustees.len())
            .filter(|&i| {
                let t = &self.record.trustees[i];
                t.role != TrusteeRole::Leaving && t.stage_receipt.is_none()
            })
            .collect();
        let (failed, _) = self.stage_batch(&todo, false).await?;
        if !failed.is_empty() {
            return Err(RotateError::Incomplete {
                phase: RotationPhase::Staging,
                failed,
                record: Box::new(self.record.clone()),
            });
        }
        self.record.phase = RotationPhase::Committing;
        self.save()
    }

    /// Observes trustee `i` before staging there: `None` when there is nothing to send (staged
    /// or committed already, recorded now), else its channel and whether it holds the wallet.
    async fn prepare_stage(
        &mut self,
        i: usize,
        refresh: bool,
        step: &RotationStep,
    ) -> Result<Option<(Channel, bool)>, StepError> {
        let ch = open_channel(&self.infos[i]).await?;
        let h_new = self.to.hash();
        let obs = observe(&ch, &self.record.wallet_id).await?;
        let role = self.record.trustees[i].role;
        if let Some(o) = &obs {
            if o.active.as_ref().is_some_and(|(_, h, _)| *h == h_new.0) {
                let (_, _, receipt) = o.active.clone().unwrap_or_default();
                self.verify_active_receipt(i, &receipt)?;
                let t = &mut self.record.trustees[i];
                t.stage_receipt = Some(hex::encode(&receipt));
                t.commit_receipt = Some(hex::encode(&receipt));
                self.progress(RotateEvent::AlreadyDone { step: step.clone() });
                self.save()?;
                return Ok(None);
            }
            match &o.staged {
                Some((_, h, _, receipt)) if *h == h_new.0 && !refresh => {
                    let expires_at = self.verify_stage_receipt(i, receipt)?;
                    let t = &mut self.record.trustees[i];
                    t.stage_receipt = Some(hex::encode(receipt));
                    t.staged_expires_at = Some(expires_at);
                    self.progress(RotateEvent::AlreadyDone { step: step.clone() });
                    self.save()?;
                    return Ok(None);
                }
                Some((e, h, exp, _)) if *h != h_new.0 => {
                    return Err(StepError::from(format!(
                        "another rotation (epoch {e}) is staged there until {exp}; roll it back or wait for it to expire"
                    )));
                }
                _ => {}
            }
            if role == TrusteeRole::Continuing
                && o.staged.is_none()
                && o.active
                    .as_ref()
                    .is_none_or(|(_, h, _)| *h != self.from.hash().0)
            {
                let epoch = o.active.as_ref().map(|a| a.0).unwrap_or_default();
                return Err(StepError::from(format!(
                    "holds epoch {epoch} of the wallet, not epoch {} this rotation starts from",
                    self.from.epoch()
                )));
            }
        }
        // A node holding only a staged epoch (a joining trustee staged before) holds the
        // wallet's credential too: it is authorised like a holder.
        Ok(Some((ch, obs.is_some())))
    }

    /// Stages e+1 at the trustees `todo` (record indices; again with `refresh`, which renews the
    /// expiry) with ONE touch of the owner's passkey: `BeginEpochAction(STAGE)` at each, one
    /// assertion over (stage, the new manifest hash ‖ the wallet credential's fingerprint, their
    /// nonces), then `StageEpoch` at each. A trustee new to the wallet gets the wallet's
    /// credential (`passkey_json`, from a trustee holding the wallet) with the assertion instead
    /// of a registration of its own, and the holders' signed `CredentialAttestation`s, one of
    /// which must come from a trustee it knows. Returns the trustees that failed and those staged now; the
    /// outer error stops the rotation (interrupt, record).
    async fn stage_batch(
        &mut self,
        todo: &[usize],
        refresh: bool,
    ) -> Result<(Vec<Failure>, Vec<usize>), RotateError> {
        let step = RotationStep::Stage;
        let mut failed = Vec::new();
        let mut to_send: Vec<(usize, Channel)> = Vec::new();
        let mut holders: Vec<usize> = Vec::new();
        for &i in todo {
            let s = step(self.record.trustees[i].name.clone());
            match self.prepare_stage(i, refresh, &s).await {
                Ok(None) => {}
                Ok(Some((ch, holds))) => {
                    if holds {
                        holders.push(i);
                    }
                    to_send.push((i, ch));
                }
                Err(StepError::Stop(e)) => return Err(e),
                Err(StepError::Failed(reason)) => self.fail(i, &step, reason, &mut failed),
            }
        }
        let Some((first, _)) = to_send.first() else {
            return Ok((failed, Vec::new()));
        };
        // Nothing is asked of the owner if the first step is not to be taken.
        self.check_interrupt(&step(self.record.trustees[*first].name.clone()))?;
        let first = *first;
        let h_new = self.to.hash();
        let begun = self
            .begin_all(&to_send, EpochAction::Stage, step, &mut failed)
            .await;

        // The wallet's one credential: what the trustees holding the wallet report (they must
        // agree), or, when only joining trustees stage now, what another trustee of e reports.
        let mut credential: Option<(String, [u8; 32])> = None;
        let mut donor_template: Option<String> = None;
        // Holders' signed word that the credential is the wallet's: a joining trustee needs one
        // from a trustee it knows.
        let mut attestations: Vec<Vec<u8>> = Vec::new();
        let mut members = Vec::new();
        for (i, resp, nonce) in begun {
            if !holders.contains(&i) {
                members.push((i, resp, nonce));
                continue;
            }
            if !resp.credential_attestation.is_empty() {
                attestations.push(resp.credential_attestation.clone());
            }
            let Ok(fp) = <[u8; 32]>::try_from(resp.credential_fingerprint.as_slice()) else {
                // No credential to show (e.g. a trustee holding only a staged epoch): it checks
                // the fingerprint against its own credential; the others' decide which it is.
                members.push((i, resp, nonce));
                continue;
            };
            match &credential {
                Some((_, known)) if *known != fp => self.fail(
                    i,
                    &step,
                    TrusteeFailure::BadAnswer(
                        "holds another passkey credential for the wallet than the other trustees"
                            .into(),
                    ),
                    &mut failed,
                ),
                Some(_) => members.push((i, resp, nonce)),
                None if resp.passkey_json.is_empty() => members.push((i, resp, nonce)),
                None => {
                    credential = Some((resp.passkey_json.clone(), fp));
                    members.push((i, resp, nonce));
                }
            }
        }
        if members.is_empty() {
            return Ok((failed, Vec::new()));
        }
        if credential.is_none() {
            let staging: Vec<usize> = members.iter().map(|(i, _, _)| *i).collect();
            match self.credential_from_donor(&staging).await {
                Ok((passkey_json, fp, template, attestation)) => {
                    credential = Some((passkey_json, fp));
                    donor_template = Some(template);
                    attestations.extend(attestation);
                }
                Err(reason) => {
                    for i in staging {
                        self.fail(i, &step, reason.clone(), &mut failed);
                    }
                    return Ok((failed, Vec::new()));
                }
            }
        }
        let Some((passkey_json, fp)) = credential else {
            return Ok((failed, Vec::new()));
        };
        let authorized = stage_authorized(&h_new.0, &fp);
        let touch = match self
            .touch(
                OwnerAction::Stage,
                &authorized,
                &members,
                donor_template.as_deref(),
            )
            .await
        {
            Ok(t) => t,
            Err(reason) => {
                for (i, _, _) in &members {
                    self.fail(*i, &step, reason.clone(), &mut failed);
                }
                return Ok((failed, Vec::new()));
            }
        };

        let mut staged = Vec::new();
        for (i, ch) in to_send {
            let Some(assertion) = touch.assertion(i) else {
                continue;
            };
            let s = step(self.record.trustees[i].name.clone());
            if i != first {
                self.check_interrupt(&s)?;
            }
            let authority = if holders.contains(&i) {
                stage_epoch_request::Authority::Owner(assertion)
            } else {
                stage_epoch_request::Authority::Joining(JoiningOwner {
                    owner: Some(assertion),
                    passkey_json: passkey_json.clone(),
                    credential_attestations: attestations.clone(),
                })
            };
            match self.send_stage(i, ch, authority).await {
                Ok(()) => staged.push(i),
                Err(StepError::Stop(e)) => return Err(e),
                Err(StepError::Failed(reason)) => self.fail(i, &step, reason, &mut failed),
            }
        }
        Ok((failed, staged))
    }

    /// The wallet's credential and a request template from a trustee that holds the wallet but
    /// does not stage in this batch (a continuing trustee staged earlier, or a leaving one),
    /// when no trustee of the batch showed it (a batch of joining trustees only).
    async fn credential_from_donor(
        &mut self,
        staging: &[usize],
    ) -> Result<(String, [u8; 32], String, Option<Vec<u8>>), String> {
        let candidates = (0..self.record.trustees.len())
            .filter(|i| !staging.contains(i))
            .filter(|&i| self.record.trustees[i].role != TrusteeRole::Joining);
        for i in candidates {
            let Ok(ch) = open_channel(&self.infos[i]).await else {
                continue;
            };
            let Ok((resp, _)) = Self::begin_action(
                self.record.wallet_id.clone(),
                ch,
                EpochAction::Stage,
                self.to.hash(),
                self.record.trustees[i].node_id.clone(),
            )
            .await
            else {
                continue;
            };
            if let Ok(fp) = <[u8; 32]>::try_from(resp.credential_fingerprint.as_slice())
                && !resp.passkey_json.is_empty()
            {
                let attestation = (!resp.credential_attestation.is_empty())
                    .then_some(resp.credential_attestation);
                return Ok((
                    resp.passkey_json,
                    fp,
                    resp.request_options_json,
                    attestation,
                ));
            }
        }
        Err("no trustee holding the wallet could hand over the wallet's passkey credential (a trustee joins with the wallet's one credential)".into())
    }

    /// `StageEpoch` at trustee `i` with `authority`; records the verified stage receipt.
    async fn send_stage(
        &mut self,
        i: usize,
        ch: Channel,
        authority: stage_epoch_request::Authority,
    ) -> Result<(), StepError> {
        let entry = self.entry(i)?.clone();
        let share = self
            .shares
            .iter()
            .find(|s| s.index() == entry.share_index)
            .ok_or_else(|| StepError::Failed("no share for this index in the record".into()))?;
        let info = &self.infos[i];
        // Sealed to the PINNED key: only the trustee named in the file can open it.
        let envelope = ShareEnvelope::seal(
            share,
            &EnvelopeContext {
                wallet_id: self.to.wallet_id(),
                epoch: self.to.epoch(),
                share_index: entry.share_index,
                recipient: &info.public_key,
            },
        )
        .map_err(|e| StepError::from(format!("sealing the share: {e}")))?
        .encode();
        let resp = epochs_client(ch)
            .stage_epoch(StageEpochRequest {
                manifest_encoded: self.to_bytes.clone(),
                share_envelope_encoded: envelope,
                blob: self.blob.clone(),
                authority: Some(authority),
            })
            .await
            .map_err(|s| TrusteeFailure::refused("StageEpoch", &s))?
            .into_inner();
        let expires_at = self.verify_stage_receipt(i, &resp.stage_receipt_encoded)?;
        let t = &mut self.record.trustees[i];
        t.stage_receipt = Some(hex::encode(&resp.stage_receipt_encoded));
        t.staged_expires_at = Some(expires_at);
        let name = t.name.clone();
        self.progress(RotateEvent::Staged {
            name,
            share_index: entry.share_index,
            expires_at,
        });
        self.save()?;
        Ok(())
    }

    // ----- phase 2 -----------------------------------------------------------------------

    fn evidence(&self) -> Vec<Vec<u8>> {
        self.record
            .trustees
            .iter()
            .flat_map(|t| [t.stage_receipt.as_deref(), t.commit_receipt.as_deref()])
            .flatten()
            .filter_map(|h| hex::decode(h).ok())
            .collect()
    }

    /// Commits at every trustee of e+1 (joining first). ONE touch serves the commits and the
    /// retirements that follow: `BeginEpochAction(COMMIT)` at every trustee still to commit and
    /// `BeginEpochAction(RETIRE)` at every trustee still to retire, one assertion over (commit,
    /// the new manifest hash, all their nonces), kept for [`Ctx::retire_all`].
    async fn commit_all(&mut self) -> Result<(), RotateError> {
        let order = commit_order(self.record);
        // Before the first commit: renew stages close to expiry, so the commit phase (the part
        // that cannot be rolled back) never starts on a stage about to disappear.
        if !self.record.any_commit() {
            let now = dlocker_proto::time::unix_now();
            let renew: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| {
                    let Some(expires_at) = self.record.trustees[i].staged_expires_at else {
                        return false;
                    };
                    let ttl = expires_at
                        .saturating_sub(self.record.created_at.min(now))
                        .max(1);
                    let margin = (ttl / 4).min(300);
                    expires_at.saturating_sub(now) <= margin
                })
                .collect();
            if !renew.is_empty() {
                let (failed, _) = self.stage_batch(&renew, true).await?;
                if !failed.is_empty() {
                    return Err(RotateError::Incomplete {
                        phase: RotationPhase::Committing,
                        failed,
                        record: Box::new(self.record.clone()),
                    });
                }
            }
        }
        let commit = RotationStep::Commit;
        let h_new = self.to.hash();
        let mut failed = Vec::new();
        let mut to_commit: Vec<usize> = Vec::new();
        let mut restage: Vec<usize> = Vec::new();
        for &i in &order {
            if self.record.trustees[i].commit_receipt.is_some() {
                continue;
            }
            let s = commit(self.record.trustees[i].name.clone());
            match self.prepare_commit(i, &s).await {
                Ok(CommitNeed::Done) => {}
                Ok(CommitNeed::Commit) => to_commit.push(i),
                Ok(CommitNeed::Restage) => restage.push(i),
                Err(StepError::Stop(e)) => return Err(e),
                Err(StepError::Failed(reason)) => self.fail(i, &commit, reason, &mut failed),
            }
        }
        if !restage.is_empty() {
            // Stages gone (expired while the rotation was interrupted): stage them again.
            for &i in &restage {
                self.record.trustees[i].stage_receipt = None;
            }
            let (f, staged) = self.stage_batch(&restage, false).await?;
            failed.extend(f);
            to_commit.extend(staged);
            to_commit.sort_by_key(|i| order.iter().position(|o| o == i));
        }
        if let Some(&first) = to_commit.first() {
            self.check_interrupt(&commit(self.record.trustees[first].name.clone()))?;
            let retirers = self.retirers_needing_owner().await;
            let mut members = Vec::new();
            let chans = self.channels(&to_commit, &commit, &mut failed).await;
            members.extend(
                self.begin_all(&chans, EpochAction::Commit, commit, &mut failed)
                    .await,
            );
            let retiring = self
                .begin_all(
                    &retirers,
                    EpochAction::Retire,
                    RotationStep::Retire,
                    &mut Vec::new(),
                )
                .await;
            members.extend(retiring);
            // e+1's trustees in manifest order, then the trustees that leave (record order).
            members.sort_by_key(|(i, _, _)| *i);
            if !members.is_empty() {
                match self
                    .touch(OwnerAction::Commit, &h_new.0, &members, None)
                    .await
                {
                    Ok(t) => {
                        for (i, ch) in chans {
                            let Some(owner) = t.assertion(i) else {
                                continue;
                            };
                            let s = commit(self.record.trustees[i].name.clone());
                            if i != first {
                                self.check_interrupt(&s)?;
                            }
                            match self.send_commit(i, ch, owner, &s).await {
                                Ok(()) => {}
                                Err(StepError::Stop(e)) => return Err(e),
                                Err(StepError::Failed(reason)) => {
                                    self.fail(i, &commit, reason, &mut failed)
                                }
                            }
                        }
                        self.retire_touch = Some(t);
                    }
                    Err(reason) => {
                        for (i, _) in chans {
                            self.fail(i, &commit, reason.clone(), &mut failed);
                        }
                    }
                }
            }
        }
        if !failed.is_empty() {
            return Err(RotateError::Incomplete {
                phase: RotationPhase::Committing,
                failed,
                record: Box::new(self.record.clone()),
            });
        }
        self.record.phase = RotationPhase::Retiring;
        self.save()
    }

    /// Fresh channels to the trustees `idx` (those unreachable are reported under `step`).
    async fn channels(
        &mut self,
        idx: &[usize],
        step: &impl Fn(String) -> RotationStep,
        failed: &mut Vec<Failure>,
    ) -> Vec<(usize, Channel)> {
        let mut out = Vec::new();
        for &i in idx {
            match open_channel(&self.infos[i]).await {
                Ok(ch) => out.push((i, ch)),
                Err(reason) => self.fail(i, step, reason, failed),
            }
        }
        out
    }

    /// What trustee `i` of e+1 needs for the commit, after asking it what it holds.
    async fn prepare_commit(
        &mut self,
        i: usize,
        step: &RotationStep,
    ) -> Result<CommitNeed, StepError> {
        let ch = open_channel(&self.infos[i]).await?;
        let h_new = self.to.hash();
        let obs = observe(&ch, &self.record.wallet_id)
            .await?
            .unwrap_or_default();
        if let Some((_, h, receipt)) = &obs.active
            && *h == h_new.0
        {
            // Committed earlier (the answer was lost).
            self.verify_active_receipt(i, receipt)?;
            self.record.trustees[i].commit_receipt = Some(hex::encode(receipt));
            self.progress(RotateEvent::AlreadyDone { step: step.clone() });
            self.save()?;
            return Ok(CommitNeed::Done);
        }
        if obs.staged.as_ref().is_none_or(|(_, h, _, _)| *h != h_new.0) {
            return Ok(CommitNeed::Restage);
        }
        Ok(CommitNeed::Commit)
    }

    /// `CommitEpoch` at trustee `i` with the owner's assertion; records the verified receipt.
    async fn send_commit(
        &mut self,
        i: usize,
        ch: Channel,
        owner: OwnerAssertion,
        _step: &RotationStep,
    ) -> Result<(), StepError> {
        let h_new = self.to.hash();
        self.record.trustees[i].commit_attempted = true;
        self.save()?;
        let resp = epochs_client(ch)
            .commit_epoch(CommitEpochRequest {
                wallet_id: self.record.wallet_id.clone(),
                manifest_hash: h_new.0.to_vec(),
                owner: Some(owner),
                quorum_encoded: self.evidence(),
            })
            .await
            .map_err(|s| TrusteeFailure::refused("CommitEpoch", &s))?
            .into_inner();
        let info = &self.infos[i];
        let entry = self.entry(i)?.clone();
        let c = Signed::<CommitReceipt>::decode_trusted(
            &resp.commit_receipt_encoded,
            &[info.public_key],
        )
        .map_err(|e| format!("commit receipt not accepted: {e}"))?;
        let b = c.body();
        if b.node_id != info.node_id
            || b.wallet_id != self.to.wallet_id()
            || b.epoch != self.to.epoch()
            || b.manifest_hash != h_new
            || b.share_index != entry.share_index
        {
            return Err(StepError::Failed(TrusteeFailure::BadAnswer(
                "commit receipt is for another node, wallet, epoch, share or manifest".into(),
            )));
        }
        let t = &mut self.record.trustees[i];
        t.commit_receipt = Some(hex::encode(&resp.commit_receipt_encoded));
        let name = t.name.clone();
        self.progress(RotateEvent::Committed {
            name,
            share_index: entry.share_index,
        });
        self.save()?;
        Ok(())
    }

    // ----- phase 3 -----------------------------------------------------------------------

    /// Leaving trustees still holding epoch e (they need the owner's assertion to retire), with
    /// a channel each. Best effort: one that cannot be asked now is asked again when retiring.
    async fn retirers_needing_owner(&mut self) -> Vec<(usize, Channel)> {
        let mut out = Vec::new();
        for i in 0..self.record.trustees.len() {
            let t = &self.record.trustees[i];
            if t.role != TrusteeRole::Leaving || t.retire_receipt.is_some() {
                continue;
            }
            let Ok(ch) = open_channel(&self.infos[i]).await else {
                continue;
            };
            if let Ok(Some(o)) = observe(&ch, &self.record.wallet_id).await
                && o.active
                    .as_ref()
                    .is_some_and(|(_, h, _)| *h == self.from.hash().0)
            {
                out.push((i, ch));
            }
        }
        out
    }

    /// Retires every leaving trustee. The commit phase's touch covers them when this run made
    /// it; otherwise (a resumed rotation) ONE touch for the retirements: `BeginEpochAction
    /// (RETIRE)` at each, one assertion over (commit, the new manifest hash, their nonces).
    async fn retire_all(&mut self) -> Result<(), RotateError> {
        let retire = RotationStep::Retire;
        let h_new = self.to.hash();
        let mut failed = Vec::new();
        // (index, channel, needs the owner)
        let mut todo: Vec<(usize, Channel, bool)> = Vec::new();
        for i in 0..self.record.trustees.len() {
            let t = &self.record.trustees[i];
            if t.role != TrusteeRole::Leaving || t.retire_receipt.is_some() {
                continue;
            }
            let r: Result<(Channel, bool), TrusteeFailure> = async {
                let ch = open_channel(&self.infos[i]).await?;
                match observe(&ch, &self.record.wallet_id).await? {
                    // Holds nothing: retired already (a retry gets the stored receipt).
                    None => Ok((ch, false)),
                    Some(o)
                        if o.active
                            .as_ref()
                            .is_some_and(|(_, h, _)| *h == self.from.hash().0) =>
                    {
                        Ok((ch, true))
                    }
                    Some(o) => {
                        let epoch = o.active.as_ref().map(|a| a.0).unwrap_or_default();
                        Err(format!(
                            "holds epoch {epoch} of the wallet, not epoch {}",
                            self.from.epoch()
                        )
                        .into())
                    }
                }
            }
            .await;
            match r {
                Ok((ch, owner)) => todo.push((i, ch, owner)),
                Err(reason) => self.fail(i, &retire, reason, &mut failed),
            }
        }
        let mut checked_first = None;
        let uncovered: Vec<(usize, Channel)> = todo
            .iter()
            .filter(|(i, _, owner)| {
                *owner
                    && self
                        .retire_touch
                        .as_ref()
                        .is_none_or(|t| t.assertion(*i).is_none())
            })
            .map(|(i, ch, _)| (*i, ch.clone()))
            .collect();
        let mut own_touch: Option<PhaseTouch> = None;
        if let Some(&(first, _)) = uncovered.first() {
            self.check_interrupt(&retire(self.record.trustees[first].name.clone()))?;
            checked_first = Some(first);
            let members = self
                .begin_all(&uncovered, EpochAction::Retire, retire, &mut failed)
                .await;
            if !members.is_empty() {
                match self
                    .touch(OwnerAction::Commit, &h_new.0, &members, None)
                    .await
                {
                    Ok(t) => own_touch = Some(t),
                    Err(reason) => {
                        for (i, _, _) in &members {
                            self.fail(*i, &retire, reason.clone(), &mut failed);
                        }
                    }
                }
            }
        }
        for (i, ch, needs_owner) in todo {
            let owner = if needs_owner {
                let a = self
                    .retire_touch
                    .as_ref()
                    .and_then(|t| t.assertion(i))
                    .or_else(|| own_touch.as_ref().and_then(|t| t.assertion(i)));
                match a {
                    Some(a) => Some(a),
                    // Its BeginEpochAction or the touch failed (reported above).
                    None => continue,
                }
            } else {
                None
            };
            let s = retire(self.record.trustees[i].name.clone());
            if needs_owner && checked_first != Some(i) {
                self.check_interrupt(&s)?;
            }
            match self.send_retire(i, ch, owner, &s).await {
                Ok(()) => {}
                Err(StepError::Stop(e)) => return Err(e),
                Err(StepError::Failed(reason)) => self.fail(i, &retire, reason, &mut failed),
            }
        }
        if !failed.is_empty() {
            return Err(RotateError::Incomplete {
                phase: RotationPhase::Retiring,
                failed,
                record: Box::new(self.record.clone()),
            });
        }
        self.record.phase = RotationPhase::Done;
        self.save()
    }

    /// `RetireWallet` at trustee `i` (`owner` is `None` for the retry of a retirement whose
    /// answer was lost); records the verified receipt.
    async fn send_retire(
        &mut self,
        i: usize,
        ch: Channel,
        owner: Option<OwnerAssertion>,
        step: &RotationStep,
    ) -> Result<(), StepError> {
        let h_new = self.to.hash();
        let commit_receipts: Vec<Vec<u8>> = self
            .record
            .trustees
            .iter()
            .filter_map(|t| t.commit_receipt.as_deref())
            .filter_map(|h| hex::decode(h).ok())
            .collect();
        let was_retired = owner.is_none();
        let resp = epochs_client(ch)
            .retire_wallet(RetireWalletRequest {
                wallet_id: self.record.wallet_id.clone(),
                successor_manifest_encoded: self.to_bytes.clone(),
                commit_receipts_encoded: commit_receipts,
                owner,
            })
            .await;
        let bytes = match resp {
            Ok(r) => r.into_inner().retire_receipt_encoded,
            Err(s) if was_retired && not_held(&s) => {
                return Err(StepError::Failed(
                    "holds nothing for the wallet and no record of retiring from it".into(),
                ));
            }
            Err(s) => {
                return Err(StepError::Failed(TrusteeFailure::refused(
                    "RetireWallet",
                    &s,
                )));
            }
        };
        let info = &self.infos[i];
        let r = Signed::<RetireReceipt>::decode_trusted(&bytes, &[info.public_key])
            .map_err(|e| format!("retire receipt not accepted: {e}"))?;
        let b = r.body();
        if b.node_id != info.node_id
            || b.wallet_id != self.to.wallet_id()
            || b.successor_manifest_hash != h_new
            || b.retired_manifest_hash != self.from.hash()
        {
            return Err(StepError::Failed(TrusteeFailure::BadAnswer(
                "retire receipt is for another node, wallet or manifest".into(),
            )));
        }
        let t = &mut self.record.trustees[i];
        t.retire_receipt = Some(hex::encode(&bytes));
        let name = t.name.clone();
        if was_retired {
            self.progress(RotateEvent::AlreadyDone { step: step.clone() });
        } else {
            self.progress(RotateEvent::Retired { name });
        }
        self.save()?;
        Ok(())
    }

    // ----- rollback ------------------------------------------------------------------------

    async fn rollback(&mut self) -> Result<(), RotateError> {
        let h_new = self.to.hash();
        if self.record.phase == RotationPhase::Done {
            return Err(RotateError::RollbackImpossible {
                epoch: self.to.epoch(),
                committed: names(self.record, |t| t.role != TrusteeRole::Leaving),
            });
        }
        // Ask every trustee of e+1 first: any commit (or an unknown outcome) forbids rollback.
        let mut committed = Vec::new();
        let mut observed: Vec<Option<(Channel, Option<Observed>)>> = Vec::new();
        for i in 0..self.record.trustees.len() {
            let t = &self.record.trustees[i];
            if t.role == TrusteeRole::Leaving {
                observed.push(None);
                continue;
            }
            let seen = match open_channel(&self.infos[i]).await {
                Ok(ch) => observe(&ch, &self.record.wallet_id)
                    .await
                    .ok()
                    .map(|o| (ch, o)),
                Err(_) => None,
            };
            let t = &self.record.trustees[i];
            match &seen {
                Some((_, Some(o))) if o.active.as_ref().is_some_and(|(_, h, _)| *h == h_new.0) => {
                    committed.push(t.name.clone())
                }
                None if t.commit_attempted || t.commit_receipt.is_some() => {
                    committed.push(format!("{} (unreachable after a commit was sent)", t.name))
                }
                _ => {}
            }
            observed.push(seen);
        }
        if !committed.is_empty() {
            return Err(RotateError::RollbackImpossible {
                epoch: self.to.epoch(),
                committed,
            });
        }
        let abandon = RotationStep::Abandon;
        let mut failed = Vec::new();
        let mut to_abandon: Vec<(usize, Channel)> = Vec::new();
        for (i, seen) in observed.into_iter().enumerate() {
            if self.record.trustees[i].role == TrusteeRole::Leaving
                || self.record.trustees[i].abandoned
            {
                continue;
            }
            let Some((ch, obs)) = seen else {
                let until = self.record.trustees[i]
                    .staged_expires_at
                    .map(|e| format!(" (its staged epoch expires at {e})"))
                    .unwrap_or_default();
                failed.push((
                    self.record.trustees[i].name.clone(),
                    format!("unreachable{until}").into(),
                ));
                continue;
            };
            let staged_here = obs
                .as_ref()
                .and_then(|o| o.staged.as_ref())
                .is_some_and(|(_, h, _, _)| *h == h_new.0);
            if !staged_here {
                // Never staged, expired, or abandoned before: nothing to drop.
                self.record.trustees[i].abandoned = true;
                self.save()?;
                continue;
            }
            to_abandon.push((i, ch));
        }
        // ONE touch for every trustee still holding the staged epoch.
        if let Some(&(first, _)) = to_abandon.first() {
            self.check_interrupt(&abandon(self.record.trustees[first].name.clone()))?;
            let members = self
                .begin_all(&to_abandon, EpochAction::Abandon, abandon, &mut failed)
                .await;
            let touch = if members.is_empty() {
                None
            } else {
                match self
                    .touch(OwnerAction::Abandon, &h_new.0, &members, None)
                    .await
                {
                    Ok(t) => Some(t),
                    Err(reason) => {
                        for (i, _, _) in &members {
                            self.fail(*i, &abandon, reason.clone(), &mut failed);
                        }
                        None
                    }
                }
            };
            for (i, ch) in to_abandon {
                let Some(owner) = touch.as_ref().and_then(|t| t.assertion(i)) else {
                    continue;
                };
                let name = self.record.trustees[i].name.clone();
                if i != first {
                    self.check_interrupt(&abandon(name.clone()))?;
                }
                let res = epochs_client(ch)
                    .abandon_epoch(AbandonEpochRequest {
                        wallet_id: self.record.wallet_id.clone(),
                        manifest_hash: h_new.0.to_vec(),
                        owner: Some(owner),
                    })
                    .await
                    .map_err(|s| TrusteeFailure::refused("AbandonEpoch", &s));
                match res {
                    Ok(_) => {
                        self.record.trustees[i].abandoned = true;
                        self.progress(RotateEvent::Abandoned { name });
                        self.save()?;
                    }
                    Err(reason) => self.fail(i, &abandon, reason, &mut failed),
                }
            }
        }
        if !failed.is_empty() {
            return Err(RotateError::Incomplete {
                phase: self.record.phase,
                failed,
                record: Box::new(self.record.clone()),
            });
        }
        self.record.phase = RotationPhase::RolledBack;
        self.save()
    }
}

/// What a trustee of e+1 needs before its commit.
enum CommitNeed {
    /// Committed already (recorded now).
    Done,
    /// Its stage is there: commit.
    Commit,
    /// Its stage is gone (expired): stage again first.
    Restage,
}

/// One owner ceremony of a rotation phase: the touch and each trustee's challenge id.
#[derive(Debug)]
struct PhaseTouch {
    touch: Touch,
    /// `(record index, challenge id)` of every trustee in the ceremony.
    challenges: Vec<(usize, String)>,
}

impl PhaseTouch {
    /// The owner's assertion as trustee `i` takes it, if `i` is in the ceremony.
    fn assertion(&self, i: usize) -> Option<OwnerAssertion> {
        self.challenges
            .iter()
            .find(|(j, _)| *j == i)
            .map(|(_, challenge_id)| OwnerAssertion {
                challenge_id: challenge_id.clone(),
                assertion_json: self.touch.response_json.clone(),
                nonces: self.touch.nonces.clone(),
            })
    }
}

/// A step's failure: `Stop` ends the whole operation (interrupt, record I/O), `Failed` is this
/// trustee's problem.
enum StepError {
    Stop(RotateError),
    Failed(TrusteeFailure),
}

impl From<String> for StepError {
    fn from(s: String) -> Self {
        StepError::Failed(s.into())
    }
}

impl From<TrusteeFailure> for StepError {
    fn from(f: TrusteeFailure) -> Self {
        StepError::Failed(f)
    }
}

impl From<RotateError> for StepError {
    fn from(e: RotateError) -> Self {
        StepError::Stop(e)
    }
}

/// One trustee's epochs of a wallet, as it reports them (`GetBackupStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrusteeEpochs {
    /// Trustee name.
    pub name: String,
    /// Node id.
    pub node_id: String,
    /// Active epoch, its share index and manifest hash (hex).
    pub active: Option<(u64, u16, String)>,
    /// Staged epoch, its share index, manifest hash (hex) and expiry (Unix seconds).
    pub staged: Option<(u64, u16, String, u64)>,
    /// Why it could not be asked (down, ...); `None` also when it holds nothing.
    pub error: Option<String>,
}

/// Asks every trustee in `trustees` which epochs of `wallet_id` it holds (active and staged).
pub async fn epoch_status(trustees: &TrusteeSet, wallet_id: &str) -> Vec<TrusteeEpochs> {
    futures::future::join_all(trustees.trustees().iter().map(|info| async move {
        let mut out = TrusteeEpochs {
            name: info.name.clone(),
            node_id: info.node_id.clone(),
            active: None,
            staged: None,
            error: None,
        };
        let ch = match connect_channel(info).await {
            Ok(ch) => ch,
            Err(e) => {
                out.error = Some(e.to_string());
                return out;
            }
        };
        match client(ch)
            .get_backup_status(GetBackupStatusRequest {
                wallet_id: wallet_id.to_owned(),
            })
            .await
        {
            Ok(r) => {
                let s = r.into_inner();
                if s.epoch != 0 {
                    out.active =
                        Some((s.epoch, s.share_index as u16, hex::encode(&s.manifest_hash)));
                }
                out.staged = s.staged.map(|st| {
                    (
                        st.epoch,
                        st.share_index as u16,
                        hex::encode(&st.manifest_hash),
                        st.expires_at,
                    )
                });
            }
            Err(s) if not_held(&s) => {}
            Err(s) => out.error = Some(describe_status(&s)),
        }
        out
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apps spawn these on multi-threaded runtimes: the futures must stay `Send`.
    #[allow(dead_code)]
    fn futures_are_send(
        old: &TrusteeSet,
        src: &RotationSource,
        auth: &mut crate::SoftwareAuthenticator,
        r: &mut RotationRecord,
        o: &RotateOptions<'_>,
    ) {
        fn is_send<T: Send>(_: T) {}
        let p = BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        };
        is_send(rotate(old, old, src, p, false, auth, o));
        is_send(epoch_status(old, "w"));
        is_send(resume_rotation(r, old, old, src.secret(), auth, o));
    }

    #[allow(dead_code)]
    fn rollback_is_send(
        old: &TrusteeSet,
        auth: &mut crate::SoftwareAuthenticator,
        r: &mut RotationRecord,
        o: &RotateOptions<'_>,
    ) {
        fn is_send<T: Send>(_: T) {}
        is_send(rollback_rotation(r, old, old, auth, o));
    }

    #[test]
    fn recovery_picks_the_epoch_with_its_threshold() {
        let all = crate::trustees::test_set(6, 0).0.trustees().to_vec();
        let union = TrusteeSet::new(all.clone()).expect("all");
        let old = TrusteeSet::new(all[..5].to_vec()).expect("old");
        let new =
            TrusteeSet::new(vec![all[0].clone(), all[1].clone(), all[5].clone()]).expect("new");
        let p = PreparedBackup::new(
            &old,
            "w1",
            b"seed",
            BackupPolicy {
                threshold: 3,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        let r = prepare_rotation(
            &old,
            &new,
            &RotationSource::from_prepared(&p).expect("src"),
            BackupPolicy {
                threshold: 2,
                recovery_delay_secs: 0,
            },
            false,
            "a",
        )
        .expect("plan");
        let (e1, e2) = (
            p.manifest_bytes().to_vec(),
            r.manifest_bytes().expect("bytes"),
        );
        let t = union.trustees();
        // e2 committed at t6 and t1 (its threshold), e1 still at t2..t5: both qualify, e2 wins.
        let votes: Vec<(&TrusteeInfo, &[u8])> = vec![
            (&t[5], &e2),
            (&t[0], &e2),
            (&t[1], &e1),
            (&t[2], &e1),
            (&t[3], &e1),
            (&t[4], &e1),
        ];
        let (m, faulty, other) =
            crate::recover::select_manifest("w1", &union, &votes).expect("selected");
        assert_eq!(m.epoch(), 2);
        assert!(faulty.is_empty(), "{faulty:?}");
        assert_eq!(other.len(), 4, "{other:?}");
        assert!(
            other[0].1.to_string().contains("holds epoch 1"),
            "{other:?}"
        );
        // e2 only at t6: below its threshold, e1 (4 of 3 needed) is used; t6 is not faulty.
        let votes: Vec<(&TrusteeInfo, &[u8])> = vec![
            (&t[5], &e2),
            (&t[0], &e1),
            (&t[1], &e1),
            (&t[2], &e1),
            (&t[3], &e1),
        ];
        let (m, faulty, other) =
            crate::recover::select_manifest("w1", &union, &votes).expect("selected");
        assert_eq!((m.epoch(), faulty.len(), other.len()), (1, 0, 1));
    }

    #[test]
    fn plan_record_and_secrets() {
        let all = crate::trustees::test_set(6, 0).0.trustees().to_vec();
        let old = TrusteeSet::new(all[..5].to_vec()).expect("old");
        // 2-of-3 over t1 (bank), t2 and the new t6: t3..t5 leave.
        let new =
            TrusteeSet::new(vec![all[0].clone(), all[1].clone(), all[5].clone()]).expect("new");
        let p = PreparedBackup::new(
            &old,
            "w1",
            b"seed words",
            BackupPolicy {
                threshold: 3,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        let src = RotationSource::from_prepared(&p).expect("source");
        assert!(format!("{src:?}").contains("REDACTED"));
        let policy = BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 5,
        };
        for new_k in [false, true] {
            let r = prepare_rotation(&old, &new, &src, policy, new_k, "alice").expect("plan");
            let m = r.manifest().expect("manifest");
            assert_eq!((m.epoch(), m.threshold(), m.trustees().len()), (2, 2, 3));
            assert_eq!(m.previous(), Some(&p.manifest_hash()));
            let roles: Vec<(String, TrusteeRole)> = r
                .trustees
                .iter()
                .map(|t| (t.name.clone(), t.role))
                .collect();
            assert_eq!(
                roles,
                vec![
                    ("t1".into(), TrusteeRole::Continuing),
                    ("t2".into(), TrusteeRole::Continuing),
                    ("t6".into(), TrusteeRole::Joining),
                    ("t3".into(), TrusteeRole::Leaving),
                    ("t4".into(), TrusteeRole::Leaving),
                    ("t5".into(), TrusteeRole::Leaving),
                ]
            );
            // Joining first, then continuing; e or e+1 always has its threshold of active shares.
            assert_eq!(commit_order(&r), vec![2, 0, 1]);
            assert!(window_safe(&r).expect("safe"));
            // The record opens with the old k (and with the new one); it hides the shares.
            let k_new = r.secret(src.secret()).expect("opens with the old k");
            assert_eq!(new_k, k_new.to_bytes() != src.secret().to_bytes());
            assert!(r.secret(&k_new).is_ok(), "opens with the new k too");
            assert!(matches!(
                r.secret(&SecretScalar::random()),
                Err(RotateError::WrongSecret)
            ));
            let json = serde_json::to_string(&r).expect("json");
            for s in r.shares(src.secret()).expect("shares") {
                assert!(
                    !json.contains(&hex::encode(s.value().to_bytes().as_ref())),
                    "a share in the clear"
                );
            }
            assert!(!json.contains(&hex::encode(src.secret().to_bytes().as_ref())));
            // The blob opens under the new k to the same data.
            assert_eq!(
                dlocker_proto::blob::open(&k_new, "w1", &r.blob().expect("blob"))
                    .expect("open")
                    .expose(),
                b"seed words"
            );
            // Saved and loaded back.
            let dir = tempfile::tempdir().expect("tmp");
            let path = dir.path().join("rotation.json");
            r.save(&path).expect("save");
            assert_eq!(RotationRecord::load(&path).expect("load"), r);
        }
        // A 3-of-3 refresh relies on staged shares between commits.
        let three = TrusteeSet::new(all[..3].to_vec()).expect("three");
        let p3 = PreparedBackup::new(
            &three,
            "w2",
            b"x",
            BackupPolicy {
                threshold: 3,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        let r3 = prepare_rotation(
            &three,
            &three,
            &RotationSource::from_prepared(&p3).expect("src"),
            BackupPolicy {
                threshold: 3,
                recovery_delay_secs: 0,
            },
            false,
            "a",
        )
        .expect("plan");
        assert!(!window_safe(&r3).expect("computed"));
        // Bad policies and files.
        assert!(matches!(
            prepare_rotation(
                &old,
                &new,
                &src,
                BackupPolicy {
                    threshold: 4,
                    recovery_delay_secs: 0
                },
                false,
                "a"
            ),
            Err(RotateError::InvalidPolicy(_))
        ));
        assert!(matches!(
            prepare_rotation(&new, &new, &src, policy, false, "a"),
            Err(RotateError::TrusteesMismatch(_))
        ));
        assert!(matches!(
            RotationSource::new(
                p.manifest().clone(),
                SecretScalar::random(),
                SecretBytes::new(vec![])
            ),
            Err(RotateError::WrongSecret)
        ));
    }
}
