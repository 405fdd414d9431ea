//! `trustee-node admin stats|wallets`: what a stopped node's database holds (counts, sizes, the
//! oldest pending things), read without the keys. A running sled node holds the database lock:
//! its figures are on the admin listener's `/metrics` instead. A PostgreSQL node's schema can be
//! read while its replicas run.

use super::{CeremonyRecord, CeremonyState, WalletMeta};
use crate::config::NodeConfig;
use crate::config::storage::StorageConfig;
use crate::recovery::session::SESSION_STATES;
use dlocker_store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DbStatsError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// No database yet.
    #[error("{0} does not exist: this node has never served")]
    NoDatabase(PathBuf),
    /// The node is running.
    #[error(
        "{0} is in use (is the node running?): stop it, or read /metrics on its admin listener"
    )]
    InUse(PathBuf),
    /// The database failed. (Not a `source`: the message carries it, and a chain printer would
    /// repeat it.)
    #[error("reading {place}: {error}")]
    Db {
        /// The database (directory or schema).
        place: String,
        /// The error.
        error: dlocker_store::Error,
    },
}

/// The database's figures.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DbStats {
    /// Size on disk.
    pub db_size_bytes: u64,
    /// Wallets with a receipted deposit.
    pub wallets: u64,
    /// Sum of their encrypted blobs.
    pub wallet_blob_bytes: u64,
    /// Unix seconds of the oldest and newest deposit.
    pub oldest_deposit_at: Option<u64>,
    /// Unix seconds.
    pub newest_deposit_at: Option<u64>,
    /// Enrollment ceremonies begun and not finished (until swept at expiry).
    pub pending_ceremonies: u64,
    /// Unix seconds the oldest of them began.
    pub oldest_pending_ceremony_at: Option<u64>,
    /// Recovery sessions by state (evaluated now).
    pub recovery_sessions: BTreeMap<String, u64>,
    /// Ended sessions past `housekeeping.recovery_session_retention_secs`: the next sweep prunes
    /// them.
    pub recovery_sessions_prunable: u64,
    /// Deposits whose backup is not confirmed complete (`ConfirmBackup`).
    pub unconfirmed_backups: u64,
    /// Unix seconds the oldest of them was stored.
    pub oldest_unconfirmed_at: Option<u64>,
    /// Unconfirmed backups past `housekeeping.unconfirmed_backup_expiry_secs`: the next sweep
    /// erases them.
    pub unconfirmed_backups_expired: u64,
    /// Staged (uncommitted) epochs.
    pub epochs_staged: u64,
    /// Events in the outbox.
    pub events: u64,
    /// Audit log entries.
    pub audit_entries: u64,
}

/// One wallet, as `admin wallets` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WalletRow {
    /// Wallet id.
    pub wallet_id: String,
    /// Epoch held.
    pub epoch: u64,
    /// This node's share index.
    pub share_index: u16,
    /// Unix seconds.
    pub enrolled_at: u64,
    /// Encrypted blob size.
    pub blob_bytes: u64,
}

fn open(dir: &Path) -> Result<(Store, String), DbStatsError> {
    open_with(dir).map(|(store, place, _)| (store, place))
}

fn open_with(dir: &Path) -> Result<(Store, String, NodeConfig), DbStatsError> {
    let config = NodeConfig::load(dir)?;
    let place = config.storage_label();
    let pg = match &config.storage {
        StorageConfig::Sled => None,
        StorageConfig::Postgres(pg) => Some(pg.pg_config(dir)?),
    };
    if let Some(pg) = pg {
        let store = Store::open_postgres(&pg, super::migrations::ALL).map_err(|error| {
            DbStatsError::Db {
                place: place.clone(),
                error,
            }
        })?;
        return Ok((store, place, config));
    }
    let path = config.db_path();
    // sled creates a missing database: refuse instead, nothing is written here.
    if !path.join("conf").exists() {
        return Err(DbStatsError::NoDatabase(path));
    }
    let db = sled::Config::new()
        .path(&path)
        .open()
        .map_err(|error| match &error {
            // sled reports its file lock as an `Other` I/O error with this text.
            sled::Error::Io(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock") =>
            {
                DbStatsError::InUse(path.clone())
            }
            _ => DbStatsError::Db {
                place: place.clone(),
                error: error.into(),
            },
        })?;
    Ok((Store::from_sled(db), place, config))
}

fn db_err(place: &str) -> impl Fn(dlocker_store::Error) -> DbStatsError + '_ {
    move |error| DbStatsError::Db {
        place: place.to_owned(),
        error,
    }
}

