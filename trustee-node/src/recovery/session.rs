//! The recovery session: an explicit, persisted state machine.
//!
//! ```text
//!            authenticate_owner            release (approval + delay checked)
//!   Open ─────────────────────▶ OwnerAuthenticated ─────────────────────▶ Released
//!     │                              │
//!     └──────── cancel ──────────────┴──────▶ Cancelled        (any state) ──▶ Expired (by time)
//!     │
//!     └── max failed passkey responses ──────▶ Cancelled (by failed passkey attempts)
//! ```
//!
//! A wallet may have several sessions, each bound to its own `R`. A session still `Open` when
//! its `authenticate_by` passes is expired: a session anyone can open blocks nothing unless its
//! owner authenticates. Failed passkey responses close the session they were sent to, never the
//! wallet.
//!
//! Transitions are functions of `(state, event, now)` returning the next state or a
//! [`SessionError`] that says exactly which check failed. A share can only be released through
//! [`RecoverySession::authorize_release`], which returns a [`ReleaseAuthorized`] token: it
//! carries the proof that the owner authenticated in this session, that a valid bank approval for
//! this wallet and this `R` was presented, and that the delay passed. The node's release code
//! takes that token, so "release before checking" does not compile.

use dlocker_proto::keys::{decode_public_key, encode_public_key};
use dlocker_proto::statement::{
    BankApproval, BankCancellation, PasskeyResetApproval, Signed, StatementBody, StatementError,
};
use k256::PublicKey;
use serde::{Deserialize, Serialize};

/// Session states as `RecoverySession::state_name` reports them.
pub const SESSION_STATES: [&str; 5] = [
    "open",
    "owner_authenticated",
    "released",
    "cancelled",
    "expired",
];

/// Who cancelled a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Canceller {
    /// The owner, with a passkey assertion.
    Owner,
    /// The node, after too many failed passkey responses in this session.
    FailedPasskey,
    /// The bank, on a staff member's signed request.
    Bank {
        /// The staff member.
        staff_id: String,
        /// The bank's session id the cancellation named (empty in records written before
        /// cancellations named one): a cancellation is spent at a trustee once it cancelled there.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        bank_session_id: String,
    },
}

impl std::fmt::Display for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Owner => f.write_str("owner"),
            Self::FailedPasskey => f.write_str("the node after repeated failed passkey attempts"),
            Self::Bank { staff_id, .. } => write!(f, "bank staff {staff_id}"),
        }
    }
}

/// Where a session is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SessionState {
    /// Waiting for the owner's passkey.
    Open,
    /// The owner's passkey verified in this session.
    OwnerAuthenticated {
        /// Unix seconds.
        at: u64,
    },
    /// The share of `epoch` was released to `R` (the client may fetch that share again until
    /// expiry, never another epoch's).
    Released {
        /// Unix seconds.
        at: u64,
        /// The epoch whose share was released.
        #[serde(default)]
        epoch: u64,
    },
    /// Cancelled; never releases.
    Cancelled {
        /// Unix seconds.
        at: u64,
        /// Who.
        by: Canceller,
    },
}

