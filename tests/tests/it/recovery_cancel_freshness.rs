//! Bank cancellations and approvals are fresh, on real nodes (node 0 is the bank).
//!
//! A `BankCancellation` names the bank's session of the recovery it cancels and when that session
//! opened. Replayed against a later recovery of the same wallet towards the same `R`, it is
//! refused everywhere: at the bank it names another session, at the other trustees it was spent
//! on the earlier recovery's sessions; one naming another bank session is refused at the bank,
//! and one older than the session is refused as stale. Each refusal is `PERMISSION_DENIED` with
//! its own message and leaves the session as it was (still approved and releasable). An expired
//! 2-of-n approval is renewed only by two approvers again.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, session_key, set_config_value,
};
use dlocker_proto::pb::{
    CancelRecoveryRequest, GetApprovalRequest, OpenRecoveryResponse, cancel_recovery_request,
};
use dlocker_proto::statement::{BankCancellation, Signed};
use dlocker_proto::time::unix_now;
use k256::PublicKey;
use tonic::Code;

const NODES: usize = 3;

fn spec() -> RecoverySpec {
    RecoverySpec {
        nodes: NODES,
        ..RecoverySpec::default()
    }
}

async fn present(
    rc: &RecoveryCluster,
    i: usize,
    session_id: &str,
    cancellation: &[u8],
) -> Result<(), tonic::Status> {
    rc.recovery(i)
        .await
        .cancel_recovery(CancelRecoveryRequest {
            session_id: session_id.to_owned(),
            authority: Some(cancel_recovery_request::Authority::BankCancellationEncoded(
                cancellation.to_vec(),
            )),
            nonces: Vec::new(),
        })
        .await
        .map(|_| ())
}

async fn state(rc: &RecoveryCluster, i: usize, sid: &str) -> String {
    rc.session_status(i, sid).await.state
}

/// Opens and authenticates at every node towards `r`.
async fn open_everywhere(
    rc: &RecoveryCluster,
    wallet: &str,
    r: &PublicKey,
    auth: &mut dlocker_sdk::SoftwareAuthenticator,
) -> Vec<OpenRecoveryResponse> {
    let mut out = Vec::new();
    for i in 0..NODES {
        out.push(rc.open_and_authenticate(i, wallet, r, auth).await);
    }
    out
}

