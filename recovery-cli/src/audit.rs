//! `dlocker audit show|verify` and `dlocker events watch`: a node's audit log and event outbox.

use crate::cluster::load_trustees;
use crate::node::explain_connect;
use crate::output::{hinted, print_json, short, table};
use clap::{Args, Subcommand};
use dlocker_proto::audit::{AuditRecord, verify_chain};
use dlocker_proto::keys::public_key_from_hex;
use dlocker_proto::pb::{AuditEntry, GetAuditLogRequest, WatchEventsRequest};
use dlocker_proto::statement::{AuditCheckpoint, Signed, StaffAction};
use dlocker_sdk::TlsFiles;
use dlocker_sdk::protocol::{connect_channel, node_info_with_tls, open_channel, recovery_client};
use dlocker_sdk::staff::new_request;
use futures::StreamExt as _;
use k256::PublicKey;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

/// Entries per `GetAuditLog` page (the node's maximum).
const PAGE: u32 = 1000;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Print a node's audit log.
    Show(AuditArgs),
    /// Recompute the hash chain and check the node's signed checkpoint; exit 1 naming the
    /// first altered or missing entry.
    Verify(AuditArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Node endpoint, e.g. http://127.0.0.1:7101 (or use --trustees with --name).
    #[arg(long, value_name = "URL", required_unless_present = "trustees")]
    node: Option<String>,
    /// The node's identity key (hex) to check the checkpoint signature with.
    #[arg(long, value_name = "HEX", conflicts_with = "trustees")]
    public_key: Option<String>,
    /// A trustees file: take the endpoint and pinned key of the trustee --name.
    #[arg(long, value_name = "FILE", requires = "name")]
    trustees: Option<PathBuf>,
    /// The trustee's name in --trustees.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Your staff key file (from `dlocker staff keygen`): entries then carry their wallet tags,
    /// which the node shows only to its staff (or an mTLS client its config names).
    #[arg(long, value_name = "FILE")]
    staff_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Follow a node's event outbox (server-streaming WatchEvents), resuming after --cursor.
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Node endpoint.
    #[arg(long, value_name = "URL")]
    node: String,
    /// Deliver events after this sequence number (0 = from the start).
    #[arg(long, default_value_t = 0)]
    cursor: u64,
    /// Stop after this many events (default: follow until interrupted).
    #[arg(long)]
    count: Option<u64>,
    /// Your staff key file (from `dlocker staff keygen`; a staff member of this node): events
    /// name wallets and sessions, so the node streams them only to its staff (or to an mTLS
    /// client its config names).
    #[arg(long, value_name = "FILE")]
    staff_key: Option<PathBuf>,
}

/// A signed staff request for `action` at the node `node_id`, when a staff key is given (empty
/// otherwise: the node then answers as to any caller).
fn reader_request(
    staff_key: Option<&Path>,
    node_id: &str,
    action: StaffAction,
) -> anyhow::Result<Vec<u8>> {
    let Some(path) = staff_key else {
        return Ok(Vec::new());
    };
    let key = crate::staff::load_staff_key(path)?;
    Ok(key.sign_request(new_request(node_id, action, "")))
}

/// The node id of the node at `url` (from its `GetInfo`: it only addresses the staff request,
/// which the node checks against its own id).
async fn node_id_at(url: &str) -> anyhow::Result<String> {
    Ok(node_info_with_tls(url, &TlsFiles::default())
        .await
        .map_err(explain_connect)?
        .node_id)
}

