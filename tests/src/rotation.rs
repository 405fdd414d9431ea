//! A cluster set up for epoch rotation: `n` real `trustee-node` processes, node 0 the
//! bank with one staff member, every node accepting the bank's approval key, recovery delay floor
//! 0, and `[epochs] staged_ttl_secs` as the test asks (short, to watch a staged epoch expire).
//!
//! Set-up is the operator's order, as in [`crate::recovery_cluster`]: init the bank with
//! `--staff`, read its approval key with `trustee-node show --json`, init every other node with
//! `--accept-bank-key`, edit `config.toml` before the first start. The processes are run by
//! [`Cluster`] (adopted directories), so stop, kill and restart work as everywhere else.
//!
//! The SDK sees trustees files for any subset of nodes ([`RotationCluster::set`]): the old set,
//! the new set, and all nodes (what a recovering device uses while a rotation may be half done).

use crate::cluster::Cluster;
use crate::recovery_cluster::{RecoveryCluster, RecoverySpec};
use dlocker_proto::manifest::Manifest;
use dlocker_sdk::{
    BackupPolicy, PreparedBackup, SoftwareAuthenticator, StaffClient, StaffKey, TrusteeSet,
};
use dlocker_sdk::{RecoverError, Recovered};
use dlocker_sdk::{RotateOptions, RotationRecord, RotationSource, RotationStep};
use std::path::Path;

/// Real nodes ready for backup, recovery and rotation: a [`RecoveryCluster`] of `n` nodes with
/// one staff member (alice, approver and canceller). Derefs to the underlying [`Cluster`].
pub struct RotationCluster {
    inner: RecoveryCluster,
}

impl std::ops::Deref for RotationCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.inner
    }
}

impl RotationCluster {
    /// The recovery view of the same nodes (raw recovery helpers).
    pub fn recovery_cluster(&self) -> &RecoveryCluster {
        &self.inner
    }
}

impl std::ops::DerefMut for RotationCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.inner
    }
}

impl RotationCluster {
    /// Initialises and starts `n` nodes; `staged_ttl_secs` goes into every node's `[epochs]`.
    pub async fn start(n: usize, staged_ttl_secs: Option<u64>) -> Self {
        Self::start_on(n, staged_ttl_secs, crate::postgres::Storage::Sled).await
    }

    /// [`RotationCluster::start`] with the nodes' records in `storage`.
    pub async fn start_on(
        n: usize,
        staged_ttl_secs: Option<u64>,
        storage: crate::postgres::Storage,
    ) -> Self {
        let mut c = Self::init_on(n, staged_ttl_secs, storage);
        c.start_all().await;
        c
    }

    /// Initialises `n` nodes without starting them.
    pub fn init(n: usize, staged_ttl_secs: Option<u64>) -> Self {
        Self::init_on(n, staged_ttl_secs, crate::postgres::Storage::Sled)
    }

    fn init_on(n: usize, staged_ttl_secs: Option<u64>, storage: crate::postgres::Storage) -> Self {
        let config = staged_ttl_secs
            .map(|ttl| {
                let ttl = i64::try_from(ttl).expect("ttl fits");
                (
                    "epochs".to_owned(),
                    "staged_ttl_secs".to_owned(),
                    toml::Value::Integer(ttl),
                )
            })
            .into_iter()
            .collect();
        Self {
            inner: RecoveryCluster::init(RecoverySpec {
                nodes: n,
                config,
                storage,
                ..RecoverySpec::default()
            }),
        }
    }

    /// The cluster's temporary directory.
    pub fn root_dir(&self) -> &Path {
        self.inner.root_dir()
    }

    /// The SDK's trustee set of the nodes at `indices` (in that order: share `i` to the `i`-th).
    pub fn set(&self, indices: &[usize]) -> TrusteeSet {
        TrusteeSet::from_toml(&self.trustees_toml_for(indices))
            .unwrap_or_else(|e| panic!("SDK refused the harness trustees file: {e}"))
    }

    /// Every node (what a recovering device uses).
    pub fn all(&self) -> TrusteeSet {
        self.set(&(0..self.len()).collect::<Vec<_>>())
    }

