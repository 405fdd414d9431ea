//! `[storage]`: where the node keeps its records — embedded sled in the data directory (the
//! default) or a PostgreSQL schema ([`crate::db`], `dlocker-store`).

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default pool size (connections per node process).
pub const DEFAULT_POOL_SIZE: u32 = 8;
/// Most connections one node process may hold.
pub const MAX_POOL_SIZE: u32 = 256;
/// Default wait for a connection, in seconds.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default schema.
pub const DEFAULT_SCHEMA: &str = "dlocker";

/// `[storage]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// `"sled"` (default) or `"postgres"`.
    pub backend: Option<String>,
    /// PostgreSQL connection string (URL or `key=value` form).
    pub url: Option<String>,
    /// A file holding the connection string (keeps a password out of config.toml); relative to
    /// the data directory.
    pub url_file: Option<PathBuf>,
    /// The schema holding this node's tables.
    pub schema: Option<String>,
    /// Connections per node process.
    pub pool_size: Option<u32>,
    /// Seconds to wait for a connection.
    pub connect_timeout_secs: Option<u64>,
    /// CA certificates (PEM) to verify the database server with: TLS is then required, the
    /// chain and the server's name checked. Relative to the data directory.
    pub tls_ca_file: Option<PathBuf>,
}

/// Where a PostgreSQL connection string comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum UrlSource {
    /// Written in config.toml.
    Inline(String),
    /// Read from this file when the node opens its database.
    File(PathBuf),
}

impl std::fmt::Debug for UrlSource {
    // The string can carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlSource::Inline(_) => f.write_str("Inline(REDACTED)"),
            UrlSource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// PostgreSQL settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// The connection string's source.
    pub url: UrlSource,
    /// The schema.
    pub schema: String,
    /// Connections per process.
    pub pool_size: u32,
    /// Wait for a connection.
    pub connect_timeout: Duration,
    /// CA certificates to verify the server with (TLS required), if any.
    pub tls_ca_file: Option<PathBuf>,
}

impl PostgresSettings {
    /// The engine's settings, reading `url_file` if that is where the string is.
    pub fn pg_config(&self, data_dir: &Path) -> Result<dlocker_store::PgConfig, ConfigError> {
        let read = |p: &Path| {
            let path = if p.is_absolute() {
                p.to_path_buf()
            } else {
                data_dir.join(p)
            };
            std::fs::read(&path)
                .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))
        };
        let url = match &self.url {
            UrlSource::Inline(u) => u.clone(),
            UrlSource::File(p) => String::from_utf8_lossy(&read(p)?).trim().to_string(),
        };
        let tls = match &self.tls_ca_file {
            None => dlocker_store::PgTls::Off,
            Some(p) => dlocker_store::PgTls::Verify { ca_pem: read(p)? },
        };
        Ok(dlocker_store::PgConfig {
            url,
            schema: self.schema.clone(),
            pool_size: self.pool_size,
            connect_timeout: self.connect_timeout,
            tls,
        })
    }
}

/// The validated `[storage]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StorageConfig {
    /// sled at `DATA_DIR/db`.
    #[default]
    Sled,
    /// PostgreSQL.
    Postgres(PostgresSettings),
}

fn invalid(reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: "storage",
        reason: reason.into(),
    }
}

