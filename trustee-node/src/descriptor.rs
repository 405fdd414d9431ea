//! A node's public descriptor, as `GetInfo` serves it and `trustee-node show` prints it.

use crate::config::{ConfigError, NodeConfig};
use crate::keys::{FileKeyProvider, IdentityKey, KeyError, KeyProvider as _};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What others need to know to use a node as a trustee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDescriptorInfo {
    /// Hex node id, derived from the public key.
    pub node_id: String,
    /// Display name.
    pub name: String,
    /// `"trustee"` or `"bank"`.
    pub role: String,
    /// Advertised endpoint.
    pub endpoint: String,
    /// SEC1 compressed identity key, hex.
    pub public_key: String,
}

/// Why a descriptor could not be read from disk.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// Config problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Key problem.
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl NodeDescriptorInfo {
    /// From a config and the identity key.
    pub fn new(config: &NodeConfig, identity: &IdentityKey) -> Self {
        Self {
            node_id: identity.node_id().to_owned(),
            name: config.name.clone(),
            role: config.role.as_str().to_owned(),
            endpoint: config.endpoint.clone(),
            public_key: identity.public_key_hex(),
        }
    }

    /// Reads a node's descriptor from its data directory without starting it.
    pub fn load(dir: &Path) -> Result<Self, DescribeError> {
        let config = NodeConfig::load(dir)?;
        let identity = FileKeyProvider::new(dir).identity_key()?;
        Ok(Self::new(&config, &identity))
    }
}
