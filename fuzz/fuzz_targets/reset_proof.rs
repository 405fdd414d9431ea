//! Passkey-reset proofs (the owner's proof of knowledge of `k` that `Epochs.ResetPasskey` and
//! the bank's `RequestPasskeyReset` check): strict decoding, one encoding per proof, and
//! verification against the vector's `C_0` and challenge. Whatever verifies verifies for no
//! other challenge (another trustee's nonce) and for no other `C_0`.
#![no_main]

use dlocker_fuzz::{RESET_PROOF, hex_field, str_field};
use dlocker_proto::keys::decode_public_key;
use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge};
use dlocker_proto::reset_proof::ResetProof;
use k256::PublicKey;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// The vector's challenge, and the same with one trustee's nonce changed.
static CHALLENGES: LazyLock<Option<(OwnerChallenge, OwnerChallenge)>> = LazyLock::new(|| {
    let v = &*RESET_PROOF;
    let nonces: Vec<(String, Vec<u8>)> = v["nonces"]
        .as_array()?
        .iter()
        .map(|e| (str_field(e, "node_id").to_owned(), hex_field(e, "nonce")))
        .collect();
    let make = |nonces: &[(String, Vec<u8>)]| {
        OwnerChallenge::from_wire(
            OwnerAction::ResetPasskey,
            str_field(v, "wallet_id"),
            &hex_field(v, "credential_fingerprint"),
            nonces.iter().map(|(id, n)| (id.as_str(), n.as_slice())),
        )
        .ok()
    };
    let mut other = nonces.clone();
    other.first_mut()?.1[0] ^= 1;
    Some((make(&nonces)?, make(&other)?))
});

static C0: LazyLock<Option<PublicKey>> =
    LazyLock::new(|| decode_public_key(&hex_field(&RESET_PROOF, "c0")).ok());

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = ResetProof::decode(data) else {
        return;
    };
    assert_eq!(proof.encode(), data, "a reset proof has one encoding");
    let (Some((challenge, other)), Some(c0)) = (CHALLENGES.as_ref(), C0.as_ref()) else {
        return;
    };
    if proof.verify(c0, challenge).is_ok() {
        assert!(
            proof.verify(c0, other).is_err(),
            "a reset proof verified for two challenges"
        );
        let other_c0 = PublicKey::from_affine(
            (c0.to_projective() + k256::ProjectivePoint::GENERATOR).to_affine(),
        );
        if let Ok(other_c0) = other_c0 {
            assert!(
                proof.verify(&other_c0, challenge).is_err(),
                "a reset proof verified for two keys"
            );
        }
    }
});
