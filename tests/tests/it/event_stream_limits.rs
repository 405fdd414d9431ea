//! `WatchEvents` streams are capped per reader and node-wide, on real nodes with small caps
//! (`[limits] event_streams_per_reader = 2`, `max_event_streams = 3`): a staff member opens
//! streams up to the per-reader cap and the next is refused `RESOURCE_EXHAUSTED` naming that
//! cap; another staff member still opens one, which fills the node, and the next (anyone's) is
//! refused naming the node-wide cap. The refusals change nothing: every stream that was admitted
//! still delivers the next event. Closing a stream frees its slot.

use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec};
use dlocker_proto::pb::{Event, WatchEventsRequest};
use dlocker_proto::statement::{StaffAction, StaffRequest};
use std::time::Duration;
use tonic::{Code, Status, Streaming};

const PER_READER: i64 = 2;
const NODE_WIDE: i64 = 3;
const BANK: usize = 0;

/// A `WatchEvents` call to the bank by staff member `who`, from the newest event on.
async fn watch(rc: &RecoveryCluster, who: usize, cursor: u64) -> Result<Streaming<Event>, Status> {
    use rand::RngExt as _;
    let request = rc.staff[who].key.sign_request(StaffRequest {
        node_id: rc.node(BANK).node_id.clone(),
        action: StaffAction::WatchEvents,
        target: String::new(),
        timestamp: dlocker_proto::time::unix_now(),
        nonce: rand::rng().random(),
    });
    rc.recovery(BANK)
        .await
        .watch_events(WatchEventsRequest {
            cursor,
            staff_request_encoded: request,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Reads `stream` until an event naming `wallet` (events stored earlier come first).
async fn event_for(stream: &mut Streaming<Event>, wallet: &str) -> Event {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("an event within 30 s")
            .expect("stream ok")
            .expect("stream open");
        if ev.wallet_id == wallet {
            return ev;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_reader_and_node_wide_and_a_closed_stream_frees_its_slot() {
    let spec = RecoverySpec {
        nodes: 3,
        staff: vec![
            ("alice".into(), "approver,canceller".into()),
            ("bob".into(), "approver".into()),
        ],
        config: vec![
            (
                "limits".into(),
                "event_streams_per_reader".into(),
                toml::Value::Integer(PER_READER),
            ),
            (
                "limits".into(),
                "max_event_streams".into(),
                toml::Value::Integer(NODE_WIDE),
            ),
        ],
        ..RecoverySpec::default()
    };
    let rc = RecoveryCluster::start(spec).await;
    let cursor = 0;

    // Alice: up to her cap, then refused.
    let mut alice = Vec::new();
    for _ in 0..PER_READER {
        alice.push(watch(&rc, 0, cursor).await.expect("within alice's cap"));
    }
    let e = watch(&rc, 0, cursor)
        .await
        .expect_err("alice is at her cap");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("this reader already has 2 event streams open")
            && e.message().contains("limits.event_streams_per_reader = 2"),
        "{}",
        e.message()
    );

    // Bob is another reader: his first stream is admitted, and fills the node.
    let mut bob = watch(&rc, 1, cursor)
        .await
        .expect("another reader is not limited by alice's streams");
    let e = watch(&rc, 1, cursor)
        .await
        .expect_err("the node is at its cap");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message()
            .contains("this node already serves 3 event streams")
            && e.message().contains("limits.max_event_streams = 3"),
        "{}",
        e.message()
    );

    // The refusals changed nothing: a backup's enrollment at the bank reaches every admitted
    // stream.
    let (wallet, _prepared, _auth) = rc.backup("streams", b"seed", 0).await;
    for s in alice.iter_mut().chain(std::iter::once(&mut bob)) {
        event_for(s, &wallet).await;
    }

    // Alice closes one stream: its slot is freed (the node notices the cancelled call), and
    // her next stream is admitted. That fills the node again: 3 open.
    drop(alice.pop());
    let mut reopened = None;
    for _ in 0..100 {
        match watch(&rc, 0, cursor).await {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let mut reopened = reopened.expect("a closed stream frees its slot within 10 s");
    let e = watch(&rc, 1, cursor)
        .await
        .expect_err("the node is full again");
    assert!(
        e.message().contains("limits.max_event_streams = 3"),
        "{}",
        e.message()
    );
    // The new stream is a working one.
    let (wallet2, _p, _a) = rc.backup("streams-2", b"seed", 0).await;
    event_for(&mut reopened, &wallet2).await;
}
