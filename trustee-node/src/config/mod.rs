//! Node configuration: `DIR/config.toml`.
//!
//! The file is parsed into [`RawConfig`] (plain serde, unknown keys refused) and converted once,
//! with every check, into the typed [`NodeConfig`] the rest of the node uses. Nothing downstream
//! re-validates: if a `NodeConfig` exists, its values are usable.

pub mod admin;
pub mod grpc_web;
pub mod housekeeping;
pub mod locker;
pub mod storage;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use url::Url;

/// The config file's name inside the data directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Defaults, shared by `init` and by optional keys that an older config may lack.
pub mod defaults {
    /// Largest gRPC message accepted (256 KiB).
    pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
    /// Largest encrypted wallet blob accepted (64 KiB).
    pub const MAX_BLOB_BYTES: usize = 64 * 1024;
    /// Longest WebAuthn user name.
    pub const MAX_USER_NAME_LEN: usize = 64;
    /// How long a passkey ceremony stays open.
    pub const CEREMONY_TTL_SECS: u64 = 300;
    /// How long a passkey reset's owner nonces (and the bank's request) live: the bank's check
    /// of the customer must fit in it.
    pub const PASSKEY_RESET_TTL_SECS: u64 = 3600;
    /// Most passkey ceremonies open at once (each costs a little disk until it expires).
    pub const MAX_PENDING_CEREMONIES: usize = 10_000;
    /// Owner-ceremony calls (nonces issued, passkey responses checked) per caller address per
    /// minute.
    pub const OWNER_CALLS_PER_MINUTE: u32 = 120;
    /// Pending owner ceremonies (nonces issued, not yet answered or expired) per caller address.
    pub const PENDING_CEREMONIES_PER_CALLER: usize = 32;
    /// `WatchEvents` streams one reader (staff member or mTLS identity) may hold open.
    pub const EVENT_STREAMS_PER_READER: usize = 8;
    /// `WatchEvents` streams open on the node at once.
    pub const MAX_EVENT_STREAMS: usize = 256;
    /// Most trustees in a manifest this node accepts.
    pub const MAX_TRUSTEES: usize = dlocker_proto::MAX_TRUSTEES;
    /// WebAuthn relying party id.
    pub const RP_ID: &str = "localhost";
    /// WebAuthn relying party display name.
    pub const RP_NAME: &str = "dLocker";
    /// WebAuthn allowed origin.
    pub const ORIGIN: &str = "https://localhost";
    /// Shortest recovery delay this node applies, whatever the manifest says.
    pub const DELAY_FLOOR_SECS: u64 = 0;
    /// Longest recovery delay this node applies (30 days).
    pub const DELAY_CEILING_SECS: u64 = 30 * 24 * 3600;
    /// A session expires this long after its release time.
    pub const SESSION_TTL_SECS: u64 = 24 * 3600;
    /// Failed passkey assertions in one recovery session before that session is closed.
    pub const MAX_FAILED_ASSERTIONS: u32 = 5;
    /// How long a recovery session waits for the owner's passkey before it expires.
    pub const AUTH_WINDOW_SECS: u64 = 600;
    /// Distinct staff approvals needed for a bank approval.
    pub const APPROVALS_REQUIRED: u32 = 1;
    /// Lifetime of a bank approval.
    pub const APPROVAL_TTL_SECS: u64 = 3600;
    /// Allowed clock difference for staff requests.
    pub const STAFF_REQUEST_SKEW_SECS: u64 = 300;
    /// How long a staged epoch (rotation phase 1) waits for its commit before it is dropped.
    pub const STAGED_EPOCH_TTL_SECS: u64 = 7 * 24 * 3600;
}

/// Longest node display name.
pub const MAX_NAME_LEN: usize = 64;
/// The gRPC message size must leave this much room around the largest blob (manifest, envelope,
/// credential JSON, protobuf framing).
pub const MESSAGE_OVERHEAD_BYTES: usize = 32 * 1024;

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid TOML for this schema.
    #[error("{path} is not a valid node config: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config: {field}: {reason}")]
    Invalid {
        /// The key, e.g. `limits.max_blob_bytes`.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An independent trustee institution.
    Trustee,
    /// The bank's own node (the recovery modules add the approval key and staff service).
    Bank,
}

impl Role {
    /// The wire and config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Trustee => "trustee",
            Role::Bank => "bank",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trustee" => Ok(Role::Trustee),
            "bank" => Ok(Role::Bank),
            _ => Err(invalid(
                "node.role",
                format!("{s:?} is not \"trustee\" or \"bank\""),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw (as written in the file)

/// `config.toml` as written: plain values, no checks beyond types.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[node]`
    pub node: RawNode,
    /// `[limits]` (every key optional)
    #[serde(default)]
    pub limits: RawLimits,
    /// `[webauthn]`
    pub webauthn: RawWebauthn,
    /// `[tls]` (absent = plaintext h2c)
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// `[recovery]` (every key optional)
    #[serde(default)]
    pub recovery: RawRecovery,
    /// `[bank]` (bank role only; every key optional)
    #[serde(default)]
    pub bank: Option<RawBank>,
    /// `[epochs]` (every key optional)
    #[serde(default)]
    pub epochs: RawEpochs,
    /// `[locker]` (the document locker; absent = disabled)
    #[serde(default)]
    pub locker: locker::RawLocker,
    /// `[admin]` (the operator's HTTP listener; absent = off)
    #[serde(default)]
    pub admin: admin::RawAdmin,
    /// `[grpc_web]` (browsers; every key optional)
    #[serde(default)]
    pub grpc_web: grpc_web::RawGrpcWeb,
    /// `[storage]` (absent = sled in the data directory)
    #[serde(default)]
    pub storage: storage::RawStorage,
    /// `[housekeeping]` (every key optional)
    #[serde(default)]
    pub housekeeping: housekeeping::RawHousekeeping,
}

/// `[epochs]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEpochs {
    /// Lifetime of a staged epoch that is not committed.
    pub staged_ttl_secs: Option<u64>,
    /// Identity keys (hex SEC1) of the trustees whose credential attestations this node accepts
    /// when it joins a wallet.
    #[serde(default)]
    pub known_trustee_keys: Vec<String>,
}

/// `[recovery]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecovery {
    /// Shortest delay applied.
    pub delay_floor_secs: Option<u64>,
    /// Longest delay applied.
    pub delay_ceiling_secs: Option<u64>,
    /// Session lifetime after the release time.
    pub session_ttl_secs: Option<u64>,
    /// Failed assertions before a session is closed.
    pub max_failed_assertions: Option<u32>,
    /// Seconds a session waits for the owner's passkey.
    pub auth_window_secs: Option<u64>,
    /// Accepted bank approval keys (hex SEC1).
    #[serde(default)]
    pub bank_approval_keys: Vec<String>,
}

/// `[bank]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBank {
    /// Distinct staff approvals needed.
    pub approvals_required: Option<u32>,
    /// Approval lifetime.
    pub approval_ttl_secs: Option<u64>,
    /// Allowed staff request clock skew.
    pub staff_request_skew_secs: Option<u64>,
    /// `[[bank.staff]]`
    #[serde(default)]
    pub staff: Vec<RawStaff>,
}

/// `[[bank.staff]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaff {
    /// Staff id.
    pub id: String,
    /// Hex SEC1 k256 key.
    pub public_key: String,
    /// `viewer`, `approver`, `canceller`.
    pub roles: Vec<String>,
}

/// `[node]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// Display name.
    pub name: String,
    /// `"trustee"` or `"bank"`.
    pub role: String,
    /// Socket address to bind.
    pub listen: String,
    /// Advertised endpoint URL.
    pub endpoint: String,
    /// Serve plaintext on a non-loopback address (behind a TLS-terminating proxy only).
    #[serde(default)]
    pub insecure_plaintext: Option<bool>,
}

/// `[limits]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest gRPC message.
    pub max_message_bytes: Option<usize>,
    /// Largest wallet blob.
    pub max_blob_bytes: Option<usize>,
    /// Longest WebAuthn user name.
    pub max_user_name_len: Option<usize>,
    /// Passkey ceremony lifetime.
    pub ceremony_ttl_secs: Option<u64>,
    /// Passkey reset lifetime (its nonces; the bank's request).
    pub passkey_reset_ttl_secs: Option<u64>,
    /// Most open ceremonies.
    pub max_pending_ceremonies: Option<usize>,
    /// Most trustees per manifest.
    pub max_trustees: Option<usize>,
    /// Owner-ceremony calls per caller address per minute.
    pub owner_calls_per_minute: Option<u32>,
    /// Pending owner ceremonies per caller address.
    pub pending_ceremonies_per_caller: Option<usize>,
    /// Open `WatchEvents` streams per reader.
    pub event_streams_per_reader: Option<usize>,
    /// Open `WatchEvents` streams on the node.
    pub max_event_streams: Option<usize>,
}

