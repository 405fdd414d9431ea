//! Micro-benchmarks of every protocol primitive.
//!
//! `cargo bench -p dlocker-proto --bench primitives`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::keys::node_id;
use dlocker_proto::manifest::{Manifest, ManifestParts, TrusteeEntry};
use dlocker_proto::schnorr::{PossessionProof, ProofContext};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{combine, split};
use dlocker_proto::statement::{BankApproval, Receipt, Signed, StaffAction, StaffRequest};
use k256::SecretKey;
use k256::ecdsa::SigningKey;
use k256::elliptic_curve::Generate;
use std::hint::black_box;

fn sharing(c: &mut Criterion) {
    let mut g = c.benchmark_group("vss");
    for n in [3usize, 5, 10, 20] {
        let t = n / 2 + 1;
        let k = SecretScalar::random();
        g.bench_with_input(
            BenchmarkId::new("split", format!("{t}-of-{n}")),
            &n,
            |b, &n| b.iter(|| split(black_box(&k), t, n).expect("split")),
        );
        let (shares, comms) = split(&k, t, n).expect("split");
        g.bench_with_input(
            BenchmarkId::new("verify_share", format!("{t}-of-{n}")),
            &n,
            |b, _| b.iter(|| comms.verify(black_box(&shares[n - 1])).expect("verify")),
        );
        g.bench_with_input(
            BenchmarkId::new("combine_verified", format!("{t}-of-{n}")),
            &n,
            |b, _| b.iter(|| combine(black_box(&shares[..t]), &comms).expect("combine")),
        );
    }
    g.finish();
}

fn envelope(c: &mut Criterion) {
    let node = SecretKey::generate_from_rng(&mut rand::rng());
    let pk = node.public_key();
    let (shares, _) = split(&SecretScalar::random(), 3, 5).expect("split");
    let ctx = EnvelopeContext {
        wallet_id: "bench-wallet",
        epoch: 1,
        share_index: 1,
        recipient: &pk,
    };
    c.bench_function("envelope/seal", |b| {
        b.iter(|| ShareEnvelope::seal(black_box(&shares[0]), &ctx).expect("seal"))
    });
    let env = ShareEnvelope::seal(&shares[0], &ctx).expect("seal");
    c.bench_function("envelope/open", |b| {
        b.iter(|| env.open(black_box(&ctx), &node).expect("open"))
    });
}

fn statements(c: &mut Criterion) {
    let key = SigningKey::generate_from_rng(&mut rand::rng());
    let receipt = Receipt {
        node_id: "ab".repeat(16),
        wallet_id: "bench-wallet".into(),
        epoch: 1,
        share_index: 1,
        manifest_hash: dlocker_proto::manifest::ManifestHash([1; 32]),
        issued_at: 1,
    };
    c.bench_function("statement/sign", |b| {
        b.iter(|| Signed::sign(black_box(receipt.clone()), &key))
    });
    let enc = Signed::sign(receipt, &key).encode();
    c.bench_function("statement/decode_verify", |b| {
        b.iter(|| Signed::<Receipt>::decode(black_box(&enc)).expect("ok"))
    });
    let pk = k256::PublicKey::from(key.verifying_key());
    c.bench_function("statement/decode_verify_trusted", |b| {
        b.iter(|| Signed::<Receipt>::decode_trusted(black_box(&enc), &[pk]).expect("ok"))
    });
}

/// The recovery statements: the bank's approval (signed by the bank, checked by every trustee)
/// and a staff request (signed by staff, checked by the bank).
fn approvals(c: &mut Criterion) {
    let bank = SigningKey::generate_from_rng(&mut rand::rng());
    let bank_pk = k256::PublicKey::from(bank.verifying_key());
    let r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
    let approval = BankApproval {
        bank_node_id: "ab".repeat(16),
        wallet_id: "bench-wallet".into(),
        session_key: r,
        issued_at: 1,
        expires_at: 2,
        approvers: vec!["alice".into(), "bob".into()],
    };
    c.bench_function("approval/sign", |b| {
        b.iter(|| Signed::sign(black_box(approval.clone()), &bank))
    });
    let enc = Signed::sign(approval, &bank).encode();
    c.bench_function("approval/decode_verify_trusted", |b| {
        b.iter(|| Signed::<BankApproval>::decode_trusted(black_box(&enc), &[bank_pk]).expect("ok"))
    });
    let staff = SigningKey::generate_from_rng(&mut rand::rng());
    let request = StaffRequest {
        node_id: "ab".repeat(16),
        action: StaffAction::ApproveRecovery,
        target: "0123456789abcdef0123456789abcdef".into(),
        timestamp: 1,
        nonce: [7; 16],
    };
    c.bench_function("staff_request/sign", |b| {
        b.iter(|| Signed::sign(black_box(request.clone()), &staff))
    });
    let enc = Signed::sign(request, &staff).encode();
    c.bench_function("staff_request/decode_verify", |b| {
        b.iter(|| Signed::<StaffRequest>::decode(black_box(&enc)).expect("ok"))
    });
}

