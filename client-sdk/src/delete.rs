//! Delete a wallet's backup at every trustee with one passkey touch (`docs/protocol.md` §13a).
//!
//! [`delete_backup`] asks every trustee of the set for a delete nonce
//! (`BeginEpochAction(DELETE)`), has the owner's passkey sign ONE challenge over all of them
//! (action `delete`, nothing else authorized), and sends that one assertion to every trustee
//! (`DeleteWallet`). Each erases everything it holds for the wallet — every epoch's share,
//! manifest and blob, the passkey credential, recovery sessions (open ones are closed), pending
//! nonces — and answers with a signed [`EraseReceipt`], checked here against the trustee's
//! *pinned* key.
//!
//! A trustee that does not answer keeps the wallet: the call returns
//! [`DeleteError::Incomplete`] naming it and what the others confirmed. Calling
//! [`delete_backup`] again (the same trustee set, one more touch) completes it: trustees that
//! already erased answer "holds no backup for this wallet" and are reported
//! [`TrusteeErasure::NotHeld`]; the rest erase. A receipt, like a "not held" answer, is the
//! trustee's own statement: nothing can prove from outside that a node forgot something.
//!
//! [`delete_backup_with`] and [`DeleteOptions::erase_documents`] also erase the wallet's holder
//! at the document locker (on the bank's node): its credentials are revoked, its documents,
//! consents, drafts and tasks removed. The choice is part of the one touch (the challenge
//! authorizes [`dlocker_proto::owner_challenge::DELETE_WITH_DOCUMENTS`]), so nobody carrying the
//! assertion can add or strip it. Make it with the first delete: once the wallet is gone at the
//! bank no passkey is left there to authorize it.

use crate::authenticator::Passkey;
use crate::error::{AuthError, Failure, TrusteeFailure};
use crate::transport::{Channel, describe_failures, epochs_client, not_held};
use crate::trustees::{TrusteeInfo, TrusteeSet};
use crate::wallet_action;
use dlocker_proto::ids::WalletId;
use dlocker_proto::owner_challenge::{OwnerAction, delete_authorized};
use dlocker_proto::pb::{DeleteWalletRequest, EpochAction, OwnerAssertion};
use dlocker_proto::statement::{EraseReceipt, Signed};

/// What one trustee confirmed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TrusteeErasure {
    /// It erased the wallet now: its signed receipt (verified against its pinned key).
    Erased(Box<Signed<EraseReceipt>>),
    /// It holds nothing for the wallet: erased by an earlier call, or never held it.
    NotHeld,
}

/// Every trustee's confirmation, in trustee-set order.
#[derive(Debug, Clone, Default)]
pub struct DeleteReport {
    /// `(trustee name, confirmation)`.
    pub trustees: Vec<(String, TrusteeErasure)>,
    /// Documents the document locker erased in this call (with
    /// [`DeleteOptions::erase_documents`]; 0 otherwise, or when the locker held none).
    pub documents_erased: u32,
}

/// How to delete. `DeleteOptions::default()` is a plain delete (the locker's documents stay).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteOptions {
    /// Also erase the wallet's holder at the document locker: its credentials revoked, its
    /// documents, consents, drafts and tasks removed.
    pub erase_documents: bool,
}

impl DeleteOptions {
    /// A delete that also erases the document locker's holder.
    pub fn erase_documents() -> Self {
        Self {
            erase_documents: true,
        }
    }
}

impl DeleteReport {
    /// The receipts of the trustees that erased the wallet in this call.
    pub fn receipts(&self) -> impl Iterator<Item = &Signed<EraseReceipt>> {
        self.trustees.iter().filter_map(|(_, e)| match e {
            TrusteeErasure::Erased(r) => Some(r.as_ref()),
            TrusteeErasure::NotHeld => None,
        })
    }
}

