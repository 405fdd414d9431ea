//! The owner closes every open recovery session of the wallet at every trustee, with one
//! passkey touch and without a saved handle (`docs/protocol.md` §13b).
//!
//! [`cancel_all_recoveries`] asks every trustee for a nonce (`BeginEpochAction(CANCEL_ALL)`),
//! has the owner's passkey sign ONE challenge over all of them (action `cancel-all`, nothing else
//! authorized), and sends that assertion to every trustee (`CancelAllRecoveries`). Each closes
//! every session of the wallet that can still be cancelled — whoever opened it, for whatever
//! device key — and lists what it closed. For a recovery this device opened, the handle's
//! [`crate::cancel_recovery`] is the narrower tool; this one is for a recovery the owner did not
//! start (a thief's, reported by the bank's notification) or whose handle is lost.

use crate::authenticator::Passkey;
use crate::ceremony;
use crate::error::{AuthError, Failure, TrusteeFailure};
use crate::transport::{Channel, connect_channel, describe_failures, epochs_client, not_held};
use crate::trustees::{TrusteeInfo, TrusteeSet};
use dlocker_proto::ids::WalletId;
use dlocker_proto::owner_challenge::{OwnerAction, TrusteeNonce};
use dlocker_proto::pb::{
    BeginEpochActionRequest, BeginEpochActionResponse, CancelAllRecoveriesRequest, EpochAction,
    OwnerAssertion,
};
use futures::future::join_all;

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

enum Begun {
    Ready(Channel, Box<BeginEpochActionResponse>, TrusteeNonce),
    NotHeld,
}

async fn begin(info: &TrusteeInfo, wallet_id: &WalletId) -> Result<Begun, TrusteeFailure> {
    let ch = connect_channel(info).await?;
    let resp = match epochs_client(ch.clone())
        .begin_epoch_action(BeginEpochActionRequest {
            wallet_id: wallet_id.as_str().to_owned(),
            action: EpochAction::CancelAll as i32,
            manifest_hash: Vec::new(),
        })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) if not_held(&s) => return Ok(Begun::NotHeld),
        Err(s) => return Err(TrusteeFailure::refused("BeginEpochAction", &s)),
    };
    let nonce = ceremony::trustee_nonce(&info.node_id, &resp.nonce)?;
    Ok(Begun::Ready(ch, Box::new(resp), nonce))
}

/// Closes every open recovery session of `wallet_id` at every trustee of `trustees` with ONE
/// touch of the owner's passkey. `Ok` when every trustee answered.
pub async fn cancel_all_recoveries(
    trustees: &TrusteeSet,
    wallet_id: &WalletId,
    auth: &mut dyn Passkey,
) -> Result<CancelAllReport, CancelAllError> {
    let infos = trustees.trustees();
    let begun = join_all(infos.iter().map(|info| begin(info, wallet_id))).await;
    let mut results: Vec<Option<Result<TrusteeCancelAll, TrusteeFailure>>> =
        vec![None; infos.len()];
    let mut ready = Vec::new();
    for (i, b) in begun.into_iter().enumerate() {
        match b {
            Ok(Begun::Ready(ch, resp, nonce)) => ready.push((i, ch, resp, nonce)),
            Ok(Begun::NotHeld) => results[i] = Some(Ok(TrusteeCancelAll::NotHeld)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    if !ready.is_empty() {
        let template = ceremony::first_request_template(
            ready
                .iter()
                .map(|(_, _, r, _)| r.request_options_json.as_str()),
        )
        .to_owned();
        let nonces: Vec<TrusteeNonce> = ready.iter().map(|(_, _, _, n)| n.clone()).collect();
        let touch = ceremony::assert(
            auth,
            OwnerAction::CancelAll,
            wallet_id.as_str(),
            b"",
            nonces,
            &template,
        )
        .await?;
        let answers = join_all(ready.into_iter().map(|(i, ch, resp, _)| {
            let request = CancelAllRecoveriesRequest {
                wallet_id: wallet_id.as_str().to_owned(),
                owner: Some(OwnerAssertion {
                    challenge_id: resp.challenge_id,
                    assertion_json: touch.response_json.clone(),
                    nonces: touch.nonces.clone(),
                }),
            };
            async move {
                let r = match epochs_client(ch).cancel_all_recoveries(request).await {
                    Ok(r) => Ok(TrusteeCancelAll::Closed(
                        r.into_inner().cancelled_session_ids,
                    )),
                    // Erased by a concurrent delete between our Begin and now.
                    Err(s) if not_held(&s) => Ok(TrusteeCancelAll::NotHeld),
                    Err(s) => Err(TrusteeFailure::refused("CancelAllRecoveries", &s)),
                };
                (i, r)
            }
        }))
        .await;
        for (i, r) in answers {
            results[i] = Some(r);
        }
    }
    let (trustees, failed) = crate::error::split_answers(infos, results);
    let done = CancelAllReport { trustees };
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(CancelAllError::Incomplete { failed, done })
    }
}
