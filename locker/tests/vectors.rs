//! Runs every file in `test-vectors/` (not a hand-picked list) and fails on a file it cannot
//! classify, so a vector can never be silently skipped.

use dlocker_locker::jwk::Jwk;
use dlocker_locker::request::{self, LockerAction, params};
use dlocker_locker::status_list::{self, Bitstring, StatusEntry};
use dlocker_locker::vc::{self, Claims, Draft};
use dlocker_locker::{b64, ids::DocUri};
use dlocker_proto::keys::decode_public_key;
use k256::ecdsa::SigningKey;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("missing {field}"))
}

fn n(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("missing {field}"))
}

fn h(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(s(v, field)).expect("hex")
}

fn indices(v: &Value) -> Vec<u32> {
    v["set_indices"]
        .as_array()
        .expect("set_indices")
        .iter()
        .map(|x| x.as_u64().expect("index") as u32)
        .collect()
}

fn check_bits(bits: &Bitstring, v: &Value) {
    let want = indices(v);
    assert_eq!(bits.count_set() as usize, want.len());
    for i in want {
        assert_eq!(bits.get(i), Some(true), "bit {i}");
    }
}

fn draft_of(d: &Value) -> Draft {
    Draft {
        credential_id: s(d, "credential_id").to_owned(),
        issuer_id: s(d, "issuer_id").to_owned(),
        issuer_name: s(d, "issuer_name").to_owned(),
        holder_id: s(d, "holder_id").to_owned(),
        holder_key: decode_public_key(&h(d, "holder_public")).expect("key"),
        uri: DocUri::parse(s(d, "document_uri")).expect("uri"),
        status: StatusEntry {
            list_url: s(d, "status_list_credential").to_owned(),
            index: n(d, "status_list_index") as u32,
        },
        valid_from: n(d, "valid_from"),
        valid_until: d["valid_until"].as_u64(),
    }
}

fn run(v: &Value) -> Result<(), String> {
    match s(v, "kind") {
        "credential" => {
            let issuer = decode_public_key(&h(v, "issuer_public")).expect("key");
            // The JWK in the file names the same key (what a JOSE library would be given).
            let jwk = Jwk::from_json(v["issuer_jwk"].as_object().expect("jwk")).expect("jwk");
            assert_eq!(jwk.to_public_key().expect("key"), issuer);
            let with = match v.get("verify_with") {
                Some(_) => decode_public_key(&h(v, "verify_with")).expect("key"),
                None => issuer,
            };
            let c = vc::verify(s(v, "credential"), &with, n(v, "verify_at"), 60)
                .map_err(|e| e.to_string())?;
            if v.get("draft").is_some() {
                let d = draft_of(&v["draft"]);
                c.matches(&d).map_err(|e| e.to_string())?;
                let claims: BTreeMap<String, String> =
                    serde_json::from_value(v["claims"].clone()).expect("claims");
                let claims = Claims::new(claims).expect("claims");
                assert_eq!(c.claims, claims);
                // Deterministic ES256K (RFC 6979): re-issuing gives the same bytes.
                let key = SigningKey::from_slice(&h(v, "issuer_secret")).expect("key");
                assert_eq!(
                    vc::issue(&d, &claims, &key, n(v, "issued_at")),
                    s(v, "credential")
                );
            }
            Ok(())
        }
        "self-attested" => {
            let holder = decode_public_key(&h(v, "holder_public")).expect("key");
            let c = vc::verify(s(v, "credential"), &holder, n(v, "verify_at"), 60)
                .map_err(|e| e.to_string())?;
            assert!(c.is_self_attested() && c.status.is_none());
            assert_eq!(
                c.upload.as_ref().map(|u| u.data.clone()),
                Some(h(v, "data"))
            );
            Ok(())
        }
        "status-list" => {
            let locker = decode_public_key(&h(v, "locker_public")).expect("key");
            let l = status_list::verify_list(s(v, "credential"), &locker, n(v, "verify_at"), 60)
                .map_err(|e| e.to_string())?;
            assert_eq!(u64::from(l.bits.len()), n(v, "entries"));
            check_bits(&l.bits, v);
            Ok(())
        }
        "encoded-list" => {
            let bits = Bitstring::decode(s(v, "encoded_list")).map_err(|e| e.to_string())?;
            check_bits(&bits, v);
            // Round trip through this encoder (its gzip bytes may differ from the file's).
            assert_eq!(Bitstring::decode(&bits.encode()).expect("round trip"), bits);
            Ok(())
        }
        "jwk" => {
            let jwk =
                Jwk::from_json(v["jwk"].as_object().expect("jwk")).map_err(|e| e.to_string())?;
            assert_eq!(
                jwk.to_public_key().expect("key"),
                decode_public_key(&h(v, "public")).expect("key")
            );
            assert_eq!(jwk.thumbprint(), s(v, "thumbprint"));
            Ok(())
        }
        "locker-request" => {
            let uris: Vec<String> = serde_json::from_value(v["uris"].clone()).expect("uris");
            let p = params::grant_consent(
                s(v, "holder_id"),
                s(v, "requester_id"),
                &uris,
                s(v, "purpose"),
                n(v, "not_after"),
            );
            let c = request::check(
                &h(v, "request"),
                s(v, "locker"),
                LockerAction::GrantConsent,
                s(v, "holder_id"),
                p,
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(c.request.params.to_vec(), h(v, "params"));
            let key = SigningKey::from_slice(&h(v, "signer_secret")).expect("key");
            let again = request::sign_at(
                &key,
                s(v, "locker"),
                LockerAction::GrantConsent,
                s(v, "holder_id"),
                p,
                n(v, "timestamp"),
                c.request.nonce,
            );
            assert_eq!(again, h(v, "request"));
            Ok(())
        }
        "interop-jws" => {
            // A JWS made by another JOSE implementation: verified with nothing but its parts.
            let jwk = Jwk::from_json(v["jwk"].as_object().expect("jwk")).expect("jwk");
            let p = dlocker_locker::jws::parse(s(v, "jws")).map_err(|e| e.to_string())?;
            let payload = p
                .verify(&jwk.to_public_key().expect("key"))
                .map_err(|e| e.to_string())?;
            assert_eq!(
                payload,
                b64::decode("payload", s(v, "jws").split('.').nth(1).expect("payload"))
                    .expect("b64")
            );
            Ok(())
        }
        other => panic!("unknown vector kind {other:?}"),
    }
}

#[test]
fn every_vector_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("test-vectors dir") {
        let path = entry.expect("entry").path();
        let name = path.display().to_string();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            // Helper scripts (the interop generator) live beside the vectors.
            assert!(
                name.ends_with(".py") || name.ends_with(".md"),
                "stray file {name}"
            );
            continue;
        }
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let result = run(&v);
        match s(&v, "expect") {
            "ok" => assert!(result.is_ok(), "{name}: expected ok, got {result:?}"),
            "error" => assert!(result.is_err(), "{name}: expected an error"),
            other => panic!("{name}: unknown expect {other:?}"),
        }
        count += 1;
    }
    assert!(count >= 18, "only {count} vectors found");
}
