//! No caller can exhaust a node for everyone, on real nodes with a small per-caller budget
//! (`[limits] owner_calls_per_minute = 5`): a stranger connecting from its own address
//! (127.0.0.2) floods `BeginEnrollment` and `BeginEpochAction` at a trustee and is refused
//! `RESOURCE_EXHAUSTED` with a retry hint once its budget is spent, while the owner (127.0.0.1)
//! still backs up over every node, that trustee included, and begins a rotation there.

use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec};
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_client::EpochsClient;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use std::net::IpAddr;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

const BUDGET: i64 = 5;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_flooding_ceremonies_is_refused_while_the_owner_completes() {
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
    let stranger = from_address(&rc.node(TARGET).endpoint, "127.0.0.2").await;

    // BeginEnrollment for fresh wallet ids until refused: the burst is the budget.
    let mut trustee = TrusteeClient::new(stranger.clone());
    let mut accepted = 0;
    let refusal = loop {
        match trustee
            .begin_enrollment(pb::BeginEnrollmentRequest {
                wallet_id: dlocker_integration_tests::craft::wallet_id("flood"),
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
    assert_eq!(accepted, BUDGET, "the burst is the configured budget");
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");
    assert!(
        refusal
            .message()
            .contains("owner-ceremony calls from this address")
            && refusal.message().contains("retry in"),
        "{}",
        refusal.message()
    );
    // BeginEpochAction draws from the same budget: refused too, for any wallet id.
    let refusal = EpochsClient::new(stranger)
        .begin_epoch_action(pb::BeginEpochActionRequest {
            wallet_id: dlocker_integration_tests::craft::wallet_id("flood"),
            action: pb::EpochAction::Stage as i32,
            manifest_hash: vec![7; 32],
        })
        .await
        .expect_err("the stranger's budget is spent");
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");

    // The owner, from another address, backs up over every node (the flooded one included) and
    // begins a rotation there.
    let (wallet, prepared, _auth) = rc.backup("flood-owner", b"the owner's seed", 0).await;
    let begun = EpochsClient::new(rc.node(TARGET).channel().await.expect("connect"))
        .begin_epoch_action(pb::BeginEpochActionRequest {
            wallet_id: wallet.clone(),
            action: pb::EpochAction::Stage as i32,
            manifest_hash: prepared.manifest_hash().0.to_vec(),
        })
        .await
        .expect("the owner's epoch action is not limited by the stranger's flood")
        .into_inner();
    assert!(!begun.passkey_json.is_empty(), "the node holds the wallet");
    let status = rc
        .node(TARGET)
        .client()
        .await
        .get_backup_status(pb::GetBackupStatusRequest {
            wallet_id: wallet.clone(),
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        status.epoch, 1,
        "the owner's backup is held at the flooded node"
    );
}
