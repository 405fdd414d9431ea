//! Nothing a stranger who knows only a wallet id does at real trustees harms the owner:
//! junk passkey responses close the stranger's own session and lock nothing; a stranger's
//! `OpenRecovery` occupies nothing and learns no other session's id; a stranger's
//! `BeginOwnerCancel` does not invalidate the owner's pending cancel; the event stream refuses
//! an anonymous subscriber. After each attack the owner's own ceremony succeeds at once.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, Touch, session_key,
};
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb::{
    BeginOwnerCancelRequest, CancelRecoveryRequest, GetRecoveryStatusRequest, WatchEventsRequest,
    cancel_recovery_request,
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_cannot_lock_occupy_or_cancel_for_the_owner() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (wallet, prepared, mut auth) = rc.backup("strangers", b"owner's seed", 0).await;

    // 1. Five junk passkey responses from a stranger at every trustee: refused UNAUTHENTICATED,
    //    then the stranger's session is closed. The wallet is not locked anywhere.
    for i in 0..5 {
        let sr = session_key().public_key();
        let opened = rc.open(i, &wallet, &sr).await.expect("a stranger may open");
        // Well-formed responses whose signatures do not verify (the stranger has no passkey of
        // the owner's; the shape is borrowed, the signature is wrong).
        let shape = rc.recovery_touch(i, &wallet, &sr, &opened, &mut auth);
        for _ in 0..5 {
            let e = rc
                .authenticate(i, &opened.session_id, &shape.damaged())
                .await
                .expect_err("a wrong signature is refused");
            assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
            assert!(e.message().contains("does not verify"), "{e:?}");
        }
        let st = rc
            .recovery(i)
            .await
            .get_recovery_status(GetRecoveryStatusRequest {
                session_id: opened.session_id.clone(),
            })
            .await
            .expect("status")
            .into_inner();
        assert_eq!(st.state, "cancelled", "the stranger's session is closed");
    }

    // 2. A stranger's OpenRecovery at every trustee (its own R) names no other session and
    //    occupies nothing; a second open is a new session.
    let stranger_r = session_key().public_key();
    let mut stranger_sessions = Vec::new();
    for i in 0..5 {
        let a = rc.open(i, &wallet, &stranger_r).await.expect("open");
        let b = rc.open(i, &wallet, &stranger_r).await.expect("open again");
        assert_ne!(
            a.session_id, b.session_id,
            "no response names another session"
        );
        stranger_sessions.push(a.session_id);
    }

    // 3. The owner recovers at once, with the stranger's sessions still open: no waiting.
    let recovered = rc
        .recover_with_approval(&wallet, &mut auth, &|_| {})
        .await
        .expect("the owner recovers despite the strangers");
    assert_eq!(recovered.data().expose(), b"owner's seed");
    assert_eq!(recovered.manifest.hash(), prepared.manifest().hash());

    // 4. A stranger's BeginOwnerCancel (even knowing the owner's session id) does not disturb
    //    the owner's pending cancel.
    let i = 1;
    let r = session_key().public_key();
    let owner_session = rc.open_and_authenticate(i, &wallet, &r, &mut auth).await;
    let mut rec = rc.recovery(i).await;
    let mut begins = Vec::new();
    for _ in 0..3 {
        begins.push(
            rec.begin_owner_cancel(BeginOwnerCancelRequest {
                session_id: owner_session.session_id.clone(),
            })
            .await
            .expect("begin cancel")
            .into_inner(),
        );
    }
    // The owner's came first; two strangers' calls followed.
    let owners = &begins[0];
    let mut nonces = Nonces::default();
    nonces.push(&rc.node(i).node_id, &owners.nonce);
    let touch = Touch::new(
        &mut auth,
        OwnerAction::Cancel,
        &wallet,
        &encode_public_key(&r),
        nonces,
        &owners.request_options_json,
    );
    rec.cancel_recovery(CancelRecoveryRequest {
        session_id: owner_session.session_id.clone(),
        authority: Some(cancel_recovery_request::Authority::OwnerAssertionJson(
            touch.assertion_json.clone(),
        )),
        nonces: touch.nonces.wire(),
    })
    .await
    .expect("the owner's cancel succeeds after a stranger's BeginOwnerCancel");

    // 5. The event stream names wallets and sessions: an anonymous subscriber is refused.
    let e = rc
        .recovery(0)
        .await
        .watch_events(WatchEventsRequest {
            cursor: 0,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect_err("anonymous watcher");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_flooding_owner_ceremonies_is_limited_with_a_retry_hint() {
    let spec = RecoverySpec {
        nodes: 3,
        config: vec![(
            "limits".into(),
            "owner_calls_per_minute".into(),
            toml::Value::Integer(5),
        )],
        ..RecoverySpec::default()
    };
    let rc = RecoveryCluster::start(spec).await;
    let (wallet, _p, _auth) = rc.backup("flood", b"seed", 0).await;
    // The backup spent one call at each node; the flood spends the rest and is refused.
    let mut opened = 0;
    let refusal = loop {
        match rc.open(1, &wallet, &session_key().public_key()).await {
            Ok(_) => opened += 1,
            Err(e) => break e,
        }
        assert!(opened < 10, "never limited");
    };
    assert_eq!(opened, 4, "the burst is the configured limit");
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");
    assert!(refusal.message().contains("retry in"), "{refusal:?}");
    // Nothing was written for the refused call: the node's audit log shows 4 openings.
    let log = rc
        .recovery(1)
        .await
        .get_audit_log(dlocker_proto::pb::GetAuditLogRequest {
            from_seq: 1,
            limit: 1000,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect("audit")
        .into_inner();
    let opens = log
        .entries
        .iter()
        .filter(|e| e.kind == "recovery_opened")
        .count();
    assert_eq!(opens, 4);
    // Another node's budget is its own.
    rc.open(2, &wallet, &session_key().public_key())
        .await
        .expect("another trustee still answers");
}