/// Why a transition was refused. Each check has its own variant and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The session expired.
    #[error("recovery session expired at {expires_at}; open a new one")]
    Expired {
        /// Unix seconds.
        expires_at: u64,
    },
    /// The session was cancelled.
    #[error("recovery session was cancelled by {by}")]
    Cancelled {
        /// Who.
        by: Canceller,
    },
    /// The share was already released in this session.
    #[error("the share was already released in this session")]
    AlreadyReleased,
    /// The session released another epoch's share; it never releases a second epoch's (a
    /// rotation after a release locks that session out).
    #[error(
        "this session already released the share of epoch {released}; it cannot release epoch \
            {asked} — open a new recovery"
    )]
    ReleasedOtherEpoch {
        /// The epoch released.
        released: u64,
        /// The epoch asked for.
        asked: u64,
    },
    /// The owner has not proved their passkey in this session.
    #[error("the owner has not authenticated with their passkey in this session")]
    OwnerNotAuthenticated,
    /// The owner already authenticated.
    #[error("the owner already authenticated in this session")]
    AlreadyAuthenticated,
    /// The approval is not a valid statement.
    #[error("bank approval is malformed: {0}")]
    ApprovalMalformed(String),
    /// Signed by a key this node does not accept.
    #[error("bank approval is signed by a key this node does not accept")]
    ApprovalUnknownSigner,
    /// For another wallet.
    #[error("bank approval is for another wallet")]
    ApprovalWrongWallet,
    /// Signed by a bank other than the one the wallet's manifest names.
    #[error("bank approval is not from this wallet's bank (the bank its manifest names)")]
    ApprovalWrongBank,
    /// For another device key `R`.
    #[error("bank approval is for another device key (session key R)")]
    ApprovalWrongSessionKey,
    /// Past its expiry.
    #[error("bank approval expired at {expires_at}; ask the bank for a new one")]
    ApprovalExpired {
        /// Unix seconds.
        expires_at: u64,
    },
    /// Issued in the future (clock skew or forgery).
    #[error("bank approval is not valid yet (issued at {issued_at})")]
    ApprovalNotYetValid {
        /// Unix seconds.
        issued_at: u64,
    },
    /// The waiting period is still running.
    #[error(
        "recovery delay has not passed: release not before {release_not_before} ({remaining_secs} \
            s left)"
    )]
    DelayNotPassed {
        /// Unix seconds.
        release_not_before: u64,
        /// Seconds left.
        remaining_secs: u64,
    },
    /// A bank cancellation for another recovery.
    #[error("bank cancellation is for another wallet or device key")]
    CancellationMismatch,
    /// A bank cancellation from a bank other than the wallet's.
    #[error("bank cancellation is not from this wallet's bank")]
    CancellationWrongBank,
    /// The cancellation was issued, or names a bank session opened, before this session opened
    /// (a replay).
    #[error(
        "bank cancellation was issued at {issued_at} for a bank session opened at \
            {session_opened_at}, before this session opened at {opened_at}: it cancels an earlier \
            session"
    )]
    CancellationStale {
        /// Unix seconds.
        issued_at: u64,
        /// Unix seconds: when the bank session it names opened.
        session_opened_at: u64,
        /// Unix seconds.
        opened_at: u64,
    },
    /// At the bank: the cancellation names another of its sessions.
    #[error("bank cancellation names bank session {named}, not this session")]
    CancellationWrongSession {
        /// The bank session id it names.
        named: String,
    },
    /// At a trustee: the cancellation already cancelled this node's sessions of its recovery,
    /// and this session opened after that (a replay against a later recovery).
    #[error(
        "bank cancellation for bank session {named} was spent here at {spent_at}; this session \
            opened at {opened_at}, after it: it belongs to another recovery"
    )]
    CancellationSpent {
        /// The bank session id it names.
        named: String,
        /// Unix seconds: when it first cancelled a session here.
        spent_at: u64,
        /// Unix seconds.
        opened_at: u64,
    },
    /// The cancellation is not a valid statement or not from an accepted key.
    #[error("bank cancellation is invalid: {0}")]
    CancellationInvalid(String),
}

/// The bank approval keys a node accepts, each bound to the bank node whose approvals it signs
/// (a node that accepts one bank's key may leave it unbound).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BankKeys {
    keys: Vec<PublicKey>,
    owners: Vec<Option<String>>,
}

impl BankKeys {
    /// `(key, bank node id)` pairs.
    pub fn new(entries: impl IntoIterator<Item = (PublicKey, Option<String>)>) -> Self {
        let mut k = Self::default();
        for (key, owner) in entries {
            if !k.keys.contains(&key) {
                k.keys.push(key);
                k.owners.push(owner);
            }
        }
        k
    }

    /// One bank's key, unbound.
    pub fn single(key: PublicKey) -> Self {
        Self::new([(key, None)])
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// A statement signed by `signer` that names `claimed` as its bank is the wallet's own
    /// bank's (`wallet_bank`, from the manifest): another bank's key never approves or cancels
    /// it.
    fn check(&self, signer: &PublicKey, claimed: &str, wallet_bank: &str) -> bool {
        let owner = self
            .keys
            .iter()
            .position(|k| k == signer)
            .and_then(|i| self.owners[i].as_deref());
        claimed == wallet_bank && owner.is_none_or(|o| o == claimed)
    }

    /// The checks every bank approval gets, whatever it approves (a recovery's release, a
    /// passkey reset): signed by a key this node accepts, by the wallet's own bank (the bank
    /// `wallet_bank` its manifest names), for `wallet_id`, unexpired and not issued in the
    /// future. The caller checks what the approval is for.
    pub fn verify_bank_statement<T: BankStatement>(
        &self,
        bytes: &[u8],
        wallet_id: &str,
        wallet_bank: &str,
        now: u64,
    ) -> Result<Signed<T>, SessionError> {
        let signed = Signed::<T>::decode_trusted(bytes, self.keys()).map_err(|e| match e {
            StatementError::UntrustedSigner => SessionError::ApprovalUnknownSigner,
            other => SessionError::ApprovalMalformed(other.to_string()),
        })?;
        let a = signed.body();
        if !self.check(signed.signer(), a.bank_node_id(), wallet_bank) {
            return Err(SessionError::ApprovalWrongBank);
        }
        if a.wallet_id() != wallet_id {
            return Err(SessionError::ApprovalWrongWallet);
        }
        if now >= a.expires_at() {
            return Err(SessionError::ApprovalExpired {
                expires_at: a.expires_at(),
            });
        }
        if a.issued_at() > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(SessionError::ApprovalNotYetValid {
                issued_at: a.issued_at(),
            });
        }
        Ok(signed)
    }
}