    /// Backs up `data` for a fresh wallet over the nodes at `indices`, `threshold`-of-n, no delay;
    /// returns the wallet id, the prepared backup and the owner's passkey.
    pub async fn backup(
        &self,
        prefix: &str,
        indices: &[usize],
        threshold: u16,
        data: &[u8],
    ) -> (String, PreparedBackup, SoftwareAuthenticator) {
        let set = self.set(indices);
        let wallet = crate::craft::wallet_id(prefix);
        let prepared = PreparedBackup::new(
            &set,
            &wallet,
            data,
            BackupPolicy {
                threshold,
                recovery_delay_secs: 0,
            },
        )
        .expect("prepare backup");
        let mut auth = SoftwareAuthenticator::new();
        dlocker_sdk::protocol::backup(&set, &prepared, "alice", &mut auth, &|_| {})
            .await
            .expect("backup");
        (wallet, prepared, auth)
    }

    /// The SDK's staff client for the bank.
    pub fn staff_client(&self) -> StaffClient {
        let key =
            StaffKey::from_hex(&self.inner.staff[0].key.to_hex()).expect("staff key round trip");
        StaffClient::new(key, self.all().bank())
    }

    /// `recover()` over every node, staff approving the bank session as soon as the SDK reports it.
    pub async fn recover(
        &self,
        wallet: &str,
        auth: &mut SoftwareAuthenticator,
    ) -> Result<Recovered, RecoverError> {
        crate::recovery_cluster::recover_approved(
            &self.all(),
            &self.staff_client(),
            wallet,
            auth,
            &|_| {},
        )
        .await
    }

    /// Recovers `wallet` and checks the data; returns the epoch recovered from and the recovery.
    pub async fn recover_expecting(
        &self,
        wallet: &str,
        auth: &mut SoftwareAuthenticator,
        data: &[u8],
    ) -> (u64, Recovered) {
        let r = self
            .recover(wallet, auth)
            .await
            .unwrap_or_else(|e| panic!("recovery of {wallet} failed: {e}"));
        assert_eq!(
            r.data().expose(),
            data,
            "the recovered data is the original"
        );
        (r.manifest.epoch(), r)
    }

    /// `BeginEpochAction(action)` at node `i` for `wallet` (raw, for tests that build the rest).
    pub async fn begin_action(
        &self,
        i: usize,
        wallet: &str,
        action: dlocker_proto::pb::EpochAction,
    ) -> dlocker_proto::pb::BeginEpochActionResponse {
        dlocker_proto::pb::epochs_client::EpochsClient::new(
            self.node(i).channel().await.expect("connect"),
        )
        .begin_epoch_action(dlocker_proto::pb::BeginEpochActionRequest {
            wallet_id: wallet.into(),
            action: action as i32,
            manifest_hash: Vec::new(),
        })
        .await
        .expect("BeginEpochAction")
        .into_inner()
    }

    /// The fingerprint of the credential each of the nodes `indices` stores for `wallet` (what
    /// `BeginEpochAction(CHANGE_PASSKEY)` reports).
    pub async fn credential_fingerprints(&self, indices: &[usize], wallet: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for &i in indices {
            out.push(
                self.begin_action(i, wallet, dlocker_proto::pb::EpochAction::ChangePasskey)
                    .await
                    .credential_fingerprint,
            );
        }
        out
    }

    /// A node's active and staged epochs for `wallet` (via `GetBackupStatus`): `(active, staged)`,
    /// 0 for none; `None` when the node holds nothing.
    pub async fn epochs_at(&self, i: usize, wallet: &str) -> Option<(u64, u64)> {
        let mut c = self.node(i).client().await;
        match c
            .get_backup_status(dlocker_proto::pb::GetBackupStatusRequest {
                wallet_id: wallet.to_owned(),
            })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                Some((r.epoch, r.staged.map(|s| s.epoch).unwrap_or(0)))
            }
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => panic!("GetBackupStatus at {}: {s:?}", self.node(i).name),
        }
    }
}

/// Options that stop before the `n`-th network step (0-based count of steps offered), like a
/// client killed at that point; also records every step offered in `seen`.
pub struct StopAfter {
    n: usize,
    seen: std::sync::Mutex<Vec<RotationStep>>,
}

