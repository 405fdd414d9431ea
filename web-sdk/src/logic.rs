//! The browser SDK's logic that does not touch JavaScript: the calls into `dlocker-sdk`, the
//! events and results in the shapes `API.md` documents (serde, camelCase), and the errors as one
//! line each. It compiles natively too, so its unit tests run without a browser.

use dlocker_sdk::documents::{
    CredentialStatus, HolderClient, LockerClient, PrincipalKey, reissue_to_recovered_device,
};
use dlocker_sdk::proto::manifest::Manifest;
use dlocker_sdk::proto::pb;
use dlocker_sdk::{
    BackupPolicy, BackupReceipts, CancelOutcome, Checkpoint, DeviceKey, OwnerIdentity, Passkey,
    PreparedBackup, RecoverEvent, RecoverOptions, Recovered, RecoveryHandle, RecoveryStep,
    StateKey, TrusteeHealth, TrusteeSet, protocol::ProgressEvent,
};
use futures::channel::mpsc;
use futures::{StreamExt, future};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use zeroize::Zeroizing;

/// An error for the page: one line, never a secret (the SDK's errors carry none).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WebError(pub String);

impl WebError {
    fn from(what: &str, e: &dyn std::fmt::Display) -> Self {
        Self(one_line(&format!("{what}: {e}")))
    }
}

/// The first line of `s` (node messages may span lines; a JS error shows one).
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// A progress event as the page receives it (`event.type` names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[allow(missing_docs)]
pub enum Event {
    TrusteeStarted {
        trustee: String,
    },
    PasskeyRequested {
        trustees: Vec<String>,
    },
    TrusteeDone {
        trustee: String,
        share_index: u16,
    },
    TrusteeFailed {
        trustee: String,
        reason: String,
    },
    TrusteeChecked(Health),
    SessionStatus {
        trustee: String,
        state: String,
    },
    SessionOpened {
        trustee: String,
        session_id: String,
        release_not_before: u64,
    },
    SessionsOpened {
        manifest_hash: String,
        sessions: Vec<Session>,
    },
    OwnerAuthenticated {
        trustee: String,
    },
    AwaitingApproval {
        bank_session_id: String,
    },
    ApprovalPending {
        status: String,
    },
    Approved {
        approvers: Vec<String>,
        expires_at: u64,
    },
    Waiting {
        seconds_left: u64,
        release_at: u64,
    },
    ShareVerified {
        trustee: String,
        share_index: u16,
    },
    ShareRejected {
        trustee: String,
        reason: String,
    },
    Released {
        used: Vec<String>,
    },
    /// The recovery's sealed state after a step (the page gave a state key): store it, so
    /// `resumeRecovery` can finish the recovery after a reload. `state` is AES-256-GCM under
    /// the page's state key, base64; `step` is `sessions_opened`, `owner_authenticated` or
    /// `releasing`.
    Checkpoint {
        step: String,
        state: String,
    },
}

/// One open recovery session (in `sessionsOpened`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Session {
    pub trustee: String,
    pub session_id: String,
    pub release_not_before: u64,
}

impl From<ProgressEvent> for Event {
    fn from(e: ProgressEvent) -> Self {
        match e {
            ProgressEvent::TrusteeStarted { name } => Event::TrusteeStarted { trustee: name },
            ProgressEvent::PasskeyRequested { trustees } => Event::PasskeyRequested { trustees },
            ProgressEvent::TrusteeDone { name, share_index } => Event::TrusteeDone {
                trustee: name,
                share_index,
            },
            ProgressEvent::TrusteeFailed { name, reason } => Event::TrusteeFailed {
                trustee: name,
                reason: one_line(&reason),
            },
            // The enum is non-exhaustive: a future event is shown as a generic failure-free
            // status rather than dropped silently.
            other => Event::ApprovalPending {
                status: format!("{other:?}"),
            },
        }
    }
}

