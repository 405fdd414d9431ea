//! The node's one error type and its one mapping to gRPC status codes.
//!
//! Messages say what the caller should do. Crypto failures stay vague on purpose (which check
//! failed inside an envelope or a sealed record is nobody's business), and internal failures
//! reach the caller as a generic message while the detail goes to the log.

use crate::audit_log::AuditError;
use crate::events::EventError;
use crate::recovery_session::SessionError;
use crate::staff_auth::StaffAuthError;
use crate::storage::StoreError;
use tonic::{Code, Status};

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A request field is malformed or out of bounds.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A field exceeds a configured size limit.
    #[error("{what} is {size} bytes; this node accepts at most {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Too many ceremonies are open.
    #[error("too many enrollments in progress; retry in a few minutes")]
    Busy,
    /// No such ceremony (never existed, or swept after expiry).
    #[error("no such enrollment ceremony; start again with BeginEnrollment")]
    CeremonyNotFound,
    /// The ceremony expired.
    #[error("enrollment ceremony expired {ago_secs}s ago; start again with BeginEnrollment")]
    CeremonyExpired {
        /// Seconds since expiry.
        ago_secs: u64,
    },
    /// The ceremony was already used by a different request.
    #[error("enrollment ceremony already used; start again with BeginEnrollment")]
    CeremonyUsed,
    /// The manifest does not decode or validate.
    #[error("malformed manifest: {0}")]
    BadManifest(dlocker_proto::DecodeError),
    /// The manifest is for another wallet than the ceremony.
    #[error("manifest wallet id does not match the enrollment ceremony")]
    WalletMismatch,
    /// The manifest does not list this node (with its key).
    #[error("manifest does not list this node")]
    NotATrustee,
    /// The blob's hash is not the manifest's.
    #[error("blob does not match the manifest's blob hash")]
    BlobHashMismatch,
    /// The share envelope is malformed or does not open with this node's key and context.
    #[error("share envelope does not open for this node")]
    EnvelopeRejected,
    /// The share fails Feldman verification.
    #[error("share does not match the manifest commitments")]
    ShareRejected,
    /// The WebAuthn credential is malformed or fails registration checks.
    #[error("passkey credential rejected")]
    CredentialRejected,
    /// A different backup is already stored for this wallet.
    #[error("a different backup is already stored for this wallet")]
    Conflict,
    /// The node holds nothing for this wallet.
    #[error("this node holds no backup for this wallet")]
    WalletNotFound,
    /// The stored share failed to open (tampering or a wrong storage key).
    #[error("stored share failed its integrity check")]
    StoredShareCorrupt,
    /// No such recovery session (never existed, or another node's id).
    #[error("no such recovery session; open one with OpenRecovery")]
    SessionNotFound,
    /// A live session already exists for the wallet.
    #[error("a recovery session is already open ({session_id}); cancel it first")]
    SessionAlreadyOpen {
        /// The live session.
        session_id: String,
    },
    /// Too many failed passkey assertions: recovery is locked.
    #[error(
        "recovery is locked after {failures} failed passkey attempts until {until} ({remaining_secs} s left)"
    )]
    WalletLocked {
        /// The limit that was reached.
        failures: u32,
        /// Unix seconds.
        until: u64,
        /// Seconds left.
        remaining_secs: u64,
    },
    /// The passkey assertion did not verify.
    #[error("passkey assertion rejected ({attempts_left} attempts left)")]
    AssertionRejected {
        /// Attempts before recovery locks.
        attempts_left: u32,
    },
    /// A recovery-session rule refused the request.
    #[error("{0}")]
    Session(#[from] SessionError),
    /// Owner cancellation needs BeginOwnerCancel's challenge first.
    #[error("no owner cancellation challenge for this session; call BeginOwnerCancel first")]
    CancelNotBegun,
    /// The bank's staff policy does not hold yet.
    #[error("awaiting bank approval ({approvers} of {required} staff)")]
    AwaitingApproval {
        /// Distinct staff approvals so far.
        approvers: usize,
        /// Needed.
        required: u32,
    },
    /// A staff request was refused.
    #[error("{0}")]
    Staff(#[from] StaffAuthError),
    /// An epoch (rotation) rule refused the request.
    #[error("{0}")]
    Epoch(#[from] crate::epoch::EpochError),
    /// The audit log failed.
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
    /// The event outbox failed.
    #[error("event outbox: {0}")]
    Events(#[from] EventError),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StoreError),
    /// Anything else that is the node's fault.
    #[error("internal: {0}")]
    Internal(String),
}

impl NodeError {
    /// An [`NodeError::InvalidArgument`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        NodeError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// The gRPC code this error maps to.
    pub fn code(&self) -> Code {
        match self {
            NodeError::InvalidArgument { .. }
            | NodeError::BadManifest(_)
            | NodeError::WalletMismatch
            | NodeError::NotATrustee
            | NodeError::BlobHashMismatch
            | NodeError::EnvelopeRejected
            | NodeError::ShareRejected
            | NodeError::CredentialRejected => Code::InvalidArgument,
            NodeError::TooLarge { .. } | NodeError::Busy => Code::ResourceExhausted,
            NodeError::CeremonyNotFound | NodeError::WalletNotFound => Code::NotFound,
            NodeError::CeremonyExpired { .. } | NodeError::CeremonyUsed => Code::FailedPrecondition,
            NodeError::Conflict => Code::AlreadyExists,
            NodeError::StoredShareCorrupt => Code::DataLoss,
            NodeError::SessionNotFound => Code::NotFound,
            NodeError::SessionAlreadyOpen { .. } => Code::AlreadyExists,
            NodeError::WalletLocked { .. } => Code::PermissionDenied,
            NodeError::AssertionRejected { .. } => Code::Unauthenticated,
            NodeError::CancelNotBegun | NodeError::AwaitingApproval { .. } => {
                Code::FailedPrecondition
            }
            NodeError::Session(e) => match e {
                SessionError::Expired { .. }
                | SessionError::Cancelled { .. }
                | SessionError::AlreadyReleased
                | SessionError::AlreadyAuthenticated
                | SessionError::DelayNotPassed { .. } => Code::FailedPrecondition,
                SessionError::ApprovalMalformed(_) => Code::InvalidArgument,
                SessionError::OwnerNotAuthenticated
                | SessionError::ApprovalUnknownSigner
                | SessionError::ApprovalWrongWallet
                | SessionError::ApprovalWrongSessionKey
                | SessionError::ApprovalExpired { .. }
                | SessionError::ApprovalNotYetValid { .. }
                | SessionError::CancellationMismatch
                | SessionError::CancellationInvalid(_) => Code::PermissionDenied,
            },
            NodeError::Staff(e) => match e {
                StaffAuthError::Invalid => Code::InvalidArgument,
                StaffAuthError::UnknownStaff
                | StaffAuthError::Forbidden { .. }
                | StaffAuthError::WrongAction { .. }
                | StaffAuthError::WrongNode
                | StaffAuthError::Replayed => Code::PermissionDenied,
                StaffAuthError::Stale { .. } => Code::Unauthenticated,
                StaffAuthError::Storage(_) => Code::Internal,
            },
            NodeError::Epoch(e) => crate::epoch::status_code(e),
            NodeError::Storage(_)
            | NodeError::Audit(_)
            | NodeError::Events(_)
            | NodeError::Internal(_) => Code::Internal,
        }
    }
}

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        let code = e.code();
        match &e {
            NodeError::Storage(_)
            | NodeError::Audit(_)
            | NodeError::Events(_)
            | NodeError::Staff(StaffAuthError::Storage(_))
            | NodeError::Internal(_) => {
                tracing::error!(error = %e, "internal error");
                Status::new(
                    code,
                    "internal error; the node operator has the details in the log",
                )
            }
            NodeError::StoredShareCorrupt => {
                tracing::error!("stored share failed its integrity check");
                Status::new(code, e.to_string())
            }
            _ => Status::new(code, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        let cases: Vec<(NodeError, Code)> = vec![
            (NodeError::invalid("wallet_id", "x"), Code::InvalidArgument),
            (
                NodeError::TooLarge {
                    what: "blob",
                    size: 2,
                    max: 1,
                },
                Code::ResourceExhausted,
            ),
            (NodeError::Busy, Code::ResourceExhausted),
            (NodeError::CeremonyNotFound, Code::NotFound),
            (
                NodeError::CeremonyExpired { ago_secs: 3 },
                Code::FailedPrecondition,
            ),
            (NodeError::CeremonyUsed, Code::FailedPrecondition),
            (
                NodeError::BadManifest(dlocker_proto::DecodeError::Truncated),
                Code::InvalidArgument,
            ),
            (NodeError::WalletMismatch, Code::InvalidArgument),
            (NodeError::NotATrustee, Code::InvalidArgument),
            (NodeError::BlobHashMismatch, Code::InvalidArgument),
            (NodeError::EnvelopeRejected, Code::InvalidArgument),
            (NodeError::ShareRejected, Code::InvalidArgument),
            (NodeError::CredentialRejected, Code::InvalidArgument),
            (NodeError::Conflict, Code::AlreadyExists),
            (NodeError::WalletNotFound, Code::NotFound),
            (NodeError::StoredShareCorrupt, Code::DataLoss),
            (NodeError::Internal("secret detail".into()), Code::Internal),
            (NodeError::SessionNotFound, Code::NotFound),
            (
                NodeError::SessionAlreadyOpen {
                    session_id: "s".into(),
                },
                Code::AlreadyExists,
            ),
            (
                NodeError::WalletLocked {
                    failures: 5,
                    until: 9,
                    remaining_secs: 3,
                },
                Code::PermissionDenied,
            ),
            (
                NodeError::AssertionRejected { attempts_left: 2 },
                Code::Unauthenticated,
            ),
            (
                NodeError::Session(SessionError::DelayNotPassed {
                    release_not_before: 10,
                    remaining_secs: 5,
                }),
                Code::FailedPrecondition,
            ),
            (
                NodeError::Session(SessionError::OwnerNotAuthenticated),
                Code::PermissionDenied,
            ),
            (
                NodeError::Session(SessionError::ApprovalWrongSessionKey),
                Code::PermissionDenied,
            ),
            (
                NodeError::Session(SessionError::ApprovalMalformed("x".into())),
                Code::InvalidArgument,
            ),
            (
                NodeError::Session(SessionError::Cancelled {
                    by: crate::recovery_session::Canceller::Owner,
                }),
                Code::FailedPrecondition,
            ),
            (NodeError::CancelNotBegun, Code::FailedPrecondition),
            (
                NodeError::AwaitingApproval {
                    approvers: 1,
                    required: 2,
                },
                Code::FailedPrecondition,
            ),
            (
                NodeError::Staff(StaffAuthError::Replayed),
                Code::PermissionDenied,
            ),
            (
                NodeError::Staff(StaffAuthError::Stale { skew_secs: 300 }),
                Code::Unauthenticated,
            ),
            (
                NodeError::Staff(StaffAuthError::Invalid),
                Code::InvalidArgument,
            ),
            (NodeError::Audit(AuditError::Corrupt(3)), Code::Internal),
            (
                NodeError::Storage(StoreError::Corrupt {
                    tree: "shares",
                    reason: "secret detail".into(),
                }),
                Code::Internal,
            ),
        ];
        for (e, code) in cases {
            let s = Status::from(e);
            assert_eq!(s.code(), code, "{}", s.message());
            assert!(
                !s.message().contains("secret detail"),
                "internal detail leaked: {}",
                s.message()
            );
        }
        assert_eq!(
            Status::from(NodeError::NotATrustee).message(),
            "manifest does not list this node"
        );
        assert_eq!(
            Status::from(NodeError::EnvelopeRejected).message(),
            "share envelope does not open for this node"
        );
        assert_eq!(
            Status::from(NodeError::ShareRejected).message(),
            "share does not match the manifest commitments"
        );
        assert_eq!(
            Status::from(NodeError::StoredShareCorrupt).message(),
            "stored share failed its integrity check"
        );
    }
}
