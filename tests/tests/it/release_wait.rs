//! `ReleaseShare` held by a trustee on real nodes: a release asked a few seconds before the
//! trustee's `release_not_before` (its clock a little behind the app's) is held until then and
//! released, never earlier; one asked far before it is refused "not yet" at once and releases
//! nothing. The SDK therefore needs no pause between release attempts: with a trustee whose
//! clock stepped back after the session opened and a polling interval of an hour, the recovery
//! still finishes, with that trustee's share.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, THRESHOLD, recover_with_hourly_polls, session_key,
};
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::statement::{ShareRelease, Signed};
use dlocker_proto::time::unix_now;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const DATA: &[u8] = b"released when the delay is over, not before";

/// The session's state and `release_not_before` at node `i`, as the node reports them.
async fn status_at(rc: &RecoveryCluster, i: usize, session_id: &str) -> (String, u64) {
    let s = rc.session_status(i, session_id).await;
    (s.state, s.release_not_before)
}

/// Opens and authenticates a session towards a fresh `R` at the bank (node 0) and at node 1,
/// and has staff approve it; returns node 1's session id and the bank's approval.
async fn approved_session(
    rc: &RecoveryCluster,
    wallet: &str,
    auth: &mut dlocker_sdk::SoftwareAuthenticator,
) -> (String, Vec<u8>) {
    let r = session_key().public_key();
    let bank = rc.open_and_authenticate(0, wallet, &r, auth).await;
    let at1 = rc.open_and_authenticate(1, wallet, &r, auth).await;
    let approval = rc
        .staff_client(0)
        .approve(&bank.session_id)
        .await
        .expect("staff approve")
        .approval
        .expect("one approval meets the policy")
        .encode();
    (at1.session_id, approval)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_seconds_early_is_held_until_release_not_before_never_before() {
    let rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (far, _, mut far_auth) = rc.backup("release-far", DATA, 600).await;
    let (soon, _, mut soon_auth) = rc.backup("release-soon", DATA, 6).await;

    // Far before release_not_before: refused "not yet" at once, even asking for the longest
    // wait, and nothing is released.
    let (sid, approval) = approved_session(&rc, &far, &mut far_auth).await;
    let asked = Instant::now();
    let refused = rc
        .release_waiting(1, &sid, &approval, 30)
        .await
        .expect_err("ten minutes early");
    assert_eq!(
        NodeRefusal::of_status(&refused),
        Some(NodeRefusal::DelayNotPassed),
        "{refused:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "a release further away than the wait is not held: {:?}",
        asked.elapsed()
    );
    assert_eq!(
        status_at(&rc, 1, &sid).await.0,
        "owner_authenticated",
        "nothing was released"
    );

    // A few seconds early: without a wait refused at once, as before; with one, held until
    // release_not_before and released then.
    let (sid, approval) = approved_session(&rc, &soon, &mut soon_auth).await;
    let (_, not_before) = status_at(&rc, 1, &sid).await;
    let refused = rc
        .release(1, &sid, &approval)
        .await
        .expect_err("early, and no wait asked");
    assert_eq!(
        NodeRefusal::of_status(&refused),
        Some(NodeRefusal::DelayNotPassed),
        "{refused:?}"
    );
    let left = not_before.saturating_sub(unix_now());
    assert!(
        left >= 2,
        "the release must be asked at least 2 s early to show a hold ({left} s left)"
    );
    let asked = Instant::now();
    let released = rc
        .release_waiting(1, &sid, &approval, 10)
        .await
        .expect("held until release_not_before, then released");
    let waited = asked.elapsed();
    let statement = Signed::<ShareRelease>::decode(&released.release_encoded).expect("release");
    assert!(
        statement.body().released_at >= not_before,
        "released at {} before release_not_before {not_before}",
        statement.body().released_at
    );
    assert!(
        waited >= Duration::from_secs(left - 1) && waited < Duration::from_secs(20),
        "held about {left} s: {waited:?}"
    );
    assert_eq!(status_at(&rc, 1, &sid).await.0, "released");
}

/// A clock that can be stepped back, as NTP may step a trustee's clock.
struct SteppedClock(AtomicU64);

impl trustee_node::node::Clock for SteppedClock {
    fn now(&self) -> u64 {
        unix_now().saturating_sub(self.0.load(Ordering::SeqCst))
    }

    fn until(&self, t: u64) -> Duration {
        let behind = self.0.load(Ordering::SeqCst);
        (std::time::UNIX_EPOCH + Duration::from_secs(t.saturating_add(behind)))
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_releases_at_a_trustee_whose_clock_stepped_back_without_pausing() {
    let mut rc = RecoveryCluster::init(RecoverySpec::default());
    // Node 1 runs in this process with a clock the test steps back; the others are processes.
    let dir = rc.data_dir(1).to_path_buf();
    let config = trustee_node::config::NodeConfig::load(&dir).expect("config");
    let db = trustee_node::server::open_database(&config).expect("database");
    let clock = Arc::new(SteppedClock(AtomicU64::new(0)));
    let keys = trustee_node::keys::FileKeyProvider::new(&dir);
    let node = trustee_node::node::Node::new(config, &keys, db, clock.clone()).expect("node");
    let listener = tokio::net::TcpListener::bind(node.config().listen)
        .await
        .expect("bind node 1's address");
    let _node1 = trustee_node::server::spawn_on(Arc::new(node), listener).expect("serve");
    for i in [0, 2, 3, 4] {
        rc.start_node(i).await;
    }
    // Five trustees, three needed: the release must not need node 1 for the recovery to
    // succeed, so the test asks for its share by name below.
    assert_eq!(THRESHOLD, 3);
    let (wallet, _, mut auth) = rc.backup("release-stepped", DATA, 4).await;
    let staff = rc.staff_client(0);
    let trustees = rc.trustees();
    let recovered = recover_with_hourly_polls(&trustees, &wallet, &mut auth, |sid| async move {
        // Every session is open and authenticated: node 1's clock now steps back 3 s, so when
        // the app's clock says the delay is over, node 1's says 3 s are left.
        clock.0.store(3, Ordering::SeqCst);
        staff.approve(&sid).await.expect("approve");
    })
    .await;
    let recovered = recovered.expect("recovered");
    assert_eq!(recovered.data().expose(), DATA);
    assert!(
        recovered.unavailable.is_empty(),
        "every trustee released, node 1 after holding the call: {:?}",
        recovered.unavailable
    );
    let node1 = &rc.node(1).name;
    let sid = recovered
        .handle
        .session_at(node1)
        .expect("a session at node 1")
        .to_owned();
    assert_eq!(status_at(&rc, 1, &sid).await.0, "released");
}
