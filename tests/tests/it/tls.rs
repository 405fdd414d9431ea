//! TLS and mutual TLS: a node configured with a `[tls]` section answers https calls from the
//! SDK and the CLI when its CA is pinned, and refuses plaintext and unpinned clients.

use dlocker_integration_tests::{Cluster, cli_command, craft};
use dlocker_sdk::{BackupPolicy, PreparedBackup, SoftwareAuthenticator, TlsFiles};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mtls_nodes_serve_the_sdk_and_refuse_plaintext() {
    // Node 0: plaintext bank. Node 1: TLS. Node 2: mutual TLS.
    let mut cluster = Cluster::init(3, &[1], &[2]);
    cluster.start_all().await; // readiness already goes over TLS with the pinned CA
    let tls_node = cluster.node(1);
    assert!(tls_node.endpoint.starts_with("https://"));

    // SDK GetInfo with the CA pinned.
    let pinned = TlsFiles {
        ca_cert: Some(tls_node.tls.as_ref().expect("tls").ca_cert.clone()),
        ..TlsFiles::default()
    };
    let info = dlocker_sdk::protocol::node_info_with_tls(&tls_node.endpoint, &pinned)
        .await
        .unwrap_or_else(|e| panic!("https GetInfo with the CA pinned: {e}"));
    assert_eq!(info.node_id, tls_node.node_id);
    assert_eq!(info.public_key, tls_node.public_key_hex());
    assert!(
        info.endpoint.starts_with("https://"),
        "advertises https: {}",
        info.endpoint
    );

    // Plaintext to the TLS port fails; TLS without the private CA pinned fails.
    let plain = tls_node.endpoint.replacen("https://", "http://", 1);
    assert!(
        dlocker_sdk::protocol::node_info(&plain).await.is_err(),
        "plaintext h2c to a TLS node must fail"
    );
    assert!(
        dlocker_sdk::protocol::node_info(&tls_node.endpoint)
            .await
            .is_err(),
        "an unpinned CA must not be trusted"
    );

    // Mutual TLS: the CA alone is not enough, the client certificate is required.
    let mtls_node = cluster.node(2);
    let mt = mtls_node.tls.as_ref().expect("tls");
    let client = mt.client.as_ref().expect("client cert");
    let ca_only = TlsFiles {
        ca_cert: Some(mt.ca_cert.clone()),
        ..TlsFiles::default()
    };
    assert!(
        dlocker_sdk::protocol::node_info_with_tls(&mtls_node.endpoint, &ca_only)
            .await
            .is_err(),
        "an mTLS node must refuse a client without a certificate"
    );
    let with_cert = TlsFiles {
        ca_cert: Some(mt.ca_cert.clone()),
        client_cert: Some(client.cert.clone()),
        client_key: Some(client.key.clone()),
    };
    let info = dlocker_sdk::protocol::node_info_with_tls(&mtls_node.endpoint, &with_cert)
        .await
        .unwrap_or_else(|e| panic!("mTLS GetInfo with a client certificate: {e}"));
    assert_eq!(info.node_id, mtls_node.node_id);

    // The event stream names wallets: the mTLS node streams it to the client certificate its
    // config lists in [tls] event_readers, and refuses another certificate of the same CA.
    let watch = |cert: &dlocker_integration_tests::tls::ClientCert| {
        let ca_pem = mt.ca_pem.clone();
        let (cert_pem, key_pem) = (cert.cert_pem.clone(), cert.key_pem.clone());
        let endpoint = mtls_node.endpoint.clone();
        async move {
            use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
            let ch = Endpoint::from_shared(endpoint)
                .expect("endpoint")
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(ca_pem))
                        .identity(Identity::from_pem(cert_pem, key_pem)),
                )
                .expect("tls config")
                .connect()
                .await
                .expect("mTLS connect");
            dlocker_proto::pb::recovery_client::RecoveryClient::new(ch)
                .watch_events(dlocker_proto::pb::WatchEventsRequest {
                    cursor: 0,
                    staff_request_encoded: Vec::new(),
                })
                .await
                .map(|_| ())
        }
    };
    watch(client)
        .await
        .expect("the listed client certificate reads the event stream");
    let other = mt.unlisted_client.as_ref().expect("second client cert");
    let e = watch(other)
        .await
        .expect_err("an unlisted client certificate is refused");
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    // A whole backup and verification across plaintext, TLS and mTLS nodes.
    let trustees = cluster.trustees();
    let wallet = craft::wallet_id("tls");
    let prepared = PreparedBackup::new(
        &trustees,
        &wallet,
        b"seed",
        BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        },
    )
    .expect("prepare");
    let receipts = dlocker_sdk::protocol::backup(
        &trustees,
        &prepared,
        "alice",
        &mut SoftwareAuthenticator::new(),
        &|_| {},
    )
    .await
    .unwrap_or_else(|e| panic!("backup over TLS/mTLS: {e}"));
    assert_eq!(receipts.receipts.len(), 3);
    let report = dlocker_sdk::protocol::verify_backup(&trustees, prepared.manifest()).await;
    assert!(report.all_healthy(), "{report:?}");

    // The CLI, pointed at one TLS node: works with --ca-cert, fails without it and in plaintext.
    let tls_node = cluster.node(1);
    let ca = tls_node.tls.as_ref().expect("tls").ca_cert.clone();
    let out = cli_command()
        .args([
            "node",
            "info",
            "--json",
            "--node",
            &tls_node.endpoint,
            "--ca-cert",
        ])
        .arg(&ca)
        .output()
        .expect("run dlocker");
    assert!(
        out.status.success(),
        "node info over TLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["node_id"], tls_node.node_id.as_str());
    let unpinned = cli_command()
        .args(["node", "info", "--node", &tls_node.endpoint])
        .output()
        .expect("run");
    assert!(
        !unpinned.status.success(),
        "node info over TLS without the CA must fail"
    );
    let plaintext = cli_command()
        .args(["node", "info", "--node", &plain])
        .output()
        .expect("run");
    assert!(
        !plaintext.status.success(),
        "plaintext node info to a TLS node must fail"
    );

    // The CLI reads the same trustees file (ca_cert, client_cert, client_key) and reports all healthy.
    let file = cluster.write_trustees();
    let out = cli_command()
        .args(["cluster", "health", "--trustees"])
        .arg(&file)
        .output()
        .expect("run dlocker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cluster health over TLS failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in cluster.nodes() {
        assert!(
            stdout.contains(&n.name),
            "health table lists {}:\n{stdout}",
            n.name
        );
    }
}

