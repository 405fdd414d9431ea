//! The body decoders of every statement kind, reached past the signature check: the input is
//! `kind byte ‖ body`, signed here with a fixed key, then decoded as that kind. A body that
//! decodes re-encodes to the same bytes; a refused body is an error, never a panic. The body
//! decoder runs on every input first; only a body that decodes is signed and put through the
//! whole signed decode (signing and verifying are most of an execution's cost).
#![no_main]

use dlocker_fuzz::{SIGNER_PUBLIC, body_decodes, signed_statement};
use dlocker_proto::statement::{
    AuditCheckpoint, BankApproval, BankCancellation, CommitReceipt, CredentialAttestation,
    EraseReceipt, MAX_BODY_LEN, PasskeyResetApproval, Receipt, RetireReceipt, ShareRelease, Signed,
    StaffAdminRequest, StaffRequest, StageReceipt, StatementBody,
};
use libfuzzer_sys::fuzz_target;

fn check<T: StatementBody + std::fmt::Debug>(body: &[u8]) {
    if !body_decodes::<T>(body) {
        return;
    }
    let wire = signed_statement(T::KIND, body);
    let s = Signed::<T>::decode_trusted(&wire, &[*SIGNER_PUBLIC]);
    assert!(
        s.is_ok() || body.len() > MAX_BODY_LEN,
        "a {} body that decodes, validly signed, is refused: {s:?}",
        T::NAME
    );
    if let Ok(s) = s {
        assert_eq!(s.encode(), wire, "a {} body has one encoding", T::NAME);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // The kinds in use are 1..=13, in order (a selector `kind - 1` picks `kind`); every
    // selector maps onto one so no input is wasted.
    const KINDS: [u8; 13] = [
        Receipt::KIND,
        BankApproval::KIND,
        StaffRequest::KIND,
        AuditCheckpoint::KIND,
        ShareRelease::KIND,
        BankCancellation::KIND,
        StageReceipt::KIND,
        CommitReceipt::KIND,
        RetireReceipt::KIND,
        CredentialAttestation::KIND,
        EraseReceipt::KIND,
        StaffAdminRequest::KIND,
        PasskeyResetApproval::KIND,
    ];
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    match kind {
        Receipt::KIND => check::<Receipt>(body),
        BankApproval::KIND => check::<BankApproval>(body),
        StaffRequest::KIND => check::<StaffRequest>(body),
        AuditCheckpoint::KIND => check::<AuditCheckpoint>(body),
        ShareRelease::KIND => check::<ShareRelease>(body),
        BankCancellation::KIND => check::<BankCancellation>(body),
        StageReceipt::KIND => check::<StageReceipt>(body),
        CommitReceipt::KIND => check::<CommitReceipt>(body),
        RetireReceipt::KIND => check::<RetireReceipt>(body),
        CredentialAttestation::KIND => check::<CredentialAttestation>(body),
        StaffAdminRequest::KIND => check::<StaffAdminRequest>(body),
        PasskeyResetApproval::KIND => check::<PasskeyResetApproval>(body),
        _ => check::<EraseReceipt>(body),
    }
});
