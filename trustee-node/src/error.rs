//! The node's one error type and its one mapping to gRPC status codes.
//!
//! Messages say what the caller should do. Crypto failures stay vague on purpose (which check
//! failed inside an envelope or a sealed record is nobody's business), and internal failures
//! reach the caller as a generic message while the detail goes to the log.

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
            NodeError::Storage(_) | NodeError::Internal(_) => Code::Internal,
        }
    }
}

impl From<NodeError> for Status {
    fn from(e: NodeError) -> Status {
        let code = e.code();
        match &e {
            NodeError::Storage(_) | NodeError::Internal(_) => {
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
