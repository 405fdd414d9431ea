//! Clusters to measure: a local one started in this process (like `dlocker demo`), one node
//! served as a separate `trustee-node` process, or a running cluster named by a trustees file.

use crate::measure::{NODE_THREAD_PREFIX, NodeCpu};
use anyhow::Context as _;
use dlocker_sdk::{Role, StaffKey, TlsFiles, TrusteeInfo, TrusteeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use trustee_node::config::Role as NodeRole;
use trustee_node::config::edit::ConfigDoc;
use trustee_node::init::{InitOptions, StaffSpec, init_node};
use trustee_node::server::RunningNode;
use trustee_node::staff::auth::StaffRole;

/// The staff member the local cluster's bank lists.
pub(crate) const STAFF_ID: &str = "bench-staff";

/// Passkey ceremonies a bench node keeps open at once. A completed ceremony is kept until it
/// expires (5 min), and a bench deposits thousands a minute: the default 10,000 would answer
/// RESOURCE_EXHAUSTED long before a run ends.
pub(crate) const BENCH_MAX_CEREMONIES: u64 = 1_000_000;

/// The runtime in-process nodes run on: its own worker threads, named so their CPU time can be
/// told from the clients'.
pub(crate) fn node_runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(NODE_THREAD_PREFIX)
        .enable_all()
        .build()
        .context("building the node runtime")
}

/// Distinct free loopback ports (all held open while choosing so they differ).
pub(crate) fn free_ports(n: usize) -> anyhow::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("finding free loopback ports")?;
    listeners
        .iter()
        .map(|l| l.local_addr().context("reading a bound port"))
        .collect()
}

/// Node `i`'s display name (0 is the bank).
pub(crate) fn node_name(i: usize) -> String {
    if i == 0 {
        "bank".to_owned()
    } else {
        format!("trustee-{}", i + 1)
    }
}

