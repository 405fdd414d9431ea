//! Identifiers both ends parse the same way: a value of these types has passed the protocol's
//! checks, so code holding one does not check again.

use crate::manifest::validate_wallet_id;

/// A validated wallet id (1–64 characters from `[A-Za-z0-9._:-]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WalletId(String);

impl WalletId {
    /// Validates a wallet id.
    pub fn parse(s: impl Into<String>) -> Result<Self, crate::DecodeError> {
        let s = s.into();
        validate_wallet_id(&s)?;
        Ok(Self(s))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for WalletId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for WalletId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for WalletId {
    type Err = crate::DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let w = WalletId::parse("wallet-1").expect("valid");
        assert_eq!(w.as_str(), "wallet-1");
        assert_eq!(w.to_string(), "wallet-1");
        assert_eq!(
            "a.b_c:d-E9"
                .parse::<WalletId>()
                .map(|w| w.into_string())
                .ok()
                .as_deref(),
            Some("a.b_c:d-E9")
        );
        assert!(WalletId::parse("").is_err());
        assert!(WalletId::parse("a/b").is_err());
        assert!(WalletId::parse("x".repeat(65)).is_err());
        assert!(WalletId::parse("x".repeat(64)).is_ok());
    }
}
