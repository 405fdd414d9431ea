//! Domain-separation labels. Every hash, KDF and signature in the protocol starts from one of
//! these, so a value made for one purpose can never be replayed as another. Changing one is a
//! protocol version bump.

/// Node id derivation.
pub const NODE_ID: &[u8] = b"dlocker/node-id/v1";
/// HKDF info for share-envelope keys.
pub const ENVELOPE_KEY: &[u8] = b"dlocker/envelope/key/v1";
/// Prefix of share-envelope associated data.
pub const ENVELOPE_AAD: &[u8] = b"dlocker/envelope/aad/v1";
/// HKDF info for the wallet blob key.
pub const BLOB_KEY: &[u8] = b"dlocker/blob/key/v1";
/// Prefix of the wallet blob's associated data.
pub const BLOB_AAD: &[u8] = b"dlocker/blob/aad/v1";
/// Manifest hash.
pub const MANIFEST_HASH: &[u8] = b"dlocker/manifest/v1";
/// Signed statements.
pub const STATEMENT: &[u8] = b"dlocker/statement/v1";
/// Schnorr proof-of-possession challenge.
pub const POSSESSION_PROOF: &[u8] = b"dlocker/possession-proof/v1";
/// Audit log chain hash.
pub const AUDIT_ENTRY: &[u8] = b"dlocker/audit/v1";
/// At-rest sealing of shares by a node's storage key (AAD prefix).
pub const AT_REST_SHARE: &[u8] = b"dlocker/at-rest/share/v1";
/// HMAC label for anonymised wallet tags in the audit log.
pub const WALLET_TAG: &[u8] = b"dlocker/wallet-tag/v1";
/// HMAC label for recovery session tags in the audit log (session ids are capabilities).
pub const SESSION_TAG: &[u8] = b"dlocker/session-tag/v1";
/// HKDF info for the key sealing a client's rotation record (its secret part).
pub const ROTATION_RECORD_KEY: &[u8] = b"dlocker/rotation-record/key/v1";
/// Prefix of a sealed rotation record's associated data.
pub const ROTATION_RECORD_AAD: &[u8] = b"dlocker/rotation-record/aad/v1";
/// The owner-ceremony challenge: one passkey touch for every trustee of a ceremony.
pub const OWNER_CHALLENGE: &[u8] = b"dlocker/owner-challenge/v1";
/// A WebAuthn credential's fingerprint (the wallet's one passkey).
pub const CREDENTIAL_FINGERPRINT: &[u8] = b"dlocker/credential-fingerprint/v1";
/// Prefix of a client's saved ceremony state's associated data (sealed under the app's key).
pub const CLIENT_STATE_AAD: &[u8] = b"dlocker/client-state/aad/v1";
/// Fiat–Shamir challenge of the proof of knowledge of the wallet secret `k` in a passkey reset.
pub const PASSKEY_RESET_PROOF: &[u8] = b"dlocker/passkey-reset-proof/v1";
/// Derivation of the passkey-reset proof's commitment scalar (hedged: `k`, the challenge and
/// fresh randomness).
pub const PASSKEY_RESET_NONCE: &[u8] = b"dlocker/passkey-reset-proof/nonce/v1";
