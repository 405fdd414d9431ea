//! The trustees file: who holds the shares, where they are, and — most importantly — the identity
//! key each one is *pinned* to. The SDK never trusts a key it was only told over the wire: shares
//! are sealed to, and receipts verified against, the keys in this file.
//!
//! ```toml
//! [[trustee]]
//! name = "bank"
//! endpoint = "http://127.0.0.1:7101"
//! public_key = "02…"          # SEC1 compressed, hex
//! role = "bank"               # exactly one trustee has the bank role
//! # ca_cert = "ca.pem"        # https only: the CA that signed the node's certificate
//! # client_cert = "me.crt"    # https only, for mutual TLS (with client_key)
//! # client_key = "me.key"
//! ```
//! Relative TLS paths are resolved against the directory of the file.

use crate::error::TrusteesError;
use dlocker_proto::keys::{node_id, public_key_from_hex, public_key_hex};
use k256::PublicKey;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Longest trustee name.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// A trustee's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// An independent trustee institution.
    Trustee,
    /// The customer's bank (approves recoveries).
    Bank,
}

impl Role {
    /// `"trustee"` or `"bank"`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Trustee => "trustee",
            Role::Bank => "bank",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TLS material for an `https://` trustee. All paths are PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate that signed the node's certificate.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key for mutual TLS.
    pub client_key: Option<PathBuf>,
}

/// One trustee, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrusteeInfo {
    /// Display name (unique in the set).
    pub name: String,
    /// `http://host:port` or `https://host:port`.
    pub endpoint: String,
    /// Further endpoints of the same node identity (replicas behind other addresses), tried when
    /// one does not answer; every one must present the pinned key. Empty for most trustees.
    pub replicas: Vec<String>,
    /// The pinned identity key.
    pub public_key: PublicKey,
    /// Derived from `public_key` (`dlocker_proto::keys::node_id`).
    pub node_id: String,
    /// Bank or trustee.
    pub role: Role,
    /// TLS settings (https only).
    pub tls: TlsFiles,
    /// The connection a [`crate::Client`] keeps to this trustee (none elsewhere).
    pub(crate) link: crate::transport::Link,
}

impl TrusteeInfo {
    /// A trustee (checked when it joins a [`TrusteeSet`]); the node id is derived from the key.
    pub fn new(
        name: impl Into<String>,
        endpoint: impl Into<String>,
        public_key: PublicKey,
        role: Role,
        tls: TlsFiles,
    ) -> Self {
        Self {
            name: name.into(),
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            replicas: Vec::new(),
            node_id: node_id(&public_key),
            public_key,
            role,
            tls,
            link: crate::transport::Link::default(),
        }
    }

    /// The same trustee, also reachable at `replicas` (other endpoints of the same node
    /// identity).
    pub fn with_replicas(mut self, replicas: impl IntoIterator<Item = String>) -> Self {
        self.replicas = replicas
            .into_iter()
            .map(|e| e.trim_end_matches('/').to_owned())
            .collect();
        self
    }

    /// Every endpoint of this trustee: `endpoint`, then the replicas.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.endpoint.as_str()).chain(self.replicas.iter().map(String::as_str))
    }
}

/// A validated set of trustees: at least one, exactly one bank, distinct names and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrusteeSet {
    trustees: Vec<TrusteeInfo>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    trustee: Vec<RawTrustee>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrustee {
    name: String,
    endpoint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    replicas: Vec<String>,
    public_key: String,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_key: Option<PathBuf>,
}

/// Checks an endpoint: an `http`/`https` URL with a host and port and nothing else.
pub(crate) fn check_endpoint(endpoint: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(endpoint).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("scheme must be http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    if url.port_or_known_default().is_none() {
        return Err("no port".into());
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err("must not contain credentials, a query or a fragment".into());
    }
    if !matches!(url.path(), "" | "/") {
        return Err("must not contain a path".into());
    }
    Ok(url)
}

