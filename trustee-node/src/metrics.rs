//! Prometheus metrics: per-RPC request counters and latency (a tower layer on the gRPC server)
//! and gauges read from the database when `/metrics` is scraped.
//!
//! Label values come only from fixed sets (the RPCs in the served descriptor sets, the gRPC
//! codes, the session states), so a caller sending made-up paths cannot grow the series count.

use crate::node::Node;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

pub use crate::recovery::session::SESSION_STATES;

/// Label value for a path that is not one of the served RPCs.
pub const OTHER: &str = "other";

pub use crate::stats::latency_buckets;

/// `service`, `method`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// Fully qualified service, e.g. `dlocker.v1.Trustee`.
    pub service: String,
    /// Method, e.g. `FinishEnrollment`.
    pub method: String,
}

/// `service`, `method`, `code`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcCodeLabels {
    /// Fully qualified service.
    pub service: String,
    /// Method.
    pub method: String,
    /// gRPC status code name (`Ok`, `InvalidArgument`, ...).
    pub code: String,
}

/// `service`, `method`, `refusal`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcRefusalLabels {
    /// Fully qualified service.
    pub service: String,
    /// Method.
    pub method: String,
    /// The refusal code (`docs/protocol.md` §1), or `other` for a code this build does not know.
    pub refusal: String,
}

/// `state`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// One of [`SESSION_STATES`].
    pub state: String,
}

/// The node's metrics registry.
pub struct Metrics {
    registry: Registry,
    known_rpcs: HashSet<String>,
    requests: Family<RpcCodeLabels, Counter>,
    refusals: Family<RpcRefusalLabels, Counter>,
    latency: Family<RpcLabels, Histogram, fn() -> Histogram>,
    deposits: Gauge,
    sessions: Family<StateLabel, Gauge>,
    epochs_staged: Gauge,
    unconfirmed_backups: Gauge,
    oldest_unconfirmed: Gauge,
    outbox_last_seq: Gauge,
    outbox_lag: Gauge,
    event_watchers: Gauge,
    db_size: Gauge,
    unauthenticated_fetch_refusals: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn new_latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// Every `/package.Service/Method` path in an encoded `FileDescriptorSet`.
fn rpc_paths(encoded: &[u8]) -> Vec<String> {
    use prost::Message as _;
    let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for file in set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let name = service.name.unwrap_or_default();
            for method in service.method {
                out.push(format!(
                    "/{package}.{name}/{}",
                    method.name.unwrap_or_default()
                ));
            }
        }
    }
    out
}

impl Metrics {
    /// A registry with every metric of the node; `flush` is the storage's flush-latency
    /// histogram, when the store records one.
    pub fn new(flush: Option<Histogram>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RpcCodeLabels, Counter>::default();
        registry.register(
            "dlocker_grpc_requests",
            "gRPC requests answered, by service, method and status code (refusals are the codes \
                other than Ok)",
            requests.clone(),
        );
        let refusals = Family::<RpcRefusalLabels, Counter>::default();
        registry.register(
            "dlocker_refusals",
            "Requests refused, by service, method and refusal code (the dlocker-refusal code the \
                response carries)",
            refusals.clone(),
        );
        let latency = Family::<RpcLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            new_latency_histogram,
        );
        registry.register(
            "dlocker_grpc_request_duration_seconds",
            "Time from a gRPC request's arrival to its response headers, by service and method",
            latency.clone(),
        );
        let deposits = Gauge::default();
        registry.register(
            "dlocker_deposits",
            "Wallets this node holds a receipted deposit for",
            deposits.clone(),
        );
        let sessions = Family::<StateLabel, Gauge>::default();
        registry.register(
            "dlocker_recovery_sessions",
            "Stored recovery sessions by state",
            sessions.clone(),
        );
        let epochs_staged = Gauge::default();
        registry.register(
            "dlocker_epochs_staged",
            "Wallets with a staged (not yet committed) epoch",
            epochs_staged.clone(),
        );
        let unconfirmed_backups = Gauge::default();
        registry.register(
            "dlocker_unconfirmed_backups",
            "Deposits whose backup was not confirmed complete (ConfirmBackup); erased after \
             housekeeping.unconfirmed_backup_expiry_secs",
            unconfirmed_backups.clone(),
        );
        let oldest_unconfirmed = Gauge::default();
        registry.register(
            "dlocker_oldest_unconfirmed_backup_timestamp_seconds",
            "When the oldest unconfirmed backup was stored (Unix seconds; 0 = none)",
            oldest_unconfirmed.clone(),
        );
        if let Some(flush) = flush {
            registry.register(
                "dlocker_db_flush_duration_seconds",
                "Duration of database flushes (every acknowledged write waits for one)",
                flush,
            );
        }
        let outbox_last_seq = Gauge::default();
        registry.register(
            "dlocker_event_outbox_last_seq",
            "Sequence number of the newest event written to the outbox",
            outbox_last_seq.clone(),
        );
        let outbox_lag = Gauge::default();
        registry.register(
            "dlocker_event_outbox_lag",
            "Events written to the outbox but not yet announced to live watchers",
            outbox_lag.clone(),
        );
        let event_watchers = Gauge::default();
        registry.register(
            "dlocker_event_watchers",
            "Live WatchEvents streams",
            event_watchers.clone(),
        );
        let db_size = Gauge::default();
        registry.register(
            "dlocker_db_size_bytes",
            "Size of the database on disk",
            db_size.clone(),
        );
        let unauthenticated_fetch_refusals = Gauge::default();
        registry.register(
            "dlocker_unauthenticated_fetch_refusals",
            "FetchDocument calls refused before the requester was authenticated, since start",
            unauthenticated_fetch_refusals.clone(),
        );