/// A bank approval statement: what [`BankKeys::verify_bank_statement`] checks of any of them.
pub trait BankStatement: StatementBody {
    /// The bank node that signed.
    fn bank_node_id(&self) -> &str;
    /// The wallet approved.
    fn wallet_id(&self) -> &str;
    /// Unix seconds.
    fn issued_at(&self) -> u64;
    /// Unix seconds; refused from then on.
    fn expires_at(&self) -> u64;
}

macro_rules! bank_statement {
    ($t:ty) => {
        impl BankStatement for $t {
            fn bank_node_id(&self) -> &str {
                &self.bank_node_id
            }
            fn wallet_id(&self) -> &str {
                &self.wallet_id
            }
            fn issued_at(&self) -> u64 {
                self.issued_at
            }
            fn expires_at(&self) -> u64 {
                self.expires_at
            }
        }
    };
}
bank_statement!(BankApproval);
bank_statement!(PasskeyResetApproval);

/// Allowed clock skew for statements issued "now" by another node.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// A recovery session as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverySession {
    /// Random id (hex).
    pub id: String,
    /// The wallet.
    pub wallet_id: String,
    /// `R`, SEC1 compressed, hex.
    pub session_key_hex: String,
    /// The epoch whose share this session may release.
    pub epoch: u64,
    /// The wallet's bank (the manifest's `bank_node_id`): only its approvals and cancellations
    /// count.
    #[serde(default)]
    pub bank_node_id: String,
    /// Unix seconds.
    pub opened_at: u64,
    /// Unix seconds.
    pub release_not_before: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// Unix seconds: still `Open` then, the session is expired.
    pub authenticate_by: u64,
    /// Failed passkey responses in this session.
    #[serde(default)]
    pub failed_assertions: u32,
    /// Where the session is.
    pub state: SessionState,
    /// Bank node only: staff ids who approved (distinct).
    #[serde(default)]
    pub approvals: Vec<String>,
    /// Bank node only: the signed approval once the policy held.
    #[serde(default)]
    pub bank_approval: Option<Vec<u8>>,
}

/// Proof that a bank approval was checked for a session (constructed only here).
#[derive(Debug)]
pub struct VerifiedApproval {
    approvers: Vec<String>,
}

impl VerifiedApproval {
    /// The staff who approved.
    pub fn approvers(&self) -> &[String] {
        &self.approvers
    }
}

/// Proof that every release check passed; required by the node's release code.
// The private field makes the token constructible only in this module (non_exhaustive would
// still allow it anywhere in the crate).
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug)]
pub struct ReleaseAuthorized {
    _private: (),
    /// The approval it was checked against.
    pub approval: VerifiedApproval,
    /// The epoch whose share it authorizes.
    pub epoch: u64,
    wallet_id: String,
    session_key: Option<PublicKey>,
}

impl ReleaseAuthorized {
    /// The wallet whose share it authorizes.
    pub fn wallet_id(&self) -> &str {
        &self.wallet_id
    }

    /// `R`, the session key the share is sealed to (`None` if the stored session's key does
    /// not decode).
    pub fn session_key(&self) -> Option<PublicKey> {
        self.session_key
    }
}

impl RecoverySession {
    /// A new session in state `Open`.
    pub fn open(
        id: String,
        wallet_id: String,
        session_key: &PublicKey,
        epoch: u64,
        now: u64,
        delay_secs: u64,
        ttl_secs: u64,
    ) -> Self {
        let release_not_before = now.saturating_add(delay_secs);
        Self {
            id,
            wallet_id,
            session_key_hex: hex::encode(encode_public_key(session_key)),
            epoch,
            bank_node_id: String::new(),
            opened_at: now,
            release_not_before,
            expires_at: release_not_before.saturating_add(ttl_secs),
            authenticate_by: release_not_before.saturating_add(ttl_secs),
            failed_assertions: 0,
            state: SessionState::Open,
            approvals: Vec::new(),
            bank_approval: None,
        }
    }

