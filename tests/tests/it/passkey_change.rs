//! Passkey change on real nodes: with one trustee down the others change, a resume completes it
//! with one more touch of the old passkey, and afterwards the old passkey is refused by every
//! trustee (recovery authentication and another change) while the new one recovers the wallet.
//!
//! Nodes: bank, trustee-2, trustee-3 hold a 2-of-3 backup.

use dlocker_integration_tests::recovery_cluster::{Touch, session_key};
use dlocker_integration_tests::rotation::RotationCluster;
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_sdk::{
    PasskeyChangeError, SoftwareAuthenticator, TrusteePasskey,
    protocol::{change_passkey, resume_passkey_change},
};
use tonic::Code;

const ALL: [usize; 3] = [0, 1, 2];
const DATA: &[u8] = b"passkey change: only the new passkey recovers this";

fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, needle: &str, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), code, "{what}: {e:?}");
    assert!(e.message().contains(needle), "{what}: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_change_old_refused_everywhere_new_recovers() {
    let mut rc = RotationCluster::start(3, None).await;
    let (wallet, _prepared, mut old) = rc.backup("pk-change", &ALL, 2, DATA).await;
    // Another wallet's credential: what an attacker holding the old passkey would try to install.
    let (other, _, _) = rc.backup("pk-other", &ALL, 2, DATA).await;
    // A request template naming the old credential, to build the old passkey's answers later.
    let old_template = rc
        .begin_action(0, &wallet, pb::EpochAction::ChangePasskey)
        .await
        .request_options_json;
    let old_fp = rc.credential_fingerprints(&ALL, &wallet).await;

    // trustee-3 is down: the others change, the SDK names it and hands back the fingerprint.
    rc.stop(2);
    let mut new = SoftwareAuthenticator::new();
    let err = change_passkey(&rc.all(), &wallet, &mut old, &mut new)
        .await
        .expect_err("one trustee is down");
    assert_eq!((old.touches(), new.touches()), (2, 1), "one touch each");
    let PasskeyChangeError::Incomplete { failed, done } = err else {
        panic!("expected Incomplete, got {err:?}");
    };
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, rc.node(2).name);
    assert_eq!(
        done.trustees,
        vec![
            (rc.node(0).name.clone(), TrusteePasskey::Changed),
            (rc.node(1).name.clone(), TrusteePasskey::Changed),
        ]
    );
    let new_fp = done.new_fingerprint;

    // Back up: trustee-3 still holds the old credential until the resume.
    rc.start_node(2).await;
    let fps = rc.credential_fingerprints(&ALL, &wallet).await;
    assert_eq!(fps[0], new_fp.to_vec());
    assert_eq!(fps[1], new_fp.to_vec());
    assert_eq!(fps[2], old_fp[2]);
    let report = resume_passkey_change(&rc.all(), &wallet, &mut old, &new_fp)
        .await
        .expect("the resume completes the change");
    assert_eq!(old.touches(), 3, "one more touch of the old passkey");
    assert_eq!(
        report.trustees.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        vec![
            TrusteePasskey::AlreadyChanged,
            TrusteePasskey::AlreadyChanged,
            TrusteePasskey::Changed
        ]
    );
    assert_eq!(
        rc.credential_fingerprints(&ALL, &wallet).await,
        vec![new_fp.to_vec(); 3],
        "every trustee holds the new credential"
    );

    // The old passkey is refused everywhere: recovery authentication...
    let r = session_key().public_key();
    let recovery = rc.recovery_cluster();
    for i in ALL {
        let opened = recovery.open(i, &wallet, &r).await.expect("open");
        let mut nonces = Nonces::default();
        nonces.push(&rc.node(i).node_id, &opened.nonce);
        let touch = Touch::new(
            &mut old,
            OwnerAction::Recover,
            &wallet,
            &encode_public_key(&r),
            nonces,
            &old_template,
        );
        refused(
            recovery.authenticate(i, &opened.session_id, &touch).await,
            Code::Unauthenticated,
            "passkey response does not verify",
            "the old passkey authenticating a recovery",
        );
    }
    // ...and another change it authorizes (installing the other wallet's credential).
    for i in ALL {
        let begun = rc
            .begin_action(i, &wallet, pb::EpochAction::ChangePasskey)
            .await;
        let theirs = rc
            .begin_action(i, &other, pb::EpochAction::ChangePasskey)
            .await;
        let mut nonces = Nonces::default();
        nonces.push(&rc.node(i).node_id, &begun.nonce);
        let touch = Touch::new(
            &mut old,
            OwnerAction::ChangePasskey,
            &wallet,
            &theirs.credential_fingerprint,
            nonces,
            &old_template,
        );
        let res = EpochsClient::new(rc.node(i).channel().await.expect("connect"))
            .change_passkey(pb::ChangePasskeyRequest {
                wallet_id: wallet.clone(),
                owner: Some(pb::OwnerAssertion {
                    challenge_id: begun.challenge_id,
                    assertion_json: touch.assertion_json,
                    nonces: touch.nonces.wire(),
                }),
                new_credential: Some(pb::change_passkey_request::NewCredential::PasskeyJson(
                    theirs.passkey_json,
                )),
            })
            .await;
        refused(
            res,
            Code::Unauthenticated,
            "passkey response does not verify",
            "the old passkey authorizing another change",
        );
    }
    // Through the SDK the old authenticator cannot even answer (the trustees name the new one).
    let mut third = SoftwareAuthenticator::new();
    let err = change_passkey(&rc.all(), &wallet, &mut old, &mut third)
        .await
        .expect_err("the old passkey cannot change it again");
    assert!(matches!(err, PasskeyChangeError::Auth(_)), "{err:?}");
    assert_eq!(
        rc.credential_fingerprints(&ALL, &wallet).await,
        vec![new_fp.to_vec(); 3],
        "the refusals changed nothing"
    );

    // The new passkey recovers the wallet.
    rc.recover_expecting(&wallet, &mut new, DATA).await;
}
