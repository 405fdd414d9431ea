//! The `dlocker.v1.Epochs` gRPC service: thin handlers over [`crate::epochs`]; protobuf becomes
//! domain types at the edge (`TryFrom`), errors go through `NodeError`'s one status mapping.

use crate::epochs::cancel_all::CancelAll;
use crate::epochs::erase::DeleteWallet;
use crate::epochs::passkey_change::{ChangePasskey, NewCredential};
use crate::epochs::passkey_reset::{ResetOwner, ResetPasskey};
use crate::epochs::state::EpochAction;
use crate::epochs::{
    AbandonEpoch, CommitEpoch, OwnerAssertion, RetireWallet, StageAuthority, StageEpoch,
    StagedStatus,
};
use crate::error::NodeError;
use crate::node::Node;
use crate::owner_touch::nonces_from_wire;
use crate::recovery::MAX_STATEMENT_BYTES;
use dlocker_proto::manifest::ManifestHash;
use dlocker_proto::pb;
use dlocker_proto::pb::epochs_server::Epochs;
use dlocker_proto::schnorr::NONCE_LEN;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The Epochs service over a shared [`Node`].
#[derive(Debug, Clone)]
pub struct EpochsService {
    node: Arc<Node>,
}

impl EpochsService {
    /// A service for `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

fn manifest_hash(field: &'static str, b: &[u8]) -> Result<ManifestHash, NodeError> {
    ManifestHash::from_slice(b).map_err(|_| NodeError::invalid(field, "must be 32 bytes"))
}

fn owner(o: Option<pb::OwnerAssertion>) -> Result<Option<OwnerAssertion>, NodeError> {
    o.map(owner_assertion).transpose()
}

fn owner_assertion(o: pb::OwnerAssertion) -> Result<OwnerAssertion, NodeError> {
    Ok(OwnerAssertion {
        nonces: nonces_from_wire(&o.nonces)?,
        challenge_id: o.challenge_id,
        assertion_json: o.assertion_json,
    })
}

/// The action of a `BeginEpochAction` request.
pub fn parse_action(code: i32) -> Result<EpochAction, NodeError> {
    match pb::EpochAction::try_from(code) {
        Ok(pb::EpochAction::Stage) => Ok(EpochAction::Stage),
        Ok(pb::EpochAction::Commit) => Ok(EpochAction::Commit),
        Ok(pb::EpochAction::Abandon) => Ok(EpochAction::Abandon),
        Ok(pb::EpochAction::Retire) => Ok(EpochAction::Retire),
        Ok(pb::EpochAction::Delete) => Ok(EpochAction::Delete),
        Ok(pb::EpochAction::ChangePasskey) => Ok(EpochAction::ChangePasskey),
        Ok(pb::EpochAction::CancelAll) => Ok(EpochAction::CancelAll),
        Ok(pb::EpochAction::ResetPasskey) => Ok(EpochAction::ResetPasskey),
        _ => Err(NodeError::invalid(
            "action",
            "must be STAGE, COMMIT, ABANDON, RETIRE, DELETE, CHANGE_PASSKEY or CANCEL_ALL",
        )),
    }
}

impl TryFrom<pb::StageEpochRequest> for StageEpoch {
    type Error = NodeError;
    fn try_from(r: pb::StageEpochRequest) -> Result<Self, NodeError> {
        use pb::stage_epoch_request::Authority;
        let authority = match r.authority {
            None => None,
            Some(Authority::Owner(o)) => Some(StageAuthority::Owner(owner_assertion(o)?)),
            Some(Authority::Joining(j)) => Some(StageAuthority::Joining {
                owner: owner_assertion(j.owner.ok_or_else(|| {
                    NodeError::invalid("joining.owner", "the owner's assertion is required")
                })?)?,
                passkey_json: j.passkey_json,
                attestations: j.credential_attestations,
            }),
            Some(Authority::Registration(_)) => Some(StageAuthority::Registration),
        };
        Ok(Self {
            manifest: r.manifest_encoded,
            share_envelope: r.share_envelope_encoded,
            blob: r.blob,
            authority,
        })
    }
}

impl TryFrom<pb::CommitEpochRequest> for CommitEpoch {
    type Error = NodeError;
    fn try_from(r: pb::CommitEpochRequest) -> Result<Self, NodeError> {
        Ok(Self {
            wallet_id: crate::wallet::parse_wallet_id(r.wallet_id)?,
            manifest_hash: manifest_hash("manifest_hash", &r.manifest_hash)?,
            owner: owner(r.owner)?,
            quorum: r.quorum_encoded,
        })
    }
}

impl TryFrom<pb::AbandonEpochRequest> for AbandonEpoch {
    type Error = NodeError;
    fn try_from(r: pb::AbandonEpochRequest) -> Result<Self, NodeError> {
        Ok(Self {
            wallet_id: crate::wallet::parse_wallet_id(r.wallet_id)?,
            manifest_hash: manifest_hash("manifest_hash", &r.manifest_hash)?,
            owner: owner(r.owner)?,
        })
    }
}

impl TryFrom<pb::CancelAllRecoveriesRequest> for CancelAll {
    type Error = NodeError;
    fn try_from(r: pb::CancelAllRecoveriesRequest) -> Result<Self, NodeError> {
        Ok(Self {
            wallet_id: crate::wallet::parse_wallet_id(r.wallet_id)?,
            owner: owner(r.owner)?,
        })
    }
}

impl TryFrom<pb::DeleteWalletRequest> for DeleteWallet {
    type Error = NodeError;
    fn try_from(r: pb::DeleteWalletRequest) -> Result<Self, NodeError> {
        Ok(Self {
            wallet_id: crate::wallet::parse_wallet_id(r.wallet_id)?,
            owner: owner(r.owner)?,
            erase_documents: r.erase_documents,
        })
    }
}

impl TryFrom<pb::ChangePasskeyRequest> for ChangePasskey {
    type Error = NodeError;
    fn try_from(r: pb::ChangePasskeyRequest) -> Result<Self, NodeError> {
        use pb::change_passkey_request::NewCredential as Wire;
        Ok(Self {
            wallet_id: crate::wallet::parse_wallet_id(r.wallet_id)?,
            owner: owner(r.owner)?,
            new_credential: r.new_credential.map(|c| match c {
                Wire::RegistrationJson(j) => NewCredential::Registration(j),
                Wire::PasskeyJson(j) => NewCredential::Passkey(j),
            }),
        })
    }
}

impl TryFrom<pb::ResetPasskeyRequest> for ResetPasskey {
    type Error = NodeError;
    fn try_from(r: pb::ResetPasskeyRequest) -> Result<Self, NodeError> {
        if r.reset_approval_encoded.len() > MAX_STATEMENT_BYTES {
            return Err(NodeError::invalid(
                "reset_approval_encoded",
                format!("at most {MAX_STATEMENT_BYTES} bytes"),
            ));
        }
        Ok(Self {
            owner: ResetOwner::from_wire(r.wallet_id, r.registration_json, &r.nonces, r.key_proof)?,
            approval: r.reset_approval_encoded,
        })
    }
}

impl TryFrom<pb::RetireWalletRequest> for RetireWallet {
    type Error = NodeError;
    fn try_from(r: pb::RetireWalletRequest) -> Result<Self, NodeError> {
        Ok(Self {
            wallet_id: crate::wallet::parse_wallet_id(r.wallet_id)?,
            successor: r.successor_manifest_encoded,
            commit_receipts: r.commit_receipts_encoded,
            owner: owner(r.owner)?,
        })
    }
}

/// A staged epoch as `GetBackupStatus` carries it.
pub fn staged_pb(s: StagedStatus) -> pb::StagedEpoch {
    pb::StagedEpoch {
        epoch: s.epoch,
        share_index: u32::from(s.share_index),
        manifest_hash: s.manifest_hash.to_vec(),
        staged_at: s.staged_at,
        expires_at: s.expires_at,
        stage_receipt_encoded: s.stage_receipt,
    }
}

#[tonic::async_trait]
impl Epochs for EpochsService {
    async fn begin_epoch_action(
        &self,
        req: Request<pb::BeginEpochActionRequest>,
    ) -> Result<Response<pb::BeginEpochActionResponse>, Status> {
        self.node.caller_limits.owner_call(req.remote_addr())?;
        let place = self.node.begin_ceremony(req.remote_addr())?;
        let r = req.into_inner();
        let wallet_id = crate::wallet::parse_wallet_id(r.wallet_id)?;
        let action = parse_action(r.action)?;
        // The hash is part of the one-touch challenge, not of the nonce; checked for shape only.
        // A delete's challenge names no manifest.
        if !matches!(
            action,
            EpochAction::Delete
                | EpochAction::ChangePasskey
                | EpochAction::CancelAll
                | EpochAction::ResetPasskey
        ) {
            manifest_hash("manifest_hash", &r.manifest_hash)?;
        }
        let c = self
            .node
            .epochs()
            .begin_epoch_action(&wallet_id, action)
            .await?;
        place.issued(&c.nonce);
        let (passkey_json, credential_fingerprint) = match c.passkey {
            Some((json, fp)) => (json, fp.to_vec()),
            None => (String::new(), Vec::new()),
        };
        Ok(Response::new(pb::BeginEpochActionResponse {
            challenge_id: c.challenge_id,
            request_options_json: c.request_options_json,
            expires_at: c.expires_at,
            nonce: c.nonce.to_vec(),
            passkey_json,
            credential_fingerprint,
            credential_attestation: c.credential_attestation.unwrap_or_default(),
            creation_options_json: c.creation_options_json,
        }))
    }

