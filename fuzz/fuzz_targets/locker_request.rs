//! Signed locker requests (every locker RPC's authentication): `request::check` against the
//! vector's expected locker, action, principal and parameters, on the raw input (mode 0) and
//! on a fuzzed body signed here (mode 1, so the body decoder behind the signature is reached).
//! A request that passes names exactly what was expected and re-encodes to the same bytes.
#![no_main]

use dlocker_fuzz::{
    LOCKER_REQUEST, SIGNER_PUBLIC, body_decodes, hex_field, signed_statement, str_field,
    worth_verifying,
};
use dlocker_locker::request::{LockerAction, LockerRequest, check};
use dlocker_proto::statement::{Signed, StatementBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // The body decoder runs on every input; the signature is made or checked only where the
    // body decodes (anything else is refused whatever its signature, and signing or verifying
    // is most of an execution's cost).
    let wire = if mode & 1 == 0 {
        if !worth_verifying::<LockerRequest>(rest) {
            return;
        }
        rest.to_vec()
    } else {
        if !body_decodes::<LockerRequest>(rest) {
            return;
        }
        signed_statement(LockerRequest::KIND, rest)
    };
    let locker = str_field(&LOCKER_REQUEST, "locker");
    let principal = str_field(&LOCKER_REQUEST, "holder_id");
    let params: [u8; 32] = hex_field(&LOCKER_REQUEST, "params")
        .try_into()
        .unwrap_or([0; 32]);
    let action = LockerAction::GrantConsent;
    if let Ok(c) = check(&wire, locker, action, principal, params) {
        assert_eq!(c.request.locker, locker);
        assert_eq!(c.request.principal, principal);
        assert_eq!(c.request.action, action);
        assert_eq!(c.request.params, params);
    }
    if let Ok(s) = Signed::<LockerRequest>::decode(&wire) {
        assert_eq!(s.encode(), wire, "a locker request has one encoding");
        assert_eq!(
            LockerAction::from_code(s.body().action.code()).ok(),
            Some(s.body().action)
        );
        if mode & 1 == 1 {
            assert_eq!(*s.signer(), *SIGNER_PUBLIC);
        }
    }
});
