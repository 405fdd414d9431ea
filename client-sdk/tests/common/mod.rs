//! A cluster of real in-process trustee nodes for the SDK's tests: node 0 is the bank, with the
//! staff member `alice` (approver, canceller); every node accepts the bank's approval key.

#![allow(dead_code)] // each test file uses its own part

use dlocker_sdk::proto::keys::public_key_from_hex;
use dlocker_sdk::{RecoverEvent, Role, StaffClient, StaffKey, TlsFiles, TrusteeInfo, TrusteeSet};
use std::path::Path;
use tokio::sync::mpsc;
use trustee_node::config::Role as NodeRole;
use trustee_node::config::edit::ConfigDoc;
use trustee_node::init::{InitOptions, StaffSpec, init_node};
use trustee_node::server::{RunningNode, spawn};
use trustee_node::staff::auth::StaffRole;

pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Option<RunningNode>>,
    pub(crate) set: TrusteeSet,
    staff_key_hex: String,
}

pub(crate) async fn cluster(root: &Path, n: usize) -> Cluster {
    let staff = StaffKey::generate();
    let mut nodes = Vec::new();
    let mut infos = Vec::new();
    let mut bank_key: Option<String> = None;
    let mut inited = Vec::with_capacity(n);
    for i in 0..n {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let dir = root.join(format!("node-{i}"));
        let role = if i == 0 {
            NodeRole::Bank
        } else {
            NodeRole::Trustee
        };
        let mut opts = InitOptions::new(dir.clone(), format!("n{i}"), addr, role);
        if i == 0 {
            opts.staff = vec![StaffSpec {
                id: "alice".into(),
                public_key: staff.public_key_hex(),
                roles: vec![StaffRole::Approver, StaffRole::Canceller],
            }];
        }
        opts.accept_bank_keys = bank_key.iter().cloned().collect();
        let desc = init_node(&opts).expect("init");
        if i == 0 {
            let k = desc.bank_approval_key.clone().expect("bank approval key");
            let mut doc = ConfigDoc::load(&dir).expect("config");
            doc.accept_bank_key(&k).expect("accept");
            doc.save(&dir).expect("save");
            bank_key = Some(k);
        }
        inited.push((dir, desc));
    }
    // Every node knows every other one (a trustee joining a wallet needs a known holder's
    // attestation of the wallet's credential).
    for (dir, _) in &inited {
        let mut doc = ConfigDoc::load(dir).expect("config");
        for (other, desc) in &inited {
            if other != dir {
                doc.accept_trustee_key(&desc.public_key).expect("accept");
            }
        }
        doc.save(dir).expect("save");
    }
    for (i, (dir, desc)) in inited.into_iter().enumerate() {
        let node = spawn(&dir).await.expect("spawn");
        let pk = public_key_from_hex(&desc.public_key).expect("key");
        infos.push(TrusteeInfo::new(
            format!("n{i}"),
            node.url(),
            pk,
            if i == 0 { Role::Bank } else { Role::Trustee },
            TlsFiles::default(),
        ));
        nodes.push(Some(node));
    }
    Cluster {
        nodes,
        set: TrusteeSet::new(infos).expect("set"),
        staff_key_hex: staff.to_hex().to_string(),
    }
}

impl Cluster {
    pub(crate) fn staff(&self) -> StaffClient {
        StaffClient::new(
            StaffKey::from_hex(&self.staff_key_hex).expect("key"),
            self.set.bank(),
        )
    }
    pub(crate) async fn stop(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.shutdown().await.expect("shutdown");
        }
    }
    pub(crate) async fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}

impl Cluster {
    /// The trustees `idx` of the cluster, as a trustee set (node 0, the bank, must be among them).
    pub(crate) fn subset(&self, idx: &[usize]) -> TrusteeSet {
        TrusteeSet::new(
            idx.iter()
                .map(|&i| self.set.trustees()[i].clone())
                .collect(),
        )
        .expect("subset")
    }
}

/// Forwards the bank session id from `AwaitingApproval` to a channel.
pub(crate) fn approval_forwarder(
    tx: mpsc::UnboundedSender<String>,
) -> impl Fn(RecoverEvent) + Sync {
    move |e| {
        if let RecoverEvent::AwaitingApproval { bank_session_id } = e {
            let _ = tx.send(bank_session_id);
        }
    }
}
