//! The PostgreSQL backend: one table per tree in a schema of its own.
//!
//! Every call takes a connection from a pool (r2d2) and runs one statement in autocommit, so a
//! write is committed, hence durable, when the call returns. Transactions run at SERIALIZABLE and
//! are retried on serialization failures and deadlocks. Statements go out with `query_typed`
//! (parameter types given), which needs one round trip instead of prepare + execute.

use crate::{Entry, Error, Tree, TreeInner, Tx, TxAbort, TxError, TxErrorKind, TxInner};
use postgres::IsolationLevel;
use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::types::{ToSql, Type};
use r2d2_postgres::PostgresConnectionManager;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

type R2d2Pool = r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>;

/// The connection pool, shared by the engine and its trees.
///
/// When the last handle goes, the pool closes its connections, and closing a synchronous client
/// runs the client's own small runtime: inside a tokio runtime (a node shutting down drops its
/// database on a worker) that panics. So the pool is dropped on a thread of its own.
struct PoolOwner(Option<R2d2Pool>);

impl Drop for PoolOwner {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            std::thread::scope(|s| {
                s.spawn(move || drop(pool));
            });
        }
    }
}

#[derive(Clone)]
struct Pool(Arc<PoolOwner>);

impl Pool {
    fn get(
        &self,
    ) -> Result<r2d2::PooledConnection<PostgresConnectionManager<MakeRustlsConnect>>, Error> {
        match &self.0.0 {
            Some(p) => p.get().map_err(pool_error),
            None => Err(Error::Pool("the pool is closed".into())),
        }
    }
}

/// How many times a conflicting transaction is run before giving up.
const MAX_ATTEMPTS: u32 = 30;

/// Where and how to connect.
#[derive(Clone)]
pub struct PgConfig {
    /// A libpq-style URL or key=value string, e.g. `postgres://dlocker@db.internal/dlocker`.
    pub url: String,
    /// The schema holding this node's tables (`[a-z_][a-z0-9_]*`, at most 63 characters).
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// How long to wait for a connection (at startup and from the pool).
    pub connect_timeout: Duration,
    /// TLS to the database.
    pub tls: PgTls,
}

/// TLS to the database server.
#[derive(Clone, Default)]
pub enum PgTls {
    /// Plain TCP or a Unix socket (a database on loopback or on a network the node trusts). A
    /// connection string asking for `sslmode=require` is refused rather than silently downgraded.
    #[default]
    Off,
    /// TLS required; the server's certificate chain is verified against these CA certificates
    /// and its name against the host the connection string names (libpq's `verify-full`).
    Verify {
        /// The CA certificates, PEM.
        ca_pem: Vec<u8>,
    },
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PgTls::Off => "Off",
            PgTls::Verify { .. } => "Verify",
        })
    }
}

