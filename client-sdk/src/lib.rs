//! dLocker client SDK: what a wallet app links to back up a wallet secret across independent
//! trustee nodes, check the backup is still healthy, recover it on a new device and end it.
//!
//! Start with [`Client`]: built once ([`Client::builder`]: the trustees file with every
//! trustee's *pinned* identity key, timeouts, an overall deadline, retries with backoff, TLS
//! roots from memory or files), it keeps one connection per trustee and offers every ceremony of
//! a wallet's life as one method. Errors ([`Error`]) say whether calling again can help
//! ([`Error::is_retryable`]) and name every trustee that failed with a typed reason
//! ([`Error::failures`], [`TrusteeFailure`]). The owner's passkey is the app's async callback over
//! WebAuthn JSON ([`Passkey`]: a browser's `navigator.credentials`, a mobile platform's passkey
//! API); every owner ceremony asks it ONCE whatever the number of trustees (`docs/protocol.md`
//! §12a).
//!
//! The whole life cycle (`examples/lifecycle.rs` runs it against real nodes):
//!
//! ```no_run
//! # async fn run(keystore_key: [u8; 32]) -> Result<(), Box<dyn std::error::Error>> {
//! use dlocker_sdk::{
//!     BackupPolicy, Checkpoint, Client, OwnerIdentity, RecoverOptions, ResetOptions,
//!     SoftwareAuthenticator, StateKey, WalletId,
//! };
//! use std::time::Duration;
//! const APP_CA_BUNDLE: &[u8] = b"-----BEGIN CERTIFICATE-----\n..."; // shipped with the app
//! let client = Client::builder()
//!     .trustees_file("trustees.toml")
//!     .tls_roots_pem(APP_CA_BUNDLE)
//!     .deadline(Duration::from_secs(90))
//!     .build()?;
//! let wallet = WalletId::parse("wallet-42")?;
//! let mut passkey = SoftwareAuthenticator::new(); // the platform passkey in a real app
//!
//! // Back up: a fresh random secret split 3-of-n, one touch registers the passkey everywhere.
//! let policy = BackupPolicy { threshold: 3, recovery_delay_secs: 86_400 };
//! let prepared = client.prepare_backup(&wallet, b"seed words", policy)?;
//! let owner = OwnerIdentity { user_name: "alice", customer_reference: None };
//! client.backup(&prepared, &owner, &mut passkey, None).await?;
//! // Every trustee proves it still holds a good share; each reports its epochs.
//! assert!(client.verify(prepared.manifest()).await?.all_healthy());
//! let _epochs = client.status(&wallet).await?;
//!
//! // A new phone: bank approval + one touch + the waiting period. The sealed state is saved at
//! // every step; if the app is killed, `resume_recovery` picks up where the trustees are.
//! let key = StateKey::from_bytes(keystore_key); // the device keystore's key
//! let state = std::path::Path::new("recovery.state");
//! let save = |_step, blob: &[u8]| std::fs::write(state, blob).map_err(|e| e.to_string());
//! let opts = RecoverOptions {
//!     checkpoint: Some(Checkpoint { key: &key, save: &save }),
//!     ..RecoverOptions::default()
//! };
//! let recovered = match std::fs::read(state) {
//!     Ok(saved) => client.resume_recovery(&saved, &key, &mut passkey, opts).await?,
//!     Err(_) => client.recover(&wallet, &mut passkey, opts).await?,
//! };
//! std::fs::remove_file(state)?; // it holds the session secret: done with it
//! let _seed = recovered.data();
//!
//! // Someone else opened a recovery (the bank's notification says so): close them all.
//! client.cancel_all_recoveries(&wallet, &mut passkey).await?;
//! // A new passkey (two touches), then the end of the wallet (one touch, signed receipts).
//! let mut new_passkey = SoftwareAuthenticator::new();
//! client.change_passkey(&wallet, &mut passkey, &mut new_passkey).await?;
//! // That passkey lost, the phone still holds the wallet: its secret k and the bank's approval
//! // (staff check the customer; the call files the request and waits) reset it.
//! let mut reset_passkey = SoftwareAuthenticator::new();
//! let k = recovered.secret();
//! client.reset_passkey(&wallet, k, &mut reset_passkey, ResetOptions::default()).await?;
//! match client.delete(&wallet, &mut reset_passkey).await {
//!     Ok(report) => assert_eq!(report.receipts().count(), client.trustees().len()),
//!     Err(e) if e.is_retryable() => { /* a trustee was down: call again later */ }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(()) }
//! ```
//!
//! A rotation ([`Client::rotate`], [`Client::resume_rotation`]) re-splits the wallet to a new
//! epoch (refresh the shares, change the threshold, replace trustees). Bank staff use
//! [`StaffClient`] / [`StaffKey`]; the document locker is [`documents`].
//!
//! **Low level.** The single steps the [`Client`] wraps live in [`protocol`], for tools and
//! tests ([`protocol::backup()`], [`protocol::recover()`], [`protocol::rotate()`],
//! [`protocol::connect`], ...): they take a [`TrusteeSet`] and open a new connection to every
//! trustee on every call. An app uses [`Client`].
#![warn(missing_docs)]

