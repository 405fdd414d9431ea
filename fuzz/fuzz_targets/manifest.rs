//! Manifests: strict decoding plus validation; a decoded manifest re-encodes to the same bytes
//! (so its hash is well defined) and its accessors agree with the validation.
#![no_main]

use dlocker_proto::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Manifest::decode(data) else {
        return;
    };
    assert_eq!(m.encode(), data, "a manifest has one encoding");
    let _ = m.hash();
    let t = usize::from(m.threshold());
    assert!(t >= 2 && t <= m.trustees().len());
    assert_eq!(m.commitments().threshold(), t);
    assert!(m.trustee(m.bank_node_id()).is_some());
    for e in m.trustees() {
        assert_eq!(
            m.trustee(&e.node_id).map(|x| x.share_index),
            Some(e.share_index)
        );
        let _ = m.commitments().expected_public_share(e.share_index);
    }
});
