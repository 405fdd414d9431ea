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
//! - [`rotate()`]: re-split the wallet into a new epoch (refresh shares, change the threshold,
//!   replace trustees) in two phases that can be resumed or rolled back from any interruption
//!   ([`resume_rotation`], [`rollback_rotation`]); [`epoch_status`] shows each trustee's epochs;
//! - [`StaffClient`] / [`StaffKey`]: bank staff list, approve and cancel recoveries;
//! - [`OwnerAuthenticator`]: the owner's passkey, supplied by the app
//!   ([`SoftwareAuthenticator`] is for tests and demos only). A wallet has one passkey
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
#![warn(missing_docs)]

pub mod authenticator;
pub mod backup;
pub mod ceremony;
pub mod documents;
pub mod error;
pub mod recover;
pub mod rotate;
pub mod staff;
pub mod transport;
pub mod trustees;
pub mod verify;

pub use authenticator::{OwnerAuthenticator, SoftwareAuthenticator};
pub use backup::{
    BackupPolicy, BackupReceipts, OwnerIdentity, PreparedBackup, ProgressEvent, TrusteeReceipt,
    backup, backup_for,
};
pub use error::{AuthError, BackupError, ConnectError, TrusteesError};
pub use recover::{
    CancelOutcome, RecoverError, RecoverEvent, RecoverOptions, Recovered, RecoveryHandle,
    TrusteeSession, cancel_recovery, present_bank_cancellation, recover,
};
pub use rotate::{
    RotateError, RotateEvent, RotateOptions, RotationPhase, RotationRecord, RotationSource,
    RotationStep, epoch_status, resume_rotation, rollback_rotation, rotate,
};
pub use staff::{StaffClient, StaffError, StaffKey};
pub use transport::{NodeInfo, connect, node_info};
pub use trustees::{Role, TlsFiles, TrusteeInfo, TrusteeSet};
pub use verify::{ShareStatus, TrusteeHealth, VerifyReport, verify_backup};

/// The protocol crate, re-exported so apps use the same `Manifest` and key types.
pub use dlocker_proto as proto;
