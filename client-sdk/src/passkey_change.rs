//! Replace the wallet's passkey at every trustee (`docs/protocol.md` §13a).
//!
//! [`change_passkey`] asks every trustee for a change nonce (`BeginEpochAction(CHANGE_PASSKEY)`),
//! then costs two touches whatever the number of trustees: the NEW authenticator registers one
//! credential over the one-touch challenge (action change-passkey, nothing authorized), and the
//! CURRENT one asserts over the same nonces with the new credential's fingerprint as the
//! authorized value. Every trustee verifies both and swaps the credential; from then on only the
//! new passkey works there.
//!
//! A trustee that did not confirm keeps the old credential: the call returns
//! [`PasskeyChangeError::Incomplete`] with the new credential's fingerprint. Keep it and call
//! [`resume_passkey_change`] with the CURRENT (old) authenticator: it hands the lagging trustees
//! the new credential as a trustee that changed holds it, authorized by one more touch of the old
//! passkey over its fingerprint.

use crate::authenticator::Passkey;
use crate::ceremony;
use crate::error::{AuthError, Failure, TrusteeFailure};
use crate::transport::Channel;
use crate::transport::{connect_channel, describe_failures, epochs_client};
use crate::trustees::{TrusteeInfo, TrusteeSet};
use base64::Engine as _;
use dlocker_proto::ids::WalletId;
use dlocker_proto::owner_challenge::{OwnerAction, TrusteeNonce, credential_fingerprint};
use dlocker_proto::pb::change_passkey_request::NewCredential;
use dlocker_proto::pb::{
    BeginEpochActionRequest, BeginEpochActionResponse, ChangePasskeyRequest, EpochAction,
    OwnerAssertion,
};
use futures::future::join_all;
use webauthn_rs::prelude::{RegisterPublicKeyCredential, Url, Uuid, WebauthnBuilder};

/// What one trustee confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrusteePasskey {
    /// It replaced the credential in this call.
    Changed,
    /// It already held the new credential (an earlier call changed it).
    AlreadyChanged,
}

/// Every trustee's confirmation, in trustee-set order.
#[derive(Debug, Clone, Default)]
pub struct PasskeyChangeReport {
    /// The new credential's fingerprint (`docs/protocol.md` §12a); keep it to resume.
    pub new_fingerprint: [u8; 32],
    /// `(trustee name, confirmation)`.
    pub trustees: Vec<(String, TrusteePasskey)>,
}

/// Why a passkey change did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyChangeError {
    /// The wallet id is not acceptable.
    #[error("invalid wallet id: {0}")]
    InvalidWalletId(String),
    /// A passkey ceremony failed on the owner's side; nothing was changed.
    #[error("passkey: {0}")]
    Auth(#[from] AuthError),
    /// No trustee answered the change's first call; nothing was changed.
    #[error("no trustee can take the change: {}", describe_failures(.0))]
    Unavailable(Vec<Failure>),
    /// No trustee holds the credential to resume with: start over with [`change_passkey`].
    #[error("no trustee holds the new credential; start the change again")]
    NothingToResume,
    /// Some trustees did not confirm and still hold the old credential: call
    /// [`resume_passkey_change`] with `done.new_fingerprint` and the old authenticator.
    #[error("passkey change incomplete: {} of {} trustees did not confirm ({})", failed.len(), failed.len() + done.trustees.len(), describe_failures(failed))]
    Incomplete {
        /// `(trustee name, reason)` for every trustee that did not confirm.
        failed: Vec<Failure>,
        /// What the others confirmed, and the new credential's fingerprint.
        done: PasskeyChangeReport,
    },
}

/// `BeginEpochAction(action)` at one trustee: its connection, answer and nonce (a passkey
/// change's or a reset's).
pub(crate) async fn begin(
    info: &TrusteeInfo,
    wallet_id: &str,
    action: EpochAction,
) -> Result<(Channel, BeginEpochActionResponse, TrusteeNonce), TrusteeFailure> {
    let ch = connect_channel(info).await?;
    let resp = epochs_client(ch.clone())
        .begin_epoch_action(BeginEpochActionRequest {
            wallet_id: wallet_id.to_owned(),
            action: action as i32,
            manifest_hash: Vec::new(),
        })
        .await
        .map_err(|s| TrusteeFailure::refused("BeginEpochAction", &s))?
        .into_inner();
    let nonce = ceremony::trustee_nonce(&info.node_id, &resp.nonce)?;
    Ok((ch, resp, nonce))
}

