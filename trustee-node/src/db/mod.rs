//! The node's one storage layer: every table name, key format and record codec, and the only
//! module that sees the storage engine (`dlocker-store`: sled, or PostgreSQL per `[storage]`).
//!
//! # On-disk layout
//!
//! One sled database at `DATA_DIR/db` (or one PostgreSQL schema: [`migrations`]), one tree
//! (table) per kind of record. Wallet-keyed tables use the wallet id's
//! UTF-8 bytes ([`wallet_key`]); sequence-keyed tables use the sequence number as 8 bytes
//! big-endian, so key order is sequence order.
//!
//! Each entry: table (the tree's name): key → value; the features that write it.
//!
//! - [`CEREMONIES_TREE`]: ceremony id (UUID text) → [`CeremonyRecord`] JSON; enrollment.
//! - [`WALLETS_TREE`]: wallet id → [`WalletMeta`] JSON (presence = wallet enrolled); enrollment,
//!   epochs.
//! - [`SHARES_TREE`]: wallet id → the share sealed under the storage key ([`crate::at_rest`]);
//!   enrollment, epochs.
//! - [`MANIFESTS_TREE`]: wallet id → the manifest, canonical encoding; enrollment, epochs.
//! - [`PASSKEYS_TREE`]: wallet id → the owner's `webauthn_rs::Passkey` JSON; enrollment, epochs,
//!   recovery, locker.
//! - [`BLOBS_TREE`]: wallet id → the encrypted wallet blob; enrollment, epochs.
//! - [`RECEIPTS_TREE`]: wallet id → the signed receipt, canonical encoding; enrollment, epochs.
//! - [`UNCONFIRMED_TREE`]: wallet id → when its deposit was stored (u64 big-endian), while the
//!   client has not confirmed the backup complete (`ConfirmBackup`); enrollment, housekeeping.
//! - [`CUSTOMERS_TREE`]: wallet id → bank role: the customer identity, sealed
//!   ([`crate::at_rest::seal_customer`]); enrollment.
//! - [`NODE_META_TREE`]: `key-binding` → JSON: node id and key check values of the keys that wrote
//!   this database ([`crate::startup`]); startup. `audit-head` and `events-head` → the last
//!   sequence number (and hash) of the audit log and the event outbox ([`SeqLog`]); audit log,
//!   event outbox.
//! - [`SESSIONS_TREE`]: session id (hex) → [`StoredSession`] JSON; recovery, staff.
//! - [`SESSION_INDEX_TREE`]: [`session_index_prefix`]`(wallet)` ‖ session id → session id;
//!   recovery.
//! - [`EPOCHS_TREE`]: wallet id → [`EpochState`] JSON (absent = enrolled and never rotated, or
//!   unknown); epochs.
//! - [`STAGED_TREE`]: wallet id → [`StagedRecord`], codec-encoded (version 1); epochs.
//! - [`RETIRED_TREE`]: the audit log's wallet tag (an HMAC, not the wallet id) → the
//!   `RetireReceipt` issued; epochs.
//! - [`OWNER_NONCES_TREE`]: nonce (32 bytes) → [`NonceRecord`] JSON; owner ceremonies. Also
//!   SHA-256 of a spent `PasskeyResetApproval` → a used [`NonceRecord`] with the approval's
//!   expiry (single use; swept with the nonces); passkey reset.
//! - [`PASSKEY_RESETS_TREE`]: bank role: reset request id (hex) → [`PasskeyResetRecord`] JSON;
//!   passkey reset, staff.
//! - [`STAFF_NONCES_TREE`]: staff request nonce → timestamp, u64 big-endian; staff.
//! - [`STAFF_ROSTER_TREE`]: `current` → the managed staff roster, JSON ([`crate::staff::admin`]);
//!   staff.
//! - [`AUDIT_TREE`]: sequence number → [`crate::audit_log::StoredEntry`] JSON (hash-chained); audit
//!   log.
//! - [`EVENTS_TREE`]: sequence number → [`crate::events::StoredEvent`] JSON; event outbox.
//! - `locker`: see `dlocker_locker::server::store` → the document locker's records; locker.
//!
//! # Transactions and durability
//!
//! A change that touches several records is one [`Batch`]: a list of typed puts and removes
//! plus preconditions, applied atomically by [`Database::apply`]. A batch is a plain value, so a
//! backend may run it again when its transaction conflicts (sled retries internally; a SQL backend
//! would retry on a serialization failure). Reads of a whole wallet go through a transaction so
//! nobody sees half a deposit. Callers flush ([`Database::flush`]) before acknowledging a write.
//!
//! Listings are returned in a stated order (key order: session id, sequence number) or as
//! unordered sets; callers never rely on the engine's iteration order beyond what a function
//! documents. The audit log and the event outbox are [`SeqLog`]s: gap-free (audit) or
//! never-reused (events) monotonic sequence numbers, each record appended in one transaction
//! that reads and advances the log's head record, so processes sharing the database (replicas
//! on PostgreSQL) append to one log and never fork it.
//!
//! # Backends
//!
//! Features use only the inherent methods of [`Database`], [`Batch`] and [`SeqLog`], and the
//! record types defined here; no type of the engine crosses this module's boundary (the document
//! locker's own store is opened through [`Database::open_locker`]). Below, `dlocker-store` runs
//! the same tables on sled or as SQL tables with the same keys in a PostgreSQL schema
//! ([`migrations`]); there every write is committed when its call returns and
//! [`Database::flush`] has nothing left to do.
//!
//! Group commit: [`Database::flush`] lets concurrent callers share one sled flush. A caller
//! returns only after a flush that *started after its call* has completed, so its writes are
//! durable; callers that arrive while a flush is running wait for it, then one of them flushes
//! for all of them. A flush is never skipped, only shared.
//!
//! The flush itself is sled's blocking `flush` on a tokio blocking thread, not `flush_async`:
//! sled 0.34 runs `flush_async` on its global thread pool, where the flush waits for a log write
//! queued to that same pool, so about seven concurrent calls in one process (several nodes in
//! one test process count together) block every pool thread and the process hangs (found by
//! `dlocker-bench`; see docs/performance.md).
//!
//! Tests that need to corrupt a stored share open the database with sled while the node is
//! stopped and flip a byte of `SHARES_TREE[wallet_id]`; there is deliberately no server-side hook.