/// Validates `[storage]`.
pub fn storage_config(raw: &RawStorage) -> Result<StorageConfig, ConfigError> {
    let postgres_keys = raw.url.is_some()
        || raw.url_file.is_some()
        || raw.schema.is_some()
        || raw.pool_size.is_some()
        || raw.connect_timeout_secs.is_some()
        || raw.tls_ca_file.is_some();
    match raw.backend.as_deref().unwrap_or("sled") {
        "sled" if postgres_keys => Err(invalid(
            "url, url_file, schema, pool_size, connect_timeout_secs and tls_ca_file are PostgreSQL \
             settings; set backend = \"postgres\" or remove them",
        )),
        "sled" => Ok(StorageConfig::Sled),
        "postgres" => {
            let url = match (&raw.url, &raw.url_file) {
                (Some(u), None) if !u.trim().is_empty() => UrlSource::Inline(u.trim().to_string()),
                (None, Some(f)) => UrlSource::File(f.clone()),
                (Some(_), Some(_)) => return Err(invalid("give url or url_file, not both")),
                _ => {
                    return Err(invalid(
                        "backend = \"postgres\" needs url (e.g. \"host=db.internal user=dlocker \
                         dbname=dlocker\") or url_file",
                    ));
                }
            };
            let schema = raw.schema.clone().unwrap_or_else(|| DEFAULT_SCHEMA.into());
            if !dlocker_store::is_identifier(&schema) {
                return Err(invalid(format!(
                    "schema {schema:?} must be lower-case letters, digits and '_' (at most 63)"
                )));
            }
            let pool_size = raw.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
            if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
                return Err(invalid(format!(
                    "pool_size {pool_size} must be 1..={MAX_POOL_SIZE}"
                )));
            }
            let secs = raw
                .connect_timeout_secs
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS);
            if !(1..=600).contains(&secs) {
                return Err(invalid(format!(
                    "connect_timeout_secs {secs} must be 1..=600"
                )));
            }
            Ok(StorageConfig::Postgres(PostgresSettings {
                url,
                schema,
                pool_size,
                connect_timeout: Duration::from_secs(secs),
                tls_ca_file: raw.tls_ca_file.clone(),
            }))
        }
        other => Err(invalid(format!(
            "backend {other:?} is not \"sled\" or \"postgres\""
        ))),
    }
}

/// The commented section `init` writes.
pub const STORAGE_SECTION: &str = r#"
[storage]
# "sled": embedded, in this directory (db/). "postgres": a schema of a PostgreSQL database, which
# replicas of this node may share (see docs/operating-a-node.md, "PostgreSQL").
backend = "sled"
# For backend = "postgres":
# url = "host=db.internal user=dlocker dbname=dlocker"   # or url_file = "postgres.url"
# schema = "dlocker"
# pool_size = 8
# connect_timeout_secs = 10
# tls_ca_file = "db-ca.pem"   # TLS required, the server verified against this CA and its name
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<StorageConfig, ConfigError> {
        storage_config(&toml::from_str::<RawStorage>(text).expect("toml"))
    }

    #[test]
    fn defaults_and_errors() {
        assert_eq!(parse("").expect("default"), StorageConfig::Sled);
        let StorageConfig::Postgres(p) =
            parse("backend = \"postgres\"\nurl = \"host=h password=pw\"").expect("pg")
        else {
            panic!("not postgres");
        };
        assert_eq!(p.schema, DEFAULT_SCHEMA);
        assert_eq!(p.pool_size, DEFAULT_POOL_SIZE);
        assert!(!format!("{p:?}").contains("pw"), "the URL is redacted");
        assert_eq!(p.tls_ca_file, None);
        // A CA file: TLS required; relative to the data directory; a missing file is named.
        let StorageConfig::Postgres(p) =
            parse("backend = \"postgres\"\nurl = \"host=h\"\ntls_ca_file = \"db-ca.pem\"")
                .expect("pg with TLS")
        else {
            panic!("not postgres");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let err = p.pg_config(dir.path()).expect_err("no CA file").to_string();
        assert!(err.contains("db-ca.pem"), "{err}");
        std::fs::write(dir.path().join("db-ca.pem"), b"PEM").expect("write");
        let c = p.pg_config(dir.path()).expect("config");
        assert!(matches!(c.tls, dlocker_store::PgTls::Verify { ref ca_pem } if ca_pem == b"PEM"));
        for (bad, says) in [
            ("tls_ca_file = \"ca.pem\"", "PostgreSQL settings"),
            ("backend = \"mysql\"", "is not"),
            ("backend = \"postgres\"", "needs url"),
            ("url = \"host=h\"", "PostgreSQL settings"),
            (
                "backend = \"postgres\"\nurl = \"h\"\nschema = \"Bad-Name\"",
                "schema",
            ),
            (
                "backend = \"postgres\"\nurl = \"h\"\npool_size = 0",
                "pool_size",
            ),
            (
                "backend = \"postgres\"\nurl = \"h\"\nurl_file = \"f\"",
                "not both",
            ),
        ] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
