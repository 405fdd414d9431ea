//! Fixtures shared by the fuzz targets: fixed keys, the test vectors the targets verify against
//! (compiled in, so a target does not depend on its working directory), and a helper that signs
//! fuzzed statement bodies so the body decoders behind signature checks are reached.
//!
//! Nothing here is secret: every key is a public test constant.

use dlocker_proto::codec::Writer;
use dlocker_proto::keys::encode_public_key;
use dlocker_proto::labels;
use k256::ecdsa::signature::Signer as _;
use k256::ecdsa::{Signature, SigningKey};
use k256::{PublicKey, SecretKey};
use serde_json::Value;
use std::sync::LazyLock;

/// A test vector (JSON) by file name, compiled in.
macro_rules! vector {
    ($dir:literal, $name:literal) => {
        include_str!(concat!("../../", $dir, "/test-vectors/", $name))
    };
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A hex field of a vector (empty if missing).
pub fn hex_field(v: &Value, name: &str) -> Vec<u8> {
    v[name]
        .as_str()
        .and_then(|s| hex::decode(s).ok())
        .unwrap_or_default()
}

/// A string field of a vector (empty if missing).
pub fn str_field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_default()
}

/// A u64 field of a vector (0 if missing).
pub fn u64_field(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap_or_default()
}

/// `proto/test-vectors/envelope-valid.json`.
pub static ENVELOPE: LazyLock<Value> =
    LazyLock::new(|| json(vector!("proto", "envelope-valid.json")));
/// `proto/test-vectors/manifest-valid.json`.
pub static MANIFEST: LazyLock<Value> =
    LazyLock::new(|| json(vector!("proto", "manifest-valid.json")));
/// `proto/test-vectors/possession-proof-valid.json`.
pub static PROOF: LazyLock<Value> =
    LazyLock::new(|| json(vector!("proto", "possession-proof-valid.json")));
/// `proto/test-vectors/reset-proof-valid.json`.
pub static RESET_PROOF: LazyLock<Value> =
    LazyLock::new(|| json(vector!("proto", "reset-proof-valid.json")));
/// `proto/test-vectors/blob-valid.json`.
pub static BLOB: LazyLock<Value> = LazyLock::new(|| json(vector!("proto", "blob-valid.json")));
/// `proto/test-vectors/share-valid.json`.
pub static SHARE: LazyLock<Value> = LazyLock::new(|| json(vector!("proto", "share-valid.json")));
/// `locker/test-vectors/credential-valid.json`.
pub static CREDENTIAL: LazyLock<Value> =
    LazyLock::new(|| json(vector!("locker", "credential-valid.json")));
/// `locker/test-vectors/self-attested-valid.json`.
pub static SELF_ATTESTED: LazyLock<Value> =
    LazyLock::new(|| json(vector!("locker", "self-attested-valid.json")));
/// `locker/test-vectors/status-list-valid.json`.
pub static STATUS_LIST: LazyLock<Value> =
    LazyLock::new(|| json(vector!("locker", "status-list-valid.json")));
/// `locker/test-vectors/locker-request-grant-consent.json`.
pub static LOCKER_REQUEST: LazyLock<Value> =
    LazyLock::new(|| json(vector!("locker", "locker-request-grant-consent.json")));

/// A public key from a hex field of a vector, or the fixed signer's key.
pub fn vector_key(v: &Value, name: &str) -> PublicKey {
    dlocker_proto::keys::public_key_from_hex(str_field(v, name)).unwrap_or_else(|_| *SIGNER_PUBLIC)
}

/// A secret key from a hex field of a vector, or the fixed signer's key.
pub fn vector_secret(v: &Value, name: &str) -> SecretKey {
    SecretKey::from_slice(&hex_field(v, name)).unwrap_or_else(|_| SecretKey::from(&*SIGNER))
}

/// The fixed key the targets sign fuzzed bodies and payloads with.
pub static SIGNER: LazyLock<SigningKey> = LazyLock::new(|| {
    // 0x11..11 is a valid scalar (far below the group order).
    SigningKey::from_slice(&[0x11; 32]).unwrap_or_else(|_| unreachable!("valid constant scalar"))
});

/// The fixed signer's public key.
pub static SIGNER_PUBLIC: LazyLock<PublicKey> =
    LazyLock::new(|| PublicKey::from(SIGNER.verifying_key()));

/// A second key that signed nothing (for "never verifies under another key" checks).
pub static OTHER_PUBLIC: LazyLock<PublicKey> = LazyLock::new(|| {
    SigningKey::from_slice(&[0x22; 32])
        .map(|k| PublicKey::from(k.verifying_key()))
        .unwrap_or_else(|_| unreachable!("valid constant scalar"))
});

/// The wire encoding of a statement of `kind` with `body`, validly signed by [`SIGNER`]
/// (`version 1 ‖ kind ‖ signer [33] ‖ body (u32 length ‖ bytes) ‖ signature [64]`, the signature
/// over `"dlocker/statement/v1" ‖ kind ‖ signer ‖ body (u32 length ‖ bytes)`), so a target can
/// feed arbitrary body bytes to the decoders that run only after the signature verified.
pub fn signed_statement(kind: u8, body: &[u8]) -> Vec<u8> {
    let signer = encode_public_key(&SIGNER_PUBLIC);
    let mut input = Writer::new();
    input
        .fixed(labels::STATEMENT)
        .u8(kind)
        .fixed(&signer)
        .bytes(body);
    let sig: Signature = SIGNER.sign(&input.finish());
    let mut w = Writer::new();
    w.u8(1)
        .u8(kind)
        .fixed(&signer)
        .bytes(body)
        .fixed(&sig.to_bytes());
    w.finish()
}

/// The kind and body bytes of a statement's wire form, read with the same frame as
/// `Signed::decode` (`version ‖ kind ‖ signer [33] ‖ body ‖ signature [64]`, nothing after) but
/// without decoding the signer or checking the signature. `None` if the frame does not parse
/// (then `Signed::decode` fails before it reaches the signature, cheaply).
pub fn statement_frame(wire: &[u8]) -> Option<(u8, u8, &[u8])> {
    let mut r = dlocker_proto::codec::Reader::new(wire);
    let version = r.u8().ok()?;
    let kind = r.u8().ok()?;
    r.array::<33>().ok()?;
    let body = r.bytes("statement body", usize::MAX).ok()?;
    r.array::<64>().ok()?;
    r.finish().ok()?;
    Some((version, kind, body))
}

/// Whether `body` decodes as a `T` body: exactly what `Signed::<T>::decode` runs on the body once
/// the signature has verified. A body that does not decode makes every decode of a statement
/// carrying it fail, whatever the signature, so the targets sign or verify only bodies that
/// decode: the decoders still see every input, and the elliptic-curve work (a few hundred
/// microseconds instrumented) is spent only where it can change the outcome.
pub fn body_decodes<T: dlocker_proto::statement::StatementBody>(body: &[u8]) -> bool {
    let mut r = dlocker_proto::codec::Reader::new(body);
    T::decode_body(&mut r).is_ok() && r.finish().is_ok()
}
