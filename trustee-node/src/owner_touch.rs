//! Owner ceremonies at a trustee: single-use nonces and the one-touch check
//! (`docs/protocol.md`, section 12a).
//!
//! Every owner ceremony starts with this node issuing a fresh 32-byte nonce for
//! `(wallet, action)`; the client hashes every trustee's nonce with what the action authorizes
//! into one WebAuthn challenge. Here the node recomputes that challenge from its own view of the
//! request, checks its nonce, and lets webauthn-rs verify the response against it.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `owner_nonces` | nonce (32 bytes) | [`NonceRecord`] as JSON |
//!
//! Issuing never touches another nonce, so a stranger asking for nonces cannot disturb the
//! owner's ceremony. A nonce is spent with a compare-and-swap after its response verified: of two
//! requests racing on one nonce, one succeeds. Spent and expired records are removed by
//! [`Self::sweep_owner_nonces`].

use crate::db::NonceSnapshot;
use crate::error::NodeError;
use crate::node::Node;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dlocker_proto::owner_challenge::{NONCE_LEN, OwnerAction, OwnerChallenge, TrusteeNonce};
use rand::RngExt as _;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential,
};

pub use crate::db::{NonceRecord, OWNER_NONCES_TREE};

/// Largest WebAuthn response JSON accepted (a real one is under 2 KiB).
pub const MAX_RESPONSE_JSON_BYTES: usize = 16 * 1024;

/// What a Begin call hands out.
#[derive(Debug, Clone, Copy)]
pub struct IssuedNonce {
    /// The nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Unix seconds.
    pub expires_at: u64,
}

fn internal(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(format!("{what}: {e}"))
}

/// Puts `challenge` into a serialised webauthn-rs ceremony state (`{"rs": {...}}` for a
/// registration, `{"ast": {...}}` for an authentication). webauthn-rs has no API to verify
/// against a challenge the caller computed; everything else it checks stays its own.
fn with_challenge(
    state_json: &str,
    outer: &str,
    challenge: &[u8; 32],
) -> Result<String, NodeError> {
    let mut v: serde_json::Value =
        serde_json::from_str(state_json).map_err(|e| internal("ceremony state", e))?;
    let slot = v
        .get_mut(outer)
        .and_then(|inner| inner.get_mut("challenge"))
        .ok_or_else(|| internal("ceremony state", "no challenge field"))?;
    *slot = serde_json::Value::String(URL_SAFE_NO_PAD.encode(challenge));
    serde_json::to_string(&v).map_err(|e| internal("ceremony state", e))
}

/// Owner ceremonies (nonces and the one-touch check): a borrowed view of the [`Node`]
/// context, whose fields and methods read through it.
#[derive(Clone, Copy)]
pub struct OwnerTouch<'a>(&'a Node);

impl std::ops::Deref for OwnerTouch<'_> {
    type Target = Node;
    fn deref(&self) -> &Node {
        self.0
    }
}

impl Node {
    /// Owner ceremonies: nonces and the one-touch check.
    pub fn owner_touch(&self) -> OwnerTouch<'_> {
        OwnerTouch(self)
    }
}

/// A verified owner touch: the nonce to spend and, for an assertion, the passkey to store if its
/// counter moved.
pub(crate) struct VerifiedTouch<T> {
    key: [u8; NONCE_LEN],
    old: NonceSnapshot,
    /// What the response yielded.
    pub(crate) value: T,
}

