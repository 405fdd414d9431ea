//! Back up a wallet, replace its passkey at every trustee, show the old one is refused, delete it.
//!
//! ```text
//! deploy/local-cluster.sh up 3
//! cargo run -p dlocker-sdk --example change_passkey -- .dlocker-cluster/trustees.toml
//! ```

use dlocker_sdk::{
    BackupPolicy, PasskeyChangeError, PreparedBackup, SoftwareAuthenticator, TrusteeSet,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: change_passkey TRUSTEES_TOML")?;
    let trustees = TrusteeSet::load(&path)?;
    let wallet = format!("example-passkey-{:08x}", rand::random::<u32>());
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 0,
    };
    let prepared = PreparedBackup::new(&trustees, &wallet, b"example seed words", policy)?;
    let mut old = SoftwareAuthenticator::new();
    dlocker_sdk::backup(&trustees, &prepared, "example", &mut old, &|_| {}).await?;
    println!("backed up {wallet} at {} trustees", trustees.len());

    let mut new = SoftwareAuthenticator::new();
    let report = match dlocker_sdk::change_passkey(&trustees, &wallet, &mut old, &mut new).await {
        Ok(report) => report,
        // Some trustees missed it: one more touch of the old passkey completes it.
        Err(PasskeyChangeError::Incomplete { failed, done }) => {
            eprintln!("not confirmed yet: {failed:?}; resuming");
            dlocker_sdk::resume_passkey_change(&trustees, &wallet, &mut old, &done.new_fingerprint)
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
    match dlocker_sdk::change_passkey(&trustees, &wallet, &mut old, &mut third).await {
        Err(e) => println!("the old passkey is refused: {e}"),
        Ok(_) => return Err("the old passkey still works".into()),
    }
    dlocker_sdk::delete_backup(&trustees, &wallet, &mut new).await?;
    println!("deleted with the new passkey");
    Ok(())
}