/// A channel to the node and, when known, the key its checkpoints must be signed with.
async fn target(a: &AuditArgs) -> anyhow::Result<(Channel, String, Option<PublicKey>)> {
    if let Some(path) = &a.trustees {
        let set = load_trustees(path)?;
        let name = a.name.clone().unwrap_or_default();
        let info = set.by_name(&name).ok_or_else(|| {
            hinted(
                format!("no trustee named {name:?} in {}", path.display()),
                "use a name from the trustees file",
            )
        })?;
        let ch = connect_channel(info).await.map_err(explain_connect)?;
        return Ok((ch, info.endpoint.clone(), Some(info.public_key)));
    }
    let url = a.node.clone().unwrap_or_default();
    let url = url.trim_end_matches('/').to_owned();
    let key = match &a.public_key {
        Some(h) => Some(public_key_from_hex(h).map_err(|e| {
            hinted(
                format!("--public-key is not a SEC1 compressed key: {e}"),
                "copy the key from the trustees file",
            )
        })?),
        None => None,
    };
    let ch = open_channel(&url, &TlsFiles::default())
        .await
        .map_err(explain_connect)?;
    Ok((ch, url, key))
}

/// Every entry, paged, with the checkpoint that covers the last page.
async fn fetch_all(
    ch: Channel,
    a: &AuditArgs,
    url: &str,
    key: Option<&PublicKey>,
) -> anyhow::Result<(Vec<AuditEntry>, Vec<u8>)> {
    let node_id = match (key, &a.staff_key) {
        (_, None) => String::new(),
        (Some(k), Some(_)) => dlocker_proto::keys::node_id(k),
        (None, Some(_)) => node_id_at(url).await?,
    };
    let mut c = recovery_client(ch);
    let mut entries: Vec<AuditEntry> = Vec::new();
    let mut from = 1;
    loop {
        let resp = c
            .get_audit_log(GetAuditLogRequest {
                from_seq: from,
                limit: PAGE,
                // Fresh per page: the node spends each request's nonce.
                staff_request_encoded: reader_request(
                    a.staff_key.as_deref(),
                    &node_id,
                    StaffAction::WatchEvents,
                )?,
            })
            .await
            .map_err(|s| {
                hinted(
                    format!(
                        "GetAuditLog: {}",
                        dlocker_sdk::protocol::describe_status(&s)
                    ),
                    "is this a dLocker node with the Recovery service?",
                )
            })?
            .into_inner();
        let n = resp.entries.len();
        entries.extend(resp.entries);
        if n < PAGE as usize {
            return Ok((entries, resp.checkpoint_encoded));
        }
        from = entries.last().map_or(from, |e| e.seq + 1);
    }
}

fn record(e: &AuditEntry) -> Result<(AuditRecord, [u8; 32]), u64> {
    let prev: [u8; 32] = e.prev_hash.as_slice().try_into().map_err(|_| e.seq)?;
    let hash: [u8; 32] = e.hash.as_slice().try_into().map_err(|_| e.seq)?;
    Ok((
        AuditRecord {
            seq: e.seq,
            at: e.at,
            kind: e.kind.clone(),
            wallet_tag: e.wallet_tag.clone(),
            detail: e.detail.clone(),
            prev_hash: prev,
        },
        hash,
    ))
}

#[derive(Serialize)]
struct EntryJson<'a> {
    seq: u64,
    at: u64,
    kind: &'a str,
    wallet_tag: &'a str,
    detail: &'a str,
    hash: String,
}

#[derive(Serialize)]
struct VerifyJson {
    ok: bool,
    node: String,
    entries: usize,
    checkpoint_seq: u64,
    checkpoint_signed_by_pinned_key: bool,
    error: Option<String>,
}

