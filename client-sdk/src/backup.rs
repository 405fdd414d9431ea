//! Backup (enrollment): split a fresh secret among the trustees and deposit one share at each.
//!
//! Two steps so a retry is safe: [`PreparedBackup::new`] makes every random choice once (the
//! secret `k`, the shares, the blob, the manifest); [`backup`] deposits it and can be called again
//! with the same `PreparedBackup` until every trustee has receipted. Trustees that already hold
//! this exact deposit answer with their stored receipt and are not asked for a passkey again.
//!
//! The wallet has ONE passkey credential, registered at every trustee with ONE touch
//! (`docs/protocol.md` §12a): every trustee's `BeginEnrollment` nonce goes into one challenge
//! (action backup, the manifest hash), the authenticator registers once, and the same credential
//! is sent to every trustee. So the registration runs only once every trustee that needs it has
//! begun its ceremony: a trustee that cannot be reached stops the backup before the touch, with
//! nothing deposited anywhere, and the retry registers at all of them together. A retry after the
//! touch (a `FinishEnrollment` that failed) re-sends the same registration to the trustees that
//! miss it, without asking the authenticator again, while their ceremonies are valid.

use crate::authenticator::Passkey;
use crate::ceremony::{self, Touch};
use crate::error::BackupError;
use crate::error::TrusteeFailure;
use crate::saved::SavedStateError;
use crate::transport::{Client, connect, not_held, transport_failure};
use crate::trustees::{Role, TrusteeInfo, TrusteeSet};
use dlocker_proto::client_state::{StateKey, StateKind};
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::manifest::{
    Manifest, ManifestHash, ManifestParts, TrusteeEntry, validate_wallet_id,
};
use dlocker_proto::owner_challenge::TrusteeNonce;
use dlocker_proto::pb::{
    BeginEnrollmentRequest, BeginEnrollmentResponse, ConfirmBackupRequest, FinishEnrollmentRequest,
    GetBackupStatusRequest,
};
use dlocker_proto::secret::SecretScalar;
use dlocker_proto::share::{Share, split};
use dlocker_proto::statement::{Receipt, Signed};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Largest wallet data accepted: what fits the trustees' default 64 KiB blob bound after the
/// blob's version byte, nonce and tag.
pub const MAX_WALLET_DATA_LEN: usize = 64 * 1024 - 1 - 12 - 16;

/// Smallest threshold: a single trustee must never be able to rebuild the secret alone.
pub const MIN_THRESHOLD: usize = 2;

/// Who must cooperate to recover, and how long a recovery waits before shares are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupPolicy {
    /// `t`: shares needed to recover (2 ≤ t ≤ number of trustees).
    pub threshold: u16,
    /// Seconds between opening a recovery and the first release (time for the owner to cancel).
    pub recovery_delay_secs: u64,
}

/// Everything a backup deposits, generated once. `Debug` never shows `k` or the shares.
pub struct PreparedBackup {
    k: SecretScalar,
    shares: Vec<Share>,
    manifest: Manifest,
    manifest_encoded: Vec<u8>,
    manifest_hash: ManifestHash,
    blob: Vec<u8>,
    /// The owner's one registration once it was made, so a retry re-sends it (one credential
    /// per wallet, one touch) to trustees whose `FinishEnrollment` failed.
    registered: Mutex<Option<Registered>>,
}

/// A registration made for this backup: the one credential, the nonces it covers and each
/// trustee's ceremony id.
#[derive(Debug, Clone)]
struct Registered {
    touch: Touch,
    /// `(node id, ceremony id)` of every trustee in the challenge.
    ceremonies: Vec<(String, String)>,
    /// Unix seconds: the first of the trustees' ceremony expiries.
    expires_at: u64,
}

impl Registered {
    fn ceremony_at(&self, node_id: &str) -> Option<&str> {
        let live = dlocker_proto::time::unix_now() < self.expires_at;
        self.ceremonies
            .iter()
            .find(|(n, _)| live && n == node_id)
            .map(|(_, c)| c.as_str())
    }
}

impl std::fmt::Debug for PreparedBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBackup")
            .field("wallet_id", &self.manifest.wallet_id())
            .field("epoch", &self.manifest.epoch())
            .field("threshold", &self.manifest.threshold())
            .field("trustees", &self.manifest.trustees().len())
            .field("manifest_hash", &self.manifest_hash)
            .field("blob_len", &self.blob.len())
            .field("secret", &"REDACTED")
            .field("shares", &"REDACTED")
            .finish()
    }
}

