//! Reaching trustee nodes: gRPC channels with timeouts and (m)TLS, and the pinned-key check.
//!
//! Natively a [`Channel`] is tonic's HTTP/2 channel. In the browser (wasm32) it is gRPC-Web over
//! `fetch` (`tonic-web-wasm-client`): the same generated clients, the same messages, the node's
//! gRPC-Web layer on its normal port; TLS is the browser's (its roots, no client certificates).
//!
//! The `GetInfo` key check is an early, clear failure for a stale trustees file or a node that is
//! not who it should be. It is not what makes the protocol safe on a plaintext channel: that is
//! sealing shares to, and verifying receipts and proofs against, the *pinned* keys.

use crate::error::ConnectError;
use crate::trustees::{TlsFiles, TrusteeInfo, check_endpoint};
use dlocker_proto::keys::{decode_public_key, node_id, public_key_hex};
use dlocker_proto::pb::recovery_client::RecoveryClient;
use dlocker_proto::pb::staff_client::StaffClient as StaffRpcClient;
use dlocker_proto::pb::trustee_client::TrusteeClient;
use dlocker_proto::pb::{GetInfoRequest, NodeDescriptor};
use k256::PublicKey;
use serde::Serialize;
use std::time::Duration;
#[cfg(not(target_arch = "wasm32"))]
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

/// A connection to one node that the generated gRPC clients run over: tonic's HTTP/2 channel.
#[cfg(not(target_arch = "wasm32"))]
pub type Channel = tonic::transport::Channel;
/// A connection to one node that the generated gRPC clients run over: gRPC-Web over the
/// browser's `fetch`.
#[cfg(target_arch = "wasm32")]
pub type Channel = tonic_web_wasm_client::Client;

/// How long to wait for a TCP (and TLS) connection (a [`crate::Client`] sets its own).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any single RPC may take (a [`crate::Client`] sets its own).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest message the SDK accepts from a node (matches the node's default bound).
pub(crate) const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A trustee client whose identity key has been checked against the pinned key.
pub(crate) type Client = TrusteeClient<Channel>;

/// A node's self-description, as `GetInfo` returns it (NOT trusted: compare with a pinned key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInfo {
    /// Node id (derived from the key by the node; re-derived and checked here).
    pub node_id: String,
    /// Display name.
    pub name: String,
    /// Advertised endpoint.
    pub endpoint: String,
    /// Identity key (hex, SEC1 compressed).
    pub public_key: String,
    /// `"trustee"` or `"bank"`.
    pub role: String,
    /// Protocol version, e.g. `dlocker/v1`.
    pub protocol_version: String,
    /// Bank approval key (hex), bank nodes only.
    pub bank_approval_key: Option<String>,
}

impl NodeInfo {
    fn from_descriptor(
        endpoint: &str,
        d: NodeDescriptor,
    ) -> Result<(Self, PublicKey), ConnectError> {
        let bad = |reason: &str| ConnectError::BadDescriptor {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let key = decode_public_key(&d.public_key)
            .map_err(|_| bad("public key is not a SEC1 compressed secp256k1 point"))?;
        if d.node_id != node_id(&key) {
            return Err(bad("node id does not match its public key"));
        }
        let bank_approval_key = if d.bank_approval_key.is_empty() {
            None
        } else {
            Some(public_key_hex(
                &decode_public_key(&d.bank_approval_key).map_err(|_| bad("bank approval key"))?,
            ))
        };
        let info = Self {
            node_id: d.node_id,
            name: d.name,
            endpoint: d.endpoint,
            public_key: public_key_hex(&key),
            role: d.role,
            protocol_version: d.protocol_version,
            bank_approval_key,
        };
        Ok((info, key))
    }
}

pub(crate) use dlocker_proto::refusal::NodeRefusal;

/// Whether a node refused with `want`. Decisions read the code the node puts in the status
/// metadata, never the message (which is for people). A node that predates refusal codes sends
/// none; its gRPC code then decides, as it did before codes existed.
pub(crate) fn is_refusal(s: &Status, want: NodeRefusal) -> bool {
    match NodeRefusal::of_status(s) {
        Some(code) => code == want,
        None => s.code() == want.grpc_code(),
    }
}

/// The node holds nothing for the wallet (a trustee that never enrolled it, or erased it).
pub(crate) fn not_held(s: &Status) -> bool {
    is_refusal(s, NodeRefusal::WalletNotFound)
}

/// The channel failed rather than the node refusing: worth another try later.
pub(crate) fn transport_failure(s: &Status) -> bool {
    NodeRefusal::of_status(s).is_none()
        && (matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded)
            || broken_connection(s)
            || (cfg!(target_arch = "wasm32") && fetch_failed(s.code(), s.message())))
}