pub(crate) async fn run_audit(cmd: AuditCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Show(a) => {
            let (ch, url, key) = target(&a).await?;
            let (entries, _) = fetch_all(ch, &a, &url, key.as_ref()).await?;
            if json {
                let rows: Vec<EntryJson<'_>> = entries
                    .iter()
                    .map(|e| EntryJson {
                        seq: e.seq,
                        at: e.at,
                        kind: &e.kind,
                        wallet_tag: &e.wallet_tag,
                        detail: &e.detail,
                        hash: hex::encode(&e.hash),
                    })
                    .collect();
                return print_json(&rows);
            }
            let mut t = table(&["Seq", "At (unix)", "Kind", "Wallet tag", "Detail", "Hash"]);
            for e in &entries {
                t.add_row(vec![
                    e.seq.to_string(),
                    e.at.to_string(),
                    e.kind.clone(),
                    short(&e.wallet_tag),
                    e.detail.clone(),
                    short(&hex::encode(&e.hash)),
                ]);
            }
            println!("{t}");
            println!("{} audit entries", entries.len());
            Ok(())
        }
        AuditCommand::Verify(a) => {
            let (ch, url, key) = target(&a).await?;
            let (entries, cp_bytes) = fetch_all(ch, &a, &url, key.as_ref()).await?;
            let outcome = verify_audit(&entries, &cp_bytes, key.as_ref());
            let (cp_seq, signed) = match &outcome {
                Ok(v) => *v,
                Err((_, v)) => *v,
            };
            if json {
                print_json(&VerifyJson {
                    ok: outcome.is_ok(),
                    node: url.clone(),
                    entries: entries.len(),
                    checkpoint_seq: cp_seq,
                    checkpoint_signed_by_pinned_key: signed,
                    error: outcome.as_ref().err().map(|(e, _)| e.clone()),
                })?;
            }
            match outcome {
                Ok(_) => {
                    if !json {
                        println!(
                            "audit log of {url}: {} entries, hash chain intact up to the checkpoint at seq {cp_seq}{}",
                            entries.len(),
                            if signed {
                                " signed by the pinned key"
                            } else {
                                " (checkpoint signature NOT checked: pass --public-key or --trustees/--name)"
                            }
                        );
                    }
                    Ok(())
                }
                Err((e, _)) => Err(hinted(
                    format!("audit log of {url} FAILED verification: {e}"),
                    "treat the node as compromised: preserve its data directory and escalate",
                )),
            }
        }
    }
}

/// Checks the chain and the checkpoint. Ok((checkpoint seq, signature checked against `key`)).
#[allow(clippy::type_complexity)]
fn verify_audit(
    entries: &[AuditEntry],
    checkpoint: &[u8],
    key: Option<&PublicKey>,
) -> Result<(u64, bool), (String, (u64, bool))> {
    let cp = match key {
        Some(k) => Signed::<AuditCheckpoint>::decode_trusted(checkpoint, &[*k]),
        None => Signed::<AuditCheckpoint>::decode(checkpoint),
    }
    .map_err(|e| (format!("checkpoint not accepted: {e}"), (0, false)))?;
    let b = cp.body();
    let info = (b.seq, key.is_some());
    // The node may have appended between pages; the checkpoint covers what it signed.
    let covered: Vec<&AuditEntry> = entries.iter().filter(|e| e.seq <= b.seq).collect();
    let records = covered
        .iter()
        .map(|e| record(e))
        .collect::<Result<Vec<_>, u64>>()
        .map_err(|seq| (format!("audit entry {seq} has a malformed hash"), info))?;
    verify_chain(&records, b.seq, &b.head_hash).map_err(|e| (e.to_string(), info))?;
    Ok(info)
}

#[derive(Serialize)]
struct EventJson<'a> {
    seq: u64,
    at: u64,
    kind: &'a str,
    wallet_id: &'a str,
    session_id: &'a str,
    detail: &'a str,
}