impl PreparedBackup {
    /// Generates a fresh random secret `k` (never derived from user input: the manifest publishes
    /// `k·G`), splits it `threshold`-of-n among `trustees` (share `i` to the `i`-th trustee in
    /// file order), encrypts `wallet_data` under `k` and builds the epoch-1 manifest.
    pub fn new(
        trustees: &TrusteeSet,
        wallet_id: &str,
        wallet_data: &[u8],
        policy: BackupPolicy,
    ) -> Result<Self, BackupError> {
        validate_wallet_id(wallet_id).map_err(|e| BackupError::InvalidWalletId(e.to_string()))?;
        let n = trustees.len();
        let t = usize::from(policy.threshold);
        // t ≥ 2: no single trustee (not even the bank) may hold enough to rebuild the secret.
        if t < MIN_THRESHOLD || t > n {
            return Err(BackupError::InvalidPolicy(format!(
                "threshold {t} with {n} trustees; need {MIN_THRESHOLD} ≤ threshold ≤ number of trustees"
            )));
        }
        if wallet_data.len() > MAX_WALLET_DATA_LEN {
            return Err(BackupError::WalletDataTooLarge {
                len: wallet_data.len(),
                max: MAX_WALLET_DATA_LEN,
            });
        }
        let k = SecretScalar::random();
        let (shares, commitments) =
            split(&k, t, n).map_err(|e| BackupError::InvalidPolicy(e.to_string()))?;
        let blob = dlocker_proto::blob::seal(&k, wallet_id, wallet_data);
        let entries = trustees
            .trustees()
            .iter()
            .zip(&shares)
            .map(|(info, share)| TrusteeEntry {
                share_index: share.index(),
                node_id: info.node_id.clone(),
                public_key: info.public_key,
            })
            .collect();
        let manifest = Manifest::new(ManifestParts {
            wallet_id: wallet_id.to_owned(),
            epoch: 1,
            threshold: policy.threshold,
            trustees: entries,
            commitments,
            bank_node_id: trustees.bank().node_id.clone(),
            recovery_delay_secs: policy.recovery_delay_secs,
            blob_hash: dlocker_proto::blob::hash(&blob),
            created_at: dlocker_proto::time::unix_now(),
            previous: None,
        })
        .map_err(|e| BackupError::Internal(format!("manifest: {e}")))?;
        let manifest_encoded = manifest.encode();
        let manifest_hash = manifest.hash();
        Ok(Self {
            k,
            shares,
            manifest,
            manifest_encoded,
            manifest_hash,
            blob,
            registered: Mutex::new(None),
        })
    }

    /// The manifest (public; keep it with the wallet to verify and recover).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// The manifest's canonical encoding (what a manifest file holds).
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_encoded
    }
    /// The manifest hash receipts refer to.
    pub fn manifest_hash(&self) -> ManifestHash {
        self.manifest_hash
    }
    /// The encrypted wallet blob.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }
    /// The wallet id.
    pub fn wallet_id(&self) -> &str {
        self.manifest.wallet_id()
    }
    /// The wallet secret `k` (zeroized on drop, `REDACTED` in `Debug`): what a rotation
    /// re-splits and what proves the owner in a passkey reset
    /// ([`crate::protocol::reset_passkey`]). The app keeps it as it keeps the wallet (device
    /// keystore); it never leaves the device.
    pub fn secret(&self) -> &SecretScalar {
        &self.k
    }
    pub(crate) fn share(&self, index: u16) -> Option<&Share> {
        self.shares.iter().find(|s| s.index() == index)
    }

    /// The whole prepared backup (secret, shares, blob, manifest and the owner's registration
    /// once made), sealed under the app's key: what an app saves so a backup killed after some
    /// receipts completes on resume ([`Self::open_sealed`], then [`backup`] again). It holds `k`
    /// and every share: keep it only until the backup completed, then delete it.
    pub fn seal(&self, key: &StateKey) -> Vec<u8> {
        let registered = self
            .registered
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
            .map(|r| SavedRegistered {
                response_json: Zeroizing::new(r.touch.response_json),
                nonces: r
                    .touch
                    .nonces
                    .into_iter()
                    .map(|n| (n.node_id, hex::encode(n.nonce)))
                    .collect(),
                ceremonies: r.ceremonies,
                expires_at: r.expires_at,
            });
        let state = SavedBackup {
            k: Zeroizing::new(hex::encode(self.k.to_bytes().as_ref())),
            shares: self
                .shares
                .iter()
                .map(|s| {
                    (
                        s.index(),
                        Zeroizing::new(hex::encode(s.value().to_bytes().as_ref())),
                    )
                })
                .collect(),
            manifest: hex::encode(&self.manifest_encoded),
            blob: hex::encode(&self.blob),
            registered,
        };
        crate::saved::seal_json(key, StateKind::Backup, &state)
    }

    /// Opens what [`Self::seal`] saved, checking that the secret, shares, manifest and blob
    /// still belong together (the commitments, `k·G` and the blob hash).
    pub fn open_sealed(saved: &[u8], key: &StateKey) -> Result<Self, SavedStateError> {
        let state: SavedBackup = crate::saved::open_json(key, StateKind::Backup, saved)?;
        let bad =
            |what: &str| SavedStateError::Content(format!("the saved backup's {what} is invalid"));
        let scalar = |h: &str| -> Option<SecretScalar> {
            let bytes = Zeroizing::new(hex::decode(h).ok()?);
            let arr: &[u8; 32] = bytes.as_slice().try_into().ok()?;
            SecretScalar::from_bytes(arr)
        };
        let k = scalar(&state.k).ok_or_else(|| bad("secret"))?;
        let manifest_encoded = hex::decode(&state.manifest).map_err(|_| bad("manifest"))?;
        let manifest = Manifest::decode(&manifest_encoded).map_err(|_| bad("manifest"))?;
        let blob = hex::decode(&state.blob).map_err(|_| bad("blob"))?;
        let mut shares = Vec::with_capacity(state.shares.len());
        for (index, value) in &state.shares {
            let share = scalar(value)
                .and_then(|v| Share::new(*index, v).ok())
                .ok_or_else(|| bad("share"))?;
            manifest
                .commitments()
                .verify(&share)
                .map_err(|_| bad("share"))?;
            shares.push(share);
        }
        let k_pub = k256::PublicKey::from_secret_scalar(
            &k256::NonZeroScalar::new(*k.expose())
                .into_option()
                .ok_or_else(|| bad("secret"))?,
        );
        if &k_pub != manifest.commitments().secret_commitment()
            || dlocker_proto::blob::hash(&blob) != *manifest.blob_hash()
            || shares.len() != manifest.trustees().len()
        {
            return Err(bad("content"));
        }
        let registered = match state.registered {
            None => None,
            Some(r) => {
                let mut nonces = Vec::with_capacity(r.nonces.len());
                for (node_id, nonce) in r.nonces {
                    nonces.push(dlocker_proto::pb::TrusteeNonce {
                        node_id,
                        nonce: hex::decode(nonce).map_err(|_| bad("registration"))?,
                    });
                }
                Some(Registered {
                    touch: Touch {
                        response_json: r.response_json.to_string(),
                        nonces,
                    },
                    ceremonies: r.ceremonies,
                    expires_at: r.expires_at,
                })
            }
        };
        let manifest_hash = manifest.hash();
        Ok(Self {
            k,
            shares,
            manifest,
            manifest_encoded,
            manifest_hash,
            blob,
            registered: Mutex::new(registered),
        })
    }
}

