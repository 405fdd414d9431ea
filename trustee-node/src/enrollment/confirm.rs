//! `ConfirmBackup`: the client shows that the backup is complete — one receipt from every trustee
//! of the manifest this node holds — so the deposit is not an abandoned one
//! (`docs/protocol.md` §12b).
//!
//! A deposit is stored "unconfirmed" (the `unconfirmed_backups` index, [`crate::db`]) and the
//! housekeeping sweep ([`crate::housekeeping`]) erases one still unconfirmed after
//! `housekeeping.unconfirmed_backup_expiry_secs`: a backup the app never finished (fewer than n
//! trustees receipted) would otherwise stay forever. No passkey touch is needed: n receipts,
//! each signed by the trustee key the manifest names, over this wallet, epoch, share index and
//! manifest hash, can only exist once every trustee stored its share. Anything else is refused
//! (`confirmation_rejected`) and changes nothing. Deposits stored before confirmations existed
//! are not in the index, so they never expire; confirming one answers `newly_confirmed = false`.

use super::EnrollmentOps;
use crate::error::NodeError;
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;
use dlocker_proto::manifest::Manifest;
use dlocker_proto::statement::{Receipt, Signed, StatementError};

/// The audit entry's kind for a confirmation.
pub const BACKUP_CONFIRMED: &str = "backup_confirmed";

fn rejected(reason: impl Into<String>) -> NodeError {
    NodeError::ConfirmationRejected(reason.into())
}

/// This node's own receipt as it stored it: its node id and the receipt's bytes.
pub(crate) struct OwnReceipt<'a> {
    pub node_id: &'a str,
    pub stored: &'a [u8],
}

/// Checks that `receipts` hold exactly one valid receipt per trustee of `manifest`. A receipt
/// byte-for-byte equal to `own.stored` is taken as this node's without its signature check:
/// the node signed it over the manifest it stored in the same record, and a signature check
/// costs about a tenth of a deposit.
pub(crate) fn check_receipts(
    manifest: &Manifest,
    receipts: &[Vec<u8>],
    own: Option<OwnReceipt<'_>>,
) -> Result<(), NodeError> {
    let trustees = manifest.trustees();
    if receipts.len() != trustees.len() {
        return Err(rejected(format!(
            "{} receipt(s) for a manifest of {} trustees: send one per trustee",
            receipts.len(),
            trustees.len()
        )));
    }
    let hash = manifest.hash();
    // The manifest's keys, trusted for the signature check (found by encoding, not
    // decompressed); a receipt signed by any other key is decoded as sent, for its error.
    let keys: Vec<_> = trustees.iter().map(|t| t.public_key).collect();
    let mut seen = vec![false; trustees.len()];
    for (i, bytes) in receipts.iter().enumerate() {
        // This node's own receipt is known by its bytes; any other is decoded and verified.
        let (signed, node_id) = match own.as_ref().filter(|o| o.stored == bytes.as_slice()) {
            Some(o) => (None, o.node_id.to_owned()),
            None => {
                let s = match Signed::<Receipt>::decode_trusted(bytes, &keys) {
                    Err(StatementError::UntrustedSigner) => Signed::<Receipt>::decode(bytes),
                    other => other,
                }
                .map_err(|e| rejected(format!("receipt {i}: {e}")))?;
                let node_id = s.body().node_id.clone();
                (Some(s), node_id)
            }
        };
        let Some(pos) = trustees.iter().position(|t| t.node_id == node_id) else {
            return Err(rejected(format!(
                "receipt {i} names node {node_id}, which the manifest does not list"
            )));
        };
        let t = &trustees[pos];
        if let Some(signed) = &signed {
            let r = signed.body();
            if signed.signer() != &t.public_key {
                return Err(rejected(format!(
                    "receipt {i} is not signed by the key the manifest names for node {}",
                    t.node_id
                )));
            }
            if r.wallet_id != manifest.wallet_id()
                || r.epoch != manifest.epoch()
                || r.share_index != t.share_index
                || r.manifest_hash != hash
            {
                return Err(rejected(format!(
                    "receipt {i} (node {}) is for another wallet, epoch, share or manifest",
                    t.node_id
                )));
            }
        }
        if std::mem::replace(&mut seen[pos], true) {
            return Err(rejected(format!(
                "two receipts of node {}: send one per trustee",
                t.node_id
            )));
        }
    }
    Ok(())
}