/// The figures of the database of the (stopped) node in `dir`.
pub fn stats(dir: &Path, now: u64) -> Result<DbStats, DbStatsError> {
    let (db, place, config) = open_with(dir)?;
    let hk = config.housekeeping;
    let e = db_err(&place);
    let tree = |name: &'static str| db.tree(name).map_err(&e);

    let mut s = DbStats {
        db_size_bytes: db.size_on_disk().map_err(&e)?,
        wallets: 0,
        wallet_blob_bytes: 0,
        oldest_deposit_at: None,
        newest_deposit_at: None,
        pending_ceremonies: 0,
        oldest_pending_ceremony_at: None,
        recovery_sessions: SESSION_STATES
            .iter()
            .map(|s| ((*s).to_owned(), 0))
            .collect(),
        recovery_sessions_prunable: 0,
        unconfirmed_backups: 0,
        oldest_unconfirmed_at: None,
        unconfirmed_backups_expired: 0,
        epochs_staged: tree(super::STAGED_TREE)?.len().map_err(&e)? as u64,
        events: tree(super::EVENTS_TREE)?.len().map_err(&e)? as u64,
        audit_entries: tree(super::AUDIT_TREE)?.len().map_err(&e)? as u64,
    };
    for (_, v) in tree(super::WALLETS_TREE)?.entries().map_err(&e)? {
        let Ok(meta) = serde_json::from_slice::<WalletMeta>(&v) else {
            continue;
        };
        s.wallets += 1;
        s.wallet_blob_bytes += meta.blob_size;
        s.oldest_deposit_at = Some(
            s.oldest_deposit_at
                .map_or(meta.enrolled_at, |o| o.min(meta.enrolled_at)),
        );
        s.newest_deposit_at = Some(
            s.newest_deposit_at
                .map_or(meta.enrolled_at, |o| o.max(meta.enrolled_at)),
        );
    }
    for (_, v) in tree(super::CEREMONIES_TREE)?.entries().map_err(&e)? {
        let Ok(c) = serde_json::from_slice::<CeremonyRecord>(&v) else {
            continue;
        };
        if matches!(c.state, CeremonyState::Pending { .. }) && c.expires_at > now {
            s.pending_ceremonies += 1;
            s.oldest_pending_ceremony_at = Some(
                s.oldest_pending_ceremony_at
                    .map_or(c.created_at, |o| o.min(c.created_at)),
            );
        }
    }
    for (_, v) in tree(super::SESSIONS_TREE)?.entries().map_err(&e)? {
        let Ok(stored) = serde_json::from_slice::<super::StoredSession>(&v) else {
            continue;
        };
        *s.recovery_sessions
            .entry(stored.session.state_name(now).to_owned())
            .or_default() += 1;
        if hk
            .recovery_session_retention_secs
            .is_some_and(|r| stored.session.prunable(now, r))
        {
            s.recovery_sessions_prunable += 1;
        }
    }
    for (_, v) in tree(super::UNCONFIRMED_TREE)?.entries().map_err(&e)? {
        let Ok(at) = <[u8; 8]>::try_from(v.as_slice()).map(u64::from_be_bytes) else {
            continue;
        };
        s.unconfirmed_backups += 1;
        s.oldest_unconfirmed_at = Some(s.oldest_unconfirmed_at.map_or(at, |o| o.min(at)));
        if hk
            .unconfirmed_backup_expiry_secs
            .is_some_and(|x| at.saturating_add(x) <= now)
        {
            s.unconfirmed_backups_expired += 1;
        }
    }
    Ok(s)
}

/// Every wallet the (stopped) node in `dir` holds, oldest deposit first.
pub fn wallets(dir: &Path) -> Result<Vec<WalletRow>, DbStatsError> {
    let (db, place) = open(dir)?;
    let e = db_err(&place);
    let mut rows = Vec::new();
    for (k, v) in db
        .tree(super::WALLETS_TREE)
        .map_err(&e)?
        .entries()
        .map_err(&e)?
    {
        let Ok(meta) = serde_json::from_slice::<WalletMeta>(&v) else {
            continue;
        };
        rows.push(WalletRow {
            wallet_id: String::from_utf8_lossy(&k).into_owned(),
            epoch: meta.epoch,
            share_index: meta.share_index,
            enrolled_at: meta.enrolled_at,
            blob_bytes: meta.blob_size,
        });
    }
    rows.sort_by(|a, b| (a.enrolled_at, &a.wallet_id).cmp(&(b.enrolled_at, &b.wallet_id)));
    Ok(rows)
}

/// Whether the (stopped) node in `dir` has a stored staff roster: once staff were changed by a
/// signed staff-admin request (`dlocker staff`), that roster is authoritative and the config's
/// `[[bank.staff]]` no longer applies. Reads only.
pub fn staff_roster_is_managed(dir: &Path) -> Result<bool, DbStatsError> {
    let (db, place) = open(dir)?;
    let e = db_err(&place);
    // On sled, opening a missing tree would create it: look it up by name first.
    if let Some(sled) = db.sled() {
        let name = super::STAFF_ROSTER_TREE.as_bytes();
        if !sled.tree_names().iter().any(|n| n.as_ref() == name) {
            return Ok(false);
        }
    }
    db.tree(super::STAFF_ROSTER_TREE)
        .map_err(&e)?
        .contains_key(super::ROSTER_KEY)
        .map_err(&e)
}
