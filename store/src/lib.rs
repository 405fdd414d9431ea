//! dLocker's storage engine: ordered key-value tables ("trees") with atomic multi-table
//! transactions, on one of two backends.
//!
//! - **sled** (the default): embedded, one directory, zero setup. Writes become durable at
//!   [`Store::flush`].
//! - **PostgreSQL**: one SQL table per tree (`k BYTEA PRIMARY KEY, v BYTEA NOT NULL`) in a schema
//!   of its own, so several nodes can share one database and several replicas of one node can
//!   share one schema. Every write is durable when its call returns (it committed); transactions
//!   run at `SERIALIZABLE` and are retried on serialization failures.
//!
//! The API is deliberately the small part of sled's that both backends can honour exactly: point
//! reads and writes, compare-and-swap, ordered range reads returned as vectors (callers never hold
//! an engine iterator), and transactions given as a closure that may run more than once.
//! Keys are ordered bytewise on both backends (sled's order; `bytea` compares with `memcmp`).
//!
//! Callers above this crate see no type of either engine: the node's `db` module and the document
//! locker's store are written once against [`Store`], [`Tree`] and [`Tx`].

mod blocking;
mod pg;
mod sled_engine;

pub use pg::{Migration, PgConfig, PgTls, is_identifier};

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

/// A storage failure. Messages never carry keys or values: only the engine's own description.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedded engine failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// PostgreSQL refused or failed a statement. `code` is the SQLSTATE when the server sent one.
    #[error("postgres{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Postgres {
        /// The SQLSTATE.
        code: Option<String>,
        /// The server's primary message (never its DETAIL, which can quote a key).
        message: String,
    },
    /// TLS to PostgreSQL is misconfigured (its CA file, or a connection string asking for TLS
    /// without one).
    #[error("postgres TLS: {0}")]
    Tls(String),
    /// No connection could be taken from the pool in time.
    #[error("postgres connection pool: {0}")]
    Pool(String),
    /// The database's schema is not one this build can use.
    #[error("database schema: {0}")]
    Schema(String),
    /// A tree that the schema does not define.
    #[error("unknown table {0}")]
    UnknownTable(String),
    /// A transaction touched a tree it did not declare.
    #[error("transaction used table {0} without declaring it")]
    Undeclared(&'static str),
    /// A transaction kept conflicting with concurrent ones.
    #[error("transaction gave up after {0} serialization conflicts")]
    Conflicts(u32),
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Error::Postgres {
                code: Some(db.code().code().to_string()),
                message: db.message().to_string(),
            },
            // The driver's own message is generic ("error performing TLS handshake"): the cause
            // is what the operator needs (an unknown CA, a name the certificate lacks).
            None => Error::Postgres {
                code: e.code().map(|c| c.code().to_string()),
                message: match std::error::Error::source(&e) {
                    Some(cause) => format!("{e}: {cause}"),
                    None => e.to_string(),
                },
            },
        }
    }
}

/// Which engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded sled.
    Sled,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The name used in configuration files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres => "postgres",
        }
    }
}

enum Engine {
    Sled(sled::Db),
    Postgres(Arc<pg::PgEngine>),
}

/// A database: cheap to clone; every clone is the same database.
#[derive(Clone)]
pub struct Store(Arc<Engine>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Store").field(&self.backend()).finish()
    }
}

