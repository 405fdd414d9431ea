//! Recovery at a trustee: open a session towards the new device's key `R`, verify the owner's
//! passkey, release the share sealed to `R` once the bank approval and the delay hold, and
//! cancel. Every trustee enforces all of it on its own.
//!
//! State lives in sled trees (see the constants); every change is written (one transaction
//! when it spans trees), recorded in the audit log and the event outbox, and flushed before the
//! caller hears about it. Read-modify-write of recovery state is serialised by
//! `Node::recovery_lock`, so two requests cannot both pass a check on the same old state.
//!
//! The transitions themselves are [`crate::recovery_session::RecoverySession`]'s; releasing needs
//! its [`crate::recovery_session::ReleaseAuthorized`] token.

use crate::at_rest::{self, ShareRecordId};
use crate::error::NodeError;
use crate::events::StoredEvent;
use crate::node::Node;
use crate::recovery_session::{Canceller, RecoverySession, SessionError, SessionState};
use crate::storage::{PASSKEYS_TREE, StoreError, WalletRecord, wallet_key};
use crate::wallet::WalletId;
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use dlocker_proto::manifest::Manifest;
use dlocker_proto::statement::{BankCancellation, ShareRelease, Signed};
use k256::PublicKey;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::Transactional as _;
use sled::transaction::ConflictableTransactionError;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, PublicKeyCredential};

/// Sessions, keyed by session id: [`StoredSession`] as JSON.
pub const SESSIONS_TREE: &str = "recovery_sessions";
/// Wallet id → id of the wallet's latest session.
pub const SESSION_INDEX_TREE: &str = "recovery_by_wallet";
/// Wallet id → failed passkey assertions and lock ([`Lockout`] as JSON).
pub const LOCKOUTS_TREE: &str = "recovery_lockouts";

/// Largest WebAuthn assertion JSON accepted (a real one is under 2 KiB).
pub const MAX_ASSERTION_JSON_BYTES: usize = 16 * 1024;
/// Largest signed statement accepted (approvals, cancellations, staff requests).
pub const MAX_STATEMENT_BYTES: usize = 4 * 1024;
/// Longest session id accepted (ours are 32 hex characters).
pub const MAX_SESSION_ID_LEN: usize = 64;
/// Most audit entries per `GetAuditLog` page.
pub const MAX_AUDIT_PAGE: usize = 1000;
/// Most sessions `ListRecoveries` returns.
pub const MAX_LISTED_RECOVERIES: usize = 1000;

/// The recovery trees.
#[derive(Debug, Clone)]
pub struct RecoveryTrees {
    sessions: sled::Tree,
    by_wallet: sled::Tree,
    lockouts: sled::Tree,
    passkeys: sled::Tree,
}

impl RecoveryTrees {
    /// Opens (creating) the trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            sessions: db.open_tree(SESSIONS_TREE)?,
            by_wallet: db.open_tree(SESSION_INDEX_TREE)?,
            lockouts: db.open_tree(LOCKOUTS_TREE)?,
            passkeys: db.open_tree(PASSKEYS_TREE)?,
        })
    }
}

/// A session as persisted: the state machine plus the server-side WebAuthn state.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredSession {
    /// The state machine.
    pub session: RecoverySession,
    /// `RequestChallengeResponse` JSON given to the client at open (returned again on an
    /// identical retry of OpenRecovery).
    request_options_json: String,
    /// `PasskeyAuthentication` JSON for the owner's assertion (holds the challenge).
    auth_state: Option<String>,
    /// `PasskeyAuthentication` JSON for an owner cancellation (BeginOwnerCancel).
    cancel_state: Option<String>,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("session", &self.session)
            .field("auth_state", &self.auth_state.as_ref().map(|_| "REDACTED"))
            .field(
                "cancel_state",
                &self.cancel_state.as_ref().map(|_| "REDACTED"),
            )
            .finish_non_exhaustive()
    }
}

/// Failed passkey assertions for a wallet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockout {
    /// Failures since the last success or lock.
    pub failures: u32,
    /// Unix seconds; locked while `now < locked_until`.
    pub locked_until: u64,
}

/// What `OpenRecovery` returns.
#[derive(Debug, Clone)]
pub struct OpenedRecovery {
    /// The session.
    pub session_id: String,
    /// `RequestChallengeResponse` as JSON.
    pub request_options_json: String,
    /// Unix seconds.
    pub release_not_before: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// The wallet's manifest.
    pub manifest: Vec<u8>,
}