impl StopAfter {
    /// Stop before step number `n` (so `n` steps are taken).
    pub fn new(n: usize) -> Self {
        Self {
            n,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }
    /// Never stop.
    pub fn never() -> Self {
        Self::new(usize::MAX)
    }
    /// The hook for [`RotateOptions::interrupt`].
    pub fn hook(&self, step: &RotationStep) -> bool {
        let mut seen = self.seen.lock().expect("lock");
        seen.push(step.clone());
        seen.len() > self.n
    }
    /// Steps offered so far.
    pub fn seen(&self) -> Vec<RotationStep> {
        self.seen.lock().expect("lock").clone()
    }
}

/// The source of a rotation on the live device that made the backup.
pub fn source(prepared: &PreparedBackup) -> RotationSource {
    RotationSource::from_prepared(prepared).expect("rotation source")
}

/// Default rotation options with a record file in `dir` and an interrupt hook.
pub fn options<'a>(
    dir: &Path,
    wallet: &str,
    hook: &'a (dyn Fn(&RotationStep) -> bool + Sync),
) -> RotateOptions<'a> {
    RotateOptions::new("alice")
        .record_path(dir.join(format!("{wallet}.rotation.json")))
        .interrupt(hook)
}

/// Rotates `wallet` from `old` to `new` with the SDK but stops before the first commit (after
/// `stages` steps: the stages), as a client killed there. Returns the step it stopped at, the
/// staged manifest's hash and the stage receipts (the evidence a commit presents).
#[allow(clippy::too_many_arguments)]
pub async fn stage_only(
    dir: &Path,
    wallet: &str,
    old: &TrusteeSet,
    new: &TrusteeSet,
    src: &RotationSource,
    policy: BackupPolicy,
    auth: &mut SoftwareAuthenticator,
    stages: usize,
) -> (String, dlocker_proto::manifest::ManifestHash, Vec<Vec<u8>>) {
    let stop = StopAfter::new(stages);
    let hook = |s: &RotationStep| stop.hook(s);
    let opts = options(dir, wallet, &hook);
    let step = match dlocker_sdk::protocol::rotate(old, new, src, policy, false, auth, &opts).await
    {
        Err(dlocker_sdk::RotateError::Interrupted { step, .. }) => step,
        other => panic!("expected an interruption before the first commit, got {other:?}"),
    };
    drop(opts);
    let record = load_record(dir, wallet);
    let hash = record.manifest().expect("manifest").hash();
    let quorum = record
        .trustees
        .iter()
        .filter_map(|t| t.stage_receipt.as_deref())
        .map(|h| hex::decode(h).expect("hex"))
        .collect();
    (step, hash, quorum)
}

/// `BeginEpochAction(action)` at the node behind `ch` (its id `node_id`) and the owner's
/// one-touch answer for that node alone; `wrong`: a damaged assertion.
pub async fn epoch_owner(
    ch: tonic::transport::Channel,
    node_id: &str,
    wallet: &str,
    action: dlocker_proto::pb::EpochAction,
    hash: &dlocker_proto::manifest::ManifestHash,
    auth: &mut SoftwareAuthenticator,
    wrong: bool,
) -> dlocker_proto::pb::OwnerAssertion {
    use dlocker_proto::owner_challenge::{OwnerAction, stage_authorized};
    use dlocker_proto::pb;
    let c = pb::epochs_client::EpochsClient::new(ch)
        .begin_epoch_action(pb::BeginEpochActionRequest {
            wallet_id: wallet.into(),
            action: action as i32,
            manifest_hash: hash.0.to_vec(),
        })
        .await
        .expect("BeginEpochAction")
        .into_inner();
    let (owner_action, authorized) = match action {
        pb::EpochAction::Stage => (
            OwnerAction::Stage,
            stage_authorized(
                &hash.0,
                &c.credential_fingerprint
                    .as_slice()
                    .try_into()
                    .expect("fingerprint"),
            ),
        ),
        pb::EpochAction::Abandon => (OwnerAction::Abandon, hash.0.to_vec()),
        _ => (OwnerAction::Commit, hash.0.to_vec()),
    };
    let mut nonces = crate::touch::Nonces::default();
    nonces.push(node_id, &c.nonce);
    let touch = crate::recovery_cluster::Touch::new(
        auth,
        owner_action,
        wallet,
        &authorized,
        nonces,
        &c.request_options_json,
    );
    let touch = if wrong { touch.damaged() } else { touch };
    pb::OwnerAssertion {
        challenge_id: c.challenge_id,
        assertion_json: touch.assertion_json,
        nonces: touch.nonces.wire(),
    }
}

/// The record a previous run left in `dir` (what a restarted app loads).
pub fn load_record(dir: &Path, wallet: &str) -> RotationRecord {
    RotationRecord::load(&dir.join(format!("{wallet}.rotation.json")))
        .expect("load the rotation record")
}

