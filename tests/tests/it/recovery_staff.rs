//! Bank staff policy on real nodes: "four eyes" (two distinct staff approvals configured: one is
//! not enough, the same staff member twice is not two, a viewer cannot approve), through the
//! `dlocker recoveries approve` CLI; and staff requests replayed (also across a bank restart),
//! stale, addressed to another node or signed by an unknown key are rejected.

use dlocker_integration_tests::recovery_cluster::{
    CUSTOMER_REFERENCE, RecoveryCluster, RecoverySpec, session_key,
};
use dlocker_proto::pb::{ApproveRecoveryRequest, GetApprovalRequest, ListRecoveriesRequest};
use dlocker_proto::statement::{StaffAction, StaffRequest};
use dlocker_sdk::StaffKey;
use dlocker_sdk::staff::new_request;
use tonic::Code;

fn json_out(out: &std::process::Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_needs_two_distinct_staff() {
    let spec = RecoverySpec {
        staff: vec![
            ("alice".into(), "approver,canceller".into()),
            ("bob".into(), "approver".into()),
            ("carol".into(), "viewer".into()),
            ("dave".into(), "approver".into()),
        ],
        approvals_required: Some(2),
        ..RecoverySpec::default()
    };
    let rc = RecoveryCluster::start(spec).await;
    let trustees_file = rc.write_trustees();
    let tf = trustees_file.to_str().expect("utf-8 path");
    let (wallet, _p, mut auth) = rc.backup("foureyes", b"seed", 0).await;
    let r = session_key().public_key();
    let bank = rc.open_and_authenticate(0, &wallet, &r, &mut auth).await;
    let t2 = rc.open_and_authenticate(1, &wallet, &r, &mut auth).await;
    let key = |i: usize| rc.staff[i].key_file.to_str().expect("utf-8").to_owned();
    let approve = |i: usize| {
        rc.dlocker(&[
            "--json",
            "recoveries",
            "approve",
            &bank.session_id,
            "--yes",
            "--trustees",
            tf,
            "--key",
            &key(i),
        ])
    };
    let get_approval = || async {
        rc.raw_staff(0)
            .await
            .get_approval(GetApprovalRequest {
                wait_secs: 0,
                wallet_id: wallet.clone(),
                session_key: dlocker_proto::keys::encode_public_key(&r).to_vec(),
            })
            .await
    };

    // The pending recovery is listed for staff.
    let listed = json_out(
        &rc.dlocker(&[
            "--json",
            "recoveries",
            "list",
            "--trustees",
            tf,
            "--key",
            &key(2),
        ]),
        "recoveries list (viewer)",
    );
    assert!(
        listed.to_string().contains(&bank.session_id),
        "listed: {listed}"
    );
    // Staff see who the customer is (recorded sealed by the bank at enrollment), that the owner
    // authenticated, and the approvals as "n of m".
    let row = listed
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["session_id"] == bank.session_id.as_str())
        })
        .expect("the session is listed");
    assert_eq!(row["customer_user_name"], "alice", "{row}");
    assert_eq!(row["customer_reference"], CUSTOMER_REFERENCE, "{row}");
    assert_eq!(row["owner_authenticated"], true, "{row}");
    assert_eq!(row["approvals_required"], 2, "{row}");
    let show = |extra: &[&str]| {
        let mut args = vec![
            "recoveries",
            "show",
            &bank.session_id,
            "--trustees",
            tf,
            "--key",
        ];
        let k = key(2);
        args.push(&k);
        args.extend_from_slice(extra);
        rc.dlocker(&args)
    };
    let shown = show(&[]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "show: {text}");
    assert!(text.contains("alice (customer CUST-0042)"), "{text}");
    assert!(text.contains("Owner authenticated  yes"), "{text}");
    assert!(text.contains("0 of 2 approvals"), "{text}");

    // Without --yes and with stdin not a terminal, approve shows the recovery and refuses; the
    // bank records nothing.
    let unconfirmed = rc.dlocker(&[
        "recoveries",
        "approve",
        &bank.session_id,
        "--trustees",
        tf,
        "--key",
        &key(0),
    ]);
    let err = String::from_utf8_lossy(&unconfirmed.stderr);
    assert!(
        !unconfirmed.status.success(),
        "approved without --yes: {err}"
    );
    assert!(err.contains("stdin is not a terminal"), "{err}");
    assert!(err.contains("alice (customer CUST-0042)"), "{err}");
    let after = String::from_utf8_lossy(&show(&[]).stdout).into_owned();
    assert!(after.contains("0 of 2 approvals"), "{after}");

    // A viewer cannot approve.
    let out = approve(2);
    assert!(
        !out.status.success(),
        "a viewer approved: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // One staff approval: recorded, no approval signed.
    let a1 = json_out(&approve(0), "alice approves");
    assert_eq!(a1["approved"], false, "{a1}");
    assert_eq!(a1["approvals_required"], 2, "{a1}");
    let pending = get_approval()
        .await
        .expect_err("no approval after one of two");
    assert_eq!(pending.code(), Code::FailedPrecondition, "{pending:?}");
    assert!(pending.message().contains("1 of 2"), "{pending:?}");

    // The same staff member again (a fresh, validly signed request) is still one.
    let a1b = json_out(&approve(0), "alice approves again");
    assert_eq!(
        a1b["approved"], false,
        "the same staff twice is not two: {a1b}"
    );
    assert_eq!(a1b["approvers"].as_array().map(Vec::len), Some(1), "{a1b}");
    let still = get_approval().await.expect_err("still no approval");
    assert!(still.message().contains("1 of 2"), "{still:?}");

    // A second, distinct staff member: the policy holds and the bank signs.
    let a2 = json_out(&approve(1), "bob approves");
    assert_eq!(a2["approved"], true, "{a2}");
    assert_eq!(a2["approvers"].as_array().map(Vec::len), Some(2), "{a2}");
    // The policy holds: a third approver is not recorded (no "3 of 2").
    let a3 = json_out(&approve(3), "dave approves after the policy holds");
    assert_eq!(a3["approvers"].as_array().map(Vec::len), Some(2), "{a3}");
    let shown = String::from_utf8_lossy(&show(&[]).stdout).into_owned();
    assert!(
        shown.contains("2 of 2 approvals (by alice, bob)"),
        "{shown}"
    );
    let approval = get_approval()
        .await
        .expect("approval after two")
        .into_inner()
        .bank_approval_encoded;
    let signed =
        dlocker_proto::statement::Signed::<dlocker_proto::statement::BankApproval>::decode(
            &approval,
        )
        .expect("decodes");
    let mut approvers = signed.body().approvers.clone();
    approvers.sort();
    assert_eq!(approvers, vec!["alice".to_owned(), "bob".to_owned()]);
    // It works at a trustee (delay 0, passkey done).
    rc.release(1, &t2.session_id, &approval)
        .await
        .expect("release with the four-eyes approval");

    // `dlocker staff keygen` writes a key whose public key it prints.
    let kf = rc.root_dir().join("new-staff.key");
    let out = json_out(
        &rc.dlocker(&[
            "--json",
            "staff",
            "keygen",
            "--out",
            kf.to_str().expect("utf-8"),
        ]),
        "staff keygen",
    );
    let k = StaffKey::load(&kf).expect("load the generated key");
    assert_eq!(out["public_key"], k.public_key_hex());
}

