//! One passkey touch for every trustee (docs/protocol.md 12a), refused on real nodes whenever it
//! was not made for exactly this ceremony: a combined challenge without this trustee's nonce, a
//! nonce used twice, a nonce past its expiry, a touch for `R1` presented with `R2`, one for
//! another wallet or another action, a nonce issued for something else. Each refusal has its own
//! status and leaves the session as it was; the genuine touch then authenticates at every
//! trustee at once.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, Touch, session_key,
};
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb::{BeginOwnerCancelRequest, OpenRecoveryResponse};
use tonic::Code;

fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, needle: &str, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), code, "{what}: {e:?}");
    assert!(
        e.message().contains(needle),
        "{what}: {e:?} lacks {needle:?}"
    );
}

async fn state(rc: &RecoveryCluster, i: usize, session_id: &str) -> (String, bool) {
    let s = rc.session_status(i, session_id).await;
    (s.state, s.owner_authenticated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_counts_only_for_its_own_ceremony() {
    let spec = RecoverySpec {
        nodes: 3,
        config: vec![(
            "limits".into(),
            "ceremony_ttl_secs".into(),
            toml::Value::Integer(30),
        )],
        ..RecoverySpec::default()
    };
    let rc = RecoveryCluster::start(spec).await;
    let (wallet, _p, mut auth) = rc.backup("touch", b"seed", 0).await;
    let (other_wallet, _q, _) = rc.backup("touch-other", b"seed", 0).await;
    let n = 3;
    let r1 = session_key().public_key();
    let r2 = session_key().public_key();
    let mut s1: Vec<OpenRecoveryResponse> = Vec::new();
    let mut all = Nonces::default();
    for i in 0..n {
        let o = rc.open(i, &wallet, &r1).await.expect("open");
        all.push(&rc.node(i).node_id, &o.nonce);
        s1.push(o);
    }
    let options = s1[0].request_options_json.clone();
    let touch = |auth: &mut _, action, w: &str, authorized: &[u8], nonces: Nonces| {
        Touch::new(auth, action, w, authorized, nonces, &options)
    };
    let r1b = encode_public_key(&r1).to_vec();

    // A combined challenge over the other trustees only: trustee 0 is not in it.
    let mut others = Nonces::default();
    for (id, nonce) in &all.0[1..] {
        others.push(id, nonce);
    }
    let t = touch(&mut auth, OwnerAction::Recover, &wallet, &r1b, others);
    refused(
        rc.authenticate(0, &s1[0].session_id, &t).await,
        Code::PermissionDenied,
        "does not include this trustee's nonce",
        "a challenge without this trustee's nonce",
    );

    // A touch for R1 presented for a session bound to R2.
    let o2 = rc.open(0, &wallet, &r2).await.expect("open R2");
    let mut with_r2 = all.clone();
    with_r2.0[0].1 = o2.nonce.clone();
    let t = touch(&mut auth, OwnerAction::Recover, &wallet, &r1b, with_r2);
    refused(
        rc.authenticate(0, &o2.session_id, &t).await,
        Code::Unauthenticated,
        "does not verify",
        "a touch for R1 presented with R2",
    );

    // A touch for another wallet; another action; a nonce issued for another wallet.
    let t = touch(
        &mut auth,
        OwnerAction::Recover,
        &other_wallet,
        &r1b,
        all.clone(),
    );
    refused(
        rc.authenticate(0, &s1[0].session_id, &t).await,
        Code::Unauthenticated,
        "does not verify",
        "a touch for another wallet",
    );
    let t = touch(&mut auth, OwnerAction::Cancel, &wallet, &r1b, all.clone());
    refused(
        rc.authenticate(0, &s1[0].session_id, &t).await,
        Code::Unauthenticated,
        "does not verify",
        "a touch for another action",
    );
    let foreign = rc
        .open(0, &other_wallet, &r1)
        .await
        .expect("open other wallet");
    let mut foreign_nonce = all.clone();
    foreign_nonce.0[0].1 = foreign.nonce.clone();
    let t = touch(
        &mut auth,
        OwnerAction::Recover,
        &wallet,
        &r1b,
        foreign_nonce,
    );
    refused(
        rc.authenticate(0, &s1[0].session_id, &t).await,
        Code::PermissionDenied,
        "issued for another wallet or action",
        "a nonce issued for another wallet",
    );
    let cancel_nonce = rc
        .recovery(0)
        .await
        .begin_owner_cancel(BeginOwnerCancelRequest {
            session_id: s1[0].session_id.clone(),
        })
        .await
        .expect("begin cancel")
        .into_inner()
        .nonce;
    let mut wrong_kind = all.clone();
    wrong_kind.0[0].1 = cancel_nonce;
    let t = touch(&mut auth, OwnerAction::Recover, &wallet, &r1b, wrong_kind);
    refused(
        rc.authenticate(0, &s1[0].session_id, &t).await,
        Code::PermissionDenied,
        "issued for another wallet or action",
        "a cancel nonce presented for a recovery",
    );
    // Nothing changed anywhere.
    for (i, s) in s1.iter().enumerate() {
        assert_eq!(state(&rc, i, &s.session_id).await, ("open".into(), false));
    }

    // The genuine touch: one assertion, accepted by every trustee.
    let good = touch(&mut auth, OwnerAction::Recover, &wallet, &r1b, all.clone());
    for (i, s) in s1.iter().enumerate() {
        rc.authenticate(i, &s.session_id, &good)
            .await
            .unwrap_or_else(|e| panic!("trustee {i}: {e:?}"));
        assert_eq!(
            state(&rc, i, &s.session_id).await,
            ("owner_authenticated".into(), true)
        );
    }

    // The same nonce twice: a new session for R1 at trustee 0 with the spent touch.
    let again = rc.open(0, &wallet, &r1).await.expect("open again");
    refused(
        rc.authenticate(0, &again.session_id, &good).await,
        Code::FailedPrecondition,
        "already used",
        "a nonce used twice",
    );
    assert_eq!(
        state(&rc, 0, &again.session_id).await,
        ("open".into(), false)
    );

    // A nonce past its expiry (ceremony_ttl_secs = 30 here).
    let late = rc.open(1, &wallet, &r1).await.expect("open");
    let mut late_nonces = Nonces::default();
    late_nonces.push(&rc.node(1).node_id, &late.nonce);
    let t = touch(&mut auth, OwnerAction::Recover, &wallet, &r1b, late_nonces);
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    refused(
        rc.authenticate(1, &late.session_id, &t).await,
        Code::FailedPrecondition,
        "expired",
        "a nonce past its expiry",
    );
}