/// `[webauthn]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebauthn {
    /// Relying party id.
    pub rp_id: String,
    /// Relying party name.
    #[serde(default)]
    pub rp_name: Option<String>,
    /// Allowed origins.
    pub origins: Vec<String>,
}

/// `[tls]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain (relative to the data directory unless absolute).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// SHA-256 (hex) of client certificates allowed to read the event stream (mutual TLS).
    #[serde(default)]
    pub event_readers: Vec<String>,
    /// `[tls.service_clients]`: per gRPC service (`trustee`, `recovery`, `staff`, `epochs`,
    /// `documents`), the SHA-256 (hex) of the client certificates allowed to call it.
    #[serde(default)]
    pub service_clients: std::collections::BTreeMap<String, Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Typed

/// A validated node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory it was loaded from (TLS paths are resolved against it).
    pub data_dir: PathBuf,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Bind address.
    pub listen: SocketAddr,
    /// Advertised endpoint as configured, without a trailing `/` (`http://` without TLS,
    /// `https://` with).
    pub endpoint: String,
    /// Plaintext on a non-loopback address was explicitly allowed (`node.insecure_plaintext`).
    pub insecure_plaintext: bool,
    /// Input bounds.
    pub limits: Limits,
    /// Passkey relying party.
    pub webauthn: WebauthnSettings,
    /// TLS, when configured.
    pub tls: Option<TlsSettings>,
    /// Recovery rules.
    pub recovery: RecoverySettings,
    /// Bank settings; `Some` exactly when `role` is bank.
    pub bank: Option<BankSettings>,
    /// Epoch rotation settings.
    pub epochs: EpochSettings,
    /// The document locker (`[locker]`).
    pub locker: locker::LockerConfig,
    /// The admin listener (`[admin]`).
    pub admin: admin::AdminConfig,
    /// Browsers: gRPC-Web's allowed origins (`[grpc_web]`).
    pub grpc_web: grpc_web::GrpcWebConfig,
    /// Where records are kept (`[storage]`).
    pub storage: storage::StorageConfig,
    /// What the node prunes and expires on its own (`[housekeeping]`).
    pub housekeeping: housekeeping::HousekeepingConfig,
}

/// Epoch rotation settings (`[epochs]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochSettings {
    /// A staged epoch not committed within this many seconds is dropped.
    pub staged_ttl_secs: u64,
    /// Identity keys of the trustees this node knows: to join a wallet, it needs one of them to
    /// attest the wallet's credential (empty: this node joins no wallet by rotation).
    pub known_trustee_keys: Vec<k256::PublicKey>,
}

impl Default for EpochSettings {
    fn default() -> Self {
        Self {
            staged_ttl_secs: defaults::STAGED_EPOCH_TTL_SECS,
            known_trustee_keys: Vec::new(),
        }
    }
}

/// Recovery rules every node enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySettings {
    /// Shortest delay applied.
    pub delay_floor_secs: u64,
    /// Longest delay applied.
    pub delay_ceiling_secs: u64,
    /// Session lifetime after the release time.
    pub session_ttl_secs: u64,
    /// Failed assertions in one session before it is closed (never the wallet).
    pub max_failed_assertions: u32,
    /// Seconds a session waits for the owner's passkey before it expires.
    pub auth_window_secs: u64,
    /// Bank approval keys whose approvals and cancellations this node accepts.
    pub bank_approval_keys: Vec<k256::PublicKey>,
    /// For each of `bank_approval_keys`, the bank node it is bound to (always set when there
    /// are several keys).
    pub bank_key_owners: Vec<Option<String>>,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            delay_floor_secs: defaults::DELAY_FLOOR_SECS,
            delay_ceiling_secs: defaults::DELAY_CEILING_SECS,
            session_ttl_secs: defaults::SESSION_TTL_SECS,
            max_failed_assertions: defaults::MAX_FAILED_ASSERTIONS,
            auth_window_secs: defaults::AUTH_WINDOW_SECS,
            bank_approval_keys: Vec::new(),
            bank_key_owners: Vec::new(),
        }
    }
}

impl RecoverySettings {
    /// The delay this node applies for a manifest's `recovery_delay_secs`.
    pub fn clamp_delay(&self, manifest_delay: u64) -> u64 {
        manifest_delay.clamp(self.delay_floor_secs, self.delay_ceiling_secs)
    }
}

/// The bank node's approval policy and staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankSettings {
    /// Distinct staff approvals needed ("four eyes" = 2).
    pub approvals_required: u32,
    /// Lifetime of a signed approval.
    pub approval_ttl_secs: u64,
    /// Allowed staff request clock skew.
    pub staff_request_skew_secs: u64,
    /// Staff members.
    pub staff: Vec<crate::staff::auth::StaffMember>,
}

/// Input bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest gRPC message (decoding limit).
    pub max_message_bytes: usize,
    /// Largest encrypted wallet blob.
    pub max_blob_bytes: usize,
    /// Longest WebAuthn user name (bytes).
    pub max_user_name_len: usize,
    /// Passkey ceremony lifetime.
    pub ceremony_ttl_secs: u64,
    /// How long a passkey reset's owner nonces live and, at the bank, its request: the bank's
    /// check of the customer must fit in it, so it is longer than `ceremony_ttl_secs`.
    pub passkey_reset_ttl_secs: u64,
    /// Most open ceremonies.
    pub max_pending_ceremonies: usize,
    /// Most trustees in a manifest.
    pub max_trustees: usize,
    /// Owner-ceremony calls (Begin*, passkey responses) per caller address per minute.
    pub owner_calls_per_minute: u32,
    /// Pending owner ceremonies (nonces issued, neither answered nor expired) per caller address.
    pub pending_ceremonies_per_caller: usize,
    /// Open `WatchEvents` streams per reader (staff member or mTLS identity).
    pub event_streams_per_reader: usize,
    /// Open `WatchEvents` streams on the node.
    pub max_event_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: defaults::MAX_MESSAGE_BYTES,
            max_blob_bytes: defaults::MAX_BLOB_BYTES,
            max_user_name_len: defaults::MAX_USER_NAME_LEN,
            ceremony_ttl_secs: defaults::CEREMONY_TTL_SECS,
            passkey_reset_ttl_secs: defaults::PASSKEY_RESET_TTL_SECS,
            max_pending_ceremonies: defaults::MAX_PENDING_CEREMONIES,
            max_trustees: defaults::MAX_TRUSTEES,
            owner_calls_per_minute: defaults::OWNER_CALLS_PER_MINUTE,
            pending_ceremonies_per_caller: defaults::PENDING_CEREMONIES_PER_CALLER,
            event_streams_per_reader: defaults::EVENT_STREAMS_PER_READER,
            max_event_streams: defaults::MAX_EVENT_STREAMS,
        }
    }
}

/// The WebAuthn relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnSettings {
    /// Relying party id (a registrable domain of every origin).
    pub rp_id: String,
    /// Display name.
    pub rp_name: String,
    /// Allowed origins (at least one).
    pub origins: Vec<Url>,
}

/// TLS files, resolved to absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// Client CA (PEM); `Some` means mutual TLS is required.
    pub client_ca: Option<PathBuf>,
    /// SHA-256 of the client certificates allowed to read the event stream.
    pub event_readers: Vec<[u8; 32]>,
    /// Per service, the client certificates allowed to call it; a service not listed accepts
    /// any certificate the client CA signed.
    pub service_clients: Vec<(GrpcService, Vec<[u8; 32]>)>,
}

/// The node's gRPC services, as `[tls.service_clients]` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcService {
    /// `dlocker.v1.Trustee` (enrollment, status, proofs).
    Trustee,
    /// `dlocker.v1.Recovery`.
    Recovery,
    /// `dlocker.v1.Staff` (bank node).
    Staff,
    /// `dlocker.v1.Epochs`.
    Epochs,
    /// The document locker's service.
    Documents,
}

impl GrpcService {
    /// Every service, in config order.
    pub const ALL: [GrpcService; 5] = [
        Self::Trustee,
        Self::Recovery,
        Self::Staff,
        Self::Epochs,
        Self::Documents,
    ];

    /// The key in `[tls.service_clients]`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Trustee => "trustee",
            Self::Recovery => "recovery",
            Self::Staff => "staff",
            Self::Epochs => "epochs",
            Self::Documents => "documents",
        }
    }

    /// The name refusals use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Trustee => "Trustee",
            Self::Recovery => "Recovery",
            Self::Staff => "Staff",
            Self::Epochs => "Epochs",
            Self::Documents => "Documents",
        }
    }
}

