//! `example-issuer`: the example pull issuer (a transport department's licence registry) that
//! the integration tests and `dlocker demo` run.
//!
//! ```text
//! example-issuer keygen --out issuer.key
//! example-issuer register --locker http://127.0.0.1:7101 --key issuer.key --endpoint http://127.0.0.1:7301
//! example-issuer serve --listen 127.0.0.1:7301 --key issuer.key --locker-key 02…
//! ```

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dlocker_locker::PrincipalKey;
use dlocker_locker::example_issuer::{DOC_TYPE, ExampleIssuer, ISSUER_ID, NAME};
use dlocker_locker::repository::RepositoryServer;
use dlocker_locker::request::{self, LockerAction, params};
use dlocker_proto::pb;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "example-issuer",
    about = "Example dLocker pull issuer (driving licences)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the issuer's signing key (file mode 0600) and print its public key.
    Keygen {
        /// Where to write it (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Register at a locker as a pull issuer (pending until the operator approves).
    Register {
        /// The locker node's endpoint.
        #[arg(long)]
        locker: String,
        /// The issuer's key file.
        #[arg(long)]
        key: PathBuf,
        /// This repository's endpoint, as the locker will call it.
        #[arg(long)]
        endpoint: String,
        /// Issuer id.
        #[arg(long, default_value = ISSUER_ID)]
        issuer_id: String,
    },
    /// Serve the repository until interrupted.
    Serve {
        /// Address to bind.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The issuer's key file.
        #[arg(long)]
        key: PathBuf,
        /// Issuer id.
        #[arg(long, default_value = ISSUER_ID)]
        issuer_id: String,
        /// Hex key of the locker allowed to pull (its node identity key). Without it, anyone may.
        #[arg(long)]
        locker_key: Option<String>,
        /// JSON registry (`[{"lookup":{…},"claims":{…}}]`); default: two sample licences.
        #[arg(long)]
        records: Option<PathBuf>,
    },
}

fn load_key(path: &PathBuf) -> anyhow::Result<PrincipalKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    PrincipalKey::from_hex(&text)
        .with_context(|| format!("{} does not hold a key (64 hex characters)", path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    match Cli::parse().command {
        Command::Keygen { out } => {
            use std::io::Write as _;
            let key = PrincipalKey::generate();
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                o.mode(0o600);
            }
            let mut f = o
                .open(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            f.write_all(key.to_hex().as_bytes())?;
            f.write_all(b"\n")?;
            println!("{}", key.public_key_hex());
        }
        Command::Register {
            locker,
            key,
            endpoint,
            issuer_id,
        } => {
            let key = load_key(&key)?;
            let mut c = pb::document_service_client::DocumentServiceClient::connect(locker.clone())
                .await
                .with_context(|| format!("connecting to {locker}"))?;
            let info = c
                .get_locker_info(pb::GetLockerInfoRequest {})
                .await?
                .into_inner();
            let types = vec![DOC_TYPE.to_owned()];
            let pk = key.public_key();
            let p = params::register_issuer(&issuer_id, NAME, &types, &pk, false, &endpoint);
            let r = c
                .register_issuer(pb::RegisterIssuerRequest {
                    request_encoded: request::sign(
                        key.signing_key(),
                        &info.locker_id,
                        LockerAction::RegisterIssuer,
                        &issuer_id,
                        p,
                    ),
                    issuer_id: issuer_id.clone(),
                    name: NAME.to_owned(),
                    doc_types: types,
                    request_key: dlocker_proto::keys::encode_public_key(&pk).to_vec(),
                    hosted_signing: false,
                    pull_endpoint: endpoint,
                })
                .await?
                .into_inner();
            println!(
                "issuer {} registered at locker {}: {}",
                r.issuer_id, info.locker_id, r.state
            );
        }
        Command::Serve {
            listen,
            key,
            issuer_id,
            locker_key,
            records,
        } => {
            let key = load_key(&key)?;
            let source = match records {
                Some(p) => ExampleIssuer::from_json(
                    &std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?,
                )
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                None => ExampleIssuer::sample(),
            };
            let public = key.public_key_hex();
            let mut server = RepositoryServer::new(&issuer_id, key, source);
            if let Some(hex) = locker_key {
                let k = dlocker_proto::keys::public_key_from_hex(&hex)
                    .map_err(|e| anyhow::anyhow!("--locker-key: {e}"))?;
                server = server.with_locker_key(k);
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let addr = listener.local_addr()?;
            println!("example-issuer {issuer_id} serving on http://{addr} (public key {public})");
            server
                .serve(listener, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
        }
    }
    Ok(())
}
