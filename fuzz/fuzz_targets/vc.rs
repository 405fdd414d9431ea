//! Document credentials (VC-JOSE): `vc::parse` and `vc::verify` with the vector issuer's key at
//! the vector's time, on the raw input (mode 0) and on a fuzzed payload signed here with the
//! issuer's key (mode 1, so everything after the signature is reached). A credential that
//! verifies matches what it claims (issuer, time window) and never verifies under another key.
#![no_main]

use dlocker_fuzz::{CREDENTIAL, OTHER_PUBLIC, u64_field, vector_key, vector_secret};
use dlocker_locker::{jws, vc};
use k256::ecdsa::SigningKey;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static ISSUER: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::from(vector_secret(&CREDENTIAL, "issuer_secret")));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let issuer_key = vector_key(&CREDENTIAL, "issuer_public");
    let now = u64_field(&CREDENTIAL, "verify_at");
    let compact = if mode & 1 == 0 {
        let Ok(s) = std::str::from_utf8(rest) else {
            return;
        };
        s.to_owned()
    } else {
        if rest.is_empty() {
            return;
        }
        let kid = vc::key_id("urn:dlocker:issuer:in.gov.transport", &issuer_key);
        let header = jws::HeaderOut {
            alg: jws::ALG,
            typ: jws::TYP_VC,
            cty: jws::CTY_VC,
            kid: &kid,
        };
        jws::sign(&header, rest, &ISSUER)
    };
    let parsed = vc::parse(&compact).map(|(_, c)| c);
    if let Ok(c) = vc::verify(&compact, &issuer_key, now, 60) {
        assert!(parsed.is_ok(), "verified but does not parse");
        assert!(c.check_time(now, 60).is_ok());
        let _ = (c.issuer_id(), c.is_self_attested());
        assert!(vc::verify(&compact, &OTHER_PUBLIC, now, 60).is_err());
    }
});
