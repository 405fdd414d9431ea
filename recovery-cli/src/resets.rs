//! Bank-assisted passkey reset from the command line (`docs/protocol.md` §13a): bank staff list
//! and approve reset requests (`dlocker passkey-resets list|approve`), and the owner — with the
//! wallet secret `k` and a new software passkey — runs the reset (`dlocker passkey reset`).
//!
//! The owner side is for demos and local clusters, like `dlocker passkey change`: a wallet app
//! calls `Client::reset_passkey` with the platform's passkey and the `k` it keeps.
//!
//! With `--state FILE` the reset survives the command being stopped while it waits for the bank:
//! the SDK's checkpoint saves the filed request there, sealed under the key in `--state-key`
//! (created on the first run), and running the same command again resumes that request — no new
//! passkey, no new request for staff to approve — instead of starting over.

use crate::cluster::load_trustees;
use crate::output::{hinted, print_json, reason_pairs, table};
use crate::staff::{StaffArgs, client, confirm_approval, explain, local_time};
use clap::{Args, Subcommand};
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::secret::SecretScalar;
use dlocker_sdk::protocol::{reset_passkey, resume_passkey_reset};
use dlocker_sdk::staff::PendingPasskeyReset;
use dlocker_sdk::{
    PasskeyResetError, PendingReset, ResetCheckpoint, ResetEvent, ResetOptions,
    SoftwareAuthenticator, StaffError, StateKey,
};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub(crate) enum PasskeyResetsCommand {
    /// Passkey reset requests at the bank: the customer, the wallet, the new credential's
    /// fingerprint (compare it with the one the customer's app shows) and the approvals.
    List(StaffArgs),
    /// Approve the bank's reset request REQUEST (after verifying the customer out of band and
    /// that their app shows the request's fingerprint): shows it and asks for confirmation.
    Approve(ApproveResetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ApproveResetArgs {
    /// The request id (from `dlocker passkey-resets list`).
    #[arg(value_name = "REQUEST")]
    request: String,
    #[command(flatten)]
    common: StaffArgs,
    /// Approve without asking (scripts).
    #[arg(long)]
    yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ResetArgs {
    /// The trustees file (every trustee of the wallet; one of them its bank).
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
    /// The wallet id.
    #[arg(long, value_name = "ID")]
    wallet: String,
    /// A file holding the wallet secret k (64 hex digits), as the wallet on the phone holds it
    /// (not needed to resume a reset from `--state`).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Where to write the new software passkey (must not exist; when resuming from `--state`,
    /// the file the first run wrote).
    #[arg(long, value_name = "FILE")]
    new_passkey: PathBuf,
    /// Give up waiting for the bank's approval after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    wait: u64,
    /// Save the reset here (sealed) while it waits for the bank; if the file exists, resume the
    /// reset it holds instead of starting a new one. Deleted once the reset completed.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// The key sealing `--state` (64 hex digits; created if missing). Default: the state file's
    /// name with `.key` appended. A wallet app keeps this key in the device keystore.
    #[arg(long, value_name = "FILE", requires = "state")]
    state_key: Option<PathBuf>,
}

fn customer(r: &PendingPasskeyReset) -> String {
    match (&r.customer_user_name, &r.customer_reference) {
        (Some(n), Some(c)) => format!("{n} (customer {c})"),
        (Some(n), None) => n.clone(),
        (None, Some(c)) => format!("customer {c}"),
        (None, None) => "not recorded at enrollment".to_owned(),
    }
}

fn describe(r: &PendingPasskeyReset) -> String {
    [
        ("Request", r.request_id.clone()),
        ("Customer", customer(r)),
        ("Wallet", r.wallet_id.clone()),
        ("New credential", r.credential_fingerprint.clone()),
        ("Opened", local_time(r.opened_at)),
        ("Expires", local_time(r.expires_at)),
        (
            "Approvals",
            format!("{} of {}", r.approvers.len(), r.approvals_required),
        ),
    ]
    .iter()
    .map(|(k, v)| format!("{k:>15}: {v}"))
    .collect::<Vec<_>>()
    .join("\n")
}

fn explain_reset(e: StaffError, key_hex: &str, request: &str) -> anyhow::Error {
    match &e {
        StaffError::Refused {
            refusal: Some(NodeRefusal::ResetRequestNotFound | NodeRefusal::ResetRequestExpired),
            ..
        } => hinted(
            e.to_string(),
            format!(
                "no live reset request {request:?}; list them with `dlocker passkey-resets list`"
            ),
        ),
        _ => explain(e, key_hex, request),
    }
}

#[derive(Serialize)]
struct ApproveResetJson {
    request: PendingPasskeyReset,
    approved: bool,
}

pub(crate) async fn run_staff(cmd: PasskeyResetsCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        PasskeyResetsCommand::List(a) => {
            let (_, c) = client(&a)?;
            let rows = c
                .list_passkey_resets()
                .await
                .map_err(|e| explain_reset(e, &c.public_key_hex(), ""))?;
            if json {
                return print_json(&rows);
            }
            let mut t = table(&[
                "Request",
                "Customer",
                "Wallet",
                "New credential",
                "Expires",
                "Approvals",
            ]);
            for r in &rows {
                t.add_row(vec![
                    r.request_id.clone(),
                    customer(r),
                    r.wallet_id.clone(),
                    r.credential_fingerprint[..16.min(r.credential_fingerprint.len())].to_owned(),
                    local_time(r.expires_at),
                    format!("{} of {}", r.approvers.len(), r.approvals_required),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        PasskeyResetsCommand::Approve(a) => {
            let (_, c) = client(&a.common)?;
            let key = c.public_key_hex();
            let rows = c
                .list_passkey_resets()
                .await
                .map_err(|e| explain_reset(e, &key, &a.request))?;
            let Some(r) = rows.into_iter().find(|r| r.request_id == a.request) else {
                return Err(hinted(
                    format!("no live reset request {:?} at the bank", a.request),
                    "list them with `dlocker passkey-resets list`",
                ));
            };
            if !a.yes {
                confirm_approval(
                    &describe(&r),
                    "reset request",
                    &format!(
                        "Approve replacing the passkey of {} after verifying them out of band and that their app shows {}?",
                        customer(&r),
                        &r.credential_fingerprint[..12.min(r.credential_fingerprint.len())]
                    ),
                )?;
            } else if !json {
                println!("{}", describe(&r));
            }
            let st = c
                .approve_passkey_reset(&a.request)
                .await
                .map_err(|e| explain_reset(e, &key, &a.request))?;
            if json {
                let approved = st.approved;
                return print_json(&ApproveResetJson {
                    request: st,
                    approved,
                });
            }
            if st.approved {
                println!(
                    "reset request {} APPROVED by {} ({} of {} approvals); the customer's app collects the approval and resets the passkey at every trustee",
                    a.request,
                    st.approvers.join(", "),
                    st.approvers.len(),
                    st.approvals_required
                );
            } else {
                println!(
                    "approval recorded: {} of {} approvals — ask another staff member to run `dlocker passkey-resets approve {} --trustees {} --key THEIR_KEY`",
                    st.approvers.len(),
                    st.approvals_required,
                    a.request,
                    a.common.trustees().display()
                );
            }
            Ok(())
        }
    }
}

/// 32 secret bytes written as 64 hex digits in the file at `path`; `hint` says what to pass.
fn read_hex32(path: &Path, hint: &str) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| hinted(format!("cannot read {}: {e}", path.display()), hint))?,
    );
    let bytes = Zeroizing::new(
        hex::decode(text.trim())
            .map_err(|_| hinted(format!("{} is not hex", path.display()), hint))?,
    );
    Ok(Zeroizing::new(bytes.as_slice().try_into().map_err(
        |_| hinted(format!("{} does not hold 32 bytes", path.display()), hint),
    )?))
}

fn load_secret(path: &Path) -> anyhow::Result<SecretScalar> {
    let hint = "pass a file holding the wallet secret k as 64 hex digits";
    let arr = read_hex32(path, hint)?;
    SecretScalar::from_bytes(&arr)
        .filter(|k| !k.is_zero())
        .ok_or_else(|| {
            hinted(
                format!("{} is not a secp256k1 scalar", path.display()),
                hint,
            )
        })
}

#[derive(Serialize)]
struct ResetJson {
    wallet_id: String,
    complete: bool,
    new_fingerprint: String,
    new_passkey: String,
    reset: Vec<String>,
    failed: Vec<(String, String)>,
}

/// The key sealing the reset's saved state: read, or created (mode 0600) on a first run.
fn state_key(path: &Path, create: bool) -> anyhow::Result<StateKey> {
    let hint = "pass --state-key FILE holding the key the first run created (64 hex digits)";
    if !path.exists() && create {
        let key = StateKey::generate();
        let text = Zeroizing::new(hex::encode(key.expose()));
        crate::owner::write_synced(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write the state key {}: {e}", path.display()))?;
        return Ok(key);
    }
    Ok(StateKey::from_bytes(*read_hex32(path, hint)?))
}

/// The reset saved in `--state`, if that file exists.
fn saved_reset(a: &ResetArgs, key: &StateKey) -> anyhow::Result<Option<PendingReset>> {
    let Some(path) = a.state.as_deref().filter(|p| p.exists()) else {
        return Ok(None);
    };
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let pending = PendingReset::open_sealed(&bytes, key).map_err(|e| {
        hinted(
            format!(
                "{} does not hold a reset this key opens: {e}",
                path.display()
            ),
            "pass the --state-key the first run used, or another --state file to start over",
        )
    })?;
    if pending.wallet_id() != a.wallet {
        return Err(hinted(
            format!(
                "{} holds a reset of wallet {}, not {}",
                path.display(),
                pending.wallet_id(),
                a.wallet
            ),
            "pass that wallet's --wallet, or another --state file",
        ));
    }
    if !a.new_passkey.exists() {
        return Err(hinted(
            format!("{} does not exist", a.new_passkey.display()),
            "a resumed reset keeps the new passkey the first run wrote: pass that file as --new-passkey",
        ));
    }
    Ok(Some(pending))
}

pub(crate) async fn run_owner(a: ResetArgs, json: bool) -> anyhow::Result<()> {
    let set = load_trustees(&a.trustees)?;
    let key_path = a.state.as_ref().map(|s| {
        a.state_key.clone().unwrap_or_else(|| {
            let mut p = s.clone().into_os_string();
            p.push(".key");
            PathBuf::from(p)
        })
    });
    let key = key_path
        .as_deref()
        .map(|p| state_key(p, a.state.as_deref().is_some_and(|s| !s.exists())))
        .transpose()?;
    let resumed = match &key {
        Some(key) => saved_reset(&a, key)?,
        None => None,
    };
    let progress = |e: ResetEvent| {
        if json {
            return;
        }
        match e {
            ResetEvent::Requested {
                request_id,
                credential_fingerprint,
            } => eprintln!(
                "reset request {request_id} filed at the bank; new credential {} — ask the bank to approve it (`dlocker passkey-resets approve {request_id}`)",
                hex::encode(&credential_fingerprint[..6])
            ),
            ResetEvent::ApprovalPending {
                approvers,
                approvals_required,
            } => eprintln!(
                "awaiting the bank's approval ({} of {approvals_required})",
                approvers.len()
            ),
            ResetEvent::Approved { approvers } => {
                eprintln!("approved by {}", approvers.join(", "));
            }
            _ => {}
        }
    };
    let save = |sealed: &[u8]| match &a.state {
        Some(path) => crate::owner::write_synced(path, sealed)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => Ok(()),
    };
    let opts = ResetOptions {
        poll_interval: Duration::from_secs(2),
        approval_timeout: Duration::from_secs(a.wait),
        progress: &progress,
        checkpoint: key.as_ref().map(|key| ResetCheckpoint { key, save: &save }),
    };
    let is_resumed = resumed.is_some();
    let result = match resumed {
        Some(pending) => {
            if !json {
                eprintln!(
                    "resuming the reset of {} saved in {} (new credential {}, {} trustees to go{})",
                    a.wallet,
                    a.state.as_deref().unwrap_or(Path::new("")).display(),
                    hex::encode(&pending.new_fingerprint()[..6]),
                    pending.pending.len(),
                    if pending.is_approved() {
                        ", approved by the bank"
                    } else {
                        ""
                    }
                );
            }
            resume_passkey_reset(&set, pending, opts).await
        }
        None => {
            let Some(secret_file) = &a.secret_file else {
                return Err(hinted(
                    "--secret-file is needed to start a reset",
                    "pass the file holding the wallet secret k (only a resume from --state goes without)",
                ));
            };
            let k = load_secret(secret_file)?;
            // Saved before any trustee is asked: a reset that stops halfway must not lose the
            // passkey some trustees already hold.
            let new = SoftwareAuthenticator::exportable()
                .map_err(|e| anyhow::anyhow!("creating the new software passkey: {e}"))?;
            crate::owner::save_new_passkey(&a.new_passkey, &new)?;
            let mut new = crate::owner::SavedOnRegister {
                inner: new,
                path: &a.new_passkey,
            };
            reset_passkey(&set, &a.wallet, &k, &mut new, opts).await
        }
    };
    let (done, failed) = match result {
        Ok(done) => (done, Vec::new()),
        Err(PasskeyResetError::Incomplete { failed, done, .. }) => (done, reason_pairs(&failed)),
        Err(e @ PasskeyResetError::ApprovalTimeout { .. }) if a.state.is_some() => {
            // The request stays filed and saved: the next run waits for the same approval.
            return Err(hinted(
                format!("passkey reset for {} not approved yet: {e}", a.wallet),
                "nothing was changed; once the bank approved it, run the same command again: it resumes from --state",
            ));
        }
        Err(e) => {
            // Nothing was changed anywhere: the new file holds no trustee's credential, and the
            // saved request cannot complete.
            let _ = std::fs::remove_file(&a.new_passkey);
            if let Some(state) = &a.state {
                let _ = std::fs::remove_file(state);
            }
            let hint = if is_resumed {
                "nothing was changed; the saved reset is dropped: start a new one (without the old --new-passkey file)"
            } else {
                "nothing was changed; check --secret-file holds this wallet's secret and that the bank approved the request"
            };
            return Err(hinted(
                format!("passkey reset for {} refused: {e}", a.wallet),
                hint,
            ));
        }
    };
    if failed.is_empty()
        && let Some(state) = &a.state
    {
        // Done: the saved request is of no further use.
        let _ = std::fs::remove_file(state);
    }
    let fp = hex::encode(done.new_fingerprint);
    if json {
        print_json(&ResetJson {
            wallet_id: a.wallet.clone(),
            complete: failed.is_empty(),
            new_fingerprint: fp.clone(),
            new_passkey: a.new_passkey.display().to_string(),
            reset: done.reset.clone(),
            failed: failed.clone(),
        })?;
    } else {
        crate::owner::print_credential_swap(
            done.reset
                .iter()
                .map(|n| (n.clone(), "new passkey registered, lost one revoked")),
            &failed,
            &fp,
        );
    }
    if failed.is_empty() {
        if !json {
            println!(
                "wallet {}: passkey reset at every trustee; the new passkey is {}",
                a.wallet,
                a.new_passkey.display()
            );
        }
        return Ok(());
    }
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    Err(hinted(
        format!(
            "passkey reset incomplete: {} of {} trustees still hold the lost passkey ({})",
            failed.len(),
            set.len(),
            names.join(", ")
        ),
        if a.state.is_some() {
            "once they are reachable run the same command again: it resumes from --state (within the reset's lifetime, an hour by default)"
        } else {
            "a wallet app resumes with `Client::resume_passkey_reset` within the hour; from the command line, run a new reset once they are reachable"
        },
    ))
}
