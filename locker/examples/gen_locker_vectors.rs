//! Regenerates `locker/test-vectors/*.json`.
//!
//! `cargo run -p dlocker-locker --example gen_locker_vectors`
//!
//! Keys come from fixed labels and ES256K signing is deterministic (RFC 6979), so the output is
//! reproducible byte for byte (the gzip inside an `encodedList` is only checked by decoding).
//! `tests/vectors.rs` runs every file in the directory. `interop-*.json` files are not written
//! here: they come from other JOSE implementations (see their `description`).

use dlocker_locker::b64;
use dlocker_locker::ids::DocUri;
use dlocker_locker::jwk::Jwk;
use dlocker_locker::jws::{self, CTY_VC, HeaderOut, TYP_VC};
use dlocker_locker::request::{self, LockerAction, params};
use dlocker_locker::status_list::{self, Bitstring, StatusEntry};
use dlocker_locker::vc::{self, Claims, Draft, Upload};
use k256::PublicKey;
use k256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::Path;

fn key(label: &str) -> SigningKey {
    let d: [u8; 32] = Sha256::digest(format!("dlocker locker test vector/{label}")).into();
    SigningKey::from_slice(&d).expect("valid with overwhelming probability")
}

fn pk(k: &SigningKey) -> PublicKey {
    PublicKey::from(k.verifying_key())
}

fn write(dir: &Path, name: &str, v: Value) {
    let text = serde_json::to_string_pretty(&v).expect("json") + "\n";
    std::fs::write(dir.join(format!("{name}.json")), text).expect("write");
}

const ISSUED_AT: u64 = 1_735_689_600; // 2025-01-01T00:00:00Z
const VERIFY_AT: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn draft() -> Draft {
    Draft {
        credential_id: "urn:dlocker:credential:0123456789abcdef0123456789abcdef".into(),
        issuer_id: "in.gov.transport".into(),
        issuer_name: "Transport Department".into(),
        holder_id: "wallet-vector-1".into(),
        holder_key: pk(&key("holder")),
        uri: DocUri::parse("in.gov.transport-DRVLC-5f1c0a9e3b7d4c2a8e6f1b0d9c7a5e3f").expect("uri"),
        status: StatusEntry {
            list_url: "https://locker.bank.example/status-lists/in.gov.transport/1".into(),
            index: 94_567,
        },
        valid_from: ISSUED_AT,
        valid_until: Some(2_051_222_400),
    }
}

fn claims() -> Claims {
    Claims::from_pairs([
        ("name", "Asha Rao"),
        ("licenceNumber", "KA01-2020-0001234"),
        ("dateOfBirth", "1990-04-12"),
        ("vehicleClasses", "LMV, MCWG"),
    ])
    .expect("claims")
}

fn draft_json(d: &Draft) -> Value {
    json!({
        "credential_id": d.credential_id,
        "issuer_id": d.issuer_id,
        "issuer_name": d.issuer_name,
        "holder_id": d.holder_id,
        "holder_public": hex::encode(dlocker_proto::keys::encode_public_key(&d.holder_key)),
        "document_uri": d.uri.to_string(),
        "status_list_credential": d.status.list_url,
        "status_list_index": d.status.index,
        "valid_from": d.valid_from,
        "valid_until": d.valid_until,
    })
}

