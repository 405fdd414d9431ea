//! The wallet owner's ceremonies from the command line: `dlocker delete` (erase the backup at every
//! trustee), `dlocker cancel-recoveries` (close every open recovery session of the wallet) and
//! `dlocker passkey change`.
//!
//! The passkey is a software passkey file: the exportable software authenticator's keys, as
//! `dlocker demo --dir DIR` saves them (`DIR/WALLET.passkey`) and as the SDK's
//! `SoftwareAuthenticator::to_bytes` writes them. Like that authenticator it is for demos, tests
//! and local clusters only: a wallet app calls the same SDK functions with the platform's passkey.

use crate::cluster::load_trustees;
use crate::output::reason_pairs;
use crate::output::{hinted, print_json, table};
use clap::{Args, Subcommand};
use dlocker_sdk::protocol::epoch_status;
use dlocker_sdk::{AuthError, protocol::OwnerAuthenticator};
use dlocker_sdk::{CancelAllError, Client, TrusteeCancelAll, WalletId};
use dlocker_sdk::{
    DeleteError, DeleteOptions, PasskeyChangeError, PasskeyChangeReport, SoftwareAuthenticator,
    TrusteeErasure, TrusteePasskey,
    protocol::{change_passkey, delete_backup_with, resume_passkey_change},
};
use dlocker_sdk::{TrusteeInfo, TrusteeSet};
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// The trustees file: every trustee that may hold the wallet.
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
    /// The wallet id.
    #[arg(long, value_name = "ID")]
    wallet: String,
    /// The owner's software passkey file (as `dlocker demo --dir DIR` saves it).
    #[arg(long, value_name = "FILE")]
    passkey: PathBuf,
    /// Also erase the wallet's documents at the bank's document locker (its credentials are
    /// revoked). Choose it now: once the wallet is gone nothing can authorize it.
    #[arg(long)]
    erase_documents: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CancelRecoveriesArgs {
    /// The trustees file.
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
    /// The wallet id.
    #[arg(long, value_name = "ID")]
    wallet: String,
    /// The owner's software passkey file (as `dlocker demo --dir DIR` saves it).
    #[arg(long, value_name = "FILE")]
    passkey: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PasskeyCommand {
    /// Replace the wallet's passkey at every trustee: the new passkey registers one credential
    /// (one touch), the current one authorizes exactly that credential (one touch).
    Change(ChangeArgs),
    /// The passkey is LOST but the wallet secret k is not: a bank-assisted reset. The new passkey
    /// registers one credential (one touch), a proof of knowledge of k names it, the bank's staff
    /// approve the request this files (`dlocker passkey-resets approve`), then every trustee
    /// swaps the credential.
    Reset(crate::resets::ResetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ChangeArgs {
    /// The trustees file (trustees in it that hold nothing for the wallet are left out).
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
    /// The wallet id.
    #[arg(long, value_name = "ID")]
    wallet: String,
    /// The current software passkey file.
    #[arg(long, value_name = "FILE")]
    passkey: PathBuf,
    /// Where to write the new software passkey (created before any trustee is asked; must not
    /// exist, unless `--resume` is given).
    #[arg(long, value_name = "FILE")]
    new_passkey: PathBuf,
    /// Complete a partial change: the new credential's fingerprint (hex) that the incomplete
    /// change printed. Only the current passkey is touched.
    #[arg(long, value_name = "HEX")]
    resume: Option<String>,
}

fn load_passkey(path: &Path) -> anyhow::Result<SoftwareAuthenticator> {
    let bytes = std::fs::read(path).map_err(|e| {
        hinted(
            format!("cannot read passkey file {}: {e}", path.display()),
            "pass the software passkey file saved at backup time (`dlocker demo --dir DIR` writes DIR/WALLET.passkey)",
        )
    })?;
    SoftwareAuthenticator::from_bytes(&bytes).map_err(|_| {
        // The parse error could quote key material: name the file only.
        hinted(
            format!("{} is not a software passkey file", path.display()),
            "pass the software passkey file saved at backup time (`dlocker demo --dir DIR` writes DIR/WALLET.passkey)",
        )
    })
}

/// Writes a new passkey file, mode 0600, refusing to replace an existing one (it may be the only
/// copy of a passkey some trustee still holds).
pub(crate) fn save_new_passkey(path: &Path, auth: &SoftwareAuthenticator) -> anyhow::Result<()> {
    let bytes = auth
        .to_bytes()
        .ok_or_else(|| anyhow::anyhow!("the new software passkey cannot be exported"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        hinted(
            format!("cannot create {}: {e}", path.display()),
            "name a new file for --new-passkey (an existing one is never overwritten)",
        )
    })?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    Ok(())
}

/// The new software passkey, written to its file again right after it registers its credential
/// and before the SDK hands that credential to any trustee: no trustee can ever hold a passkey
/// whose keys were not saved.
pub(crate) struct SavedOnRegister<'a> {
    pub(crate) inner: SoftwareAuthenticator,
    pub(crate) path: &'a Path,
}

impl OwnerAuthenticator for SavedOnRegister<'_> {
    fn register(
        &mut self,
        options: CreationChallengeResponse,
    ) -> Result<RegisterPublicKeyCredential, AuthError> {
        let cred = self.inner.register(options)?;
        let bytes = self
            .inner
            .to_bytes()
            .ok_or_else(|| AuthError::Authenticator("cannot export the new passkey".into()))?;
        write_synced(self.path, &bytes)
            .map_err(|e| AuthError::Authenticator(format!("cannot save the new passkey: {e}")))?;
        Ok(cred)
    }

    fn authenticate(
        &mut self,
        options: RequestChallengeResponse,
    ) -> Result<PublicKeyCredential, AuthError> {
        self.inner.authenticate(options)
    }
}

/// Writes a used passkey back to its file: its touch advanced the signature counter, which the
/// trustees keep, and a file left at the old count would be refused by the next ceremony.
fn save_counter(path: &Path, auth: &SoftwareAuthenticator) -> anyhow::Result<()> {
    if auth.touches() == 0 {
        return Ok(());
    }
    let Some(bytes) = auth.to_bytes() else {
        return Ok(());
    };
    write_synced(path, &bytes)
        .map_err(|e| anyhow::anyhow!("cannot update the passkey file {}: {e}", path.display()))
}

/// Replaces `path`'s content durably (a temporary file renamed over it, mode 0600).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[derive(Serialize)]
struct ErasureJson {
    trustee: String,
    /// `erased` (with its receipt) or `held_nothing`.
    result: &'static str,
    epoch: Option<u64>,
    erased_at: Option<u64>,
    /// The signed erase receipt (hex of its canonical encoding).
    receipt: Option<String>,
}

#[derive(Serialize)]
struct DeleteJson {
    wallet_id: String,
    complete: bool,
    documents_erased: u32,
    trustees: Vec<ErasureJson>,
    failed: Vec<(String, String)>,
}

fn erasure_rows(done: &dlocker_sdk::DeleteReport) -> Vec<ErasureJson> {
    done.trustees
        .iter()
        .map(|(name, e)| match e {
            TrusteeErasure::Erased(r) => ErasureJson {
                trustee: name.clone(),
                result: "erased",
                epoch: Some(r.body().epoch),
                erased_at: Some(r.body().erased_at),
                receipt: Some(hex::encode(r.encode())),
            },
            TrusteeErasure::NotHeld => ErasureJson {
                trustee: name.clone(),
                result: "held_nothing",
                epoch: None,
                erased_at: None,
                receipt: None,
            },
            _ => ErasureJson {
                trustee: name.clone(),
                result: "unknown",
                epoch: None,
                erased_at: None,
                receipt: None,
            },
        })
        .collect()
}

fn print_erasures(rows: &[ErasureJson], failed: &[(String, String)]) {
    let mut t = table(&[
        "Trustee",
        "Result",
        "Epoch",
        "Erased at (unix)",
        "Signed receipt",
    ]);
    for r in rows {
        t.add_row(vec![
            r.trustee.clone(),
            match r.result {
                "erased" => "erased (receipt verified)".to_owned(),
                _ => "holds nothing".to_owned(),
            },
            r.epoch.map(|e| e.to_string()).unwrap_or_default(),
            r.erased_at.map(|e| e.to_string()).unwrap_or_default(),
            r.receipt.clone().unwrap_or_default(),
        ]);
    }
    for (name, why) in failed {
        t.add_row(vec![
            name.clone(),
            "NOT CONFIRMED".to_owned(),
            String::new(),
            String::new(),
            why.clone(),
        ]);
    }
    println!("{t}");
}

pub(crate) async fn run_delete(a: DeleteArgs, json: bool) -> anyhow::Result<()> {
    let set = load_trustees(&a.trustees)?;
    let mut auth = load_passkey(&a.passkey)?;
    let options = match a.erase_documents {
        true => DeleteOptions::erase_documents(),
        false => DeleteOptions::default(),
    };
    let answer = delete_backup_with(&set, &a.wallet, &mut auth, options).await;
    save_counter(&a.passkey, &auth)?;
    let (done, failed) = match answer {
        Ok(done) => (done, Vec::new()),
        Err(DeleteError::Incomplete { failed, done }) => (done, reason_pairs(&failed)),
        Err(e) => {
            return Err(hinted(
                format!("delete of {} refused: {e}", a.wallet),
                "nothing was erased; check --passkey is this wallet's passkey",
            ));
        }
    };
    let rows = erasure_rows(&done);
    if json {
        print_json(&DeleteJson {
            wallet_id: a.wallet.clone(),
            complete: failed.is_empty(),
            documents_erased: done.documents_erased,
            trustees: rows,
            failed: failed.clone(),
        })?;
    } else {
        print_erasures(&rows, &failed);
    }
    if failed.is_empty() {
        if !json {
            let erased = done.receipts().count();
            println!(
                "wallet {}: deleted at every trustee ({erased} erased now, {} held nothing)",
                a.wallet,
                done.trustees.len() - erased
            );
            if a.erase_documents {
                println!(
                    "document locker: {} document(s) erased, their credentials revoked",
                    done.documents_erased
                );
            }
        }
        return Ok(());
    }
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    Err(hinted(
        format!(
            "delete incomplete: {} of {} trustees did not confirm ({})",
            failed.len(),
            set.len(),
            names.join(", ")
        ),
        "run the same command again once they are reachable: it completes the delete",
    ))
}

#[derive(Serialize)]
struct CancelledJson {
    trustee: String,
    /// `closed` (the sessions listed, maybe none) or `held_nothing`.
    result: &'static str,
    closed_sessions: Vec<String>,
}

#[derive(Serialize)]
struct CancelRecoveriesJson {
    wallet_id: String,
    complete: bool,
    closed: usize,
    trustees: Vec<CancelledJson>,
    failed: Vec<(String, String)>,
}

pub(crate) async fn run_cancel_recoveries(
    a: CancelRecoveriesArgs,
    json: bool,
) -> anyhow::Result<()> {
    let wallet = WalletId::parse(a.wallet.clone()).map_err(|e| {
        hinted(
            format!("--wallet: {e}"),
            "pass the wallet id the backup used",
        )
    })?;
    let client = Client::builder()
        .trustees(load_trustees(&a.trustees)?)
        .build()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut auth = load_passkey(&a.passkey)?;
    let answer = client.cancel_all_recoveries(&wallet, &mut auth).await;
    save_counter(&a.passkey, &auth)?;
    let (done, failed) = match answer {
        Ok(done) => (done, Vec::new()),
        Err(dlocker_sdk::Error::CancelAll(CancelAllError::Incomplete { failed, done })) => {
            (done, reason_pairs(&failed))
        }
        Err(e) => {
            return Err(hinted(
                format!("cancelling the recoveries of {wallet} refused: {e}"),
                "nothing was closed; check --passkey is this wallet's passkey",
            ));
        }
    };
    let rows: Vec<CancelledJson> = done
        .trustees
        .iter()
        .map(|(name, t)| match t {
            TrusteeCancelAll::Closed(ids) => CancelledJson {
                trustee: name.clone(),
                result: "closed",
                closed_sessions: ids.clone(),
            },
            _ => CancelledJson {
                trustee: name.clone(),
                result: "held_nothing",
                closed_sessions: Vec::new(),
            },
        })
        .collect();
    if json {
        print_json(&CancelRecoveriesJson {
            wallet_id: wallet.to_string(),
            complete: failed.is_empty(),
            closed: done.closed(),
            trustees: rows,
            failed: failed.clone(),
        })?;
    } else {
        let mut t = table(&["Trustee", "Result", "Sessions closed"]);
        for r in &rows {
            t.add_row(vec![
                r.trustee.clone(),
                match r.result {
                    "closed" => format!("{} closed", r.closed_sessions.len()),
                    _ => "holds nothing".to_owned(),
                },
                r.closed_sessions.join(" "),
            ]);
        }
        for (name, why) in &failed {
            t.add_row(vec![name.clone(), "NOT CONFIRMED".to_owned(), why.clone()]);
        }
        println!("{t}");
    }
    if failed.is_empty() {
        if !json {
            println!(
                "wallet {wallet}: no recovery session is open at any trustee ({} closed now)",
                done.closed()
            );
        }
        return Ok(());
    }
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    Err(hinted(
        format!(
            "cancel incomplete: {} of {} trustees did not confirm ({})",
            failed.len(),
            client.trustees().len(),
            names.join(", ")
        ),
        "run the same command again once they are reachable",
    ))
}

#[derive(Serialize)]
struct ChangeJson {
    wallet_id: String,
    complete: bool,
    new_fingerprint: String,
    new_passkey: String,
    trustees: Vec<(String, &'static str)>,
    failed: Vec<(String, String)>,
}

fn parse_fingerprint(s: &str) -> anyhow::Result<[u8; 32]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            hinted(
                "--resume is not a credential fingerprint (64 hex digits)",
                "pass the fingerprint the incomplete `dlocker passkey change` printed",
            )
        })
}

