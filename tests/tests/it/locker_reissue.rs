//! Re-issue after recovery on a real locker: with a bank approval bound to the new wallet key
//! and the owner's passkey, every credential is revoked in the status list the locker serves and
//! issued anew bound to the new key (hosted: signed by the locker; pull: the issuer's repository
//! called again; push: a task for the issuer); a carried-over consent now yields the new
//! credential; an ended one is refused.

use dlocker_integration_tests::locker::{
    BANK_ISSUER, ID_CARD, LockerCluster, id_card_claims, in_a_year, licence_lookup,
};
use dlocker_locker::example_issuer::{DOC_TYPE, ISSUER_ID};
use dlocker_sdk::documents::{
    CredentialStatus, HolderClient, KeyApproval, PrincipalKey, RefusalCode, close_key_approval,
    reissue, request_key_approval, vc,
};
use std::time::Duration;
use tonic::Code;

/// The bank's approval for `new_key` with staff approving as soon as the session opens.
async fn approve_key(c: &LockerCluster, wallet: &str, new_key: &PrincipalKey) -> KeyApproval {
    let staff = c.staff_client();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let approving = tokio::spawn(async move {
        let s = rx.recv().await.expect("bank session id");
        staff.approve(&s).await.expect("staff approve")
    });
    let a = request_key_approval(
        c.set().bank(),
        wallet,
        &new_key.public_key(),
        Duration::from_millis(100),
        Duration::from_secs(60),
        &|s| {
            let _ = tx.send(s.to_owned());
        },
    )
    .await
    .expect("bank approval for the new key");
    approving.await.expect("staff task");
    a
}

fn status_of(jws: &str) -> dlocker_sdk::documents::status_list::StatusEntry {
    vc::parse(jws)
        .expect("parse")
        .1
        .status
        .expect("status entry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reissue_revokes_old_binds_new_and_carries_consents() {
    reissue_flow(dlocker_integration_tests::postgres::Storage::Sled).await;
}

/// The same documents, consents and re-issue with both nodes' records in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reissue_revokes_old_binds_new_and_carries_consents_on_postgres() {
    if let Some(pg) = dlocker_integration_tests::postgres::Storage::postgres("reissue") {
        reissue_flow(pg).await;
    }
}

