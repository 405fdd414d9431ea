//! A small W3C WebDriver client (JSON over HTTP/1.1) for driving Chromium headless through
//! `chromedriver`, with the WebAuthn virtual authenticator extension
//! (<https://w3c.github.io/webauthn/#sctn-automation>): a CTAP2 platform authenticator with
//! resident keys and user verification, whose credentials can be read out and planted into
//! another browser profile's authenticator (the "same passkey on a new device").

use crate::http::{HttpResponse, request};
use base64::Engine as _;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Chromium and chromedriver are, or why the browser test cannot run.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The Chromium binary.
    pub chromium: PathBuf,
    /// The chromedriver binary.
    pub chromedriver: PathBuf,
}

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl Browser {
    /// Finds Chromium (`DLOCKER_CHROMIUM` or Debian's paths) and chromedriver
    /// (`DLOCKER_CHROMEDRIVER` or Debian's path); `Err` says what is missing.
    pub fn find() -> Result<Self, String> {
        let chromium = find(
            "DLOCKER_CHROMIUM",
            &[
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ],
        )
        .ok_or("Chromium not found (apt-get install chromium, or set DLOCKER_CHROMIUM)")?;
        let chromedriver = find(
            "DLOCKER_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        )
        .ok_or(
            "chromedriver not found (apt-get install chromium-driver, or set DLOCKER_CHROMEDRIVER)",
        )?;
        Ok(Self {
            chromium,
            chromedriver,
        })
    }
}

/// A running chromedriver (killed on drop).
pub struct Driver {
    addr: SocketAddr,
    child: Child,
    chromium: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check(res: HttpResponse, what: &str) -> Value {
    let v: Value = serde_json::from_slice(&res.body).unwrap_or_else(|e| {
        panic!(
            "WebDriver {what}: not JSON ({e}): {} {}",
            res.status,
            res.text()
        )
    });
    assert!(
        res.status == 200,
        "WebDriver {what} failed ({}): {}",
        res.status,
        v
    );
    v.get("value").cloned().unwrap_or(Value::Null)
}

impl Driver {
    /// Starts chromedriver on `port`, logging to `log`.
    pub fn start(browser: &Browser, port: u16, log: &Path) -> Self {
        let log_file = std::fs::File::create(log).expect("chromedriver log");
        let child = Command::new(&browser.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::from(log_file.try_clone().expect("log fd")))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", browser.chromedriver.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            addr,
            child,
            chromium: browser.chromium.clone(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if method == "POST" {
            &[("Content-Type", "application/json; charset=utf-8")]
        } else {
            &[]
        };
        check(
            request(self.addr, method, path, headers, body.as_bytes()),
            &format!("{method} {path}"),
        )
    }

    /// A new headless browser session with its own (fresh) profile in `profile`.
    pub fn session(&self, profile: &Path) -> Session<'_> {
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": self.chromium.display().to_string(),
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--window-size=900,1300",
                            format!("--user-data-dir={}", profile.display()),
                        ]
                    }
                }
            }
        });
        let v = self.call("POST", "/session", Some(&caps));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_owned();
        Session { driver: self, id }
    }
}

/// One browser session.
pub struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = request(
            self.driver.addr,
            "DELETE",
            &format!("/session/{}", self.id),
            &[],
            &[],
        );
    }
}

impl Session<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
    }

    /// Navigates to `url`.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    fn element(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(&json!({ "using": "css selector", "value": css })),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    /// Clicks the element `css` (as a user would: it must be visible and enabled).
    pub fn click(&self, css: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/click"), Some(&json!({})));
    }

    /// Clears the input `css` and types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call("POST", &format!("/element/{e}/clear"), Some(&json!({})));
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(&json!({ "text": text })),
        );
    }

    /// The visible text of `css`.
    pub fn text(&self, css: &str) -> String {
        let e = self.element(css);
        self.call("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Polls `script` (returning a value or null) until it returns something other than null or
    /// false, or panics after `limit` with `what` and `on_timeout()`'s diagnostics.
    pub fn wait(
        &self,
        limit: Duration,
        what: &str,
        script: &str,
        on_timeout: impl FnOnce() -> String,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.js(script, json!([]));
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {limit:?} waiting for {what}\n{}",
                    on_timeout()
                );
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Adds a virtual CTAP2 platform authenticator (resident keys, user verification, the user
    /// always verified and consenting: the "touch"); returns its id.
    pub fn add_virtual_authenticator(&self) -> String {
        let v = self.call(
            "POST",
            "/webauthn/authenticator",
            Some(&json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        );
        v.as_str()
            .unwrap_or_else(|| panic!("no authenticator id: {v}"))
            .to_owned()
    }

    /// The credentials (with their private keys) in authenticator `auth`.
    pub fn credentials(&self, auth: &str) -> Vec<Value> {
        self.call(
            "GET",
            &format!("/webauthn/authenticator/{auth}/credentials"),
            None,
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// Plants `credential` (as [`Session::credentials`] returned it) into authenticator `auth`.
    pub fn add_credential(&self, auth: &str, credential: &Value) {
        self.call(
            "POST",
            &format!("/webauthn/authenticator/{auth}/credential"),
            Some(credential),
        );
    }
}
