//! Staff administration on real nodes through `dlocker staff …`: an admin adds, re-roles and
//! removes staff and sets the policy, live and persisted across a restart; a non-admin signer,
//! removing the last admin and a policy the approvers cannot meet are refused, and each refusal
//! leaves the roster as it was (read back). Once the roster is managed, `trustee-node config
//! add-staff` refuses (its edit would have no effect) and names `dlocker staff add`.

use dlocker_integration_tests::node_command;
use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec};
use dlocker_sdk::StaffKey;
use std::process::Output;

fn ok_json(out: &Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn refused(out: &Output, what: &str, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} was accepted");
    assert!(err.contains(needle), "{what}: {err}");
}

fn ids(roster: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = roster["staff"]
        .as_array()
        .expect("staff")
        .iter()
        .map(|m| format!("{}={}", m["id"].as_str().unwrap_or(""), m["roles"]))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_staff_live_and_refusals_change_nothing() {
    let spec = RecoverySpec {
        staff: vec![
            ("alice".into(), "approver,canceller".into()),
            ("root".into(), "admin".into()),
            ("vic".into(), "viewer".into()),
        ],
        approvals_required: Some(1),
        ..RecoverySpec::default()
    };
    let mut rc = RecoveryCluster::start(spec).await;
    let tf = rc.write_trustees();
    let tf = tf.to_str().expect("utf-8").to_owned();
    let keys: Vec<String> = rc
        .staff
        .iter()
        .map(|s| s.key_file.to_str().expect("utf-8").to_owned())
        .collect();
    let key = |i: usize| keys[i].clone();
    let staff = |rc: &RecoveryCluster, who: usize, args: &[&str]| {
        let mut a = vec!["--json", "staff"];
        a.extend_from_slice(args);
        let k = key(who);
        a.extend_from_slice(&["--trustees", &tf, "--key", &k]);
        rc.dlocker(&a)
    };
    let list = |rc: &RecoveryCluster| ok_json(&staff(rc, 1, &["list"]), "staff list");
    let before = list(&rc);
    assert_eq!(before["approvals_required"], 1);
    assert_eq!(before["managed"], false, "{before}");
    let seeded = ids(&before);

    // A non-admin (an approver) can neither change nor list staff.
    let bob = StaffKey::generate();
    let bob_hex = bob.public_key_hex();
    refused(
        &staff(
            &rc,
            0,
            &[
                "add",
                "--id",
                "bob",
                "--public-key",
                &bob_hex,
                "--roles",
                "approver",
            ],
        ),
        "an approver adding staff",
        "may not manage_staff",
    );
    refused(
        &staff(&rc, 2, &["list"]),
        "a viewer listing staff",
        "may not list_staff",
    );
    assert_eq!(ids(&list(&rc)), seeded, "a refused change changed nothing");

    // Removing the last admin, or demoting them: refused, nothing changed.
    refused(
        &staff(&rc, 1, &["remove", "root"]),
        "removing the last admin",
        "no staff member with the admin role",
    );
    refused(
        &staff(&rc, 1, &["role", "root", "--roles", "viewer"]),
        "demoting the last admin",
        "no staff member with the admin role",
    );
    // A policy needing more approvers than there are: refused.
    refused(
        &staff(&rc, 1, &["policy", "--approvals-required", "2"]),
        "an unmeetable policy",
        "can never be met by 1 staff member(s)",
    );
    let after = list(&rc);
    assert_eq!(ids(&after), seeded);
    assert_eq!(after["approvals_required"], 1);
    assert_eq!(after["managed"], false, "refusals store nothing");

    // The admin adds bob (approver), then "four eyes" holds; bob acts at once.
    let added = ok_json(
        &staff(
            &rc,
            1,
            &[
                "add",
                "--id",
                "bob",
                "--public-key",
                &bob_hex,
                "--roles",
                "approver",
            ],
        ),
        "add bob",
    );
    assert!(ids(&added).iter().any(|m| m.starts_with("bob=")), "{added}");
    let policy = ok_json(
        &staff(&rc, 1, &["policy", "--approvals-required", "2"]),
        "four eyes",
    );
    assert_eq!(policy["approvals_required"], 2);
    assert_eq!(policy["managed"], true);
    let bob_file = rc.root_dir().join("bob.key");
    bob.save(&bob_file).expect("save bob");
    let bob_lists = rc.dlocker(&[
        "recoveries",
        "list",
        "--trustees",
        &tf,
        "--key",
        bob_file.to_str().expect("utf-8"),
    ]);
    assert!(bob_lists.status.success(), "{bob_lists:?}");
    // Under four eyes with two approvers, removing one is refused.
    refused(
        &staff(&rc, 1, &["remove", "bob"]),
        "removing an approver the policy needs",
        "can never be met by 1 staff member(s)",
    );

    // Persisted: after a restart the roster is the managed one, not the config's seed.
    rc.restart(0).await;
    let back = list(&rc);
    assert_eq!(back["approvals_required"], 2, "{back}");
    assert!(ids(&back).iter().any(|m| m.starts_with("bob=")), "{back}");

    // vic is removed: from then on vic's key signs nothing.
    ok_json(&staff(&rc, 1, &["remove", "vic"]), "remove vic");
    let vic_lists = rc.dlocker(&["recoveries", "list", "--trustees", &tf, "--key", &key(2)]);
    refused(&vic_lists, "a removed member listing", "unknown key");

    // The file's staff no longer apply: `trustee-node config add-staff` refuses in one line,
    // pointing at `dlocker staff add`, and leaves config.toml as it was.
    rc.stop(0);
    let bank_dir = rc.data_dir(0).to_owned();
    let config_before = std::fs::read(bank_dir.join("config.toml")).expect("config");
    let carol = StaffKey::generate().public_key_hex();
    let out = node_command()
        .args(["config", "add-staff", "--data-dir"])
        .arg(&bank_dir)
        .args([
            "--id",
            "carol",
            "--public-key",
            &carol,
            "--roles",
            "approver",
        ])
        .output()
        .expect("run trustee-node");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "config add-staff was accepted: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("managed with `dlocker staff`")
            && err.contains("dlocker staff add --id carol")
            && err.contains("--roles approver"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(bank_dir.join("config.toml")).expect("config"),
        config_before,
        "the refused edit changed nothing"
    );
}
