//! Bulk loading, for benchmarks only (`dlocker-bench growth`): fills a node's database with many
//! wallets quickly, through the node's *real storage path* but without gRPC.
//!
//! What is the same as a deposit over gRPC ([`crate::enrollment`]): the share is sealed under the
//! storage key ([`crate::at_rest`]), the receipt is signed by the identity key, share, manifest,
//! passkey, blob and receipt are written in the one deposit transaction
//! ([`crate::db::Store::commit_enrollment`]), an audit entry and an event are appended, and
//! the batch is flushed before [`Self::bulk_deposit`] returns.
//!
//! What is skipped, and why it is safe to skip *here*: the passkey ceremony (the caller supplies
//! a passkey JSON, typically one real registration reused), the share envelope (the caller hands
//! the share in the clear, so no ECDH) and the commitment check of the share (the caller made the
//! split). The function is not reachable from the network: no RPC calls it, and a node has to be
//! opened in-process from its data directory (while no server runs on it) to use it.

use super::EnrollmentOps;
use crate::at_rest::{self, ShareRecordId};
use crate::db::{CeremonyRecord, CeremonyState, CommitOutcome, WalletMeta, WalletRecord};
use crate::error::NodeError;
use dlocker_proto::manifest::Manifest;
use dlocker_proto::share::Share;
use dlocker_proto::statement::{Receipt, Signed};

/// The ceremony id every bulk deposit records (overwritten each time, already expired, swept by
/// [`Self::bulk_finish`]).
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

/// What one [`Self::bulk_deposit`] call wrote.
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

impl EnrollmentOps<'_> {
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
            customer_sealed: None,
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
                .db
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
        self.db.flush().await?;
        Ok(out)
    }

    /// Sweeps the bulk loader's expired ceremony record and flushes.
    pub async fn bulk_finish(&self) -> Result<(), NodeError> {
        self.db.remove_expired_ceremonies(self.now())?;
        self.db.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::enrollment::trustee_service::tests::Backup;
    use crate::init::{InitOptions, init_node};
    use dlocker_proto::schnorr::{PossessionProof, ProofContext};
    use k256::SecretKey;
    use k256::elliptic_curve::Generate as _;

    #[tokio::test]
    async fn bulk_deposits_are_stored_like_deposits_and_prove() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let mut opts = InitOptions::new(
            dir.to_path_buf(),
            "bank",
            "127.0.0.1:0".parse().expect("addr"),
            Role::Bank,
        );
        opts.endpoint = Some("http://127.0.0.1:7101".into());
        init_node(&opts).expect("init");
        let node = crate::server::open_node(dir).expect("open");
        let key = *node.identity().public_key();
        let backups: Vec<Backup> = (0..3)
            .map(|i| Backup::new(&format!("bulk-{i}"), key))
            .collect();
        let deposits = |bs: &[Backup]| -> Vec<BulkDeposit> {
            bs.iter()
                .map(|b| BulkDeposit {
                    manifest: b.manifest.clone(),
                    share: b.shares[0].clone(),
                    blob: b.blob.clone(),
                    passkey_json: b"{}".to_vec(),
                })
                .collect()
        };
        let out = node
            .enrollment()
            .bulk_deposit(deposits(&backups))
            .await
            .expect("bulk");
        assert_eq!((out.stored, out.already_present), (3, 0));
        assert!(out.record_bytes > 0);
        // Loading again writes nothing.
        let again = node
            .enrollment()
            .bulk_deposit(deposits(&backups))
            .await
            .expect("bulk");
        assert_eq!((again.stored, again.already_present), (0, 3));
        node.enrollment().bulk_finish().await.expect("finish");
        assert_eq!(node.db().ceremony_count().expect("count"), 0);

        for b in &backups {
            let id = crate::wallet::parse_wallet_id(b.manifest.wallet_id().to_owned()).expect("id");
            let st = node.enrollment().backup_status(&id).expect("status");
            assert_eq!(st.manifest_hash, b.manifest.hash().0);
            let nonce = [5u8; 32];
            let proof = node.enrollment().prove_share(&id, &nonce).expect("prove");
            let ctx = ProofContext {
                wallet_id: id.as_str(),
                epoch: 1,
                share_index: 1,
                node_key: &key,
                nonce: &nonce,
            };
            PossessionProof::decode(&proof.proof)
                .expect("decode")
                .verify(&b.manifest.commitments().expected_public_share(1), &ctx)
                .expect("the bulk-loaded share proves");
        }

        // A manifest that does not list this node is refused.
        let stranger = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let other = Backup::new("bulk-other", stranger);
        assert!(matches!(
            node.enrollment()
                .bulk_deposit(deposits(std::slice::from_ref(&other)))
                .await,
            Err(NodeError::NotATrustee)
        ));
    }
}
