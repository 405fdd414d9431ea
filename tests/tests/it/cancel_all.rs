//! Cancel all on real nodes: the owner's one touch closes EVERY open recovery session of the
//! wallet at every trustee without a handle — a stranger's (a thief's) and one the owner's lost
//! device had authenticated — after which no staff approval or release goes through, and the
//! owner can still recover. A stranger's passkey cannot do it, and a replayed cancel-all
//! assertion is refused; neither changes a session.
//!
//! Nodes: bank, trustee-2, trustee-3 hold a 2-of-3 backup.

use dlocker_integration_tests::recovery_cluster::{Touch, craft_approval, session_key};
use dlocker_integration_tests::rotation::RotationCluster;
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::ids::WalletId;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::refusal::NodeRefusal;
use dlocker_sdk::{CancelAllError, Client, SoftwareAuthenticator, TrusteeCancelAll};

const ALL: [usize; 3] = [0, 1, 2];
const DATA: &[u8] = b"cancel all: the thief gets nothing";

async fn epochs(rc: &RotationCluster, i: usize) -> EpochsClient<tonic::transport::Channel> {
    EpochsClient::new(rc.node(i).channel().await.expect("connect"))
}

async fn begin(rc: &RotationCluster, i: usize, wallet: &str) -> pb::BeginEpochActionResponse {
    epochs(rc, i)
        .await
        .begin_epoch_action(pb::BeginEpochActionRequest {
            wallet_id: wallet.into(),
            action: pb::EpochAction::CancelAll as i32,
            manifest_hash: Vec::new(),
        })
        .await
        .expect("BeginEpochAction(CANCEL_ALL)")
        .into_inner()
}

/// A cancel-all request for node `i` alone, signed by `auth` over the options `template`.
fn request(
    rc: &RotationCluster,
    i: usize,
    wallet: &str,
    begun: &pb::BeginEpochActionResponse,
    template: &str,
    auth: &mut SoftwareAuthenticator,
) -> pb::CancelAllRecoveriesRequest {
    let mut nonces = Nonces::default();
    nonces.push(&rc.node(i).node_id, &begun.nonce);
    let touch = Touch::new(auth, OwnerAction::CancelAll, wallet, b"", nonces, template);
    pb::CancelAllRecoveriesRequest {
        wallet_id: wallet.into(),
        owner: Some(pb::OwnerAssertion {
            challenge_id: begun.challenge_id.clone(),
            assertion_json: touch.assertion_json,
            nonces: touch.nonces.wire(),
        }),
    }
}

async fn state(rc: &RotationCluster, i: usize, session_id: &str) -> String {
    rc.recovery_cluster()
        .recovery(i)
        .await
        .get_recovery_status(pb::GetRecoveryStatusRequest {
            session_id: session_id.into(),
        })
        .await
        .expect("status")
        .into_inner()
        .state
}

