//! The format modules' one error type.

/// Why a credential, key, status list or signed request was refused.
///
/// Messages name the part that is wrong, never a secret; a failed signature is reported as
/// such without saying more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A part is not canonical base64url without padding.
    #[error("{0} is not canonical base64url without padding")]
    Base64(&'static str),
    /// A part is not the JSON object it should be (or repeats a member).
    #[error("{what} is not valid JSON for this format: {reason}")]
    Json {
        /// The part.
        what: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// A member is missing or has a value this format does not allow.
    #[error("{field}: {reason}")]
    Field {
        /// The member, e.g. `credentialSubject.documentUri`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Larger than this format allows.
    #[error("{what} is {len} bytes; at most {max} are accepted")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not a compact JWS (three non-empty dot-separated parts).
    #[error("not a compact JWS: {0}")]
    Structure(&'static str),
    /// A JOSE feature this profile does not accept (another `alg`, `crit`, unencoded payload).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The signature does not verify under the key it was checked with (or is not a low-S
    /// 64-byte R‖S signature).
    #[error("the signature does not verify")]
    BadSignature,
    /// A key is not a valid secp256k1 public key.
    #[error("invalid key: {0}")]
    Key(&'static str),
    /// `validFrom` / `nbf` is in the future.
    #[error("not valid before {0} (unix seconds)")]
    NotYetValid(u64),
    /// `validUntil` / `exp` has passed.
    #[error("expired at {0} (unix seconds)")]
    Expired(u64),
    /// A status list does not decompress or has the wrong size.
    #[error("status list: {0}")]
    StatusList(String),
    /// A signed locker request does not decode or verify.
    #[error("signed request: {0}")]
    Request(String),
}

impl FormatError {
    /// A [`FormatError::Field`].
    pub fn field(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Field {
            field,
            reason: reason.into(),
        }
    }
}
