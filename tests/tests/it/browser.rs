//! The wallet page in a real browser against real nodes: five `trustee-node` processes whose
//! `[webauthn] origins` is the page's origin (`http://localhost:PORT`, rp id `localhost`), the page
//! served by `dlocker web`, and Debian's Chromium headless driven through chromedriver with the
//! WebDriver virtual authenticator (CTAP2, internal transport, resident key, user verification).
//!
//! 1. Backup 3-of-5 from the page (one touch) and the possession check at all five trustees.
//! 2. A NEW browser session (fresh profile) whose authenticator holds the same credential (read
//!    out of the first authenticator and planted: the synced passkey on a new device) recovers:
//!    "waiting for your bank" until staff approve with `dlocker recoveries approve`, the waiting
//!    period's countdown, the shares verified, and the page shows the original secret.
//!    The wallet is linked to the bank's document locker from the page (one touch), the bank
//!    issues an ID card to it, the page lists it verified; after the recovery the page moves it
//!    to the new device (one touch, the recovery's own bank approval): re-issued bound to the
//!    new key, the old credential revoked.
//!    The page is reloaded during the waiting period and the recovery resumed from the state
//!    saved in the browser (its state key wrapped by a non-extractable WebCrypto key): no second
//!    approval, the same waiting period.
//! 3. A recovery cancelled with the page's Cancel button: every trustee's session is cancelled
//!    (asserted at each node) and staff can no longer approve it.
//! 4. Timings, printed (never asserted): backup and recovery in the browser against the native SDK
//!    on the same cluster.
//! 5. With one trustee stopped, the page names it as giving no answer (not as a refusal) and
//!    recovers from the others.
//!
//! A screenshot of each step goes to `target/browser-screenshots/`. Without Chromium,
//! chromedriver or the built WebAssembly bundle (`scripts/build-web.sh`) the test says it was
//! skipped and why, and passes, unless `DLOCKER_REQUIRE_BROWSER=1` (CI), which makes that a
//! failure.

use dlocker_integration_tests::bins::workspace_root;
use dlocker_integration_tests::cli_command;
use dlocker_integration_tests::cluster::free_ports;
use dlocker_integration_tests::http;
use dlocker_integration_tests::locker::{
    BANK_ISSUER, ID_CARD, hosted_issuer, id_card_claims, in_a_year,
};
use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec};
use dlocker_integration_tests::webdriver::{Browser, Driver, Session};
use dlocker_proto::pb::GetRecoveryStatusRequest;
use dlocker_sdk::StaffKey;
use dlocker_sdk::documents::{CredentialStatus, LockerClient, OperatorClient};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The secret the customer pastes on the first device.
const SECRET: &str =
    "wreck ostrich lamp violin cabin blossom hurdle enact quality ozone stove tiger";