impl TlsSettings {
    /// The client certificates allowed to call `service`; `None` = any the client CA signed.
    pub fn clients_of(&self, service: GrpcService) -> Option<&[[u8; 32]]> {
        self.service_clients
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, list)| list.as_slice())
    }
}

impl NodeConfig {
    /// Loads and validates `dir/config.toml`.
    pub fn load(dir: &Path) -> Result<NodeConfig, ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let text =
            with_env_overrides(&text, std::env::vars()).map_err(|message| ConfigError::Parse {
                path: path.clone(),
                message,
            })?;
        Self::from_toml(&text, dir).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path, message },
            other => other,
        })
    }

    /// Parses and validates config text; `dir` anchors relative paths.
    pub fn from_toml(text: &str, dir: &Path) -> Result<NodeConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: dir.join(CONFIG_FILE),
            message: e.message().to_owned(),
        })?;
        let mut cfg = NodeConfig::try_from(raw)?;
        cfg.data_dir = dir.to_path_buf();
        if let Some(tls) = &mut cfg.tls {
            tls.cert = dir.join(&tls.cert);
            tls.key = dir.join(&tls.key);
            tls.client_ca = tls.client_ca.as_ref().map(|p| dir.join(p));
        }
        Ok(cfg)
    }

    /// Where the database lives.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("db")
    }

    /// Where the records are, for messages: the sled directory or the PostgreSQL schema.
    pub fn storage_label(&self) -> String {
        match &self.storage {
            storage::StorageConfig::Sled => self.db_path().display().to_string(),
            storage::StorageConfig::Postgres(pg) => format!("PostgreSQL schema {}", pg.schema),
        }
    }
}

impl TryFrom<RawConfig> for NodeConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, Self::Error> {
        let name = raw.node.name.trim().to_owned();
        if name.is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(invalid(
                "node.name",
                format!("must be 1–{MAX_NAME_LEN} printable characters"),
            ));
        }
        let role: Role = raw.node.role.parse()?;
        let listen: SocketAddr = raw.node.listen.parse().map_err(|_| {
            invalid(
                "node.listen",
                format!(
                    "{:?} is not a socket address like 127.0.0.1:7101",
                    raw.node.listen
                ),
            )
        })?;
        let endpoint = Url::parse(&raw.node.endpoint).map_err(|e| {
            invalid(
                "node.endpoint",
                format!("{:?} is not a URL: {e}", raw.node.endpoint),
            )
        })?;
        let want_scheme = if raw.tls.is_some() { "https" } else { "http" };
        if endpoint.scheme() != want_scheme {
            return Err(invalid(
                "node.endpoint",
                format!(
                    "must use {want_scheme}:// because TLS is {}",
                    if raw.tls.is_some() { "on" } else { "off" }
                ),
            ));
        }
        if endpoint.host_str().is_none() || endpoint.port_or_known_default().is_none() {
            return Err(invalid(
                "node.endpoint",
                "needs a host and port, e.g. http://127.0.0.1:7101",
            ));
        }
        let endpoint = raw.node.endpoint.trim().trim_end_matches('/').to_owned();
        // Plaintext exposes passkey ceremonies and metadata to the network: only loopback gets it
        // without an explicit, greppable opt-in.
        let insecure_plaintext = raw.node.insecure_plaintext.unwrap_or(false);
        if raw.tls.is_none() && !listen.ip().is_loopback() && !insecure_plaintext {
            return Err(invalid(
                "node.listen",
                format!(
                    "{listen} is not a loopback address and [tls] is not configured; add a [tls] \
                     section (init: --tls-cert, --tls-key) or, only behind a TLS-terminating \
                     proxy, set node.insecure_plaintext = true (init: --insecure-plaintext)"
                ),
            ));
        }

        let limits = limits_from(&raw.limits)?;
        let webauthn = webauthn_from(raw.webauthn)?;
        let grpc_web = grpc_web::grpc_web_config(&raw.grpc_web, &webauthn)?;
        let tls = raw
            .tls
            .map(|t| {
                let event_readers =
                    t.event_readers
                        .iter()
                        .map(|h| {
                            let mut b = [0u8; 32];
                            hex::decode_to_slice(h.trim(), &mut b).map(|()| b).map_err(|_| {
                            invalid(
                                "tls.event_readers",
                                "each entry is the hex SHA-256 of a client certificate (DER)",
                            )
                        })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                if !event_readers.is_empty() && t.client_ca.is_none() {
                    return Err(invalid(
                        "tls.event_readers",
                        "needs tls.client_ca: readers are identified by their client certificate",
                    ));
                }
                let mut service_clients = Vec::new();
                for (name, list) in &t.service_clients {
                    let service = GrpcService::ALL
                        .into_iter()
                        .find(|s| s.key() == name)
                        .ok_or_else(|| {
                            invalid(
                                "tls.service_clients",
                                format!(
                                    "{name:?} is not a service; use trustee, recovery, staff, \
                                        epochs or documents"
                                ),
                            )
                        })?;
                    let hashes = list
                        .iter()
                        .map(|h| {
                            let mut b = [0u8; 32];
                            hex::decode_to_slice(h.trim(), &mut b).map(|()| b).map_err(|_| {
                                invalid(
                                    "tls.service_clients",
                                    "each entry is the hex SHA-256 of a client certificate (DER)",
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    service_clients.push((service, hashes));
                }
                if !service_clients.is_empty() && t.client_ca.is_none() {
                    return Err(invalid(
                        "tls.service_clients",
                        "needs tls.client_ca: callers are identified by their client certificate",
                    ));
                }
                Ok(TlsSettings {
                    cert: t.cert,
                    key: t.key,
                    client_ca: t.client_ca,
                    event_readers,
                    service_clients,
                })
            })
            .transpose()?;
        let recovery = recovery_from(&raw.recovery)?;
        let bank = match (role, raw.bank) {
            (Role::Bank, b) => Some(bank_from(&b.unwrap_or_default())?),
            (Role::Trustee, None) => None,
            (Role::Trustee, Some(_)) => {
                return Err(invalid(
                    "bank",
                    "only a node with role = \"bank\" has a [bank] section",
                ));
            }
        };

        let locker = locker::locker_config(&raw.locker)?;
        let admin = admin::admin_config(&raw.admin)?;
        let storage = storage::storage_config(&raw.storage)?;
        let housekeeping = housekeeping::housekeeping_config(&raw.housekeeping)?;
        if admin.listen == Some(listen) {
            return Err(invalid(
                "admin.listen",
                format!("{listen} is also node.listen; give the admin listener its own port"),
            ));
        }
        Ok(NodeConfig {
            grpc_web,
            storage,
            housekeeping,
            locker,
            admin,
            data_dir: PathBuf::new(),
            name,
            role,
            listen,
            endpoint,
            insecure_plaintext,
            limits,
            webauthn,
            tls,
            recovery,
            bank,
            epochs: EpochSettings {
                staged_ttl_secs: in_range(
                    "epochs.staged_ttl_secs",
                    raw.epochs.staged_ttl_secs,
                    defaults::STAGED_EPOCH_TTL_SECS,
                    1,
                    366 * 24 * 3600,
                )?,
                known_trustee_keys: known_trustee_keys_from(&raw.epochs.known_trustee_keys)?,
            },
        })
    }
}

/// Longest staff id (it appears in signed approvals).
pub const MAX_STAFF_ID_LEN: usize = dlocker_proto::statement::MAX_ID_LEN;
/// Most staff members and accepted bank keys.
pub const MAX_LIST_LEN: usize = 256;

/// Parses a hex SEC1 k256 public key from the config.
pub fn parse_public_key(
    field: &'static str,
    hex_key: &str,
) -> Result<k256::PublicKey, ConfigError> {
    dlocker_proto::keys::public_key_from_hex(hex_key.trim()).map_err(|_| {
        invalid(
            field,
            format!("{hex_key:?} is not a hex SEC1 secp256k1 public key"),
        )
    })
}

fn known_trustee_keys_from(list: &[String]) -> Result<Vec<k256::PublicKey>, ConfigError> {
    if list.len() > MAX_LIST_LEN {
        return Err(invalid(
            "epochs.known_trustee_keys",
            format!("at most {MAX_LIST_LEN} keys"),
        ));
    }
    let mut keys = Vec::with_capacity(list.len());
    for k in list {
        let pk = parse_public_key("epochs.known_trustee_keys", k)?;
        if !keys.contains(&pk) {
            keys.push(pk);
        }
    }
    Ok(keys)
}

/// Whether `id` is a usable staff id.
pub fn valid_staff_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_STAFF_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

fn recovery_from(raw: &RawRecovery) -> Result<RecoverySettings, ConfigError> {
    let year = 366 * 24 * 3600;
    let delay_floor_secs = in_range(
        "recovery.delay_floor_secs",
        raw.delay_floor_secs,
        defaults::DELAY_FLOOR_SECS,
        0,
        year,
    )?;
    let delay_ceiling_secs = in_range(
        "recovery.delay_ceiling_secs",
        raw.delay_ceiling_secs,
        defaults::DELAY_CEILING_SECS,
        0,
        year,
    )?;
    if delay_ceiling_secs < delay_floor_secs {
        return Err(invalid(
            "recovery.delay_ceiling_secs",
            format!("{delay_ceiling_secs} is below delay_floor_secs {delay_floor_secs}"),
        ));
    }
    if raw.bank_approval_keys.len() > MAX_LIST_LEN {
        return Err(invalid(
            "recovery.bank_approval_keys",
            format!("at most {MAX_LIST_LEN} keys"),
        ));
    }
    // "HEX" or "BANK_NODE_ID=HEX": a key bound to the bank node whose approvals it signs.
    let mut keys = Vec::new();
    let mut bank_key_owners = Vec::new();
    for entry in &raw.bank_approval_keys {
        let (owner, k) = match entry.split_once('=') {
            Some((id, k)) => {
                let id = id.trim();
                if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        "recovery.bank_approval_keys",
                        format!("{id:?} is not a node id (32 hex characters) in \"NODE_ID=KEY\""),
                    ));
                }
                (Some(id.to_ascii_lowercase()), k)
            }
            None => (None, entry.as_str()),
        };
        let pk = parse_public_key("recovery.bank_approval_keys", k)?;
        if !keys.contains(&pk) {
            keys.push(pk);
            bank_key_owners.push(owner);
        }
    }
    // With several banks, an unbound key could approve another bank's wallets.
    if keys.len() > 1 && bank_key_owners.iter().any(Option::is_none) {
        return Err(invalid(
            "recovery.bank_approval_keys",
            "a node that accepts several banks' keys must bind each to its bank: write \
                \"BANK_NODE_ID=KEY\" (trustee-node config accept-bank-key --bank-node-id ID KEY)",
        ));
    }
    Ok(RecoverySettings {
        delay_floor_secs,
        delay_ceiling_secs,
        session_ttl_secs: in_range(
            "recovery.session_ttl_secs",
            raw.session_ttl_secs,
            defaults::SESSION_TTL_SECS,
            60,
            year,
        )?,
        max_failed_assertions: in_range(
            "recovery.max_failed_assertions",
            raw.max_failed_assertions,
            defaults::MAX_FAILED_ASSERTIONS,
            1,
            1000,
        )?,
        auth_window_secs: in_range(
            "recovery.auth_window_secs",
            raw.auth_window_secs,
            defaults::AUTH_WINDOW_SECS,
            10,
            7 * 24 * 3600,
        )?,
        bank_approval_keys: keys,
        bank_key_owners,
    })
}

/// Applies `DLOCKER_<SECTION>__<KEY>=VALUE` variables (how container platforms configure a
/// service) over the config text: `DLOCKER_LIMITS__OWNER_CALLS_PER_MINUTE=60` sets
/// `[limits] owner_calls_per_minute = 60`. The value is read as a TOML value (a number, a
/// boolean, an array) or else taken as a string; the result is validated like the file itself,
/// so a misspelt key is refused by name. Variables without `__` are not config.
pub fn with_env_overrides(
    text: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<String, String> {
    let overrides: Vec<(String, String, String)> = vars
        .into_iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("DLOCKER_")?;
            let (section, key) = rest.split_once("__")?;
            Some((section.to_ascii_lowercase(), key.to_ascii_lowercase(), v))
        })
        .collect();
    if overrides.is_empty() {
        return Ok(text.to_owned());
    }
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    for (section, key, v) in overrides {
        let value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(v));
        let table = doc
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| {
                format!(
                    "DLOCKER_{}__…: [{section}] is not a table",
                    section.to_ascii_uppercase()
                )
            })?;
        table.insert(key, value);
    }
    toml::to_string(&doc).map_err(|e| e.to_string())
}