/// What [`PreparedBackup::seal`] serialises.
#[derive(Serialize, Deserialize)]
struct SavedBackup {
    k: Zeroizing<String>,
    shares: Vec<(u16, Zeroizing<String>)>,
    manifest: String,
    blob: String,
    registered: Option<SavedRegistered>,
}

#[derive(Serialize, Deserialize)]
struct SavedRegistered {
    response_json: Zeroizing<String>,
    /// `(node id, nonce hex)`.
    nonces: Vec<(String, String)>,
    ceremonies: Vec<(String, String)>,
    expires_at: u64,
}

/// Saves a backup in progress: `save` receives the sealed [`PreparedBackup`] (under `key`) before
/// the first deposit and again once the owner's passkey is registered, and must store it durably
/// before returning. An `Err` stops the backup before anything more is sent.
#[derive(Clone, Copy)]
pub struct BackupCheckpoint<'a> {
    /// The app's key the state is sealed with.
    pub key: &'a StateKey,
    /// Stores the sealed state (replacing the previous one).
    pub save: &'a (dyn Fn(&[u8]) -> Result<(), String> + Sync),
}

impl std::fmt::Debug for BackupCheckpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupCheckpoint { key: REDACTED, .. }")
    }
}

/// One trustee's verified receipt.
#[derive(Debug, Clone)]
pub struct TrusteeReceipt {
    /// Trustee name (from the trustees file).
    pub name: String,
    /// Node id.
    pub node_id: String,
    /// The share index it holds.
    pub share_index: u16,
    /// The receipt, signature checked against the pinned key.
    pub receipt: Signed<Receipt>,
}

/// The receipts of a backup, in trustees-file order.
#[derive(Debug, Clone)]
pub struct BackupReceipts {
    /// Wallet.
    pub wallet_id: String,
    /// Epoch.
    pub epoch: u64,
    /// Manifest hash every receipt refers to.
    pub manifest_hash: ManifestHash,
    /// One per trustee that receipted.
    pub receipts: Vec<TrusteeReceipt>,
    /// Trustees that did not take the "backup complete" confirmation (`ConfirmBackup`), with
    /// why. Not an error: the backup is complete. Such a trustee treats the deposit as
    /// abandoned and erases it after its `unconfirmed_backup_expiry` (30 days by default)
    /// unless [`confirm_backup`] reaches it before then.
    pub unconfirmed: Vec<(String, TrusteeFailure)>,
}

/// What [`backup`] is doing, for progress displays. Each trustee gets one `TrusteeStarted` and
/// then exactly one `TrusteeDone` or `TrusteeFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// Work at this trustee began.
    TrusteeStarted {
        /// Trustee name.
        name: String,
    },
    /// The authenticator is asked, once, for the wallet's passkey: one registration that every
    /// listed trustee registers.
    PasskeyRequested {
        /// The trustees the registration is for (manifest order).
        trustees: Vec<String>,
    },
    /// The trustee holds its share and its receipt verified.
    TrusteeDone {
        /// Trustee name.
        name: String,
        /// Share index held.
        share_index: u16,
    },
    /// The trustee failed; the backup will be incomplete.
    TrusteeFailed {
        /// Trustee name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Progress callback type.
pub type Progress<'a> = &'a (dyn Fn(ProgressEvent) + Sync);

/// Pairs each manifest trustee with its entry in the trustees file, by node id.
fn plan<'a>(
    trustees: &'a TrusteeSet,
    prepared: &PreparedBackup,
) -> Result<Vec<(&'a TrusteeInfo, u16)>, BackupError> {
    let entries = prepared.manifest.trustees();
    if entries.len() != trustees.len() {
        return Err(BackupError::TrusteesMismatch(format!(
            "backup has {} trustees, the set has {}",
            entries.len(),
            trustees.len()
        )));
    }
    entries
        .iter()
        .map(|e| {
            trustees
                .by_node_id(&e.node_id)
                .map(|info| (info, e.share_index))
                .ok_or_else(|| {
                    BackupError::TrusteesMismatch(format!(
                        "node {} is not in the trustee set",
                        e.node_id
                    ))
                })
        })
        .collect()
}