/// How long [`Store::open_sled`] waits for a sled database whose lock is still held.
pub const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Store {
    /// Opens (creating if needed) a sled database at `path`.
    ///
    /// sled lets go of its file lock only when its background flusher drops its handle, a
    /// moment after the last handle of an earlier open closed: a node restarted in the same
    /// process right after it stopped would lose that race. So a lock conflict is tried again
    /// for up to [`SLED_LOCK_WAIT`]; a database another running process holds is refused after
    /// that.
    pub fn open_sled(path: &Path) -> Result<Self, Error> {
        let deadline = std::time::Instant::now() + SLED_LOCK_WAIT;
        loop {
            match sled::Config::new().path(path).open() {
                Ok(db) => return Ok(Self(Arc::new(Engine::Sled(db)))),
                // sled 0.34 reports the conflict as an I/O error of kind `Other` with this text.
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A store over a sled database opened by the caller (tools that open it their own way).
    pub fn from_sled(db: sled::Db) -> Self {
        Self(Arc::new(Engine::Sled(db)))
    }

    /// A sled database in a temporary directory, removed when dropped (tests).
    pub fn sled_temporary() -> Result<Self, Error> {
        Ok(Self(Arc::new(Engine::Sled(
            sled::Config::new().temporary(true).open()?,
        ))))
    }

    /// Connects to PostgreSQL, creates the configured schema if needed, applies the pending
    /// `migrations` (in one transaction, under an advisory lock, so replicas starting together
    /// apply each once) and refuses a schema newer than the newest migration given.
    pub fn open_postgres(config: &PgConfig, migrations: &[Migration]) -> Result<Self, Error> {
        let engine = blocking::run(|| pg::PgEngine::open(config, migrations))?;
        Ok(Self(Arc::new(Engine::Postgres(Arc::new(engine)))))
    }

    /// PostgreSQL: takes this schema's serving lock, held while the store lives (a session
    /// advisory lock, so it also goes when the process dies): shared by the replicas serving the
    /// schema, `exclusive` for a tool that must be alone on it (a migration into the schema);
    /// `false` when it is held in a conflicting mode. sled locks its directory itself: always
    /// `true`.
    pub fn hold_serving_lock(&self, exclusive: bool) -> Result<bool, Error> {
        match &*self.0 {
            Engine::Sled(_) => Ok(true),
            Engine::Postgres(pg) => blocking::run(|| pg.hold_serving_lock(exclusive)),
        }
    }

    /// A lock that serialises a critical section across every process on this database, named
    /// `name` (see [`CrossProcessLock`]).
    pub fn cross_process_lock(&self, name: &str) -> CrossProcessLock {
        CrossProcessLock(match &*self.0 {
            Engine::Sled(_) => None,
            Engine::Postgres(pg) => Some(pg.advisory_lock(name)),
        })
    }

    /// A mutex for the tasks of this process that also holds the [`CrossProcessLock`] `name`
    /// while it is held, so the processes on this database take turns too (see [`SharedMutex`]).
    pub fn shared_mutex(&self, name: &str) -> SharedMutex {
        SharedMutex(tokio::sync::Mutex::new(self.cross_process_lock(name)))
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        match &*self.0 {
            Engine::Sled(_) => Backend::Sled,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    /// The tree `name`: opened (created) on sled; on PostgreSQL it must be a table of the schema.
    pub fn tree(&self, name: &'static str) -> Result<Tree, Error> {
        let inner = match &*self.0 {
            Engine::Sled(db) => TreeInner::Sled(db.open_tree(name)?),
            Engine::Postgres(pg) => TreeInner::Pg(pg.tree(name)?),
        };
        Ok(Tree { name, inner })
    }

    /// Makes every write so far durable, blocking the thread. On PostgreSQL every write already
    /// is (it committed before its call returned), so this does nothing.
    pub fn flush(&self) -> Result<(), Error> {
        match &*self.0 {
            Engine::Sled(db) => {
                db.flush()?;
                Ok(())
            }
            Engine::Postgres(_) => Ok(()),
        }
    }

    /// Bytes the database takes (sled: on disk; PostgreSQL: the schema's tables and indexes).
    pub fn size_on_disk(&self) -> Result<u64, Error> {
        match &*self.0 {
            Engine::Sled(db) => Ok(db.size_on_disk()?),
            Engine::Postgres(pg) => blocking::run(|| pg.size()),
        }
    }

    /// The sled database itself, for benchmarks that compare the node with raw sled.
    pub fn sled(&self) -> Option<&sled::Db> {
        match &*self.0 {
            Engine::Sled(db) => Some(db),
            Engine::Postgres(_) => None,
        }
    }

    /// Runs `f` atomically over the declared `trees`: either all its writes happen or none.
    /// `f` may run more than once (conflicts are retried), so it must only read and write
    /// through `tx` and compute from what it reads. `Err(TxAbort::Abort(e))` rolls back and
    /// returns `Ok(Err(e))`.
    pub fn transaction<T: Send, E: Send>(
        &self,
        trees: &[&Tree],
        f: impl Fn(&mut Tx<'_>) -> Result<T, TxAbort<E>> + Sync,
    ) -> Result<Result<T, E>, Error> {
        match &*self.0 {
            Engine::Sled(_) => sled_engine::transaction(trees, f),
            Engine::Postgres(pg) => blocking::run(|| pg.transaction(trees, &f)),
        }
    }
}

/// A mutual-exclusion lock across processes sharing one database.
///
/// PostgreSQL: a session advisory lock (named per schema) on a connection of its own, so
/// replicas serving one schema take turns; a process that dies loses its connection and with it
/// the lock; a wait longer than 30 s fails. sled: one process owns the directory, so this lock
/// does nothing (callers serialise within their process themselves).
///
/// It is not re-entrant and does not serialise the threads of one process: the caller keeps it
/// behind its own mutex and calls [`CrossProcessLock::acquire`] / [`CrossProcessLock::release`]
/// in pairs while holding that mutex.
pub struct CrossProcessLock(Option<pg::AdvisoryLock>);

impl std::fmt::Debug for CrossProcessLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossProcessLock")
            .field("postgres", &self.0.is_some())
            .finish()
    }
}

impl CrossProcessLock {
    /// Waits for the lock (blocking the thread; see the crate's `blocking` note).
    pub fn acquire(&mut self) -> Result<(), Error> {
        match &mut self.0 {
            None => Ok(()),
            Some(l) => blocking::run(|| l.acquire()),
        }
    }

    /// Lets go of the lock (if that fails, the session is closed, which lets go of it too).
    pub fn release(&mut self) {
        if let Some(l) = &mut self.0 {
            blocking::run(|| l.release());
        }
    }
}

/// A mutex for read-check-write sections that must be exclusive across every process on the
/// database (replicas of a node on one PostgreSQL schema): the tasks of this process queue on a
/// tokio mutex, and the one holding it also holds the [`CrossProcessLock`]. On sled it is just
/// the tokio mutex.
#[derive(Debug)]
pub struct SharedMutex(tokio::sync::Mutex<CrossProcessLock>);

/// A held [`SharedMutex`]; dropping it lets go of both locks.
#[derive(Debug)]
pub struct SharedMutexGuard<'a>(tokio::sync::MutexGuard<'a, CrossProcessLock>);

impl SharedMutex {
    /// Waits for this process's turn, then for the database's.
    pub async fn lock(&self) -> Result<SharedMutexGuard<'_>, Error> {
        let mut held = self.0.lock().await;
        held.acquire()?;
        Ok(SharedMutexGuard(held))
    }
}

impl Drop for SharedMutexGuard<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// One ordered table of byte keys and byte values.
#[derive(Clone)]
pub struct Tree {
    name: &'static str,
    inner: TreeInner,
}

#[derive(Clone)]
enum TreeInner {
    Sled(sled::Tree),
    Pg(pg::PgTree),
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tree").field(&self.name).finish()
    }
}

/// One entry of a listing.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The first key after every key that starts with `prefix` (`None`: there is none): the
/// exclusive end of a [`Tree::range`] over the prefix.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Tree {
    /// The tree's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match &self.inner {
            TreeInner::Sled(t) => Ok(t.get(key)?.map(|v| v.to_vec())),
            TreeInner::Pg(t) => blocking::run(|| t.get(key)),
        }
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &[u8]) -> Result<bool, Error> {
        match &self.inner {
            TreeInner::Sled(t) => Ok(t.contains_key(key)?),
            TreeInner::Pg(t) => blocking::run(|| t.get(key)).map(|v| v.is_some()),
        }
    }

    /// Writes `value` under `key`; `true` if it replaced a value.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        match &self.inner {
            TreeInner::Sled(t) => Ok(t.insert(key, value)?.is_some()),
            TreeInner::Pg(t) => blocking::run(|| t.insert(key, value)),
        }
    }

    /// Removes `key`; `true` if it had a value.
    pub fn remove(&self, key: &[u8]) -> Result<bool, Error> {
        match &self.inner {
            TreeInner::Sled(t) => Ok(t.remove(key)?.is_some()),
            TreeInner::Pg(t) => blocking::run(|| t.remove(key)),
        }
    }

    /// Sets `key` to `new` (`None`: removes it) only if its value is `old` (`None`: absent);
    /// `true` if it did.
    pub fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        match &self.inner {
            TreeInner::Sled(t) => Ok(t.compare_and_swap(key, old, new)?.is_ok()),
            TreeInner::Pg(t) => blocking::run(|| t.compare_and_swap(key, old, new)),
        }
    }

    /// Entries with `start <= key < end` (a `None` bound is open), in key order, at most
    /// `limit`.
    pub fn range(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        match &self.inner {
            TreeInner::Sled(t) => {
                let lo = start.map_or(Bound::Unbounded, Bound::Included);
                let hi = end.map_or(Bound::Unbounded, Bound::Excluded);
                t.range::<&[u8], _>((lo, hi))
                    .take(limit)
                    .map(|r| {
                        r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                            .map_err(Error::from)
                    })
                    .collect()
            }
            TreeInner::Pg(t) => blocking::run(|| t.range(start, end, limit)),
        }
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, Error> {
        self.range(Some(prefix), prefix_end(prefix).as_deref(), usize::MAX)
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> Result<Vec<Entry>, Error> {
        self.range(None, None, usize::MAX)
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Result<Option<Entry>, Error> {
        Ok(self.range(None, None, 1)?.pop())
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Result<Option<Entry>, Error> {
        match &self.inner {
            TreeInner::Sled(t) => Ok(t.last()?.map(|(k, v)| (k.to_vec(), v.to_vec()))),
            TreeInner::Pg(t) => blocking::run(|| t.last()),
        }
    }

    /// How many entries (walks the tree on sled; `count(*)` on PostgreSQL).
    pub fn len(&self) -> Result<usize, Error> {
        match &self.inner {
            TreeInner::Sled(t) => Ok(t.len()),
            TreeInner::Pg(t) => blocking::run(|| t.len()),
        }
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.first()?.is_none())
    }

    /// Applies puts (`Some`) and removes (`None`) to this tree atomically.
    pub fn apply_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), Error> {
        match &self.inner {
            TreeInner::Sled(t) => {
                let mut batch = sled::Batch::default();
                for (k, v) in ops {
                    match v {
                        Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                        None => batch.remove(k.as_slice()),
                    }
                }
                t.apply_batch(batch)?;
                Ok(())
            }
            TreeInner::Pg(t) => blocking::run(|| t.apply_batch(ops)),
        }
    }
}

/// Why a transaction closure stopped.
#[derive(Debug)]
pub enum TxAbort<E> {
    /// The caller's own reason: roll back and return it.
    Abort(E),
    /// The engine failed (or asks for a retry): propagate it with `?`.
    Engine(TxError),
}

impl<E> From<TxError> for TxAbort<E> {
    fn from(e: TxError) -> Self {
        TxAbort::Engine(e)
    }
}

/// An engine failure inside a transaction; only meant to be propagated with `?`.
#[derive(Debug)]
pub struct TxError(TxErrorKind);

#[derive(Debug)]
enum TxErrorKind {
    Sled(sled::transaction::UnabortableTransactionError),
    Pg(postgres::Error),
    Undeclared(&'static str),
}

/// The view a transaction closure reads and writes through.
pub struct Tx<'a> {
    inner: TxInner<'a>,
}

enum TxInner<'a> {
    Sled {
        trees: &'a [sled::transaction::TransactionalTree],
        names: &'a [&'static str],
    },
    Pg {
        tx: postgres::Transaction<'a>,
        trees: &'a [pg::PgTree],
    },
}