/// The wallet's waiting period: long enough to see the countdown after the approval.
const DELAY_SECS: &str = "20";
const STEP: Duration = Duration::from_secs(120);

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require_browser() -> bool {
    std::env::var("DLOCKER_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Skips (passes) with a reason, or fails when the browser is required.
fn skip(why: &str) {
    assert!(
        !require_browser(),
        "the browser test is required (DLOCKER_REQUIRE_BROWSER=1) but {why}"
    );
    eprintln!("browser test SKIPPED: {why} (set DLOCKER_REQUIRE_BROWSER=1 to make this a failure)");
}

fn screenshots_dir() -> PathBuf {
    workspace_root().join("target").join("browser-screenshots")
}

fn shot(s: &Session<'_>, name: &str) {
    shot_at(s, name, "body");
}

/// A screenshot with the element `css` scrolled to the top of the viewport.
fn shot_at(s: &Session<'_>, name: &str, css: &str) {
    s.js(
        "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'start'});",
        json!([css]),
    );
    let p = screenshots_dir().join(format!("{name}.png"));
    s.screenshot(&p);
    eprintln!("screenshot: {}", p.display());
}

/// What the page says right now (for failure messages).
fn page_state(s: &Session<'_>) -> String {
    s.js(
        "const t = (id) => (document.getElementById(id) || {}).innerText || '';\
         return JSON.stringify({data: {...document.body.dataset}, load: t('load-status'),\
           backup: t('backup-progress'), verify: t('verify-summary'), recover: t('recover-status'),\
           bank: t('bank-detail'), shares: t('shares'),\
           docs: t('docs-status'), reissue: t('reissue-status')});",
        json!([]),
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

fn wait_js(s: &Session<'_>, what: &str, script: &str) -> Value {
    s.wait(STEP, what, script, || {
        shot(s, &format!("failed-{}", what.replace(' ', "-")));
        page_state(s)
    })
}

fn open_page(s: &Session<'_>, url: &str) {
    s.goto(url);
    wait_js(
        s,
        "the page to load",
        "return document.body.dataset.ready === 'true' || \
         (document.getElementById('load-status').className.includes('error') ? \
          document.getElementById('load-status').innerText : false);",
    );
    let state = page_state(s);
    assert!(state.contains("\"ready\":\"true\""), "page failed: {state}");
}

/// Backs up `secret` from the page (3 of 5, `delay` seconds); returns (wallet id, ms).
fn backup_in_page(s: &Session<'_>, secret: &str, delay: &str, shots: bool) -> (String, u64) {
    s.click("#tab-backup");
    s.click("#secret-paste");
    s.type_into("#secret-text", secret);
    s.click("#threshold option[value='3']");
    s.type_into("#delay", delay);
    s.type_into("#user-name", "alice");
    let wallet = s.text("#wallet-id");
    assert!(wallet.starts_with("wallet-"), "{wallet}");
    if shots {
        shot(s, "01-backup-form");
    }
    s.click("#backup-button");
    let outcome = wait_js(
        s,
        "the backup receipts",
        "if (!document.getElementById('backup-result').hidden) return 'stored';\
         const p = document.getElementById('backup-progress');\
         return p.classList.contains('error') ? p.innerText : false;",
    );
    assert_eq!(outcome, json!("stored"), "{}", page_state(s));
    let rows = s.js(
        "return document.querySelectorAll('#receipts tr').length;",
        json!([]),
    );
    assert_eq!(rows, json!(5), "{}", page_state(s));
    let ms = s
        .js("return Number(document.body.dataset.backupMs);", json!([]))
        .as_u64()
        .unwrap_or_default();
    (wallet, ms)
}

/// Starts a recovery of `wallet` in the page; returns the bank's reference once the page waits
/// for the bank.
fn start_recovery(s: &Session<'_>, wallet: &str) -> String {
    s.click("#tab-recover");
    s.type_into("#recover-wallet", wallet);
    s.click("#recover-button");
    wait_js(
        s,
        "waiting for the bank",
        "return document.body.dataset.recoverState === 'awaiting-approval' || \
         document.body.dataset.recoverState === 'failed' ? document.body.dataset.recoverState : false;",
    );
    assert_eq!(
        s.js("return document.body.dataset.recoverState;", json!([])),
        json!("awaiting-approval"),
        "{}",
        page_state(s)
    );
    s.text("#bank-reference")
}

fn approve(trustees: &str, key: &str, reference: &str) -> std::process::Output {
    cli_command()
        .args([
            "--json",
            "recoveries",
            "approve",
            reference,
            "--yes",
            "--trustees",
            trustees,
            "--key",
            key,
        ])
        .output()
        .expect("run dlocker recoveries approve")
}

fn wait_done(s: &Session<'_>) {
    wait_js(
        s,
        "the recovered secret",
        "const st = document.body.dataset.recoverState;\
         return st === 'done' || st === 'failed' || st === 'cancelled' ? st : false;",
    );
    assert_eq!(
        s.js("return document.body.dataset.recoverState;", json!([])),
        json!("done"),
        "{}",
        page_state(s)
    );
}

#[test]
fn wallet_page_in_chromium() {
    let browser = match Browser::find() {
        Ok(b) => b,
        Err(why) => return skip(&why),
    };
    let bundle = workspace_root().join("web/pkg/dlocker_web_bg.wasm");
    if !bundle.is_file() {
        return skip(&format!(
            "the wallet page's WebAssembly bundle {} is not built (run scripts/build-web.sh)",
            bundle.display()
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ports = free_ports(2);
    let (web_port, driver_port) = (ports[0], ports[1]);
    let origin = format!("http://localhost:{web_port}");
    let mut rc = rt.block_on(RecoveryCluster::start(RecoverySpec {
        // The operator role approves the bank's document issuer.
        staff: vec![("alice".into(), "approver,canceller,operator".into())],
        config: vec![(
            "webauthn".into(),
            "origins".into(),
            // The page's origin, and the native SDK's software passkey's (for the timings).
            toml::Value::Array(vec![
                toml::Value::String(origin.clone()),
                toml::Value::String("https://localhost".into()),
            ]),
        )],
        ..RecoverySpec::default()
    }));
    let tf = rc.write_trustees();
    let tf = tf.to_str().expect("utf-8 path").to_owned();
    let staff_key = rc.staff[0].key_file.to_str().expect("utf-8").to_owned();

    // `dlocker web` serves the page and the trustees file.
    let web = KillOnDrop(
        cli_command()
            .args([
                "web",
                "--trustees",
                &tf,
                "--listen",
                &format!("127.0.0.1:{web_port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dlocker web"),
    );
    let web_addr = SocketAddr::from(([127, 0, 0, 1], web_port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect_timeout(&web_addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "dlocker web did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let wasm = http::get(web_addr, "/pkg/dlocker_web_bg.wasm");
    if wasm.status != 200 {
        drop(web);
        return skip("this dlocker binary was built without the WebAssembly bundle");
    }
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    let url = format!("{origin}/");

    let root = tempfile::tempdir().expect("tempdir");
    let driver = Driver::start(&browser, driver_port, &root.path().join("chromedriver.log"));
    let _ = std::fs::remove_dir_all(screenshots_dir());

    // 1. First device: backup 3-of-5 with one touch, then the possession check.
    let a = driver.session(&root.path().join("profile-a"));
    let auth_a = a.add_virtual_authenticator();
    open_page(&a, &url);
    let (wallet, _) = backup_in_page(&a, SECRET, DELAY_SECS, true);
    shot_at(&a, "02-backup-receipts", "#backup");
    a.click("#verify-button");
    wait_js(
        &a,
        "the possession check",
        "const s = document.getElementById('verify-summary');\
         return s.classList.contains('ok') || s.classList.contains('error') ? s.innerText : false;",
    );
    shot_at(&a, "03-possession-check", "#verify-result");
    let healthy = a.js(
        "return document.querySelectorAll('#health tr[data-healthy=\"true\"]').length;",
        json!([]),
    );
    assert_eq!(healthy, json!(5), "{}", page_state(&a));
    // The wallet linked to the bank's document locker (one touch), an ID card issued to it by
    // the bank (a hosted issuer, natively), then listed and verified in the page.
    a.click("#link-docs-button");
    let linked = wait_js(
        &a,
        "the documents link",
        "if (document.body.dataset.docsLinked === 'true') return 'linked';\
         const s = document.getElementById('docs-status');\
         return s.classList.contains('error') ? s.innerText : false;",
    );
    assert_eq!(linked, json!("linked"), "{}", page_state(&a));
    let locker = LockerClient::new(rc.trustees().bank());
    let card = rt.block_on(async {
        let operator_key = StaffKey::from_hex(&rc.staff[0].key.to_hex()).expect("staff key");
        let operator = OperatorClient::new(operator_key, locker.clone());
        hosted_issuer(&locker, &operator, BANK_ISSUER, &[ID_CARD])
            .await
            .issue(&wallet, ID_CARD, &id_card_claims("Asha Rao"), in_a_year())
            .await
            .expect("the bank issues an ID card")
    });
    a.click("#refresh-docs-button");
    wait_js(
        &a,
        "the documents list",
        "if (document.body.dataset.documents) return document.body.dataset.documents;\
         const s = document.getElementById('docs-status');\
         return s.classList.contains('error') ? s.innerText : false;",
    );
    shot_at(&a, "04-documents", "#documents");
    let rows = a.js(
        "return Array.from(document.querySelectorAll('#docs tr'))\
           .map((tr) => [tr.dataset.uri, tr.dataset.verified, tr.dataset.boundTo, tr.innerText]);",
        json!([]),
    );
    let rows = rows.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], json!(card.document_uri), "{rows:?}");
    assert_eq!(rows[0][1], json!("true"), "verified in the page: {rows:?}");
    assert!(
        rows[0][3].as_str().unwrap_or_default().contains("Asha Rao"),
        "{rows:?}"
    );
    let old_key = rows[0][2].as_str().unwrap_or_default().to_owned();
    // Read after every touch so far: the new device's copy carries the current signature counter
    // (a node refuses a counter that went backwards, as from a cloned authenticator).
    let creds = a.credentials(&auth_a);
    assert_eq!(creds.len(), 1, "one passkey made by the backup: {creds:?}");

    // 2. A new device: a fresh profile whose authenticator holds the same (synced) passkey.
    let b = driver.session(&root.path().join("profile-b"));
    let auth_b = b.add_virtual_authenticator();
    b.add_credential(&auth_b, &creds[0]);
    open_page(&b, &format!("{url}#recover"));
    b.type_into("#recover-wallet", &wallet);
    shot(&b, "05-recover-form");
    let reference = start_recovery(&b, &wallet);
    shot_at(&b, "06-waiting-for-bank", "#recover");
    let out = approve(&tf, &staff_key, &reference);
    assert!(
        out.status.success(),
        "approve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_js(
        &b,
        "the waiting period",
        "const st = document.body.dataset.recoverState;\
         return st === 'waiting' || st === 'done' || st === 'failed' ? st : false;",
    );
    shot_at(&b, "07-waiting-period", "#recover");
    // The customer closes the page during the waiting period and opens it again: the page offers
    // to continue, and the recovery finishes with the same approval and waiting period (staff
    // are not asked again: a second approval would never come and the wait below would fail).
    // (A new query string: the same URL would only be a fragment navigation, not a reload.)
    b.goto(&format!("{origin}/?reopened"));
    wait_js(
        &b,
        "the page to offer the saved recovery",
        "return document.body.dataset.ready === 'true' && \
           !document.getElementById('resume-box').hidden ? 'offered' : false;",
    );
    shot_at(&b, "08-resume-offered", "#recover");
    b.click("#resume-button");
    wait_done(&b);
    assert_eq!(
        b.js("return document.body.dataset.resumed;", json!([])),
        json!("true"),
        "{}",
        page_state(&b)
    );
    shot_at(&b, "09-secret-recovered", "#recover");
    assert_eq!(b.text("#recovered-secret"), SECRET);
    let summary = b.text("#recover-summary");
    assert!(
        !summary.contains("not used"),
        "every trustee took part: {summary}"
    );

    // The documents move to the new device: one touch, the recovery's own bank approval (no
    // second one), the card re-issued bound to the new device's key, the old credential revoked.
    b.click("#reissue-button");
    wait_js(
        &b,
        "the documents re-issued",
        "if (document.body.dataset.reissued) return document.body.dataset.reissued;\
         const s = document.getElementById('reissue-status');\
         return s.classList.contains('error') ? s.innerText : false;",
    );
    shot_at(&b, "10-documents-moved", "#recover-docs");
    let new_key = b
        .js("return document.body.dataset.newWalletKey;", json!([]))
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let rows = b.js(
        "return Array.from(document.querySelectorAll('#reissued tr'))\
           .map((tr) => [tr.dataset.uri, tr.dataset.verified, tr.dataset.boundTo]);",
        json!([]),
    );
    assert_eq!(
        rows,
        json!([[card.document_uri, "true", new_key]]),
        "{}",
        page_state(&b)
    );
    assert_ne!(new_key, old_key, "bound to the new device's key");
    let old = rt
        .block_on(locker.verify(&card.credential_jws))
        .expect("verify the old credential");
    assert_eq!(old.status, CredentialStatus::Revoked);

    // 3. Cancel pressed in the page: no trustee releases.
    open_page(&a, &url);
    let (wallet2, _) = backup_in_page(&a, "cancel me", "0", false);
    // Each backup registers a new passkey: the new device gets it too.
    let sync = |have: &mut Vec<Value>| {
        for c in a.credentials(&auth_a) {
            if !have.iter().any(|h| h["credentialId"] == c["credentialId"]) {
                b.add_credential(&auth_b, &c);
                have.push(c);
            }
        }
    };
    let mut synced = creds.clone();
    sync(&mut synced);
    let reference2 = start_recovery(&b, &wallet2);
    b.click("#cancel-button");
    wait_js(
        &b,
        "the cancel",
        "return document.body.dataset.recoverState === 'cancelled' && document.body.dataset.cancelled \
         ? document.body.dataset.cancelled : false;",
    );
    shot_at(&b, "11-recovery-cancelled", "#recover");
    assert_eq!(
        b.js("return document.body.dataset.cancelled;", json!([])),
        json!("5"),
        "{}",
        page_state(&b)
    );
    let sessions = b.js(
        "return Array.from(document.querySelectorAll('#sessions li'))\
           .map((li) => [li.dataset.trustee, li.dataset.session]);",
        json!([]),
    );
    let sessions = sessions.as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 5, "{sessions:?}");
    for s in &sessions {
        let (name, sid) = (
            s[0].as_str().unwrap_or_default(),
            s[1].as_str().unwrap_or_default(),
        );
        let i = (0..rc.len())
            .find(|&i| rc.node(i).name == name)
            .unwrap_or_else(|| panic!("unknown trustee {name}"));
        let st = rt
            .block_on(async {
                rc.recovery(i)
                    .await
                    .get_recovery_status(GetRecoveryStatusRequest {
                        session_id: sid.to_owned(),
                    })
                    .await
            })
            .unwrap_or_else(|e| panic!("status at {name}: {e:?}"))
            .into_inner();
        assert_eq!(st.state, "cancelled", "{name}: {st:?}");
        assert!(!st.cancelled_by.is_empty(), "{name}: {st:?}");
    }
    let out = approve(&tf, &staff_key, &reference2);
    assert!(
        !out.status.success(),
        "a cancelled recovery cannot be approved: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // 4. Timings on this cluster: the browser (delay 0, approval given as soon as asked; the
    // bank's wait is left out) against the native SDK.
    open_page(&a, &url);
    let (wallet3, browser_backup_ms) = backup_in_page(&a, "timed", "0", false);
    sync(&mut synced);
    let reference3 = start_recovery(&b, &wallet3);
    let out = approve(&tf, &staff_key, &reference3);
    assert!(out.status.success(), "approve: {out:?}");
    wait_done(&b);
    let browser_recover_ms = b
        .js(
            "const d = document.body.dataset; return Number(d.recoverMs) - Number(d.bankWaitMs);",
            json!([]),
        )
        .as_f64()
        .unwrap_or_default();
    let (native_backup_ms, native_recover_ms) = rt.block_on(async {
        let t = Instant::now();
        let (w, _p, mut auth) = rc.backup("native", b"timed", 0).await;
        let backup = t.elapsed().as_millis();
        let t = Instant::now();
        rc.recover_with_approval(&w, &mut auth, &|_| {})
            .await
            .expect("native recovery");
        (backup, t.elapsed().as_millis())
    });
    eprintln!(
        "timings (5 nodes, 3-of-5, loopback): backup browser {browser_backup_ms} ms, native SDK \
         {native_backup_ms} ms; recovery (bank wait excluded) browser {browser_recover_ms:.0} ms, \
         native SDK {native_recover_ms} ms (includes an in-process staff approval)"
    );
    // 5. A trustee that is down is named as giving no answer (not as a refusal), and the
    // recovery goes on with the others.
    open_page(&a, &url);
    let (wallet4, _) = backup_in_page(&a, "one node down", "0", false);
    sync(&mut synced);
    let down = rc.node(4).name.clone();
    rc.stop(4);
    let reference4 = start_recovery(&b, &wallet4);
    let out = approve(&tf, &staff_key, &reference4);
    assert!(out.status.success(), "approve: {out:?}");
    wait_done(&b);
    let line = b.js(
        "const li = Array.from(document.querySelectorAll('#shares li'))\
           .find((l) => l.innerText.startsWith(arguments[0] + ':'));\
         return li ? li.innerText : null;",
        json!([down]),
    );
    let line = line.as_str().unwrap_or_default();
    assert!(
        line.contains("could not take part") && line.contains("no answer the browser could read"),
        "{down}: {line:?} / {}",
        page_state(&b)
    );
    shot_at(&b, "12-trustee-down", "#recover");
    drop(web);
}
