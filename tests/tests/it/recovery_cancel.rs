//! A cancelled recovery releases nothing, even with passkey, a valid approval and the delay over:
//! cancelled by the owner (passkey) through the SDK, or by bank staff, whose signed
//! `BankCancellation` is then presented at the other trustees. No delay here, so the cancel is
//! the only reason for each refusal (a trustee left uncancelled still releases, as a control).

use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec, session_key};
use dlocker_proto::pb::{CancelRecoveryRequest, cancel_recovery_request};
use dlocker_sdk::{RecoveryHandle, TrusteeSession};
use tonic::Code;

/// Opens and authenticates at every node for R and gets the bank's approval.
async fn approved_recovery(
    rc: &RecoveryCluster,
    wallet: &str,
    auth: &mut dlocker_sdk::SoftwareAuthenticator,
) -> (RecoveryHandle, Vec<u8>) {
    let r = session_key().public_key();
    let mut sessions = Vec::new();
    for i in 0..5 {
        let o = rc.open_and_authenticate(i, wallet, &r, auth).await;
        sessions.push(TrusteeSession {
            name: rc.node(i).name.clone(),
            node_id: rc.node(i).node_id.clone(),
            session_id: o.session_id,
            release_not_before: o.release_not_before,
        });
    }
    let approval = rc
        .staff_client(0)
        .approve(&sessions[0].session_id)
        .await
        .expect("approve")
        .approval
        .expect("approval");
    let handle = RecoveryHandle {
        wallet_id: wallet.to_owned(),
        session_key: dlocker_proto::keys::public_key_hex(&r),
        sessions,
    };
    (handle, approval.encode())
}

async fn state(rc: &RecoveryCluster, i: usize, sid: &str) -> (String, String) {
    let s = rc.session_status(i, sid).await;
    (s.state, s.cancelled_by)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_refused_after_owner_cancel() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let trustees = rc.trustees();
    let (wallet, _p, mut auth) = rc.backup("ocancel", b"seed", 0).await;
    let (handle, approval) = approved_recovery(&rc, &wallet, &mut auth).await;

    // The owner cancels at the first four trustees; trustee-5 is the control.
    let mut partial = handle.clone();
    partial.sessions.truncate(4);
    let outcomes = dlocker_sdk::protocol::cancel_recovery(&trustees, &partial, &mut auth).await;
    assert_eq!(outcomes.len(), 4);
    for o in &outcomes {
        assert!(
            o.error.is_none(),
            "owner cancel at {}: {:?}",
            o.name,
            o.error
        );
    }
    for i in 0..4 {
        let sid = &handle.sessions[i].session_id;
        let err = rc
            .release(i, sid, &approval)
            .await
            .expect_err("released after an owner cancel");
        assert_eq!(
            err.code(),
            Code::FailedPrecondition,
            "{}: {err:?}",
            rc.node(i).name
        );
        assert!(
            err.message().contains("cancelled"),
            "{}: {err:?}",
            rc.node(i).name
        );
        let (st, by) = state(&rc, i, sid).await;
        assert_eq!(st, "cancelled");
        assert!(
            by.contains("owner"),
            "{}: cancelled_by {by:?}",
            rc.node(i).name
        );
    }
    // Control: the same approval, passkey and (zero) delay release at the uncancelled trustee.
    rc.release(4, &handle.sessions[4].session_id, &approval)
        .await
        .expect("the control trustee releases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_refused_after_staff_cancel_presented_at_every_trustee() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (wallet, _p, mut auth) = rc.backup("scancel", b"seed", 0).await;
    let (handle, approval) = approved_recovery(&rc, &wallet, &mut auth).await;

    let issued = rc
        .staff_client(0)
        .cancel(&handle.sessions[0].session_id)
        .await
        .expect("staff cancel");
    assert_eq!(issued.statement.body().wallet_id, wallet);
    assert_eq!(
        issued.statement.signer(),
        &rc.bank_approval_key,
        "signed with the bank approval key"
    );

    // Raw, at trustee-2, with its session id.
    rc.recovery(1)
        .await
        .cancel_recovery(CancelRecoveryRequest {
            nonces: Vec::new(),
            session_id: handle.sessions[1].session_id.clone(),
            authority: Some(cancel_recovery_request::Authority::BankCancellationEncoded(
                issued.encoded.clone(),
            )),
        })
        .await
        .expect("trustee-2 accepts the bank cancellation");
    // The SDK presents it at trustees 3 and 4 (found by wallet and R, no session ids); trustee-5
    // stays the control.
    let subset = dlocker_sdk::TrusteeSet::load(&{
        let p = rc.root().join("trustees-0-3.toml");
        std::fs::write(&p, rc.trustees_toml_for(&[0, 1, 2, 3])).expect("write");
        p
    })
    .expect("subset");
    let outcomes =
        dlocker_sdk::protocol::present_bank_cancellation(&subset, None, &issued.encoded).await;
    for o in &outcomes {
        if o.name == "trustee-3" || o.name == "trustee-4" {
            assert!(
                o.error.is_none(),
                "bank cancellation at {}: {:?}",
                o.name,
                o.error
            );
        }
    }

    for i in 0..4 {
        let sid = &handle.sessions[i].session_id;
        let err = rc
            .release(i, sid, &approval)
            .await
            .expect_err("released after a staff cancel");
        assert_eq!(
            err.code(),
            Code::FailedPrecondition,
            "{}: {err:?}",
            rc.node(i).name
        );
        assert!(
            err.message().contains("cancelled"),
            "{}: {err:?}",
            rc.node(i).name
        );
        let (st, by) = state(&rc, i, sid).await;
        assert_eq!(st, "cancelled", "{}", rc.node(i).name);
        assert!(
            by.contains("alice") || by.contains("bank"),
            "{}: cancelled_by {by:?}",
            rc.node(i).name
        );
    }
    // A cancellation signed by a key the trustees do not accept is refused.
    let rogue = k256::ecdsa::SigningKey::from(session_key());
    let forged =
        dlocker_proto::statement::Signed::sign(issued.statement.body().clone(), &rogue).encode();
    let err = rc
        .recovery(4)
        .await
        .cancel_recovery(CancelRecoveryRequest {
            nonces: Vec::new(),
            session_id: handle.sessions[4].session_id.clone(),
            authority: Some(cancel_recovery_request::Authority::BankCancellationEncoded(
                forged,
            )),
        })
        .await
        .expect_err("a forged bank cancellation");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // Control: trustee-5 was never cancelled and releases.
    rc.release(4, &handle.sessions[4].session_id, &approval)
        .await
        .expect("the control trustee releases");
}
