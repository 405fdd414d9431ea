//! The node's context: configuration, keys, the database, the audit log and event outbox, the
//! WebAuthn relying party and a clock, shared by every request handler.
//!
//! Request logic lives in the feature folders, as operations over a borrowed view of this
//! context (`node.enrollment()`, `node.recovery()`, `node.epochs()`, `node.staff()`,
//! `node.owner_touch()`); what is here is only what every feature needs: the accessors, the
//! audit entry + event of a state change ([`Node::record`]) and making it durable
//! ([`Node::commit`]).

use crate::audit_log::{AuditError, AuditLog};
use crate::config::{NodeConfig, Role};
use crate::db::{Database, StoreError};
use crate::descriptor::NodeDescriptorInfo;
use crate::error::NodeError;
use crate::events::{EventError, EventOutbox, StoredEvent};
use crate::keys::{
    BankApprovalKey, IdentityKey, KeyError, KeyProvider, ShareSealingKey, StoragePurpose,
};
use crate::staff::auth::{StaffAuthError, StaffGate};
use k256::PublicKey;
use std::sync::Arc;
use std::time::Duration;
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// Wall-clock time in Unix seconds; injected so tests can move time.
pub trait Clock: Send + Sync {
    /// Now, in Unix seconds.
    fn now(&self) -> u64;

    /// How long until `now()` reaches `t` (zero once it has). A clock that knows fractions of a
    /// second says so; this default counts whole seconds.
    fn until(&self, t: u64) -> Duration {
        Duration::from_secs(t.saturating_sub(self.now()))
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        dlocker_proto::time::unix_now()
    }

    fn until(&self, t: u64) -> Duration {
        (std::time::UNIX_EPOCH + Duration::from_secs(t))
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
    }
}

/// Why a node could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A key could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// The WebAuthn relying party settings were refused by webauthn-rs.
    #[error("webauthn settings refused: {0}")]
    Webauthn(String),
    /// The audit log could not be opened.
    #[error("cannot open the audit log: {0}")]
    Audit(#[from] AuditError),
    /// The event outbox could not be opened.
    #[error("cannot open the event outbox: {0}")]
    Events(#[from] EventError),
    /// The accepted bank approval keys are ambiguous.
    #[error("{0}")]
    BankKeys(String),
    /// The staff nonce store could not be opened.
    #[error("cannot open the staff nonce store: {0}")]
    Staff(#[from] StaffAuthError),
}

/// The lock every read-check-write section of the node holds (recovery sessions, epoch
/// transitions, staff changes, sweeps): a tokio mutex within the process and, while it is held,
/// the database's cross-process lock (a PostgreSQL advisory lock), so replicas of the node on one
/// schema take turns as the tasks of one process do and no two of them pass a check on the same
/// old state.
pub(crate) struct NodeLock(dlocker_store::SharedMutex);

impl NodeLock {
    /// Waits for the lock: first this process's turn, then the database's.
    pub(crate) async fn lock(&self) -> Result<dlocker_store::SharedMutexGuard<'_>, NodeError> {
        Ok(self.0.lock().await.map_err(StoreError::from)?)
    }
}

/// A running node's state, shared by every request handler.
pub struct Node {
    pub(crate) config: NodeConfig,
    pub(crate) identity: IdentityKey,
    /// The storage key's share-sealing purpose key (the root key itself is not kept).
    pub(crate) storage_key: ShareSealingKey,
    /// The storage key's purpose key for the document locker's hosted issuer keys.
    pub(crate) locker_sealing_key: zeroize::Zeroizing<[u8; 32]>,
    /// The storage key's purpose key for the customer identity the bank records.
    pub(crate) customer_sealing_key: zeroize::Zeroizing<[u8; 32]>,
    /// The database: every table goes through it.
    pub(crate) db: Database,
    pub(crate) webauthn: Webauthn,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) audit: AuditLog,
    pub(crate) events: EventOutbox,
    /// Bank role only.
    pub(crate) staff_gate: Option<StaffGate>,
    /// Bank role only.
    pub(crate) bank_key: Option<BankApprovalKey>,
    /// Bank role: distinct staff approvals needed (`bank.approvals_required`; a config reload
    /// may change it).
    pub(crate) approvals_required: std::sync::atomic::AtomicU32,
    /// Configured bank approval keys (with the banks they are bound to) plus, on the bank
    /// node, its own.
    pub(crate) bank_keys: crate::recovery::session::BankKeys,
    /// Serialises read-modify-write of recovery state (sessions, epochs, staff, passkey
    /// counters, sweeps), in this process and across replicas on one database.
    pub(crate) recovery_lock: NodeLock,
    /// Per-caller limits on owner ceremonies.
    pub(crate) caller_limits: crate::caller_limits::CallerLimits,
    /// Counters of what is refused without being written down.
    pub(crate) stats: crate::stats::NodeStats,
    /// Places for held calls ([`crate::hold::MAX_HELD_CALLS`]: `GetApproval` waiting for staff,
    /// a passkey reset waiting for its approval, a release waiting for its delay); a caller that
    /// finds none is answered at once, as without a wait.
    pub(crate) held_calls: tokio::sync::Semaphore,
    /// The document locker this node hosts (`[locker] enabled = true`), set once it is open; a
    /// weak reference, since the locker holds the node as its host. A delete that erases the
    /// documents reaches it here.
    pub(crate) locker: std::sync::OnceLock<std::sync::Weak<dlocker_locker::server::Locker>>,
    /// `true` once shutdown begins: calls held open ([`crate::hold`]) answer then, so
    /// they do not hold the shutdown.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.config.name)
            .field("node_id", &self.identity.node_id())
            .finish_non_exhaustive()
    }
}