mod batch;
mod epochs;
mod logs;
pub mod migrate;
pub mod migrations;
mod nonces;
mod recovery;
mod resets;
pub mod stats;
mod wallets;

pub use batch::{Applied, Batch};
pub use epochs::StagedRecord;
pub use logs::{Head, SeqLog, SeqLogError};
pub use nonces::{NonceRecord, NonceSnapshot};
pub use recovery::{StoredSession, session_index_prefix};
pub use resets::PasskeyResetRecord;
pub use wallets::{CeremonyRecord, CeremonyState, CommitOutcome, WalletMeta, WalletRecord};

use crate::epochs::state::EpochState;
use dlocker_store::{Store, Tree};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

/// Open passkey ceremonies.
pub const CEREMONIES_TREE: &str = "ceremonies";
/// Per-wallet metadata; a key here means the wallet is enrolled.
pub const WALLETS_TREE: &str = "wallets";
/// Sealed shares.
pub const SHARES_TREE: &str = "shares";
/// Manifests.
pub const MANIFESTS_TREE: &str = "manifests";
/// Owner passkeys.
pub const PASSKEYS_TREE: &str = "passkeys";
/// Encrypted wallet blobs.
pub const BLOBS_TREE: &str = "blobs";
/// Signed receipts.
pub const RECEIPTS_TREE: &str = "receipts";
/// Wallet id → deposit time, for backups not yet confirmed complete.
pub const UNCONFIRMED_TREE: &str = "unconfirmed_backups";
/// Bank role: wallet id → the customer identity recorded at enrollment, sealed under the
/// storage key's customer-sealing purpose key.
pub const CUSTOMERS_TREE: &str = "customers";
/// Node metadata: which keys this database belongs to.
pub const NODE_META_TREE: &str = "node_meta";
/// Session id → [`StoredSession`].
pub const SESSIONS_TREE: &str = "recovery_sessions";
/// `len(wallet) ‖ wallet ‖ session id` → session id.
pub const SESSION_INDEX_TREE: &str = "recovery_by_wallet";
/// Wallet id → [`EpochState`] (JSON).
pub const EPOCHS_TREE: &str = "epochs";
/// Wallet id → the staged epoch's record.
pub const STAGED_TREE: &str = "epoch_staged";
/// Wallet tag (HMAC) → the `RetireReceipt` of a wallet this node left.
pub const RETIRED_TREE: &str = "epoch_retired";
/// Owner ceremony nonces.
pub const OWNER_NONCES_TREE: &str = "owner_nonces";
/// Bank role: passkey reset requests awaiting (or holding) the staff's approval.
pub const PASSKEY_RESETS_TREE: &str = "passkey_resets";
/// Nonces of staff requests already accepted.
pub const STAFF_NONCES_TREE: &str = "staff_nonces";
/// The managed staff roster.
pub const STAFF_ROSTER_TREE: &str = "staff_roster";
/// The hash-chained audit log.
pub const AUDIT_TREE: &str = "audit";
/// The event outbox.
pub const EVENTS_TREE: &str = "events";

