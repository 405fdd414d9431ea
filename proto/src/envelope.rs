//! Share envelopes: a share encrypted to one recipient key (a trustee, or a recovering device's
//! session key `R`).
//!
//! ECIES over secp256k1: an ephemeral key `e`; `Z = ECDH(e, recipient)`;
//! `key = HKDF-SHA256(ikm = Z.x, salt = E ‖ recipient, info = "dlocker/envelope/key/v1")`;
//! AES-256-GCM with a random nonce and associated data binding wallet id, epoch, share index and
//! recipient key. Opening with any other context fails.
//!
//! Wire format: `version (1) ‖ E (33) ‖ nonce (12) ‖ ciphertext+tag (u32 length ‖ bytes)`.

use crate::codec::{DecodeError, Reader, Writer};
use crate::keys::{decode_public_key, encode_public_key};
use crate::labels;
use crate::share::{SHARE_LEN, Share};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use k256::{PublicKey, SecretKey};
use rand::RngExt as _;
use sha2::Sha256;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// Why an envelope could not be sealed or opened. Deliberately vague: a wrong key, wrong
/// context and tampered ciphertext look the same to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes are not an envelope.
    #[error("malformed share envelope: {0}")]
    Malformed(#[from] DecodeError),
    /// Decryption failed (wrong recipient, wrong context, or tampering).
    #[error("share envelope does not open for this recipient and context")]
    Open,
}

/// What an envelope is bound to. Sealing and opening must use the same context.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeContext<'a> {
    /// The wallet.
    pub wallet_id: &'a str,
    /// The epoch of the sharing.
    pub epoch: u64,
    /// The share index inside.
    pub share_index: u16,
    /// The recipient's public key.
    pub recipient: &'a PublicKey,
}

impl EnvelopeContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(labels::ENVELOPE_AAD)
            .str(self.wallet_id)
            .u64(self.epoch)
            .u16(self.share_index)
            .fixed(&encode_public_key(self.recipient));
        w.finish()
    }
}

/// An encrypted share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareEnvelope {
    ephemeral: PublicKey,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

fn derive_key(
    shared_x: &[u8],
    ephemeral: &PublicKey,
    recipient: &PublicKey,
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 66];
    salt[..33].copy_from_slice(&encode_public_key(ephemeral));
    salt[33..].copy_from_slice(&encode_public_key(recipient));
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared_x);
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
    let _ = hk.expand(labels::ENVELOPE_KEY, key.as_mut());
    key
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

impl ShareEnvelope {
    /// Seals `share` to `ctx.recipient` under a fresh ephemeral key and nonce.
    pub fn seal(share: &Share, ctx: &EnvelopeContext<'_>) -> Result<Self, EnvelopeError> {
        let eph =
            <SecretKey as k256::elliptic_curve::Generate>::generate_from_rng(&mut rand::rng());
        Self::seal_with(share, ctx, &eph, rand::rng().random())
    }