mod authenticator;
mod backup;
mod cancel_all;
mod ceremony;
mod client;
mod delete;
pub mod documents;
mod error;
// The passkey change checks a new registration locally with webauthn-rs, a native crate; the
// browser build leaves it out.
#[cfg(not(target_arch = "wasm32"))]
mod passkey_change;
// The reset checks the new registration as the passkey change does.
#[cfg(not(target_arch = "wasm32"))]
mod passkey_reset;
pub mod protocol;
mod recover;
mod rotate;
mod runtime;
mod saved;
pub mod staff;
mod transport;
mod trustees;
mod verify;
mod wallet_action;

#[cfg(feature = "software-passkey")]
pub use authenticator::SoftwareAuthenticator;
pub use authenticator::{MaybeSend, Passkey, PasskeyFuture};
pub use backup::{
    BackupCheckpoint, BackupPolicy, BackupReceipts, OwnerIdentity, PreparedBackup, TrusteeReceipt,
};
pub use cancel_all::{CancelAllError, CancelAllReport, TrusteeCancelAll};
pub use client::{
    BuildError, Client, ClientBuilder, DEFAULT_DEADLINE, EpochInfo, Error, RetryPolicy,
    TrusteeStatus,
};
pub use delete::{DeleteError, DeleteOptions, DeleteReport, TrusteeErasure};
pub use dlocker_proto::client_state::StateKey;
pub use dlocker_proto::ids::WalletId;
pub use error::{AuthError, BackupError, ConnectError, Failure, TrusteeFailure, TrusteesError};
#[cfg(not(target_arch = "wasm32"))]
pub use passkey_change::{PasskeyChangeError, PasskeyChangeReport, TrusteePasskey};
#[cfg(not(target_arch = "wasm32"))]
pub use passkey_reset::{
    PasskeyResetError, PasskeyResetReport, PendingReset, ResetCheckpoint, ResetEvent, ResetOptions,
};
pub use recover::{
    CancelOutcome, Checkpoint, DeviceKey, RecoverError, RecoverEvent, RecoverOptions, Recovered,
    RecoveryHandle, RecoveryStep, TrusteeSession,
};
pub use rotate::{
    RotateError, RotateEvent, RotateOptions, RotationCheckpoint, RotationPhase, RotationRecord,
    RotationSource, RotationStep, TrusteeProgress, TrusteeRole,
};
pub use saved::SavedStateError;
pub use staff::{StaffClient, StaffError, StaffKey};
pub use trustees::{Role, TlsFiles, TrusteeInfo, TrusteeSet};
pub use verify::{ShareStatus, TrusteeHealth, VerifyReport};

/// The protocol crate, re-exported so apps use the same `Manifest` and key types.
pub use dlocker_proto as proto;
