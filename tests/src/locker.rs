//! Harness for the document locker tests.
//!
//! [`LockerCluster`]: two real `trustee-node` processes — the bank, whose config `trustee-node
//! init --role bank` writes with `[locker] enabled = true`, and one trustee — with a staff member
//! holding the approver, canceller and operator roles. On it: wallets backed up 2-of-2 whose
//! owners bind a wallet key to the locker with their passkey, issuers of the three kinds (hosted,
//! push, pull — the pull one is the `example-issuer` binary as a child process), and
//! requesters, all driven through the SDK's `documents` module. Audit entries are read back with
//! `GetAuditLog`.

use crate::bins::{bin_path, cli_command, node_command};
use crate::cluster::{Cluster, free_ports, node_name, show};
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_proto::pb::{AuditEntry, GetAuditLogRequest};
use dlocker_proto::statement::StaffAction;
use dlocker_sdk::documents::{
    HolderClient, IssuerClient, LockerClient, OperatorClient, PrincipalKey, RequesterClient,
    vc::Claims,
};
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, SoftwareAuthenticator, StaffClient, StaffKey, TrusteeSet,
};
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The staff member: approver, canceller and locker operator.
pub const STAFF_ID: &str = "olivia";
/// The hosted issuer the tests use (the bank itself issues a KYC identity card).
pub const BANK_ISSUER: &str = "example.bank";
/// Its document type.
pub const ID_CARD: &str = "IDCRD";

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

/// Two real nodes, the bank serving the locker. Derefs to the [`Cluster`].
pub struct LockerCluster {
    cluster: Cluster,
    /// The staff member's key.
    pub staff: StaffKey,
    /// Its key file (for the CLI).
    pub staff_key_file: PathBuf,
    _storage: crate::postgres::Storage,
    _root: tempfile::TempDir,
    root_path: PathBuf,
}

impl std::ops::Deref for LockerCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl std::ops::DerefMut for LockerCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// A wallet backed up on the cluster whose owner registered a wallet key at the locker.
pub struct Wallet {
    /// The wallet (= holder) id.
    pub id: String,
    /// The owner's passkey.
    pub auth: SoftwareAuthenticator,
    /// The holder client (current wallet key).
    pub holder: HolderClient,
}

/// A running `example-issuer serve`.
pub struct ExampleIssuer {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The address.
    pub addr: SocketAddr,
    /// Its key file.
    pub key_file: PathBuf,
    locker_key: String,
}

impl ExampleIssuer {
    /// Starts it on `addr` and waits for its "serving" line.
    pub fn start(addr: SocketAddr, key_file: &Path, locker_key_hex: &str) -> Self {
        let mut child = Command::new(bin_path("example-issuer"))
            .args(["serve", "--listen", &addr.to_string(), "--key"])
            .arg(key_file)
            .args(["--locker-key", locker_key_hex])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn example-issuer");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read example-issuer output");
        assert!(
            line.contains("serving on"),
            "example-issuer did not start: {line:?}"
        );
        Self {
            child: Some(child),
            endpoint: format!("http://{addr}"),
            addr,
            key_file: key_file.to_path_buf(),
            locker_key: locker_key_hex.to_owned(),
        }
    }

    /// Kills it (the repository is then down).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same address.
    pub fn restart(&mut self) {
        self.kill();
        *self = Self::start(self.addr, &self.key_file.clone(), &self.locker_key.clone());
    }
}

impl Drop for ExampleIssuer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl LockerCluster {
    /// Initialises and starts the bank (locker) and one trustee.
    pub async fn start() -> Self {
        Self::start_on(crate::postgres::Storage::Sled).await
    }

