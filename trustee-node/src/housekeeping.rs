//! Housekeeping (`[housekeeping]`): what the node erases on its own, every
//! `sweep_interval_secs`.
//!
//! - **Ended recovery sessions** (cancelled, or expired — a released session ends when it expires)
//!   are pruned `recovery_session_retention_secs` after they ended, with their per-wallet index
//!   entry. Their audit entries stay (the chain is append-only and never rewritten); each pruned
//!   session gets one more, `recovery_session_pruned`, naming it by its keyed tag. A live session
//!   is never pruned.
//! - **Abandoned backups**: a deposit whose backup was never confirmed complete
//!   (`ConfirmBackup`, [`crate::enrollment::confirm`]) is erased
//!   `unconfirmed_backup_expiry_secs` after it was stored, by the owner's delete path
//!   ([`crate::epochs::EpochOps::erase_records`]), with a `wallet_expired_unconfirmed` audit
//!   entry.

use crate::error::NodeError;
use crate::node::Node;
use crate::wallet::LogTag as _;
use std::sync::Arc;
use std::time::Duration;

/// The audit entry's kind for a pruned session.
pub const SESSION_PRUNED: &str = "recovery_session_pruned";
/// The audit entry's kind for an erased abandoned backup.
pub const WALLET_EXPIRED: &str = "wallet_expired_unconfirmed";

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Recovery sessions pruned.
    pub sessions_pruned: usize,
    /// Unconfirmed backups erased.
    pub backups_expired: usize,
}

impl Node {
    /// One housekeeping sweep (see the module docs).
    pub async fn housekeeping_sweep(&self) -> Result<SweepReport, NodeError> {
        let hk = self.config.housekeeping;
        let mut report = SweepReport::default();
        if let Some(retention) = hk.recovery_session_retention_secs {
            report.sessions_pruned = self.prune_sessions(retention).await?;
        }
        if let Some(expiry) = hk.unconfirmed_backup_expiry_secs {
            report.backups_expired = self.expire_unconfirmed(expiry).await?;
        }
        Ok(report)
    }

    async fn prune_sessions(&self, retention: u64) -> Result<usize, NodeError> {
        // The walk runs outside the recovery lock (an ended session never comes back to life);
        // under it, each one is read again, so a session a delete erased meanwhile is skipped.
        let candidates = self.db.prunable_sessions(self.now(), retention)?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let mut due = Vec::with_capacity(candidates.len());
        for c in candidates {
            if let Some(s) = self.db.session(&c.session.id)?
                && s.session.prunable(now, retention)
            {
                due.push(s);
            }
        }
        if due.is_empty() {
            return Ok(0);
        }
        let mut batch = crate::db::Batch::default();
        for s in &due {
            batch.remove_session(&s.session.wallet_id, &s.session.id);
        }
        self.epochs().apply(&batch)?;
        for s in &due {
            let s = &s.session;
            self.audit.append(
                now,
                SESSION_PRUNED,
                Some(&s.wallet_id),
                &format!(
                    "session {} ({}, ended at {}) pruned after the {retention}s retention",
                    self.audit.session_tag(&s.id),
                    s.state_name(now),
                    s.ended_at(now).unwrap_or_default()
                ),
            )?;
        }
        self.commit(Vec::new()).await?;
        Ok(due.len())
    }

    async fn expire_unconfirmed(&self, expiry: u64) -> Result<usize, NodeError> {
        let now = self.now();
        let due: Vec<String> = self
            .db
            .unconfirmed_backups()?
            .into_iter()
            .filter(|(_, at)| at.saturating_add(expiry) <= now)
            .map(|(w, _)| w)
            .collect();
        let mut erased = 0;
        for wallet in due {
            let epochs = self.epochs();
            let _guard = self.recovery_lock.lock().await?;
            let now = self.now();
            // Confirmed (or erased) while this sweep waited for the lock.
            let Some(stored_at) = self.db.unconfirmed_since(&wallet)? else {
                continue;
            };
            if stored_at.saturating_add(expiry) > now {
                continue;
            }
            let Some(state) = epochs.expire_if_due(&wallet, now).await? else {
                // Nothing left but the index entry.
                self.db.confirm_backup(&wallet)?;
                self.db.flush().await?;
                continue;
            };
            let cause = format!(
                "backup never confirmed complete within {expiry}s of its deposit (abandoned)"
            );
            let done = epochs
                .erase_records(&wallet, now, &state, WALLET_EXPIRED, &cause)
                .await?;
            tracing::info!(
                wallet = %crate::wallet::parse_wallet_id(wallet.clone())
                    .map(|w| w.log_tag())
                    .unwrap_or_default(),
                sessions = done.sessions,
                "abandoned backup erased"
            );
            erased += 1;
        }
        Ok(erased)
    }
}

/// Runs [`Node::housekeeping_sweep`] every `housekeeping.sweep_interval_secs` until aborted.
pub fn spawn_sweeper(node: Arc<Node>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs(node.config().housekeeping.sweep_interval_secs);
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match node.housekeeping_sweep().await {
                Ok(r) if r == SweepReport::default() => {}
                Ok(r) => tracing::info!(
                    sessions_pruned = r.sessions_pruned,
                    backups_expired = r.backups_expired,
                    "housekeeping"
                ),
                Err(e) => tracing::warn!(error = %e, "housekeeping sweep failed"),
            }
        }
    })
}
