//! Proof of knowledge of the wallet secret `k` for a bank-assisted passkey reset
//! (`docs/protocol.md` §13a, "Passkey reset").
//!
//! The owner who lost the passkey but still holds `k` (the wallet on the phone) proves knowledge
//! of `k` for `C_0 = k·G`, the first Feldman commitment every trustee holds in the active
//! manifest, without revealing it. A Schnorr proof made non-interactive (Fiat–Shamir) over the
//! reset's one-touch challenge (action reset-passkey, `authorized` = the new credential's
//! fingerprint, every trustee's `(node id, nonce)`), so a proof is good for one wallet, one new
//! credential and one set of fresh nonces only:
//!
//! ```text
//! prover:    r = H(PASSKEY_RESET_NONCE ‖ k ‖ aux ‖ challenge) mod n     (aux: 32 random bytes)
//!            A = r·G
//!            c = SHA-256("dlocker/passkey-reset-proof/v1" ‖ challenge [32] ‖ C_0 [33] ‖ A [33]) mod n
//!            z = r + c·k
//! verifier:  z·G == A + c·C_0
//! wire:      A [33] ‖ z [32]
//! ```
//!
//! `challenge` is [`OwnerChallenge::digest`]. The commitment scalar is hedged (derived from `k`,
//! the challenge and fresh randomness) so a broken random source cannot repeat `r` for two
//! challenges; the secret arithmetic is k256's constant-time scalar and generator operations.

use crate::codec::{DecodeError, Writer};
use crate::keys::encode_public_key;
use crate::labels;
use crate::owner_challenge::{OwnerAction, OwnerChallenge};
use crate::schnorr::SchnorrProof;
use crate::secret::SecretScalar;
use k256::elliptic_curve::ops::Reduce;
use k256::{FieldBytes, ProjectivePoint, PublicKey, Scalar};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Encoded length: `A [33] ‖ z [32]`.
pub const PROOF_LEN: usize = 65;

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetProofError {
    /// Not a proof.
    #[error("malformed passkey-reset proof: {0}")]
    Malformed(#[from] DecodeError),
    /// The challenge is not a passkey reset's.
    #[error("the proof's challenge is for action {0}, not reset-passkey")]
    WrongAction(OwnerAction),
    /// The proof does not verify (wrong `k`, or made for another wallet, credential or nonces).
    #[error("passkey-reset proof does not verify")]
    Invalid,
}

/// A Schnorr proof of knowledge of `k` for `C_0 = k·G`, bound to a reset challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetProof(SchnorrProof);

fn point(p: &ProjectivePoint) -> Option<PublicKey> {
    PublicKey::from_affine(p.to_affine()).ok()
}

fn challenge_scalar(digest: &[u8; 32], c0: &PublicKey, a: &PublicKey) -> Scalar {
    let mut w = Writer::new();
    w.fixed(labels::PASSKEY_RESET_PROOF)
        .fixed(digest)
        .fixed(&encode_public_key(c0))
        .fixed(&encode_public_key(a));
    let d: [u8; 32] = Sha256::digest(w.finish()).into();
    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(d))
}

fn check_action(challenge: &OwnerChallenge) -> Result<(), ResetProofError> {
    match challenge.action() {
        OwnerAction::ResetPasskey => Ok(()),
        other => Err(ResetProofError::WrongAction(other)),
    }
}

impl ResetProof {
    /// Proves knowledge of `k` for `challenge` (action reset-passkey, `authorized` = the new
    /// credential's fingerprint, every trustee's nonce).
    pub fn prove(k: &SecretScalar, challenge: &OwnerChallenge) -> Result<Self, ResetProofError> {
        use rand::RngExt as _;
        let aux: [u8; 32] = rand::rng().random();
        Self::prove_with_aux(k, challenge, &aux)
    }

