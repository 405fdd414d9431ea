//! `dlocker web`: serves the customer's wallet page (`web/`) and the bank's trustees file on
//! loopback. The page runs the dLocker SDK compiled to WebAssembly and talks gRPC-Web to every
//! trustee directly; this server only hands out static files and never sees a secret.
//!
//! The page's HTML, CSS and JavaScript are embedded at build time. The WebAssembly bundle
//! (`web/pkg/`, written by `scripts/build-web.sh`) is embedded when it exists at build time
//! (`build.rs` sets `dlocker_web_bundle`); a binary built without it serves a page saying how to
//! build it, and `dlocker web` says so on stderr.

use crate::output::{hinted, print_json};
use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use dlocker_sdk::TrusteeSet;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The default listen address (loopback: the page must be a secure context for passkeys, which
/// plain HTTP is only on localhost).
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8700";

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const PASSKEY_JS: &str = include_str!("../../web/passkey.js");
const KEYSTORE_JS: &str = include_str!("../../web/keystore.js");
const STYLE_CSS: &str = include_str!("../../web/style.css");

#[cfg(dlocker_web_bundle)]
mod bundle {
    pub(super) const PRESENT: bool = true;
    pub(super) const JS: &[u8] = include_bytes!("../../web/pkg/dlocker_web.js");
    pub(super) const WASM: &[u8] = include_bytes!("../../web/pkg/dlocker_web_bg.wasm");
}
#[cfg(not(dlocker_web_bundle))]
mod bundle {
    pub(super) const PRESENT: bool = false;
    pub(super) const JS: &[u8] = b"";
    pub(super) const WASM: &[u8] = b"";
}

/// Whether this binary carries the WebAssembly bundle.
pub(crate) fn bundle_present() -> bool {
    bundle::PRESENT
}

const MISSING_BUNDLE_HTML: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Wallet page not built</title></head><body>\
<h1>The wallet page is not built into this binary</h1>\
<p>The page runs the dLocker SDK compiled to WebAssembly, which was missing when <code>dlocker</code> was built.</p>\
<p>Build it and rebuild <code>dlocker</code>:</p>\
<pre>scripts/build-web.sh\ncargo build -p recovery-cli</pre></body></html>";

/// `dlocker web`.
#[derive(Debug, Args)]
pub(crate) struct WebArgs {
    /// The bank's trustees file (the page backs up to and recovers from these nodes).
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
    /// Loopback address to serve the page on. The nodes must allow the page's origin
    /// (`http://localhost:PORT`) in `[webauthn] origins`.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    listen: SocketAddr,
}

#[derive(Debug, Serialize)]
struct Started {
    url: String,
    origin: String,
    trustees: usize,
    bundle: bool,
}

/// What the handlers share.
#[derive(Debug)]
struct Site {
    trustees_toml: String,
    csp: HeaderValue,
}

/// The page's origin for a loopback address: `localhost`, the WebAuthn relying party id the
/// nodes' default config uses (an IP literal cannot be a relying party id).
pub(crate) fn page_origin(addr: SocketAddr) -> String {
    format!("http://localhost:{}", addr.port())
}

/// The Content-Security-Policy: scripts only from this server (plus WebAssembly compilation),
/// network only to this server and the trustees.
fn csp(set: &TrusteeSet) -> anyhow::Result<HeaderValue> {
    let mut connect = vec!["'self'".to_owned()];
    for t in set.trustees() {
        let origin = url_origin(&t.endpoint);
        if !connect.contains(&origin) {
            connect.push(origin);
        }
    }
    let policy = format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self'; connect-src {}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        connect.join(" ")
    );
    HeaderValue::from_str(&policy).context("a trustee endpoint cannot go into a header")
}

/// `scheme://host:port` of an endpoint (endpoints are already validated URLs without a path).
fn url_origin(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    match e.find("://") {
        Some(i) => match e[i + 3..].find('/') {
            Some(j) => e[..i + 3 + j].to_owned(),
            None => e.to_owned(),
        },
        None => e.to_owned(),
    }
}

