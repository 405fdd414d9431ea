//! The owner passkeys the bench drives, and what each costs a trustee.
//!
//! The SDK's software passkey answers every registration with a *packed self-attestation*: a
//! P-256 signature each trustee checks at its deposit. The passkeys of the phones a wallet app
//! runs on (iCloud Keychain, Google Password Manager) answer attestation format `none` when the
//! relying party asks for none, as the trustees do, so their registration check parses and
//! checks the challenge, origin and flags but verifies no signature. [`PasskeyKind::Platform`]
//! is the software passkey with its attestation statement replaced by `none` (authenticator
//! data unchanged: same credential, same flags, AAGUID already zero), to measure a deposit as a
//! trustee sees it from a phone. Assertions are unchanged: every owner ceremony after the backup
//! still verifies a P-256 signature.

use dlocker_sdk::AuthError;
use dlocker_sdk::SoftwareAuthenticator;
use dlocker_sdk::protocol::OwnerAuthenticator;
use serde::Serialize;
use serde_cbor_2::Value;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

/// Which attestation the bench's owner passkeys send at backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PasskeyKind {
    /// The SDK's software passkey: packed self-attestation (a P-256 check at every trustee).
    Software,
    /// Attestation format `none`, as a phone's platform passkey answers.
    Platform,
}

impl PasskeyKind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Software => "software passkey (packed self-attestation)",
            Self::Platform => "platform passkey (attestation none)",
        }
    }
}

/// A fresh owner passkey of `kind`.
pub(crate) fn owner_passkey(kind: PasskeyKind) -> BenchPasskey {
    BenchPasskey {
        kind,
        inner: SoftwareAuthenticator::new(),
    }
}

/// The software passkey, sending the attestation `kind` says.
pub(crate) struct BenchPasskey {
    kind: PasskeyKind,
    inner: SoftwareAuthenticator,
}

impl OwnerAuthenticator for BenchPasskey {
    fn register(
        &mut self,
        options: CreationChallengeResponse,
    ) -> Result<RegisterPublicKeyCredential, AuthError> {
        let mut cred = self.inner.register(options)?;
        if self.kind == PasskeyKind::Platform {
            cred.response.attestation_object = attestation_none(&cred.response.attestation_object)?;
        }
        Ok(cred)
    }

    fn authenticate(
        &mut self,
        options: RequestChallengeResponse,
    ) -> Result<PublicKeyCredential, AuthError> {
        self.inner.authenticate(options)
    }
}

/// `attestation_object` with format `none` and an empty statement (WebAuthn §8.7), its
/// authenticator data unchanged.
fn attestation_none(attestation_object: &[u8]) -> Result<Vec<u8>, AuthError> {
    let bad = |what: &str| AuthError::Authenticator(format!("attestation object: {what}"));
    let Value::Map(mut ao) =
        serde_cbor_2::from_slice::<Value>(attestation_object).map_err(|_| bad("not CBOR"))?
    else {
        return Err(bad("not a map"));
    };
    if !ao.contains_key(&Value::Text("authData".into())) {
        return Err(bad("no authData"));
    }
    ao.insert(Value::Text("fmt".into()), Value::Text("none".into()));
    ao.insert(
        Value::Text("attStmt".into()),
        Value::Map(Default::default()),
    );
    serde_cbor_2::to_vec(&Value::Map(ao)).map_err(|_| bad("encode"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use webauthn_rs::prelude::{Url, Uuid, WebauthnBuilder};

    /// Both kinds register with webauthn-rs as a trustee configures it, and the platform kind
    /// really is format `none` (no attestation signature to check).
    #[test]
    fn both_kinds_register_and_platform_sends_none() {
        let origin = Url::parse("https://localhost").expect("url");
        let webauthn = WebauthnBuilder::new("localhost", &origin)
            .and_then(|b| b.build())
            .expect("webauthn");
        for (kind, fmt) in [
            (PasskeyKind::Software, "packed"),
            (PasskeyKind::Platform, "none"),
        ] {
            let (ccr, reg) = webauthn
                .start_passkey_registration(Uuid::new_v4(), "bench", "bench", None)
                .expect("start");
            let cred = owner_passkey(kind).register(ccr).expect("register");
            let Ok(Value::Map(ao)) =
                serde_cbor_2::from_slice::<Value>(&cred.response.attestation_object)
            else {
                panic!("{kind:?}: the attestation object is not a CBOR map");
            };
            assert_eq!(
                ao.get(&Value::Text("fmt".into())),
                Some(&Value::Text(fmt.into())),
                "{kind:?}"
            );
            webauthn
                .finish_passkey_registration(&cred, &reg)
                .expect("a trustee accepts it");
        }
    }
}
