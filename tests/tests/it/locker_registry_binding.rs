//! Issuer and requester ids are bound to keys on a real locker node: a taken id cannot be
//! registered again with another key, an operator's approval names the key fingerprint (so a
//! squatter's registration is not approved by mistake), and registrations are rate-limited per
//! caller. Every refusal has its own code and leaves the registry and the audit log unchanged.

use dlocker_integration_tests::locker::{BANK_ISSUER, ID_CARD, LockerCluster};
use dlocker_proto::statement::StaffAction;
use dlocker_sdk::documents::{
    IssuerClient, PrincipalKey, RefusalCode, RequesterClient, RequesterEntry, ids,
};
use tonic::Code;

async fn requesters(c: &LockerCluster) -> Vec<RequesterEntry> {
    c.operator().list().await.expect("list").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_id_is_refused_and_stays_bound_to_its_first_key() {
    let c = LockerCluster::start().await;
    let owner_key = PrincipalKey::generate();
    let owner_fp = ids::key_fingerprint(&owner_key.public_key());
    RequesterClient::new(c.locker(), "acme.employer", owner_key)
        .register("Acme Employer")
        .await
        .expect("first registration");
    let before = (requesters(&c).await, c.audit().await.len());

    // Same id, same name, the attacker's key.
    let attacker = RequesterClient::new(c.locker(), "acme.employer", PrincipalKey::generate());
    let e = attacker
        .register("Acme Employer")
        .await
        .expect_err("taken id");
    assert_eq!(e.refusal(), Some(RefusalCode::IdTaken), "{e}");
    assert_eq!(e.code(), Some(Code::AlreadyExists), "{e}");
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    let after = (requesters(&c).await, c.audit().await.len());
    assert_eq!(after, before, "registry and audit log unchanged");
    assert_eq!(after.0[0].key_fingerprint, owner_fp, "still the first key");

    // The same for an issuer id.
    let issuer = c.hosted_issuer(BANK_ISSUER, &[ID_CARD]).await;
    drop(issuer);
    let audit = c.audit().await.len();
    let e = IssuerClient::new(c.locker(), BANK_ISSUER, PrincipalKey::generate())
        .register("Example Bank KYC", &[ID_CARD.to_owned()], true, "")
        .await
        .expect_err("taken issuer id");
    assert_eq!(e.refusal(), Some(RefusalCode::IdTaken), "{e}");
    assert_eq!(c.audit().await.len(), audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_names_the_key_so_a_squatter_is_not_approved() {
    let c = LockerCluster::start().await;
    // The squatter registers the employer's id first.
    let squatter_key = PrincipalKey::generate();
    let squatter_fp = ids::key_fingerprint(&squatter_key.public_key());
    let squatter = RequesterClient::new(c.locker(), "acme.employer", squatter_key);
    squatter.register("Acme Employer").await.expect("register");
    // The operator checked the real employer's key out of band and approves that one.
    let real_fp = ids::key_fingerprint(&PrincipalKey::generate().public_key());
    let before = (requesters(&c).await, c.audit().await.len());
    let e = c
        .operator()
        .approve(StaffAction::ApproveRequester, "acme.employer", &real_fp)
        .await
        .expect_err("wrong key");
    assert_eq!(e.refusal(), Some(RefusalCode::FingerprintMismatch), "{e}");
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert!(
        e.to_string().contains(&squatter_fp),
        "names the registered key: {e}"
    );
    // An approval without a fingerprint is not accepted either.
    let e = c
        .operator()
        .decide(StaffAction::ApproveRequester, "acme.employer")
        .await
        .expect_err("bare id");
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    let after = (requesters(&c).await, c.audit().await.len());
    assert_eq!(after, before, "still pending, nothing audited");
    assert_eq!(after.0[0].state, "pending");

    // Approving the key actually registered works (the operator's informed choice).
    let d = c
        .operator()
        .approve(StaffAction::ApproveRequester, "acme.employer", &squatter_fp)
        .await
        .expect("approve the registered key");
    assert_eq!(
        (d.id.as_str(), d.state.as_str()),
        ("acme.employer", "approved")
    );
    let audit = c.audit().await;
    let last = audit.last().expect("entry");
    assert!(
        last.detail.contains(&format!("key={squatter_fp}")),
        "{}",
        last.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_rate_limited_per_caller() {
    use dlocker_locker::server::limits::{REGISTRATION_WINDOW_SECS, REGISTRATIONS_PER_WINDOW};
    let c = LockerCluster::start().await;
    // The cluster harness registered nothing yet; every attempt below comes from 127.0.0.1.
    for i in 0..REGISTRATIONS_PER_WINDOW {
        RequesterClient::new(
            c.locker(),
            &format!("bulk{i}.example"),
            PrincipalKey::generate(),
        )
        .register("Bulk")
        .await
        .expect("within the limit");
    }
    let before = (requesters(&c).await, c.audit().await.len());
    let e = RequesterClient::new(c.locker(), "one.too.many", PrincipalKey::generate())
        .register("Bulk")
        .await
        .expect_err("over the limit");
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    assert_eq!(e.refusal(), Some(RefusalCode::TooManyRegistrations), "{e}");
    let msg = e.to_string();
    let retry: u64 = msg
        .split("retry in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a retry hint: {msg}"));
    assert!((1..=REGISTRATION_WINDOW_SECS).contains(&retry), "{msg}");
    let e = IssuerClient::new(c.locker(), "late.issuer", PrincipalKey::generate())
        .register("Late", &[ID_CARD.to_owned()], true, "")
        .await
        .expect_err("issuers count too");
    assert_eq!(e.refusal(), Some(RefusalCode::TooManyRegistrations), "{e}");
    assert_eq!(
        (requesters(&c).await, c.audit().await.len()),
        before,
        "nothing registered, nothing audited"
    );
}
