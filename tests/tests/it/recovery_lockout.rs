//! Failed passkey assertions are counted durably per wallet (the count survives a crash); at the
//! limit the wallet's recovery is locked at that trustee (genuine passkey and new sessions both
//! refused, with the time left), the lock is audited, and it lifts after the cool-down.
//! `max_failed_assertions = 3` and `lockout_secs = 10` are set in config.toml before start.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, assertion, session_key, wait_for, wrong_assertion,
};
use dlocker_proto::pb::GetAuditLogRequest;
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_assertions_lock_the_wallet_until_the_cool_down() {
    let spec = RecoverySpec {
        recovery: vec![
            ("max_failed_assertions".into(), 3),
            ("lockout_secs".into(), 10),
        ],
        ..RecoverySpec::default()
    };
    let mut rc = RecoveryCluster::start(spec).await;
    let (wallet, _p, mut auth) = rc.backup("lockout", b"seed", 0).await;
    let i = 1; // trustee-2
    let r = session_key().public_key();
    let s = rc.open(i, &wallet, &r).await.expect("open");

    for left in [2, 1] {
        let bad = wrong_assertion(&mut auth, &s.request_options_json);
        let err = rc
            .authenticate(i, &s.session_id, &bad)
            .await
            .expect_err("a wrong assertion was accepted");
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
        assert!(
            err.message().contains(&format!("{left} attempts left")),
            "{err:?}"
        );
    }
    // The count is durable: it survives a crash of the node.
    rc.kill(i);
    rc.start_node(i).await;
    let bad = wrong_assertion(&mut auth, &s.request_options_json);
    let err = rc
        .authenticate(i, &s.session_id, &bad)
        .await
        .expect_err("third wrong assertion accepted");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message().contains("0 attempts left"),
        "the count survived the crash: {err:?}"
    );

    // Locked: even the genuine passkey, and new sessions, are refused, saying for how long.
    let good = assertion(&mut auth, &s.request_options_json);
    let err = rc
        .authenticate(i, &s.session_id, &good)
        .await
        .expect_err("authenticated while locked");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("locked") && err.message().contains("s left"),
        "{err:?}"
    );
    let err = rc
        .open(i, &wallet, &session_key().public_key())
        .await
        .expect_err("opened while locked");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("locked"), "{err:?}");
    // The lock is per trustee: trustee-3 still opens a session for the wallet.
    rc.open(2, &wallet, &r)
        .await
        .expect("another trustee is not locked");

    // Audited: three failures, then the lock.
    let log = rc
        .recovery(i)
        .await
        .get_audit_log(GetAuditLogRequest {
            from_seq: 1,
            limit: 1000,
        })
        .await
        .expect("audit log")
        .into_inner();
    let kinds: Vec<&str> = log.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "assertion_failed").count(),
        3,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"wallet_locked"), "{kinds:?}");
    assert!(
        log.entries
            .iter()
            .all(|e| !e.detail.contains(&wallet) && !e.wallet_tag.contains(&wallet)),
        "the audit log does not name the wallet"
    );

    // After the cool-down the genuine passkey works again on the same session (bounded wait).
    let rc = &rc;
    let sid = s.session_id.as_str();
    wait_for(Duration::from_secs(90), "the lock to expire", || {
        let good = assertion(&mut auth, &s.request_options_json);
        async move {
            match rc.authenticate(i, sid, &good).await {
                Ok(_) => Some(()),
                Err(e) if e.code() == Code::PermissionDenied && e.message().contains("locked") => {
                    None
                }
                Err(e) => panic!("unexpected refusal after the lock: {e:?}"),
            }
        }
    })
    .await;
}