/// The connection string parsed, with the TLS mode `tls` asks for, and the TLS connector.
pub(crate) fn client_config(
    url: &str,
    tls: &PgTls,
) -> Result<(postgres::Config, MakeRustlsConnect), Error> {
    let mut pg: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| Error::Pool(format!("invalid postgres URL: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    match tls {
        PgTls::Off => {
            if pg.get_ssl_mode() == SslMode::Require {
                return Err(Error::Tls(
                    "the connection string asks for sslmode=require, but no CA is configured to \
                     verify the server with ([storage] tls_ca_file)"
                        .into(),
                ));
            }
            // What the driver did without a TLS connector: `prefer` never upgraded.
            pg.ssl_mode(SslMode::Disable);
        }
        PgTls::Verify { ca_pem } => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject as _;
            for cert in CertificateDer::pem_slice_iter(ca_pem) {
                let cert = cert.map_err(|e| Error::Tls(format!("CA certificates: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(Error::Tls("the CA file holds no PEM certificate".into()));
            }
            pg.ssl_mode(SslMode::Require);
        }
    }
    let config = builder.with_root_certificates(roots).with_no_client_auth();
    Ok((pg, MakeRustlsConnect::new(config)))
}

impl std::fmt::Debug for PgConfig {
    // The URL can carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"REDACTED")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// One step of the schema: applied once, in order, recorded in `dlocker_schema_version`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3…
    pub version: i32,
    /// What it does, recorded beside the version.
    pub description: &'static str,
    /// The statements, with unqualified table names (the schema is on the search path).
    pub sql: &'static str,
}

/// Whether `name` is a plain lower-case SQL identifier (so it can be spliced into SQL): what a
/// schema name must be.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
}

fn pool_error(e: r2d2::Error) -> Error {
    Error::Pool(e.to_string())
}

fn retryable(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

pub(crate) struct PgEngine {
    pool: Pool,
    schema: String,
    tables: HashSet<String>,
    /// The connection holding the serving lock ([`PgEngine::hold_serving_lock`]); closed (and
    /// the lock released) off the runtime, like the pool.
    serving: std::sync::Mutex<Option<ClientOwner>>,
    url: String,
    tls: PgTls,
    connect_timeout: Duration,
}

/// A client closed on a thread of its own when dropped (see [`PoolOwner`]). Its session's
/// advisory locks are released before it closes: the server releases them only once the backend
/// has exited, after the close returned, and the next holder must not find them still taken.
struct ClientOwner(Option<postgres::Client>);

impl Drop for ClientOwner {
    fn drop(&mut self) {
        if let Some(mut client) = self.0.take() {
            std::thread::scope(|s| {
                s.spawn(move || {
                    if !client.is_closed() {
                        let _ = client.batch_execute("SELECT pg_advisory_unlock_all()");
                    }
                    drop(client)
                });
            });
        }
    }
}

impl PgEngine {
    pub(crate) fn open(config: &PgConfig, migrations: &[Migration]) -> Result<Self, Error> {
        let schema = config.schema.as_str();
        if !is_identifier(schema) {
            return Err(Error::Schema(format!(
                "schema name {schema:?} must be lower-case letters, digits and '_', starting \
                 with a letter or '_', at most 63 characters"
            )));
        }
        let (mut pg, tls) = client_config(&config.url, &config.tls)?;
        pg.options(&format!("-c search_path={schema}"))
            .application_name("trustee-node")
            .connect_timeout(config.connect_timeout);
        // One connection first, outside the pool: the pool would retry a refused one until its
        // timeout and report only that it timed out, not why (a wrong password, an unknown CA).
        drop(ClientOwner(Some(pg.connect(tls.clone())?)));
        let pool = Pool(Arc::new(PoolOwner(Some(
            r2d2::Pool::builder()
                .max_size(config.pool_size.max(1))
                .min_idle(Some(1))
                .connection_timeout(config.connect_timeout)
                .build(PostgresConnectionManager::new(pg, tls))
                .map_err(pool_error)?,
        ))));
        let mut conn = pool.get()?;
        migrate(&mut conn, schema, migrations)?;
        let tables = conn
            .query_typed(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                &[(&schema, Type::TEXT)],
            )?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        drop(conn);
        Ok(Self {
            pool,
            schema: schema.to_string(),
            tables,
            serving: std::sync::Mutex::new(None),
            url: config.url.clone(),
            tls: config.tls.clone(),
            connect_timeout: config.connect_timeout,
        })
    }

    /// Takes the schema's serving lock (a session advisory lock on a connection of its own, held
    /// until the store is dropped or the process dies): shared by the replicas that serve the
    /// schema, exclusive for a tool that must be alone on it; `false` if it is held in a mode
    /// that excludes the one asked for.
    pub(crate) fn hold_serving_lock(&self, exclusive: bool) -> Result<bool, Error> {
        let mut held = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            return Ok(true);
        }
        let mut client = ClientOwner(Some(self.connect("trustee-node (serving lock)")?));
        let sql = if exclusive {
            "SELECT pg_try_advisory_lock(hashtext($1))"
        } else {
            "SELECT pg_try_advisory_lock_shared(hashtext($1))"
        };
        let got: bool = client
            .0
            .as_mut()
            .map(|c| {
                c.query_typed(
                    sql,
                    &[(&format!("dlocker-serve:{}", self.schema), Type::TEXT)],
                )
            })
            .transpose()?
            .and_then(|rows| rows.first().map(|r| r.get(0)))
            .unwrap_or(false);
        if got {
            *held = Some(client);
        }
        Ok(got)
    }

    /// A connection of its own (not from the pool), for a session-level advisory lock.
    fn connect(&self, application: &str) -> Result<postgres::Client, Error> {
        let (mut pg, tls) = client_config(&self.url, &self.tls)?;
        pg.application_name(application)
            .connect_timeout(self.connect_timeout);
        Ok(pg.connect(tls)?)
    }

    /// The advisory lock named `name` within this schema (see [`crate::CrossProcessLock`]).
    pub(crate) fn advisory_lock(self: &Arc<Self>, name: &str) -> AdvisoryLock {
        AdvisoryLock {
            engine: Arc::clone(self),
            key: format!("dlocker-lock:{}:{name}", self.schema),
            client: None,
        }
    }

    pub(crate) fn tree(&self, name: &'static str) -> Result<PgTree, Error> {
        if !is_identifier(name) || !self.tables.contains(name) {
            return Err(Error::UnknownTable(name.to_string()));
        }
        Ok(PgTree {
            pool: self.pool.clone(),
            sql: Arc::new(Sql::for_table(name)),
            name,
        })
    }

    pub(crate) fn size(&self) -> Result<u64, Error> {
        let mut c = self.pool.get()?;
        let row = c.query_typed(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r'",
            &[(&self.schema, Type::TEXT)],
        )?;
        Ok(row
            .first()
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0)
            .unsigned_abs())
    }

    pub(crate) fn transaction<T, E>(
        &self,
        trees: &[&Tree],
        f: &(dyn Fn(&mut Tx<'_>) -> Result<T, TxAbort<E>> + Sync),
    ) -> Result<Result<T, E>, Error> {
        let mut pg_trees = Vec::with_capacity(trees.len());
        for t in trees {
            match &t.inner {
                TreeInner::Pg(p) => pg_trees.push(p.clone()),
                TreeInner::Sled(_) => return Err(Error::Undeclared(t.name)),
            }
        }
        for attempt in 1..=MAX_ATTEMPTS {
            let mut conn = self.pool.get()?;
            let tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()?;
            let mut view = Tx {
                inner: TxInner::Pg {
                    tx,
                    trees: &pg_trees,
                },
            };
            let failed = match f(&mut view) {
                Ok(value) => {
                    let TxInner::Pg { tx, .. } = view.inner else {
                        return Err(Error::Undeclared("(sled)"));
                    };
                    match tx.commit() {
                        Ok(()) => return Ok(Ok(value)),
                        Err(e) => e,
                    }
                }
                // Dropping the transaction rolls it back.
                Err(TxAbort::Abort(e)) => return Ok(Err(e)),
                Err(TxAbort::Engine(TxError(TxErrorKind::Pg(e)))) => e,
                Err(TxAbort::Engine(TxError(TxErrorKind::Undeclared(n)))) => {
                    return Err(Error::Undeclared(n));
                }
                Err(TxAbort::Engine(TxError(TxErrorKind::Sled(_)))) => {
                    return Err(Error::Undeclared("(sled)"));
                }
            };
            if !retryable(&failed) {
                return Err(failed.into());
            }
            tracing::debug!(attempt, "serialization conflict; retrying the transaction");
            std::thread::sleep(Duration::from_millis(u64::from(attempt.min(10))));
        }
        Err(Error::Conflicts(MAX_ATTEMPTS))
    }
}

/// A session advisory lock on a connection of its own, so that holding it across `await`s ties
/// up no pooled connection. A process that dies loses its connection, and with it the lock.
pub(crate) struct AdvisoryLock {
    engine: Arc<PgEngine>,
    key: String,
    client: Option<ClientOwner>,
}

/// How long a replica waits for the lock before the request fails (a replica stuck while
/// holding it must not stall the others forever).
const LOCK_TIMEOUT: &str = "30s";

impl AdvisoryLock {
    pub(crate) fn acquire(&mut self) -> Result<(), Error> {
        if self.client.is_none() {
            let mut c = self.engine.connect("trustee-node (node lock)")?;
            c.batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT}'"))?;
            self.client = Some(ClientOwner(Some(c)));
        }
        let got = self
            .client
            .as_mut()
            .and_then(|c| c.0.as_mut())
            .map(|c| {
                c.query_typed(
                    "SELECT pg_advisory_lock(hashtext($1))",
                    &[(&self.key, Type::TEXT)],
                )
            })
            .transpose();
        if let Err(e) = got {
            // A broken or timed-out session: start afresh next time (closing it frees whatever
            // it held).
            self.client = None;
            return Err(e.into());
        }
        Ok(())
    }

    pub(crate) fn release(&mut self) {
        let unlocked = self.client.as_mut().and_then(|c| c.0.as_mut()).map(|c| {
            c.query_typed(
                "SELECT pg_advisory_unlock(hashtext($1))",
                &[(&self.key, Type::TEXT)],
            )
        });
        if !matches!(unlocked, Some(Ok(ref rows)) if rows.first().is_some_and(|r| r.get::<_, bool>(0)))
        {
            // Not released cleanly: closing the session releases it for sure.
            self.client = None;
        }
    }
}

/// Applies the pending migrations under an advisory lock (replicas starting together apply each
/// once) and refuses a schema newer than this build.
fn migrate(
    conn: &mut postgres::Client,
    schema: &str,
    migrations: &[Migration],
) -> Result<(), Error> {
    let latest = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    let mut tx = conn.transaction()?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock(hashtext('dlocker-schema:{schema}'));
         CREATE SCHEMA IF NOT EXISTS {schema};
         SET LOCAL search_path TO {schema};
         CREATE TABLE IF NOT EXISTS dlocker_schema_version (
             version INTEGER PRIMARY KEY,
             description TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))?;
    let current: i32 = tx
        .query_typed(
            "SELECT coalesce(max(version), 0) FROM dlocker_schema_version",
            &[],
        )?
        .first()
        .map(|r| r.get(0))
        .unwrap_or(0);
    if current > latest {
        return Err(Error::Schema(format!(
            "schema {schema} is at version {current}, but this trustee-node knows versions up to \
             {latest}: run a newer trustee-node"
        )));
    }
    for m in migrations.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql)?;
        tx.query_typed(
            "INSERT INTO dlocker_schema_version (version, description) VALUES ($1, $2)",
            &[(&m.version, Type::INT4), (&m.description, Type::TEXT)],
        )?;
        tracing::info!(schema, version = m.version, "applied database migration");
    }
    tx.commit()?;
    Ok(())
}

