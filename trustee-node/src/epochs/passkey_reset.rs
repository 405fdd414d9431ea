//! Bank-assisted passkey reset: the owner lost the passkey but still holds the wallet secret `k`
//! (`docs/protocol.md` §13a, "Passkey reset").
//!
//! Not a recovery (no share leaves a trustee) and not a passkey change (no old passkey can
//! authorize it): the two factors of a recovery with `k` as the owner's. The client registers a
//! new credential over the one-touch challenge of every trustee's `RESET_PASSKEY` nonce and
//! proves knowledge of `k` against the active manifest's `C_0 = k·G`, bound to the wallet, the
//! new credential's fingerprint and the nonces (`dlocker_proto::reset_proof`). The wallet's own
//! bank checks the same (spending nothing) when the phone files the request
//! (`Staff.RequestPasskeyReset`, [`crate::staff::resets`]), and signs a `PasskeyResetApproval`
//! for the new credential once its staff policy held. Each trustee then checks the proof, its
//! nonce, the registration and the approval, and swaps the credential in one transaction that
//! also records the approval as spent.

use super::EpochOps;
use crate::db::{Batch, NonceRecord};
use crate::error::NodeError;
use crate::owner_touch::{VerifiedTouch, passkey_fingerprint};
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;
use dlocker_proto::manifest::Manifest;
use dlocker_proto::owner_challenge::{OwnerAction, OwnerChallenge, TrusteeNonce};
use dlocker_proto::reset_proof::ResetProof;
use dlocker_proto::statement::{PasskeyResetApproval, Signed};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::Passkey;

/// The audit entry's (and event's) kind for a reset credential.
pub const PASSKEY_RESET: &str = "passkey_reset";

/// Why a passkey reset was refused (beyond the one-touch, WebAuthn and bank-approval checks it
/// shares with other ceremonies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResetError {
    /// No bank approval was presented.
    #[error(
        "a passkey reset needs the wallet's bank's approval (a PasskeyResetApproval for the new \
            credential); the bank signs it once its staff checked the customer"
    )]
    ApprovalRequired,
    /// The proof of knowledge of `k` does not verify.
    #[error(
        "the proof of knowledge of the wallet secret does not verify for this wallet's active \
            manifest, the new credential and these nonces"
    )]
    ProofRejected,
    /// The approval names another credential than the one registered.
    #[error(
        "bank approval is for another credential ({approved}…), not the one registered \
            ({registered}…)"
    )]
    ApprovalWrongCredential {
        /// The approved fingerprint, abbreviated.
        approved: String,
        /// The registered credential's fingerprint, abbreviated.
        registered: String,
    },
    /// The approval already reset the passkey here.
    #[error(
        "this bank approval was already used for a passkey reset here; ask the bank for a new one"
    )]
    ApprovalSpent,
    /// The bank holds no such reset request.
    #[error("no such passkey reset request at this bank; the customer files it from the app")]
    RequestNotFound,
    /// The bank's reset request expired.
    #[error(
        "this passkey reset request expired at {expires_at}; the customer starts the reset again"
    )]
    RequestExpired {
        /// Unix seconds.
        expires_at: u64,
    },
}

/// The owner's side of a reset, as both the trustees' `ResetPasskey` and the bank's
/// `RequestPasskeyReset` carry it.
#[derive(Clone)]
pub struct ResetOwner {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The new credential's `RegisterPublicKeyCredential` JSON.
    pub registration_json: String,
    /// Every trustee's reset nonce.
    pub nonces: Vec<TrusteeNonce>,
    /// The proof of knowledge of `k`, encoded.
    pub key_proof: Vec<u8>,
}

impl ResetOwner {
    /// The owner's side as it comes off the wire (the trustees' `ResetPasskeyRequest` and the
    /// bank's `RequestPasskeyResetRequest` carry the same fields), bounded.
    pub fn from_wire(
        wallet_id: String,
        registration_json: String,
        nonces: &[dlocker_proto::pb::TrusteeNonce],
        key_proof: Vec<u8>,
    ) -> Result<Self, NodeError> {
        use crate::owner_touch::MAX_RESPONSE_JSON_BYTES;
        if registration_json.len() > MAX_RESPONSE_JSON_BYTES {
            return Err(NodeError::invalid(
                "registration_json",
                format!("at most {MAX_RESPONSE_JSON_BYTES} bytes"),
            ));
        }
        if key_proof.len() != dlocker_proto::reset_proof::PROOF_LEN {
            return Err(NodeError::invalid(
                "key_proof",
                format!(
                    "{} bytes; a proof is {}",
                    key_proof.len(),
                    dlocker_proto::reset_proof::PROOF_LEN
                ),
            ));
        }
        Ok(Self {
            wallet_id: crate::wallet::parse_wallet_id(wallet_id)?,
            registration_json,
            nonces: crate::owner_touch::nonces_from_wire(nonces)?,
            key_proof,
        })
    }
}

impl std::fmt::Debug for ResetOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetOwner")
            .field("wallet_id", &self.wallet_id)
            .field("registration_json", &"REDACTED")
            .finish()
    }
}

