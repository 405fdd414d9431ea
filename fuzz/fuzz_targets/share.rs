//! Shares: `Share::decode` (strict, canonical), and verification of a decoded share against
//! commitments decoded from the rest of the input (what a trustee does at deposit and the SDK
//! at recovery).
#![no_main]

use dlocker_proto::keys::decode_public_key;
use dlocker_proto::share::{Commitments, Share, combine};
use libfuzzer_sys::fuzz_target;

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
    let points: Vec<_> = points
        .chunks_exact(33)
        .filter_map(|c| decode_public_key(c).ok())
        .collect();
    let Ok(commitments) = Commitments::new(points) else {
        return;
    };
    let ok = commitments.verify(&share).is_ok();
    // The Feldman check and the node's own expected-public-share computation agree.
    assert_eq!(
        ok,
        commitments.expected_public_share(share.index()) == share.public_point(),
        "vsss-rs verifier and expected_public_share disagree"
    );
    // Combining one share never panics (too few unless t = 1, which commitments may claim).
    let _ = combine(std::slice::from_ref(&share), &commitments);
});
