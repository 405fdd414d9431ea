//! Wallet identifiers, parsed once at the edge.

use crate::error::NodeError;
use sha2::{Digest, Sha256};

/// A validated wallet id (1–64 characters from `[A-Za-z0-9._:-]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WalletId(String);

impl WalletId {
    /// Validates a wallet id from a request.
    pub fn parse(s: String) -> Result<Self, NodeError> {
        dlocker_proto::manifest::validate_wallet_id(&s)
            .map_err(|e| NodeError::invalid("wallet_id", e.to_string()))?;
        Ok(Self(s))
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A short pseudonym for log lines, so logs do not carry customers' wallet ids verbatim.
    pub fn log_tag(&self) -> String {
        let d = Sha256::new()
            .chain_update(b"dlocker/log-tag/v1")
            .chain_update(self.0.as_bytes())
            .finalize();
        hex::encode(&d[..6])
    }
}

impl std::fmt::Display for WalletId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_tag() {
        let w = WalletId::parse("wallet-1".into()).expect("valid");
        assert_eq!(w.as_str(), "wallet-1");
        assert_eq!(w.log_tag().len(), 12);
        assert!(!w.log_tag().contains("wallet"));
        assert!(WalletId::parse(String::new()).is_err());
        assert!(WalletId::parse("a/b".into()).is_err());
        assert!(WalletId::parse("x".repeat(65)).is_err());
    }
}
