//! Bank-assisted passkey reset from the command line (`docs/protocol.md` §13a): bank staff list
//! and approve reset requests (`dlocker passkey-resets list|approve`), and the owner — with the
//! wallet secret `k` and a new software passkey — runs the reset (`dlocker passkey reset`).
//!
//! The owner side is for demos and local clusters, like `dlocker passkey change`: a wallet app
//! calls `Client::reset_passkey` with the platform's passkey and the `k` it keeps.

use crate::cluster::load_trustees;
use crate::output::{hinted, print_json, reason_pairs, table};
use crate::staff::{StaffArgs, client, confirm_approval, explain, local_time};
use clap::{Args, Subcommand};
use dlocker_proto::refusal::NodeRefusal;
use dlocker_proto::secret::SecretScalar;
use dlocker_sdk::{
    PasskeyResetError, PendingPasskeyReset, ResetEvent, ResetOptions, SoftwareAuthenticator,
    StaffError, reset_passkey,
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
    /// A file holding the wallet secret k (64 hex digits), as the wallet on the phone holds it.
    #[arg(long, value_name = "FILE")]
    secret_file: PathBuf,
    /// Where to write the new software passkey (must not exist).
    #[arg(long, value_name = "FILE")]
    new_passkey: PathBuf,
    /// Give up waiting for the bank's approval after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    wait: u64,
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

fn load_secret(path: &Path) -> anyhow::Result<SecretScalar> {
    let hint = "pass a file holding the wallet secret k as 64 hex digits";
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| hinted(format!("cannot read {}: {e}", path.display()), hint))?,
    );
    let bytes = Zeroizing::new(
        hex::decode(text.trim())
            .map_err(|_| hinted(format!("{} is not hex", path.display()), hint))?,
    );
    let arr: Zeroizing<[u8; 32]> = Zeroizing::new(
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| hinted(format!("{} does not hold 32 bytes", path.display()), hint))?,
    );
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

pub(crate) async fn run_owner(a: ResetArgs, json: bool) -> anyhow::Result<()> {
    let set = load_trustees(&a.trustees)?;
    let k = load_secret(&a.secret_file)?;
    // Saved before any trustee is asked: a reset that stops halfway must not lose the passkey
    // some trustees already hold.
    let new = SoftwareAuthenticator::exportable()
        .map_err(|e| anyhow::anyhow!("creating the new software passkey: {e}"))?;
    crate::owner::save_new_passkey(&a.new_passkey, &new)?;
    let mut new = crate::owner::SavedOnRegister {
        inner: new,
        path: &a.new_passkey,
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
    let opts = ResetOptions {
        poll_interval: Duration::from_secs(2),
        approval_timeout: Duration::from_secs(a.wait),
        progress: &progress,
    };
    let result = reset_passkey(&set, &a.wallet, &k, &mut new, opts).await;
    let (done, failed) = match result {
        Ok(done) => (done, Vec::new()),
        Err(PasskeyResetError::Incomplete { failed, done, .. }) => (done, reason_pairs(&failed)),
        Err(e) => {
            // Nothing was changed anywhere: the new file holds no trustee's credential.
            let _ = std::fs::remove_file(&a.new_passkey);
            return Err(hinted(
                format!("passkey reset for {} refused: {e}", a.wallet),
                "nothing was changed; check --secret-file holds this wallet's secret and that the bank approved the request",
            ));
        }
    };
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
        "a wallet app resumes with `Client::resume_passkey_reset` within the hour; from the command line, run a new reset once they are reachable",
    ))
}