/// The page's view of a recovery event; `now` (unix seconds) dates the waiting period's end.
pub fn recover_event(e: RecoverEvent, now: u64) -> Event {
    match e {
        RecoverEvent::SessionStatus { name, state } => Event::SessionStatus {
            trustee: name,
            state,
        },
        RecoverEvent::SessionOpened {
            name,
            session_id,
            release_not_before,
        } => Event::SessionOpened {
            trustee: name,
            session_id,
            release_not_before,
        },
        RecoverEvent::TrusteeFailed { name, reason } => Event::TrusteeFailed {
            trustee: name,
            reason: one_line(&reason),
        },
        RecoverEvent::SessionsOpened {
            handle,
            manifest_hash,
        } => Event::SessionsOpened {
            manifest_hash: hex::encode(manifest_hash.0),
            sessions: handle
                .sessions
                .into_iter()
                .map(|s| Session {
                    trustee: s.name,
                    session_id: s.session_id,
                    release_not_before: s.release_not_before,
                })
                .collect(),
        },
        RecoverEvent::PasskeyRequested { trustees } => Event::PasskeyRequested { trustees },
        RecoverEvent::OwnerAuthenticated { name } => Event::OwnerAuthenticated { trustee: name },
        RecoverEvent::AwaitingApproval { bank_session_id } => {
            Event::AwaitingApproval { bank_session_id }
        }
        RecoverEvent::ApprovalPending { status } => Event::ApprovalPending { status },
        RecoverEvent::Approved {
            approvers,
            expires_at,
        } => Event::Approved {
            approvers,
            expires_at,
        },
        RecoverEvent::Waiting { seconds_left } => Event::Waiting {
            seconds_left,
            release_at: now.saturating_add(seconds_left),
        },
        RecoverEvent::ShareVerified { name, share_index } => Event::ShareVerified {
            trustee: name,
            share_index,
        },
        RecoverEvent::ShareRejected { name, reason } => Event::ShareRejected {
            trustee: name,
            reason: one_line(&reason),
        },
        other => Event::ApprovalPending {
            status: format!("{other:?}"),
        },
    }
}

/// Runs `work` with a progress function the SDK can hold (`Fn + Sync`) and hands each event to
/// `sink` on the caller's task as it arrives. In the browser the sink calls a JS function,
/// which is neither `Send` nor `Sync`: the channel is what crosses.
pub async fn with_events<E, T, W>(work: W, mut sink: impl FnMut(E)) -> T
where
    W: AsyncFnOnce(&(dyn Fn(E) + Sync)) -> T,
    E: Send,
{
    let (tx, rx) = mpsc::unbounded::<E>();
    let run = async move {
        let emit = move |e: E| {
            // A closed receiver only means nobody listens any more.
            let _ = tx.unbounded_send(e);
        };
        work(&emit).await
        // `emit` (the sender) drops here, which ends the receiving side below.
    };
    let drain = rx.for_each(|e| {
        sink(e);
        future::ready(())
    });
    let (out, ()) = future::join(run, drain).await;
    out
}

/// `backup()`'s options (`API.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupOptions {
    /// Shares needed to recover.
    pub threshold: u16,
    /// The waiting period, seconds.
    pub recovery_delay_secs: u64,
    /// The passkey's user name.
    pub user_name: String,
}

/// One trustee's receipt, verified by the SDK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Receipt {
    pub trustee: String,
    pub node_id: String,
    pub share_index: u16,
    /// base64 of the signed receipt.
    pub receipt: String,
}

/// `backup()`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct BackupResult {
    pub wallet_id: String,
    pub epoch: u64,
    pub manifest_hash: String,
    /// base64 of the canonical manifest (what `verifyBackup` takes).
    pub manifest: String,
    pub receipts: Vec<Receipt>,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl BackupResult {
    fn new(r: &BackupReceipts, manifest: &Manifest) -> Self {
        Self {
            wallet_id: r.wallet_id.clone(),
            epoch: r.epoch,
            manifest_hash: hex::encode(r.manifest_hash.0),
            manifest: b64(&manifest.encode()),
            receipts: r
                .receipts
                .iter()
                .map(|t| Receipt {
                    trustee: t.name.clone(),
                    node_id: t.node_id.clone(),
                    share_index: t.share_index,
                    receipt: b64(&t.receipt.encode()),
                })
                .collect(),
        }
    }
}

