//! The bank's side of a passkey reset (`docs/protocol.md` §13a, "Passkey reset"): the
//! customer's phone files a request (`Staff.RequestPasskeyReset`, checked like the trustees'
//! `ResetPasskey` but spending nothing), staff list and approve it with signed staff requests
//! under the same distinct-approvers policy as recoveries, and once it holds the bank approval
//! key signs a `PasskeyResetApproval` for the wallet and the new credential, which the phone
//! collects by asking again (held, with `wait_secs`, until staff approve: [`crate::hold`]).

use super::StaffOps;
use crate::db::PasskeyResetRecord;
use crate::epochs::passkey_reset::{ResetError, ResetOwner};
use crate::error::NodeError;
use crate::hold::Look;
use crate::recovery::session::add_distinct_approval;
use dlocker_proto::statement::{PasskeyResetApproval, Signed, StaffAction};
use sha2::{Digest, Sha256};

/// The audit entry's kind when the phone files a reset request at the bank.
pub const PASSKEY_RESET_REQUESTED: &str = "passkey_reset_requested";
/// The audit entry's kind for a staff approval of a reset request.
pub const PASSKEY_RESET_APPROVED: &str = "passkey_reset_approved";

/// A request's id: one per wallet and new credential, so asking again finds it.
fn request_id(wallet_id: &str, fingerprint: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"dlocker/passkey-reset-request/v1");
    h.update((wallet_id.len() as u32).to_be_bytes());
    h.update(wallet_id.as_bytes());
    h.update(fingerprint);
    hex::encode(&h.finalize()[..16])
}

fn approval_live(bytes: &[u8], now: u64) -> bool {
    Signed::<PasskeyResetApproval>::decode(bytes)
        .map(|s| now < s.body().expires_at)
        .unwrap_or(false)
}

/// Whether a request still waits for its live approval.
fn approval_missing(rec: &PasskeyResetRecord, now: u64) -> bool {
    !rec.approval
        .as_deref()
        .is_some_and(|a| approval_live(a, now))
}

/// A reset request with what the staff policy needs.
#[derive(Debug, Clone)]
pub struct ResetStatus {
    /// The stored request.
    pub record: PasskeyResetRecord,
    /// Approvals needed.
    pub approvals_required: u32,
    /// The signed approval, once the policy holds and while it is live.
    pub approval: Option<Vec<u8>>,
}

