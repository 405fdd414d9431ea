//! Feldman verifiable secret sharing of the wallet secret over secp256k1 (via `vsss-rs`).
//!
//! `vsss-rs`'s `combine` returns a *wrong value*, not an error, for too few or tampered shares,
//! so [`combine`] only takes shares that each pass [`Commitments::verify`], takes exactly the
//! threshold, and checks the result against `C_0 = k·G` before returning it.

use crate::MAX_TRUSTEES;
use crate::codec::{DecodeError, Reader, Writer};
use crate::keys::{decode_public_key, encode_public_key};
use crate::secret::SecretScalar;
use k256::elliptic_curve::group::Group;
use k256::{ProjectivePoint, PublicKey, Scalar};
use vsss_rs::{DefaultShare, IdentifierPrimeField, ReadableShareSet, ValueGroup};

type VShare = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
type VVerifier = ValueGroup<ProjectivePoint>;

/// Smallest threshold: with `t = 1` every trustee alone would hold the secret.
pub const MIN_THRESHOLD: usize = 2;

/// Encoded length of a share: index (u16) ‖ value (32 bytes).
pub const SHARE_LEN: usize = 34;

/// Why sharing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// Threshold or trustee count out of range.
    #[error(
        "invalid policy: need {MIN_THRESHOLD} ≤ threshold ≤ trustees ≤ {MAX_TRUSTEES}, got {threshold} of {trustees}"
    )]
    InvalidPolicy {
        /// t
        threshold: usize,
        /// n
        trustees: usize,
    },
    /// A share does not match the commitments.
    #[error("share {index} does not match the manifest commitments")]
    InvalidShare {
        /// The share's index.
        index: u16,
    },
    /// Two shares had the same index.
    #[error("duplicate share index {0}")]
    DuplicateIndex(u16),
    /// Fewer verified shares than the threshold.
    #[error("need {needed} verified shares, have {have}")]
    TooFewShares {
        /// t
        needed: usize,
        /// how many were given
        have: usize,
    },
    /// The combined secret does not match `C_0`.
    #[error("combined secret does not match the commitment C_0")]
    WrongSecret,
    /// The sharing library failed.
    #[error("secret sharing failed")]
    Internal,
}

/// One share `(i, s_i)` with `i ≥ 1`.
#[derive(Clone)]
pub struct Share {
    index: u16,
    value: SecretScalar,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share {{ index: {}, value: REDACTED }}", self.index)
    }
}

impl Share {
    /// A share from its parts; refuses index 0 and a zero value.
    pub fn new(index: u16, value: SecretScalar) -> Result<Self, DecodeError> {
        if index == 0 {
            return Err(DecodeError::Invalid("share index 0"));
        }
        if value.is_zero() {
            return Err(DecodeError::Invalid("zero share value"));
        }
        Ok(Self { index, value })
    }
    /// The share index `i`.
    pub fn index(&self) -> u16 {
        self.index
    }
    /// The secret value `s_i`.
    pub fn value(&self) -> &SecretScalar {
        &self.value
    }
    /// `s_i·G`, the public image of the share (constant time: `s_i` is secret; k256's
    /// precomputed generator tables make this about twice as fast as `GENERATOR * s_i`).
    pub fn public_point(&self) -> ProjectivePoint {
        ProjectivePoint::mul_by_generator(self.value.expose())
    }
    /// Canonical encoding: index (u16 BE) ‖ value (32 bytes BE). Zeroed on drop.
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u16(self.index).fixed(self.value.to_bytes().as_ref());
        zeroize::Zeroizing::new(w.finish())
    }
    /// Strict decoding of [`Share::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let index = r.u16()?;
        let raw = zeroize::Zeroizing::new(r.array::<32>()?);
        r.finish()?;
        let value = SecretScalar::from_bytes(&raw).ok_or(DecodeError::Invalid("share value"))?;
        Self::new(index, value)
    }

    fn to_vsss(&self) -> VShare {
        VShare {
            identifier: IdentifierPrimeField(Scalar::from(u64::from(self.index))),
            value: IdentifierPrimeField(*self.value.expose()),
        }
    }
}

/// Feldman commitments `C_0..C_{t-1}` to the sharing polynomial's coefficients; `C_0 = k·G`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitments(Vec<PublicKey>);