/// What `ReleaseShare` returns.
#[derive(Debug, Clone)]
pub struct ReleasedShare {
    /// The share sealed to `R`.
    pub envelope: Vec<u8>,
    /// The manifest.
    pub manifest: Vec<u8>,
    /// The signed `ShareRelease`.
    pub release: Vec<u8>,
    /// The encrypted blob.
    pub blob: Vec<u8>,
}

/// Who cancels.
#[derive(Debug, Clone)]
pub enum CancelAuthority {
    /// The owner's assertion JSON answering BeginOwnerCancel.
    Owner(String),
    /// A `BankCancellation` statement.
    Bank(Vec<u8>),
}

fn internal(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Internal(format!("{what}: {e}"))
}

fn corrupt(tree: &'static str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Storage(StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

/// Checks a session id's shape; anything else cannot name a session.
fn session_key_of(id: &str) -> Result<&[u8], NodeError> {
    if id.is_empty() || id.len() > MAX_SESSION_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(NodeError::SessionNotFound);
    }
    Ok(id.as_bytes())
}

/// Decodes `R` from a request.
pub fn parse_session_key(bytes: &[u8]) -> Result<PublicKey, NodeError> {
    dlocker_proto::keys::decode_public_key(bytes).map_err(|_| {
        NodeError::invalid(
            "session_key",
            "must be a 33-byte SEC1 compressed secp256k1 key",
        )
    })
}

fn bounded(field: &'static str, len: usize, max: usize) -> Result<(), NodeError> {
    if len > max {
        return Err(NodeError::invalid(
            field,
            format!("{len} bytes; at most {max}"),
        ));
    }
    Ok(())
}

