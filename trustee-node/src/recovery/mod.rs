//! Recovery at a trustee: open a session towards the new device's key `R`, verify the owner's
//! passkey, release the share sealed to `R` once the bank approval and the delay hold, and
//! cancel. Every trustee enforces all of it on its own.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `recovery_sessions` | session id | [`StoredSession`] as JSON |
//! | `recovery_by_wallet` | [`session_index_prefix`] ‖ session id | session id |
//!
//! A wallet may have several sessions (each bound to its own `R`); the owner's passkey is
//! checked with one touch for every trustee (`crate::owner_touch`). Failed passkey responses
//! close the session they were sent to after `recovery.max_failed_assertions`, never the wallet.
//!
//! State lives in the recovery tables of [`crate::db`]; every change is written (one batch
//! when it spans tables), recorded in the audit log and the event outbox, and flushed before the
//! caller hears about it. Read-modify-write of recovery state is serialised by
//! `Node::recovery_lock`, so two requests cannot both pass a check on the same old state.
//!
//! The transitions themselves are [`crate::recovery::session::RecoverySession`]'s; releasing needs
//! its [`crate::recovery::session::ReleaseAuthorized`] token.

pub mod recovery_service;
pub(crate) mod release;
pub mod session;

use crate::db::{Batch, PASSKEYS_TREE, StoreError, WalletRecord};
use crate::error::NodeError;
use crate::events::StoredEvent;
use crate::hold::Look;
use crate::node::Node;
use crate::recovery::release::{Release, ShareSource, StoredShare, release_share};
use crate::recovery::session::{Canceller, RecoverySession, SessionError, SessionState};
use crate::wallet::LogTag as _;
use crate::wallet::WalletId;
use dlocker_proto::manifest::Manifest;
use dlocker_proto::owner_challenge::{OwnerAction, TrusteeNonce};
use dlocker_proto::statement::{BankCancellation, Signed};
use k256::PublicKey;
use rand::RngExt as _;
use webauthn_rs::prelude::Passkey;

pub use crate::db::{SESSION_INDEX_TREE, SESSIONS_TREE, StoredSession, session_index_prefix};

/// Largest WebAuthn assertion JSON accepted (a real one is under 2 KiB).
pub const MAX_ASSERTION_JSON_BYTES: usize = crate::owner_touch::MAX_RESPONSE_JSON_BYTES;
/// Largest signed statement accepted (approvals, cancellations, staff requests).
pub const MAX_STATEMENT_BYTES: usize = 4 * 1024;
/// Longest session id accepted (ours are 32 hex characters).
pub const MAX_SESSION_ID_LEN: usize = 64;
/// Most audit entries per `GetAuditLog` page.
pub const MAX_AUDIT_PAGE: usize = 1000;
/// Most sessions `ListRecoveries` returns.
pub const MAX_LISTED_RECOVERIES: usize = 1000;

/// What `OpenRecovery` returns.
#[derive(Debug, Clone)]
pub struct OpenedRecovery {
    /// The session.
    pub session_id: String,
    /// `RequestChallengeResponse` as JSON: a template for the one-touch challenge.
    pub request_options_json: String,
    /// This node's nonce for the owner's authentication.
    pub nonce: [u8; 32],
    /// Unix seconds: the owner must authenticate by then.
    pub authenticate_by: u64,
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
    /// The owner's one-touch assertion JSON (action cancel) and the ceremony's nonces.
    Owner {
        /// `PublicKeyCredential` JSON.
        assertion_json: String,
        /// Every trustee's cancel nonce.
        nonces: Vec<TrusteeNonce>,
    },
    /// A `BankCancellation` statement.
    Bank(Vec<u8>),
}

/// What `BeginOwnerCancel` returns.
#[derive(Debug, Clone)]
pub struct CancelChallenge {
    /// `RequestChallengeResponse` JSON template.
    pub request_options_json: String,
    /// This node's nonce.
    pub nonce: [u8; 32],
    /// Unix seconds.
    pub expires_at: u64,
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
fn session_key_of(id: &str) -> Result<&str, NodeError> {
    if id.is_empty() || id.len() > MAX_SESSION_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(NodeError::SessionNotFound);
    }
    Ok(id)
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

/// Recovery operations (open, authenticate, release, cancel): a borrowed view of the [`Node`]
/// context, whose fields and methods read through it.
#[derive(Clone, Copy)]
pub struct RecoveryOps<'a>(&'a Node);

impl std::ops::Deref for RecoveryOps<'_> {
    type Target = Node;
    fn deref(&self) -> &Node {
        self.0
    }
}

