//! One passkey touch per owner ceremony, the client's side (`docs/protocol.md` §12a).
//!
//! Every trustee taking part in an owner ceremony (backup, recovery, cancel, an epoch action, a
//! locker holder action) hands out a fresh single-use nonce and a *template* of WebAuthn options.
//! The client lists every trustee's `(node id, nonce)` in ceremony order (manifest order), hashes
//! them with the action, the wallet and what the touch authorizes into ONE challenge —
//! [`OwnerChallenge::digest`], never re-implemented here — puts it into the first trustee's
//! template and asks the [`Passkey`] once. The one response and the full list go to
//! every trustee, and each recomputes the challenge from its own view of the request.
//!
//! | action | `authorized` |
//! |---|---|
//! | backup | manifest hash (32 bytes) |
//! | recover, cancel | the new device's session key `R`, SEC1 compressed (33) |
//! | stage | [`dlocker_proto::owner_challenge::stage_authorized`] (successor hash ‖ credential fingerprint) |
//! | commit (commit and retire), abandon | the successor / staged manifest hash |
//! | holder-register, reissue | the (new) holder key, SEC1 compressed |
//! | delete | nothing (empty) |
//! | change-passkey | the new credential's registration: nothing; the current credential's assertion: the new credential's fingerprint |

use crate::authenticator::Passkey;
use crate::error::AuthError;
use dlocker_proto::owner_challenge::{NONCE_LEN, OwnerAction, OwnerChallenge, TrusteeNonce};
use dlocker_proto::pb;
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

/// One trustee's nonce as a Begin call returned it, checked to be [`NONCE_LEN`] bytes.
pub fn trustee_nonce(node_id: &str, nonce: &[u8]) -> Result<TrusteeNonce, String> {
    TrusteeNonce::from_wire(node_id, nonce).map_err(|_| {
        format!(
            "sent a ceremony nonce of {} bytes, not {NONCE_LEN}",
            nonce.len()
        )
    })
}

/// The one-touch challenge over `nonces` (ceremony order).
pub fn challenge(
    action: OwnerAction,
    wallet_id: &str,
    authorized: &[u8],
    nonces: Vec<TrusteeNonce>,
) -> Result<[u8; 32], AuthError> {
    OwnerChallenge::new(action, wallet_id, authorized, nonces)
        .map(|c| c.digest())
        .map_err(|e| AuthError::MalformedChallenge(format!("{action} ceremony: {e}")))
}

/// A trustee's creation-options template (JSON of webauthn-rs `CreationChallengeResponse`) with
/// its challenge replaced by `challenge`.
pub fn creation_options(
    template_json: &str,
    challenge: &[u8; 32],
) -> Result<CreationChallengeResponse, AuthError> {
    let mut opts = serde_json::from_str::<CreationChallengeResponse>(template_json)
        .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?;
    opts.public_key.challenge = challenge.to_vec();
    Ok(opts)
}

/// A trustee's request-options template (JSON of webauthn-rs `RequestChallengeResponse`, naming
/// the wallet's credential) with its challenge replaced by `challenge`.
pub fn request_options(
    template_json: &str,
    challenge: &[u8; 32],
) -> Result<RequestChallengeResponse, AuthError> {
    let mut opts = serde_json::from_str::<RequestChallengeResponse>(template_json)
        .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?;
    opts.public_key.challenge = challenge.to_vec();
    Ok(opts)
}

/// The first template (in ceremony order) that parses as request options: the one the challenge
/// is put into. A trustee sending garbage does not spoil the ceremony for the others. Empty
/// templates (a trustee joining a wallet has none) are skipped; with none usable, the first one
/// is returned, so the caller reports why it does not parse.
pub(crate) fn first_request_template<'a>(templates: impl IntoIterator<Item = &'a str>) -> &'a str {
    let mut first = None;
    for t in templates {
        if t.is_empty() {
            continue;
        }
        first.get_or_insert(t);
        if serde_json::from_str::<RequestChallengeResponse>(t).is_ok() {
            return t;
        }
    }
    first.unwrap_or("")
}

/// The first creation-options template (in ceremony order) that parses, as
/// [`first_request_template`] does for request options.
// Only the passkey change uses it, which the browser build leaves out.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn first_creation_template<'a>(templates: impl IntoIterator<Item = &'a str>) -> &'a str {
    let mut first = None;
    for t in templates {
        if t.is_empty() {
            continue;
        }
        first.get_or_insert(t);
        if serde_json::from_str::<CreationChallengeResponse>(t).is_ok() {
            return t;
        }
    }
    first.unwrap_or("")
}

/// The nonces as the wire carries them.
pub fn to_wire(nonces: &[TrusteeNonce]) -> Vec<pb::TrusteeNonce> {
    nonces
        .iter()
        .map(|n| pb::TrusteeNonce {
            node_id: n.node_id.clone(),
            nonce: n.nonce.to_vec(),
        })
        .collect()
}

/// The owner's one response of a ceremony (attestation or assertion JSON) and the nonces it
/// covers, ready for every trustee. `Debug` does not show the response.
#[derive(Clone)]
pub(crate) struct Touch {
    /// webauthn-rs `RegisterPublicKeyCredential` or `PublicKeyCredential`, as JSON.
    pub(crate) response_json: String,
    /// Every trustee's nonce, in ceremony order.
    pub(crate) nonces: Vec<pb::TrusteeNonce>,
}

