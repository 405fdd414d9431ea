//! Serving a node: `Config → Node → spawn/serve`, with health, reflection, limits, optional
//! (m)TLS and graceful shutdown that flushes the database.

use crate::client_gate::ServiceGate;
use crate::config::{ConfigError, GrpcService, NodeConfig, TlsSettings};
use crate::db::{Database, StoreError};
use crate::descriptor::NodeDescriptorInfo;
use crate::enrollment::trustee_service::TrusteeService;
use crate::keys::FileKeyProvider;
use crate::node::{Node, SetupError, SystemClock};
use crate::recovery::recovery_service::RecoveryService;
use crate::staff::staff_service::StaffService;
use dlocker_proto::pb::recovery_server::RecoveryServer;
use dlocker_proto::pb::staff_server::StaffServer;
use dlocker_proto::pb::trustee_server::TrusteeServer;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// Longest a single request may run before the server cancels it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent requests per connection.
pub const CONCURRENCY_PER_CONNECTION: usize = 64;
/// Concurrent HTTP/2 streams per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// How often expired ceremonies are swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Deadline for the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Keys, database or WebAuthn settings.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The keys and the database disagree. (Not a `source`: the message already carries it,
    /// and a chain printer would repeat it.)
    #[error("refusing to start: {0}")]
    Startup(crate::startup::StartupError),
    /// The TLS files could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be set up.
    #[error("reflection: {0}")]
    Reflection(String),
    /// The final flush failed: recent writes may not be durable.
    #[error("flushing the database at shutdown: {0}")]
    Flush(StoreError),
    /// The server task ended abnormally.
    #[error("server task failed: {0}")]
    Task(String),
}

impl From<crate::startup::StartupError> for ServeError {
    fn from(e: crate::startup::StartupError) -> Self {
        Self::Startup(e)
    }
}

/// Opens the database `[storage]` names (PostgreSQL: applying pending migrations).
pub fn open_database(config: &NodeConfig) -> Result<Database, ServeError> {
    use crate::config::storage::StorageConfig;
    let db = match &config.storage {
        StorageConfig::Sled => Database::open(&config.db_path()),
        StorageConfig::Postgres(pg) => Database::open_postgres(&pg.pg_config(&config.data_dir)?),
    };
    Ok(db.map_err(SetupError::Store)?)
}

/// Loads a node's config and keys and opens its database.
pub fn open_node(dir: &Path) -> Result<Arc<Node>, ServeError> {
    let config = NodeConfig::load(dir)?;
    let keys = FileKeyProvider::new(dir);
    // Before the database is opened (which creates it): a missing key is never replaced.
    crate::startup::check_key_files(&config, &keys)?;
    let db = open_database(&config)?;
    crate::startup::check_binding(&config, &keys, &db)?;
    if config.tls.is_none() && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "serving plaintext on a non-loopback address \
            (node.insecure_plaintext = true); only behind a TLS-terminating proxy");
    }
    if config.bank.as_ref().is_some_and(|b| b.staff.is_empty()) {
        tracing::warn!(
            "no [[bank.staff]] configured: this bank node cannot approve any recovery until staff \
                are added"
        );
    }
    let node = Node::new(config, &keys, db, Arc::new(SystemClock))?;
    Ok(Arc::new(node))
}

fn read_pem(path: &PathBuf) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| ServeError::Tls(format!("cannot read {}: {e}", path.display())))
}

fn tls_config(tls: &TlsSettings) -> Result<ServerTlsConfig, ServeError> {
    let identity = Identity::from_pem(read_pem(&tls.cert)?, read_pem(&tls.key)?);
    let mut cfg = ServerTlsConfig::new()
        .identity(identity)
        .timeout(TLS_HANDSHAKE_TIMEOUT);
    if let Some(ca) = &tls.client_ca {
        cfg = cfg.client_ca_root(Certificate::from_pem(read_pem(ca)?));
    }
    Ok(cfg)
}

