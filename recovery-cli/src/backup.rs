//! `dlocker backup …`: inspect wallet backups held by the trustees.

use crate::cluster::load_trustees;
use crate::output::{hinted, print_json, progress, short, table};
use clap::{Args, Subcommand};
use dlocker_proto::manifest::Manifest;
use dlocker_sdk::protocol::verify_backup_with_progress;
use dlocker_sdk::protocol::{TrusteeEpochs, epoch_status};
use dlocker_sdk::{ShareStatus, TrusteeSet, VerifyReport};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// Ask every trustee to prove (without revealing it) that it still holds a valid share, and
    /// show the epochs (active and staged) every trustee in the file holds for the wallet.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The trustees file.
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
    /// The backup's manifest (canonical bytes, as `dlocker demo` writes them; hex also accepted).
    #[arg(long, value_name = "FILE")]
    manifest: PathBuf,
}

/// Reads a manifest file: raw canonical bytes, or the same bytes as hex text.
pub(crate) fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let bytes = std::fs::read(path).map_err(|e| {
        hinted(
            format!("cannot read manifest {}: {e}", path.display()),
            "pass the manifest file saved at backup time",
        )
    })?;
    let raw = Manifest::decode(&bytes);
    let hexed = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| hex::decode(s.trim()).ok())
        .map(|b| Manifest::decode(&b));
    match (raw, hexed) {
        (Ok(m), _) | (_, Some(Ok(m))) => Ok(m),
        (Err(e), _) => Err(hinted(
            format!("{} is not a dLocker manifest: {e}", path.display()),
            "pass the manifest file saved at backup time",
        )),
    }
}

/// Runs `verify_backup` with a progress bar.
pub(crate) async fn verify(set: &TrusteeSet, manifest: &Manifest, json: bool) -> VerifyReport {
    let pb = progress(manifest.trustees().len(), "proving share possession", json);
    let report = verify_backup_with_progress(set, manifest, &|_| pb.inc(1)).await;
    pb.finish_and_clear();
    report
}

/// The verification table and a summary line.
pub(crate) fn print_report(r: &VerifyReport) {
    let mut t = table(&["Trustee", "Node id", "Share", "Epoch", "Status", "Detail"]);
    for e in &r.entries {
        let (status, detail) = match &e.status {
            ShareStatus::Healthy => ("healthy", "proved possession of its share".to_owned()),
            ShareStatus::Unhealthy(why) => ("UNHEALTHY", why.clone()),
            other => ("UNHEALTHY", format!("{other:?}")),
        };
        t.add_row(vec![
            e.name.clone(),
            short(&e.node_id),
            e.share_index.to_string(),
            e.epoch.to_string(),
            status.to_owned(),
            detail,
        ]);
    }
    println!("{t}");
    println!(
        "wallet {} epoch {}: {} of {} trustees healthy, threshold {} — {}",
        r.wallet_id,
        r.epoch,
        r.healthy_count(),
        r.entries.len(),
        r.threshold,
        if r.recoverable() {
            "recoverable"
        } else {
            "NOT RECOVERABLE"
        }
    );
}

/// Every trustee's epochs of the wallet (`GetBackupStatus`): active and staged, marking the
/// manifest being verified.
pub(crate) fn print_epochs(manifest: &Manifest, epochs: &[TrusteeEpochs]) {
    let current = manifest.hash().to_string();
    let mut t = table(&[
        "Trustee",
        "Node id",
        "Active epoch",
        "Share",
        "Manifest",
        "Staged epoch",
        "Staged until (unix)",
    ]);
    for e in epochs {
        let (active, share, hash) = match (&e.active, &e.error) {
            (_, Some(err)) => ("?".to_owned(), String::new(), err.clone()),
            (Some((epoch, index, h)), None) => {
                let mark = if *h == current {
                    " (this manifest)"
                } else {
                    ""
                };
                (
                    epoch.to_string(),
                    index.to_string(),
                    format!("{}{mark}", short(h)),
                )
            }
            (None, None) => (
                "—".to_owned(),
                String::new(),
                "holds nothing active".to_owned(),
            ),
        };
        let (staged, until) = match &e.staged {
            Some((epoch, index, h, expires_at)) => (
                format!("{epoch} (share {index}, {})", short(h)),
                expires_at.to_string(),
            ),
            None => ("—".to_owned(), String::new()),
        };
        t.add_row(vec![
            e.name.clone(),
            short(&e.node_id),
            active,
            share,
            hash,
            staged,
            until,
        ]);
    }
    println!("{t}");
}

/// The JSON of `backup verify`: the report plus every trustee's epochs.
#[derive(Serialize)]
struct VerifyJson<'a> {
    #[serde(flatten)]
    report: &'a VerifyReport,
    epochs: &'a [TrusteeEpochs],
}

/// Fails unless every trustee is healthy.
pub(crate) fn require_healthy(r: &VerifyReport) -> anyhow::Result<()> {
    if r.all_healthy() {
        return Ok(());
    }
    let bad: Vec<String> = r
        .entries
        .iter()
        .filter_map(|e| match &e.status {
            ShareStatus::Unhealthy(why) => Some(format!("{} ({why})", e.name)),
            ShareStatus::Healthy => None,
            other => Some(format!("{} ({other:?})", e.name)),
        })
        .collect();
    let hint = if r.recoverable() {
        "the wallet is still recoverable; rotate the backup to healthy trustees soon"
    } else {
        "fewer healthy trustees than the threshold: restore the failed nodes before anything else"
    };
    Err(hinted(
        format!(
            "{} of {} trustees unhealthy: {}",
            bad.len(),
            r.entries.len(),
            bad.join("; ")
        ),
        hint,
    ))
}

pub(crate) async fn run(cmd: BackupCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        BackupCommand::Verify(a) => {
            let set = load_trustees(&a.trustees)?;
            let manifest = read_manifest(&a.manifest)?;
            let report = verify(&set, &manifest, json).await;
            let epochs = epoch_status(&set, manifest.wallet_id()).await;
            if json {
                print_json(&VerifyJson {
                    report: &report,
                    epochs: &epochs,
                })?;
            } else {
                print_report(&report);
                println!(
                    "Epochs of wallet {} at every trustee in the file:",
                    manifest.wallet_id()
                );
                print_epochs(&manifest, &epochs);
            }
            require_healthy(&report)
        }
    }
}