/// What one persisted change writes, in one transaction.
#[derive(Default)]
struct Write<'a> {
    session: Option<&'a StoredSession>,
    index: bool,
    lockout: Option<(&'a str, Option<Lockout>)>,
    passkey: Option<(&'a str, Vec<u8>)>,
}

impl Node {
    fn trees(&self) -> &RecoveryTrees {
        &self.recovery
    }

    fn persist(&self, w: Write<'_>) -> Result<(), NodeError> {
        let session = w
            .session
            .map(|s| serde_json::to_vec(s).map(|b| (s, b)))
            .transpose()
            .map_err(|e| corrupt(SESSIONS_TREE, e))?;
        let lockout = match &w.lockout {
            Some((wallet, Some(l))) => Some((
                *wallet,
                Some(serde_json::to_vec(l).map_err(|e| corrupt(LOCKOUTS_TREE, e))?),
            )),
            Some((wallet, None)) => Some((*wallet, None)),
            None => None,
        };
        let t = self.trees();
        (&t.sessions, &t.by_wallet, &t.lockouts, &t.passkeys)
            .transaction(|(s, i, l, p)| {
                if let Some((st, bytes)) = &session {
                    s.insert(st.session.id.as_bytes(), bytes.as_slice())?;
                    if w.index {
                        i.insert(wallet_key(&st.session.wallet_id), st.session.id.as_bytes())?;
                    }
                }
                match &lockout {
                    Some((wallet, Some(bytes))) => {
                        l.insert(wallet_key(wallet), bytes.as_slice())?;
                    }
                    Some((wallet, None)) => {
                        l.remove(wallet_key(wallet))?;
                    }
                    None => {}
                }
                if let Some((wallet, pk)) = &w.passkey {
                    p.insert(wallet_key(wallet), pk.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// Audit entry + event for one state change (not yet durable: see [`Node::commit`]).
    pub(crate) fn record(
        &self,
        now: u64,
        kind: &str,
        wallet_id: &str,
        session_id: &str,
        detail: &str,
    ) -> Result<StoredEvent, NodeError> {
        let audit_detail = if session_id.is_empty() {
            detail.to_owned()
        } else if detail.is_empty() {
            format!("session {session_id}")
        } else {
            format!("session {session_id}; {detail}")
        };
        self.audit
            .append(now, kind, Some(wallet_id), &audit_detail)?;
        Ok(self
            .events
            .append(now, kind, wallet_id, session_id, detail)?)
    }

    /// Makes everything written so far durable, then tells live watchers.
    pub(crate) async fn commit(&self, events: Vec<StoredEvent>) -> Result<(), NodeError> {
        self.store.flush().await?;
        self.events.announce(events);
        Ok(())
    }

    pub(crate) fn load_session(&self, id: &str) -> Result<StoredSession, NodeError> {
        let key = session_key_of(id)?;
        let bytes = self
            .trees()
            .sessions
            .get(key)
            .map_err(StoreError::from)?
            .ok_or(NodeError::SessionNotFound)?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt(SESSIONS_TREE, e))
    }

    /// The wallet's latest session, if any.
    pub(crate) fn session_for_wallet(
        &self,
        wallet_id: &str,
    ) -> Result<Option<StoredSession>, NodeError> {
        let Some(id) = self
            .trees()
            .by_wallet
            .get(wallet_key(wallet_id))
            .map_err(StoreError::from)?
        else {
            return Ok(None);
        };
        let id = String::from_utf8(id.to_vec()).map_err(|e| corrupt(SESSION_INDEX_TREE, e))?;
        self.load_session(&id).map(Some)
    }

    pub(crate) fn save_session(&self, s: &StoredSession) -> Result<(), NodeError> {
        self.persist(Write {
            session: Some(s),
            ..Write::default()
        })
    }

    /// Every stored session (bounded), for the staff listing.
    pub(crate) fn sessions(&self, max: usize) -> Result<Vec<StoredSession>, NodeError> {
        let mut out = Vec::new();
        for item in self.trees().sessions.iter() {
            let (_, v) = item.map_err(StoreError::from)?;
            out.push(serde_json::from_slice(&v).map_err(|e| corrupt(SESSIONS_TREE, e))?);
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// The wallet's failure counter and lock.
    pub fn lockout(&self, wallet_id: &str) -> Result<Lockout, NodeError> {
        match self
            .trees()
            .lockouts
            .get(wallet_key(wallet_id))
            .map_err(StoreError::from)?
        {
            Some(v) => serde_json::from_slice(&v).map_err(|e| corrupt(LOCKOUTS_TREE, e)),
            None => Ok(Lockout::default()),
        }
    }

    pub(crate) fn check_lock(&self, wallet_id: &str, now: u64) -> Result<(), NodeError> {
        let l = self.lockout(wallet_id)?;
        if now < l.locked_until {
            return Err(NodeError::WalletLocked {
                failures: self.config.recovery.max_failed_assertions,
                until: l.locked_until,
                remaining_secs: l.locked_until - now,
            });
        }
        Ok(())
    }

    pub(crate) fn wallet_record(&self, wallet_id: &str) -> Result<WalletRecord, NodeError> {
        self.store
            .wallet(wallet_id)?
            .ok_or(NodeError::WalletNotFound)
    }

    pub(crate) fn stored_passkey(rec: &WalletRecord) -> Result<Passkey, NodeError> {
        serde_json::from_slice(&rec.passkey_json).map_err(|e| corrupt(PASSKEYS_TREE, e))
    }

    /// Counts a failed assertion durably, locking the wallet at the limit; returns the error
    /// for the caller.
    pub(crate) async fn assertion_failed(
        &self,
        wallet_id: &str,
        session_id: &str,
        now: u64,
        during: &str,
    ) -> NodeError {
        match self.count_failure(wallet_id, session_id, now, during).await {
            Ok(attempts_left) => NodeError::AssertionRejected { attempts_left },
            Err(e) => e,
        }
    }

    async fn count_failure(
        &self,
        wallet_id: &str,
        session_id: &str,
        now: u64,
        during: &str,
    ) -> Result<u32, NodeError> {
        let max = self.config.recovery.max_failed_assertions;
        let mut l = self.lockout(wallet_id)?;
        // A lock that ran out starts a fresh count.
        if l.locked_until != 0 && l.locked_until <= now {
            l = Lockout::default();
        }
        l.failures = l.failures.saturating_add(1);
        let mut events = vec![self.record(
            now,
            "assertion_failed",
            wallet_id,
            session_id,
            &format!("{during}; failure {} of {max}", l.failures),
        )?];
        let attempts_left = max.saturating_sub(l.failures);
        if attempts_left == 0 {
            l = Lockout {
                failures: 0,
                locked_until: now.saturating_add(self.config.recovery.lockout_secs),
            };
            events.push(self.record(
                now,
                "wallet_locked",
                wallet_id,
                session_id,
                &format!(
                    "locked until {} after {max} failed passkey attempts",
                    l.locked_until
                ),
            )?);
            tracing::warn!(wallet = %WalletId::parse(wallet_id.to_owned()).map(|w| w.log_tag()).unwrap_or_default(), until = l.locked_until, "recovery locked after failed passkey attempts");
        }
        self.persist(Write {
            lockout: Some((wallet_id, Some(l))),
            ..Write::default()
        })?;
        self.commit(events).await?;
        Ok(attempts_left)
    }

    /// Verifies an assertion JSON against a stored `PasskeyAuthentication`; on success returns
    /// the updated passkey to store (if its counter or flags changed).
    pub(crate) fn verify_assertion(
        &self,
        rec: &WalletRecord,
        assertion_json: &str,
        state_json: &str,
    ) -> Result<Result<Option<Vec<u8>>, ()>, NodeError> {
        let cred: PublicKeyCredential = serde_json::from_str(assertion_json).map_err(|_| {
            NodeError::invalid(
                "assertion_json",
                "not a WebAuthn assertion (PublicKeyCredential JSON)",
            )
        })?;
        let state: PasskeyAuthentication =
            serde_json::from_str(state_json).map_err(|e| corrupt(SESSIONS_TREE, e))?;
        match self.webauthn.finish_passkey_authentication(&cred, &state) {
            Ok(result) => {
                let mut passkey = Self::stored_passkey(rec)?;
                let updated = match passkey.update_credential(&result) {
                    Some(true) => Some(
                        serde_json::to_vec(&passkey)
                            .map_err(|e| internal("serialise passkey", e))?,
                    ),
                    _ => None,
                };
                Ok(Ok(updated))
            }
            Err(e) => {
                tracing::debug!(error = %e, "passkey assertion refused");
                Ok(Err(()))
            }
        }
    }

    /// `OpenRecovery`.
    pub async fn open_recovery(
        &self,
        wallet_id: &WalletId,
        session_key: &PublicKey,
    ) -> Result<OpenedRecovery, NodeError> {
        let _guard = self.recovery_lock.lock().await;
        let now = self.now();
        let wallet = wallet_id.as_str();
        let rec = self.wallet_record(wallet)?;
        self.check_lock(wallet, now)?;
        if let Some(existing) = self.session_for_wallet(wallet)?
            && existing.session.is_live(now)
        {
            // The same device retrying (its response was lost) gets its session back.
            if existing.session.session_key().as_ref() == Some(session_key)
                && existing.session.state == SessionState::Open
            {
                return Ok(OpenedRecovery {
                    session_id: existing.session.id.clone(),
                    request_options_json: existing.request_options_json.clone(),
                    release_not_before: existing.session.release_not_before,
                    expires_at: existing.session.expires_at,
                    manifest: rec.manifest,
                });
            }
            return Err(NodeError::SessionAlreadyOpen {
                session_id: existing.session.id,
            });
        }
        let manifest = Manifest::decode(&rec.manifest).map_err(|e| corrupt("manifests", e))?;
        let delay = self
            .config
            .recovery
            .clamp_delay(manifest.recovery_delay_secs());
        let passkey = Self::stored_passkey(&rec)?;
        let (rcr, state) = self
            .webauthn
            .start_passkey_authentication(&[passkey])
            .map_err(|e| internal("start passkey authentication", e))?;
        let id = hex::encode(rand::rng().random::<[u8; 16]>());
        let session = RecoverySession::open(
            id.clone(),
            wallet.to_owned(),
            session_key,
            rec.meta.epoch,
            now,
            delay,
            self.config.recovery.session_ttl_secs,
        );
        let stored = StoredSession {
            request_options_json: serde_json::to_string(&rcr)
                .map_err(|e| internal("serialise options", e))?,
            auth_state: Some(
                serde_json::to_string(&state).map_err(|e| internal("serialise state", e))?,
            ),
            cancel_state: None,
            session,
        };
        self.persist(Write {
            session: Some(&stored),
            index: true,
            ..Write::default()
        })?;
        let ev = self.record(
            now,
            "recovery_opened",
            wallet,
            &id,
            &format!("release not before {}", stored.session.release_not_before),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(wallet = %wallet_id.log_tag(), session = %id, delay, "recovery opened");
        Ok(OpenedRecovery {
            session_id: id,
            request_options_json: stored.request_options_json,
            release_not_before: stored.session.release_not_before,
            expires_at: stored.session.expires_at,
            manifest: rec.manifest,
        })
    }

    /// `AuthenticateOwner`; returns the release time.
    pub async fn authenticate_owner(
        &self,
        session_id: &str,
        assertion_json: &str,
    ) -> Result<u64, NodeError> {
        bounded(
            "assertion_json",
            assertion_json.len(),
            MAX_ASSERTION_JSON_BYTES,
        )?;
        let _guard = self.recovery_lock.lock().await;
        let now = self.now();
        let mut st = self.load_session(session_id)?;
        let wallet = st.session.wallet_id.clone();
        self.check_lock(&wallet, now)?;
        st.session.can_authenticate(now)?;
        let rec = self.wallet_record(&wallet)?;
        let state = st
            .auth_state
            .clone()
            .ok_or_else(|| internal("session", "no authentication state"))?;
        let updated = match self.verify_assertion(&rec, assertion_json, &state)? {
            Ok(updated) => updated,
            Err(()) => {
                return Err(self
                    .assertion_failed(&wallet, session_id, now, "owner authentication")
                    .await);
            }
        };
        st.session = st.session.clone().owner_authenticated(now)?;
        // The challenge is single use.
        st.auth_state = None;
        self.persist(Write {
            session: Some(&st),
            index: false,
            lockout: Some((&wallet, None)),
            passkey: updated.map(|p| (wallet.as_str(), p)),
        })?;
        let ev = self.record(now, "owner_authenticated", &wallet, session_id, "")?;
        self.commit(vec![ev]).await?;
        Ok(st.session.release_not_before)
    }

    /// `ReleaseShare`.
    pub async fn release_share(
        &self,
        session_id: &str,
        bank_approval: &[u8],
    ) -> Result<ReleasedShare, NodeError> {
        bounded(
            "bank_approval_encoded",
            bank_approval.len(),
            MAX_STATEMENT_BYTES,
        )?;
        let _guard = self.recovery_lock.lock().await;
        let now = self.now();
        let mut st = self.load_session(session_id)?;
        let token = st
            .session
            .authorize_release(bank_approval, &self.accepted_bank_keys, now)?;
        let wallet = st.session.wallet_id.clone();
        let rec = self.wallet_record(&wallet)?;
        if rec.meta.epoch != st.session.epoch {
            // A rotation committed a new epoch after this session released (rotation waits for
            // live sessions): the session's share is gone.
            return Err(crate::epoch::EpochError::SessionEpochReplaced {
                session_epoch: st.session.epoch,
                active: rec.meta.epoch,
            }
            .into());
        }
        let r = st
            .session
            .session_key()
            .ok_or_else(|| corrupt(SESSIONS_TREE, "session key"))?;
        let share_index = rec.meta.share_index;
        let id = ShareRecordId {
            node_id: self.identity.node_id(),
            wallet_id: &wallet,
            epoch: rec.meta.epoch,
            share_index,
        };
        let share =
            at_rest::open_share(&self.storage_key, &id, &rec.sealed_share).map_err(|_| {
                tracing::error!(session = %session_id, "stored share failed its integrity check");
                NodeError::StoredShareCorrupt
            })?;
        let envelope = ShareEnvelope::seal(
            &share,
            &EnvelopeContext {
                wallet_id: &wallet,
                epoch: rec.meta.epoch,
                share_index,
                recipient: &r,
            },
        )
        .map_err(|e| internal("seal share to R", e))?
        .encode();
        let mut manifest_hash = [0u8; 32];
        hex::decode_to_slice(&rec.meta.manifest_hash, &mut manifest_hash)
            .map_err(|e| corrupt("wallets", e))?;
        let release = Signed::sign(
            ShareRelease {
                node_id: self.identity.node_id().to_owned(),
                wallet_id: wallet.clone(),
                epoch: rec.meta.epoch,
                share_index,
                manifest_hash: dlocker_proto::manifest::ManifestHash(manifest_hash),
                session_key: r,
                envelope_hash: Sha256::digest(&envelope).into(),
                released_at: now,
            },
            &self.identity.signing_key(),
        )
        .encode();
        let first = !matches!(st.session.state, SessionState::Released { .. });
        st.session = st.session.clone().released(&token, now);
        self.save_session(&st)?;
        let ev = self.record(
            now,
            "share_released",
            &wallet,
            session_id,
            &format!(
                "{}approved by {}",
                if first { "" } else { "again; " },
                token.approval.approvers().join(",")
            ),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(session = %session_id, share_index, "share released to the session key");
        Ok(ReleasedShare {
            envelope,
            manifest: rec.manifest,
            release,
            blob: rec.blob,
        })
    }

    /// `BeginOwnerCancel`: a fresh passkey challenge for cancelling.
    pub async fn begin_owner_cancel(&self, session_id: &str) -> Result<String, NodeError> {
        let _guard = self.recovery_lock.lock().await;
        let now = self.now();
        let mut st = self.load_session(session_id)?;
        st.session.can_cancel(now)?;
        let rec = self.wallet_record(&st.session.wallet_id)?;
        let (rcr, state) = self
            .webauthn
            .start_passkey_authentication(&[Self::stored_passkey(&rec)?])
            .map_err(|e| internal("start passkey authentication", e))?;
        st.cancel_state =
            Some(serde_json::to_string(&state).map_err(|e| internal("serialise state", e))?);
        self.save_session(&st)?;
        self.commit(Vec::new()).await?;
        serde_json::to_string(&rcr).map_err(|e| internal("serialise options", e))
    }

    /// `CancelRecovery` at a trustee. With a bank cancellation, `session_id` may be empty: the
    /// wallet's session for the cancellation's `R` is cancelled (the bank's staff know only the
    /// bank node's session id). Cancelling an already cancelled session by the bank is a no-op.
    pub async fn cancel_recovery(
        &self,
        session_id: &str,
        authority: CancelAuthority,
    ) -> Result<(), NodeError> {
        match authority {
            CancelAuthority::Owner(assertion) => self.owner_cancel(session_id, &assertion).await,
            CancelAuthority::Bank(bytes) => self.bank_cancel(session_id, &bytes).await,
        }
    }

    async fn owner_cancel(&self, session_id: &str, assertion_json: &str) -> Result<(), NodeError> {
        bounded(
            "owner_assertion_json",
            assertion_json.len(),
            MAX_ASSERTION_JSON_BYTES,
        )?;
        let _guard = self.recovery_lock.lock().await;
        let now = self.now();
        let mut st = self.load_session(session_id)?;
        st.session.can_cancel(now)?;
        let state = st.cancel_state.clone().ok_or(NodeError::CancelNotBegun)?;
        let wallet = st.session.wallet_id.clone();
        let rec = self.wallet_record(&wallet)?;
        let updated = match self.verify_assertion(&rec, assertion_json, &state)? {
            Ok(updated) => updated,
            Err(()) => {
                return Err(self
                    .assertion_failed(&wallet, session_id, now, "owner cancellation")
                    .await);
            }
        };
        st.session = st.session.clone().cancelled(Canceller::Owner, now)?;
        st.cancel_state = None;
        self.persist(Write {
            session: Some(&st),
            index: false,
            lockout: None,
            passkey: updated.map(|p| (wallet.as_str(), p)),
        })?;
        let ev = self.record(now, "recovery_cancelled", &wallet, session_id, "by owner")?;
        self.commit(vec![ev]).await?;
        tracing::info!(session = %session_id, "recovery cancelled by the owner");
        Ok(())
    }

    async fn bank_cancel(&self, session_id: &str, bytes: &[u8]) -> Result<(), NodeError> {
        bounded(
            "bank_cancellation_encoded",
            bytes.len(),
            MAX_STATEMENT_BYTES,
        )?;
        let _guard = self.recovery_lock.lock().await;
        let now = self.now();
        let mut st = if session_id.is_empty() {
            let c = Signed::<BankCancellation>::decode_trusted(bytes, &self.accepted_bank_keys)
                .map_err(|e| SessionError::CancellationInvalid(e.to_string()))?;
            self.session_for_wallet(&c.body().wallet_id)?
                .ok_or(NodeError::SessionNotFound)?
        } else {
            self.load_session(session_id)?
        };
        let by = st
            .session
            .verify_cancellation(bytes, &self.accepted_bank_keys)?;
        if matches!(st.session.state, SessionState::Cancelled { .. }) {
            return Ok(());
        }
        st.session = st.session.clone().cancelled(by.clone(), now)?;
        self.save_session(&st)?;
        let ev = self.record(
            now,
            "recovery_cancelled",
            &st.session.wallet_id,
            &st.session.id,
            &format!("by {by}"),
        )?;
        self.commit(vec![ev]).await?;
        tracing::info!(session = %st.session.id, "recovery cancelled by the bank");
        Ok(())
    }

    /// `GetRecoveryStatus`.
    pub fn recovery_status(&self, session_id: &str) -> Result<RecoverySession, NodeError> {
        Ok(self.load_session(session_id)?.session)
    }
}