/// Checks a receipt: signed by the pinned key, for this node, wallet, epoch, index and manifest.
pub(crate) fn verify_receipt(
    info: &TrusteeInfo,
    share_index: u16,
    manifest: &Manifest,
    manifest_hash: ManifestHash,
    bytes: &[u8],
) -> Result<Signed<Receipt>, String> {
    let signed = Signed::<Receipt>::decode_trusted(bytes, &[info.public_key])
        .map_err(|e| format!("receipt not accepted: {e}"))?;
    let r = signed.body();
    let wrong = |what: &str| Err(format!("receipt is for the wrong {what}"));
    if r.node_id != info.node_id {
        return wrong("node");
    }
    if r.wallet_id != manifest.wallet_id() {
        return wrong("wallet");
    }
    if r.epoch != manifest.epoch() {
        return wrong("epoch");
    }
    if r.share_index != share_index {
        return wrong("share index");
    }
    if r.manifest_hash != manifest_hash {
        return wrong("manifest");
    }
    Ok(signed)
}

/// Connects to the trustee and asks what it holds: with its checked connection, the stored
/// receipt (verified) when it already holds this deposit, `None` when it needs
/// `FinishEnrollment` (after `BeginEnrollment`, unless a registration is re-sent).
async fn start(
    info: &TrusteeInfo,
    share_index: u16,
    prepared: &PreparedBackup,
) -> Result<(Client, Option<Signed<Receipt>>), TrusteeFailure> {
    let mut c = connect(info).await?;
    let wallet_id = prepared.wallet_id().to_owned();
    match c
        .get_backup_status(GetBackupStatusRequest {
            wallet_id: wallet_id.clone(),
        })
        .await
    {
        Ok(st) => {
            let st = st.into_inner();
            if st.manifest_hash.as_slice() == prepared.manifest_hash.0.as_slice() {
                let r = verify_receipt(
                    info,
                    share_index,
                    &prepared.manifest,
                    prepared.manifest_hash,
                    &st.receipt_encoded,
                )
                .map_err(TrusteeFailure::BadAnswer)?;
                return Ok((c, Some(r)));
            }
            Err(TrusteeFailure::Other(format!(
                "already holds a different backup of wallet {wallet_id} (epoch {}); it must be rotated, not backed up again",
                st.epoch
            )))
        }
        Err(s) if not_held(&s) => Ok((c, None)),
        Err(s) => Err(TrusteeFailure::refused("GetBackupStatus", &s)),
    }
}

async fn begin(
    info: &TrusteeInfo,
    client: &mut Client,
    wallet_id: &str,
    owner: &OwnerIdentity<'_>,
) -> Result<BeginEnrollmentResponse, TrusteeFailure> {
    // The customer reference is the bank's business: only the bank node is told it.
    let customer_reference = match info.role {
        Role::Bank => owner.customer_reference.unwrap_or_default().to_owned(),
        Role::Trustee => String::new(),
    };
    let begin = client
        .begin_enrollment(BeginEnrollmentRequest {
            wallet_id: wallet_id.to_owned(),
            user_name: owner.user_name.to_owned(),
            customer_reference,
        })
        .await
        .map_err(|s| TrusteeFailure::refused("BeginEnrollment", &s))?
        .into_inner();
    // Checked here, so a malformed nonce names its trustee instead of failing the ceremony.
    ceremony::trustee_nonce(&info.node_id, &begin.nonce)?;
    Ok(begin)
}

async fn finish(
    info: &TrusteeInfo,
    share_index: u16,
    prepared: &PreparedBackup,
    client: &mut Client,
    ceremony_id: String,
    touch: &Touch,
) -> Result<Signed<Receipt>, TrusteeFailure> {
    let share = prepared
        .share(share_index)
        .ok_or("no share for this index")?;
    let ctx = EnvelopeContext {
        wallet_id: prepared.wallet_id(),
        epoch: prepared.manifest.epoch(),
        share_index,
        recipient: &info.public_key,
    };
    // Sealed to the PINNED key: only the trustee named in the file can open it.
    let envelope =
        ShareEnvelope::seal(share, &ctx).map_err(|e| format!("sealing the share: {e}"))?;
    let resp = client
        .finish_enrollment(FinishEnrollmentRequest {
            ceremony_id,
            credential_json: touch.response_json.clone(),
            manifest_encoded: prepared.manifest_encoded.clone(),
            share_envelope_encoded: envelope.encode(),
            blob: prepared.blob.clone(),
            nonces: touch.nonces.clone(),
        })
        .await
        .map_err(|s| TrusteeFailure::refused("FinishEnrollment", &s))?
        .into_inner();
    verify_receipt(
        info,
        share_index,
        &prepared.manifest,
        prepared.manifest_hash,
        &resp.receipt_encoded,
    )
    .map_err(TrusteeFailure::BadAnswer)
}

fn not_enrolled(blocked: &[String]) -> TrusteeFailure {
    TrusteeFailure::NotAttempted(format!(
        "not enrolled: the wallet's passkey is registered at every trustee at once, and {} could not begin",
        blocked.join(", ")
    ))
}

