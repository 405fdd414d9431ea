//! The browser SDK's logic (`dlocker-web`, natively: everything but gRPC-Web and the JS glue) on
//! real nodes, with the passkey as the browser gives it: an async callback over WebAuthn JSON
//! whose answer arrives later. Backup 3-of-5 (one touch), the possession check, a recovery with
//! the bank's approval (one touch, the secret back, the page's events in order), and a recovery
//! cancelled by the owner (one touch) which stops `recover` with "recovery cancelled" and closes
//! the session at every trustee.

use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec};
use dlocker_proto::pb::GetRecoveryStatusRequest;
use dlocker_sdk::AuthError;
use dlocker_sdk::{Passkey, PasskeyFuture, SoftwareAuthenticator};
use dlocker_web::logic::{self, BackupOptions, Event, RecoverOptionsJs, RecoverSignal, Start};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// A passkey like the page's: JSON in, JSON out, answered after the task yields (as
/// `navigator.credentials` answers after the person touches it). Clones share the credential.
#[derive(Clone)]
struct JsonPasskey(Arc<Mutex<SoftwareAuthenticator>>);

impl JsonPasskey {
    fn touches(&self) -> u64 {
        self.0.lock().expect("lock").touches()
    }

    fn answer(&self, create: bool, options_json: String) -> PasskeyFuture<'_> {
        let auth = self.0.clone();
        Box::pin(async move {
            tokio::task::yield_now().await;
            let mut a = auth
                .lock()
                .map_err(|_| AuthError::Authenticator("poisoned".into()))?;
            // The software authenticator behind the JSON seam (its blanket `Passkey` impl).
            let fut = if create {
                Passkey::create(&mut *a, options_json)
            } else {
                Passkey::get(&mut *a, options_json)
            };
            futures::executor::block_on(fut)
        })
    }
}

impl Passkey for JsonPasskey {
    fn create(&mut self, options_json: String) -> PasskeyFuture<'_> {
        self.answer(true, options_json)
    }
    fn get(&mut self, options_json: String) -> PasskeyFuture<'_> {
        self.answer(false, options_json)
    }
}

