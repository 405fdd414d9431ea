//! A pull issuer that is down: the locker answers UNAVAILABLE with a clear message, and
//! neither a pull nor a re-issue changes anything (documents, status lists, consents, the
//! holder's key). Back up, both work.

use dlocker_integration_tests::locker::{LockerCluster, in_a_year, licence_lookup};
use dlocker_locker::example_issuer::{DOC_TYPE, ISSUER_ID};
use dlocker_sdk::documents::{PrincipalKey, reissue, request_key_approval};
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_issuer_down_changes_nothing() {
    let c = LockerCluster::start().await;
    let mut w = c.wallet("pull").await;
    let locker = c.locker();
    let (_issuer, mut repo) = c.pull_issuer().await;

    // Up: a pull works; an unknown licence is NOT_FOUND.
    let licence = w
        .holder
        .pull(ISSUER_ID, DOC_TYPE, &licence_lookup())
        .await
        .expect("pull");
    assert!(
        locker
            .verify(&licence.credential_jws)
            .await
            .expect("verify")
            .ok
    );
    let mut unknown = licence_lookup();
    unknown.insert("date_of_birth".into(), "2001-01-01".into());
    let e = w
        .holder
        .pull(ISSUER_ID, DOC_TYPE, &unknown)
        .await
        .expect_err("unknown licence");
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    let consent = w
        .holder
        .grant_consent(
            "acme.employer",
            std::slice::from_ref(&licence.document_uri),
            "x",
            in_a_year(),
        )
        .await;
    assert!(consent.is_err(), "no such requester yet");

    let docs_before = w.holder.documents().await.expect("list");
    let (list_before, _) = locker.status_list(ISSUER_ID, 0).await.expect("status list");

    // Down.
    repo.kill();
    let second: BTreeMap<String, String> = [
        ("licence_number", "MH12-2018-0098765"),
        ("date_of_birth", "1985-11-02"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let e = w
        .holder
        .pull(ISSUER_ID, DOC_TYPE, &second)
        .await
        .expect_err("issuer down");
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(ISSUER_ID)
            && msg.contains("unreachable")
            && msg.contains("nothing was changed"),
        "{msg}"
    );

    // A re-issue needs the repository too: refused as a whole, nothing changed.
    let new_key = PrincipalKey::generate();
    let staff = c.staff_client();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let approving = tokio::spawn(async move {
        let s = rx.recv().await.expect("session");
        staff.approve(&s).await.expect("approve")
    });
    let approval = request_key_approval(
        c.set().bank(),
        &w.id,
        &new_key.public_key(),
        Duration::from_millis(100),
        Duration::from_secs(60),
        &|s| {
            let _ = tx.send(s.to_owned());
        },
    )
    .await
    .expect("approval");
    approving.await.expect("staff");
    let e = reissue(
        &locker,
        &w.id,
        &new_key,
        &approval.approval,
        &mut w.auth,
        true,
    )
    .await
    .expect_err("repository down");
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    assert!(e.to_string().contains("nothing was changed"), "{e}");

    let docs_after = w
        .holder
        .documents()
        .await
        .expect("the old key still works: the holder is unchanged");
    let ids = |d: &[dlocker_proto::pb::LockerDocument]| {
        d.iter()
            .map(|x| {
                (
                    x.document_uri.clone(),
                    x.credential_id.clone(),
                    x.state.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&docs_after), ids(&docs_before));
    let (list_after, _) = locker.status_list(ISSUER_ID, 0).await.expect("status list");
    assert_eq!(list_after.bits, list_before.bits, "no status bit moved");
    assert_eq!(list_after.bits.count_set(), 0);
    assert!(
        locker
            .verify(&licence.credential_jws)
            .await
            .expect("verify")
            .ok,
        "the credential is still valid"
    );

    // Back up: the re-issue goes through.
    repo.restart();
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
    assert_eq!(out.reissued.len(), 1);
    assert_eq!(
        out.revoked_credential_ids,
        vec![licence.credential_id.clone()]
    );
    let audit = c.audit().await;
    assert!(audit.iter().any(|e| e.kind == "document_pull_failed"));
    assert!(audit.iter().any(|e| e.kind == "documents_reissue_failed"));
}
