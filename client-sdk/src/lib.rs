//! dLocker client SDK: what a wallet app links to back up a wallet secret across independent
//! trustee nodes, check the backup is still healthy and recover it on a new device.
//!
//! The surface is small on purpose:
//! - [`TrusteeSet`]: the trustees and their *pinned* identity keys (a TOML file);
//! - [`PreparedBackup::new`] + [`backup()`]: split a fresh random secret `t`-of-`n`, encrypt the
//!   wallet data under it, deposit one share per trustee, collect verified receipts;
//! - [`verify_backup`]: every trustee proves it still holds a good share;
//! - [`recover()`]: bank approval + owner passkey + waiting period, every share verified, lying
//!   trustees named; [`cancel_recovery`] / [`present_bank_cancellation`] stop one;
//! - surviving the app being killed: with a [`Checkpoint`] ([`RecoverOptions::checkpoint`]) the
//!   app receives the recovery's state after each step, sealed under its keystore key
//!   ([`StateKey`]); [`resume_recovery`] finishes it from the trustees' session status without a
//!   second approval or waiting period. A backup likewise ([`backup_with_checkpoint`],
//!   [`PreparedBackup::seal`] / [`PreparedBackup::open_sealed`]);
//! - [`rotate()`]: re-split the wallet into a new epoch (refresh shares, change the threshold,
//!   replace trustees) in two phases that can be resumed or rolled back from any interruption
//!   ([`resume_rotation`], [`rollback_rotation`]); [`epoch_status`] shows each trustee's epochs;
//! - [`delete_backup`]: erase the wallet at every trustee with one passkey touch, each trustee
//!   returning a signed erasure receipt; call again to complete a partial delete;
//! - [`change_passkey`] / [`resume_passkey_change`]: replace the wallet's passkey at every
//!   trustee (the new one registers, the current one authorizes it);
//! - [`StaffClient`] / [`StaffKey`]: bank staff list, approve and cancel recoveries;
//! - [`Passkey`]: the owner's passkey, supplied by the app as an async callback over WebAuthn
//!   JSON (a browser's `navigator.credentials`, a mobile platform's passkey API); every
//!   synchronous [`OwnerAuthenticator`] is one ([`SoftwareAuthenticator`] is for tests and demos
//!   only). A wallet has one passkey
//!   credential, and every owner ceremony asks it once, whatever the number of trustees
//!   ([`ceremony`], `docs/protocol.md` §12a): one touch for a backup, one for a recovery, one for
//!   a cancel, at most two for a rotation, one for a locker holder action.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use dlocker_sdk::{BackupPolicy, PreparedBackup, SoftwareAuthenticator, TrusteeSet};
//! let trustees = TrusteeSet::load("trustees.toml")?;
//! let policy = BackupPolicy { threshold: 3, recovery_delay_secs: 86_400 };
//! let prepared = PreparedBackup::new(&trustees, "wallet-42", b"seed words", policy)?;
//! let mut auth = SoftwareAuthenticator::new(); // a platform passkey in a real app
//! let receipts = dlocker_sdk::backup(&trustees, &prepared, "alice", &mut auth, &|_| {}).await?;
//! assert_eq!(receipts.receipts.len(), trustees.len());
//! let report = dlocker_sdk::verify_backup(&trustees, prepared.manifest()).await;
//! assert!(report.all_healthy());
//! # Ok(()) }
//! ```
//!
//! The whole life cycle on a new phone, the app possibly killed at any step in between (the
//! sealed state is all it keeps; `examples/resumable.rs` runs it against real nodes):
//!
//! ```no_run
//! # async fn run(keystore_key: [u8; 32]) -> Result<(), Box<dyn std::error::Error>> {
//! use dlocker_sdk::{Checkpoint, RecoverOptions, SoftwareAuthenticator, StateKey, TrusteeSet};
//! let trustees = TrusteeSet::load("trustees.toml")?;
//! let key = StateKey::from_bytes(keystore_key); // the device keystore's key
//! let mut passkey = SoftwareAuthenticator::new(); // a platform passkey in a real app
//! let state = std::path::Path::new("recovery.state");
//! let save = |_step, blob: &[u8]| std::fs::write(state, blob).map_err(|e| e.to_string());
//! let opts = RecoverOptions {
//!     checkpoint: Some(Checkpoint { key: &key, save: &save }),
//!     ..RecoverOptions::default()
//! };
//! let recovered = match std::fs::read(state) {
//!     // Killed earlier: pick up where the trustees are (same approval, same release time).
//!     Ok(saved) => dlocker_sdk::resume_recovery(&trustees, &saved, &key, &mut passkey, opts).await?,
//!     Err(_) => dlocker_sdk::recover(&trustees, "wallet-42", &mut passkey, opts).await?,
//! };
//! std::fs::remove_file(state)?; // it holds the session secret: done with it
//! let _seed = recovered.data();
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod authenticator;
pub mod backup;
pub mod cancel_all;
pub mod ceremony;
pub mod client;
pub mod delete;
// The locker (documents) and the passkey change's local check of a registration need native
// crates (the locker's tokio client, webauthn-rs over OpenSSL); the browser build leaves them out.
#[cfg(not(target_arch = "wasm32"))]
pub mod documents;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod passkey_change;
pub mod recover;
pub mod rotate;
mod runtime;
pub mod saved;
pub mod staff;
pub mod transport;
pub mod trustees;
pub mod verify;

#[cfg(feature = "software-passkey")]
pub use authenticator::SoftwareAuthenticator;
pub use authenticator::{MaybeSend, OwnerAuthenticator, Passkey, PasskeyFuture};
pub use backup::{
    BackupCheckpoint, BackupPolicy, BackupReceipts, OwnerIdentity, PreparedBackup, ProgressEvent,
    TrusteeReceipt, backup, backup_for, backup_with_checkpoint,
};
pub use cancel_all::{CancelAllError, CancelAllReport, TrusteeCancelAll, cancel_all_recoveries};
pub use client::{BuildError, Client, ClientBuilder, EpochInfo, Error, RetryPolicy, TrusteeStatus};
pub use delete::{DeleteError, DeleteReport, TrusteeErasure, delete_backup};
pub use dlocker_proto::client_state::StateKey;
pub use dlocker_proto::ids::WalletId;
pub use error::{AuthError, BackupError, ConnectError, Failure, TrusteeFailure, TrusteesError};
#[cfg(not(target_arch = "wasm32"))]
pub use passkey_change::{
    PasskeyChangeError, PasskeyChangeReport, TrusteePasskey, change_passkey, resume_passkey_change,
};
pub use recover::{
    CancelOutcome, Checkpoint, RecoverError, RecoverEvent, RecoverOptions, Recovered,
    RecoveryHandle, RecoveryStep, TrusteeSession, cancel_recovery, present_bank_cancellation,
    recover, resume_recovery,
};
pub use rotate::{
    RotateError, RotateEvent, RotateOptions, RotationPhase, RotationRecord, RotationSource,
    RotationStep, epoch_status, resume_rotation, rollback_rotation, rotate,
};
pub use saved::{SavedStateError, saved_recovery_handle};
pub use staff::{StaffClient, StaffError, StaffKey};
pub use transport::{NodeInfo, connect, node_info};
pub use trustees::{Role, TlsFiles, TrusteeInfo, TrusteeSet};
pub use verify::{ShareStatus, TrusteeHealth, VerifyReport, verify_backup};

/// The protocol crate, re-exported so apps use the same `Manifest` and key types.
pub use dlocker_proto as proto;