/// Parses the trustees file as the CLI does.
pub fn trustees(toml: &str) -> Result<TrusteeSet, WebError> {
    TrusteeSet::from_toml(toml).map_err(|e| WebError::from("trustees file", &e))
}

/// `client.trustees()` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct TrusteeView {
    pub name: String,
    pub endpoint: String,
    pub node_id: String,
    pub role: String,
}

/// The trustees as the page lists them.
pub fn trustee_views(set: &TrusteeSet) -> Vec<TrusteeView> {
    set.trustees()
        .iter()
        .map(|t| TrusteeView {
            name: t.name.clone(),
            endpoint: t.endpoint.clone(),
            node_id: t.node_id.clone(),
            role: t.role.as_str().to_owned(),
        })
        .collect()
}

/// Backs `secret` up at every trustee (one passkey touch).
pub async fn backup(
    set: &TrusteeSet,
    wallet_id: &str,
    secret: Zeroizing<Vec<u8>>,
    opts: &BackupOptions,
    passkey: &mut dyn Passkey,
    mut sink: impl FnMut(Event),
) -> Result<BackupResult, WebError> {
    let policy = BackupPolicy {
        threshold: opts.threshold,
        recovery_delay_secs: opts.recovery_delay_secs,
    };
    let prepared = PreparedBackup::new(set, wallet_id, &secret, policy)
        .map_err(|e| WebError::from("backup", &e))?;
    drop(secret);
    let owner = OwnerIdentity {
        user_name: &opts.user_name,
        customer_reference: None,
    };
    let receipts = with_events(
        async |emit: &(dyn Fn(ProgressEvent) + Sync)| {
            dlocker_sdk::protocol::backup_for(set, &prepared, &owner, passkey, emit).await
        },
        |e| sink(Event::from(e)),
    )
    .await
    .map_err(|e| WebError::from("backup", &e))?;
    Ok(BackupResult::new(&receipts, prepared.manifest()))
}

/// One trustee's possession check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Health {
    pub trustee: String,
    pub node_id: String,
    pub share_index: u16,
    pub epoch: u64,
    pub healthy: bool,
    /// Empty when healthy; the reason otherwise.
    pub detail: String,
}

impl From<&TrusteeHealth> for Health {
    fn from(h: &TrusteeHealth) -> Self {
        Self {
            trustee: h.name.clone(),
            node_id: h.node_id.clone(),
            share_index: h.share_index,
            epoch: h.epoch,
            healthy: h.status.is_healthy(),
            detail: match &h.status {
                dlocker_sdk::ShareStatus::Healthy => String::new(),
                other => one_line(&serde_json::to_value(other).map_or_else(
                    |_| "unhealthy".to_owned(),
                    |v| v["reason"].as_str().unwrap_or("unhealthy").to_owned(),
                )),
            },
        }
    }
}

/// Decodes the manifest string `backup()` returned.
pub fn decode_manifest(manifest: &str) -> Result<Manifest, WebError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(manifest.trim())
        .map_err(|e| WebError::from("manifest is not base64", &e))?;
    Manifest::decode(&bytes).map_err(|e| WebError::from("manifest", &e))
}

/// Every trustee proves it still holds its share of `manifest`.
pub async fn verify(
    set: &TrusteeSet,
    manifest: &str,
    mut sink: impl FnMut(Event),
) -> Result<Vec<Health>, WebError> {
    let manifest = decode_manifest(manifest)?;
    let report = with_events(
        async |emit: &(dyn Fn(Health) + Sync)| {
            let progress = |h: &TrusteeHealth| emit(Health::from(h));
            dlocker_sdk::protocol::verify_backup_with_progress(set, &manifest, &progress).await
        },
        |h| sink(Event::TrusteeChecked(h)),
    )
    .await;
    Ok(report.entries.iter().map(Health::from).collect())
}

