//! The dLocker trustee node.
//!
//! A trustee holds one verified share of each wallet it serves, with the wallet's manifest,
//! encrypted blob and the owner's passkey, and proves on request that it still holds the share.
//!
//! Modules:
//! - [`config`]: `config.toml` → validated [`config::NodeConfig`];
//! - [`keys`]: identity and storage keys behind [`keys::KeyProvider`];
//! - [`init`]: `trustee-node init`;
//! - [`storage`]: the [`storage::Store`] trait and [`storage::SledStore`]; [`at_rest`] seals shares;
//! - [`node`]: the shared [`node::Node`] state; request logic lives in [`enrollment`] and
//!   [`custody`] as `impl Node` blocks;
//! - [`service`]: the gRPC `Trustee` service; [`error`]: the one error → status mapping;
//! - [`server`]: [`server::serve`] / [`server::spawn`]; the operator's [`admin`] listener and its
//!   [`metrics`];
//! - recovery: [`recovery_session`] (the persisted state machine and its
//!   `ReleaseAuthorized` token), [`recovery`] (open / authenticate / release / cancel, attempt
//!   limits) and its gRPC service [`recovery_service`]; the bank's [`staff`] service behind
//!   [`staff_auth`]; the hash-chained [`audit_log`] and the durable [`events`] outbox;
//! - epochs: [`epoch`] (the persisted per-wallet epoch state machine), [`rotation`]
//!   (stage / commit / abandon / retire, expiry) and its gRPC service [`rotation_service`].
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
#[cfg(feature = "bench")]
pub mod bulk;
pub mod caller_limits;
pub mod client_gate;
pub mod config;
pub mod custody;
pub mod db_stats;
pub mod descriptor;
pub mod documents;
pub mod enrollment;
pub mod epoch;
pub mod erase;
pub mod error;
pub mod events;
pub mod grpc_web;
pub mod init;
pub mod keys;
pub mod locker_host;
pub mod metrics;
pub mod node;
pub mod owner_touch;
#[cfg(test)]
mod owner_touch_tests;
pub mod passkey_change;
pub mod recovery;
pub mod recovery_service;
pub mod recovery_session;
pub mod rotation;
pub mod rotation_service;
pub mod server;
pub mod service;
pub mod staff;
pub mod staff_admin;
pub mod staff_auth;
pub mod startup;
pub mod stats;
pub mod storage;
pub mod wallet;

pub use error::NodeError;
