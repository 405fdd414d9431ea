//! The document locker on this node.
//!
//! With `[locker] enabled = true` (normally on the bank's node) the node serves
//! `dlocker_locker`'s `DocumentService` over its own database, and is the locker's host:
//!
//! * its clock and its hash-chained audit log (holders appear as the keyed wallet tag);
//! * its bank staff, checked by the same [`crate::staff::auth::StaffGate`] (the `operator` role
//!   approves and suspends issuers and requesters);
//! * the bank approval keys it accepts (a re-issue needs an approval bound to the new key);
//! * the wallet owner's passkey registered at enrollment, checked with the one-touch challenge
//!   (`crate::owner_touch`; the locker's ceremony has this node's nonce only);
//! * its identity key, which signs status lists, and a sealing key for hosted issuer keys
//!   derived from its storage key.
//!
//! ```toml
//! [locker]
//! enabled = true
//! # max_upload_bytes = 65536        # largest self-attested file
//! # max_uploads_per_holder = 16
//! # pull_timeout_secs = 10          # issuer repositories (pull)
//! # status_list_ttl_secs = 300      # validity of a served status list credential
//! ```

pub mod documents;

use crate::db::StoreError;
use crate::error::NodeError;
use crate::node::{Node, SetupError};
use crate::recovery::MAX_STATEMENT_BYTES;
use dlocker_locker::server::{Locker, LockerHost, LockerKeys, LockerSettings, OwnerAssertionStart};
use dlocker_proto::owner_challenge::{OwnerAction, TrusteeNonce};
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::statement::StaffAction;
use futures::future::BoxFuture;
use k256::PublicKey;
use std::sync::Arc;
use tonic::Status;

/// The node as the locker's host.
#[derive(Debug, Clone)]
pub struct NodeLockerHost {
    node: Arc<Node>,
}

fn status(e: NodeError) -> Status {
    Status::from(e)
}

impl LockerHost for NodeLockerHost {
    fn now(&self) -> u64 {
        self.node.now()
    }

    fn count_unauthenticated_refusal(&self, _code: dlocker_locker::refusal::RefusalCode) {
        self.node.stats().count_unauthenticated_fetch_refusal();
    }

    fn flush(&self) -> futures::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.node.db().flush().await.map_err(|e| e.to_string()) })
    }

    fn audit(
        &self,
        now: u64,
        kind: &str,
        holder: Option<&str>,
        detail: &str,
    ) -> Result<(), String> {
        self.node
            .audit
            .append(now, kind, holder, detail)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn check_staff(&self, request: &[u8], action: StaffAction, now: u64) -> Result<String, Status> {
        if request.len() > MAX_STATEMENT_BYTES {
            return Err(NodeRefusal::InvalidRequest.status(format!(
                "staff_request_encoded: at most {MAX_STATEMENT_BYTES} bytes"
            )));
        }
        let gate = self.node.staff_gate.as_ref().ok_or_else(|| {
            NodeRefusal::NoBankStaff.status(
                "this node has no bank staff: the locker's operator actions need role = \"bank\"",
            )
        })?;
        self.node.staff().sync_roster().map_err(status)?;
        gate.check(request, action, now)
            .map(|v| v.staff_id)
            .map_err(|e| {
                tracing::warn!(action = action.name(), error = %e, "locker staff request refused");
                status(NodeError::Staff(e))
            })
    }

    fn owner_call(&self, peer: Option<std::net::SocketAddr>) -> Result<(), Status> {
        self.node.caller_limits.owner_call(peer).map_err(status)
    }

    fn accepted_bank_keys(&self) -> Vec<PublicKey> {
        self.node.bank_keys.keys().to_vec()
    }

    fn begin_owner_assertion<'a>(
        &'a self,
        holder: &'a str,
        action: OwnerAction,
    ) -> BoxFuture<'a, Result<OwnerAssertionStart, Status>> {
        Box::pin(async move {
            let node = &self.node;
            let wallet = crate::wallet::parse_wallet_id(holder.to_owned()).map_err(status)?;
            let rec = node
                .recovery()
                .wallet_record(wallet.as_str())
                .map_err(status)?;
            let passkey = crate::recovery::RecoveryOps::stored_passkey(&rec).map_err(status)?;
            let request_options_json = node
                .recovery()
                .request_options_template(&passkey)
                .map_err(status)?;
            let issued = node
                .owner_touch()
                .issue_owner_nonce(wallet.as_str(), action)
                .map_err(status)?;
            node.commit(Vec::new()).await.map_err(status)?;
            Ok(OwnerAssertionStart {
                request_options_json,
                nonce: issued.nonce,
                node_id: node.identity().node_id().to_owned(),
                expires_at: issued.expires_at,
            })
        })
    }

    fn finish_owner_assertion<'a>(
        &'a self,
        holder: &'a str,
        action: OwnerAction,
        authorized: &'a [u8],
        nonce: [u8; 32],
        assertion_json: &'a str,
    ) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            let node = &self.node;
            let wallet = crate::wallet::parse_wallet_id(holder.to_owned()).map_err(status)?;
            let wallet = wallet.as_str();
            let _guard = node.recovery_lock.lock().await?;
            let now = node.now();
            let rec = node.recovery().wallet_record(wallet).map_err(status)?;
            let passkey = crate::recovery::RecoveryOps::stored_passkey(&rec).map_err(status)?;
            let nonces = vec![TrusteeNonce {
                node_id: node.identity().node_id().to_owned(),
                nonce,
            }];
            let touch = node
                .owner_touch()
                .verify_owner_assertion(
                    wallet,
                    action,
                    authorized,
                    nonces,
                    assertion_json,
                    &passkey,
                )
                .map_err(status)?;
            node.owner_touch().spend_nonce(&touch).map_err(status)?;
            if let Some(updated) = &touch.value {
                let json = serde_json::to_vec(updated)
                    .map_err(|e| status(NodeError::Internal(format!("serialise passkey: {e}"))))?;
                node.db
                    .put_passkey_json(wallet, &json)
                    .map_err(|e| status(NodeError::Storage(e)))?;
            }
            let ev = node
                .record(
                    now,
                    "owner_authenticated",
                    wallet,
                    "",
                    &format!("document locker ({action})"),
                )
                .map_err(status)?;
            node.commit(vec![ev]).await.map_err(status)?;
            Ok(())
        })
    }
}

