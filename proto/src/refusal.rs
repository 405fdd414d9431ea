//! Why a trustee node refused a request: machine-readable codes carried in the `dlocker-refusal`
//! metadata of the gRPC status, beside the human message and the gRPC code.
//!
//! The node attaches one to every error it answers with, and clients decide on it (retry, wait,
//! start again, give up) rather than on the message text, which is for people and may change.
//! The entry is additive: a client that ignores it sees the same status as before. The codes are
//! stable snake_case strings; `docs/protocol.md` (§1) lists them with what a client should do.
//! The metadata key is the document locker's (`dlocker_locker::refusal`), whose codes are
//! distinct from these.

/// The response metadata key.
pub const METADATA_KEY: &str = "dlocker-refusal";

/// Every way a trustee node refuses a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeRefusal {
    /// A request field is malformed or out of bounds.
    InvalidRequest,
    /// A field exceeds one of the node's size limits.
    TooLarge,
    /// Too many enrollment ceremonies are open at the node; retry in a few minutes.
    NodeBusy,
    /// A per-caller, per-session or per-reader limit was reached; the message says when to retry.
    RateLimited,
    /// No such enrollment ceremony (never opened, or swept after expiry).
    CeremonyNotFound,
    /// The enrollment ceremony expired.
    CeremonyExpired,
    /// The enrollment ceremony was already used by a different request.
    CeremonyUsed,
    /// The manifest does not decode or validate.
    ManifestInvalid,
    /// The manifest is for another wallet than the ceremony.
    WalletMismatch,
    /// The manifest does not list this node (with its key).
    NotATrustee,
    /// The blob's hash is not the manifest's.
    BlobHashMismatch,
    /// The share envelope does not open for this node.
    EnvelopeRejected,
    /// The share does not match the manifest's commitments.
    ShareRejected,
    /// The passkey credential is malformed or fails registration checks.
    CredentialRejected,
    /// A different backup of this wallet is already stored here.
    BackupConflict,
    /// The node holds nothing for this wallet.
    WalletNotFound,
    /// A backup confirmation lacks a trustee's receipt, or one does not verify against the
    /// manifest this node holds (signer, wallet, epoch, share index, manifest hash).
    ConfirmationRejected,
    /// The node's stored share failed its integrity check.
    StoredShareCorrupt,
    /// The owner's passkey response does not verify for this ceremony.
    AssertionRejected,
    /// The owner challenge does not include this trustee's nonce.
    NonceNotInChallenge,
    /// This trustee issued no such nonce (or swept it).
    NonceUnknown,
    /// The nonce was issued for another wallet or action.
    NonceMismatch,
    /// The nonce was spent by an earlier response.
    NonceUsed,
    /// The nonce expired.
    NonceExpired,
    /// No such recovery session at this node.
    SessionNotFound,
    /// The recovery session expired.
    SessionExpired,
    /// The recovery session was cancelled.
    SessionCancelled,
    /// The share was already released in this session.
    AlreadyReleased,
    /// The session released another epoch's share; it never releases a second one.
    ReleasedOtherEpoch,
    /// The owner already authenticated in this session.
    AlreadyAuthenticated,
    /// The owner has not authenticated in this session.
    OwnerNotAuthenticated,
    /// The recovery delay is still running.
    DelayNotPassed,
    /// The bank approval is not a valid statement.
    ApprovalMalformed,
    /// The bank approval is signed by a key or bank this node does not accept for the wallet, or is for another wallet or device key, or is not valid yet.
    ApprovalRejected,
    /// The bank approval expired.
    ApprovalExpired,
    /// The bank cancellation is invalid, from another bank, for another recovery, or older than the session.
    CancellationRejected,
    /// The bank's staff policy does not hold yet.
    AwaitingApproval,
    /// The staff request is malformed or its signature is invalid.
    StaffRequestInvalid,
    /// The staff request is signed by a key not in the staff list.
    StaffUnknown,
    /// The staff member lacks the role, or the request was signed for another action.
    StaffForbidden,
    /// The staff request is addressed to another bank node.
    StaffWrongNode,
    /// The staff request was already used.
    StaffReplayed,
    /// The staff request's timestamp is outside the allowed window.
    StaffStale,
    /// This node has no bank staff (it is not a bank node).
    NoBankStaff,
    /// A staff member with this id or key already exists.
    StaffExists,
    /// No such staff member.
    StaffNotFound,
    /// A staff id, role list or policy is malformed or out of range.
    StaffChangeInvalid,
    /// The staff change would leave no admin or an approval policy that can never be met.
    StaffChangeRefused,
    /// The event stream was asked for without credentials.
    ReaderUnauthenticated,
    /// The caller's client certificate may not call this service.
    ServiceNotAllowed,
    /// The browser page's origin may not call this node.
    OriginNotAllowed,
    /// The manifest is not the successor of this node's active epoch (number or previous hash).
    EpochOutOfSequence,
    /// A staged epoch must name its previous manifest.
    EpochNoPrevious,
    /// Another rotation is staged here.
    EpochAlreadyStaged,
    /// The epoch is already active (committed) here.
    EpochAlreadyActive,
    /// No epoch is staged here under this manifest hash.
    EpochNotStaged,
    /// The staged epoch expired before its commit.
    EpochStagedExpired,
    /// A staged epoch blocks retiring this node from the wallet.
    EpochStagedPresent,
    /// The epoch is committed here and cannot be rolled back.
    EpochAlreadyCommitted,
    /// An owner-authenticated recovery session blocks the rotation.
    RecoveryInProgress,
    /// This node retired from the wallet; it accepts no new deposit for it.
    RetiredHere,
    /// The node is joining the wallet through a staged epoch.
    PasskeyChangeWhileJoining,
    /// Too few trustees show that they hold the successor epoch.
    QuorumNotMet,
    /// The successor manifest cannot retire this node.
    SuccessorRefused,
    /// The node holds no epoch of that number for the wallet.
    NoSuchEpoch,
    /// A rotation replaced the recovery session's epoch.
    SessionEpochReplaced,
    /// The action needs the owner's passkey assertion.
    OwnerAssertionRequired,
    /// A new passkey credential was offered where the wallet's one is required.
    RegistrationNotAllowed,
    /// A joining node was not shown, by a trustee it knows, that the credential is the wallet's.
    CredentialNotAttested,
    /// A passkey reset came without the bank's approval.
    ResetApprovalRequired,
    /// A passkey reset's proof of knowledge of the wallet secret does not verify.
    ResetProofRejected,
    /// The passkey reset approval was already used at this trustee.
    ResetApprovalSpent,
    /// The bank holds no such passkey reset request.
    ResetRequestNotFound,
    /// The bank's passkey reset request expired.
    ResetRequestExpired,
    /// A node-side fault; the detail is in the node's log only.
    Internal,
}