/// Builds the WebAuthn relying party from validated settings.
pub fn build_webauthn(config: &NodeConfig) -> Result<Webauthn, SetupError> {
    let w = &config.webauthn;
    let (first, rest) = w
        .origins
        .split_first()
        .ok_or_else(|| SetupError::Webauthn("no allowed origin".into()))?;
    let mut b = WebauthnBuilder::new(&w.rp_id, first)
        .map_err(|e| SetupError::Webauthn(e.to_string()))?
        .rp_name(&w.rp_name)
        .timeout(Duration::from_secs(config.limits.ceremony_ttl_secs));
    for o in rest {
        b = b.append_allowed_origin(o);
    }
    b.build().map_err(|e| SetupError::Webauthn(e.to_string()))
}

impl Node {
    /// Assembles a node from its parts.
    pub fn new(
        config: NodeConfig,
        keys: &dyn KeyProvider,
        db: Database,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SetupError> {
        let identity = keys.identity_key()?;
        let storage_root = keys.storage_key()?;
        let storage_key = storage_root.share_sealing_key();
        let locker_sealing_key = storage_root.derive(StoragePurpose::LockerSealing);
        let customer_sealing_key = storage_root.derive(StoragePurpose::CustomerSealing);
        crate::wallet::install_log_tag_key(storage_root.derive(StoragePurpose::LogTag));
        drop(storage_root);
        let webauthn = build_webauthn(&config)?;
        let audit = AuditLog::open(&db, keys.audit_key()?)?;
        let events = EventOutbox::open(&db)?;
        let mut bank_entries: Vec<(PublicKey, Option<String>)> = config
            .recovery
            .bank_approval_keys
            .iter()
            .copied()
            .zip(config.recovery.bank_key_owners.iter().cloned())
            .collect();
        // Staff changed by signed admin requests outlive the config's seed list.
        let managed = crate::staff::roster::load(&db)?;
        let (staff_gate, bank_key) = match (config.role, &config.bank) {
            (Role::Bank, Some(bank)) => {
                let key = keys.bank_approval_key()?;
                let own = *key.public_key();
                bank_entries.retain(|(k, _)| *k != own);
                // Its own key is bound to itself; then another bank's key must be bound too, or
                // it could approve this bank's wallets.
                if bank_entries.iter().any(|(_, owner)| owner.is_none()) {
                    return Err(SetupError::BankKeys(
                        "recovery.bank_approval_keys: a bank node that accepts other banks' keys \
                            must bind each to its bank (\"BANK_NODE_ID=KEY\")"
                            .into(),
                    ));
                }
                bank_entries.push((own, Some(identity.node_id().to_owned())));
                let gate = StaffGate::new(
                    &db,
                    managed
                        .as_ref()
                        .map_or_else(|| bank.staff.clone(), |r| r.staff.clone()),
                    identity.node_id().to_owned(),
                    bank.staff_request_skew_secs,
                )?;
                (Some(gate), Some(key))
            }
            _ => (None, None),
        };
        let caller_limits = crate::caller_limits::CallerLimits::new(
            config.limits.owner_calls_per_minute,
            config.limits.pending_ceremonies_per_caller,
        );
        let approvals_required = match (&config.bank, &managed) {
            (Some(_), Some(r)) => r.approvals_required,
            (Some(b), None) => b.approvals_required,
            (None, _) => 0,
        };
        Ok(Self {
            config,
            identity,
            storage_key,
            locker_sealing_key,
            customer_sealing_key,
            webauthn,
            clock,
            audit,
            events,
            staff_gate,
            bank_key,
            approvals_required: std::sync::atomic::AtomicU32::new(approvals_required),
            bank_keys: crate::recovery::session::BankKeys::new(bank_entries),
            recovery_lock: NodeLock(db.node_lock()),
            db,
            caller_limits,
            stats: crate::stats::NodeStats::default(),
            held_calls: tokio::sync::Semaphore::new(crate::hold::MAX_HELD_CALLS),
            locker: std::sync::OnceLock::new(),
            stopping: tokio::sync::watch::channel(false).0,
        })
    }

    /// Shutdown has begun: calls held open answer now (the server waits for in-flight calls).
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// The bank approval public key (bank role).
    pub fn bank_approval_key(&self) -> Option<&PublicKey> {
        self.bank_key.as_ref().map(|k| k.public_key())
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// The node's counters.
    pub fn stats(&self) -> &crate::stats::NodeStats {
        &self.stats
    }

    /// The event outbox.
    pub fn events(&self) -> &EventOutbox {
        &self.events
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }
    /// The identity key.
    pub fn identity(&self) -> &IdentityKey {
        &self.identity
    }
    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }
    /// Now, by the node's clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }
    /// A place for one owner ceremony `caller` begins (refused while it holds
    /// `limits.pending_ceremonies_per_caller` pending ones); keep it with the nonce issued.
    pub(crate) fn begin_ceremony(
        &self,
        caller: Option<std::net::SocketAddr>,
    ) -> Result<crate::caller_limits::CeremonyPlace<'_>, NodeError> {
        self.caller_limits
            .begin_ceremony(caller, self.now(), self.config.limits.ceremony_ttl_secs)
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
        // The public audit log names a session by its keyed tag: a session id is a capability.
        let audit_detail = if session_id.is_empty() {
            detail.to_owned()
        } else if detail.is_empty() {
            format!("session {}", self.audit.session_tag(session_id))
        } else {
            format!("session {}; {detail}", self.audit.session_tag(session_id))
        };
        self.audit
            .append(now, kind, Some(wallet_id), &audit_detail)?;
        Ok(self
            .events
            .append(now, kind, wallet_id, session_id, detail)?)
    }