/// The statements of one table, built once.
struct Sql {
    get: String,
    upsert: String,
    delete: String,
    cas_update: String,
    cas_delete: String,
    cas_insert: String,
    cas_absent: String,
    range: String,
    last: String,
    count: String,
}

impl Sql {
    fn for_table(t: &str) -> Self {
        Self {
            get: format!("SELECT v FROM {t} WHERE k = $1"),
            upsert: format!(
                "INSERT INTO {t} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = \
                 EXCLUDED.v RETURNING NOT (xmax = 0)"
            ),
            delete: format!("DELETE FROM {t} WHERE k = $1 RETURNING 1"),
            cas_update: format!("UPDATE {t} SET v = $3 WHERE k = $1 AND v = $2 RETURNING 1"),
            cas_delete: format!("DELETE FROM {t} WHERE k = $1 AND v = $2 RETURNING 1"),
            cas_insert: format!(
                "INSERT INTO {t} (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING RETURNING 1"
            ),
            cas_absent: format!("SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM {t} WHERE k = $1)"),
            range: format!(
                "SELECT k, v FROM {t} WHERE ($1::bytea IS NULL OR k >= $1) AND \
                 ($2::bytea IS NULL OR k < $2) ORDER BY k LIMIT $3"
            ),
            last: format!("SELECT k, v FROM {t} ORDER BY k DESC LIMIT 1"),
            count: format!("SELECT count(*) FROM {t}"),
        }
    }
}

