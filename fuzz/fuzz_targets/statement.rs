//! Signed statements on the wire, every kind: decoding checks the version, kind, signer, body
//! length, low-S signature and the signature itself before the body. Whatever decodes
//! re-encodes to the same bytes, verifies only under its own signer, and decodes as no other
//! kind.
#![no_main]

use dlocker_fuzz::OTHER_PUBLIC;
use dlocker_proto::statement::{
    AuditCheckpoint, BankApproval, BankCancellation, CommitReceipt, CredentialAttestation,
    EraseReceipt, PasskeyResetApproval, Receipt, RetireReceipt, ShareRelease, Signed,
    StaffAdminRequest, StaffRequest, StageReceipt, StatementBody, peek_kind,
};
use libfuzzer_sys::fuzz_target;

fn check<T: StatementBody + Clone + PartialEq + std::fmt::Debug>(data: &[u8]) -> bool {
    let Ok(s) = Signed::<T>::decode(data) else {
        return false;
    };
    assert_eq!(s.encode(), data, "a {} has one encoding", T::NAME);
    assert_eq!(peek_kind(data), Some(T::KIND));
    assert!(Signed::<T>::decode_trusted(data, &[*s.signer()]).is_ok());
    assert!(
        Signed::<T>::decode_trusted(data, &[*OTHER_PUBLIC]).is_err()
            || *s.signer() == *OTHER_PUBLIC
    );
    assert!(Signed::<T>::decode_trusted(data, &[]).is_err());
    true
}

fuzz_target!(|data: &[u8]| {
    let decoded = [
        check::<Receipt>(data),
        check::<BankApproval>(data),
        check::<StaffRequest>(data),
        check::<AuditCheckpoint>(data),
        check::<ShareRelease>(data),
        check::<BankCancellation>(data),
        check::<StageReceipt>(data),
        check::<CommitReceipt>(data),
        check::<RetireReceipt>(data),
        check::<EraseReceipt>(data),
        check::<CredentialAttestation>(data),
        check::<StaffAdminRequest>(data),
        check::<PasskeyResetApproval>(data),
    ];
    assert!(
        decoded.iter().filter(|d| **d).count() <= 1,
        "one encoding decoded as two statement kinds"
    );
});
