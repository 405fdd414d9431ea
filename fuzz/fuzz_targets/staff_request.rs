//! Staff requests as the bank node checks them (`StaffGate::check`: signature by a configured
//! staff key, role for the action, this node, clock skew, single-use nonce), on the raw input
//! (mode bit 0 clear) and on a fuzzed body signed here with the staff key (set), for the action
//! the mode selects. An accepted request names this node and the action, is fresh, and is
//! refused the second time. Needs the `node` feature (the nonce store is a temporary sled db).
#![no_main]

use dlocker_fuzz::{SIGNER_PUBLIC, body_decodes, signed_statement, worth_verifying};
use dlocker_proto::statement::{StaffAction, StaffRequest, StatementBody};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use trustee_node::staff_auth::{StaffAuthError, StaffGate, StaffMember, StaffRole};

const NODE_ID: &str = "abababababababababababababababab";
const NOW: u64 = 1_767_225_600;
const SKEW: u64 = 300;

static GATE: LazyLock<Option<StaffGate>> = LazyLock::new(|| {
    let db = sled::Config::new().temporary(true).open().ok()?;
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
    // The body decoder runs on every input; the signature is made or checked only where the
    // body decodes (anything else is refused whatever its signature).
    let wire = if mode & 1 == 0 {
        if !worth_verifying::<StaffRequest>(rest) {
            return;
        }
        rest.to_vec()
    } else {
        if !body_decodes::<StaffRequest>(rest) {
            return;
        }
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
