//! The locker's errors and their one mapping to gRPC status codes (DESIGN §7).

use crate::error::FormatError;
use crate::refusal::{METADATA_KEY, RefusalCode};
use tonic::{Code, Status};

/// Everything a locker request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LockerError {
    /// A request field is malformed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A credential or key in the request does not parse or verify.
    #[error("{what}: {source}")]
    Format {
        /// What was being checked.
        what: &'static str,
        /// Why it failed.
        source: FormatError,
    },
    /// A size or count limit.
    #[error("{0}")]
    Limit(String),
    /// The signed request does not authenticate the caller (bad or missing signature, wrong
    /// key, stale).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed (not approved, suspended, replayed, wrong holder).
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// Not possible in the current state.
    #[error("{0}")]
    Precondition(String),
    /// Another service (an issuer repository) could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// A fetch refusal, with its machine-readable code.
    #[error("{message}")]
    Refused {
        /// The code.
        code: RefusalCode,
        /// For the requester.
        message: String,
    },
    /// An error from the host node (passkey, staff request), already a status.
    #[error("{}", .0.message())]
    Host(Status),
    /// Storage failed.
    #[error("locker storage: {0}")]
    Storage(#[from] dlocker_store::Error),
    /// A stored record does not decode.
    #[error("corrupt locker record ({what}): {reason}")]
    Corrupt {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Anything else that is the locker's fault.
    #[error("internal: {0}")]
    Internal(String),
}

impl LockerError {
    /// An [`LockerError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
    /// A [`LockerError::Corrupt`].
    pub fn corrupt(what: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            what,
            reason: e.to_string(),
        }
    }
    /// A [`LockerError::Format`].
    pub fn format(what: &'static str) -> impl FnOnce(FormatError) -> Self {
        move |source| Self::Format { what, source }
    }
    /// A fetch refusal.
    pub fn refused(code: RefusalCode, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } | Self::Format { .. } => Code::InvalidArgument,
            Self::Limit(_) => Code::ResourceExhausted,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::Forbidden(_) => Code::PermissionDenied,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Precondition(_) => Code::FailedPrecondition,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Refused { code, .. } => match code {
                RefusalCode::RequesterUnknown | RefusalCode::BadRequestSignature => {
                    Code::Unauthenticated
                }
                RefusalCode::RequesterNotApproved
                | RefusalCode::NoConsent
                | RefusalCode::ConsentRevoked
                | RefusalCode::ConsentExpired
                | RefusalCode::ConsentEnded
                | RefusalCode::UriOutsideConsent => Code::PermissionDenied,
                RefusalCode::DocumentNotFound => Code::NotFound,
                RefusalCode::DocumentUnavailable
                | RefusalCode::IssuerSuspended
                | RefusalCode::CredentialRevoked
                | RefusalCode::CredentialInvalid
                | RefusalCode::FingerprintMismatch => Code::FailedPrecondition,
                RefusalCode::IdTaken => Code::AlreadyExists,
                RefusalCode::TooManyRegistrations => Code::ResourceExhausted,
            },
            Self::Host(s) => s.code(),
            Self::Storage(_) | Self::Corrupt { .. } | Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<LockerError> for Status {
    fn from(e: LockerError) -> Status {
        let code = e.code();
        match e {
            LockerError::Storage(_) | LockerError::Corrupt { .. } | LockerError::Internal(_) => {
                tracing::error!(error = %e, "locker internal error");
                Status::new(
                    code,
                    "internal error; the node operator has the details in the log",
                )
            }
            LockerError::Host(s) => s,
            LockerError::Refused {
                code: refusal,
                message,
            } => {
                let mut s = Status::new(code, message);
                if let Ok(v) = refusal.as_str().parse() {
                    s.metadata_mut().insert(METADATA_KEY, v);
                }
                s
            }
            other => Status::new(code, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_their_code() {
        for c in RefusalCode::ALL {
            let s = Status::from(LockerError::refused(c, "no"));
            assert_eq!(RefusalCode::of_status(&s), Some(c));
            assert_ne!(s.code(), Code::Ok);
        }
        let s = Status::from(LockerError::Internal("secret detail".into()));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("secret"));
    }
}