    async fn stage_epoch(
        &self,
        req: Request<pb::StageEpochRequest>,
    ) -> Result<Response<pb::StageEpochResponse>, Status> {
        let receipt = self
            .node
            .epochs()
            .stage_epoch(StageEpoch::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::StageEpochResponse {
            stage_receipt_encoded: receipt,
        }))
    }

    async fn commit_epoch(
        &self,
        req: Request<pb::CommitEpochRequest>,
    ) -> Result<Response<pb::CommitEpochResponse>, Status> {
        let receipt = self
            .node
            .epochs()
            .commit_epoch(CommitEpoch::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::CommitEpochResponse {
            commit_receipt_encoded: receipt,
        }))
    }

    async fn abandon_epoch(
        &self,
        req: Request<pb::AbandonEpochRequest>,
    ) -> Result<Response<pb::AbandonEpochResponse>, Status> {
        let abandoned = self
            .node
            .epochs()
            .abandon_epoch(AbandonEpoch::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::AbandonEpochResponse { abandoned }))
    }

    async fn retire_wallet(
        &self,
        req: Request<pb::RetireWalletRequest>,
    ) -> Result<Response<pb::RetireWalletResponse>, Status> {
        let receipt = self
            .node
            .epochs()
            .retire_wallet(RetireWallet::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::RetireWalletResponse {
            retire_receipt_encoded: receipt,
        }))
    }

    async fn delete_wallet(
        &self,
        req: Request<pb::DeleteWalletRequest>,
    ) -> Result<Response<pb::DeleteWalletResponse>, Status> {
        let (receipt, documents_erased) = self
            .node
            .epochs()
            .delete_wallet(DeleteWallet::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::DeleteWalletResponse {
            erase_receipt_encoded: receipt,
            documents_erased,
        }))
    }

    async fn cancel_all_recoveries(
        &self,
        req: Request<pb::CancelAllRecoveriesRequest>,
    ) -> Result<Response<pb::CancelAllRecoveriesResponse>, Status> {
        self.node.caller_limits.owner_call(req.remote_addr())?;
        let closed = self
            .node
            .epochs()
            .cancel_all_recoveries(CancelAll::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::CancelAllRecoveriesResponse {
            cancelled_session_ids: closed,
        }))
    }

    async fn reset_passkey(
        &self,
        req: Request<pb::ResetPasskeyRequest>,
    ) -> Result<Response<pb::ResetPasskeyResponse>, Status> {
        let fp = self
            .node
            .epochs()
            .reset_passkey(ResetPasskey::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::ResetPasskeyResponse {
            credential_fingerprint: fp.to_vec(),
        }))
    }

    async fn change_passkey(
        &self,
        req: Request<pb::ChangePasskeyRequest>,
    ) -> Result<Response<pb::ChangePasskeyResponse>, Status> {
        let fp = self
            .node
            .epochs()
            .change_passkey(ChangePasskey::try_from(req.into_inner())?)
            .await?;
        Ok(Response::new(pb::ChangePasskeyResponse {
            credential_fingerprint: fp.to_vec(),
        }))
    }

    async fn release_staged_share(
        &self,
        req: Request<pb::ReleaseShareRequest>,
    ) -> Result<Response<pb::ReleaseShareResponse>, Status> {
        let r = req.into_inner();
        let s = self
            .node
            .epochs()
            .release_staged_share(
                &r.session_id,
                &r.bank_approval_encoded,
                crate::hold::capped_wait(r.wait_secs),
            )
            .await?;
        Ok(Response::new(pb::ReleaseShareResponse {
            share_envelope_encoded: s.envelope,
            manifest_encoded: s.manifest,
            release_encoded: s.release,
            blob: s.blob,
        }))
    }

    async fn prove_epoch_share(
        &self,
        req: Request<pb::ProveEpochShareRequest>,
    ) -> Result<Response<pb::ProveShareResponse>, Status> {
        let r = req.into_inner();
        let wallet_id = crate::wallet::parse_wallet_id(r.wallet_id)?;
        let nonce = <[u8; NONCE_LEN]>::try_from(r.nonce.as_slice()).map_err(|_| {
            NodeError::invalid("nonce", format!("must be exactly {NONCE_LEN} bytes"))
        })?;
        let proof = self
            .node
            .epochs()
            .prove_epoch_share(&wallet_id, &nonce, r.epoch)?;
        Ok(Response::new(pb::ProveShareResponse {
            epoch: proof.epoch,
            share_index: u32::from(proof.share_index),
            manifest_hash: proof.manifest_hash.to_vec(),
            proof_encoded: proof.proof,
        }))
    }
}