/// Serves `node` on `listener` until `shutdown` resolves, then flushes the database.
pub async fn run(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let config = node.config().clone();
    let (health, health_service) = tonic_health::server::health_reporter();
    // Reflection in both versions: grpcurl and current tools speak v1, older grpc_cli and
    // Postman only v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(dlocker_proto::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let trustee = TrusteeServer::new(TrusteeService::new(node.clone()))
        .max_decoding_message_size(config.limits.max_message_bytes)
        .max_encoding_message_size(config.limits.max_message_bytes);
    let recovery = RecoveryServer::new(RecoveryService::new(node.clone()))
        .max_decoding_message_size(config.limits.max_message_bytes)
        .max_encoding_message_size(config.limits.max_message_bytes);
    // The Staff service exists only on the bank node (elsewhere: UNIMPLEMENTED).
    let staff = (config.role == crate::config::Role::Bank).then(|| {
        StaffServer::new(StaffService::new(node.clone()))
            .max_decoding_message_size(config.limits.max_message_bytes)
            .max_encoding_message_size(config.limits.max_message_bytes)
    });

    let metrics = Arc::new(crate::metrics::Metrics::new(Some(
        node.db().flush_histogram(),
    )));
    // The document locker, when `[locker] enabled = true`: its gRPC service and the HTTP
    // document endpoints (status lists, JWKS) at the URLs its credentials name.
    let locker = crate::locker::open_locker(&node)?;
    let documents = locker
        .as_ref()
        .map(|l| l.service(config.limits.max_message_bytes));
    let document_routes = crate::locker::documents::router(&node, locker.as_ref());
    let (grpc_web_gate, grpc_web) = crate::grpc_web::layers(&config.grpc_web);
    let mut builder = Server::builder()
        // Outermost: GET/HEAD never reach the gRPC services (nor their metrics).
        .layer(crate::locker::documents::DocumentRoutesLayer::new(
            document_routes,
        ))
        .layer(crate::metrics::RpcMetricsLayer::new(metrics.clone()))
        // Browsers: the origin gate, then gRPC-Web (over HTTP/1.1 or HTTP/2).
        .layer(grpc_web_gate)
        .layer(grpc_web)
        // HTTP/1.1 for the document endpoints (curl, verifiers) and gRPC-Web; native gRPC
        // clients use HTTP/2.
        .accept_http1(true)
        .timeout(REQUEST_TIMEOUT)
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .tcp_nodelay(true);
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls_config(tls)?)?;
    }

    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let sweeper = tokio::spawn(sweep_ceremonies(node.clone()));
    // Epochs: the rotation service and the sweeper of expired staged epochs.
    let epochs = dlocker_proto::pb::epochs_server::EpochsServer::new(
        crate::epochs::epochs_service::EpochsService::new(node.clone()),
    )
    .max_decoding_message_size(config.limits.max_message_bytes)
    .max_encoding_message_size(config.limits.max_message_bytes);
    let epoch_sweeper = crate::epochs::spawn_sweeper(node.clone());
    let housekeeping = crate::housekeeping::spawn_sweeper(node.clone());

    // Every served service answers grpc.health.v1 by name (and "" for the whole server).
    let mut served_names = vec![
        <TrusteeServer<TrusteeService> as tonic::server::NamedService>::NAME,
        <RecoveryServer<RecoveryService> as tonic::server::NamedService>::NAME,
        <dlocker_proto::pb::epochs_server::EpochsServer<
            crate::epochs::epochs_service::EpochsService,
        > as tonic::server::NamedService>::NAME,
    ];
    if staff.is_some() {
        served_names.push(<StaffServer<StaffService> as tonic::server::NamedService>::NAME);
    }
    if documents.is_some() {
        served_names.push(
            <dlocker_proto::pb::document_service_server::DocumentServiceServer<
                dlocker_locker::server::DocumentServiceImpl,
            > as tonic::server::NamedService>::NAME,
        );
    }
    for name in &served_names {
        health
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }

    // The admin listener is bound before serving, so a taken port fails the start.
    let serving = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let admin = match config.admin.listen {
        Some(addr) => {
            let admin_listener = bind(addr).await?;
            let admin_addr = admin_listener
                .local_addr()
                .map_err(|source| ServeError::Bind { addr, source })?;
            let app = crate::admin::router(crate::admin::AdminState {
                node: Arc::downgrade(&node),
                metrics: metrics.clone(),
                serving: serving.clone(),
            });
            tracing::info!(listen = %admin_addr, "admin listener serving /metrics, /healthz, \
                /readyz");
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(admin_listener, app).await {
                    tracing::error!(error = %e, "admin listener failed");
                }
            }))
        }
        None => None,
    };
    // Not ready, and NOT_SERVING on grpc health, from the moment shutdown begins.
    let shutdown = {
        let serving = serving.clone();
        let health = health.clone();
        let names = served_names.clone();
        let node = node.clone();
        async move {
            shutdown.await;
            node.begin_shutdown();
            serving.store(false, std::sync::atomic::Ordering::SeqCst);
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            for name in names {
                health
                    .set_service_status(name, tonic_health::ServingStatus::NotServing)
                    .await;
            }
        }
    };
    serving.store(true, std::sync::atomic::Ordering::SeqCst);
    tracing::info!(
        name = %config.name,
        node_id = %node.identity().node_id(),
        role = %config.role,
        listen = %local,
        endpoint = %config.endpoint,
        tls = config.tls.is_some(),
        mtls = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        "trustee node serving"
    );
    // Mutual TLS: each service admits the client certificates `[tls.service_clients]` lists for
    // it (any the client CA signed when it lists none), before any handler runs.
    let gate = |s: GrpcService| ServiceGate::new(&config, s);
    let trustee = InterceptedService::new(trustee, gate(GrpcService::Trustee));
    let recovery = InterceptedService::new(recovery, gate(GrpcService::Recovery));
    let staff = staff.map(|s| InterceptedService::new(s, gate(GrpcService::Staff)));
    let documents = documents.map(|s| InterceptedService::new(s, gate(GrpcService::Documents)));
    let epochs = InterceptedService::new(epochs, gate(GrpcService::Epochs));
    let served = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(trustee)
        .add_service(recovery)
        .add_optional_service(staff)
        .add_optional_service(documents)
        .add_service(epochs)
        // `Server::tcp_nodelay` is ignored for a caller-supplied incoming: set it here, or Nagle
        // holds back the second segment of a response until the client's delayed ACK (~40 ms).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await;
    serving.store(false, std::sync::atomic::Ordering::SeqCst);
    if let Some(admin) = admin {
        admin.abort();
        let _ = admin.await;
    }
    sweeper.abort();
    epoch_sweeper.abort();
    housekeeping.abort();
    let _ = housekeeping.await;
    let _ = epoch_sweeper.await;
    // Wait for the abort so the sweeper's handle on the database is gone when we return.
    let _ = sweeper.await;
    // Acknowledged writes were flushed already; this covers the ceremony sweeps.
    let flushed = node.db().flush().await;
    tracing::info!("trustee node stopped");
    served?;
    flushed.map_err(ServeError::Flush)
}