    fn seal_with(
        share: &Share,
        ctx: &EnvelopeContext<'_>,
        eph: &SecretKey,
        nonce: [u8; 12],
    ) -> Result<Self, EnvelopeError> {
        if share.index() != ctx.share_index {
            return Err(EnvelopeError::Malformed(DecodeError::Invalid(
                "share index does not match context",
            )));
        }
        let ephemeral = eph.public_key();
        let shared = k256::ecdh::diffie_hellman(eph.to_nonzero_scalar(), ctx.recipient.as_affine());
        let key = derive_key(shared.raw_secret_bytes(), &ephemeral, ctx.recipient);
        let plaintext = share.encode();
        let aad = ctx.aad();
        let ciphertext = cipher(&key)
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| EnvelopeError::Open)?;
        Ok(Self {
            ephemeral,
            nonce,
            ciphertext,
        })
    }

    /// Opens the envelope with the recipient's secret key and checks the share index.
    pub fn open(
        &self,
        ctx: &EnvelopeContext<'_>,
        recipient_secret: &SecretKey,
    ) -> Result<Share, EnvelopeError> {
        // No `recipient_secret.public_key() == ctx.recipient` check (a full scalar
        // multiplication per open): the key derivation and the AAD both bind `ctx.recipient`, so
        // a secret that is not the recipient's derives another key and fails authentication.
        let shared = k256::ecdh::diffie_hellman(
            recipient_secret.to_nonzero_scalar(),
            self.ephemeral.as_affine(),
        );
        let key = derive_key(shared.raw_secret_bytes(), &self.ephemeral, ctx.recipient);
        let aad = ctx.aad();
        let plaintext = Zeroizing::new(
            cipher(&key)
                .decrypt(
                    (&self.nonce).into(),
                    Payload {
                        msg: &self.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| EnvelopeError::Open)?,
        );
        let share = Share::decode(&plaintext)?;
        if share.index() != ctx.share_index {
            return Err(EnvelopeError::Open);
        }
        Ok(share)
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VERSION)
            .fixed(&encode_public_key(&self.ephemeral))
            .fixed(&self.nonce)
            .bytes(&self.ciphertext);
        w.finish()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version).into());
        }
        let ephemeral = decode_public_key(&r.array::<33>()?)?;
        let nonce = r.array::<12>()?;
        let ciphertext = r.bytes("envelope ciphertext", SHARE_LEN + TAG_LEN)?;
        if ciphertext.len() != SHARE_LEN + TAG_LEN {
            return Err(DecodeError::Invalid("envelope ciphertext length").into());
        }
        let ciphertext = ciphertext.to_vec();
        r.finish()?;
        Ok(Self {
            ephemeral,
            nonce,
            ciphertext,
        })
    }

    /// Builds an envelope from explicit parts (test vectors only: a nonce or ephemeral key
    /// must never be reused).
    #[doc(hidden)]
    pub fn seal_deterministic(
        share: &Share,
        ctx: &EnvelopeContext<'_>,
        ephemeral_secret: &SecretKey,
        nonce: [u8; 12],
    ) -> Result<Self, EnvelopeError> {
        Self::seal_with(share, ctx, ephemeral_secret, nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretScalar;
    use crate::share::split;
    use k256::elliptic_curve::Generate;

    #[test]
    fn seal_open_and_wrong_context() {
        let node = SecretKey::generate_from_rng(&mut rand::rng());
        let other = SecretKey::generate_from_rng(&mut rand::rng());
        let (shares, _) = split(&SecretScalar::random(), 2, 3).expect("split");
        let pk = node.public_key();
        let ctx = EnvelopeContext {
            wallet_id: "w1",
            epoch: 1,
            share_index: 2,
            recipient: &pk,
        };
        let env = ShareEnvelope::seal(&shares[1], &ctx).expect("seal");
        let env = ShareEnvelope::decode(&env.encode()).expect("decode");
        let opened = env.open(&ctx, &node).expect("open");
        assert_eq!(opened.encode(), shares[1].encode());

        // Another recipient, wallet, epoch or index: all fail.
        let opk = other.public_key();
        assert_eq!(
            env.open(
                &EnvelopeContext {
                    recipient: &opk,
                    ..ctx
                },
                &other
            )
            .err(),
            Some(EnvelopeError::Open)
        );
        assert_eq!(env.open(&ctx, &other).err(), Some(EnvelopeError::Open));
        assert_eq!(
            env.open(
                &EnvelopeContext {
                    wallet_id: "w2",
                    ..ctx
                },
                &node
            )
            .err(),
            Some(EnvelopeError::Open)
        );
        assert_eq!(
            env.open(&EnvelopeContext { epoch: 2, ..ctx }, &node).err(),
            Some(EnvelopeError::Open)
        );
        assert_eq!(
            env.open(
                &EnvelopeContext {
                    share_index: 3,
                    ..ctx
                },
                &node
            )
            .err(),
            Some(EnvelopeError::Open)
        );

        // Any flipped byte in the ciphertext fails.
        let mut enc = env.encode();
        let last = enc.len() - 1;
        enc[last] ^= 1;
        let tampered = ShareEnvelope::decode(&enc).expect("still well-formed");
        assert_eq!(tampered.open(&ctx, &node).err(), Some(EnvelopeError::Open));
    }
}