/// Every table of the node (the document locker's tree aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Table {
    Ceremonies,
    Wallets,
    Shares,
    Manifests,
    Passkeys,
    Blobs,
    Receipts,
    Unconfirmed,
    Customers,
    NodeMeta,
    Sessions,
    SessionIndex,
    Epochs,
    Staged,
    Retired,
    OwnerNonces,
    PasskeyResets,
    StaffNonces,
    StaffRoster,
    Audit,
    Events,
}

impl Table {
    const ALL: [Table; 21] = [
        Table::Ceremonies,
        Table::Wallets,
        Table::Shares,
        Table::Manifests,
        Table::Passkeys,
        Table::Blobs,
        Table::Receipts,
        Table::Unconfirmed,
        Table::Customers,
        Table::NodeMeta,
        Table::Sessions,
        Table::SessionIndex,
        Table::Epochs,
        Table::Staged,
        Table::Retired,
        Table::OwnerNonces,
        Table::PasskeyResets,
        Table::StaffNonces,
        Table::StaffRoster,
        Table::Audit,
        Table::Events,
    ];

    /// The tree's name on disk.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Table::Ceremonies => CEREMONIES_TREE,
            Table::Wallets => WALLETS_TREE,
            Table::Shares => SHARES_TREE,
            Table::Manifests => MANIFESTS_TREE,
            Table::Passkeys => PASSKEYS_TREE,
            Table::Blobs => BLOBS_TREE,
            Table::Receipts => RECEIPTS_TREE,
            Table::Unconfirmed => UNCONFIRMED_TREE,
            Table::Customers => CUSTOMERS_TREE,
            Table::NodeMeta => NODE_META_TREE,
            Table::Sessions => SESSIONS_TREE,
            Table::SessionIndex => SESSION_INDEX_TREE,
            Table::Epochs => EPOCHS_TREE,
            Table::Staged => STAGED_TREE,
            Table::Retired => RETIRED_TREE,
            Table::OwnerNonces => OWNER_NONCES_TREE,
            Table::PasskeyResets => PASSKEY_RESETS_TREE,
            Table::StaffNonces => STAFF_NONCES_TREE,
            Table::StaffRoster => STAFF_ROSTER_TREE,
            Table::Audit => AUDIT_TREE,
            Table::Events => EVENTS_TREE,
        }
    }
}

/// The name of every table of the node, the document locker's included (tools and tests that
/// walk a stopped node's database).
pub fn table_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Table::ALL.iter().map(|t| t.name()).collect();
    names.push(dlocker_locker::server::store::LOCKER_TREE);
    names
}

/// The key of a wallet's records in every wallet table.
pub fn wallet_key(wallet_id: &str) -> &[u8] {
    wallet_id.as_bytes()
}

/// The key of a record found by a listing, to remove it in a [`Batch`] (opaque: it is only
/// ever handed back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(pub(crate) Vec<u8>);

