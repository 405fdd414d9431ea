//! Property tests: every decoder exposed to input returns an error, never panics, on random and
//! mutated bytes; and valid objects survive a round trip.

use dlocker_proto::audit::{AuditRecord, verify_chain};
use dlocker_proto::blob;
use dlocker_proto::envelope::ShareEnvelope;
use dlocker_proto::keys::node_id;
use dlocker_proto::manifest::{Manifest, ManifestParts, TrusteeEntry};
use dlocker_proto::schnorr::PossessionProof;
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{Share, split};
use dlocker_proto::statement::{
    AuditCheckpoint, BankApproval, BankCancellation, Receipt, ShareRelease, Signed, StaffRequest,
};
use k256::SecretKey;
use k256::elliptic_curve::Generate;
use proptest::prelude::*;
use std::sync::OnceLock;

fn decode_everything(bytes: &[u8]) {
    let _ = Share::decode(bytes);
    let _ = ShareEnvelope::decode(bytes);
    let _ = Manifest::decode(bytes);
    let _ = PossessionProof::decode(bytes);
    let _ = Signed::<Receipt>::decode(bytes);
    let _ = Signed::<BankApproval>::decode(bytes);
    let _ = Signed::<StaffRequest>::decode(bytes);
    let _ = Signed::<AuditCheckpoint>::decode(bytes);
    let _ = Signed::<ShareRelease>::decode(bytes);
    let _ = Signed::<BankCancellation>::decode(bytes);
    let _ = blob::open(&SecretScalar::random(), "w", bytes);
}

/// The keys the corpus is made with (the first signs every statement).
fn corpus_keys() -> &'static Vec<SecretKey> {
    static K: OnceLock<Vec<SecretKey>> = OnceLock::new();
    K.get_or_init(|| {
        (0..5)
            .map(|_| SecretKey::generate_from_rng(&mut rand::rng()))
            .collect()
    })
}

/// The public key that signed the corpus' statements.
fn trusted_key() -> k256::PublicKey {
    corpus_keys()[0].public_key()
}

/// Valid encodings of each object, made once: share, envelope, manifest, bank approval, blob,
/// staff request, share release, bank cancellation.
fn corpus() -> &'static Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| {
        let k = SecretScalar::random();
        let (shares, commitments) = split(&k, 3, 5).expect("split");
        let keys = corpus_keys();
        let trustees: Vec<TrusteeEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, sk)| TrusteeEntry {
                share_index: i as u16 + 1,
                node_id: node_id(&sk.public_key()),
                public_key: sk.public_key(),
            })
            .collect();
        let m = Manifest::new(ManifestParts {
            wallet_id: "prop-wallet".into(),
            epoch: 1,
            threshold: 3,
            bank_node_id: trustees[0].node_id.clone(),
            trustees,
            commitments,
            recovery_delay_secs: 10,
            blob_hash: [1; 32],
            created_at: 2,
            previous: None,
        })
        .expect("manifest");
        let pk = keys[0].public_key();
        let ctx = dlocker_proto::envelope::EnvelopeContext {
            wallet_id: "prop-wallet",
            epoch: 1,
            share_index: 1,
            recipient: &pk,
        };
        let env = ShareEnvelope::seal(&shares[0], &ctx).expect("seal");
        let signing = k256::ecdsa::SigningKey::from(keys[0].clone());
        let approval = Signed::sign(
            BankApproval {
                bank_node_id: m.bank_node_id().into(),
                wallet_id: "prop-wallet".into(),
                session_key: pk,
                issued_at: 1,
                expires_at: 2,
                approvers: vec!["alice".into()],
            },
            &signing,
        );
        let staff = Signed::sign(
            StaffRequest {
                node_id: m.bank_node_id().into(),
                action: dlocker_proto::statement::StaffAction::ApproveRecovery,
                target: "0123456789abcdef".into(),
                timestamp: 1,
                nonce: [3; 16],
            },
            &signing,
        );
        let release = Signed::sign(
            ShareRelease {
                node_id: m.bank_node_id().into(),
                wallet_id: "prop-wallet".into(),
                epoch: 1,
                share_index: 1,
                manifest_hash: m.hash(),
                session_key: pk,
                envelope_hash: [4; 32],
                released_at: 5,
            },
            &signing,
        );
        let cancellation = Signed::sign(
            BankCancellation {
                bank_node_id: m.bank_node_id().into(),
                wallet_id: "prop-wallet".into(),
                session_key: pk,
                session_id: "ab".repeat(16),
                session_opened_at: 5,
                staff_id: "alice".into(),
                issued_at: 6,
            },
            &signing,
        );
        vec![
            shares[0].encode().to_vec(),
            env.encode(),
            m.encode(),
            approval.encode(),
            blob::seal(&k, "w", b"data"),
            staff.encode(),
            release.encode(),
            cancellation.encode(),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_valid_objects_never_panic(which in 0usize..8, pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut v = corpus()[which].clone();
        let i = pos.index(v.len());
        v[i] = byte;
        decode_everything(&v);
        let c = cut.index(v.len());
        decode_everything(&v[..c]);
    }

    /// Verification against trusted keys (what trustees do with a bank approval, the SDK with a
    /// receipt or release): mutated statements are refused with an error, never accepted under
    /// the wrong key and never a panic.
    #[test]
    fn trusted_verification_of_mutated_statements_never_panics(which in 3usize..8, pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let original = &corpus()[which];
        let mut v = original.clone();
        let i = pos.index(v.len());
        v[i] = byte;
        let signer = trusted_key();
        let other = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let _ = Signed::<BankApproval>::decode_trusted(&v, &[signer]);
        let _ = Signed::<StaffRequest>::decode_trusted(&v, &[signer]);
        let _ = Signed::<ShareRelease>::decode_trusted(&v, &[signer]);
        let _ = Signed::<BankCancellation>::decode_trusted(&v, &[signer]);
        // Under a key that did not sign, nothing verifies, mutated or not.
        prop_assert!(Signed::<BankApproval>::decode_trusted(&v, &[other]).is_err());
        prop_assert!(Signed::<ShareRelease>::decode_trusted(original, &[other]).is_err());
    }

    #[test]
    fn audit_chain_verification_never_panics(seqs in proptest::collection::vec(0u64..10, 0..8), head in any::<[u8; 32]>()) {
        let entries: Vec<(AuditRecord, [u8; 32])> = seqs
            .iter()
            .map(|&seq| (AuditRecord { seq, at: 0, kind: String::new(), wallet_tag: String::new(), detail: String::new(), prev_hash: [0; 32] }, [0; 32]))
            .collect();
        let _ = verify_chain(&entries, seqs.len() as u64, &head);
    }

    #[test]
    fn valid_manifest_round_trips_and_any_flip_changes_or_fails(pos in any::<prop::sample::Index>()) {
        let enc = &corpus()[2];
        let m = Manifest::decode(enc).expect("valid");
        prop_assert_eq!(&m.encode(), enc);
        let mut flipped = enc.clone();
        let i = pos.index(flipped.len());
        flipped[i] ^= 0x01;
        // A flipped byte either fails to decode or decodes to a manifest with a different hash.
        if let Ok(other) = Manifest::decode(&flipped) {
            prop_assert_ne!(other.hash(), m.hash());
        }
    }
}
