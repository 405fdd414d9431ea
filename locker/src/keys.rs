//! The signing key of an issuer, requester or holder (wallet key), in a wrapper that prints
//! `REDACTED` and zeroes itself (k256's `SigningKey` zeroizes on drop).

use crate::jwk::Jwk;
use k256::PublicKey;
use k256::ecdsa::SigningKey;
use zeroize::Zeroizing;

/// A principal's secp256k1 signing key.
#[derive(Clone)]
pub struct PrincipalKey(SigningKey);

impl std::fmt::Debug for PrincipalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PrincipalKey {{ public_key: {}, secret: REDACTED }}",
            self.public_key_hex()
        )
    }
}

impl PrincipalKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        use k256::elliptic_curve::Generate as _;
        Self(SigningKey::generate_from_rng(&mut rand::rng()))
    }
    /// Wraps a key.
    pub fn from_signing_key(k: SigningKey) -> Self {
        Self(k)
    }
    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = Zeroizing::new(hex::decode(s.trim()).ok()?);
        SigningKey::from_slice(&bytes).ok().map(Self)
    }
    /// The secret as hex (zeroed when dropped), for writing a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.to_bytes()))
    }
    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }
    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.0.verifying_key())
    }
    /// The public key, hex SEC1 compressed.
    pub fn public_key_hex(&self) -> String {
        dlocker_proto::keys::public_key_hex(&self.public_key())
    }
    /// The public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk::from_public_key(&self.public_key())
    }
}