/// A connection that broke under a call (the node stopped or was killed while answering):
/// tonic reports it as UNKNOWN "transport error", with its transport error as the source. The
/// node may never have seen the call, so it is a transport failure like UNAVAILABLE.
#[cfg(not(target_arch = "wasm32"))]
fn broken_connection(s: &Status) -> bool {
    use std::error::Error as _;
    s.code() == Code::Unknown
        && s.source()
            .is_some_and(|e| e.is::<tonic::transport::Error>())
}

#[cfg(target_arch = "wasm32")]
fn broken_connection(_: &Status) -> bool {
    false
}

/// In the browser a `fetch` that got no readable answer (node down, TLS failure, or this page's
/// origin refused at the node's preflight) reaches tonic as UNKNOWN "JS API error: TypeError: …"
/// from `tonic-web-wasm-client`, not UNAVAILABLE.
fn fetch_failed(code: Code, message: &str) -> bool {
    code == Code::Unknown && message.starts_with("JS API error")
}

/// Describes a gRPC status for a person: the code's name and the node's message.
pub fn describe_status(s: &Status) -> String {
    if fetch_failed(s.code(), s.message()) {
        return format!(
            "no answer the browser could read (node down, TLS, or this page's origin not allowed there): {}",
            s.message().trim_start_matches("JS API error: ")
        );
    }
    let what = match s.code() {
        Code::Unavailable => "node unavailable",
        Code::DeadlineExceeded => "timed out",
        Code::InvalidArgument => "rejected (invalid argument)",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::Unauthenticated => "unauthenticated",
        Code::FailedPrecondition => "not possible yet",
        Code::ResourceExhausted => "limit exceeded",
        Code::DataLoss => "data loss",
        Code::Unimplemented => "not supported by this node",
        Code::Cancelled => "cancelled",
        _ => "error",
    };
    let msg = s.message().lines().next().unwrap_or("").trim();
    if msg.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {msg}")
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn read_pem(endpoint: &str, what: &str, path: &std::path::Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|e| ConnectError::Tls {
        endpoint: endpoint.to_owned(),
        reason: format!("cannot read {what} {}: {e}", path.display()),
    })
}

/// Opens a channel to `endpoint` (connect and request timeouts; TLS for `https://`).
/// Does not check who answers: use [`connect`] for that.
#[cfg(not(target_arch = "wasm32"))]
pub async fn open_channel(endpoint: &str, tls: &TlsFiles) -> Result<Channel, ConnectError> {
    open_channel_with(endpoint, tls, &ChannelOptions::default()).await
}

/// [`open_channel`] with the timeouts and TLS material of `opts`.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn open_channel_with(
    endpoint: &str,
    tls: &TlsFiles,
    opts: &ChannelOptions,
) -> Result<Channel, ConnectError> {
    let invalid = |reason: String| ConnectError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let url = check_endpoint(endpoint).map_err(invalid)?;
    let mut ep = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| invalid(e.to_string()))?
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.request_timeout)
        .tcp_nodelay(true);
    if url.scheme() == "https" {
        let mut cfg = ClientTlsConfig::new();
        if let Some(host) = url.host_str() {
            cfg = cfg.domain_name(host.trim_start_matches('[').trim_end_matches(']'));
        }
        match (&opts.ca_pem, &tls.ca_cert) {
            // Roots given in memory (the app's bundled PEM) take the place of the file's.
            (Some(pem), _) => cfg = cfg.ca_certificate(Certificate::from_pem(pem.as_slice())),
            (None, Some(ca)) => {
                cfg = cfg.ca_certificate(Certificate::from_pem(read_pem(
                    endpoint,
                    "CA certificate",
                    ca,
                )?))
            }
            (None, None) => {
                return Err(ConnectError::Tls {
                    endpoint: endpoint.to_owned(),
                    reason: "https endpoint without ca_cert (set ca_cert in the trustees file)"
                        .into(),
                });
            }
        }
        if let Some((cert, key)) = &opts.identity_pem {
            cfg = cfg.identity(Identity::from_pem(cert.as_slice(), key.as_slice()));
        } else if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            let cert = read_pem(endpoint, "client certificate", cert)?;
            let key = read_pem(endpoint, "client key", key)?;
            cfg = cfg.identity(Identity::from_pem(cert, key));
        }
        ep = ep.tls_config(cfg).map_err(|e| ConnectError::Tls {
            endpoint: endpoint.to_owned(),
            reason: e.to_string(),
        })?;
    }
    ep.connect().await.map_err(|e| ConnectError::Unreachable {
        endpoint: endpoint.to_owned(),
        reason: error_chain(&e),
    })
}