#[derive(Clone)]
pub(crate) struct PgTree {
    pool: Pool,
    sql: Arc<Sql>,
    name: &'static str,
}

type Param<'a> = (&'a (dyn ToSql + Sync), Type);

pub(crate) fn declared<'t>(trees: &'t [PgTree], name: &'static str) -> Result<&'t PgTree, TxError> {
    trees
        .iter()
        .find(|t| t.name == name)
        .ok_or(TxError(TxErrorKind::Undeclared(name)))
}

fn tx_err(e: postgres::Error) -> TxError {
    TxError(TxErrorKind::Pg(e))
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl PgTree {
    fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<postgres::Row>, Error> {
        let mut c = self.pool.get()?;
        Ok(c.query_typed(sql, params)?)
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .query(&self.sql.get, &[(&key, Type::BYTEA)])?
            .first()
            .map(|r| r.get(0)))
    }

    pub(crate) fn insert(&self, key: &[u8], value: &[u8]) -> Result<bool, Error> {
        Ok(self
            .query(
                &self.sql.upsert,
                &[(&key, Type::BYTEA), (&value, Type::BYTEA)],
            )?
            .first()
            .is_some_and(|r| r.get::<_, bool>(0)))
    }

    pub(crate) fn remove(&self, key: &[u8]) -> Result<bool, Error> {
        Ok(!self
            .query(&self.sql.delete, &[(&key, Type::BYTEA)])?
            .is_empty())
    }

    pub(crate) fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        let rows = match (old, new) {
            (Some(old), Some(new)) => self.query(
                &self.sql.cas_update,
                &[
                    (&key, Type::BYTEA),
                    (&old, Type::BYTEA),
                    (&new, Type::BYTEA),
                ],
            )?,
            (Some(old), None) => self.query(
                &self.sql.cas_delete,
                &[(&key, Type::BYTEA), (&old, Type::BYTEA)],
            )?,
            (None, Some(new)) => self.query(
                &self.sql.cas_insert,
                &[(&key, Type::BYTEA), (&new, Type::BYTEA)],
            )?,
            (None, None) => self.query(&self.sql.cas_absent, &[(&key, Type::BYTEA)])?,
        };
        Ok(!rows.is_empty())
    }

    pub(crate) fn range(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        let limit = limit_param(limit);
        Ok(self
            .query(
                &self.sql.range,
                &[
                    (&start, Type::BYTEA),
                    (&end, Type::BYTEA),
                    (&limit, Type::INT8),
                ],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    pub(crate) fn last(&self) -> Result<Option<Entry>, Error> {
        Ok(self
            .query(&self.sql.last, &[])?
            .first()
            .map(|r| (r.get(0), r.get(1))))
    }

    pub(crate) fn len(&self) -> Result<usize, Error> {
        let n: i64 = self
            .query(&self.sql.count, &[])?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0);
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub(crate) fn apply_batch(&self, ops: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), Error> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        for (k, v) in ops {
            match v {
                Some(v) => {
                    tx.query_typed(&self.sql.upsert, &[(k, Type::BYTEA), (v, Type::BYTEA)])?
                }
                None => tx.query_typed(&self.sql.delete, &[(k, Type::BYTEA)])?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn tx_get(
        &self,
        tx: &mut postgres::Transaction<'_>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, TxError> {
        Ok(tx
            .query_typed(&self.sql.get, &[(&key, Type::BYTEA)])
            .map_err(tx_err)?
            .first()
            .map(|r| r.get(0)))
    }

    pub(crate) fn tx_put(
        &self,
        tx: &mut postgres::Transaction<'_>,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), TxError> {
        tx.query_typed(
            &self.sql.upsert,
            &[(&key, Type::BYTEA), (&value, Type::BYTEA)],
        )
        .map_err(tx_err)?;
        Ok(())
    }

    pub(crate) fn tx_remove(
        &self,
        tx: &mut postgres::Transaction<'_>,
        key: &[u8],
    ) -> Result<(), TxError> {
        tx.query_typed(&self.sql.delete, &[(&key, Type::BYTEA)])
            .map_err(tx_err)?;
        Ok(())
    }
}