/// Deposits `prepared` at every trustee and returns the verified receipts.
///
/// Every trustee is asked concurrently what it holds (a trustee holding this very deposit answers
/// with its stored receipt and is left alone) and the others begin an enrollment ceremony, each
/// returning a nonce. The owner's authenticator then registers the wallet's passkey ONCE, over
/// the one-touch challenge (`docs/protocol.md` §12a: action backup, the manifest hash, every
/// trustee's nonce in manifest order), and `FinishEnrollment` sends the same credential with the
/// nonces to every trustee concurrently, each share sealed to that trustee's pinned key. Each
/// receipt must be signed by the pinned key and name this wallet, epoch, share index and manifest.
///
/// If a trustee that needs the deposit cannot begin (down, refusing), the passkey is not asked
/// for and nothing is deposited: one credential is registered at every trustee or at none. The
/// backup counts only if every trustee receipts; otherwise [`BackupError::Incomplete`] says which
/// failed and why, and calling `backup` again with the same `prepared` is safe: a trustee whose
/// `FinishEnrollment` failed after the registration gets the same registration again (no new
/// touch) while its ceremony is valid (`limits.ceremony_ttl_secs`, 5 minutes by default). After
/// that it cannot join this backup's credential by a backup any more; add it with a rotation.
pub async fn backup(
    trustees: &TrusteeSet,
    prepared: &PreparedBackup,
    user_name: &str,
    auth: &mut dyn Passkey,
    progress: Progress<'_>,
) -> Result<BackupReceipts, BackupError> {
    let owner = OwnerIdentity {
        user_name,
        customer_reference: None,
    };
    backup_with_checkpoint(trustees, prepared, &owner, auth, progress, None).await
}

/// Who the owner is, for the enrollment: the passkey user name (shown by the authenticator, and
/// recorded by the bank node for its staff) and, optionally, the bank's own customer reference
/// (sent to the bank node only, which records it sealed at rest).
#[derive(Debug, Clone, Copy)]
pub struct OwnerIdentity<'a> {
    /// The passkey user name.
    pub user_name: &'a str,
    /// The bank's customer reference, if the bank has one for this owner.
    pub customer_reference: Option<&'a str>,
}

/// [`backup`] with the owner's full identity (see [`OwnerIdentity`]).
pub async fn backup_for(
    trustees: &TrusteeSet,
    prepared: &PreparedBackup,
    owner: &OwnerIdentity<'_>,
    auth: &mut dyn Passkey,
    progress: Progress<'_>,
) -> Result<BackupReceipts, BackupError> {
    backup_with_checkpoint(trustees, prepared, owner, auth, progress, None).await
}