/// Opens a gRPC-Web channel to `endpoint` (request timeout; `https://` uses the browser's TLS and
/// roots, so `tls` is not used). Nothing is sent until the first call. Does not check who
/// answers: use [`connect`] for that.
#[cfg(target_arch = "wasm32")]
pub async fn open_channel(endpoint: &str, tls: &TlsFiles) -> Result<Channel, ConnectError> {
    open_channel_with(endpoint, tls, &ChannelOptions::default()).await
}

/// [`open_channel`] with the request timeout of `opts` (the browser owns TLS).
#[cfg(target_arch = "wasm32")]
pub(crate) async fn open_channel_with(
    endpoint: &str,
    _tls: &TlsFiles,
    opts: &ChannelOptions,
) -> Result<Channel, ConnectError> {
    check_endpoint(endpoint).map_err(|reason| ConnectError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    })?;
    let options = tonic_web_wasm_client::options::FetchOptions::new().timeout(opts.request_timeout);
    Ok(tonic_web_wasm_client::Client::new_with_options(
        endpoint.trim_end_matches('/').to_owned(),
        options,
    ))
}

#[cfg(not(target_arch = "wasm32"))]
/// The innermost message of an error chain ("Connection refused", not "transport error").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !t.trim().is_empty() {
            msg = t;
        }
        cur = s.source();
    }
    msg
}

/// `02f95a8a…b51c`: enough of a key to tell two apart in a message.
fn abbreviate(hex: &str) -> String {
    match (hex.get(..8), hex.get(hex.len().saturating_sub(4)..)) {
        (Some(a), Some(b)) if hex.len() > 12 => format!("{a}…{b}"),
        _ => hex.to_owned(),
    }
}

