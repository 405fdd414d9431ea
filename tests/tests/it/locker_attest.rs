//! Self-attested uploads and attestation by the original issuer, on a real locker: an upload is
//! signed by the wallet key and bounded; a hosted issuer's grant becomes a credential the locker
//! signs, an own-key issuer's grant one it signs itself; a rejection issues nothing.

use dlocker_integration_tests::locker::{BANK_ISSUER, ID_CARD, LockerCluster};
use dlocker_sdk::documents::vc::{Claims, Upload};
use tonic::Code;

fn scan(name: &str) -> Upload {
    Upload {
        name: name.into(),
        media_type: "application/pdf".into(),
        data: b"%PDF-1.4 scanned card".to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_attestations() {
    let c = LockerCluster::start().await;
    let w = c.wallet("attest").await;
    let locker = c.locker();
    let bank = c.hosted_issuer(BANK_ISSUER, &[ID_CARD]).await;
    let uni = c.push_issuer("example.university", &["DEGRE"]).await;

    // Uploads: signed by the wallet key, listed without their content, bounded.
    let card_scan = w
        .holder
        .upload(ID_CARD, &scan("card.pdf"))
        .await
        .expect("upload");
    assert!(card_scan.document_uri.starts_with("self-IDCRD-"));
    assert_eq!(card_scan.source, "self");
    let listed = w.holder.documents().await.expect("list");
    assert!(
        listed.iter().all(|d| d.credential_jws.is_empty()),
        "uploads are listed without content"
    );
    let full = w
        .holder
        .document(&card_scan.document_uri)
        .await
        .expect("one document");
    let r = locker.verify(&full.credential_jws).await.expect("verify");
    assert!(r.ok && r.issuer_id == "self", "{:?}", r.problems);
    let too_big = Upload {
        data: vec![0; 65 * 1024],
        ..scan("big.pdf")
    };
    let e = w
        .holder
        .upload(ID_CARD, &too_big)
        .await
        .expect_err("too big");
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    let exe = Upload {
        media_type: "application/x-msdownload".into(),
        ..scan("x.exe")
    };
    let e = w
        .holder
        .upload(ID_CARD, &exe)
        .await
        .expect_err("media type");
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");

    // The hosted issuer attests the card: the locker signs its claims.
    let task = w
        .holder
        .request_attestation(&card_scan.document_uri, BANK_ISSUER)
        .await
        .expect("request");
    assert_eq!(
        (task.kind.as_str(), task.state.as_str()),
        ("attestation", "pending")
    );
    let tasks = bank.tasks().await.expect("tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks[0].upload_jws, full.credential_jws,
        "the issuer sees the upload"
    );
    let claims = Claims::from_pairs([("name", "Asha Rao"), ("documentNumber", "IDN-4471-2209")])
        .expect("claims");
    let out = bank
        .decide_attestation(&tasks[0], true, &claims, true, "")
        .await
        .expect("grant");
    let doc = out.document.expect("an issued credential");
    assert_eq!(doc.source, "attested");
    assert!(doc.document_uri.starts_with("example.bank-IDCRD-"));
    let r = locker.verify(&doc.credential_jws).await.expect("verify");
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(r.holder_key, w.holder.key().public_key_hex());
    assert_eq!(
        r.claims.get("documentNumber").map(String::as_str),
        Some("IDN-4471-2209")
    );
    assert!(bank.tasks().await.expect("tasks").is_empty());

    // An own-key issuer attests a degree by signing the task's draft itself; another is rejected.
    let degree_scan = w
        .holder
        .upload("DEGRE", &scan("degree.pdf"))
        .await
        .expect("upload");
    let other_scan = w
        .holder
        .upload("DEGRE", &scan("forged.pdf"))
        .await
        .expect("upload");
    w.holder
        .request_attestation(&degree_scan.document_uri, "example.university")
        .await
        .expect("request");
    w.holder
        .request_attestation(&other_scan.document_uri, "example.university")
        .await
        .expect("request");
    let e = w
        .holder
        .request_attestation(&degree_scan.document_uri, BANK_ISSUER)
        .await
        .expect_err("wrong issuer");
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    let tasks = uni.tasks().await.expect("tasks");
    assert_eq!(tasks.len(), 2);
    let (grant, reject) = if tasks[0].upload_uri == degree_scan.document_uri {
        (&tasks[0], &tasks[1])
    } else {
        (&tasks[1], &tasks[0])
    };
    let claims = Claims::from_pairs([("degree", "B.Tech"), ("year", "2012")]).expect("claims");
    let out = uni
        .decide_attestation(grant, true, &claims, false, "")
        .await
        .expect("grant");
    let doc = out.document.expect("document");
    assert!(locker.verify(&doc.credential_jws).await.expect("verify").ok);
    let out = uni
        .decide_attestation(
            reject,
            false,
            &Claims::default(),
            false,
            "not in our records",
        )
        .await
        .expect("reject");
    assert!(out.document.is_none());
    assert_eq!(out.task.expect("task").state, "rejected");
    assert!(uni.tasks().await.expect("tasks").is_empty());

    let docs = w.holder.documents().await.expect("list");
    assert_eq!(docs.iter().filter(|d| d.source == "attested").count(), 2);
    assert_eq!(docs.iter().filter(|d| d.source == "self").count(), 3);
    let audit = c.audit().await;
    let count = |k: &str| audit.iter().filter(|e| e.kind == k).count();
    assert_eq!(
        (
            count("attestation_requested"),
            count("attestation_granted"),
            count("attestation_rejected")
        ),
        (3, 2, 1)
    );
    assert_eq!(count("document_uploaded"), 3);
}