/// Parses a staff role name.
pub fn parse_staff_role(s: &str) -> Result<crate::staff::auth::StaffRole, ConfigError> {
    use crate::staff::auth::StaffRole;
    match s.trim() {
        "viewer" => Ok(StaffRole::Viewer),
        "approver" => Ok(StaffRole::Approver),
        "canceller" => Ok(StaffRole::Canceller),
        "operator" => Ok(StaffRole::Operator),
        "admin" => Ok(StaffRole::Admin),
        other => Err(invalid(
            "bank.staff.roles",
            format!("{other:?} is not viewer, approver, canceller, operator or admin"),
        )),
    }
}

/// Whether `id` is a valid staff id.
pub fn is_valid_staff_id(id: &str) -> bool {
    valid_staff_id(id)
}

fn bank_from(raw: &RawBank) -> Result<BankSettings, ConfigError> {
    if raw.staff.len() > MAX_LIST_LEN {
        return Err(invalid(
            "bank.staff",
            format!("at most {MAX_LIST_LEN} staff members"),
        ));
    }
    let mut staff: Vec<crate::staff::auth::StaffMember> = Vec::new();
    for m in &raw.staff {
        if !valid_staff_id(&m.id) {
            return Err(invalid(
                "bank.staff.id",
                format!(
                    "{:?} must be 1–{MAX_STAFF_ID_LEN} characters of A-Z a-z 0-9 . _ @ -",
                    m.id
                ),
            ));
        }
        let public_key = parse_public_key("bank.staff.public_key", &m.public_key)?;
        if staff
            .iter()
            .any(|s| s.id == m.id || s.public_key == public_key)
        {
            return Err(invalid(
                "bank.staff",
                format!("staff {:?}: each id and each key may appear once", m.id),
            ));
        }
        if m.roles.is_empty() {
            return Err(invalid(
                "bank.staff.roles",
                format!("staff {:?} has no role", m.id),
            ));
        }
        let roles = m
            .roles
            .iter()
            .map(|r| parse_staff_role(r))
            .collect::<Result<Vec<_>, _>>()?;
        staff.push(crate::staff::auth::StaffMember {
            id: m.id.clone(),
            public_key,
            roles,
        });
    }
    let approvals_required = in_range(
        "bank.approvals_required",
        raw.approvals_required,
        defaults::APPROVALS_REQUIRED,
        1,
        16,
    )?;
    // A policy no set of staff can satisfy would only surface when a customer is waiting. An
    // empty staff list is a node not yet staffed (it approves nothing and says so at start).
    let approvers = staff
        .iter()
        .filter(|s| s.roles.contains(&crate::staff::auth::StaffRole::Approver))
        .count();
    if !staff.is_empty() && approvers < approvals_required as usize {
        return Err(invalid(
            "bank.approvals_required",
            format!(
                "{approvals_required} approvals can never be met by {approvers} staff member(s) \
                 with the approver role; add approvers (init --staff ID=KEY:approver, repeatable) \
                 or lower bank.approvals_required"
            ),
        ));
    }
    Ok(BankSettings {
        approvals_required,
        approval_ttl_secs: in_range(
            "bank.approval_ttl_secs",
            raw.approval_ttl_secs,
            defaults::APPROVAL_TTL_SECS,
            60,
            7 * 24 * 3600,
        )?,
        staff_request_skew_secs: in_range(
            "bank.staff_request_skew_secs",
            raw.staff_request_skew_secs,
            defaults::STAFF_REQUEST_SKEW_SECS,
            5,
            3600,
        )?,
        staff,
    })
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &'static str,
    value: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(invalid(field, format!("{v} is outside {min}..={max}")));
    }
    Ok(v)
}

