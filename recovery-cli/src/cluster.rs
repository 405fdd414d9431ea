//! `dlocker cluster …`: every trustee in a trustees file at once.

use crate::output::{hinted, print_json, progress, table};
use clap::{Args, Subcommand};
use dlocker_proto::keys::decode_public_key;
use dlocker_proto::pb::GetInfoRequest;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use dlocker_sdk::protocol::{describe_status, open_channel};
use dlocker_sdk::{TrusteeInfo, TrusteeSet};
use futures::future::join_all;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Per node: gRPC health, GetInfo, pinned-key match and round-trip latency.
    Health(HealthArgs),
}

#[derive(Debug, Args)]
pub(crate) struct HealthArgs {
    /// The trustees file (TOML; see `deploy/local-cluster.sh` or `dlocker demo`).
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
}

/// One node's health.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NodeHealth {
    pub(crate) name: String,
    pub(crate) endpoint: String,
    pub(crate) role: String,
    pub(crate) node_id: String,
    /// grpc.health.v1 status (`SERVING`, `NOT_SERVING`, …) or `UNREACHABLE`.
    pub(crate) serving: String,
    /// Whether GetInfo's key equals the pinned key (`null` if GetInfo failed).
    pub(crate) key_pinned: Option<bool>,
    /// GetInfo round-trip time on an open connection.
    pub(crate) latency_ms: Option<f64>,
    pub(crate) healthy: bool,
    pub(crate) problem: Option<String>,
}

/// Loads a trustees file with a hint on failure.
pub(crate) fn load_trustees(path: &Path) -> anyhow::Result<TrusteeSet> {
    TrusteeSet::load(path).map_err(|e| {
        hinted(
            e.to_string(),
            "a trustees file lists [[trustee]] entries with name, endpoint, public_key and role",
        )
    })
}

/// One endpoint of a trustee (a trustee with replicas has several, each probed).
async fn probe(info: &TrusteeInfo, endpoint: &str) -> NodeHealth {
    let mut h = NodeHealth {
        name: info.name.clone(),
        endpoint: endpoint.to_owned(),
        role: info.role.to_string(),
        node_id: info.node_id.clone(),
        serving: "UNREACHABLE".into(),
        key_pinned: None,
        latency_ms: None,
        healthy: false,
        problem: None,
    };
    let channel = match open_channel(endpoint, &info.tls).await {
        Ok(c) => c,
        Err(e) => {
            h.problem = Some(e.to_string());
            return h;
        }
    };
    let mut problems = Vec::new();
    match HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
    {
        Ok(r) => {
            h.serving = ServingStatus::try_from(r.into_inner().status)
                .map_or("UNKNOWN", |s| s.as_str_name())
                .to_owned();
            if h.serving != "SERVING" {
                problems.push(format!("health status {}", h.serving));
            }
        }
        Err(s) => {
            h.serving = "ERROR".into();
            problems.push(format!("health check: {}", describe_status(&s)));
        }
    }
    let started = Instant::now();
    match TrusteeClient::new(channel)
        .get_info(GetInfoRequest {})
        .await
    {
        Ok(d) => {
            h.latency_ms = Some((started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0);
            let d = d.into_inner();
            let pinned = decode_public_key(&d.public_key).is_ok_and(|k| k == info.public_key);
            h.key_pinned = Some(pinned);
            if !pinned {
                problems.push("node presents a different key than the trustees file pins".into());
            }
            if d.role != info.role.as_str() {
                problems.push(format!(
                    "node says role {:?}, trustees file says {:?}",
                    d.role,
                    info.role.as_str()
                ));
            }
        }
        Err(s) => problems.push(format!("GetInfo: {}", describe_status(&s))),
    }
    h.healthy = problems.is_empty();
    h.problem = (!problems.is_empty()).then(|| problems.join("; "));
    h
}

/// Probes every endpoint of every trustee concurrently (file order kept; a trustee's replicas
/// after its endpoint).
pub(crate) async fn probe_all(set: &TrusteeSet, json: bool) -> Vec<NodeHealth> {
    let targets: Vec<(&TrusteeInfo, &str)> = set
        .trustees()
        .iter()
        .flat_map(|info| info.endpoints().map(move |e| (info, e)))
        .collect();
    let pb = progress(targets.len(), "checking nodes", json);
    let rows = join_all(targets.into_iter().map(|(info, endpoint)| {
        let pb = &pb;
        async move {
            let h = probe(info, endpoint).await;
            pb.inc(1);
            h
        }
    }))
    .await;
    pb.finish_and_clear();
    rows
}

/// The health table.
pub(crate) fn print_health(rows: &[NodeHealth]) {
    let mut t = table(&[
        "Node",
        "Role",
        "Endpoint",
        "Health",
        "Key pinned",
        "Latency",
        "Problem",
    ]);
    for r in rows {
        t.add_row(vec![
            r.name.clone(),
            r.role.clone(),
            r.endpoint.clone(),
            r.serving.clone(),
            match r.key_pinned {
                Some(true) => "yes".into(),
                Some(false) => "NO".into(),
                None => "-".into(),
            },
            r.latency_ms
                .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms")),
            r.problem.clone().unwrap_or_default(),
        ]);
    }
    println!("{t}");
}

/// Fails unless every node is healthy.
pub(crate) fn require_healthy(rows: &[NodeHealth]) -> anyhow::Result<()> {
    let bad: Vec<&str> = rows
        .iter()
        .filter(|r| !r.healthy)
        .map(|r| r.name.as_str())
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(hinted(
        format!(
            "{} of {} nodes unhealthy: {}",
            bad.len(),
            rows.len(),
            bad.join(", ")
        ),
        "see the Problem column; start stopped nodes, and never override a key mismatch without the node operator",
    ))
}

#[derive(Serialize)]
struct HealthJson<'a> {
    healthy: bool,
    nodes: &'a [NodeHealth],
}

pub(crate) async fn run(cmd: ClusterCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Health(a) => {
            let set = load_trustees(&a.trustees)?;
            let rows = probe_all(&set, json).await;
            if json {
                print_json(&HealthJson {
                    healthy: rows.iter().all(|r| r.healthy),
                    nodes: &rows,
                })?;
            } else {
                print_health(&rows);
            }
            require_healthy(&rows)
        }
    }
}