/// `--postgres URL`: local nodes keep their records in PostgreSQL, a fresh schema each.
pub(crate) static POSTGRES_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
/// The schemas made for this run (dropped at the end by [`drop_bench_schemas`]).
static BENCH_SCHEMAS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Drops the schemas this run made (on a thread of its own: the synchronous client runs its own
/// runtime).
pub(crate) fn drop_bench_schemas() -> anyhow::Result<()> {
    let (Some(url), schemas) = (
        POSTGRES_URL.get(),
        std::mem::take(&mut *BENCH_SCHEMAS.lock().unwrap_or_else(|e| e.into_inner())),
    ) else {
        return Ok(());
    };
    std::thread::scope(|s| {
        s.spawn(|| -> anyhow::Result<()> {
            let mut c = postgres::Client::connect(url, postgres::NoTls)?;
            for schema in schemas {
                c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("dropping the bench schemas panicked"))?
    })
}

/// Where local nodes keep their records, for the report.
pub(crate) fn storage_name() -> &'static str {
    if POSTGRES_URL.get().is_some() {
        "PostgreSQL"
    } else {
        "sled"
    }
}

/// Initialises `n` node data directories under `root` for benchmarking: node 0 the bank, listing
/// `staff_public_key` as approver (one approval required); every node accepts the bank's approval
/// key, applies no recovery delay floor and allows [`BENCH_MAX_CEREMONIES`] open ceremonies (from
/// any one address too).
/// Returns the directories and their trustee entries (endpoints on the chosen ports).
pub(crate) fn init_cluster(
    root: &Path,
    n: usize,
    staff_public_key: &str,
) -> anyhow::Result<(Vec<PathBuf>, Vec<TrusteeInfo>)> {
    let addrs = free_ports(n)?;
    let mut dirs = Vec::with_capacity(n);
    let mut infos = Vec::with_capacity(n);
    let mut bank_key: Option<String> = None;
    for (i, addr) in addrs.into_iter().enumerate() {
        let name = node_name(i);
        let role = if i == 0 {
            NodeRole::Bank
        } else {
            NodeRole::Trustee
        };
        let dir = root.join(&name);
        let mut opts = InitOptions::new(dir.clone(), name.clone(), addr, role);
        if i == 0 {
            opts.staff = vec![StaffSpec {
                id: STAFF_ID.to_owned(),
                public_key: staff_public_key.to_owned(),
                roles: vec![StaffRole::Approver, StaffRole::Canceller],
            }];
            opts.approvals_required = Some(1);
        }
        opts.accept_bank_keys = bank_key.iter().cloned().collect();
        opts.recovery_delay_floor_secs = Some(0);
        if let Some(url) = POSTGRES_URL.get() {
            static CLUSTERS: std::sync::atomic::AtomicUsize =
                std::sync::atomic::AtomicUsize::new(0);
            let schema = format!(
                "bench_{}_{}_n{i}",
                std::process::id(),
                CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            BENCH_SCHEMAS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(schema.clone());
            opts.postgres = Some(trustee_node::init::InitPostgres {
                url: Some(url.clone()),
                url_file: None,
                schema: Some(schema),
                tls_ca_file: None,
            });
        }
        let desc = init_node(&opts).with_context(|| format!("initialising {}", dir.display()))?;
        let mut doc = ConfigDoc::load(&dir)?;
        doc.set_integer("limits", "max_pending_ceremonies", BENCH_MAX_CEREMONIES)?;
        // Every simulated owner calls from this one address.
        doc.set_integer(
            "limits",
            "pending_ceremonies_per_caller",
            BENCH_MAX_CEREMONIES,
        )?;
        // ...and the per-address owner-call budget would throttle the recoveries instead of
        // measuring them.
        doc.set_integer("limits", "owner_calls_per_minute", 1_000_000)?;
        if i == 0 {
            let key = desc
                .bank_approval_key
                .clone()
                .context("the bank node reported no bank approval key")?;
            doc.accept_bank_key(&key)?;
            bank_key = Some(key);
        }
        doc.save(&dir)?;
        let public_key = dlocker_proto::keys::public_key_from_hex(&desc.public_key)
            .map_err(|e| anyhow::anyhow!("node {name} reported an invalid key: {e}"))?;
        infos.push(TrusteeInfo::new(
            name,
            format!("http://{addr}"),
            public_key,
            if i == 0 { Role::Bank } else { Role::Trustee },
            TlsFiles::default(),
        ));
        dirs.push(dir);
    }
    Ok((dirs, infos))
}

/// Replica `r` of the node in `dir`: `DIR.replica-R` with the node's keys and config (so its
/// schema) and a listener of its own.
fn replica_dir(dir: &Path, r: usize) -> anyhow::Result<PathBuf> {
    let mut name = dir.as_os_str().to_owned();
    name.push(format!(".replica-{r}"));
    let replica = PathBuf::from(name);
    std::fs::create_dir_all(replica.join("keys")).context("creating a replica directory")?;
    for entry in std::fs::read_dir(dir.join("keys")).context("reading the node's keys")? {
        let entry = entry?;
        std::fs::copy(entry.path(), replica.join("keys").join(entry.file_name()))
            .context("copying a key")?;
    }
    std::fs::copy(dir.join("config.toml"), replica.join("config.toml"))
        .context("copying config.toml")?;
    let addr = free_ports(1)?[0];
    let mut doc = ConfigDoc::load(&replica)?;
    doc.set_string("node", "listen", &addr.to_string())?;
    doc.set_string("node", "endpoint", &format!("http://{addr}"))?;
    doc.save(&replica)?;
    Ok(replica)
}

/// A cluster under test.
pub(crate) struct Target {
    /// The trustees, bank first.
    pub(crate) set: TrusteeSet,
    /// Bank staff key (approves recoveries).
    pub(crate) staff: Option<StaffKey>,
    /// Where node CPU is read from.
    pub(crate) cpu: NodeCpu,
    /// Node data directories, when known (bytes stored per wallet).
    pub(crate) dirs: Vec<PathBuf>,
    /// What the cluster is (for the report).
    pub(crate) description: String,
    running: Vec<RunningNode>,
    _tmp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Starts `n` nodes in this process on `rt` (see [`init_cluster`]), in a temporary
    /// directory removed when the target is dropped; with `replicas` > 1 (PostgreSQL only) each
    /// node runs as that many servers over its schema, the further ones listed as its replicas.
    pub(crate) fn start_local(
        rt: &tokio::runtime::Runtime,
        n: usize,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        if replicas > 1 && POSTGRES_URL.get().is_none() {
            anyhow::bail!("--replicas needs --postgres: replicas share their node's schema");
        }
        let tmp = tempfile::Builder::new()
            .prefix("dlocker-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        let staff = StaffKey::generate();
        let (dirs, mut infos) = init_cluster(tmp.path(), n, &staff.public_key_hex())?;
        let mut running = Vec::with_capacity(n * replicas);
        for (dir, info) in dirs.iter().zip(&mut infos) {
            let node = rt
                .block_on(trustee_node::server::spawn(dir))
                .with_context(|| format!("starting the node in {}", dir.display()))?;
            info.endpoint = node.url();
            running.push(node);
            let mut urls = Vec::with_capacity(replicas - 1);
            for r in 1..replicas {
                let replica_dir = replica_dir(dir, r)?;
                let node = rt
                    .block_on(trustee_node::server::spawn(&replica_dir))
                    .with_context(|| {
                        format!("starting the replica in {}", replica_dir.display())
                    })?;
                urls.push(node.url());
                running.push(node);
            }
            *info = info.clone().with_replicas(urls);
        }
        let servers = if replicas > 1 {
            format!("{n} trustee-nodes × {replicas} replicas")
        } else {
            format!("{n} trustee-node servers")
        };
        Ok(Self {
            set: TrusteeSet::new(infos)?,
            staff: Some(staff),
            cpu: NodeCpu::InProcess,
            dirs,
            description: format!(
                "local: {servers} in this process (loopback gRPC, {})",
                storage_name()
            ),
            running,
            _tmp: Some(tmp),
        })
    }

    /// A running cluster: trustees file, optional staff key, node pids and data directories.
    pub(crate) fn external(
        trustees: &Path,
        staff_key: Option<&Path>,
        pids: Vec<u32>,
        dirs: Vec<PathBuf>,
    ) -> anyhow::Result<Self> {
        let set = TrusteeSet::load(trustees)
            .with_context(|| format!("loading {}", trustees.display()))?;
        let staff = staff_key.map(StaffKey::load).transpose()?;
        let cpu = if pids.is_empty() {
            NodeCpu::Unknown
        } else {
            NodeCpu::Pids(pids)
        };
        Ok(Self {
            description: format!(
                "external: {} trustees from {}",
                set.len(),
                trustees.display()
            ),
            set,
            staff,
            cpu,
            dirs,
            running: Vec::new(),
            _tmp: None,
        })
    }

    /// Stops in-process nodes gracefully (final flush).
    pub(crate) fn shutdown(self, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
        let results = rt.block_on(futures::future::join_all(
            self.running.into_iter().map(RunningNode::shutdown),
        ));
        for r in results {
            r.context("stopping a node")?;
        }
        Ok(())
    }
}

/// A `trustee-node serve` child process.
pub(crate) struct NodeProcess {
    child: Child,
    /// Its endpoint.
    pub(crate) endpoint: String,
}

impl std::fmt::Debug for NodeProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeProcess")
            .field("pid", &self.child.id())
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// The `trustee-node` binary: `explicit`, else next to this executable.
pub(crate) fn node_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let exe = std::env::current_exe().context("locating dlocker-bench")?;
    let p = exe
        .parent()
        .map(|d| d.join(format!("trustee-node{}", std::env::consts::EXE_SUFFIX)))
        .context("dlocker-bench has no parent directory")?;
    if p.is_file() {
        Ok(p)
    } else {
        Err(anyhow::anyhow!(
            "{} not found — build it with `cargo build --release -p trustee-node` (or pass --node-bin)",
            p.display()
        ))
    }
}

impl NodeProcess {
    /// Serves `dir` with `bin`; returns once gRPC health answers SERVING (or fails after 10 min).
    pub(crate) async fn start(bin: &Path, dir: &Path, endpoint: &str) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .context("opening node.log")?;
        let log2 = log.try_clone().context("node.log")?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut p = Self {
            child,
            endpoint: endpoint.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Ok(Some(st)) = p.child.try_wait() {
                return Err(anyhow::anyhow!(
                    "trustee-node exited ({st}) before serving; see {}",
                    dir.join("node.log").display()
                ));
            }
            if healthy(endpoint).await {
                return Ok(p);
            }
            if Instant::now() > deadline {
                return Err(anyhow::anyhow!(
                    "trustee-node did not become healthy in 10 min"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait (the node flushes and exits 0).
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let st = self.child.wait().context("waiting for trustee-node")?;
        if st.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "trustee-node exited with {st} after SIGTERM"
            ))
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One `grpc.health.v1` probe.
pub(crate) async fn healthy(endpoint: &str) -> bool {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let Ok(ch) = dlocker_sdk::protocol::open_channel(endpoint, &TlsFiles::default()).await else {
        return false;
    };
    let mut client = HealthClient::new(ch);
    let probe = client.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Ok(r)) => {
            r.into_inner().status
                == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        }
        _ => false,
    }
}
