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
//! With `erase_documents` (the owner's touch then authorizes
//! [`dlocker_proto::owner_challenge::DELETE_WITH_DOCUMENTS`] instead of nothing, so the choice
//! cannot be added or stripped by whoever carries the assertion) a node hosting the document
//! locker first erases the wallet's holder there ([`dlocker_locker::server::erase`]: its
//! credentials revoked, its documents, consents, drafts and tasks removed, durably), then the
//! wallet. In that order a crash between the two leaves the wallet, and so the passkey, for a
//! retry to erase the holder with; after the wallet is gone nothing can authorize it any more,
//! which is why a plain delete leaves the holder for good. Other nodes accept the flag and erase
//! what they hold.
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
use dlocker_proto::owner_challenge::{OwnerAction, delete_authorized};
use dlocker_proto::statement::{EraseReceipt, Signed};

/// `DeleteWallet`, parsed.
#[derive(Debug, Clone)]
pub struct DeleteWallet {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The owner's assertion (action delete, covering `erase_documents`).
    pub owner: Option<OwnerAssertion>,
    /// Also erase the wallet's holder at the document locker this node hosts.
    pub erase_documents: bool,
}

/// The audit entry's kind for a delete.
pub const WALLET_DELETED: &str = "wallet_deleted";

impl EpochOps<'_> {
    /// `DeleteWallet`: erases everything this node holds for the wallet, at its owner's request.
    /// Returns the receipt and how many documents the locker erased.
    pub async fn delete_wallet(&self, req: DeleteWallet) -> Result<(Vec<u8>, u32), NodeError> {
        let wallet = req.wallet_id.as_str();
        let locker = match req.erase_documents {
            true => self.locker.get().and_then(std::sync::Weak::upgrade),
            false => None,
        };
        // The locker's write lock before the recovery lock: the locker's owner-touch calls take
        // them in this order.
        let holder_guard = match &locker {
            Some(l) => Some(l.lock_for_erase().await.map_err(locker_error)?),
            None => None,
        };
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
            delete_authorized(req.erase_documents),
            &passkey,
        )
        .map_err(|e| self.explain_choice(e, &req, &passkey))?;
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

        // The holder first (see the module docs); durable before the wallet goes.
        let documents = match holder_guard {
            Some(g) => g
                .erase_holder(wallet)
                .await
                .map_err(locker_error)?
                .map_or(0, |e| e.documents),
            None => 0,
        };
        let Erased { sessions, open } = self
            .erase_records(wallet, now, &state, WALLET_DELETED, "erased by its owner")
            .await?;
        tracing::info!(wallet = %req.wallet_id.log_tag(), sessions, open, documents,
            "wallet deleted by its owner");
        Ok((receipt, u32::try_from(documents).unwrap_or(u32::MAX)))
    }

    /// A refused assertion that would verify for the other choice about the documents: the
    /// owner touched for one delete and the request asks for the other. Said so, as nothing else
    /// would tell the caller why; nothing is spent either way.
    fn explain_choice(
        &self,
        e: NodeError,
        req: &DeleteWallet,
        passkey: &webauthn_rs::prelude::Passkey,
    ) -> NodeError {
        let (NodeError::AssertionRejected, Some(owner)) = (&e, &req.owner) else {
            return e;
        };
        let other = self.owner_touch().verify_owner_assertion(
            req.wallet_id.as_str(),
            OwnerAction::Delete,
            delete_authorized(!req.erase_documents),
            owner.nonces.clone(),
            &owner.assertion_json,
            passkey,
        );
        match (other, req.erase_documents) {
            (Err(_), _) => e,
            (Ok(_), true) => NodeError::invalid(
                "erase_documents",
                "the owner's touch is for a delete that keeps the document locker's documents; \
                 ask the owner to touch again to erase them too",
            ),
            (Ok(_), false) => NodeError::invalid(
                "erase_documents",
                "the owner's touch is for a delete that also erases the document locker's \
                 documents; set erase_documents or ask the owner to touch again",
            ),
        }
    }
}

/// A locker failure during a delete (nothing of the wallet was erased when it happens).
fn locker_error(e: dlocker_locker::server::error::LockerError) -> NodeError {
    NodeError::Internal(format!("document locker: {e}"))
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
