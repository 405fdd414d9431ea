//! What the node holds for a wallet: `GetBackupStatus` and `ProveShare`.

use super::EnrollmentOps;
use crate::at_rest::{self, ShareRecordId};
use crate::db::{StoreError, WALLETS_TREE, WalletRecord};
use crate::error::NodeError;
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;
use dlocker_proto::schnorr::{NONCE_LEN, PossessionProof, ProofContext};

/// A wallet's backup as this node holds it (no secrets).
#[derive(Debug, Clone)]
pub struct BackupStatus {
    /// The wallet.
    pub wallet_id: WalletId,
    /// Epoch.
    pub epoch: u64,
    /// This node's share index.
    pub share_index: u16,
    /// Manifest hash.
    pub manifest_hash: [u8; 32],
    /// Unix seconds.
    pub enrolled_at: u64,
    /// Stored blob size.
    pub blob_size: u64,
    /// The signed receipt issued at deposit.
    pub receipt: Vec<u8>,
    /// When the deposit was stored, while its backup is not confirmed complete
    /// (`ConfirmBackup`); `None` once confirmed (or stored before confirmations existed).
    pub unconfirmed_since: Option<u64>,
}

/// A proof of possession and what it is about.
#[derive(Debug, Clone)]
pub struct ShareProof {
    /// Epoch.
    pub epoch: u64,
    /// Share index.
    pub share_index: u16,
    /// Manifest hash.
    pub manifest_hash: [u8; 32],
    /// The encoded Schnorr proof.
    pub proof: Vec<u8>,
}

fn manifest_hash_of(rec: &WalletRecord) -> Result<[u8; 32], NodeError> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(&rec.meta.manifest_hash, &mut h).map_err(|_| StoreError::Corrupt {
        tree: WALLETS_TREE,
        reason: "manifest hash".into(),
    })?;
    Ok(h)
}

impl EnrollmentOps<'_> {
    fn enrolled(&self, wallet_id: &WalletId) -> Result<WalletRecord, NodeError> {
        self.db
            .wallet(wallet_id.as_str())?
            .ok_or(NodeError::WalletNotFound)
    }

    /// What this node holds for `wallet_id`.
    pub fn backup_status(&self, wallet_id: &WalletId) -> Result<BackupStatus, NodeError> {
        let rec = self.enrolled(wallet_id)?;
        Ok(BackupStatus {
            wallet_id: wallet_id.clone(),
            epoch: rec.meta.epoch,
            share_index: rec.meta.share_index,
            manifest_hash: manifest_hash_of(&rec)?,
            enrolled_at: rec.meta.enrolled_at,
            blob_size: rec.meta.blob_size,
            receipt: rec.receipt,
            unconfirmed_since: self.db.unconfirmed_since(wallet_id.as_str())?,
        })
    }

    /// Proves possession of the stored share, bound to the verifier's `nonce`.
    pub fn prove_share(
        &self,
        wallet_id: &WalletId,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<ShareProof, NodeError> {
        let rec = self.enrolled(wallet_id)?;
        let manifest_hash = manifest_hash_of(&rec)?;
        let (epoch, share_index) = (rec.meta.epoch, rec.meta.share_index);
        let id = ShareRecordId {
            node_id: self.identity.node_id(),
            wallet_id: wallet_id.as_str(),
            epoch,
            share_index,
        };
        let share =
            at_rest::open_share(&self.storage_key, &id, &rec.sealed_share).map_err(|_| {
                tracing::error!(wallet = %wallet_id.log_tag(), epoch, share_index, "stored share \
                failed its integrity check");
                NodeError::StoredShareCorrupt
            })?;
        let ctx = ProofContext {
            wallet_id: wallet_id.as_str(),
            epoch,
            share_index,
            node_key: self.identity.public_key(),
            nonce,
        };
        let proof = PossessionProof::prove(&share, &ctx)
            .map_err(|e| NodeError::Internal(format!("prove: {e}")))?;
        Ok(ShareProof {
            epoch,
            share_index,
            manifest_hash,
            proof: proof.encode(),
        })
    }
}
