//! Back up a wallet, replace its passkey at every trustee, show the old one is refused, delete
//! it — through the [`Client`].
//!
//! ```text
//! deploy/local-cluster.sh up 3
//! cargo run -p dlocker-sdk --example change_passkey -- .dlocker-cluster/trustees.toml
//! ```

use dlocker_sdk::{
    BackupPolicy, Client, Error, OwnerIdentity, PasskeyChangeError, SoftwareAuthenticator, WalletId,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: change_passkey TRUSTEES_TOML")?;
    let client = Client::builder().trustees_file(&path).build()?;
    let wallet = WalletId::parse(format!("example-passkey-{:08x}", rand::random::<u32>()))?;
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 0,
    };
    let prepared = client.prepare_backup(&wallet, b"example seed words", policy)?;
    let mut old = SoftwareAuthenticator::new();
    let owner = OwnerIdentity {
        user_name: "example",
        customer_reference: None,
    };
    client.backup(&prepared, &owner, &mut old, None).await?;
    println!("backed up {wallet} at {} trustees", client.trustees().len());

    let mut new = SoftwareAuthenticator::new();
    let report = match client.change_passkey(&wallet, &mut old, &mut new).await {
        Ok(report) => report,
        // Some trustees missed it: one more touch of the old passkey completes it.
        Err(Error::PasskeyChange(PasskeyChangeError::Incomplete { failed, done })) => {
            eprintln!("not confirmed yet: {failed:?}; resuming");
            client
                .resume_passkey_change(&wallet, &mut old, &done.new_fingerprint)
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "new credential {} at: {:?}",
        hex::encode(&report.new_fingerprint[..8]),
        report.trustees
    );

    // The trustees now name the new credential only: the old passkey cannot act any more.
    let mut third = SoftwareAuthenticator::new();
    match client.change_passkey(&wallet, &mut old, &mut third).await {
        Err(e) => println!(
            "the old passkey is refused (retryable: {}): {e}",
            e.is_retryable()
        ),
        Ok(_) => return Err("the old passkey still works".into()),
    }
    client.delete(&wallet, &mut new).await?;
    println!("deleted with the new passkey");
    Ok(())
}
