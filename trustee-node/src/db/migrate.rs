//! Moving a stopped node from its embedded sled database to PostgreSQL
//! (`trustee-node migrate --to postgres`).
//!
//! Every table is copied row for row (the rows are sealed at rest exactly as before: the
//! database never sees a share, a key or a blob in clear), then both sides are read back and
//! compared table by table: row count and SHA-256 over the rows in key order. Only then is
//! `config.toml` switched to PostgreSQL and the sled directory renamed, so a node can never
//! start on a half-copied schema or, later, on the stale sled files.

use super::{Database, StoreError, table_names};
use crate::config::CONFIG_FILE;
use crate::config::edit::ConfigDoc;
use crate::config::{ConfigError, NodeConfig, storage::StorageConfig};
use dlocker_store::{Store, Tree};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Rows copied per batch (one PostgreSQL transaction each).
const BATCH_ROWS: usize = 1000;

/// Where the PostgreSQL connection string is kept in `config.toml` after the move.
#[derive(Clone)]
pub enum PostgresUrl {
    /// In `config.toml` itself (`[storage] url`).
    Inline(String),
    /// In this file (`[storage] url_file`; keeps a password out of `config.toml`), relative to
    /// the data directory unless absolute.
    File(PathBuf),
}

impl std::fmt::Debug for PostgresUrl {
    // A connection string can carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostgresUrl::Inline(_) => f.write_str("Inline(REDACTED)"),
            PostgresUrl::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// One table, as copied and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    /// The table.
    pub table: &'static str,
    /// Rows copied.
    pub rows: usize,
    /// SHA-256 over the rows in key order, hex (equal on both sides).
    pub digest: String,
}

/// What a migration did.
#[derive(Debug, Clone)]
pub struct MigrationReport {
    /// The PostgreSQL schema now holding the node's records.
    pub schema: String,
    /// Every table, in copy order.
    pub tables: Vec<TableCopy>,
    /// Where the sled files went (kept until the operator removes them).
    pub sled_moved_to: PathBuf,
}

/// Why a migration did not happen. Nothing was changed unless the message says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The node's config could not be read or written.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node already keeps its records in PostgreSQL.
    #[error("this node already keeps its records in PostgreSQL (schema {0}); nothing to migrate")]
    AlreadyPostgres(String),
    /// The sled database could not be opened (typically: the node is running).
    #[error(
        "cannot open the sled database {path}: {reason} (stop the node first: `migrate` needs it stopped)"
    )]
    SledBusy {
        /// The database directory.
        path: PathBuf,
        /// The engine's message.
        reason: String,
    },
    /// The sled database has a non-empty table this build does not know.
    #[error(
        "the sled database has records in a table this trustee-node does not know ({0}); \
         migrate with the trustee-node version that wrote them"
    )]
    UnknownTable(String),
    /// The target schema is not empty.
    #[error(
        "PostgreSQL schema {schema} already holds records (table {table}); migrate into a new, \
         empty schema"
    )]
    SchemaNotEmpty {
        /// The schema.
        schema: String,
        /// The first non-empty table.
        table: &'static str,
    },
    /// Copying or reading back failed, or the schema is in use.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Read back, a table differs from its source (the schema was written to meanwhile, or the
    /// copy is broken). The config was not switched.
    #[error(
        "table {table} differs after the copy ({source_rows} rows in sled, {copied_rows} in \
         PostgreSQL); config.toml was not changed: drop schema {schema} and run migrate again"
    )]
    Mismatch {
        /// The table.
        table: &'static str,
        /// Rows in sled.
        source_rows: usize,
        /// Rows in PostgreSQL.
        copied_rows: usize,
        /// The schema.
        schema: String,
    },
    /// A file operation after the copy failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn store_err(e: dlocker_store::Error) -> MigrateError {
    MigrateError::Store(StoreError::from(e))
}