        let mut known_rpcs: HashSet<String> = rpc_paths(dlocker_proto::pb::FILE_DESCRIPTOR_SET)
            .into_iter()
            .chain(rpc_paths(tonic_health::pb::FILE_DESCRIPTOR_SET))
            .collect();
        known_rpcs.insert("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".to_owned());
        known_rpcs
            .insert("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo".to_owned());
        Self {
            registry,
            known_rpcs,
            requests,
            refusals,
            latency,
            deposits,
            sessions,
            epochs_staged,
            unconfirmed_backups,
            oldest_unconfirmed,
            outbox_last_seq,
            outbox_lag,
            event_watchers,
            db_size,
            unauthenticated_fetch_refusals,
        }
    }

    /// `(service, method)` labels for a request path; [`OTHER`] for anything not served.
    pub fn rpc_labels(&self, path: &str) -> RpcLabels {
        if self.known_rpcs.contains(path)
            && let Some((service, method)) = path.trim_start_matches('/').split_once('/')
        {
            return RpcLabels {
                service: service.to_owned(),
                method: method.to_owned(),
            };
        }
        RpcLabels {
            service: OTHER.to_owned(),
            method: OTHER.to_owned(),
        }
    }

    /// Records one answered request and, for a refusal, its code.
    pub fn observe(
        &self,
        rpc: RpcLabels,
        code: tonic::Code,
        refusal: Option<&'static str>,
        seconds: f64,
    ) {
        self.latency.get_or_create(&rpc).observe(seconds);
        if let Some(refusal) = refusal {
            self.refusals
                .get_or_create(&RpcRefusalLabels {
                    service: rpc.service.clone(),
                    method: rpc.method.clone(),
                    refusal: refusal.to_owned(),
                })
                .inc();
        }
        self.requests
            .get_or_create(&RpcCodeLabels {
                service: rpc.service,
                method: rpc.method,
                code: format!("{code:?}"),
            })
            .inc();
    }

    /// Reads the gauges from the node's database and renders the text exposition format.
    pub fn render(&self, node: &Node) -> Result<String, String> {
        self.refresh(node)?;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| format!("encoding metrics: {e}"))?;
        Ok(out)
    }

    fn refresh(&self, node: &Node) -> Result<(), String> {
        let db = &node.db;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.deposits.set(count(db.wallet_count()));
        self.epochs_staged.set(count(db.staged_count()));
        let unconfirmed = db
            .unconfirmed_backups()
            .map_err(|e| format!("reading unconfirmed backups: {e}"))?;
        self.unconfirmed_backups.set(count(unconfirmed.len()));
        self.oldest_unconfirmed.set(
            unconfirmed
                .first()
                .map_or(0, |(_, at)| i64::try_from(*at).unwrap_or(i64::MAX)),
        );

        let now = node.now();
        let mut by_state = [0i64; SESSION_STATES.len()];
        // An unreadable session is reported by the RPCs that touch it, not here.
        for s in db
            .readable_sessions()
            .map_err(|e| format!("reading sessions: {e}"))?
        {
            let name = s.session.state_name(now);
            if let Some(i) = SESSION_STATES.iter().position(|n| *n == name) {
                by_state[i] += 1;
            }
        }
        for (state, n) in SESSION_STATES.iter().zip(by_state) {
            self.sessions
                .get_or_create(&StateLabel {
                    state: (*state).to_owned(),
                })
                .set(n);
        }

        let events = node.events();
        let last = events.last_seq();
        self.outbox_last_seq
            .set(i64::try_from(last).unwrap_or(i64::MAX));
        self.outbox_lag
            .set(i64::try_from(last.saturating_sub(events.announced_seq())).unwrap_or(i64::MAX));
        self.event_watchers
            .set(i64::try_from(events.watchers()).unwrap_or(i64::MAX));
        self.db_size.set(
            db.size_on_disk()
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
                .map_err(|e| format!("database size: {e}"))?,
        );
        self.unauthenticated_fetch_refusals.set(
            i64::try_from(node.stats().snapshot().unauthenticated_fetch_refusals)
                .unwrap_or(i64::MAX),
        );
        Ok(())
    }
}

