//! Trustees that lie or are down. One trustee releases a share that does not match the manifest
//! commitments (planted, correctly sealed, in its stopped database: the node cannot tell) and
//! another's stored share is damaged (it refuses to unseal): the SDK still recovers with the
//! other three and names both. With n − t + 1 trustees down, recovery fails with an error naming
//! every one of them.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, flip_stored_share_bit, plant_wrong_share,
};
use dlocker_sdk::RecoverError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_and_broken_trustees_are_named_and_the_others_recover() {
    let mut rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let data = b"wallet seed that must survive two bad trustees".to_vec();
    let (wallet, prepared, mut auth) = rc.backup("liar", &data, 0).await;
    let epoch = prepared.manifest().epoch();

    // trustee-3 will lie; trustee-4's record is damaged.
    let (liar, broken) = (2, 3);
    rc.stop(liar);
    let liar_id = rc.node(liar).node_id.clone();
    plant_wrong_share(
        rc.data_dir(liar),
        &liar_id,
        &wallet,
        epoch,
        (liar + 1) as u16,
    );
    rc.start_node(liar).await;
    rc.stop(broken);
    flip_stored_share_bit(rc.data_dir(broken), &wallet);
    rc.start_node(broken).await;

    let recovered = rc
        .recover_with_approval(&wallet, &mut auth, &|_| {})
        .await
        .expect("recovery with 3 good trustees");
    assert_eq!(
        recovered.data().expose(),
        data.as_slice(),
        "the exact data comes back"
    );
    let liar_name = rc.node(liar).name.clone();
    let broken_name = rc.node(broken).name.clone();
    assert_eq!(
        recovered
            .faulty
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        vec![liar_name.as_str()],
        "exactly the lying trustee is named faulty: {:?}",
        recovered.faulty
    );
    eprintln!("faulty: {:?}", recovered.faulty);
    eprintln!("unavailable: {:?}", recovered.unavailable);
    assert!(
        recovered.unavailable.iter().any(|(n, _)| n == &broken_name),
        "the trustee with a damaged record is named: {:?}",
        recovered.unavailable
    );
    assert!(
        !recovered.used.contains(&liar_name) && !recovered.used.contains(&broken_name),
        "used {:?}",
        recovered.used
    );
    assert_eq!(recovered.used.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_minus_t_plus_1_down_fails_naming_them() {
    let mut rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (wallet, _p, mut auth) = rc.backup("down", b"seed", 0).await;
    // n − t + 1 = 3 trustees down (the bank stays up).
    let down = [1, 3, 4];
    for i in down {
        rc.stop(i);
    }
    let err = rc
        .recover_with_approval(&wallet, &mut auth, &|_| {})
        .await
        .expect_err("recovered with only 2 of 3 needed trustees");
    let text = err.to_string();
    eprintln!("error: {text}");
    match &err {
        RecoverError::NotEnoughTrustees {
            needed,
            available,
            failed,
            ..
        } => {
            assert_eq!(*needed, 3);
            assert_eq!(*available, 2);
            for i in down {
                let name = &rc.node(i).name;
                assert!(
                    failed.iter().any(|(n, _)| n == name),
                    "{name} is named: {failed:?}"
                );
                assert!(
                    text.contains(name.as_str()),
                    "the message names {name}: {text}"
                );
            }
            for i in [0, 2] {
                let name = &rc.node(i).name;
                assert!(
                    !failed.iter().any(|(n, _)| n == name),
                    "{name} is up and not blamed: {failed:?}"
                );
            }
        }
        other => panic!("expected NotEnoughTrustees, got {other:?}"),
    }
}