fn refused(res: Result<(), tonic::Status>, what: &str, message: &str) {
    let e = res.expect_err(what);
    assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
    assert!(
        e.message().contains(message),
        "{what}: {:?} lacks {message:?}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_bank_cancellation_replayed_against_a_later_recovery_is_refused() {
    let rc = RecoveryCluster::start(spec()).await;
    let (wallet, _p, mut auth) = rc.backup("replay-cancel", b"seed", 0).await;
    let r = session_key().public_key();

    // The first recovery towards R: staff cancel it, the cancellation is presented everywhere.
    let first = open_everywhere(&rc, &wallet, &r, &mut auth).await;
    let old = rc
        .staff_client(0)
        .cancel(&first[0].session_id)
        .await
        .expect("staff cancel");
    assert_eq!(old.statement.body().session_id, first[0].session_id);
    for (i, s) in first.iter().enumerate().skip(1) {
        present(&rc, i, "", &old.encoded)
            .await
            .expect("the cancellation of the first recovery");
        assert_eq!(state(&rc, i, &s.session_id).await, "cancelled");
    }

    // A later recovery of the same wallet towards the same R, owner-authenticated and approved.
    let later = open_everywhere(&rc, &wallet, &r, &mut auth).await;
    let approval = rc
        .staff_client(0)
        .approve(&later[0].session_id)
        .await
        .expect("approve")
        .approval
        .expect("approval")
        .encode();

    // The old cancellation replayed, by session id and by wallet and R: refused everywhere.
    for (sid, how) in [(later[0].session_id.as_str(), "named"), ("", "by wallet")] {
        refused(
            present(&rc, 0, sid, &old.encoded).await,
            &format!("bank, {how}"),
            &format!(
                "names bank session {}, not this session",
                first[0].session_id
            ),
        );
    }
    for (i, s) in later.iter().enumerate().skip(1) {
        for (sid, how) in [(s.session_id.as_str(), "named"), ("", "by wallet")] {
            refused(
                present(&rc, i, sid, &old.encoded).await,
                &format!("{}, {how}", rc.node(i).name),
                "was spent here",
            );
        }
    }
    // Nothing changed: the later recovery is still owner-authenticated, still approved, and
    // releases.
    for (i, s) in later.iter().enumerate() {
        assert_eq!(
            state(&rc, i, &s.session_id).await,
            "owner_authenticated",
            "{}",
            rc.node(i).name
        );
    }
    rc.staff_client(0)
        .approve(&later[0].session_id)
        .await
        .expect("status")
        .approval
        .expect("still approved");
    for (i, s) in later.iter().enumerate() {
        rc.release(i, &s.session_id, &approval)
            .await
            .unwrap_or_else(|e| panic!("{} releases: {e:?}", rc.node(i).name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_cancellation_for_another_session_is_refused() {
    let rc = RecoveryCluster::start(spec()).await;
    let (wallet, _p, mut auth) = rc.backup("other-session", b"seed", 0).await;
    let r = session_key().public_key();
    // Two sessions at the bank towards the same R; staff cancel the first.
    let a = rc.open_and_authenticate(0, &wallet, &r, &mut auth).await;
    let b = rc.open_and_authenticate(0, &wallet, &r, &mut auth).await;
    let issued = rc
        .staff_client(0)
        .cancel(&a.session_id)
        .await
        .expect("staff cancel");
    refused(
        present(&rc, 0, &b.session_id, &issued.encoded).await,
        "the first session's cancellation at the second",
        &format!("names bank session {}, not this session", a.session_id),
    );
    // A validly signed cancellation naming a bank session that is not this one, by wallet and R.
    let now = unix_now();
    let made_up = Signed::sign(
        BankCancellation {
            bank_node_id: rc.bank_node_id(),
            wallet_id: wallet.clone(),
            session_key: r,
            session_id: "ff".repeat(16),
            session_opened_at: now,
            staff_id: "alice".into(),
            issued_at: now,
        },
        &rc.bank_signing_key(),
    )
    .encode();
    refused(
        present(&rc, 0, "", &made_up).await,
        "a cancellation of another bank session",
        &format!("names bank session {}, not this session", "ff".repeat(16)),
    );
    assert_eq!(state(&rc, 0, &a.session_id).await, "cancelled");
    assert_eq!(
        state(&rc, 0, &b.session_id).await,
        "owner_authenticated",
        "nothing changed"
    );
    // Control: the second session's own cancellation cancels it.
    let own = rc
        .staff_client(0)
        .cancel(&b.session_id)
        .await
        .expect("staff cancel");
    present(&rc, 0, &b.session_id, &own.encoded)
        .await
        .expect("its own cancellation (already applied: a no-op)");
    assert_eq!(state(&rc, 0, &b.session_id).await, "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_bank_cancellation_is_refused() {
    let rc = RecoveryCluster::start(spec()).await;
    let (wallet, _p, mut auth) = rc.backup("stale-cancel", b"seed", 0).await;
    let r = session_key().public_key();
    let sessions = open_everywhere(&rc, &wallet, &r, &mut auth).await;
    // Signed by the bank an hour before these sessions opened, for the bank session it named
    // then: validly signed, this wallet and R, but older than every session here.
    let then = unix_now() - 3600;
    let stale = |session_id: &str| {
        Signed::sign(
            BankCancellation {
                bank_node_id: rc.bank_node_id(),
                wallet_id: wallet.clone(),
                session_key: r,
                session_id: session_id.to_owned(),
                session_opened_at: then - 60,
                staff_id: "alice".into(),
                issued_at: then,
            },
            &rc.bank_signing_key(),
        )
        .encode()
    };
    for (i, s) in sessions.iter().enumerate() {
        // At the bank it even names the current session: still older than it.
        let c = stale(&sessions[0].session_id);
        for sid in [s.session_id.as_str(), ""] {
            refused(
                present(&rc, i, sid, &c).await,
                &format!("{} ({sid:?})", rc.node(i).name),
                "it cancels an earlier session",
            );
        }
        assert_eq!(
            state(&rc, i, &s.session_id).await,
            "owner_authenticated",
            "{}: nothing changed",
            rc.node(i).name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_two_of_n_approval_needs_two_approvers_again() {
    const TTL: i64 = 60;
    let mut rc = RecoveryCluster::init(RecoverySpec {
        staff: vec![
            ("alice".into(), "approver,canceller".into()),
            ("bob".into(), "approver".into()),
        ],
        approvals_required: Some(2),
        ..spec()
    });
    set_config_value(
        rc.data_dir(0),
        "bank",
        "approval_ttl_secs",
        toml::Value::Integer(TTL),
    );
    rc.start_all().await;
    let (wallet, _p, mut auth) = rc.backup("renew", b"seed", 0).await;
    let r = session_key().public_key();
    let bank = rc.open_and_authenticate(0, &wallet, &r, &mut auth).await;
    let t2 = rc.open_and_authenticate(1, &wallet, &r, &mut auth).await;
    let (alice, bob) = (rc.staff_client(0), rc.staff_client(1));
    let one = alice.approve(&bank.session_id).await.expect("alice");
    assert!(one.approval.is_none(), "one of two");
    let first = bob
        .approve(&bank.session_id)
        .await
        .expect("bob")
        .approval
        .expect("two of two");
    assert_eq!(first.body().approvers, ["alice", "bob"]);

    // Let it expire.
    let expires_at = first.body().expires_at;
    while unix_now() <= expires_at {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let e = rc
        .release(1, &t2.session_id, &first.encode())
        .await
        .expect_err("an expired approval");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("expired"), "{e:?}");

    // One click does not renew it: the old approvers lapsed.
    let again = alice.approve(&bank.session_id).await.expect("alice again");
    assert_eq!(again.approvers, ["alice"], "the old approvals lapsed");
    assert!(again.approval.is_none(), "one of two is not enough");
    let e = rc
        .raw_staff(0)
        .await
        .get_approval(GetApprovalRequest {
            wait_secs: 0,
            wallet_id: wallet.clone(),
            session_key: dlocker_proto::keys::encode_public_key(&r).to_vec(),
        })
        .await
        .expect_err("no live approval");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("1 of 2"), "{e:?}");
    assert_eq!(
        state(&rc, 1, &t2.session_id).await,
        "owner_authenticated",
        "nothing released"
    );

    // The second approver renews it; the renewed approval releases.
    let renewed = bob
        .approve(&bank.session_id)
        .await
        .expect("bob again")
        .approval
        .expect("two of two again");
    assert!(renewed.body().issued_at > first.body().issued_at);
    assert_eq!(renewed.body().approvers, ["alice", "bob"]);
    rc.release(1, &t2.session_id, &renewed.encode())
        .await
        .expect("the renewed approval releases");
}
