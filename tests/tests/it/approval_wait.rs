//! `GetApproval` held by the bank on real nodes: a call made while staff have not approved is
//! answered the moment they approve (with the approval) or cancel (with the cancellation's
//! refusal), and the SDK's recovery therefore needs no polling interval: with one of an hour it
//! still finishes as soon as staff approve.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, recover_with_hourly_polls, session_key,
};
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::pb::GetApprovalRequest;
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::statement::{BankApproval, Signed};
use k256::PublicKey;
use std::time::Duration;

async fn ask(
    rc: &RecoveryCluster,
    wallet: &str,
    r: &PublicKey,
    wait_secs: u32,
) -> Result<Vec<u8>, tonic::Status> {
    rc.raw_staff(0)
        .await
        .get_approval(GetApprovalRequest {
            wallet_id: wallet.to_owned(),
            session_key: encode_public_key(r).to_vec(),
            wait_secs,
        })
        .await
        .map(|a| a.into_inner().bank_approval_encoded)
}

/// Staff act half a second after the call went out: the call can only return their answer if
/// the bank held it.
async fn after_a_moment<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::sleep(Duration::from_millis(500)).await;
    f.await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_get_approval_answers_when_staff_approve_or_cancel() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (wallet, _p, mut auth) = rc.backup("held", b"seed", 0).await;
    let staff = rc.staff_client(0);

    // Staff approve while the call is held: it returns the bank's approval for this R.
    let r = session_key().public_key();
    let bank = rc.open_and_authenticate(0, &wallet, &r, &mut auth).await;
    let pending = ask(&rc, &wallet, &r, 0)
        .await
        .expect_err("not approved yet");
    assert_eq!(
        NodeRefusal::of_status(&pending),
        Some(NodeRefusal::AwaitingApproval),
        "without a wait the bank answers at once: {pending:?}"
    );
    let (held, approved) = tokio::join!(
        ask(&rc, &wallet, &r, 30),
        after_a_moment(staff.approve(&bank.session_id))
    );
    approved.expect("staff approve");
    let bytes = held.expect("the held call returns the approval");
    let approval = Signed::<BankApproval>::decode(&bytes).expect("a signed approval");
    assert_eq!(approval.body().wallet_id, wallet);
    assert_eq!(approval.body().session_key, r);

    // Staff cancel while the call is held: it returns the cancellation, not a timeout.
    let r2 = session_key().public_key();
    let bank2 = rc.open_and_authenticate(0, &wallet, &r2, &mut auth).await;
    let (held, cancelled) = tokio::join!(
        ask(&rc, &wallet, &r2, 30),
        after_a_moment(staff.cancel(&bank2.session_id))
    );
    cancelled.expect("staff cancel");
    let refused = held.expect_err("a cancelled session has no approval");
    assert_eq!(
        NodeRefusal::of_status(&refused),
        Some(NodeRefusal::SessionCancelled),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_with_an_hour_between_polls_finishes_when_staff_approve() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (wallet, _p, mut auth) = rc.backup("no-poll", b"the seed words", 0).await;
    let staff = rc.staff_client(0);
    let trustees = rc.trustees();
    let recovered = recover_with_hourly_polls(&trustees, &wallet, &mut auth, |sid| async move {
        after_a_moment(staff.approve(&sid)).await.expect("approve");
    })
    .await;
    let recovered = recovered.expect("recovered");
    assert_eq!(recovered.data().expose(), b"the seed words");
}
