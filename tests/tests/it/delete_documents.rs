//! Delete with the document locker's documents, on real nodes (the bank hosting the locker and
//! one trustee): with `erase_documents` the owner's one touch also erases the wallet's holder at
//! the locker — its credentials revoked in the status lists the locker serves, its documents,
//! consents, drafts and tasks gone from the database — while a plain delete leaves them. The
//! choice is part of the touch: an assertion made for one choice, presented with the other, is
//! refused with its own message and nothing changes. `dlocker delete --erase-documents` asks
//! for it from the command line.

use dlocker_integration_tests::locker::{
    BANK_ISSUER, ID_CARD, LockerCluster, Wallet, id_card_claims, in_a_year,
};
use dlocker_integration_tests::recovery_cluster::Touch;
use dlocker_integration_tests::rotation::{audit_entries, trees_naming_wallet};
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::owner_challenge::{DELETE_WITH_DOCUMENTS, OwnerAction};
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_sdk::documents::vc::Upload;
use dlocker_sdk::documents::{CredentialStatus, IssuerClient, vc};
use dlocker_sdk::protocol::{delete_backup, delete_backup_with};
use dlocker_sdk::{DeleteOptions, SoftwareAuthenticator, TrusteeErasure};
use tonic::Code;

const BANK: usize = 0;

fn scan() -> Upload {
    Upload {
        name: "card.pdf".into(),
        media_type: "application/pdf".into(),
        data: b"%PDF-1.4 scanned card".to_vec(),
    }
}

fn status_of(jws: &str) -> dlocker_sdk::documents::status_list::StatusEntry {
    vc::parse(jws)
        .expect("parse")
        .1
        .status
        .expect("status entry")
}

/// What the test gave the holder: a hosted credential, an upload with an attestation task (and
/// its draft) at a push issuer, and a consent.
struct Linked {
    card_jws: String,
    /// The push issuer with the attestation task.
    uni: IssuerClient,
}