impl TrusteeSet {
    /// Validates a list of trustees (kept in the given order: share `i` goes to the `i`-th).
    pub fn new(trustees: Vec<TrusteeInfo>) -> Result<Self, TrusteesError> {
        let invalid = |m: String| Err(TrusteesError::Invalid(m));
        if trustees.is_empty() {
            return invalid("no [[trustee]] entries".into());
        }
        if trustees.len() > dlocker_proto::MAX_TRUSTEES {
            return invalid(format!(
                "{} trustees; at most {} are supported",
                trustees.len(),
                dlocker_proto::MAX_TRUSTEES
            ));
        }
        for (i, t) in trustees.iter().enumerate() {
            if t.name.trim().is_empty()
                || t.name.len() > MAX_NAME_LEN
                || t.name.chars().any(char::is_control)
            {
                return invalid(format!(
                    "trustee #{}: name must be 1–{MAX_NAME_LEN} printable characters",
                    i + 1
                ));
            }
            for (k, e) in t.endpoints().enumerate() {
                if let Err(why) = check_endpoint(e) {
                    return invalid(format!("trustee {:?}: endpoint {e:?}: {why}", t.name));
                }
                if e.starts_with("https://") != t.endpoint.starts_with("https://") {
                    return invalid(format!(
                        "trustee {:?}: endpoint {e:?}: every endpoint of a trustee is https or \
                         none is (they share its TLS settings)",
                        t.name
                    ));
                }
                if t.endpoints().take(k).any(|o| o == e) {
                    return invalid(format!("trustee {:?}: endpoint {e:?} listed twice", t.name));
                }
            }
            if t.node_id != node_id(&t.public_key) {
                return invalid(format!(
                    "trustee {:?}: node id does not match its key",
                    t.name
                ));
            }
            let https = t.endpoint.starts_with("https://");
            let has_tls = t.tls.ca_cert.is_some()
                || t.tls.client_cert.is_some()
                || t.tls.client_key.is_some();
            if has_tls && !https {
                return invalid(format!(
                    "trustee {:?}: TLS files given for a non-https endpoint",
                    t.name
                ));
            }
            if t.tls.client_cert.is_some() != t.tls.client_key.is_some() {
                return invalid(format!(
                    "trustee {:?}: client_cert and client_key go together",
                    t.name
                ));
            }
            for o in &trustees[..i] {
                if o.name == t.name {
                    return invalid(format!("duplicate trustee name {:?}", t.name));
                }
                if o.public_key == t.public_key {
                    return invalid(format!(
                        "trustees {:?} and {:?} have the same public key",
                        o.name, t.name
                    ));
                }
            }
        }
        let banks = trustees.iter().filter(|t| t.role == Role::Bank).count();
        if banks != 1 {
            return invalid(format!(
                "exactly one trustee must have role = \"bank\", found {banks}"
            ));
        }
        Ok(Self { trustees })
    }

    /// Parses a trustees file; relative TLS paths stay relative (see [`TrusteeSet::load`]).
    pub fn from_toml(s: &str) -> Result<Self, TrusteesError> {
        Self::from_toml_in(s, None)
    }

