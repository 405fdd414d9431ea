//! The document locker's owner ceremony on a real bank node: the owner's one touch covers the
//! holder key it binds. Ten junk `RegisterHolder` calls from a stranger lock nothing; a genuine
//! touch made for key K1, relayed with another key K2 (a man in the middle putting his own key
//! under the owner's touch), is refused and binds nothing; the owner's own registration of K1
//! then succeeds at once, with the same touch.

use dlocker_integration_tests::locker::LockerCluster;
use dlocker_integration_tests::touch::{self, Nonces};
use dlocker_locker::keys::PrincipalKey;
use dlocker_locker::request::{self, LockerAction, params};
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb;
use dlocker_proto::pb::document_service_client::DocumentServiceClient;
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, SoftwareAuthenticator, protocol::OwnerAuthenticator as _,
};
use tonic::Code;

fn register_request(
    locker_id: &str,
    holder: &str,
    key: &PrincipalKey,
    ch: &pb::OwnerChallenge,
    assertion_json: String,
) -> pb::RegisterHolderRequest {
    let pk = key.public_key();
    let p = params::register_holder(holder, &pk, &ch.challenge_id);
    pb::RegisterHolderRequest {
        request_encoded: request::sign(
            key.signing_key(),
            locker_id,
            LockerAction::RegisterHolder,
            holder,
            p,
        ),
        holder_id: holder.to_owned(),
        holder_key: encode_public_key(&pk).to_vec(),
        challenge_id: ch.challenge_id.clone(),
        assertion_json,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_registration_is_bound_to_its_key_and_strangers_lock_nothing() {
    let c = LockerCluster::start().await;
    let set = c.set();
    let holder = dlocker_integration_tests::craft::wallet_id("holder-touch");
    let prepared = PreparedBackup::new(
        &set,
        &holder,
        b"wallet secret",
        BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    let mut auth = SoftwareAuthenticator::new();
    dlocker_sdk::protocol::backup(&set, &prepared, "owner", &mut auth, &|_| {})
        .await
        .expect("backup");
    let bank = c.node(0);
    let locker_id = bank.node_id.clone();
    let mut client = DocumentServiceClient::new(bank.channel().await.expect("connect"));
    let begin = |client: &mut DocumentServiceClient<_>| {
        let holder = holder.clone();
        let mut client = client.clone();
        async move {
            client
                .begin_owner_challenge(pb::BeginOwnerChallengeRequest {
                    holder_id: holder,
                    purpose: "register".into(),
                })
                .await
                .expect("BeginOwnerChallenge")
                .into_inner()
        }
    };

    // Ten junk registrations from a stranger with its own key: each refused, none locks.
    let stranger = PrincipalKey::generate();
    for n in 0..10 {
        let ch = begin(&mut client).await;
        let junk = if n % 2 == 0 {
            "{}".to_owned()
        } else {
            r#"{"id":"AAAA","rawId":"AAAA","response":{"authenticatorData":"AAAA","clientDataJSON":"AAAA","signature":"AAAA"},"type":"public-key","extensions":{}}"#.to_owned()
        };
        let e = client
            .register_holder(register_request(&locker_id, &holder, &stranger, &ch, junk))
            .await
            .expect_err("junk registration");
        assert!(
            matches!(e.code(), Code::InvalidArgument | Code::Unauthenticated),
            "{e:?}"
        );
    }

    // The owner's genuine touch for K1, relayed by a man in the middle with his key K2.
    let k1 = PrincipalKey::generate();
    let k2 = PrincipalKey::generate();
    let ch = begin(&mut client).await;
    let mut nonces = Nonces::default();
    nonces.push(&ch.node_id, &ch.nonce);
    assert_eq!(ch.node_id, locker_id, "the locker names itself");
    let challenge = nonces.challenge(
        OwnerAction::HolderRegister,
        &holder,
        &encode_public_key(&k1.public_key()),
    );
    let cred = auth
        .authenticate(touch::request_options(&ch.request_options_json, &challenge))
        .expect("the owner's passkey signs");
    let assertion = serde_json::to_string(&cred).expect("json");
    let e = client
        .register_holder(register_request(
            &locker_id,
            &holder,
            &k2,
            &ch,
            assertion.clone(),
        ))
        .await
        .expect_err("a touch for K1 presented with K2");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("does not verify"), "{e:?}");

    // The owner, at once and with the same touch: K1 is bound (nothing was locked, and K2 was not
    // bound: a second key would be refused).
    let info = client
        .register_holder(register_request(&locker_id, &holder, &k1, &ch, assertion))
        .await
        .expect("the owner's registration")
        .into_inner();
    assert_eq!(
        info.holder_key,
        encode_public_key(&k1.public_key()).to_vec()
    );
}
