//! Browsers on real nodes: gRPC-Web over plain HTTP/1.1 (what a wallet page's fetch sends) and
//! over HTTP/2 (what a browser speaks to a node behind TLS) from
//! an allowed origin is served with CORS headers, the preflight answers with the allowed method,
//! headers and cache lifetime, and an origin not in the node's list is refused by the node
//! itself (403 for a preflight, PERMISSION_DENIED for a gRPC-Web or native gRPC call) before any
//! handler runs: the recovery it tried to open does not exist afterwards. Native clients (no
//! `Origin`) are unaffected.

use dlocker_integration_tests::http::{HttpResponse, request};
use dlocker_integration_tests::recovery_cluster::{RecoveryCluster, RecoverySpec, session_key};
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::pb::{GetInfoRequest, NodeDescriptor, OpenRecoveryRequest};
use tonic_prost::prost::Message as _;

/// The default allowed origin: `[webauthn] origins` of `trustee-node init` (no `[grpc_web]`).
const ALLOWED: &str = "https://localhost";
const EVIL: &str = "https://evil.example";
const GRPC_WEB: &str = "application/grpc-web+proto";

/// One gRPC-Web frame: flag byte, big-endian length, payload.
fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a gRPC-Web response body into (messages, trailer text).
fn frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut msgs, mut trailers) = (Vec::new(), String::new());
    let mut rest = body;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let payload = &rest[5..5 + len];
        if rest[0] & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(payload));
        } else {
            msgs.push(payload.to_vec());
        }
        rest = &rest[5 + len..];
    }
    (msgs, trailers)
}

fn grpc_web_call(
    addr: std::net::SocketAddr,
    path: &str,
    origin: &str,
    msg: &impl tonic_prost::prost::Message,
) -> HttpResponse {
    request(
        addr,
        "POST",
        path,
        &[
            ("Origin", origin),
            ("Content-Type", GRPC_WEB),
            ("Accept", GRPC_WEB),
            ("X-Grpc-Web", "1"),
        ],
        &frame(0, &msg.encode_to_vec()),
    )
}

/// A gRPC-Web call over HTTP/2 (prior knowledge, as after TLS with ALPN `h2`): the response's
/// status, headers, body and HTTP trailers.
async fn grpc_web_call_h2(
    addr: std::net::SocketAddr,
    path: &str,
    origin: &str,
    msg: &impl tonic_prost::prost::Message,
) -> (http::response::Parts, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let mut client = client.ready().await.expect("h2 ready");
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("origin", origin)
        .header("content-type", GRPC_WEB)
        .header("accept", GRPC_WEB)
        .header("x-grpc-web", "1")
        .body(())
        .expect("request");
    let (resp, mut send) = client.send_request(req, false).expect("send request");
    // A refusal that needs no body (the origin gate) may close the stream before the body is
    // sent; the response below is what the test checks.
    let _ = send.send_data(bytes::Bytes::from(frame(0, &msg.encode_to_vec())), true);
    let (parts, mut body) = resp.await.expect("response").into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body");
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    (parts, data)
}

