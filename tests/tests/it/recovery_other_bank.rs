//! An approval is the wallet's own bank's. Trustees here accept two banks' approval keys, each
//! bound to its bank (`BANK_NODE_ID=KEY`): bank A (node 0, the wallet's bank in its manifest)
//! and bank B. Bank B's key — claiming to be bank A or as itself — neither approves a release
//! nor cancels a session of A's wallet; each refusal has its own message and changes nothing,
//! and A's genuine approval then releases.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, craft_approval, session_key, set_config_value,
};
use dlocker_proto::keys::public_key_hex;
use dlocker_proto::pb::{CancelRecoveryRequest, cancel_recovery_request};
use dlocker_proto::statement::{BankCancellation, Signed};
use dlocker_proto::time::unix_now;
use k256::ecdsa::SigningKey;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_banks_key_neither_approves_nor_cancels() {
    let mut rc = RecoveryCluster::init(RecoverySpec::default());
    let bank_a = rc.node(0).node_id.clone();
    let bank_b = "b".repeat(32);
    let key_b = SigningKey::from(session_key());
    let bound = toml::Value::Array(vec![
        toml::Value::String(format!(
            "{bank_a}={}",
            public_key_hex(&rc.bank_approval_key)
        )),
        toml::Value::String(format!(
            "{bank_b}={}",
            public_key_hex(&k256::PublicKey::from(key_b.verifying_key()))
        )),
    ]);
    for i in 1..5 {
        set_config_value(
            rc.data_dir(i),
            "recovery",
            "bank_approval_keys",
            bound.clone(),
        );
    }
    rc.start_all().await;
    let (wallet, _p, mut auth) = rc.backup("two-banks", b"seed", 0).await;
    let i = 1; // trustee-2 accepts both banks
    let r = session_key().public_key();
    let s = rc.open_and_authenticate(i, &wallet, &r, &mut auth).await;
    let now = unix_now();
    async fn status(rc: &RecoveryCluster, i: usize, sid: &str) -> String {
        rc.session_status(i, sid).await.state
    }

    for (claimed, what) in [
        (&bank_a, "bank B's key claiming to be bank A"),
        (&bank_b, "bank B's key as itself"),
    ] {
        let approval = craft_approval(&key_b, claimed, &wallet, &r, now, now + 600);
        let e = rc
            .release(i, &s.session_id, &approval)
            .await
            .expect_err(what);
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
        assert!(
            e.message().contains("not from this wallet's bank"),
            "{what}: {e:?}"
        );
        let cancellation = Signed::sign(
            BankCancellation {
                bank_node_id: claimed.clone(),
                wallet_id: wallet.clone(),
                session_key: r,
                session_id: s.session_id.clone(),
                session_opened_at: now,
                staff_id: "mallory".into(),
                issued_at: now,
            },
            &key_b,
        )
        .encode();
        let e = rc
            .recovery(i)
            .await
            .cancel_recovery(CancelRecoveryRequest {
                session_id: s.session_id.clone(),
                authority: Some(cancel_recovery_request::Authority::BankCancellationEncoded(
                    cancellation,
                )),
                nonces: Vec::new(),
            })
            .await
            .expect_err(what);
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
        assert!(
            e.message().contains("not from this wallet's bank"),
            "{what}: {e:?}"
        );
        assert_eq!(
            status(&rc, i, &s.session_id).await,
            "owner_authenticated",
            "nothing changed"
        );
    }

    // Bank A's genuine approval releases.
    let approval = craft_approval(&rc.bank_signing_key(), &bank_a, &wallet, &r, now, now + 600);
    rc.release(i, &s.session_id, &approval)
        .await
        .expect("the wallet's own bank approves");
    assert_eq!(status(&rc, i, &s.session_id).await, "released");
}
