//! Signed locker requests (every locker RPC's authentication): `request::check` against the
//! vector's expected locker, action, principal and parameters, on the raw input (mode 0) and
//! on a fuzzed body signed here (mode 1, so the body decoder behind the signature is reached).
//! A request that passes names exactly what was expected and re-encodes to the same bytes.
//!
//! Every input's body goes through the body decoder, and a body that decodes must re-encode to
//! itself. Signing and verifying (most of an execution's cost) happen only where the outcome
//! can depend on them: a frame of this kind whose body decodes and names what `check` expects.
//! Anything else is refused whatever its signature (`check` compares those fields after the
//! signature), and raw signature verification of every statement kind is the `statement`
//! target's job.
#![no_main]

use dlocker_fuzz::{
    LOCKER_REQUEST, SIGNER_PUBLIC, hex_field, signed_statement, statement_frame, str_field,
};
use dlocker_locker::request::{LockerAction, LockerRequest, check};
use dlocker_proto::codec::{Reader, Writer};
use dlocker_proto::statement::{Signed, StatementBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let locker = str_field(&LOCKER_REQUEST, "locker");
    let principal = str_field(&LOCKER_REQUEST, "holder_id");
    let params: [u8; 32] = hex_field(&LOCKER_REQUEST, "params")
        .try_into()
        .unwrap_or([0; 32]);
    let action = LockerAction::GrantConsent;
    let signed_here = mode & 1 == 1;
    let body = if signed_here {
        rest
    } else {
        match statement_frame(rest) {
            Some((1, kind, body)) if kind == LockerRequest::KIND => body,
            // No version-1 locker-request frame: refused before any signature is checked.
            _ => {
                assert!(check(rest, locker, action, principal, params).is_err());
                assert!(Signed::<LockerRequest>::decode(rest).is_err());
                return;
            }
        }
    };
    let mut r = Reader::new(body);
    let Ok(req) = LockerRequest::decode_body(&mut r) else {
        return;
    };
    if r.finish().is_err() {
        return;
    }
    let mut w = Writer::new();
    req.encode_body(&mut w);
    assert_eq!(w.finish(), body, "a locker request body has one encoding");
    assert_eq!(
        LockerAction::from_code(req.action.code()).ok(),
        Some(req.action)
    );
    if req.locker != locker
        || req.principal != principal
        || req.action != action
        || req.params != params
    {
        return;
    }
    let wire = if signed_here {
        signed_statement(LockerRequest::KIND, rest)
    } else {
        rest.to_vec()
    };
    if let Ok(c) = check(&wire, locker, action, principal, params) {
        assert_eq!(c.request.locker, locker);
        assert_eq!(c.request.principal, principal);
        assert_eq!(c.request.action, action);
        assert_eq!(c.request.params, params);
    }
    if let Ok(s) = Signed::<LockerRequest>::decode(&wire) {
        assert_eq!(s.encode(), wire, "a locker request has one encoding");
        assert_eq!(*s.body(), req);
        if signed_here {
            assert_eq!(*s.signer(), *SIGNER_PUBLIC);
        }
    }
});