impl std::fmt::Debug for Touch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Touch")
            .field("response_json", &"REDACTED")
            .field("nonces", &self.nonces.len())
            .finish()
    }
}

/// A backup: ONE registration for every trustee in `nonces`, over the manifest hash.
pub(crate) async fn register(
    auth: &mut dyn Passkey,
    wallet_id: &str,
    manifest_hash: &[u8; 32],
    nonces: Vec<TrusteeNonce>,
    template_json: &str,
) -> Result<Touch, AuthError> {
    let wire = to_wire(&nonces);
    let c = challenge(OwnerAction::Backup, wallet_id, manifest_hash, nonces)?;
    let options = serde_json::to_string(&creation_options(template_json, &c)?)
        .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?;
    let response_json = auth.create(options).await?;
    Ok(Touch {
        response_json,
        nonces: wire,
    })
}

/// Any other ceremony: ONE assertion for every trustee in `nonces`.
pub(crate) async fn assert(
    auth: &mut dyn Passkey,
    action: OwnerAction,
    wallet_id: &str,
    authorized: &[u8],
    nonces: Vec<TrusteeNonce>,
    template_json: &str,
) -> Result<Touch, AuthError> {
    let wire = to_wire(&nonces);
    let c = challenge(action, wallet_id, authorized, nonces)?;
    let options = serde_json::to_string(&request_options(template_json, &c)?)
        .map_err(|e| AuthError::MalformedChallenge(e.to_string()))?;
    let response_json = auth.get(options).await?;
    Ok(Touch {
        response_json,
        nonces: wire,
    })
}

#[cfg(all(test, feature = "software-passkey"))]
mod tests {
    use super::*;
    use crate::SoftwareAuthenticator;
    use webauthn_rs::prelude::{Url, Uuid, WebauthnBuilder};

    fn n(i: u8) -> TrusteeNonce {
        TrusteeNonce {
            node_id: format!("{i:032x}"),
            nonce: [i; NONCE_LEN],
        }
    }

    #[test]
    fn nonces_are_checked() {
        assert!(trustee_nonce(&"a".repeat(32), &[0; 31]).is_err());
        assert_eq!(trustee_nonce("x", &[1; 32]).expect("ok").nonce, [1; 32]);
        assert!(matches!(
            challenge(OwnerAction::Recover, "w", b"R", vec![]),
            Err(AuthError::MalformedChallenge(_))
        ));
        assert!(matches!(
            challenge(OwnerAction::Recover, "w", b"R", vec![n(1), n(1)]),
            Err(AuthError::MalformedChallenge(_))
        ));
    }

    /// One registration and one assertion answer the caller-computed challenges, and a server
    /// that recomputes them (the trustees' side, here by hand with webauthn-rs) accepts both.
    #[tokio::test]
    async fn one_credential_registered_once_then_asserted() {
        let origin = Url::parse(crate::authenticator::DEFAULT_ORIGIN).expect("url");
        let webauthn = WebauthnBuilder::new("localhost", &origin)
            .and_then(|b| b.build())
            .expect("webauthn");
        let (ccr, reg) = webauthn
            .start_passkey_registration(Uuid::new_v4(), "alice", "alice", None)
            .expect("start");
        let mut auth = SoftwareAuthenticator::new();
        let hash = [9u8; 32];
        let touch = register(
            &mut auth,
            "w",
            &hash,
            vec![n(1), n(2)],
            &serde_json::to_string(&ccr).expect("json"),
        )
        .await
        .expect("register");
        assert_eq!(touch.nonces.len(), 2);
        assert!(format!("{touch:?}").contains("REDACTED"));
        let cred: webauthn_rs::prelude::RegisterPublicKeyCredential =
            serde_json::from_str(&touch.response_json).expect("credential");
        // The challenge the authenticator signed is the one computed over the nonces.
        let expected =
            challenge(OwnerAction::Backup, "w", &hash, vec![n(1), n(2)]).expect("challenge");
        let client_data: serde_json::Value =
            serde_json::from_slice(cred.response.client_data_json.as_ref()).expect("client data");
        use base64::Engine as _;
        assert_eq!(
            client_data["challenge"],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(expected)
        );
        // A server whose state carries that challenge accepts the credential.
        let mut state = serde_json::to_value(&reg).expect("state");
        state["rs"]["challenge"] = client_data["challenge"].clone();
        let reg = serde_json::from_value(state).expect("state back");
        let passkey = webauthn
            .finish_passkey_registration(&cred, &reg)
            .expect("registration verifies");

        // Two assertions with the same one credential.
        for r in [b"R1", b"R2"] {
            let (rcr, ast) = webauthn
                .start_passkey_authentication(std::slice::from_ref(&passkey))
                .expect("start auth");
            let touch = assert(
                &mut auth,
                OwnerAction::Recover,
                "w",
                r,
                vec![n(3)],
                &serde_json::to_string(&rcr).expect("json"),
            )
            .await
            .expect("assert");
            let expected = challenge(OwnerAction::Recover, "w", r, vec![n(3)]).expect("c");
            let mut state = serde_json::to_value(&ast).expect("state");
            state["ast"]["challenge"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(expected)
                .into();
            let ast = serde_json::from_value(state).expect("state back");
            let cred = serde_json::from_str(&touch.response_json).expect("assertion");
            webauthn
                .finish_passkey_authentication(&cred, &ast)
                .expect("assertion verifies");
        }
        assert_eq!(auth.touches(), 3);
    }
}