impl EnrollmentOps<'_> {
    /// `ConfirmBackup`: checks the receipts against the stored manifest, then marks the backup
    /// confirmed (durable before it returns). Returns whether this call confirmed it.
    pub async fn confirm_backup(
        &self,
        wallet_id: &WalletId,
        receipts: &[Vec<u8>],
    ) -> Result<bool, NodeError> {
        let wallet = wallet_id.as_str();
        if receipts.len() > self.config.limits.max_trustees {
            return Err(rejected(format!(
                "{} receipts; a manifest lists at most {}",
                receipts.len(),
                self.config.limits.max_trustees
            )));
        }
        // Under the lock housekeeping's expiry takes: a confirmation and an erase never race.
        let _guard = self.recovery_lock.lock().await?;
        let stored = self
            .db
            .stored_manifest(wallet)?
            .ok_or(NodeError::WalletNotFound)?;
        let manifest = Manifest::decode(&stored)
            .map_err(|e| NodeError::Internal(format!("stored manifest: {e}")))?;
        let own_receipt = self.db.stored_receipt(wallet)?;
        let own = own_receipt.as_deref().map(|stored| OwnReceipt {
            node_id: self.identity.node_id(),
            stored,
        });
        check_receipts(&manifest, receipts, own)?;
        let Some(stored_at) = self.db.unconfirmed_since(wallet)? else {
            return Ok(false);
        };
        self.db.confirm_backup(wallet)?;
        let now = self.now();
        self.audit.append(
            now,
            BACKUP_CONFIRMED,
            Some(wallet),
            &format!(
                "epoch {}: receipts of all {} trustees shown, {}s after the deposit",
                manifest.epoch(),
                manifest.trustees().len(),
                now.saturating_sub(stored_at)
            ),
        )?;
        self.commit(Vec::new()).await?;
        tracing::info!(wallet = %wallet_id.log_tag(), "backup confirmed complete");
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlocker_proto::keys::node_id;
    use dlocker_proto::manifest::{ManifestParts, TrusteeEntry};
    use dlocker_proto::secret::SecretScalar;
    use dlocker_proto::share::split;
    use k256::ecdsa::SigningKey;
    use k256::elliptic_curve::Generate;

    fn manifest(keys: &[SigningKey]) -> Manifest {
        let (_, commitments) = split(&SecretScalar::random(), 2, 3).expect("split");
        let trustees: Vec<TrusteeEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let pk = k256::PublicKey::from(k.verifying_key());
                TrusteeEntry {
                    share_index: i as u16 + 1,
                    node_id: node_id(&pk),
                    public_key: pk,
                }
            })
            .collect();
        Manifest::new(ManifestParts {
            wallet_id: "w1".into(),
            epoch: 1,
            threshold: 2,
            bank_node_id: trustees[0].node_id.clone(),
            trustees,
            commitments,
            recovery_delay_secs: 60,
            blob_hash: [7; 32],
            created_at: 1_700_000_000,
            previous: None,
        })
        .expect("manifest")
    }

    fn receipt(m: &Manifest, i: usize, key: &SigningKey, wallet: &str) -> Vec<u8> {
        let t = &m.trustees()[i];
        Signed::sign(
            Receipt {
                node_id: t.node_id.clone(),
                wallet_id: wallet.into(),
                epoch: m.epoch(),
                share_index: t.share_index,
                manifest_hash: m.hash(),
                issued_at: 1,
            },
            key,
        )
        .encode()
    }

    #[test]
    fn exactly_one_valid_receipt_per_trustee() {
        let keys: Vec<SigningKey> = (0..3)
            .map(|_| SigningKey::generate_from_rng(&mut rand::rng()))
            .collect();
        let m = manifest(&keys);
        let good: Vec<Vec<u8>> = (0..3).map(|i| receipt(&m, i, &keys[i], "w1")).collect();
        check_receipts(&m, &good, None).expect("all three");
        let mut reversed = good.clone();
        reversed.reverse();
        check_receipts(&m, &reversed, None).expect("any order");

        let refused = |set: Vec<Vec<u8>>, what: &str| {
            assert!(
                matches!(
                    check_receipts(&m, &set, None),
                    Err(NodeError::ConfirmationRejected(_))
                ),
                "{what} accepted"
            );
        };
        refused(good[..2].to_vec(), "too few");
        refused(
            vec![good[0].clone(), good[0].clone(), good[2].clone()],
            "a trustee twice",
        );
        let stranger = SigningKey::generate_from_rng(&mut rand::rng());
        refused(
            vec![
                good[0].clone(),
                good[1].clone(),
                receipt(&m, 2, &stranger, "w1"),
            ],
            "a receipt signed by a key the manifest does not name",
        );
        refused(
            vec![
                good[0].clone(),
                good[1].clone(),
                receipt(&m, 2, &keys[2], "w2"),
            ],
            "another wallet's receipt",
        );
        let mut garbled = good.clone();
        garbled[1][10] ^= 1;
        refused(garbled, "a receipt whose signature fails");
    }

    #[test]
    fn the_nodes_own_stored_receipt_counts_once_and_anything_else_is_checked() {
        let keys: Vec<SigningKey> = (0..3)
            .map(|_| SigningKey::generate_from_rng(&mut rand::rng()))
            .collect();
        let m = manifest(&keys);
        let good: Vec<Vec<u8>> = (0..3).map(|i| receipt(&m, i, &keys[i], "w1")).collect();
        let me = m.trustees()[1].node_id.clone();
        let own = || {
            Some(OwnReceipt {
                node_id: &me,
                stored: &good[1],
            })
        };
        check_receipts(&m, &good, own()).expect("all three, this node's by its bytes");
        let check = |set: Vec<Vec<u8>>| check_receipts(&m, &set, own());
        assert!(
            check(vec![good[0].clone(), good[1].clone(), good[1].clone()]).is_err(),
            "this node's receipt twice"
        );
        // Bytes that differ from the stored receipt get the full check: a flipped bit fails it.
        let mut flipped = good.clone();
        flipped[1][10] ^= 1;
        assert!(
            check(flipped).is_err(),
            "a changed copy of this node's receipt"
        );
        let stranger = SigningKey::generate_from_rng(&mut rand::rng());
        assert!(
            check(vec![
                good[0].clone(),
                good[1].clone(),
                receipt(&m, 2, &stranger, "w1")
            ])
            .is_err(),
            "another trustee's receipt is still verified"
        );
    }
}
