//! Delete: the wallet's owner erases the wallet at this trustee (`docs/protocol.md` §13a).
//!
//! One owner touch (action `delete`, empty `authorized`, `BeginEpochAction(DELETE)`'s nonce)
//! serves every trustee. After the assertion verified, ONE [`crate::db::Batch`] removes everything
//! the node holds that names the wallet:
//!
//! - the active epoch: share (sealed at rest), manifest, blob, enrollment receipt, wallet record;
//! - a staged epoch (rotation phase 1), and the epoch state;
//! - the passkey credential (so no later ceremony can authenticate as this owner here);
//! - every recovery session of the wallet, open ones included (a delete closes them) and their
//!   index;
//! - every pending owner nonce and enrollment ceremony record of the wallet;
//! - a retirement record left by an earlier rotation (it names the wallet).
//!
//! Then the wallet's stored events are dropped, one audit entry is appended — the audit log
//! names the wallet by its keyed tag only — and the database is flushed before the signed
//! [`EraseReceipt`] is returned. Nothing of the wallet is kept to answer a retry: a retried delete
//! finds the wallet unknown (`NOT_FOUND`, "holds no backup for this wallet"), which is what tells
//! the client this trustee is done.
//!
//! An open recovery session does not block a delete: the owner's passkey authorizes both, and a
//! recovery of a wallet its owner erased has nothing left to release. A delete is refused without
//! the owner's assertion, with a stranger's passkey or a spent nonce, and nothing is written then.

use super::EpochOps;
use crate::db::{Batch, EPOCHS_TREE};
use crate::epochs::state::EpochAction;
use crate::epochs::{OwnerAssertion, hash_from_hex};
use crate::error::NodeError;
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;
use dlocker_proto::statement::{EraseReceipt, Signed};

/// `DeleteWallet`, parsed.
#[derive(Debug, Clone)]
pub struct DeleteWallet {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The owner's assertion (action delete).
    pub owner: Option<OwnerAssertion>,
}

/// The audit entry's kind for a delete.
pub const WALLET_DELETED: &str = "wallet_deleted";

impl EpochOps<'_> {
    /// `DeleteWallet`: erases everything this node holds for the wallet, at its owner's request.
    pub async fn delete_wallet(&self, req: DeleteWallet) -> Result<Vec<u8>, NodeError> {
        let wallet = req.wallet_id.as_str();
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let state = self
            .expire_if_due(wallet, now)
            .await?
            .ok_or(NodeError::WalletNotFound)?;
        let passkey = self.owner_passkey(wallet, &state)?;
        self.verify_owner(
            wallet,
            req.owner.as_ref(),
            EpochAction::Delete,
            b"",
            &passkey,
        )?;
        let active = state.active().cloned();
        let staged = state.staged().cloned();
        let receipt = Signed::sign(
            EraseReceipt {
                node_id: self.identity.node_id().to_owned(),
                wallet_id: wallet.to_owned(),
                epoch: active.as_ref().map(|a| a.epoch).unwrap_or(0),
                manifest_hash: active
                    .as_ref()
                    .map(|a| hash_from_hex(EPOCHS_TREE, &a.manifest_hash))
                    .transpose()?,
                staged_manifest_hash: staged
                    .as_ref()
                    .map(|s| hash_from_hex(EPOCHS_TREE, &s.manifest_hash))
                    .transpose()?,
                erased_at: now,
            },
            &self.identity.signing_key(),
        )
        .encode();

        let Erased { sessions, open } = self
            .erase_records(wallet, now, &state, WALLET_DELETED, "erased by its owner")
            .await?;
        tracing::info!(wallet = %req.wallet_id.log_tag(), sessions, open, "wallet deleted by its \
            owner");
        Ok(receipt)
    }
}

/// What [`EpochOps::erase_records`] removed besides the wallet's records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Erased {
    /// Recovery sessions erased.
    pub sessions: usize,
    /// How many of them were open (now closed).
    pub open: usize,
}

impl EpochOps<'_> {
    /// Erases everything this node holds that names the wallet (the module docs list it) in ONE
    /// batch, drops its events, appends one audit entry `kind` (detail: `cause`, then what was
    /// erased) and makes it durable. The caller holds the recovery lock and has read `state`
    /// under it. Shared by the owner's delete and housekeeping's expiry of abandoned backups.
    pub(crate) async fn erase_records(
        &self,
        wallet: &str,
        now: u64,
        state: &crate::epochs::state::EpochState,
        kind: &str,
        cause: &str,
    ) -> Result<Erased, NodeError> {
        let tag = self.audit.wallet_tag(wallet);
        let active = state.active();
        let staged = state.staged();
        let mut batch = Batch::default();
        batch.remove_wallet_data(wallet);
        // The bank's sealed record of who the customer is.
        batch.remove_customer(wallet);
        batch.remove_retired(&tag);
        let (mut sessions, mut open) = (0usize, 0usize);
        for id in self.db.session_ids_of_wallet(wallet)? {
            // A record that does not decode counts as not open (it is erased all the same); a
            // failing database fails the erase.
            let live = match self.db.session(&id) {
                Ok(Some(s)) => s.session.is_live(now),
                Ok(None) | Err(crate::db::StoreError::Corrupt { .. }) => false,
                Err(e) => return Err(e.into()),
            };
            if live {
                open += 1;
            }
            sessions += 1;
            batch.remove_session(wallet, &id);
        }
        // The bank's passkey reset requests name the wallet.
        for (k, r) in self.db.passkey_resets()? {
            if r.wallet_id == wallet {
                batch.remove_passkey_reset(&k);
            }
        }
        // Owner nonces name the wallet (a delete's just spent among them).
        for k in self.db.owner_nonces_of_wallet(wallet)? {
            batch.remove_owner_nonce(&k);
        }
        // Enrollment ceremonies (finished ones are kept until they expire) name the wallet too.
        // The node's count of open ceremonies catches up at the next sweep.
        for k in self.db.ceremonies_of_wallet(wallet)? {
            batch.remove_ceremony(&k);
        }
        self.apply(&batch)?;
        // The events named the wallet in clear; the audit entry names it by its keyed tag only.
        self.events.forget_wallet(wallet, u64::MAX)?;
        let detail = format!(
            "{cause}: {}{}; {sessions} recovery session(s), {open} of them open and now closed",
            active
                .map(|a| format!("epoch {} (share, manifest, blob, passkey)", a.epoch))
                .unwrap_or_else(|| "no active epoch".to_owned()),
            staged
                .map(|s| format!(", staged epoch {}", s.epoch))
                .unwrap_or_default(),
        );
        self.audit.append(now, kind, Some(wallet), &detail)?;
        self.commit(Vec::new()).await?;
        Ok(Erased { sessions, open })
    }
}
