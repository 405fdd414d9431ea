//! Consent-gated fetch on a real locker node: each refusal has its own error (a distinct
//! `dlocker-refusal` code and gRPC status) and, once the requester is authenticated, is
//! audited, anonymised; a fetch inside the consent returns a credential that verifies.

use dlocker_integration_tests::locker::{
    BANK_ISSUER, ID_CARD, LockerCluster, id_card_claims, in_a_year, pause,
};
use dlocker_sdk::documents::{RefusalCode, vc::Upload};
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_its_own_error_and_audited() {
    let c = LockerCluster::start().await;
    let w = c.wallet("fetch").await;
    let issuer = c.hosted_issuer(BANK_ISSUER, &[ID_CARD]).await;
    let card = issuer
        .issue(&w.id, ID_CARD, &id_card_claims("Asha Rao"), 0)
        .await
        .expect("issue id card");
    assert_eq!(card.source, "hosted");
    let upload = w
        .holder
        .upload(
            "PHOTO",
            &Upload {
                name: "me.png".into(),
                media_type: "image/png".into(),
                data: vec![7; 300],
            },
        )
        .await
        .expect("upload");
    let acme = c.requester("acme.employer", true).await;
    let pending = c.requester("shady.agency", false).await;

    // Consent for the id card only.
    let consent = w
        .holder
        .grant_consent(
            "acme.employer",
            std::slice::from_ref(&card.document_uri),
            "employment verification",
            in_a_year(),
        )
        .await
        .expect("grant consent");
    assert_eq!(consent.state, "active");
    // An unapproved requester cannot even be given a consent.
    let e = w
        .holder
        .grant_consent(
            "shady.agency",
            std::slice::from_ref(&card.document_uri),
            "x",
            in_a_year(),
        )
        .await
        .expect_err("consent to a pending requester");
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");

    // Inside the consent: the credential, verified end to end (issuer key from the registry,
    // signature, validity, status list under the pinned locker key).
    let got = acme
        .fetch(&card.document_uri, &consent.consent_id)
        .await
        .expect("fetch inside the consent");
    assert!(got.report.ok, "{:?}", got.report.problems);
    assert_eq!(got.credential_jws, card.credential_jws);
    assert_eq!(got.credential.holder_id, w.id);
    assert_eq!(got.credential.holder_key, w.holder.key().public_key());

    let mut expected = Vec::new();
    // 1. Without consent: no consent id, and an id that is not theirs.
    for cid in ["", "00000000000000000000000000000000"] {
        let e = acme
            .fetch_raw(&card.document_uri, cid)
            .await
            .expect_err("no consent");
        assert_eq!(e.refusal(), Some(RefusalCode::NoConsent), "{e}");
        assert_eq!(e.code(), Some(Code::PermissionDenied));
        expected.push(RefusalCode::NoConsent);
    }
    // 2. A URI outside the consent.
    let e = acme
        .fetch_raw(&upload.document_uri, &consent.consent_id)
        .await
        .expect_err("outside");
    assert_eq!(e.refusal(), Some(RefusalCode::UriOutsideConsent), "{e}");
    expected.push(RefusalCode::UriOutsideConsent);
    // 3. An unapproved requester, even with a real consent id.
    let e = pending
        .fetch_raw(&card.document_uri, &consent.consent_id)
        .await
        .expect_err("pending requester");
    assert_eq!(e.refusal(), Some(RefusalCode::RequesterNotApproved), "{e}");
    assert_eq!(e.code(), Some(Code::PermissionDenied));
    expected.push(RefusalCode::RequesterNotApproved);
    // 4. A revoked consent.
    let revoked = w
        .holder
        .grant_consent(
            "acme.employer",
            std::slice::from_ref(&card.document_uri),
            "loan application",
            in_a_year(),
        )
        .await
        .expect("grant");
    acme.fetch(&card.document_uri, &revoked.consent_id)
        .await
        .expect("works before revocation");
    let r = w
        .holder
        .revoke_consent(&revoked.consent_id)
        .await
        .expect("revoke");
    assert_eq!(r.state, "revoked");
    let e = acme
        .fetch_raw(&card.document_uri, &revoked.consent_id)
        .await
        .expect_err("revoked");
    assert_eq!(e.refusal(), Some(RefusalCode::ConsentRevoked), "{e}");
    expected.push(RefusalCode::ConsentRevoked);
    // 5. An expired consent.
    let short = w
        .holder
        .grant_consent(
            "acme.employer",
            std::slice::from_ref(&card.document_uri),
            "one-off check",
            dlocker_proto::time::unix_now() + 2,
        )
        .await
        .expect("grant short consent");
    pause(Duration::from_secs(3)).await;
    let e = acme
        .fetch_raw(&card.document_uri, &short.consent_id)
        .await
        .expect_err("expired");
    assert_eq!(e.refusal(), Some(RefusalCode::ConsentExpired), "{e}");
    expected.push(RefusalCode::ConsentExpired);
    // An unknown requester and a request signed with the wrong key are refused too.
    let stranger = dlocker_sdk::documents::RequesterClient::new(
        c.locker(),
        "acme.employer",
        dlocker_sdk::documents::PrincipalKey::generate(),
    );
    let e = stranger
        .fetch_raw(&card.document_uri, &consent.consent_id)
        .await
        .expect_err("wrong key");
    assert_eq!(e.refusal(), Some(RefusalCode::BadRequestSignature), "{e}");
    assert_eq!(e.code(), Some(Code::Unauthenticated));
    // Refused before the requester is authenticated: counted by the node, not audited.

    // The consent list shows each state.
    let states: Vec<(String, String)> = w
        .holder
        .consents()
        .await
        .expect("list")
        .into_iter()
        .map(|c| (c.consent_id, c.state))
        .collect();
    assert!(states.contains(&(consent.consent_id.clone(), "active".into())));
    assert!(states.contains(&(revoked.consent_id.clone(), "revoked".into())));
    assert!(states.contains(&(short.consent_id.clone(), "expired".into())));

    // Audited: one refusal entry per refusal, with its reason; the grants and fetches too; and
    // the wallet id never appears (holders are the node's keyed wallet tag).
    let audit = c.audit().await;
    for code in RefusalCode::ALL {
        let want = expected.iter().filter(|x| **x == code).count();
        let got = audit
            .iter()
            .filter(|e| {
                e.kind == "document_fetch_refused" && e.detail.contains(&format!("reason={code}"))
            })
            .count();
        assert_eq!(got, want, "audit entries refusing with {code}");
    }
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.kind == "document_fetched")
            .count(),
        2
    );
    assert_eq!(
        audit.iter().filter(|e| e.kind == "consent_granted").count(),
        3
    );
    assert_eq!(
        audit.iter().filter(|e| e.kind == "consent_revoked").count(),
        1
    );
    let tagged: Vec<_> = audit
        .iter()
        .filter(|e| e.kind == "document_fetched")
        .map(|e| e.wallet_tag.clone())
        .collect();
    assert!(
        tagged.iter().all(|t| t.len() == 32),
        "fetches carry the holder's wallet tag"
    );
    for e in &audit {
        assert!(
            !e.detail.contains(&w.id) && !e.wallet_tag.contains(&w.id),
            "wallet id in the audit log: {e:?}"
        );
        assert!(
            !e.detail.contains(&card.document_uri),
            "document URI in the audit log: {e:?}"
        );
    }
}
