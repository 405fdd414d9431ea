//! Share envelopes: strict decoding, one encoding per envelope, and opening with the vector's
//! recipient key and context (a trustee opening a deposit, a device opening a release).
#![no_main]

use dlocker_fuzz::{ENVELOPE, str_field, u64_field, vector_secret};
use dlocker_proto::envelope::{EnvelopeContext, ShareEnvelope};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static RECIPIENT: LazyLock<k256::SecretKey> =
    LazyLock::new(|| vector_secret(&ENVELOPE, "recipient_secret"));

fuzz_target!(|data: &[u8]| {
    let Ok(env) = ShareEnvelope::decode(data) else {
        return;
    };
    assert_eq!(env.encode(), data, "an envelope has one encoding");
    let recipient = RECIPIENT.public_key();
    let ctx = EnvelopeContext {
        wallet_id: str_field(&ENVELOPE, "wallet_id"),
        epoch: u64_field(&ENVELOPE, "epoch"),
        share_index: u64_field(&ENVELOPE, "share_index") as u16,
        recipient: &recipient,
    };
    if let Ok(share) = env.open(&ctx, &RECIPIENT) {
        assert_eq!(share.index(), ctx.share_index);
    }
    // Another context never opens what this one sealed, and never panics.
    let other = EnvelopeContext {
        epoch: ctx.epoch.wrapping_add(1),
        ..ctx
    };
    let _ = env.open(&other, &RECIPIENT);
});
