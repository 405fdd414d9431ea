//! The shape delete and cancel-all share: an owner action on the whole wallet at every trustee
//! with ONE passkey touch. `BeginEpochAction` everywhere (a trustee that holds nothing for the
//! wallet answers NOT_FOUND and is simply done), one assertion over every ready trustee's nonce,
//! then the action's own RPC at each of them.

use crate::authenticator::Passkey;
use crate::ceremony;
use crate::error::{AuthError, TrusteeFailure};
use crate::transport::{Channel, connect_channel, epochs_client, not_held};
use crate::trustees::TrusteeInfo;
use dlocker_proto::owner_challenge::{OwnerAction, TrusteeNonce};
use dlocker_proto::pb::{
    BeginEpochActionRequest, BeginEpochActionResponse, EpochAction, OwnerAssertion,
};
use futures::future::join_all;

/// A trustee's answer to the Begin call.
enum Begun {
    Ready(Channel, Box<BeginEpochActionResponse>, TrusteeNonce),
    NotHeld,
}

async fn begin(
    info: &TrusteeInfo,
    wallet_id: &str,
    action: EpochAction,
) -> Result<Begun, TrusteeFailure> {
    let ch = connect_channel(info).await?;
    let resp = match epochs_client(ch.clone())
        .begin_epoch_action(BeginEpochActionRequest {
            wallet_id: wallet_id.to_owned(),
            action: action as i32,
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

/// What the owner's one touch authorizes: the action, over `authorized`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnerIntent<'b> {
    /// The challenge's action.
    pub action: OwnerAction,
    /// The challenge's authorized value.
    pub authorized: &'b [u8],
}

/// Runs `action` on `wallet_id` at every trustee of `infos`: Begin everywhere, ONE touch of the
/// owner's passkey (`touch`) when any trustee is
/// ready, then `send(trustee, channel, assertion)` at each ready one, concurrently. Per trustee in
/// `infos` order: its outcome, `not_held()` for one that holds nothing, `None` if never asked.
pub(crate) async fn at_every_trustee<'a, T, F, Fut>(
    infos: &'a [TrusteeInfo],
    wallet_id: &str,
    action: EpochAction,
    touch: OwnerIntent<'_>,
    not_held: impl Fn() -> T,
    auth: &mut dyn Passkey,
    send: F,
) -> Result<Vec<Option<Result<T, TrusteeFailure>>>, AuthError>
where
    F: Fn(&'a TrusteeInfo, Channel, OwnerAssertion) -> Fut,
    Fut: std::future::Future<Output = Result<T, TrusteeFailure>>,
{
    let begun = join_all(infos.iter().map(|info| begin(info, wallet_id, action))).await;
    let mut results: Vec<Option<Result<T, TrusteeFailure>>> = infos.iter().map(|_| None).collect();
    let mut ready = Vec::new();
    for (i, b) in begun.into_iter().enumerate() {
        match b {
            Ok(Begun::Ready(ch, resp, nonce)) => ready.push((i, ch, resp, nonce)),
            Ok(Begun::NotHeld) => results[i] = Some(Ok(not_held())),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    if ready.is_empty() {
        return Ok(results);
    }
    let template = ceremony::first_request_template(
        ready
            .iter()
            .map(|(_, _, r, _)| r.request_options_json.as_str()),
    )
    .to_owned();
    let nonces: Vec<TrusteeNonce> = ready.iter().map(|(_, _, _, n)| n.clone()).collect();
    let touch = ceremony::assert(
        auth,
        touch.action,
        wallet_id,
        touch.authorized,
        nonces,
        &template,
    )
    .await?;
    let answers = join_all(ready.into_iter().map(|(i, ch, resp, _)| {
        let owner = OwnerAssertion {
            challenge_id: resp.challenge_id,
            assertion_json: touch.response_json.clone(),
            nonces: touch.nonces.clone(),
        };
        let sent = send(&infos[i], ch, owner);
        async move { (i, sent.await) }
    }))
    .await;
    for (i, r) in answers {
        results[i] = Some(r);
    }
    Ok(results)
}