impl StaffOps<'_> {
    fn status(&self, record: PasskeyResetRecord, now: u64) -> ResetStatus {
        let approval = record.approval.clone().filter(|a| approval_live(a, now));
        ResetStatus {
            record,
            approvals_required: self.approvals_required(),
            approval,
        }
    }

    /// `RequestPasskeyReset`: the owner's side checked as a trustee checks it (nothing spent),
    /// then the wallet's reset request for this credential: found, or filed now (audited, and
    /// an event the bank's notifier tells the customer about).
    ///
    /// With a `wait`, a request found pending is held until staff approve it (an approval's
    /// event wakes the call), it expires or the wallet is erased, at the latest after `wait`:
    /// the phone then needs no polling interval. A call that files the request answers at once
    /// (the app shows the fingerprint staff compare before they can approve).
    pub async fn request_passkey_reset(
        &self,
        owner: ResetOwner,
        wait: std::time::Duration,
    ) -> Result<ResetStatus, NodeError> {
        let (status, filed) = self.file_passkey_reset(owner).await?;
        if filed || status.approval.is_some() || wait.is_zero() {
            return Ok(status);
        }
        let id = status.record.id.clone();
        let wallet = status.record.wallet_id.clone();
        self.hold(&wallet, wait, || {
            let now = self.now();
            match self.db.passkey_reset(&id) {
                Ok(Some(rec)) if now < rec.expires_at && approval_missing(&rec, now) => {
                    let expires_in = self.clock.until(rec.expires_at);
                    Look::Pending(Ok(self.status(rec, now)), Some(expires_in))
                }
                // Approved, or expired (asking again files it anew).
                Ok(Some(rec)) => Look::Done(Ok(self.status(rec, now))),
                // Erased with the wallet.
                Ok(None) => Look::Done(Err(NodeError::WalletNotFound)),
                Err(e) => Look::Done(Err(e.into())),
            }
        })
        .await
    }

    /// The request found or filed, and whether this call filed it.
    async fn file_passkey_reset(
        &self,
        owner: ResetOwner,
    ) -> Result<(ResetStatus, bool), NodeError> {
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let checked = self.epochs().check_reset_owner(&owner, now).await?;
        let wallet = owner.wallet_id.as_str();
        let id = request_id(wallet, &checked.new_fingerprint);
        if let Some(rec) = self.db.passkey_reset(&id)?
            && now < rec.expires_at
        {
            return Ok((self.status(rec, now), false));
        }
        let rec = PasskeyResetRecord {
            id,
            wallet_id: wallet.to_owned(),
            credential_fingerprint: hex::encode(checked.new_fingerprint),
            opened_at: now,
            expires_at: now.saturating_add(self.config.limits.passkey_reset_ttl_secs),
            approvals: Vec::new(),
            approval: None,
        };
        self.db.put_passkey_reset(&rec)?;
        let ev = self.record(
            now,
            PASSKEY_RESET_REQUESTED,
            wallet,
            "",
            &format!(
                "request {} to replace the wallet's credential by {}",
                rec.id,
                &rec.credential_fingerprint[..12]
            ),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(request = %rec.id, "passkey reset requested");
        Ok((self.status(rec, now), true))
    }

    /// `ListPasskeyResets`: the unexpired requests.
    pub async fn list_passkey_resets(&self, request: &[u8]) -> Result<Vec<ResetStatus>, NodeError> {
        let now = self.now();
        self.staff_check(request, StaffAction::ListPasskeyResets, now)?;
        // The staff request's nonce is spent: durable before answering.
        self.commit(Vec::new()).await?;
        Ok(self
            .db
            .passkey_resets()?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| now < r.expires_at)
            .take(crate::recovery::MAX_LISTED_RECOVERIES)
            .map(|r| self.status(r, now))
            .collect())
    }

    /// `ApprovePasskeyReset`: records the staff member's approval; once `approvals_required`
    /// distinct staff approved, signs the `PasskeyResetApproval` with the bank approval key.
    pub async fn approve_passkey_reset(&self, request: &[u8]) -> Result<ResetStatus, NodeError> {
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let v = self.staff_check(request, StaffAction::ApprovePasskeyReset, now)?;
        let ttl = self.bank()?.approval_ttl_secs;
        let bank_key = self
            .bank_key
            .as_ref()
            .ok_or_else(|| NodeError::Internal("no bank approval key".into()))?;
        let mut rec = self
            .db
            .passkey_reset(&v.request.target)?
            .ok_or(ResetError::RequestNotFound)?;
        if now >= rec.expires_at {
            return Err(ResetError::RequestExpired {
                expires_at: rec.expires_at,
            }
            .into());
        }
        // As for recoveries: a lapsed approval's approvers do not carry over.
        if rec
            .approval
            .as_deref()
            .is_some_and(|a| !approval_live(a, now))
        {
            rec.approval = None;
            rec.approvals.clear();
        }
        let required = self.approvals_required();
        let mut events = Vec::new();
        if add_distinct_approval(&mut rec.approvals, &v.staff_id, required) {
            events.push(self.record(
                now,
                PASSKEY_RESET_APPROVED,
                &rec.wallet_id,
                "",
                &format!(
                    "request {}: staff {} ({} of {required} approvals)",
                    rec.id,
                    v.staff_id,
                    rec.approvals.len()
                ),
            )?);
        }
        if rec.approvals.len() >= required as usize && rec.approval.is_none() {
            let fingerprint: [u8; 32] = hex::decode(&rec.credential_fingerprint)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| NodeError::Internal("stored reset fingerprint".into()))?;
            rec.approval = Some(
                Signed::sign(
                    PasskeyResetApproval {
                        bank_node_id: self.identity.node_id().to_owned(),
                        wallet_id: rec.wallet_id.clone(),
                        credential_fingerprint: fingerprint,
                        request_id: rec.id.clone(),
                        issued_at: now,
                        expires_at: now.saturating_add(ttl),
                        approvers: rec.approvals.clone(),
                    },
                    &bank_key.signing_key(),
                )
                .encode(),
            );
            tracing::info!(request = %rec.id, "passkey reset approval signed");
        }
        self.db.put_passkey_reset(&rec)?;
        self.commit(events).await?;
        Ok(self.status(rec, now))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_differ_per_wallet_and_credential() {
        let a = super::request_id("w", &[1; 32]);
        assert_eq!(a.len(), 32);
        assert_eq!(a, super::request_id("w", &[1; 32]));
        assert_ne!(a, super::request_id("w", &[2; 32]));
        assert_ne!(a, super::request_id("x", &[1; 32]));
    }
}
