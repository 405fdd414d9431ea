//! Start-up consistency: a node refuses to serve when its keys and its database disagree.
//!
//! Two checks, both before the node answers anything:
//! - **every key file is present** ([`check_key_files`]). A key is never created at start: a new
//!   bank approval key is not the one every trustee pinned (each later recovery would fail at
//!   release), a new audit key changes the audit tags in the middle of the log, a new storage key
//!   cannot open any stored share.
//! - **the database belongs to these keys** ([`check_binding`]). The first start records the
//!   node id and key check values (KCVs) in [`NODE_META_TREE`]; every later start compares. Keys
//!   of node A on the data of node B, or a storage key restored from the wrong backup, are
//!   refused at start instead of surfacing as `DATA_LOSS` on the first `ProveShare`.
//!
//! A KCV is a short HMAC of a fixed label under the key (for the storage key, under its own
//! [`StoragePurpose::KeyCheck`] purpose key): it identifies the key without revealing it.

use crate::config::{NodeConfig, Role};
pub use crate::db::NODE_META_TREE;
use crate::keys::{FileKeyProvider, KeyError, KeyProvider, StoragePurpose};
use hmac::{KeyInit, Mac as _};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The key of the binding record in [`NODE_META_TREE`].
pub const BINDING_KEY: &str = "key-binding";
const KCV_LABEL: &[u8] = b"dlocker/key-check/v1";

/// Why the node refused to start on its data directory.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A key file is missing.
    #[error(
        "{file} is missing{data}; restore it from the node's key backup (the node never \
         creates a key at start: {why})"
    )]
    MissingKey {
        /// The key file.
        file: PathBuf,
        /// ` but DIR/db holds this node's data` when it does.
        data: String,
        /// What a new key would break.
        why: &'static str,
    },
    /// The database was written by another node.
    #[error(
        "{db} belongs to node {recorded}, but keys/identity.key is node {actual}; start each \
         node with its own keys and data directory"
    )]
    ForeignDatabase {
        /// The database (its directory, or its PostgreSQL schema).
        db: String,
        /// The node id recorded in the database.
        recorded: String,
        /// The node id of the identity key.
        actual: String,
    },
    /// A key differs from the one the database was written with.
    #[error(
        "{file} is not the key {db} was written with (key check value differs); restore this \
         node's own {file}"
    )]
    KeyMismatch {
        /// The key file.
        file: PathBuf,
        /// The database (its directory, or its PostgreSQL schema).
        db: String,
    },
    /// A key could not be read.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The binding record could not be read or written.
    #[error("{db}: node metadata: {reason}")]
    Store {
        /// The database (its directory, or its PostgreSQL schema).
        db: String,
        /// What failed.
        reason: String,
    },
}

/// Refuses when a key file the node needs is missing.
pub fn check_key_files(config: &NodeConfig, keys: &FileKeyProvider) -> Result<(), StartupError> {
    let db = config.db_path();
    let sled = config.storage == crate::config::storage::StorageConfig::Sled;
    let data = if sled && db.exists() {
        format!(" but {} holds this node's data", db.display())
    } else {
        String::new()
    };
    let mut needed = vec![
        (
            keys.identity_path(),
            "the identity key is the node id every wallet pinned",
        ),
        (
            keys.storage_path(),
            "a new storage key cannot open any stored share",
        ),
        (
            keys.audit_path(),
            "a new audit key would change the audit tags in the middle of the log",
        ),
    ];
    if config.role == Role::Bank {
        needed.push((
            keys.bank_approval_path(),
            "every trustee pinned the old bank approval key, so each later recovery would fail",
        ));
    }
    for (file, why) in needed {
        if !file.exists() {
            return Err(StartupError::MissingKey {
                file,
                data: data.clone(),
                why,
            });
        }
    }
    Ok(())
}