/// `recover()`'s options (`API.md`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoverOptionsJs {
    /// Polling interval, milliseconds (default 2000).
    pub poll_interval_ms: Option<u64>,
    /// Give up waiting for the bank after this long (default one day).
    pub approval_timeout_secs: Option<u64>,
}

/// A failed trustee in `recover()`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct TrusteeReason {
    pub trustee: String,
    pub reason: String,
    /// The node's refusal code (`docs/protocol.md` §1), when the trustee refused with one: what
    /// a page decides on, rather than the reason's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<&'static str>,
}

/// `recover()`'s result, without the secret (the bindings add it as a `Uint8Array`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct RecoverSummary {
    pub wallet_id: String,
    pub manifest_hash: String,
    pub used: Vec<String>,
    pub faulty: Vec<TrusteeReason>,
    pub unavailable: Vec<TrusteeReason>,
}

fn reasons(v: &[dlocker_sdk::Failure]) -> Vec<TrusteeReason> {
    v.iter()
        .map(|(t, r)| TrusteeReason {
            trustee: t.clone(),
            reason: one_line(&r.to_string()),
            refusal: r.refusal().map(|c| c.as_str()),
        })
        .collect()
}

/// What `recover` hands back: the summary, the wallet data (wiped when dropped) and the new
/// device's key with the bank's approval (for `reissueDocuments`).
pub struct RecoveredWallet {
    /// For the page.
    pub summary: RecoverSummary,
    /// The wallet data.
    pub secret: Zeroizing<Vec<u8>>,
    /// The recovery's `R` and the bank approval bound to it.
    pub device: DeviceKey,
}

impl std::fmt::Debug for RecoveredWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveredWallet")
            .field("summary", &self.summary)
            .field("secret", &"REDACTED")
            .field("device", &self.device)
            .finish()
    }
}

fn recovered(r: &Recovered) -> RecoveredWallet {
    RecoveredWallet {
        summary: RecoverSummary {
            wallet_id: r.manifest.wallet_id().to_owned(),
            manifest_hash: hex::encode(r.manifest.hash().0),
            used: r.used.clone(),
            faulty: reasons(&r.faulty),
            unavailable: reasons(&r.unavailable),
        },
        secret: Zeroizing::new(r.data().expose().to_vec()),
        device: r.device_key().clone(),
    }
}

/// What `recover` tells its caller besides the page's events.
pub enum RecoverSignal {
    /// Show this to the page.
    Event(Event),
    /// The sessions are open: keep this for `cancelRecovery`.
    Handle(RecoveryHandle),
}

/// What the SDK's callbacks hand over: a progress event or a sealed state to store.
enum Msg {
    Progress(RecoverEvent),
    Saved(RecoveryStep, Vec<u8>),
}

fn step_name(step: RecoveryStep) -> &'static str {
    match step {
        RecoveryStep::SessionsOpened => "sessions_opened",
        RecoveryStep::OwnerAuthenticated => "owner_authenticated",
        RecoveryStep::Releasing => "releasing",
        _ => "other",
    }
}

/// Where a recovery starts: afresh for a wallet, or from a state saved before a reload.
pub enum Start<'a> {
    /// A new recovery of this wallet; with a state key, its sealed state is handed over after
    /// each step ([`RecoverSignal::Checkpoint`]).
    New {
        /// The wallet.
        wallet_id: &'a str,
        /// The page's state key, if it keeps the recovery's state.
        state_key: Option<&'a StateKey>,
    },
    /// A saved recovery: the sealed state a `checkpoint` carried (decoded) and its key. It goes
    /// on saving under the same key.
    Resume {
        /// The sealed state.
        saved: &'a [u8],
        /// Its key.
        key: &'a StateKey,
    },
}

