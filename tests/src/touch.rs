//! The client's half of a one-touch owner ceremony over raw gRPC (`docs/protocol.md` 12a): the
//! challenge over every trustee's nonce, put into a WebAuthn options template, answered once by
//! a software passkey. Tests use it to build exactly the request they want, good or bad.

use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge, TrusteeNonce};
use dlocker_proto::pb;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url, WebauthnAuthenticator as _,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// The origin the software passkey claims (the test nodes allow it).
pub const ORIGIN: &str = "https://localhost";

/// One ceremony's inputs: `(node id, nonce)` per trustee, in ceremony order.
#[derive(Debug, Clone, Default)]
pub struct Nonces(pub Vec<(String, Vec<u8>)>);

impl Nonces {
    /// Adds a trustee's nonce.
    pub fn push(&mut self, node_id: &str, nonce: &[u8]) {
        self.0.push((node_id.to_owned(), nonce.to_vec()));
    }

    /// The list as the wire carries it.
    pub fn wire(&self) -> Vec<pb::TrusteeNonce> {
        self.0
            .iter()
            .map(|(node_id, nonce)| pb::TrusteeNonce {
                node_id: node_id.clone(),
                nonce: nonce.clone(),
            })
            .collect()
    }

    /// The challenge the authenticator signs.
    pub fn challenge(&self, action: OwnerAction, wallet: &str, authorized: &[u8]) -> [u8; 32] {
        let nonces = self
            .0
            .iter()
            .map(|(node_id, nonce)| TrusteeNonce::from_wire(node_id, nonce).expect("32-byte nonce"))
            .collect();
        OwnerChallenge::new(action, wallet, authorized, nonces)
            .expect("well-formed challenge")
            .digest()
    }
}

fn with_challenge(options_json: &str, challenge: &[u8; 32]) -> serde_json::Value {
    use base64::Engine as _;
    let mut v: serde_json::Value = serde_json::from_str(options_json).expect("options JSON");
    v["publicKey"]["challenge"] = serde_json::Value::String(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(challenge),
    );
    v
}

/// Request options from a trustee's template with the ceremony's challenge set.
pub fn request_options(options_json: &str, challenge: &[u8; 32]) -> RequestChallengeResponse {
    serde_json::from_value(with_challenge(options_json, challenge)).expect("request options")
}

/// Creation options from a trustee's template with the ceremony's challenge set.
pub fn creation_options(options_json: &str, challenge: &[u8; 32]) -> CreationChallengeResponse {
    serde_json::from_value(with_challenge(options_json, challenge)).expect("creation options")
}

/// An assertion (JSON) with a character of its signature changed: a wrong passkey answer.
pub fn damaged(assertion_json: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(assertion_json).expect("JSON");
    let sig = v
        .pointer_mut("/response/signature")
        .and_then(|s| s.as_str().map(str::to_owned))
        .expect("assertion has response.signature");
    let mut chars: Vec<char> = sig.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    *v.pointer_mut("/response/signature").expect("signature") =
        serde_json::Value::String(chars.into_iter().collect());
    v.to_string()
}

/// One registration answering `challenge` (creation options from any trustee of the ceremony).
pub fn register(passkey: &mut SoftPasskey, options_json: &str, challenge: &[u8; 32]) -> String {
    let ccr = creation_options(options_json, challenge);
    let cred = passkey
        .do_registration(Url::parse(ORIGIN).expect("origin"), ccr)
        .expect("soft passkey registers");
    serde_json::to_string(&cred).expect("credential JSON")
}

/// One assertion answering `challenge` (request options from any trustee of the ceremony).
pub fn assert(passkey: &mut SoftPasskey, options_json: &str, challenge: &[u8; 32]) -> String {
    let rcr = request_options(options_json, challenge);
    let cred = passkey
        .do_authentication(Url::parse(ORIGIN).expect("origin"), rcr)
        .expect("soft passkey asserts");
    serde_json::to_string(&cred).expect("assertion JSON")
}
