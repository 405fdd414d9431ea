//! The owner closes every open recovery session of the wallet at every trustee, with one
//! passkey touch and without a saved handle (`docs/protocol.md` §13b).
//!
//! [`cancel_all_recoveries`] asks every trustee for a nonce (`BeginEpochAction(CANCEL_ALL)`),
//! has the owner's passkey sign ONE challenge over all of them (action `cancel-all`, nothing else
//! authorized), and sends that assertion to every trustee (`CancelAllRecoveries`). Each closes
//! every session of the wallet that can still be cancelled — whoever opened it, for whatever
//! device key — and lists what it closed. For a recovery this device opened, the handle's
//! [`crate::protocol::cancel_recovery`] is the narrower tool; this one is for a recovery the
//! owner did not start (a thief's, reported by the bank's notification) or whose handle is lost.

use crate::authenticator::Passkey;
use crate::error::{AuthError, Failure, TrusteeFailure};
use crate::transport::{Channel, describe_failures, epochs_client, not_held};
use crate::trustees::TrusteeSet;
use crate::wallet_action;
use dlocker_proto::ids::WalletId;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb::{CancelAllRecoveriesRequest, EpochAction, OwnerAssertion};

/// What one trustee did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrusteeCancelAll {
    /// It closed these sessions (none: there was nothing open).
    Closed(Vec<String>),
    /// It holds nothing for the wallet.
    NotHeld,
}

/// Every trustee's answer, in trustee-set order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelAllReport {
    /// `(trustee name, what it did)`.
    pub trustees: Vec<(String, TrusteeCancelAll)>,
}

impl CancelAllReport {
    /// How many sessions were closed in all.
    pub fn closed(&self) -> usize {
        self.trustees
            .iter()
            .map(|(_, t)| match t {
                TrusteeCancelAll::Closed(ids) => ids.len(),
                TrusteeCancelAll::NotHeld => 0,
            })
            .sum()
    }
}

/// Why closing every session did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelAllError {
    /// The passkey ceremony failed on the owner's side; nothing was closed.
    #[error("passkey: {0}")]
    Auth(#[from] AuthError),
    /// Some trustees did not confirm; their sessions may still be open (a release there still
    /// needs `t` trustees, the bank's approval and the waiting period): call again.
    #[error("cancel all incomplete: {} of {} trustees did not confirm ({})", failed.len(), failed.len() + done.trustees.len(), describe_failures(failed))]
    Incomplete {
        /// Every trustee that did not confirm, and why.
        failed: Vec<Failure>,
        /// What the others did.
        done: CancelAllReport,
    },
}

async fn close_all(
    ch: Channel,
    wallet_id: &WalletId,
    owner: OwnerAssertion,
) -> Result<TrusteeCancelAll, TrusteeFailure> {
    let request = CancelAllRecoveriesRequest {
        wallet_id: wallet_id.as_str().to_owned(),
        owner: Some(owner),
    };
    match epochs_client(ch).cancel_all_recoveries(request).await {
        Ok(r) => Ok(TrusteeCancelAll::Closed(
            r.into_inner().cancelled_session_ids,
        )),
        // Erased by a concurrent delete between our Begin and now.
        Err(s) if not_held(&s) => Ok(TrusteeCancelAll::NotHeld),
        Err(s) => Err(TrusteeFailure::refused("CancelAllRecoveries", &s)),
    }
}

/// Closes every open recovery session of `wallet_id` at every trustee of `trustees` with ONE
/// touch of the owner's passkey. `Ok` when every trustee answered.
pub async fn cancel_all_recoveries(
    trustees: &TrusteeSet,
    wallet_id: &WalletId,
    auth: &mut dyn Passkey,
) -> Result<CancelAllReport, CancelAllError> {
    let infos = trustees.trustees();
    let results = wallet_action::at_every_trustee(
        infos,
        wallet_id.as_str(),
        EpochAction::CancelAll,
        wallet_action::OwnerIntent {
            action: OwnerAction::CancelAll,
            authorized: b"",
        },
        || TrusteeCancelAll::NotHeld,
        auth,
        |_, ch, owner| close_all(ch, wallet_id, owner),
    )
    .await?;
    let (trustees, failed) = crate::error::split_answers(infos, results);
    let done = CancelAllReport { trustees };
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(CancelAllError::Incomplete { failed, done })
    }
}
