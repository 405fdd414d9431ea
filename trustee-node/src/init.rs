//! `trustee-node init`: creates a node's data directory (keys and a documented config).
//!
//! Everything is validated before anything is written, and nothing existing is ever
//! overwritten: a node's identity key is its identity, and losing its storage key loses every
//! share it holds.

use crate::config::edit::ConfigDoc;
use crate::config::{self, CONFIG_FILE, ConfigError, NodeConfig, Role};
pub use crate::descriptor::NodeDescriptorInfo;
use crate::keys::{FileKeyProvider, KeyError};
use crate::staff::auth::StaffRole;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What `init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// Display name.
    pub name: String,
    /// Bind address.
    pub listen: SocketAddr,
    /// Role.
    pub role: Role,
    /// Advertised endpoint; defaults to `http://<listen>`.
    pub endpoint: Option<String>,
    /// WebAuthn relying party id.
    pub rp_id: String,
    /// WebAuthn allowed origins.
    pub origins: Vec<String>,
    /// Bank approval public keys (hex) this node accepts.
    pub accept_bank_keys: Vec<String>,
    /// Bank role: staff members.
    pub staff: Vec<StaffSpec>,
    /// Bank role: distinct staff approvals needed.
    pub approvals_required: Option<u32>,
    /// `recovery.delay_floor_secs`.
    pub recovery_delay_floor_secs: Option<u64>,
    /// TLS files (`[tls]`).
    pub tls: Option<InitTls>,
    /// `node.insecure_plaintext`: serve plaintext on a non-loopback address.
    pub insecure_plaintext: bool,
    /// `[storage] backend = "postgres"` and its settings (`None`: sled).
    pub postgres: Option<InitPostgres>,
}

/// `init --tls-cert/--tls-key/--tls-client-ca`: the `[tls]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitTls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM client CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// A staff member for `init --staff ID=HEX[:role,role]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSpec {
    /// Staff id.
    pub id: String,
    /// Hex SEC1 public key.
    pub public_key: String,
    /// Roles (default approver + canceller).
    pub roles: Vec<StaffRole>,
}

impl std::str::FromStr for StaffSpec {
    type Err = ConfigError;
    /// `ID=HEX` or `ID=HEX:role,role`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Invalid {
            field: "bank.staff",
            reason: format!("{s:?} is not ID=PUBLIC_KEY_HEX[:role,role]"),
        };
        let (id, rest) = s.split_once('=').ok_or_else(bad)?;
        let (key, roles) = match rest.split_once(':') {
            Some((k, r)) => (
                k,
                r.split(',')
                    .map(config::parse_staff_role)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => (rest, vec![StaffRole::Approver, StaffRole::Canceller]),
        };
        Ok(Self {
            id: id.trim().to_owned(),
            public_key: key.trim().to_owned(),
            roles,
        })
    }
}

impl InitOptions {
    /// Options with the default relying party (`localhost`, `https://localhost`).
    pub fn new(data_dir: PathBuf, name: impl Into<String>, listen: SocketAddr, role: Role) -> Self {
        Self {
            data_dir,
            name: name.into(),
            listen,
            role,
            endpoint: None,
            rp_id: config::defaults::RP_ID.to_owned(),
            origins: vec![config::defaults::ORIGIN.to_owned()],
            accept_bank_keys: Vec::new(),
            staff: Vec::new(),
            approvals_required: None,
            recovery_delay_floor_secs: None,
            tls: None,
            insecure_plaintext: false,
            postgres: None,
        }
    }
}

/// `init --storage postgres`: where the node's tables go.
#[derive(Debug, Clone)]
pub struct InitPostgres {
    /// `url_file` (relative to the data directory) or, if `None`, the inline `url`.
    pub url_file: Option<PathBuf>,
    /// The connection string, when given inline.
    pub url: Option<String>,
    /// The schema (default `dlocker`).
    pub schema: Option<String>,
    /// CA certificates to verify the database server with (TLS required), relative to the data
    /// directory.
    pub tls_ca_file: Option<PathBuf>,
}

/// Why `init` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The directory already holds a node.
    #[error("{0} already holds a trustee node (config or keys exist); refusing to overwrite it")]
    AlreadyInitialised(PathBuf),
    /// The listen address cannot be advertised as-is.
    #[error(
        "listen address {0} is not reachable by clients; pass --endpoint with the URL they should \
            use"
    )]
    NeedEndpoint(SocketAddr),
    /// The options make an invalid config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Creating keys failed.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The configured database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Store(crate::db::StoreError),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Initialises a node in `opts.data_dir`; returns its descriptor.
