//! Delete on real nodes: the owner's one touch erases the wallet at every trustee, a trustee that
//! was down completes on the next call, nothing of the wallet is left in any database, and a
//! later recovery finds nothing. Refusals (no assertion, a stranger's passkey, a replayed delete)
//! change nothing.
//!
//! Nodes: bank, trustee-2, trustee-3 hold a 2-of-3 backup.

use dlocker_integration_tests::recovery_cluster::{Touch, session_key};
use dlocker_integration_tests::rotation::{
    RotationCluster, audit_entries, db_mentions_wallet, events_naming_wallet, trees_naming_wallet,
};
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_sdk::{
    BackupPolicy, DeleteError, PreparedBackup, SoftwareAuthenticator, TrusteeErasure,
    protocol::delete_backup,
};
use tonic::Code;

const ALL: [usize; 3] = [0, 1, 2];
const DATA: &[u8] = b"delete: nothing of this may remain";

async fn epochs(rc: &RotationCluster, i: usize) -> EpochsClient<tonic::transport::Channel> {
    EpochsClient::new(rc.node(i).channel().await.expect("connect"))
}

/// `BeginEpochAction(DELETE)` at node `i` for `wallet`.
async fn begin_delete(
    rc: &RotationCluster,
    i: usize,
    wallet: &str,
) -> Result<pb::BeginEpochActionResponse, tonic::Status> {
    epochs(rc, i)
        .await
        .begin_epoch_action(pb::BeginEpochActionRequest {
            wallet_id: wallet.into(),
            action: pb::EpochAction::Delete as i32,
            manifest_hash: Vec::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// A delete request for node `i` alone, signed by `auth` over the request options `template`
/// (the owner's own, or another wallet's for a stranger).
fn delete_request(
    rc: &RotationCluster,
    i: usize,
    wallet: &str,
    begun: &pb::BeginEpochActionResponse,
    template: &str,
    auth: &mut SoftwareAuthenticator,
) -> pb::DeleteWalletRequest {
    let mut nonces = Nonces::default();
    nonces.push(&rc.node(i).node_id, &begun.nonce);
    let touch = Touch::new(auth, OwnerAction::Delete, wallet, b"", nonces, template);
    pb::DeleteWalletRequest {
        wallet_id: wallet.into(),
        owner: Some(pb::OwnerAssertion {
            challenge_id: begun.challenge_id.clone(),
            assertion_json: touch.assertion_json,
            nonces: touch.nonces.wire(),
        }),
        erase_documents: false,
    }
}

async fn send_delete(
    rc: &RotationCluster,
    i: usize,
    req: pb::DeleteWalletRequest,
) -> Result<Vec<u8>, tonic::Status> {
    epochs(rc, i)
        .await
        .delete_wallet(req)
        .await
        .map(|r| r.into_inner().erase_receipt_encoded)
}

fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, needle: &str, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), code, "{what}: {e:?}");
    assert!(e.message().contains(needle), "{what}: {e:?}");
}