/// A failure of the database engine itself (I/O, corruption it detects, a database server
/// that does not answer).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EngineError(#[from] dlocker_store::Error);

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] EngineError),
    /// Another process serves this database.
    #[error("{0}")]
    InUse(String),
    /// A stored record does not decode, or a deposit is incomplete.
    #[error("corrupt record in {tree}: {reason}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl From<dlocker_store::Error> for StoreError {
    fn from(e: dlocker_store::Error) -> Self {
        StoreError::Db(EngineError(e))
    }
}

pub(crate) fn corrupt(tree: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree,
        reason: reason.to_string(),
    }
}

pub(crate) fn to_json<T: Serialize>(tree: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| corrupt(tree, e))
}

pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(tree, e))
}

/// Shared flushes (see the module docs).
#[derive(Debug)]
struct GroupCommit {
    /// How many flushes have started; a flush's number is the value after its start.
    started: std::sync::atomic::AtomicU64,
    /// The number of the last flush that completed successfully. Held while flushing, so one
    /// flush runs at a time and the others queue behind it.
    completed: tokio::sync::Mutex<u64>,
    /// Seconds each sled flush took (the admin listener's `/metrics`).
    flush_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            started: Default::default(),
            completed: Default::default(),
            flush_seconds: prometheus_client::metrics::histogram::Histogram::new(
                crate::stats::latency_buckets(),
            ),
        }
    }
}

impl GroupCommit {
    async fn flush(&self, db: &Store) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        // Every write of this caller happened before this load.
        let arrived = self.started.load(SeqCst);
        let mut completed = self.completed.lock().await;
        // Flush number `arrived + 1` or later started after the load above, so it covered
        // this caller's writes.
        if *completed > arrived {
            return Ok(());
        }
        let number = self.started.fetch_add(1, SeqCst) + 1;
        let db = db.clone();
        let start = std::time::Instant::now();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| corrupt("(flush)", format!("flush task failed: {e}")))??;
        self.flush_seconds.observe(start.elapsed().as_secs_f64());
        *completed = number;
        Ok(())
    }
}

