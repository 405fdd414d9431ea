//! The locker's identifier and time parsers, fed from request fields: document URIs
//! (one string form per URI), RFC 3339 date-times, issuer/requester/holder/credential ids, URNs,
//! status list URLs, and refusal codes read back from status metadata.
#![no_main]

use dlocker_locker::refusal::RefusalCode;
use dlocker_locker::{datetime, ids, status_list};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = ids::DocUri::parse(s) {
        assert_eq!(u.to_string(), s, "a document URI has one form");
        assert_eq!(u.is_self_attested(), u.issuer() == ids::SELF_ISSUER);
        let _ = (u.doc_type(), u.doc_id());
    }
    if let Ok(t) = datetime::parse("t", s) {
        // What a node writes back parses to the same second.
        assert_eq!(datetime::parse("t", &datetime::format(t)).ok(), Some(t));
    }
    let _ = ids::check_org_id("x", s);
    let _ = ids::check_doc_type("x", s);
    let _ = ids::check_holder_id("x", s);
    let _ = ids::check_credential_id("x", s);
    let _ = ids::from_urn("x", s, "urn:dlocker:issuer:", ids::check_org_id);
    let _ = status_list::parse_list_url(s);
    if let Some(c) = RefusalCode::parse(s) {
        assert_eq!(c.as_str(), s);
    }
});