impl Commitments {
    /// Wraps commitment points (each non-identity by construction of `PublicKey`).
    pub fn new(points: Vec<PublicKey>) -> Result<Self, DecodeError> {
        if points.is_empty() || points.len() > MAX_TRUSTEES {
            return Err(DecodeError::Invalid("commitment count"));
        }
        Ok(Self(points))
    }
    /// The threshold `t` these commitments describe.
    pub fn threshold(&self) -> usize {
        self.0.len()
    }
    /// `C_0 = k·G`.
    pub fn secret_commitment(&self) -> &PublicKey {
        &self.0[0]
    }
    /// The points.
    pub fn points(&self) -> &[PublicKey] {
        &self.0
    }
    /// `Σ C_j·i^j`: what `s_i·G` must equal for the share with index `i`.
    ///
    /// Everything here is public (the commitments and the index), so it runs in variable time:
    /// Horner's rule with the 16-bit index as a small multiplier costs a few dozen point
    /// additions instead of `t` full 256-bit constant-time multiplications.
    pub fn expected_public_share(&self, index: u16) -> ProjectivePoint {
        let mut acc = ProjectivePoint::IDENTITY;
        for c in self.0.iter().rev() {
            acc = mul_public_small(acc, index) + c.to_projective();
        }
        acc
    }
    /// The Feldman check: `s_i·G == Σ C_j·i^j`. The secret side is a constant-time fixed-base
    /// multiplication; the public side is [`Commitments::expected_public_share`].
    pub fn verify(&self, share: &Share) -> Result<(), ShareError> {
        if share.public_point() == self.expected_public_share(share.index) {
            Ok(())
        } else {
            Err(ShareError::InvalidShare { index: share.index })
        }
    }
    /// Encoding inside a manifest: count (u16) then 33-byte points.
    pub(crate) fn encode_into(&self, w: &mut Writer) {
        w.u16(self.0.len() as u16);
        for c in &self.0 {
            w.fixed(&encode_public_key(c));
        }
    }
    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = usize::from(r.u16()?);
        if count == 0 || count > MAX_TRUSTEES {
            return Err(DecodeError::Invalid("commitment count"));
        }
        let mut points = Vec::with_capacity(count);
        for _ in 0..count {
            points.push(decode_public_key(&r.array::<33>()?)?);
        }
        Self::new(points)
    }
}

/// `n·p` for a public 16-bit `n`, by double-and-add over `n`'s bits (variable time in `n` and
/// `p`, both public here).
fn mul_public_small(p: ProjectivePoint, n: u16) -> ProjectivePoint {
    let mut acc = ProjectivePoint::IDENTITY;
    for bit in (0..16).rev() {
        acc = acc.double();
        if (n >> bit) & 1 == 1 {
            acc += p;
        }
    }
    acc
}

/// Splits `secret` into `trustees` shares with indices `1..=trustees`, any `threshold` of which
/// rebuild it. `secret` must be a fresh random scalar: `C_0` publishes `secret·G`.
pub fn split(
    secret: &SecretScalar,
    threshold: usize,
    trustees: usize,
) -> Result<(Vec<Share>, Commitments), ShareError> {
    if threshold < MIN_THRESHOLD || threshold > trustees || trustees > MAX_TRUSTEES {
        return Err(ShareError::InvalidPolicy {
            threshold,
            trustees,
        });
    }
    let ids = (1..=trustees as u64).map(|i| IdentifierPrimeField(Scalar::from(i)));
    let (vshares, verifiers) = vsss_rs::feldman::split_secret_with_ids::<VShare, VVerifier>(
        threshold,
        trustees,
        &IdentifierPrimeField(*secret.expose()),
        None,
        &mut rand::rng(),
        ids,
    )
    .map_err(|_| ShareError::Internal)?;
    let mut shares = Vec::with_capacity(trustees);
    for (i, vs) in vshares.into_iter().enumerate() {
        let value = SecretScalar::new(vs.value.0);
        shares.push(Share::new((i + 1) as u16, value).map_err(|_| ShareError::Internal)?);
    }
    // verifiers[0] is the generator; the commitments follow.
    let points = verifiers[1..]
        .iter()
        .map(|v| PublicKey::from_affine(v.0.to_affine()).map_err(|_| ShareError::Internal))
        .collect::<Result<Vec<_>, _>>()?;
    let commitments = Commitments::new(points).map_err(|_| ShareError::Internal)?;
    Ok((shares, commitments))
}

