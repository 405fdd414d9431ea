//! Single steps for tools and tests; an app uses [`Client`](crate::Client).
//!
//! Each function here is one ceremony (or one step of one) over a [`TrusteeSet`]: it opens a new
//! connection to every trustee on every call, has no deadline and retries nothing. The
//! [`Client`](crate::Client) methods wrap them with kept connections, a deadline and retries;
//! their options, results and errors are the crate root's.

#[cfg(doc)]
use crate::TrusteeSet;

pub use crate::authenticator::{DEFAULT_ORIGIN, OwnerAuthenticator};
pub use crate::backup::{
    MAX_WALLET_DATA_LEN, MIN_THRESHOLD, Progress, ProgressEvent, backup, backup_for,
    backup_with_checkpoint, confirm_backup,
};
pub use crate::cancel_all::cancel_all_recoveries;
pub use crate::ceremony::{challenge, creation_options, request_options, to_wire, trustee_nonce};
pub use crate::delete::{delete_backup, delete_backup_with};
#[cfg(not(target_arch = "wasm32"))]
pub use crate::passkey_change::{change_passkey, resume_passkey_change};
#[cfg(not(target_arch = "wasm32"))]
pub use crate::passkey_reset::{reset_passkey, resume_passkey_reset};
pub use crate::recover::{
    SaveRecoveryState, cancel_recovery, present_bank_cancellation, recover, resume_recovery,
};
pub use crate::rotate::{
    RECORD_FORMAT, SaveRotationState, TrusteeEpochs, epoch_status, prepare_rotation,
    resume_rotation, rollback_rotation, rotate, window_safe,
};
pub use crate::saved::saved_recovery_handle;
pub use crate::transport::{
    Channel, NodeInfo, connect, connect_channel, describe_status, node_info, node_info_with_tls,
    open_channel, recovery_client,
};
pub use crate::verify::{VerifyProgress, verify_backup, verify_backup_with_progress};
