//! [`Client`]: the wallet app's one entry point. Built once ([`Client::builder`]) from the
//! trustees (a file or a list), timeouts, retries and TLS roots; then every ceremony of a wallet's
//! life is one method: [`Client::backup`], [`Client::verify`], [`Client::recover`] /
//! [`Client::resume_recovery`], [`Client::cancel_recovery`] / [`Client::cancel_all_recoveries`],
//! [`Client::rotate`] / [`Client::resume_rotation`], [`Client::delete`],
//! [`Client::change_passkey`], [`Client::reset_passkey`] (the passkey lost, the bank assisting)
//! and [`Client::status`].
//!
//! The client keeps one connection per trustee and reuses it for every call (tonic reconnects it
//! underneath after a node restarts): the trustee's identity key is checked against the pinned
//! key (`GetInfo`) once, when the connection is first opened, not on every call (that check is an
//! early, clear failure; what keeps the protocol safe is sealing to and verifying against the
//! pinned keys, on every call). A kept connection belongs to the tokio runtime it was opened on:
//! use a client within one runtime. Opening a
//! connection is retried with exponential backoff while the node is unreachable; a backup whose
//! trustees failed for a reason worth retrying is retried the same way (a retried backup needs no
//! second passkey touch). Ceremonies that would need another touch (delete, passkey change,
//! cancel) are not retried behind the owner's back: their [`Error::is_retryable`] says whether
//! calling again can help.
//!
//! Every method except the recovery's and the passkey reset's is bounded by the overall deadline
//! ([`ClientBuilder::deadline`], the passkey prompt included): a recovery waits for the bank and
//! the waiting period, bounded by [`RecoverOptions`] instead, and a reset for the bank, bounded by
//! [`ResetOptions`].

use crate::authenticator::Passkey;
use crate::backup::{
    BackupCheckpoint, BackupPolicy, BackupReceipts, OwnerIdentity, PreparedBackup,
    backup_with_checkpoint,
};
use crate::cancel_all::{CancelAllError, CancelAllReport, cancel_all_recoveries};
use crate::delete::{DeleteError, DeleteOptions, DeleteReport, delete_backup_with};
use crate::error::{BackupError, Failure, TrusteeFailure, TrusteesError};
#[cfg(not(target_arch = "wasm32"))]
use crate::passkey_change::{
    PasskeyChangeError, PasskeyChangeReport, change_passkey, resume_passkey_change,
};
#[cfg(not(target_arch = "wasm32"))]
use crate::passkey_reset::{
    PasskeyResetError, PasskeyResetReport, PendingReset, ResetOptions, reset_passkey,
    resume_passkey_reset,
};
use crate::recover::{
    CancelOutcome, RecoverError, RecoverOptions, Recovered, RecoveryHandle, cancel_recovery,
    recover, resume_recovery,
};
use crate::rotate::{RotateError, RotateOptions, RotationRecord, RotationSource};
use crate::runtime::sleep;
use crate::transport::{ChannelOptions, Link, backoff_delay, client, describe_status, not_held};
use crate::trustees::{TrusteeInfo, TrusteeSet};
use crate::verify::{VerifyReport, verify_backup};
use dlocker_proto::client_state::StateKey;
use dlocker_proto::ids::WalletId;
use dlocker_proto::manifest::Manifest;
use dlocker_proto::pb::GetBackupStatusRequest;
use dlocker_proto::secret::SecretScalar;
use futures::future::{Either, join_all, select};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a failing step is tried, and how long to wait in between: `initial_backoff`, then
/// doubled each time, at most `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first pause.
    pub initial_backoff: Duration,
    /// The longest pause.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// `attempts` in all, pausing `initial_backoff` after the first failure, doubling up to
    /// `max_backoff`.
    pub fn new(attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            attempts: attempts.max(1),
            initial_backoff,
            max_backoff,
        }
    }

    /// One attempt, no retry.
    pub fn none() -> Self {
        Self::new(1, Duration::ZERO, Duration::ZERO)
    }
}

impl Default for RetryPolicy {
    /// 4 attempts, pausing 0.5 s, 1 s, 2 s.
    fn default() -> Self {
        Self::new(4, Duration::from_millis(500), Duration::from_secs(8))
    }
}

