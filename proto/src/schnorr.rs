//! Proof that a trustee still holds its share, without revealing it.
//!
//! A Schnorr proof of knowledge of `s_i` for `P = s_i·G`, where the verifier computes `P` from
//! the manifest commitments. Prover: random `r`, `A = r·G`, `c = H(ctx ‖ P ‖ A)`, `z = r + c·s_i`.
//! Verifier: `z·G == A + c·P`. `c = SHA-256("dlocker/possession-proof/v1" ‖ wallet_id ‖ epoch ‖
//! share_index ‖ node key ‖ nonce ‖ P ‖ A)` reduced mod n. Binding the verifier's fresh nonce
//! makes a recorded proof useless later.
//!
//! Wire format: `A [33] ‖ z [32]`.

use crate::codec::{DecodeError, Reader, Writer};
use crate::keys::{decode_public_key, encode_public_key};
use crate::labels;
use crate::secret::SecretScalar;
use crate::share::Share;
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::ops::{MulByGeneratorVartime, Reduce};
use k256::{FieldBytes, ProjectivePoint, PublicKey, Scalar};
use sha2::{Digest, Sha256};

/// Required nonce length.
pub const NONCE_LEN: usize = 32;

/// What a proof is bound to.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// The wallet.
    pub wallet_id: &'a str,
    /// The epoch.
    pub epoch: u64,
    /// The share index.
    pub share_index: u16,
    /// The proving node's identity key.
    pub node_key: &'a PublicKey,
    /// The verifier's fresh nonce.
    pub nonce: &'a [u8; NONCE_LEN],
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Not a proof.
    #[error("malformed possession proof: {0}")]
    Malformed(#[from] DecodeError),
    /// The proof does not verify.
    #[error("possession proof does not verify")]
    Invalid,
}

/// A Schnorr proof of possession.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PossessionProof(SchnorrProof);

/// The Schnorr core every proof of knowledge here shares (the possession proof, the passkey
/// reset's proof of `k`): commitment `A = r·G` and response `z = r + c·x` for a public `P = x·G`,
/// the challenge `c` bound by the caller to its own context. Wire: `A [33] ‖ z [32]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchnorrProof {
    /// `A`.
    pub(crate) commitment: PublicKey,
    /// `z`.
    pub(crate) response: Scalar,
}

impl SchnorrProof {
    /// `z·G == A + c·P`.
    pub(crate) fn holds(&self, public: &ProjectivePoint, c: &Scalar) -> bool {
        // z·G − c·P == A, all public: one variable-time double multiplication.
        let lhs =
            ProjectivePoint::mul_by_generator_and_mul_add_vartime(&self.response, &(-*c), public);
        lhs == self.commitment.to_projective()
    }

    /// Canonical encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(&encode_public_key(&self.commitment))
            .fixed(&self.response.to_repr());
        w.finish()
    }

    /// Strict decoding.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let commitment = decode_public_key(&r.array::<33>()?)?;
        let z = r.array::<32>()?;
        r.finish()?;
        let response = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(z)))
            .ok_or(DecodeError::Invalid("proof response"))?;
        Ok(Self {
            commitment,
            response,
        })
    }
}

fn challenge(ctx: &ProofContext<'_>, public: &ProjectivePoint, a: &PublicKey) -> Option<Scalar> {
    let p = PublicKey::from_affine(public.to_affine()).ok()?;
    let mut w = Writer::new();
    w.fixed(labels::POSSESSION_PROOF)
        .str(ctx.wallet_id)
        .u64(ctx.epoch)
        .u16(ctx.share_index)
        .fixed(&encode_public_key(ctx.node_key))
        .fixed(ctx.nonce)
        .fixed(&encode_public_key(&p))
        .fixed(&encode_public_key(a));
    let digest: [u8; 32] = Sha256::digest(w.finish()).into();
    Some(<Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(
        digest,
    )))
}

impl PossessionProof {
    /// Proves knowledge of `share`'s value.
    pub fn prove(share: &Share, ctx: &ProofContext<'_>) -> Result<Self, ProofError> {
        let r = SecretScalar::random();
        let a = PublicKey::from_affine(ProjectivePoint::mul_by_generator(r.expose()).to_affine())
            .map_err(|_| ProofError::Invalid)?;
        let c = challenge(ctx, &share.public_point(), &a).ok_or(ProofError::Invalid)?;
        let response = *r.expose() + c * share.value().expose();
        Ok(Self(SchnorrProof {
            commitment: a,
            response,
        }))
    }

    /// Verifies against the expected public share `P = s_i·G`.
    pub fn verify(
        &self,
        public_share: &ProjectivePoint,
        ctx: &ProofContext<'_>,
    ) -> Result<(), ProofError> {
        let c = challenge(ctx, public_share, &self.0.commitment).ok_or(ProofError::Invalid)?;
        if self.0.holds(public_share, &c) {
            Ok(())
        } else {
            Err(ProofError::Invalid)
        }
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        Ok(Self(SchnorrProof::decode(bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::split;
    use k256::SecretKey;
    use k256::elliptic_curve::Generate;

    #[test]
    fn prove_verify_and_binding() {
        let (shares, comms) = split(&SecretScalar::random(), 2, 3).expect("split");
        let node = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let nonce = [5u8; 32];
        let ctx = ProofContext {
            wallet_id: "w",
            epoch: 1,
            share_index: 2,
            node_key: &node,
            nonce: &nonce,
        };
        let proof = PossessionProof::prove(&shares[1], &ctx).expect("prove");
        let proof = PossessionProof::decode(&proof.encode()).expect("decode");
        let p = comms.expected_public_share(2);
        proof.verify(&p, &ctx).expect("verifies");
        let other_nonce = [6u8; 32];
        assert_eq!(
            proof.verify(
                &p,
                &ProofContext {
                    nonce: &other_nonce,
                    ..ctx
                }
            ),
            Err(ProofError::Invalid)
        );
        assert_eq!(
            proof.verify(&comms.expected_public_share(1), &ctx),
            Err(ProofError::Invalid)
        );
        // A node holding a different share cannot prove share 2.
        let wrong = PossessionProof::prove(&shares[0], &ctx).expect("prove");
        assert_eq!(wrong.verify(&p, &ctx), Err(ProofError::Invalid));
    }
}