/// [`backup`], saving the sealed [`PreparedBackup`] through `checkpoint` before the first deposit
/// and once the passkey is registered. If the app is killed, [`PreparedBackup::open_sealed`] on
/// the last saved state and `backup` again complete it: trustees that receipted answer with
/// their stored receipt, the others get the saved registration (no new touch) while their
/// enrollment ceremonies are valid.
pub async fn backup_with_checkpoint(
    trustees: &TrusteeSet,
    prepared: &PreparedBackup,
    owner: &OwnerIdentity<'_>,
    auth: &mut dyn Passkey,
    progress: Progress<'_>,
    checkpoint: Option<BackupCheckpoint<'_>>,
) -> Result<BackupReceipts, BackupError> {
    let save = |what: &str| match &checkpoint {
        None => Ok(()),
        Some(cp) => (cp.save)(&prepared.seal(cp.key))
            .map_err(|e| BackupError::Checkpoint(format!("{what}: {e}"))),
    };
    let plan = plan(trustees, prepared)?;
    save("before the deposit")?;
    let wallet_id = prepared.wallet_id();

    // Phase 1: connect (pinned), skip trustees that already hold this deposit.
    let started = join_all(plan.iter().map(|&(info, idx)| {
        progress(ProgressEvent::TrusteeStarted {
            name: info.name.clone(),
        });
        start(info, idx, prepared)
    }))
    .await;

    let mut outcome: Vec<Option<Result<Signed<Receipt>, TrusteeFailure>>> = vec![None; plan.len()];
    // Each trustee's checked connection once its deposit is done: the confirmation goes over it
    // instead of a new connection and key check.
    let mut kept: Vec<Option<Client>> = (0..plan.len()).map(|_| None).collect();
    let mut need: Vec<(usize, Client)> = Vec::new();
    for (i, step) in started.into_iter().enumerate() {
        match step {
            Ok((c, Some(r))) => {
                outcome[i] = Some(Ok(r));
                kept[i] = Some(c);
            }
            Err(e) => outcome[i] = Some(Err(e)),
            Ok((client, None)) => need.push((i, client)),
        }
    }
    let any_done = outcome.iter().any(|o| matches!(o, Some(Ok(_))));
    let unusable: Vec<String> = outcome
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Some(Err(_))))
        .map(|(i, _)| plan[i].0.name.clone())
        .collect();
    let registered = prepared
        .registered
        .lock()
        .map(|g| g.clone())
        .unwrap_or_default();

    // Phase 2: the registration. Re-sent to trustees it already covers; otherwise one new
    // registration for every trustee that needs the deposit, once all of them have begun.
    let mut pending: Vec<(usize, Client, String)> = Vec::new();
    let mut touch: Option<Touch> = None;
    let resend = registered.as_ref().filter(|r| {
        need.iter()
            .all(|(i, _)| r.ceremony_at(&plan[*i].0.node_id).is_some())
    });
    if let Some(r) = resend.filter(|_| !need.is_empty()) {
        for (i, client) in need {
            let ceremony = r.ceremony_at(&plan[i].0.node_id).unwrap_or_default();
            pending.push((i, client, ceremony.to_owned()));
        }
        touch = Some(r.touch.clone());
    } else if !need.is_empty() {
        if any_done {
            // The credential is registered at some trustees and this one's ceremony is gone
            // (expired, or the backup restarted in another process): a second registration
            // would give it another credential than the wallet's one.
            for (i, _) in need {
                outcome[i] = Some(Err(
                    "the wallet's passkey is already registered at the other trustees and this trustee's enrollment ceremony is gone (expired, or the backup was restarted); add it to the wallet with a rotation to the same trustee set".into(),
                ));
            }
        } else if !unusable.is_empty() {
            // Registering now would leave the wallet's credential missing there for good.
            let why = not_enrolled(&unusable);
            for (i, _) in need {
                outcome[i] = Some(Err(why.clone()));
            }
        } else {
            let begun = join_all(need.into_iter().map(|(i, mut client)| {
                let info = plan[i].0;
                async move {
                    let r = begin(info, &mut client, wallet_id, owner).await;
                    (i, client, r)
                }
            }))
            .await;
            let blocked: Vec<String> = begun
                .iter()
                .filter(|(_, _, r)| r.is_err())
                .map(|(i, _, _)| plan[*i].0.name.clone())
                .collect();
            let mut ok = Vec::new();
            for (i, client, r) in begun {
                match r {
                    Ok(b) => ok.push((i, client, b)),
                    Err(e) => outcome[i] = Some(Err(e)),
                }
            }
            if !blocked.is_empty() {
                let why = not_enrolled(&blocked);
                for (i, _, _) in ok {
                    outcome[i] = Some(Err(why.clone()));
                }
            } else if let Some((_, _, first)) = ok.first() {
                progress(ProgressEvent::PasskeyRequested {
                    trustees: ok.iter().map(|(i, _, _)| plan[*i].0.name.clone()).collect(),
                });
                let nonces: Result<Vec<TrusteeNonce>, String> = ok
                    .iter()
                    .map(|(i, _, b)| ceremony::trustee_nonce(&plan[*i].0.node_id, &b.nonce))
                    .collect();
                let made = match nonces {
                    Ok(nonces) => ceremony::register(
                        auth,
                        wallet_id,
                        &prepared.manifest_hash.0,
                        nonces,
                        &first.creation_options_json,
                    )
                    .await
                    .map_err(|e| format!("passkey registration: {e}")),
                    Err(e) => Err(e.to_string()),
                };
                match made {
                    Ok(t) => {
                        let r = Registered {
                            touch: t.clone(),
                            ceremonies: ok
                                .iter()
                                .map(|(i, _, b)| {
                                    (plan[*i].0.node_id.clone(), b.ceremony_id.clone())
                                })
                                .collect(),
                            expires_at: ok.iter().map(|(_, _, b)| b.expires_at).min().unwrap_or(0),
                        };
                        if let Ok(mut g) = prepared.registered.lock() {
                            *g = Some(r);
                        }
                        // Saved before any trustee is sent it: a resumed backup re-sends this
                        // one credential instead of registering a second one.
                        save("after the passkey registration")?;
                        touch = Some(t);
                        pending = ok
                            .into_iter()
                            .map(|(i, c, b)| (i, c, b.ceremony_id))
                            .collect();
                    }
                    Err(e) => {
                        for (i, _, _) in ok {
                            outcome[i] = Some(Err(e.clone().into()));
                        }
                    }
                }
            }
        }
    }

    // Phase 3: finish concurrently, the same credential everywhere.
    if let Some(touch) = &touch {
        let finished = join_all(pending.into_iter().map(|(i, mut client, ceremony)| {
            let (info, idx) = plan[i];
            async move {
                let r = finish(info, idx, prepared, &mut client, ceremony, touch).await;
                (i, client, r)
            }
        }))
        .await;
        for (i, client, r) in finished {
            if r.is_ok() {
                kept[i] = Some(client);
            }
            outcome[i] = Some(r);
        }
    }

    let mut receipts = BackupReceipts {
        wallet_id: prepared.wallet_id().to_owned(),
        epoch: prepared.manifest.epoch(),
        manifest_hash: prepared.manifest_hash,
        receipts: Vec::with_capacity(plan.len()),
        unconfirmed: Vec::new(),
    };
    let mut failed = Vec::new();
    for (i, r) in outcome.into_iter().enumerate() {
        let (info, share_index) = plan[i];
        match r.unwrap_or_else(|| Err("not attempted".into())) {
            Ok(receipt) => {
                progress(ProgressEvent::TrusteeDone {
                    name: info.name.clone(),
                    share_index,
                });
                receipts.receipts.push(TrusteeReceipt {
                    name: info.name.clone(),
                    node_id: info.node_id.clone(),
                    share_index,
                    receipt,
                });
            }
            Err(reason) => {
                progress(ProgressEvent::TrusteeFailed {
                    name: info.name.clone(),
                    reason: reason.to_string(),
                });
                failed.push((info.name.clone(), reason));
            }
        }
    }
    if failed.is_empty() {
        let kept = plan
            .iter()
            .zip(kept)
            .filter_map(|(&(info, _), c)| Some((info.node_id.clone(), c?)))
            .collect();
        receipts.unconfirmed = confirm_over(trustees, &receipts, kept).await;
        Ok(receipts)
    } else {
        Err(BackupError::Incomplete {
            failed,
            receipts: Box::new(receipts),
        })
    }
}