    /// Reads and parses a trustees file; relative TLS paths are resolved against its directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrusteesError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TrusteesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_in(&text, path.parent())
    }

    fn from_toml_in(s: &str, base: Option<&Path>) -> Result<Self, TrusteesError> {
        let raw: RawFile =
            toml::from_str(s).map_err(|e| TrusteesError::Syntax(e.message().to_owned()))?;
        let resolve = |p: Option<PathBuf>| match (p, base) {
            (Some(p), Some(b)) if p.is_relative() && !b.as_os_str().is_empty() => Some(b.join(p)),
            (p, _) => p,
        };
        let mut trustees = Vec::with_capacity(raw.trustee.len());
        for (i, r) in raw.trustee.into_iter().enumerate() {
            let public_key = public_key_from_hex(&r.public_key).map_err(|e| {
                TrusteesError::Invalid(format!(
                    "trustee #{} ({:?}): public_key: {e}",
                    i + 1,
                    r.name
                ))
            })?;
            trustees.push(TrusteeInfo {
                node_id: node_id(&public_key),
                name: r.name,
                endpoint: r.endpoint.trim_end_matches('/').to_owned(),
                replicas: r
                    .replicas
                    .iter()
                    .map(|e| e.trim_end_matches('/').to_owned())
                    .collect(),
                public_key,
                role: r.role,
                tls: TlsFiles {
                    ca_cert: resolve(r.ca_cert),
                    client_cert: resolve(r.client_cert),
                    client_key: resolve(r.client_key),
                },
                link: crate::transport::Link::default(),
            });
        }
        Self::new(trustees)
    }

    /// The file format, as [`TrusteeSet::from_toml`] reads it.
    pub fn to_toml(&self) -> String {
        let raw = RawFile {
            trustee: self
                .trustees
                .iter()
                .map(|t| RawTrustee {
                    name: t.name.clone(),
                    endpoint: t.endpoint.clone(),
                    replicas: t.replicas.clone(),
                    public_key: public_key_hex(&t.public_key),
                    role: t.role,
                    ca_cert: t.tls.ca_cert.clone(),
                    client_cert: t.tls.client_cert.clone(),
                    client_key: t.tls.client_key.clone(),
                })
                .collect(),
        };
        // Serialising plain strings and paths cannot fail; an empty string would be refused on load.
        toml::to_string(&raw).unwrap_or_default()
    }

    /// The trustees, in file order.
    pub fn trustees(&self) -> &[TrusteeInfo] {
        &self.trustees
    }
    /// Number of trustees.
    pub fn len(&self) -> usize {
        self.trustees.len()
    }
    /// Always false for a validated set; here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.trustees.is_empty()
    }
    /// The bank trustee.
    pub fn bank(&self) -> &TrusteeInfo {
        // `new` guarantees exactly one bank; fall back to the first rather than panic.
        self.trustees
            .iter()
            .find(|t| t.role == Role::Bank)
            .unwrap_or(&self.trustees[0])
    }
    /// The trustee with this name.
    pub fn by_name(&self, name: &str) -> Option<&TrusteeInfo> {
        self.trustees.iter().find(|t| t.name == name)
    }
    /// The trustee with this node id.
    pub fn by_node_id(&self, node_id: &str) -> Option<&TrusteeInfo> {
        self.trustees.iter().find(|t| t.node_id == node_id)
    }

    /// The same set, each trustee's connection taken from `link_for` (a [`crate::Client`]'s).
    pub(crate) fn with_links(
        &self,
        mut link_for: impl FnMut(&TrusteeInfo) -> crate::transport::Link,
    ) -> Self {
        let trustees = self
            .trustees
            .iter()
            .map(|t| TrusteeInfo {
                link: link_for(t),
                ..t.clone()
            })
            .collect();
        Self { trustees }
    }
}

