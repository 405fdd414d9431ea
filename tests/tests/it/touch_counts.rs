//! One passkey, one touch, at every size: on real nodes (n = 3, 5 and 10 trustee processes), a
//! backup asks the owner's authenticator once (one credential registered at every trustee) and a
//! recovery once more (one assertion for every trustee's session), whatever n is.

use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec};

async fn touches_at(n: usize) {
    let rc = RecoveryCluster::start(RecoverySpec {
        nodes: n,
        ..RecoverySpec::default()
    })
    .await;
    let (wallet, _prepared, mut auth) = rc.backup(&format!("touch-{n}"), b"seed", 0).await;
    assert_eq!(
        auth.touches(),
        1,
        "n = {n}: one registration for the whole backup"
    );
    let recovered = rc
        .recover_with_approval(&wallet, &mut auth, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("n = {n}: recovery: {e}"));
    assert_eq!(recovered.data().expose(), b"seed");
    assert_eq!(
        auth.touches(),
        2,
        "n = {n}: one assertion for the whole recovery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_touch_per_ceremony_with_3_5_and_10_trustees() {
    for n in [3, 5, 10] {
        touches_at(n).await;
    }
}