async fn approve(
    rc: &RecoveryCluster,
    bytes: Vec<u8>,
) -> Result<tonic::Response<dlocker_proto::pb::ApproveRecoveryResponse>, tonic::Status> {
    rc.raw_staff(0)
        .await
        .approve_recovery(ApproveRecoveryRequest {
            staff_request_encoded: bytes,
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_stale_misaddressed_and_unknown_staff_requests_are_rejected() {
    let mut rc = RecoveryCluster::start(RecoverySpec::default()).await;
    let (wallet, _p, mut auth) = rc.backup("replay", b"seed", 0).await;
    let r = session_key().public_key();
    let bank = rc.open_and_authenticate(0, &wallet, &r, &mut auth).await;
    let key = StaffKey::from_hex(&rc.staff[0].key.to_hex()).expect("key");
    let bank_id = rc.bank_node_id();

    // A signed approve request, used once: fine.
    let req = key.sign_request(new_request(
        &bank_id,
        StaffAction::ApproveRecovery,
        &bank.session_id,
    ));
    approve(&rc, req.clone())
        .await
        .expect("the first use is accepted");
    // The very same bytes again: a replay.
    let err = approve(&rc, req.clone())
        .await
        .expect_err("replay accepted");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("replay"), "{err:?}");
    // Listing requests are single-use too.
    let list = key.sign_request(new_request(&bank_id, StaffAction::ListRecoveries, ""));
    rc.raw_staff(0)
        .await
        .list_recoveries(ListRecoveriesRequest {
            staff_request_encoded: list.clone(),
        })
        .await
        .expect("list");
    let err = rc
        .raw_staff(0)
        .await
        .list_recoveries(ListRecoveriesRequest {
            staff_request_encoded: list,
        })
        .await
        .expect_err("replayed list accepted");
    assert!(err.message().contains("replay"), "{err:?}");

    // Still a replay after the bank restarts (the spent nonce is durable).
    rc.restart(0).await;
    let err = approve(&rc, req)
        .await
        .expect_err("replay accepted after a restart");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("replay"), "{err:?}");

    // Stale: signed an hour ago.
    let mut stale: StaffRequest =
        new_request(&bank_id, StaffAction::ApproveRecovery, &bank.session_id);
    stale.timestamp -= 3600;
    let err = approve(&rc, key.sign_request(stale))
        .await
        .expect_err("stale request accepted");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // Addressed to another node.
    let other = new_request(
        &rc.node(1).node_id,
        StaffAction::ApproveRecovery,
        &bank.session_id,
    );
    let err = approve(&rc, key.sign_request(other))
        .await
        .expect_err("misaddressed request accepted");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // Signed by a key the bank does not list.
    let stranger = StaffKey::generate();
    let err = approve(
        &rc,
        stranger.sign_request(new_request(
            &bank_id,
            StaffAction::ApproveRecovery,
            &bank.session_id,
        )),
    )
    .await
    .expect_err("unknown staff accepted");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("unknown"), "{err:?}");
    // A non-bank node has no Staff service.
    let err = rc
        .raw_staff(1)
        .await
        .approve_recovery(ApproveRecoveryRequest {
            staff_request_encoded: key.sign_request(new_request(
                &rc.node(1).node_id,
                StaffAction::ApproveRecovery,
                "x",
            )),
        })
        .await
        .expect_err("a trustee answered a staff request");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
}
