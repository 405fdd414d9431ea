//! `dlocker node …`: one node at a time.

use crate::output::{hinted, print_json, table};
use clap::{Args, Subcommand};
use dlocker_sdk::protocol::node_info_with_tls;
use dlocker_sdk::{ConnectError, TlsFiles};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Show a node's descriptor (GetInfo). The key shown is what the node claims; compare it
    /// with the trustees file before trusting it.
    Info(InfoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    /// Node endpoint, e.g. http://127.0.0.1:7101.
    #[arg(long, value_name = "URL")]
    node: String,
    #[command(flatten)]
    tls: TlsArgs,
}

/// TLS options for talking to an `https://` node directly.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    /// CA certificate (PEM) for an https endpoint.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
}

impl TlsArgs {
    fn files(&self) -> TlsFiles {
        TlsFiles {
            ca_cert: self.ca_cert.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        }
    }
}

/// Adds a next step to connection errors.
pub(crate) fn explain_connect(e: ConnectError) -> anyhow::Error {
    let hint = match &e {
        ConnectError::Unreachable { .. } => {
            "is the node running and the URL right? (`trustee-node serve --data-dir DIR`)"
        }
        ConnectError::InvalidEndpoint { .. } => {
            "use a URL like http://127.0.0.1:7101 or https://node.example:7101"
        }
        ConnectError::Tls { .. } => "check the --ca-cert / --client-cert / --client-key files",
        ConnectError::KeyMismatch { .. } => {
            "do not use this node until the operator confirms its key; the trustees file may be stale"
        }
        _ => "is this a dLocker trustee node of a compatible version?",
    };
    hinted(e.to_string(), hint)
}

pub(crate) async fn run(cmd: NodeCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::Info(a) => {
            let info = node_info_with_tls(a.node.trim_end_matches('/'), &a.tls.files())
                .await
                .map_err(explain_connect)?;
            if json {
                return print_json(&info);
            }
            let mut t = table(&["Field", "Value"]);
            t.add_row(vec!["name", &info.name]);
            t.add_row(vec!["role", &info.role]);
            t.add_row(vec!["node id", &info.node_id]);
            t.add_row(vec!["endpoint", &info.endpoint]);
            t.add_row(vec!["public key", &info.public_key]);
            t.add_row(vec!["protocol", &info.protocol_version]);
            if let Some(k) = &info.bank_approval_key {
                t.add_row(vec!["bank approval key", k]);
            }
            println!("{t}");
            Ok(())
        }
    }
}
