//! The owner's passkey. A wallet has ONE WebAuthn credential, registered at every trustee in one
//! ceremony at backup; every later owner ceremony (recovery, cancel, each rotation phase, the
//! locker's holder actions) is one assertion that every trustee of the ceremony checks
//! (`docs/protocol.md` §12a, [`crate::ceremony`]). The wallet app supplies the authenticator (a
//! platform passkey in a real app) through [`Passkey`]: an async callback taking and returning
//! WebAuthn JSON, which a browser page (`navigator.credentials`), a Swift/Kotlin bridge or the
//! synchronous [`OwnerAuthenticator`] (every one is a [`Passkey`]) implement.

use crate::error::AuthError;
use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "software-passkey")]
use url::Url;
#[cfg(feature = "software-passkey")]
use webauthn_authenticator_rs::WebauthnAuthenticator;
#[cfg(feature = "software-passkey")]
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
#[cfg(feature = "software-passkey")]
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs_proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

/// `Send` where futures move between threads (native runtimes); nothing on wasm32, where the
/// browser's promises and JS callbacks are not `Send` and everything runs on one thread.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` where futures move between threads (native runtimes); nothing on wasm32, where the
/// browser's promises and JS callbacks are not `Send` and everything runs on one thread.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// What a [`Passkey`] call returns: the credential's WebAuthn JSON, later. `Send` natively (apps
/// run ceremonies on multi-threaded runtimes), not on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub type PasskeyFuture<'a> = Pin<Box<dyn Future<Output = Result<String, AuthError>> + Send + 'a>>;
/// What a [`Passkey`] call returns: the credential's WebAuthn JSON, later. `Send` natively (apps
/// run ceremonies on multi-threaded runtimes), not on wasm32.
#[cfg(target_arch = "wasm32")]
pub type PasskeyFuture<'a> = Pin<Box<dyn Future<Output = Result<String, AuthError>> + 'a>>;

/// The owner's passkey as an async callback over WebAuthn JSON: what the browser's
/// `navigator.credentials` and the mobile platforms' passkey APIs take and give, so an app
/// implements it without webauthn-rs types and without blocking while the person touches it.
///
/// Each call is one prompt (one touch); the SDK calls it once per ceremony, whatever the number
/// of trustees. The options' challenge is the one-touch challenge the SDK computed over every
/// trustee's nonce (`docs/protocol.md` §12a): pass it to the platform unchanged.
///
/// Every [`OwnerAuthenticator`] is a `Passkey` (its answer is ready at once).
pub trait Passkey: MaybeSend {
    /// Creates the wallet's passkey (backup). `options_json`: webauthn-rs
    /// `CreationChallengeResponse` (`{"publicKey": …}`, binary fields base64url). Returns the
    /// JSON of webauthn-rs `RegisterPublicKeyCredential`.
    fn create(&mut self, options_json: String) -> PasskeyFuture<'_>;
    /// Signs one ceremony's challenge. `options_json`: webauthn-rs `RequestChallengeResponse`
    /// (it names the wallet's credential in `allowCredentials`). Returns the JSON of webauthn-rs
    /// `PublicKeyCredential`.
    fn get(&mut self, options_json: String) -> PasskeyFuture<'_>;
}

impl<T: OwnerAuthenticator + ?Sized> Passkey for T {
    fn create(&mut self, options_json: String) -> PasskeyFuture<'_> {
        let result = serde_json::from_str::<CreationChallengeResponse>(&options_json)
            .map_err(|e| AuthError::MalformedChallenge(e.to_string()))
            .and_then(|o| self.register(o))
            .and_then(|c| {
                serde_json::to_string(&c).map_err(|e| AuthError::Authenticator(e.to_string()))
            });
        Box::pin(std::future::ready(result))
    }

    fn get(&mut self, options_json: String) -> PasskeyFuture<'_> {
        let result = serde_json::from_str::<RequestChallengeResponse>(&options_json)
            .map_err(|e| AuthError::MalformedChallenge(e.to_string()))
            .and_then(|o| self.authenticate(o))
            .and_then(|c| {
                serde_json::to_string(&c).map_err(|e| AuthError::Authenticator(e.to_string()))
            });
        Box::pin(std::future::ready(result))
    }
}

/// Origin the software authenticator claims; trustees must list it in `webauthn.origins`.
pub const DEFAULT_ORIGIN: &str = "https://localhost";

/// Runs WebAuthn ceremonies for the wallet owner, synchronously, with webauthn-rs types (every
/// one is also a [`Passkey`]). Each call is one prompt (one touch) for the person holding the
/// passkey: the SDK calls it once per ceremony, whatever the number of trustees. It runs inside
/// the ceremony's future: prefer [`Passkey`] for a prompt that takes time.
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

#[cfg(feature = "software-passkey")]
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

#[cfg(feature = "software-passkey")]
/// The in-memory passkey, or a token whose keys can be exported ([`SoftwareAuthenticator::to_bytes`])
/// so a test can kill the process holding it and go on in another.
enum Soft {
    Passkey(SoftPasskey),
    Token(Box<SoftToken>),
}

#[cfg(feature = "software-passkey")]
impl std::fmt::Debug for SoftwareAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SoftwareAuthenticator {{ origin: {}, touches: {}, keys: REDACTED }}",
            self.origin, self.touches
        )
    }
}

#[cfg(feature = "software-passkey")]
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

#[cfg(feature = "software-passkey")]
impl Default for SoftwareAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "software-passkey")]
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

#[cfg(all(test, feature = "software-passkey"))]
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