fn limits_from(raw: &RawLimits) -> Result<Limits, ConfigError> {
    let max_message_bytes = in_range(
        "limits.max_message_bytes",
        raw.max_message_bytes,
        defaults::MAX_MESSAGE_BYTES,
        MESSAGE_OVERHEAD_BYTES + 1,
        64 * 1024 * 1024,
    )?;
    let max_blob_bytes = in_range(
        "limits.max_blob_bytes",
        raw.max_blob_bytes,
        defaults::MAX_BLOB_BYTES,
        1,
        48 * 1024 * 1024,
    )?;
    if max_blob_bytes + MESSAGE_OVERHEAD_BYTES > max_message_bytes {
        return Err(invalid(
            "limits.max_blob_bytes",
            format!(
                "{max_blob_bytes} does not fit in max_message_bytes {max_message_bytes} (leave \
                    {MESSAGE_OVERHEAD_BYTES} bytes for the rest of the request)"
            ),
        ));
    }
    Ok(Limits {
        max_message_bytes,
        max_blob_bytes,
        max_user_name_len: in_range(
            "limits.max_user_name_len",
            raw.max_user_name_len,
            defaults::MAX_USER_NAME_LEN,
            1,
            256,
        )?,
        ceremony_ttl_secs: in_range(
            "limits.ceremony_ttl_secs",
            raw.ceremony_ttl_secs,
            defaults::CEREMONY_TTL_SECS,
            30,
            3600,
        )?,
        passkey_reset_ttl_secs: in_range(
            "limits.passkey_reset_ttl_secs",
            raw.passkey_reset_ttl_secs,
            defaults::PASSKEY_RESET_TTL_SECS,
            60,
            86_400,
        )?,
        max_pending_ceremonies: in_range(
            "limits.max_pending_ceremonies",
            raw.max_pending_ceremonies,
            defaults::MAX_PENDING_CEREMONIES,
            1,
            1_000_000,
        )?,
        max_trustees: in_range(
            "limits.max_trustees",
            raw.max_trustees,
            defaults::MAX_TRUSTEES,
            1,
            dlocker_proto::MAX_TRUSTEES,
        )?,
        owner_calls_per_minute: in_range(
            "limits.owner_calls_per_minute",
            raw.owner_calls_per_minute,
            defaults::OWNER_CALLS_PER_MINUTE,
            1,
            1_000_000,
        )?,
        pending_ceremonies_per_caller: in_range(
            "limits.pending_ceremonies_per_caller",
            raw.pending_ceremonies_per_caller,
            defaults::PENDING_CEREMONIES_PER_CALLER,
            1,
            1_000_000,
        )?,
        event_streams_per_reader: in_range(
            "limits.event_streams_per_reader",
            raw.event_streams_per_reader,
            defaults::EVENT_STREAMS_PER_READER,
            1,
            10_000,
        )?,
        max_event_streams: in_range(
            "limits.max_event_streams",
            raw.max_event_streams,
            defaults::MAX_EVENT_STREAMS,
            1,
            100_000,
        )?,
    })
}

/// Whether `origin` may be used with relying party id `rp_id` (the WebAuthn rule: the origin's
/// host is the rp id or a subdomain of it).
pub fn origin_matches_rp_id(origin: &Url, rp_id: &str) -> bool {
    origin
        .domain()
        .map(|d| d == rp_id || d.ends_with(&format!(".{rp_id}")))
        .unwrap_or(false)
}

