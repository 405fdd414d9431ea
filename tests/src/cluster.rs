//! A cluster of real `trustee-node` processes on loopback.

use crate::bins::node_command;
use crate::tls::NodeTls;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use k256::PublicKey;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a node may take to answer health after `serve` starts. Generous: two cores are
/// shared with the compiler and other tests. Readiness only; nothing asserts on speed.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a node may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// One node of a [`Cluster`].
pub struct Node {
    /// Display name (`bank`, `trustee-2`, ...).
    pub name: String,
    /// `bank` or `trustee`.
    pub role: String,
    /// The data directory (`config.toml`, `keys/`, `db/`, `node.log`).
    pub dir: PathBuf,
    /// The loopback address it listens on.
    pub addr: SocketAddr,
    /// The endpoint clients use (`http://…`, or `https://…` with TLS).
    pub endpoint: String,
    /// Node id as `trustee-node show` reports it.
    pub node_id: String,
    /// Identity public key as `trustee-node show` reports it.
    pub public_key: PublicKey,
    /// Set when the node serves TLS: the CA clients must pin.
    pub tls: Option<NodeTls>,
    child: Option<Child>,
}

impl Node {
    /// The node's log file (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// The last `lines` lines of the node's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process id of the running node, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether a child process is running for this node.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Public key as SEC1-compressed hex.
    pub fn public_key_hex(&self) -> String {
        dlocker_proto::keys::public_key_hex(&self.public_key)
    }

    /// A gRPC channel to the node (TLS with the pinned CA when the node serves TLS).
    pub async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        let mut ep = Endpoint::from_shared(self.endpoint.clone())?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        if let Some(tls) = &self.tls {
            let mut cfg = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
            if let Some(c) = &tls.client {
                cfg = cfg.identity(Identity::from_pem(&c.cert_pem, &c.key_pem));
            }
            ep = ep.tls_config(cfg)?;
        }
        ep.connect().await
    }

    /// A raw `dlocker.v1.Trustee` client.
    pub async fn client(&self) -> TrusteeClient<Channel> {
        let ch = self
            .channel()
            .await
            .unwrap_or_else(|e| panic!("connect to {} at {}: {e:?}", self.name, self.endpoint));
        TrusteeClient::new(ch)
    }

    /// One health probe: true when `grpc.health.v1` says SERVING.
    async fn healthy(&self) -> bool {
        let Ok(ch) = self.channel().await else {
            return false;
        };
        let mut h = HealthClient::new(ch);
        match tokio::time::timeout(
            Duration::from_secs(5),
            h.check(HealthCheckRequest {
                service: String::new(),
            }),
        )
        .await
        {
            Ok(Ok(resp)) => resp.into_inner().status == ServingStatus::Serving as i32,
            _ => false,
        }
    }
}

/// Real trustee nodes in a temporary directory; node 0 is the bank. Dropping it kills them.
pub struct Cluster {
    root: Option<tempfile::TempDir>,
    root_path: PathBuf,
    nodes: Vec<Node>,
}

/// Free loopback ports: all bound at once (so they differ), then released for the nodes to bind.
///
/// The ports come from below the kernel's ephemeral range (Linux: 32768 and up), from a
/// process-wide cursor that starts at a random place: a port picked from the ephemeral range
/// (port 0) could be handed to an outgoing connection or another port-0 bind before the node
/// started to listen on it, and the node would fail with "Address already in use".
pub fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static CURSOR: std::sync::OnceLock<AtomicU32> = std::sync::OnceLock::new();
    let cursor = CURSOR.get_or_init(|| AtomicU32::new(rand::random_range(0..SPAN)));
    // Held until all n are picked, so no port is picked twice.
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(n);
    for _ in 0..SPAN {
        if listeners.len() == n {
            break;
        }
        let port = u16::try_from(FIRST + cursor.fetch_add(1, Ordering::Relaxed) % SPAN)
            .expect("below 32000");
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(l);
        }
    }
    assert_eq!(listeners.len(), n, "no {n} free loopback ports below 32000");
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

fn run_checked(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Display name of node `i` (0-based): the bank first, then `trustee-2`, `trustee-3`, ...
pub fn node_name(i: usize) -> String {
    if i == 0 {
        "bank".to_owned()
    } else {
        format!("trustee-{}", i + 1)
    }
}

/// What `trustee-node show --data-dir DIR --json` says about a node.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// Node id.
    pub node_id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Advertised endpoint.
    pub endpoint: String,
    /// Identity key.
    pub public_key: PublicKey,
}

