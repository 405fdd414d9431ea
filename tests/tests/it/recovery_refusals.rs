//! Every trustee refuses to release, on its own, unless passkey, bank approval and delay all hold:
//! without passkey, without approval, with an approval for another device key R (replayed onto
//! another device), an expired one, one signed by a key the node does not accept, and before the
//! delay (FAILED_PRECONDITION saying how long is left). Raw gRPC, so each request is exact.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, craft_approval, session_key,
};
use dlocker_proto::time::unix_now;
use k256::ecdsa::SigningKey;
use tonic::Code;

fn refused(
    res: Result<dlocker_proto::pb::ReleaseShareResponse, tonic::Status>,
    code: Code,
    needle: &str,
    what: &str,
) {
    match res {
        Ok(_) => panic!("{what}: the share was released"),
        Err(s) => {
            assert_eq!(s.code(), code, "{what}: {s:?}");
            assert!(
                s.message().contains(needle),
                "{what}: message {:?} should mention {needle:?}",
                s.message()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_refused_unless_passkey_approval_and_delay_all_hold() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    // A long waiting period: a valid approval with a passkey still gets nothing before it.
    let (wallet, _prepared, mut auth) = rc.backup("refuse", b"seed", 3600).await;
    let r = session_key();
    let r_pub = r.public_key();
    let now = unix_now();

    // Sessions everywhere.
    let mut sessions = Vec::new();
    for i in 0..5 {
        let o = rc.open(i, &wallet, &r_pub).await.expect("OpenRecovery");
        assert!(
            o.release_not_before >= now + 3600,
            "{}: the manifest's delay applies",
            rc.node(i).name
        );
        sessions.push(o);
    }
    // Another device may open its own session beside this one; it names no other session.
    let other = session_key().public_key();
    let beside = rc
        .open(1, &wallet, &other)
        .await
        .expect("several sessions per wallet");
    assert_ne!(beside.session_id, sessions[1].session_id);

    // The bank approves this session (the genuine approval for R).
    let approval = rc
        .staff_client(0)
        .approve(&sessions[0].session_id)
        .await
        .expect("approve")
        .approval
        .expect("approval");
    let approval = approval.encode();

    // 1. Without passkey: a valid approval is not enough.
    for (i, s) in sessions.iter().enumerate() {
        refused(
            rc.release(i, &s.session_id, &approval).await,
            Code::PermissionDenied,
            "passkey",
            &format!("{}: release without passkey", rc.node(i).name),
        );
    }
    for (i, s) in sessions.iter().enumerate() {
        let a = rc.recovery_touch(i, &wallet, &r_pub, s, &mut auth);
        rc.authenticate(i, &s.session_id, &a)
            .await
            .unwrap_or_else(|e| panic!("{}: passkey: {e:?}", rc.node(i).name));
    }

    // 2. Without approval.
    for (i, s) in sessions.iter().enumerate() {
        let res = rc.release(i, &s.session_id, &[]).await;
        let err = res
            .err()
            .unwrap_or_else(|| panic!("{}: released without approval", rc.node(i).name));
        assert!(
            matches!(err.code(), Code::InvalidArgument | Code::PermissionDenied),
            "{}: release without approval: {err:?}",
            rc.node(i).name
        );
        assert!(
            err.message().contains("approval"),
            "{}: {err:?}",
            rc.node(i).name
        );
    }

    let bank_key = rc.bank_signing_key();
    let bank_id = rc.bank_node_id();
    // 3. An approval for another R, signed by the real bank key (an approval for one device
    //    presented for another).
    let for_other_r = craft_approval(&bank_key, &bank_id, &wallet, &other, now, now + 600);
    // 4. Expired.
    let expired = craft_approval(&bank_key, &bank_id, &wallet, &r_pub, now - 7200, now - 3600);
    // 5. Signed by a key no trustee accepts.
    let rogue = SigningKey::from(session_key());
    let unknown = craft_approval(&rogue, &bank_id, &wallet, &r_pub, now, now + 600);
    // 6. Another wallet.
    let other_wallet = craft_approval(
        &bank_key,
        &bank_id,
        "some-other-wallet",
        &r_pub,
        now,
        now + 600,
    );
    for (i, s) in sessions.iter().enumerate() {
        let n = &rc.node(i).name;
        let sid = &s.session_id;
        refused(
            rc.release(i, sid, &for_other_r).await,
            Code::PermissionDenied,
            "another device key",
            &format!("{n}: approval for another R"),
        );
        refused(
            rc.release(i, sid, &expired).await,
            Code::PermissionDenied,
            "expired",
            &format!("{n}: expired approval"),
        );
        refused(
            rc.release(i, sid, &unknown).await,
            Code::PermissionDenied,
            "does not accept",
            &format!("{n}: unknown signer"),
        );
        refused(
            rc.release(i, sid, &other_wallet).await,
            Code::PermissionDenied,
            "another wallet",
            &format!("{n}: other wallet"),
        );
        // 7. Everything right but the delay: FAILED_PRECONDITION with the time left.
        refused(
            rc.release(i, sid, &approval).await,
            Code::FailedPrecondition,
            "s left",
            &format!("{n}: before the delay"),
        );
    }

    // The genuine approval replayed onto another device: the owner cancels at trustee-5, a new
    // device (R2) opens there, passes the passkey, and presents the approval issued for R.
    let i = 4;
    rc.owner_cancel(i, &wallet, &r_pub, &sessions[i].session_id, &mut auth)
        .await
        .expect("owner cancel");
    let r2 = session_key().public_key();
    let s2 = rc.open_and_authenticate(i, &wallet, &r2, &mut auth).await;
    refused(
        rc.release(i, &s2.session_id, &approval).await,
        Code::PermissionDenied,
        "another device key",
        "approval for R replayed for R2",
    );
}