impl Tx<'_> {
    /// The value under `key` in `tree`.
    pub fn get(&mut self, tree: &Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        match &mut self.inner {
            TxInner::Sled { trees, names } => {
                let t = sled_engine::declared(trees, names, tree.name)?;
                t.get(key)
                    .map(|v| v.map(|v| v.to_vec()))
                    .map_err(|e| TxError(TxErrorKind::Sled(e)))
            }
            TxInner::Pg { tx, trees } => pg::declared(trees, tree.name)?.tx_get(tx, key),
        }
    }

    /// Writes `value` under `key` in `tree`.
    pub fn insert(&mut self, tree: &Tree, key: &[u8], value: &[u8]) -> Result<(), TxError> {
        match &mut self.inner {
            TxInner::Sled { trees, names } => {
                let t = sled_engine::declared(trees, names, tree.name)?;
                t.insert(key, value)
                    .map(drop)
                    .map_err(|e| TxError(TxErrorKind::Sled(e)))
            }
            TxInner::Pg { tx, trees } => pg::declared(trees, tree.name)?.tx_put(tx, key, value),
        }
    }

    /// Removes `key` from `tree`.
    pub fn remove(&mut self, tree: &Tree, key: &[u8]) -> Result<(), TxError> {
        match &mut self.inner {
            TxInner::Sled { trees, names } => {
                let t = sled_engine::declared(trees, names, tree.name)?;
                t.remove(key)
                    .map(drop)
                    .map_err(|e| TxError(TxErrorKind::Sled(e)))
            }
            TxInner::Pg { tx, trees } => pg::declared(trees, tree.name)?.tx_remove(tx, key),
        }
    }
}

#[cfg(test)]
mod tests;
