//! Compact JWS (ES256K) and secp256k1 JWKs as the locker and any verifier parse them: strict
//! structure and header, low-S signatures; a JWK that parses gives a key whose JWK has the same
//! thumbprint; strict base64url has one encoding. Mode byte: 0 JWS, 1 JWK, 2 sign the rest as
//! a payload and check that it parses and verifies to the same bytes.
#![no_main]

use dlocker_fuzz::{OTHER_PUBLIC, SIGNER, SIGNER_PUBLIC};
use dlocker_locker::jwk::Jwk;
use dlocker_locker::{b64, json, jws};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(p) = jws::parse(s) {
                let _ = (p.typ(), p.header(), p.unverified_payload());
                if p.verify(&SIGNER_PUBLIC).is_ok() {
                    assert!(p.verify(&OTHER_PUBLIC).is_err());
                }
            }
            if let Ok(b) = b64::decode("x", s) {
                assert_eq!(b64::encode(&b), s, "base64url has one encoding");
            }
        }
        1 => {
            let _ = json::parse_object("x", rest);
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(j) = Jwk::from_json_str(s) {
                let pk = j.to_public_key().ok();
                assert!(pk.is_some(), "a parsed JWK is a key");
                if let Some(pk) = pk {
                    assert_eq!(Jwk::from_public_key(&pk).thumbprint(), j.thumbprint());
                    let again = Jwk::from_json_str(&j.to_json_string()).ok();
                    assert_eq!(again.map(|a| a.thumbprint()), Some(j.thumbprint()));
                }
            }
        }
        _ => {
            let kid = "urn:dlocker:issuer:fuzz#k";
            let header = jws::HeaderOut {
                alg: jws::ALG,
                typ: jws::TYP_VC,
                cty: jws::CTY_VC,
                kid,
            };
            let compact = jws::sign(&header, rest, &SIGNER);
            if rest.is_empty() || compact.len() > jws::MAX_JWS_LEN {
                return;
            }
            let p = jws::parse(&compact);
            assert!(p.is_ok(), "a JWS made here does not parse: {:?}", p.err());
            if let Ok(p) = p {
                assert_eq!(p.verify(&SIGNER_PUBLIC).ok(), Some(rest));
                assert!(p.verify(&OTHER_PUBLIC).is_err());
            }
        }
    }
});
