//! Back up a wallet, then delete it everywhere with one passkey touch, through the [`Client`].
//!
//! ```text
//! deploy/local-cluster.sh up 3
//! cargo run -p dlocker-sdk --example delete -- .dlocker-cluster/trustees.toml
//! ```
//!
//! The software passkey lives in this process only, so the example backs up its own wallet first;
//! a real app passes its platform passkey to [`Client::delete`].

use dlocker_sdk::{
    BackupPolicy, Client, OwnerIdentity, SoftwareAuthenticator, TrusteeErasure, WalletId,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: delete TRUSTEES_TOML")?;
    let client = Client::builder().trustees_file(&path).build()?;
    let wallet = WalletId::parse(format!("example-delete-{:08x}", rand::random::<u32>()))?;
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 0,
    };
    let prepared = client.prepare_backup(&wallet, b"example seed words", policy)?;
    let mut auth = SoftwareAuthenticator::new();
    let owner = OwnerIdentity {
        user_name: "example",
        customer_reference: None,
    };
    client.backup(&prepared, &owner, &mut auth, None).await?;
    println!("backed up {wallet} at {} trustees", client.trustees().len());

    // A trustee that is down keeps the wallet: the error says so (retryable), and calling again
    // (one more touch) completes the delete.
    let report = loop {
        match client.delete(&wallet, &mut auth).await {
            Ok(report) => break report,
            Err(e) if e.is_retryable() => {
                eprintln!("not confirmed yet: {e}; retrying in 5 s");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    for (name, erasure) in &report.trustees {
        match erasure {
            TrusteeErasure::Erased(r) => println!(
                "{name}: erased epoch {} (manifest {}) at {}",
                r.body().epoch,
                r.body()
                    .manifest_hash
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
                r.body().erased_at
            ),
            TrusteeErasure::NotHeld => println!("{name}: holds nothing for the wallet"),
            other => println!("{name}: {other:?}"),
        }
    }
    println!("passkey touches: {}", auth.touches());
    Ok(())
}
