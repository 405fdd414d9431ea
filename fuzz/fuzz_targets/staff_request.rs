//! Staff requests as the bank node checks them (`StaffGate::check`: signature by a configured
//! staff key, role for the action, this node, clock skew, single-use nonce), on the raw input
//! (mode bit 0 clear) and on a fuzzed body signed here with the staff key (set), for the action
//! the mode selects. An accepted request names this node and the action, is fresh, and is
//! refused the second time. Needs the `node` feature (the nonce store is a temporary database).
#![no_main]

use dlocker_fuzz::{SIGNER_PUBLIC, signed_statement, statement_frame};
use dlocker_proto::codec::Reader;
use dlocker_proto::statement::{StaffAction, StaffRequest, StatementBody};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use trustee_node::staff::auth::{StaffAuthError, StaffGate, StaffMember, StaffRole};

const NODE_ID: &str = "abababababababababababababababab";
const NOW: u64 = 1_767_225_600;
const SKEW: u64 = 300;

static GATE: LazyLock<Option<StaffGate>> = LazyLock::new(|| {
    let db = trustee_node::db::Database::open_temporary().ok()?;
    let staff = vec![StaffMember {
        id: "alice".into(),
        public_key: *SIGNER_PUBLIC,
        roles: vec![StaffRole::Approver, StaffRole::Operator],
    }];
    StaffGate::new(&db, staff, NODE_ID.into(), SKEW).ok()
});

const ACTIONS: [StaffAction; 8] = [
    StaffAction::ListRecoveries,
    StaffAction::ApproveRecovery,
    StaffAction::CancelRecovery,
    StaffAction::ListRegistry,
    StaffAction::ApproveIssuer,
    StaffAction::SuspendIssuer,
    StaffAction::ApproveRequester,
    StaffAction::SuspendRequester,
];

fuzz_target!(|data: &[u8]| {
    let Some(gate) = GATE.as_ref() else {
        return;
    };
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let action = ACTIONS[usize::from(mode >> 1) % ACTIONS.len()];
    // Every input's body goes through the body decoder. Signing and verifying (most of an
    // execution's cost) happen only where the outcome can depend on them: a body that decodes
    // and is for this node, this action and inside the skew. Anything else is refused whatever
    // its signature (the gate checks those after the signature); raw signature verification
    // of every statement kind is the `statement` target's job.
    let body = if mode & 1 == 0 {
        match statement_frame(rest) {
            Some((1, kind, body)) if kind == StaffRequest::KIND => body,
            _ => {
                assert!(gate.check(rest, action, NOW).is_err());
                return;
            }
        }
    } else {
        rest
    };
    let mut r = Reader::new(body);
    let Ok(req) = StaffRequest::decode_body(&mut r) else {
        return;
    };
    if r.finish().is_err()
        || req.node_id != NODE_ID
        || req.action != action
        || req.timestamp.abs_diff(NOW) > SKEW
    {
        return;
    }
    let wire = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        signed_statement(StaffRequest::KIND, rest)
    };
    if let Ok(v) = gate.check(&wire, action, NOW) {
        assert_eq!(v.staff_id, "alice");
        assert_eq!(v.request.node_id, NODE_ID);
        assert_eq!(v.request.action, action);
        assert!(v.request.timestamp.abs_diff(NOW) <= SKEW);
        assert!(
            action != StaffAction::CancelRecovery,
            "alice may not cancel"
        );
        assert!(
            matches!(
                gate.check(&wire, action, NOW),
                Err(StaffAuthError::Replayed)
            ),
            "a staff request was accepted twice"
        );
    }
});