async fn sweep_ceremonies(node: Arc<Node>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        match node.db().remove_expired_ceremonies(node.now()) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "swept expired ceremonies"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired ceremonies failed"),
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Runs the node in `dir` until `shutdown` resolves; flushes the database before returning.
pub async fn serve(
    dir: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let node = open_node(dir)?;
    let listener = bind(node.config().listen).await?;
    let reloader = tokio::spawn(reload_on_sighup(node.clone(), dir.to_owned()));
    let served = run(node, listener, shutdown).await;
    reloader.abort();
    let _ = reloader.await;
    served
}

/// `SIGHUP` reloads `config.toml` (with its environment overrides): the staff list and approval
/// policy are applied live, other changes are logged as needing a restart, and a config that
/// does not load leaves the running one untouched. (Without a handler SIGHUP would end the
/// process.)
#[cfg(unix)]
async fn reload_on_sighup(node: Arc<Node>, dir: PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; config reload unavailable");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match NodeConfig::load(&dir) {
            Ok(config) => {
                let r = node.reload(&config);
                tracing::info!(
                    applied = ?r.applied,
                    needs_restart = ?r.needs_restart,
                    "SIGHUP: config reloaded"
                );
                if !r.ignored.is_empty() {
                    tracing::warn!(
                        settings = ?r.ignored,
                        "SIGHUP: staff are managed with signed staff-admin requests (`dlocker \
                            staff`); these config changes are ignored"
                    );
                }
                if !r.needs_restart.is_empty() {
                    tracing::warn!(
                        settings = ?r.needs_restart,
                        "SIGHUP: these changed settings take effect only after a restart"
                    );
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: config not reloaded; the running config stays \
                    in force")
            }
        }
    }
}

#[cfg(not(unix))]
async fn reload_on_sighup(_node: Arc<Node>, _dir: PathBuf) {}

/// A node serving in the background of this process (tests, the demo).
///
/// Dropping it also stops the server (the shutdown signal fires when its sender is dropped), but
/// only [`RunningNode::shutdown`] waits for the final flush and reports errors.
#[derive(Debug)]
pub struct RunningNode {
    local_addr: SocketAddr,
    descriptor: NodeDescriptorInfo,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningNode {
    /// The address actually bound (useful when the config says port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    /// The node's descriptor (its `endpoint` is the configured one).
    pub fn descriptor(&self) -> &NodeDescriptorInfo {
        &self.descriptor
    }
    /// `http://<local_addr>` (or `https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.descriptor.endpoint.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.local_addr)
    }
    /// Stops the server gracefully, waits for it, and returns once the database is flushed and
    /// closed (the data directory can be served again afterwards).
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(ServeError::Task(e.to_string())),
        }
    }
}

/// Starts the node in `dir` on a background task; returns once it is listening.
pub async fn spawn(dir: &Path) -> Result<RunningNode, ServeError> {
    let node = open_node(dir)?;
    let listener = bind(node.config().listen).await?;
    spawn_on(node, listener)
}

/// Starts `node` on an already bound listener.
pub fn spawn_on(node: Arc<Node>, listener: TcpListener) -> Result<RunningNode, ServeError> {
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: node.config().listen,
        source,
    })?;
    let descriptor = node.descriptor();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(node, listener, async move {
        let _ = stopped.await;
    }));
    Ok(RunningNode {
        local_addr,
        descriptor,
        stop: Some(stop),
        task,
    })
}
