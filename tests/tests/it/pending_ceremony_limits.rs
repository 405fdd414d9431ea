//! One caller cannot hold more than its share of a node's pending ceremonies, on real nodes with
//! `[limits] pending_ceremonies_per_caller = 3`: a stranger connecting from its own address
//! (127.0.0.2) begins three ceremonies it never finishes and is then refused `RESOURCE_EXHAUSTED`
//! with a message naming the limit, for enrollments and recovery openings alike, while another
//! address (the owner, 127.0.0.1) still begins ceremonies there and backs up. Only pending
//! ceremonies count: the owner completes more backups through that node than the cap.

use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec, session_key};
use dlocker_proto::pb;
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use std::net::IpAddr;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const CAP: i64 = 3;
const TARGET: usize = 1;

async fn from_address(endpoint: &str, local: &str) -> Channel {
    let ip: IpAddr = local.parse().expect("ip");
    Endpoint::from_shared(endpoint.to_owned())
        .expect("endpoint")
        .local_address(Some(ip))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect from {local}: {e:?}"))
}

fn begin(wallet_id: String) -> pb::BeginEnrollmentRequest {
    pb::BeginEnrollmentRequest {
        wallet_id,
        user_name: "mallory".into(),
        customer_reference: String::new(),
    }
}

fn is_cap_refusal(e: &tonic::Status) -> bool {
    e.code() == Code::ResourceExhausted
        && e.message()
            .contains("this address holds 3 pending owner ceremonies")
        && e.message().contains("pending_ceremonies_per_caller")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_fills_its_pending_ceremonies_and_another_still_begins() {
    let spec = RecoverySpec {
        nodes: 3,
        config: vec![(
            "limits".into(),
            "pending_ceremonies_per_caller".into(),
            toml::Value::Integer(CAP),
        )],
        ..RecoverySpec::default()
    };
    let rc = RecoveryCluster::start(spec).await;
    // A wallet the node holds, for recovery openings.
    let (wallet, _p, _auth) = rc.backup("pending-owner", b"the owner's seed", 0).await;

    let stranger = from_address(&rc.node(TARGET).endpoint, "127.0.0.2").await;
    let mut trustee = TrusteeClient::new(stranger.clone());
    for i in 0..CAP {
        trustee
            .begin_enrollment(begin(dlocker_integration_tests::craft::wallet_id(
                "pending",
            )))
            .await
            .unwrap_or_else(|e| panic!("ceremony {i} within the cap: {e:?}"));
    }
    let refusal = trustee
        .begin_enrollment(begin(dlocker_integration_tests::craft::wallet_id(
            "pending",
        )))
        .await
        .expect_err("a fourth pending ceremony");
    assert!(is_cap_refusal(&refusal), "{refusal:?}");
    assert!(
        refusal.message().contains("retry in"),
        "{}",
        refusal.message()
    );
    // An OpenRecovery is an owner ceremony too: refused from that address.
    let refusal = RecoveryClient::new(stranger)
        .open_recovery(pb::OpenRecoveryRequest {
            wallet_id: wallet.clone(),
            session_key: dlocker_proto::keys::encode_public_key(&session_key().public_key())
                .to_vec(),
        })
        .await
        .expect_err("the stranger's places are all taken");
    assert!(is_cap_refusal(&refusal), "{refusal:?}");

    // Another address begins ceremonies at the same node: an enrollment and a recovery opening.
    let other = from_address(&rc.node(TARGET).endpoint, "127.0.0.3").await;
    TrusteeClient::new(other.clone())
        .begin_enrollment(begin(dlocker_integration_tests::craft::wallet_id("other")))
        .await
        .expect("another address is not limited by the stranger's ceremonies");
    let opened = RecoveryClient::new(other)
        .open_recovery(pb::OpenRecoveryRequest {
            wallet_id: wallet.clone(),
            session_key: dlocker_proto::keys::encode_public_key(&session_key().public_key())
                .to_vec(),
        })
        .await
        .expect("another address opens a recovery")
        .into_inner();
    assert!(!opened.session_id.is_empty());

    // Only pending ceremonies count: the owner (127.0.0.1) completes more backups through the
    // node than the cap, each ceremony answered and so freed.
    for i in 0..CAP {
        let (w, _p, _a) = rc
            .backup(&format!("pending-more-{i}"), b"another seed", 0)
            .await;
        let status = rc
            .node(TARGET)
            .client()
            .await
            .get_backup_status(pb::GetBackupStatusRequest { wallet_id: w })
            .await
            .expect("status")
            .into_inner();
        assert_eq!(status.epoch, 1, "backup {i} held at the node");
    }
}
