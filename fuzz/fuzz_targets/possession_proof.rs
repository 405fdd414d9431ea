//! Possession proofs (a trustee's answer to `ProveShare`): strict decoding, one encoding per
//! proof, verification against the vector's public share and context; the vector's proof
//! verifies only for its own nonce.
#![no_main]

use dlocker_fuzz::{PROOF, hex_field, u64_field, vector_key};
use dlocker_proto::manifest::Manifest;
use dlocker_proto::schnorr::{PossessionProof, ProofContext};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static MANIFEST: LazyLock<Option<Manifest>> =
    LazyLock::new(|| Manifest::decode(&hex_field(&PROOF, "manifest")).ok());

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = PossessionProof::decode(data) else {
        return;
    };
    assert_eq!(proof.encode(), data, "a proof has one encoding");
    let Some(m) = MANIFEST.as_ref() else {
        return;
    };
    let node_key = vector_key(&PROOF, "node_public");
    let index = u64_field(&PROOF, "share_index") as u16;
    let nonce: [u8; 32] = hex_field(&PROOF, "nonce").try_into().unwrap_or([3; 32]);
    let ctx = ProofContext {
        wallet_id: m.wallet_id(),
        epoch: m.epoch(),
        share_index: index,
        node_key: &node_key,
        nonce: &nonce,
    };
    let public = m.commitments().expected_public_share(index);
    let ok = proof.verify(&public, &ctx).is_ok();
    let mut other_nonce = nonce;
    other_nonce[0] ^= 1;
    let other = ProofContext {
        nonce: &other_nonce,
        ..ctx
    };
    if ok {
        assert!(
            proof.verify(&public, &other).is_err(),
            "a proof verified for two nonces"
        );
    }
});
