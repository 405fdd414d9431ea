//! Deposit of a share: `BeginEnrollment` (a passkey creation challenge) and `FinishEnrollment`
//! (verify everything, store atomically and durably, sign a receipt).
//!
//! FinishEnrollment checks, in order, and writes nothing unless all pass:
//! ceremony open → sizes → manifest decodes → same wallet as the ceremony → manifest lists this
//! node with its key → blob hash → envelope opens for this node and context → share matches the
//! Feldman commitments → WebAuthn registration verifies → no conflicting deposit. Then the share
//! is re-sealed under the storage key and share, manifest, passkey, blob and receipt are stored in
//! one transaction and flushed before the receipt is returned.
//!
//! Idempotence: a deposit of the same manifest and share for an enrolled wallet returns the
//! receipt stored the first time (byte for byte); a different one is refused as a conflict.

#[cfg(feature = "bench")]
pub mod bulk;
pub mod confirm;
pub mod custody;
pub mod trustee_service;

use crate::at_rest::{self, ShareRecordId};
use crate::db::{CeremonyRecord, CeremonyState, CommitOutcome, WalletMeta, WalletRecord};
use crate::error::NodeError;
use crate::node::Node;
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::manifest::{Manifest, ManifestHash};
use dlocker_proto::owner_challenge::{OwnerAction, TrusteeNonce};
use dlocker_proto::share::Share;
use dlocker_proto::statement::{Receipt, Signed};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use webauthn_rs::prelude::Uuid;

/// Largest WebAuthn credential JSON accepted (a `none`-attestation registration is ~1 KiB).
pub const MAX_CREDENTIAL_JSON_BYTES: usize = 16 * 1024;
/// Largest encoded manifest accepted (32 trustees encode to under 4 KiB).
pub const MAX_MANIFEST_BYTES: usize = 8 * 1024;
/// Largest encoded share envelope accepted (a valid one is 100 bytes).
pub const MAX_ENVELOPE_BYTES: usize = 256;
/// Longest ceremony id (a UUID is 36 characters).
pub const MAX_CEREMONY_ID_LEN: usize = 64;

/// Label of the WebAuthn user handle derivation.
const USER_HANDLE_LABEL: &[u8] = b"dlocker/webauthn-user/v1";

/// `BeginEnrollment`, parsed.
#[derive(Debug, Clone)]
pub struct BeginEnrollment {
    /// The wallet.
    pub wallet_id: WalletId,
    /// Shown by the authenticator; the bank node also records it for its staff.
    pub user_name: String,
    /// The bank's customer reference (bank node only; empty when not given).
    pub customer_reference: String,
}

/// What `BeginEnrollment` returns.
#[derive(Debug, Clone)]
pub struct EnrollmentChallenge {
    /// The ceremony to finish.
    pub ceremony_id: String,
    /// `CreationChallengeResponse` as JSON.
    pub creation_options_json: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// This node's nonce for the one-touch backup ceremony.
    pub nonce: [u8; 32],
}

/// `FinishEnrollment`, as received (checked by [`Self::finish_enrollment`] in the documented
/// order).
#[derive(Clone)]
pub struct FinishEnrollment {
    /// The ceremony.
    pub ceremony_id: String,
    /// `RegisterPublicKeyCredential` as JSON.
    pub credential_json: String,
    /// Canonical manifest.
    pub manifest: Vec<u8>,
    /// This node's share envelope.
    pub share_envelope: Vec<u8>,
    /// Encrypted wallet blob.
    pub blob: Vec<u8>,
    /// Every trustee's nonce of the ceremony (this node's among them).
    pub nonces: Vec<TrusteeNonce>,
}

impl std::fmt::Debug for FinishEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinishEnrollment")
            .field("ceremony_id", &self.ceremony_id)
            .field(
                "credential_json",
                &format_args!("{} bytes", self.credential_json.len()),
            )
            .field("manifest", &format_args!("{} bytes", self.manifest.len()))
            .field(
                "share_envelope",
                &format_args!("{} bytes", self.share_envelope.len()),
            )
            .field("blob", &format_args!("{} bytes", self.blob.len()))
            .finish()
    }
}

