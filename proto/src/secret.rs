//! Wrappers for secret values: zeroed on drop, printed as `REDACTED`, compared in constant time.

use k256::Scalar;
use k256::elliptic_curve::PrimeField;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// A secret secp256k1 scalar (the wallet secret `k`, or a share value).
#[derive(Clone)]
pub struct SecretScalar(Scalar);

impl SecretScalar {
    /// Wraps a scalar.
    pub fn new(s: Scalar) -> Self {
        Self(s)
    }
    /// A fresh, uniformly random, non-zero scalar.
    pub fn random() -> Self {
        use k256::elliptic_curve::Generate;
        let nz = k256::NonZeroScalar::generate_from_rng(&mut rand::rng());
        Self(*nz.as_ref())
    }
    /// The scalar, for arithmetic inside this crate and the node.
    pub fn expose(&self) -> &Scalar {
        &self.0
    }
    /// Big-endian bytes, zeroed when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.0.to_repr());
        out
    }
    /// Parses 32 big-endian bytes; refuses values ≥ the group order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        let repr = k256::FieldBytes::from(*bytes);
        Option::<Scalar>::from(Scalar::from_repr(repr)).map(Self)
    }
    /// True when the scalar is zero.
    pub fn is_zero(&self) -> bool {
        bool::from(self.0.is_zero())
    }
}

impl ConstantTimeEq for SecretScalar {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl Drop for SecretScalar {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretScalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretScalar(REDACTED)")
    }
}

/// Secret bytes of any length (a decrypted wallet blob, a raw key).
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps bytes.
    pub fn new(v: Vec<u8>) -> Self {
        Self(Zeroizing::new(v))
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Constant-time equality.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.len() == other.len() && bool::from(self.0.as_slice().ct_eq(other))
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(REDACTED, {} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretScalar::random();
        assert_eq!(format!("{s:?}"), "SecretScalar(REDACTED)");
        let b = SecretBytes::new(b"wallet seed".to_vec());
        assert!(!format!("{b:?}").contains("seed"));
    }

    #[test]
    fn bytes_round_trip() {
        let s = SecretScalar::random();
        let b = s.to_bytes();
        let back = SecretScalar::from_bytes(&b).expect("in range");
        assert!(bool::from(s.ct_eq(&back)));
        assert!(SecretScalar::from_bytes(&[0xff; 32]).is_none());
    }
}
