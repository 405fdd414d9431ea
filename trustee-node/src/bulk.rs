//! Bulk loading, for benchmarks only (`dlocker-bench growth`): fills a node's database with many
//! wallets quickly, through the node's *real storage path* but without gRPC.
//!
//! What is the same as a deposit over gRPC ([`crate::enrollment`]): the share is sealed under the
//! storage key ([`crate::at_rest`]), the receipt is signed by the identity key, share, manifest,
//! passkey, blob and receipt are written in the one deposit transaction
//! ([`crate::storage::Store::commit_enrollment`]), an audit entry and an event are appended, and
//! the batch is flushed before [`Node::bulk_deposit`] returns.
//!
//! What is skipped, and why it is safe to skip *here*: the passkey ceremony (the caller supplies
//! a passkey JSON, typically one real registration reused), the share envelope (the caller hands
//! the share in the clear, so no ECDH) and the commitment check of the share (the caller made the
//! split). The function is not reachable from the network: no RPC calls it, and a node has to be
//! opened in-process from its data directory (while no server runs on it) to use it.

use crate::at_rest::{self, ShareRecordId};
use crate::error::NodeError;
use crate::node::Node;
use crate::storage::{CeremonyRecord, CeremonyState, CommitOutcome, WalletMeta, WalletRecord};
use dlocker_proto::manifest::Manifest;
use dlocker_proto::share::Share;
use dlocker_proto::statement::{Receipt, Signed};

/// The ceremony id every bulk deposit records (overwritten each time, already expired, swept by
/// [`Node::bulk_finish`]).
pub const BULK_CEREMONY_ID: &str = "00000000-0000-0000-0000-00000000b01c";

/// One wallet to load.
pub struct BulkDeposit {
    /// The manifest (must list this node with its key; its wallet id is the wallet's).
    pub manifest: Manifest,
    /// This node's share (the index the manifest assigns it).
    pub share: Share,
    /// The encrypted wallet blob (its hash must be the manifest's `blob_hash`).
    pub blob: Vec<u8>,
    /// The owner's passkey as the node stores it (`webauthn_rs::Passkey` JSON).
    pub passkey_json: Vec<u8>,
}

impl std::fmt::Debug for BulkDeposit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkDeposit")
            .field("wallet_id", &self.manifest.wallet_id())
            .field("share", &"REDACTED")
            .field("blob", &format_args!("{} bytes", self.blob.len()))
            .finish()
    }
}

/// What one [`Node::bulk_deposit`] call wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    /// Wallets newly stored.
    pub stored: usize,
    /// Wallets that were already present (left untouched).
    pub already_present: usize,
    /// Payload bytes written into the wallet trees (meta JSON, sealed share, manifest, passkey,
    /// blob, receipt), summed over the stored wallets.
    pub record_bytes: u64,
}

impl Node {
    /// Stores `deposits` through the deposit transaction, one transaction per wallet, then
    /// flushes once. See the module docs for what is and is not checked.
    pub async fn bulk_deposit(&self, deposits: Vec<BulkDeposit>) -> Result<BulkOutcome, NodeError> {
        let now = self.now();
        let node_id = self.identity.node_id().to_owned();
        let signing = self.identity.signing_key();
        let ceremony = CeremonyRecord {
            wallet_id: String::new(),
            created_at: now,
            expires_at: now,
            state: CeremonyState::Completed {
                credential_sha256: String::new(),
            },
        };
        let mut out = BulkOutcome::default();
        for d in deposits {
            let wallet_id = d.manifest.wallet_id().to_owned();
            let index = match d.manifest.trustee(&node_id) {
                Some(e) if e.public_key == *self.identity.public_key() => e.share_index,
                _ => return Err(NodeError::NotATrustee),
            };
            if d.share.index() != index {
                return Err(NodeError::ShareRejected);
            }
            if dlocker_proto::blob::hash(&d.blob) != *d.manifest.blob_hash() {
                return Err(NodeError::BlobHashMismatch);
            }
            let epoch = d.manifest.epoch();
            let manifest_hash = d.manifest.hash();
            let record_id = ShareRecordId {
                node_id: &node_id,
                wallet_id: &wallet_id,
                epoch,
                share_index: index,
            };
            let sealed_share = at_rest::seal_share(&self.storage_key, &record_id, &d.share)
                .map_err(|e| NodeError::Internal(format!("seal share: {e}")))?;
            let receipt = Signed::sign(
                Receipt {
                    node_id: node_id.clone(),
                    wallet_id: wallet_id.clone(),
                    epoch,
                    share_index: index,
                    manifest_hash,
                    issued_at: now,
                },
                &signing,
            )
            .encode();
            let record = WalletRecord {
                meta: WalletMeta {
                    epoch,
                    share_index: index,
                    manifest_hash: hex::encode(manifest_hash.0),
                    enrolled_at: now,
                    blob_size: d.blob.len() as u64,
                },
                sealed_share,
                manifest: d.manifest.encode(),
                passkey_json: d.passkey_json,
                blob: d.blob,
                receipt,
            };
            let meta_len = serde_json::to_vec(&record.meta).map_or(0, |v| v.len());
            let bytes = meta_len
                + record.sealed_share.len()
                + record.manifest.len()
                + record.passkey_json.len()
                + record.blob.len()
                + record.receipt.len();
            match self
                .store
                .commit_enrollment(&wallet_id, &record, BULK_CEREMONY_ID, &ceremony)?
            {
                CommitOutcome::Stored => {
                    self.record(
                        now,
                        "enrollment",
                        &wallet_id,
                        "",
                        &format!("epoch {epoch} share index {index} (bulk load)"),
                    )?;
                    out.stored += 1;
                    out.record_bytes += bytes as u64;
                }
                CommitOutcome::AlreadyPresent(_) => out.already_present += 1,
            }
        }
        self.store.flush().await?;
        Ok(out)
    }

    /// Sweeps the bulk loader's expired ceremony record and flushes.
    pub async fn bulk_finish(&self) -> Result<(), NodeError> {
        self.store.remove_expired_ceremonies(self.now())?;
        self.store.flush().await?;
        Ok(())
    }
}
