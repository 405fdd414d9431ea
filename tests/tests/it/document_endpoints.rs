//! The document endpoints as a verifier that has never heard of dLocker sees them: a plain HTTP
//! GET of the URL a credential names, a JWKS from the same host, an ES256K JWS check written
//! here from RFC 7515/7518 (no dLocker code), and the W3C Bitstring Status List decoded by hand.
//! A re-issued (revoked) credential's bit is set; another holder's is not.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use dlocker_integration_tests::http::{HttpResponse, get};
use dlocker_integration_tests::locker::{BANK_ISSUER, ID_CARD, LockerCluster, id_card_claims};
use dlocker_sdk::documents::{
    KeyApproval, PrincipalKey, close_key_approval, reissue, request_key_approval,
};
use k256::ecdsa::signature::Verifier as _;
use serde_json::Value;
use std::io::Read as _;
use std::net::SocketAddr;
use std::time::Duration;

/// `http://HOST:PORT/path` → (address, path).
fn split_url(url: &str) -> (SocketAddr, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http URL: {url}"));
    let (host, path) = rest.split_once('/').expect("a path");
    (host.parse().expect("an IP:port host"), format!("/{path}"))
}

fn json_part(part: &str) -> Value {
    serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("JSON")
}

/// RFC 7515 compact JWS, alg ES256K (RFC 8812): the key is the JWK in `jwks` whose `kid`
/// equals the header's. Returns the payload, or why it does not verify.
fn verify_jws(jws: &str, jwks: &Value) -> Result<Value, String> {
    let parts: Vec<&str> = jws.split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err("not three parts".into());
    };
    let header = json_part(h);
    if header["alg"] != "ES256K" {
        return Err(format!("alg {}", header["alg"]));
    }
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid)
        .ok_or_else(|| format!("no key {kid}"))?;
    if jwk["kty"] != "EC" || jwk["crv"] != "secp256k1" {
        return Err(format!("not a secp256k1 key: {jwk}"));
    }
    let coord = |c: &str| -> Vec<u8> {
        B64.decode(jwk[c].as_str().unwrap_or(""))
            .unwrap_or_default()
    };
    let mut sec1 = vec![4u8];
    sec1.extend(coord("x"));
    sec1.extend(coord("y"));
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|e| e.to_string())?;
    // JWS ECDSA signatures are R ‖ S, 32 bytes each, over SHA-256 of `header.payload`.
    let sig = k256::ecdsa::Signature::from_slice(&B64.decode(s).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    key.verify(format!("{h}.{p}").as_bytes(), &sig)
        .map_err(|_| "signature does not verify".to_owned())?;
    Ok(json_part(p))
}

/// W3C Bitstring Status List: `encodedList` is multibase `u` + base64url(GZIP(bits)); index 0
/// is the left-most (most significant) bit of the first byte.
fn bit(encoded_list: &str, index: usize) -> bool {
    let gz = B64
        .decode(encoded_list.strip_prefix('u').expect("multibase u"))
        .expect("base64url");
    let mut bits = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut bits)
        .expect("gzip");
    assert!(bits.len() >= 16 * 1024, "at least 131,072 entries");
    bits[index / 8] & (0x80 >> (index % 8)) != 0
}

fn status_entry(credential_jws: &str) -> (String, usize) {
    let payload = json_part(credential_jws.split('.').nth(1).expect("payload"));
    let st = &payload["credentialStatus"];
    assert_eq!(st["type"], "BitstringStatusListEntry");
    assert_eq!(st["statusPurpose"], "revocation");
    (
        st["statusListCredential"].as_str().expect("URL").to_owned(),
        st["statusListIndex"]
            .as_str()
            .expect("decimal string")
            .parse()
            .expect("index"),
    )
}

fn json_body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