/// Runs `trustee-node show --json` on a data directory.
pub fn show(dir: &Path) -> Descriptor {
    let out = run_checked(
        node_command()
            .arg("show")
            .arg("--data-dir")
            .arg(dir)
            .arg("--json"),
        "trustee-node show --json",
    );
    let v: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("`trustee-node show --json` is not JSON ({e}): {out}"));
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_else(|| {
                panic!("`trustee-node show --json` has no string field {k:?}: {out}")
            })
            .to_owned()
    };
    let public_key = dlocker_proto::keys::public_key_from_hex(&field("public_key"))
        .unwrap_or_else(|e| panic!("`trustee-node show --json` public_key: {e}"));
    Descriptor {
        node_id: field("node_id"),
        name: field("name"),
        role: field("role"),
        endpoint: field("endpoint"),
        public_key,
    }
}

impl Cluster {
    /// Initialises `n` nodes (node 0 the bank) and starts them all; returns once every node
    /// answers health.
    pub async fn start(n: usize) -> Self {
        let mut c = Self::init(n, &[], &[]);
        c.start_all().await;
        c
    }

    /// Initialises `n` nodes without starting them. Nodes listed in `tls_nodes` get a CA, a
    /// server certificate and a `[tls]` section, and advertise an `https://` endpoint; nodes in
    /// `mtls_nodes` also require a client certificate (the harness's clients present one).
    pub fn init(n: usize, tls_nodes: &[usize], mtls_nodes: &[usize]) -> Self {
        assert!(n >= 1, "a cluster needs at least one node");
        let (root, root_path) = if std::env::var_os("DLOCKER_KEEP_TEST_DIRS").is_some() {
            // Kept for post-mortems; printed so it can be found.
            let p = tempfile::Builder::new()
                .prefix("dlocker-it-")
                .tempdir()
                .expect("tempdir")
                .keep();
            eprintln!("cluster directory (kept): {}", p.display());
            (None, p)
        } else {
            let t = tempfile::Builder::new()
                .prefix("dlocker-it-")
                .tempdir()
                .expect("tempdir");
            let p = t.path().to_path_buf();
            (Some(t), p)
        };
        let ports = free_ports(n);
        let mut nodes = Vec::with_capacity(n);
        for (i, port) in ports.into_iter().enumerate() {
            let name = node_name(i);
            let role = if i == 0 { "bank" } else { "trustee" };
            let dir = root_path.join(&name);
            let addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
            let mtls_on = mtls_nodes.contains(&i);
            let tls_on = mtls_on || tls_nodes.contains(&i);
            // `init` writes a plaintext config; TLS is switched on afterwards like an operator would.
            let endpoint = format!("{}://{addr}", if tls_on { "https" } else { "http" });
            run_checked(
                node_command()
                    .arg("init")
                    .arg("--data-dir")
                    .arg(&dir)
                    .args([
                        "--name",
                        &name,
                        "--listen",
                        &addr.to_string(),
                        "--role",
                        role,
                    ])
                    .args(["--endpoint", &format!("http://{addr}")]),
                &format!("trustee-node init ({name})"),
            );
            let tls = tls_on.then(|| crate::tls::configure_node_tls(&dir, mtls_on));
            let d = show(&dir);
            assert_eq!(d.name, name, "show reports the name given to init");
            assert_eq!(d.role, role, "show reports the role given to init");
            assert_eq!(
                d.endpoint.trim_end_matches('/'),
                endpoint,
                "show reports the configured endpoint"
            );
            assert_eq!(
                d.node_id,
                dlocker_proto::keys::node_id(&d.public_key),
                "node id derives from the key"
            );
            nodes.push(Node {
                name,
                role: role.to_owned(),
                dir,
                addr,
                endpoint,
                node_id: d.node_id,
                public_key: d.public_key,
                tls,
                child: None,
            });
        }
        Self {
            root,
            root_path,
            nodes,
        }
    }

