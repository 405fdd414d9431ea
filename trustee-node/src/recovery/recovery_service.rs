//! The `dlocker.v1.Recovery` gRPC service: thin handlers over [`crate::recovery`], plus the
//! audit log and the event stream.

use crate::error::NodeError;
use crate::events::StoredEvent;
use crate::node::Node;
use crate::owner_touch::nonces_from_wire;
use crate::recovery::session::SessionState;
use crate::recovery::{CancelAuthority, MAX_AUDIT_PAGE, parse_session_key};
use dlocker_proto::pb;
use dlocker_proto::pb::recovery_server::Recovery;
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::statement::StaffAction;
use sha2::Digest as _;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Events read from storage per batch while catching up.
const EVENT_BATCH: usize = 256;

/// How often a stream re-reads the stored outbox on a shared database.
const EVENT_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// The Recovery service over a shared [`Node`].
#[derive(Debug, Clone)]
pub struct RecoveryService {
    node: Arc<Node>,
}

impl RecoveryService {
    /// A service for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

fn event_pb(e: StoredEvent) -> pb::Event {
    pb::Event {
        seq: e.seq,
        at: e.at,
        kind: e.kind,
        wallet_id: e.wallet_id,
        session_id: e.session_id,
        detail: e.detail,
    }
}

/// Sends stored events after `cursor`, then live ones, until the client goes away. Subscribes
/// before reading the backlog and skips what was sent, so nothing falls between the two; after a
/// broadcast lag it re-reads from storage. On a shared database (replicas on PostgreSQL) it
/// also re-reads storage every [`EVENT_POLL`], for events another replica appended: sequence
/// numbers are assigned in commit order (each append advances one head record), so reading
/// from the cursor never skips one.
async fn pump_events(
    node: Arc<Node>,
    mut cursor: u64,
    tx: mpsc::Sender<Result<pb::Event, Status>>,
) {
    let mut live = node.events().subscribe();
    let polls = node.events().polls();
    let mut poll = tokio::time::interval(EVENT_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let catch_up = |cursor: &mut u64| -> Result<Vec<StoredEvent>, NodeError> {
        let batch = node.events().since(*cursor, EVENT_BATCH)?;
        if let Some(last) = batch.last() {
            *cursor = last.seq;
        }
        Ok(batch)
    };
    loop {
        // Backlog (also after a lag or a gap).
        loop {
            let batch = match catch_up(&mut cursor) {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            if batch.is_empty() {
                break;
            }
            for e in batch {
                if tx.send(Ok(event_pb(e))).await.is_err() {
                    return;
                }
            }
        }
        // Live.
        loop {
            let next = tokio::select! {
                () = tx.closed() => return,
                r = live.recv() => r,
                _ = poll.tick(), if polls => break,
            };
            match next {
                Ok(e) if e.seq <= cursor => continue,
                Ok(e) if e.seq == cursor + 1 => {
                    cursor = e.seq;
                    if tx.send(Ok(event_pb(e))).await.is_err() {
                        return;
                    }
                }
                // A gap (announced out of order) or a lag: read it from storage.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

fn status_pb(node: &Node, s: crate::recovery::session::RecoverySession) -> pb::RecoverySession {
    let now = node.now();
    let approved = s.bank_approval.is_some();
    pb::RecoverySession {
        state: s.state_name(now).to_owned(),
        owner_authenticated: matches!(
            s.state,
            SessionState::OwnerAuthenticated { .. } | SessionState::Released { .. }
        ),
        cancelled_by: match &s.state {
            SessionState::Cancelled { by, .. } => by.to_string(),
            _ => String::new(),
        },
        session_key: s
            .session_key()
            .map(|k| dlocker_proto::keys::encode_public_key(&k).to_vec())
            .unwrap_or_default(),
        session_id: s.id,
        wallet_id: s.wallet_id,
        opened_at: s.opened_at,
        release_not_before: s.release_not_before,
        expires_at: s.expires_at,
        approvers: s.approvals,
        approvals_required: node.staff().approvals_required(),
        approved,
    }
}

#[tonic::async_trait]
impl Recovery for RecoveryService {
    async fn open_recovery(
        &self,
        req: Request<pb::OpenRecoveryRequest>,
    ) -> Result<Response<pb::OpenRecoveryResponse>, Status> {
        self.node.caller_limits.owner_call(req.remote_addr())?;
        let place = self.node.begin_ceremony(req.remote_addr())?;
        let req = req.into_inner();
        let wallet_id = crate::wallet::parse_wallet_id(req.wallet_id)?;
        let r = parse_session_key(&req.session_key)?;
        let o = self.node.recovery().open_recovery(&wallet_id, &r).await?;
        place.issued(&o.nonce);
        // Epochs: a staged successor is offered too (released by Epochs.ReleaseStagedShare).
        let staged_manifest_encoded = self
            .node
            .epochs()
            .staged_manifest(&wallet_id)?
            .unwrap_or_default();
        Ok(Response::new(pb::OpenRecoveryResponse {
            session_id: o.session_id,
            request_options_json: o.request_options_json,
            release_not_before: o.release_not_before,
            expires_at: o.expires_at,
            manifest_encoded: o.manifest,
            staged_manifest_encoded,
            nonce: o.nonce.to_vec(),
            authenticate_by: o.authenticate_by,
        }))
    }

    async fn authenticate_owner(
        &self,
        req: Request<pb::AuthenticateOwnerRequest>,
    ) -> Result<Response<pb::AuthenticateOwnerResponse>, Status> {
        self.node.caller_limits.owner_call(req.remote_addr())?;
        let req = req.into_inner();
        let nonces = nonces_from_wire(&req.nonces)?;
        let t = self
            .node
            .recovery()
            .authenticate_owner(&req.session_id, &req.assertion_json, nonces)
            .await?;
        Ok(Response::new(pb::AuthenticateOwnerResponse {
            release_not_before: t,
        }))
    }

    async fn release_share(
        &self,
        req: Request<pb::ReleaseShareRequest>,
    ) -> Result<Response<pb::ReleaseShareResponse>, Status> {
        let req = req.into_inner();
        let r = self
            .node
            .recovery()
            .release_share(
                &req.session_id,
                &req.bank_approval_encoded,
                crate::hold::capped_wait(req.wait_secs),
            )
            .await?;
        Ok(Response::new(pb::ReleaseShareResponse {
            share_envelope_encoded: r.envelope,
            manifest_encoded: r.manifest,
            release_encoded: r.release,
            blob: r.blob,
        }))
    }

    async fn begin_owner_cancel(
        &self,
        req: Request<pb::BeginOwnerCancelRequest>,
    ) -> Result<Response<pb::BeginOwnerCancelResponse>, Status> {
        self.node.caller_limits.owner_call(req.remote_addr())?;
        let place = self.node.begin_ceremony(req.remote_addr())?;
        let c = self
            .node
            .recovery()
            .begin_owner_cancel(&req.into_inner().session_id)
            .await?;
        place.issued(&c.nonce);
        Ok(Response::new(pb::BeginOwnerCancelResponse {
            request_options_json: c.request_options_json,
            nonce: c.nonce.to_vec(),
            expires_at: c.expires_at,
        }))
    }

    async fn cancel_recovery(
        &self,
        req: Request<pb::CancelRecoveryRequest>,
    ) -> Result<Response<pb::CancelRecoveryResponse>, Status> {
        use pb::cancel_recovery_request::Authority;
        if matches!(
            req.get_ref().authority,
            Some(Authority::OwnerAssertionJson(_))
        ) {
            self.node.caller_limits.owner_call(req.remote_addr())?;
        }
        let req = req.into_inner();
        let authority = match req.authority {
            Some(Authority::OwnerAssertionJson(assertion_json)) => CancelAuthority::Owner {
                assertion_json,
                nonces: nonces_from_wire(&req.nonces)?,
            },
            Some(Authority::BankCancellationEncoded(b)) => CancelAuthority::Bank(b),
            None => {
                return Err(NodeError::invalid(
                    "authority",
                    "give owner_assertion_json or bank_cancellation_encoded",
                )
                .into());
            }
        };
        self.node
            .recovery()
            .cancel_recovery(&req.session_id, authority)
            .await?;
        Ok(Response::new(pb::CancelRecoveryResponse {}))
    }

    async fn get_recovery_status(
        &self,
        req: Request<pb::GetRecoveryStatusRequest>,
    ) -> Result<Response<pb::RecoverySession>, Status> {
        let s = self
            .node
            .recovery()
            .recovery_status(&req.into_inner().session_id)?;
        Ok(Response::new(status_pb(&self.node, s)))
    }

    async fn get_audit_log(
        &self,
        req: Request<pb::GetAuditLogRequest>,
    ) -> Result<Response<pb::GetAuditLogResponse>, Status> {
        let req = req.into_inner();
        let limit = match req.limit as usize {
            0 => MAX_AUDIT_PAGE,
            n => n.min(MAX_AUDIT_PAGE),
        };
        let node = &self.node;
        // Checkpoint first: every entry it covers is already stored, so the page (cut at the
        // checkpoint) always verifies against it.
        let checkpoint = node
            .audit_log()
            .checkpoint(
                node.identity().node_id(),
                &node.identity().signing_key(),
                node.now(),
            )
            .map_err(NodeError::from)?;
        let head_seq = checkpoint.body().seq;
        let checkpoint = checkpoint.encode();
        let entries = node
            .audit_log()
            .entries(req.from_seq, limit)
            .map_err(NodeError::from)?
            .into_iter()
            // Entries appended after the checkpoint are left for the next call.
            .filter(|e| e.seq <= head_seq)
            .map(|e| pb::AuditEntry {
                prev_hash: hex::decode(&e.prev_hash).unwrap_or_default(),
                hash: hex::decode(&e.hash).unwrap_or_default(),
                seq: e.seq,
                at: e.at,
                kind: e.kind,
                wallet_tag: e.wallet_tag,
                detail: e.detail,
            })
            .collect();
        Ok(Response::new(pb::GetAuditLogResponse {
            entries,
            checkpoint_encoded: checkpoint,
        }))
    }

    type WatchEventsStream =
        Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send + 'static>>;

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        // Events name wallets and sessions: only for an authenticated reader (a staff member of
        // this node, or an mTLS client the config names).
        let client_cert_sha256 = req.peer_certs().and_then(|certs| {
            certs
                .first()
                .map(|c| <[u8; 32]>::from(sha2::Sha256::digest(c.as_ref())))
        });
        let req = req.into_inner();
        let reader = self.node.staff().authorize_event_reader(
            &req.staff_request_encoded,
            client_cert_sha256.as_ref(),
            StaffAction::WatchEvents,
        )?;
        let limits = &self.node.config().limits;
        let slot = self
            .node
            .events()
            .open_stream(
                &reader,
                limits.event_streams_per_reader,
                limits.max_event_streams,
            )
            .map_err(|e| NodeRefusal::RateLimited.status(e.to_string()))?;
        let cursor = req.cursor;
        let (tx, rx) = mpsc::channel(64);
        let node = self.node.clone();
        tokio::spawn(async move {
            pump_events(node, cursor, tx).await;
            // The stream is over (or its client went away): its slot is free again.
            drop(slot);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
