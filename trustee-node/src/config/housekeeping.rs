//! `[housekeeping]`: what the node erases on its own, and how often it looks
//! ([`crate::housekeeping`]).

use super::ConfigError;
use serde::{Deserialize, Serialize};

/// Defaults.
pub mod defaults {
    /// Ended recovery sessions are kept this long after they end (90 days).
    pub const RECOVERY_SESSION_RETENTION_SECS: u64 = 90 * 24 * 3600;
    /// A backup whose completion was never confirmed is erased this long after its deposit
    /// (30 days).
    pub const UNCONFIRMED_BACKUP_EXPIRY_SECS: u64 = 30 * 24 * 3600;
    /// How often the housekeeping sweep runs (5 minutes).
    pub const SWEEP_INTERVAL_SECS: u64 = 300;
}

/// Longest retention or expiry accepted (10 years).
const MAX_SECS: u64 = 10 * 366 * 24 * 3600;

/// `[housekeeping]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHousekeeping {
    /// Seconds an ended recovery session is kept (0 = forever).
    pub recovery_session_retention_secs: Option<u64>,
    /// Seconds an unconfirmed backup is kept after its deposit (0 = forever).
    pub unconfirmed_backup_expiry_secs: Option<u64>,
    /// Seconds between housekeeping sweeps.
    pub sweep_interval_secs: Option<u64>,
}

/// The validated `[housekeeping]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HousekeepingConfig {
    /// Ended recovery sessions are pruned this many seconds after they end; `None` = kept.
    pub recovery_session_retention_secs: Option<u64>,
    /// A deposit whose backup was never confirmed (`ConfirmBackup`) is erased this many seconds
    /// after it was stored; `None` = kept.
    pub unconfirmed_backup_expiry_secs: Option<u64>,
    /// Seconds between sweeps.
    pub sweep_interval_secs: u64,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        Self {
            recovery_session_retention_secs: Some(defaults::RECOVERY_SESSION_RETENTION_SECS),
            unconfirmed_backup_expiry_secs: Some(defaults::UNCONFIRMED_BACKUP_EXPIRY_SECS),
            sweep_interval_secs: defaults::SWEEP_INTERVAL_SECS,
        }
    }
}

fn period(
    field: &'static str,
    value: Option<u64>,
    default: u64,
) -> Result<Option<u64>, ConfigError> {
    match value.unwrap_or(default) {
        0 => Ok(None),
        v if v > MAX_SECS => Err(ConfigError::Invalid {
            field,
            reason: format!("{v} seconds is more than 10 years; use 0 to keep forever"),
        }),
        v => Ok(Some(v)),
    }
}

/// Validates `[housekeeping]`.
pub fn housekeeping_config(raw: &RawHousekeeping) -> Result<HousekeepingConfig, ConfigError> {
    let sweep_interval_secs = raw
        .sweep_interval_secs
        .unwrap_or(defaults::SWEEP_INTERVAL_SECS);
    if !(1..=24 * 3600).contains(&sweep_interval_secs) {
        return Err(ConfigError::Invalid {
            field: "housekeeping.sweep_interval_secs",
            reason: format!("{sweep_interval_secs} is outside 1..=86400"),
        });
    }
    Ok(HousekeepingConfig {
        recovery_session_retention_secs: period(
            "housekeeping.recovery_session_retention_secs",
            raw.recovery_session_retention_secs,
            defaults::RECOVERY_SESSION_RETENTION_SECS,
        )?,
        unconfirmed_backup_expiry_secs: period(
            "housekeeping.unconfirmed_backup_expiry_secs",
            raw.unconfirmed_backup_expiry_secs,
            defaults::UNCONFIRMED_BACKUP_EXPIRY_SECS,
        )?,
        sweep_interval_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_zero_and_bounds() {
        assert_eq!(
            housekeeping_config(&RawHousekeeping::default()).expect("default"),
            HousekeepingConfig::default()
        );
        let off = housekeeping_config(&RawHousekeeping {
            recovery_session_retention_secs: Some(0),
            unconfirmed_backup_expiry_secs: Some(0),
            sweep_interval_secs: Some(1),
        })
        .expect("zero = keep");
        assert_eq!(off.recovery_session_retention_secs, None);
        assert_eq!(off.unconfirmed_backup_expiry_secs, None);
        let e = housekeeping_config(&RawHousekeeping {
            unconfirmed_backup_expiry_secs: Some(u64::MAX),
            ..Default::default()
        })
        .expect_err("too long")
        .to_string();
        assert!(
            e.contains("housekeeping.unconfirmed_backup_expiry_secs"),
            "{e}"
        );
        let e = housekeeping_config(&RawHousekeeping {
            sweep_interval_secs: Some(0),
            ..Default::default()
        })
        .expect_err("zero interval")
        .to_string();
        assert!(e.contains("housekeeping.sweep_interval_secs"), "{e}");
    }
}