/// Rebuilds the secret from shares that are *each verified here* against `commitments`:
/// uses exactly `t` of them (the first `t` given), and checks the result against `C_0`.
pub fn combine(shares: &[Share], commitments: &Commitments) -> Result<SecretScalar, ShareError> {
    let t = commitments.threshold();
    if shares.len() < t {
        return Err(ShareError::TooFewShares {
            needed: t,
            have: shares.len(),
        });
    }
    let chosen = &shares[..t];
    for (i, s) in chosen.iter().enumerate() {
        commitments.verify(s)?;
        if chosen[..i].iter().any(|o| o.index == s.index) {
            return Err(ShareError::DuplicateIndex(s.index));
        }
    }
    let vshares: Vec<VShare> = chosen.iter().map(Share::to_vsss).collect();
    let secret = vshares.combine().map_err(|_| ShareError::Internal)?;
    let secret = SecretScalar::new(secret.0);
    let image = ProjectivePoint::mul_by_generator(secret.expose());
    if image != commitments.secret_commitment().to_projective() || bool::from(image.is_identity()) {
        return Err(ShareError::WrongSecret);
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_verify_combine() {
        let k = SecretScalar::random();
        let (shares, comms) = split(&k, 3, 5).expect("split");
        assert_eq!(shares.len(), 5);
        for s in &shares {
            comms.verify(s).expect("verifies");
            assert_eq!(s.public_point(), comms.expected_public_share(s.index()));
        }
        let subset = [shares[4].clone(), shares[1].clone(), shares[2].clone()];
        let back = combine(&subset, &comms).expect("combine");
        assert_eq!(back.to_bytes(), k.to_bytes());
    }

    #[test]
    fn tampered_or_too_few_shares_fail() {
        let k = SecretScalar::random();
        let (shares, comms) = split(&k, 3, 5).expect("split");
        let bad = Share::new(
            2,
            SecretScalar::new(*shares[1].value().expose() + Scalar::ONE),
        )
        .expect("share");
        assert_eq!(
            comms.verify(&bad),
            Err(ShareError::InvalidShare { index: 2 })
        );
        assert_eq!(
            combine(&[shares[0].clone(), bad, shares[2].clone()], &comms).err(),
            Some(ShareError::InvalidShare { index: 2 })
        );
        assert_eq!(
            combine(&shares[..2], &comms).err(),
            Some(ShareError::TooFewShares { needed: 3, have: 2 })
        );
        assert_eq!(
            combine(
                &[shares[0].clone(), shares[0].clone(), shares[1].clone()],
                &comms
            )
            .err(),
            Some(ShareError::DuplicateIndex(1))
        );
    }

    #[test]
    fn share_codec_is_strict() {
        let (shares, _) = split(&SecretScalar::random(), 2, 3).expect("split");
        let enc = shares[0].encode();
        let back = Share::decode(&enc).expect("decode");
        assert_eq!(back.index(), 1);
        let mut long = enc.to_vec();
        long.push(0);
        assert_eq!(Share::decode(&long).err(), Some(DecodeError::TrailingBytes));
        assert!(Share::decode(&[0, 0, 1]).is_err());
        let mut zero_idx = enc.to_vec();
        zero_idx[0] = 0;
        zero_idx[1] = 0;
        assert!(Share::decode(&zero_idx).is_err());
    }

    /// The hand-arranged Feldman check agrees with `vsss-rs`'s verifier (full constant-time
    /// multiplications) on valid and tampered shares, for every policy shape up to 20 trustees.
    #[test]
    fn feldman_check_agrees_with_vsss_rs() {
        use vsss_rs::FeldmanVerifierSet;
        let vsss_verify = |comms: &Commitments, share: &Share| {
            let mut set: Vec<VVerifier> = vec![ValueGroup(ProjectivePoint::GENERATOR)];
            set.extend(comms.points().iter().map(|c| ValueGroup(c.to_projective())));
            FeldmanVerifierSet::<VShare, VVerifier>::verify_share(&set, &share.to_vsss()).is_ok()
        };
        for (t, n) in [(2, 2), (2, 3), (3, 5), (6, 10), (11, 20), (20, 20)] {
            let (shares, comms) = split(&SecretScalar::random(), t, n).expect("split");
            for s in &shares {
                assert!(comms.verify(s).is_ok() && vsss_verify(&comms, s));
                let bumped = SecretScalar::new(*s.value().expose() + Scalar::ONE);
                let tampered = Share::new(s.index(), bumped).expect("share");
                assert!(comms.verify(&tampered).is_err() && !vsss_verify(&comms, &tampered));
                let moved = Share::new(s.index() % n as u16 + 1, s.value().clone());
                let moved = moved.expect("share");
                assert!(comms.verify(&moved).is_err() && !vsss_verify(&comms, &moved));
            }
        }
    }

    #[test]
    fn small_multiplier_matches_scalar_multiplication() {
        let p = ProjectivePoint::mul_by_generator(&Scalar::from(7u64));
        for n in [0u16, 1, 2, 3, 255, 256, 4097, u16::MAX] {
            assert_eq!(
                mul_public_small(p, n),
                p * Scalar::from(u64::from(n)),
                "n = {n}"
            );
        }
    }

    #[test]
    fn bad_policy() {
        let k = SecretScalar::random();
        assert!(split(&k, 0, 3).is_err());
        assert!(split(&k, 1, 3).is_err());
        assert!(split(&k, 4, 3).is_err());
        assert!(split(&k, 2, MAX_TRUSTEES + 1).is_err());
    }
}
