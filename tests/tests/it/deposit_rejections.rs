//! Bad deposits are refused with the right gRPC code and leave nothing behind.
//!
//! Each case starts from a valid deposit and breaks exactly one thing, sends it over raw gRPC
//! with a real passkey ceremony, checks the status code, and checks that the node still has no
//! record for the wallet. Afterwards the valid deposit goes through, which shows the refusals
//! left no half-written state (a stale record would make it ALREADY_EXISTS or change the receipt).

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::craft::{self, Deposit, Owner, Parts};
use dlocker_proto::blob;
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{self, Share};
use k256::Scalar;
use tonic::Code;

/// One bad deposit: what is wrong, where it goes, what it must get.
struct Case {
    what: &'static str,
    node: usize,
    parts: Parts,
    /// Replaces the credential JSON (None = the good one).
    credential: Option<Box<dyn FnOnce(String) -> String>>,
    code: Code,
}

/// Default `[limits] max_blob_bytes`.
const MAX_BLOB_BYTES: usize = 64 * 1024;

fn keys(c: &Cluster) -> Vec<k256::PublicKey> {
    c.nodes().iter().map(|n| n.public_key).collect()
}

fn cases(c: &Cluster, d: &Deposit) -> Vec<Case> {
    let keys = keys(c);
    let mut out = Vec::new();

    // 1. A tampered share, properly sealed to the right node: the envelope opens, but the share
    // is not on the committed polynomial.
    let node = 1;
    let good = &d.shares[node];
    let bad = Share::new(
        good.index(),
        SecretScalar::new(*good.value().expose() + Scalar::ONE),
    )
    .expect("share");
    out.push(Case {
        what: "tampered share (off the committed polynomial)",
        node,
        parts: Parts {
            envelope: craft::seal(&bad, &d.wallet_id, 1, &keys[node]),
            ..d.parts(node)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 2. A tampered envelope: one ciphertext bit flipped.
    let node = 2;
    let mut env = d.envelope(node);
    let last = env.len() - 1;
    env[last] ^= 0x01;
    out.push(Case {
        what: "tampered envelope ciphertext",
        node,
        parts: Parts {
            envelope: env,
            ..d.parts(node)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 3. An envelope sealed to another node (node 4's share and envelope, sent to node 3).
    out.push(Case {
        what: "envelope sealed to another node",
        node: 3,
        parts: Parts {
            envelope: d.envelope(4),
            ..d.parts(3)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 4. The node's own share, sealed to it, but with the context of another index.
    let node = 4;
    let env = {
        use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
        let other = &d.shares[0];
        let ctx = EnvelopeContext {
            wallet_id: &d.wallet_id,
            epoch: 1,
            share_index: other.index(),
            recipient: &keys[node],
        };
        ShareEnvelope::seal(other, &ctx).expect("seal").encode()
    };
    out.push(Case {
        what: "another index's share sealed to this node",
        node,
        parts: Parts {
            envelope: env,
            ..d.parts(node)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 5. A manifest whose commitments do not match the shares (a different polynomial, same
    // threshold, same everything else).
    let (_, other_commitments) =
        share::split(&SecretScalar::random(), 3, keys.len()).expect("split");
    let m = Deposit::manifest_for(
        &d.wallet_id,
        &keys,
        3,
        other_commitments,
        blob::hash(&d.blob),
    );
    out.push(Case {
        what: "manifest commitments do not match the share",
        node: 0,
        parts: Parts {
            manifest: m.encode(),
            ..d.parts(0)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 6. An oversized blob whose hash is in the manifest (so only its size is wrong).
    let big = vec![0x5a; MAX_BLOB_BYTES + 1];
    let m = Deposit::manifest_for(
        &d.wallet_id,
        &keys,
        3,
        d.commitments.clone(),
        blob::hash(&big),
    );
    out.push(Case {
        what: "blob over max_blob_bytes",
        node: 1,
        parts: Parts {
            manifest: m.encode(),
            blob: big,
            ..d.parts(1)
        },
        credential: None,
        code: Code::ResourceExhausted,
    });

    // 7. A blob that does not match the manifest's blob hash.
    let mut other_blob = d.blob.clone();
    other_blob[0] ^= 0xff;
    out.push(Case {
        what: "blob hash differs from the manifest",
        node: 2,
        parts: Parts {
            blob: other_blob,
            ..d.parts(2)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 8. A manifest that does not list this node.
    let mut foreign = keys.clone();
    foreign[3] = k256::SecretKey::from_slice(&[7u8; 32])
        .expect("key")
        .public_key();
    let m = Deposit::manifest_for(
        &d.wallet_id,
        &foreign,
        3,
        d.commitments.clone(),
        blob::hash(&d.blob),
    );
    out.push(Case {
        what: "manifest does not list this node",
        node: 3,
        parts: Parts {
            manifest: m.encode(),
            ..d.parts(3)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 9. Malformed manifest bytes (a trailing byte).
    let mut trailing = d.manifest_bytes();
    trailing.push(0);
    out.push(Case {
        what: "manifest with trailing bytes",
        node: 4,
        parts: Parts {
            manifest: trailing,
            ..d.parts(4)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 10. A manifest for another wallet than the ceremony's.
    let m = Deposit::manifest_for(
        "some-other-wallet",
        &keys,
        3,
        d.commitments.clone(),
        blob::hash(&d.blob),
    );
    out.push(Case {
        what: "manifest for another wallet",
        node: 0,
        parts: Parts {
            manifest: m.encode(),
            ..d.parts(0)
        },
        credential: None,
        code: Code::InvalidArgument,
    });

    // 11. A malformed credential: not JSON at all.
    out.push(Case {
        what: "credential is not JSON",
        node: 1,
        parts: d.parts(1),
        credential: Some(Box::new(|_| "{ this is not a credential".to_owned())),
        code: Code::InvalidArgument,
    });

    // 12. A well-formed credential whose client data was altered (challenge no longer matches).
    out.push(Case {
        what: "credential with altered clientDataJSON",
        node: 2,
        parts: d.parts(2),
        credential: Some(Box::new(|json| {
            let mut v: serde_json::Value = serde_json::from_str(&json).expect("credential JSON");
            let cdj = v
                .pointer_mut("/response/clientDataJSON")
                .expect("credential has response.clientDataJSON");
            // Any valid base64url of other bytes: the signature and challenge no longer match.
            *cdj = serde_json::Value::String("eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0".to_owned());
            v.to_string()
        })),
        code: Code::InvalidArgument,
    });

    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deposits_get_the_right_code_and_change_nothing() {
    let cluster = Cluster::start(5).await;
    let wallet = craft::wallet_id("reject");
    let d = Deposit::new(&wallet, &keys(&cluster), 3, b"correct horse battery staple");
    let mut owner = Owner::new();

    let mut failures = Vec::new();
    for case in cases(&cluster, &d) {
        let node = cluster.node(case.node);
        let mut client = node.client().await;
        let edit = case.credential.unwrap_or_else(|| Box::new(|c| c));
        let result = owner
            .enroll_with(&mut client, &wallet, &case.parts, edit)
            .await;
        match result {
            Ok(_) => failures.push(format!("{}: accepted by {}", case.what, node.name)),
            Err(s) if s.code() != case.code => failures.push(format!(
                "{}: {} answered {:?} ({}), expected {:?}",
                case.what,
                node.name,
                s.code(),
                s.message(),
                case.code
            )),
            Err(s) => {
                // A clear message, and never the secret material.
                assert!(
                    !s.message().is_empty(),
                    "{}: empty error message",
                    case.what
                );
                eprintln!("ok: {} -> {:?}: {}", case.what, s.code(), s.message());
            }
        }
        match craft::status(&mut client, &wallet).await {
            Err(s) if s.code() == Code::NotFound => {}
            other => failures.push(format!(
                "{}: {} stored something: {other:?}",
                case.what, node.name
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "bad deposits mishandled:\n  {}",
        failures.join("\n  ")
    );

    // The good deposit still goes through at every node, with a valid receipt.
    for (i, node) in cluster.nodes().iter().enumerate() {
        let mut client = node.client().await;
        let resp = owner
            .enroll(&mut client, &wallet, &d.parts(i))
            .await
            .unwrap_or_else(|s| {
                panic!(
                    "valid deposit refused by {} after the bad ones: {s:?}",
                    node.name
                )
            });
        craft::check_receipt(
            &resp.receipt_encoded,
            &node.public_key,
            &d.manifest,
            (i + 1) as u16,
        );
        let st = craft::status(&mut client, &wallet)
            .await
            .expect("status after a valid deposit");
        assert_eq!(
            st.receipt_encoded, resp.receipt_encoded,
            "status returns the receipt"
        );
        assert_eq!(st.share_index, (i + 1) as u32);
        assert_eq!(st.manifest_hash, d.manifest.hash().0.to_vec());
        assert_eq!(st.blob_size, d.blob.len() as u64);
    }
}

/// A bad deposit for a wallet the node already holds is refused too and leaves the record as it
/// was (same status, same receipt), and the node still proves the original share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_deposit_for_an_enrolled_wallet_changes_nothing() {
    let cluster = Cluster::start(5).await;
    let wallet = craft::wallet_id("reject-existing");
    let d = Deposit::new(&wallet, &keys(&cluster), 3, b"wallet seed");
    let mut owner = Owner::new();
    let node = cluster.node(2);
    let mut client = node.client().await;
    owner
        .enroll(&mut client, &wallet, &d.parts(2))
        .await
        .expect("valid deposit");
    let before = craft::status(&mut client, &wallet).await.expect("status");

    for case in cases(&cluster, &d)
        .into_iter()
        .filter(|c| c.credential.is_none())
    {
        // Send every data case to node 2, with node 2's good parts where the case is about
        // another node's fields.
        let parts = case.parts;
        let r = owner.enroll(&mut client, &wallet, &parts).await;
        assert!(r.is_err(), "{}: accepted for an enrolled wallet", case.what);
        let after = craft::status(&mut client, &wallet)
            .await
            .expect("status still there");
        assert_eq!(after, before, "{}: changed the stored record", case.what);
    }
}