/// Why a [`Client`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No trustees were given ([`ClientBuilder::trustees_file`] or [`ClientBuilder::trustees`]).
    #[error("no trustees given")]
    NoTrustees,
    /// The trustees file could not be used.
    #[error(transparent)]
    Trustees(#[from] TrusteesError),
    /// A TLS file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    TlsFile {
        /// Which file.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Configures a [`Client`]. Every setting has a default but the trustees.
#[derive(Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    trustees: Option<Result<TrusteeSet, TrusteesError>>,
    channel: ChannelOptions,
    deadline: Option<Duration>,
    retry: RetryPolicy,
    tls_error: Option<BuildError>,
}

impl std::fmt::Debug for ChannelOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("ca_pem", &self.ca_pem.is_some())
            .field("identity", &self.identity_pem.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

/// The default overall deadline of one call, the owner's passkey prompt included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

impl ClientBuilder {
    /// The trustees file (TOML, see [`crate::TrusteeSet`]); relative TLS paths are resolved
    /// against its directory.
    pub fn trustees_file(mut self, path: impl AsRef<Path>) -> Self {
        self.trustees = Some(TrusteeSet::load(path));
        self
    }

    /// The trustees as a list already checked.
    pub fn trustees(mut self, set: TrusteeSet) -> Self {
        self.trustees = Some(Ok(set));
        self
    }

    /// How long to wait for a connection (TCP and TLS) to a trustee; 5 s by default.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.channel.connect_timeout = d;
        self
    }

    /// How long one call to one trustee may take; 30 s by default.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.channel.request_timeout = d;
        self
    }

    /// How long one [`Client`] method may take in all, retries and the passkey prompt included
    /// ([`DEFAULT_DEADLINE`] by default). Recoveries are bounded by their [`RecoverOptions`].
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// Retries of connections and of backups that failed for a reason worth retrying.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The CA certificates (PEM, one or more) that sign the trustees' TLS certificates, from
    /// memory (bundled with the app). They replace the trustees file's `ca_cert`.
    pub fn tls_roots_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.channel.ca_pem = Some(pem.into());
        self
    }

    /// [`Self::tls_roots_pem`] read from a file.
    pub fn tls_roots_file(mut self, path: impl AsRef<Path>) -> Self {
        match std::fs::read(path.as_ref()) {
            Ok(pem) => self.channel.ca_pem = Some(pem),
            Err(source) => {
                self.tls_error = Some(BuildError::TlsFile {
                    what: "TLS roots",
                    path: path.as_ref().to_owned(),
                    source,
                })
            }
        }
        self
    }

    /// A client certificate and key (PEM) for trustees that require mutual TLS, from memory;
    /// they replace the trustees file's `client_cert` / `client_key`.
    pub fn client_identity_pem(
        mut self,
        cert: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.channel.identity_pem = Some((cert.into(), zeroize::Zeroizing::new(key.into())));
        self
    }

    /// The client. Nothing is connected yet: each trustee's connection opens on first use.
    pub fn build(self) -> Result<Client, BuildError> {
        if let Some(e) = self.tls_error {
            return Err(e);
        }
        let set = self.trustees.ok_or(BuildError::NoTrustees)??;
        let mut channel = self.channel;
        channel.connect_attempts = self.retry.attempts;
        channel.backoff = self.retry.initial_backoff;
        channel.max_backoff = self.retry.max_backoff;
        let links = Links {
            opts: channel,
            kept: Mutex::new(HashMap::new()),
        };
        let trustees = set.with_links(|t| links.link(t));
        Ok(Client {
            trustees,
            shared: Arc::new(Shared {
                links,
                deadline: self.deadline.unwrap_or(DEFAULT_DEADLINE),
                retry: self.retry,
            }),
        })
    }
}

/// The kept connections, one per (endpoint, pinned key): the client's trustees and any trustee
/// of a rotation's new set.
struct Links {
    opts: ChannelOptions,
    kept: Mutex<HashMap<(String, String), Link>>,
}

impl Links {
    fn link(&self, t: &TrusteeInfo) -> Link {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.entry((t.endpoint.clone(), t.node_id.clone()))
            .or_insert_with(|| Link::new(self.opts.clone()))
            .clone()
    }