    /// [`LockerCluster::start`] with the nodes' records in `storage`.
    pub async fn start_on(storage: crate::postgres::Storage) -> Self {
        let root = tempfile::Builder::new()
            .prefix("dlocker-locker-")
            .tempdir()
            .expect("tempdir");
        let root_path = root.path().to_path_buf();
        let staff = StaffKey::generate();
        let staff_key_file = root_path.join(format!("staff-{STAFF_ID}.key"));
        staff.save(&staff_key_file).expect("save staff key");
        let ports = free_ports(2);
        let mut dirs = Vec::new();
        let mut bank_key = String::new();
        for (i, port) in ports.into_iter().enumerate() {
            let name = node_name(i);
            let dir = root_path.join(&name);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut cmd = node_command();
            cmd.arg("init")
                .arg("--data-dir")
                .arg(&dir)
                .args(["--name", &name, "--listen", &addr.to_string()])
                .args(["--endpoint", &format!("http://{addr}")])
                .args(["--recovery-delay-floor", "0"]);
            if i == 0 {
                cmd.args(["--role", "bank"]).args([
                    "--staff",
                    &format!(
                        "{STAFF_ID}={}:approver,canceller,operator",
                        staff.public_key_hex()
                    ),
                ]);
            } else {
                cmd.args(["--role", "trustee", "--accept-bank-key", &bank_key]);
            }
            run_checked(&mut cmd, &format!("trustee-node init ({name})"));
            if i == 0 {
                let key = crate::recovery_cluster::show_bank_approval_key(&dir);
                bank_key = dlocker_proto::keys::public_key_hex(&key);
                let text = std::fs::read_to_string(dir.join("config.toml")).expect("config");
                assert!(
                    text.contains("[locker]") && text.contains("enabled = true"),
                    "init enables the locker on a bank"
                );
            }
            storage.configure(&dir, i);
            let _ = show(&dir);
            dirs.push(dir);
        }
        let mut cluster = Cluster::adopt(&dirs);
        cluster.start_all().await;
        Self {
            cluster,
            staff,
            staff_key_file,
            _storage: storage,
            _root: root,
            root_path,
        }
    }

    /// The cluster directory.
    pub fn root_dir(&self) -> &Path {
        &self.root_path
    }

    /// The SDK's trustees set (written to `ROOT/trustees.toml`).
    pub fn set(&self) -> TrusteeSet {
        self.cluster.trustees()
    }

    /// The locker (the bank node, pinned).
    pub fn locker(&self) -> LockerClient {
        LockerClient::new(self.set().bank())
    }

    /// The operator client.
    pub fn operator(&self) -> OperatorClient {
        let key = StaffKey::from_hex(&self.staff.to_hex()).expect("staff key");
        OperatorClient::new(key, self.locker())
    }

    /// The staff client (recoveries).
    pub fn staff_client(&self) -> StaffClient {
        let key = StaffKey::from_hex(&self.staff.to_hex()).expect("staff key");
        StaffClient::new(key, self.set().bank())
    }

    /// Backs up a fresh wallet 2-of-2 and registers a fresh wallet key at the locker.
    pub async fn wallet(&self, prefix: &str) -> Wallet {
        self.wallet_with(prefix, SoftwareAuthenticator::new()).await
    }

