//! Bitstring Status Lists: `Bitstring::decode` (base64url + gzip, bounded) and
//! `status_list::verify_list` on the raw input (mode 0) and on a fuzzed credential payload
//! signed here (mode 1, so the payload checks and the list decoding are reached). A decoded
//! list re-encodes to a list with the same bits.
#![no_main]

use dlocker_fuzz::{SIGNER, SIGNER_PUBLIC, STATUS_LIST, u64_field, vector_key};
use dlocker_locker::status_list::{self, Bitstring, StatusEntry};
use dlocker_locker::{ids, json, jws};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = u64_field(&STATUS_LIST, "verify_at");
    let (compact, key) = match mode % 3 {
        0 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            // A list whose JWS parses with a payload that is not a JSON object is refused
            // after the signature check whatever the signature: skip that check's cost.
            if let Ok(p) = jws::parse(s)
                && json::parse_object("payload", p.unverified_payload()).is_err()
            {
                return;
            }
            (s.to_owned(), vector_key(&STATUS_LIST, "locker_public"))
        }
        1 => {
            // Only a JSON-object payload is signed (anything else is refused whatever its
            // signature; signing and verifying are most of an execution's cost).
            if json::parse_object("payload", rest).is_err() {
                return;
            }
            let kid = format!("{}#k", ids::locker_urn("fuzz"));
            let header = jws::HeaderOut {
                alg: jws::ALG,
                typ: jws::TYP_VC,
                cty: jws::CTY_VC,
                kid: &kid,
            };
            (jws::sign(&header, rest, &SIGNER), *SIGNER_PUBLIC)
        }
        _ => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(b) = Bitstring::decode(s) {
                assert!(b.len() >= status_list::LIST_ENTRIES);
                let again = Bitstring::decode(&b.encode()).ok();
                assert_eq!(again.as_ref(), Some(&b), "re-encoded list differs");
                let _ = (b.count_set(), b.get(b.len() - 1), b.get(b.len()));
            }
            let _ = status_list::parse_list_url(s);
            return;
        }
    };
    if let Ok(list) = status_list::verify_list(&compact, &key, now, 60) {
        assert!(list.valid_from <= now.saturating_add(60));
        for index in [0, 7, list.bits.len() - 1, list.bits.len(), u32::MAX] {
            let entry = StatusEntry {
                list_url: list.url.clone(),
                index,
            };
            assert_eq!(list.is_revoked(&entry).is_ok(), index < list.bits.len());
        }
        let _ = status_list::parse_list_url(&list.url);
    }
});