/// Copies the stopped node in `data_dir` from sled into the PostgreSQL schema `url` and
/// `schema` name, checks the copy, and switches the node's config to it.
pub fn sled_to_postgres(
    data_dir: &Path,
    url: &PostgresUrl,
    schema: &str,
    tls_ca_file: Option<&Path>,
) -> Result<MigrationReport, MigrateError> {
    let config = NodeConfig::load(data_dir)?;
    if let StorageConfig::Postgres(pg) = &config.storage {
        return Err(MigrateError::AlreadyPostgres(pg.schema.clone()));
    }

    // The target settings, validated by the same rules as `[storage]` (so the config written
    // at the end is one the node accepts), before anything is opened.
    let mut doc = ConfigDoc::load(data_dir)?;
    doc.set_string("storage", "backend", "postgres")?;
    match url {
        PostgresUrl::Inline(u) => doc.set_string("storage", "url", u)?,
        PostgresUrl::File(f) => doc.set_string("storage", "url_file", &f.display().to_string())?,
    }
    doc.set_string("storage", "schema", schema)?;
    if let Some(ca) = tls_ca_file {
        doc.set_string("storage", "tls_ca_file", &ca.display().to_string())?;
    }
    let target = NodeConfig::from_toml(&doc.to_string(), data_dir)?;
    let StorageConfig::Postgres(pg) = &target.storage else {
        return Err(MigrateError::Config(ConfigError::Invalid {
            field: "storage",
            reason: "the edited config does not name PostgreSQL".into(),
        }));
    };
    let pg_config = pg.pg_config(data_dir)?;

    let sled_path = data_dir.join("db");
    let sled_db =
        sled::Config::new()
            .path(&sled_path)
            .open()
            .map_err(|e| MigrateError::SledBusy {
                path: sled_path.clone(),
                reason: e.to_string(),
            })?;
    let known = table_names();
    for name in sled_db.tree_names() {
        let name = String::from_utf8_lossy(&name).into_owned();
        if name == "__sled__default" || known.contains(&name.as_str()) {
            continue;
        }
        let tree = sled_db.open_tree(&name).map_err(|e| store_err(e.into()))?;
        if !tree.is_empty() {
            return Err(MigrateError::UnknownTable(name));
        }
    }
    let source = Store::from_sled(sled_db);

    // Opening applies the schema's migrations and takes its serving lock exclusively, so no
    // node can start on it while the copy runs.
    let target_db = Database::open_postgres_alone(&pg_config)?;
    for table in &known {
        if !target_db
            .db
            .tree(table)
            .map_err(store_err)?
            .is_empty()
            .map_err(store_err)?
        {
            return Err(MigrateError::SchemaNotEmpty {
                schema: pg_config.schema.clone(),
                table,
            });
        }
    }

    let mut tables = Vec::with_capacity(known.len());
    for table in known {
        let from = source.tree(table).map_err(store_err)?;
        let to = target_db.db.tree(table).map_err(store_err)?;
        copy(&from, &to)?;
        let (source_rows, source_digest) = digest(&from)?;
        let (copied_rows, copied_digest) = digest(&to)?;
        if source_rows != copied_rows || source_digest != copied_digest {
            return Err(MigrateError::Mismatch {
                table,
                source_rows,
                copied_rows,
                schema: pg_config.schema.clone(),
            });
        }
        tables.push(TableCopy {
            table,
            rows: source_rows,
            digest: hex::encode(source_digest),
        });
    }
    drop(target_db);
    drop(source);

    // Only now: the config names PostgreSQL, and the sled files move aside so nothing starts on
    // them again by mistake (moving them back and restoring config.toml undoes the migration).
    let moved = data_dir.join("db.migrated-to-postgres");
    std::fs::rename(&sled_path, &moved).map_err(|source| MigrateError::Io {
        what: format!(
            "the copy is complete but {} could not be renamed to {}",
            sled_path.display(),
            moved.display()
        ),
        source,
    })?;
    doc.save(data_dir).map_err(|e| {
        MigrateError::Config(ConfigError::Invalid {
            field: "storage",
            reason: format!(
                "the copy is complete and {} was renamed, but {CONFIG_FILE} could not be \
                 written: {e}",
                moved.display()
            ),
        })
    })?;
    Ok(MigrationReport {
        schema: pg_config.schema,
        tables,
        sled_moved_to: moved,
    })
}

/// Hands `f` every row of `tree` in key order, `BATCH_ROWS` at a time.
fn for_each_batch(
    tree: &Tree,
    mut f: impl FnMut(Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), MigrateError>,
) -> Result<(), MigrateError> {
    let mut start: Option<Vec<u8>> = None;
    loop {
        let rows = tree
            .range(start.as_deref(), None, BATCH_ROWS)
            .map_err(store_err)?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        // The next batch starts just after the last key.
        let mut next = last.clone();
        next.push(0);
        f(rows)?;
        start = Some(next);
    }
}

/// Copies every row of `from` into `to`, one transaction per batch.
fn copy(from: &Tree, to: &Tree) -> Result<(), MigrateError> {
    for_each_batch(from, |rows| {
        let batch: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            rows.into_iter().map(|(k, v)| (k, Some(v))).collect();
        to.apply_batch(&batch).map_err(store_err)
    })
}

/// Row count and SHA-256 over `len(k) ‖ k ‖ len(v) ‖ v` for every row in key order.
fn digest(tree: &Tree) -> Result<(usize, [u8; 32]), MigrateError> {
    let mut h = Sha256::new();
    let mut rows = 0;
    for_each_batch(tree, |batch| {
        for (k, v) in &batch {
            h.update((k.len() as u64).to_be_bytes());
            h.update(k);
            h.update((v.len() as u64).to_be_bytes());
            h.update(v);
            rows += 1;
        }
        Ok(())
    })?;
    Ok((rows, h.finalize().into()))
}