/// `ResetPasskey`, parsed.
#[derive(Debug, Clone)]
pub struct ResetPasskey {
    /// The owner's side.
    pub owner: ResetOwner,
    /// The bank's `PasskeyResetApproval` (empty: none).
    pub approval: Vec<u8>,
}

/// The owner's side, checked; this node's nonce is not spent yet.
pub(crate) struct CheckedReset {
    pub(crate) touch: VerifiedTouch<Passkey>,
    pub(crate) old_fingerprint: [u8; 32],
    pub(crate) new_fingerprint: [u8; 32],
    /// The wallet's bank, as its active manifest names it.
    pub(crate) bank_node_id: String,
}

fn short(fp: &[u8; 32]) -> String {
    hex::encode(&fp[..6])
}

/// An approval's single-use key: the SHA-256 of its canonical encoding (decoding refuses any
/// other encoding of it).
fn approval_token(encoded: &[u8]) -> [u8; 32] {
    Sha256::digest(encoded).into()
}

impl EpochOps<'_> {
    /// The owner's factor of a reset: the wallet is active here, this node's nonce is good
    /// (issued for this wallet and a reset, unused, unexpired), the registration verifies over
    /// the reset challenge, and the proof of knowledge of `k` verifies against the active
    /// manifest's `C_0`, bound to the new credential and every nonce. Spends nothing.
    pub(crate) async fn check_reset_owner(
        &self,
        owner: &ResetOwner,
        now: u64,
    ) -> Result<CheckedReset, NodeError> {
        let wallet = owner.wallet_id.as_str();
        let state = self.credential_swap_state(wallet, now).await?;
        let proof = ResetProof::decode(&owner.key_proof)
            .map_err(|e| NodeError::invalid("key_proof", e.to_string()))?;
        let current = self.owner_passkey(wallet, &state)?;
        let touch = self.verify_new_credential(
            &owner.wallet_id,
            &current,
            OwnerAction::ResetPasskey,
            owner.nonces.clone(),
            &owner.registration_json,
        )?;
        let new_fingerprint = passkey_fingerprint(&touch.value)?;
        let record = self.recovery().wallet_record(wallet)?;
        let manifest = Manifest::decode(&record.manifest)
            .map_err(|e| NodeError::Internal(format!("stored manifest: {e}")))?;
        let challenge = OwnerChallenge::new(
            OwnerAction::ResetPasskey,
            wallet,
            &new_fingerprint,
            owner.nonces.clone(),
        )
        .map_err(NodeError::ChallengeMalformed)?;
        proof
            .verify(manifest.commitments().secret_commitment(), &challenge)
            .map_err(|_| ResetError::ProofRejected)?;
        Ok(CheckedReset {
            touch,
            old_fingerprint: passkey_fingerprint(&current)?,
            new_fingerprint,
            bank_node_id: manifest.bank_node_id().to_owned(),
        })
    }

    /// `ResetPasskey`: replaces the wallet's credential on the owner's proof of `k` and the
    /// bank's approval. Returns the new credential's fingerprint.
    pub async fn reset_passkey(&self, req: ResetPasskey) -> Result<[u8; 32], NodeError> {
        let wallet = req.owner.wallet_id.as_str();
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        if self.epoch_state(wallet)?.is_none() {
            return Err(NodeError::WalletNotFound);
        }
        if req.approval.is_empty() {
            return Err(ResetError::ApprovalRequired.into());
        }
        let checked = self.check_reset_owner(&req.owner, now).await?;
        let approval: Signed<PasskeyResetApproval> = self.bank_keys.verify_bank_statement(
            &req.approval,
            wallet,
            &checked.bank_node_id,
            now,
        )?;
        let a = approval.body();
        if a.credential_fingerprint != checked.new_fingerprint {
            return Err(ResetError::ApprovalWrongCredential {
                approved: short(&a.credential_fingerprint),
                registered: short(&checked.new_fingerprint),
            }
            .into());
        }
        let token = approval_token(&req.approval);
        if self.db.owner_nonce(&token)?.is_some() {
            return Err(ResetError::ApprovalSpent.into());
        }
        self.owner_touch().spend_nonce(&checked.touch)?;
        let mut batch = Batch::default();
        batch.put_passkey_json(
            wallet,
            serde_json::to_vec(&checked.touch.value)
                .map_err(|e| NodeError::Internal(format!("serialise passkey: {e}")))?,
        );
        // Spent until it expires (it is refused after that anyway); swept with the nonces.
        batch.put_spent_token(
            &token,
            &NonceRecord {
                wallet_id: wallet.to_owned(),
                action: OwnerAction::ResetPasskey.as_u8(),
                expires_at: a.expires_at,
                used: true,
            },
        )?;
        self.apply(&batch)?;
        let ev = self.record(
            now,
            PASSKEY_RESET,
            wallet,
            "",
            &format!(
                "credential {} replaced by {} in a bank-assisted reset (bank request {}, approved \
                 by {})",
                short(&checked.old_fingerprint),
                short(&checked.new_fingerprint),
                a.request_id,
                a.approvers.join(", ")
            ),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(wallet = %req.owner.wallet_id.log_tag(), "passkey reset");
        Ok(checked.new_fingerprint)
    }
}
