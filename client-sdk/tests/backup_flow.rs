//! The SDK against real in-process trustee nodes: incomplete backups, safe retries, pinning.

use dlocker_sdk::proto::keys::{node_id, public_key_from_hex};
use dlocker_sdk::{
    AuthError, BackupError, BackupPolicy, PreparedBackup, Role, ShareStatus, SoftwareAuthenticator,
    TlsFiles, TrusteeInfo, TrusteeSet,
    protocol::{OwnerAuthenticator, ProgressEvent, backup, verify_backup},
};
use k256::elliptic_curve::Generate;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use trustee_node::config::Role as NodeRole;
use trustee_node::init::{InitOptions, init_node};
use trustee_node::server::{RunningNode, spawn};
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

/// Counts passkey registrations so a test can tell which trustees were re-enrolled.
struct Counting {
    inner: SoftwareAuthenticator,
    registrations: usize,
}

impl OwnerAuthenticator for Counting {
    fn register(
        &mut self,
        o: CreationChallengeResponse,
    ) -> Result<RegisterPublicKeyCredential, AuthError> {
        self.registrations += 1;
        self.inner.register(o)
    }
    fn authenticate(
        &mut self,
        o: RequestChallengeResponse,
    ) -> Result<PublicKeyCredential, AuthError> {
        self.inner.authenticate(o)
    }
}

struct Cluster {
    dirs: Vec<PathBuf>,
    nodes: Vec<Option<RunningNode>>,
    set: TrusteeSet,
}

async fn cluster(root: &Path, n: usize) -> Cluster {
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    let mut infos = Vec::new();
    for i in 0..n {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let dir = root.join(format!("node-{i}"));
        let role = if i == 0 {
            NodeRole::Bank
        } else {
            NodeRole::Trustee
        };
        let desc =
            init_node(&InitOptions::new(dir.clone(), format!("n{i}"), addr, role)).expect("init");
        let node = spawn(&dir).await.expect("spawn");
        let pk = public_key_from_hex(&desc.public_key).expect("key");
        infos.push(TrusteeInfo::new(
            format!("n{i}"),
            node.url(),
            pk,
            if i == 0 { Role::Bank } else { Role::Trustee },
            TlsFiles::default(),
        ));
        dirs.push(dir);
        nodes.push(Some(node));
    }
    Cluster {
        dirs,
        nodes,
        set: TrusteeSet::new(infos).expect("set"),
    }
}

impl Cluster {
    async fn stop(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.shutdown().await.expect("shutdown");
        }
    }
    async fn start(&mut self, i: usize) {
        self.nodes[i] = Some(spawn(&self.dirs[i]).await.expect("restart"));
    }
    async fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}

const POLICY: BackupPolicy = BackupPolicy {
    threshold: 2,
    recovery_delay_secs: 0,
};

#[tokio::test]
async fn a_trustee_down_stops_the_backup_before_the_touch_and_the_retry_registers_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 3).await;
    c.stop(2).await;

    let prepared = PreparedBackup::new(&c.set, "wallet-retry", b"seed", POLICY).expect("prepare");
    let mut auth = Counting {
        inner: SoftwareAuthenticator::new(),
        registrations: 0,
    };
    let events = Mutex::new(Vec::new());
    let record = |e: ProgressEvent| events.lock().expect("lock").push(e);
    let first = backup(&c.set, &prepared, "alice", &mut auth, &record).await;
    let Err(BackupError::Incomplete { failed, receipts }) = first else {
        panic!("expected Incomplete, got {first:?}")
    };
    // One credential at every trustee or at none: with n2 down the owner is not asked, and
    // nothing is deposited anywhere.
    assert_eq!(auth.registrations, 0);
    assert!(receipts.receipts.is_empty());
    assert_eq!(failed.len(), 3, "{failed:?}");
    let n2 = failed.iter().find(|(n, _)| n == "n2").expect("n2 named");
    assert!(
        matches!(n2.1, dlocker_sdk::TrusteeFailure::Connect(_)),
        "{:?}",
        n2.1
    );
    assert!(n2.1.to_string().contains("cannot reach"), "{}", n2.1);
    for (name, reason) in failed.iter().filter(|(n, _)| n != "n2") {
        assert!(
            reason.to_string().contains("n2 could not begin"),
            "{name} should wait for n2: {reason}"
        );
    }
    {
        let ev = events.lock().expect("lock");
        assert!(ev.contains(&ProgressEvent::TrusteeFailed {
            name: "n2".into(),
            reason: n2.1.to_string()
        }));
        assert!(
            !ev.iter()
                .any(|e| matches!(e, ProgressEvent::PasskeyRequested { .. })),
            "{ev:?}"
        );
    }
    assert_eq!(
        verify_backup(&c.set, prepared.manifest())
            .await
            .healthy_count(),
        0
    );

    // Retry with the same prepared backup once n2 is back: ONE registration for all three.
    c.start(2).await;
    events.lock().expect("lock").clear();
    let done = backup(&c.set, &prepared, "alice", &mut auth, &record)
        .await
        .expect("retry completes");
    assert_eq!(auth.registrations, 1);
    assert_eq!(done.receipts.len(), 3);
    assert!(
        events
            .lock()
            .expect("lock")
            .contains(&ProgressEvent::PasskeyRequested {
                trustees: vec!["n0".into(), "n1".into(), "n2".into()]
            })
    );
    let report = verify_backup(&c.set, prepared.manifest()).await;
    assert!(report.all_healthy(), "{report:?}");

    // Run again: every trustee answers with its stored receipt, the owner is not asked.
    let again = backup(&c.set, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("third run");
    assert_eq!(auth.registrations, 1);
    for (a, b) in done.receipts.iter().zip(&again.receipts) {
        assert_eq!(
            a.receipt.encode(),
            b.receipt.encode(),
            "stored receipt returned for {}",
            a.name
        );
    }

    // A different backup of the same wallet is refused, naming each trustee, before any touch.
    let other = PreparedBackup::new(&c.set, "wallet-retry", b"seed", POLICY).expect("prepare");
    match backup(&c.set, &other, "alice", &mut auth, &|_| {}).await {
        Err(BackupError::Incomplete { failed, .. }) => {
            assert_eq!(failed.len(), 3);
            assert!(
                failed
                    .iter()
                    .all(|(_, r)| r.to_string().contains("different backup")),
                "{failed:?}"
            );
        }
        r => panic!("expected refusal, got {r:?}"),
    }
    assert_eq!(auth.registrations, 1);
    // ... and verifying against its manifest reports the mismatch.
    let report = verify_backup(&c.set, other.manifest()).await;
    assert!(
        report.entries.iter().all(
            |e| matches!(&e.status, ShareStatus::Unhealthy(r) if r.contains("different backup"))
        )
    );
    c.stop_all().await;
}

