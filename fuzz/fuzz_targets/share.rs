//! Shares: `Share::decode` (strict, canonical), and verification of a decoded share against
//! commitments decoded from the rest of the input (what a trustee does at deposit and the SDK
//! at recovery). The node's variable-time evaluation of `Σ C_j·i^j` is checked against a
//! plain sum of full scalar multiplications where that is cheap (t ≤ 4) and wherever a share
//! verifies.
#![no_main]

use dlocker_proto::MAX_TRUSTEES;
use dlocker_proto::keys::decode_public_key;
use dlocker_proto::share::{Commitments, Share, combine};
use k256::{ProjectivePoint, Scalar};
use libfuzzer_sys::fuzz_target;

/// `Σ C_j·i^j`, the textbook way (independent of the node's Horner evaluation).
fn plain_sum(commitments: &Commitments, index: u16) -> ProjectivePoint {
    let i = Scalar::from(u64::from(index));
    let mut power = Scalar::ONE;
    let mut acc = ProjectivePoint::IDENTITY;
    for c in commitments.points() {
        acc += c.to_projective() * power;
        power *= i;
    }
    acc
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Share::decode(data) {
        assert_eq!(&s.encode()[..], data, "a share has one encoding");
        assert_ne!(s.index(), 0);
    }
    if data.len() < 34 {
        return;
    }
    let (share, points) = data.split_at(34);
    let Ok(share) = Share::decode(share) else {
        return;
    };
    // Past one more than the most commitments a manifest may hold, no input can make
    // commitments; decompressing its (up to ~2,000) points would be nearly all of this target's
    // time. One past the maximum still reaches the count check.
    let chunks = points.chunks_exact(33);
    if chunks.len() > MAX_TRUSTEES + 1 {
        return;
    }
    let points: Vec<_> = chunks
        .filter_map(|c| decode_public_key(c).ok())
        .collect();
    let Ok(commitments) = Commitments::new(points) else {
        return;
    };
    let ok = commitments.verify(&share).is_ok();
    if ok || commitments.threshold() <= 4 {
        assert_eq!(
            ok,
            plain_sum(&commitments, share.index()) == share.public_point(),
            "the Feldman check disagrees with the plain sum"
        );
    }
    // Combining one share never panics (too few unless t = 1, which commitments may claim).
    let _ = combine(std::slice::from_ref(&share), &commitments);
});
