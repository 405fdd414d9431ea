//! Test support: the client's half of a one-touch owner ceremony, with a software passkey.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge, TrusteeNonce};
use dlocker_proto::pb;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

/// The origin the test authenticator claims.
pub(crate) const ORIGIN: &str = "https://localhost";

/// `(node id, nonce)` pairs as the wire carries them.
pub(crate) fn wire(pairs: &[(String, Vec<u8>)]) -> Vec<pb::TrusteeNonce> {
    pairs
        .iter()
        .map(|(node_id, nonce)| pb::TrusteeNonce {
            node_id: node_id.clone(),
            nonce: nonce.clone(),
        })
        .collect()
}

/// The one-touch challenge over `pairs`.
pub(crate) fn challenge(
    action: OwnerAction,
    wallet: &str,
    authorized: &[u8],
    pairs: &[(String, Vec<u8>)],
) -> [u8; 32] {
    let nonces = pairs
        .iter()
        .map(|(node_id, nonce)| TrusteeNonce::from_wire(node_id, nonce).expect("32-byte nonce"))
        .collect();
    OwnerChallenge::new(action, wallet, authorized, nonces)
        .expect("challenge")
        .digest()
}

fn set_challenge(options_json: &str, challenge: &[u8; 32]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(options_json).expect("options json");
    v["publicKey"]["challenge"] = serde_json::Value::String(URL_SAFE_NO_PAD.encode(challenge));
    v
}

/// One registration (one touch) answering `challenge` with the template's other options.
pub(crate) fn register(auth: &mut SoftPasskey, options_json: &str, challenge: &[u8; 32]) -> String {
    let ccr: CreationChallengeResponse =
        serde_json::from_value(set_challenge(options_json, challenge)).expect("creation options");
    let cred = auth
        .do_registration(Url::parse(ORIGIN).expect("url"), ccr)
        .expect("register");
    serde_json::to_string(&cred).expect("json")
}

/// One assertion (one touch) answering `challenge`.
pub(crate) fn assert(auth: &mut SoftPasskey, options_json: &str, challenge: &[u8; 32]) -> String {
    let rcr: RequestChallengeResponse =
        serde_json::from_value(set_challenge(options_json, challenge)).expect("request options");
    let cred = auth
        .do_authentication(Url::parse(ORIGIN).expect("url"), rcr)
        .expect("assert");
    serde_json::to_string(&cred).expect("json")
}
