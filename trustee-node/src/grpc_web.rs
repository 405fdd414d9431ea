//! Browsers on the gRPC port: gRPC-Web (HTTP/1.1 and HTTP/2, through `tonic-web`) behind an
//! origin gate.
//!
//! A customer's wallet page calls every trustee directly from the browser, so the secret never
//! passes through a bank server. Browsers cannot speak native gRPC (no trailers, no raw HTTP/2
//! frames), hence gRPC-Web; native clients keep using HTTP/2 gRPC on the same port, and the
//! document endpoints stay plain `GET`s.
//!
//! The gate decides on the `Origin` header alone:
//!
//! * no `Origin` (native clients, `curl`, other nodes): passed through untouched;
//! * an allowed origin: a preflight (`OPTIONS`) is answered here with the CORS headers (cached by
//!   the browser for `preflight_max_age_secs`); a call is served and its response carries
//!   `Access-Control-Allow-Origin` and exposes the `grpc-status`/`grpc-message` and
//!   `dlocker-refusal` headers so the page can read a refusal and its code;
//! * any other origin: refused by the node itself, before any handler runs: a preflight gets
//!   HTTP 403, a gRPC or gRPC-Web call `PERMISSION_DENIED` "origin … is not allowed at this node",
//!   anything else HTTP 403. Browsers would stop such a page anyway; the node refusing means a
//!   misconfigured or hostile page cannot drive a ceremony even through a browser that ignores
//!   CORS.
//!
//! The allowed origins default to `[webauthn] origins`: the pages whose passkey ceremonies the
//! node accepts are the pages that may call it.

use crate::config::grpc_web::GrpcWebConfig;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;

/// Request headers a gRPC-Web client may send (the preflight allows these, and the
/// `[grpc_web] allowed_headers` an operator adds).
pub const ALLOWED_REQUEST_HEADERS: &str =
    "content-type, x-grpc-web, x-user-agent, grpc-timeout, grpc-accept-encoding, grpc-encoding";
/// Response headers the page may read (`dlocker-refusal`: the refusal code, so a page decides
/// on codes as native clients do).
pub const EXPOSED_RESPONSE_HEADERS: &str =
    "grpc-status, grpc-message, grpc-status-details-bin, dlocker-refusal";

/// The layers browsers go through, outermost first: the origin gate, then the gRPC-Web
/// translation. Apply with two `Server::layer` calls in this order.
pub fn layers(config: &GrpcWebConfig) -> (OriginGateLayer, tonic_web::GrpcWebLayer) {
    (
        OriginGateLayer::new(config.clone()),
        tonic_web::GrpcWebLayer::new(),
    )
}

/// The tower layer of [`OriginGate`].
#[derive(Debug, Clone)]
pub struct OriginGateLayer {
    config: Arc<GrpcWebConfig>,
}

impl OriginGateLayer {
    /// A gate admitting `config.allowed_origins`.
    pub fn new(config: GrpcWebConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

impl<S> tower::Layer<S> for OriginGateLayer {
    type Service = OriginGate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        OriginGate {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Answers preflights, refuses disallowed origins and adds CORS headers (see the module docs).
#[derive(Debug, Clone)]
pub struct OriginGate<S> {
    inner: S,
    config: Arc<GrpcWebConfig>,
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut res = Response::new(Body::new(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn refusal_message(origin: &str) -> String {
    format!("origin {origin} is not allowed at this node (grpc_web.allowed_origins)")
}

/// A gRPC (or gRPC-Web: the status is in the headers either way) "trailers-only" refusal.
fn grpc_refusal(content_type: HeaderValue, origin: &str) -> Response<Body> {
    let mut res = dlocker_proto::refusal::NodeRefusal::OriginNotAllowed
        .status(refusal_message(origin))
        .into_http::<Body>();
    res.headers_mut().insert(header::CONTENT_TYPE, content_type);
    res
}

fn add_cors(res: &mut Response<Body>, origin: HeaderValue) {
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_RESPONSE_HEADERS),
    );
    h.append(header::VARY, HeaderValue::from_static("origin"));
}

fn preflight(origin: HeaderValue, config: &GrpcWebConfig) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    let allowed = if config.allowed_headers.is_empty() {
        HeaderValue::from_static(ALLOWED_REQUEST_HEADERS)
    } else {
        // Header names were checked when the config was read, so this is a valid value.
        HeaderValue::from_str(&format!(
            "{ALLOWED_REQUEST_HEADERS}, {}",
            config.allowed_headers.join(", ")
        ))
        .unwrap_or(HeaderValue::from_static(ALLOWED_REQUEST_HEADERS))
    };
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_RESPONSE_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(config.preflight_max_age_secs),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static(
            "origin, access-control-request-method, access-control-request-headers",
        ),
    );
    res
}

impl<S, B> tower::Service<Request<B>> for OriginGate<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
            // Native clients: untouched.
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(inner.call(req));
        };
        let origin_text = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        if !self.config.allows(&origin_text) {
            tracing::warn!(
                origin = %origin_text,
                method = %req.method(),
                path = req.uri().path(),
                "refused a browser request from an origin not in grpc_web.allowed_origins"
            );
            let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
            let res = match content_type {
                Some(ct)
                    if req.method() == Method::POST
                        && ct.as_bytes().starts_with(b"application/grpc") =>
                {
                    grpc_refusal(ct, &origin_text)
                }
                _ => text(StatusCode::FORBIDDEN, refusal_message(&origin_text) + "\n"),
            };
            return Box::pin(async move { Ok(res) });
        }
        if req.method() == Method::OPTIONS {
            let res = preflight(origin, &self.config);
            return Box::pin(async move { Ok(res) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            add_cors(&mut res, origin);
            Ok(res)
        })
    }
}