fn kind(e: &Event) -> String {
    serde_json::to_value(e).expect("event")["type"]
        .as_str()
        .expect("type")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_logic_backs_up_verifies_recovers_and_cancels_on_real_nodes() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let set = logic::trustees(&rc.trustees().to_toml()).expect("trustees file");
    let passkey = JsonPasskey(Arc::new(Mutex::new(SoftwareAuthenticator::new())));
    let wallet = dlocker_integration_tests::craft::wallet_id("web");

    // Backup: one touch, a verified receipt from each of the 5 trustees.
    let mut events = Vec::new();
    let opts = BackupOptions {
        threshold: 3,
        recovery_delay_secs: 0,
        user_name: "alice".into(),
    };
    let backup = logic::backup(
        &set,
        &wallet,
        Zeroizing::new(b"seed words".to_vec()),
        &opts,
        &mut passkey.clone(),
        |e| events.push(kind(&e)),
    )
    .await
    .expect("backup");
    assert_eq!(passkey.touches(), 1, "one touch for the backup");
    assert_eq!(backup.receipts.len(), 5);
    assert_eq!(backup.wallet_id, wallet);
    assert_eq!(
        events.iter().filter(|e| *e == "passkeyRequested").count(),
        1
    );
    assert_eq!(events.iter().filter(|e| *e == "trusteeDone").count(), 5);

    // Possession check on the manifest string the page keeps.
    let mut checked = 0;
    let health = logic::verify(&set, &backup.manifest, |_| checked += 1)
        .await
        .expect("verify");
    assert_eq!(checked, 5);
    assert!(
        health.iter().all(|h| h.healthy && h.detail.is_empty()),
        "{health:?}"
    );

    // Recovery: staff approve the bank session the events name; one more touch.
    let staff = rc.staff_client(0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let mut kinds = Vec::new();
    let mut pk = passkey.clone();
    let recovering = logic::recover(
        &set,
        Start::New {
            wallet_id: &wallet,
            state_key: None,
        },
        &RecoverOptionsJs {
            poll_interval_ms: Some(200),
            approval_timeout_secs: Some(120),
        },
        &mut pk,
        stopped,
        |s| {
            if let RecoverSignal::Event(e) = s {
                if let Event::AwaitingApproval { bank_session_id } = &e {
                    let _ = tx.send(bank_session_id.clone());
                }
                kinds.push(kind(&e));
            }
        },
    );
    let approving = async {
        let sid = rx.recv().await.expect("awaitingApproval event");
        staff.approve(&sid).await.expect("staff approve");
    };
    let (recovered, ()) = tokio::join!(recovering, approving);
    let recovered = recovered.expect("recovery");
    assert_eq!(recovered.secret.as_slice(), b"seed words");
    assert_eq!(recovered.summary.wallet_id, wallet);
    assert_eq!(recovered.summary.manifest_hash, backup.manifest_hash);
    assert!(recovered.summary.used.len() >= 3);
    assert_eq!(passkey.touches(), 2, "one touch for the recovery");
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|e| e == k)
            .unwrap_or_else(|| panic!("no {k} event in {kinds:?}"))
    };
    assert!(pos("sessionsOpened") < pos("passkeyRequested"));
    assert!(pos("passkeyRequested") < pos("ownerAuthenticated"));
    assert!(pos("ownerAuthenticated") < pos("awaitingApproval"));
    assert!(pos("awaitingApproval") < pos("approved"));
    assert!(pos("approved") < pos("shareVerified"));
    assert_eq!(kinds.last().map(String::as_str), Some("released"));

    // A recovery the owner cancels while it waits for the bank: one touch closes every session
    // and stops `recover`.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (htx, mut hrx) = tokio::sync::mpsc::unbounded_channel();
    let handle_seen = Mutex::new(None::<dlocker_sdk::RecoveryHandle>);
    let mut pk2 = passkey.clone();
    let recovering = logic::recover(
        &set,
        Start::New {
            wallet_id: &wallet,
            state_key: None,
        },
        &RecoverOptionsJs {
            poll_interval_ms: Some(200),
            approval_timeout_secs: Some(120),
        },
        &mut pk2,
        stopped,
        |s| {
            if let RecoverSignal::Handle(h) = s {
                let _ = htx.send(h);
            }
        },
    );
    let cancelling = async {
        let handle = hrx.recv().await.expect("sessions opened");
        *handle_seen.lock().expect("lock") = Some(handle.clone());
        let out = logic::cancel(&set, &handle, &mut passkey.clone())
            .await
            .expect("cancel");
        // `recover` may already have stopped on the bank's "cancelled" answer.
        let _ = stop.send(true);
        out
    };
    let (res, outcomes) = tokio::join!(recovering, cancelling);
    assert_eq!(
        res.expect_err("cancelled").to_string(),
        "recovery cancelled"
    );
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.cancelled && o.error.is_empty()),
        "{outcomes:?}"
    );
    // Cancel is its own touch; the cancelled recovery may or may not have reached its own.
    let t = passkey.touches();
    assert!((3..=4).contains(&t), "touches: {t}");

    // Cancelled means cancelled: every trustee reports the session cancelled (by the owner).
    let handle = handle_seen.lock().expect("lock").clone().expect("handle");
    for (i, sess) in handle.sessions.iter().enumerate() {
        let st = rc
            .recovery(i)
            .await
            .get_recovery_status(GetRecoveryStatusRequest {
                session_id: sess.session_id.clone(),
            })
            .await
            .expect("status")
            .into_inner();
        assert_eq!(st.state, "cancelled", "{}", sess.name);
    }
}

