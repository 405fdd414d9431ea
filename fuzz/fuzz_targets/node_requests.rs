//! The trustee node's gRPC edge: protobuf request messages decoded and converted to domain
//! types with the node's own `TryFrom` impls (wallet ids, nonces, manifest hashes, epoch
//! actions checked there), the step every handler runs before touching state. A refused
//! request is an error, never a panic. Needs the `node` feature.
#![no_main]

use dlocker_proto::pb;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use trustee_node::enrollment::BeginEnrollment;
use trustee_node::epochs::{AbandonEpoch, CommitEpoch, RetireWallet};
use trustee_node::epochs::epochs_service::parse_action;
use trustee_node::enrollment::trustee_service::ProveShareParams;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, msg)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => {
            if let Ok(r) = pb::BeginEnrollmentRequest::decode(msg) {
                let _ = BeginEnrollment::try_from(r);
            }
        }
        1 => {
            if let Ok(r) = pb::ProveShareRequest::decode(msg) {
                let _ = ProveShareParams::try_from(r);
            }
        }
        2 => {
            if let Ok(r) = pb::CommitEpochRequest::decode(msg) {
                let _ = CommitEpoch::try_from(r);
            }
        }
        3 => {
            if let Ok(r) = pb::AbandonEpochRequest::decode(msg) {
                let _ = AbandonEpoch::try_from(r);
            }
        }
        4 => {
            if let Ok(r) = pb::RetireWalletRequest::decode(msg) {
                let _ = RetireWallet::try_from(r);
            }
        }
        _ => {
            let code = i32::from_be_bytes(
                msg.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or([0; 4]),
            );
            let _ = parse_action(code);
        }
    }
});