/// What a stopped node's database holds for `wallet`: `None` when nothing is in the shares tree,
/// else whether the stored share opens as epoch `epoch`'s record (at-rest AAD names the epoch).
pub fn stored_share_epoch(
    dir: &Path,
    node_id: &str,
    wallet: &str,
    manifests: &[&Manifest],
) -> Option<u64> {
    use trustee_node::at_rest::{ShareRecordId, open_share};
    use trustee_node::db::{SHARES_TREE, wallet_key};
    use trustee_node::keys::{FileKeyProvider, KeyProvider as _};
    let key = FileKeyProvider::new(dir)
        .storage_key()
        .expect("storage key")
        .share_sealing_key();
    let db = crate::postgres::open_stopped_db(dir);
    let sealed = db
        .tree(SHARES_TREE)
        .expect("tree")
        .get(wallet_key(wallet))
        .expect("read")?;
    for m in manifests {
        if let Some(e) = m.trustee(node_id) {
            let id = ShareRecordId {
                node_id,
                wallet_id: wallet,
                epoch: m.epoch(),
                share_index: e.share_index,
            };
            if open_share(&key, &id, &sealed).is_ok() {
                return Some(m.epoch());
            }
        }
    }
    Some(0)
}

/// The kinds of the stored events of a stopped node that name `wallet`, but for its retirement
/// (a node that left a wallet keeps only that event of it).
pub fn events_naming_wallet(dir: &Path, wallet: &str) -> Vec<String> {
    let db = crate::postgres::open_stopped_db(dir);
    let mut found = Vec::new();
    let events = db.tree(trustee_node::db::EVENTS_TREE).expect("events tree");
    for (_, v) in events.entries().expect("read") {
        let e: trustee_node::events::StoredEvent = serde_json::from_slice(&v).expect("event");
        if e.wallet_id == wallet && e.kind != "wallet_retired" {
            found.push(e.kind);
        }
    }
    found
}

/// Whether a stopped node's database still names `wallet` in any of the per-wallet trees (and
/// the wallet's recovery session index).
pub fn db_mentions_wallet(dir: &Path, wallet: &str) -> Vec<String> {
    use trustee_node::db::wallet_key;
    let db = crate::postgres::open_stopped_db(dir);
    let mut found = Vec::new();
    for name in [
        trustee_node::db::WALLETS_TREE,
        trustee_node::db::SHARES_TREE,
        trustee_node::db::MANIFESTS_TREE,
        trustee_node::db::PASSKEYS_TREE,
        trustee_node::db::BLOBS_TREE,
        trustee_node::db::RECEIPTS_TREE,
        trustee_node::db::EPOCHS_TREE,
        trustee_node::db::STAGED_TREE,
    ] {
        if db
            .tree(name)
            .expect("tree")
            .get(wallet_key(wallet))
            .expect("read")
            .is_some()
        {
            found.push(name.to_owned());
        }
    }
    let index = db
        .tree(trustee_node::db::SESSION_INDEX_TREE)
        .expect("session index");
    if !index
        .scan_prefix(&trustee_node::db::session_index_prefix(wallet))
        .expect("read")
        .is_empty()
    {
        found.push(trustee_node::db::SESSION_INDEX_TREE.to_owned());
    }
    found
}

/// Every tree of a stopped node's database (the audit log and the event outbox included) whose
/// keys or values contain `wallet`'s id in clear: what a delete must leave empty.
pub fn trees_naming_wallet(dir: &Path, wallet: &str) -> Vec<String> {
    let db = crate::postgres::open_stopped_db(dir);
    let needle = wallet.as_bytes();
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    let mut found = Vec::new();
    for name in trustee_node::db::table_names() {
        let tree = db.tree(name).expect("tree");
        if tree
            .entries()
            .expect("read")
            .iter()
            .any(|(k, v)| contains(k) || contains(v))
        {
            found.push(name.to_owned());
        }
    }
    found
}

/// The audit entries of kind `kind` in a stopped node's database, as `(wallet_tag, detail)`.
pub fn audit_entries(dir: &Path, kind: &str) -> Vec<(String, String)> {
    let db = crate::postgres::open_stopped_db(dir);
    let tree = db.tree(trustee_node::db::AUDIT_TREE).expect("audit tree");
    tree.entries()
        .expect("read")
        .into_iter()
        .filter_map(|(_, v)| {
            let e: serde_json::Value = serde_json::from_slice(&v).expect("audit entry");
            (e["kind"] == kind).then(|| {
                (
                    e["wallet_tag"].as_str().unwrap_or_default().to_owned(),
                    e["detail"].as_str().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect()
}
