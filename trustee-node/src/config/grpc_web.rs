//! `[grpc_web]`: which browser origins may call this node ([`crate::grpc_web`]).

use super::{ConfigError, WebauthnSettings};
use serde::{Deserialize, Serialize};

/// Default for how long a browser may cache a preflight answer (Chromium caps it at 2 hours).
pub const DEFAULT_PREFLIGHT_MAX_AGE_SECS: u64 = 7200;
/// Longest preflight cache allowed in the config (a day: browsers cap it lower anyway).
pub const MAX_PREFLIGHT_MAX_AGE_SECS: u64 = 86_400;

/// `[grpc_web]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrpcWeb {
    /// Origins whose pages may call this node from a browser (absent = `[webauthn] origins`).
    pub allowed_origins: Option<Vec<String>>,
    /// How long a browser may cache a preflight answer, in seconds.
    pub preflight_max_age_secs: Option<u64>,
    /// Request headers a page may send besides gRPC-Web's own (e.g. a bank's tracing header).
    pub allowed_headers: Option<Vec<String>>,
}

/// The validated `[grpc_web]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcWebConfig {
    /// Allowed origins, serialised as browsers send them (`scheme://host[:port]`, no slash).
    pub allowed_origins: Vec<String>,
    /// Preflight cache lifetime in seconds.
    pub preflight_max_age_secs: u64,
    /// Extra request headers the preflight allows (lower case), after gRPC-Web's own.
    pub allowed_headers: Vec<String>,
}

impl GrpcWebConfig {
    /// Whether `origin` (an `Origin` header value) may call this node.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin)
    }
}

fn invalid(reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: "grpc_web.allowed_origins",
        reason: reason.into(),
    }
}

/// The serialised origin of `text` (`https://bank.example`), refusing anything that is not a
/// bare https origin (or http on loopback, as WebAuthn allows).
fn origin_of(text: &str) -> Result<String, ConfigError> {
    let url =
        url::Url::parse(text.trim()).map_err(|e| invalid(format!("{text:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(invalid(format!(
                "{text:?} must be an https:// origin (http:// only for localhost and loopback \
                 addresses)"
            )));
        }
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{text:?} is an origin only: scheme, host and port, no path"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

/// Headers a page may never be allowed to set on a call to a node: the browser owns them
/// (`origin`, `cookie`, …), or they would let a page forge what the origin gate decides on.
const FORBIDDEN_REQUEST_HEADERS: &[&str] = &[
    "origin",
    "host",
    "cookie",
    "authorization",
    "connection",
    "content-length",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// One extra request header name, checked and lower-cased.
fn request_header(name: &str) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        field: "grpc_web.allowed_headers",
        reason,
    };
    let lower = name.trim().to_ascii_lowercase();
    if http::HeaderName::from_bytes(lower.as_bytes()).is_err() || lower.is_empty() {
        return Err(invalid(format!("{name:?} is not an HTTP header name")));
    }
    if FORBIDDEN_REQUEST_HEADERS.contains(&lower.as_str())
        || lower.starts_with("sec-")
        || lower.starts_with("proxy-")
        || lower.starts_with("access-control-")
    {
        return Err(invalid(format!(
            "{name:?} is set by the browser or decides what the node allows; it cannot be allowed"
        )));
    }
    Ok(lower)
}

/// Validates `[grpc_web]`; the origins default to the WebAuthn origins.
pub fn grpc_web_config(
    raw: &RawGrpcWeb,
    webauthn: &WebauthnSettings,
) -> Result<GrpcWebConfig, ConfigError> {
    let allowed_origins = match &raw.allowed_origins {
        Some(list) => list
            .iter()
            .map(|o| origin_of(o))
            .collect::<Result<Vec<_>, _>>()?,
        None => webauthn
            .origins
            .iter()
            .map(|u| u.origin().ascii_serialization())
            .collect(),
    };
    let preflight_max_age_secs = raw
        .preflight_max_age_secs
        .unwrap_or(DEFAULT_PREFLIGHT_MAX_AGE_SECS);
    if preflight_max_age_secs > MAX_PREFLIGHT_MAX_AGE_SECS {
        return Err(ConfigError::Invalid {
            field: "grpc_web.preflight_max_age_secs",
            reason: format!("at most {MAX_PREFLIGHT_MAX_AGE_SECS} (a day)"),
        });
    }
    let allowed_headers = raw
        .allowed_headers
        .iter()
        .flatten()
        .map(|h| request_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GrpcWebConfig {
        allowed_origins,
        preflight_max_age_secs,
        allowed_headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webauthn(origins: &[&str]) -> WebauthnSettings {
        WebauthnSettings {
            rp_id: "localhost".into(),
            rp_name: "x".into(),
            origins: origins
                .iter()
                .map(|o| url::Url::parse(o).expect("url"))
                .collect(),
        }
    }

    #[test]
    fn extra_request_headers_are_checked() {
        let raw = |h: &[&str]| RawGrpcWeb {
            allowed_headers: Some(h.iter().map(|s| (*s).to_owned()).collect()),
            ..RawGrpcWeb::default()
        };
        let w = webauthn(&["https://bank.example"]);
        let c = grpc_web_config(&raw(&["X-Bank-Trace", "traceparent"]), &w).expect("valid");
        assert_eq!(c.allowed_headers, vec!["x-bank-trace", "traceparent"]);
        for bad in ["Origin", "cookie", "sec-fetch-mode", "bad header", ""] {
            let e = grpc_web_config(&raw(&[bad]), &w).expect_err(bad);
            assert!(e.to_string().contains("grpc_web.allowed_headers"), "{e}");
        }
    }

    #[test]
    fn origins_default_to_webauthn_origins_serialised_as_browsers_send_them() {
        let c = grpc_web_config(
            &RawGrpcWeb::default(),
            &webauthn(&["https://bank.example/", "http://localhost:8080"]),
        )
        .expect("valid");
        assert_eq!(
            c.allowed_origins,
            vec!["https://bank.example", "http://localhost:8080"]
        );
        assert!(c.allows("http://localhost:8080"));
        assert!(!c.allows("http://localhost:8081"));
        assert!(!c.allows("https://bank.example.evil"));
        assert_eq!(c.preflight_max_age_secs, DEFAULT_PREFLIGHT_MAX_AGE_SECS);
    }

    #[test]
    fn configured_origins_are_checked() {
        let w = webauthn(&["https://bank.example"]);
        let with = |o: &str| RawGrpcWeb {
            allowed_origins: Some(vec![o.to_owned()]),
            ..RawGrpcWeb::default()
        };
        assert!(grpc_web_config(&with("https://wallet.example:8443"), &w).is_ok());
        for bad in [
            "http://wallet.example",
            "https://wallet.example/page",
            "ftp://x",
            "not a url",
        ] {
            let e = grpc_web_config(&with(bad), &w).expect_err(bad);
            assert!(
                e.to_string().contains("grpc_web.allowed_origins"),
                "{bad}: {e}"
            );
        }
        let e = grpc_web_config(
            &RawGrpcWeb {
                preflight_max_age_secs: Some(MAX_PREFLIGHT_MAX_AGE_SECS + 1),
                ..RawGrpcWeb::default()
            },
            &w,
        )
        .expect_err("too long");
        assert!(e.to_string().contains("preflight_max_age_secs"), "{e}");
    }
}