    /// [`LockerCluster::wallet`] with the owner's passkey `auth` (an exportable one, for a test
    /// that hands it to the CLI as a file).
    pub async fn wallet_with(&self, prefix: &str, mut auth: SoftwareAuthenticator) -> Wallet {
        let set = self.set();
        let id = crate::craft::wallet_id(prefix);
        let prepared = PreparedBackup::new(
            &set,
            &id,
            b"wallet secret",
            BackupPolicy {
                threshold: 2,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare backup");
        dlocker_sdk::protocol::backup(&set, &prepared, "owner", &mut auth, &|_| {})
            .await
            .expect("backup");
        let holder = HolderClient::new(self.locker(), &id, PrincipalKey::generate());
        holder
            .register(&mut auth)
            .await
            .expect("register the wallet key");
        Wallet { id, auth, holder }
    }

    /// Registers and approves a hosted issuer.
    pub async fn hosted_issuer(&self, id: &str, types: &[&str]) -> IssuerClient {
        hosted_issuer(&self.locker(), &self.operator(), id, types).await
    }

    /// Registers and approves an own-key (push) issuer.
    pub async fn push_issuer(&self, id: &str, types: &[&str]) -> IssuerClient {
        let c = IssuerClient::new(self.locker(), id, PrincipalKey::generate());
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        let e = c
            .register("Example University", &types, false, "")
            .await
            .expect("register push issuer");
        self.operator()
            .approve(StaffAction::ApproveIssuer, id, &e.key_fingerprint)
            .await
            .expect("approve issuer");
        c
    }

    /// Starts the example pull issuer as a process, registers and approves it.
    pub async fn pull_issuer(&self) -> (IssuerClient, ExampleIssuer) {
        let key_file = self.root_path.join("example-issuer.key");
        run_checked(
            Command::new(bin_path("example-issuer"))
                .args(["keygen", "--out"])
                .arg(&key_file),
            "example-issuer keygen",
        );
        let key = dlocker_sdk::documents::load_key(&key_file).expect("issuer key");
        let port = free_ports(1)[0];
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let locker_key = self.cluster.node(0).public_key_hex();
        let proc = ExampleIssuer::start(addr, &key_file, &locker_key);
        let id = dlocker_locker::example_issuer::ISSUER_ID;
        let c = IssuerClient::new(self.locker(), id, key);
        let e = c
            .register(
                dlocker_locker::example_issuer::NAME,
                &[dlocker_locker::example_issuer::DOC_TYPE.to_owned()],
                false,
                &proc.endpoint,
            )
            .await
            .expect("register pull issuer");
        self.operator()
            .approve(StaffAction::ApproveIssuer, id, &e.key_fingerprint)
            .await
            .expect("approve issuer");
        (c, proc)
    }

    /// Registers a requester, approved or left pending.
    pub async fn requester(&self, id: &str, approve: bool) -> RequesterClient {
        let key = PrincipalKey::generate();
        let fp = dlocker_sdk::documents::ids::key_fingerprint(&key.public_key());
        let c = RequesterClient::new(self.locker(), id, key);
        c.register("Acme Employer")
            .await
            .expect("register requester");
        if approve {
            self.operator()
                .approve(StaffAction::ApproveRequester, id, &fp)
                .await
                .expect("approve requester");
        }
        c
    }

    /// The bank node's audit log.
    pub async fn audit(&self) -> Vec<AuditEntry> {
        let ch = self
            .cluster
            .node(0)
            .channel()
            .await
            .expect("connect to the bank");
        RecoveryClient::new(ch)
            .get_audit_log(GetAuditLogRequest {
                from_seq: 1,
                limit: 1000,
                staff_request_encoded: Vec::new(),
            })
            .await
            .expect("GetAuditLog")
            .into_inner()
            .entries
    }

    /// Runs `dlocker` with `args`.
    pub fn dlocker(&self, args: &[&str]) -> Output {
        cli_command().args(args).output().expect("run dlocker")
    }
}

/// Sample claims of an identity card.
/// Registers a hosted-key issuer at `locker` (the bank's node) and has `operator` (staff with
/// the operator role) approve it.
pub async fn hosted_issuer(
    locker: &LockerClient,
    operator: &OperatorClient,
    id: &str,
    types: &[&str],
) -> IssuerClient {
    let c = IssuerClient::new(locker.clone(), id, PrincipalKey::generate());
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    let e = c
        .register("Example Bank KYC", &types, true, "")
        .await
        .expect("register hosted issuer");
    operator
        .approve(StaffAction::ApproveIssuer, id, &e.key_fingerprint)
        .await
        .expect("approve issuer");
    c
}

pub fn id_card_claims(name: &str) -> Claims {
    Claims::from_pairs([
        ("name", name),
        ("documentNumber", "IDN-4471-2209"),
        ("nationality", "IN"),
    ])
    .expect("claims")
}

/// The example issuer's lookup fields for its first licence.
pub fn licence_lookup() -> std::collections::BTreeMap<String, String> {
    [
        ("licence_number", "KA01-2020-0001234"),
        ("date_of_birth", "1990-04-12"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// A year from now.
pub fn in_a_year() -> u64 {
    dlocker_proto::time::unix_now() + 365 * 24 * 3600
}

/// Waits `d`.
pub async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}