/// The tower layer that counts and times every gRPC request.
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl RpcMetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The gRPC status of a response at its headers: a refusal is a trailers-only response whose
/// headers carry `grpc-status`; a unary success carries it in the trailers, so no status at the
/// headers of a 200 means `Ok` (a stream's later failure is not seen here).
fn response_code<B>(res: &http::Response<B>) -> tonic::Code {
    match res.headers().get("grpc-status") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .map(tonic::Code::from_i32)
            .unwrap_or(tonic::Code::Unknown),
        None if res.status() == http::StatusCode::OK => tonic::Code::Ok,
        None => tonic::Code::Unavailable,
    }
}

/// The refusal code a response's headers carry (`dlocker-refusal`: the node's codes and the
/// locker's), as one of the known codes so the label set stays bounded; `other` for an unknown
/// one.
fn response_refusal<B>(res: &http::Response<B>) -> Option<&'static str> {
    let v = res.headers().get(dlocker_proto::refusal::METADATA_KEY)?;
    let s = v.to_str().unwrap_or("");
    Some(
        dlocker_proto::refusal::NodeRefusal::parse(s)
            .map(|c| c.as_str())
            .or_else(|| dlocker_locker::refusal::RefusalCode::parse(s).map(|c| c.as_str()))
            .unwrap_or("other"),
    )
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let rpc = self.metrics.rpc_labels(req.uri().path());
        let metrics = self.metrics.clone();
        let start = Instant::now();
        // The service that was polled ready answers this request; its clone serves the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let res = inner.call(req).await;
            let (code, refusal) = match &res {
                Ok(r) => (response_code(r), response_refusal(r)),
                Err(_) => (tonic::Code::Internal, None),
            };
            metrics.observe(rpc, code, refusal, start.elapsed().as_secs_f64());
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_rpcs_get_their_own_labels() {
        let m = Metrics::new(None);
        let l = m.rpc_labels("/dlocker.v1.Trustee/FinishEnrollment");
        assert_eq!(l.service, "dlocker.v1.Trustee");
        assert_eq!(l.method, "FinishEnrollment");
        let l = m.rpc_labels("/grpc.health.v1.Health/Check");
        assert_eq!(l.method, "Check");
        for made_up in [
            "/dlocker.v1.Trustee/NoSuchMethod",
            "/x.Y/Z",
            "/",
            "/status-lists/a/1",
        ] {
            assert_eq!(m.rpc_labels(made_up).service, OTHER, "{made_up}");
        }
    }

    #[test]
    fn code_is_read_from_trailers_only_headers() {
        let res = http::Response::builder()
            .status(200)
            .header("grpc-status", "3")
            .body(())
            .expect("response");
        assert_eq!(response_code(&res), tonic::Code::InvalidArgument);
        let ok = http::Response::builder()
            .status(200)
            .body(())
            .expect("response");
        assert_eq!(response_code(&ok), tonic::Code::Ok);
        assert_eq!(response_refusal(&ok), None);
        let refused = http::Response::builder()
            .status(200)
            .header("grpc-status", "7")
            .header("dlocker-refusal", "origin_not_allowed")
            .body(())
            .expect("response");
        assert_eq!(response_refusal(&refused), Some("origin_not_allowed"));
        let odd = http::Response::builder()
            .header("dlocker-refusal", "made_up_code")
            .body(())
            .expect("response");
        assert_eq!(response_refusal(&odd), Some("other"), "a bounded label set");
    }
}