    /// Adopts existing plaintext node data directories (e.g. the ones `dlocker demo --dir`
    /// leaves), in order, without starting them. The caller keeps ownership of the directories.
    pub fn adopt(dirs: &[PathBuf]) -> Self {
        let mut nodes = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let d = show(dir);
            let endpoint = d.endpoint.trim_end_matches('/').to_owned();
            let addr: SocketAddr = endpoint
                .strip_prefix("http://")
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| {
                    panic!(
                        "{}: expected a plaintext http://IP:PORT endpoint, got {endpoint}",
                        dir.display()
                    )
                });
            nodes.push(Node {
                name: d.name,
                role: d.role,
                dir: dir.clone(),
                addr,
                endpoint,
                node_id: d.node_id,
                public_key: d.public_key,
                tls: None,
                child: None,
            });
        }
        let root_path = dirs
            .first()
            .and_then(|d| d.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Self {
            root: None,
            root_path,
            nodes,
        }
    }

    /// The cluster's temporary directory.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false (a cluster has at least one node); for clippy.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i` (0-based; 0 is the bank).
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Mutable node `i`, e.g. to change its TLS settings before starting it.
    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    /// All nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Endpoint of node `i`.
    pub fn endpoint(&self, i: usize) -> &str {
        &self.nodes[i].endpoint
    }

    /// Data directory of node `i`.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.nodes[i].dir
    }

    /// Identity key of node `i`.
    pub fn public_key(&self, i: usize) -> &PublicKey {
        &self.nodes[i].public_key
    }

    /// Starts every node that is not running, then waits until all answer health.
    pub async fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_running() {
                self.spawn(i);
            }
        }
        for i in 0..self.nodes.len() {
            self.wait_ready(i).await;
        }
    }

    /// Starts node `i` again (same port, same data directory) and waits for health.
    pub async fn start_node(&mut self, i: usize) {
        assert!(
            !self.nodes[i].is_running(),
            "node {} is already running",
            self.nodes[i].name
        );
        self.spawn(i);
        self.wait_ready(i).await;
    }

    /// Graceful stop: SIGTERM, then wait for the process to exit (bounded). Panics, with the
    /// log tail, if it does not exit in time or exits unsuccessfully.
    pub fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(mut child) = node.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        // std has no SIGTERM; the shell builtin is everywhere.
        let sent = Command::new("sh")
            .args(["-c", "kill -TERM \"$1\"", "sh", &pid])
            .status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "could not send SIGTERM to {}",
            node.name
        );
        let status = wait_bounded(&mut child, STOP_TIMEOUT);
        match status {
            Some(st) => assert!(
                st.success(),
                "{} exited with {st} after SIGTERM; log tail:\n{}",
                node.name,
                node.log_tail(40)
            ),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {STOP_TIMEOUT:?} of SIGTERM; log tail:\n{}",
                    node.name,
                    node.log_tail(40)
                );
            }
        }
    }

    /// Crash: SIGKILL, no chance to flush anything not already durable.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops every running node gracefully.
    pub fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i);
        }
    }

    /// Graceful stop and start of node `i`.
    pub async fn restart(&mut self, i: usize) {
        self.stop(i);
        self.start_node(i).await;
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())
            .unwrap_or_else(|e| panic!("open {}: {e}", node.log_path().display()));
        let log2 = log.try_clone().expect("clone log handle");
        let mut cmd = node_command();
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&node.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn trustee-node serve for {}: {e}", node.name));
        node.child = Some(child);
    }

    /// Waits (bounded) until node `i` answers health; panics with its log tail otherwise.
    pub async fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let node = &mut self.nodes[i];
            if let Some(child) = &mut node.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{} exited ({status}) before becoming healthy; log tail:\n{}",
                    node.name,
                    node.log_tail(40)
                );
            }
            if node.healthy().await {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} at {} did not answer grpc health within {READY_TIMEOUT:?}; log tail:\n{}",
                    node.name,
                    node.endpoint,
                    node.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The trustees file for this cluster (format of `docs/` and `deploy/local-cluster.sh`).
    pub fn trustees_toml(&self) -> String {
        self.trustees_toml_for(&(0..self.nodes.len()).collect::<Vec<_>>())
    }

    /// A trustees file listing only the nodes at `indices`.
    pub fn trustees_toml_for(&self, indices: &[usize]) -> String {
        let mut s = String::from("# Written by the dLocker integration-test harness.\n");
        for &i in indices {
            let n = &self.nodes[i];
            let _ = writeln!(s, "\n[[trustee]]");
            let _ = writeln!(s, "name = {:?}", n.name);
            let _ = writeln!(s, "endpoint = {:?}", n.endpoint);
            let _ = writeln!(s, "public_key = {:?}", n.public_key_hex());
            let _ = writeln!(s, "role = {:?}", n.role);
            if let Some(tls) = &n.tls {
                let _ = writeln!(s, "ca_cert = {:?}", tls.ca_cert.display().to_string());
                if let Some(c) = &tls.client {
                    let _ = writeln!(s, "client_cert = {:?}", c.cert.display().to_string());
                    let _ = writeln!(s, "client_key = {:?}", c.key.display().to_string());
                }
            }
        }
        s
    }

    /// Writes [`Cluster::trustees_toml`] to `ROOT/trustees.toml` and returns its path.
    pub fn write_trustees(&self) -> PathBuf {
        let p = self.root_path.join("trustees.toml");
        std::fs::write(&p, self.trustees_toml()).expect("write trustees.toml");
        p
    }

    /// The SDK's view of this cluster, loaded from the written trustees file.
    pub fn trustees(&self) -> dlocker_sdk::TrusteeSet {
        let p = self.write_trustees();
        dlocker_sdk::TrusteeSet::load(&p)
            .unwrap_or_else(|e| panic!("SDK refused the harness trustees file: {e}"))
    }
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => return None,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // Keep the directory (and the logs) of a failed test when asked to.
        if std::thread::panicking()
            && std::env::var_os("DLOCKER_KEEP_FAILED").is_some()
            && let Some(root) = self.root.take()
        {
            let p = root.keep();
            eprintln!(
                "cluster directory of the failed test kept at {}",
                p.display()
            );
        }
    }
}
