//! The operator's admin listener (`[admin]`): plain HTTP with `/metrics` (Prometheus text
//! format), `/healthz` (the process answers) and `/readyz` (the gRPC server is serving and the
//! database reads). Off unless `[admin] listen` is set; loopback only unless
//! `allow_non_loopback = true`, because it is unauthenticated and shows operational figures.

use crate::metrics::Metrics;
use crate::node::Node;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// The `Content-Type` of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the admin handlers share.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The node. Weak: a scraper's kept-alive connection must not keep the database open after
    /// the server stops.
    pub node: Weak<Node>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// True while the gRPC server is serving (false before it starts and once it stops).
    pub serving: Arc<AtomicBool>,
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn metrics(State(s): State<AdminState>) -> Response {
    let Some(node) = s.node.upgrade() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the node has stopped\n".to_owned(),
        );
    };
    // Scans of the database run off the async workers.
    let rendered = tokio::task::spawn_blocking(move || s.metrics.render(&node)).await;
    match rendered {
        Ok(Ok(body)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
            body,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "rendering /metrics failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("metrics task failed: {e}\n"),
        ),
    }
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".to_owned())
}

/// Why the node is not ready, or `None`.
fn not_ready(s: &AdminState) -> Option<String> {
    if !s.serving.load(Ordering::SeqCst) {
        return Some("the gRPC server is not serving".to_owned());
    }
    // The node's keys were loaded and checked against the database at start (it would not
    // exist otherwise); what can fail later is the database.
    let Some(node) = s.node.upgrade() else {
        return Some("the node has stopped".to_owned());
    };
    match node.db.check_readable() {
        Ok(()) => None,
        Err(e) => Some(format!("database not readable: {e}")),
    }
}

async fn readyz(State(s): State<AdminState>) -> Response {
    match tokio::task::spawn_blocking(move || not_ready(&s)).await {
        Ok(None) => text(StatusCode::OK, "ready\n".to_owned()),
        Ok(Some(why)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
        Err(e) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: check failed: {e}\n"),
        ),
    }
}
