//! A wallet's whole life through the [`Client`]: back up, verify, status, recover on a "new
//! phone" (the bank's staff approve), close every open recovery session, change the passkey,
//! delete. One connection per trustee serves all of it.
//!
//! ```text
//! deploy/local-cluster.sh up 3
//! cargo run -p dlocker-sdk --example lifecycle -- .dlocker-cluster/trustees.toml .dlocker-cluster/staff-operator.key
//! ```
//!
//! The staff key stands in for the bank's staff, who approve a recovery after checking the
//! customer out of band (`dlocker recoveries approve`); the software passkeys stand in for the
//! phone's platform passkey.

use dlocker_sdk::{
    BackupPolicy, Client, OwnerIdentity, RecoverEvent, RecoverOptions, RetryPolicy,
    SoftwareAuthenticator, StaffClient, StaffKey, WalletId,
};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(trustees), Some(staff_key)) = (args.next(), args.next()) else {
        return Err("usage: lifecycle TRUSTEES_TOML STAFF_KEY".into());
    };
    let client = Client::builder()
        .trustees_file(&trustees)
        .request_timeout(Duration::from_secs(10))
        .deadline(Duration::from_secs(60))
        .retry(RetryPolicy::new(
            3,
            Duration::from_millis(300),
            Duration::from_secs(2),
        ))
        .build()?;
    let wallet = WalletId::parse(format!("example-life-{:08x}", rand::random::<u32>()))?;
    let owner = OwnerIdentity {
        user_name: "example",
        customer_reference: None,
    };

    // 1. Backup: one touch registers the passkey at every trustee.
    let policy = BackupPolicy {
        threshold: 2,
        recovery_delay_secs: 1,
    };
    let prepared = client.prepare_backup(&wallet, b"example seed words", policy)?;
    let mut passkey = SoftwareAuthenticator::new();
    let receipts = client.backup(&prepared, &owner, &mut passkey, None).await?;
    println!(
        "backup: {wallet} at {} trustees, {} receipts verified",
        client.trustees().len(),
        receipts.receipts.len()
    );

    // 2. Every trustee proves it still holds a good share; each reports its epochs.
    let report = client.verify(prepared.manifest()).await?;
    println!(
        "verify: {} of {} healthy",
        report.healthy_count(),
        report.entries.len()
    );
    for s in client.status(&wallet).await? {
        let epoch = s.active.map(|a| a.epoch).unwrap_or(0);
        println!("status: {} holds epoch {epoch}", s.name);
    }

    // 3. The phone is lost: recover on a new one. The bank's staff approve when asked.
    let staff = StaffClient::new(
        StaffKey::load(staff_key.as_ref())?,
        client.trustees().bank(),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let progress = |e: RecoverEvent| {
        if let RecoverEvent::AwaitingApproval { bank_session_id } = e {
            let _ = tx.send(bank_session_id);
        }
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(300),
        progress: &progress,
        ..RecoverOptions::default()
    };
    let recovered = {
        let recovery = client.recover(&wallet, &mut passkey, opts);
        tokio::pin!(recovery);
        loop {
            tokio::select! {
                r = &mut recovery => break r?,
                Some(session) = rx.recv() => {
                    staff.approve(&session).await?;
                    println!("recover: bank staff approved session {session}");
                }
            }
        }
    };
    println!(
        "recover: {} bytes back from {:?}",
        recovered.data().expose().len(),
        recovered.used
    );

    // 4. A stranger opened recoveries? The owner closes every open one with one touch.
    let closed = client.cancel_all_recoveries(&wallet, &mut passkey).await?;
    println!("cancel all: {} open sessions closed", closed.closed());

    // 5. A new passkey (two touches), then 6. delete with it (one touch).
    let mut new_passkey = SoftwareAuthenticator::new();
    client
        .change_passkey(&wallet, &mut passkey, &mut new_passkey)
        .await?;
    println!("change passkey: the old one is refused from now on");
    let deleted = client.delete(&wallet, &mut new_passkey).await?;
    println!(
        "delete: {} signed erasure receipts",
        deleted.receipts().count()
    );
    println!(
        "touches: old passkey {}, new passkey {}; connections opened: {}",
        passkey.touches(),
        new_passkey.touches(),
        client.connections_opened()
    );
    Ok(())
}
