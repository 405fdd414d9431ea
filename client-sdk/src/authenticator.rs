//! The owner's passkey. Trustees register a passkey at enrollment and demand an assertion from it
//! before releasing a share; the wallet app supplies the authenticator (a platform passkey in a
//! real app) through [`OwnerAuthenticator`].

use crate::error::AuthError;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url,
};

/// Origin the software authenticator claims; trustees must list it in `webauthn.origins`.
pub const DEFAULT_ORIGIN: &str = "https://localhost";

/// Runs WebAuthn ceremonies for the wallet owner.
///
/// `register` answers a trustee's creation challenge at enrollment (one credential per trustee);
/// `authenticate` answers a request challenge at recovery.
pub trait OwnerAuthenticator: Send {
    /// Creates a passkey for one trustee's challenge.
    fn register(
        &mut self,
        options: CreationChallengeResponse,
    ) -> Result<RegisterPublicKeyCredential, AuthError>;
    /// Signs one trustee's authentication challenge with the passkey registered there.
    fn authenticate(
        &mut self,
        options: RequestChallengeResponse,
    ) -> Result<PublicKeyCredential, AuthError>;
}

/// A software passkey held in memory.
///
/// **NOT FOR PRODUCTION.** It claims user verification it never performed, keeps private keys in
/// process memory and loses them when dropped. It exists for tests and `dlocker demo`; a wallet app
/// implements [`OwnerAuthenticator`] over the platform's passkey API instead.
pub struct SoftwareAuthenticator {
    inner: SoftPasskey,
    origin: Url,
}

impl std::fmt::Debug for SoftwareAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SoftwareAuthenticator {{ origin: {}, keys: REDACTED }}",
            self.origin
        )
    }
}

impl SoftwareAuthenticator {
    /// A fresh authenticator for origin [`DEFAULT_ORIGIN`].
    pub fn new() -> Self {
        // A constant, checked by the unit tests: not input.
        Self::with_origin(Url::parse(DEFAULT_ORIGIN).expect("DEFAULT_ORIGIN is a valid URL"))
    }

    /// A fresh authenticator claiming `origin` (must be allowed by the trustees' config).
    pub fn with_origin(origin: Url) -> Self {
        // `true`: claim user verification, which passkey registration requires.
        Self {
            inner: SoftPasskey::new(true),
            origin,
        }
    }
}

impl Default for SoftwareAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl OwnerAuthenticator for SoftwareAuthenticator {
    fn register(
        &mut self,
        options: CreationChallengeResponse,
    ) -> Result<RegisterPublicKeyCredential, AuthError> {
        self.inner
            .do_registration(self.origin.clone(), options)
            .map_err(|e| AuthError::Authenticator(format!("{e:?}")))
    }

    fn authenticate(
        &mut self,
        options: RequestChallengeResponse,
    ) -> Result<PublicKeyCredential, AuthError> {
        self.inner
            .do_authentication(self.origin.clone(), options)
            .map_err(|e| AuthError::Authenticator(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_and_debug() {
        let a = SoftwareAuthenticator::new();
        assert_eq!(a.origin.as_str(), "https://localhost/");
        assert!(format!("{a:?}").contains("REDACTED"));
    }
}