    /// `R`.
    pub fn session_key(&self) -> Option<PublicKey> {
        hex::decode(&self.session_key_hex)
            .ok()
            .and_then(|b| decode_public_key(&b).ok())
    }

    /// The wallet's bank, as its manifest names it.
    pub fn with_bank(mut self, bank_node_id: &str) -> Self {
        self.bank_node_id = bank_node_id.to_owned();
        self
    }

    /// The owner must authenticate within `secs` of opening (never later than expiry).
    pub fn with_auth_window(mut self, secs: u64) -> Self {
        self.authenticate_by = self.opened_at.saturating_add(secs).min(self.expires_at);
        self
    }

    /// Expired sessions are dead whatever their state says; an unauthenticated one expires at
    /// `authenticate_by`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
            || (matches!(self.state, SessionState::Open) && now >= self.authenticate_by)
    }

    /// Owner-authenticated and unexpired: the only kind of session that holds up a rotation.
    pub fn blocks_rotation(&self, now: u64) -> bool {
        !self.is_expired(now) && matches!(self.state, SessionState::OwnerAuthenticated { .. })
    }

    /// Counts a failed passkey response; at `max` the session is closed (cancelled by
    /// [`Canceller::FailedPasskey`]). Returns whether it was closed.
    pub fn assertion_failed(&mut self, max: u32, now: u64) -> bool {
        self.failed_assertions = self.failed_assertions.saturating_add(1);
        if self.failed_assertions >= max && self.can_cancel(now).is_ok() {
            self.state = SessionState::Cancelled {
                at: now,
                by: Canceller::FailedPasskey,
            };
            return true;
        }
        false
    }

    /// When the session ended, if it has: cancelled (when), or expired (at `authenticate_by` for
    /// one that never saw the passkey, else at `expires_at`). A released session has not ended
    /// until it expires: its client may fetch the released share again until then.
    pub fn ended_at(&self, now: u64) -> Option<u64> {
        match &self.state {
            SessionState::Cancelled { at, .. } => Some(*at),
            _ if !self.is_expired(now) => None,
            SessionState::Open => Some(self.authenticate_by.min(self.expires_at)),
            _ => Some(self.expires_at),
        }
    }

    /// Whether the session ended at least `retention` seconds before `now`, so housekeeping
    /// may erase it. A bank-cancelled session is the record that spends its cancellation at
    /// this node; it is kept until a replay of that cancellation would be refused as stale
    /// anyway (twice the clock skew, whatever the retention).
    pub fn prunable(&self, now: u64, retention: u64) -> bool {
        let Some(ended) = self.ended_at(now) else {
            return false;
        };
        let keep = match &self.state {
            SessionState::Cancelled {
                by: Canceller::Bank { .. },
                ..
            } => retention.max(2 * CLOCK_SKEW_SECS),
            _ => retention,
        };
        now >= ended.saturating_add(keep)
    }

    /// Open or owner-authenticated, and unexpired.
    pub fn is_live(&self, now: u64) -> bool {
        !self.is_expired(now)
            && matches!(
                self.state,
                SessionState::Open | SessionState::OwnerAuthenticated { .. }
            )
    }

    /// A state name for status reports.
    pub fn state_name(&self, now: u64) -> &'static str {
        match (&self.state, self.is_expired(now)) {
            (SessionState::Cancelled { .. }, _) => "cancelled",
            (_, true) => "expired",
            (SessionState::Open, false) => "open",
            (SessionState::OwnerAuthenticated { .. }, false) => "owner_authenticated",
            (SessionState::Released { .. }, false) => "released",
        }
    }

    fn check_active(&self, now: u64) -> Result<(), SessionError> {
        if let SessionState::Cancelled { by, .. } = &self.state {
            return Err(SessionError::Cancelled { by: by.clone() });
        }
        if self.is_expired(now) {
            return Err(SessionError::Expired {
                expires_at: self.expires_at,
            });
        }
        Ok(())
    }

    /// Whether a passkey assertion may be tried now.
    pub fn can_authenticate(&self, now: u64) -> Result<(), SessionError> {
        self.check_active(now)?;
        match self.state {
            SessionState::Open => Ok(()),
            SessionState::OwnerAuthenticated { .. } => Err(SessionError::AlreadyAuthenticated),
            SessionState::Released { .. } => Err(SessionError::AlreadyReleased),
            SessionState::Cancelled { .. } => Ok(()), // unreachable: check_active refused it
        }
    }

    /// Open → OwnerAuthenticated, after the node verified the assertion.
    pub fn owner_authenticated(mut self, now: u64) -> Result<Self, SessionError> {
        self.can_authenticate(now)?;
        self.state = SessionState::OwnerAuthenticated { at: now };
        Ok(self)
    }

    /// Every release check, in order: active (not cancelled/expired), owner authenticated, bank
    /// approval (valid signature under an accepted key, this wallet, this `R`, unexpired), delay.
    /// `epoch` is the epoch whose share would be released: a session releases one epoch only.
    pub fn authorize_release(
        &self,
        approval: &[u8],
        banks: &BankKeys,
        now: u64,
        epoch: u64,
    ) -> Result<ReleaseAuthorized, SessionError> {
        self.check_active(now)?;
        match self.state {
            SessionState::OwnerAuthenticated { .. } => {}
            SessionState::Released {
                epoch: released, ..
            } if released == epoch => {}
            SessionState::Released {
                epoch: released, ..
            } => {
                return Err(SessionError::ReleasedOtherEpoch {
                    released,
                    asked: epoch,
                });
            }
            _ => return Err(SessionError::OwnerNotAuthenticated),
        }
        let approval = self.verify_approval(approval, banks, now)?;
        if now < self.release_not_before {
            return Err(SessionError::DelayNotPassed {
                release_not_before: self.release_not_before,
                remaining_secs: self.release_not_before - now,
            });
        }
        Ok(ReleaseAuthorized {
            _private: (),
            approval,
            epoch,
            wallet_id: self.wallet_id.clone(),
            session_key: self.session_key(),
        })
    }

    fn verify_approval(
        &self,
        bytes: &[u8],
        banks: &BankKeys,
        now: u64,
    ) -> Result<VerifiedApproval, SessionError> {
        let signed: Signed<BankApproval> =
            banks.verify_bank_statement(bytes, &self.wallet_id, &self.bank_node_id, now)?;
        let a = signed.body();
        if Some(a.session_key) != self.session_key() {
            return Err(SessionError::ApprovalWrongSessionKey);
        }
        Ok(VerifiedApproval {
            approvers: a.approvers.clone(),
        })
    }

    /// OwnerAuthenticated/Released → Released (of the token's epoch), given the token.
    pub fn released(mut self, token: &ReleaseAuthorized, now: u64) -> Self {
        if !matches!(self.state, SessionState::Released { .. }) {
            self.state = SessionState::Released {
                at: now,
                epoch: token.epoch,
            };
        }
        self
    }

    /// Whether the session may still be cancelled (before release, while active).
    pub fn can_cancel(&self, now: u64) -> Result<(), SessionError> {
        self.check_active(now)?;
        if matches!(self.state, SessionState::Released { .. }) {
            return Err(SessionError::AlreadyReleased);
        }
        Ok(())
    }

    /// Checks a bank cancellation (signature already verified by the caller) for this session:
    /// the wallet's own bank, this wallet and `R`, not older than this session, and the recovery
    /// this session belongs to. `at_bank`: this node is the wallet's bank, whose session ids the
    /// cancellation names, so it must name this one. Elsewhere `spent_at` is when the same
    /// cancellation (same bank session) first cancelled a session of this wallet and `R` here:
    /// a session opened at or after that belongs to a later recovery.
    pub fn verify_cancellation(
        &self,
        signed: &Signed<BankCancellation>,
        banks: &BankKeys,
        at_bank: bool,
        spent_at: Option<u64>,
    ) -> Result<Canceller, SessionError> {
        let c = signed.body();
        if !banks.keys().contains(signed.signer()) {
            return Err(SessionError::CancellationInvalid(
                StatementError::UntrustedSigner.to_string(),
            ));
        }
        if !banks.check(signed.signer(), &c.bank_node_id, &self.bank_node_id) {
            return Err(SessionError::CancellationWrongBank);
        }
        if c.wallet_id != self.wallet_id || Some(c.session_key) != self.session_key() {
            return Err(SessionError::CancellationMismatch);
        }
        // Issued, or naming a bank session opened, before this session opened: it was for an
        // earlier session with the same (wallet, R); replayed, it must not cancel this one.
        if c.issued_at
            .min(c.session_opened_at)
            .saturating_add(CLOCK_SKEW_SECS)
            < self.opened_at
        {
            return Err(SessionError::CancellationStale {
                issued_at: c.issued_at,
                session_opened_at: c.session_opened_at,
                opened_at: self.opened_at,
            });
        }
        if at_bank {
            if c.session_id != self.id {
                return Err(SessionError::CancellationWrongSession {
                    named: c.session_id.clone(),
                });
            }
        } else if let Some(spent_at) = spent_at
            // Same second counts as after: a recovery opens one session per trustee, so a second
            // session of this (wallet, R) opened as the cancellation landed is a later one.
            && self.opened_at >= spent_at
        {
            return Err(SessionError::CancellationSpent {
                named: c.session_id.clone(),
                spent_at,
                opened_at: self.opened_at,
            });
        }
        Ok(Canceller::Bank {
            staff_id: c.staff_id.clone(),
            bank_session_id: c.session_id.clone(),
        })
    }

    /// When a bank cancellation naming `bank_session_id` cancelled this session, if it did.
    pub fn cancelled_by_bank_session(&self, bank_session_id: &str) -> Option<u64> {
        match &self.state {
            SessionState::Cancelled {
                at,
                by: Canceller::Bank {
                    bank_session_id: b, ..
                },
            } if b == bank_session_id => Some(*at),
            _ => None,
        }
    }

    /// Any active, unreleased state → Cancelled.
    pub fn cancelled(mut self, by: Canceller, now: u64) -> Result<Self, SessionError> {
        self.can_cancel(now)?;
        self.state = SessionState::Cancelled { at: now, by };
        Ok(self)
    }

    /// Bank node: records a distinct staff approval while fewer than `required` are recorded;
    /// returns true when it was recorded. Once the policy holds, a further approval changes
    /// nothing (the signed approval names the approvers that met it), so none is recorded.
    pub fn add_approval(
        &mut self,
        staff_id: &str,
        required: u32,
        now: u64,
    ) -> Result<bool, SessionError> {
        self.can_cancel(now)?;
        Ok(add_distinct_approval(
            &mut self.approvals,
            staff_id,
            required,
        ))
    }
}

