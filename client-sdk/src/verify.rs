//! "Does every trustee still hold a good share?" — without any trustee revealing it.
//!
//! Each trustee proves knowledge of `s_i` for `P_i = s_i·G`, where `P_i` is computed here from the
//! manifest's commitments (never taken from the node), bound to a fresh nonce so an old proof
//! cannot be replayed.

use crate::transport::{connect, describe_status};
use crate::trustees::{TrusteeInfo, TrusteeSet};
use dlocker_proto::manifest::{Manifest, ManifestHash, TrusteeEntry};
use dlocker_proto::pb::ProveShareRequest;
use dlocker_proto::schnorr::{NONCE_LEN, PossessionProof, ProofContext};
use futures::future::join_all;
use rand::RngExt as _;
use serde::Serialize;

/// A trustee's share health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ShareStatus {
    /// Proved possession of the right share for this manifest.
    Healthy,
    /// Unreachable, holds another backup, or the proof failed: the reason says which.
    Unhealthy(String),
}

impl ShareStatus {
    /// True for [`ShareStatus::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, ShareStatus::Healthy)
    }
}

/// One trustee's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrusteeHealth {
    /// Name from the trustees file (or the node id if the file does not list it).
    pub name: String,
    /// Node id.
    pub node_id: String,
    /// Share index the manifest assigns it.
    pub share_index: u16,
    /// Epoch checked.
    pub epoch: u64,
    /// The verdict.
    #[serde(flatten)]
    pub status: ShareStatus,
}

/// The result of [`verify_backup`], one entry per manifest trustee in manifest order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Wallet.
    pub wallet_id: String,
    /// Epoch.
    pub epoch: u64,
    /// Threshold of the backup.
    pub threshold: u16,
    /// Manifest hash (hex in JSON).
    #[serde(serialize_with = "ser_hash")]
    pub manifest_hash: ManifestHash,
    /// Per trustee.
    pub entries: Vec<TrusteeHealth>,
}

fn ser_hash<S: serde::Serializer>(h: &ManifestHash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.to_string())
}

impl VerifyReport {
    /// True when every trustee is healthy.
    pub fn all_healthy(&self) -> bool {
        self.entries.iter().all(|e| e.status.is_healthy())
    }
    /// How many trustees are healthy.
    pub fn healthy_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.status.is_healthy())
            .count()
    }
    /// True while at least `threshold` trustees are healthy (the wallet is still recoverable).
    pub fn recoverable(&self) -> bool {
        self.healthy_count() >= usize::from(self.threshold)
    }
}

/// Progress of [`verify_backup_with_progress`]: called once per trustee when its result is in.
pub type VerifyProgress<'a> = &'a (dyn Fn(&TrusteeHealth) + Sync);

/// Asks every trustee in `manifest` to prove it still holds its share, concurrently.
pub async fn verify_backup(trustees: &TrusteeSet, manifest: &Manifest) -> VerifyReport {
    verify_backup_with_progress(trustees, manifest, &|_| {}).await
}

/// [`verify_backup`] with a callback per finished trustee.
pub async fn verify_backup_with_progress(
    trustees: &TrusteeSet,
    manifest: &Manifest,
    progress: VerifyProgress<'_>,
) -> VerifyReport {
    let hash = manifest.hash();
    let entries = join_all(manifest.trustees().iter().map(|entry| async move {
        let info = trustees.by_node_id(&entry.node_id);
        let status = match info {
            None => ShareStatus::Unhealthy("not in the trustees file: cannot reach it".into()),
            // The manifest pins the key too; both must agree.
            Some(info) if info.public_key != entry.public_key => ShareStatus::Unhealthy(
                "trustees file and manifest disagree on this node's key".into(),
            ),
            Some(info) => match prove(info, entry, manifest, hash).await {
                Ok(()) => ShareStatus::Healthy,
                Err(reason) => ShareStatus::Unhealthy(reason),
            },
        };
        let health = TrusteeHealth {
            name: info.map_or_else(|| entry.node_id.clone(), |i| i.name.clone()),
            node_id: entry.node_id.clone(),
            share_index: entry.share_index,
            epoch: manifest.epoch(),
            status,
        };
        progress(&health);
        health
    }))
    .await;
    VerifyReport {
        wallet_id: manifest.wallet_id().to_owned(),
        epoch: manifest.epoch(),
        threshold: manifest.threshold(),
        manifest_hash: hash,
        entries,
    }
}

async fn prove(
    info: &TrusteeInfo,
    entry: &TrusteeEntry,
    manifest: &Manifest,
    hash: ManifestHash,
) -> Result<(), String> {
    let mut client = connect(info).await.map_err(|e| e.to_string())?;
    let nonce: [u8; NONCE_LEN] = rand::rng().random();
    let resp = client
        .prove_share(ProveShareRequest {
            wallet_id: manifest.wallet_id().to_owned(),
            nonce: nonce.to_vec(),
        })
        .await
        .map_err(|s| describe_status(&s))?
        .into_inner();
    if resp.manifest_hash.as_slice() != hash.0.as_slice() || resp.epoch != manifest.epoch() {
        return Err(format!(
            "holds a different backup of this wallet (epoch {})",
            resp.epoch
        ));
    }
    if resp.share_index != u32::from(entry.share_index) {
        return Err(format!(
            "claims share index {}, manifest says {}",
            resp.share_index, entry.share_index
        ));
    }
    let proof = PossessionProof::decode(&resp.proof_encoded).map_err(|e| e.to_string())?;
    let ctx = ProofContext {
        wallet_id: manifest.wallet_id(),
        epoch: manifest.epoch(),
        share_index: entry.share_index,
        node_key: &info.public_key,
        nonce: &nonce,
    };
    proof
        .verify(
            &manifest
                .commitments()
                .expected_public_share(entry.share_index),
            &ctx,
        )
        .map_err(|_| {
            "possession proof does not verify: the node does not hold a valid share".into()
        })
}