fn client(rc: &RotationCluster) -> Client {
    Client::builder()
        .trustees(rc.all())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_all_closes_every_session_and_nothing_is_released() {
    let rc = RotationCluster::start(3, None).await;
    let (wallet, _prepared, mut owner) = rc.backup("cancel-all", &ALL, 2, DATA).await;
    let raw = rc.recovery_cluster();
    // A thief who knows the wallet id opens a recovery at every trustee (their own device key);
    // the owner's lost phone had opened and authenticated another one.
    let thief_r = session_key().public_key();
    let lost_r = session_key().public_key();
    let mut thief = Vec::new();
    let mut lost = Vec::new();
    for i in ALL {
        thief.push(
            raw.open(i, &wallet, &thief_r)
                .await
                .expect("open")
                .session_id,
        );
        lost.push(
            raw.open_and_authenticate(i, &wallet, &lost_r, &mut owner)
                .await
                .session_id,
        );
    }
    for i in ALL {
        assert_eq!(state(&rc, i, &thief[i]).await, "open");
        assert_eq!(state(&rc, i, &lost[i]).await, "owner_authenticated");
    }

    // The owner, knowing neither session: one touch closes both at every trustee.
    let client = client(&rc);
    let id = WalletId::parse(wallet.clone()).expect("wallet id");
    let before = owner.touches();
    let report = client
        .cancel_all_recoveries(&id, &mut owner)
        .await
        .expect("cancel all");
    assert_eq!(owner.touches(), before + 1, "one touch for every trustee");
    assert_eq!(report.closed(), 6, "{report:?}");
    for (i, (name, t)) in report.trustees.iter().enumerate() {
        assert_eq!(name, &rc.node(i).name);
        let TrusteeCancelAll::Closed(ids) = t else {
            panic!("{name}: {t:?}");
        };
        let mut ids = ids.clone();
        ids.sort();
        let mut want = vec![thief[i].clone(), lost[i].clone()];
        want.sort();
        assert_eq!(ids, want, "{name} closed exactly the wallet's two sessions");
        assert_eq!(state(&rc, i, &thief[i]).await, "cancelled");
        assert_eq!(state(&rc, i, &lost[i]).await, "cancelled");
    }

    // Staff can no longer approve either recovery, and no trustee releases, even with a valid
    // approval for that device key.
    let staff = rc.staff_client();
    for sid in [&thief[0], &lost[0]] {
        let e = staff
            .approve(sid)
            .await
            .expect_err("a cancelled session cannot be approved");
        assert!(e.to_string().contains("cancel"), "{e}");
    }
    let now = dlocker_proto::time::unix_now();
    for (sessions, r) in [(&thief, &thief_r), (&lost, &lost_r)] {
        let approval = craft_approval(
            &raw.bank_signing_key(),
            &raw.bank_node_id(),
            &wallet,
            r,
            now,
            now + 600,
        );
        for i in ALL {
            let e = raw
                .release(i, &sessions[i], &approval)
                .await
                .expect_err("a cancelled session releases nothing");
            assert_eq!(
                NodeRefusal::of_status(&e),
                Some(NodeRefusal::SessionCancelled),
                "{e:?}"
            );
        }
    }

    // Again: nothing left to close (a touch, no change).
    let report = client
        .cancel_all_recoveries(&id, &mut owner)
        .await
        .expect("cancel all again");
    assert_eq!(report.closed(), 0, "{report:?}");
    // One connection per trustee served all of it.
    assert_eq!(client.connections_opened(), 3);

    // The owner's own recovery still works: cancel all locks nothing.
    rc.recover_expecting(&wallet, &mut owner, DATA).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_replays_cannot_cancel_all() {
    let rc = RotationCluster::start(3, None).await;
    let (wallet, _prepared, mut owner) = rc.backup("cancel-all-refuse", &ALL, 2, DATA).await;
    let (other, _, mut stranger) = rc.backup("cancel-all-stranger", &ALL, 2, DATA).await;
    let raw = rc.recovery_cluster();
    let r = session_key().public_key();
    let mut sessions = Vec::new();
    for i in ALL {
        sessions.push(
            raw.open_and_authenticate(i, &wallet, &r, &mut owner)
                .await
                .session_id,
        );
    }
    let untouched = |what: &'static str| {
        let (rc, sessions) = (&rc, &sessions);
        async move {
            for i in ALL {
                assert_eq!(
                    state(rc, i, &sessions[i]).await,
                    "owner_authenticated",
                    "{what}: node {i}"
                );
            }
        }
    };

    // 1. Through the SDK a stranger's authenticator holds no credential the trustees name:
    // nothing is sent.
    let id = WalletId::parse(wallet.clone()).expect("wallet id");
    let err = dlocker_sdk::protocol::cancel_all_recoveries(&rc.all(), &id, &mut stranger)
        .await
        .expect_err("a stranger cannot cancel all");
    assert!(matches!(err, CancelAllError::Auth(_)), "{err:?}");
    // 2. A hand-made request signed by the stranger's own credential over this wallet's
    // challenge, and one without any assertion, are refused by every trustee.
    for i in ALL {
        let begun = begin(&rc, i, &wallet).await;
        let theirs = begin(&rc, i, &other).await;
        let req = request(
            &rc,
            i,
            &wallet,
            &begun,
            &theirs.request_options_json,
            &mut stranger,
        );
        let e = epochs(&rc, i)
            .await
            .cancel_all_recoveries(req)
            .await
            .expect_err("a stranger's passkey");
        assert_eq!(
            NodeRefusal::of_status(&e),
            Some(NodeRefusal::AssertionRejected),
            "{e:?}"
        );
        let e = epochs(&rc, i)
            .await
            .cancel_all_recoveries(pb::CancelAllRecoveriesRequest {
                wallet_id: wallet.clone(),
                owner: None,
            })
            .await
            .expect_err("no assertion");
        assert_eq!(
            NodeRefusal::of_status(&e),
            Some(NodeRefusal::OwnerAssertionRequired),
            "{e:?}"
        );
    }
    untouched("after a stranger's cancel all").await;

    // 3. A cancel-all touch presented for a delete (another action byte) erases nothing.
    let begun = begin(&rc, 0, &wallet).await;
    let req = request(
        &rc,
        0,
        &wallet,
        &begun,
        &begun.request_options_json,
        &mut owner,
    );
    let e = epochs(&rc, 0)
        .await
        .delete_wallet(pb::DeleteWalletRequest {
            wallet_id: wallet.clone(),
            owner: req.owner.clone(),
            erase_documents: false,
        })
        .await
        .expect_err("a cancel-all touch is not a delete");
    assert!(
        NodeRefusal::of_status(&e).is_some_and(|c| c != NodeRefusal::WalletNotFound),
        "{e:?}"
    );
    assert_eq!(rc.epochs_at(0, &wallet).await, Some((1, 0)));
    untouched("after a cancel-all touch sent as a delete").await;

    // 4. Replay: the owner's genuine cancel-all at the bank closes its session; the owner opens
    // a new one there; the same request replayed is refused and the new session stays open.
    let begun = begin(&rc, 0, &wallet).await;
    let req = request(
        &rc,
        0,
        &wallet,
        &begun,
        &begun.request_options_json,
        &mut owner,
    );
    let closed = epochs(&rc, 0)
        .await
        .cancel_all_recoveries(req.clone())
        .await
        .expect("the owner's cancel all at the bank")
        .into_inner()
        .cancelled_session_ids;
    assert_eq!(closed, vec![sessions[0].clone()]);
    let r2 = session_key().public_key();
    let fresh = raw
        .open_and_authenticate(0, &wallet, &r2, &mut owner)
        .await
        .session_id;
    let e = epochs(&rc, 0)
        .await
        .cancel_all_recoveries(req)
        .await
        .expect_err("a replayed cancel all");
    assert!(
        matches!(
            NodeRefusal::of_status(&e),
            Some(NodeRefusal::NonceUsed | NodeRefusal::NonceUnknown)
        ),
        "{e:?}"
    );
    assert_eq!(state(&rc, 0, &fresh).await, "owner_authenticated");
    for i in [1, 2] {
        assert_eq!(state(&rc, i, &sessions[i]).await, "owner_authenticated");
    }
}