/// A trustee set of `n` fresh keys on made-up loopback endpoints, trustee `bank` the bank (for
/// unit tests that never connect).
#[cfg(test)]
pub(crate) fn test_set(n: usize, bank: usize) -> (TrusteeSet, Vec<k256::SecretKey>) {
    use k256::elliptic_curve::Generate;
    let keys: Vec<k256::SecretKey> = (0..n)
        .map(|_| k256::SecretKey::generate_from_rng(&mut rand::rng()))
        .collect();
    let infos = keys
        .iter()
        .enumerate()
        .map(|(i, k)| TrusteeInfo {
            name: format!("t{}", i + 1),
            endpoint: format!("http://127.0.0.1:{}", 7101 + i),
            replicas: Vec::new(),
            public_key: k.public_key(),
            node_id: dlocker_proto::keys::node_id(&k.public_key()),
            role: if i == bank { Role::Bank } else { Role::Trustee },
            tls: TlsFiles::default(),
            link: crate::transport::Link::default(),
        })
        .collect();
    (TrusteeSet::new(infos).expect("valid test set"), keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Generate;

    fn key_hex() -> String {
        public_key_hex(&k256::SecretKey::generate_from_rng(&mut rand::rng()).public_key())
    }

    fn entry(name: &str, role: &str, key: &str) -> String {
        format!(
            "[[trustee]]\nname = \"{name}\"\nendpoint = \"http://127.0.0.1:7101\"\npublic_key = \"{key}\"\nrole = \"{role}\"\n"
        )
    }

    fn three() -> String {
        [
            entry("bank", "bank", &key_hex()),
            entry("t2", "trustee", &key_hex()),
            entry("t3", "trustee", &key_hex()),
        ]
        .join("\n")
    }

    #[test]
    fn parses_and_round_trips() {
        let set = TrusteeSet::from_toml(&three()).expect("valid");
        assert_eq!(set.len(), 3);
        assert_eq!(set.bank().name, "bank");
        assert_eq!(set.trustees()[1].name, "t2");
        assert_eq!(
            set.trustees()[0].node_id,
            node_id(&set.trustees()[0].public_key)
        );
        let back = TrusteeSet::from_toml(&set.to_toml()).expect("round trip");
        assert_eq!(back, set);
        assert!(set.by_node_id(&set.trustees()[2].node_id).is_some());
    }

    fn invalid(s: &str) -> String {
        match TrusteeSet::from_toml(s) {
            Err(TrusteesError::Invalid(m) | TrusteesError::Syntax(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn refuses_bad_sets() {
        let k = key_hex();
        assert!(invalid("").contains("no [[trustee]]"));
        assert!(invalid(&entry("a", "trustee", &k)).contains("bank"));
        let two_banks = [
            entry("a", "bank", &key_hex()),
            entry("b", "bank", &key_hex()),
        ]
        .join("\n");
        assert!(invalid(&two_banks).contains("exactly one"));
        let dup_key = [entry("a", "bank", &k), entry("b", "trustee", &k)].join("\n");
        assert!(invalid(&dup_key).contains("same public key"));
        let dup_name = [
            entry("a", "bank", &key_hex()),
            entry("a", "trustee", &key_hex()),
        ]
        .join("\n");
        assert!(invalid(&dup_name).contains("duplicate trustee name"));
        assert!(invalid(&entry("a", "bank", "02abcd")).contains("public_key"));
        assert!(invalid(&entry("a", "bank", &k[2..])).contains("public_key"));
        assert!(invalid(&entry("a", "admin", &k)).contains("unknown variant"));
        let extra = format!("{}colour = \"red\"\n", entry("a", "bank", &k));
        assert!(invalid(&extra).contains("unknown field"));
        let bad_ep = entry("a", "bank", &k).replace("http://127.0.0.1:7101", "ftp://x:1");
        assert!(invalid(&bad_ep).contains("scheme"));
        let tls_on_http = format!("{}ca_cert = \"ca.pem\"\n", entry("a", "bank", &k));
        assert!(invalid(&tls_on_http).contains("non-https"));
        let half_mtls = format!("{}client_cert = \"c.pem\"\n", entry("a", "bank", &k))
            .replace("http://", "https://");
        assert!(invalid(&half_mtls).contains("go together"));
    }

    #[test]
    fn replicas_round_trip_and_are_checked() {
        let base = entry("a", "bank", &key_hex());
        let with = |line: &str| format!("{base}{line}\n");
        let set =
            TrusteeSet::from_toml(&with("replicas = [\"http://127.0.0.1:7201/\"]")).expect("valid");
        let t = &set.trustees()[0];
        assert_eq!(t.replicas, vec!["http://127.0.0.1:7201".to_owned()]);
        assert_eq!(t.endpoints().count(), 2);
        let back = TrusteeSet::from_toml(&set.to_toml()).expect("round trip");
        assert_eq!(back, set);
        assert!(invalid(&with("replicas = [\"ftp://x:1\"]")).contains("endpoint"));
        assert!(
            invalid(&with("replicas = [\"https://127.0.0.1:7201\"]")).contains("https or none")
        );
        assert!(invalid(&with("replicas = [\"http://127.0.0.1:7101\"]")).contains("listed twice"));
    }

    #[test]
    fn load_resolves_tls_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "{}ca_cert = \"tls/ca.pem\"\n",
            entry("a", "bank", &key_hex())
        )
        .replace("http://", "https://");
        let path = dir.path().join("trustees.toml");
        std::fs::write(&path, text).expect("write");
        let set = TrusteeSet::load(&path).expect("load");
        assert_eq!(
            set.trustees()[0].tls.ca_cert.as_deref(),
            Some(dir.path().join("tls/ca.pem").as_path())
        );
        assert!(matches!(
            TrusteeSet::load(dir.path().join("missing.toml")),
            Err(TrusteesError::Read { .. })
        ));
    }
}