/// Tells every trustee of `trustees` that the backup is complete (`ConfirmBackup`): each gets
/// the receipts of all of them, checks them against the manifest it holds and stops treating
/// the deposit as abandoned. No passkey touch. [`backup`] calls it once every trustee
/// receipted; call it again for the trustees it returns (those that did not take it, with why).
pub async fn confirm_backup(
    trustees: &TrusteeSet,
    receipts: &BackupReceipts,
) -> Vec<(String, TrusteeFailure)> {
    confirm_over(trustees, receipts, HashMap::new()).await
}

/// [`confirm_backup`], over the connections `kept` (by node id) where there are some. A kept
/// connection that fails in transport is replaced by a new one, which may reach another of the
/// trustee's endpoints.
async fn confirm_over(
    trustees: &TrusteeSet,
    receipts: &BackupReceipts,
    mut kept: HashMap<String, Client>,
) -> Vec<(String, TrusteeFailure)> {
    let encoded: Vec<Vec<u8>> = receipts
        .receipts
        .iter()
        .map(|r| r.receipt.encode())
        .collect();
    let wanted: Vec<&TrusteeInfo> = trustees
        .trustees()
        .iter()
        .filter(|t| receipts.receipts.iter().any(|r| r.node_id == t.node_id))
        .collect();
    let answers = join_all(wanted.iter().map(|&info| {
        let req = ConfirmBackupRequest {
            wallet_id: receipts.wallet_id.clone(),
            receipts_encoded: encoded.clone(),
        };
        let kept = kept.remove(&info.node_id);
        async move {
            if let Some(mut c) = kept {
                match c.confirm_backup(req.clone()).await {
                    Ok(_) => return Ok(()),
                    Err(s) if !transport_failure(&s) => {
                        return Err(TrusteeFailure::refused("ConfirmBackup", &s));
                    }
                    Err(_) => {}
                }
            }
            let mut c = connect(info).await?;
            c.confirm_backup(req)
                .await
                .map_err(|s| TrusteeFailure::refused("ConfirmBackup", &s))?;
            Ok::<(), TrusteeFailure>(())
        }
    }))
    .await;
    wanted
        .iter()
        .zip(answers)
        .filter_map(|(info, r)| r.err().map(|e| (info.name.clone(), e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::SecretKey;

    fn set(n: usize) -> (TrusteeSet, Vec<SecretKey>) {
        crate::trustees::test_set(n, 1)
    }

    const POLICY: BackupPolicy = BackupPolicy {
        threshold: 3,
        recovery_delay_secs: 60,
    };

    /// Apps spawn these on multi-threaded runtimes: the futures must stay `Send`.
    #[allow(dead_code)]
    fn futures_are_send(
        set: &TrusteeSet,
        p: &PreparedBackup,
        auth: &mut crate::SoftwareAuthenticator,
    ) {
        fn is_send<T: Send>(_: T) {}
        is_send(backup(set, p, "user", auth, &|_| {}));
        is_send(crate::protocol::verify_backup(set, p.manifest()));
    }

    #[test]
    fn prepared_backup_is_consistent() {
        let (set, keys) = set(5);
        let p = PreparedBackup::new(&set, "wallet-1", b"seed words", POLICY).expect("prepare");
        let m = p.manifest();
        assert_eq!(Manifest::decode(p.manifest_bytes()).expect("decodes"), *m);
        assert_eq!(m.hash(), p.manifest_hash());
        assert_eq!((m.epoch(), m.threshold(), m.trustees().len()), (1, 3, 5));
        assert_eq!(m.bank_node_id(), set.trustees()[1].node_id);
        assert_eq!(m.recovery_delay_secs(), 60);
        assert!(m.previous().is_none());
        assert_eq!(m.blob_hash(), &dlocker_proto::blob::hash(p.blob()));
        for (i, (entry, info)) in m.trustees().iter().zip(set.trustees()).enumerate() {
            assert_eq!(usize::from(entry.share_index), i + 1);
            assert_eq!(entry.node_id, info.node_id);
            let share = p.share(entry.share_index).expect("share");
            m.commitments().verify(share).expect("share verifies");
            // The envelope we would send opens for that trustee only.
            let ctx = EnvelopeContext {
                wallet_id: "wallet-1",
                epoch: 1,
                share_index: entry.share_index,
                recipient: &info.public_key,
            };
            let env = ShareEnvelope::seal(share, &ctx).expect("seal");
            assert!(env.open(&ctx, &keys[i]).is_ok());
        }
        // C_0 = k·G, and the blob opens under k.
        let k = dlocker_proto::share::combine(&p.shares[2..], m.commitments()).expect("combine");
        assert_eq!(
            dlocker_proto::blob::open(&k, "wallet-1", p.blob())
                .expect("open")
                .expose(),
            b"seed words"
        );
    }

    #[test]
    fn each_backup_has_a_fresh_secret() {
        let (set, _) = set(3);
        let policy = BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        };
        let a = PreparedBackup::new(&set, "w", b"same data", policy).expect("a");
        let b = PreparedBackup::new(&set, "w", b"same data", policy).expect("b");
        assert_ne!(
            a.manifest().commitments().secret_commitment(),
            b.manifest().commitments().secret_commitment()
        );
    }

    #[test]
    fn sealed_backup_round_trips_and_refuses_other_keys() {
        let (s, _) = set(4);
        let p = PreparedBackup::new(
            &s,
            "w1",
            b"seed words",
            BackupPolicy {
                threshold: 3,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        let key = StateKey::generate();
        let sealed = p.seal(&key);
        let q = PreparedBackup::open_sealed(&sealed, &key).expect("opens");
        assert_eq!(q.manifest_hash(), p.manifest_hash());
        assert_eq!(q.blob(), p.blob());
        assert_eq!(q.secret().to_bytes(), p.secret().to_bytes());
        for e in p.manifest().trustees() {
            assert_eq!(
                q.share(e.share_index).map(|s| s.value().to_bytes()),
                p.share(e.share_index).map(|s| s.value().to_bytes())
            );
        }
        // Another key, a tampered byte, a recovery's state: refused.
        assert!(PreparedBackup::open_sealed(&sealed, &StateKey::generate()).is_err());
        let mut t = sealed.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(PreparedBackup::open_sealed(&t, &key).is_err());
        let other = dlocker_proto::client_state::seal(&key, StateKind::Recovery, b"{}");
        assert!(matches!(
            PreparedBackup::open_sealed(&other, &key),
            Err(SavedStateError::Sealed(
                dlocker_proto::client_state::StateError::WrongKind
            ))
        ));
        // Sealed content that does not belong together (another backup's blob) is refused.
        let p2 = PreparedBackup::new(
            &s,
            "w1",
            b"other",
            BackupPolicy {
                threshold: 3,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        let mut mixed: serde_json::Value = serde_json::from_slice(
            crate::saved::open_json::<serde_json::Value>(&key, StateKind::Backup, &sealed)
                .map(|v| serde_json::to_vec(&v).unwrap_or_default())
                .expect("open")
                .as_slice(),
        )
        .expect("json");
        mixed["blob"] = serde_json::Value::String(hex::encode(p2.blob()));
        let resealed = crate::saved::seal_json(&key, StateKind::Backup, &mixed);
        let err = PreparedBackup::open_sealed(&resealed, &key).expect_err("mixed");
        assert!(err.to_string().contains("invalid"), "{err}");
    }

    #[test]
    fn debug_is_redacted() {
        let (set, _) = set(3);
        let p = PreparedBackup::new(
            &set,
            "w",
            b"correct horse battery staple",
            BackupPolicy {
                threshold: 2,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        let dbg = format!("{p:?}");
        assert!(dbg.contains("REDACTED"));
        assert!(!dbg.contains("horse"));
        let k_hex = hex::encode(p.secret().to_bytes().as_ref());
        assert!(!dbg.contains(&k_hex));
        for s in &p.shares {
            assert!(!dbg.contains(&hex::encode(s.value().to_bytes().as_ref())));
        }
    }

    #[test]
    fn refuses_bad_input() {
        let (set, _) = set(3);
        let ok = BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 0,
        };
        assert!(matches!(
            PreparedBackup::new(&set, "", b"x", ok),
            Err(BackupError::InvalidWalletId(_))
        ));
        assert!(matches!(
            PreparedBackup::new(&set, "a b", b"x", ok),
            Err(BackupError::InvalidWalletId(_))
        ));
        for t in [0, 1, 4] {
            let p = BackupPolicy {
                threshold: t,
                recovery_delay_secs: 0,
            };
            assert!(matches!(
                PreparedBackup::new(&set, "w", b"x", p),
                Err(BackupError::InvalidPolicy(_))
            ));
        }
        let big = vec![0u8; MAX_WALLET_DATA_LEN + 1];
        assert!(matches!(
            PreparedBackup::new(&set, "w", &big, ok),
            Err(BackupError::WalletDataTooLarge { .. })
        ));
        assert!(PreparedBackup::new(&set, "w", &big[1..], ok).is_ok());
    }

    #[test]
    fn plan_requires_the_same_trustees() {
        let (a, _) = set(3);
        let (b, _) = set(3);
        let p = PreparedBackup::new(
            &a,
            "w",
            b"x",
            BackupPolicy {
                threshold: 2,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        assert!(plan(&a, &p).is_ok());
        assert!(matches!(
            plan(&b, &p),
            Err(BackupError::TrusteesMismatch(_))
        ));
    }

    #[test]
    fn receipt_checks() {
        let (set, keys) = set(3);
        let p = PreparedBackup::new(
            &set,
            "w",
            b"x",
            BackupPolicy {
                threshold: 2,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare");
        let info = &set.trustees()[0];
        let body = Receipt {
            node_id: info.node_id.clone(),
            wallet_id: "w".into(),
            epoch: 1,
            share_index: 1,
            manifest_hash: p.manifest_hash(),
            issued_at: 1,
        };
        let sk = |k: &SecretKey| k256::ecdsa::SigningKey::from(k.clone());
        let good = Signed::sign(body.clone(), &sk(&keys[0])).encode();
        assert!(verify_receipt(info, 1, p.manifest(), p.manifest_hash(), &good).is_ok());
        assert!(verify_receipt(info, 2, p.manifest(), p.manifest_hash(), &good).is_err());
        let other_signer = Signed::sign(body.clone(), &sk(&keys[1])).encode();
        assert!(verify_receipt(info, 1, p.manifest(), p.manifest_hash(), &other_signer).is_err());
        let wrong_hash = Signed::sign(
            Receipt {
                manifest_hash: ManifestHash([0; 32]),
                ..body
            },
            &sk(&keys[0]),
        )
        .encode();
        assert!(verify_receipt(info, 1, p.manifest(), p.manifest_hash(), &wrong_hash).is_err());
    }
}