/// Recovers a wallet (one passkey touch, the bank's approval, the waiting period, every share
/// verified), or resumes a saved recovery where its trustees are (no new approval, no new
/// waiting period; a touch only if fewer than t sessions were owner-authenticated).
/// `cancel` becoming `true` stops it with "recovery cancelled".
pub async fn recover(
    set: &TrusteeSet,
    start: Start<'_>,
    opts: &RecoverOptionsJs,
    passkey: &mut dyn Passkey,
    cancel: tokio::sync::watch::Receiver<bool>,
    mut sink: impl FnMut(RecoverSignal),
) -> Result<RecoveredWallet, WebError> {
    let state_key = match start {
        Start::New { state_key, .. } => state_key,
        Start::Resume { key, .. } => Some(key),
    };
    let result = with_events(
        async |emit: &(dyn Fn(Msg) + Sync)| {
            let progress = |e: RecoverEvent| emit(Msg::Progress(e));
            let save = |step: RecoveryStep, state: &[u8]| {
                emit(Msg::Saved(step, state.to_vec()));
                Ok(())
            };
            let options = RecoverOptions {
                poll_interval: Duration::from_millis(opts.poll_interval_ms.unwrap_or(2000)),
                approval_timeout: Duration::from_secs(
                    opts.approval_timeout_secs.unwrap_or(24 * 3600),
                ),
                cancel: Some(cancel),
                progress: &progress,
                checkpoint: state_key.map(|key| Checkpoint { key, save: &save }),
            };
            match start {
                Start::New { wallet_id, .. } => {
                    dlocker_sdk::protocol::recover(set, wallet_id, passkey, options).await
                }
                Start::Resume { saved, key } => {
                    dlocker_sdk::protocol::resume_recovery(set, saved, key, passkey, options).await
                }
            }
        },
        |m| match m {
            Msg::Progress(e) => {
                if let RecoverEvent::SessionsOpened { handle, .. } = &e {
                    sink(RecoverSignal::Handle(handle.clone()));
                }
                sink(RecoverSignal::Event(recover_event(
                    e,
                    dlocker_sdk::proto::time::unix_now(),
                )));
            }
            Msg::Saved(step, state) => sink(RecoverSignal::Event(Event::Checkpoint {
                step: step_name(step).to_owned(),
                state: b64(&state),
            })),
        },
    )
    .await;
    match result {
        Ok(r) => {
            let wallet = recovered(&r);
            sink(RecoverSignal::Event(Event::Released {
                used: wallet.summary.used.clone(),
            }));
            Ok(wallet)
        }
        // Stopped by `cancelRecovery()`, or the bank answered that the session is cancelled
        // (the cancel reached it before the stop did).
        Err(
            dlocker_sdk::RecoverError::Cancelled { .. }
            | dlocker_sdk::RecoverError::CancelledAtBank { .. },
        ) => Err(WebError("recovery cancelled".into())),
        Err(e) => Err(WebError::from("recovery", &e)),
    }
}

/// The handle a saved recovery's cancel needs (no trustee contacted): for a page that reloaded
/// and wants to cancel rather than resume.
pub fn saved_handle(saved: &[u8], key: &StateKey) -> Result<RecoveryHandle, WebError> {
    dlocker_sdk::protocol::saved_recovery_handle(saved, key)
        .map_err(|e| WebError::from("saved recovery", &e))
}

/// A state key from the page (32 bytes).
pub fn state_key(bytes: &[u8]) -> Result<StateKey, WebError> {
    let b: [u8; 32] = bytes.try_into().map_err(|_| {
        WebError(format!(
            "the state key must be 32 bytes, not {}",
            bytes.len()
        ))
    })?;
    Ok(StateKey::from_bytes(b))
}

/// Decodes a saved state the page stored (base64).
pub fn saved_state(text: &str) -> Result<Vec<u8>, WebError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| WebError("the saved recovery state is not base64".into()))
}

/// One trustee's cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub struct Cancelled {
    pub trustee: String,
    pub cancelled: bool,
    /// Empty when cancelled.
    pub error: String,
}

