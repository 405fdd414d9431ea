//! Verifying credentials on a real locker: one flipped byte anywhere fails; a credential of a
//! suspended issuer is reported as such (SDK, `dlocker docs verify`, and a refused fetch).

use dlocker_integration_tests::locker::{
    BANK_ISSUER, ID_CARD, LockerCluster, id_card_claims, in_a_year,
};
use dlocker_proto::statement::StaffAction;
use dlocker_sdk::documents::ids::key_fingerprint;
use dlocker_sdk::documents::{CredentialStatus, PrincipalKey, RefusalCode, RequesterClient};
use tonic::Code;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_fail_and_a_suspended_issuer_is_reported() {
    let c = LockerCluster::start().await;
    let w = c.wallet("verify").await;
    let issuer = c.hosted_issuer(BANK_ISSUER, &[ID_CARD]).await;
    let card = issuer
        .issue(
            &w.id,
            ID_CARD,
            &id_card_claims("Ravi Kulkarni"),
            in_a_year(),
        )
        .await
        .expect("issue");
    let locker = c.locker();
    let r = locker.verify(&card.credential_jws).await.expect("verify");
    assert!(r.ok, "{:?}", r.problems);
    assert!(r.signature_valid && r.in_validity_period);
    assert_eq!(r.status, CredentialStatus::Valid);
    assert_eq!(
        (
            r.issuer_id.as_str(),
            r.issuer_state.as_str(),
            r.holder_id.as_str()
        ),
        (BANK_ISSUER, "approved", w.id.as_str())
    );

    // One flipped byte anywhere: never a valid credential (a sample of positions over the whole
    // JWS, every part; the unit tests flip every byte).
    let jws = card.credential_jws.clone();
    let mut positions: Vec<usize> = (0..jws.len()).step_by(41).collect();
    positions.extend([
        jws.len() - 1,
        jws.find('.').expect("dot") + 1,
        jws.rfind('.').expect("dot") + 1,
    ]);
    for i in positions {
        let mut b = jws.clone().into_bytes();
        b[i] ^= 1;
        let Ok(t) = String::from_utf8(b) else {
            continue;
        };
        let r = locker.verify(&t).await.expect("verify runs");
        assert!(!r.ok, "flipping byte {i} still verified");
    }

    // The CLI prints issuer, holder, status and validity; a flipped file exits 1.
    let trustees = c.write_trustees();
    let t = trustees.to_str().expect("path");
    let good = c.root_dir().join("card.jwt");
    std::fs::write(&good, format!("{jws}\n")).expect("write");
    let out = c.dlocker(&[
        "docs",
        "verify",
        good.to_str().expect("path"),
        "--trustees",
        t,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for want in [
        "issuer",
        BANK_ISSUER,
        "approved",
        "holder",
        &w.id,
        "status",
        "valid (not revoked",
        "validity",
        "VALID",
    ] {
        assert!(
            stdout.contains(want),
            "`docs verify` output lacks {want:?}:\n{stdout}"
        );
    }
    let mut flipped = jws.clone().into_bytes();
    let mid = jws.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let bad = c.root_dir().join("flipped.jwt");
    std::fs::write(&bad, &flipped).expect("write");
    let out = c.dlocker(&[
        "docs",
        "verify",
        bad.to_str().expect("path"),
        "--trustees",
        t,
    ]);
    assert!(
        !out.status.success(),
        "a flipped credential verified:\n{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).starts_with("error: "),
        "{}",
        text(&out.stderr)
    );

    // A consent, then the operator suspends the issuer (through the CLI).
    let acme = c.requester("acme.employer", true).await;
    let consent = w
        .holder
        .grant_consent(
            "acme.employer",
            std::slice::from_ref(&card.document_uri),
            "kyc",
            in_a_year(),
        )
        .await
        .expect("grant");
    acme.fetch(&card.document_uri, &consent.consent_id)
        .await
        .expect("fetch while approved");
    let key = c.staff_key_file.to_str().expect("path").to_owned();
    let out = c.dlocker(&[
        "issuers",
        "suspend",
        BANK_ISSUER,
        "--trustees",
        t,
        "--key",
        &key,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("SUSPENDED"),
        "{}",
        text(&out.stdout)
    );
    let out = c.dlocker(&["issuers", "list", "--trustees", t, "--key", &key]);
    assert!(
        out.status.success() && text(&out.stdout).contains("suspended"),
        "{}",
        text(&out.stdout)
    );

    // Reported as such: the SDK, the CLI, and the gateway.
    let r = locker.verify(&jws).await.expect("verify");
    assert!(!r.ok);
    assert!(r.signature_valid, "the signature itself still checks");
    assert_eq!(r.issuer_state, "suspended");
    assert!(
        r.problems.iter().any(|p| p.contains("suspended")),
        "{:?}",
        r.problems
    );
    let out = c.dlocker(&[
        "docs",
        "verify",
        good.to_str().expect("path"),
        "--trustees",
        t,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("suspended"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("suspended"),
        "{}",
        text(&out.stderr)
    );
    let e = acme
        .fetch_raw(&card.document_uri, &consent.consent_id)
        .await
        .expect_err("suspended issuer");
    assert_eq!(e.refusal(), Some(RefusalCode::IssuerSuspended), "{e}");
    // A suspended issuer issues nothing.
    let e = issuer
        .issue(&w.id, ID_CARD, &id_card_claims("Ravi Kulkarni"), 0)
        .await
        .expect_err("suspended");
    assert_eq!(e.code(), Some(Code::PermissionDenied), "{e}");

    // Approved again: everything checks again.
    let (issuers, _) = c.operator().list().await.expect("list");
    let fp = issuers
        .iter()
        .find(|i| i.issuer_id == BANK_ISSUER)
        .map(|i| i.key_fingerprint.clone())
        .expect("listed");
    c.operator()
        .approve(StaffAction::ApproveIssuer, BANK_ISSUER, &fp)
        .await
        .expect("approve");
    assert!(locker.verify(&jws).await.expect("verify").ok);
    acme.fetch(&card.document_uri, &consent.consent_id)
        .await
        .expect("fetch after re-approval");
    // Only an operator decides: a staff key without the role is refused.
    let audit = c.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e.kind == "issuer_suspended" && e.detail.contains("by=olivia"))
    );
    assert!(audit.iter().any(
        |e| e.kind == "document_fetch_refused" && e.detail.contains("reason=issuer_suspended")
    ));

    // A key fingerprint is base64url: 1 key in 64 has one that begins with `-`, which the CLI
    // once read as an option (exit 2, "unexpected argument"). Approve such a key through it.
    let (dash_key, fp) = loop {
        let k = PrincipalKey::generate();
        let fp = key_fingerprint(&k.public_key());
        if fp.starts_with('-') {
            break (k, fp);
        }
    };
    RequesterClient::new(c.locker(), "dash.employer", dash_key)
        .register("Dash Employer")
        .await
        .expect("register");
    let out = c.dlocker(&[
        "requesters",
        "approve",
        "dash.employer",
        "--fingerprint",
        &fp,
        "--trustees",
        t,
        "--key",
        &key,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, requesters) = c.operator().list().await.expect("list");
    let dash = requesters
        .iter()
        .find(|r| r.requester_id == "dash.employer")
        .expect("listed");
    assert_eq!(
        (dash.state.as_str(), dash.key_fingerprint.as_str()),
        ("approved", fp.as_str())
    );
}