async fn send(
    ch: Channel,
    wallet_id: &str,
    owner: OwnerAssertion,
    new_credential: NewCredential,
    new_fingerprint: &[u8; 32],
) -> Result<(), TrusteeFailure> {
    let resp = epochs_client(ch)
        .change_passkey(ChangePasskeyRequest {
            wallet_id: wallet_id.to_owned(),
            owner: Some(owner),
            new_credential: Some(new_credential),
        })
        .await
        .map_err(|s| TrusteeFailure::refused("ChangePasskey", &s))?
        .into_inner();
    if resp.credential_fingerprint != new_fingerprint {
        return Err(TrusteeFailure::BadAnswer(
            "stored another credential than the one authorized".to_owned(),
        ));
    }
    Ok(())
}

/// The fingerprint the trustees will compute for `cred`: the registration is verified here with
/// webauthn-rs exactly as a trustee will (relying party from the options, origin from the
/// credential, the challenge the client computed) and fingerprinted like
/// `trustee-node`'s `passkey_fingerprint` (credential id ‖ webauthn-rs JSON of the COSE key).
pub(crate) fn registered_fingerprint(
    options: &webauthn_rs::prelude::CreationChallengeResponse,
    cred: &RegisterPublicKeyCredential,
    challenge: &[u8; 32],
) -> Result<[u8; 32], AuthError> {
    let bad = |e: &dyn std::fmt::Display| AuthError::Authenticator(format!("new passkey: {e}"));
    let client_data: serde_json::Value =
        serde_json::from_slice(cred.response.client_data_json.as_ref()).map_err(|e| bad(&e))?;
    let origin = client_data["origin"]
        .as_str()
        .and_then(|o| Url::parse(o).ok())
        .ok_or_else(|| bad(&"the registration names no origin"))?;
    let webauthn = WebauthnBuilder::new(&options.public_key.rp.id, &origin)
        .and_then(|b| b.build())
        .map_err(|e| bad(&e))?;
    let user = Uuid::from_slice(options.public_key.user.id.as_ref()).map_err(|e| bad(&e))?;
    let name = options.public_key.user.name.clone();
    let (_, state) = webauthn
        .start_passkey_registration(user, &name, &name, None)
        .map_err(|e| bad(&e))?;
    let mut state = serde_json::to_value(&state).map_err(|e| bad(&e))?;
    state["rs"]["challenge"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(challenge)
        .into();
    let state = serde_json::from_value(state).map_err(|e| bad(&e))?;
    let passkey = webauthn
        .finish_passkey_registration(cred, &state)
        .map_err(|e| bad(&e))?;
    let cose = serde_json::to_vec(passkey.get_public_key()).map_err(|e| bad(&e))?;
    Ok(credential_fingerprint(passkey.cred_id().as_ref(), &cose))
}

fn finish(
    infos: &[TrusteeInfo],
    results: Vec<Option<Result<TrusteePasskey, TrusteeFailure>>>,
    new_fingerprint: [u8; 32],
) -> Result<PasskeyChangeReport, PasskeyChangeError> {
    let mut done = PasskeyChangeReport {
        new_fingerprint,
        trustees: Vec::new(),
    };
    let mut failed = Vec::new();
    for (info, r) in infos.iter().zip(results) {
        match r {
            Some(Ok(s)) => done.trustees.push((info.name.clone(), s)),
            Some(Err(e)) => failed.push((info.name.clone(), e)),
            None => failed.push((info.name.clone(), "no answer".into())),
        }
    }
    if failed.is_empty() {
        Ok(done)
    } else {
        Err(PasskeyChangeError::Incomplete { failed, done })
    }
}

/// Replaces the wallet's passkey at every trustee: one touch of `new` (registration) and one of
/// `current` (authorizing exactly that credential).
pub async fn change_passkey(
    trustees: &TrusteeSet,
    wallet_id: &str,
    current: &mut dyn Passkey,
    new: &mut dyn Passkey,
) -> Result<PasskeyChangeReport, PasskeyChangeError> {
    WalletId::parse(wallet_id).map_err(|e| PasskeyChangeError::InvalidWalletId(e.to_string()))?;
    let infos = trustees.trustees();
    let begun = join_all(
        infos
            .iter()
            .map(|info| begin(info, wallet_id, EpochAction::ChangePasskey)),
    )
    .await;
    let mut results: Vec<Option<Result<TrusteePasskey, TrusteeFailure>>> = vec![None; infos.len()];
    let mut ready = Vec::new();
    for (i, b) in begun.into_iter().enumerate() {
        match b {
            Ok((ch, resp, nonce)) => ready.push((i, ch, resp, nonce)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    if ready.is_empty() {
        return Err(PasskeyChangeError::Unavailable(
            infos
                .iter()
                .zip(results)
                .filter_map(|(info, r)| r.and_then(Result::err).map(|e| (info.name.clone(), e)))
                .collect(),
        ));
    }
    let nonces: Vec<TrusteeNonce> = ready.iter().map(|(_, _, _, n)| n.clone()).collect();
    let wire = ceremony::to_wire(&nonces);
    // Touch 1: the new credential, over the change's challenge (nothing authorized).
    let creation = ceremony::first_creation_template(
        ready
            .iter()
            .map(|(_, _, r, _)| r.creation_options_json.as_str()),
    );
    let c1 = ceremony::challenge(OwnerAction::ChangePasskey, wallet_id, b"", nonces.clone())?;
    let options = ceremony::creation_options(creation, &c1)?;
    let options_json = serde_json::to_string(&options)
        .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?;
    let registration_json = new.create(options_json).await?;
    let cred: RegisterPublicKeyCredential = serde_json::from_str(&registration_json)
        .map_err(|e| AuthError::Authenticator(format!("new passkey: {e}")))?;
    let new_fp = registered_fingerprint(&options, &cred, &c1)?;
    // Touch 2: the current credential names the new one.
    let template = ceremony::first_request_template(
        ready
            .iter()
            .map(|(_, _, r, _)| r.request_options_json.as_str()),
    )
    .to_owned();
    let c2 = ceremony::challenge(OwnerAction::ChangePasskey, wallet_id, &new_fp, nonces)?;
    let request = serde_json::to_string(&ceremony::request_options(&template, &c2)?)
        .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?;
    let assertion_json = current.get(request).await?;
    let answers = join_all(ready.into_iter().map(|(i, ch, resp, _)| {
        let owner = OwnerAssertion {
            challenge_id: resp.challenge_id,
            assertion_json: assertion_json.clone(),
            nonces: wire.clone(),
        };
        let cred = NewCredential::RegistrationJson(registration_json.clone());
        async move { (i, send(ch, wallet_id, owner, cred, &new_fp).await) }
    }))
    .await;
    for (i, r) in answers {
        results[i] = Some(r.map(|()| TrusteePasskey::Changed));
    }
    finish(infos, results, new_fp)
}

/// Completes a partial passkey change: trustees already holding the credential `new_fingerprint`
/// are left alone; the others get it, authorized by one touch of the CURRENT (old) passkey.
pub async fn resume_passkey_change(
    trustees: &TrusteeSet,
    wallet_id: &str,
    current: &mut dyn Passkey,
    new_fingerprint: &[u8; 32],
) -> Result<PasskeyChangeReport, PasskeyChangeError> {
    WalletId::parse(wallet_id).map_err(|e| PasskeyChangeError::InvalidWalletId(e.to_string()))?;
    let infos = trustees.trustees();
    let begun = join_all(
        infos
            .iter()
            .map(|info| begin(info, wallet_id, EpochAction::ChangePasskey)),
    )
    .await;
    let mut results: Vec<Option<Result<TrusteePasskey, TrusteeFailure>>> = vec![None; infos.len()];
    let mut pending = Vec::new();
    let mut new_passkey_json = None;
    for (i, b) in begun.into_iter().enumerate() {
        match b {
            Ok((_, resp, _)) if resp.credential_fingerprint == new_fingerprint => {
                new_passkey_json.get_or_insert(resp.passkey_json);
                results[i] = Some(Ok(TrusteePasskey::AlreadyChanged));
            }
            Ok((ch, resp, nonce)) => pending.push((i, ch, resp, nonce)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    let Some(passkey_json) = new_passkey_json else {
        return Err(PasskeyChangeError::NothingToResume);
    };
    if !pending.is_empty() {
        let nonces: Vec<TrusteeNonce> = pending.iter().map(|(_, _, _, n)| n.clone()).collect();
        let template = ceremony::first_request_template(
            pending
                .iter()
                .map(|(_, _, r, _)| r.request_options_json.as_str()),
        )
        .to_owned();
        let touch = ceremony::assert(
            current,
            OwnerAction::ChangePasskey,
            wallet_id,
            new_fingerprint,
            nonces,
            &template,
        )
        .await?;
        let answers = join_all(pending.into_iter().map(|(i, ch, resp, _)| {
            let owner = OwnerAssertion {
                challenge_id: resp.challenge_id,
                assertion_json: touch.response_json.clone(),
                nonces: touch.nonces.clone(),
            };
            let cred = NewCredential::PasskeyJson(passkey_json.clone());
            async move { (i, send(ch, wallet_id, owner, cred, new_fingerprint).await) }
        }))
        .await;
        for (i, r) in answers {
            results[i] = Some(r.map(|()| TrusteePasskey::Changed));
        }
    }
    finish(infos, results, *new_fingerprint)
}
