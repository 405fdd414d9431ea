//! The audit log's hash chain, shared by the node (which appends) and the CLI (which verifies).
//!
//! `hash_n = SHA-256("dlocker/audit/v1" ‖ seq u64 ‖ at u64 ‖ kind str ‖ wallet_tag str ‖
//! detail str ‖ hash_{n-1} [32])`, with `hash_0 = [0; 32]` before the first entry (seq 1).
//! A signed [`crate::statement::AuditCheckpoint`] pins the head; changing, dropping or reordering
//! any entry breaks the chain up to it.

use crate::codec::Writer;
use crate::labels;
use sha2::{Digest, Sha256};

/// One audit entry as it is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// 1-based position.
    pub seq: u64,
    /// Unix seconds.
    pub at: u64,
    /// What happened (`enrollment`, `recovery_opened`, `assertion_failed`, ...).
    pub kind: String,
    /// HMAC of the wallet id under the node's audit key (hex), or empty.
    pub wallet_tag: String,
    /// Non-secret details.
    pub detail: String,
    /// The previous entry's hash.
    pub prev_hash: [u8; 32],
}

impl AuditRecord {
    /// This entry's chain hash.
    pub fn hash(&self) -> [u8; 32] {
        let mut w = Writer::new();
        w.fixed(labels::AUDIT_ENTRY)
            .u64(self.seq)
            .u64(self.at)
            .str(&self.kind)
            .str(&self.wallet_tag)
            .str(&self.detail)
            .fixed(&self.prev_hash);
        Sha256::digest(w.finish()).into()
    }
}

/// Where a chain broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// An entry's recorded hash differs from its recomputed hash.
    #[error("audit entry {seq} does not match its hash (altered)")]
    Altered {
        /// The entry.
        seq: u64,
    },
    /// An entry does not link to the one before it.
    #[error("audit entry {seq} does not link to the previous entry (removed or reordered)")]
    Broken {
        /// The entry.
        seq: u64,
    },
    /// The chain does not end at the signed checkpoint.
    #[error("audit log does not end at the signed checkpoint (seq {seq})")]
    CheckpointMismatch {
        /// The checkpoint's seq.
        seq: u64,
    },
}

/// Checks `entries` (consecutive, from seq 1, each with its recorded hash) link up and end at
/// the checkpoint `(seq, head_hash)`.
pub fn verify_chain(
    entries: &[(AuditRecord, [u8; 32])],
    checkpoint_seq: u64,
    checkpoint_head: &[u8; 32],
) -> Result<(), ChainError> {
    let mut prev = [0u8; 32];
    let mut expected_seq = 1;
    for (rec, recorded) in entries {
        if rec.seq != expected_seq || rec.prev_hash != prev {
            return Err(ChainError::Broken { seq: rec.seq });
        }
        if rec.hash() != *recorded {
            return Err(ChainError::Altered { seq: rec.seq });
        }
        prev = *recorded;
        expected_seq += 1;
    }
    let last = expected_seq - 1;
    if last != checkpoint_seq || prev != *checkpoint_head {
        return Err(ChainError::CheckpointMismatch {
            seq: checkpoint_seq,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<(AuditRecord, [u8; 32])> {
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|seq| {
                let rec = AuditRecord {
                    seq,
                    at: 100 + seq,
                    kind: "k".into(),
                    wallet_tag: "t".into(),
                    detail: format!("d{seq}"),
                    prev_hash: prev,
                };
                let h = rec.hash();
                prev = h;
                (rec, h)
            })
            .collect()
    }

    #[test]
    fn detects_alteration_removal_and_wrong_head() {
        let c = chain(4);
        let head = c[3].1;
        assert_eq!(verify_chain(&c, 4, &head), Ok(()));
        let mut altered = c.clone();
        altered[1].0.detail = "changed".into();
        assert_eq!(
            verify_chain(&altered, 4, &head),
            Err(ChainError::Altered { seq: 2 })
        );
        let mut removed = c.clone();
        removed.remove(1);
        assert!(matches!(
            verify_chain(&removed, 4, &head),
            Err(ChainError::Broken { .. })
        ));
        assert_eq!(
            verify_chain(&c[..3], 4, &head),
            Err(ChainError::CheckpointMismatch { seq: 4 })
        );
        assert_eq!(verify_chain(&[], 0, &[0; 32]), Ok(()));
    }
}
