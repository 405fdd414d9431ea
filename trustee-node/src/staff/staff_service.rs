//! The bank node's `Staff` gRPC service: thin handlers over [`super::StaffOps`].

use crate::epochs::passkey_reset::ResetOwner;
use crate::node::Node;
use crate::recovery::parse_session_key;
use crate::recovery::session::{RecoverySession, SessionState};
use dlocker_proto::pb;
use dlocker_proto::pb::staff_server::Staff;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `Staff` gRPC service (bank role only).
#[derive(Debug, Clone)]
pub struct StaffService {
    node: Arc<Node>,
}

impl StaffService {
    /// A service for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

/// The customer the bank recorded for the wallet at enrollment: (user name, reference), empty
/// when not recorded.
fn customer(node: &Node, wallet_id: &str) -> (String, String) {
    let c = node.enrollment().customer(wallet_id);
    (
        c.as_ref().map(|c| c.user_name.clone()).unwrap_or_default(),
        c.and_then(|c| c.customer_reference).unwrap_or_default(),
    )
}

fn pending(
    node: &Node,
    s: RecoverySession,
    required: u32,
    approved: bool,
    now: u64,
) -> pb::PendingRecovery {
    let (customer_user_name, customer_reference) = customer(node, &s.wallet_id);
    pb::PendingRecovery {
        customer_user_name,
        customer_reference,
        owner_authenticated: matches!(
            s.state,
            SessionState::OwnerAuthenticated { .. } | SessionState::Released { .. }
        ),
        expires_at: s.expires_at,
        state: s.state_name(now).to_owned(),
        session_key: s
            .session_key()
            .map(|k| dlocker_proto::keys::encode_public_key(&k).to_vec())
            .unwrap_or_default(),
        session_id: s.id,
        wallet_id: s.wallet_id,
        opened_at: s.opened_at,
        release_not_before: s.release_not_before,
        approvers: s.approvals,
        approvals_required: required,
        approved,
    }
}

fn reset_pb(
    node: &Node,
    s: crate::staff::resets::ResetStatus,
    staff: bool,
) -> pb::PasskeyResetStatus {
    let r = s.record;
    // Only staff see who the customer is; the phone's filing is answered without it.
    let (customer_user_name, customer_reference) = if staff {
        customer(node, &r.wallet_id)
    } else {
        Default::default()
    };
    pb::PasskeyResetStatus {
        credential_fingerprint: hex::decode(&r.credential_fingerprint).unwrap_or_default(),
        customer_user_name,
        customer_reference,
        request_id: r.id,
        wallet_id: r.wallet_id,
        opened_at: r.opened_at,
        expires_at: r.expires_at,
        approvers: r.approvals,
        approvals_required: s.approvals_required,
        reset_approval_encoded: s.approval.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl Staff for StaffService {
    async fn request_passkey_reset(
        &self,
        req: Request<pb::RequestPasskeyResetRequest>,
    ) -> Result<Response<pb::PasskeyResetStatus>, Status> {
        // Anyone may call it; it verifies a proof and a registration, so it is metered as an
        // owner call.
        self.node.caller_limits.owner_call(req.remote_addr())?;
        let r = req.into_inner();
        let owner =
            ResetOwner::from_wire(r.wallet_id, r.registration_json, &r.nonces, r.key_proof)?;
        let wait = crate::hold::capped_wait(r.wait_secs);
        let s = self.node.staff().request_passkey_reset(owner, wait).await?;
        Ok(Response::new(reset_pb(&self.node, s, false)))
    }

    async fn list_passkey_resets(
        &self,
        req: Request<pb::ListPasskeyResetsRequest>,
    ) -> Result<Response<pb::ListPasskeyResetsResponse>, Status> {
        let list = self
            .node
            .staff()
            .list_passkey_resets(&req.into_inner().staff_request_encoded)
            .await?;
        Ok(Response::new(pb::ListPasskeyResetsResponse {
            resets: list
                .into_iter()
                .map(|s| reset_pb(&self.node, s, true))
                .collect(),
        }))
    }

    async fn approve_passkey_reset(
        &self,
        req: Request<pb::ApprovePasskeyResetRequest>,
    ) -> Result<Response<pb::PasskeyResetStatus>, Status> {
        let s = self
            .node
            .staff()
            .approve_passkey_reset(&req.into_inner().staff_request_encoded)
            .await?;
        Ok(Response::new(reset_pb(&self.node, s, true)))
    }

    async fn list_recoveries(
        &self,
        req: Request<pb::ListRecoveriesRequest>,
    ) -> Result<Response<pb::ListRecoveriesResponse>, Status> {
        let node = &self.node;
        let sessions = node
            .staff()
            .staff_list(&req.into_inner().staff_request_encoded)
            .await?;
        let now = node.now();
        let required = node.staff().approvals_required();
        let recoveries = sessions
            .into_iter()
            .map(|s| {
                let approved = node.staff().approved(&s, now);
                pending(node, s, required, approved, now)
            })
            .collect();
        Ok(Response::new(pb::ListRecoveriesResponse { recoveries }))
    }

    async fn approve_recovery(
        &self,
        req: Request<pb::ApproveRecoveryRequest>,
    ) -> Result<Response<pb::ApproveRecoveryResponse>, Status> {
        let a = self
            .node
            .staff()
            .staff_approve(&req.into_inner().staff_request_encoded)
            .await?;
        Ok(Response::new(pb::ApproveRecoveryResponse {
            approvers: a.approvers,
            approvals_required: a.approvals_required,
            bank_approval_encoded: a.bank_approval.unwrap_or_default(),
        }))
    }

    async fn cancel_recovery(
        &self,
        req: Request<pb::StaffCancelRequest>,
    ) -> Result<Response<pb::StaffCancelResponse>, Status> {
        let c = self
            .node
            .staff()
            .staff_cancel(&req.into_inner().staff_request_encoded)
            .await?;
        Ok(Response::new(pb::StaffCancelResponse {
            bank_cancellation_encoded: c,
        }))
    }

    async fn manage_staff(
        &self,
        req: Request<pb::ManageStaffRequest>,
    ) -> Result<Response<pb::StaffRoster>, Status> {
        let r = self
            .node
            .staff()
            .staff_admin(&req.into_inner().staff_admin_request_encoded)
            .await?;
        Ok(Response::new(pb::StaffRoster {
            staff: r
                .staff
                .into_iter()
                .map(|m| pb::StaffMemberInfo {
                    id: m.id,
                    public_key: dlocker_proto::keys::encode_public_key(&m.public_key).to_vec(),
                    roles: m.roles.iter().map(|r| r.name().to_owned()).collect(),
                })
                .collect(),
            approvals_required: r.approvals_required,
            managed: self.node.staff().roster_is_managed(),
        }))
    }

    async fn get_approval(
        &self,
        req: Request<pb::GetApprovalRequest>,
    ) -> Result<Response<pb::GetApprovalResponse>, Status> {
        let req = req.into_inner();
        let wallet_id = crate::wallet::parse_wallet_id(req.wallet_id)?;
        let r = parse_session_key(&req.session_key)?;
        let wait = crate::hold::capped_wait(req.wait_secs);
        let a = self
            .node
            .staff()
            .await_approval(&wallet_id, &r, wait)
            .await?;
        Ok(Response::new(pb::GetApprovalResponse {
            bank_approval_encoded: a,
        }))
    }
}