    /// Makes everything written so far durable, then tells live watchers.
    pub(crate) async fn commit(&self, events: Vec<StoredEvent>) -> Result<(), NodeError> {
        self.db.flush().await?;
        self.events.announce(events);
        Ok(())
    }

    /// The node's public descriptor.
    pub fn descriptor(&self) -> NodeDescriptorInfo {
        NodeDescriptorInfo::new(&self.config, &self.identity)
            .with_bank_key(self.bank_approval_key())
    }
}

/// What a config reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Settings applied to the running node.
    pub applied: Vec<&'static str>,
    /// Settings that changed in the file but take effect only at the next restart.
    pub needs_restart: Vec<&'static str>,
    /// Settings that changed in the file but are managed elsewhere now (staff and policy, once
    /// changed by a signed staff-admin request).
    pub ignored: Vec<&'static str>,
}

impl Node {
    /// Applies a freshly loaded (and so validated) config to the running node: the bank's staff
    /// list and approval policy take effect at once; every other changed section is reported as
    /// needing a restart (listeners, keys, TLS and limits are fixed when the node starts).
    pub fn reload(&self, new: &NodeConfig) -> ReloadReport {
        let old = &self.config;
        let mut report = ReloadReport::default();
        let mut restart = |changed: bool, what: &'static str| {
            if changed {
                report.needs_restart.push(what);
            }
        };
        restart(old.name != new.name, "node.name");
        restart(old.role != new.role, "node.role");
        restart(old.listen != new.listen, "node.listen");
        restart(old.endpoint != new.endpoint, "node.endpoint");
        restart(
            old.insecure_plaintext != new.insecure_plaintext,
            "node.insecure_plaintext",
        );
        restart(old.limits != new.limits, "[limits]");
        restart(old.webauthn != new.webauthn, "[webauthn]");
        restart(old.tls != new.tls, "[tls]");
        restart(old.recovery != new.recovery, "[recovery]");
        restart(old.epochs != new.epochs, "[epochs]");
        restart(old.locker != new.locker, "[locker]");
        restart(old.housekeeping != new.housekeeping, "[housekeeping]");
        match (&old.bank, &new.bank, &self.staff_gate) {
            (Some(o), Some(n), Some(gate)) => {
                restart(
                    o.approval_ttl_secs != n.approval_ttl_secs,
                    "bank.approval_ttl_secs",
                );
                restart(
                    o.staff_request_skew_secs != n.staff_request_skew_secs,
                    "bank.staff_request_skew_secs",
                );
                let managed = self.staff().roster_is_managed();
                if managed {
                    // Staff-admin requests changed them: the stored roster stays in force.
                    if o.staff != n.staff {
                        report.ignored.push("[[bank.staff]]");
                    }
                    if o.approvals_required != n.approvals_required {
                        report.ignored.push("bank.approvals_required");
                    }
                } else if gate.staff() != n.staff {
                    gate.replace_staff(n.staff.clone());
                    report.applied.push("[[bank.staff]]");
                }
                if !managed && self.staff().approvals_required() != n.approvals_required {
                    self.approvals_required
                        .store(n.approvals_required, std::sync::atomic::Ordering::SeqCst);
                    report.applied.push("bank.approvals_required");
                }
            }
            (None, None, _) => {}
            _ => report.needs_restart.push("[bank]"),
        }
        report
    }
}
