//! Epochs at a trustee: stage a successor epoch, commit it, abandon it, retire from a wallet.
//!
//! The state machine is [`crate::epochs::state::EpochState`]; this module persists it and moves the
//! data.
//!
//! Storage: the epoch tables of [`crate::db`] ([`EPOCHS_TREE`]: the state, [`STAGED_TREE`]: the
//! staged epoch's record, [`RETIRED_TREE`]: the `RetireReceipt` issued, so a retried retire gets
//! the same answer).
//!
//! The active epoch always lives in the enrollment trees, so recovery and proofs read one place.
//! Every change is ONE [`crate::db::Batch`] over all tables it touches: a commit moves the staged
//! share, manifest, blob (and, for a joining node, passkey) into the enrollment trees — the
//! previous epoch's sealed share is overwritten in that same transaction, never left behind —
//! removes the staged record and writes the new state. Then the audit entry and event are
//! appended and the database is flushed before the caller hears about it.
//!
//! Rules every node enforces on its own:
//! - a staged epoch is verified exactly like a deposit (bad share → `INVALID_ARGUMENT`, nothing
//!   stored), must be the active epoch's successor (epoch e+1, `previous` = hash of e), and is
//!   authorised by the owner's one-touch assertion (`crate::owner_touch`); a node new to the
//!   wallet is handed the wallet's credential, whose fingerprint the assertion covers, and
//!   accepts it only with a `CredentialAttestation` from a trustee it knows
//!   (`[epochs] known_trustee_keys`) that holds the epoch the staged manifest succeeds, so a
//!   stranger cannot make it join (squat) a wallet under a credential of their own;
//! - at most one active and one staged epoch; a staged epoch expires after
//!   `[epochs] staged_ttl_secs` (the sweeper and every request for the wallet drop it);
//! - a commit needs the owner's assertion and evidence (signed receipts) that at least the new
//!   manifest's threshold of its trustees hold the new epoch, so no node erases its share of e
//!   before e+1 is recoverable without it; retirement needs commit receipts from the successor's
//!   threshold and a successor whose `previous` is this node's active manifest and that does not
//!   list this node;
//! - rotation and recovery exclude each other: while an owner-authenticated recovery session is
//!   live on the wallet, stage, commit and retire are refused (`FAILED_PRECONDITION`); a session
//!   the owner has not authenticated blocks nothing.
//!   Recovery is never refused because of a rotation: it always uses the active epoch, so a device
//!   lost in the middle of a rotation still recovers.
//! - Serialised with recovery by `Node::recovery_lock`.

pub mod cancel_all;
pub mod epochs_service;
pub mod erase;
pub mod passkey_change;
pub mod passkey_reset;
pub mod state;

use crate::at_rest::{self, ShareRecordId};
use crate::db::{Applied, Batch, PASSKEYS_TREE, StagedRecord, StoreError, WalletMeta};
use crate::enrollment::FinishEnrollment;
use crate::epochs::state::{ActiveEpoch, EpochAction, EpochError, EpochState, StagedEpoch};
use crate::error::NodeError;
use crate::node::Node;
use crate::owner_touch::passkey_fingerprint;
use crate::recovery::MAX_STATEMENT_BYTES;
use crate::recovery::release::{Release, ShareSource, StoredShare, release_share};
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;
use dlocker_proto::manifest::{Manifest, ManifestHash};
use dlocker_proto::owner_challenge::{OwnerAction, TrusteeNonce};
use dlocker_proto::schnorr::{NONCE_LEN, PossessionProof, ProofContext};
use dlocker_proto::statement::{
    CommitReceipt, CredentialAttestation, Receipt, RetireReceipt, Signed, StageReceipt,
    StatementBody, peek_kind,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use webauthn_rs::prelude::Passkey;

pub use crate::db::{EPOCHS_TREE, RETIRED_TREE, STAGED_TREE};

/// Most statements accepted as quorum evidence in one request.
pub const MAX_QUORUM_STATEMENTS: usize = dlocker_proto::MAX_TRUSTEES * 2;
/// Largest `Passkey` JSON a joining trustee accepts (a real one is under 1 KiB).
pub const MAX_PASSKEY_JSON_BYTES: usize = 8 * 1024;

/// The owner's one-touch assertion for an epoch action.
#[derive(Clone)]
pub struct OwnerAssertion {
    /// The challenge id `BeginEpochAction` returned (informational: the nonce is the key).
    pub challenge_id: String,
    /// `PublicKeyCredential` JSON.
    pub assertion_json: String,
    /// Every trustee's nonce of the ceremony.
    pub nonces: Vec<TrusteeNonce>,
}

impl std::fmt::Debug for OwnerAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerAssertion")
            .field("challenge_id", &self.challenge_id)
            .field("assertion_json", &"REDACTED")
            .finish()
    }
}

/// Who authorises a stage.
#[derive(Debug, Clone)]
pub enum StageAuthority {
    /// A node holding the wallet: the owner's assertion.
    Owner(OwnerAssertion),
    /// A node new to the wallet: the wallet's credential (`Passkey` JSON from a trustee that
    /// holds it) and the owner's assertion, whose challenge covers the credential's fingerprint.
    Joining {
        /// The assertion.
        owner: OwnerAssertion,
        /// `Passkey` JSON.
        passkey_json: String,
        /// `CredentialAttestation`s of trustees holding the wallet; one must come from a key
        /// this node knows.
        attestations: Vec<Vec<u8>>,
    },
    /// A new passkey registration: refused (one credential per wallet); kept so the refusal
    /// can say why.
    Registration,
}

/// `StageEpoch`, as received.
#[derive(Clone)]
pub struct StageEpoch {
    /// Canonical successor manifest.
    pub manifest: Vec<u8>,
    /// This node's share envelope for the staged epoch.
    pub share_envelope: Vec<u8>,
    /// The staged epoch's blob.
    pub blob: Vec<u8>,
    /// The owner's authority.
    pub authority: Option<StageAuthority>,
}