impl NodeRefusal {
    /// All codes.
    pub const ALL: [NodeRefusal; 75] = [
        Self::InvalidRequest,
        Self::TooLarge,
        Self::NodeBusy,
        Self::RateLimited,
        Self::CeremonyNotFound,
        Self::CeremonyExpired,
        Self::CeremonyUsed,
        Self::ManifestInvalid,
        Self::WalletMismatch,
        Self::NotATrustee,
        Self::BlobHashMismatch,
        Self::EnvelopeRejected,
        Self::ShareRejected,
        Self::CredentialRejected,
        Self::BackupConflict,
        Self::WalletNotFound,
        Self::ConfirmationRejected,
        Self::StoredShareCorrupt,
        Self::AssertionRejected,
        Self::NonceNotInChallenge,
        Self::NonceUnknown,
        Self::NonceMismatch,
        Self::NonceUsed,
        Self::NonceExpired,
        Self::SessionNotFound,
        Self::SessionExpired,
        Self::SessionCancelled,
        Self::AlreadyReleased,
        Self::ReleasedOtherEpoch,
        Self::AlreadyAuthenticated,
        Self::OwnerNotAuthenticated,
        Self::DelayNotPassed,
        Self::ApprovalMalformed,
        Self::ApprovalRejected,
        Self::ApprovalExpired,
        Self::CancellationRejected,
        Self::AwaitingApproval,
        Self::StaffRequestInvalid,
        Self::StaffUnknown,
        Self::StaffForbidden,
        Self::StaffWrongNode,
        Self::StaffReplayed,
        Self::StaffStale,
        Self::NoBankStaff,
        Self::StaffExists,
        Self::StaffNotFound,
        Self::StaffChangeInvalid,
        Self::StaffChangeRefused,
        Self::ReaderUnauthenticated,
        Self::ServiceNotAllowed,
        Self::OriginNotAllowed,
        Self::EpochOutOfSequence,
        Self::EpochNoPrevious,
        Self::EpochAlreadyStaged,
        Self::EpochAlreadyActive,
        Self::EpochNotStaged,
        Self::EpochStagedExpired,
        Self::EpochStagedPresent,
        Self::EpochAlreadyCommitted,
        Self::RecoveryInProgress,
        Self::RetiredHere,
        Self::PasskeyChangeWhileJoining,
        Self::QuorumNotMet,
        Self::SuccessorRefused,
        Self::NoSuchEpoch,
        Self::SessionEpochReplaced,
        Self::OwnerAssertionRequired,
        Self::RegistrationNotAllowed,
        Self::CredentialNotAttested,
        Self::ResetApprovalRequired,
        Self::ResetProofRejected,
        Self::ResetApprovalSpent,
        Self::ResetRequestNotFound,
        Self::ResetRequestExpired,
        Self::Internal,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::TooLarge => "too_large",
            Self::NodeBusy => "node_busy",
            Self::RateLimited => "rate_limited",
            Self::CeremonyNotFound => "ceremony_not_found",
            Self::CeremonyExpired => "ceremony_expired",
            Self::CeremonyUsed => "ceremony_used",
            Self::ManifestInvalid => "manifest_invalid",
            Self::WalletMismatch => "wallet_mismatch",
            Self::NotATrustee => "not_a_trustee",
            Self::BlobHashMismatch => "blob_hash_mismatch",
            Self::EnvelopeRejected => "envelope_rejected",
            Self::ShareRejected => "share_rejected",
            Self::CredentialRejected => "credential_rejected",
            Self::BackupConflict => "backup_conflict",
            Self::WalletNotFound => "wallet_not_found",
            Self::ConfirmationRejected => "confirmation_rejected",
            Self::StoredShareCorrupt => "stored_share_corrupt",
            Self::AssertionRejected => "assertion_rejected",
            Self::NonceNotInChallenge => "nonce_not_in_challenge",
            Self::NonceUnknown => "nonce_unknown",
            Self::NonceMismatch => "nonce_mismatch",
            Self::NonceUsed => "nonce_used",
            Self::NonceExpired => "nonce_expired",
            Self::SessionNotFound => "session_not_found",
            Self::SessionExpired => "session_expired",
            Self::SessionCancelled => "session_cancelled",
            Self::AlreadyReleased => "already_released",
            Self::ReleasedOtherEpoch => "released_other_epoch",
            Self::AlreadyAuthenticated => "already_authenticated",
            Self::OwnerNotAuthenticated => "owner_not_authenticated",
            Self::DelayNotPassed => "delay_not_passed",
            Self::ApprovalMalformed => "approval_malformed",
            Self::ApprovalRejected => "approval_rejected",
            Self::ApprovalExpired => "approval_expired",
            Self::CancellationRejected => "cancellation_rejected",
            Self::AwaitingApproval => "awaiting_approval",
            Self::StaffRequestInvalid => "staff_request_invalid",
            Self::StaffUnknown => "staff_unknown",
            Self::StaffForbidden => "staff_forbidden",
            Self::StaffWrongNode => "staff_wrong_node",
            Self::StaffReplayed => "staff_replayed",
            Self::StaffStale => "staff_stale",
            Self::NoBankStaff => "no_bank_staff",
            Self::StaffExists => "staff_exists",
            Self::StaffNotFound => "staff_not_found",
            Self::StaffChangeInvalid => "staff_change_invalid",
            Self::StaffChangeRefused => "staff_change_refused",
            Self::ReaderUnauthenticated => "reader_unauthenticated",
            Self::ServiceNotAllowed => "service_not_allowed",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::EpochOutOfSequence => "epoch_out_of_sequence",
            Self::EpochNoPrevious => "epoch_no_previous",
            Self::EpochAlreadyStaged => "epoch_already_staged",
            Self::EpochAlreadyActive => "epoch_already_active",
            Self::EpochNotStaged => "epoch_not_staged",
            Self::EpochStagedExpired => "epoch_staged_expired",
            Self::EpochStagedPresent => "epoch_staged_present",
            Self::EpochAlreadyCommitted => "epoch_already_committed",
            Self::RecoveryInProgress => "recovery_in_progress",
            Self::RetiredHere => "retired_here",
            Self::PasskeyChangeWhileJoining => "passkey_change_while_joining",
            Self::QuorumNotMet => "quorum_not_met",
            Self::SuccessorRefused => "successor_refused",
            Self::NoSuchEpoch => "no_such_epoch",
            Self::SessionEpochReplaced => "session_epoch_replaced",
            Self::OwnerAssertionRequired => "owner_assertion_required",
            Self::RegistrationNotAllowed => "registration_not_allowed",
            Self::CredentialNotAttested => "credential_not_attested",
            Self::ResetApprovalRequired => "reset_approval_required",
            Self::ResetProofRejected => "reset_proof_rejected",
            Self::ResetApprovalSpent => "reset_approval_spent",
            Self::ResetRequestNotFound => "reset_request_not_found",
            Self::ResetRequestExpired => "reset_request_expired",
            Self::Internal => "internal",
        }
    }

    /// The gRPC code a node answers this refusal with (one per refusal, so the two cannot
    /// disagree).
    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code as C;
        match self {
            Self::InvalidRequest
            | Self::ManifestInvalid
            | Self::WalletMismatch
            | Self::NotATrustee
            | Self::BlobHashMismatch
            | Self::EnvelopeRejected
            | Self::ShareRejected
            | Self::CredentialRejected
            | Self::ApprovalMalformed
            | Self::StaffRequestInvalid
            | Self::StaffChangeInvalid
            | Self::EpochNoPrevious => C::InvalidArgument,
            Self::TooLarge | Self::NodeBusy | Self::RateLimited => C::ResourceExhausted,
            Self::CeremonyNotFound
            | Self::WalletNotFound
            | Self::SessionNotFound
            | Self::StaffNotFound
            | Self::ResetRequestNotFound => C::NotFound,
            Self::CeremonyExpired
            | Self::CeremonyUsed
            | Self::NonceUsed
            | Self::NonceExpired
            | Self::SessionExpired
            | Self::SessionCancelled
            | Self::AlreadyReleased
            | Self::ReleasedOtherEpoch
            | Self::AlreadyAuthenticated
            | Self::DelayNotPassed
            | Self::AwaitingApproval
            | Self::NoBankStaff
            | Self::StaffChangeRefused
            | Self::EpochOutOfSequence
            | Self::EpochAlreadyStaged
            | Self::EpochAlreadyActive
            | Self::EpochNotStaged
            | Self::EpochStagedExpired
            | Self::EpochStagedPresent
            | Self::EpochAlreadyCommitted
            | Self::RecoveryInProgress
            | Self::RetiredHere
            | Self::PasskeyChangeWhileJoining
            | Self::QuorumNotMet
            | Self::SuccessorRefused
            | Self::NoSuchEpoch
            | Self::SessionEpochReplaced
            | Self::ResetApprovalSpent
            | Self::ResetRequestExpired => C::FailedPrecondition,
            Self::BackupConflict | Self::StaffExists => C::AlreadyExists,
            Self::StoredShareCorrupt => C::DataLoss,
            Self::AssertionRejected
            | Self::StaffStale
            | Self::ReaderUnauthenticated
            | Self::OwnerAssertionRequired
            | Self::ResetApprovalRequired
            | Self::ResetProofRejected => C::Unauthenticated,
            Self::NonceNotInChallenge
            | Self::NonceUnknown
            | Self::NonceMismatch
            | Self::OwnerNotAuthenticated
            | Self::ApprovalRejected
            | Self::ApprovalExpired
            | Self::CancellationRejected
            | Self::StaffUnknown
            | Self::StaffForbidden
            | Self::StaffWrongNode
            | Self::StaffReplayed
            | Self::ServiceNotAllowed
            | Self::OriginNotAllowed
            | Self::RegistrationNotAllowed
            | Self::CredentialNotAttested
            | Self::ConfirmationRejected => C::PermissionDenied,
            Self::Internal => C::Internal,
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The refusal a gRPC status carries, if a node attached one.
    pub fn of_status(s: &tonic::Status) -> Option<Self> {
        s.metadata()
            .get(METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
    }

    /// Adds this code to `status`'s metadata (replacing any code already there).
    pub fn attach(self, status: &mut tonic::Status) {
        status.metadata_mut().insert(
            METADATA_KEY,
            tonic::metadata::MetadataValue::from_static(self.as_str()),
        );
    }

    /// A status with this refusal's gRPC code, `message` and the code in its metadata.
    pub fn status(self, message: impl Into<String>) -> tonic::Status {
        let mut s = tonic::Status::new(self.grpc_code(), message);
        self.attach(&mut s);
        s
    }
}

impl std::fmt::Display for NodeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for c in NodeRefusal::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "duplicate {s}");
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert_eq!(NodeRefusal::parse(s), Some(c));
            assert_ne!(c.grpc_code(), tonic::Code::Ok);
        }
        assert_eq!(NodeRefusal::parse("Wallet_Not_Found"), None);
        assert_eq!(NodeRefusal::parse(""), None);
    }

    #[test]
    fn carried_in_status_metadata() {
        let s = NodeRefusal::DelayNotPassed.status("recovery delay has not passed");
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        assert_eq!(s.message(), "recovery delay has not passed");
        assert_eq!(
            s.metadata().get(METADATA_KEY).and_then(|v| v.to_str().ok()),
            Some("delay_not_passed")
        );
        assert_eq!(
            NodeRefusal::of_status(&s),
            Some(NodeRefusal::DelayNotPassed)
        );
        // A status without the entry (an older node) or with an unknown code has none.
        assert_eq!(
            NodeRefusal::of_status(&tonic::Status::failed_precondition("x")),
            None
        );
        let mut other = tonic::Status::not_found("x");
        other.metadata_mut().insert(
            METADATA_KEY,
            tonic::metadata::MetadataValue::from_static("no_such_code"),
        );
        assert_eq!(NodeRefusal::of_status(&other), None);
    }
}