    /// [`Self::prove`] with the hedging randomness given: deterministic, for test vectors.
    pub fn prove_with_aux(
        k: &SecretScalar,
        challenge: &OwnerChallenge,
        aux: &[u8; 32],
    ) -> Result<Self, ResetProofError> {
        check_action(challenge)?;
        if k.is_zero() {
            return Err(ResetProofError::Invalid);
        }
        let digest = challenge.digest();
        let mut h = Sha256::new();
        h.update(labels::PASSKEY_RESET_NONCE);
        h.update(k.to_bytes().as_slice());
        h.update(aux);
        h.update(digest);
        let seed = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        let r = SecretScalar::new(<Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(
            *seed,
        )));
        let c0 = point(&ProjectivePoint::mul_by_generator(k.expose()))
            .ok_or(ResetProofError::Invalid)?;
        let a = point(&ProjectivePoint::mul_by_generator(r.expose()))
            .ok_or(ResetProofError::Invalid)?;
        let c = challenge_scalar(&digest, &c0, &a);
        let response = *r.expose() + c * k.expose();
        Ok(Self(SchnorrProof {
            commitment: a,
            response,
        }))
    }

    /// Verifies against `c0` (the active manifest's first commitment, `k·G`) and `challenge`.
    pub fn verify(
        &self,
        c0: &PublicKey,
        challenge: &OwnerChallenge,
    ) -> Result<(), ResetProofError> {
        check_action(challenge)?;
        let c = challenge_scalar(&challenge.digest(), c0, &self.0.commitment);
        if self.0.holds(&c0.to_projective(), &c) {
            Ok(())
        } else {
            Err(ResetProofError::Invalid)
        }
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, ResetProofError> {
        Ok(Self(SchnorrProof::decode(bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owner_challenge::TrusteeNonce;

    fn nonces(seed: u8) -> Vec<TrusteeNonce> {
        (0..3u8)
            .map(|i| TrusteeNonce {
                node_id: format!("{:032x}", u128::from(i) + 1),
                nonce: [seed.wrapping_add(i); 32],
            })
            .collect()
    }

    fn ch(wallet: &str, fp: &[u8; 32], n: Vec<TrusteeNonce>) -> OwnerChallenge {
        OwnerChallenge::new(OwnerAction::ResetPasskey, wallet, fp, n).expect("challenge")
    }

    fn c0(k: &SecretScalar) -> PublicKey {
        point(&ProjectivePoint::mul_by_generator(k.expose())).expect("point")
    }

    #[test]
    fn proof_binds_wallet_credential_nonces_and_k() {
        let k = SecretScalar::random();
        let fp = [7u8; 32];
        let good = ch("wallet-1", &fp, nonces(1));
        let proof = ResetProof::prove(&k, &good).expect("prove");
        let enc = proof.encode();
        assert_eq!(enc.len(), PROOF_LEN);
        let proof = ResetProof::decode(&enc).expect("decode");
        proof.verify(&c0(&k), &good).expect("verifies");
        let invalid = Err(ResetProofError::Invalid);
        // Another wallet, another credential, another nonce set, reordered or missing nonces.
        assert_eq!(
            proof.verify(&c0(&k), &ch("wallet-2", &fp, nonces(1))),
            invalid
        );
        assert_eq!(
            proof.verify(&c0(&k), &ch("wallet-1", &[8; 32], nonces(1))),
            invalid
        );
        assert_eq!(
            proof.verify(&c0(&k), &ch("wallet-1", &fp, nonces(2))),
            invalid
        );
        let mut reordered = nonces(1);
        reordered.swap(0, 1);
        assert_eq!(
            proof.verify(&c0(&k), &ch("wallet-1", &fp, reordered)),
            invalid
        );
        let mut fewer = nonces(1);
        fewer.pop();
        assert_eq!(proof.verify(&c0(&k), &ch("wallet-1", &fp, fewer)), invalid);
        // Another wallet's C_0 (the prover does not know its k).
        assert_eq!(proof.verify(&c0(&SecretScalar::random()), &good), invalid);
        // A proof made with a wrong k does not verify against the wallet's C_0.
        let wrong = ResetProof::prove(&SecretScalar::random(), &good).expect("prove");
        assert_eq!(wrong.verify(&c0(&k), &good), invalid);
        // A touch challenge of another action is refused outright.
        let other = OwnerChallenge::new(OwnerAction::ChangePasskey, "wallet-1", &fp, nonces(1))
            .expect("challenge");
        assert_eq!(
            proof.verify(&c0(&k), &other),
            Err(ResetProofError::WrongAction(OwnerAction::ChangePasskey))
        );
        assert!(ResetProof::prove(&k, &other).is_err());
    }

    #[test]
    fn deterministic_with_aux_and_strict_decoding() {
        let k = SecretScalar::random();
        let c = ch("w", &[1; 32], nonces(3));
        let a = ResetProof::prove_with_aux(&k, &c, &[9; 32]).expect("prove");
        let b = ResetProof::prove_with_aux(&k, &c, &[9; 32]).expect("prove");
        assert_eq!(a, b);
        let other = ResetProof::prove_with_aux(&k, &c, &[10; 32]).expect("prove");
        assert_ne!(a.encode(), other.encode());
        let mut long = a.encode();
        long.push(0);
        assert!(ResetProof::decode(&long).is_err());
        assert!(ResetProof::decode(&a.encode()[..64]).is_err());
        let mut flipped = a.encode();
        flipped[40] ^= 1;
        let flipped = ResetProof::decode(&flipped).expect("still a scalar");
        assert_eq!(flipped.verify(&c0(&k), &c), Err(ResetProofError::Invalid));
    }
}
