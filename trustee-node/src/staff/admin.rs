//! Staff administration on the bank node: signed staff-admin requests (role `admin`) list and
//! change the staff and the approval policy ([`super::roster`]), applied live and persisted.

use super::StaffOps;
use super::roster::{Roster, apply, describe, store};
use crate::error::NodeError;
use crate::recovery::MAX_STATEMENT_BYTES;

impl StaffOps<'_> {
    /// The staff and policy in force now.
    pub fn roster(&self) -> Roster {
        Roster {
            staff: self
                .staff_gate
                .as_ref()
                .map(crate::staff::auth::StaffGate::staff)
                .unwrap_or_default(),
            approvals_required: self.approvals_required(),
        }
    }

    /// Whether staff are managed by staff-admin requests (then a config reload leaves them).
    pub fn roster_is_managed(&self) -> bool {
        self.db.has_roster()
    }

    /// `ManageStaff`: a signed staff-admin request; returns the roster after it. A change is
    /// stored and flushed before it takes effect and before the answer.
    pub async fn staff_admin(&self, bytes: &[u8]) -> Result<Roster, NodeError> {
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(NodeError::invalid(
                "staff_admin_request_encoded",
                format!("{} bytes; at most {MAX_STATEMENT_BYTES}", bytes.len()),
            ));
        }
        // Serialised with approvals, which read the policy.
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let gate = self.staff_gate.as_ref().ok_or_else(|| {
            NodeError::Internal("staff call on a node without the bank role".into())
        })?;
        self.sync_roster()?;
        let (by, req) = gate.check_admin(bytes, now).inspect_err(|e| {
            tracing::warn!(error = %e, "staff admin request refused");
        })?;
        let current = self.roster();
        let next = match apply(&current, &req.change) {
            Ok(next) => next,
            Err(e) => {
                // The nonce is spent either way.
                self.commit(Vec::new()).await?;
                tracing::warn!(staff = %by, error = %e, "staff change refused");
                return Err(e.into());
            }
        };
        if next == current {
            self.commit(Vec::new()).await?;
            return Ok(current);
        }
        store(&self.db, &next)?;
        let what = describe(&req.change);
        let event = self.record(now, "staff_changed", "", "", &format!("by {by}: {what}"))?;
        self.commit(vec![event]).await?;
        gate.replace_staff(next.staff.clone());
        self.approvals_required
            .store(next.approvals_required, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(staff = %by, change = %what, "staff changed");
        Ok(next)
    }
}