impl OwnerTouch<'_> {
    /// Issues a fresh nonce for `(wallet, action)`. Written, not yet durable: the caller's
    /// [`Node::commit`] (or a flush) makes it so before the nonce is handed out.
    pub(crate) fn issue_owner_nonce(
        &self,
        wallet_id: &str,
        action: OwnerAction,
    ) -> Result<IssuedNonce, NodeError> {
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        // A reset's nonces wait for the bank's check of the customer.
        let ttl = match action {
            OwnerAction::ResetPasskey => self.config.limits.passkey_reset_ttl_secs,
            _ => self.config.limits.ceremony_ttl_secs,
        };
        let expires_at = self.now().saturating_add(ttl);
        let rec = NonceRecord {
            wallet_id: wallet_id.to_owned(),
            action: action.as_u8(),
            expires_at,
            used: false,
        };
        self.db.put_owner_nonce(&nonce, &rec)?;
        Ok(IssuedNonce { nonce, expires_at })
    }

    /// Steps 1–2 of the check: the challenge is well formed, names this node, and its nonce is
    /// ours, for this wallet and action, unused and unexpired.
    fn check_nonce(
        &self,
        wallet_id: &str,
        action: OwnerAction,
        authorized: &[u8],
        nonces: Vec<TrusteeNonce>,
    ) -> Result<(OwnerChallenge, [u8; NONCE_LEN], NonceSnapshot), NodeError> {
        let challenge = OwnerChallenge::new(action, wallet_id, authorized, nonces)
            .map_err(NodeError::ChallengeMalformed)?;
        let own = *challenge
            .nonce_of(self.identity.node_id())
            .ok_or(NodeError::NonceNotInChallenge)?;
        let old = self.db.owner_nonce(&own)?.ok_or(NodeError::NonceUnknown)?;
        let rec = &old.record;
        if rec.wallet_id != wallet_id || rec.action != action.as_u8() {
            return Err(NodeError::NonceMismatch);
        }
        if rec.used {
            return Err(NodeError::NonceUsed);
        }
        let now = self.now();
        if rec.expires_at <= now {
            return Err(NodeError::NonceExpired {
                ago_secs: now - rec.expires_at,
            });
        }
        Ok((challenge, own, old))
    }

    /// Verifies the owner's assertion for a one-touch ceremony against `passkey`. Nothing is
    /// spent yet: call [`Self::spend_nonce`] once the action's own checks passed.
    pub(crate) fn verify_owner_assertion(
        &self,
        wallet_id: &str,
        action: OwnerAction,
        authorized: &[u8],
        nonces: Vec<TrusteeNonce>,
        assertion_json: &str,
        passkey: &Passkey,
    ) -> Result<VerifiedTouch<Option<Passkey>>, NodeError> {
        if assertion_json.len() > MAX_RESPONSE_JSON_BYTES {
            return Err(NodeError::invalid(
                "assertion_json",
                format!("at most {MAX_RESPONSE_JSON_BYTES} bytes"),
            ));
        }
        let (challenge, key, old) = self.check_nonce(wallet_id, action, authorized, nonces)?;
        let cred: PublicKeyCredential = serde_json::from_str(assertion_json).map_err(|_| {
            NodeError::invalid(
                "assertion_json",
                "not a WebAuthn assertion (PublicKeyCredential JSON)",
            )
        })?;
        let (_, state) = self
            .webauthn
            .start_passkey_authentication(std::slice::from_ref(passkey))
            .map_err(|e| internal("start passkey authentication", e))?;
        let state_json =
            serde_json::to_string(&state).map_err(|e| internal("serialise state", e))?;
        let state: PasskeyAuthentication =
            serde_json::from_str(&with_challenge(&state_json, "ast", &challenge.digest())?)
                .map_err(|e| internal("ceremony state", e))?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&cred, &state)
            .map_err(|e| {
                tracing::debug!(action = %action, error = %e, "owner assertion refused");
                NodeError::AssertionRejected
            })?;
        let mut updated = passkey.clone();
        let value = match updated.update_credential(&result) {
            Some(true) => Some(updated),
            _ => None,
        };
        Ok(VerifiedTouch { key, old, value })
    }

    /// Verifies the owner's passkey registration for a one-touch backup (or passkey change)
    /// against the ceremony's webauthn-rs registration state.
    pub(crate) fn verify_owner_registration(
        &self,
        wallet_id: &str,
        action: OwnerAction,
        authorized: &[u8],
        nonces: Vec<TrusteeNonce>,
        credential_json: &str,
        registration_state_json: &str,
    ) -> Result<VerifiedTouch<Passkey>, NodeError> {
        let (challenge, key, old) = self.check_nonce(wallet_id, action, authorized, nonces)?;
        let cred: RegisterPublicKeyCredential =
            serde_json::from_str(credential_json).map_err(|_| NodeError::CredentialRejected)?;
        let state: PasskeyRegistration = serde_json::from_str(&with_challenge(
            registration_state_json,
            "rs",
            &challenge.digest(),
        )?)
        .map_err(|e| internal("ceremony state", e))?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&cred, &state)
            .map_err(|e| {
                tracing::debug!(error = %e, "owner registration refused");
                NodeError::CredentialRejected
            })?;
        Ok(VerifiedTouch {
            key,
            old,
            value: passkey,
        })
    }

    /// Spends a verified touch's nonce (compare-and-swap: of two racing requests one wins, the
    /// other gets [`NodeError::NonceUsed`]). Written, not yet durable.
    pub(crate) fn spend_nonce<T>(&self, touch: &VerifiedTouch<T>) -> Result<(), NodeError> {
        if self.db.spend_owner_nonce(&touch.key, &touch.old)? {
            // Answered: the caller who began it holds one pending ceremony fewer.
            self.caller_limits.ceremony_done(&touch.key);
            Ok(())
        } else {
            Err(NodeError::NonceUsed)
        }
    }

    /// Removes nonces that expired before `now` (spent or not); returns how many.
    pub fn sweep_owner_nonces(&self, now: u64) -> Result<usize, NodeError> {
        Ok(self.db.sweep_owner_nonces(now)?)
    }
}

/// A credential's fingerprint as the protocol defines it: over the credential id and
/// webauthn-rs's JSON of its COSE public key.
pub fn passkey_fingerprint(passkey: &Passkey) -> Result<[u8; 32], NodeError> {
    let cose = serde_json::to_vec(passkey.get_public_key())
        .map_err(|e| internal("serialise credential key", e))?;
    Ok(dlocker_proto::owner_challenge::credential_fingerprint(
        passkey.cred_id().as_ref(),
        &cose,
    ))
}

/// Parses the wire's `(node_id, nonce)` list (shape only; [`OwnerChallenge::new`] checks the
/// rest).
pub fn nonces_from_wire(
    list: &[dlocker_proto::pb::TrusteeNonce],
) -> Result<Vec<TrusteeNonce>, NodeError> {
    if list.len() > dlocker_proto::owner_challenge::MAX_ENTRIES {
        return Err(NodeError::ChallengeMalformed(
            dlocker_proto::owner_challenge::ChallengeError::Count(list.len()),
        ));
    }
    list.iter()
        .map(|n| {
            TrusteeNonce::from_wire(&n.node_id, &n.nonce).map_err(NodeError::ChallengeMalformed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_replaced_and_nothing_else() {
        let state = r#"{"ast":{"challenge":"AAAA","policy":"required"}}"#;
        let out = with_challenge(state, "ast", &[7u8; 32]).expect("ok");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["ast"]["challenge"], URL_SAFE_NO_PAD.encode([7u8; 32]));
        assert_eq!(v["ast"]["policy"], "required");
        assert!(with_challenge(r#"{"rs":{}}"#, "rs", &[0; 32]).is_err());
    }
}
