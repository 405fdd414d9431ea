//! `deploy/examples/config.toml` is a real, working config: the node's own parser accepts it and
//! a node serves with it (TLS and mutual TLS included).

use dlocker_integration_tests::Cluster;
use dlocker_integration_tests::bins::workspace_root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_config_parses_and_serves() {
    // One mTLS node: its tls/ files are at the paths the example names.
    let mut cluster = Cluster::init(1, &[], &[0]);
    let node = cluster.node(0);
    let example = std::fs::read_to_string(workspace_root().join("deploy/examples/config.toml"))
        .expect("read example");
    // Only the address changes: the test cannot bind the example's public port.
    let mut text = String::new();
    for line in example.lines() {
        if line.starts_with("listen = ") {
            text.push_str(&format!("listen = \"{}\"\n", node.addr));
        } else if line.starts_with("endpoint = ") {
            text.push_str(&format!("endpoint = \"{}\"\n", node.endpoint));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    std::fs::write(node.dir.join("config.toml"), text).expect("write config");
    let cfg = trustee_node::config::NodeConfig::load(&node.dir)
        .unwrap_or_else(|e| panic!("example config refused: {e}"));
    assert_eq!(cfg.name, "Example Bank");
    assert!(
        cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        "example enables mutual TLS"
    );

    cluster.start_all().await;
    let mut client = cluster.node(0).client().await;
    let info = client
        .get_info(dlocker_proto::pb::GetInfoRequest {})
        .await
        .expect("GetInfo")
        .into_inner();
    assert_eq!(info.name, "Example Bank");
    assert_eq!(info.role, "bank");
}
