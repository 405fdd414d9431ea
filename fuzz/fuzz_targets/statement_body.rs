//! The body decoders of every statement kind, reached past the signature check: the input is
//! `kind byte ‖ body`, signed here with a fixed key, then decoded as that kind. A body that
//! decodes re-encodes to the same bytes; a refused body is an error, never a panic.
#![no_main]

use dlocker_fuzz::{SIGNER_PUBLIC, signed_statement};
use dlocker_proto::statement::{
    AuditCheckpoint, BankApproval, BankCancellation, CommitReceipt, EraseReceipt, Receipt,
    RetireReceipt, ShareRelease, Signed, StaffRequest, StageReceipt, StatementBody,
};
use libfuzzer_sys::fuzz_target;

fn check<T: StatementBody + std::fmt::Debug>(wire: &[u8]) {
    if let Ok(s) = Signed::<T>::decode_trusted(wire, &[*SIGNER_PUBLIC]) {
        assert_eq!(s.encode(), wire, "a {} body has one encoding", T::NAME);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // The kinds in use are 1..=10; a selector maps onto them so no input is wasted.
    let kind = [
        Receipt::KIND,
        BankApproval::KIND,
        StaffRequest::KIND,
        AuditCheckpoint::KIND,
        ShareRelease::KIND,
        BankCancellation::KIND,
        StageReceipt::KIND,
        CommitReceipt::KIND,
        RetireReceipt::KIND,
        EraseReceipt::KIND,
    ][usize::from(selector) % 10];
    let wire = signed_statement(kind, body);
    match kind {
        Receipt::KIND => check::<Receipt>(&wire),
        BankApproval::KIND => check::<BankApproval>(&wire),
        StaffRequest::KIND => check::<StaffRequest>(&wire),
        AuditCheckpoint::KIND => check::<AuditCheckpoint>(&wire),
        ShareRelease::KIND => check::<ShareRelease>(&wire),
        BankCancellation::KIND => check::<BankCancellation>(&wire),
        StageReceipt::KIND => check::<StageReceipt>(&wire),
        CommitReceipt::KIND => check::<CommitReceipt>(&wire),
        RetireReceipt::KIND => check::<RetireReceipt>(&wire),
        _ => check::<EraseReceipt>(&wire),
    }
});
