//! `deploy/examples/bank-node.toml` and `deploy/examples/trustee-node.toml` are real, working
//! configs: the node's own loader accepts every section they set, and a node serves with each
//! (TLS, mutual TLS for the bank, the admin listener included).

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::bins::workspace_root;
use std::net::TcpListener;
use trustee_node::config::{NodeConfig, Role};

/// The example with only the addresses changed (the test cannot bind the example's ports).
fn localised(example: &str, listen: &str, endpoint: &str, admin: &str) -> String {
    let text = std::fs::read_to_string(workspace_root().join("deploy/examples").join(example))
        .expect("read example");
    let mut out = String::new();
    let mut section = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            section = line.trim().to_owned();
        }
        let replaced = match (section.as_str(), line) {
            ("[node]", l) if l.starts_with("listen = ") => format!("listen = \"{listen}\""),
            ("[node]", l) if l.starts_with("endpoint = ") => format!("endpoint = \"{endpoint}\""),
            ("[admin]", l) if l.starts_with("listen = ") => format!("listen = \"{admin}\""),
            _ => line.to_owned(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

fn free_loopback_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// Loads `example` into a one-node cluster (mutual TLS when `mtls`), serves it and reads GetInfo.
async fn load_and_serve(
    example: &str,
    mtls: bool,
) -> (NodeConfig, dlocker_proto::pb::NodeDescriptor) {
    let mtls_nodes: &[usize] = if mtls { &[0] } else { &[] };
    let mut cluster = Cluster::init(1, &[0], mtls_nodes);
    let node = cluster.node(0);
    let admin = free_loopback_port();
    let text = localised(example, &node.addr.to_string(), &node.endpoint, &admin);
    std::fs::write(node.dir.join("config.toml"), text).expect("write config");
    let cfg = NodeConfig::load(&node.dir)
        .unwrap_or_else(|e| panic!("{example} refused by the node's loader: {e}"));
    cluster.start_all().await;
    let info = cluster
        .node(0)
        .client()
        .await
        .get_info(dlocker_proto::pb::GetInfoRequest {})
        .await
        .expect("GetInfo")
        .into_inner();
    (cfg, info)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_example_config_loads_and_serves() {
    let (cfg, info) = load_and_serve("bank-node.toml", true).await;
    assert_eq!(cfg.name, "Example Bank");
    assert_eq!(cfg.role, Role::Bank);
    assert!(
        cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        "the bank example enables mutual TLS"
    );
    let bank = cfg.bank.as_ref().expect("the bank example has [bank]");
    assert_eq!(bank.approvals_required, 2, "four eyes");
    assert_eq!(bank.staff.len(), 3, "three staff members");
    assert_eq!(cfg.epochs.known_trustee_keys.len(), 2);
    assert!(cfg.locker.enabled, "the bank serves the document locker");
    assert!(cfg.admin.listen.is_some(), "the admin listener is on");
    assert_eq!(cfg.recovery.delay_floor_secs, 86_400);
    assert_eq!(info.name, "Example Bank");
    assert_eq!(info.role, "bank");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trustee_example_config_loads_and_serves() {
    let (cfg, info) = load_and_serve("trustee-node.toml", false).await;
    assert_eq!(cfg.name, "Example Trust Co");
    assert_eq!(cfg.role, Role::Trustee);
    assert!(cfg.bank.is_none(), "a trustee has no staff");
    assert!(
        cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_none()),
        "TLS without client certificates"
    );
    assert_eq!(cfg.recovery.bank_approval_keys.len(), 1, "the bank's key");
    assert_eq!(cfg.epochs.known_trustee_keys.len(), 2);
    assert!(!cfg.locker.enabled);
    assert!(cfg.admin.listen.is_some());
    assert_eq!(info.name, "Example Trust Co");
    assert_eq!(info.role, "trustee");
}