    fn opened(&self) -> u64 {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.values().map(Link::opened).sum()
    }
}

struct Shared {
    links: Links,
    deadline: Duration,
    retry: RetryPolicy,
}

/// The wallet app's client: the trustees, their kept connections and the call settings. Cheap
/// to clone (clones share the connections).
#[derive(Clone)]
pub struct Client {
    trustees: TrusteeSet,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("trustees", &self.trustees.len())
            .field("deadline", &self.shared.deadline)
            .field("retry", &self.shared.retry)
            .finish()
    }
}

/// Why a [`Client`] call did not complete: the operation's own error, or the deadline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The wallet id is not acceptable (1–64 characters from `A-Z a-z 0-9 . _ : -`).
    #[error("invalid wallet id: {0}")]
    InvalidWalletId(String),
    /// A backup.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// A recovery (or its resumption).
    #[error(transparent)]
    Recover(#[from] RecoverError),
    /// A rotation (or its resumption or rollback).
    #[error(transparent)]
    Rotate(#[from] RotateError),
    /// A delete.
    #[error(transparent)]
    Delete(#[from] DeleteError),
    /// Closing every recovery session of the wallet.
    #[error(transparent)]
    CancelAll(#[from] CancelAllError),
    /// A passkey change.
    #[cfg(not(target_arch = "wasm32"))]
    #[error(transparent)]
    PasskeyChange(#[from] PasskeyChangeError),
    /// A bank-assisted passkey reset.
    #[cfg(not(target_arch = "wasm32"))]
    #[error(transparent)]
    PasskeyReset(#[from] PasskeyResetError),
    /// The call's overall deadline passed; what it had done stays done (call again or resume).
    #[error("{operation} did not finish within {} s", .after.as_secs())]
    DeadlineExceeded {
        /// The call.
        operation: &'static str,
        /// The deadline.
        after: Duration,
    },
}

impl Error {
    /// The trustees that failed, each with its typed reason (empty when the failure was not a
    /// trustee's).
    pub fn failures(&self) -> &[Failure] {
        match self {
            Self::Backup(BackupError::Incomplete { failed, .. })
            | Self::Recover(
                RecoverError::NotEnoughTrustees { failed, .. }
                | RecoverError::NoTrustedManifest { failed, .. },
            )
            | Self::Rotate(RotateError::Incomplete { failed, .. })
            | Self::Delete(DeleteError::Incomplete { failed, .. })
            | Self::CancelAll(CancelAllError::Incomplete { failed, .. }) => failed,
            #[cfg(not(target_arch = "wasm32"))]
            Self::PasskeyChange(
                PasskeyChangeError::Incomplete { failed, .. }
                | PasskeyChangeError::Unavailable(failed),
            ) => failed,
            #[cfg(not(target_arch = "wasm32"))]
            Self::PasskeyReset(
                PasskeyResetError::Incomplete { failed, .. }
                | PasskeyResetError::Unavailable(failed),
            ) => failed,
            _ => &[],
        }
    }

    /// Whether calling again (or resuming) as is may succeed: the deadline passed, or every
    /// trustee that failed did so for a reason that can pass (unreachable, timed out, rate
    /// limited, busy). `false` when something must change first: the input, the trustees file,
    /// a trustee that answered wrongly, the owner's passkey.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::DeadlineExceeded { .. } => true,
            // The bank could not be asked, or has not approved yet: ask again later.
            Self::Recover(RecoverError::Bank { .. } | RecoverError::ApprovalTimeout { .. }) => true,
            // The bank has not approved yet: the same call (a new touch) may succeed later.
            #[cfg(not(target_arch = "wasm32"))]
            Self::PasskeyReset(PasskeyResetError::ApprovalTimeout { .. }) => true,
            _ => {
                let failed = self.failures();
                // At least one real failure (not only trustees that were not asked because of it).
                failed
                    .iter()
                    .any(|(_, f)| !matches!(f, TrusteeFailure::NotAttempted(_)))
                    && failed.iter().all(|(_, f)| f.is_retryable())
            }
        }
    }
}

/// One trustee's epochs of a wallet, as it reports them ([`Client::status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrusteeStatus {
    /// Trustee name.
    pub name: String,
    /// Node id.
    pub node_id: String,
    /// The active epoch, `None` when the trustee holds nothing for the wallet.
    pub active: Option<EpochInfo>,
    /// A staged epoch (a rotation in progress).
    pub staged: Option<EpochInfo>,
    /// Why the trustee could not be asked.
    pub error: Option<TrusteeFailure>,
}

/// An epoch a trustee holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EpochInfo {
    /// The epoch.
    pub epoch: u64,
    /// The trustee's share index in it.
    pub share_index: u16,
    /// The manifest's hash.
    pub manifest_hash: [u8; 32],
    /// Staged epochs: when it expires unless committed (Unix seconds).
    pub expires_at: Option<u64>,
}

fn hash32(b: &[u8]) -> [u8; 32] {
    let mut h = [0u8; 32];
    if b.len() == 32 {
        h.copy_from_slice(b);
    }
    h
}

impl Client {
    /// A builder; give it at least the trustees.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The trustees (file order).
    pub fn trustees(&self) -> &TrusteeSet {
        &self.trustees
    }

    /// How many connections the client has opened (and checked with `GetInfo`) so far: one per
    /// trustee unless a connection failed to open and was tried again.
    pub fn connections_opened(&self) -> u64 {
        self.shared.links.opened()
    }

    /// `set` with this client's kept connections (trustees of a rotation's new set).
    fn adopt(&self, set: &TrusteeSet) -> TrusteeSet {
        set.with_links(|t| self.shared.links.link(t))
    }

    /// Runs `op` within the deadline.
    async fn bounded<T>(
        &self,
        operation: &'static str,
        op: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let after = self.shared.deadline;
        let op = std::pin::pin!(op);
        let timer = std::pin::pin!(sleep(after));
        match select(op, timer).await {
            Either::Left((r, _)) => r,
            Either::Right(((), _)) => Err(Error::DeadlineExceeded { operation, after }),
        }
    }

    /// Splits a fresh random secret for `wallet_id` among the client's trustees and encrypts
    /// `wallet_data` under it (nothing is sent). Keep it (or its sealed form,
    /// [`PreparedBackup::seal`]) until [`Client::backup`] succeeded.
    pub fn prepare_backup(
        &self,
        wallet_id: &WalletId,
        wallet_data: &[u8],
        policy: BackupPolicy,
    ) -> Result<PreparedBackup, Error> {
        Ok(PreparedBackup::new(
            &self.trustees,
            wallet_id.as_str(),
            wallet_data,
            policy,
        )?)
    }

    /// Deposits `prepared` at every trustee (one passkey touch registers the wallet's passkey
    /// everywhere) and returns every trustee's verified receipt. Trustees that failed for a
    /// reason worth retrying are tried again with backoff, without another touch. With a
    /// `checkpoint`, the sealed backup is saved before the first deposit and after the
    /// registration, so a killed app completes it later ([`PreparedBackup::open_sealed`]).
    pub async fn backup(
        &self,
        prepared: &PreparedBackup,
        owner: &OwnerIdentity<'_>,
        passkey: &mut dyn Passkey,
        checkpoint: Option<BackupCheckpoint<'_>>,
    ) -> Result<BackupReceipts, Error> {
        self.bounded("backup", async {
            let retry = self.shared.retry;
            let mut attempt = 1;
            loop {
                let r = backup_with_checkpoint(
                    &self.trustees,
                    prepared,
                    owner,
                    passkey,
                    &|_| {},
                    checkpoint,
                )
                .await
                .map_err(Error::from);
                match r {
                    Err(e) if e.is_retryable() && attempt < retry.attempts => {
                        sleep(backoff_delay(
                            retry.initial_backoff,
                            retry.max_backoff,
                            attempt,
                        ))
                        .await;
                        attempt += 1;
                    }
                    r => return r,
                }
            }
        })
        .await
    }

    /// Every trustee of `manifest` proves it still holds a good share (nothing is revealed).
    pub async fn verify(&self, manifest: &Manifest) -> Result<VerifyReport, Error> {
        self.bounded("verify", async {
            Ok(verify_backup(&self.trustees, manifest).await)
        })
        .await
    }

    /// Recovers the wallet on this device: bank approval + one passkey touch + the waiting
    /// period (see [`crate::protocol::recover()`]). Not bounded by the client's deadline: `opts`
    /// says how long to wait for the bank, and a checkpoint there lets a killed app resume.
    pub async fn recover(
        &self,
        wallet_id: &WalletId,
        passkey: &mut dyn Passkey,
        opts: RecoverOptions<'_>,
    ) -> Result<Recovered, Error> {
        Ok(recover(&self.trustees, wallet_id.as_str(), passkey, opts).await?)
    }

    /// Resumes a recovery from the sealed state its checkpoint saved, where the trustees are:
    /// no second approval, no second waiting period.
    pub async fn resume_recovery(
        &self,
        saved: &[u8],
        key: &StateKey,
        passkey: &mut dyn Passkey,
        opts: RecoverOptions<'_>,
    ) -> Result<Recovered, Error> {
        Ok(resume_recovery(&self.trustees, saved, key, passkey, opts).await?)
    }

    /// The owner closes the recovery of `handle` at every trustee with one touch.
    pub async fn cancel_recovery(
        &self,
        handle: &RecoveryHandle,
        passkey: &mut dyn Passkey,
    ) -> Result<Vec<CancelOutcome>, Error> {
        self.bounded("cancel", async {
            Ok(cancel_recovery(&self.trustees, handle, passkey).await)
        })
        .await
    }

    /// The owner closes EVERY open recovery session of the wallet at every trustee with one
    /// touch, without knowing them (a recovery someone else started, or one whose handle was
    /// lost). Each trustee answers with the sessions it closed.
    pub async fn cancel_all_recoveries(
        &self,
        wallet_id: &WalletId,
        passkey: &mut dyn Passkey,
    ) -> Result<CancelAllReport, Error> {
        self.bounded("cancel all", async {
            Ok(cancel_all_recoveries(&self.trustees, wallet_id, passkey).await?)
        })
        .await
    }

    /// Re-splits the wallet of `source` from the client's trustees to epoch e+1 over `new`
    /// (the same set to refresh the shares). On error, the record in the error (or in
    /// `opts.record_path`) resumes it with [`Client::resume_rotation`].
    pub async fn rotate(
        &self,
        new: &TrusteeSet,
        source: &RotationSource,
        policy: BackupPolicy,
        new_k: bool,
        passkey: &mut dyn Passkey,
        opts: &RotateOptions<'_>,
    ) -> Result<RotationRecord, Error> {
        let new = self.adopt(new);
        self.bounded("rotate", async {
            Ok(
                crate::rotate::rotate(&self.trustees, &new, source, policy, new_k, passkey, opts)
                    .await?,
            )
        })
        .await
    }

    /// Continues an interrupted rotation to the end (`secret`: either epoch's `k`).
    pub async fn resume_rotation(
        &self,
        record: &mut RotationRecord,
        new: &TrusteeSet,
        secret: &SecretScalar,
        passkey: &mut dyn Passkey,
        opts: &RotateOptions<'_>,
    ) -> Result<(), Error> {
        let new = self.adopt(new);
        self.bounded("resume rotation", async {
            Ok(
                crate::rotate::resume_rotation(record, &self.trustees, &new, secret, passkey, opts)
                    .await?,
            )
        })
        .await
    }

    /// Drops a rotation's staged epoch everywhere (before any trustee committed it).
    pub async fn rollback_rotation(
        &self,
        record: &mut RotationRecord,
        new: &TrusteeSet,
        passkey: &mut dyn Passkey,
        opts: &RotateOptions<'_>,
    ) -> Result<(), Error> {
        let new = self.adopt(new);
        self.bounded("roll back rotation", async {
            Ok(
                crate::rotate::rollback_rotation(record, &self.trustees, &new, passkey, opts)
                    .await?,
            )
        })
        .await
    }

    /// Erases the wallet at every trustee with one touch; each returns a signed erasure
    /// receipt. On an incomplete delete, call again (one more touch) to complete it. The
    /// document locker's documents stay: see [`Client::delete_with`].
    pub async fn delete(
        &self,
        wallet_id: &WalletId,
        passkey: &mut dyn Passkey,
    ) -> Result<DeleteReport, Error> {
        self.delete_with(wallet_id, passkey, DeleteOptions::default())
            .await
    }

    /// [`Client::delete`] with `options`, e.g. [`DeleteOptions::erase_documents`] to erase the
    /// wallet's holder at the document locker too (its credentials revoked). The choice is
    /// covered by the owner's touch; make it with the first delete, as nothing can authorize it
    /// once the wallet is gone at the bank.
    pub async fn delete_with(
        &self,
        wallet_id: &WalletId,
        passkey: &mut dyn Passkey,
        options: DeleteOptions,
    ) -> Result<DeleteReport, Error> {
        self.bounded("delete", async {
            Ok(delete_backup_with(&self.trustees, wallet_id.as_str(), passkey, options).await?)
        })
        .await
    }

    /// Replaces the wallet's passkey at every trustee: one touch of `new` (registration), one
    /// of `current` (authorizing exactly that credential).
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn change_passkey(
        &self,
        wallet_id: &WalletId,
        current: &mut dyn Passkey,
        new: &mut dyn Passkey,
    ) -> Result<PasskeyChangeReport, Error> {
        self.bounded("change passkey", async {
            Ok(change_passkey(&self.trustees, wallet_id.as_str(), current, new).await?)
        })
        .await
    }

    /// Completes a partial passkey change with one touch of the current (old) passkey.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn resume_passkey_change(
        &self,
        wallet_id: &WalletId,
        current: &mut dyn Passkey,
        new_fingerprint: &[u8; 32],
    ) -> Result<PasskeyChangeReport, Error> {
        self.bounded("resume passkey change", async {
            Ok(
                resume_passkey_change(&self.trustees, wallet_id.as_str(), current, new_fingerprint)
                    .await?,
            )
        })
        .await
    }

    /// Replaces a LOST passkey at every trustee (`docs/protocol.md` §13a, "Passkey reset"): one
    /// touch of `new`, a proof of knowledge of the wallet secret `k` (the app holds it; it is
    /// only borrowed), and the bank's approval, which its staff give after checking who the
    /// customer is (the call files the request and polls it, bounded by `opts`, not by the
    /// client's deadline). On `Incomplete`, [`Client::resume_passkey_reset`] within the hour;
    /// with `opts.checkpoint`, a killed app resumes from the sealed state it saved.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn reset_passkey(
        &self,
        wallet_id: &WalletId,
        k: &SecretScalar,
        new: &mut dyn Passkey,
        opts: ResetOptions<'_>,
    ) -> Result<PasskeyResetReport, Error> {
        Ok(reset_passkey(&self.trustees, wallet_id.as_str(), k, new, opts).await?)
    }

    /// Resumes a reset (no touch): from an `Incomplete` error's `pending`, or from the state its
    /// checkpoint saved ([`PendingReset::open_sealed`]). Without the bank's approval yet, it
    /// waits for it, bounded by `opts` (not by the client's deadline); then it sends the reset
    /// to the trustees that did not confirm.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn resume_passkey_reset(
        &self,
        pending: PendingReset,
        opts: ResetOptions<'_>,
    ) -> Result<PasskeyResetReport, Error> {
        if !pending.is_approved() {
            return Ok(resume_passkey_reset(&self.trustees, pending, opts).await?);
        }
        self.bounded("resume passkey reset", async {
            Ok(resume_passkey_reset(&self.trustees, pending, opts).await?)
        })
        .await
    }

    /// Which epochs of the wallet each trustee holds (active and staged), in file order.
    pub async fn status(&self, wallet_id: &WalletId) -> Result<Vec<TrusteeStatus>, Error> {
        self.bounded("status", async {
            Ok(join_all(
                self.trustees
                    .trustees()
                    .iter()
                    .map(|info| trustee_status(info, wallet_id)),
            )
            .await)
        })
        .await
    }
}

