//! Every refusal a node answers with carries its code in the `dlocker-refusal` status metadata,
//! beside the gRPC code and the message (unchanged), on real nodes: an unknown wallet, a
//! malformed wallet id, an unknown session, a release before the passkey, approvals for another
//! wallet or expired or unreadable, the delay still running, the bank still awaiting its staff, a
//! stranger's staff key, a caller over its ceremony budget, and a release from a cancelled
//! session. Refusals change nothing: the session is still where the owner left it.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, craft_approval, session_key,
};
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::pb;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use dlocker_proto::refusal::{METADATA_KEY, NodeRefusal};
use dlocker_proto::time::unix_now;
use dlocker_sdk::staff::StaffError;
use dlocker_sdk::{StaffClient, StaffKey};
use std::net::IpAddr;
use tonic::transport::Endpoint;

const BUDGET: i64 = 12;
const NODE: usize = 1;

/// The refusal `res` must be: its gRPC code, and its code in the metadata.
fn refused<T: std::fmt::Debug>(
    res: Result<T, tonic::Status>,
    want: NodeRefusal,
    what: &str,
) -> tonic::Status {
    let s = match res {
        Ok(v) => panic!("{what}: accepted ({v:?})"),
        Err(s) => s,
    };
    assert_eq!(s.code(), want.grpc_code(), "{what}: {s:?}");
    assert_eq!(
        s.metadata().get(METADATA_KEY).and_then(|v| v.to_str().ok()),
        Some(want.as_str()),
        "{what}: {s:?}"
    );
    assert_eq!(NodeRefusal::of_status(&s), Some(want), "{what}");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_refusals_carry_their_code_in_the_status_metadata() {
    let spec = RecoverySpec {
        nodes: 3,
        config: vec![(
            "limits".into(),
            "owner_calls_per_minute".into(),
            toml::Value::Integer(BUDGET),
        )],
        ..RecoverySpec::default()
    };
    let rc = RecoveryCluster::start(spec).await;
    let (wallet, _prepared, mut auth) = rc.backup("codes", b"seed", 3600).await;
    let mut trustee = TrusteeClient::new(rc.chan(NODE).await);

    // Wallets: unknown, and an id no node accepts.
    let status = |wallet_id: &str| {
        let mut c = trustee.clone();
        let wallet_id = wallet_id.to_owned();
        async move {
            c.get_backup_status(pb::GetBackupStatusRequest { wallet_id })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let s = refused(
        status("nobody-holds-this").await,
        NodeRefusal::WalletNotFound,
        "GetBackupStatus of an unknown wallet",
    );
    assert_eq!(s.message(), "this node holds no backup for this wallet");
    refused(
        status("not a wallet id").await,
        NodeRefusal::InvalidRequest,
        "GetBackupStatus of a malformed id",
    );
    let r = session_key();
    let r_pub = r.public_key();
    refused(
        rc.open(NODE, "nobody-holds-this", &r_pub).await,
        NodeRefusal::WalletNotFound,
        "OpenRecovery of an unknown wallet",
    );

    // Sessions: unknown, then a real one asked to release before the owner's passkey.
    refused(
        rc.release(NODE, "abcdef0123", &[]).await,
        NodeRefusal::SessionNotFound,
        "ReleaseShare of an unknown session",
    );
    let opened = rc.open(NODE, &wallet, &r_pub).await.expect("OpenRecovery");
    let sid = opened.session_id.clone();
    let now = unix_now();
    let (bank_key, bank_id) = (rc.bank_signing_key(), rc.bank_node_id());
    let genuine_shape = craft_approval(&bank_key, &bank_id, &wallet, &r_pub, now, now + 600);
    refused(
        rc.release(NODE, &sid, &genuine_shape).await,
        NodeRefusal::OwnerNotAuthenticated,
        "ReleaseShare before the passkey",
    );
    let touch = rc.recovery_touch(NODE, &wallet, &r_pub, &opened, &mut auth);
    rc.authenticate(NODE, &sid, &touch)
        .await
        .expect("AuthenticateOwner");

    // The bank has not approved yet: GetApproval says so with its own code (the SDK polls on
    // it), and a stranger's staff key is refused as unknown.
    let mut bank_staff = rc.raw_staff(0).await;
    let bank_opened = rc
        .open(0, &wallet, &r_pub)
        .await
        .expect("OpenRecovery at the bank");
    refused(
        bank_staff
            .get_approval(pb::GetApprovalRequest {
                wait_secs: 0,
                wallet_id: wallet.clone(),
                session_key: encode_public_key(&r_pub).to_vec(),
            })
            .await,
        NodeRefusal::AwaitingApproval,
        "GetApproval before staff approve",
    );
    let stranger = StaffClient::new(StaffKey::generate(), rc.trustees().bank());
    match stranger.approve(&bank_opened.session_id).await {
        Err(StaffError::Refused { refusal, code, .. }) => {
            assert_eq!(refusal, Some(NodeRefusal::StaffUnknown));
            assert_eq!(code, tonic::Code::PermissionDenied);
        }
        other => panic!("a stranger's staff key approved: {other:?}"),
    }

    // Approvals: for another wallet, expired, unreadable; then the genuine one, before the delay.
    let other_wallet = craft_approval(
        &bank_key,
        &bank_id,
        "another-wallet",
        &r_pub,
        now,
        now + 600,
    );
    refused(
        rc.release(NODE, &sid, &other_wallet).await,
        NodeRefusal::ApprovalRejected,
        "an approval for another wallet",
    );
    let expired = craft_approval(&bank_key, &bank_id, &wallet, &r_pub, now - 7200, now - 3600);
    refused(
        rc.release(NODE, &sid, &expired).await,
        NodeRefusal::ApprovalExpired,
        "an expired approval",
    );
    refused(
        rc.release(NODE, &sid, &[0xde, 0xad, 0xbe, 0xef]).await,
        NodeRefusal::ApprovalMalformed,
        "an unreadable approval",
    );
    let s = refused(
        rc.release(NODE, &sid, &genuine_shape).await,
        NodeRefusal::DelayNotPassed,
        "a good approval before the delay",
    );
    assert!(s.message().contains("s left"), "{s:?}");

    // Nothing the refusals did moved the session.
    let st = rc
        .recovery(NODE)
        .await
        .get_recovery_status(pb::GetRecoveryStatusRequest {
            session_id: sid.clone(),
        })
        .await
        .expect("GetRecoveryStatus")
        .into_inner();
    assert_eq!(st.state, "owner_authenticated", "{st:?}");

    // Cancelled by the owner: a release is refused for good (not "not yet").
    rc.owner_cancel(NODE, &wallet, &r_pub, &sid, &mut auth)
        .await
        .expect("owner cancel");
    refused(
        rc.release(NODE, &sid, &genuine_shape).await,
        NodeRefusal::SessionCancelled,
        "ReleaseShare from a cancelled session",
    );

    // A caller from another address spends its ceremony budget and is rate limited.
    let ip: IpAddr = "127.0.0.2".parse().expect("ip");
    let flooder = Endpoint::from_shared(rc.node(NODE).endpoint.clone())
        .expect("endpoint")
        .local_address(Some(ip))
        .connect()
        .await
        .expect("connect from 127.0.0.2");
    trustee = TrusteeClient::new(flooder);
    let mut accepted = 0;
    let limited = loop {
        match trustee
            .begin_enrollment(pb::BeginEnrollmentRequest {
                wallet_id: dlocker_integration_tests::craft::wallet_id("codes-flood"),
                user_name: "mallory".into(),
                customer_reference: String::new(),
            })
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= BUDGET, "never limited");
    };
    refused::<()>(
        Err(limited),
        NodeRefusal::RateLimited,
        "a flood of ceremonies",
    );
}