/// Every node still holds epoch 1 of `wallet` (and nothing staged).
async fn intact(rc: &RotationCluster, wallet: &str, what: &str) {
    for i in ALL {
        assert_eq!(
            rc.epochs_at(i, wallet).await,
            Some((1, 0)),
            "{what}: node {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_erases_everything_everywhere_and_a_retry_completes() {
    let mut rc = RotationCluster::start(3, None).await;
    let (wallet, prepared, mut auth) = rc.backup("delete", &ALL, 2, DATA).await;
    let manifest_hash = prepared.manifest().hash();

    // An owner-authenticated recovery session is open at trustee-2: the delete closes it.
    let r = session_key().public_key();
    let opened = rc
        .recovery_cluster()
        .open_and_authenticate(1, &wallet, &r, &mut auth)
        .await;

    // trustee-3 is down: the others erase, the SDK names it.
    rc.stop(2);
    let before = auth.touches();
    let err = delete_backup(&rc.all(), &wallet, &mut auth)
        .await
        .expect_err("one trustee is down");
    assert_eq!(auth.touches(), before + 1, "one touch for every trustee");
    let DeleteError::Incomplete { failed, done } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, rc.node(2).name);
    assert!(
        matches!(failed[0].1, dlocker_sdk::TrusteeFailure::Connect(_)),
        "a trustee that is down is unreachable, not refusing: {failed:?}"
    );
    assert_eq!(done.trustees.len(), 2);
    for (i, (name, e)) in done.trustees.iter().enumerate() {
        assert_eq!(name, &rc.node(i).name);
        let TrusteeErasure::Erased(receipt) = e else {
            panic!("{name} should have erased now: {e:?}");
        };
        let b = receipt.body();
        assert_eq!(b.node_id, rc.node(i).node_id);
        assert_eq!(b.wallet_id, wallet);
        assert_eq!(b.epoch, 1);
        assert_eq!(b.manifest_hash, Some(manifest_hash));
        assert_eq!(b.staged_manifest_hash, None);
    }
    // The open session is gone with the wallet.
    let status = RecoveryClient::new(rc.node(1).channel().await.expect("connect"))
        .get_recovery_status(pb::GetRecoveryStatusRequest {
            session_id: opened.session_id.clone(),
        })
        .await;
    refused(
        status,
        Code::NotFound,
        "no such recovery session",
        "closed session",
    );
    assert_eq!(rc.epochs_at(0, &wallet).await, None);
    assert_eq!(rc.epochs_at(1, &wallet).await, None);

    // trustee-3 is back: calling again completes; the others answer "not held".
    rc.start_node(2).await;
    assert_eq!(rc.epochs_at(2, &wallet).await, Some((1, 0)));
    let report = delete_backup(&rc.all(), &wallet, &mut auth)
        .await
        .expect("the retry completes the delete");
    assert_eq!(auth.touches(), before + 2);
    assert!(matches!(report.trustees[0].1, TrusteeErasure::NotHeld));
    assert!(matches!(report.trustees[1].1, TrusteeErasure::NotHeld));
    let TrusteeErasure::Erased(receipt) = &report.trustees[2].1 else {
        panic!("trustee-3 erases on the retry: {report:?}");
    };
    assert_eq!(receipt.body().node_id, rc.node(2).node_id);
    assert_eq!(report.receipts().count(), 1);

    // Once more: nothing anywhere, no touch asked for.
    let report = delete_backup(&rc.all(), &wallet, &mut auth)
        .await
        .expect("idempotent");
    assert!(
        report
            .trustees
            .iter()
            .all(|(_, e)| matches!(e, TrusteeErasure::NotHeld))
    );
    assert_eq!(auth.touches(), before + 2, "nothing to sign");

    // A later recovery finds nothing to recover.
    let e = rc
        .recover(&wallet, &mut auth)
        .await
        .expect_err("the wallet is deleted");
    assert!(
        e.to_string().contains("holds no backup for this wallet"),
        "recovery after delete: {e}"
    );

    // The databases, read after stopping the nodes: nothing names the wallet; the audit log
    // keeps one entry per node, by keyed tag.
    rc.stop_all();
    for i in ALL {
        let dir = rc.data_dir(i);
        assert_eq!(
            db_mentions_wallet(dir, &wallet),
            Vec::<String>::new(),
            "node {i}"
        );
        assert_eq!(
            events_naming_wallet(dir, &wallet),
            Vec::<String>::new(),
            "node {i}"
        );
        assert_eq!(
            trees_naming_wallet(dir, &wallet),
            Vec::<String>::new(),
            "node {i}"
        );
        let entries = audit_entries(dir, "wallet_deleted");
        assert_eq!(entries.len(), 1, "node {i}: {entries:?}");
        assert_eq!(entries[0].0.len(), 32, "a keyed tag, not the wallet id");
    }
    // Trustee-2's entry counts the session it closed.
    assert!(
        audit_entries(rc.data_dir(1), "wallet_deleted")[0]
            .1
            .contains("1 of them open and now closed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_refusals_change_nothing() {
    let rc = RotationCluster::start(3, None).await;
    let (wallet, _prepared, mut owner) = rc.backup("del-refuse", &ALL, 2, DATA).await;
    // A stranger: the owner of another wallet on the same trustees.
    let (other, _, mut stranger) = rc.backup("del-stranger", &ALL, 2, DATA).await;

    // 1. No assertion at all.
    refused(
        send_delete(
            &rc,
            0,
            pb::DeleteWalletRequest {
                wallet_id: wallet.clone(),
                owner: None,
                erase_documents: false,
            },
        )
        .await,
        Code::Unauthenticated,
        "delete needs the owner's passkey assertion",
        "delete without the owner",
    );
    intact(&rc, &wallet, "after a delete without assertion").await;

    // 2. A stranger's passkey: through the SDK its authenticator holds no credential the
    // trustees name, so nothing is sent...
    let err = delete_backup(&rc.all(), &wallet, &mut stranger)
        .await
        .expect_err("a stranger cannot delete");
    assert!(matches!(err, DeleteError::Auth(_)), "{err:?}");
    // ...and a hand-made request signed by the stranger's own credential over this wallet's
    // delete challenge is refused by the trustee.
    for i in ALL {
        let begun = begin_delete(&rc, i, &wallet).await.expect("begin");
        let theirs = begin_delete(&rc, i, &other).await.expect("begin other");
        let req = delete_request(
            &rc,
            i,
            &wallet,
            &begun,
            &theirs.request_options_json,
            &mut stranger,
        );
        refused(
            send_delete(&rc, i, req).await,
            Code::Unauthenticated,
            "passkey response does not verify",
            "a stranger's passkey",
        );
    }
    intact(&rc, &wallet, "after a stranger's delete").await;
    intact(&rc, &other, "the stranger's own wallet").await;

    // 3. A touch made for another action (a recovery nonce presented as a delete).
    let begun = begin_delete(&rc, 0, &wallet).await.expect("begin");
    let mut nonces = Nonces::default();
    nonces.push(&rc.node(0).node_id, &begun.nonce);
    let touch = Touch::new(
        &mut owner,
        OwnerAction::Recover,
        &wallet,
        b"",
        nonces,
        &begun.request_options_json,
    );
    refused(
        send_delete(
            &rc,
            0,
            pb::DeleteWalletRequest {
                wallet_id: wallet.clone(),
                owner: Some(pb::OwnerAssertion {
                    challenge_id: begun.challenge_id.clone(),
                    assertion_json: touch.assertion_json,
                    nonces: touch.nonces.wire(),
                }),
                erase_documents: false,
            },
        )
        .await,
        Code::Unauthenticated,
        "passkey response does not verify",
        "a touch for another action",
    );
    intact(&rc, &wallet, "after a touch for another action").await;

    // 4. Replay: the owner deletes at the bank; the request, replayed after the owner backed the
    // same wallet id up again, is refused and the new backup stays.
    let begun = begin_delete(&rc, 0, &wallet).await.expect("begin");
    let req = delete_request(
        &rc,
        0,
        &wallet,
        &begun,
        &begun.request_options_json,
        &mut owner,
    );
    send_delete(&rc, 0, req.clone())
        .await
        .expect("the owner's delete at the bank");
    assert_eq!(rc.epochs_at(0, &wallet).await, None);
    delete_backup(&rc.all(), &wallet, &mut owner)
        .await
        .expect("the owner completes the delete");
    let set = rc.all();
    let again = PreparedBackup::new(
        &set,
        &wallet,
        DATA,
        BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    let mut new_owner = SoftwareAuthenticator::new();
    dlocker_sdk::protocol::backup(&set, &again, "alice", &mut new_owner, &|_| {})
        .await
        .expect("the wallet id is free again after a delete");
    refused(
        send_delete(&rc, 0, req).await,
        Code::PermissionDenied,
        "issued no such nonce",
        "a replayed delete",
    );
    intact(&rc, &wallet, "after a replayed delete").await;
    let report = dlocker_sdk::protocol::verify_backup(&set, again.manifest()).await;
    assert!(report.all_healthy(), "the new backup is intact: {report:?}");
}