fn file(content_type: &'static str, body: &'static [u8], site: &Site) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CONTENT_SECURITY_POLICY, site.csp.clone()),
        ],
        body,
    )
        .into_response()
}

/// The router serving the page for `set`.
fn router(set: &TrusteeSet) -> anyhow::Result<Router> {
    let site = Arc::new(Site {
        trustees_toml: set.to_toml(),
        csp: csp(set)?,
    });
    let s = site.clone();
    let index = move || {
        let s = s.clone();
        async move {
            if bundle::PRESENT {
                file("text/html; charset=utf-8", INDEX_HTML.as_bytes(), &s)
            } else {
                file(
                    "text/html; charset=utf-8",
                    MISSING_BUNDLE_HTML.as_bytes(),
                    &s,
                )
            }
        }
    };
    let asset = |ct: &'static str, body: &'static [u8], site: &Arc<Site>| {
        let site = site.clone();
        move || {
            let site = site.clone();
            async move {
                if body.is_empty() {
                    (
                        StatusCode::NOT_FOUND,
                        "not built: run scripts/build-web.sh\n",
                    )
                        .into_response()
                } else {
                    file(ct, body, &site)
                }
            }
        }
    };
    let s = site.clone();
    let trustees = move || {
        let s = s.clone();
        async move {
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                s.trustees_toml.clone(),
            )
                .into_response()
        }
    };
    Ok(Router::new()
        .route("/", get(index.clone()))
        .route("/index.html", get(index))
        .route(
            "/app.js",
            get(asset("text/javascript", APP_JS.as_bytes(), &site)),
        )
        .route(
            "/passkey.js",
            get(asset("text/javascript", PASSKEY_JS.as_bytes(), &site)),
        )
        .route(
            "/keystore.js",
            get(asset("text/javascript", KEYSTORE_JS.as_bytes(), &site)),
        )
        .route(
            "/style.css",
            get(asset("text/css", STYLE_CSS.as_bytes(), &site)),
        )
        .route(
            "/pkg/dlocker_web.js",
            get(asset("text/javascript", bundle::JS, &site)),
        )
        .route(
            "/pkg/dlocker_web_bg.wasm",
            get(asset("application/wasm", bundle::WASM, &site)),
        )
        .route("/trustees.toml", get(trustees))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") }))
}

/// A page server bound and ready; [`PageServer::serve`] runs it until `shutdown`.
pub(crate) struct PageServer {
    listener: tokio::net::TcpListener,
    app: Router,
    /// `http://localhost:PORT/`.
    pub(crate) url: String,
    /// `http://localhost:PORT` (what the nodes must allow).
    pub(crate) origin: String,
}

impl PageServer {
    /// Binds `listen` (loopback only) and prepares the page for `set`.
    pub(crate) async fn bind(set: &TrusteeSet, listen: SocketAddr) -> anyhow::Result<Self> {
        let (listener, origin) = bind_loopback(listen).await?;
        Self::on(listener, origin, set)
    }

    /// Serves the page for `set` on an already bound listener (see [`bind_loopback`]).
    pub(crate) fn on(
        listener: tokio::net::TcpListener,
        origin: String,
        set: &TrusteeSet,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            listener,
            app: router(set)?,
            url: format!("{origin}/"),
            origin,
        })
    }

    /// Serves until `shutdown` resolves.
    pub(crate) async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving the wallet page")
    }
}

