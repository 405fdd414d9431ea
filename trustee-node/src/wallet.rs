//! Wallet identifiers, parsed once at the edge, and their keyed pseudonyms for log lines.
//!
//! A log tag is HMAC-SHA256 under the node's log-tag key (the storage key's
//! [`crate::keys::StoragePurpose::LogTag`] purpose key), not a bare hash: with a hash, anyone
//! holding a wallet id (or a list of candidates) could find that wallet's lines in shipped
//! logs. The key is process-wide so that every log line can tag a wallet without threading the
//! node through: a production process serves one node, which installs its key when it is
//! assembled; tests that run several nodes in one process share the first node's key (tags
//! only need to be stable, not distinct per node); before any node exists, tags are keyed under a
//! random per-process key, so they are never unkeyed.

use crate::error::NodeError;
use hmac::{KeyInit, Mac as _};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// HMAC message prefix of a log tag.
const LOG_TAG_LABEL: &[u8] = b"dlocker/log-tag/v2";

static LOG_TAG_KEY: OnceLock<Zeroizing<[u8; 32]>> = OnceLock::new();

/// Installs the node's log-tag key for this process; the first call wins (see the module doc).
pub fn install_log_tag_key(key: Zeroizing<[u8; 32]>) {
    let _ = LOG_TAG_KEY.set(key);
}

fn log_tag_key() -> &'static [u8; 32] {
    LOG_TAG_KEY.get_or_init(|| {
        use rand::RngExt as _;
        Zeroizing::new(rand::rng().random())
    })
}

/// The keyed log tag of a wallet id under `key` (12 hex characters).
pub fn log_tag_with(key: &[u8; 32], wallet_id: &str) -> String {
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) else {
        // HMAC takes keys of any length; unreachable.
        return String::from("<untagged>");
    };
    mac.update(LOG_TAG_LABEL);
    mac.update(wallet_id.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..6])
}

pub use dlocker_proto::ids::WalletId;

/// Validates a wallet id from a request (the refusal names the field).
pub fn parse_wallet_id(s: String) -> Result<WalletId, NodeError> {
    WalletId::parse(s).map_err(|e| NodeError::invalid("wallet_id", e.to_string()))
}

/// A wallet id's keyed pseudonym for log lines.
pub trait LogTag {
    /// A short keyed pseudonym for log lines, so logs do not carry customers' wallet ids
    /// verbatim and cannot be searched for a known id without the node's key.
    fn log_tag(&self) -> String;
}

impl LogTag for WalletId {
    fn log_tag(&self) -> String {
        log_tag_with(log_tag_key(), self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_tag() {
        let w = parse_wallet_id("wallet-1".into()).expect("valid");
        assert_eq!(w.as_str(), "wallet-1");
        assert_eq!(w.log_tag().len(), 12);
        assert!(!w.log_tag().contains("wallet"));
        assert_eq!(w.log_tag(), w.log_tag(), "stable within a process");
        assert!(parse_wallet_id(String::new()).is_err());
        assert!(parse_wallet_id("a/b".into()).is_err());
        assert!(parse_wallet_id("x".repeat(65)).is_err());
    }

    #[test]
    fn tags_are_keyed() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let t = log_tag_with(&k1, "wallet-1");
        assert_eq!(t.len(), 12);
        assert_eq!(t, log_tag_with(&k1, "wallet-1"));
        assert_ne!(t, log_tag_with(&k2, "wallet-1"), "another key, another tag");
        assert_ne!(t, log_tag_with(&k1, "wallet-2"));
        // Not the old bare hash of the id.
        use sha2::Digest as _;
        let bare = sha2::Sha256::new()
            .chain_update(b"dlocker/log-tag/v1")
            .chain_update(b"wallet-1")
            .finalize();
        assert_ne!(t, hex::encode(&bare[..6]));
    }
}
