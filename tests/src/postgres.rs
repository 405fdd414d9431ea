//! Running clusters on the PostgreSQL backend.
//!
//! [`Storage::postgres`] checks that a server answers (`DLOCKER_TEST_POSTGRES_URL`, default the
//! local trust-auth server) and gives each node of a cluster a schema of its own; the schemas are
//! dropped when the last clone of the [`Storage`] goes. Without a server the test is reported as
//! skipped with the reason, unless `DLOCKER_REQUIRE_POSTGRES=1` (CI), where it fails.

use crate::recovery_cluster::set_config_value;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The server the tests use.
pub fn postgres_url() -> String {
    std::env::var("DLOCKER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into())
}

/// Runs `f` with a synchronous client on a thread of its own (the client drives its own
/// runtime, which cannot start inside a test's).
pub fn with_client<T: Send>(
    f: impl FnOnce(&mut postgres::Client) -> T + Send,
) -> Result<T, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = postgres::Client::connect(&postgres_url(), postgres::NoTls)
                .map_err(|e| e.to_string())?;
            Ok(f(&mut c))
        })
        .join()
        .unwrap_or_else(|_| Err("the PostgreSQL client thread panicked".into()))
    })
}

/// Schemas made for one cluster, dropped with it.
#[derive(Debug)]
pub struct Schemas {
    prefix: String,
    made: Mutex<Vec<String>>,
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let made = std::mem::take(&mut *self.made.lock().unwrap_or_else(|e| e.into_inner()));
        if made.is_empty() || std::env::var_os("DLOCKER_KEEP_TEST_DIRS").is_some() {
            return;
        }
        let _ = with_client(|c| {
            for s in made {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE"));
            }
        });
    }
}

/// Where a test cluster's nodes keep their records.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// sled in each data directory (the default).
    #[default]
    Sled,
    /// A PostgreSQL schema per node.
    Postgres(Arc<Schemas>),
}

static CLUSTERS: AtomicUsize = AtomicUsize::new(0);

impl Storage {
    /// PostgreSQL, or `None` (the test is skipped; the reason is printed) when no server answers
    /// and `DLOCKER_REQUIRE_POSTGRES` is not `1`.
    pub fn postgres(tag: &str) -> Option<Storage> {
        match with_client(|c| {
            c.simple_query("SELECT 1")
                .map(drop)
                .map_err(|e| e.to_string())
        }) {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => {
                assert!(
                    std::env::var("DLOCKER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "PostgreSQL is required (DLOCKER_REQUIRE_POSTGRES=1) but {} does not \
                     answer: {e}",
                    postgres_url()
                );
                eprintln!(
                    "skipped: no PostgreSQL at {} ({e}); set DLOCKER_TEST_POSTGRES_URL",
                    postgres_url()
                );
                return None;
            }
        }
        let n = CLUSTERS.fetch_add(1, Ordering::SeqCst);
        Some(Storage::Postgres(Arc::new(Schemas {
            prefix: format!("it_{tag}_{}_{n}", std::process::id()),
            made: Mutex::new(Vec::new()),
        })))
    }

    /// The schema node `i` of this cluster uses (PostgreSQL only).
    pub fn schema(&self, i: usize) -> Option<String> {
        match self {
            Storage::Sled => None,
            Storage::Postgres(s) => Some(format!("{}_n{i}", s.prefix)),
        }
    }

    /// Points node `i`'s stopped data directory at its storage (PostgreSQL: a fresh schema,
    /// created with its tables when the node first opens it).
    pub fn configure(&self, dir: &Path, i: usize) {
        let Some(schema) = self.claim_schema(i) else {
            return;
        };
        set_config_value(
            dir,
            "storage",
            "backend",
            toml::Value::String("postgres".into()),
        );
        set_config_value(dir, "storage", "url", toml::Value::String(postgres_url()));
        set_config_value(
            dir,
            "storage",
            "schema",
            toml::Value::String(schema.clone()),
        );
        set_config_value(dir, "storage", "pool_size", toml::Value::Integer(4));
    }

    /// Node `i`'s schema name, dropped with the cluster (PostgreSQL only): for a node pointed
    /// at it here or moved to it later (`trustee-node migrate`).
    pub fn claim_schema(&self, i: usize) -> Option<String> {
        let (Storage::Postgres(s), Some(schema)) = (self, self.schema(i)) else {
            return None;
        };
        s.made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(schema.clone());
        Some(schema)
    }
}

/// A stopped node's database, on whichever backend its `config.toml` names (for tests that read
/// or damage what a node stored).
pub fn open_stopped_db(dir: &Path) -> dlocker_store::Store {
    use trustee_node::config::{NodeConfig, storage::StorageConfig};
    let config = NodeConfig::load(dir).expect("the node's config.toml");
    match &config.storage {
        StorageConfig::Sled => dlocker_store::Store::from_sled(open_stopped_sled(&dir.join("db"))),
        StorageConfig::Postgres(pg) => dlocker_store::Store::open_postgres(
            &pg.pg_config(dir).expect("postgres settings"),
            trustee_node::db::migrations::ALL,
        )
        .expect("open the stopped node's schema"),
    }
}

/// Opens a stopped node's sled database. sled lets go of its file lock only when its background
/// flusher drops its handle, a moment after the last `Db` of an earlier open is dropped (in this
/// process or the node's), so a lock conflict is retried for a while.
pub fn open_stopped_sled(path: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            // sled reports it as `Other` with this text (sled 0.34, config.rs).
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("open the stopped node's db {}: {e}", path.display()),
        }
    }
}

/// A replica of the node whose data directory is `dir` (it must keep its records in
/// PostgreSQL): a new data directory `dst` with the node's keys and `config.toml` (so the same
/// schema), listening on a port of its own. Returns it as a [`crate::Cluster`] of one node, not
/// started. This is what an operator does to add a replica: copy the keys, keep the storage
/// settings, change the listener.
pub fn replica_of(dir: &Path, dst: &Path) -> crate::Cluster {
    std::fs::create_dir_all(dst.join("keys")).expect("mkdir replica keys");
    for entry in std::fs::read_dir(dir.join("keys")).expect("read keys") {
        let entry = entry.expect("key entry");
        std::fs::copy(entry.path(), dst.join("keys").join(entry.file_name())).expect("copy key");
    }
    std::fs::copy(dir.join("config.toml"), dst.join("config.toml")).expect("copy config");
    let port = crate::cluster::free_ports(1)[0];
    set_config_value(
        dst,
        "node",
        "listen",
        toml::Value::String(format!("127.0.0.1:{port}")),
    );
    set_config_value(
        dst,
        "node",
        "endpoint",
        toml::Value::String(format!("http://127.0.0.1:{port}")),
    );
    crate::Cluster::adopt(&[dst.to_path_buf()])
}