/// Records `staff_id`'s approval in `approvals` unless it is there already or the policy
/// (`required` distinct staff) already holds; true when recorded. Recoveries and passkey resets
/// share this rule.
pub fn add_distinct_approval(approvals: &mut Vec<String>, staff_id: &str, required: u32) -> bool {
    if approvals.iter().any(|a| a == staff_id) || approvals.len() >= required as usize {
        return false;
    }
    approvals.push(staff_id.to_owned());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::SecretKey;
    use k256::ecdsa::SigningKey;
    use k256::elliptic_curve::Generate;

    fn key() -> SigningKey {
        SigningKey::generate_from_rng(&mut rand::rng())
    }

    fn approval(
        bank: &SigningKey,
        wallet: &str,
        r: &PublicKey,
        issued_at: u64,
        expires_at: u64,
    ) -> Vec<u8> {
        Signed::sign(
            BankApproval {
                bank_node_id: "ab".repeat(16),
                wallet_id: wallet.into(),
                session_key: *r,
                issued_at,
                expires_at,
                approvers: vec!["alice".into()],
            },
            bank,
        )
        .encode()
    }

    #[test]
    fn happy_path_and_each_refusal() {
        let bank = key();
        let accepted = BankKeys::single(PublicKey::from(bank.verifying_key()));
        let r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let s = RecoverySession::open("s1".into(), "w".into(), &r, 1, 1000, 60, 3600)
            .with_bank(&"ab".repeat(16));
        let good = approval(&bank, "w", &r, 1000, 5000);

        assert_eq!(
            s.authorize_release(&good, &accepted, 2000, 1).err(),
            Some(SessionError::OwnerNotAuthenticated)
        );
        let s = s.owner_authenticated(1001).expect("auth");
        assert_eq!(
            s.clone().owner_authenticated(1002).err(),
            Some(SessionError::AlreadyAuthenticated)
        );
        assert_eq!(
            s.authorize_release(&good, &accepted, 1010, 1).err(),
            Some(SessionError::DelayNotPassed {
                release_not_before: 1060,
                remaining_secs: 50
            })
        );
        let other_r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        assert_eq!(
            s.authorize_release(
                &approval(&bank, "w", &other_r, 1000, 5000),
                &accepted,
                2000,
                1
            )
            .err(),
            Some(SessionError::ApprovalWrongSessionKey)
        );
        assert_eq!(
            s.authorize_release(&approval(&bank, "w2", &r, 1000, 5000), &accepted, 2000, 1)
                .err(),
            Some(SessionError::ApprovalWrongWallet)
        );
        assert_eq!(
            s.authorize_release(&approval(&bank, "w", &r, 1000, 1500), &accepted, 2000, 1)
                .err(),
            Some(SessionError::ApprovalExpired { expires_at: 1500 })
        );
        assert_eq!(
            s.authorize_release(&approval(&key(), "w", &r, 1000, 5000), &accepted, 2000, 1)
                .err(),
            Some(SessionError::ApprovalUnknownSigner)
        );
        // Another bank's key, even one this node accepts, never approves this wallet: neither
        // claiming to be the wallet's bank nor as itself.
        let other_bank = key();
        let both = BankKeys::new([
            (PublicKey::from(bank.verifying_key()), Some("ab".repeat(16))),
            (
                PublicKey::from(other_bank.verifying_key()),
                Some("cd".repeat(16)),
            ),
        ]);
        assert_eq!(
            s.authorize_release(&approval(&other_bank, "w", &r, 1000, 5000), &both, 2000, 1)
                .err(),
            Some(SessionError::ApprovalWrongBank)
        );
        assert!(s.authorize_release(&good, &both, 2000, 1).is_ok());
        assert!(matches!(
            s.authorize_release(b"junk", &accepted, 2000, 1),
            Err(SessionError::ApprovalMalformed(_))
        ));
        let token = s
            .authorize_release(&good, &accepted, 2000, 1)
            .expect("authorized");
        let s = s.released(&token, 2000);
        assert_eq!(s.state_name(2000), "released");
        // The same epoch's share again (a lost answer), never another epoch's.
        s.authorize_release(&good, &accepted, 2001, 1)
            .expect("the released epoch again");
        assert_eq!(
            s.authorize_release(&good, &accepted, 2001, 2).err(),
            Some(SessionError::ReleasedOtherEpoch {
                released: 1,
                asked: 2
            })
        );
        assert_eq!(
            s.clone().cancelled(Canceller::Owner, 2001).err(),
            Some(SessionError::AlreadyReleased)
        );
        assert_eq!(s.state_name(1060 + 3600), "expired");
        assert!(matches!(
            s.authorize_release(&good, &accepted, 1060 + 3600, 1),
            Err(SessionError::Expired { .. })
        ));
    }

    #[test]
    fn ended_sessions_are_prunable_after_retention_and_live_ones_never() {
        let r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        // Opened at 1000, release at 1060, expires at 4660; passkey due by 1600.
        let open = RecoverySession::open("s1".into(), "w".into(), &r, 1, 1000, 60, 3600)
            .with_auth_window(600);
        assert_eq!(open.ended_at(1599), None);
        assert!(!open.prunable(1599, 0));
        // Never authenticated: ended at authenticate_by.
        assert_eq!(open.ended_at(1600), Some(1600));
        assert!(!open.prunable(1609, 10));
        assert!(open.prunable(1610, 10));
        // Released: live (the share may be fetched again) until it expires.
        let authed = open.clone().owner_authenticated(1010).expect("auth");
        let mut released = authed.clone();
        released.state = SessionState::Released { at: 1070, epoch: 1 };
        assert_eq!(released.ended_at(4659), None);
        assert!(!released.prunable(4659, 0));
        assert_eq!(released.ended_at(4660), Some(4660));
        assert!(released.prunable(4670, 10));
        // Owner-cancelled: ended when cancelled.
        let cancelled = authed
            .clone()
            .cancelled(Canceller::Owner, 1020)
            .expect("cancel");
        assert_eq!(cancelled.ended_at(1021), Some(1020));
        assert!(cancelled.prunable(1021, 1));
        // Bank-cancelled: its record spends the cancellation, kept 2 × skew whatever the
        // retention.
        let by_bank = authed
            .cancelled(
                Canceller::Bank {
                    staff_id: "bob".into(),
                    bank_session_id: "b1".into(),
                },
                1020,
            )
            .expect("cancel");
        assert!(!by_bank.prunable(1020 + 2 * CLOCK_SKEW_SECS - 1, 1));
        assert!(by_bank.prunable(1020 + 2 * CLOCK_SKEW_SECS, 1));
    }

    #[test]
    fn cancelled_never_releases() {
        let bank = key();
        let accepted = BankKeys::single(PublicKey::from(bank.verifying_key()));
        let r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let s = RecoverySession::open("s1".into(), "w".into(), &r, 1, 1000, 0, 3600)
            .with_bank(&"ab".repeat(16))
            .owner_authenticated(1000)
            .expect("auth");
        let cancel = Signed::sign(
            BankCancellation {
                bank_node_id: "ab".repeat(16),
                wallet_id: "w".into(),
                session_key: r,
                session_id: "s1".into(),
                session_opened_at: 1000,
                staff_id: "bob".into(),
                issued_at: 1000,
            },
            &bank,
        );
        let by = s
            .verify_cancellation(&cancel, &accepted, true, None)
            .expect("valid");
        assert!(matches!(
            s.verify_cancellation(
                &cancel,
                &BankKeys::single(PublicKey::from(key().verifying_key())),
                true,
                None
            ),
            Err(SessionError::CancellationInvalid(_))
        ));
        // At the bank another session of the same (wallet, R) is not the one named.
        let mut twin = s.clone();
        twin.id = "s2".into();
        assert_eq!(
            twin.verify_cancellation(&cancel, &accepted, true, None)
                .err(),
            Some(SessionError::CancellationWrongSession { named: "s1".into() })
        );
        // At a trustee, once spent, it does not reach a session opened after (or as it landed).
        let mut later = s.clone();
        later.opened_at = 1100;
        assert!(matches!(
            later.verify_cancellation(&cancel, &accepted, false, Some(1100)),
            Err(SessionError::CancellationSpent { spent_at: 1100, .. })
        ));
        assert!(
            s.verify_cancellation(&cancel, &accepted, false, Some(1100))
                .is_ok()
        );
        // Older than the session (beyond the clock skew): stale.
        later.opened_at = 1000 + CLOCK_SKEW_SECS + 1;
        assert!(matches!(
            later.verify_cancellation(&cancel, &accepted, false, None),
            Err(SessionError::CancellationStale { .. })
        ));
        let s = s.cancelled(by, 1001).expect("cancel");
        assert_eq!(s.cancelled_by_bank_session("s1"), Some(1001));
        assert_eq!(s.cancelled_by_bank_session("s2"), None);
        let good = approval(&bank, "w", &r, 1000, 5000);
        assert_eq!(
            s.authorize_release(&good, &accepted, 2000, 1).err(),
            Some(SessionError::Cancelled {
                by: Canceller::Bank {
                    staff_id: "bob".into(),
                    bank_session_id: "s1".into(),
                }
            })
        );
        assert!(!s.is_live(1002));
    }

    #[test]
    fn unauthenticated_sessions_expire_and_failures_close_only_the_session() {
        let r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let s = RecoverySession::open("s1".into(), "w".into(), &r, 1, 1000, 60, 3600)
            .with_bank(&"ab".repeat(16))
            .with_auth_window(600);
        assert_eq!(s.authenticate_by, 1600);
        assert!(!s.is_expired(1599));
        assert!(s.is_expired(1600));
        assert!(!s.blocks_rotation(1000));
        let authed = s.clone().owner_authenticated(1500).expect("in window");
        assert!(
            !authed.is_expired(1600),
            "the window binds only unauthenticated sessions"
        );
        assert!(authed.blocks_rotation(1600));
        let mut f = s;
        assert!(!f.assertion_failed(3, 1001));
        assert!(!f.assertion_failed(3, 1002));
        assert!(f.assertion_failed(3, 1003));
        assert_eq!(f.state_name(1004), "cancelled");
    }

    #[test]
    fn approvals_are_distinct() {
        let r = SecretKey::generate_from_rng(&mut rand::rng()).public_key();
        let mut s = RecoverySession::open("s1".into(), "w".into(), &r, 1, 1000, 0, 3600)
            .with_bank(&"ab".repeat(16));
        assert_eq!(s.add_approval("alice", 2, 1000), Ok(true));
        assert_eq!(s.add_approval("alice", 2, 1001), Ok(false));
        assert_eq!(s.add_approval("bob", 2, 1002), Ok(true));
        // The policy holds: a third approver is not recorded ("3 of 2" would be meaningless).
        assert_eq!(s.add_approval("carol", 2, 1003), Ok(false));
        assert_eq!(s.approvals, vec!["alice".to_owned(), "bob".to_owned()]);
    }
}
