//! The operator's admin listener on real nodes, read with a plain HTTP client: `/metrics` moves
//! after a backup and after a refused request, `/healthz` and `/readyz` answer; every served
//! gRPC service answers health by name; reflection answers in v1 and v1alpha; a public admin
//! address is refused at start; `trustee-node admin stats|wallets` read a stopped node's
//! database and refuse a running one's.

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::bins::serve_refused;
use dlocker_integration_tests::cluster::free_ports;
use dlocker_integration_tests::craft;
use dlocker_integration_tests::http::{get, metric};
use dlocker_integration_tests::recovery_cluster::set_config_value;
use dlocker_proto::pb::GetBackupStatusRequest;
use dlocker_sdk::{BackupPolicy, PreparedBackup, SoftwareAuthenticator};
use std::net::SocketAddr;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const FINISH_OK: &str = r#"dlocker_grpc_requests_total{service="dlocker.v1.Trustee",method="FinishEnrollment",code="Ok"}"#;
const GET_INFO_OK: &str =
    r#"dlocker_grpc_requests_total{service="dlocker.v1.Trustee",method="GetInfo",code="Ok"}"#;

fn scrape(addr: SocketAddr) -> String {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    r.text()
}

fn value(text: &str, series: &str) -> f64 {
    metric(text, series).unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_reflection_on_real_nodes() {
    let mut cluster = Cluster::init(3, &[], &[]);
    let admin_ports = free_ports(3);
    let admin: Vec<SocketAddr> = admin_ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    for (i, addr) in admin.iter().enumerate() {
        set_config_value(
            cluster.data_dir(i),
            "admin",
            "listen",
            toml::Value::String(addr.to_string()),
        );
    }
    cluster.start_all().await;

    for addr in &admin {
        let h = get(*addr, "/healthz");
        assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));
        let r = get(*addr, "/readyz");
        assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));
        assert_eq!(get(*addr, "/nope").status, 404);
    }

    let before = scrape(admin[1]);
    assert_eq!(value(&before, "dlocker_deposits"), 0.0);
    assert_eq!(metric(&before, FINISH_OK), None, "no deposit yet");
    for state in [
        "open",
        "owner_authenticated",
        "released",
        "cancelled",
        "expired",
    ] {
        assert_eq!(
            value(
                &before,
                &format!("dlocker_recovery_sessions{{state=\"{state}\"}}")
            ),
            0.0
        );
    }
    assert!(value(&before, "dlocker_db_size_bytes") > 0.0);

    // A 2-of-3 backup through the SDK.
    let get_info_before: Vec<f64> = admin
        .iter()
        .map(|a| metric(&scrape(*a), GET_INFO_OK).unwrap_or(0.0))
        .collect();
    let trustees = cluster.trustees();
    let wallet = craft::wallet_id("metrics");
    let prepared = PreparedBackup::new(
        &trustees,
        &wallet,
        b"seed words",
        BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 3600,
        },
    )
    .expect("prepare");
    let mut auth = SoftwareAuthenticator::new();
    dlocker_sdk::protocol::backup(&trustees, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("backup");

    // A refused request: a malformed wallet id.
    let mut client = cluster.node(1).client().await;
    let refused = client
        .get_backup_status(GetBackupStatusRequest {
            wallet_id: "not a wallet id!".into(),
        })
        .await
        .expect_err("a malformed wallet id is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let refusal = dlocker_proto::refusal::NodeRefusal::of_status(&refused)
        .expect("a refusal code")
        .as_str();

    for (i, addr) in admin.iter().enumerate() {
        let after = scrape(*addr);
        let name = &cluster.node(i).name;
        assert_eq!(value(&after, "dlocker_deposits"), 1.0, "{name}");
        assert_eq!(value(&after, FINISH_OK), 1.0, "{name}");
        // One checked connection per trustee for the whole backup: the confirmation goes over
        // the connection the deposit used, without a second connection and key check.
        assert_eq!(
            value(&after, GET_INFO_OK) - get_info_before[i],
            1.0,
            "{name}: GetInfo calls during one backup"
        );
        assert!(
            value(
                &after,
                r#"dlocker_grpc_request_duration_seconds_count{service="dlocker.v1.Trustee",method="FinishEnrollment"}"#
            ) >= 1.0,
            "{name}"
        );
        // The acknowledged deposit waited for a flush.
        assert!(
            value(&after, "dlocker_db_flush_duration_seconds_count") >= 1.0,
            "{name}"
        );
        assert!(
            value(&after, "dlocker_event_outbox_last_seq") >= 1.0,
            "{name}"
        );
        assert_eq!(value(&after, "dlocker_event_outbox_lag"), 0.0, "{name}");
    }
    let after = scrape(admin[1]);
    assert_eq!(
        value(
            &after,
            r#"dlocker_grpc_requests_total{service="dlocker.v1.Trustee",method="GetBackupStatus",code="InvalidArgument"}"#
        ),
        1.0
    );
    // Counted by its refusal code too.
    assert_eq!(
        value(
            &after,
            &format!(
                r#"dlocker_refusals_total{{service="dlocker.v1.Trustee",method="GetBackupStatus",refusal="{refusal}"}}"#
            )
        ),
        1.0
    );
    // The other nodes saw no such refusal.
    assert_eq!(
        metric(
            &scrape(admin[2]),
            r#"dlocker_grpc_requests_total{service="dlocker.v1.Trustee",method="GetBackupStatus",code="InvalidArgument"}"#
        ),
        None
    );

    // A made-up method is answered UNIMPLEMENTED and counted under "other", not by its name.
    let path = "/dlocker.v1.Trustee/MadeUpMethod";
    let mut grpc = tonic::client::Grpc::new(cluster.node(1).channel().await.expect("channel"));
    grpc.ready().await.expect("ready");
    let codec =
        tonic_prost::ProstCodec::<GetBackupStatusRequest, GetBackupStatusRequest>::default();
    let e = grpc
        .unary(
            tonic::Request::new(GetBackupStatusRequest::default()),
            http::uri::PathAndQuery::from_static(path),
            codec,
        )
        .await
        .expect_err("no such method");
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    let after = scrape(admin[1]);
    assert!(!after.contains("MadeUpMethod"), "{after}");
    assert!(
        value(
            &after,
            r#"dlocker_grpc_requests_total{service="other",method="other",code="Unimplemented"}"#
        ) >= 1.0
    );

    // grpc.health.v1 by name: every service each node serves.
    let bank_services = [
        "",
        "dlocker.v1.Trustee",
        "dlocker.v1.Recovery",
        "dlocker.v1.Epochs",
        "dlocker.v1.Staff",
        "dlocker.v1.DocumentService",
    ];
    let mut health = HealthClient::new(cluster.node(0).channel().await.expect("channel"));
    for service in bank_services {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?} on the bank: {e:?}"));
        assert_eq!(
            r.into_inner().status,
            ServingStatus::Serving as i32,
            "{service}"
        );
    }
    let mut health = HealthClient::new(cluster.node(1).channel().await.expect("channel"));
    for service in &bank_services[..4] {
        let r = health
            .check(HealthCheckRequest {
                service: (*service).into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?} on a trustee: {e:?}"));
        assert_eq!(
            r.into_inner().status,
            ServingStatus::Serving as i32,
            "{service}"
        );
    }
    // A trustee serves no Staff service, and says so.
    let e = health
        .check(HealthCheckRequest {
            service: "dlocker.v1.Staff".into(),
        })
        .await
        .expect_err("no Staff service on a trustee");
    assert_eq!(e.code(), tonic::Code::NotFound);

    // Reflection, both versions.
    let v1alpha = list_services_v1alpha(&cluster).await;
    let v1 = list_services_v1(&cluster).await;
    for s in [
        "dlocker.v1.Trustee",
        "dlocker.v1.Recovery",
        "dlocker.v1.Epochs",
        "grpc.health.v1.Health",
    ] {
        assert!(
            v1alpha.iter().any(|x| x == s),
            "v1alpha lacks {s}: {v1alpha:?}"
        );
        assert!(v1.iter().any(|x| x == s), "v1 lacks {s}: {v1:?}");
    }

    // At shutdown the admin listener goes away with the node.
    cluster.stop(1);
    assert!(std::net::TcpStream::connect(admin[1]).is_err());

    // Offline: `admin stats` and `admin wallets` read the stopped node's database.
    let out = admin_cmd(cluster.data_dir(1), "stats");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(stats["wallets"], 1, "{stats}");
    assert_eq!(stats["recovery_sessions"]["open"], 0, "{stats}");
    assert!(
        stats["wallet_blob_bytes"].as_u64().is_some_and(|n| n > 0),
        "{stats}"
    );
    assert!(
        stats["db_size_bytes"].as_u64().is_some_and(|n| n > 0),
        "{stats}"
    );
    assert!(
        stats["audit_entries"].as_u64().is_some_and(|n| n >= 1),
        "{stats}"
    );
    let out = admin_cmd(cluster.data_dir(1), "wallets");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["wallet_id"], wallet.as_str());
    assert_eq!(rows[0]["share_index"], 2, "node 1 holds share 2");
    // A running node holds its database: refused in one line that says what to do.
    let out = admin_cmd(cluster.data_dir(2), "stats");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("in use") && err.contains("/metrics") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(out.stdout, b"");
}