/// The encrypted wallet blob (64 bytes of data, and the 64 KiB maximum).
fn blob(c: &mut Criterion) {
    let k = SecretScalar::random();
    for len in [64usize, 64 * 1024 - 29] {
        let data = vec![7u8; len];
        c.bench_with_input(BenchmarkId::new("blob/seal", len), &len, |b, _| {
            b.iter(|| dlocker_proto::blob::seal(black_box(&k), "bench-wallet", &data))
        });
        let sealed = dlocker_proto::blob::seal(&k, "bench-wallet", &data);
        c.bench_with_input(BenchmarkId::new("blob/open", len), &len, |b, _| {
            b.iter(|| {
                dlocker_proto::blob::open(black_box(&k), "bench-wallet", &sealed).expect("open")
            })
        });
    }
}

fn schnorr(c: &mut Criterion) {
    let (shares, comms) = split(&SecretScalar::random(), 3, 5).expect("split");
    let node = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
    let nonce = [9u8; 32];
    let ctx = ProofContext {
        wallet_id: "bench-wallet",
        epoch: 1,
        share_index: 2,
        node_key: &node,
        nonce: &nonce,
    };
    c.bench_function("schnorr/prove", |b| {
        b.iter(|| PossessionProof::prove(black_box(&shares[1]), &ctx).expect("prove"))
    });
    let proof = PossessionProof::prove(&shares[1], &ctx).expect("prove");
    let p = comms.expected_public_share(2);
    c.bench_function("schnorr/verify", |b| {
        b.iter(|| proof.verify(black_box(&p), &ctx).expect("verify"))
    });
}

fn manifest(c: &mut Criterion) {
    let (_, commitments) = split(&SecretScalar::random(), 3, 5).expect("split");
    let trustees: Vec<TrusteeEntry> = (1..=5u16)
        .map(|i| {
            let pk = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
            TrusteeEntry {
                share_index: i,
                node_id: node_id(&pk),
                public_key: pk,
            }
        })
        .collect();
    let m = Manifest::new(ManifestParts {
        wallet_id: "bench-wallet".into(),
        epoch: 1,
        threshold: 3,
        bank_node_id: trustees[0].node_id.clone(),
        trustees,
        commitments,
        recovery_delay_secs: 0,
        blob_hash: [0; 32],
        created_at: 0,
        previous: None,
    })
    .expect("manifest");
    c.bench_function("manifest/hash", |b| b.iter(|| black_box(&m).hash()));
    let enc = m.encode();
    c.bench_function("manifest/decode_validate", |b| {
        b.iter(|| Manifest::decode(black_box(&enc)).expect("decode"))
    });
}

/// The passkey's signature check at a trustee: P-256 ECDSA over SHA-256, in the `p256` crate
/// (what webauthn-rs uses) and in ring, the same signature and key (issue 14's "P-256
/// question": how much a faster backend would save).
fn p256_verify(c: &mut Criterion) {
    use p256::ecdsa::signature::{Signer as _, Verifier as _};
    use p256::elliptic_curve::sec1::ToSec1Point as _;
    let key = p256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
    let msg = [7u8; 69]; // authenticator data (37 bytes) ‖ SHA-256 of the client data
    let sig: p256::ecdsa::Signature = key.sign(&msg);
    let der = sig.to_der();
    let vk = *key.verifying_key();
    c.bench_function("p256_verify/p256_crate", |b| {
        b.iter(|| vk.verify(black_box(&msg), &sig).expect("verifies"))
    });
    let public = vk.as_affine().to_sec1_point(false);
    let ring_key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, public);
    c.bench_function("p256_verify/ring", |b| {
        b.iter(|| {
            ring_key
                .verify(black_box(&msg), der.as_bytes())
                .expect("verifies")
        })
    });
}

criterion_group!(
    benches,
    sharing,
    envelope,
    statements,
    approvals,
    blob,
    schnorr,
    manifest,
    p256_verify
);
criterion_main!(benches);