fn preflight(addr: std::net::SocketAddr, path: &str, origin: &str) -> HttpResponse {
    request(
        addr,
        "OPTIONS",
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type,x-grpc-web,x-user-agent",
            ),
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_from_allowed_origins_only() {
    let rc = RecoveryCluster::start(RecoverySpec {
        nodes: 3,
        // A bank's own request header, allowed by the operator beside gRPC-Web's.
        config: vec![(
            "grpc_web".into(),
            "allowed_headers".into(),
            toml::Value::Array(vec![toml::Value::String("X-Bank-Trace".into())]),
        )],
        ..RecoverySpec::default()
    })
    .await;
    let (wallet, _prepared, _auth) = rc.backup("grpcweb", b"web wallet", 0).await;
    let bank = rc.node(0).addr;

    // An allowed origin's preflight: the method, the gRPC-Web headers, a cache lifetime, and the
    // grpc-status headers exposed.
    let pre = preflight(bank, "/dlocker.v1.Trustee/GetInfo", ALLOWED);
    assert_eq!(pre.status, 204, "{pre:?}");
    assert_eq!(pre.header("access-control-allow-origin"), Some(ALLOWED));
    let methods = pre.header("access-control-allow-methods").unwrap_or("");
    assert!(methods.contains("POST"), "{pre:?}");
    let allowed_headers = pre.header("access-control-allow-headers").unwrap_or("");
    for h in ["content-type", "x-grpc-web", "x-user-agent", "x-bank-trace"] {
        assert!(allowed_headers.contains(h), "{h} not allowed: {pre:?}");
    }
    assert_eq!(pre.header("access-control-max-age"), Some("7200"));
    assert!(
        pre.header("access-control-expose-headers")
            .unwrap_or("")
            .contains("grpc-status"),
        "{pre:?}"
    );

    // A gRPC-Web call over HTTP/1.1 from the allowed origin is served, readable by the page.
    let res = grpc_web_call(
        bank,
        "/dlocker.v1.Trustee/GetInfo",
        ALLOWED,
        &GetInfoRequest {},
    );
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.header("access-control-allow-origin"), Some(ALLOWED));
    let expose = res.header("access-control-expose-headers").unwrap_or("");
    assert!(
        expose.contains("grpc-status")
            && expose.contains("grpc-message")
            && expose.contains("dlocker-refusal"),
        "a page reads the refusal code too: {res:?}"
    );
    assert!(
        res.header("content-type")
            .unwrap_or("")
            .starts_with("application/grpc-web"),
        "{res:?}"
    );
    let (msgs, trailers) = frames(&res.body);
    assert!(trailers.contains("grpc-status:0"), "trailers: {trailers:?}");
    let info = NodeDescriptor::decode(msgs.first().expect("one message").as_slice())
        .expect("a NodeDescriptor");
    assert_eq!(info.node_id, rc.node(0).node_id);

    // The same over HTTP/2 (browsers speak it to a node behind TLS): served the same way, the
    // status in the gRPC-Web trailer frame; a disallowed origin refused before any handler.
    let (parts, body) = grpc_web_call_h2(
        bank,
        "/dlocker.v1.Trustee/GetInfo",
        ALLOWED,
        &GetInfoRequest {},
    )
    .await;
    assert_eq!(parts.version, http::Version::HTTP_2);
    assert_eq!(parts.status, 200, "{parts:?}");
    assert_eq!(
        parts
            .headers
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(ALLOWED.as_bytes()),
        "{parts:?}"
    );
    let (msgs, trailers) = frames(&body);
    assert!(trailers.contains("grpc-status:0"), "trailers: {trailers:?}");
    let info = NodeDescriptor::decode(msgs.first().expect("one message").as_slice())
        .expect("a NodeDescriptor over HTTP/2");
    assert_eq!(info.node_id, rc.node(0).node_id);
    let (parts, _) = grpc_web_call_h2(
        bank,
        "/dlocker.v1.Trustee/GetInfo",
        EVIL,
        &GetInfoRequest {},
    )
    .await;
    assert_eq!(
        parts.headers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"7"[..]),
        "{parts:?}"
    );
    assert!(parts.headers.get("access-control-allow-origin").is_none());

    // A disallowed origin: its preflight is refused with 403 and no CORS headers...
    let pre = preflight(bank, "/dlocker.v1.Recovery/OpenRecovery", EVIL);
    assert_eq!(pre.status, 403, "{pre:?}");
    assert!(pre.header("access-control-allow-origin").is_none());
    assert!(
        pre.text()
            .contains("origin https://evil.example is not allowed"),
        "{}",
        pre.text()
    );

    // ...and a call sent anyway (a client ignoring CORS) is refused before any handler runs:
    // opening a recovery of a real wallet gets PERMISSION_DENIED, at every node.
    let r = session_key().public_key();
    let open = OpenRecoveryRequest {
        wallet_id: wallet.clone(),
        session_key: encode_public_key(&r).to_vec(),
    };
    for i in 0..rc.len() {
        let res = grpc_web_call(
            rc.node(i).addr,
            "/dlocker.v1.Recovery/OpenRecovery",
            EVIL,
            &open,
        );
        assert_eq!(res.status, 200, "gRPC refusals are HTTP 200: {res:?}");
        assert_eq!(res.header("grpc-status"), Some("7"), "{res:?}");
        assert_eq!(
            res.header("dlocker-refusal"),
            Some("origin_not_allowed"),
            "{res:?}"
        );
        let message = res.header("grpc-message").unwrap_or("");
        assert!(
            message.contains("is%20not%20allowed") || message.contains("is not allowed"),
            "{res:?}"
        );
        assert!(res.header("access-control-allow-origin").is_none());
    }
    // Native gRPC with a forged Origin header is refused the same way.
    let mut req = tonic::Request::new(open.clone());
    req.metadata_mut()
        .insert("origin", EVIL.parse().expect("ascii"));
    let err = rc
        .recovery(1)
        .await
        .open_recovery(req)
        .await
        .expect_err("a disallowed origin is refused");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert_eq!(
        dlocker_proto::refusal::NodeRefusal::of_status(&err),
        Some(dlocker_proto::refusal::NodeRefusal::OriginNotAllowed),
        "{err:?}"
    );
    assert!(
        err.message()
            .contains("origin https://evil.example is not allowed"),
        "{err:?}"
    );

    // Nothing changed: no recovery session was opened at the bank (staff see none), and the
    // same request without an Origin (a native client) still opens one.
    let tf = rc.write_trustees();
    let key = rc.staff[0].key_file.to_str().expect("utf-8").to_owned();
    let list = || {
        let listed = rc.dlocker(&[
            "--json",
            "recoveries",
            "list",
            "--trustees",
            tf.to_str().expect("utf-8"),
            "--key",
            &key,
        ]);
        assert!(listed.status.success(), "{listed:?}");
        let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
        rows.as_array().map(Vec::len).unwrap_or(usize::MAX)
    };
    assert_eq!(list(), 0, "no recovery may exist");
    let opened = rc.open(0, &wallet, &r).await.expect("native OpenRecovery");
    assert!(!opened.session_id.is_empty());
    assert_eq!(
        list(),
        1,
        "the native open is listed (so the zero above means something)"
    );
}