/// Cancels the recovery `handle` names at every trustee (one passkey touch). Errors when no
/// trustee cancelled (e.g. the passkey prompt was dismissed): the recovery goes on then.
pub async fn cancel(
    set: &TrusteeSet,
    handle: &RecoveryHandle,
    passkey: &mut dyn Passkey,
) -> Result<Vec<Cancelled>, WebError> {
    let outcomes: Vec<CancelOutcome> =
        dlocker_sdk::protocol::cancel_recovery(set, handle, passkey).await;
    let out: Vec<Cancelled> = outcomes
        .into_iter()
        .map(|o| Cancelled {
            trustee: o.name,
            cancelled: o.error.is_none(),
            error: o.error.as_deref().map(one_line).unwrap_or_default(),
        })
        .collect();
    if !out.is_empty() && out.iter().all(|o| !o.cancelled) {
        return Err(WebError(one_line(&format!(
            "cancel failed at every trustee: {}",
            out.iter()
                .map(|o| format!("{}: {}", o.trustee, o.error))
                .collect::<Vec<_>>()
                .join("; ")
        ))));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Documents: the bank's document locker, reached like every trustee (gRPC-Web from the page).

/// The wallet key the locker knows this wallet by. The page keeps `wallet_key` where a wallet
/// app would use its keystore; it never leaves the device.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletKey {
    /// The secret key, 64 hex characters.
    pub wallet_key: String,
    /// Its public key, hex SEC1 compressed.
    pub public_key: String,
}

impl std::fmt::Debug for WalletKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletKey")
            .field("wallet_key", &"REDACTED")
            .field("public_key", &self.public_key)
            .finish()
    }
}

impl WalletKey {
    fn of(key: &PrincipalKey) -> Self {
        Self {
            wallet_key: key.to_hex().to_string(),
            public_key: key.public_key_hex(),
        }
    }
}

/// One document as the page shows it, with the credential checked by the SDK (signature against
/// the pinned locker, issuer registry, status list, validity window, holder binding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct DocumentView {
    pub uri: String,
    pub issuer_id: String,
    pub issuer_name: String,
    pub doc_type: String,
    /// `push`, `hosted`, `pull`, `self` or `attested`.
    pub source: String,
    /// `active` or `awaiting_issuer`.
    pub state: String,
    pub credential_id: String,
    /// Every check passed.
    pub verified: bool,
    /// `valid`, `revoked`, `not_applicable` or `` (no credential yet).
    pub status: String,
    /// The wallet key the credential is bound to (hex).
    pub bound_to: String,
    pub valid_until: Option<u64>,
    pub claims: std::collections::BTreeMap<String, String>,
    /// What failed, when `verified` is false.
    pub problems: Vec<String>,
}

fn locker(set: &TrusteeSet) -> LockerClient {
    LockerClient::new(set.bank())
}

/// Reads a wallet key the page kept (64 hex characters).
pub fn wallet_key(hex: &str) -> Result<PrincipalKey, WebError> {
    PrincipalKey::from_hex(hex.trim())
        .ok_or_else(|| WebError("the wallet key is not 64 hex characters".into()))
}

async fn view(locker: &LockerClient, d: &pb::LockerDocument) -> DocumentView {
    let mut v = DocumentView {
        uri: d.document_uri.clone(),
        issuer_id: d.issuer_id.clone(),
        issuer_name: String::new(),
        doc_type: d.doc_type.clone(),
        source: d.source.clone(),
        state: d.state.clone(),
        credential_id: d.credential_id.clone(),
        verified: false,
        status: String::new(),
        bound_to: String::new(),
        valid_until: None,
        claims: Default::default(),
        problems: Vec::new(),
    };
    if d.credential_jws.is_empty() {
        return v;
    }
    match locker.verify(&d.credential_jws).await {
        Ok(r) => {
            v.verified = r.ok;
            v.issuer_name = r.issuer_name;
            v.status = match r.status {
                CredentialStatus::Valid => "valid",
                CredentialStatus::Revoked => "revoked",
                CredentialStatus::NotApplicable => "not_applicable",
                _ => "unknown",
            }
            .into();
            v.bound_to = r.holder_key;
            v.valid_until = r.valid_until;
            v.claims = r.claims;
            v.problems = r.problems.iter().map(|p| one_line(p)).collect();
        }
        Err(e) => v.problems.push(one_line(&e.to_string())),
    }
    v
}

