//! One error enum per operation. Each variant says what went wrong *and* what the caller can do
//! about it; none of them ever carries a secret (a share, `k`, the wallet data or an assertion).

use crate::backup::BackupReceipts;
use crate::trustees::TrusteeInfo;
use dlocker_proto::refusal::NodeRefusal;
use std::path::PathBuf;

/// Why one trustee failed its part of a multi-trustee step. `Display` words the reason for a
/// person; code that decides (retry, skip, report a faulty trustee) matches the variant and a
/// refusal's code, never that text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrusteeFailure {
    /// The trustee could not be reached, or is not the pinned node.
    Connect(ConnectError),
    /// The trustee refused a call.
    Refused {
        /// The call, e.g. `ReleaseShare`.
        call: &'static str,
        /// The gRPC code.
        code: tonic::Code,
        /// Why, exactly (none from a node that predates refusal codes).
        refusal: Option<NodeRefusal>,
        /// The refusal described for a person (the code's name and the node's message).
        message: String,
    },
    /// The trustee answered, but the answer failed a check (a share, receipt, proof or
    /// manifest that does not verify): investigate this trustee.
    BadAnswer(String),
    /// Not asked: the step needs every trustee at once and another one failed (the reason names
    /// it); this trustee follows that one's fate.
    NotAttempted(String),
    /// Anything else: a step that could not be taken for this trustee.
    Other(String),
}

impl TrusteeFailure {
    /// A refusal of `call`, as the node answered it.
    pub fn refused(call: &'static str, s: &tonic::Status) -> Self {
        Self::Refused {
            call,
            code: s.code(),
            refusal: NodeRefusal::of_status(s),
            message: crate::transport::describe_status(s),
        }
    }

    /// Whether the same call may succeed later without changing anything: the node was
    /// unreachable or timed out, or refused for now (rate limit, busy, an internal failure).
    /// A refusal of the request itself, a failed check or a bad answer is final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect(e) => e.is_retryable(),
            Self::Refused {
                refusal: Some(r), ..
            } => matches!(
                r,
                NodeRefusal::RateLimited | NodeRefusal::NodeBusy | NodeRefusal::Internal
            ),
            Self::Refused {
                refusal: None,
                code,
                ..
            } => matches!(
                code,
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::Unknown
            ),
            // Retrying helps it exactly when it helps the trustee that failed.
            Self::NotAttempted(_) => true,
            Self::BadAnswer(_) | Self::Other(_) => false,
        }
    }

    /// The node's refusal code, if the trustee refused with one.
    pub fn refusal(&self) -> Option<NodeRefusal> {
        match self {
            Self::Refused { refusal, .. } => *refusal,
            _ => None,
        }
    }
}

impl std::fmt::Display for TrusteeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "{e}"),
            Self::BadAnswer(m) | Self::NotAttempted(m) | Self::Other(m) => f.write_str(m),
            Self::Refused {
                call: "", message, ..
            } => f.write_str(message),
            Self::Refused { call, message, .. } => write!(f, "{call}: {message}"),
        }
    }
}

impl From<String> for TrusteeFailure {
    fn from(s: String) -> Self {
        Self::Other(s)
    }
}

impl From<&str> for TrusteeFailure {
    fn from(s: &str) -> Self {
        Self::Other(s.to_owned())
    }
}

impl From<ConnectError> for TrusteeFailure {
    fn from(e: ConnectError) -> Self {
        Self::Connect(e)
    }
}

/// `(trustee name, why)`: one trustee that failed a multi-trustee step.
pub type Failure = (String, TrusteeFailure);

/// Per trustee in set order, what an all-trustee owner action got: the answers (`done`) and the
/// failures, a trustee never asked (`None`) counting as "no answer".
pub(crate) fn split_answers<T>(
    infos: &[TrusteeInfo],
    results: Vec<Option<Result<T, TrusteeFailure>>>,
) -> (Vec<(String, T)>, Vec<Failure>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for (info, r) in infos.iter().zip(results) {
        match r {
            Some(Ok(t)) => done.push((info.name.clone(), t)),
            Some(Err(e)) => failed.push((info.name.clone(), e)),
            None => failed.push((info.name.clone(), "no answer".into())),
        }
    }
    (done, failed)
}