/// The trustees of `set` that hold the wallet (or could not be asked: they must not be skipped
/// silently). A trustees file may list trustees a rotation retired, which hold nothing and have
/// no passkey to change; every trustee is kept when none could be told apart.
async fn holders(set: TrusteeSet, wallet: &str) -> TrusteeSet {
    let status = epoch_status(&set, wallet).await;
    let keep: Vec<TrusteeInfo> = set
        .trustees()
        .iter()
        .zip(&status)
        .filter(|(_, s)| s.active.is_some() || s.staged.is_some() || s.error.is_some())
        .map(|(info, _)| info.clone())
        .collect();
    if keep.is_empty() || keep.len() == set.len() {
        return set;
    }
    TrusteeSet::new(keep).unwrap_or(set)
}

/// A passkey change's or reset's result: each trustee's outcome, the ones that did not confirm,
/// and the new credential's fingerprint.
pub(crate) fn print_credential_swap(
    done: impl Iterator<Item = (String, &'static str)>,
    failed: &[(String, String)],
    fingerprint: &str,
) {
    let mut t = table(&["Trustee", "Result"]);
    for (n, what) in done {
        t.add_row(vec![n, what.to_owned()]);
    }
    for (n, why) in failed {
        t.add_row(vec![n.clone(), format!("NOT CONFIRMED: {why}")]);
    }
    println!("{t}");
    println!("new credential fingerprint {fingerprint}");
}

pub(crate) async fn run_passkey(cmd: PasskeyCommand, json: bool) -> anyhow::Result<()> {
    let a = match cmd {
        PasskeyCommand::Change(a) => a,
        PasskeyCommand::Reset(a) => return crate::resets::run_owner(a, json).await,
    };
    let set = holders(load_trustees(&a.trustees)?, &a.wallet).await;
    let mut current = load_passkey(&a.passkey)?;
    let result = match &a.resume {
        Some(fp) => {
            let fp = parse_fingerprint(fp)?;
            if !a.new_passkey.exists() {
                return Err(hinted(
                    format!("{} does not exist", a.new_passkey.display()),
                    "--resume completes a change whose new passkey file was written: pass that file",
                ));
            }
            resume_passkey_change(&set, &a.wallet, &mut current, &fp).await
        }
        None => {
            // Saved before any trustee is asked: a change that stops halfway must not lose the
            // passkey some trustees already hold.
            let new = SoftwareAuthenticator::exportable()
                .map_err(|e| anyhow::anyhow!("creating the new software passkey: {e}"))?;
            save_new_passkey(&a.new_passkey, &new)?;
            let mut new = SavedOnRegister {
                inner: new,
                path: &a.new_passkey,
            };
            change_passkey(&set, &a.wallet, &mut current, &mut new).await
        }
    };
    save_counter(&a.passkey, &current)?;
    let (done, failed): (PasskeyChangeReport, _) = match result {
        Ok(done) => (done, Vec::new()),
        Err(PasskeyChangeError::Incomplete { failed, done }) => (done, reason_pairs(&failed)),
        Err(e) => {
            if a.resume.is_none() {
                // Nothing was changed anywhere: the new file holds no trustee's credential.
                let _ = std::fs::remove_file(&a.new_passkey);
            }
            return Err(hinted(
                format!("passkey change for {} refused: {e}", a.wallet),
                "nothing was changed; check --passkey is this wallet's current passkey",
            ));
        }
    };
    let fp = hex::encode(done.new_fingerprint);
    let rows: Vec<(String, &'static str)> = done
        .trustees
        .iter()
        .map(|(n, s)| {
            (
                n.clone(),
                match s {
                    TrusteePasskey::Changed => "changed",
                    TrusteePasskey::AlreadyChanged => "already_changed",
                    _ => "unknown",
                },
            )
        })
        .collect();
    if json {
        print_json(&ChangeJson {
            wallet_id: a.wallet.clone(),
            complete: failed.is_empty(),
            new_fingerprint: fp.clone(),
            new_passkey: a.new_passkey.display().to_string(),
            trustees: rows,
            failed: failed.clone(),
        })?;
    } else {
        print_credential_swap(
            rows.iter().map(|(n, s)| {
                let what = match *s {
                    "changed" => "new passkey registered, old one revoked",
                    _ => "already held the new passkey",
                };
                (n.clone(), what)
            }),
            &failed,
            &fp,
        );
    }
    if failed.is_empty() {
        if !json {
            println!(
                "wallet {}: passkey changed at every trustee; the new passkey is {} (the old one is refused)",
                a.wallet,
                a.new_passkey.display()
            );
        }
        return Ok(());
    }
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    Err(hinted(
        format!(
            "passkey change incomplete: {} of {} trustees still hold the old passkey ({})",
            failed.len(),
            set.len(),
            names.join(", ")
        ),
        format!(
            "once they are reachable run the same command with --resume {fp} (keep both passkey files until then)"
        ),
    ))
}