/// Binds a new wallet key to the wallet's documents at the bank's locker (one passkey touch
/// whose challenge covers the key).
pub async fn link_documents(
    set: &TrusteeSet,
    wallet_id: &str,
    passkey: &mut dyn Passkey,
) -> Result<WalletKey, WebError> {
    let key = PrincipalKey::generate();
    HolderClient::new(locker(set), wallet_id, key.clone())
        .register(passkey)
        .await
        .map_err(|e| WebError::from("linking the document locker", &e))?;
    Ok(WalletKey::of(&key))
}

/// The wallet's documents, each credential verified.
pub async fn list_documents(
    set: &TrusteeSet,
    wallet_id: &str,
    key: &PrincipalKey,
) -> Result<Vec<DocumentView>, WebError> {
    let locker = locker(set);
    let docs = HolderClient::new(locker.clone(), wallet_id, key.clone())
        .documents()
        .await
        .map_err(|e| WebError::from("listing documents", &e))?;
    let mut out = Vec::with_capacity(docs.len());
    for d in &docs {
        out.push(view(&locker, d).await);
    }
    Ok(out)
}

/// What `reissueDocuments()` returns: the new wallet key and the locker's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Reissued {
    #[serde(flatten)]
    pub key: WalletKey,
    pub reissued: Vec<DocumentView>,
    /// Push issuers re-issue later (a task): these wait for them.
    pub awaiting_issuer: Vec<String>,
    pub revoked: usize,
    pub consents_carried_over: u32,
}

