//! Document drafts from the wire (`DocumentDraft`, sent by the locker to pull issuers and
//! returned in issuer tasks): protobuf decoding, then `wire::draft_from_pb` checks every field.
//! An accepted draft converts back to the same message.
#![no_main]

use dlocker_locker::wire::{draft_from_pb, draft_to_pb};
use dlocker_proto::pb::DocumentDraft;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = DocumentDraft::decode(data) else {
        return;
    };
    if let Ok(d) = draft_from_pb(&p) {
        let back = draft_to_pb(&d, p.expires_at);
        assert_eq!(back, p, "an accepted draft converts back to itself");
    }
});
