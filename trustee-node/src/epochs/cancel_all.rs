//! Cancel all: the wallet's owner closes every open recovery session of the wallet at this
//! trustee, without naming them (`docs/protocol.md` §13b).
//!
//! A cancellation by handle ([`crate::recovery`]'s owner cancel) needs the session ids and `R`,
//! which only the device that opened the recovery knows. A recovery someone else opened (a thief
//! with the owner's bank credentials, say), or one whose device was lost, can be closed this way:
//! one owner touch (action `cancel-all`, empty `authorized`, `BeginEpochAction(CANCEL_ALL)`'s
//! nonce) serves every trustee, and each closes every session of the wallet that can still be
//! cancelled — open, owner-authenticated (approved or not), not released, not expired — and lists
//! them in its answer. Each closed session records a `recovery_cancelled` event ("by owner").
//!
//! Refused without the owner's assertion, with a stranger's passkey or a spent nonce; nothing is
//! closed then.

use super::EpochOps;
use crate::epochs::OwnerAssertion;
use crate::epochs::state::EpochAction;
use crate::error::NodeError;
use crate::recovery::session::Canceller;
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;

/// `CancelAllRecoveries`, parsed.
#[derive(Debug, Clone)]
pub struct CancelAll {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The owner's assertion (action cancel-all).
    pub owner: Option<OwnerAssertion>,
}

impl EpochOps<'_> {
    /// `CancelAllRecoveries`: closes every cancellable recovery session of the wallet, at its
    /// owner's request; returns their ids.
    pub async fn cancel_all_recoveries(&self, req: CancelAll) -> Result<Vec<String>, NodeError> {
        let wallet = req.wallet_id.as_str();
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let state = self
            .expire_if_due(wallet, now)
            .await?
            .ok_or(NodeError::WalletNotFound)?;
        let passkey = self.owner_passkey(wallet, &state)?;
        let updated = self.verify_owner(
            wallet,
            req.owner.as_ref(),
            EpochAction::CancelAll,
            b"",
            &passkey,
        )?;
        if let Some(json) = updated {
            // The credential's signature counter moved: keep it, as every owner touch does.
            self.db.put_passkey_json(wallet, &json)?;
        }
        let recovery = self.recovery();
        let (mut closed, mut events) = (Vec::new(), Vec::new());
        for mut st in recovery.sessions_for_wallet(wallet)? {
            // Released, cancelled or expired sessions stay as they are.
            if st.session.can_cancel(now).is_err() {
                continue;
            }
            events.push(recovery.cancel_session(&mut st, Canceller::Owner, now)?);
            closed.push(st.session.id.clone());
        }
        self.commit(events).await?;
        tracing::info!(wallet = %req.wallet_id.log_tag(), closed = closed.len(),
            "every recovery session closed by the owner");
        Ok(closed)
    }
}
