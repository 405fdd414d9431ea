//! Harness for dLocker's workspace integration tests.
//!
//! Everything here drives *real* `trustee-node` processes on loopback, the same binaries an
//! operator runs: [`Cluster`] initialises nodes with `trustee-node init`, serves them with
//! `trustee-node serve` as child processes, waits for `grpc.health.v1` to answer, and can stop
//! (SIGTERM), kill (SIGKILL) and restart each one on the same port and data directory.
//! [`craft`] builds deposits by hand from `dlocker-proto` so a test can send the exact bad input
//! it wants over raw gRPC; [`tls`] makes throwaway certificates with `rcgen`. [`rotation`] sets up
//! clusters for epoch rotation.
//!
//! Each cluster lives in its own temporary directory on ports the OS handed out, so tests run in
//! parallel. Dropping a [`Cluster`] kills its nodes.

pub mod bins;
pub mod cluster;
pub mod craft;
pub mod crash;
pub mod http;
pub mod locker;
pub mod postgres;
pub mod recovery_cluster;
pub mod rotation;
pub mod tls;
pub mod touch;
pub mod webdriver;

pub use bins::{bin_path, cli_command, node_command};
pub use cluster::{Cluster, Node};
