//! Wallet blobs (stored by every trustee, returned at recovery): opening under the vector's
//! `k` and wallet id; a blob that opens there opens under no other wallet id.
#![no_main]

use dlocker_fuzz::{BLOB, hex_field, str_field};
use dlocker_proto::blob;
use dlocker_proto::secret::SecretScalar;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static K: LazyLock<Option<SecretScalar>> = LazyLock::new(|| {
    let k: [u8; 32] = hex_field(&BLOB, "k").try_into().ok()?;
    SecretScalar::from_bytes(&k)
});

fuzz_target!(|data: &[u8]| {
    let Some(k) = K.as_ref() else {
        return;
    };
    let wallet = str_field(&BLOB, "wallet_id");
    if blob::open(k, wallet, data).is_ok() {
        assert!(blob::open(k, "another-wallet", data).is_err());
    }
    let _ = blob::hash(data);
});
