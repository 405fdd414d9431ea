//! Refusals strangers can cause write nothing: `FetchDocument` calls from requesters the locker
//! does not know (or whose signature fails) leave the audit log as it was and are counted in the
//! node's in-memory stats instead.

use dlocker_integration_tests::node_command;
use dlocker_locker::refusal::RefusalCode;
use dlocker_proto::pb;
use dlocker_proto::pb::document_service_client::DocumentServiceClient;
use dlocker_proto::pb::recovery_client::RecoveryClient;

async fn audit_len(ch: tonic::transport::Channel) -> usize {
    RecoveryClient::new(ch)
        .get_audit_log(pb::GetAuditLogRequest {
            from_seq: 1,
            limit: 1000,
            staff_request_encoded: Vec::new(),
        })
        .await
        .expect("GetAuditLog")
        .into_inner()
        .entries
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_fetches_from_unknown_requesters_leave_the_audit_log_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("bank");
    let port = dlocker_integration_tests::cluster::free_ports(1)[0];
    let out = node_command()
        .arg("init")
        .arg("--data-dir")
        .arg(&dir)
        .args(["--name", "bank", "--role", "bank"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .expect("init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // In process, so the test can read the node's counters; served over loopback gRPC.
    let node = trustee_node::server::open_node(&dir).expect("open node");
    let listener = tokio::net::TcpListener::bind(node.config().listen)
        .await
        .expect("bind");
    let running = trustee_node::server::spawn_on(node.clone(), listener).expect("spawn");
    let ch = tonic::transport::Endpoint::from_shared(running.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");

    let before = audit_len(ch.clone()).await;
    let mut docs = DocumentServiceClient::new(ch.clone());
    const N: u64 = 200;
    for i in 0..N {
        let e = docs
            .fetch_document(pb::FetchDocumentRequest {
                request_encoded: vec![0x55; 64],
                requester_id: format!("stranger{i}.example"),
                document_uri: "example.bank-IDCRD-0123456789abcdef".into(),
                consent_id: "00".repeat(16),
            })
            .await
            .expect_err("unknown requester");
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
        assert_eq!(
            RefusalCode::of_status(&e),
            Some(RefusalCode::RequesterUnknown),
            "{e:?}"
        );
    }
    assert_eq!(audit_len(ch).await, before, "no audit entry per refusal");
    assert_eq!(
        node.stats().snapshot().unauthenticated_fetch_refusals,
        N,
        "each refusal counted"
    );
    running.shutdown().await.expect("shutdown");
}
