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
    /// Bank nodes: the bank approval public key (hex) that trustees list in
    /// `recovery.bank_approval_keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_approval_key: Option<String>,
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
            bank_approval_key: None,
        }
    }

    /// With the bank approval key set.
    pub fn with_bank_key(mut self, key: Option<&k256::PublicKey>) -> Self {
        self.bank_approval_key = key.map(dlocker_proto::keys::public_key_hex);
        self
    }

    /// Reads a node's descriptor from its data directory without starting it.
    pub fn load(dir: &Path) -> Result<Self, DescribeError> {
        let config = NodeConfig::load(dir)?;
        let keys = FileKeyProvider::new(dir);
        let identity = keys.identity_key()?;
        let bank = match config.role {
            crate::config::Role::Bank if keys.bank_approval_path().exists() => {
                Some(*keys.bank_approval_key()?.public_key())
            }
            _ => None,
        };
        Ok(Self::new(&config, &identity).with_bank_key(bank.as_ref()))
    }
}
