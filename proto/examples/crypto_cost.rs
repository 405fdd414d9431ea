//! Runs one node-side primitive a given number of times, for instruction counts under callgrind
//! (repeatable on a shared, noisy machine, unlike wall-clock benchmarks):
//!
//! ```sh
//! cargo build --release -p dlocker-proto --example crypto_cost
//! valgrind --tool=callgrind --toggle-collect='crypto_cost::measured' \
//!     target/release/examples/crypto_cost verify_share_3_of_5 100
//! ```
//!
//! Collected instructions ÷ the count is the cost of one call. Everything the primitive needs
//! (shares, keys, lazily built tables) is prepared and used once before the measured loop.

use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::schnorr::{PossessionProof, ProofContext};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{Commitments, Share, combine, split};
use k256::SecretKey;
use k256::elliptic_curve::Generate;
use std::hint::black_box;

#[inline(never)]
fn measured(count: u32, op: &mut dyn FnMut()) {
    for _ in 0..count {
        op();
    }
}

fn sharing(t: usize, n: usize) -> (Vec<Share>, Commitments) {
    split(&SecretScalar::random(), t, n).expect("split")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(op), Some(count)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: crypto_cost OP COUNT   (OP: verify_share_T_of_N, combine_T_of_N, envelope_open, schnorr_verify)"
        );
        std::process::exit(2);
    };
    let count: u32 = count.parse().expect("COUNT is a number");
    let policy = |prefix: &str| -> Option<(usize, usize)> {
        let rest = op.strip_prefix(prefix)?;
        let (t, n) = rest.split_once("_of_")?;
        Some((t.parse().ok()?, n.parse().ok()?))
    };
    let mut run: Box<dyn FnMut()> = if let Some((t, n)) = policy("verify_share_") {
        let (shares, comms) = sharing(t, n);
        Box::new(move || comms.verify(black_box(&shares[n - 1])).expect("verify"))
    } else if let Some((t, n)) = policy("combine_") {
        let (shares, comms) = sharing(t, n);
        Box::new(move || {
            black_box(combine(black_box(&shares[..t]), &comms).expect("combine"));
        })
    } else if op == "envelope_open" {
        let node = SecretKey::generate_from_rng(&mut rand::rng());
        let pk = node.public_key();
        let (shares, _) = sharing(3, 5);
        let ctx = EnvelopeContext {
            wallet_id: "bench-wallet",
            epoch: 1,
            share_index: 1,
            recipient: &pk,
        };
        let env = ShareEnvelope::seal(&shares[0], &ctx).expect("seal");
        Box::new(move || {
            let ctx = EnvelopeContext {
                wallet_id: "bench-wallet",
                epoch: 1,
                share_index: 1,
                recipient: &pk,
            };
            black_box(env.open(black_box(&ctx), &node).expect("open"));
        })
    } else if op == "schnorr_verify" {
        let (shares, comms) = sharing(3, 5);
        let node = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let nonce = [9u8; 32];
        let ctx = ProofContext {
            wallet_id: "bench-wallet",
            epoch: 1,
            share_index: 2,
            node_key: &node,
            nonce: &nonce,
        };
        let proof = PossessionProof::prove(&shares[1], &ctx).expect("prove");
        let p = comms.expected_public_share(2);
        Box::new(move || {
            let ctx = ProofContext {
                wallet_id: "bench-wallet",
                epoch: 1,
                share_index: 2,
                node_key: &node,
                nonce: &nonce,
            };
            proof.verify(black_box(&p), &ctx).expect("verify")
        })
    } else {
        eprintln!("unknown OP {op}");
        std::process::exit(2);
    };
    // Once outside the measured loop: lazily built tables and first-touch costs.
    run();
    measured(count, &mut *run);
}