async fn reissue_flow(storage: dlocker_integration_tests::postgres::Storage) {
    let c = LockerCluster::start_on(storage).await;
    let mut w = c.wallet("reissue").await;
    let locker = c.locker();
    let hosted = c.hosted_issuer(BANK_ISSUER, &[ID_CARD]).await;
    let card = hosted
        .issue(&w.id, ID_CARD, &id_card_claims("Asha Rao"), in_a_year())
        .await
        .expect("issue");
    let (_pull, _repo) = c.pull_issuer().await;
    let licence = w
        .holder
        .pull(ISSUER_ID, DOC_TYPE, &licence_lookup())
        .await
        .expect("pull");
    assert_eq!(licence.source, "pull");
    let uni = c.push_issuer("example.university", &["DEGRE"]).await;
    let degree_claims =
        vc::Claims::from_pairs([("degree", "B.Tech"), ("year", "2012")]).expect("claims");
    let degree = uni
        .push(&w.id, "DEGRE", &degree_claims, 0)
        .await
        .expect("push");
    assert_eq!(degree.source, "push");
    let acme = c.requester("acme.employer", true).await;
    let consent = w
        .holder
        .grant_consent(
            "acme.employer",
            &[licence.document_uri.clone(), card.document_uri.clone()],
            "driver job",
            in_a_year(),
        )
        .await
        .expect("grant");
    let before = acme
        .fetch(&licence.document_uri, &consent.consent_id)
        .await
        .expect("fetch before");
    let old_key = w.holder.key().public_key();
    assert_eq!(before.credential.holder_key, old_key);

    // An approval for the new key is needed: one bound to another key is refused, nothing moves.
    let new_key = PrincipalKey::generate();
    let approval = approve_key(&c, &w.id, &new_key).await;
    let other = PrincipalKey::generate();
    let e = reissue(
        &locker,
        &w.id,
        &other,
        &approval.approval,
        &mut w.auth,
        true,
    )
    .await
    .expect_err("wrong key");
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");
    assert!(e.to_string().contains("bound to another key"), "{e}");
    assert_eq!(
        w.holder
            .documents()
            .await
            .expect("old key still works")
            .len(),
        3
    );

    let out = reissue(
        &locker,
        &w.id,
        &new_key,
        &approval.approval,
        &mut w.auth,
        true,
    )
    .await
    .expect("reissue");
    close_key_approval(c.set().bank(), &approval, &mut w.auth)
        .await
        .expect("close the bank session");
    assert_eq!(out.reissued.len(), 2, "hosted and pull re-issued at once");
    assert_eq!(out.awaiting_issuer.len(), 1, "the push issuer has a task");
    assert_eq!(out.revoked_credential_ids.len(), 3);
    assert_eq!(out.consents_carried_over, 1);
    assert_eq!(out.holder.as_ref().map(|h| h.key_generation), Some(1));

    // The old credentials' bits are set in the status lists the locker serves.
    for (issuer, jws) in [
        (BANK_ISSUER, &card.credential_jws),
        (ISSUER_ID, &licence.credential_jws),
        ("example.university", &degree.credential_jws),
    ] {
        let entry = status_of(jws);
        assert!(
            locker.status_of(issuer, &entry).await.expect("status list"),
            "{issuer}'s old credential is revoked"
        );
        let r = locker.verify(jws).await.expect("verify old");
        assert_eq!(r.status, CredentialStatus::Revoked);
        assert!(!r.ok);
    }
    let t = c.write_trustees();
    let out_cli = c.dlocker(&[
        "docs",
        "status-list",
        "--trustees",
        t.to_str().expect("path"),
        "--issuer",
        ISSUER_ID,
    ]);
    let stdout = String::from_utf8_lossy(&out_cli.stdout);
    assert!(
        out_cli.status.success(),
        "{}",
        String::from_utf8_lossy(&out_cli.stderr)
    );
    assert!(stdout.contains("131072 entries, 1 revoked"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "indices {}",
            status_of(&licence.credential_jws).index
        )),
        "{stdout}"
    );

    // The new ones verify and are bound to the new key; URIs are unchanged.
    for d in &out.reissued {
        let r = locker.verify(&d.credential_jws).await.expect("verify new");
        assert!(r.ok, "{}: {:?}", d.document_uri, r.problems);
        assert_eq!(
            vc::parse(&d.credential_jws).expect("parse").1.holder_key,
            new_key.public_key()
        );
        assert!(d.document_uri == card.document_uri || d.document_uri == licence.document_uri);
    }

    // Under the carried-over consent the requester gets the new credential.
    let after = acme
        .fetch(&licence.document_uri, &consent.consent_id)
        .await
        .expect("fetch after");
    assert_ne!(
        after.credential.credential_id,
        before.credential.credential_id
    );
    assert_eq!(after.credential.holder_key, new_key.public_key());
    let listed = HolderClient::new(locker.clone(), &w.id, new_key.clone())
        .consents()
        .await
        .expect("consents");
    assert!(listed.iter().any(|x| x.consent_id == consent.consent_id
        && x.carried_over_at > 0
        && x.state == "active"));

    // The old wallet key is no longer the holder's.
    let e = w.holder.documents().await.expect_err("old key");
    assert_eq!(e.code(), Some(Code::Unauthenticated), "{e}");
    let holder = HolderClient::new(locker.clone(), &w.id, new_key.clone());

    // The push issuer finds its re-issue task (a draft for the new key) and signs it.
    let e = acme
        .fetch_raw(&degree.document_uri, &consent.consent_id)
        .await
        .expect_err("not in the consent");
    assert_eq!(e.refusal(), Some(RefusalCode::UriOutsideConsent));
    let tasks = uni.tasks().await.expect("tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].kind, "reissue");
    let draft = tasks[0].draft.as_ref().expect("draft");
    assert_eq!(
        draft.holder_key,
        dlocker_proto::keys::encode_public_key(&new_key.public_key()).to_vec()
    );
    let pushed = uni
        .sign_and_push(draft, &degree_claims)
        .await
        .expect("push the re-issue");
    assert_eq!(pushed.document_uri, degree.document_uri);
    let d = holder.document(&degree.document_uri).await.expect("degree");
    assert_eq!(d.state, "active");
    assert!(locker.verify(&d.credential_jws).await.expect("verify").ok);

    // Another recovery, this time ending the consents: the requester is refused.
    let key3 = PrincipalKey::generate();
    let approval = approve_key(&c, &w.id, &key3).await;
    let out = reissue(
        &locker,
        &w.id,
        &key3,
        &approval.approval,
        &mut w.auth,
        false,
    )
    .await
    .expect("reissue again");
    close_key_approval(c.set().bank(), &approval, &mut w.auth)
        .await
        .expect("close");
    assert_eq!(out.consents_ended, 1);
    assert_eq!((out.reissued.len(), out.awaiting_issuer.len()), (2, 1));
    let e = acme
        .fetch_raw(&licence.document_uri, &consent.consent_id)
        .await
        .expect_err("ended");
    assert_eq!(e.refusal(), Some(RefusalCode::ConsentEnded), "{e}");

    let audit = c.audit().await;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.kind == "documents_reissued")
            .count(),
        2
    );
    assert!(audit.iter().all(|e| !e.detail.contains(&w.id)));
}
