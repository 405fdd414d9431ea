//! Standard document endpoints over plain HTTP GET, on the gRPC port, at the URLs credentials
//! name, so a verifier that has never heard of dLocker can check a credential:
//!
//! * `GET /status-lists/<issuer>/<n>`: the W3C Bitstring Status List credential, as
//!   `application/vc+jwt`, cacheable for its validity (`Cache-Control: max-age`);
//! * `GET /issuers/<issuer>/jwks.json`: an approved issuer's credential signing key (RFC 7517);
//! * `GET /.well-known/jwks.json`: the node's key, which signs the status lists.
//!
//! gRPC is always `POST`, so requests are routed by method: `GET`/`HEAD` go to these routes and
//! everything else to the gRPC services. The `kid` of each JWK is exactly the `kid` of the JWS
//! headers it verifies.

use crate::node::Node;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dlocker_locker::jwk::Jwk;
use dlocker_locker::server::Locker;
use dlocker_locker::server::error::LockerError;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

/// `Content-Type` of a status list credential (VC-JOSE).
pub const VC_JWT: &str = "application/vc+jwt";
/// `Content-Type` of a JWK set.
pub const JWKS: &str = "application/jwk-set+json";
/// How long a JWK set may be cached (keys change only by operator action).
pub const JWKS_MAX_AGE_SECS: u64 = 300;

/// What the document handlers share. No strong handle on the node or the locker: the router
/// is cloned into every connection, and the database must close when the server stops.
#[derive(Debug, Clone)]
struct Docs {
    node_key: k256::PublicKey,
    node_id: String,
    locker: Option<Weak<Locker>>,
}

/// The document routes for `node` (`locker`: its document locker, when enabled).
pub fn router(node: &Node, locker: Option<&Arc<Locker>>) -> Router {
    Router::new()
        .route("/status-lists/{issuer}/{list}", get(status_list))
        .route("/issuers/{issuer}/jwks.json", get(issuer_jwks))
        .route("/.well-known/jwks.json", get(node_jwks))
        .fallback(not_found)
        .with_state(Docs {
            node_key: *node.identity().public_key(),
            node_id: node.identity().node_id().to_owned(),
            locker: locker.map(Arc::downgrade),
        })
}

impl Docs {
    fn locker(&self) -> Option<Arc<Locker>> {
        self.locker.as_ref().and_then(Weak::upgrade)
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "no such document")
}

fn no_locker() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "this node does not run a document locker",
    )
}

/// The HTTP answer for a locker refusal: its message for the caller's mistakes, a generic one
/// (and a log line) for the node's.
fn refused(e: LockerError) -> Response {
    let status = tonic::Status::from(e);
    match status.code() {
        tonic::Code::NotFound => text(StatusCode::NOT_FOUND, status.message()),
        tonic::Code::InvalidArgument => text(StatusCode::BAD_REQUEST, status.message()),
        _ => {
            tracing::warn!(code = ?status.code(), message = status.message(), "document endpoint \
                failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn jwks(keys: &[(k256::PublicKey, String)]) -> Response {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|(pk, kid)| {
            let mut jwk = Jwk::from_public_key(pk).to_json();
            if let Some(m) = jwk.as_object_mut() {
                m.insert("kid".into(), kid.clone().into());
                m.insert("use".into(), "sig".into());
                m.insert("alg".into(), dlocker_locker::jws::ALG.into());
            }
            jwk
        })
        .collect();
    let body = serde_json::json!({ "keys": keys }).to_string();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(JWKS)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}"))
                    .unwrap_or(HeaderValue::from_static("no-cache")),
            ),
        ],
        body,
    )
        .into_response()
}

async fn status_list(
    State(d): State<Docs>,
    Path((issuer, list)): Path<(String, String)>,
) -> Response {
    let Some(locker) = d.locker() else {
        return no_locker();
    };
    let Ok(list) = list.parse::<u32>() else {
        return text(StatusCode::NOT_FOUND, "no such status list");
    };
    if list == 0 {
        // 0 means "the current list" over gRPC; a URL always names its list.
        return text(StatusCode::NOT_FOUND, "no such status list");
    }
    let ttl = locker.settings().status_list_ttl_secs;
    let made =
        tokio::task::spawn_blocking(move || locker.status_list_credential(&issuer, list)).await;
    match made {
        Ok(Ok((jws, _url))) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(VC_JWT)),
                // The credential is valid for `ttl` from now: a cache may keep it that long.
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_str(&format!("public, max-age={ttl}"))
                        .unwrap_or(HeaderValue::from_static("no-cache")),
                ),
            ],
            jws,
        )
            .into_response(),
        Ok(Err(e)) => refused(e),
        Err(e) => {
            tracing::warn!(error = %e, "status list task failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn issuer_jwks(State(d): State<Docs>, Path(issuer): Path<String>) -> Response {
    let Some(locker) = d.locker() else {
        return no_locker();
    };
    let info = match locker.get_issuer(&issuer) {
        Ok(i) => i,
        Err(e) => return refused(e),
    };
    // Only an issuer the bank approved is vouched for; a pending or suspended one is not.
    if info.state != "approved" {
        return text(
            StatusCode::NOT_FOUND,
            format!("issuer {issuer} is not approved at this locker"),
        );
    }
    let Ok(pk) = dlocker_proto::keys::decode_public_key(&info.signing_key) else {
        tracing::warn!(issuer, "stored issuer signing key does not decode");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    let kid = dlocker_locker::vc::key_id(&dlocker_locker::ids::issuer_urn(&issuer), &pk);
    jwks(&[(pk, kid)])
}

async fn node_jwks(State(d): State<Docs>) -> Response {
    let kid = dlocker_locker::vc::key_id(&dlocker_locker::ids::locker_urn(&d.node_id), &d.node_key);
    jwks(&[(d.node_key, kid)])
}

/// The tower layer that sends `GET`/`HEAD` requests to the document routes and everything
/// else to the gRPC services.
#[derive(Debug, Clone)]
pub struct DocumentRoutesLayer {
    router: Router,
}

impl DocumentRoutesLayer {
    /// A layer serving `router`.
    pub fn new(router: Router) -> Self {
        Self { router }
    }
}

impl<S> tower::Layer<S> for DocumentRoutesLayer {
    type Service = DocumentRoutes<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DocumentRoutes {
            inner,
            router: self.router.clone(),
        }
    }
}

/// See [`DocumentRoutesLayer`].
#[derive(Debug, Clone)]
pub struct DocumentRoutes<S> {
    inner: S,
    router: Router,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for DocumentRoutes<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        if req.method() == http::Method::GET || req.method() == http::Method::HEAD {
            let mut router = self.router.clone();
            return Box::pin(async move {
                let res = tower::Service::call(&mut router, req)
                    .await
                    .unwrap_or_else(|e: Infallible| match e {});
                Ok(res.map(tonic::body::Body::new))
            });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(req))
    }
}