fn admin_cmd(dir: &std::path::Path, what: &str) -> std::process::Output {
    dlocker_integration_tests::node_command()
        .args(["admin", what, "--json", "--data-dir"])
        .arg(dir)
        .output()
        .expect("run trustee-node admin")
}

async fn list_services_v1alpha(cluster: &Cluster) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, ServerReflectionResponse};
    let mut c = ServerReflectionClient::new(cluster.node(1).channel().await.expect("channel"));
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = c
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("v1alpha reflection answers")
        .into_inner();
    let resp: ServerReflectionResponse = stream
        .message()
        .await
        .expect("v1alpha response")
        .expect("one message");
    match resp.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("not a service list: {other:?}"),
    }
}

async fn list_services_v1(cluster: &Cluster) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
    let mut c = ServerReflectionClient::new(cluster.node(1).channel().await.expect("channel"));
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = c
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("v1 reflection answers")
        .into_inner();
    let resp: ServerReflectionResponse = stream
        .message()
        .await
        .expect("v1 response")
        .expect("one message");
    match resp.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("not a service list: {other:?}"),
    }
}

#[test]
fn a_public_admin_address_is_refused_at_start() {
    let cluster = Cluster::init(1, &[], &[]);
    let dir = cluster.data_dir(0);
    set_config_value(
        dir,
        "admin",
        "listen",
        toml::Value::String("0.0.0.0:9101".into()),
    );
    let err = serve_refused(dir);
    assert!(
        err.contains("admin.listen") && err.contains("allow_non_loopback"),
        "{err}"
    );
    // The same address as the gRPC listener is refused too.
    let grpc = cluster.node(0).addr.to_string();
    set_config_value(dir, "admin", "listen", toml::Value::String(grpc));
    let err = serve_refused(dir);
    assert!(err.contains("admin.listen"), "{err}");
}