/// The WebAuthn user handle for a wallet: a UUID from `SHA-256(label ‖ wallet_id)`, so the same
/// wallet always has the same handle and no wallet id is sent to the authenticator.
pub fn user_handle(wallet_id: &WalletId) -> Uuid {
    let d = Sha256::new()
        .chain_update(USER_HANDLE_LABEL)
        .chain_update(wallet_id.as_str().as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn internal(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(format!("{what}: {e}"))
}

/// Enrollment operations (deposits, custody proofs): a borrowed view of the [`Node`]
/// context, whose fields and methods read through it.
#[derive(Clone, Copy)]
pub struct EnrollmentOps<'a>(&'a Node);

impl std::ops::Deref for EnrollmentOps<'_> {
    type Target = Node;
    fn deref(&self) -> &Node {
        self.0
    }
}

impl Node {
    /// Enrollment: `BeginEnrollment`, `FinishEnrollment` (a verified deposit), custody proofs.
    pub fn enrollment(&self) -> EnrollmentOps<'_> {
        EnrollmentOps(self)
    }
}

/// A deposit that passed every check except the WebAuthn one (also used by `StageEpoch`, which
/// verifies a staged epoch exactly like a deposit).
pub(crate) struct VerifiedDeposit {
    pub(crate) manifest: Manifest,
    pub(crate) manifest_hash: ManifestHash,
    pub(crate) share: Share,
}

