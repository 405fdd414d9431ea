//! Sealed rotation records (a client's resumable rotation file, sealed under `k`): opening
//! with a fixed `k`, wallet and target manifest; a record sealed here round-trips and opens for
//! no other target. The input is tried both as a sealed record and as a plaintext.
#![no_main]

use dlocker_proto::manifest::ManifestHash;
use dlocker_proto::record;
use dlocker_proto::secret::SecretScalar;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static K: LazyLock<Option<SecretScalar>> = LazyLock::new(|| SecretScalar::from_bytes(&[0x33; 32]));
const WALLET: &str = "wallet-vector-1";
const TARGET: ManifestHash = ManifestHash([0x44; 32]);

fuzz_target!(|data: &[u8]| {
    let Some(k) = K.as_ref() else {
        return;
    };
    let _ = record::open(k, WALLET, &TARGET, data);
    if data.first() == Some(&0) {
        let sealed = record::seal(k, WALLET, &TARGET, &data[1..]);
        let opened = record::open(k, WALLET, &TARGET, &sealed);
        assert_eq!(opened.ok().as_ref().map(|s| s.expose()), Some(&data[1..]));
        assert!(record::open(k, WALLET, &ManifestHash([0x45; 32]), &sealed).is_err());
    }
});
