//! `[admin]`: the operator's admin listener ([`crate::admin`]).

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `[admin]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Socket address of the admin listener (absent = no admin listener).
    pub listen: Option<String>,
    /// Allow a non-loopback admin address (it has no authentication: firewall it).
    pub allow_non_loopback: Option<bool>,
}

/// The validated `[admin]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the admin listener binds; `None` = off.
    pub listen: Option<SocketAddr>,
}

/// Validates `[admin]`.
pub fn admin_config(raw: &RawAdmin) -> Result<AdminConfig, ConfigError> {
    let Some(text) = raw.listen.as_deref() else {
        return Ok(AdminConfig::default());
    };
    let listen: SocketAddr = text.trim().parse().map_err(|_| ConfigError::Invalid {
        field: "admin.listen",
        reason: format!("{text:?} is not a socket address like 127.0.0.1:9101"),
    })?;
    if !listen.ip().is_loopback() && !raw.allow_non_loopback.unwrap_or(false) {
        return Err(ConfigError::Invalid {
            field: "admin.listen",
            reason: format!(
                "{listen} is not a loopback address; the admin listener has no authentication: \
                 bind it to 127.0.0.1 and scrape through a tunnel or a local agent, or set \
                 admin.allow_non_loopback = true with a firewall in front"
            ),
        });
    }
    Ok(AdminConfig {
        listen: Some(listen),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(listen: &str, allow: Option<bool>) -> RawAdmin {
        RawAdmin {
            listen: Some(listen.to_owned()),
            allow_non_loopback: allow,
        }
    }

    #[test]
    fn off_by_default_and_loopback_unless_explicitly_allowed() {
        assert_eq!(
            admin_config(&RawAdmin::default()).expect("default"),
            AdminConfig::default()
        );
        assert!(admin_config(&raw("127.0.0.1:9101", None)).is_ok());
        assert!(admin_config(&raw("[::1]:9101", None)).is_ok());
        let e = admin_config(&raw("0.0.0.0:9101", None))
            .expect_err("public refused")
            .to_string();
        assert!(
            e.contains("admin.listen") && e.contains("allow_non_loopback"),
            "{e}"
        );
        assert!(admin_config(&raw("0.0.0.0:9101", Some(false))).is_err());
        assert_eq!(
            admin_config(&raw("0.0.0.0:9101", Some(true)))
                .expect("allowed")
                .listen,
            Some("0.0.0.0:9101".parse().expect("addr"))
        );
        let e = admin_config(&raw("localhost", None))
            .expect_err("not an address")
            .to_string();
        assert!(e.contains("admin.listen"), "{e}");
    }
}