async fn trustee_status(info: &TrusteeInfo, wallet_id: &WalletId) -> TrusteeStatus {
    let mut out = TrusteeStatus {
        name: info.name.clone(),
        node_id: info.node_id.clone(),
        active: None,
        staged: None,
        error: None,
    };
    let ch = match crate::transport::connect_channel(info).await {
        Ok(ch) => ch,
        Err(e) => {
            out.error = Some(e.into());
            return out;
        }
    };
    match client(ch)
        .get_backup_status(GetBackupStatusRequest {
            wallet_id: wallet_id.as_str().to_owned(),
        })
        .await
    {
        Ok(r) => {
            let s = r.into_inner();
            if s.epoch != 0 {
                out.active = Some(EpochInfo {
                    epoch: s.epoch,
                    share_index: u16::try_from(s.share_index).unwrap_or(0),
                    manifest_hash: hash32(&s.manifest_hash),
                    expires_at: None,
                });
            }
            out.staged = s.staged.map(|st| EpochInfo {
                epoch: st.epoch,
                share_index: u16::try_from(st.share_index).unwrap_or(0),
                manifest_hash: hash32(&st.manifest_hash),
                expires_at: Some(st.expires_at),
            });
        }
        Err(s) if not_held(&s) => {}
        Err(s) => {
            tracing::debug!(trustee = %info.name, status = %describe_status(&s), "status refused");
            out.error = Some(TrusteeFailure::refused("GetBackupStatus", &s));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ConnectError;
    use dlocker_proto::refusal::NodeRefusal;

    fn unreachable() -> TrusteeFailure {
        TrusteeFailure::Connect(ConnectError::Unreachable {
            endpoint: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        })
    }

    #[test]
    fn retryable_when_every_failure_can_pass() {
        let incomplete = |failed: Vec<Failure>| {
            Error::Delete(DeleteError::Incomplete {
                failed,
                done: DeleteReport::default(),
            })
        };
        assert!(incomplete(vec![("a".into(), unreachable())]).is_retryable());
        let limited = TrusteeFailure::refused(
            "DeleteWallet",
            &NodeRefusal::RateLimited.status("slow down"),
        );
        assert!(incomplete(vec![("a".into(), limited.clone())]).is_retryable());
        // A refusal of the owner's assertion does not pass by waiting.
        let refused =
            TrusteeFailure::refused("DeleteWallet", &NodeRefusal::AssertionRejected.status("no"));
        let e = incomplete(vec![("a".into(), unreachable()), ("b".into(), refused)]);
        assert!(!e.is_retryable());
        assert_eq!(e.failures().len(), 2);
        // Trustees not asked because another failed follow its fate; alone they say nothing.
        let skipped = || {
            (
                "b".to_owned(),
                TrusteeFailure::NotAttempted("a failed".into()),
            )
        };
        assert!(incomplete(vec![("a".into(), unreachable()), skipped()]).is_retryable());
        assert!(!incomplete(vec![skipped()]).is_retryable());
        assert!(!TrusteeFailure::BadAnswer("bad receipt".into()).is_retryable());
        let mismatch = TrusteeFailure::Connect(ConnectError::KeyMismatch {
            name: "a".into(),
            endpoint: "x".into(),
            pinned: "p".into(),
            presented: "q".into(),
        });
        assert!(!mismatch.is_retryable());
        assert!(
            Error::DeadlineExceeded {
                operation: "delete",
                after: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(!Error::InvalidWalletId("x".into()).is_retryable());
    }

    #[test]
    fn backoff_doubles_up_to_its_bound() {
        let b = Duration::from_millis(500);
        let max = Duration::from_secs(3);
        assert_eq!(backoff_delay(b, max, 1), b);
        assert_eq!(backoff_delay(b, max, 2), Duration::from_secs(1));
        assert_eq!(backoff_delay(b, max, 3), Duration::from_secs(2));
        assert_eq!(backoff_delay(b, max, 4), max);
        assert_eq!(backoff_delay(b, max, 400), max);
    }

    #[test]
    fn a_client_needs_trustees_and_readable_roots() {
        assert!(matches!(
            Client::builder().build(),
            Err(BuildError::NoTrustees)
        ));
        let (set, _) = crate::trustees::test_set(3, 0);
        let missing = Client::builder()
            .trustees(set.clone())
            .tls_roots_file("/nonexistent/ca.pem")
            .build();
        assert!(matches!(missing, Err(BuildError::TlsFile { .. })));
        let c = Client::builder().trustees(set).build().expect("client");
        assert_eq!(c.trustees().len(), 3);
        assert_eq!(c.connections_opened(), 0);
    }
}