async fn link_documents(
    c: &LockerCluster,
    w: &dlocker_integration_tests::locker::Wallet,
) -> Linked {
    let hosted = c.hosted_issuer(BANK_ISSUER, &[ID_CARD]).await;
    let card = hosted
        .issue(&w.id, ID_CARD, &id_card_claims("Asha Rao"), in_a_year())
        .await
        .expect("issue");
    let uni = c.push_issuer("example.university", &[ID_CARD]).await;
    let upload = w.holder.upload(ID_CARD, &scan()).await.expect("upload");
    w.holder
        .request_attestation(&upload.document_uri, "example.university")
        .await
        .expect("request attestation");
    assert_eq!(uni.tasks().await.expect("tasks").len(), 1);
    c.requester("acme.employer", true).await;
    w.holder
        .grant_consent(
            "acme.employer",
            std::slice::from_ref(&card.document_uri),
            "job",
            in_a_year(),
        )
        .await
        .expect("grant");
    assert_eq!(w.holder.documents().await.expect("documents").len(), 2);
    Linked {
        card_jws: card.credential_jws,
        uni,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_documents_erases_the_holder_and_revokes_its_credentials() {
    let mut c = LockerCluster::start().await;
    let mut w = c.wallet("deldocs").await;
    let linked = link_documents(&c, &w).await;
    let locker = c.locker();
    let entry = status_of(&linked.card_jws);
    assert!(!locker.status_of(BANK_ISSUER, &entry).await.expect("status"));

    let before = w.auth.touches();
    let report = delete_backup_with(
        &c.set(),
        &w.id,
        &mut w.auth,
        DeleteOptions::erase_documents(),
    )
    .await
    .expect("delete with documents");
    assert_eq!(w.auth.touches(), before + 1, "still one touch");
    assert_eq!(report.documents_erased, 2, "the card and the upload");
    assert!(
        report
            .trustees
            .iter()
            .all(|(_, e)| matches!(e, TrusteeErasure::Erased(_))),
        "the trustee without a locker accepts the flag: {report:?}"
    );

    // The credential is revoked where copies are checked: the status list the locker serves.
    assert!(
        locker.status_of(BANK_ISSUER, &entry).await.expect("status"),
        "the holder's credential is revoked"
    );
    let r = locker.verify(&linked.card_jws).await.expect("verify");
    assert_eq!(r.status, CredentialStatus::Revoked);
    assert!(!r.ok);
    // The holder is unknown to the locker; its pending task is gone.
    let e = w.holder.documents().await.expect_err("holder erased");
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    assert_eq!(linked.uni.tasks().await.expect("tasks").len(), 0);

    // The bank's database, read with the node stopped: no tree names the wallet (the locker's
    // included), and the locker's audit entry names the holder by the wallet's keyed tag.
    c.stop_all();
    let bank = c.data_dir(BANK);
    assert_eq!(trees_naming_wallet(bank, &w.id), Vec::<String>::new());
    let erased = audit_entries(bank, "holder_erased");
    let deleted = audit_entries(bank, "wallet_deleted");
    assert_eq!(erased.len(), 1, "{erased:?}");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(erased[0].0, deleted[0].0, "the same keyed tag");
    assert!(!erased[0].1.contains(&w.id), "{erased:?}");
    assert!(
        erased[0].1.contains("documents=2") && erased[0].1.contains("consents=1"),
        "{erased:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_delete_keeps_the_holders_documents() {
    let mut c = LockerCluster::start().await;
    let mut w = c.wallet("delplain").await;
    let linked = link_documents(&c, &w).await;
    let locker = c.locker();
    let report = delete_backup(&c.set(), &w.id, &mut w.auth)
        .await
        .expect("plain delete");
    assert_eq!(report.documents_erased, 0);
    // As before: the locker keeps the holder, its documents verify.
    assert_eq!(w.holder.documents().await.expect("documents").len(), 2);
    let entry = status_of(&linked.card_jws);
    assert!(!locker.status_of(BANK_ISSUER, &entry).await.expect("status"));
    assert!(locker.verify(&linked.card_jws).await.expect("verify").ok);
    c.stop_all();
    let bank = c.data_dir(BANK);
    assert_eq!(trees_naming_wallet(bank, &w.id), vec!["locker".to_owned()]);
    assert!(audit_entries(bank, "holder_erased").is_empty());
}

/// A delete request for the bank alone over `begun`'s nonce: the touch covers `authorized`, the
/// request says `erase_documents`.
fn request(
    c: &LockerCluster,
    w: &mut dlocker_integration_tests::locker::Wallet,
    begun: &pb::BeginEpochActionResponse,
    authorized: &[u8],
    erase_documents: bool,
) -> pb::DeleteWalletRequest {
    let mut nonces = Nonces::default();
    nonces.push(&c.node(BANK).node_id, &begun.nonce);
    let touch = Touch::new(
        &mut w.auth,
        OwnerAction::Delete,
        &w.id,
        authorized,
        nonces,
        &begun.request_options_json,
    );
    pb::DeleteWalletRequest {
        wallet_id: w.id.clone(),
        owner: Some(pb::OwnerAssertion {
            challenge_id: begun.challenge_id.clone(),
            assertion_json: touch.assertion_json,
            nonces: touch.nonces.wire(),
        }),
        erase_documents,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_choice_cannot_be_added_or_stripped() {
    let c = LockerCluster::start().await;
    let mut w = c.wallet("delchoice").await;
    let linked = link_documents(&c, &w).await;
    let locker = c.locker();
    let entry = status_of(&linked.card_jws);
    let mut epochs = EpochsClient::new(c.node(BANK).channel().await.expect("connect"));
    let begun = epochs
        .begin_epoch_action(pb::BeginEpochActionRequest {
            wallet_id: w.id.clone(),
            action: pb::EpochAction::Delete as i32,
            manifest_hash: Vec::new(),
        })
        .await
        .expect("begin")
        .into_inner();
    let unchanged = async |w: &dlocker_integration_tests::locker::Wallet, what: &str| {
        assert_eq!(
            w.holder.documents().await.expect(what).len(),
            2,
            "{what}: documents kept"
        );
        assert!(
            !locker.status_of(BANK_ISSUER, &entry).await.expect("status"),
            "{what}: nothing revoked"
        );
    };

    // Added: the owner touched for a plain delete, the request asks to erase the documents.
    let plain = request(&c, &mut w, &begun, b"", true);
    let e = epochs.delete_wallet(plain).await.expect_err("added");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains(
            "the owner's touch is for a delete that keeps the document locker's documents"
        ),
        "{e:?}"
    );
    unchanged(&w, "after an added choice").await;

    // Stripped: the owner touched to erase the documents, the request asks for a plain delete.
    let with_docs = request(&c, &mut w, &begun, DELETE_WITH_DOCUMENTS, false);
    let e = epochs
        .delete_wallet(with_docs.clone())
        .await
        .expect_err("stripped");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message()
            .contains("the owner's touch is for a delete that also erases the document locker's"),
        "{e:?}"
    );
    unchanged(&w, "after a stripped choice").await;

    // The nonce was not spent and the wallet is whole: the touch with the request it was made
    // for goes through.
    let ok = epochs
        .delete_wallet(pb::DeleteWalletRequest {
            erase_documents: true,
            ..with_docs
        })
        .await
        .expect("the owner's own request")
        .into_inner();
    assert_eq!(ok.documents_erased, 2);
    assert!(locker.status_of(BANK_ISSUER, &entry).await.expect("status"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_erases_the_documents_when_asked() {
    let c = LockerCluster::start().await;
    // Exportable: the CLI reads the owner's passkey from a file.
    let auth = SoftwareAuthenticator::exportable().expect("software passkey");
    let Wallet { id, auth, holder } = c.wallet_with("delcli", auth).await;
    let hosted = c.hosted_issuer(BANK_ISSUER, &[ID_CARD]).await;
    let card = hosted
        .issue(&id, ID_CARD, &id_card_claims("Asha Rao"), in_a_year())
        .await
        .expect("issue");
    let passkey = c.root_dir().join("owner.passkey");
    std::fs::write(&passkey, auth.to_bytes().expect("exportable")).expect("save passkey");
    let trustees = c.write_trustees();
    let o = c.dlocker(&[
        "--json",
        "delete",
        "--trustees",
        trustees.to_str().expect("path"),
        "--wallet",
        &id,
        "--passkey",
        passkey.to_str().expect("path"),
        "--erase-documents",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(json["complete"], true, "{out}");
    assert_eq!(json["documents_erased"], 1, "{out}");
    let entry = status_of(&card.credential_jws);
    assert!(
        c.locker()
            .status_of(BANK_ISSUER, &entry)
            .await
            .expect("status")
    );
    let e = holder.documents().await.expect_err("holder erased");
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
}
