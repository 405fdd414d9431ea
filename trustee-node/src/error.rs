//! The node's one error type and its one mapping to gRPC status codes.
//!
//! Messages say what the caller should do. Crypto failures stay vague on purpose (which check
//! failed inside an envelope or a sealed record is nobody's business), and internal failures
//! reach the caller as a generic message while the detail goes to the log.

use crate::audit_log::AuditError;
use crate::db::StoreError;
use crate::events::EventError;
use crate::recovery::session::SessionError;
use crate::staff::auth::StaffAuthError;
use dlocker_proto::refusal::NodeRefusal;
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
    /// A backup confirmation's receipts do not cover the stored manifest's trustees.
    #[error("backup confirmation refused: {0}")]
    ConfirmationRejected(String),
    /// The stored share failed to open (tampering or a wrong storage key).
    #[error("stored share failed its integrity check")]
    StoredShareCorrupt,
    /// No such recovery session (never existed, or another node's id).
    #[error("no such recovery session; open one with OpenRecovery")]
    SessionNotFound,
    /// The owner's passkey response did not verify for this ceremony's challenge.
    #[error("passkey response does not verify for this ceremony")]
    AssertionRejected,
    /// The owner-ceremony nonce list is malformed.
    #[error("malformed owner challenge: {0}")]
    ChallengeMalformed(dlocker_proto::owner_challenge::ChallengeError),
    /// The challenge's nonce list does not include this trustee.
    #[error("the challenge does not include this trustee's nonce")]
    NonceNotInChallenge,
    /// This trustee never issued (or already swept) the nonce.
    #[error("this trustee issued no such nonce; begin the ceremony again")]
    NonceUnknown,
    /// The nonce was issued for another wallet or another action.
    #[error("this trustee's nonce was issued for another wallet or action")]
    NonceMismatch,
    /// The nonce was spent by an earlier response.
    #[error("this trustee's nonce was already used; begin the ceremony again")]
    NonceUsed,
    /// The nonce expired.
    #[error("this trustee's nonce expired {ago_secs}s ago; begin the ceremony again")]
    NonceExpired {
        /// Seconds since expiry.
        ago_secs: u64,
    },
    /// The event stream was asked for without credentials.
    #[error(
        "the event stream needs credentials: a staff request signed by a staff key of this node, \
            or a client certificate listed in [tls] event_readers"
    )]
    ReaderUnauthenticated,
    /// Mutual TLS: the caller's client certificate is not listed for this service.
    #[error(
        "this client certificate may not call the {service} service (it is not listed in \
            [tls.service_clients] {key})"
    )]
    ServiceNotAllowed {
        /// The service's name.
        service: &'static str,
        /// Its key in `[tls.service_clients]`.
        key: &'static str,
    },
    /// A per-caller or per-session limit was reached.
    #[error("too many {what}; retry in {retry_after_secs} s")]
    RateLimited {
        /// What was limited.
        what: &'static str,
        /// When a retry may succeed.
        retry_after_secs: u64,
    },
    /// The caller holds as many pending owner ceremonies as one caller may.
    #[error(
        "this address holds {held} pending owner ceremonies, the most one caller may \
            ([limits] pending_ceremonies_per_caller); complete one, or retry in {retry_after_secs} \
            s when the oldest expires"
    )]
    TooManyPending {
        /// Pending ceremonies the caller holds.
        held: usize,
        /// When the first of them expires.
        retry_after_secs: u64,
    },
    /// A recovery-session rule refused the request.
    #[error("{0}")]
    Session(#[from] SessionError),
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
    /// A staff change was refused.
    #[error("{0}")]
    Roster(#[from] crate::staff::roster::RosterError),
    /// A passkey reset rule refused the request.
    #[error("{0}")]
    Reset(#[from] crate::epochs::passkey_reset::ResetError),
    /// An epoch (rotation) rule refused the request.
    #[error("{0}")]
    Epoch(#[from] crate::epochs::state::EpochError),
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

    /// The refusal code this error is answered with: the one mapping from the node's errors to
    /// what a client sees (the gRPC code follows from it).
    pub fn refusal(&self) -> NodeRefusal {
        use NodeRefusal as R;
        match self {
            NodeError::InvalidArgument { .. } | NodeError::ChallengeMalformed(_) => {
                R::InvalidRequest
            }
            NodeError::TooLarge { .. } => R::TooLarge,
            NodeError::Busy => R::NodeBusy,
            NodeError::RateLimited { .. } | NodeError::TooManyPending { .. } => R::RateLimited,
            NodeError::CeremonyNotFound => R::CeremonyNotFound,
            NodeError::CeremonyExpired { .. } => R::CeremonyExpired,
            NodeError::CeremonyUsed => R::CeremonyUsed,
            NodeError::BadManifest(_) => R::ManifestInvalid,
            NodeError::WalletMismatch => R::WalletMismatch,
            NodeError::NotATrustee => R::NotATrustee,
            NodeError::BlobHashMismatch => R::BlobHashMismatch,
            NodeError::EnvelopeRejected => R::EnvelopeRejected,
            NodeError::ShareRejected => R::ShareRejected,
            NodeError::CredentialRejected => R::CredentialRejected,
            NodeError::Conflict => R::BackupConflict,
            NodeError::WalletNotFound => R::WalletNotFound,
            NodeError::ConfirmationRejected(_) => R::ConfirmationRejected,
            NodeError::StoredShareCorrupt => R::StoredShareCorrupt,
            NodeError::SessionNotFound => R::SessionNotFound,
            NodeError::AssertionRejected => R::AssertionRejected,
            NodeError::NonceNotInChallenge => R::NonceNotInChallenge,
            NodeError::NonceUnknown => R::NonceUnknown,
            NodeError::NonceMismatch => R::NonceMismatch,
            NodeError::NonceUsed => R::NonceUsed,
            NodeError::NonceExpired { .. } => R::NonceExpired,
            NodeError::ReaderUnauthenticated => R::ReaderUnauthenticated,
            NodeError::ServiceNotAllowed { .. } => R::ServiceNotAllowed,
            NodeError::AwaitingApproval { .. } => R::AwaitingApproval,
            NodeError::Session(e) => match e {
                SessionError::Expired { .. } => R::SessionExpired,
                SessionError::Cancelled { .. } => R::SessionCancelled,
                SessionError::AlreadyReleased => R::AlreadyReleased,
                SessionError::ReleasedOtherEpoch { .. } => R::ReleasedOtherEpoch,
                SessionError::AlreadyAuthenticated => R::AlreadyAuthenticated,
                SessionError::OwnerNotAuthenticated => R::OwnerNotAuthenticated,
                SessionError::DelayNotPassed { .. } => R::DelayNotPassed,
                SessionError::ApprovalMalformed(_) => R::ApprovalMalformed,
                SessionError::ApprovalUnknownSigner
                | SessionError::ApprovalWrongWallet
                | SessionError::ApprovalWrongBank
                | SessionError::ApprovalWrongSessionKey
                | SessionError::ApprovalNotYetValid { .. } => R::ApprovalRejected,
                SessionError::ApprovalExpired { .. } => R::ApprovalExpired,
                SessionError::CancellationMismatch
                | SessionError::CancellationWrongBank
                | SessionError::CancellationStale { .. }
                | SessionError::CancellationWrongSession { .. }
                | SessionError::CancellationSpent { .. }
                | SessionError::CancellationInvalid(_) => R::CancellationRejected,
            },
            NodeError::Staff(e) => match e {
                StaffAuthError::Invalid => R::StaffRequestInvalid,
                StaffAuthError::UnknownStaff => R::StaffUnknown,
                StaffAuthError::Forbidden { .. } | StaffAuthError::WrongAction { .. } => {
                    R::StaffForbidden
                }
                StaffAuthError::WrongNode => R::StaffWrongNode,
                StaffAuthError::Replayed => R::StaffReplayed,
                StaffAuthError::Stale { .. } => R::StaffStale,
                StaffAuthError::Storage(_) => R::Internal,
            },
            NodeError::Roster(e) => {
                use crate::staff::roster::RosterError as Ro;
                match e {
                    Ro::Duplicate(_) => R::StaffExists,
                    Ro::NoSuchStaff(_) => R::StaffNotFound,
                    Ro::BadId(_) | Ro::BadRoles(..) | Ro::Limit(_) => R::StaffChangeInvalid,
                    Ro::LastAdmin | Ro::Unmeetable { .. } => R::StaffChangeRefused,
                }
            }
            NodeError::Epoch(e) => crate::epochs::state::refusal(e),
            NodeError::Reset(e) => {
                use crate::epochs::passkey_reset::ResetError as Re;
                match e {
                    Re::ApprovalRequired => R::ResetApprovalRequired,
                    Re::ProofRejected => R::ResetProofRejected,
                    Re::ApprovalWrongCredential { .. } => R::ApprovalRejected,
                    Re::ApprovalSpent => R::ResetApprovalSpent,
                    Re::RequestNotFound => R::ResetRequestNotFound,
                    Re::RequestExpired { .. } => R::ResetRequestExpired,
                }
            }
            NodeError::Storage(_)
            | NodeError::Audit(_)
            | NodeError::Events(_)
            | NodeError::Internal(_) => R::Internal,
        }
    }

    /// The gRPC code this error maps to (its refusal's).
    pub fn code(&self) -> Code {
        self.refusal().grpc_code()
    }
}

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        let refusal = e.refusal();
        let message = match &e {
            NodeError::Storage(_)
            | NodeError::Audit(_)
            | NodeError::Events(_)
            | NodeError::Staff(StaffAuthError::Storage(_))
            | NodeError::Internal(_) => {
                tracing::error!(error = %e, "internal error");
                "internal error; the node operator has the details in the log".to_owned()
            }
            NodeError::StoredShareCorrupt => {
                tracing::error!("stored share failed its integrity check");
                e.to_string()
            }
            _ => e.to_string(),
        };
        refusal.status(message)
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
            (
                NodeError::ConfirmationRejected("receipt".into()),
                Code::PermissionDenied,
            ),
            (NodeError::StoredShareCorrupt, Code::DataLoss),
            (NodeError::Internal("secret detail".into()), Code::Internal),
            (NodeError::SessionNotFound, Code::NotFound),
            (NodeError::AssertionRejected, Code::Unauthenticated),
            (NodeError::ReaderUnauthenticated, Code::Unauthenticated),
            (
                NodeError::ChallengeMalformed(
                    dlocker_proto::owner_challenge::ChallengeError::Count(0),
                ),
                Code::InvalidArgument,
            ),
            (NodeError::NonceNotInChallenge, Code::PermissionDenied),
            (NodeError::NonceUnknown, Code::PermissionDenied),
            (NodeError::NonceMismatch, Code::PermissionDenied),
            (
                NodeError::ServiceNotAllowed {
                    service: "Staff",
                    key: "staff",
                },
                Code::PermissionDenied,
            ),
            (NodeError::NonceUsed, Code::FailedPrecondition),
            (
                NodeError::NonceExpired { ago_secs: 3 },
                Code::FailedPrecondition,
            ),
            (
                NodeError::RateLimited {
                    what: "ceremonies",
                    retry_after_secs: 2,
                },
                Code::ResourceExhausted,
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
                    by: crate::recovery::session::Canceller::Owner,
                }),
                Code::FailedPrecondition,
            ),
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
            (
                NodeError::Reset(crate::epochs::passkey_reset::ResetError::ApprovalRequired),
                Code::Unauthenticated,
            ),
            (
                NodeError::Reset(crate::epochs::passkey_reset::ResetError::ProofRejected),
                Code::Unauthenticated,
            ),
            (
                NodeError::Reset(crate::epochs::passkey_reset::ResetError::ApprovalSpent),
                Code::FailedPrecondition,
            ),
            (
                NodeError::Reset(crate::epochs::passkey_reset::ResetError::RequestNotFound),
                Code::NotFound,
            ),
            (
                NodeError::Reset(crate::epochs::passkey_reset::ResetError::RequestExpired {
                    expires_at: 3,
                }),
                Code::FailedPrecondition,
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
        let mut refusals = std::collections::HashSet::new();
        for (e, code) in cases {
            let refusal = e.refusal();
            refusals.insert(refusal);
            let s = Status::from(e);
            assert_eq!(s.code(), code, "{}", s.message());
            assert_eq!(
                NodeRefusal::of_status(&s),
                Some(refusal),
                "every refusal carries its code: {}",
                s.message()
            );
            assert!(
                !s.message().contains("secret detail"),
                "internal detail leaked: {}",
                s.message()
            );
        }
        assert!(refusals.len() > 30, "the cases tell refusals apart");
        assert_eq!(
            Status::from(NodeError::Session(SessionError::DelayNotPassed {
                release_not_before: 10,
                remaining_secs: 5,
            }))
            .metadata()
            .get(dlocker_proto::refusal::METADATA_KEY)
            .and_then(|v| v.to_str().ok()),
            Some("delay_not_passed")
        );
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
