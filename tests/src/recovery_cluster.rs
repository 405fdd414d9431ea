//! A cluster set up for recovery: five real `trustee-node` processes, node 0 the bank
//! with staff keys and an approval policy, every node accepting the bank's approval key.
//!
//! Set-up order matters and is what an operator does: `trustee-node init --role bank --staff …`
//! first, read the bank approval key with `trustee-node show --json`, then init every other node
//! with `--accept-bank-key`. Extra staff are added with `trustee-node config add-staff`, and
//! settings without an init flag (lockout, …) by editing `config.toml` before the first start.
//! The processes themselves are run by [`Cluster`] (adopted directories), so restart, stop and
//! kill work as in the other tests.
//!
//! Besides the SDK, tests drive the nodes with raw gRPC through the helpers here: open a session
//! with a chosen `R`, answer its passkey challenge, approve as staff, craft bank statements with
//! the bank's approval key read from its data directory (or with a key nobody accepts), and
//! tamper with a stopped node's database (shares, audit log).

/// The bank customer reference [`RecoveryCluster::backup`] gives for its owner.
pub const CUSTOMER_REFERENCE: &str = "CUST-0042";

use crate::bins::{cli_command, node_command};
use crate::cluster::{Cluster, free_ports, node_name, show};
use crate::touch::{self, Nonces};
use dlocker_proto::keys::{encode_public_key, public_key_from_hex};
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_proto::pb::staff_client::StaffClient as RawStaffClient;
use dlocker_proto::pb::{
    AuthenticateOwnerRequest, OpenRecoveryRequest, OpenRecoveryResponse, ReleaseShareRequest,
    ReleaseShareResponse,
};
use dlocker_proto::statement::{BankApproval, Signed};
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, SoftwareAuthenticator, StaffClient, StaffKey,
    protocol::OwnerAuthenticator,
};
use dlocker_sdk::{RecoverError, RecoverEvent, RecoverOptions, Recovered};
use k256::ecdsa::SigningKey;
use k256::{PublicKey, SecretKey};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use trustee_node::keys::{FileKeyProvider, KeyProvider as _};

/// Number of nodes (node 0 is the bank).
pub const NODES: usize = 5;
/// Backup threshold used by the recovery tests: 3-of-5, the bank one of the five.
pub const THRESHOLD: u16 = 3;

/// One staff member: id, signing key, and the key file the CLI reads.
pub struct Staff {
    /// Staff id (as in the bank config and in approvals).
    pub id: String,
    /// The signing key.
    pub key: StaffKey,
    /// `ROOT/staff-ID.key` (mode 0600), for `dlocker recoveries … --key`.
    pub key_file: PathBuf,
}

/// What to configure.
#[derive(Debug, Clone)]
pub struct RecoverySpec {
    /// Staff ids with roles (`approver,canceller`, `viewer`, …). The first is given to
    /// `init --staff`, the rest are added with `trustee-node config add-staff`.
    pub staff: Vec<(String, String)>,
    /// `init --approvals-required` (bank).
    pub approvals_required: Option<u32>,
    /// `init --recovery-delay-floor` (every node).
    pub delay_floor: Option<u64>,
    /// Extra `[recovery]` settings written into every node's `config.toml` before the first start.
    pub recovery: Vec<(String, i64)>,
    /// Any other `[section] key = value` written into every node's `config.toml` likewise.
    pub config: Vec<(String, String, toml::Value)>,
    /// How many nodes (node 0 is the bank).
    pub nodes: usize,
    /// Where the nodes keep their records.
    pub storage: crate::postgres::Storage,
}

impl Default for RecoverySpec {
    fn default() -> Self {
        Self {
            staff: vec![("alice".into(), "approver,canceller".into())],
            approvals_required: None,
            delay_floor: Some(0),
            recovery: Vec::new(),
            config: Vec::new(),
            nodes: NODES,
            storage: crate::postgres::Storage::Sled,
        }
    }
}

/// Real nodes (five by default) ready for recovery. Derefs to the underlying [`Cluster`].
pub struct RecoveryCluster {
    // Declared first so the nodes are killed before the directory is removed.
    cluster: Cluster,
    /// Staff members, in [`RecoverySpec::staff`] order.
    pub staff: Vec<Staff>,
    /// The bank approval public key (from `trustee-node show --json`).
    pub bank_approval_key: PublicKey,
    /// The nodes' storage (its PostgreSQL schemas go when the cluster does).
    pub storage: crate::postgres::Storage,
    _root: Option<tempfile::TempDir>,
    root_path: PathBuf,
}

