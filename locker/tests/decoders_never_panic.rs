//! Property tests: no decoder panics on random input or on a valid input with random bytes
//! changed, and a changed credential never verifies.

use dlocker_locker::status_list::Bitstring;
use dlocker_locker::{jws, request, status_list, vc};
use k256::PublicKey;
use proptest::prelude::*;
use serde_json::Value;

fn vector(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test-vectors")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).expect("vector")).expect("json")
}

fn issuer_key() -> PublicKey {
    let v = vector("credential-valid.json");
    dlocker_proto::keys::public_key_from_hex(v["issuer_public"].as_str().expect("key"))
        .expect("key")
}

fn credential() -> String {
    vector("credential-valid.json")["credential"]
        .as_str()
        .expect("credential")
        .to_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_strings(s in "\\PC{0,400}") {
        let _ = jws::parse(&s);
        let _ = vc::parse(&s);
        let _ = Bitstring::decode(&s);
        let _ = dlocker_locker::jwk::Jwk::from_json_str(&s);
        let _ = dlocker_locker::ids::DocUri::parse(&s);
        let _ = dlocker_locker::datetime::parse("t", &s);
    }

    #[test]
    fn random_bytes(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = request::check(&b, "l", request::LockerAction::FetchDocument, "p", [0; 32]);
        let _ = dlocker_locker::json::parse_object("x", &b);
    }

    #[test]
    fn mutated_credential_never_verifies(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let good = credential();
        let mut b = good.clone().into_bytes();
        for (i, x) in &edits {
            let i = i % b.len();
            b[i] = *x;
        }
        if let Ok(t) = String::from_utf8(b)
            && t != good
        {
            prop_assert!(vc::verify(&t, &issuer_key(), 1_767_225_600, 60).is_err());
        }
    }

    #[test]
    fn mutated_status_list_never_panics(i in any::<usize>(), x in any::<u8>()) {
        let v = vector("status-list-valid.json");
        let mut b = v["credential"].as_str().expect("list").as_bytes().to_vec();
        let n = b.len();
        b[i % n] = x;
        if let Ok(t) = String::from_utf8(b) {
            let key = dlocker_proto::keys::public_key_from_hex(v["locker_public"].as_str().expect("k")).expect("k");
            let _ = status_list::verify_list(&t, &key, 1_735_689_610, 60);
        }
    }
}