fn webauthn_from(raw: RawWebauthn) -> Result<WebauthnSettings, ConfigError> {
    let rp_id = raw.rp_id.trim().to_owned();
    if rp_id.is_empty()
        || rp_id.len() > 253
        || !rp_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(invalid(
            "webauthn.rp_id",
            "must be a domain name such as \"bank.example\"",
        ));
    }
    let rp_name = raw.rp_name.unwrap_or_else(|| defaults::RP_NAME.to_owned());
    if rp_name.is_empty() || rp_name.len() > MAX_NAME_LEN || rp_name.chars().any(char::is_control) {
        return Err(invalid(
            "webauthn.rp_name",
            format!("must be 1–{MAX_NAME_LEN} printable characters"),
        ));
    }
    if raw.origins.is_empty() {
        return Err(invalid(
            "webauthn.origins",
            "list at least one origin, e.g. \"https://bank.example\"",
        ));
    }
    let mut origins = Vec::with_capacity(raw.origins.len());
    for o in &raw.origins {
        let url = Url::parse(o)
            .map_err(|e| invalid("webauthn.origins", format!("{o:?} is not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            // A passkey ceremony over plain http can be read and steered on the network; browsers
            // themselves allow it only on localhost.
            "http" if is_loopback_host(&url) => {}
            "http" => {
                return Err(invalid(
                    "webauthn.origins",
                    format!(
                        "{o:?} is plain http; use https:// (http:// is allowed only for \
                         localhost, 127.0.0.0/8 and [::1])"
                    ),
                ));
            }
            _ => {
                return Err(invalid(
                    "webauthn.origins",
                    format!("{o:?} must be an https:// origin"),
                ));
            }
        }
        if !origin_matches_rp_id(&url, &rp_id) {
            return Err(invalid(
                "webauthn.origins",
                format!("{o:?} is not on rp_id {rp_id:?} or a subdomain of it"),
            ));
        }
        origins.push(url);
    }
    Ok(WebauthnSettings {
        rp_id,
        rp_name,
        origins,
    })
}

/// Whether a URL's host is `localhost` or a loopback address.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Renders a documented `config.toml`, as `trustee-node init` writes it.
pub fn render_config_toml(
    name: &str,
    role: Role,
    listen: SocketAddr,
    endpoint: &str,
    rp_id: &str,
    origins: &[String],
) -> String {
    // Values go through toml's own string encoding so a name with quotes stays valid TOML.
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let origins = origins.iter().map(|o| q(o)).collect::<Vec<_>>().join(", ");
    format!(
        r#"# dLocker trustee node configuration, written by `trustee-node init`.
# Paths are relative to this file's directory. Restart the node after editing.

[node]
# Display name, shown by GetInfo and in the trustees file.
name = {name}
# "trustee" (an independent institution) or "bank" (the bank's own node).
role = {role}
# Socket address to bind.
listen = {listen}
# The URL clients use to reach this node, advertised by GetInfo.
# Use https:// when the [tls] section is enabled, http:// otherwise.
endpoint = {endpoint}

[limits]
# Largest gRPC request accepted, in bytes.
max_message_bytes = {mmb}
# Largest encrypted wallet blob accepted at enrollment, in bytes
# (must leave {overhead} bytes of max_message_bytes for the rest of the request).
max_blob_bytes = {mbb}
# Longest WebAuthn user name, in bytes.
max_user_name_len = {mun}
# Seconds a passkey ceremony (BeginEnrollment -> FinishEnrollment) stays valid.
ceremony_ttl_secs = {ttl}
# Seconds a passkey reset's ceremony stays valid (60-86400): the owner nonces it spends and, on
# the bank node, the request its staff approve. The bank's check of the customer must fit in it.
passkey_reset_ttl_secs = {prttl}
# Most passkey ceremonies open at once; BeginEnrollment is refused beyond this.
max_pending_ceremonies = {mpc}
# Most trustees a manifest may list.
max_trustees = {mt}
# Owner-ceremony calls (BeginEnrollment, OpenRecovery, BeginOwnerCancel, BeginEpochAction and
# the passkey responses) per caller address per minute; beyond it RESOURCE_EXHAUSTED with a
# retry hint. Failed passkey responses never lock a wallet.
owner_calls_per_minute = {ocpm}
# Owner ceremonies one caller address may hold pending (begun, neither answered nor expired);
# beyond it RESOURCE_EXHAUSTED until one completes or expires. Keeps a few addresses from
# filling max_pending_ceremonies for everyone.
pending_ceremonies_per_caller = {pcpc}
# WatchEvents streams one reader (staff member or event-reader certificate) may hold open, and
# streams open on the node in all; beyond either, RESOURCE_EXHAUSTED until a stream closes.
event_streams_per_reader = {espr}
max_event_streams = {mes}

[webauthn]
# Relying party id: the wallet provider's domain. Changing it invalidates registered passkeys.
rp_id = {rp_id}
rp_name = {rp_name}
# Origins the wallet app's passkey ceremonies come from; each must be on rp_id.
origins = [{origins}]

# TLS (rustls). Absent = plaintext HTTP/2, for loopback and tests only.
# [tls]
# cert = "tls/node.crt"              # PEM certificate chain
# key = "tls/node.key"               # PEM private key
# client_ca = "tls/clients-ca.crt"   # optional: require client certificates signed by this CA
{storage}
[recovery]
# The node never releases a share sooner than this many seconds after a recovery opens...
delay_floor_secs = {floor}
# ...nor waits longer than this, whatever the wallet's manifest says.
delay_ceiling_secs = {ceiling}
# A recovery session expires this many seconds after its release time.
session_ttl_secs = {sttl}
# Failed passkey assertions in ONE recovery session before that session is closed. The wallet is
# never locked: passkeys cannot be guessed, and a lock would only let strangers lock owners out.
max_failed_assertions = {mfa}
# A session the owner has not authenticated within this many seconds expires; until then it
# blocks nothing (other sessions, rotations).
auth_window_secs = {auth_window}
# Bank approval public keys (hex SEC1) whose approvals and cancellations this node accepts.
# Add one with `trustee-node config accept-bank-key --data-dir DIR [--bank-node-id ID] HEX`;
# a node that accepts several banks must bind each key to its bank ("BANK_NODE_ID=HEX") so no
# bank's key approves another bank's wallets. A bank node also
# accepts its own key (keys/bank-approval.key) without listing it.
bank_approval_keys = []

[epochs]
# Seconds a staged epoch (phase 1 of a share refresh / trustee rotation) waits for the owner's
# commit before this node drops it. The wallet's active epoch is never affected by expiry.
staged_ttl_secs = {staged_ttl}
# Identity keys (hex SEC1, `trustee-node show` on each) of the trustees this node knows. A
# rotation that adds this node to a wallet needs one of them, holding the wallet, to attest the
# wallet's passkey credential; with none listed this node joins no wallet by rotation.
# Add one with `trustee-node config accept-trustee-key --data-dir DIR HEX`.
known_trustee_keys = []
{bank}"#,
        storage = storage::STORAGE_SECTION,
        name = q(name),
        role = q(role.as_str()),
        listen = q(&listen.to_string()),
        endpoint = q(endpoint),
        mmb = defaults::MAX_MESSAGE_BYTES,
        overhead = MESSAGE_OVERHEAD_BYTES,
        mbb = defaults::MAX_BLOB_BYTES,
        mun = defaults::MAX_USER_NAME_LEN,
        ttl = defaults::CEREMONY_TTL_SECS,
        prttl = defaults::PASSKEY_RESET_TTL_SECS,
        mpc = defaults::MAX_PENDING_CEREMONIES,
        mt = defaults::MAX_TRUSTEES,
        ocpm = defaults::OWNER_CALLS_PER_MINUTE,
        pcpc = defaults::PENDING_CEREMONIES_PER_CALLER,
        espr = defaults::EVENT_STREAMS_PER_READER,
        mes = defaults::MAX_EVENT_STREAMS,
        rp_id = q(rp_id),
        rp_name = q(defaults::RP_NAME),
        floor = defaults::DELAY_FLOOR_SECS,
        ceiling = defaults::DELAY_CEILING_SECS,
        sttl = defaults::SESSION_TTL_SECS,
        mfa = defaults::MAX_FAILED_ASSERTIONS,
        auth_window = defaults::AUTH_WINDOW_SECS,
        staged_ttl = defaults::STAGED_EPOCH_TTL_SECS,
        bank = if role == Role::Bank {
            bank_section()
        } else {
            String::new()
        },
    )
}

fn bank_section() -> String {
    format!(
        r#"
# Staff members allowed to sign requests follow this section as [[bank.staff]] tables. Add one with
# `trustee-node config add-staff --data-dir DIR --id ID --public-key HEX --roles approver,canceller`
# (or `init --staff ID=HEX[:role,role]`). Roles: viewer (list), approver, canceller,
# operator (document locker: approve and suspend issuers and requesters). E.g.:
#   [[bank.staff]]
#   id = "alice"
#   public_key = "02..."
#   roles = ["approver", "canceller"]
[bank]
# Distinct staff approvals needed before this node signs a bank approval ("four eyes" = 2).
approvals_required = {ar}
# Seconds a signed bank approval stays valid.
approval_ttl_secs = {ttl}
# Allowed difference between a staff request's timestamp and this node's clock.
staff_request_skew_secs = {skew}
{locker}"#,
        ar = defaults::APPROVALS_REQUIRED,
        ttl = defaults::APPROVAL_TTL_SECS,
        skew = defaults::STAFF_REQUEST_SKEW_SECS,
        locker = locker::LOCKER_SECTION,
    )
}

/// Edits of `config.toml` that keep its comments (`trustee-node config ...` and `init` flags).
/// Every edit is validated as a whole config before the file is replaced.
pub mod edit {
    use super::{CONFIG_FILE, ConfigError, NodeConfig, invalid, parse_public_key, valid_staff_id};
    use crate::staff::auth::StaffRole;
    use std::path::Path;
    use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

    /// A config file being edited.
    #[derive(Debug, Clone)]
    pub struct ConfigDoc(DocumentMut);

    impl ConfigDoc {
        /// Parses config text.
        pub fn parse(text: &str, dir: &Path) -> Result<Self, ConfigError> {
            text.parse::<DocumentMut>()
                .map(Self)
                .map_err(|e| ConfigError::Parse {
                    path: dir.join(CONFIG_FILE),
                    message: e.to_string(),
                })
        }

        /// Reads `dir/config.toml`.
        pub fn load(dir: &Path) -> Result<Self, ConfigError> {
            let path = dir.join(CONFIG_FILE);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| ConfigError::Read { path, source })?;
            Self::parse(&text, dir)
        }

        /// Validates the edited config and atomically replaces `dir/config.toml`.
        pub fn save(&self, dir: &Path) -> Result<NodeConfig, ConfigError> {
            let text = self.to_string();
            let cfg = NodeConfig::from_toml(&text, dir)?;
            let path = dir.join(CONFIG_FILE);
            let tmp = dir.join(format!("{CONFIG_FILE}.tmp"));
            let write = |p: &Path| -> std::io::Result<()> {
                use std::io::Write as _;
                let mut f = std::fs::File::create(p)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()
            };
            write(&tmp)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|source| ConfigError::Read { path, source })?;
            Ok(cfg)
        }

        fn section(&mut self, name: &'static str) -> Result<&mut Table, ConfigError> {
            if !self.0.contains_key(name) {
                self.0.insert(name, Item::Table(Table::new()));
            }
            self.0[name]
                .as_table_mut()
                .ok_or_else(|| invalid(name, "is not a table"))
        }

        /// Adds a bank approval key to `recovery.bank_approval_keys`: `"HEX"`, or
        /// `"BANK_NODE_ID=HEX"` bound to the bank whose approvals it signs. False if that key was
        /// already there with that binding; a new binding replaces the old entry.
        pub fn accept_bank_key(&mut self, entry: &str) -> Result<bool, ConfigError> {
            let (owner, hex_key) = match entry.split_once('=') {
                Some((id, k)) => (Some(id.trim().to_ascii_lowercase()), k),
                None => (None, entry),
            };
            let key = parse_public_key("recovery.bank_approval_keys", hex_key)?;
            let rec = self.section("recovery")?;
            if !rec.contains_key("bank_approval_keys") {
                rec.insert("bank_approval_keys", value(Array::new()));
            }
            let arr = rec["bank_approval_keys"]
                .as_array_mut()
                .ok_or_else(|| invalid("recovery.bank_approval_keys", "is not a list"))?;
            let line = match &owner {
                Some(id) => format!("{id}={}", dlocker_proto::keys::public_key_hex(&key)),
                None => dlocker_proto::keys::public_key_hex(&key),
            };
            let same_key = |s: &str| {
                let k = s.split_once('=').map_or(s, |(_, k)| k);
                dlocker_proto::keys::public_key_from_hex(k.trim())
                    .map(|k| k == key)
                    .unwrap_or(false)
            };
            if arr.iter().filter_map(|v| v.as_str()).any(|s| s == line) {
                return Ok(false);
            }
            arr.retain(|v| !v.as_str().is_some_and(same_key));
            arr.push(line);
            Ok(true)
        }

        /// Adds a trustee identity key to `[epochs] known_trustee_keys`; `false` when it is
        /// there already.
        pub fn accept_trustee_key(&mut self, hex_key: &str) -> Result<bool, ConfigError> {
            let key = parse_public_key("epochs.known_trustee_keys", hex_key)?;
            let epochs = self.section("epochs")?;
            if !epochs.contains_key("known_trustee_keys") {
                epochs.insert("known_trustee_keys", value(Array::new()));
            }
            let arr = epochs["known_trustee_keys"]
                .as_array_mut()
                .ok_or_else(|| invalid("epochs.known_trustee_keys", "is not a list"))?;
            let known = arr.iter().filter_map(|v| v.as_str()).any(|s| {
                dlocker_proto::keys::public_key_from_hex(s.trim()).is_ok_and(|k| k == key)
            });
            if known {
                return Ok(false);
            }
            arr.push(dlocker_proto::keys::public_key_hex(&key));
            Ok(true)
        }

        /// Appends a `[[bank.staff]]` entry (validation on save refuses duplicate ids or keys).
        pub fn add_staff(
            &mut self,
            id: &str,
            hex_key: &str,
            roles: &[StaffRole],
        ) -> Result<(), ConfigError> {
            if !valid_staff_id(id) {
                return Err(invalid(
                    "bank.staff.id",
                    format!(
                        "{id:?} must be 1–{} characters of A-Z a-z 0-9 . _ @ -",
                        super::MAX_STAFF_ID_LEN
                    ),
                ));
            }
            let key = parse_public_key("bank.staff.public_key", hex_key)?;
            if roles.is_empty() {
                return Err(invalid("bank.staff.roles", "give at least one role"));
            }
            let role = self
                .0
                .get("node")
                .and_then(|n| n.get("role"))
                .and_then(|r| r.as_str())
                .unwrap_or_default();
            if role != "bank" {
                return Err(invalid(
                    "bank.staff",
                    "staff can only be added to a node with role = \"bank\"",
                ));
            }
            let bank = self.section("bank")?;
            if !bank.contains_key("staff") {
                bank.insert("staff", Item::ArrayOfTables(ArrayOfTables::new()));
            }
            let staff = bank["staff"]
                .as_array_of_tables_mut()
                .ok_or_else(|| invalid("bank.staff", "is not a list of [[bank.staff]] tables"))?;
            let mut t = Table::new();
            t.insert("id", value(id));
            t.insert(
                "public_key",
                value(dlocker_proto::keys::public_key_hex(&key)),
            );
            let mut r = Array::new();
            for role in roles {
                r.push(match role {
                    StaffRole::Viewer => "viewer",
                    StaffRole::Approver => "approver",
                    StaffRole::Canceller => "canceller",
                    StaffRole::Operator => "operator",
                    StaffRole::Admin => "admin",
                });
            }
            t.insert("roles", value(r));
            staff.push(t);
            Ok(())
        }

        /// Sets a boolean key, e.g. (`node`, `insecure_plaintext`, true).
        pub fn set_bool(
            &mut self,
            section: &'static str,
            key: &str,
            v: bool,
        ) -> Result<(), ConfigError> {
            self.set_item(section, key, value(v))
        }

        /// Sets a string value in `section`.
        pub fn set_string(
            &mut self,
            section: &'static str,
            key: &str,
            v: &str,
        ) -> Result<(), ConfigError> {
            self.set_item(section, key, value(v))
        }

        /// Sets `key` in `section` to `item`. Assigning through the index keeps the key's
        /// comments; insert would drop them.
        fn set_item(
            &mut self,
            section: &'static str,
            key: &str,
            item: Item,
        ) -> Result<(), ConfigError> {
            let t = self.section(section)?;
            match t.get_mut(key) {
                Some(existing) => *existing = item,
                None => {
                    t.insert(key, item);
                }
            }
            Ok(())
        }

        /// Writes the `[tls]` section (paths as given: relative ones are relative to the data
        /// directory).
        pub fn set_tls(
            &mut self,
            cert: &Path,
            key: &Path,
            client_ca: Option<&Path>,
        ) -> Result<(), ConfigError> {
            let s = |p: &Path| {
                p.to_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid("tls", format!("{} is not UTF-8", p.display())))
            };
            let mut t = Table::new();
            t.insert("cert", value(s(cert)?));
            t.insert("key", value(s(key)?));
            if let Some(ca) = client_ca {
                t.insert("client_ca", value(s(ca)?));
            }
            self.0.insert("tls", Item::Table(t));
            Ok(())
        }

        /// Sets an integer key, e.g. (`bank`, `approvals_required`, 2).
        pub fn set_integer(
            &mut self,
            section: &'static str,
            key: &str,
            v: u64,
        ) -> Result<(), ConfigError> {
            let v =
                i64::try_from(v).map_err(|_| invalid(section, format!("{key} is too large")))?;
            self.set_item(section, key, value(v))
        }
    }

    impl std::fmt::Display for ConfigDoc {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> String {
        render_config_toml(
            "bank \"one\"",
            Role::Bank,
            "127.0.0.1:7101".parse().expect("addr"),
            "http://127.0.0.1:7101",
            "localhost",
            &["https://localhost".to_owned()],
        )
    }

    #[test]
    fn rendered_config_parses_back() {
        let dir = Path::new("/data/node");
        let cfg = NodeConfig::from_toml(&rendered(), dir).expect("valid");
        assert_eq!(cfg.name, "bank \"one\"");
        assert_eq!(cfg.role, Role::Bank);
        assert_eq!(cfg.listen.port(), 7101);
        assert_eq!(cfg.endpoint, "http://127.0.0.1:7101");
        assert_eq!(cfg.limits, Limits::default());
        assert_eq!(cfg.webauthn.rp_id, "localhost");
        assert_eq!(cfg.webauthn.origins.len(), 1);
        assert!(cfg.tls.is_none());
        assert_eq!(cfg.db_path(), dir.join("db"));
    }

    fn with(edit: impl Fn(&mut toml::Table)) -> Result<NodeConfig, ConfigError> {
        let mut t: toml::Table = toml::from_str(&rendered()).expect("toml");
        edit(&mut t);
        NodeConfig::from_toml(&toml::to_string(&t).expect("ser"), Path::new("/d"))
    }

    #[test]
    fn environment_overrides_config_values() {
        let vars = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let text = with_env_overrides(
            &rendered(),
            vars(&[
                ("DLOCKER_LIMITS__OWNER_CALLS_PER_MINUTE", "7"),
                ("DLOCKER_NODE__NAME", "renamed"),
                ("DLOCKER_KEEP_TEST_DIRS", "1"),
                ("PATH", "/bin"),
            ]),
        )
        .expect("applied");
        let cfg = NodeConfig::from_toml(&text, Path::new("/d")).expect("valid");
        assert_eq!(cfg.limits.owner_calls_per_minute, 7);
        assert_eq!(cfg.name, "renamed");
        let typo = with_env_overrides(&rendered(), vars(&[("DLOCKER_LIMITS__OWNER_CALS", "7")]))
            .expect("applied");
        let e = NodeConfig::from_toml(&typo, Path::new("/d")).expect_err("unknown key");
        assert!(e.to_string().contains("owner_cals"), "{e}");
    }

    #[test]
    fn passkey_reset_ttl_is_a_setting_within_bounds() {
        use toml::Value::Integer;
        let ttl = |v: i64| with(|t| set(t, "limits", "passkey_reset_ttl_secs", Integer(v)));
        assert_eq!(ttl(600).expect("valid").limits.passkey_reset_ttl_secs, 600);
        assert_eq!(ttl(60).expect("lowest").limits.passkey_reset_ttl_secs, 60);
        assert_eq!(
            ttl(86_400).expect("highest").limits.passkey_reset_ttl_secs,
            86_400
        );
        assert_eq!(field_of(ttl(59)), "limits.passkey_reset_ttl_secs");
        assert_eq!(field_of(ttl(86_401)), "limits.passkey_reset_ttl_secs");
        // An older config without the key gets the default: an hour.
        let older = with(|t| {
            if let Some(toml::Value::Table(l)) = t.get_mut("limits") {
                l.remove("passkey_reset_ttl_secs");
            }
        })
        .expect("valid");
        assert_eq!(older.limits.passkey_reset_ttl_secs, 3600);
    }

    #[test]
    fn several_banks_keys_must_be_bound_to_their_banks() {
        let k = |i: u8| {
            let sk = k256::SecretKey::from_slice(&[i; 32]).expect("key");
            dlocker_proto::keys::public_key_hex(&sk.public_key())
        };
        let keys = |v: Vec<String>| {
            with(move |t| {
                set(
                    t,
                    "recovery",
                    "bank_approval_keys",
                    toml::Value::Array(v.iter().cloned().map(toml::Value::String).collect()),
                )
            })
        };
        assert!(keys(vec![k(1)]).is_ok(), "one bank may be unbound");
        let e = keys(vec![k(1), k(2)]).expect_err("two unbound banks");
        assert!(e.to_string().contains("BANK_NODE_ID=KEY"), "{e}");
        let cfg = keys(vec![
            format!("{}={}", "a".repeat(32), k(1)),
            format!("{}={}", "b".repeat(32), k(2)),
        ])
        .expect("bound");
        assert_eq!(
            cfg.recovery.bank_key_owners,
            vec![Some("a".repeat(32)), Some("b".repeat(32))]
        );
        assert!(keys(vec![format!("nothex={}", k(1))]).is_err());
    }

    fn set(t: &mut toml::Table, section: &str, key: &str, v: toml::Value) {
        if let Some(toml::Value::Table(s)) = t.get_mut(section) {
            s.insert(key.to_owned(), v);
        } else {
            let mut s = toml::Table::new();
            s.insert(key.to_owned(), v);
            t.insert(section.to_owned(), toml::Value::Table(s));
        }
    }

    fn field_of(r: Result<NodeConfig, ConfigError>) -> String {
        match r {
            Err(ConfigError::Invalid { field, .. }) => field.to_owned(),
            Err(e) => format!("other: {e}"),
            Ok(_) => "accepted".to_owned(),
        }
    }

    #[test]
    fn invalid_values_are_refused_with_their_key() {
        use toml::Value::{Array, Integer, String as S};
        assert_eq!(
            field_of(with(|t| set(t, "node", "listen", S("localhost".into())))),
            "node.listen"
        );
        assert_eq!(
            field_of(with(|t| set(t, "node", "role", S("admin".into())))),
            "node.role"
        );
        assert_eq!(
            field_of(with(|t| set(t, "node", "name", S("".into())))),
            "node.name"
        );
        assert_eq!(
            field_of(with(|t| set(t, "node", "endpoint", S("ftp://x".into())))),
            "node.endpoint"
        );
        assert_eq!(
            field_of(with(|t| set(t, "limits", "max_blob_bytes", Integer(0)))),
            "limits.max_blob_bytes"
        );
        assert_eq!(
            field_of(with(|t| set(
                t,
                "limits",
                "max_blob_bytes",
                Integer(300 * 1024)
            ))),
            "limits.max_blob_bytes",
            "a blob larger than a message is refused"
        );
        assert_eq!(
            field_of(with(|t| set(t, "limits", "ceremony_ttl_secs", Integer(5)))),
            "limits.ceremony_ttl_secs"
        );
        assert_eq!(
            field_of(with(|t| set(t, "limits", "max_trustees", Integer(33)))),
            "limits.max_trustees"
        );
        assert_eq!(
            field_of(with(|t| set(
                t,
                "webauthn",
                "origins",
                Array(vec![S("https://evil.example".into())])
            ))),
            "webauthn.origins"
        );
        assert_eq!(
            field_of(with(|t| set(t, "webauthn", "origins", Array(vec![])))),
            "webauthn.origins"
        );
        assert_eq!(
            field_of(with(|t| set(t, "webauthn", "rp_id", S("a b".into())))),
            "webauthn.rp_id"
        );
        // TLS on needs an https endpoint.
        assert_eq!(
            field_of(with(|t| set(t, "tls", "cert", S("c.pem".into())))),
            "other: /d/config.toml is not a valid node config: missing field `key`"
        );
        let r = with(|t| {
            set(t, "tls", "cert", S("c.pem".into()));
            set(t, "tls", "key", S("k.pem".into()));
        });
        assert_eq!(field_of(r), "node.endpoint");
    }

    #[test]
    fn safe_defaults_refuse_plaintext_http_origins_and_unmeetable_approvals() {
        use toml::Value::{Array, Boolean, String as S};
        // Non-loopback plaintext needs the explicit opt-in.
        let open = |t: &mut toml::Table| {
            set(t, "node", "listen", S("0.0.0.0:7101".into()));
            set(t, "node", "endpoint", S("http://node.example:7101".into()));
        };
        let e = with(open).expect_err("refused");
        assert_eq!(field_of(Err(e)), "node.listen");
        let msg = with(open).expect_err("refused").to_string();
        assert!(msg.contains("insecure_plaintext"), "{msg}");
        let cfg = with(|t| {
            open(t);
            set(t, "node", "insecure_plaintext", Boolean(true));
        })
        .expect("explicit opt-in");
        assert!(cfg.insecure_plaintext);
        for ok in ["127.0.0.2:1", "[::1]:1"] {
            with(|t| {
                set(t, "node", "listen", S(ok.into()));
                set(t, "node", "endpoint", S("http://localhost:1".into()));
            })
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        // http:// origins only on loopback hosts.
        let origin = |o: &str| {
            with(|t| {
                set(t, "webauthn", "rp_id", S("localhost".into()));
                set(t, "webauthn", "origins", Array(vec![S(o.into())]));
            })
        };
        for ok in ["http://localhost:8080", "https://localhost"] {
            origin(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let r = with(|t| {
            set(t, "webauthn", "rp_id", S("bank.example".into()));
            set(
                t,
                "webauthn",
                "origins",
                Array(vec![S("http://wallet.bank.example".into())]),
            );
        });
        assert_eq!(field_of(r), "webauthn.origins");
        let loopback = |u: &str| is_loopback_host(&Url::parse(u).expect("url"));
        for ok in [
            "http://localhost:1",
            "http://127.9.0.1",
            "http://[::1]:8080",
        ] {
            assert!(loopback(ok), "{ok}");
        }
        for no in [
            "http://localhost.evil.example",
            "http://10.0.0.1",
            "http://[::2]",
        ] {
            assert!(!loopback(no), "{no}");
        }
        // approvals_required against the approvers.
        let staff = |roles: &[&[&str]], required: i64| {
            with(|t| {
                let list = roles
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let mut m = toml::Table::new();
                        m.insert("id".into(), S(format!("s{i}")));
                        let k = k256::SecretKey::from_slice(&[i as u8 + 1; 32]).expect("key");
                        m.insert(
                            "public_key".into(),
                            S(dlocker_proto::keys::public_key_hex(&k.public_key())),
                        );
                        m.insert(
                            "roles".into(),
                            Array(r.iter().map(|x| S((*x).into())).collect()),
                        );
                        toml::Value::Table(m)
                    })
                    .collect();
                set(t, "bank", "staff", Array(list));
                set(
                    t,
                    "bank",
                    "approvals_required",
                    toml::Value::Integer(required),
                );
            })
        };
        assert_eq!(
            field_of(staff(&[&["approver"], &["viewer", "canceller"]], 2)),
            "bank.approvals_required"
        );
        assert_eq!(
            field_of(staff(&[&["approver"], &["approver"]], 2)),
            "accepted"
        );
        assert_eq!(field_of(staff(&[], 2)), "accepted", "not yet staffed");
    }

    #[test]
    fn unknown_keys_and_tls_paths() {
        assert!(matches!(
            with(|t| set(t, "limits", "max_blobs", toml::Value::Integer(1))),
            Err(ConfigError::Parse { .. })
        ));
        let cfg = with(|t| {
            use toml::Value::String as S;
            set(t, "node", "endpoint", S("https://node.example:7101".into()));
            set(t, "tls", "cert", S("tls/node.crt".into()));
            set(t, "tls", "key", S("/abs/node.key".into()));
            set(t, "tls", "client_ca", S("tls/ca.crt".into()));
        })
        .expect("valid");
        let tls = cfg.tls.expect("tls");
        assert_eq!(tls.cert, Path::new("/d/tls/node.crt"));
        assert_eq!(tls.key, Path::new("/abs/node.key"));
        assert_eq!(tls.client_ca.as_deref(), Some(Path::new("/d/tls/ca.crt")));
        assert_eq!(
            tls.clients_of(GrpcService::Staff),
            None,
            "default: any client"
        );
    }

    #[test]
    fn service_clients_name_real_services_and_need_a_client_ca() {
        let fp = "ab".repeat(32);
        let clients = |name: &str, value: &str| {
            let mut table = toml::Table::new();
            table.insert(
                name.into(),
                toml::Value::Array(vec![toml::Value::String(value.into())]),
            );
            toml::Value::Table(table)
        };
        let tls = |t: &mut toml::Table, ca: bool| {
            use toml::Value::String as S;
            set(t, "node", "endpoint", S("https://node.example:7101".into()));
            set(t, "tls", "cert", S("tls/node.crt".into()));
            set(t, "tls", "key", S("tls/node.key".into()));
            if ca {
                set(t, "tls", "client_ca", S("tls/ca.crt".into()));
            }
        };
        let cfg = with(|t| {
            tls(t, true);
            set(t, "tls", "service_clients", clients("staff", &fp));
        })
        .expect("valid");
        let settings = cfg.tls.expect("tls");
        assert_eq!(
            settings.clients_of(GrpcService::Staff),
            Some(&[[0xab; 32]][..])
        );
        assert_eq!(settings.clients_of(GrpcService::Trustee), None);
        for (ca, name, value) in [
            (true, "stafff", fp.as_str()),
            (true, "staff", "not hex"),
            (false, "staff", fp.as_str()),
        ] {
            let e = with(|t| {
                tls(t, ca);
                set(t, "tls", "service_clients", clients(name, value));
            })
            .expect_err("refused");
            assert!(e.to_string().contains("tls.service_clients"), "{e}");
        }
    }

    #[test]
    fn missing_limits_take_defaults() {
        let text = r#"
[node]
name = "t"
role = "trustee"
listen = "127.0.0.1:1"
endpoint = "http://127.0.0.1:1"
[webauthn]
rp_id = "bank.example"
origins = ["https://app.bank.example"]
"#;
        let cfg = NodeConfig::from_toml(text, Path::new("/d")).expect("valid");
        assert_eq!(cfg.limits, Limits::default());
        assert_eq!(cfg.webauthn.rp_name, "dLocker");
    }
}
