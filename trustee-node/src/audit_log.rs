//! The node's append-only, hash-chained audit log (table `audit` of [`crate::db`]).
//!
//! Wallet ids never appear: each entry carries `HMAC-SHA256(audit key, wallet id)`, so one
//! wallet's entries can be linked by someone holding the audit key and by nobody else. The chain
//! rule lives in `dlocker_proto::audit` so the CLI verifies exactly what the node computes; a
//! signed `AuditCheckpoint` over the head is produced on request.

use crate::db::{Database, SeqLog, SeqLogError};
use dlocker_proto::audit::AuditRecord;
use dlocker_proto::labels;
use dlocker_proto::statement::{AuditCheckpoint, Signed};
use hmac::{KeyInit, Mac};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use zeroize::Zeroizing;

pub use crate::db::AUDIT_TREE;

/// Why the audit log failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Storage failed.
    #[error("audit storage: {0}")]
    Storage(#[from] crate::db::EngineError),
    /// A stored entry does not parse.
    #[error("audit entry {0} is unreadable")]
    Corrupt(u64),
    /// Appended to before its head was read (`AuditLog::open` reads it: not reachable).
    #[error("audit log appended to before it was opened")]
    NotOpened,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// 1-based.
    pub seq: u64,
    /// Unix seconds.
    pub at: u64,
    /// What happened.
    pub kind: String,
    /// HMAC tag of the wallet id (hex) or empty.
    pub wallet_tag: String,
    /// Non-secret details.
    pub detail: String,
    /// Previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

impl StoredEntry {
    /// The record as hashed, and the recorded hash.
    pub fn to_record(&self) -> Option<(AuditRecord, [u8; 32])> {
        let prev: [u8; 32] = hex::decode(&self.prev_hash).ok()?.try_into().ok()?;
        let hash: [u8; 32] = hex::decode(&self.hash).ok()?.try_into().ok()?;
        Some((
            AuditRecord {
                seq: self.seq,
                at: self.at,
                kind: self.kind.clone(),
                wallet_tag: self.wallet_tag.clone(),
                detail: self.detail.clone(),
                prev_hash: prev,
            },
            hash,
        ))
    }
}

/// The audit log.
///
/// The chain's head is a record in the database, read and advanced in the transaction that
/// appends an entry ([`SeqLog::append_next`]), so every replica of the node on one PostgreSQL
/// schema appends to one chain and none forks it.
pub struct AuditLog {
    log: SeqLog,
    tag_key: Zeroizing<[u8; 32]>,
    /// Serialises this process's appends (they would only conflict on the head and be retried).
    appending: Mutex<()>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("tag_key", &"REDACTED")
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the log in `db` (recording its head from the last entry if a database written
    /// before heads were kept has none).
    pub fn open(db: &Database, tag_key: Zeroizing<[u8; 32]>) -> Result<Self, AuditError> {
        let log = db.audit_log();
        log.open_head(|e: &StoredEntry| e.to_record().map(|(_, h)| hex::encode(h)))?;
        Ok(Self {
            log,
            tag_key,
            appending: Mutex::new(()),
        })
    }

    /// `HMAC-SHA256(audit key, label ‖ wallet id)`, hex.
    pub fn wallet_tag(&self, wallet_id: &str) -> String {
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.tag_key.as_ref())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(labels::WALLET_TAG);
        mac.update(wallet_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A recovery session's id as the audit log shows it: keyed like wallet tags, so the public
    /// log links a session's entries without handing anyone its id.
    pub fn session_tag(&self, session_id: &str) -> String {
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.tag_key.as_ref())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(labels::SESSION_TAG);
        mac.update(session_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    /// Appends an entry (not yet flushed: the caller flushes with the state change it records).
    pub fn append(
        &self,
        at: u64,
        kind: &str,
        wallet_id: Option<&str>,
        detail: &str,
    ) -> Result<u64, AuditError> {
        let wallet_tag = wallet_id.map(|w| self.wallet_tag(w)).unwrap_or_default();
        let _one_at_a_time = self.appending.lock().unwrap_or_else(|p| p.into_inner());
        let stored = self.log.append_next(|head| {
            let prev_hash = head_hash(head)?;
            let rec = AuditRecord {
                seq: head.seq + 1,
                at,
                kind: kind.to_owned(),
                wallet_tag: wallet_tag.clone(),
                detail: detail.to_owned(),
                prev_hash,
            };
            let hash = hex::encode(rec.hash());
            let stored = StoredEntry {
                seq: rec.seq,
                at,
                kind: rec.kind,
                wallet_tag: rec.wallet_tag,
                detail: rec.detail,
                prev_hash: hex::encode(rec.prev_hash),
                hash: hash.clone(),
            };
            Some((stored, hash))
        })?;
        Ok(stored.seq)
    }

    /// Entries from `from_seq` (inclusive), at most `limit`.
    pub fn entries(&self, from_seq: u64, limit: usize) -> Result<Vec<StoredEntry>, AuditError> {
        Ok(self.log.read_from(from_seq.max(1), limit)?)
    }

    /// The head `(seq, hash)` as committed now, whichever replica appended it.
    pub fn head(&self) -> Result<(u64, [u8; 32]), AuditError> {
        let head = self.log.head()?;
        let hash = head_hash(&head).ok_or(AuditError::Corrupt(head.seq))?;
        Ok((head.seq, hash))
    }

    /// A checkpoint of the current head signed with the node's identity key.
    pub fn checkpoint(
        &self,
        node_id: &str,
        key: &SigningKey,
        now: u64,
    ) -> Result<Signed<AuditCheckpoint>, AuditError> {
        let (seq, head_hash) = self.head()?;
        Ok(Signed::sign(
            AuditCheckpoint {
                node_id: node_id.to_owned(),
                seq,
                head_hash,
                at: now,
            },
            key,
        ))
    }
}

impl From<SeqLogError> for AuditError {
    fn from(e: SeqLogError) -> Self {
        match e {
            SeqLogError::Engine(e) => AuditError::Storage(e),
            SeqLogError::Corrupt(seq) => AuditError::Corrupt(seq),
            SeqLogError::HeadNotOpened => AuditError::NotOpened,
        }
    }
}

/// The hash a head names (zeros before the first entry); `None` if unreadable.
fn head_hash(head: &crate::db::Head) -> Option<[u8; 32]> {
    if head.seq == 0 {
        return Some([0; 32]);
    }
    hex::decode(&head.hash).ok()?.try_into().ok()
}

// HMAC-SHA256 accepts keys of any length, so `new_from_slice` cannot fail.
fn unreachable_hmac() -> hmac::Hmac<sha2::Sha256> {
    unreachable!("HMAC accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlocker_proto::audit::verify_chain;
    use k256::elliptic_curve::Generate;

    #[test]
    fn chain_survives_reopen_and_detects_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Database::open(dir.path()).expect("db");
        let log = AuditLog::open(&db, Zeroizing::new([7; 32])).expect("open");
        log.append(1, "enrollment", Some("wallet-1"), "epoch 1")
            .expect("append");
        log.append(2, "recovery_opened", Some("wallet-1"), "session s1")
            .expect("append");
        drop(log);
        let log = AuditLog::open(&db, Zeroizing::new([7; 32])).expect("reopen");
        log.append(3, "release", Some("wallet-1"), "")
            .expect("append");
        let entries = log.entries(1, 100).expect("entries");
        assert_eq!(entries.len(), 3);
        assert!(!entries[0].wallet_tag.contains("wallet"));
        assert_eq!(entries[0].wallet_tag, entries[2].wallet_tag);
        let key = SigningKey::generate_from_rng(&mut rand::rng());
        let cp = log.checkpoint("node", &key, 4).expect("checkpoint");
        let recs: Vec<_> = entries.iter().filter_map(StoredEntry::to_record).collect();
        assert_eq!(
            verify_chain(&recs, cp.body().seq, &cp.body().head_hash),
            Ok(())
        );
        let mut tampered = recs.clone();
        tampered[1].0.detail = "session s2".into();
        assert!(verify_chain(&tampered, cp.body().seq, &cp.body().head_hash).is_err());
    }
}
