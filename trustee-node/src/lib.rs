//! The dLocker trustee node.
//!
//! A trustee holds one verified share of each wallet it serves, with the wallet's manifest,
//! encrypted blob and the owner's passkey, and proves on request that it still holds the share.
//!
//! Layout: one folder per feature, each with its pure state machine, its operations (a view of
//! the [`node::Node`] context: `node.recovery()`, `node.epochs()`, …), and its gRPC edge
//! (protobuf → domain types with `TryFrom`); the features reach storage only through [`db`].
//!
//! - [`enrollment`]: deposits (`BeginEnrollment`, `FinishEnrollment`), custody proofs, the
//!   `Trustee` service, the benchmark-only bulk loader (feature `bench`);
//! - [`recovery`]: the session state machine ([`recovery::session`], with its
//!   `ReleaseAuthorized` proof), open / authenticate / release / cancel, the one share-release
//!   function, the `Recovery` service;
//! - [`epochs`]: the per-wallet epoch state machine ([`epochs::state`]), stage / commit /
//!   abandon / retire / delete / passkey change, the `Epochs` service;
//! - [`staff`]: the bank's `Staff` service, request authentication ([`staff::auth`]) and the
//!   roster ([`staff::roster`], [`staff::admin`]);
//! - [`locker`]: this node as the document locker's host, and its HTTP document endpoints;
//! - [`db`]: the one storage layer (every table, key format and record codec; the on-disk layout
//!   is in its docs);
//! - [`node`]: the shared context (config, keys, clock, database, audit log, events);
//!   [`owner_touch`]: the owner's one-touch ceremony; [`audit_log`], [`events`]: the
//!   hash-chained audit log and the durable event outbox;
//! - [`config`], [`keys`], [`init`], [`startup`]: configuration, keys, `trustee-node init`, the
//!   start-up checks; [`at_rest`] seals shares; [`error`]: the one error → status mapping;
//! - [`server`]: [`server::serve`] / [`server::spawn`]; the operator's [`admin`] listener and its
//!   [`metrics`].
//!
//! ```no_run
//! # async fn demo(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! let node = trustee_node::server::spawn(dir).await?;
//! println!("serving on {}", node.local_addr());
//! node.shutdown().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod admin;
pub mod at_rest;
pub mod audit_log;
pub mod caller_limits;
pub mod client_gate;
pub mod config;
pub mod db;
pub mod descriptor;
pub mod enrollment;
pub mod epochs;
pub mod error;
pub mod events;
pub mod grpc_web;
pub mod hold;
pub mod housekeeping;
pub mod init;
pub mod keys;
pub mod locker;
pub mod metrics;
pub mod node;
pub mod owner_touch;
#[cfg(test)]
mod owner_touch_tests;
pub mod recovery;
pub mod server;
pub mod staff;
pub mod startup;
pub mod stats;
pub mod wallet;

pub use error::NodeError;
