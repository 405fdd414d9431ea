//! The audit log and the event outbox on real nodes. `dlocker audit verify` accepts an intact
//! log (checkpoint signed by the pinned key) and, after one entry is edited in the stopped node's
//! sled "audit" tree, fails naming that entry. `WatchEvents` resumed from a cursor after the node
//! crashed and restarted delivers every later event exactly once, in order, then live ones.

use dlocker_integration_tests::recovery_cluster::{
    RecoveryCluster, RecoverySpec, Touch, session_key, tamper_audit_entry,
};
use dlocker_integration_tests::touch::Nonces;
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::owner_challenge::OwnerAction;
use dlocker_proto::pb::{
    BeginOwnerCancelRequest, CancelRecoveryRequest, Event, WatchEventsRequest,
    cancel_recovery_request,
};
use std::time::Duration;
use tonic::Streaming;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_a_tampered_entry() {
    let mut rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (wallet, _p, mut auth) = rc.backup("audit", b"seed", 0).await;
    let i = 1; // trustee-2
    let r = session_key().public_key();
    let s = rc.open(i, &wallet, &r).await.expect("open");
    let good = rc.recovery_touch(i, &wallet, &r, &s, &mut auth);
    rc.authenticate(i, &s.session_id, &good.damaged())
        .await
        .expect_err("wrong assertion");
    rc.authenticate(i, &s.session_id, &good)
        .await
        .expect("passkey");

    let tf = rc.write_trustees();
    let tf = tf.to_str().expect("utf-8");
    let verify = |rc: &RecoveryCluster| {
        rc.dlocker(&[
            "--json",
            "audit",
            "verify",
            "--trustees",
            tf,
            "--name",
            "trustee-2",
        ])
    };
    let ok = verify(&rc);
    let ok_out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        ok.status.success(),
        "intact log fails verification: {ok_out}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&ok_out).expect("JSON");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["checkpoint_signed_by_pinned_key"], true, "{v}");

    let show = rc.dlocker(&[
        "--json",
        "audit",
        "show",
        "--trustees",
        tf,
        "--name",
        "trustee-2",
    ]);
    assert!(show.status.success());
    let shown = String::from_utf8_lossy(&show.stdout);
    for kind in ["recovery_opened", "assertion_failed", "owner_authenticated"] {
        assert!(shown.contains(kind), "audit show lists {kind}: {shown}");
    }
    assert!(
        !shown.contains(&wallet),
        "the audit log never names the wallet"
    );

    // Edit one entry in the stopped node's database; restart.
    rc.stop(i);
    let seq = tamper_audit_entry(rc.data_dir(i), "recovery_opened");
    rc.start_node(i).await;

    let bad = verify(&rc);
    let out = format!(
        "{}\n{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        !bad.status.success(),
        "a tampered log passed verification: {out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&bad.stdout).trim()).expect("JSON on stdout");
    assert_eq!(v["ok"], false, "{v}");
    let err = v["error"].as_str().unwrap_or_default();
    assert!(
        err.contains(&seq.to_string()),
        "the error names entry {seq}: {err}"
    );
    eprintln!("audit verify on the tampered log: {err}");
}

async fn next_event(stream: &mut Streaming<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an event within 30 s")
        .expect("stream ok")
        .expect("stream open")
}

/// A staff member of the bank (node 0) watching its events from `cursor`.
async fn watch(rc: &RecoveryCluster, cursor: u64) -> Streaming<Event> {
    rc.recovery(0)
        .await
        .watch_events(WatchEventsRequest {
            cursor,
            staff_request_encoded: rc.staff_watch_request(0),
        })
        .await
        .expect("WatchEvents")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_resumes_from_a_cursor_after_a_restart() {
    let mut rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (wallet, _p, mut auth) = rc.backup("events", b"seed", 0).await;
    let i = 0; // the bank: its staff may watch
    let r = session_key().public_key();
    let s = rc.open(i, &wallet, &r).await.expect("open");

    // A notifier reads up to the recovery_opened event and remembers its cursor.
    let mut stream = watch(&rc, 0).await;
    let mut seen = Vec::new();
    let cursor = loop {
        let e = next_event(&mut stream).await;
        seen.push(e.seq);
        if e.kind == "recovery_opened" {
            assert_eq!(e.wallet_id, wallet);
            assert_eq!(e.session_id, s.session_id);
            break e.seq;
        }
    };
    assert_eq!(
        seen,
        (1..=cursor).collect::<Vec<_>>(),
        "from the start, without gaps"
    );
    drop(stream);

    // While it is away: a failed and a good passkey, then the node crashes and restarts, then
    // the owner cancels.
    let good = rc.recovery_touch(i, &wallet, &r, &s, &mut auth);
    rc.authenticate(i, &s.session_id, &good.damaged())
        .await
        .expect_err("wrong assertion");
    rc.authenticate(i, &s.session_id, &good)
        .await
        .expect("passkey");
    rc.kill(i);
    rc.start_node(i).await;
    let mut c = rc.recovery(i).await;
    let begin = c
        .begin_owner_cancel(BeginOwnerCancelRequest {
            session_id: s.session_id.clone(),
        })
        .await
        .expect("begin cancel")
        .into_inner();
    let mut nonces = Nonces::default();
    nonces.push(&rc.node(i).node_id, &begin.nonce);
    let cancel = Touch::new(
        &mut auth,
        OwnerAction::Cancel,
        &wallet,
        &encode_public_key(&r),
        nonces,
        &begin.request_options_json,
    );
    c.cancel_recovery(CancelRecoveryRequest {
        session_id: s.session_id.clone(),
        authority: Some(cancel_recovery_request::Authority::OwnerAssertionJson(
            cancel.assertion_json.clone(),
        )),
        nonces: cancel.nonces.wire(),
    })
    .await
    .expect("owner cancel");

    // Resume from the cursor: everything after it, in order, once.
    let mut stream = watch(&rc, cursor).await;
    let mut got = Vec::new();
    loop {
        let e = next_event(&mut stream).await;
        got.push(e.clone());
        if e.kind == "recovery_cancelled" {
            break;
        }
    }
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (cursor + 1..=cursor + got.len() as u64).collect::<Vec<_>>(),
        "no gap, no repeat: {got:?}"
    );
    let kinds: Vec<&str> = got.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "assertion_failed",
            "owner_authenticated",
            "recovery_cancelled"
        ],
        "{got:?}"
    );
    assert!(
        got.iter()
            .all(|e| e.session_id == s.session_id && e.wallet_id == wallet)
    );

    // The same stream then follows live events.
    let s2 = rc
        .open(i, &wallet, &session_key().public_key())
        .await
        .expect("open again");
    let live = next_event(&mut stream).await;
    assert_eq!(live.seq, cursor + got.len() as u64 + 1);
    assert_eq!(live.kind, "recovery_opened");
    assert_eq!(live.session_id, s2.session_id);

    // The CLI resumes from the same cursor and prints the same events.
    let out = rc.dlocker(&[
        "--json",
        "events",
        "watch",
        "--node",
        rc.endpoint(i),
        "--cursor",
        &cursor.to_string(),
        "--count",
        "4",
        "--staff-key",
        rc.staff[0].key_file.to_str().expect("utf-8"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "events watch: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_seqs: Vec<u64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("one JSON event per line")["seq"]
                .as_u64()
                .expect("seq")
        })
        .collect();
    assert_eq!(
        cli_seqs,
        (cursor + 1..=cursor + 4).collect::<Vec<_>>(),
        "{text}"
    );
}