impl std::fmt::Debug for StageEpoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageEpoch")
            .field("manifest", &format_args!("{} bytes", self.manifest.len()))
            .field(
                "share_envelope",
                &format_args!("{} bytes", self.share_envelope.len()),
            )
            .field("blob", &format_args!("{} bytes", self.blob.len()))
            .field("authority", &self.authority.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

/// `CommitEpoch`, parsed.
#[derive(Debug, Clone)]
pub struct CommitEpoch {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The staged manifest.
    pub manifest_hash: ManifestHash,
    /// The owner's assertion.
    pub owner: Option<OwnerAssertion>,
    /// Receipts of the staged manifest's trustees.
    pub quorum: Vec<Vec<u8>>,
}

/// `AbandonEpoch`, parsed.
#[derive(Debug, Clone)]
pub struct AbandonEpoch {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The staged manifest.
    pub manifest_hash: ManifestHash,
    /// The owner's assertion.
    pub owner: Option<OwnerAssertion>,
}

/// `RetireWallet`, parsed.
#[derive(Debug, Clone)]
pub struct RetireWallet {
    /// The wallet.
    pub wallet_id: WalletId,
    /// The successor manifest (canonical).
    pub successor: Vec<u8>,
    /// Commit receipts of the successor's trustees.
    pub commit_receipts: Vec<Vec<u8>>,
    /// The owner's assertion.
    pub owner: Option<OwnerAssertion>,
}

/// What `BeginEpochAction` returns.
#[derive(Debug, Clone)]
pub struct EpochChallengeIssued {
    /// The challenge id (hex of the nonce).
    pub challenge_id: String,
    /// `RequestChallengeResponse` JSON template; empty on a node joining the wallet.
    pub request_options_json: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// This node's nonce.
    pub nonce: [u8; 32],
    /// The stored credential (`Passkey` JSON) and its fingerprint, on a node holding it.
    pub passkey: Option<(String, [u8; 32])>,
    /// For a stage on a node holding the wallet's active epoch: its signed
    /// `CredentialAttestation`.
    pub credential_attestation: Option<Vec<u8>>,
    /// For a passkey change or reset: the creation-options template of the new credential.
    pub creation_options_json: String,
}

/// The owner action a `BeginEpochAction` action's touch is for (a retire is authorised by the
/// rotation's commit touch).
pub fn owner_action(action: EpochAction) -> OwnerAction {
    match action {
        EpochAction::Stage => OwnerAction::Stage,
        EpochAction::Commit | EpochAction::Retire => OwnerAction::Commit,
        EpochAction::Abandon => OwnerAction::Abandon,
        EpochAction::Delete => OwnerAction::Delete,
        EpochAction::ChangePasskey => OwnerAction::ChangePasskey,
        EpochAction::CancelAll => OwnerAction::CancelAll,
        EpochAction::ResetPasskey => OwnerAction::ResetPasskey,
    }
}

/// A staged epoch as `GetBackupStatus` reports it.
#[derive(Debug, Clone)]
pub struct StagedStatus {
    /// Epoch.
    pub epoch: u64,
    /// This node's share index in it.
    pub share_index: u16,
    /// Manifest hash.
    pub manifest_hash: [u8; 32],
    /// Unix seconds.
    pub staged_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// The signed `StageReceipt`.
    pub stage_receipt: Vec<u8>,
}

fn corrupt(tree: &'static str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

fn internal(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(format!("{what}: {e}"))
}

pub(crate) fn hash_from_hex(tree: &'static str, h: &str) -> Result<ManifestHash, NodeError> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(h, &mut b).map_err(|e| corrupt(tree, e))?;
    Ok(ManifestHash(b))
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

/// Checks statement list bounds.
pub fn check_statements(field: &'static str, list: &[Vec<u8>]) -> Result<(), NodeError> {
    if list.len() > MAX_QUORUM_STATEMENTS {
        return Err(NodeError::invalid(
            field,
            format!("at most {MAX_QUORUM_STATEMENTS} statements"),
        ));
    }
    if list.iter().any(|s| s.len() > MAX_STATEMENT_BYTES) {
        return Err(NodeError::invalid(
            field,
            format!("a statement is larger than {MAX_STATEMENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Which statements count as evidence that a trustee holds an epoch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Evidence {
    /// Staged or committed (before a commit).
    StagedOrCommitted,
    /// Committed only (before a retirement).
    Committed,
}

/// The node id of the manifest trustee that validly signed `bytes` about `manifest` (a stage
/// receipt, a commit receipt or an enrollment receipt, as `evidence` allows), if any.
fn evidence_signer(
    manifest: &Manifest,
    hash: &ManifestHash,
    bytes: &[u8],
    evidence: Evidence,
) -> Option<String> {
    fn check<B: StatementBody>(
        manifest: &Manifest,
        bytes: &[u8],
        fields: impl Fn(&B) -> (&str, &str, u64, u16, ManifestHash),
        hash: &ManifestHash,
    ) -> Option<String> {
        let signed = Signed::<B>::decode(bytes).ok()?;
        let (node_id, wallet_id, epoch, index, h) = fields(signed.body());
        let entry = manifest.trustee(node_id)?;
        (entry.public_key == *signed.signer()
            && wallet_id == manifest.wallet_id()
            && epoch == manifest.epoch()
            && index == entry.share_index
            && h == *hash)
            .then(|| node_id.to_owned())
    }
    match (peek_kind(bytes)?, evidence) {
        (StageReceipt::KIND, Evidence::StagedOrCommitted) => check::<StageReceipt>(
            manifest,
            bytes,
            |b| {
                (
                    &b.node_id,
                    &b.wallet_id,
                    b.epoch,
                    b.share_index,
                    b.manifest_hash,
                )
            },
            hash,
        ),
        (CommitReceipt::KIND, _) => check::<CommitReceipt>(
            manifest,
            bytes,
            |b| {
                (
                    &b.node_id,
                    &b.wallet_id,
                    b.epoch,
                    b.share_index,
                    b.manifest_hash,
                )
            },
            hash,
        ),
        (Receipt::KIND, _) => check::<Receipt>(
            manifest,
            bytes,
            |b| {
                (
                    &b.node_id,
                    &b.wallet_id,
                    b.epoch,
                    b.share_index,
                    b.manifest_hash,
                )
            },
            hash,
        ),
        _ => None,
    }
}

/// What a node joining a wallet is handed at a stage.
struct Joining<'a> {
    owner: &'a OwnerAssertion,
    passkey_json: &'a str,
    attestations: &'a [Vec<u8>],
}

/// Longest a holder's credential attestation is accepted after it was issued (it is fetched
/// in the same stage ceremony), and how far ahead a holder's clock may be.
pub const MAX_ATTESTATION_AGE_SECS: u64 = 3600;
const MAX_ATTESTATION_SKEW_SECS: u64 = 300;

/// Epoch operations (stage, commit, abandon, retire, delete, passkey change): a borrowed view
/// of the [`Node`] context, whose fields and methods read through it.
#[derive(Clone, Copy)]
pub struct EpochOps<'a>(&'a Node);

impl std::ops::Deref for EpochOps<'_> {
    type Target = Node;
    fn deref(&self) -> &Node {
        self.0
    }
}

impl Node {
    /// Epochs: stage, commit, abandon, retire, delete, passkey change.
    pub fn epochs(&self) -> EpochOps<'_> {
        EpochOps(self)
    }
}

/// At least one of `attestations` is signed by a `known` trustee and says it holds the epoch
/// `manifest` succeeds (number and hash) of the same wallet, with the credential `fingerprint`,
/// recently. The reason the closest one fails otherwise.
fn check_attestations(
    known: &[k256::PublicKey],
    attestations: &[Vec<u8>],
    manifest: &Manifest,
    fingerprint: &[u8; 32],
    now: u64,
) -> Result<(), EpochError> {
    let refuse = EpochError::CredentialNotAttested;
    if known.is_empty() {
        return Err(refuse(
            "this node knows no trustee keys, so it joins no wallet by rotation",
        ));
    }
    if attestations.is_empty() {
        return Err(refuse(
            "no credential attestation was sent (BeginEpochAction STAGE at a trustee holding the \
                wallet returns one)",
        ));
    }
    let previous = manifest.previous().ok_or(EpochError::NoPrevious)?;
    let mut why = "no attestation is signed by a trustee this node knows";
    for bytes in attestations {
        let Ok(signed) = Signed::<CredentialAttestation>::decode_trusted(bytes, known) else {
            continue;
        };
        let a = signed.body();
        why = if a.node_id != dlocker_proto::keys::node_id(signed.signer()) {
            "the attestation's node id is not its signer's"
        } else if a.wallet_id != manifest.wallet_id() {
            "the attestation is for another wallet"
        } else if a.manifest_hash != *previous || a.epoch.saturating_add(1) != manifest.epoch() {
            "the attesting trustee holds another epoch than the one this manifest succeeds"
        } else if a.credential_fingerprint != *fingerprint {
            "the attested credential is not the one handed to this node"
        } else if a.issued_at.saturating_add(MAX_ATTESTATION_AGE_SECS) < now
            || a.issued_at > now.saturating_add(MAX_ATTESTATION_SKEW_SECS)
        {
            "the attestation is too old (or from the future); fetch a fresh one"
        } else {
            return Ok(());
        };
    }
    Err(refuse(why))
}

impl EpochOps<'_> {
    /// Applies `batch`; a failed precondition (a deposit raced a joining node) is a conflict.
    pub(crate) fn apply(&self, batch: &Batch) -> Result<(), NodeError> {
        match self.db.apply(batch)? {
            Applied::Done => Ok(()),
            Applied::PreconditionFailed => Err(NodeError::Conflict),
        }
    }

    /// The wallet's epoch state: persisted, or derived from an enrolled, never rotated wallet.
    pub fn epoch_state(&self, wallet_id: &str) -> Result<Option<EpochState>, NodeError> {
        if let Some(s) = self.db.epoch_state(wallet_id)? {
            return Ok(Some(s));
        }
        Ok(self.db.wallet_meta(wallet_id)?.map(|meta: WalletMeta| {
            EpochState::active_from_meta(meta.epoch, &meta.manifest_hash, meta.share_index)
        }))
    }

    fn staged_record(&self, wallet_id: &str) -> Result<StagedRecord, NodeError> {
        self.db
            .staged(wallet_id)?
            .ok_or_else(|| corrupt(STAGED_TREE, "staged epoch without its record"))
    }

    /// Drops the wallet's staged epoch if it expired; returns the state after that.
    pub(crate) async fn expire_if_due(
        &self,
        wallet_id: &str,
        now: u64,
    ) -> Result<Option<EpochState>, NodeError> {
        let Some(state) = self.epoch_state(wallet_id)? else {
            return Ok(None);
        };
        let (after, expired) = state.expire(now);
        if let Some(x) = expired {
            let mut batch = Batch::default();
            batch.remove_staged(wallet_id);
            match &after {
                Some(s) => batch.put_epoch_state(wallet_id, s)?,
                None => batch.remove_epoch_state(wallet_id),
            }
            self.apply(&batch)?;
            let ev = self.record(
                now,
                "epoch_expired",
                wallet_id,
                "",
                &format!(
                    "staged epoch {} expired at {} uncommitted; its share is erased",
                    x.epoch, x.expires_at
                ),
            )?;
            self.commit(vec![ev]).await?;
            tracing::info!(wallet = %log_tag(wallet_id), epoch = x.epoch, "staged epoch expired");
        }
        Ok(after)
    }

    fn refuse_during_recovery(&self, wallet_id: &str, now: u64) -> Result<(), NodeError> {
        // Only a session the owner authenticated blocks a rotation: a stranger's open session
        // must not hold the owner's wallet hostage.
        if self
            .recovery()
            .sessions_for_wallet(wallet_id)?
            .iter()
            .any(|s| s.session.blocks_rotation(now))
        {
            return Err(EpochError::RecoveryInProgress.into());
        }
        Ok(())
    }

    /// Refuses `FinishEnrollment` for a wallet this node retired from: its share was erased,
    /// and a replayed or new epoch-1 deposit must not bring one back (a trustee rejoins a wallet
    /// only through a rotation the owner authorises).
    pub(crate) fn refuse_enrollment_after_retire(
        &self,
        wallet_id: &WalletId,
    ) -> Result<(), NodeError> {
        let tag = self.audit.wallet_tag(wallet_id.as_str());
        if self.db.retired(&tag)?.is_some() {
            return Err(EpochError::RetiredHere.into());
        }
        Ok(())
    }

    /// Refuses `FinishEnrollment` for a wallet this node is joining through a staged epoch.
    pub(crate) fn refuse_enrollment_while_joining(
        &self,
        wallet_id: &WalletId,
    ) -> Result<(), NodeError> {
        match self.epoch_state(wallet_id.as_str())? {
            Some(EpochState::Joining { .. }) => Err(NodeError::Conflict),
            _ => Ok(()),
        }
    }

    /// The owner's passkey for `state`: the wallet's, or a joining node's staged one.
    pub(crate) fn owner_passkey(
        &self,
        wallet_id: &str,
        state: &EpochState,
    ) -> Result<Passkey, NodeError> {
        let json = match state {
            EpochState::Joining { .. } => self
                .staged_record(wallet_id)?
                .passkey_json
                .ok_or_else(|| corrupt(STAGED_TREE, "joining node without a passkey"))?,
            _ => self
                .db
                .passkey_json(wallet_id)?
                .ok_or_else(|| corrupt(PASSKEYS_TREE, "enrolled wallet without a passkey"))?,
        };
        serde_json::from_slice(&json).map_err(|e| corrupt(PASSKEYS_TREE, e))
    }

    /// `BeginEpochAction`: a single-use nonce for one owner touch (wallet, action). On a node
    /// that holds the wallet, also the request-options template and, for a stage, the wallet's
    /// credential and its fingerprint (what a trustee joining the wallet will be handed). A node
    /// that does not hold the wallet answers a stage only (it may be joining).
    pub async fn begin_epoch_action(
        &self,
        wallet_id: &WalletId,
        action: EpochAction,
    ) -> Result<EpochChallengeIssued, NodeError> {
        let guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let wallet = wallet_id.as_str();
        let state = self.expire_if_due(wallet, now).await?;
        let (request_options_json, passkey) = match &state {
            Some(state) => {
                let passkey = self.owner_passkey(wallet, state)?;
                let (rcr, _) = self
                    .webauthn
                    .start_passkey_authentication(std::slice::from_ref(&passkey))
                    .map_err(|e| internal("start passkey authentication", e))?;
                let json = serde_json::to_string(&passkey)
                    .map_err(|e| internal("serialise passkey", e))?;
                (
                    serde_json::to_string(&rcr).map_err(|e| internal("serialise options", e))?,
                    Some((json, passkey_fingerprint(&passkey)?)),
                )
            }
            None if action == EpochAction::Stage => (String::new(), None),
            None => return Err(NodeError::WalletNotFound),
        };
        let creation_options_json = match (&state, action) {
            (Some(state), EpochAction::ChangePasskey | EpochAction::ResetPasskey) => {
                let current = self.owner_passkey(wallet, state)?;
                let (ccr, _) = self.start_passkey_change(wallet_id, &current)?;
                serde_json::to_string(&ccr).map_err(|e| internal("serialise options", e))?
            }
            _ => String::new(),
        };
        // A holder vouches for the wallet's credential, for the trustees joining at this stage.
        let credential_attestation = match (&state, &passkey) {
            (Some(state), Some((_, fingerprint))) if action == EpochAction::Stage => state
                .active()
                .map(|active| {
                    Ok::<_, NodeError>(
                        Signed::sign(
                            CredentialAttestation {
                                node_id: self.identity.node_id().to_owned(),
                                wallet_id: wallet.to_owned(),
                                epoch: active.epoch,
                                manifest_hash: hash_from_hex(EPOCHS_TREE, &active.manifest_hash)?,
                                credential_fingerprint: *fingerprint,
                                issued_at: now,
                            },
                            &self.identity.signing_key(),
                        )
                        .encode(),
                    )
                })
                .transpose()?,
            _ => None,
        };
        // Anyone may ask for a nonce: its flush must not hold up every wallet's rotations and
        // recoveries while the disk syncs (the nonce is written first, acknowledged after).
        drop(guard);
        let issued = self
            .owner_touch()
            .issue_owner_nonce(wallet, owner_action(action))?;
        self.db.flush().await?;
        Ok(EpochChallengeIssued {
            challenge_id: hex::encode(issued.nonce),
            request_options_json,
            expires_at: issued.expires_at,
            nonce: issued.nonce,
            passkey,
            credential_attestation,
            creation_options_json,
        })
    }

    /// Verifies the owner's one-touch assertion for `action` over `authorized` against the
    /// wallet's `passkey` (see [`Self::owner_passkey`]), and spends this node's nonce. Returns the
    /// passkey to store back
    /// when its counter changed.
    pub(crate) fn verify_owner(
        &self,
        wallet_id: &str,
        owner: Option<&OwnerAssertion>,
        action: EpochAction,
        authorized: &[u8],
        passkey: &Passkey,
    ) -> Result<Option<Vec<u8>>, NodeError> {
        let owner = owner.ok_or(EpochError::OwnerAssertionRequired {
            action: action.name(),
        })?;
        let touch = self.owner_touch().verify_owner_assertion(
            wallet_id,
            owner_action(action),
            authorized,
            owner.nonces.clone(),
            &owner.assertion_json,
            passkey,
        )?;
        self.owner_touch().spend_nonce(&touch)?;
        touch
            .value
            .map(|p| serde_json::to_vec(&p).map_err(|e| internal("serialise passkey", e)))
            .transpose()
    }

    /// A trustee joining the wallet: the handed credential must be the one whose fingerprint
    /// the owner's stage touch covers, and the assertion must verify with it. Returns the
    /// passkey JSON to stage.
    fn verify_joining(
        &self,
        wallet_id: &str,
        joining: Joining<'_>,
        manifest: &Manifest,
        manifest_hash: &ManifestHash,
        now: u64,
    ) -> Result<Vec<u8>, NodeError> {
        let Joining {
            owner,
            passkey_json,
            attestations,
        } = joining;
        if passkey_json.len() > MAX_PASSKEY_JSON_BYTES {
            return Err(NodeError::invalid(
                "joining.passkey_json",
                format!("at most {MAX_PASSKEY_JSON_BYTES} bytes"),
            ));
        }
        check_statements("joining.credential_attestations", attestations)?;
        let passkey: Passkey = serde_json::from_str(passkey_json).map_err(|_| {
            NodeError::invalid("joining.passkey_json", "not a webauthn Passkey (JSON)")
        })?;
        let fingerprint = passkey_fingerprint(&passkey)?;
        // Before the assertion is even looked at (and the nonce spent): anyone can register a
        // passkey and touch it, so only a known trustee's word makes the credential the wallet's.
        check_attestations(
            &self.config.epochs.known_trustee_keys,
            attestations,
            manifest,
            &fingerprint,
            now,
        )?;
        let authorized =
            dlocker_proto::owner_challenge::stage_authorized(&manifest_hash.0, &fingerprint);
        let touch = self.owner_touch().verify_owner_assertion(
            wallet_id,
            OwnerAction::Stage,
            &authorized,
            owner.nonces.clone(),
            &owner.assertion_json,
            &passkey,
        )?;
        self.owner_touch().spend_nonce(&touch)?;
        let stored = touch.value.unwrap_or(passkey);
        serde_json::to_vec(&stored).map_err(|e| internal("serialise passkey", e))
    }

    /// At least `manifest.threshold()` distinct trustees of `manifest` show (signed receipts)
    /// that they hold it; `own` counts this node when it holds it too.
    fn check_quorum(
        &self,
        manifest: &Manifest,
        statements: &[Vec<u8>],
        evidence: Evidence,
        own: bool,
        what: &'static str,
    ) -> Result<(), NodeError> {
        let hash = manifest.hash();
        let mut holders: BTreeSet<String> = statements
            .iter()
            .filter_map(|s| evidence_signer(manifest, &hash, s, evidence))
            .collect();
        if own {
            holders.insert(self.identity.node_id().to_owned());
        }
        let need = usize::from(manifest.threshold());
        if holders.len() < need {
            return Err(EpochError::QuorumNotMet {
                epoch: manifest.epoch(),
                have: holders.len(),
                need,
                what,
            }
            .into());
        }
        Ok(())
    }

    /// `StageEpoch`: verified like a deposit, authorised by the owner, stored beside the active
    /// epoch in one transaction and flushed; returns the signed `StageReceipt`.
    pub async fn stage_epoch(&self, req: StageEpoch) -> Result<Vec<u8>, NodeError> {
        let authority = req
            .authority
            .clone()
            .ok_or(EpochError::OwnerAssertionRequired { action: "stage" })?;
        let credential_json = match &authority {
            StageAuthority::Owner(a) | StageAuthority::Joining { owner: a, .. } => {
                a.assertion_json.clone()
            }
            StageAuthority::Registration => {
                return Err(EpochError::RegistrationNotAllowed.into());
            }
        };
        let as_deposit = FinishEnrollment {
            ceremony_id: String::new(),
            credential_json,
            manifest: req.manifest,
            share_envelope: req.share_envelope,
            blob: req.blob,
            nonces: Vec::new(),
        };
        self.enrollment().check_sizes(&as_deposit)?;
        let manifest = Manifest::decode(&as_deposit.manifest).map_err(NodeError::BadManifest)?;
        let wallet_id = crate::wallet::parse_wallet_id(manifest.wallet_id().to_owned())?;
        let wallet = wallet_id.as_str();

        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let current = self.expire_if_due(wallet, now).await?;
        self.refuse_during_recovery(wallet, now)?;
        // Exactly the deposit checks: membership, blob hash, envelope, commitments.
        let deposit = self.enrollment().verify_deposit(&wallet_id, &as_deposit)?;
        let index = self.enrollment().share_index_in(&deposit.manifest)?;
        let previous = *deposit.manifest.previous().ok_or(EpochError::NoPrevious)?;
        let hash_hex = hex::encode(deposit.manifest_hash.0);
        let epoch = deposit.manifest.epoch();
        let expires_at = now.saturating_add(self.config.epochs.staged_ttl_secs);
        let (next, refreshed) = EpochState::stage(
            current.clone(),
            StagedEpoch {
                epoch,
                manifest_hash: hash_hex.clone(),
                previous: hex::encode(previous.0),
                share_index: index,
                staged_at: now,
                expires_at,
            },
        )?;

        let mut batch = Batch::default();
        let existing = if refreshed {
            Some(self.staged_record(wallet)?)
        } else {
            None
        };
        // The owner's authority; what it changes.
        let mut staged_passkey = existing.as_ref().and_then(|r| r.passkey_json.clone());
        match (&current, &authority) {
            (
                None,
                StageAuthority::Joining {
                    owner,
                    passkey_json,
                    attestations,
                },
            ) => {
                staged_passkey = Some(self.verify_joining(
                    wallet,
                    Joining {
                        owner,
                        passkey_json,
                        attestations,
                    },
                    &deposit.manifest,
                    &deposit.manifest_hash,
                    now,
                )?);
                batch.require_not_enrolled(wallet);
            }
            (
                Some(EpochState::Joining { .. }),
                StageAuthority::Joining {
                    owner,
                    passkey_json,
                    attestations,
                },
            ) => {
                // The very same stage again (refreshed): the first credential stays, and the
                // one handed now must be it.
                let again = self.verify_joining(
                    wallet,
                    Joining {
                        owner,
                        passkey_json,
                        attestations,
                    },
                    &deposit.manifest,
                    &deposit.manifest_hash,
                    now,
                )?;
                let first: Option<Passkey> = staged_passkey
                    .as_deref()
                    .and_then(|p| serde_json::from_slice(p).ok());
                let again: Passkey =
                    serde_json::from_slice(&again).map_err(|e| internal("passkey", e))?;
                if first.as_ref().map(|p| p.cred_id()) != Some(again.cred_id()) {
                    return Err(EpochError::RegistrationNotAllowed.into());
                }
            }
            (None, _) => return Err(NodeError::WalletNotFound),
            (Some(_), StageAuthority::Joining { .. }) => {
                return Err(EpochError::RegistrationNotAllowed.into());
            }
            (Some(_), StageAuthority::Registration) => {
                return Err(EpochError::RegistrationNotAllowed.into());
            }
            (Some(state), StageAuthority::Owner(a)) => {
                let own = self.owner_passkey(wallet, state)?;
                let authorized = dlocker_proto::owner_challenge::stage_authorized(
                    &deposit.manifest_hash.0,
                    &passkey_fingerprint(&own)?,
                );
                let updated =
                    self.verify_owner(wallet, Some(a), EpochAction::Stage, &authorized, &own)?;
                if let Some(p) = updated {
                    match state {
                        EpochState::Joining { .. } => staged_passkey = Some(p),
                        _ => batch.put_passkey_json(wallet, p),
                    }
                }
            }
        }

        let staged = next
            .staged()
            .ok_or_else(|| internal("stage", "no staged epoch after staging"))?
            .clone();
        let node_id = self.identity.node_id();
        let sealed_share = match &existing {
            Some(r) => r.sealed_share.clone(),
            None => at_rest::seal_share(
                &self.storage_key,
                &ShareRecordId {
                    node_id,
                    wallet_id: wallet,
                    epoch,
                    share_index: index,
                },
                &deposit.share,
            )
            .map_err(|e| internal("seal share", e))?,
        };
        let receipt = Signed::sign(
            StageReceipt {
                node_id: node_id.to_owned(),
                wallet_id: wallet.to_owned(),
                epoch,
                share_index: index,
                manifest_hash: deposit.manifest_hash,
                previous_manifest_hash: previous,
                staged_at: staged.staged_at,
                expires_at: staged.expires_at,
            },
            &self.identity.signing_key(),
        )
        .encode();
        let record = StagedRecord {
            sealed_share,
            manifest: as_deposit.manifest,
            blob: as_deposit.blob,
            stage_receipt: receipt.clone(),
            passkey_json: staged_passkey,
        };
        batch.put_staged(wallet, &record);
        batch.put_epoch_state(wallet, &next)?;
        self.apply(&batch)?;
        let beside = match next.active() {
            Some(a) => format!("beside active epoch {}", a.epoch),
            None => "joining the wallet".to_owned(),
        };
        let ev = self.record(
            now,
            "epoch_staged",
            wallet,
            "",
            &format!(
                "epoch {epoch} (share index {index}, manifest {}) {}{beside}; expires at {}",
                short(&hash_hex),
                if refreshed {
                    "staged again "
                } else {
                    "staged "
                },
                staged.expires_at
            ),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(
            wallet = %wallet_id.log_tag(),
            epoch,
            share_index = index,
            refreshed,
            "epoch staged"
        );
        Ok(receipt)
    }

    fn commit_receipt(&self, wallet_id: &str, active: &ActiveEpoch) -> Result<Vec<u8>, NodeError> {
        Ok(Signed::sign(
            CommitReceipt {
                node_id: self.identity.node_id().to_owned(),
                wallet_id: wallet_id.to_owned(),
                epoch: active.epoch,
                share_index: active.share_index,
                manifest_hash: hash_from_hex(EPOCHS_TREE, &active.manifest_hash)?,
                erased: active
                    .erased
                    .as_deref()
                    .map(|h| hash_from_hex(EPOCHS_TREE, h))
                    .transpose()?,
                committed_at: active.committed_at.unwrap_or_default(),
            },
            &self.identity.signing_key(),
        )
        .encode())
    }

    /// `CommitEpoch`: the staged epoch becomes active and the previous epoch's share is erased,
    /// in one transaction, flushed before the `CommitReceipt` is returned. A retry after success
    /// returns the same receipt.
    pub async fn commit_epoch(&self, req: CommitEpoch) -> Result<Vec<u8>, NodeError> {
        check_statements("quorum_encoded", &req.quorum)?;
        let wallet = req.wallet_id.as_str();
        let hash_hex = hex::encode(req.manifest_hash.0);
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let state = self
            .expire_if_due(wallet, now)
            .await?
            .ok_or(NodeError::WalletNotFound)?;
        if state.is_committed(&hash_hex)
            && let Some(active) = state.active()
        {
            return self.commit_receipt(wallet, active);
        }
        if req.owner.is_none() {
            return Err(EpochError::OwnerAssertionRequired { action: "commit" }.into());
        }
        self.refuse_during_recovery(wallet, now)?;
        let staged = state.staged_for(&hash_hex, now)?.clone();
        let record = self.staged_record(wallet)?;
        let manifest = Manifest::decode(&record.manifest).map_err(|e| corrupt(STAGED_TREE, e))?;
        self.check_quorum(
            &manifest,
            &req.quorum,
            Evidence::StagedOrCommitted,
            true,
            "send the stage receipts of the other trustees of the new epoch",
        )?;
        let updated = self.verify_owner(
            wallet,
            req.owner.as_ref(),
            EpochAction::Commit,
            &req.manifest_hash.0,
            &self.owner_passkey(wallet, &state)?,
        )?;
        let joining = matches!(state, EpochState::Joining { .. });
        let (next, erased) = state.commit(&hash_hex, now)?;
        let active = next
            .active()
            .ok_or_else(|| internal("commit", "no active epoch after commit"))?
            .clone();

        let receipt = Signed::sign(
            Receipt {
                node_id: self.identity.node_id().to_owned(),
                wallet_id: wallet.to_owned(),
                epoch: staged.epoch,
                share_index: staged.share_index,
                manifest_hash: req.manifest_hash,
                issued_at: now,
            },
            &self.identity.signing_key(),
        )
        .encode();
        let meta = WalletMeta {
            epoch: staged.epoch,
            share_index: staged.share_index,
            manifest_hash: hash_hex.clone(),
            enrolled_at: now,
            blob_size: record.blob.len() as u64,
        };
        let mut batch = Batch::default();
        batch.put_wallet_meta(wallet, &meta)?;
        // Overwrites the previous epoch's sealed share: erased in this very transaction.
        batch.put_sealed_share(wallet, record.sealed_share.clone());
        batch.put_manifest(wallet, record.manifest.clone());
        batch.put_blob(wallet, record.blob.clone());
        batch.put_receipt(wallet, receipt);
        if joining {
            let passkey = updated
                .or(record.passkey_json.clone())
                .ok_or_else(|| corrupt(STAGED_TREE, "joining node without a passkey"))?;
            batch.put_passkey_json(wallet, passkey);
            batch.require_not_enrolled(wallet);
        } else if let Some(p) = updated {
            batch.put_passkey_json(wallet, p);
        }
        batch.remove_staged(wallet);
        batch.put_epoch_state(wallet, &next)?;
        // A committed rotation needed the owner's app to finish: the wallet is not abandoned.
        batch.remove_unconfirmed(wallet);
        self.apply(&batch)?;
        let detail = match &erased {
            Some(e) => format!(
                "epoch {} active (share index {}, manifest {}); the share of epoch {} is erased",
                active.epoch,
                active.share_index,
                short(&hash_hex),
                e.epoch
            ),
            None => format!(
                "epoch {} active (share index {}, manifest {}); joined the wallet",
                active.epoch,
                active.share_index,
                short(&hash_hex)
            ),
        };
        let ev = self.record(now, "epoch_committed", wallet, "", &detail)?;
        self.commit(vec![ev]).await?;
        tracing::info!(wallet = %req.wallet_id.log_tag(), epoch = active.epoch, "epoch committed");
        self.commit_receipt(wallet, &active)
    }

    /// `AbandonEpoch`: drops the staged epoch (rollback). `Ok(false)` when nothing is staged under
    /// that hash any more (abandoned or expired already).
    pub async fn abandon_epoch(&self, req: AbandonEpoch) -> Result<bool, NodeError> {
        let wallet = req.wallet_id.as_str();
        let hash_hex = hex::encode(req.manifest_hash.0);
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let state = self
            .expire_if_due(wallet, now)
            .await?
            .ok_or(NodeError::WalletNotFound)?;
        let next = match state.clone().abandon(&hash_hex) {
            Ok(next) => next,
            Err(EpochError::NotStaged) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let updated = self.verify_owner(
            wallet,
            req.owner.as_ref(),
            EpochAction::Abandon,
            &req.manifest_hash.0,
            &self.owner_passkey(wallet, &state)?,
        )?;
        let mut batch = Batch::default();
        batch.remove_staged(wallet);
        match &next {
            Some(s) => {
                batch.put_epoch_state(wallet, s)?;
                if let Some(p) = updated {
                    batch.put_passkey_json(wallet, p);
                }
            }
            None => batch.remove_epoch_state(wallet),
        }
        self.apply(&batch)?;
        let epoch = state.staged().map(|s| s.epoch).unwrap_or_default();
        let ev = self.record(
            now,
            "epoch_abandoned",
            wallet,
            "",
            &format!("staged epoch {epoch} abandoned by the owner; its share is erased"),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(wallet = %req.wallet_id.log_tag(), epoch, "staged epoch abandoned");
        Ok(true)
    }

    /// `RetireWallet`: a trustee leaving the set erases everything it holds for the wallet.
    pub async fn retire_wallet(&self, req: RetireWallet) -> Result<Vec<u8>, NodeError> {
        check_statements("commit_receipts_encoded", &req.commit_receipts)?;
        if req.successor.len() > crate::enrollment::MAX_MANIFEST_BYTES {
            return Err(NodeError::invalid(
                "successor_manifest_encoded",
                format!("at most {} bytes", crate::enrollment::MAX_MANIFEST_BYTES),
            ));
        }
        let successor = Manifest::decode(&req.successor).map_err(NodeError::BadManifest)?;
        let wallet = req.wallet_id.as_str();
        if successor.wallet_id() != wallet {
            return Err(NodeError::WalletMismatch);
        }
        let successor_hash = successor.hash();
        let successor_hex = hex::encode(successor_hash.0);
        let tag = self.audit.wallet_tag(wallet);
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let Some(state) = self.expire_if_due(wallet, now).await? else {
            // Retired already (a retry whose answer was lost): the same receipt.
            if let Some(r) = self.db.retired(&tag)?
                && Signed::<RetireReceipt>::decode(&r)
                    .is_ok_and(|s| s.body().successor_manifest_hash == successor_hash)
            {
                return Ok(r);
            }
            return Err(NodeError::WalletNotFound);
        };
        self.refuse_during_recovery(wallet, now)?;
        let active = state.clone().retire()?;
        if successor.trustee(self.identity.node_id()).is_some() {
            return Err(EpochError::Successor(
                "it lists this node, which must commit it instead of retiring",
            )
            .into());
        }
        if successor.previous().map(|h| hex::encode(h.0)) != Some(active.manifest_hash.clone()) {
            return Err(EpochError::Successor(
                "its previous manifest is not the one this node holds",
            )
            .into());
        }
        self.check_quorum(
            &successor,
            &req.commit_receipts,
            Evidence::Committed,
            false,
            "send the commit receipts of the new epoch's trustees",
        )?;
        self.verify_owner(
            wallet,
            req.owner.as_ref(),
            EpochAction::Retire,
            &successor_hash.0,
            &self.owner_passkey(wallet, &state)?,
        )?;
        let receipt = Signed::sign(
            RetireReceipt {
                node_id: self.identity.node_id().to_owned(),
                wallet_id: wallet.to_owned(),
                retired_epoch: active.epoch,
                retired_manifest_hash: hash_from_hex(EPOCHS_TREE, &active.manifest_hash)?,
                successor_manifest_hash: successor_hash,
                retired_at: now,
            },
            &self.identity.signing_key(),
        )
        .encode();
        let mut batch = Batch::default();
        batch.remove_wallet_data(wallet);
        // Every session of the wallet, finished ones too, names it.
        for id in self.db.session_ids_of_wallet(wallet)? {
            batch.remove_session(wallet, &id);
        }
        batch.put_retired(&tag, receipt.clone());
        self.apply(&batch)?;
        let ev = self.record(
            now,
            "wallet_retired",
            wallet,
            "",
            &format!(
                "left the wallet: epoch {} erased (share, manifest, passkey, blob); successor \
                    manifest {}",
                active.epoch,
                short(&successor_hex)
            ),
        )?;
        // The wallet's earlier events stop being served here (its retirement event stays).
        self.events.forget_wallet(wallet, ev.seq)?;
        self.commit(vec![ev]).await?;
        tracing::info!(wallet = %req.wallet_id.log_tag(), epoch = active.epoch, "retired from the \
            wallet");
        Ok(receipt)
    }

    /// The staged epoch, if one is pending (unexpired), for `GetBackupStatus`.
    pub fn staged_status(&self, wallet_id: &WalletId) -> Result<Option<StagedStatus>, NodeError> {
        let now = self.now();
        let Some(state) = self.epoch_state(wallet_id.as_str())? else {
            return Ok(None);
        };
        match state.staged() {
            Some(s) if !s.is_expired(now) => {
                let record = self.staged_record(wallet_id.as_str())?;
                Ok(Some(StagedStatus {
                    epoch: s.epoch,
                    share_index: s.share_index,
                    manifest_hash: hash_from_hex(EPOCHS_TREE, &s.manifest_hash)?.0,
                    staged_at: s.staged_at,
                    expires_at: s.expires_at,
                    stage_receipt: record.stage_receipt,
                }))
            }
            _ => Ok(None),
        }
    }

    /// The staged (unexpired) epoch's manifest, offered by `OpenRecovery` beside the active one.
    pub fn staged_manifest(&self, wallet_id: &WalletId) -> Result<Option<Vec<u8>>, NodeError> {
        let now = self.now();
        match self.epoch_state(wallet_id.as_str())? {
            Some(state) if state.staged().is_some_and(|s| !s.is_expired(now)) => {
                Ok(Some(self.staged_record(wallet_id.as_str())?.manifest))
            }
            _ => Ok(None),
        }
    }

    /// `Epochs.ReleaseStagedShare`: the staged epoch's share, released under a recovery session
    /// exactly like `ReleaseShare` (the session's `ReleaseAuthorized` token: owner authenticated,
    /// bank approval for this wallet and `R`, delay passed), sealed to `R` in the staged epoch's
    /// context, with a `ShareRelease` naming the staged manifest. Held for at most `wait` when
    /// the delay alone is not over, as `ReleaseShare` is
    /// ([`crate::recovery::RecoveryOps::hold_for_delay`]).
    pub async fn release_staged_share(
        &self,
        session_id: &str,
        bank_approval: &[u8],
        wait: std::time::Duration,
    ) -> Result<crate::recovery::ReleasedShare, NodeError> {
        match self
            .release_staged_share_now(session_id, bank_approval)
            .await
        {
            Err(refused) => {
                self.recovery()
                    .hold_for_delay(session_id, refused, wait)
                    .await?;
                self.release_staged_share_now(session_id, bank_approval)
                    .await
            }
            released => released,
        }
    }

    /// `Epochs.ReleaseStagedShare`, answered at once.
    async fn release_staged_share_now(
        &self,
        session_id: &str,
        bank_approval: &[u8],
    ) -> Result<crate::recovery::ReleasedShare, NodeError> {
        if bank_approval.len() > MAX_STATEMENT_BYTES {
            return Err(NodeError::invalid(
                "bank_approval_encoded",
                format!("at most {MAX_STATEMENT_BYTES} bytes"),
            ));
        }
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let mut st = self.recovery().load_session(session_id)?;
        let wallet = st.session.wallet_id.clone();
        let state = self
            .expire_if_due(&wallet, now)
            .await?
            .ok_or(NodeError::WalletNotFound)?;
        let staged = match state.staged() {
            Some(s) if state.active().is_some_and(|a| a.epoch == st.session.epoch) => s.clone(),
            _ => return Err(EpochError::NotStaged.into()),
        };
        // One epoch per session: a session that released epoch e never receives a successor
        // staged after it (a rotation after a fraudulent recovery locks the thief out).
        let token =
            st.session
                .authorize_release(bank_approval, &self.bank_keys, now, staged.epoch)?;
        let record = self.staged_record(&wallet)?;
        let Release { envelope, release } = release_share(
            self,
            &token,
            StoredShare {
                sealed_share: &record.sealed_share,
                epoch: staged.epoch,
                share_index: staged.share_index,
                manifest_hash: hash_from_hex(EPOCHS_TREE, &staged.manifest_hash)?,
                source: ShareSource::Staged,
            },
            session_id,
            now,
        )?;
        st.session = st.session.clone().released(&token, now);
        self.recovery().save_session(&st)?;
        let ev = self.record(
            now,
            "share_released",
            &wallet,
            session_id,
            &format!(
                "staged epoch {} share; approved by {}",
                staged.epoch,
                token.approval.approvers().join(",")
            ),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(session = %session_id, epoch = staged.epoch, "staged share released to the \
            session key");
        Ok(crate::recovery::ReleasedShare {
            envelope,
            manifest: record.manifest,
            release,
            blob: record.blob,
        })
    }

    /// `ProveEpochShare`: a possession proof for the active epoch (`epoch` 0 or its number) or
    /// the staged one.
    pub fn prove_epoch_share(
        &self,
        wallet_id: &WalletId,
        nonce: &[u8; NONCE_LEN],
        epoch: u64,
    ) -> Result<crate::enrollment::custody::ShareProof, NodeError> {
        let now = self.now();
        let state = self
            .epoch_state(wallet_id.as_str())?
            .ok_or(NodeError::WalletNotFound)?;
        if let Some(a) = state.active()
            && (epoch == 0 || epoch == a.epoch)
        {
            return self.enrollment().prove_share(wallet_id, nonce);
        }
        let staged = match state.staged() {
            Some(s) if s.epoch == epoch && !s.is_expired(now) => s.clone(),
            _ => return Err(EpochError::NoSuchEpoch { epoch }.into()),
        };
        let record = self.staged_record(wallet_id.as_str())?;
        let id = ShareRecordId {
            node_id: self.identity.node_id(),
            wallet_id: wallet_id.as_str(),
            epoch: staged.epoch,
            share_index: staged.share_index,
        };
        let share =
            at_rest::open_share(&self.storage_key, &id, &record.sealed_share).map_err(|_| {
                tracing::error!(wallet = %wallet_id.log_tag(), epoch = staged.epoch, "staged share \
                failed its integrity check");
                NodeError::StoredShareCorrupt
            })?;
        let ctx = ProofContext {
            wallet_id: wallet_id.as_str(),
            epoch: staged.epoch,
            share_index: staged.share_index,
            node_key: self.identity.public_key(),
            nonce,
        };
        let proof = PossessionProof::prove(&share, &ctx)
            .map_err(|e| NodeError::Internal(format!("prove: {e}")))?;
        Ok(crate::enrollment::custody::ShareProof {
            epoch: staged.epoch,
            share_index: staged.share_index,
            manifest_hash: hash_from_hex(EPOCHS_TREE, &staged.manifest_hash)?.0,
            proof: proof.encode(),
        })
    }

    /// Drops every expired staged epoch and owner nonce; returns how many staged epochs.
    pub async fn sweep_epochs(&self) -> Result<usize, NodeError> {
        let now = self.now();
        let due = self.db.wallets_with_expired_staging(now)?;
        let mut dropped = 0;
        for wallet in due {
            let _guard = self.recovery_lock.lock().await?;
            let before = self.epoch_state(&wallet)?;
            let after = self.expire_if_due(&wallet, self.now()).await?;
            if before != after {
                dropped += 1;
            }
        }
        self.owner_touch().sweep_owner_nonces(now)?;
        self.caller_limits.forget_idle(now);
        Ok(dropped)
    }
}

fn log_tag(wallet_id: &str) -> String {
    crate::wallet::parse_wallet_id(wallet_id.to_owned())
        .map(|w| w.log_tag())
        .unwrap_or_default()
}

/// How often the epoch sweeper runs: often enough that a staged epoch is erased soon after its
/// expiry (half its lifetime), at least every second, at most every minute.
pub fn sweep_interval(staged_ttl_secs: u64) -> Duration {
    Duration::from_secs((staged_ttl_secs / 2).clamp(1, 60))
}

/// Runs [`Self::sweep_epochs`] periodically until aborted.
pub fn spawn_sweeper(node: Arc<Node>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_interval(node.config().epochs.staged_ttl_secs));
        loop {
            tick.tick().await;
            match node.epochs().sweep_epochs().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(dropped = n, "swept expired staged epochs"),
                Err(e) => tracing::warn!(error = %e, "sweeping staged epochs failed"),
            }
        }
    })
}

#[cfg(test)]
#[path = "epochs_tests.rs"]
mod tests;
