//! Recovery sessions and their per-wallet index. Layout: [`crate::db`].

use super::{
    Database, SESSION_INDEX_TREE, SESSIONS_TREE, StoreError, Table, corrupt, from_json, wallet_key,
};
use crate::recovery::session::RecoverySession;
use serde::{Deserialize, Serialize};

/// A session as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSession {
    /// The state machine.
    pub session: RecoverySession,
}

/// The prefix of a wallet's entries in [`SESSION_INDEX_TREE`]: `u32 len ‖ wallet id`, so no
/// wallet's prefix is another's.
pub fn session_index_prefix(wallet_id: &str) -> Vec<u8> {
    let w = wallet_key(wallet_id);
    let mut k = Vec::with_capacity(4 + w.len());
    k.extend_from_slice(&(w.len() as u32).to_be_bytes());
    k.extend_from_slice(w);
    k
}

pub(super) fn session_index_key(wallet_id: &str, session_id: &str) -> Vec<u8> {
    let mut k = session_index_prefix(wallet_id);
    k.extend_from_slice(session_id.as_bytes());
    k
}

impl Database {
    /// The session stored under `id`, if any.
    pub fn session(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        self.t(Table::Sessions)
            .get(id.as_bytes())?
            .map(|v| from_json(SESSIONS_TREE, &v))
            .transpose()
    }

    /// The ids of every session of the wallet (live or not), in session id order.
    pub fn session_ids_of_wallet(&self, wallet_id: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for (_, id) in self
            .t(Table::SessionIndex)
            .scan_prefix(&session_index_prefix(wallet_id))?
        {
            out.push(String::from_utf8(id).map_err(|e| corrupt(SESSION_INDEX_TREE, e))?);
        }
        Ok(out)
    }

    /// At most `max` stored sessions, in session id order.
    pub fn sessions(&self, max: usize) -> Result<Vec<StoredSession>, StoreError> {
        let mut out = Vec::new();
        for (_, v) in self.t(Table::Sessions).range(None, None, max)? {
            out.push(from_json(SESSIONS_TREE, &v)?);
        }
        Ok(out)
    }

    /// Sessions that ended at least `retention` seconds before `now`
    /// ([`RecoverySession::prunable`]), in session id order. Undecodable records are skipped
    /// (never pruned blindly).
    pub fn prunable_sessions(
        &self,
        now: u64,
        retention: u64,
    ) -> Result<Vec<StoredSession>, StoreError> {
        Ok(self
            .readable_sessions()?
            .into_iter()
            .filter(|s| s.session.prunable(now, retention))
            .collect())
    }

    /// Every stored session that decodes (undecodable ones are skipped: the requests that touch
    /// them report them), for counting.
    pub fn readable_sessions(&self) -> Result<Vec<StoredSession>, StoreError> {
        let mut out = Vec::new();
        for (_, v) in self.t(Table::Sessions).entries()? {
            if let Ok(s) = serde_json::from_slice(&v) {
                out.push(s);
            }
        }
        Ok(out)
    }
}