/// Why a delete did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteError {
    /// The wallet id is not acceptable.
    #[error("invalid wallet id: {0}")]
    InvalidWalletId(String),
    /// The passkey ceremony failed on the owner's side; nothing was erased.
    #[error("passkey: {0}")]
    Auth(#[from] AuthError),
    /// Some trustees did not confirm. They still hold the wallet (or their answer was lost):
    /// call [`delete_backup`] again to complete it.
    #[error("delete incomplete: {} of {} trustees did not confirm ({})", failed.len(), failed.len() + done.trustees.len(), describe_failures(failed))]
    Incomplete {
        /// `(trustee name, reason)` for every trustee that did not confirm.
        failed: Vec<Failure>,
        /// What the others confirmed.
        done: DeleteReport,
    },
}

async fn erase(
    info: &TrusteeInfo,
    ch: Channel,
    wallet_id: &str,
    owner: OwnerAssertion,
    erase_documents: bool,
) -> Result<(TrusteeErasure, u32), TrusteeFailure> {
    let resp = match epochs_client(ch)
        .delete_wallet(DeleteWalletRequest {
            wallet_id: wallet_id.to_owned(),
            owner: Some(owner),
            erase_documents,
        })
        .await
    {
        Ok(r) => r.into_inner(),
        // Erased by a concurrent call between our Begin and now.
        Err(s) if not_held(&s) => return Ok((TrusteeErasure::NotHeld, 0)),
        Err(s) => return Err(TrusteeFailure::refused("DeleteWallet", &s)),
    };
    let receipt =
        Signed::<EraseReceipt>::decode_trusted(&resp.erase_receipt_encoded, &[info.public_key])
            .map_err(|e| TrusteeFailure::BadAnswer(format!("erase receipt refused: {e}")))?;
    if receipt.body().node_id != info.node_id || receipt.body().wallet_id != wallet_id {
        return Err(TrusteeFailure::BadAnswer(
            "erase receipt names another trustee or wallet".to_owned(),
        ));
    }
    Ok((
        TrusteeErasure::Erased(Box::new(receipt)),
        resp.documents_erased,
    ))
}

/// Erases `wallet_id` at every trustee of `trustees` with ONE touch of the owner's passkey.
///
/// `Ok` when every trustee confirmed (erased now, or holds nothing). On
/// [`DeleteError::Incomplete`] call again with the same set to complete it. Include every trustee
/// that may hold the wallet (during a rotation, the old and the new set). The document locker's
/// documents stay: see [`delete_backup_with`].
pub async fn delete_backup(
    trustees: &TrusteeSet,
    wallet_id: &str,
    auth: &mut dyn Passkey,
) -> Result<DeleteReport, DeleteError> {
    delete_backup_with(trustees, wallet_id, auth, DeleteOptions::default()).await
}

/// [`delete_backup`], with `options` (covered by the owner's touch).
pub async fn delete_backup_with(
    trustees: &TrusteeSet,
    wallet_id: &str,
    auth: &mut dyn Passkey,
    options: DeleteOptions,
) -> Result<DeleteReport, DeleteError> {
    WalletId::parse(wallet_id).map_err(|e| DeleteError::InvalidWalletId(e.to_string()))?;
    let infos = trustees.trustees();
    let erase_documents = options.erase_documents;
    let results = wallet_action::at_every_trustee(
        infos,
        wallet_id,
        EpochAction::Delete,
        wallet_action::OwnerIntent {
            action: OwnerAction::Delete,
            authorized: delete_authorized(erase_documents),
        },
        || (TrusteeErasure::NotHeld, 0),
        auth,
        |info, ch, owner| erase(info, ch, wallet_id, owner, erase_documents),
    )
    .await?;
    let (answers, failed) = crate::error::split_answers(infos, results);
    let documents_erased = answers
        .iter()
        .map(|(_, (_, n))| *n)
        .fold(0u32, u32::saturating_add);
    let trustees = answers
        .into_iter()
        .map(|(name, (e, _))| (name, e))
        .collect();
    let done = DeleteReport {
        trustees,
        documents_erased,
    };
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(DeleteError::Incomplete { failed, done })
    }
}