impl std::ops::Deref for RecoveryCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl std::ops::DerefMut for RecoveryCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// Runs a command, panicking with its output when it fails.
pub(crate) fn run_checked(cmd: &mut Command, what: &str) -> String {
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

/// `bank_approval_key` from `trustee-node show --json`.
pub fn show_bank_approval_key(dir: &Path) -> PublicKey {
    let out = run_checked(
        node_command()
            .arg("show")
            .arg("--data-dir")
            .arg(dir)
            .arg("--json"),
        "trustee-node show --json (bank)",
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("show --json is JSON");
    let hex = v
        .get("bank_approval_key")
        .and_then(|x| x.as_str())
        .unwrap_or_else(|| panic!("the bank's `show --json` has no bank_approval_key: {out}"));
    public_key_from_hex(hex).expect("bank_approval_key is a SEC1 key")
}

/// Sets `[section] key = value` in a stopped node's `config.toml`.
pub fn set_config_value(dir: &Path, section: &str, key: &str, value: toml::Value) {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("read config.toml");
    let mut doc: toml::Table = toml::from_str(&text).expect("config.toml parses");
    let table = doc
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap_or_else(|| panic!("[{section}] is not a table"));
    table.insert(key.to_owned(), value);
    std::fs::write(&path, toml::to_string(&doc).expect("serialise config"))
        .expect("write config.toml");
}

impl RecoveryCluster {
    /// Initialises and starts the nodes as `spec` says; returns when all answer health.
    pub async fn start(spec: RecoverySpec) -> Self {
        let mut c = Self::init(spec);
        c.cluster.start_all().await;
        c
    }

    /// Initialises the nodes without starting them.
    pub fn init(spec: RecoverySpec) -> Self {
        let (root, root_path) = if std::env::var_os("DLOCKER_KEEP_TEST_DIRS").is_some() {
            let p = tempfile::Builder::new()
                .prefix("dlocker-rec-")
                .tempdir()
                .expect("tempdir")
                .keep();
            eprintln!("recovery cluster directory (kept): {}", p.display());
            (None, p)
        } else {
            let t = tempfile::Builder::new()
                .prefix("dlocker-rec-")
                .tempdir()
                .expect("tempdir");
            let p = t.path().to_path_buf();
            (Some(t), p)
        };
        let ports = free_ports(spec.nodes);
        let staff: Vec<Staff> = spec
            .staff
            .iter()
            .map(|(id, _)| {
                let key = StaffKey::generate();
                let key_file = root_path.join(format!("staff-{id}.key"));
                key.save(&key_file).expect("save staff key");
                Staff {
                    id: id.clone(),
                    key,
                    key_file,
                }
            })
            .collect();
        let mut dirs = Vec::with_capacity(spec.nodes);
        let mut bank_key = None;
        for (i, port) in ports.into_iter().enumerate() {
            let name = node_name(i);
            let dir = root_path.join(&name);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut cmd = node_command();
            cmd.arg("init")
                .arg("--data-dir")
                .arg(&dir)
                .args(["--name", &name, "--listen", &addr.to_string()])
                .args(["--endpoint", &format!("http://{addr}")]);
            if let Some(f) = spec.delay_floor {
                cmd.args(["--recovery-delay-floor", &f.to_string()]);
            }
            // The first staff member at init, the rest through `config add-staff`; with a
            // policy of m approvals, the first m go to init (a config whose staff cannot meet
            // its policy is refused).
            let at_init = spec.approvals_required.unwrap_or(1).max(1) as usize;
            if i == 0 {
                cmd.args(["--role", "bank"]);
                for (s, (_, roles)) in staff.iter().zip(&spec.staff).take(at_init) {
                    cmd.args([
                        "--staff",
                        &format!("{}={}:{roles}", s.id, s.key.public_key_hex()),
                    ]);
                }
                if let Some(m) = spec.approvals_required {
                    cmd.args(["--approvals-required", &m.to_string()]);
                }
            } else {
                cmd.args(["--role", "trustee"]);
                let k: &PublicKey = bank_key.as_ref().expect("bank initialised first");
                cmd.args(["--accept-bank-key", &dlocker_proto::keys::public_key_hex(k)]);
            }
            run_checked(&mut cmd, &format!("trustee-node init ({name})"));
            if i == 0 {
                bank_key = Some(show_bank_approval_key(&dir));
                for (s, (_, roles)) in staff.iter().zip(&spec.staff).skip(at_init) {
                    run_checked(
                        node_command()
                            .args(["config", "add-staff", "--data-dir"])
                            .arg(&dir)
                            .args([
                                "--id",
                                &s.id,
                                "--public-key",
                                &s.key.public_key_hex(),
                                "--roles",
                                roles,
                            ]),
                        "trustee-node config add-staff",
                    );
                }
            }
            for (k, v) in &spec.recovery {
                set_config_value(&dir, "recovery", k, toml::Value::Integer(*v));
            }
            for (section, k, v) in &spec.config {
                set_config_value(&dir, section, k, v.clone());
            }
            spec.storage.configure(&dir, i);
            let d = show(&dir);
            assert_eq!(d.name, name);
            dirs.push(dir);
        }
        // Every node knows every other node's identity key (the operator's step for rotations
        // that add a trustee to a wallet).
        let keys: Vec<String> = dirs
            .iter()
            .map(|d| dlocker_proto::keys::public_key_hex(&show(d).public_key))
            .collect();
        for (i, dir) in dirs.iter().enumerate() {
            for (j, key) in keys.iter().enumerate() {
                if i != j {
                    run_checked(
                        node_command()
                            .args(["config", "accept-trustee-key", "--data-dir"])
                            .arg(dir)
                            .arg(key),
                        "trustee-node config accept-trustee-key",
                    );
                }
            }
        }
        let cluster = Cluster::adopt(&dirs);
        let bank_approval_key = bank_key.expect("bank key");
        Self {
            cluster,
            staff,
            bank_approval_key,
            storage: spec.storage.clone(),
            _root: root,
            root_path,
        }
    }

    /// The cluster's temporary directory.
    pub fn root_dir(&self) -> &Path {
        &self.root_path
    }

    /// SDK staff client for staff member `i`.
    pub fn staff_client(&self, i: usize) -> StaffClient {
        let trustees = self.cluster.trustees();
        let key = StaffKey::from_hex(&self.staff[i].key.to_hex()).expect("staff key round trip");
        StaffClient::new(key, trustees.bank())
    }

    /// Backs up `data` for a fresh wallet through the SDK (3-of-5, `delay_secs` recovery delay);
    /// returns the wallet id, the prepared backup and the owner's passkey. The owner is "alice"
    /// with the bank customer reference [`CUSTOMER_REFERENCE`].
    pub async fn backup(
        &self,
        prefix: &str,
        data: &[u8],
        delay_secs: u64,
    ) -> (String, PreparedBackup, SoftwareAuthenticator) {
        let trustees = self.cluster.trustees();
        let wallet = crate::craft::wallet_id(prefix);
        let prepared = PreparedBackup::new(
            &trustees,
            &wallet,
            data,
            BackupPolicy {
                threshold: THRESHOLD,
                recovery_delay_secs: delay_secs,
            },
        )
        .expect("prepare backup");
        let mut auth = SoftwareAuthenticator::new();
        let owner = dlocker_sdk::OwnerIdentity {
            user_name: "alice",
            customer_reference: Some(CUSTOMER_REFERENCE),
        };
        dlocker_sdk::protocol::backup_for(&trustees, &prepared, &owner, &mut auth, &|_| {})
            .await
            .expect("backup on 5 nodes");
        (wallet, prepared, auth)
    }

    /// A `WatchEvents` staff request for node `i` (the bank), signed by staff member 0.
    pub fn staff_watch_request(&self, i: usize) -> Vec<u8> {
        use rand::RngExt as _;
        self.staff[0]
            .key
            .sign_request(dlocker_proto::statement::StaffRequest {
                node_id: self.cluster.node(i).node_id.clone(),
                action: dlocker_proto::statement::StaffAction::WatchEvents,
                target: String::new(),
                timestamp: dlocker_proto::time::unix_now(),
                nonce: rand::rng().random(),
            })
    }

    /// A channel to node `i`.
    pub async fn chan(&self, i: usize) -> Channel {
        let n = self.cluster.node(i);
        n.channel()
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e:?}", n.name))
    }

    /// Raw `Recovery` client for node `i`.
    pub async fn recovery(&self, i: usize) -> RecoveryClient<Channel> {
        RecoveryClient::new(self.chan(i).await)
    }

    /// `GetRecoveryStatus(session_id)` at node `i` (panics on a refusal).
    pub async fn session_status(
        &self,
        i: usize,
        session_id: &str,
    ) -> dlocker_proto::pb::RecoverySession {
        self.recovery(i)
            .await
            .get_recovery_status(dlocker_proto::pb::GetRecoveryStatusRequest {
                session_id: session_id.to_owned(),
            })
            .await
            .expect("status")
            .into_inner()
    }

    /// Raw `Staff` client for node `i`.
    pub async fn raw_staff(&self, i: usize) -> RawStaffClient<Channel> {
        RawStaffClient::new(self.chan(i).await)
    }

    /// `OpenRecovery(wallet, R)` at node `i`.
    pub async fn open(
        &self,
        i: usize,
        wallet: &str,
        r: &PublicKey,
    ) -> Result<OpenRecoveryResponse, tonic::Status> {
        self.recovery(i)
            .await
            .open_recovery(OpenRecoveryRequest {
                wallet_id: wallet.to_owned(),
                session_key: encode_public_key(r).to_vec(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// `OpenRecovery` then a genuine one-touch assertion (this node's nonce only) at node `i`;
    /// panics on refusal.
    pub async fn open_and_authenticate(
        &self,
        i: usize,
        wallet: &str,
        r: &PublicKey,
        auth: &mut SoftwareAuthenticator,
    ) -> OpenRecoveryResponse {
        let name = &self.cluster.node(i).name;
        let opened = self
            .open(i, wallet, r)
            .await
            .unwrap_or_else(|s| panic!("OpenRecovery at {name}: {s:?}"));
        let touch = self.recovery_touch(i, wallet, r, &opened, auth);
        self.authenticate(i, &opened.session_id, &touch)
            .await
            .unwrap_or_else(|s| panic!("AuthenticateOwner at {name}: {s:?}"));
        opened
    }

    /// The owner's recovery touch for node `i`'s session alone.
    pub fn recovery_touch(
        &self,
        i: usize,
        wallet: &str,
        r: &PublicKey,
        opened: &OpenRecoveryResponse,
        auth: &mut SoftwareAuthenticator,
    ) -> Touch {
        let mut nonces = Nonces::default();
        nonces.push(&self.cluster.node(i).node_id, &opened.nonce);
        Touch::new(
            auth,
            OwnerAction::Recover,
            wallet,
            &encode_public_key(r),
            nonces,
            &opened.request_options_json,
        )
    }

    /// `AuthenticateOwner` at node `i` with `touch`.
    pub async fn authenticate(
        &self,
        i: usize,
        session_id: &str,
        touch: &Touch,
    ) -> Result<u64, tonic::Status> {
        self.recovery(i)
            .await
            .authenticate_owner(AuthenticateOwnerRequest {
                session_id: session_id.to_owned(),
                assertion_json: touch.assertion_json.clone(),
                nonces: touch.nonces.wire(),
            })
            .await
            .map(|r| r.into_inner().release_not_before)
    }

    /// The owner cancels their session `session_id` (towards `r`) at node `i` alone:
    /// `BeginOwnerCancel`, one touch, `CancelRecovery`.
    pub async fn owner_cancel(
        &self,
        i: usize,
        wallet: &str,
        r: &PublicKey,
        session_id: &str,
        auth: &mut SoftwareAuthenticator,
    ) -> Result<(), tonic::Status> {
        use dlocker_proto::pb::{
            BeginOwnerCancelRequest, CancelRecoveryRequest, cancel_recovery_request,
        };
        let mut c = self.recovery(i).await;
        let begin = c
            .begin_owner_cancel(BeginOwnerCancelRequest {
                session_id: session_id.to_owned(),
            })
            .await?
            .into_inner();
        let mut nonces = Nonces::default();
        nonces.push(&self.cluster.node(i).node_id, &begin.nonce);
        let touch = Touch::new(
            auth,
            OwnerAction::Cancel,
            wallet,
            &encode_public_key(r),
            nonces,
            &begin.request_options_json,
        );
        c.cancel_recovery(CancelRecoveryRequest {
            session_id: session_id.to_owned(),
            authority: Some(cancel_recovery_request::Authority::OwnerAssertionJson(
                touch.assertion_json,
            )),
            nonces: touch.nonces.wire(),
        })
        .await
        .map(|_| ())
    }

    /// `ReleaseShare` at node `i` (answered at once).
    pub async fn release(
        &self,
        i: usize,
        session_id: &str,
        approval: &[u8],
    ) -> Result<ReleaseShareResponse, tonic::Status> {
        self.release_waiting(i, session_id, approval, 0).await
    }

    /// `ReleaseShare` at node `i`, asking it to hold the call up to `wait_secs` for the delay.
    pub async fn release_waiting(
        &self,
        i: usize,
        session_id: &str,
        approval: &[u8],
        wait_secs: u32,
    ) -> Result<ReleaseShareResponse, tonic::Status> {
        self.recovery(i)
            .await
            .release_share(ReleaseShareRequest {
                session_id: session_id.to_owned(),
                bank_approval_encoded: approval.to_vec(),
                wait_secs,
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// The bank's approval signing key, read from its data directory (`keys/bank-approval.key`).
    pub fn bank_signing_key(&self) -> SigningKey {
        FileKeyProvider::new(self.cluster.data_dir(0))
            .bank_approval_key()
            .expect("read the bank approval key")
            .signing_key()
    }

    /// The bank node's id.
    pub fn bank_node_id(&self) -> String {
        self.cluster.node(0).node_id.clone()
    }

    /// The SDK's `recover()` for `wallet`, with staff member 0 approving the bank session as soon
    /// as the SDK reports it (as a human would, after checking the customer out of band).
    /// `progress` sees every event.
    pub async fn recover_with_approval(
        &self,
        wallet: &str,
        auth: &mut SoftwareAuthenticator,
        progress: &(dyn Fn(&RecoverEvent) + Sync),
    ) -> Result<Recovered, RecoverError> {
        self.recover_through(&self.cluster.trustees(), wallet, auth, progress)
            .await
    }

    /// [`RecoveryCluster::recover_with_approval`] through `trustees` (e.g. a file listing
    /// replicas), staff member 0 approving at the bank that file names.
    pub async fn recover_through(
        &self,
        trustees: &dlocker_sdk::TrusteeSet,
        wallet: &str,
        auth: &mut SoftwareAuthenticator,
        progress: &(dyn Fn(&RecoverEvent) + Sync),
    ) -> Result<Recovered, RecoverError> {
        let key = StaffKey::from_hex(&self.staff[0].key.to_hex()).expect("staff key round trip");
        let staff = StaffClient::new(key, trustees.bank());
        recover_approved(trustees, &staff, wallet, auth, progress).await
    }

    /// Runs `dlocker` with `args` and returns its output (not checked).
    pub fn dlocker(&self, args: &[&str]) -> Output {
        cli_command().args(args).output().expect("run dlocker")
    }
}

/// The SDK's `recover()` for `wallet` through `trustees` with an hour between its polls, and
/// `approve(bank_session_id)` run once the SDK reports the bank session; bounded by 120 s, so
/// only calls the nodes hold (none answered "not yet" and waited for a poll) finish it in time.
pub async fn recover_with_hourly_polls<F: std::future::Future<Output = ()>>(
    trustees: &dlocker_sdk::TrusteeSet,
    wallet: &str,
    auth: &mut SoftwareAuthenticator,
    approve: impl FnOnce(String) -> F,
) -> Result<Recovered, RecoverError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let progress = |e: RecoverEvent| {
        if let RecoverEvent::AwaitingApproval { bank_session_id } = e {
            let _ = tx.send(bank_session_id);
        }
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_secs(3600),
        approval_timeout: Duration::from_secs(7200),
        cancel: None,
        progress: &progress,
        checkpoint: None,
    };
    let recovery = dlocker_sdk::protocol::recover(trustees, wallet, auth, opts);
    let approving = async {
        let sid = rx.recv().await.expect("the SDK waits for the bank");
        approve(sid).await;
    };
    let (recovered, ()) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(recovery, approving)
    })
    .await
    .expect("the recovery finished without waiting for a poll");
    recovered
}

/// The SDK's `recover()` for `wallet` through `trustees`, with `staff` approving the bank
/// session as soon as the SDK reports it (as a human would, after checking the customer out of
/// band). `progress` sees every event.
pub async fn recover_approved(
    trustees: &dlocker_sdk::TrusteeSet,
    staff: &StaffClient,
    wallet: &str,
    auth: &mut SoftwareAuthenticator,
    progress: &(dyn Fn(&RecoverEvent) + Sync),
) -> Result<Recovered, RecoverError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let cb = |e: RecoverEvent| {
        if let RecoverEvent::AwaitingApproval { bank_session_id } = &e {
            let _ = tx.send(bank_session_id.clone());
        }
        progress(&e);
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(200),
        approval_timeout: Duration::from_secs(120),
        cancel: None,
        progress: &cb,
        checkpoint: None,
    };
    let rec = dlocker_sdk::protocol::recover(trustees, wallet, auth, opts);
    tokio::pin!(rec);
    loop {
        tokio::select! {
            res = &mut rec => return res,
            Some(sid) = rx.recv() => approve_retrying(staff, &sid).await,
        }
    }
}

/// Staff approval of `sid`, tried again a few times when the bank does not answer (a replica
/// going down under the call); panics on a refusal.
async fn approve_retrying(staff: &StaffClient, sid: &str) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match staff.approve(sid).await {
            Ok(_) => return,
            Err(e)
                if attempt < 10
                    && match &e {
                        dlocker_sdk::StaffError::Connect(c) => c.is_retryable(),
                        dlocker_sdk::StaffError::Refused { refusal, .. } => refusal.is_none(),
                        _ => false,
                    } =>
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("staff approve {sid}: {e}"),
        }
    }
}

/// A fresh device session key `R`.
pub fn session_key() -> SecretKey {
    use k256::elliptic_curve::Generate as _;
    SecretKey::generate_from_rng(&mut rand::rng())
}

/// One owner touch: the assertion and the nonces it covers.
#[derive(Debug, Clone)]
pub struct Touch {
    /// `PublicKeyCredential` JSON.
    pub assertion_json: String,
    /// The trustees' nonces.
    pub nonces: Nonces,
}

impl Touch {
    /// The owner's genuine assertion over the one-touch challenge for `nonces`.
    pub fn new(
        auth: &mut SoftwareAuthenticator,
        action: OwnerAction,
        wallet: &str,
        authorized: &[u8],
        nonces: Nonces,
        options_json: &str,
    ) -> Self {
        let challenge = nonces.challenge(action, wallet, authorized);
        let cred = auth
            .authenticate(touch::request_options(options_json, &challenge))
            .expect("software passkey signs");
        Self {
            assertion_json: serde_json::to_string(&cred).expect("assertion JSON"),
            nonces,
        }
    }

    /// The same touch with its signature damaged: a wrong passkey answer.
    pub fn damaged(&self) -> Self {
        Self {
            assertion_json: touch::damaged(&self.assertion_json),
            nonces: self.nonces.clone(),
        }
    }
}

/// A `BankApproval` signed by `key` (the real bank key, or one nobody accepts).
pub fn craft_approval(
    key: &SigningKey,
    bank_node_id: &str,
    wallet: &str,
    r: &PublicKey,
    issued_at: u64,
    expires_at: u64,
) -> Vec<u8> {
    Signed::sign(
        BankApproval {
            bank_node_id: bank_node_id.to_owned(),
            wallet_id: wallet.to_owned(),
            session_key: *r,
            issued_at,
            expires_at,
            approvers: vec!["alice".into()],
        },
        key,
    )
    .encode()
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `limit` (a readiness wait; the
/// caller's message says what it waited for).
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Replaces the share a stopped node holds for `wallet` by a *different* share with the same
/// index, sealed correctly under the node's storage key: the node will release it without
/// noticing, and only the client's check against the manifest commitments can catch it.
pub fn plant_wrong_share(dir: &Path, node_id: &str, wallet: &str, epoch: u64, share_index: u16) {
    use dlocker_proto::secret::SecretScalar;
    use dlocker_proto::share::Share;
    use trustee_node::at_rest::{ShareRecordId, seal_share};
    use trustee_node::db::{SHARES_TREE, wallet_key};
    let key = FileKeyProvider::new(dir)
        .storage_key()
        .expect("storage key")
        .share_sealing_key();
    let bad = Share::new(share_index, SecretScalar::random()).expect("share");
    let id = ShareRecordId {
        node_id,
        wallet_id: wallet,
        epoch,
        share_index,
    };
    let sealed = seal_share(&key, &id, &bad).expect("seal");
    let db = crate::postgres::open_stopped_sled(&dir.join("db"));
    let tree = db.open_tree(SHARES_TREE).expect("shares tree");
    assert!(
        tree.get(wallet_key(wallet)).expect("read").is_some(),
        "the node holds a share for the wallet"
    );
    tree.insert(wallet_key(wallet), sealed).expect("write");
    db.flush().expect("flush");
}

/// Flips one bit of the at-rest record of `wallet` on a stopped node (it then fails to unseal).
pub fn flip_stored_share_bit(dir: &Path, wallet: &str) {
    use trustee_node::db::{SHARES_TREE, wallet_key};
    let db = crate::postgres::open_stopped_sled(&dir.join("db"));
    let tree = db.open_tree(SHARES_TREE).expect("shares tree");
    let mut rec = tree
        .get(wallet_key(wallet))
        .expect("read")
        .expect("a stored share")
        .to_vec();
    let last = rec.len() - 1;
    rec[last] ^= 1;
    tree.insert(wallet_key(wallet), rec).expect("write");
    db.flush().expect("flush");
}

/// Records, on a stopped sled node, an audit head at its first entry although later entries
/// exist: the stale head record a single-process database may hold (it keeps the head in
/// memory) and `migrate` copies. Returns every entry's `(seq, hash)`, in order.
pub fn stale_audit_head(dir: &Path) -> Vec<(u64, String)> {
    use trustee_node::db::{AUDIT_TREE, NODE_META_TREE};
    let db = crate::postgres::open_stopped_sled(&dir.join("db"));
    let audit = db.open_tree(AUDIT_TREE).expect("audit tree");
    let (_, first) = audit.first().expect("read").expect("an audit entry");
    let first: serde_json::Value = serde_json::from_slice(&first).expect("audit entries are JSON");
    let head = serde_json::json!({ "seq": first["seq"], "hash": first["hash"] });
    db.open_tree(NODE_META_TREE)
        .expect("node_meta tree")
        .insert(b"audit-head", serde_json::to_vec(&head).expect("JSON"))
        .expect("write");
    db.flush().expect("flush");
    audit
        .iter()
        .map(|item| {
            let (_, v) = item.expect("read audit entry");
            let e: serde_json::Value = serde_json::from_slice(&v).expect("JSON");
            let seq = e["seq"].as_u64().expect("seq");
            (seq, e["hash"].as_str().expect("hash").to_owned())
        })
        .collect()
}

/// Rewrites the `detail` of the first audit entry of `kind` on a stopped node (leaving its
/// recorded hashes alone, as a careless forger would); returns its sequence number.
pub fn tamper_audit_entry(dir: &Path, kind: &str) -> u64 {
    use trustee_node::db::AUDIT_TREE;
    let db = crate::postgres::open_stopped_sled(&dir.join("db"));
    let tree = db.open_tree(AUDIT_TREE).expect("audit tree");
    for item in tree.iter() {
        let (k, v) = item.expect("read audit entry");
        let mut e: serde_json::Value = serde_json::from_slice(&v).expect("audit entries are JSON");
        if e.get("kind").and_then(|x| x.as_str()) == Some(kind) {
            let seq = e
                .get("seq")
                .and_then(serde_json::Value::as_u64)
                .expect("seq");
            e["detail"] = serde_json::Value::String("nothing happened here".into());
            tree.insert(k, serde_json::to_vec(&e).expect("JSON"))
                .expect("write");
            db.flush().expect("flush");
            return seq;
        }
    }
    panic!("no audit entry of kind {kind:?}");
}