async fn approve_key(c: &LockerCluster, wallet: &str, new_key: &PrincipalKey) -> KeyApproval {
    let staff = c.staff_client();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let approving = tokio::spawn(async move {
        let s = rx.recv().await.expect("bank session id");
        staff.approve(&s).await.expect("staff approve")
    });
    let a = request_key_approval(
        c.set().bank(),
        wallet,
        &new_key.public_key(),
        Duration::from_millis(100),
        Duration::from_secs(60),
        &|s| {
            let _ = tx.send(s.to_owned());
        },
    )
    .await
    .expect("bank approval for the new key");
    approving.await.expect("staff task");
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_verifier_checks_status_lists_and_keys_over_http() {
    let c = LockerCluster::start().await;
    let hosted = c.hosted_issuer(BANK_ISSUER, &[ID_CARD]).await;
    let mut revoked_w = c.wallet("revoked").await;
    let kept_w = c.wallet("kept").await;
    let revoked = hosted
        .issue(&revoked_w.id, ID_CARD, &id_card_claims("Asha Rao"), 0)
        .await
        .expect("issue");
    let kept = hosted
        .issue(&kept_w.id, ID_CARD, &id_card_claims("Ravi Iyer"), 0)
        .await
        .expect("issue");

    // Re-issue to a new wallet key revokes the old credential.
    let new_key = PrincipalKey::generate();
    let approval = approve_key(&c, &revoked_w.id, &new_key).await;
    reissue(
        &c.locker(),
        &revoked_w.id,
        &new_key,
        &approval.approval,
        &mut revoked_w.auth,
        false,
    )
    .await
    .expect("reissue");
    close_key_approval(c.set().bank(), &approval, &mut revoked_w.auth)
        .await
        .expect("close");

    let (url, revoked_index) = status_entry(&revoked.credential_jws);
    let (kept_url, kept_index) = status_entry(&kept.credential_jws);
    assert_eq!(url, kept_url, "one list per issuer");
    let (addr, path) = split_url(&url);
    assert_eq!(
        format!("http://{addr}"),
        c.set().bank().endpoint.trim_end_matches('/'),
        "the URL names the locker node's own endpoint"
    );

    let r = get(addr, &path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/vc+jwt"));
    let jws = r.text();
    let node_jwks = get(addr, "/.well-known/jwks.json");
    assert_eq!(node_jwks.status, 200);
    assert_eq!(
        node_jwks.header("content-type"),
        Some("application/jwk-set+json")
    );
    let node_jwks = json_body(&node_jwks);
    let list = verify_jws(jws.trim(), &node_jwks).expect("the status list verifies");
    assert_eq!(list["id"], url.as_str());
    assert!(
        list["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "BitstringStatusListCredential"))
    );
    // Cacheable for exactly its validity.
    let validity = list["exp"].as_u64().expect("exp") - list["iat"].as_u64().expect("iat");
    assert_eq!(
        r.header("cache-control"),
        Some(format!("public, max-age={validity}").as_str())
    );
    let encoded = list["credentialSubject"]["encodedList"]
        .as_str()
        .expect("encodedList");
    assert!(
        bit(encoded, revoked_index),
        "the revoked credential's bit is set"
    );
    assert!(
        !bit(encoded, kept_index),
        "the kept credential's bit is not"
    );

    // A changed byte in the payload fails the same check (the check is not vacuous).
    let parts: Vec<&str> = jws.trim().split('.').collect();
    let mut payload = B64.decode(parts[1]).expect("payload");
    let i = payload.len() / 2;
    payload[i] ^= 1;
    let forged = format!("{}.{}.{}", parts[0], B64.encode(&payload), parts[2]);
    assert!(verify_jws(&forged, &node_jwks).is_err());

    // The issuer's key, as a JWKS, verifies the credential it signed.
    let issuer_jwks = get(addr, &format!("/issuers/{BANK_ISSUER}/jwks.json"));
    assert_eq!(issuer_jwks.status, 200, "{}", issuer_jwks.text());
    let issuer_jwks = json_body(&issuer_jwks);
    let vc = verify_jws(&kept.credential_jws, &issuer_jwks).expect("the credential verifies");
    assert_eq!(vc["credentialSubject"]["name"], "Ravi Iyer", "{vc}");
    // ... and not the status list (another key).
    assert!(verify_jws(jws.trim(), &issuer_jwks).is_err());

    // Unknown things are plain 404s; gRPC on the same port is unaffected.
    for p in [
        "/status-lists/no.such.issuer/1",
        "/status-lists/example.bank/999",
        "/status-lists/example.bank/x",
        "/issuers/no.such.issuer/jwks.json",
        "/anything",
    ] {
        assert_eq!(get(addr, p).status, 404, "{p}");
    }
    c.locker().info().await.expect("gRPC still answers");
}