pub(crate) fn client(channel: Channel) -> Client {
    TrusteeClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// An `Epochs` client with the same message bounds as [`client`].
pub(crate) fn epochs_client(
    channel: Channel,
) -> dlocker_proto::pb::epochs_client::EpochsClient<Channel> {
    dlocker_proto::pb::epochs_client::EpochsClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

pub(crate) use crate::error::describe_failed as describe_failures;

async fn get_info(
    client: &mut Client,
    endpoint: &str,
) -> Result<(NodeInfo, PublicKey), ConnectError> {
    let d = client
        .get_info(GetInfoRequest {})
        .await
        .map_err(|s| match s.code() {
            _ if transport_failure(&s) => ConnectError::Unreachable {
                endpoint: endpoint.to_owned(),
                reason: describe_status(&s),
            },
            _ => ConnectError::Rpc {
                endpoint: endpoint.to_owned(),
                reason: describe_status(&s),
            },
        })?;
    NodeInfo::from_descriptor(endpoint, d.into_inner())
}

/// Connects to a trustee and checks that it presents the pinned identity key.
pub async fn connect(info: &TrusteeInfo) -> Result<Client, ConnectError> {
    connect_channel(info).await.map(client)
}

/// A channel to a trustee whose `GetInfo` key was checked against the pinned key; the
/// `Recovery` and `Staff` services are served on the same endpoint.
///
/// A trustee of a [`crate::Client`] keeps its checked channel and hands it out again (tonic
/// reconnects it underneath when a node restarts); elsewhere every call opens and checks a new
/// one.
pub async fn connect_channel(info: &TrusteeInfo) -> Result<Channel, ConnectError> {
    match &info.link.0 {
        Some(link) => link.channel(info).await,
        None => open_checked(info, &ChannelOptions::default()).await,
    }
}

/// Opens a channel to `info` and checks, with `GetInfo`, that it presents the pinned key.
///
/// A trustee with replicas (several endpoints of one node identity) is tried at each in turn,
/// starting at a random one so that clients spread over them; an endpoint that does not answer
/// passes to the next. One that answers with another key ends the attempt: that is a
/// misconfiguration or an impostor, never a reason to try elsewhere quietly.
async fn open_checked(info: &TrusteeInfo, opts: &ChannelOptions) -> Result<Channel, ConnectError> {
    let endpoints: Vec<&str> = info.endpoints().collect();
    let start = if endpoints.len() > 1 {
        rand::random_range(0..endpoints.len())
    } else {
        0
    };
    let mut last = None;
    for k in 0..endpoints.len() {
        let endpoint = endpoints[(start + k) % endpoints.len()];
        match open_checked_at(info, endpoint, opts).await {
            Ok(ch) => return Ok(ch),
            Err(e) if e.is_retryable() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ConnectError::Unreachable {
        endpoint: info.endpoint.clone(),
        reason: "no endpoint".to_owned(),
    }))
}

async fn open_checked_at(
    info: &TrusteeInfo,
    endpoint: &str,
    opts: &ChannelOptions,
) -> Result<Channel, ConnectError> {
    let channel = open_channel_with(endpoint, &info.tls, opts).await?;
    let mut c = client(channel.clone());
    let (_, key) = get_info(&mut c, endpoint).await?;
    if key != info.public_key {
        return Err(ConnectError::KeyMismatch {
            name: info.name.clone(),
            endpoint: endpoint.to_owned(),
            pinned: abbreviate(&public_key_hex(&info.public_key)),
            presented: abbreviate(&public_key_hex(&key)),
        });
    }
    Ok(channel)
}

/// How a [`crate::Client`] reaches its trustees: timeouts, TLS material from memory, and how
/// often to try a connection that fails to open.
#[derive(Clone)]
pub(crate) struct ChannelOptions {
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    /// CA certificates (PEM) used instead of a trustee's `ca_cert` file.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for mutual TLS, instead of the file's.
    pub(crate) identity_pem: Option<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)>,
    /// Attempts to open and check a connection (at least 1) and the first pause between them
    /// (doubled each time, at most `max_backoff`).
    pub(crate) connect_attempts: u32,
    pub(crate) backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            ca_pem: None,
            identity_pem: None,
            connect_attempts: 1,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// The pause before attempt `attempt + 1` (attempt counts from 1): `backoff · 2^(attempt-1)`,
/// at most `max`.
pub(crate) fn backoff_delay(backoff: Duration, max: Duration, attempt: u32) -> Duration {
    backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(max)
}

/// How long a `GetApproval` (or `RequestPasskeyReset`) call asks the bank to hold its answer
/// while staff have not approved yet: 20 s, and at least 5 s inside the request timeout so the
/// call is never cut off (0: the request timeout is too short to wait; the caller then polls).
pub(crate) fn approval_wait_secs(info: &TrusteeInfo) -> u32 {
    held_wait_secs(info, Duration::from_secs(20))
}

/// How long a `ReleaseShare` call asks a trustee to hold a release its clock says is a little
/// early (it holds only when its `release_not_before` is at most this far away): 10 s, and at
/// least 5 s inside the request timeout.
pub(crate) fn release_wait_secs(info: &TrusteeInfo) -> u32 {
    held_wait_secs(info, Duration::from_secs(10))
}

fn held_wait_secs(info: &TrusteeInfo, most: Duration) -> u32 {
    let timeout = info
        .link
        .0
        .as_ref()
        .map_or(REQUEST_TIMEOUT, |s| s.opts.request_timeout);
    let wait = timeout.saturating_sub(Duration::from_secs(5)).min(most);
    u32::try_from(wait.as_secs()).unwrap_or(0)
}

/// Whether a "not yet" answer to a call that asked to be held came back without the node
/// holding it (a node that does not wait, or one with no waiting place free): only then does
/// the caller pause (or give up) before asking again.
pub(crate) fn answered_at_once(asked: crate::runtime::Instant, wait_secs: u32) -> bool {
    wait_secs == 0 || asked.elapsed() < Duration::from_secs(1)
}

/// A trustee's kept connection (a [`crate::Client`]'s trustees have one; others do not).
#[derive(Clone, Default)]
pub(crate) struct Link(pub(crate) Option<std::sync::Arc<Shared>>);

pub(crate) struct Shared {
    opts: ChannelOptions,
    channel: tokio::sync::Mutex<Option<Channel>>,
    /// Connections opened and checked with `GetInfo` (what reuse saves).
    opened: std::sync::atomic::AtomicU64,
}

impl Link {
    pub(crate) fn new(opts: ChannelOptions) -> Self {
        Self(Some(std::sync::Arc::new(Shared {
            opts,
            channel: tokio::sync::Mutex::new(None),
            opened: std::sync::atomic::AtomicU64::new(0),
        })))
    }

    /// Connections this link opened so far.
    pub(crate) fn opened(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |s| s.opened.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Shared {
    /// The kept channel, or a new checked one (retried with backoff while the node is
    /// unreachable). Concurrent callers wait for the one connection being opened.
    async fn channel(&self, info: &TrusteeInfo) -> Result<Channel, ConnectError> {
        let mut kept = self.channel.lock().await;
        if let Some(ch) = kept.as_ref() {
            return Ok(ch.clone());
        }
        let mut attempt = 1;
        let ch = loop {
            self.opened
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match open_checked(info, &self.opts).await {
                Ok(ch) => break ch,
                Err(e) if e.is_retryable() && attempt < self.opts.connect_attempts => {
                    crate::runtime::sleep(backoff_delay(
                        self.opts.backoff,
                        self.opts.max_backoff,
                        attempt,
                    ))
                    .await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        *kept = Some(ch.clone());
        Ok(ch)
    }
}

// A link is a cache, not part of what a trustee is: two trustees compare equal whatever their
// connections, and `Debug` shows nothing of it.
impl PartialEq for Link {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Link {}
impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "kept" } else { "per-call" })
    }
}

/// A `Recovery` service client on a checked channel.
pub fn recovery_client(channel: Channel) -> RecoveryClient<Channel> {
    RecoveryClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A `Staff` service client on a checked channel (bank node only).
pub(crate) fn staff_client(channel: Channel) -> StaffRpcClient<Channel> {
    StaffRpcClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Asks a node who it is, without any pinning (for display by operators).
pub async fn node_info(endpoint: &str) -> Result<NodeInfo, ConnectError> {
    node_info_with_tls(endpoint, &TlsFiles::default()).await
}

/// [`node_info`] for an `https://` endpoint with TLS settings.
pub async fn node_info_with_tls(endpoint: &str, tls: &TlsFiles) -> Result<NodeInfo, ConnectError> {
    let mut c = client(open_channel(endpoint, tls).await?);
    get_info(&mut c, endpoint).await.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coded(code: NodeRefusal) -> Status {
        code.status("any text")
    }

    #[test]
    fn refusals_are_told_apart_by_code_not_by_grpc_code_or_text() {
        // Same gRPC code (NOT_FOUND), different refusals: only a missing wallet is "not held".
        assert!(not_held(&coded(NodeRefusal::WalletNotFound)));
        assert!(!not_held(&coded(NodeRefusal::SessionNotFound)));
        assert!(!not_held(&coded(NodeRefusal::CeremonyNotFound)));
        // The message does not matter.
        let mut s = Status::not_found("this node holds no backup for this wallet");
        NodeRefusal::StaffNotFound.attach(&mut s);
        assert!(!not_held(&s));
        // A node without codes: its gRPC code decides, as before.
        assert!(not_held(&Status::not_found("")));
        assert!(!not_held(&Status::failed_precondition("")));
    }

    #[test]
    fn a_failed_fetch_reads_as_no_answer() {
        assert!(fetch_failed(
            Code::Unknown,
            "JS API error: TypeError: Failed to fetch"
        ));
        assert!(!fetch_failed(Code::Unknown, "a node's own error"));
        let d = describe_status(&Status::unknown("JS API error: TypeError: Failed to fetch"));
        assert!(d.starts_with("no answer the browser could read"), "{d}");
        assert!(d.ends_with("TypeError: Failed to fetch"), "{d}");
    }

    /// A server that takes the connection and the call, then dies without answering (a node
    /// killed mid-call): the call's status must read as a transport failure, so the SDK tries
    /// the node again (or its replica) instead of giving up.
    #[tokio::test]
    async fn a_connection_broken_under_a_call_is_a_transport_failure() {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            // Read the client's preface and request, then drop the connection unanswered.
            let mut buf = [0u8; 4096];
            let _ = tokio::time::timeout(Duration::from_millis(300), sock.read(&mut buf)).await;
        });
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_lazy();
        let status = dlocker_proto::pb::trustee_client::TrusteeClient::new(channel)
            .get_info(GetInfoRequest {})
            .await
            .expect_err("the server never answers");
        assert!(
            transport_failure(&status),
            "{:?} {:?}",
            status.code(),
            status.message()
        );
    }

    #[test]
    fn transport_failures_are_not_refusals() {
        assert!(transport_failure(&Status::unavailable(
            "connection refused"
        )));
        assert!(transport_failure(&Status::deadline_exceeded("")));
        assert!(!transport_failure(&coded(NodeRefusal::AwaitingApproval)));
        assert!(!transport_failure(&coded(NodeRefusal::RateLimited)));
    }
}