/// Right after a recovery: every document re-issued to the new device's key (the recovery's
/// `R`) with the recovery's own bank approval and one passkey touch; consents carried over.
pub async fn reissue_documents(
    set: &TrusteeSet,
    wallet_id: &str,
    device: &DeviceKey,
    passkey: &mut dyn Passkey,
) -> Result<Reissued, WebError> {
    let locker = locker(set);
    let (key, resp) = reissue_to_recovered_device(&locker, wallet_id, device, passkey, true)
        .await
        .map_err(|e| WebError::from("re-issuing the documents", &e))?;
    let mut reissued = Vec::with_capacity(resp.reissued.len());
    for d in &resp.reissued {
        reissued.push(view(&locker, d).await);
    }
    Ok(Reissued {
        key: WalletKey::of(&key),
        reissued,
        awaiting_issuer: resp
            .awaiting_issuer
            .iter()
            .map(|d| d.document_uri.clone())
            .collect(),
        revoked: resp.revoked_credential_ids.len(),
        consents_carried_over: resp.consents_carried_over,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn js(e: &Event) -> serde_json::Value {
        serde_json::to_value(e).expect("event serializes")
    }

    /// The event shapes `API.md` documents and the wallet page switches on.
    #[test]
    fn events_have_the_documented_shapes() {
        assert_eq!(
            js(&Event::from(ProgressEvent::TrusteeDone {
                name: "bank".into(),
                share_index: 1
            })),
            json!({"type": "trusteeDone", "trustee": "bank", "shareIndex": 1})
        );
        assert_eq!(
            js(&Event::from(ProgressEvent::PasskeyRequested {
                trustees: vec!["bank".into(), "t2".into()]
            })),
            json!({"type": "passkeyRequested", "trustees": ["bank", "t2"]})
        );
        assert_eq!(
            js(&recover_event(
                RecoverEvent::AwaitingApproval {
                    bank_session_id: "s-1".into()
                },
                0
            )),
            json!({"type": "awaitingApproval", "bankSessionId": "s-1"})
        );
        assert_eq!(
            js(&recover_event(
                RecoverEvent::Waiting { seconds_left: 30 },
                1_000
            )),
            json!({"type": "waiting", "secondsLeft": 30, "releaseAt": 1_030})
        );
        assert_eq!(
            js(&recover_event(
                RecoverEvent::Approved {
                    approvers: vec!["alice".into()],
                    expires_at: 7
                },
                0
            )),
            json!({"type": "approved", "approvers": ["alice"], "expiresAt": 7})
        );
        assert_eq!(
            js(&Event::TrusteeChecked(Health {
                trustee: "t2".into(),
                node_id: "n".into(),
                share_index: 2,
                epoch: 1,
                healthy: false,
                detail: "down".into()
            })),
            json!({"type": "trusteeChecked", "trustee": "t2", "nodeId": "n", "shareIndex": 2,
                   "epoch": 1, "healthy": false, "detail": "down"})
        );
        assert_eq!(
            js(&Event::Released {
                used: vec!["bank".into()]
            }),
            json!({"type": "released", "used": ["bank"]})
        );
    }

    /// A node's multi-line message reaches the page as one line.
    #[test]
    fn reasons_are_one_line() {
        let e = Event::from(ProgressEvent::TrusteeFailed {
            name: "t3".into(),
            reason: "node unavailable: refused\nat line 2".into(),
        });
        assert_eq!(js(&e)["reason"], "node unavailable: refused");
    }

    /// Every event reaches the sink in order, and the work's result comes back, with a work that
    /// yields between events (as gRPC calls do).
    #[test]
    fn with_events_delivers_every_event_in_order() {
        let mut seen = Vec::new();
        let out = futures::executor::block_on(with_events(
            async |emit: &(dyn Fn(u32) + Sync)| {
                for i in 0..5 {
                    emit(i);
                    // Yield once (and ask to be polled again), as a network call would.
                    let mut yielded = false;
                    future::poll_fn(|cx| {
                        if yielded {
                            std::task::Poll::Ready(())
                        } else {
                            yielded = true;
                            cx.waker().wake_by_ref();
                            std::task::Poll::Pending
                        }
                    })
                    .await;
                }
                emit(5);
                "done"
            },
            |e| seen.push(e),
        ));
        assert_eq!(out, "done");
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn options_parse_camel_case_and_refuse_unknown_fields() {
        let o: BackupOptions = serde_json::from_value(
            json!({"threshold": 3, "recoveryDelaySecs": 60, "userName": "alice"}),
        )
        .expect("options");
        assert_eq!(
            (o.threshold, o.recovery_delay_secs, o.user_name.as_str()),
            (3, 60, "alice")
        );
        assert!(
            serde_json::from_value::<BackupOptions>(
                json!({"threshold": 3, "recovery_delay_secs": 60, "userName": "a"})
            )
            .is_err()
        );
        let r: RecoverOptionsJs =
            serde_json::from_value(json!({"pollIntervalMs": 500})).expect("recover options");
        assert_eq!(r.poll_interval_ms, Some(500));
        assert_eq!(r.approval_timeout_secs, None);
    }

    #[test]
    fn bad_inputs_are_clear_one_line_errors() {
        let e = decode_manifest("not base64!").expect_err("garbage");
        assert!(e.0.starts_with("manifest is not base64"), "{e}");
        let e = decode_manifest("AAAA").expect_err("not a manifest");
        assert!(e.0.starts_with("manifest"), "{e}");
        let e = trustees("[[trustee]]\nname = 1").expect_err("bad toml");
        assert!(e.0.starts_with("trustees file"), "{e}");
        assert!(!e.0.contains('\n'));
    }

    #[test]
    fn recovered_wallet_debug_hides_the_secret() {
        let w = RecoveredWallet {
            summary: RecoverSummary {
                wallet_id: "w".into(),
                manifest_hash: "00".into(),
                used: vec![],
                faulty: vec![],
                unavailable: vec![],
            },
            secret: Zeroizing::new(b"seed words".to_vec()),
            device: DeviceKey::new(
                k256::SecretKey::from_slice(&[7u8; 32]).expect("a scalar"),
                vec![1, 2, 3],
            ),
        };
        let d = format!("{w:?}");
        assert!(d.contains("REDACTED") && !d.contains("seed"), "{d}");
        assert!(
            !d.contains(&"07".repeat(32)),
            "the device key is not shown: {d}"
        );
    }

    #[test]
    fn version_names_the_protocol() {
        assert!(crate::version_string().contains(dlocker_sdk::proto::PROTOCOL_VERSION));
    }
}