impl EnrollmentOps<'_> {
    /// Starts a passkey registration for `req.wallet_id` and persists the ceremony.
    pub async fn begin_enrollment(
        &self,
        req: BeginEnrollment,
    ) -> Result<EnrollmentChallenge, NodeError> {
        let limits = &self.config.limits;
        let name = req.user_name.trim();
        if name.is_empty()
            || name.len() > limits.max_user_name_len
            || name.chars().any(char::is_control)
        {
            return Err(NodeError::invalid(
                "user_name",
                format!(
                    "must be 1–{} bytes of printable text",
                    limits.max_user_name_len
                ),
            ));
        }
        let reference = req.customer_reference.trim();
        if reference.len() > limits.max_user_name_len || reference.chars().any(char::is_control) {
            return Err(NodeError::invalid(
                "customer_reference",
                format!(
                    "at most {} bytes of printable text",
                    limits.max_user_name_len
                ),
            ));
        }
        if self.db.ceremony_count()? >= limits.max_pending_ceremonies {
            return Err(NodeError::Busy);
        }
        let (ccr, registration) = self
            .webauthn
            .start_passkey_registration(user_handle(&req.wallet_id), name, name, None)
            .map_err(|e| internal("start passkey registration", e))?;
        let now = self.now();
        let expires_at = now.saturating_add(limits.ceremony_ttl_secs);
        let ceremony_id = Uuid::new_v4().hyphenated().to_string();
        let record = CeremonyRecord {
            wallet_id: req.wallet_id.as_str().to_owned(),
            created_at: now,
            expires_at,
            state: CeremonyState::Pending {
                registration: serde_json::to_string(&registration)
                    .map_err(|e| internal("serialise ceremony", e))?,
            },
            customer_sealed: self.seal_customer(&req.wallet_id, name, reference)?,
        };
        self.db.put_ceremony(&ceremony_id, &record)?;
        let issued = self
            .owner_touch()
            .issue_owner_nonce(req.wallet_id.as_str(), OwnerAction::Backup)?;
        // Not flushed: the answer acknowledges nothing the customer relies on. A ceremony or
        // nonce lost in a crash makes FinishEnrollment answer "unknown ceremony" (or refuse the
        // touch), and the client begins again; the deposit itself is flushed before its receipt.
        let creation_options_json =
            serde_json::to_string(&ccr).map_err(|e| internal("serialise options", e))?;
        tracing::info!(wallet = %req.wallet_id.log_tag(), ceremony = %ceremony_id, "enrollment \
            begun");
        Ok(EnrollmentChallenge {
            ceremony_id,
            creation_options_json,
            expires_at,
            nonce: issued.nonce,
        })
    }

    /// Verifies and stores a deposit; returns the encoded signed receipt.
    pub async fn finish_enrollment(&self, req: FinishEnrollment) -> Result<Vec<u8>, NodeError> {
        // 1. The ceremony. A malformed id cannot name a ceremony: NOT_FOUND like any unknown id.
        if req.ceremony_id.len() > MAX_CEREMONY_ID_LEN {
            return Err(NodeError::CeremonyNotFound);
        }
        let ceremony_id = Uuid::parse_str(&req.ceremony_id)
            .map_err(|_| NodeError::CeremonyNotFound)?
            .hyphenated()
            .to_string();
        let ceremony = self
            .db
            .ceremony(&ceremony_id)?
            .ok_or(NodeError::CeremonyNotFound)?;
        let now = self.now();
        if ceremony.expires_at <= now {
            return Err(NodeError::CeremonyExpired {
                ago_secs: now - ceremony.expires_at,
            });
        }
        let wallet_id = crate::wallet::parse_wallet_id(ceremony.wallet_id.clone())
            .map_err(|_| internal("stored ceremony", "invalid wallet id"))?;

        // 2. Sizes.
        self.check_sizes(&req)?;

        let credential_sha256 = sha256_hex(req.credential_json.as_bytes());
        let registration = match &ceremony.state {
            CeremonyState::Pending { registration } => Some(registration),
            // The very same request again (its response was lost): answer from storage below.
            CeremonyState::Completed {
                credential_sha256: done,
            } if *done == credential_sha256 => None,
            CeremonyState::Completed { .. } => return Err(NodeError::CeremonyUsed),
        };

        // 3–7. Manifest, membership, blob, envelope, commitments.
        let deposit = self.verify_deposit(&wallet_id, &req)?;
        let index = self.share_index_in(&deposit.manifest)?;

        // 8. The passkey: the one-touch registration over every trustee's nonce and the manifest
        // hash (skipped only for the replay of a completed ceremony, whose passkey is stored).
        let touch = match registration {
            Some(reg_json) => Some(self.owner_touch().verify_owner_registration(
                wallet_id.as_str(),
                OwnerAction::Backup,
                &deposit.manifest_hash.0,
                req.nonces.clone(),
                &req.credential_json,
                reg_json,
            )?),
            None => None,
        };

        let completed = CeremonyRecord {
            state: CeremonyState::Completed { credential_sha256 },
            ..ceremony
        };

        // A wallet this node is joining through a staged epoch (rotation), or retired from, is not
        // open to enrollment.
        self.epochs().refuse_enrollment_while_joining(&wallet_id)?;
        self.epochs().refuse_enrollment_after_retire(&wallet_id)?;

        // 9. An existing deposit: identical → its receipt; different → conflict.
        // The existence check is one key lookup: a read transaction over the six wallet
        // trees costs log writes even when it reads nothing, and most deposits are new. A
        // deposit racing this check is caught inside `commit_enrollment`'s transaction.
        let existing = if self.db.wallet_exists(wallet_id.as_str())? {
            self.db.wallet(wallet_id.as_str())?
        } else {
            None
        };
        if let Some(existing) = existing {
            let receipt = self.same_deposit(&wallet_id, &existing, &deposit)?;
            // Consume the ceremony and the nonce so neither can be used again.
            if let Some(touch) = &touch {
                self.owner_touch().spend_nonce(touch)?;
            }
            self.db.put_ceremony(&ceremony_id, &completed)?;
            self.db.flush().await?;
            tracing::info!(wallet = %wallet_id.log_tag(), "identical deposit retried; returned \
                stored receipt");
            return Ok(receipt);
        }
        let Some(touch) = touch else {
            // A completed ceremony whose wallet record is gone cannot be replayed.
            return Err(NodeError::CeremonyUsed);
        };
        let passkey_json =
            serde_json::to_vec(&touch.value).map_err(|e| internal("serialise passkey", e))?;
        self.owner_touch().spend_nonce(&touch)?;

        // 10. Seal, sign, store atomically, flush.
        let node_id = self.identity.node_id();
        let record_id = ShareRecordId {
            node_id,
            wallet_id: wallet_id.as_str(),
            epoch: deposit.manifest.epoch(),
            share_index: index,
        };
        let sealed_share = at_rest::seal_share(&self.storage_key, &record_id, &deposit.share)
            .map_err(|e| internal("seal share", e))?;
        let receipt = Signed::sign(
            Receipt {
                node_id: node_id.to_owned(),
                wallet_id: wallet_id.as_str().to_owned(),
                epoch: deposit.manifest.epoch(),
                share_index: index,
                manifest_hash: deposit.manifest_hash,
                issued_at: now,
            },
            &self.identity.signing_key(),
        )
        .encode();
        let record = WalletRecord {
            meta: WalletMeta {
                epoch: deposit.manifest.epoch(),
                share_index: index,
                manifest_hash: hex::encode(deposit.manifest_hash.0),
                enrolled_at: now,
                blob_size: req.blob.len() as u64,
            },
            sealed_share,
            manifest: req.manifest,
            passkey_json,
            blob: req.blob,
            receipt,
        };
        let mut events = Vec::new();
        let receipt = match self.db.commit_enrollment(
            wallet_id.as_str(),
            &record,
            &ceremony_id,
            &completed,
        )? {
            CommitOutcome::Stored => {
                if let Some(sealed) = &completed.customer_sealed {
                    // Flushed with the deposit by `commit` below, before the receipt leaves.
                    self.db.put_customer(wallet_id.as_str(), sealed)?;
                }
                events.push(self.record(
                    now,
                    "enrollment",
                    wallet_id.as_str(),
                    "",
                    &format!("epoch {} share index {index}", deposit.manifest.epoch()),
                )?);
                record.receipt
            }
            // Lost a race with a concurrent deposit for the same wallet.
            CommitOutcome::AlreadyPresent(existing) => {
                self.same_deposit(&wallet_id, &existing, &deposit)?
            }
        };
        self.commit(events).await?;
        tracing::info!(
            wallet = %wallet_id.log_tag(),
            epoch = deposit.manifest.epoch(),
            share_index = index,
            "share deposited"
        );
        Ok(receipt)
    }

    /// Bank role: the customer identity sealed for the ceremony record (other roles record none).
    fn seal_customer(
        &self,
        wallet_id: &WalletId,
        user_name: &str,
        reference: &str,
    ) -> Result<Option<Vec<u8>>, NodeError> {
        if self.config.role != crate::config::Role::Bank {
            return Ok(None);
        }
        let identity = at_rest::CustomerIdentity {
            user_name: user_name.to_owned(),
            customer_reference: (!reference.is_empty()).then(|| reference.to_owned()),
        };
        at_rest::seal_customer(
            &self.customer_sealing_key,
            self.identity.node_id(),
            wallet_id.as_str(),
            &identity,
        )
        .map(Some)
        .map_err(|e| internal("seal customer identity", e))
    }

    /// Bank role: the customer identity recorded for `wallet_id`, if any. A record that fails to
    /// open is reported as absent with a warning (it names no secret).
    pub(crate) fn customer(&self, wallet_id: &str) -> Option<at_rest::CustomerIdentity> {
        let sealed = match self.db.customer(wallet_id) {
            Ok(v) => v?,
            Err(e) => {
                tracing::warn!(error = %e, "customer identity unreadable");
                return None;
            }
        };
        at_rest::open_customer(
            &self.customer_sealing_key,
            self.identity.node_id(),
            wallet_id,
            &sealed,
        )
        .inspect_err(|e| tracing::warn!(error = %e, "customer identity record does not open"))
        .ok()
    }

    pub(crate) fn check_sizes(&self, req: &FinishEnrollment) -> Result<(), NodeError> {
        let max_blob = self.config.limits.max_blob_bytes;
        if req.blob.len() > max_blob {
            return Err(NodeError::TooLarge {
                what: "blob",
                size: req.blob.len(),
                max: max_blob,
            });
        }
        let bounded = [
            (
                "credential_json",
                req.credential_json.len(),
                MAX_CREDENTIAL_JSON_BYTES,
            ),
            ("manifest_encoded", req.manifest.len(), MAX_MANIFEST_BYTES),
            (
                "share_envelope_encoded",
                req.share_envelope.len(),
                MAX_ENVELOPE_BYTES,
            ),
        ];
        for (field, len, max) in bounded {
            if len > max {
                return Err(NodeError::invalid(
                    field,
                    format!("{len} bytes; at most {max}"),
                ));
            }
        }
        if req.credential_json.is_empty() {
            return Err(NodeError::invalid("credential_json", "empty"));
        }
        Ok(())
    }

    pub(crate) fn share_index_in(&self, manifest: &Manifest) -> Result<u16, NodeError> {
        match manifest.trustee(self.identity.node_id()) {
            Some(e) if e.public_key == *self.identity.public_key() => Ok(e.share_index),
            _ => Err(NodeError::NotATrustee),
        }
    }

    pub(crate) fn verify_deposit(
        &self,
        wallet_id: &WalletId,
        req: &FinishEnrollment,
    ) -> Result<VerifiedDeposit, NodeError> {
        let manifest = Manifest::decode(&req.manifest).map_err(NodeError::BadManifest)?;
        let max_trustees = self.config.limits.max_trustees;
        if manifest.trustees().len() > max_trustees {
            return Err(NodeError::invalid(
                "manifest_encoded",
                format!(
                    "lists {} trustees; this node accepts at most {max_trustees}",
                    manifest.trustees().len()
                ),
            ));
        }
        if manifest.wallet_id() != wallet_id.as_str() {
            return Err(NodeError::WalletMismatch);
        }
        let index = self.share_index_in(&manifest)?;
        if dlocker_proto::blob::hash(&req.blob) != *manifest.blob_hash() {
            return Err(NodeError::BlobHashMismatch);
        }
        let envelope =
            ShareEnvelope::decode(&req.share_envelope).map_err(|_| NodeError::EnvelopeRejected)?;
        let ctx = EnvelopeContext {
            wallet_id: wallet_id.as_str(),
            epoch: manifest.epoch(),
            share_index: index,
            recipient: self.identity.public_key(),
        };
        let share = envelope
            .open(&ctx, self.identity.secret_key())
            .map_err(|_| NodeError::EnvelopeRejected)?;
        manifest
            .commitments()
            .verify(&share)
            .map_err(|_| NodeError::ShareRejected)?;
        let manifest_hash = manifest.hash();
        Ok(VerifiedDeposit {
            manifest,
            manifest_hash,
            share,
        })
    }

    /// For an enrolled wallet: the stored receipt if `deposit` is the same manifest and share,
    /// otherwise a conflict.
    fn same_deposit(
        &self,
        wallet_id: &WalletId,
        existing: &WalletRecord,
        deposit: &VerifiedDeposit,
    ) -> Result<Vec<u8>, NodeError> {
        if existing.meta.manifest_hash != hex::encode(deposit.manifest_hash.0) {
            return Err(NodeError::Conflict);
        }
        let id = ShareRecordId {
            node_id: self.identity.node_id(),
            wallet_id: wallet_id.as_str(),
            epoch: existing.meta.epoch,
            share_index: existing.meta.share_index,
        };
        let stored = at_rest::open_share(&self.storage_key, &id, &existing.sealed_share);
        let stored = stored.map_err(|_| {
            tracing::error!(
                wallet = %wallet_id.log_tag(),
                "stored share failed its integrity check"
            );
            NodeError::StoredShareCorrupt
        })?;
        let same = stored.index() == deposit.share.index()
            && bool::from(stored.value().ct_eq(deposit.share.value()));
        if same {
            Ok(existing.receipt.clone())
        } else {
            Err(NodeError::Conflict)
        }
    }
}