/// The page's documents, natively: the wallet linked to the bank's locker (one touch), an ID
/// card issued to it and listed verified; after a recovery the card is re-issued to the new
/// device's key with the recovery's own bank approval (one touch, no second approval), the old
/// credential revoked and the old key refused. A device key presented for another wallet is
/// refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_logic_moves_documents_to_the_recovered_device() {
    use dlocker_integration_tests::locker::{
        BANK_ISSUER, ID_CARD, hosted_issuer, id_card_claims, in_a_year,
    };
    use dlocker_sdk::StaffKey;
    use dlocker_sdk::documents::{CredentialStatus, LockerClient, OperatorClient};

    let rc = RecoveryCluster::start(RecoverySpec {
        staff: vec![("olivia".into(), "approver,canceller,operator".into())],
        ..RecoverySpec::default()
    })
    .await;
    let set = logic::trustees(&rc.trustees().to_toml()).expect("trustees file");
    let passkey = JsonPasskey(Arc::new(Mutex::new(SoftwareAuthenticator::new())));
    let wallet = dlocker_integration_tests::craft::wallet_id("webdocs");
    let opts = BackupOptions {
        threshold: 3,
        recovery_delay_secs: 0,
        user_name: "alice".into(),
    };
    logic::backup(
        &set,
        &wallet,
        Zeroizing::new(b"seed words".to_vec()),
        &opts,
        &mut passkey.clone(),
        |_| {},
    )
    .await
    .expect("backup");

    // Link: one touch; nothing issued yet.
    let linked = logic::link_documents(&set, &wallet, &mut passkey.clone())
        .await
        .expect("link documents");
    assert_eq!(passkey.touches(), 2, "one touch to link");
    assert!(
        !format!("{linked:?}").contains(&linked.wallet_key),
        "Debug redacts the key"
    );
    let old_key = logic::wallet_key(&linked.wallet_key).expect("wallet key");
    assert!(
        logic::list_documents(&set, &wallet, &old_key)
            .await
            .expect("list")
            .is_empty()
    );

    // The bank issues an ID card to the wallet; the page lists it, verified, bound to the key.
    let locker = LockerClient::new(set.bank());
    let operator_key = StaffKey::from_hex(&rc.staff[0].key.to_hex()).expect("staff key");
    let operator = OperatorClient::new(operator_key, locker.clone());
    let issuer = hosted_issuer(&locker, &operator, BANK_ISSUER, &[ID_CARD]).await;
    let card = issuer
        .issue(&wallet, ID_CARD, &id_card_claims("Asha Rao"), in_a_year())
        .await
        .expect("issue");
    let docs = logic::list_documents(&set, &wallet, &old_key)
        .await
        .expect("list");
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert!(docs[0].verified, "{docs:?}");
    assert_eq!(docs[0].status, "valid");
    assert_eq!(docs[0].bound_to, linked.public_key);
    assert_eq!(
        docs[0].claims.get("name").map(String::as_str),
        Some("Asha Rao")
    );

    // Recovery on the new device (one touch, staff approve once).
    let staff = rc.staff_client(0);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let mut pk = passkey.clone();
    let recovering = logic::recover(
        &set,
        Start::New {
            wallet_id: &wallet,
            state_key: None,
        },
        &RecoverOptionsJs {
            poll_interval_ms: Some(200),
            approval_timeout_secs: Some(120),
        },
        &mut pk,
        stopped,
        |s| {
            if let RecoverSignal::Event(Event::AwaitingApproval { bank_session_id }) = s {
                let _ = tx.send(bank_session_id);
            }
        },
    );
    let approving = async {
        let sid = rx.recv().await.expect("awaitingApproval event");
        staff.approve(&sid).await.expect("staff approve");
    };
    let (recovered, ()) = tokio::join!(recovering, approving);
    let recovered = recovered.expect("recovery");
    assert_eq!(passkey.touches(), 3);
    assert!(!format!("{recovered:?}").contains("seed words"));

    // The device key presented for another wallet: refused, and the card stays where it was.
    let other = dlocker_integration_tests::craft::wallet_id("webdocs-other");
    let err = logic::reissue_documents(&set, &other, &recovered.device, &mut passkey.clone())
        .await
        .expect_err("an approval for another wallet");
    assert!(err.0.contains("re-issuing the documents"), "{err}");
    let still = logic::list_documents(&set, &wallet, &old_key)
        .await
        .expect("list");
    assert_eq!(still, docs, "a refused re-issue changes nothing");

    // The re-issue: one touch, no second bank approval.
    let touches = passkey.touches();
    let moved = logic::reissue_documents(&set, &wallet, &recovered.device, &mut passkey.clone())
        .await
        .expect("re-issue to the new device");
    assert_eq!(
        passkey.touches() - touches,
        1,
        "one touch to move the documents"
    );
    assert_eq!(moved.revoked, 1, "{moved:?}");
    assert_eq!(moved.reissued.len(), 1, "{moved:?}");
    let new_pub = dlocker_sdk::proto::keys::public_key_hex(&recovered.device.public_key());
    assert_eq!(moved.key.public_key, new_pub);
    assert_eq!(moved.reissued[0].bound_to, new_pub);
    assert!(moved.reissued[0].verified, "{moved:?}");
    assert_ne!(moved.reissued[0].credential_id, docs[0].credential_id);

    // The new key lists the card; the lost device's key is refused; its credential is revoked.
    let new_key = logic::wallet_key(&moved.key.wallet_key).expect("new key");
    let now = logic::list_documents(&set, &wallet, &new_key)
        .await
        .expect("list");
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].bound_to, new_pub);
    let refused = logic::list_documents(&set, &wallet, &old_key)
        .await
        .expect_err("the lost device's key");
    assert!(refused.0.starts_with("listing documents"), "{refused}");
    let old = locker
        .verify(&card.credential_jws)
        .await
        .expect("verify old");
    assert_eq!(old.status, CredentialStatus::Revoked);
}