/// The document locker of `node`, when `[locker] enabled = true` (the gRPC service and the
/// HTTP document endpoints share it).
pub fn open_locker(node: &Arc<Node>) -> Result<Option<Arc<Locker>>, SetupError> {
    let cfg = &node.config().locker;
    if !cfg.enabled {
        return Ok(None);
    }
    let mut settings = LockerSettings::new(&node.config().endpoint);
    settings.max_upload_bytes = cfg.max_upload_bytes;
    settings.max_uploads_per_holder = cfg.max_uploads_per_holder;
    settings.pull_timeout_secs = cfg.pull_timeout_secs;
    settings.status_list_ttl_secs = cfg.status_list_ttl_secs;
    let keys = LockerKeys {
        locker_id: node.identity().node_id().to_owned(),
        status_key: node.identity().signing_key(),
        sealing_key: node.locker_sealing_key.clone(),
    };
    let host = Arc::new(NodeLockerHost { node: node.clone() });
    let locker = node
        .db
        .open_locker(host, keys, settings)
        .map_err(|reason| {
            SetupError::Store(StoreError::Corrupt {
                tree: dlocker_locker::server::store::LOCKER_TREE,
                reason,
            })
        })?;
    // Opened once per node: a second call (none today) keeps the first.
    let _ = node.locker.set(Arc::downgrade(&locker));
    tracing::info!(locker_id = %locker.locker_id(), "document locker enabled");
    Ok(Some(locker))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staff::auth::{StaffAuthError, StaffGate, StaffMember, StaffRole};
    use dlocker_proto::statement::{Signed, StaffRequest};
    use k256::ecdsa::SigningKey;
    use k256::elliptic_curve::Generate;

    #[test]
    fn only_operators_decide_the_registry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Database::open(dir.path()).expect("db");
        let op = SigningKey::generate_from_rng(&mut rand::rng());
        let approver = SigningKey::generate_from_rng(&mut rand::rng());
        let gate = StaffGate::new(
            &db,
            vec![
                StaffMember {
                    id: "olivia".into(),
                    public_key: PublicKey::from(op.verifying_key()),
                    roles: vec![StaffRole::Operator],
                },
                StaffMember {
                    id: "alice".into(),
                    public_key: PublicKey::from(approver.verifying_key()),
                    roles: vec![StaffRole::Approver],
                },
            ],
            "bank".into(),
            300,
        )
        .expect("gate");
        let req = |k: &SigningKey, action, nonce| {
            Signed::sign(
                StaffRequest {
                    node_id: "bank".into(),
                    action,
                    target: "in.gov.transport".into(),
                    timestamp: 1000,
                    nonce: [nonce; 16],
                },
                k,
            )
            .encode()
        };
        for (i, a) in [
            StaffAction::ApproveIssuer,
            StaffAction::SuspendIssuer,
            StaffAction::ApproveRequester,
            StaffAction::SuspendRequester,
            StaffAction::ListRegistry,
        ]
        .into_iter()
        .enumerate()
        {
            assert!(
                gate.check(&req(&op, a, i as u8), a, 1000).is_ok(),
                "{}",
                a.name()
            );
        }
        assert!(matches!(
            gate.check(
                &req(&approver, StaffAction::ApproveIssuer, 50),
                StaffAction::ApproveIssuer,
                1000
            ),
            Err(StaffAuthError::Forbidden { .. })
        ));
        // Every staff member may list the registry, as they may list recoveries.
        assert!(
            gate.check(
                &req(&approver, StaffAction::ListRegistry, 51),
                StaffAction::ListRegistry,
                1000
            )
            .is_ok()
        );
        // And an operator approves no recovery.
        assert!(matches!(
            gate.check(
                &req(&op, StaffAction::ApproveRecovery, 52),
                StaffAction::ApproveRecovery,
                1000
            ),
            Err(StaffAuthError::Forbidden { .. })
        ));
    }
}
