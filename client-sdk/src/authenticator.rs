//! The owner's passkey. A wallet has ONE WebAuthn credential, registered at every trustee in one
//! ceremony at backup; every later owner ceremony (recovery, cancel, each rotation phase, the
//! locker's holder actions) is one assertion that every trustee of the ceremony checks
//! (`docs/protocol.md` §12a, [`crate::ceremony`]). The wallet app supplies the authenticator (a
//! platform passkey in a real app) through [`OwnerAuthenticator`].

use crate::error::AuthError;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url,
};

/// Origin the software authenticator claims; trustees must list it in `webauthn.origins`.
pub const DEFAULT_ORIGIN: &str = "https://localhost";

/// Runs WebAuthn ceremonies for the wallet owner. Each call is one prompt (one touch) for the
/// person holding the passkey: the SDK calls it once per ceremony, whatever the number of
/// trustees.
///
/// The options' challenge is not a trustee's own: it is the one-touch challenge the SDK computed
/// over every trustee's nonce (`docs/protocol.md` §12a). Pass it to the platform unchanged.
pub trait OwnerAuthenticator: Send {
    /// Creates the wallet's passkey (backup): the one credential every trustee registers.
    fn register(
        &mut self,
        options: CreationChallengeResponse,
    ) -> Result<RegisterPublicKeyCredential, AuthError>;
    /// Signs one ceremony's challenge with the wallet's passkey (the options name it in
    /// `allowCredentials`).
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
///
/// It keeps every credential it registered and counts its touches ([`Self::touches`]: one per
/// `register` or `authenticate` call, successful or not), so tests and `dlocker demo` can show
/// that each ceremony costs one touch.
pub struct SoftwareAuthenticator {
    inner: Soft,
    origin: Url,
    touches: u64,
}

/// The in-memory passkey, or a token whose keys can be exported ([`SoftwareAuthenticator::to_bytes`])
/// so a test can kill the process holding it and go on in another.
enum Soft {
    Passkey(SoftPasskey),
    Token(Box<SoftToken>),
}

impl std::fmt::Debug for SoftwareAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SoftwareAuthenticator {{ origin: {}, touches: {}, keys: REDACTED }}",
            self.origin, self.touches
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
            inner: Soft::Passkey(SoftPasskey::new(true)),
            origin,
            touches: 0,
        }
    }

    /// A fresh authenticator for origin [`DEFAULT_ORIGIN`] whose keys can be saved with
    /// [`Self::to_bytes`] and loaded in another process with [`Self::from_bytes`] (tests that
    /// kill the app mid-ceremony). The saved bytes hold its private keys in the clear.
    pub fn exportable() -> Result<Self, AuthError> {
        let (token, _ca) = SoftToken::new(true)
            .map_err(|e| AuthError::Authenticator(format!("software token: {e:?}")))?;
        Ok(Self {
            inner: Soft::Token(Box::new(token)),
            // A constant, checked by the unit tests: not input.
            origin: Url::parse(DEFAULT_ORIGIN).expect("DEFAULT_ORIGIN is a valid URL"),
            touches: 0,
        })
    }

    /// The keys of an [`Self::exportable`] authenticator (`None` for the in-memory kind).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        match &self.inner {
            Soft::Token(t) => t.to_cbor().ok(),
            Soft::Passkey(_) => None,
        }
    }

    /// Loads what [`Self::to_bytes`] saved (origin [`DEFAULT_ORIGIN`], touch count zero).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuthError> {
        let token = SoftToken::from_cbor(bytes)
            .map_err(|e| AuthError::Authenticator(format!("software token: {e:?}")))?;
        Ok(Self {
            inner: Soft::Token(Box::new(token)),
            // A constant, checked by the unit tests: not input.
            origin: Url::parse(DEFAULT_ORIGIN).expect("DEFAULT_ORIGIN is a valid URL"),
            touches: 0,
        })
    }

    /// How many times the owner was asked to touch the authenticator so far (`register` and
    /// `authenticate` calls). Take the difference around a ceremony to count its touches.
    pub fn touches(&self) -> u64 {
        self.touches
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
        self.touches += 1;
        let origin = self.origin.clone();
        match &mut self.inner {
            Soft::Passkey(p) => p.do_registration(origin, options),
            Soft::Token(t) => t.do_registration(origin, options),
        }
        .map_err(|e| AuthError::Authenticator(format!("{e:?}")))
    }

    fn authenticate(
        &mut self,
        options: RequestChallengeResponse,
    ) -> Result<PublicKeyCredential, AuthError> {
        self.touches += 1;
        let origin = self.origin.clone();
        match &mut self.inner {
            Soft::Passkey(p) => p.do_authentication(origin, options),
            Soft::Token(t) => t.do_authentication(origin, options),
        }
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
        assert_eq!(a.touches(), 0);
    }
}