/// The node's database: cheap to clone (every clone is the same database).
#[derive(Clone)]
pub struct Database {
    db: Store,
    group: Arc<GroupCommit>,
    /// Ceremony records, counted at open, on insert and by each sweep: `sled::Tree::len` walks
    /// the whole tree, and `BeginEnrollment` asks for the count every time (a completed
    /// ceremony stays until it expires, so at a few hundred deposits a second the tree holds
    /// ~10⁵ records and `len` cost tens of ms — found by `dlocker-bench`). Writers that bypass
    /// [`Database::put_ceremony`] (a completing transaction) only overwrite, or are recounted
    /// by the next sweep.
    ceremony_count: Arc<AtomicUsize>,
    tables: Arc<Vec<Tree>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (creating if needed) the database at `path`, e.g. `DIR/db`, and every table.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::from_engine(Store::open_sled(path)?)
    }

    /// Connects to the PostgreSQL schema in `config`, applying pending [`migrations::ALL`], and
    /// takes the schema's serving lock shared: any number of replicas of this node may serve the
    /// schema together (everything they share is in it; see docs/operating-a-node.md), but not
    /// while a tool holds it exclusively ([`Database::open_postgres_alone`]).
    pub fn open_postgres(config: &dlocker_store::PgConfig) -> Result<Self, StoreError> {
        Self::open_postgres_locked(config, false)
    }

    /// Like [`Database::open_postgres`], with the serving lock taken exclusively: refused while
    /// any node process serves the schema, and none can start until this database is dropped
    /// (`trustee-node migrate`).
    pub fn open_postgres_alone(config: &dlocker_store::PgConfig) -> Result<Self, StoreError> {
        Self::open_postgres_locked(config, true)
    }

    fn open_postgres_locked(
        config: &dlocker_store::PgConfig,
        exclusive: bool,
    ) -> Result<Self, StoreError> {
        let store = Store::open_postgres(config, migrations::ALL)?;
        if !store.hold_serving_lock(exclusive)? {
            return Err(StoreError::InUse(if exclusive {
                format!(
                    "another trustee-node process serves PostgreSQL schema {}: stop every \
                     process on it first",
                    config.schema
                )
            } else {
                format!(
                    "PostgreSQL schema {} is held by a tool (trustee-node migrate): start the node \
                     when it is done",
                    config.schema
                )
            }));
        }
        Self::from_engine(store)
    }

    fn from_engine(db: Store) -> Result<Self, StoreError> {
        let tables = Table::ALL
            .iter()
            .map(|t| db.tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let ceremonies = tables[Table::Ceremonies as usize].len()?;
        Ok(Self {
            db,
            group: Arc::default(),
            ceremony_count: Arc::new(ceremonies.into()),
            tables: Arc::new(tables),
        })
    }

    /// A database in a temporary directory, removed when dropped (tests and fuzzing).
    pub fn open_temporary() -> Result<Self, StoreError> {
        Self::from_engine(Store::sled_temporary()?)
    }

    /// The engine this database runs on.
    pub fn backend(&self) -> dlocker_store::Backend {
        self.db.backend()
    }

    pub(crate) fn t(&self, t: Table) -> &Tree {
        &self.tables[t as usize]
    }

    /// Makes every write so far durable (group commit: see the module docs).
    pub async fn flush(&self) -> Result<(), StoreError> {
        // On PostgreSQL every write committed before its call returned.
        if self.db.backend() == dlocker_store::Backend::Postgres {
            return Ok(());
        }
        self.group.flush(&self.db).await
    }

    /// Makes every write so far durable, blocking the thread (startup only).
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// The histogram of flush durations.
    pub fn flush_histogram(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.group.flush_seconds.clone()
    }

    /// How many flushes have started (tests of the group commit).
    #[cfg(test)]
    pub(crate) fn flushes_started(&self) -> u64 {
        self.group.started.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The engine itself, for the benchmark that measures raw sled against the node.
    #[cfg(feature = "bench")]
    pub fn engine(&self) -> Option<&sled::Db> {
        self.db.sled()
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Whether the database answers a read (the admin listener's readiness check).
    pub fn check_readable(&self) -> Result<(), StoreError> {
        self.t(Table::NodeMeta).first()?;
        Ok(())
    }

    /// How many wallets are enrolled (walks the table; 0 if the database fails).
    pub fn wallet_count(&self) -> usize {
        self.t(Table::Wallets).len().unwrap_or(0)
    }

    /// How many staged epochs exist (walks the table; 0 if the database fails).
    pub fn staged_count(&self) -> usize {
        self.t(Table::Staged).len().unwrap_or(0)
    }

    /// The record under `key` in the node metadata table, JSON-decoded.
    pub fn node_meta<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.t(Table::NodeMeta)
            .get(key.as_bytes())?
            .map(|v| from_json(NODE_META_TREE, &v))
            .transpose()
    }

    /// Writes `value` under `key` in the node metadata table (not yet durable).
    pub fn put_node_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.t(Table::NodeMeta)
            .insert(key.as_bytes(), &to_json(NODE_META_TREE, value)?)?;
        Ok(())
    }

    /// The managed staff roster record, if staff were ever changed by a signed request.
    pub fn roster<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, StoreError> {
        self.t(Table::StaffRoster)
            .get(ROSTER_KEY)?
            .map(|v| from_json(STAFF_ROSTER_TREE, &v))
            .transpose()
    }

    /// Whether a managed roster is stored.
    pub fn has_roster(&self) -> bool {
        self.t(Table::StaffRoster)
            .contains_key(ROSTER_KEY)
            .unwrap_or(false)
    }

    /// Replaces the managed staff roster (not yet durable).
    pub fn put_roster<T: Serialize>(&self, roster: &T) -> Result<(), StoreError> {
        self.t(Table::StaffRoster)
            .insert(ROSTER_KEY, &to_json(STAFF_ROSTER_TREE, roster)?)?;
        Ok(())
    }

    /// The bank customer identity sealed at enrollment.
    pub fn customer(&self, wallet_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.t(Table::Customers).get(wallet_key(wallet_id))?)
    }

    /// Records the bank customer identity of a wallet (not yet durable).
    pub fn put_customer(&self, wallet_id: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.t(Table::Customers)
            .insert(wallet_key(wallet_id), sealed)?;
        Ok(())
    }

    /// The wallet's persisted epoch state, if it was ever rotated.
    pub fn epoch_state(&self, wallet_id: &str) -> Result<Option<EpochState>, StoreError> {
        self.t(Table::Epochs)
            .get(wallet_key(wallet_id))?
            .map(|v| from_json(EPOCHS_TREE, &v))
            .transpose()
    }

    /// The wallet's metadata, if it is enrolled (one key lookup).
    pub fn wallet_meta(&self, wallet_id: &str) -> Result<Option<WalletMeta>, StoreError> {
        self.t(Table::Wallets)
            .get(wallet_key(wallet_id))?
            .map(|v| from_json(WALLETS_TREE, &v))
            .transpose()
    }

    /// The wallet's stored passkey JSON.
    pub fn passkey_json(&self, wallet_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.t(Table::Passkeys).get(wallet_key(wallet_id))?)
    }

    /// Replaces the wallet's stored passkey JSON (not yet durable).
    pub fn put_passkey_json(&self, wallet_id: &str, json: &[u8]) -> Result<(), StoreError> {
        self.t(Table::Passkeys)
            .insert(wallet_key(wallet_id), json)?;
        Ok(())
    }

    /// The document locker's store, in its own tree of this database.
    pub fn open_locker(
        &self,
        host: Arc<dyn dlocker_locker::server::LockerHost>,
        keys: dlocker_locker::server::LockerKeys,
        settings: dlocker_locker::server::LockerSettings,
    ) -> Result<Arc<dlocker_locker::server::Locker>, String> {
        dlocker_locker::server::Locker::open(&self.db, host, keys, settings)
            .map_err(|e| e.to_string())
    }

    /// The [`SeqLog`] of the audit log.
    pub fn audit_log(&self) -> SeqLog {
        SeqLog::new(
            self.db.clone(),
            self.t(Table::Audit).clone(),
            self.t(Table::NodeMeta).clone(),
            AUDIT_HEAD_KEY,
        )
    }

    /// The [`SeqLog`] of the event outbox.
    pub fn event_log(&self) -> SeqLog {
        SeqLog::new(
            self.db.clone(),
            self.t(Table::Events).clone(),
            self.t(Table::NodeMeta).clone(),
            EVENTS_HEAD_KEY,
        )
    }

    /// The lock that serialises the node's read-check-write sections (recovery sessions,
    /// epochs, staff, sweeps) across every replica on this database; see
    /// [`dlocker_store::SharedMutex`].
    pub fn node_lock(&self) -> dlocker_store::SharedMutex {
        self.db.shared_mutex("node")
    }
}

/// The audit log's head (its last sequence number and hash) in [`NODE_META_TREE`].
pub(crate) const AUDIT_HEAD_KEY: &[u8] = b"audit-head";
/// The event outbox's last sequence number in [`NODE_META_TREE`].
pub(crate) const EVENTS_HEAD_KEY: &[u8] = b"events-head";

/// The roster's key in [`STAFF_ROSTER_TREE`].
pub(crate) const ROSTER_KEY: &[u8] = b"current";

/// Raw access for unit tests that damage a stopped node's records.
#[cfg(test)]
impl Database {
    fn table_named(&self, tree: &str) -> &Tree {
        let t = Table::ALL
            .iter()
            .find(|t| t.name() == tree)
            .unwrap_or_else(|| panic!("no table {tree}"));
        self.t(*t)
    }

    /// The raw value under `key` in the table named `tree`.
    pub(crate) fn raw_get(&self, tree: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.table_named(tree).get(key).expect("read")
    }

    /// Overwrites the raw value under `key` in the table named `tree`.
    pub(crate) fn raw_put(&self, tree: &str, key: &[u8], value: Vec<u8>) {
        self.table_named(tree).insert(key, &value).expect("write");
    }
}
