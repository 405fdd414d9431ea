//! The dLocker document locker.
//!
//! Format modules — no I/O, shared by the node, the SDK, issuers and verifiers, pinned by the
//! files in `test-vectors/`:
//! - [`jws`]: compact JWS with ES256K (RFC 7515, RFC 8812), strict; [`jwk`]: secp256k1 JWKs and
//!   RFC 7638 thumbprints; [`b64`]: strict base64url without padding; [`json`]: JSON objects
//!   with unique members;
//! - [`vc`]: document credentials (W3C VC Data Model 2.0 as VC-JOSE, `typ` `vc+jwt`, the
//!   holder's key in `cnf`, a `BitstringStatusListEntry`), self-attested uploads;
//! - [`status_list`]: W3C Bitstring Status Lists (gzip + base64url, 131,072 entries) and the
//!   status list credential;
//! - [`ids`]: issuer/requester ids, document types, document URIs
//!   (`<issuer_id>-<DOCTYPE>-<doc_id>`); [`datetime`]: RFC 3339 timestamps;
//! - [`request`]: signed locker requests (issuers, holders, requesters, the locker itself).
//!
//! Networked parts:
//! - [`repository`]: the `IssuerRepository` side for *pull* issuers — implement
//!   [`repository::DocumentSource`] (one function) and serve it with
//!   [`repository::RepositoryServer`]; [`example_issuer`] is the one the tests and the demo run;
//! - `server` (feature `server`, on by default): the node's `DocumentService` over the node's database.
//!
//! The formats are described in `docs/document-locker.md`.
#![warn(missing_docs)]

pub mod b64;
pub mod datetime;
pub mod error;
#[cfg(feature = "repository")]
pub mod example_issuer;
pub mod ids;
pub mod json;
pub mod jwk;
pub mod jws;
pub mod keys;
pub mod refusal;
#[cfg(feature = "repository")]
pub mod repository;
pub mod request;
pub mod status_list;
pub mod vc;
pub mod wire;

#[cfg(feature = "server")]
pub mod server;

pub use error::FormatError;
pub use keys::PrincipalKey;
