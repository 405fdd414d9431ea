//! A release is for one epoch, once. After a recovery (a thief's, say) released epoch 1 to `R`,
//! the owner rotates: a successor epoch is staged while the released session still lives, and
//! `ReleaseStagedShare` under that session is refused at every trustee — the new epoch never
//! reaches the old `R` without a new recovery (new passkey touch, new bank approval, new delay).

use dlocker_integration_tests::rotation::{RotationCluster, StopAfter, options, source};
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_sdk::BackupPolicy;
use dlocker_sdk::{RotateError, RotationStep, protocol::rotate};
use tonic::Code;

const SET: [usize; 3] = [0, 1, 2];
const DATA: &[u8] = b"seed words";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_released_never_receives_a_later_epoch() {
    let rc = RotationCluster::start(3, None).await;
    let (wallet, prepared, mut auth) = rc.backup("released-then-rotated", &SET, 2, DATA).await;

    // The recovery: released at the trustees it used.
    let (epoch, recovered) = rc.recover_expecting(&wallet, &mut auth, DATA).await;
    assert_eq!(epoch, 1);
    let r = dlocker_proto::keys::public_key_from_hex(&recovered.handle.session_key).expect("R");
    let approval = rc
        .recovery_cluster()
        .raw_staff(0)
        .await
        .get_approval(pb::GetApprovalRequest {
            wait_secs: 0,
            wallet_id: wallet.clone(),
            session_key: dlocker_proto::keys::encode_public_key(&r).to_vec(),
        })
        .await
        .expect("the bank still serves the approval")
        .into_inner()
        .bank_approval_encoded;

    // The owner stages epoch 2 everywhere (the released sessions do not block it) and stops
    // before committing.
    let stop = StopAfter::new(SET.len());
    let hook = |s: &RotationStep| stop.hook(s);
    let opts = options(rc.root_dir(), &wallet, &hook);
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 0,
    };
    match rotate(
        &rc.set(&SET),
        &rc.set(&SET),
        &source(&prepared),
        policy,
        false,
        &mut auth,
        &opts,
    )
    .await
    {
        Err(RotateError::Interrupted { .. }) => {}
        other => panic!("expected the rotation to stop after staging, got {other:?}"),
    }
    drop(opts);

    // Under the released session, the staged epoch is refused at every trustee it released at.
    let mut refused = 0;
    for s in &recovered.handle.sessions {
        let i = (0..rc.len())
            .find(|&i| rc.node(i).name == s.name)
            .unwrap_or_else(|| panic!("node {}", s.name));
        if rc.epochs_at(i, &wallet).await.map(|(_, staged)| staged) != Some(2) {
            continue;
        }
        let e = EpochsClient::new(rc.node(i).channel().await.expect("connect"))
            .release_staged_share(pb::ReleaseShareRequest {
                session_id: s.session_id.clone(),
                bank_approval_encoded: approval.clone(),
                wait_secs: 0,
            })
            .await
            .expect_err("a released session receives no later epoch");
        if recovered.used.contains(&s.name) {
            assert_eq!(e.code(), Code::FailedPrecondition, "{}: {e:?}", s.name);
            assert!(
                e.message()
                    .contains("already released the share of epoch 1"),
                "{}: {e:?}",
                s.name
            );
            refused += 1;
        }
    }
    assert!(
        refused >= 2,
        "refused at the trustees that released ({refused})"
    );
}
