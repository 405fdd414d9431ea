//! Retrying a deposit returns the same receipt; a conflicting deposit is refused.

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::craft::{self, Deposit, Owner};
use dlocker_proto::pb::FinishEnrollmentRequest;
use dlocker_sdk::{BackupError, BackupPolicy, PreparedBackup, SoftwareAuthenticator};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_enrollment_retry_returns_the_same_receipt() {
    let cluster = Cluster::start(5).await;
    let keys: Vec<_> = cluster.nodes().iter().map(|n| n.public_key).collect();
    let wallet = craft::wallet_id("retry");
    let d = Deposit::new(&wallet, &keys, 3, b"seed");
    let mut owner = Owner::new();
    let node = cluster.node(1);
    let mut client = node.client().await;

    // The very same FinishEnrollment request twice (the client lost the first answer).
    let request = owner
        .finish_request(&mut client, &wallet, &d.parts(1))
        .await;
    let first = client
        .finish_enrollment(request.clone())
        .await
        .expect("first deposit")
        .into_inner()
        .receipt_encoded;
    craft::check_receipt(&first, &node.public_key, &d.manifest, 2);
    let replay = client
        .finish_enrollment(request.clone())
        .await
        .expect("replayed request")
        .into_inner()
        .receipt_encoded;
    assert_eq!(
        replay, first,
        "replaying the same request returns the same receipt, byte for byte"
    );

    // The finished ceremony cannot be reused with another credential.
    let (_, other_credential, _) = owner
        .begin_and_register(&mut client, &wallet, &d.parts(1))
        .await;
    let reuse = FinishEnrollmentRequest {
        credential_json: other_credential,
        ..request
    };
    let err = client
        .finish_enrollment(reuse)
        .await
        .expect_err("a completed ceremony with another credential");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // The identical deposit again, in a new ceremony (what a client does after a lost answer).
    let again = owner
        .enroll(&mut client, &wallet, &d.parts(1))
        .await
        .expect("identical retry")
        .receipt_encoded;
    assert_eq!(
        again, first,
        "an identical retry returns the stored receipt, byte for byte"
    );

    // The same share in a freshly sealed envelope is the same deposit too.
    let mut parts = d.parts(1);
    parts.envelope = d.envelope(1);
    assert_ne!(
        parts.envelope,
        d.parts(1).envelope,
        "envelopes use fresh ephemeral keys"
    );
    let third = owner
        .enroll(&mut client, &wallet, &parts)
        .await
        .expect("retry with a new envelope")
        .receipt_encoded;
    assert_eq!(third, first);

    // A different deposit for the same wallet (new secret, new manifest): ALREADY_EXISTS, and
    // the stored record is unchanged.
    let before = craft::status(&mut client, &wallet).await.expect("status");
    let other = Deposit::new(&wallet, &keys, 3, b"another seed");
    let err = owner
        .enroll(&mut client, &wallet, &other.parts(1))
        .await
        .expect_err("conflicting deposit");
    assert_eq!(
        err.code(),
        Code::AlreadyExists,
        "conflicting deposit: {err:?}"
    );
    assert_eq!(
        craft::status(&mut client, &wallet).await.expect("status"),
        before
    );

    // Same manifest, a different (but valid-looking) share is a conflict as well: the share is
    // what the node must hold, not only the manifest.
    let other_share_same_manifest = craft::Parts {
        envelope: other.envelope(1),
        ..d.parts(1)
    };
    let err = owner
        .enroll(&mut client, &wallet, &other_share_same_manifest)
        .await
        .expect_err("share of another secret");
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "it does not match the manifest commitments: {err:?}"
    );
    assert_eq!(
        craft::status(&mut client, &wallet).await.expect("status"),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_backup_retry_is_idempotent_and_conflicts_are_refused() {
    let mut cluster = Cluster::start(5).await;
    let trustees = cluster.trustees();
    let wallet = craft::wallet_id("sdk-retry");
    let policy = BackupPolicy {
        threshold: 3,
        recovery_delay_secs: 0,
    };
    let prepared = PreparedBackup::new(&trustees, &wallet, b"seed", policy).expect("prepare");
    let mut auth = SoftwareAuthenticator::new();

    // One trustee is down: nothing is deposited anywhere and the owner is not asked (one
    // credential per wallet: a partial backup would leave the missing trustee without it); the
    // down trustee is named with its own reason.
    cluster.stop(3);
    let err = dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect_err("a trustee is down");
    let BackupError::Incomplete { failed, receipts } = err else {
        panic!("expected Incomplete, got {err}")
    };
    assert!(receipts.receipts.is_empty(), "nothing deposited");
    assert_eq!(auth.touches(), 0, "the owner was not asked");
    assert!(
        failed.iter().any(|(name, _)| name == &cluster.node(3).name),
        "the stopped trustee is named: {failed:?}"
    );

    // It comes back; the same PreparedBackup completes with one touch.
    cluster.start_node(3).await;
    let done = dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("retry completes");
    assert_eq!(done.receipts.len(), 5);
    assert_eq!(auth.touches(), 1, "one registration for five trustees");
    let again = dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("third run");
    for r in &done.receipts {
        let x = again
            .receipts
            .iter()
            .find(|x| x.name == r.name)
            .expect("same trustee");
        assert_eq!(x.receipt.encode(), r.receipt.encode());
    }
    assert!(
        dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest())
            .await
            .all_healthy()
    );

    // A different backup for the same wallet is refused by every trustee, and the original
    // still verifies.
    let other = PreparedBackup::new(&trustees, &wallet, b"other", policy).expect("prepare");
    let err = dlocker_sdk::protocol::backup(&trustees, &other, "alice", &mut auth, &|_| {})
        .await
        .expect_err("conflict");
    let BackupError::Incomplete { failed, .. } = err else {
        panic!("expected Incomplete, got {err}")
    };
    assert_eq!(
        failed.len(),
        5,
        "every trustee refuses the conflicting deposit: {failed:?}"
    );
    assert!(
        dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest())
            .await
            .all_healthy()
    );
}