impl Node {
    /// Recovery sessions: open, authenticate, release, cancel.
    pub fn recovery(&self) -> RecoveryOps<'_> {
        RecoveryOps(self)
    }
}

/// What one persisted change writes, in one transaction.
#[derive(Default)]
struct Write<'a> {
    session: Option<&'a StoredSession>,
    index: bool,
    passkey: Option<(&'a str, Vec<u8>)>,
}

impl RecoveryOps<'_> {
    fn persist(&self, w: Write<'_>) -> Result<(), NodeError> {
        let mut batch = Batch::default();
        if let Some(s) = w.session {
            batch.put_session(s, w.index)?;
        }
        if let Some((wallet, pk)) = w.passkey {
            batch.put_passkey_json(wallet, pk);
        }
        let _ = self.db.apply(&batch)?;
        Ok(())
    }

    pub(crate) fn load_session(&self, id: &str) -> Result<StoredSession, NodeError> {
        let key = session_key_of(id)?;
        self.db.session(key)?.ok_or(NodeError::SessionNotFound)
    }

    /// Every session of the wallet (live or not), in id order.
    pub(crate) fn sessions_for_wallet(
        &self,
        wallet_id: &str,
    ) -> Result<Vec<StoredSession>, NodeError> {
        self.db
            .session_ids_of_wallet(wallet_id)?
            .iter()
            .map(|id| self.load_session(id))
            .collect()
    }

    pub(crate) fn save_session(&self, s: &StoredSession) -> Result<(), NodeError> {
        self.persist(Write {
            session: Some(s),
            ..Write::default()
        })
    }

    /// Every stored session (bounded), for the staff listing.
    pub(crate) fn sessions(&self, max: usize) -> Result<Vec<StoredSession>, NodeError> {
        Ok(self.db.sessions(max)?)
    }

    pub(crate) fn wallet_record(&self, wallet_id: &str) -> Result<WalletRecord, NodeError> {
        self.db.wallet(wallet_id)?.ok_or(NodeError::WalletNotFound)
    }

    pub(crate) fn stored_passkey(rec: &WalletRecord) -> Result<Passkey, NodeError> {
        serde_json::from_slice(&rec.passkey_json).map_err(|e| corrupt(PASSKEYS_TREE, e))
    }

    /// The wallet's passkey alone: one key lookup. A whole-record read is a sled transaction,
    /// which writes sled's log and wakes its I/O threads even when it only reads; a ceremony
    /// that checks the owner's touch needs nothing else of the record.
    pub(crate) fn wallet_passkey(&self, wallet_id: &str) -> Result<Passkey, NodeError> {
        let json = self
            .db
            .passkey_json(wallet_id)?
            .ok_or(NodeError::WalletNotFound)?;
        serde_json::from_slice(&json).map_err(|e| corrupt(PASSKEYS_TREE, e))
    }

    /// A request-options template naming the wallet's credential (the client sets the
    /// one-touch challenge).
    pub(crate) fn request_options_template(&self, passkey: &Passkey) -> Result<String, NodeError> {
        let (rcr, _) = self
            .webauthn
            .start_passkey_authentication(std::slice::from_ref(passkey))
            .map_err(|e| internal("start passkey authentication", e))?;
        serde_json::to_string(&rcr).map_err(|e| internal("serialise options", e))
    }

    /// `OpenRecovery`: always a new session, bound to `R`. Opening never touches another
    /// session: a stranger who knows the wallet id cannot occupy, replace or learn the owner's.
    pub async fn open_recovery(
        &self,
        wallet_id: &WalletId,
        session_key: &PublicKey,
    ) -> Result<OpenedRecovery, NodeError> {
        let now = self.now();
        let wallet = wallet_id.as_str();
        // The manifest and the passkey, each one key lookup (see `wallet_passkey`); the
        // session's epoch is the manifest's, which the record's metadata always repeats.
        let manifest_bytes = self
            .db
            .stored_manifest(wallet)?
            .ok_or(NodeError::WalletNotFound)?;
        let manifest = Manifest::decode(&manifest_bytes).map_err(|e| corrupt("manifests", e))?;
        let delay = self
            .config
            .recovery
            .clamp_delay(manifest.recovery_delay_secs());
        let passkey = self.wallet_passkey(wallet)?;
        let request_options_json = self.request_options_template(&passkey)?;
        let id = hex::encode(rand::rng().random::<[u8; 16]>());
        let session = RecoverySession::open(
            id.clone(),
            wallet.to_owned(),
            session_key,
            manifest.epoch(),
            now,
            delay,
            self.config.recovery.session_ttl_secs,
        )
        .with_auth_window(self.config.recovery.auth_window_secs)
        .with_bank(manifest.bank_node_id());
        let stored = StoredSession { session };
        let issued = self
            .owner_touch()
            .issue_owner_nonce(wallet, OwnerAction::Recover)?;
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
        tracing::info!(wallet = %wallet_id.log_tag(), delay, "recovery opened");
        Ok(OpenedRecovery {
            session_id: id,
            request_options_json,
            nonce: issued.nonce,
            authenticate_by: stored.session.authenticate_by,
            release_not_before: stored.session.release_not_before,
            expires_at: stored.session.expires_at,
            manifest: manifest_bytes,
        })
    }

    /// Counts a failed passkey response against the session (closing it at the limit); returns
    /// its events (written, not yet durable). The wallet and its other sessions are untouched.
    fn session_assertion_failed(
        &self,
        mut st: StoredSession,
        during: &str,
    ) -> Result<Vec<StoredEvent>, NodeError> {
        let now = self.now();
        let max = self.config.recovery.max_failed_assertions;
        let closed = st.session.assertion_failed(max, now);
        self.save_session(&st)?;
        let mut events = vec![self.record(
            now,
            "assertion_failed",
            &st.session.wallet_id,
            &st.session.id,
            &format!(
                "{during}; failure {} of {max}",
                st.session.failed_assertions
            ),
        )?];
        if closed {
            events.push(self.record(
                now,
                "recovery_cancelled",
                &st.session.wallet_id,
                &st.session.id,
                "by the node after repeated failed passkey attempts",
            )?);
        }
        Ok(events)
    }

    /// `AuthenticateOwner`: the owner's one-touch assertion (action recover, this session's
    /// `R`); returns the release time.
    pub async fn authenticate_owner(
        &self,
        session_id: &str,
        assertion_json: &str,
        nonces: Vec<TrusteeNonce>,
    ) -> Result<u64, NodeError> {
        bounded(
            "assertion_json",
            assertion_json.len(),
            MAX_ASSERTION_JSON_BYTES,
        )?;
        let guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let mut st = self.load_session(session_id)?;
        let wallet = st.session.wallet_id.clone();
        st.session.can_authenticate(now)?;
        let r = st
            .session
            .session_key()
            .ok_or_else(|| corrupt(SESSIONS_TREE, "session key"))?;
        let passkey = self.wallet_passkey(&wallet)?;
        let touch = match self.owner_touch().verify_owner_assertion(
            &wallet,
            OwnerAction::Recover,
            &dlocker_proto::keys::encode_public_key(&r),
            nonces,
            assertion_json,
            &passkey,
        ) {
            Ok(t) => t,
            Err(NodeError::AssertionRejected) => {
                let events = self.session_assertion_failed(st, "owner authentication")?;
                // Flushed without the lock: a caller sending junk must not hold up everyone's
                // recovery state while the disk syncs (written first, acknowledged after).
                drop(guard);
                self.commit(events).await?;
                return Err(NodeError::AssertionRejected);
            }
            Err(e) => return Err(e),
        };
        st.session = st.session.clone().owner_authenticated(now)?;
        self.owner_touch().spend_nonce(&touch)?;
        let updated = touch
            .value
            .map(|p| serde_json::to_vec(&p).map_err(|e| internal("serialise passkey", e)))
            .transpose()?;
        self.persist(Write {
            session: Some(&st),
            index: false,
            passkey: updated.map(|p| (wallet.as_str(), p)),
        })?;
        let ev = self.record(now, "owner_authenticated", &wallet, session_id, "")?;
        drop(guard);
        self.commit(vec![ev]).await?;
        Ok(st.session.release_not_before)
    }

    /// `ReleaseShare`, held for at most `wait` when the delay alone is not over
    /// ([`RecoveryOps::hold_for_delay`]).
    pub async fn release_share(
        &self,
        session_id: &str,
        bank_approval: &[u8],
        wait: std::time::Duration,
    ) -> Result<ReleasedShare, NodeError> {
        match self.release_share_now(session_id, bank_approval).await {
            Err(refused) => {
                self.hold_for_delay(session_id, refused, wait).await?;
                self.release_share_now(session_id, bank_approval).await
            }
            released => released,
        }
    }

    /// A release refused with `refused`: when that is only the delay (every other check passed:
    /// it is checked last) and `release_not_before` is at most `wait` away, holds the call until
    /// then (or until the session is cancelled or expires); `Ok` says "release now", which
    /// checks everything again, so a hold never releases before `release_not_before`. Any other
    /// refusal, a delay further away, no free place for a held call, or shutdown: `refused`.
    pub(crate) async fn hold_for_delay(
        &self,
        session_id: &str,
        refused: NodeError,
        wait: std::time::Duration,
    ) -> Result<(), NodeError> {
        let not_before = match &refused {
            NodeError::Session(SessionError::DelayNotPassed {
                release_not_before,
                remaining_secs,
            }) if *remaining_secs <= wait.as_secs() => *release_not_before,
            _ => return Err(refused),
        };
        let wallet = self.load_session(session_id)?.session.wallet_id;
        // The clock may read whole seconds: a second's grace past its own count, so the last
        // look sees release_not_before reached.
        let hold_for = self.clock.until(not_before) + std::time::Duration::from_secs(1);
        self.hold(&wallet, hold_for, || {
            let now = self.now();
            let waiting = now < not_before
                && self.load_session(session_id).is_ok_and(|st| {
                    !matches!(st.session.state, SessionState::Cancelled { .. })
                        && !st.session.is_expired(now)
                });
            if waiting {
                let not_yet = SessionError::DelayNotPassed {
                    release_not_before: not_before,
                    remaining_secs: not_before - now,
                };
                Look::Pending(Err(not_yet.into()), Some(self.clock.until(not_before)))
            } else {
                Look::Done(Ok(()))
            }
        })
        .await
    }

    /// `ReleaseShare`, answered at once.
    async fn release_share_now(
        &self,
        session_id: &str,
        bank_approval: &[u8],
    ) -> Result<ReleasedShare, NodeError> {
        bounded(
            "bank_approval_encoded",
            bank_approval.len(),
            MAX_STATEMENT_BYTES,
        )?;
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let mut st = self.load_session(session_id)?;
        let wallet = st.session.wallet_id.clone();
        let rec = self.wallet_record(&wallet)?;
        let token =
            st.session
                .authorize_release(bank_approval, &self.bank_keys, now, rec.meta.epoch)?;
        if rec.meta.epoch != st.session.epoch {
            // A rotation committed a new epoch after this session released (rotation waits for
            // live sessions): the session's share is gone.
            return Err(crate::epochs::state::EpochError::SessionEpochReplaced {
                session_epoch: st.session.epoch,
                active: rec.meta.epoch,
            }
            .into());
        }
        let share_index = rec.meta.share_index;
        let mut manifest_hash = [0u8; 32];
        hex::decode_to_slice(&rec.meta.manifest_hash, &mut manifest_hash)
            .map_err(|e| corrupt("wallets", e))?;
        let Release { envelope, release } = release_share(
            self,
            &token,
            StoredShare {
                sealed_share: &rec.sealed_share,
                epoch: rec.meta.epoch,
                share_index,
                manifest_hash: dlocker_proto::manifest::ManifestHash(manifest_hash),
                source: ShareSource::Active,
            },
            session_id,
            now,
        )?;
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

    /// `BeginOwnerCancel`: a fresh nonce for the owner's cancel touch. It never replaces an
    /// earlier one: a stranger's call cannot invalidate the owner's pending cancellation.
    pub async fn begin_owner_cancel(&self, session_id: &str) -> Result<CancelChallenge, NodeError> {
        let now = self.now();
        let st = self.load_session(session_id)?;
        st.session.can_cancel(now)?;
        let passkey = self.wallet_passkey(&st.session.wallet_id)?;
        let request_options_json = self.request_options_template(&passkey)?;
        let issued = self
            .owner_touch()
            .issue_owner_nonce(&st.session.wallet_id, OwnerAction::Cancel)?;
        self.commit(Vec::new()).await?;
        Ok(CancelChallenge {
            request_options_json,
            nonce: issued.nonce,
            expires_at: issued.expires_at,
        })
    }

    /// `CancelRecovery` at a trustee. With a bank cancellation, `session_id` may be empty: the
    /// wallet's unreleased sessions for the cancellation's `R` that belong to the recovery it
    /// names are cancelled (the bank's staff know only the bank node's session id). Cancelling an
    /// already cancelled session by the bank is a no-op.
    pub async fn cancel_recovery(
        &self,
        session_id: &str,
        authority: CancelAuthority,
    ) -> Result<(), NodeError> {
        match authority {
            CancelAuthority::Owner {
                assertion_json,
                nonces,
            } => self.owner_cancel(session_id, &assertion_json, nonces).await,
            CancelAuthority::Bank(bytes) => self.bank_cancel(session_id, &bytes).await,
        }
    }

    async fn owner_cancel(
        &self,
        session_id: &str,
        assertion_json: &str,
        nonces: Vec<TrusteeNonce>,
    ) -> Result<(), NodeError> {
        bounded(
            "owner_assertion_json",
            assertion_json.len(),
            MAX_ASSERTION_JSON_BYTES,
        )?;
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let mut st = self.load_session(session_id)?;
        st.session.can_cancel(now)?;
        let wallet = st.session.wallet_id.clone();
        let r = st
            .session
            .session_key()
            .ok_or_else(|| corrupt(SESSIONS_TREE, "session key"))?;
        let touch = self.owner_touch().verify_owner_assertion(
            &wallet,
            OwnerAction::Cancel,
            &dlocker_proto::keys::encode_public_key(&r),
            nonces,
            assertion_json,
            &self.wallet_passkey(&wallet)?,
        )?;
        st.session = st.session.clone().cancelled(Canceller::Owner, now)?;
        self.owner_touch().spend_nonce(&touch)?;
        let updated = touch
            .value
            .map(|p| serde_json::to_vec(&p).map_err(|e| internal("serialise passkey", e)))
            .transpose()?;
        self.persist(Write {
            session: Some(&st),
            index: false,
            passkey: updated.map(|p| (wallet.as_str(), p)),
        })?;
        let ev = self.record(now, "recovery_cancelled", &wallet, session_id, "by owner")?;
        self.commit(vec![ev]).await?;
        tracing::info!("recovery cancelled by the owner");
        Ok(())
    }

    async fn bank_cancel(&self, session_id: &str, bytes: &[u8]) -> Result<(), NodeError> {
        bounded(
            "bank_cancellation_encoded",
            bytes.len(),
            MAX_STATEMENT_BYTES,
        )?;
        let _guard = self.recovery_lock.lock().await?;
        let now = self.now();
        let signed = Signed::<BankCancellation>::decode_trusted(bytes, self.bank_keys.keys())
            .map_err(|e| SessionError::CancellationInvalid(e.to_string()))?;
        let c = signed.body();
        // Every session of this wallet and R here: the targets when none is named, and the record
        // of whether this cancellation already cancelled here (then it reaches no session opened
        // since: that one belongs to a later recovery).
        let of_r: Vec<StoredSession> = self
            .sessions_for_wallet(&c.wallet_id)?
            .into_iter()
            .filter(|s| s.session.session_key() == Some(c.session_key))
            .collect();
        let spent_at = of_r
            .iter()
            .filter_map(|s| s.session.cancelled_by_bank_session(&c.session_id))
            .min();
        let named = !session_id.is_empty();
        let targets = if named {
            vec![self.load_session(session_id)?]
        } else {
            of_r
        };
        let (mut events, mut refusal, mut done) = (Vec::new(), None, false);
        for mut st in targets {
            let at_bank = st.session.bank_node_id == self.identity.node_id();
            let checked =
                st.session
                    .verify_cancellation(&signed, &self.bank_keys, at_bank, spent_at);
            if matches!(st.session.state, SessionState::Cancelled { .. }) {
                // Already cancelled: presenting again is a no-op, for the session it names.
                match checked {
                    Ok(_) => done = true,
                    Err(e) if named => return Err(e.into()),
                    Err(_) => {}
                }
                continue;
            }
            let result = checked
                .map_err(NodeError::from)
                .and_then(|by| self.cancel_session(&mut st, by, now));
            match result {
                Ok(ev) => events.push(ev),
                Err(NodeError::Session(e)) => {
                    refusal.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        // Nothing cancelled: a live session that refused says why (a replay against a later
        // recovery, a released or expired session); else it was done before, or there is none.
        if events.is_empty() {
            if let Some(e) = refusal {
                return Err(e.into());
            }
            if !done {
                return Err(NodeError::SessionNotFound);
            }
        }
        self.commit(events).await?;
        tracing::info!("recovery cancelled by the bank");
        Ok(())
    }

    /// Cancels `st` on behalf of `by`, stores it and returns its event (not yet durable).
    pub(crate) fn cancel_session(
        &self,
        st: &mut StoredSession,
        by: Canceller,
        now: u64,
    ) -> Result<StoredEvent, NodeError> {
        st.session = st.session.clone().cancelled(by.clone(), now)?;
        self.save_session(st)?;
        self.record(
            now,
            "recovery_cancelled",
            &st.session.wallet_id,
            &st.session.id,
            &format!("by {by}"),
        )
    }

    /// `GetRecoveryStatus`.
    pub fn recovery_status(&self, session_id: &str) -> Result<RecoverySession, NodeError> {
        Ok(self.load_session(session_id)?.session)
    }
}