/// Binds `listen` (loopback only); returns the listener and the page's origin.
pub(crate) async fn bind_loopback(
    listen: SocketAddr,
) -> anyhow::Result<(tokio::net::TcpListener, String)> {
    if !listen.ip().is_loopback() {
        return Err(hinted(
            format!("{listen} is not a loopback address"),
            "dlocker web serves plain HTTP, where browsers allow passkeys only on localhost; \
             use --listen 127.0.0.1:PORT (in production, serve web/ over HTTPS)",
        ));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    Ok((listener, page_origin(local)))
}

/// Resolves on Ctrl-C (or SIGTERM on Unix).
pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

pub(crate) fn warn_if_no_bundle() {
    if !bundle_present() {
        eprintln!(
            "warning: this dlocker was built without the wallet page's WebAssembly bundle; run \
             scripts/build-web.sh, then rebuild dlocker (cargo build -p recovery-cli)"
        );
    }
}

pub(crate) async fn run(args: WebArgs, json: bool) -> anyhow::Result<()> {
    let set = TrusteeSet::load(&args.trustees)
        .with_context(|| format!("loading {}", args.trustees.display()))?;
    let server = PageServer::bind(&set, args.listen).await?;
    warn_if_no_bundle();
    if json {
        print_json(&Started {
            url: server.url.clone(),
            origin: server.origin.clone(),
            trustees: set.len(),
            bundle: bundle_present(),
        })?;
    } else {
        println!("Wallet page: {}", server.url);
        println!(
            "  {} trustees from {}; each node must allow the origin {} ([webauthn] origins, \
             which gRPC-Web follows unless [grpc_web] allowed_origins is set).",
            set.len(),
            args.trustees.display(),
            server.origin
        );
        println!("  Ctrl-C stops the server.");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    server.serve(interrupted()).await
}

/// `dlocker demo --web`: the demo cluster (its bank staff key on disk) plus the wallet page,
/// until Ctrl-C.
pub(crate) async fn demo(args: &crate::demo::DemoArgs, json: bool) -> anyhow::Result<()> {
    use crate::demo::{STAFF_ID, prepare_dir, start_cluster, stop_cluster};
    let (dir, tmp) = prepare_dir(args)?;
    let n = usize::from(args.nodes);
    // The page's port first: the nodes are initialised with its origin.
    let (listener, origin) = bind_loopback(args.web_listen).await?;
    let staff_key = dlocker_sdk::StaffKey::generate();
    let staff_key_file = dir.join(format!("staff-{STAFF_ID}.key"));
    staff_key
        .save(&staff_key_file)
        .with_context(|| format!("writing {}", staff_key_file.display()))?;
    let mut running = Vec::new();
    let started = start_cluster(
        &dir,
        n,
        &staff_key.public_key_hex(),
        Some(&origin),
        &mut running,
    )
    .await;
    let result = async {
        let set = started?;
        let trustees_file = dir.join("trustees.toml");
        std::fs::write(&trustees_file, set.to_toml())
            .with_context(|| format!("writing {}", trustees_file.display()))?;
        let server = PageServer::on(listener, origin, &set)?;
        warn_if_no_bundle();
        if json {
            print_json(&Started {
                url: server.url.clone(),
                origin: server.origin.clone(),
                trustees: set.len(),
                bundle: bundle_present(),
            })?;
        } else {
            println!("dLocker demo: {n} trustee nodes on 127.0.0.1 (the first is the bank)");
            println!("  trustees file: {}", trustees_file.display());
            println!("Wallet page: {}", server.url);
            println!(
                "  When the page waits for the bank, approve as bank staff with:\n    dlocker recoveries approve <reference> --trustees {} --key {}",
                trustees_file.display(),
                staff_key_file.display()
            );
            println!("  Ctrl-C stops the page and the nodes.");
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        server.serve(interrupted()).await
    }
    .await;
    let stopped = stop_cluster(running).await;
    if let Some(t) = tmp.filter(|_| args.keep) {
        eprintln!("kept {}", t.keep().display());
    }
    result?;
    stopped.map_err(|e| anyhow::anyhow!("cluster did not shut down cleanly: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_endpoints() {
        assert_eq!(url_origin("http://127.0.0.1:7001"), "http://127.0.0.1:7001");
        assert_eq!(url_origin("https://a.example/"), "https://a.example");
        assert_eq!(
            url_origin("https://a.example:8443/x"),
            "https://a.example:8443"
        );
    }

    #[test]
    fn page_origin_is_localhost() {
        let a: SocketAddr = "127.0.0.1:8123".parse().expect("addr");
        assert_eq!(page_origin(a), "http://localhost:8123");
    }
}