/// Re-signs a payload edited as JSON (for the negative vectors).
fn resign(jws_in: &str, signer: &SigningKey, edit: impl Fn(&mut Value)) -> String {
    let mut p: Value = serde_json::from_slice(
        &b64::decode("p", jws_in.split('.').nth(1).expect("payload")).expect("b64"),
    )
    .expect("json");
    edit(&mut p);
    jws::sign(
        &HeaderOut {
            alg: jws::ALG,
            typ: TYP_VC,
            cty: CTY_VC,
            kid: "vector",
        },
        p.to_string().as_bytes(),
        signer,
    )
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    std::fs::create_dir_all(&dir).expect("dir");
    let issuer = key("issuer");
    let holder = key("holder");
    let d = draft();
    let c = claims();
    let cred = vc::issue(&d, &c, &issuer, ISSUED_AT);
    let base = |description: &str, expect: &str, kind: &str| {
        json!({
            "description": description,
            "expect": expect,
            "kind": kind,
            "issuer_secret": hex::encode(issuer.to_bytes()),
            "issuer_public": hex::encode(dlocker_proto::keys::encode_public_key(&pk(&issuer))),
            "issuer_jwk": Jwk::from_public_key(&pk(&issuer)).to_json(),
            "verify_at": VERIFY_AT,
        })
    };
    let with = |mut v: Value, extra: Value| {
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        v
    };

    write(
        &dir,
        "credential-valid",
        with(
            base(
                "a driving licence credential: VC 2.0 as VC-JOSE, ES256K over the ASCII signing input, low-S R||S; re-issuing the draft with the claims reproduces it byte for byte (RFC 6979)",
                "ok",
                "credential",
            ),
            json!({ "draft": draft_json(&d), "claims": c.as_map(), "issued_at": ISSUED_AT, "credential": cred }),
        ),
    );
    // One flipped character in each part.
    for (name, part) in [("header", 0usize), ("payload", 1), ("signature", 2)] {
        let mut parts: Vec<String> = cred.split('.').map(str::to_owned).collect();
        let p = &mut parts[part];
        let mid = p.len() / 2;
        let ch = p.as_bytes()[mid];
        p.replace_range(mid..=mid, if ch == b'A' { "B" } else { "A" });
        write(
            &dir,
            &format!("credential-flipped-{name}"),
            with(
                base(
                    &format!("credential-valid with one character of the {name} changed"),
                    "error",
                    "credential",
                ),
                json!({ "credential": parts.join(".") }),
            ),
        );
    }
    // The high-S twin of the valid signature.
    let (input, sig_b64) = cred.rsplit_once('.').expect("dot");
    let sig = Signature::from_slice(&b64::decode("s", sig_b64).expect("b64")).expect("sig");
    let high = Signature::from_scalars(
        sig.r().to_bytes(),
        (k256::Scalar::ZERO - *sig.s()).to_bytes(),
    )
    .expect("sig");
    write(
        &dir,
        "credential-high-s",
        with(
            base(
                "credential-valid with S replaced by n - S: mathematically valid ECDSA, refused (low-S only)",
                "error",
                "credential",
            ),
            json!({ "credential": format!("{input}.{}", b64::encode(&high.to_bytes())) }),
        ),
    );
    write(
        &dir,
        "credential-alg-none",
        with(
            base("an unsigned token (alg none)", "error", "credential"),
            json!({ "credential": format!("{}.{}.", b64::encode(br#"{"alg":"none","typ":"vc+jwt"}"#), cred.split('.').nth(1).expect("payload")) }),
        ),
    );
    write(
        &dir,
        "credential-iss-conflict",
        with(
            base(
                "validly signed, but the JWT iss claim names another issuer than the credential",
                "error",
                "credential",
            ),
            json!({ "credential": resign(&cred, &issuer, |p| p["iss"] = "urn:dlocker:issuer:other.issuer".into()) }),
        ),
    );
    write(
        &dir,
        "credential-wrong-issuer-key",
        with(
            base(
                "credential-valid checked against the holder's key instead of the issuer's",
                "error",
                "credential",
            ),
            json!({ "credential": cred, "verify_with": hex::encode(dlocker_proto::keys::encode_public_key(&pk(&holder))) }),
        ),
    );
    write(
        &dir,
        "credential-expired",
        with(
            base(
                "credential-valid checked after its validUntil",
                "error",
                "credential",
            ),
            json!({ "credential": cred, "verify_at": 2_051_222_400u64 + 3600 }),
        ),
    );

    let uri = DocUri::parse("self-PHOTO-0f1e2d3c4b5a69788796a5b4c3d2e1f0").expect("uri");
    let up = Upload {
        name: "passport-photo.png".into(),
        media_type: "image/png".into(),
        data: b"\x89PNG\r\n\x1a\n".to_vec(),
    };
    let selfie = vc::self_attest("wallet-vector-1", &uri, &up, &holder, ISSUED_AT)
        // The credential id is random in self_attest; pin it for reproducibility.
        ;
    let selfie = resign_self(&selfie, &holder);
    write(
        &dir,
        "self-attested-valid",
        json!({
            "description": "a self-attested upload: issued and signed by the holder's wallet key (the key in cnf), no status entry",
            "expect": "ok",
            "kind": "self-attested",
            "holder_public": hex::encode(dlocker_proto::keys::encode_public_key(&pk(&holder))),
            "credential": selfie,
            "verify_at": VERIFY_AT,
            "data": hex::encode(&up.data),
        }),
    );

    // Status lists.
    let locker = key("locker");
    let mut bits = Bitstring::new();
    let set = [0u32, 7, 94_567, 131_071];
    for i in set {
        bits.set(i);
    }
    let url = "https://locker.bank.example/status-lists/in.gov.transport/1";
    let list = status_list::issue_list(
        url,
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        &bits,
        &locker,
        ISSUED_AT,
        300,
    );
    write(
        &dir,
        "status-list-valid",
        json!({
            "description": "a BitstringStatusListCredential (131,072 entries, bits 0, 7, 94567 and 131071 set; index 0 is the MSB of the first byte) signed by the locker",
            "expect": "ok",
            "kind": "status-list",
            "locker_public": hex::encode(dlocker_proto::keys::encode_public_key(&pk(&locker))),
            "credential": list,
            "verify_at": ISSUED_AT + 10,
            "set_indices": set,
            "entries": 131_072,
        }),
    );
    write(
        &dir,
        "status-list-expired",
        json!({
            "description": "status-list-valid checked after its validUntil (+ skew)",
            "expect": "error",
            "kind": "status-list",
            "locker_public": hex::encode(dlocker_proto::keys::encode_public_key(&pk(&locker))),
            "credential": list,
            "verify_at": ISSUED_AT + 300 + 3600,
            "set_indices": set,
            "entries": 131_072,
        }),
    );
    write(
        &dir,
        "encoded-list-valid",
        json!({
            "description": "an encodedList alone: multibase 'u' + base64url(gzip(16 KiB))",
            "expect": "ok",
            "kind": "encoded-list",
            "encoded_list": bits.encode(),
            "set_indices": set,
        }),
    );
    write(
        &dir,
        "encoded-list-no-multibase-prefix",
        json!({
            "description": "the same list without the multibase 'u' prefix",
            "expect": "error",
            "kind": "encoded-list",
            "encoded_list": bits.encode()[1..],
            "set_indices": set,
        }),
    );
    let mut short = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut short, &[0u8; 1024]).expect("gzip");
    write(
        &dir,
        "encoded-list-too-short",
        json!({
            "description": "a list of 8,192 entries: below the 131,072 minimum",
            "expect": "error",
            "kind": "encoded-list",
            "encoded_list": format!("u{}", b64::encode(&short.finish().expect("gzip"))),
            "set_indices": [],
        }),
    );

    // JWK and thumbprint.
    let jwk = Jwk::from_public_key(&pk(&issuer));
    write(
        &dir,
        "jwk-thumbprint",
        json!({
            "description": "a secp256k1 JWK and its RFC 7638 thumbprint (SHA-256 over {\"crv\",\"kty\",\"x\",\"y\"} in that order)",
            "expect": "ok",
            "kind": "jwk",
            "public": hex::encode(dlocker_proto::keys::encode_public_key(&pk(&issuer))),
            "jwk": jwk.to_json(),
            "thumbprint": jwk.thumbprint(),
        }),
    );

    // A signed locker request.
    let uris = vec!["in.gov.transport-DRVLC-5f1c0a9e3b7d4c2a8e6f1b0d9c7a5e3f".to_owned()];
    let p = params::grant_consent(
        "wallet-vector-1",
        "acme.employer",
        &uris,
        "employment verification",
        VERIFY_AT,
    );
    let req = request::sign_at(
        &holder,
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        LockerAction::GrantConsent,
        "wallet-vector-1",
        p,
        ISSUED_AT,
        [9; 16],
    );
    let v = json!({
        "description": "a holder's GrantConsent request (statement kind 0x40) over the canonical parameter digest",
        "expect": "ok",
        "kind": "locker-request",
        "signer_secret": hex::encode(holder.to_bytes()),
        "locker": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "holder_id": "wallet-vector-1",
        "requester_id": "acme.employer",
        "uris": uris,
        "purpose": "employment verification",
        "not_after": VERIFY_AT,
        "timestamp": ISSUED_AT,
        "params": hex::encode(p),
        "request": hex::encode(&req),
    });
    write(&dir, "locker-request-grant-consent", v.clone());
    let mut tampered = v;
    tampered["description"] = "the same request checked against a different purpose".into();
    tampered["expect"] = "error".into();
    tampered["purpose"] = "loan application".into();
    write(&dir, "locker-request-changed-purpose", tampered);
    println!("wrote {}", dir.display());
}

/// A self-attested credential with a fixed id (re-signed by the holder).
fn resign_self(c: &str, holder: &SigningKey) -> String {
    let mut p: Value = serde_json::from_slice(
        &b64::decode("p", c.split('.').nth(1).expect("payload")).expect("b64"),
    )
    .expect("json");
    let id = "urn:dlocker:credential:00112233445566778899aabbccddeeff";
    p["id"] = id.into();
    p["jti"] = id.into();
    let kid = vc::key_id(
        &dlocker_locker::ids::holder_urn("wallet-vector-1"),
        &pk(holder),
    );
    jws::sign(
        &HeaderOut {
            alg: jws::ALG,
            typ: TYP_VC,
            cty: CTY_VC,
            kid: &kid,
        },
        p.to_string().as_bytes(),
        holder,
    )
}
