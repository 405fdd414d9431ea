//! `[locker]`: the document locker hosted by this node ([`crate::locker`]).

use super::ConfigError;
use dlocker_locker::server::LockerSettings;
use serde::{Deserialize, Serialize};

/// `[locker]` as written (every key optional; absent = disabled).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocker {
    /// Serve the DocumentService.
    pub enabled: Option<bool>,
    /// Largest self-attested file.
    pub max_upload_bytes: Option<usize>,
    /// Most uploads per holder.
    pub max_uploads_per_holder: Option<usize>,
    /// Timeout for issuer repositories.
    pub pull_timeout_secs: Option<u64>,
    /// Validity of a served status list credential.
    pub status_list_ttl_secs: Option<u64>,
}

/// Validated `[locker]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockerConfig {
    /// Whether the node serves the DocumentService.
    pub enabled: bool,
    /// Largest self-attested file.
    pub max_upload_bytes: usize,
    /// Most uploads per holder.
    pub max_uploads_per_holder: usize,
    /// Timeout for issuer repositories.
    pub pull_timeout_secs: u64,
    /// Validity of a served status list credential.
    pub status_list_ttl_secs: u64,
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &'static str,
    v: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        return Err(ConfigError::Invalid {
            field,
            reason: format!("{v} is outside {min}..={max}"),
        });
    }
    Ok(v)
}

/// Checks `[locker]`.
pub fn locker_config(raw: &RawLocker) -> Result<LockerConfig, ConfigError> {
    let d = LockerSettings::new("");
    Ok(LockerConfig {
        enabled: raw.enabled.unwrap_or(false),
        // A self-attested file travels base64url inside a JWS inside the request: keep it well
        // inside the gRPC message limit.
        max_upload_bytes: in_range(
            "locker.max_upload_bytes",
            raw.max_upload_bytes,
            d.max_upload_bytes,
            1,
            64 * 1024,
        )?,
        max_uploads_per_holder: in_range(
            "locker.max_uploads_per_holder",
            raw.max_uploads_per_holder,
            d.max_uploads_per_holder,
            0,
            d.max_documents_per_holder,
        )?,
        pull_timeout_secs: in_range(
            "locker.pull_timeout_secs",
            raw.pull_timeout_secs,
            d.pull_timeout_secs,
            1,
            25,
        )?,
        status_list_ttl_secs: in_range(
            "locker.status_list_ttl_secs",
            raw.status_list_ttl_secs,
            d.status_list_ttl_secs,
            10,
            7 * 24 * 3600,
        )?,
    })
}

/// The `[locker]` section `trustee-node init` writes for a bank node.
pub const LOCKER_SECTION: &str = r#"
[locker]
# The document locker (DocumentService): issuers approved by the operator, verifiable
# credentials bound to the holder's wallet key, consent-gated fetch, re-issue after recovery.
# Normally enabled on the bank's node only. Optional keys: max_upload_bytes (65536),
# max_uploads_per_holder (16), pull_timeout_secs (10), status_list_ttl_secs (300).
enabled = true
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locker_section_defaults_and_bounds() {
        let c = locker_config(&RawLocker::default()).expect("defaults");
        assert!(!c.enabled, "absent means disabled");
        assert_eq!(c.max_upload_bytes, 64 * 1024);
        let on = locker_config(&RawLocker {
            enabled: Some(true),
            ..RawLocker::default()
        })
        .expect("enabled");
        assert!(on.enabled);
        for bad in [
            RawLocker {
                max_upload_bytes: Some(10 * 1024 * 1024),
                ..RawLocker::default()
            },
            RawLocker {
                pull_timeout_secs: Some(0),
                ..RawLocker::default()
            },
        ] {
            assert!(locker_config(&bad).is_err());
        }
        let parsed: crate::config::RawConfig = toml::from_str(&format!(
            "[node]\nname='b'\nrole='bank'\nlisten='127.0.0.1:1'\n\
             endpoint='http://127.0.0.1:1'\n[webauthn]\nrp_id='localhost'\n\
             origins=['https://localhost']\n{LOCKER_SECTION}"
        ))
        .expect("the section init writes parses");
        assert_eq!(parsed.locker.enabled, Some(true));
    }
}