/// `name: reason; …` for the trustees that failed a step.
pub(crate) fn describe_failed(failed: &[Failure]) -> String {
    failed
        .iter()
        .map(|(n, r)| format!("{n}: {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The trustees file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrusteesError {
    /// The file could not be read: check the path and permissions.
    #[error("cannot read trustees file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown/missing fields: fix the file.
    #[error("trustees file is not valid: {0}")]
    Syntax(String),
    /// The file parsed but describes an unusable set of trustees: fix the named entry.
    #[error("trustees file is not valid: {0}")]
    Invalid(String),
}

/// A trustee node could not be reached or could not be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The endpoint is not a usable `http://` or `https://` URL: fix the trustees file.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: String,
    },
    /// The TLS settings could not be loaded (missing or bad PEM): fix the paths in the trustees file.
    #[error("TLS configuration for {endpoint}: {reason}")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The node did not answer (down, wrong address, firewall, TLS handshake failed): retry later
    /// or check that the node is running.
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The node answered with a different identity key than the one pinned in the trustees
    /// file. Do NOT use this node: either the file is stale or something is impersonating it.
    #[error("node {name} at {endpoint} presents key {presented}, not the pinned key {pinned}")]
    KeyMismatch {
        /// Trustee name from the file.
        name: String,
        /// The endpoint.
        endpoint: String,
        /// Pinned key (abbreviated hex).
        pinned: String,
        /// Presented key (abbreviated hex).
        presented: String,
    },
    /// The node answered `GetInfo` with something unusable.
    #[error("node at {endpoint} sent an invalid descriptor: {reason}")]
    BadDescriptor {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The node answered `GetInfo` with an error status.
    #[error("node at {endpoint} refused GetInfo: {reason}")]
    Rpc {
        /// The endpoint.
        endpoint: String,
        /// The status, described.
        reason: String,
    },
}

impl ConnectError {
    /// Only an unreachable node is worth another try as is; the other variants need the
    /// trustees file, the TLS material or the node fixed first.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// The passkey ceremony failed on the owner's side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The node's challenge could not be parsed: the node and SDK disagree on the format.
    #[error("malformed passkey challenge: {0}")]
    MalformedChallenge(String),
    /// The authenticator refused or failed (user cancelled, no matching credential, ...):
    /// ask the owner to try again.
    #[error("authenticator failed: {0}")]
    Authenticator(String),
}

/// A backup could not be prepared or did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The wallet id is not acceptable (1–64 characters from `A-Z a-z 0-9 . _ : -`).
    #[error("invalid wallet id: {0}")]
    InvalidWalletId(String),
    /// The threshold does not fit the trustee set (need 2 ≤ t ≤ n ≤ 32): choose another policy.
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    /// The wallet data is larger than trustees accept: store less (or a key to it).
    #[error("wallet data is {len} bytes; at most {max} bytes can be backed up")]
    WalletDataTooLarge {
        /// Given length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The prepared backup was made for a different trustee set than the one given.
    #[error("the prepared backup does not match this trustee set: {0}")]
    TrusteesMismatch(String),
    /// Internal failure building the backup (a bug, not an input problem).
    #[error("could not build the backup: {0}")]
    Internal(String),
    /// The app's checkpoint could not save the backup state; the backup stopped before sending
    /// anything more.
    #[error("could not save the backup state: {0}")]
    Checkpoint(String),
    /// Some trustees did not receipt the deposit. The backup does NOT count yet. Call
    /// [`crate::protocol::backup()`] again with the SAME `PreparedBackup` (kept in memory, or
    /// saved with [`crate::PreparedBackup::seal`] / [`crate::protocol::backup_with_checkpoint`]
    /// and opened with [`crate::PreparedBackup::open_sealed`] after a restart) once the failures are fixed:
    /// trustees that already hold it return their stored receipt, and the others get the same
    /// passkey registration while their enrollment ceremonies are valid
    /// (`limits.ceremony_ttl_secs`, 5 minutes by default). A NEW `PreparedBackup` for the same
    /// wallet id is refused by the trustees that receipted ("must be rotated"); a trustee whose
    /// ceremony expired joins the wallet by a rotation instead.
    #[error("backup incomplete: {} of {} trustees failed ({})", failed.len(), failed.len() + receipts.receipts.len(), describe_failed(failed))]
    Incomplete {
        /// Every trustee that failed, and why.
        failed: Vec<Failure>,
        /// The verified receipts collected so far (boxed: the error stays small).
        receipts: Box<BackupReceipts>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_its_code_and_its_wording() {
        let s = NodeRefusal::DelayNotPassed.status("recovery delay has not passed");
        let f = TrusteeFailure::refused("ReleaseShare", &s);
        assert_eq!(f.refusal(), Some(NodeRefusal::DelayNotPassed));
        assert_eq!(
            f.to_string(),
            "ReleaseShare: not possible yet: recovery delay has not passed"
        );
        let old_node = TrusteeFailure::refused("ReleaseShare", &tonic::Status::not_found("x"));
        assert_eq!(old_node.refusal(), None);
        assert_eq!(TrusteeFailure::from("down").to_string(), "down");
        assert_eq!(
            TrusteeFailure::BadAnswer("bad share".into()).refusal(),
            None
        );
        assert_eq!(
            describe_failed(&[("t1".into(), "down".into()), ("t2".into(), f)]),
            "t1: down; t2: ReleaseShare: not possible yet: recovery delay has not passed"
        );
    }
}
