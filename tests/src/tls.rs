//! Throwaway TLS material for a test node: a private CA, a server certificate for
//! `localhost`/`127.0.0.1`, optionally a client CA and client certificate for mutual TLS.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A client certificate and key (PEM), for mutual TLS.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// Certificate file.
    pub cert: PathBuf,
    /// Key file.
    pub key: PathBuf,
    /// Certificate PEM.
    pub cert_pem: String,
    /// Key PEM.
    pub key_pem: String,
}

/// What a client needs to talk to a TLS node.
#[derive(Clone, Debug)]
pub struct NodeTls {
    /// The CA certificate to pin (PEM file).
    pub ca_cert: PathBuf,
    /// The same, as PEM text.
    pub ca_pem: String,
    /// Set when the node requires client certificates; listed in `[tls] event_readers`.
    pub client: Option<ClientCert>,
    /// Another client certificate of the same client CA, NOT listed as an event reader.
    pub unlisted_client: Option<ClientCert>,
}

fn ca(common_name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("CA key")).expect("self-signed CA")
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: Vec<String>,
    cn: &str,
    eku: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let (pem, key, _) = leaf_der(issuer, names, cn, eku);
    (pem, key)
}

/// A leaf certificate (PEM), its key (PEM) and the certificate's DER.
fn leaf_der(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: Vec<String>,
    cn: &str,
    eku: ExtendedKeyUsagePurpose,
) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().expect("leaf key");
    let mut p = CertificateParams::new(names).expect("leaf params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![eku];
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = p.signed_by(&key, issuer).expect("sign leaf");
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A private CA and a server certificate for `localhost` / `127.0.0.1` written to `dir` as
/// `ca.crt`, `node.crt` and `node.key` (PEM); returns their paths in that order (the docs' TLS
/// files, for `doc_run`).
pub fn write_server_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("create cert dir");
    let server_ca = ca("dLocker doc CA");
    let (cert_pem, key_pem) = leaf(
        &server_ca,
        vec!["localhost".into(), "127.0.0.1".into()],
        "trustee node",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let paths = (
        dir.join("ca.crt"),
        dir.join("node.crt"),
        dir.join("node.key"),
    );
    write(&paths.0, &server_ca.pem());
    write(&paths.1, &cert_pem);
    write(&paths.2, &key_pem);
    (paths.0, paths.1, paths.2)
}

/// Generates certificates into `DIR/tls/`, appends a `[tls]` section to `DIR/config.toml` (paths
/// relative to the data directory, as the node's config documents) and makes the advertised
/// endpoint `https://`. With `mtls`, the
/// node also requires client certificates signed by a separate client CA.
pub fn configure_node_tls(dir: &Path, mtls: bool) -> NodeTls {
    let tls_dir = dir.join("tls");
    std::fs::create_dir_all(&tls_dir).expect("create tls dir");
    let server_ca = ca("dLocker test server CA");
    let (cert_pem, key_pem) = leaf(
        &server_ca,
        vec!["localhost".into(), "127.0.0.1".into()],
        "trustee node",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let ca_pem = server_ca.pem();
    let ca_cert = tls_dir.join("ca.crt");
    write(&ca_cert, &ca_pem);
    write(&tls_dir.join("node.crt"), &cert_pem);
    write(&tls_dir.join("node.key"), &key_pem);

    let mut section = String::from("\n[tls]\ncert = \"tls/node.crt\"\nkey = \"tls/node.key\"\n");
    let mut unlisted_client = None;
    let client = mtls.then(|| {
        let client_ca = ca("dLocker test client CA");
        write(&tls_dir.join("clients-ca.crt"), &client_ca.pem());
        let make = |name: &str| {
            let (cert_pem, key_pem, der) = leaf_der(
                &client_ca,
                vec![format!("{name}-client")],
                name,
                ExtendedKeyUsagePurpose::ClientAuth,
            );
            let cert = tls_dir.join(format!("{name}.crt"));
            let key = tls_dir.join(format!("{name}.key"));
            write(&cert, &cert_pem);
            write(&key, &key_pem);
            (
                ClientCert {
                    cert,
                    key,
                    cert_pem,
                    key_pem,
                },
                der,
            )
        };
        let (client, der) = make("client");
        unlisted_client = Some(make("other").0);
        // The first client (the bank's notifier, say) may read the event stream.
        use sha2::Digest as _;
        section.push_str(&format!(
            "client_ca = \"tls/clients-ca.crt\"\nevent_readers = [\"{}\"]\n",
            hex::encode(sha2::Sha256::digest(&der))
        ));
        client
    });
    // TLS on means the advertised endpoint is https:// (the node refuses the mismatch).
    let cfg_path = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg_path).expect("read config.toml");
    assert!(
        text.contains("endpoint = \"http://"),
        "config.toml has a plaintext endpoint line:\n{text}"
    );
    let mut text = text.replacen("endpoint = \"http://", "endpoint = \"https://", 1);
    text.push_str(&section);
    let mut f = std::fs::File::create(&cfg_path).expect("rewrite config.toml");
    f.write_all(text.as_bytes()).expect("write config.toml");
    NodeTls {
        ca_cert,
        ca_pem,
        client,
        unlisted_client,
    }
}
