//! The `dlocker.v1.Trustee` gRPC service: thin handlers that turn protobuf into domain types at
//! the edge, call the node's logic, and map errors through [`NodeError`]'s one `Status` mapping.

use crate::enrollment::{BeginEnrollment, FinishEnrollment};
use crate::error::NodeError;
use crate::node::Node;
use crate::wallet::WalletId;
use dlocker_proto::pb;
use dlocker_proto::pb::trustee_server::Trustee;
use dlocker_proto::schnorr::NONCE_LEN;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The Trustee service over a shared [`Node`].
#[derive(Debug, Clone)]
pub struct TrusteeService {
    node: Arc<Node>,
}

impl TrusteeService {
    /// A service for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

impl TryFrom<pb::BeginEnrollmentRequest> for BeginEnrollment {
    type Error = NodeError;
    fn try_from(r: pb::BeginEnrollmentRequest) -> Result<Self, NodeError> {
        Ok(Self {
            wallet_id: crate::wallet::parse_wallet_id(r.wallet_id)?,
            user_name: r.user_name,
            customer_reference: r.customer_reference,
        })
    }
}

impl TryFrom<pb::FinishEnrollmentRequest> for FinishEnrollment {
    type Error = NodeError;
    fn try_from(r: pb::FinishEnrollmentRequest) -> Result<Self, NodeError> {
        Ok(Self {
            nonces: crate::owner_touch::nonces_from_wire(&r.nonces)?,
            ceremony_id: r.ceremony_id,
            credential_json: r.credential_json,
            manifest: r.manifest_encoded,
            share_envelope: r.share_envelope_encoded,
            blob: r.blob,
        })
    }
}

/// A parsed `ProveShare` request.
#[derive(Debug, Clone)]
pub struct ProveShareParams {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The verifier's nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl TryFrom<pb::ProveShareRequest> for ProveShareParams {
    type Error = NodeError;
    fn try_from(r: pb::ProveShareRequest) -> Result<Self, NodeError> {
        let wallet_id = crate::wallet::parse_wallet_id(r.wallet_id)?;
        let nonce = <[u8; NONCE_LEN]>::try_from(r.nonce.as_slice()).map_err(|_| {
            NodeError::invalid("nonce", format!("must be exactly {NONCE_LEN} bytes"))
        })?;
        Ok(Self { wallet_id, nonce })
    }
}

#[tonic::async_trait]
impl Trustee for TrusteeService {
    async fn get_info(
        &self,
        _req: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::NodeDescriptor>, Status> {
        let node = &self.node;
        Ok(Response::new(pb::NodeDescriptor {
            node_id: node.identity().node_id().to_owned(),
            name: node.config().name.clone(),
            endpoint: node.config().endpoint.clone(),
            public_key: dlocker_proto::keys::encode_public_key(node.identity().public_key())
                .to_vec(),
            role: node.config().role.as_str().to_owned(),
            protocol_version: dlocker_proto::PROTOCOL_VERSION.to_owned(),
            bank_approval_key: node
                .bank_approval_key()
                .map(|k| dlocker_proto::keys::encode_public_key(k).to_vec())
                .unwrap_or_default(),
        }))
    }

    async fn begin_enrollment(
        &self,
        req: Request<pb::BeginEnrollmentRequest>,
    ) -> Result<Response<pb::BeginEnrollmentResponse>, Status> {
        self.node.caller_limits.owner_call(req.remote_addr())?;
        let place = self.node.begin_ceremony(req.remote_addr())?;
        let req = BeginEnrollment::try_from(req.into_inner())?;
        let c = self.node.enrollment().begin_enrollment(req).await?;
        place.issued(&c.nonce);
        Ok(Response::new(pb::BeginEnrollmentResponse {
            ceremony_id: c.ceremony_id,
            creation_options_json: c.creation_options_json,
            expires_at: c.expires_at,
            nonce: c.nonce.to_vec(),
        }))
    }

    async fn finish_enrollment(
        &self,
        req: Request<pb::FinishEnrollmentRequest>,
    ) -> Result<Response<pb::FinishEnrollmentResponse>, Status> {
        let receipt = self
            .node
            .enrollment()
            .finish_enrollment(FinishEnrollment::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::FinishEnrollmentResponse {
            receipt_encoded: receipt,
        }))
    }

    async fn get_backup_status(
        &self,
        req: Request<pb::GetBackupStatusRequest>,
    ) -> Result<Response<pb::GetBackupStatusResponse>, Status> {
        let wallet_id = crate::wallet::parse_wallet_id(req.into_inner().wallet_id)?;
        // Epochs: a staged successor is reported beside the active epoch, or alone on a node
        // joining the wallet (epoch 0: nothing active yet).
        let staged = self
            .node
            .epochs()
            .staged_status(&wallet_id)?
            .map(crate::epochs::epochs_service::staged_pb);
        let s = match self.node.enrollment().backup_status(&wallet_id) {
            Ok(s) => s,
            Err(NodeError::WalletNotFound) if staged.is_some() => {
                return Ok(Response::new(pb::GetBackupStatusResponse {
                    wallet_id: wallet_id.as_str().to_owned(),
                    staged,
                    ..Default::default()
                }));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Response::new(pb::GetBackupStatusResponse {
            wallet_id: s.wallet_id.as_str().to_owned(),
            epoch: s.epoch,
            share_index: u32::from(s.share_index),
            manifest_hash: s.manifest_hash.to_vec(),
            enrolled_at: s.enrolled_at,
            blob_size: s.blob_size,
            receipt_encoded: s.receipt,
            staged,
            unconfirmed_since: s.unconfirmed_since.unwrap_or(0),
        }))
    }

    async fn prove_share(
        &self,
        req: Request<pb::ProveShareRequest>,
    ) -> Result<Response<pb::ProveShareResponse>, Status> {
        let p = ProveShareParams::try_from(req.into_inner())?;
        let proof = self.node.enrollment().prove_share(&p.wallet_id, &p.nonce)?;
        Ok(Response::new(pb::ProveShareResponse {
            epoch: proof.epoch,
            share_index: u32::from(proof.share_index),
            manifest_hash: proof.manifest_hash.to_vec(),
            proof_encoded: proof.proof,
        }))
    }

    async fn confirm_backup(
        &self,
        req: Request<pb::ConfirmBackupRequest>,
    ) -> Result<Response<pb::ConfirmBackupResponse>, Status> {
        let req = req.into_inner();
        let wallet_id = crate::wallet::parse_wallet_id(req.wallet_id)?;
        let newly_confirmed = self
            .node
            .enrollment()
            .confirm_backup(&wallet_id, &req.receipts_encoded)
            .await?;
        Ok(Response::new(pb::ConfirmBackupResponse { newly_confirmed }))
    }
}

#[cfg(test)]
#[path = "trustee_service_tests.rs"]
pub(crate) mod tests;