/// Mutual TLS authorises services per client certificate: with `[tls.service_clients] staff`
/// listing the staff front end's certificate, the bank's Staff service refuses another
/// certificate of the same client CA before any handler runs, while that certificate still uses
/// the services that list nobody, and the front end reaches the Staff service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_staff_service_refuses_a_non_staff_certificate() {
    use dlocker_proto::pb;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

    let mut cluster = Cluster::init(1, &[], &[0]);
    let dir = cluster.data_dir(0).to_path_buf();
    // The harness lists its first client certificate (the "front end") as an event reader;
    // the same fingerprint becomes the Staff service's only client.
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let doc: toml::Table = toml::from_str(&text).expect("toml");
    let front_end = doc["tls"]["event_readers"][0]
        .as_str()
        .expect("event reader fingerprint")
        .to_owned();
    std::fs::write(
        &path,
        format!("{text}\n[tls.service_clients]\nstaff = [\"{front_end}\"]\n"),
    )
    .expect("write config");
    cluster.start_all().await;

    let node = cluster.node(0);
    let tls = node.tls.as_ref().expect("tls");
    let connect = |cert: &dlocker_integration_tests::tls::ClientCert| {
        let (ca_pem, endpoint) = (tls.ca_pem.clone(), node.endpoint.clone());
        let (cert_pem, key_pem) = (cert.cert_pem.clone(), cert.key_pem.clone());
        async move {
            Endpoint::from_shared(endpoint)
                .expect("endpoint")
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(ca_pem))
                        .identity(Identity::from_pem(cert_pem, key_pem)),
                )
                .expect("tls config")
                .connect()
                .await
                .expect("mTLS connect")
        }
    };
    let list = pb::ListRecoveriesRequest::default();

    let other = connect(tls.unlisted_client.as_ref().expect("second client cert")).await;
    let refused = pb::staff_client::StaffClient::new(other.clone())
        .list_recoveries(list.clone())
        .await
        .expect_err("a certificate not listed for the Staff service is refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("may not call the Staff service")
            && refused.message().contains("[tls.service_clients] staff"),
        "{}",
        refused.message()
    );
    // The same certificate still calls the services that list nobody.
    let info = pb::trustee_client::TrusteeClient::new(other)
        .get_info(pb::GetInfoRequest {})
        .await
        .expect("the Trustee service admits any certificate the client CA signed")
        .into_inner();
    assert_eq!(info.node_id, node.node_id);

    // The staff front end passes the gate: the Staff service itself answers (here: the empty
    // staff request is not a valid one).
    let front = connect(tls.client.as_ref().expect("front end cert")).await;
    let answered = pb::staff_client::StaffClient::new(front)
        .list_recoveries(list)
        .await
        .expect_err("an unsigned staff request");
    assert_ne!(
        answered.code(),
        tonic::Code::PermissionDenied,
        "the front end is not refused by the gate: {answered:?}"
    );
    assert!(
        !answered.message().contains("service_clients"),
        "{answered:?}"
    );
}
