//! The dLocker wire protocol and the cryptography both ends must agree on byte for byte.
//!
//! This crate does no I/O. It holds:
//! - [`pb`]: the gRPC messages and services (`dlocker.v1`), generated from `proto/`;
//! - [`codec`]: the one strict, length-prefixed binary codec every signed or hashed object uses;
//! - [`share`]: Feldman VSS over secp256k1 (split, verify, combine with every check);
//! - [`envelope`]: ECIES share envelopes (k256 ECDH + HKDF-SHA256 + AES-256-GCM, bound AAD);
//! - [`blob`]: the wallet blob encrypted under a key derived from the shared secret;
//! - [`manifest`]: the public description of a backup and its canonical hash;
//! - [`statement`]: domain-separated ECDSA signed statements (receipts, approvals, ...);
//! - [`schnorr`]: proof that a trustee still holds its share;
//! - [`owner_challenge`]: one passkey touch for every trustee of an owner ceremony;
//! - [`record`]: sealing of a client's rotation record under a key derived from `k`;
//! - [`refusal`]: the code a node's refusal carries in the gRPC status metadata;
//! - [`ids`]: wallet ids, validated once.
//!
//! The formats are specified in `docs/protocol.md` and pinned by the files in `test-vectors/`.
#![warn(missing_docs)]

pub mod audit;
pub mod blob;
pub mod client_state;
pub mod codec;
pub mod envelope;
pub mod ids;
pub mod keys;
pub mod labels;
pub mod manifest;
pub mod owner_challenge;
pub mod record;
pub mod refusal;
pub mod reset_proof;
pub mod schnorr;
mod sealed_under_k;
pub mod secret;
pub mod share;
pub mod statement;
pub mod time;

/// Generated gRPC code for package `dlocker.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("dlocker.v1");

    /// The encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("dlocker_descriptor");
}

pub use codec::DecodeError;

/// The protocol version string nodes advertise.
pub const PROTOCOL_VERSION: &str = "dlocker/v2";

/// Most trustees one wallet may have.
pub const MAX_TRUSTEES: usize = 32;