/// What a database records about the keys that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBinding {
    /// The node id (from the identity key).
    pub node_id: String,
    /// KCV of the storage key (hex).
    pub storage_kcv: String,
    /// KCV of the audit key (hex).
    pub audit_kcv: String,
    /// The bank approval public key (hex), on a bank node.
    #[serde(default)]
    pub bank_approval_key: Option<String>,
}

fn kcv(key: &[u8]) -> String {
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key) else {
        // HMAC takes keys of any length; unreachable.
        return String::new();
    };
    mac.update(KCV_LABEL);
    hex::encode(&mac.finalize().into_bytes()[..8])
}

impl KeyBinding {
    /// The binding of the keys in `keys`.
    pub fn of(config: &NodeConfig, keys: &dyn KeyProvider) -> Result<Self, StartupError> {
        let storage = keys.storage_key()?;
        let audit = keys.audit_key()?;
        let bank_approval_key = match config.role {
            Role::Bank => Some(dlocker_proto::keys::public_key_hex(
                keys.bank_approval_key()?.public_key(),
            )),
            Role::Trustee => None,
        };
        Ok(Self {
            node_id: keys.identity_key()?.node_id().to_owned(),
            storage_kcv: kcv(storage.derive(StoragePurpose::KeyCheck).as_ref()),
            audit_kcv: kcv(audit.as_ref()),
            bank_approval_key,
        })
    }
}

/// Records the keys' binding on the first start; refuses a database written with other keys.
pub fn check_binding(
    config: &NodeConfig,
    keys: &FileKeyProvider,
    db: &crate::db::Database,
) -> Result<(), StartupError> {
    let db_dir = config.storage_label();
    let store_err = |e: &dyn std::fmt::Display| StartupError::Store {
        db: db_dir.clone(),
        reason: e.to_string(),
    };
    let actual = KeyBinding::of(config, keys)?;
    // The message names the database already: show the engine's or decoder's words only.
    let meta_err = |e: crate::db::StoreError| match e {
        crate::db::StoreError::Corrupt { reason, .. } => store_err(&reason),
        crate::db::StoreError::Db(e) => store_err(&e),
        crate::db::StoreError::InUse(e) => store_err(&e),
    };
    let Some(recorded) = db.node_meta::<KeyBinding>(BINDING_KEY).map_err(meta_err)? else {
        db.put_node_meta(BINDING_KEY, &actual).map_err(meta_err)?;
        db.flush_blocking().map_err(meta_err)?;
        return Ok(());
    };
    if recorded.node_id != actual.node_id {
        return Err(StartupError::ForeignDatabase {
            db: db_dir,
            recorded: recorded.node_id,
            actual: actual.node_id,
        });
    }
    let mismatch = |file: PathBuf| StartupError::KeyMismatch {
        file: relative(config, &file),
        db: db_dir.clone(),
    };
    if recorded.storage_kcv != actual.storage_kcv {
        return Err(mismatch(keys.storage_path()));
    }
    if recorded.audit_kcv != actual.audit_kcv {
        return Err(mismatch(keys.audit_path()));
    }
    match (&recorded.bank_approval_key, &actual.bank_approval_key) {
        (Some(r), Some(a)) if r != a => return Err(mismatch(keys.bank_approval_path())),
        // The role changed to bank after the first start: record the bank key from now on.
        (None, Some(_)) => {
            db.put_node_meta(BINDING_KEY, &actual).map_err(meta_err)?;
            db.flush_blocking().map_err(meta_err)?;
        }
        _ => {}
    }
    Ok(())
}

fn relative(config: &NodeConfig, file: &Path) -> PathBuf {
    file.strip_prefix(&config.data_dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| file.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kcv_identifies_without_revealing() {
        let a = kcv(&[1; 32]);
        assert_eq!(a.len(), 16);
        assert_eq!(a, kcv(&[1; 32]));
        assert_ne!(a, kcv(&[2; 32]));
        assert!(!a.contains(&hex::encode([1u8; 8])));
    }
}
