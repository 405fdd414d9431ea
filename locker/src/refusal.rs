//! Why the locker refused a fetch or a registration: machine-readable codes carried in the `dlocker-refusal`
//! metadata of the gRPC status, beside a human message, so a requester (and the tests) can tell
//! the refusals apart without parsing text.

/// The response metadata key.
pub const METADATA_KEY: &str = "dlocker-refusal";

/// Every way a `FetchDocument` (and a registration or registry decision) can be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// No requester of that id is registered.
    RequesterUnknown,
    /// The request is not signed by the requester's registered key, or is stale or replayed.
    BadRequestSignature,
    /// The requester is registered but not approved (pending or suspended).
    RequesterNotApproved,
    /// No consent of that id for this requester (or none given).
    NoConsent,
    /// The holder revoked the consent.
    ConsentRevoked,
    /// The consent's `not_after` has passed.
    ConsentExpired,
    /// The holder ended the consent at a re-issue.
    ConsentEnded,
    /// The consent does not cover this document URI.
    UriOutsideConsent,
    /// The holder has no such document (any more).
    DocumentNotFound,
    /// The document is being re-issued by its issuer.
    DocumentUnavailable,
    /// The operator suspended the document's issuer.
    IssuerSuspended,
    /// The credential's status bit is set.
    CredentialRevoked,
    /// The stored credential does not verify (signature, validity window).
    CredentialInvalid,
    /// Registration: the issuer or requester id is registered with another key (or other
    /// details); nothing was changed.
    IdTaken,
    /// Registration: too many registrations from this caller; retry later.
    TooManyRegistrations,
    /// Registry decision: the key fingerprint the operator approved is not the registered key's.
    FingerprintMismatch,
}

impl RefusalCode {
    /// All codes.
    pub const ALL: [RefusalCode; 16] = [
        Self::RequesterUnknown,
        Self::BadRequestSignature,
        Self::RequesterNotApproved,
        Self::NoConsent,
        Self::ConsentRevoked,
        Self::ConsentExpired,
        Self::ConsentEnded,
        Self::UriOutsideConsent,
        Self::DocumentNotFound,
        Self::DocumentUnavailable,
        Self::IssuerSuspended,
        Self::CredentialRevoked,
        Self::CredentialInvalid,
        Self::IdTaken,
        Self::TooManyRegistrations,
        Self::FingerprintMismatch,
    ];

    /// The wire (and audit) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequesterUnknown => "requester_unknown",
            Self::BadRequestSignature => "bad_request_signature",
            Self::RequesterNotApproved => "requester_not_approved",
            Self::NoConsent => "no_consent",
            Self::ConsentRevoked => "consent_revoked",
            Self::ConsentExpired => "consent_expired",
            Self::ConsentEnded => "consent_ended",
            Self::UriOutsideConsent => "uri_outside_consent",
            Self::DocumentNotFound => "document_not_found",
            Self::DocumentUnavailable => "document_unavailable",
            Self::IssuerSuspended => "issuer_suspended",
            Self::CredentialRevoked => "credential_revoked",
            Self::CredentialInvalid => "credential_invalid",
            Self::IdTaken => "id_taken",
            Self::TooManyRegistrations => "too_many_registrations",
            Self::FingerprintMismatch => "fingerprint_mismatch",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The code carried by a gRPC status, if it is a fetch refusal.
    pub fn of_status(s: &tonic::Status) -> Option<Self> {
        s.metadata()
            .get(METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlocker_proto::refusal::NodeRefusal;

    #[test]
    fn one_key_and_codes_apart_from_the_nodes() {
        // The node's refusals share the metadata key: no spelling may mean both.
        assert_eq!(METADATA_KEY, dlocker_proto::refusal::METADATA_KEY);
        for c in RefusalCode::ALL {
            assert_eq!(RefusalCode::parse(c.as_str()), Some(c));
            assert_eq!(NodeRefusal::parse(c.as_str()), None, "{c}");
        }
        for c in NodeRefusal::ALL {
            assert_eq!(RefusalCode::parse(c.as_str()), None, "{c}");
        }
    }
}