pub(crate) async fn run_events(cmd: EventsCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::Watch(a) => {
            let url = a.node.trim_end_matches('/').to_owned();
            let ch = open_channel(&url, &TlsFiles::default())
                .await
                .map_err(explain_connect)?;
            let staff_request_encoded = match &a.staff_key {
                Some(p) => {
                    reader_request(Some(p), &node_id_at(&url).await?, StaffAction::WatchEvents)?
                }
                None => Vec::new(),
            };
            // The channel's request timeout covers only the response headers, not the stream.
            let mut stream = recovery_client(ch)
                .watch_events(WatchEventsRequest {
                    cursor: a.cursor,
                    staff_request_encoded,
                })
                .await
                .map_err(|s| {
                    let hint = if s.code() == tonic::Code::Unauthenticated
                        || s.code() == tonic::Code::PermissionDenied
                    {
                        "events name wallets: pass --staff-key FILE with a staff key this node lists"
                    } else {
                        "is this a dLocker node with the Recovery service?"
                    };
                    hinted(
                        format!(
                            "WatchEvents: {}",
                            dlocker_sdk::protocol::describe_status(&s)
                        ),
                        hint,
                    )
                })?
                .into_inner();
            let mut seen = 0u64;
            let mut last = a.cursor;
            while a.count.is_none_or(|c| seen < c) {
                match stream.next().await {
                    Some(Ok(e)) => {
                        seen += 1;
                        last = e.seq;
                        if json {
                            println!(
                                "{}",
                                serde_json::to_string(&EventJson {
                                    seq: e.seq,
                                    at: e.at,
                                    kind: &e.kind,
                                    wallet_id: &e.wallet_id,
                                    session_id: &e.session_id,
                                    detail: &e.detail,
                                })?
                            );
                        } else {
                            println!(
                                "{} {} {} wallet={} session={} {}",
                                e.seq, e.at, e.kind, e.wallet_id, e.session_id, e.detail
                            );
                        }
                    }
                    Some(Err(s)) => {
                        return Err(hinted(
                            format!(
                                "event stream failed: {}",
                                dlocker_sdk::protocol::describe_status(&s)
                            ),
                            format!("resume with --cursor {last}: nothing after it is lost"),
                        ));
                    }
                    None => {
                        return Err(hinted(
                            "the node closed the event stream",
                            format!("resume with --cursor {last}: nothing after it is lost"),
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate;

    fn entries(n: u64) -> Vec<AuditEntry> {
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|seq| {
                let rec = AuditRecord {
                    seq,
                    at: 100 + seq,
                    kind: "recovery_opened".into(),
                    wallet_tag: "ab".into(),
                    detail: format!("d{seq}"),
                    prev_hash: prev,
                };
                let h = rec.hash();
                let e = AuditEntry {
                    seq,
                    at: rec.at,
                    kind: rec.kind.clone(),
                    wallet_tag: rec.wallet_tag.clone(),
                    detail: rec.detail.clone(),
                    prev_hash: prev.to_vec(),
                    hash: h.to_vec(),
                };
                prev = h;
                e
            })
            .collect()
    }

    #[test]
    fn verify_detects_tampering_and_checks_the_signer() {
        let key = k256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
        let other = k256::ecdsa::SigningKey::generate_from_rng(&mut rand::rng());
        let pk = PublicKey::from(key.verifying_key());
        let es = entries(3);
        let head: [u8; 32] = es[2].hash.as_slice().try_into().expect("32");
        let cp = |k: &k256::ecdsa::SigningKey, seq| {
            Signed::sign(
                AuditCheckpoint {
                    node_id: "ab".repeat(16),
                    seq,
                    head_hash: head,
                    at: 1,
                },
                k,
            )
            .encode()
        };
        assert_eq!(verify_audit(&es, &cp(&key, 3), Some(&pk)), Ok((3, true)));
        assert_eq!(verify_audit(&es, &cp(&key, 3), None), Ok((3, false)));
        let err = verify_audit(&es, &cp(&other, 3), Some(&pk))
            .expect_err("wrong signer")
            .0;
        assert!(err.contains("checkpoint"), "{err}");
        let mut tampered = es.clone();
        tampered[1].detail = "changed".into();
        let err = verify_audit(&tampered, &cp(&key, 3), Some(&pk))
            .expect_err("tampered")
            .0;
        assert!(err.contains("entry 2"), "{err}");
        // Entries appended after the checkpoint are not held against the node.
        let mut more = entries(4);
        more.truncate(4);
        assert_eq!(verify_audit(&more, &cp(&key, 3), Some(&pk)), Ok((3, true)));
    }
}