pub fn init_node(opts: &InitOptions) -> Result<NodeDescriptorInfo, InitError> {
    let dir = &opts.data_dir;
    let config_path = dir.join(CONFIG_FILE);
    let keys = FileKeyProvider::new(dir);
    if config_path.exists() || keys.any_exists() {
        return Err(InitError::AlreadyInitialised(dir.clone()));
    }
    let endpoint = match &opts.endpoint {
        Some(e) => e.clone(),
        None if opts.listen.ip().is_unspecified() => {
            return Err(InitError::NeedEndpoint(opts.listen));
        }
        None if opts.tls.is_some() => format!("https://{}", opts.listen),
        None => format!("http://{}", opts.listen),
    };
    let text = config::render_config_toml(
        &opts.name,
        opts.role,
        opts.listen,
        &endpoint,
        &opts.rp_id,
        &opts.origins,
    );
    let mut doc = ConfigDoc::parse(&text, dir)?;
    if let Some(t) = &opts.tls {
        doc.set_tls(&t.cert, &t.key, t.client_ca.as_deref())?;
    }
    if opts.insecure_plaintext {
        doc.set_bool("node", "insecure_plaintext", true)?;
    }
    if let Some(pg) = &opts.postgres {
        doc.set_string("storage", "backend", "postgres")?;
        if let Some(u) = &pg.url {
            doc.set_string("storage", "url", u)?;
        }
        if let Some(f) = &pg.url_file {
            doc.set_string("storage", "url_file", &f.display().to_string())?;
        }
        if let Some(s) = &pg.schema {
            doc.set_string("storage", "schema", s)?;
        }
        if let Some(ca) = &pg.tls_ca_file {
            doc.set_string("storage", "tls_ca_file", &ca.display().to_string())?;
        }
    }
    for k in &opts.accept_bank_keys {
        doc.accept_bank_key(k)?;
    }
    if opts.role != Role::Bank && (!opts.staff.is_empty() || opts.approvals_required.is_some()) {
        return Err(InitError::Config(ConfigError::Invalid {
            field: "bank",
            reason: "--staff and --approvals-required need --role bank".into(),
        }));
    }
    for s in &opts.staff {
        doc.add_staff(&s.id, &s.public_key, &s.roles)?;
    }
    if let Some(m) = opts.approvals_required {
        doc.set_integer("bank", "approvals_required", u64::from(m))?;
    }
    if let Some(f) = opts.recovery_delay_floor_secs {
        doc.set_integer("recovery", "delay_floor_secs", f)?;
    }
    let text = doc.to_string();
    // Validate exactly what will be written.
    let cfg = NodeConfig::from_toml(&text, dir)?;
    // A PostgreSQL node's database must answer (and gets its schema) before anything is written.
    if let crate::config::storage::StorageConfig::Postgres(pg) = &cfg.storage {
        let pg = pg.pg_config(dir)?;
        crate::db::Database::open_postgres(&pg).map_err(InitError::Store)?;
    }

    // The data directory holds the database and keys: owner-only.
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir).map_err(|source| InitError::Io {
        path: dir.clone(),
        source,
    })?;
    let (identity, _storage) = keys.create()?;
    keys.ensure_audit_key()?;
    let bank_key = match opts.role {
        Role::Bank => Some(keys.ensure_bank_approval_key()?),
        Role::Trustee => None,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&config_path)
        .map_err(|source| InitError::Io {
            path: config_path.clone(),
            source,
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|source| InitError::Io {
            path: config_path.clone(),
            source,
        })?;
    Ok(NodeDescriptorInfo::new(&cfg, &identity).with_bank_key(bank_key.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_refuse_and_describe() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("node1");
        let opts = InitOptions::new(
            dir.clone(),
            "bank",
            "127.0.0.1:7101".parse().expect("addr"),
            Role::Bank,
        );
        let d = init_node(&opts).expect("init");
        assert_eq!(d.endpoint, "http://127.0.0.1:7101");
        assert_eq!(d.role, "bank");
        assert_eq!(NodeDescriptorInfo::load(&dir).expect("load"), d);
        assert!(matches!(
            init_node(&opts),
            Err(InitError::AlreadyInitialised(_))
        ));
    }

    #[test]
    fn bad_options_write_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("n");
        let mut opts = InitOptions::new(
            dir.clone(),
            "t",
            "0.0.0.0:7101".parse().expect("addr"),
            Role::Trustee,
        );
        assert!(matches!(init_node(&opts), Err(InitError::NeedEndpoint(_))));
        opts.endpoint = Some("http://node.example:7101".into());
        opts.origins = vec!["https://elsewhere.example".into()];
        assert!(matches!(init_node(&opts), Err(InitError::Config(_))));
        assert!(!dir.exists());
    }
}