#[tokio::test]
async fn a_node_with_an_unpinned_key_gets_no_share() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 3).await;
    // The file pins a different key for n1 than the node really has.
    let mut infos = c.set.trustees().to_vec();
    let impostor = k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key();
    infos[1].public_key = impostor;
    infos[1].node_id = node_id(&impostor);
    let set = TrusteeSet::new(infos).expect("set");
    let prepared = PreparedBackup::new(&set, "wallet-pin", b"seed", POLICY).expect("prepare");
    let mut auth = SoftwareAuthenticator::new();
    match backup(&set, &prepared, "alice", &mut auth, &|_| {}).await {
        Err(BackupError::Incomplete { failed, receipts }) => {
            let n1 = failed.iter().find(|(n, _)| n == "n1").expect("n1 named");
            assert!(n1.1.to_string().contains("not the pinned key"), "{}", n1.1);
            // No share (and no passkey) went anywhere: the backup waits for every trustee.
            assert!(receipts.receipts.is_empty());
            assert_eq!(auth.touches(), 0);
        }
        r => panic!("expected Incomplete, got {r:?}"),
    }
    let report = verify_backup(&set, prepared.manifest()).await;
    assert_eq!(report.healthy_count(), 0);
    c.stop_all().await;
}

/// Stops a node while the owner is being asked for the passkey: the registration is made for
/// every trustee, then one `FinishEnrollment` cannot reach its node.
struct StopsANodeDuringTheTouch {
    inner: SoftwareAuthenticator,
    node: Option<RunningNode>,
}

impl OwnerAuthenticator for StopsANodeDuringTheTouch {
    fn register(
        &mut self,
        o: CreationChallengeResponse,
    ) -> Result<RegisterPublicKeyCredential, AuthError> {
        if let Some(node) = self.node.take() {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(node.shutdown())
            })
            .expect("shutdown");
        }
        self.inner.register(o)
    }
    fn authenticate(
        &mut self,
        o: RequestChallengeResponse,
    ) -> Result<PublicKeyCredential, AuthError> {
        self.inner.authenticate(o)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_touch_resends_the_same_registration() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = cluster(tmp.path(), 3).await;
    let prepared = PreparedBackup::new(&c.set, "wallet-resend", b"seed", POLICY).expect("prepare");
    let mut auth = StopsANodeDuringTheTouch {
        inner: SoftwareAuthenticator::new(),
        node: c.nodes[1].take(),
    };
    let first = backup(&c.set, &prepared, "alice", &mut auth, &|_| {}).await;
    let Err(BackupError::Incomplete { failed, receipts }) = first else {
        panic!("expected Incomplete, got {first:?}")
    };
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "n1");
    assert!(
        matches!(
            failed[0].1,
            dlocker_sdk::TrusteeFailure::Refused {
                call: "FinishEnrollment",
                ..
            }
        ),
        "{:?}",
        failed[0].1
    );
    assert!(
        failed[0].1.to_string().contains("FinishEnrollment"),
        "{}",
        failed[0].1
    );
    assert_eq!(receipts.receipts.len(), 2);
    assert_eq!(auth.inner.touches(), 1);

    // n1 comes back (its ceremony and nonce are durable): the same registration completes it,
    // without asking the owner again, so the wallet keeps its one credential.
    c.start(1).await;
    let done = backup(&c.set, &prepared, "alice", &mut auth, &|_| {})
        .await
        .expect("retry completes");
    assert_eq!(done.receipts.len(), 3);
    assert_eq!(
        auth.inner.touches(),
        1,
        "no second touch, no second credential"
    );
    assert!(
        verify_backup(&c.set, prepared.manifest())
            .await
            .all_healthy()
    );
    c.stop_all().await;
}
