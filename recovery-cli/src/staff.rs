//! Bank support staff: `dlocker staff keygen` and `dlocker recoveries list|approve|cancel`.

use crate::cluster::load_trustees;
use crate::output::{hinted, print_json, table};
use clap::{Args, Subcommand};
use dlocker_sdk::recover::present_bank_cancellation;
use dlocker_sdk::staff::{PendingRecovery, StaffError, StaffKeyError};
use dlocker_sdk::{CancelOutcome, StaffClient, StaffKey, TrusteeSet};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub(crate) enum StaffCommand {
    /// Create a staff signing key (file mode 0600) and print its public key for the bank config.
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the new key (never overwritten).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RecoveriesCommand {
    /// Recoveries open at the bank, with their approval state.
    List(StaffArgs),
    /// Approve the bank's recovery session SESSION (after verifying the customer out of band).
    Approve(TargetArgs),
    /// Cancel SESSION at the bank, then present the bank's signed cancellation to every trustee.
    Cancel(TargetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StaffArgs {
    /// The trustees file (pins the bank node's key).
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
    /// Your staff key file (from `dlocker staff keygen`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The bank's session id (from `dlocker recoveries list`).
    #[arg(value_name = "SESSION")]
    session: String,
    #[command(flatten)]
    common: StaffArgs,
}

fn load_key(path: &Path) -> anyhow::Result<StaffKey> {
    StaffKey::load(path).map_err(|e| match e {
        StaffKeyError::Io { .. } => hinted(
            e.to_string(),
            "create one with `dlocker staff keygen --out FILE`",
        ),
        _ => hinted(e.to_string(), "pass the file `dlocker staff keygen` wrote"),
    })
}

fn client(args: &StaffArgs) -> anyhow::Result<(TrusteeSet, StaffClient)> {
    let set = load_trustees(&args.trustees)?;
    let key = load_key(&args.key)?;
    let client = StaffClient::new(key, set.bank());
    Ok((set, client))
}

/// Adds the next step to a refused staff request.
fn explain(e: StaffError, key_hex: &str, session: &str) -> anyhow::Error {
    let hint = match &e {
        StaffError::Connect(_) => "is the bank node running? check `dlocker cluster health --trustees FILE`".to_owned(),
        StaffError::Refused { code: tonic::Code::PermissionDenied, message, .. } if message.contains("unknown") => format!(
            "ask the bank operator to add your key: `trustee-node config add-staff --data-dir DIR --id YOU --public-key {key_hex} --roles approver,canceller`, then restart the node"
        ),
        StaffError::Refused { code: tonic::Code::PermissionDenied, .. } => {
            "your staff entry lacks the role for this; ask the bank operator".to_owned()
        }
        StaffError::Refused { code: tonic::Code::NotFound, .. } => {
            format!("no live session {session:?} at the bank; list them with `dlocker recoveries list`")
        }
        StaffError::Refused { code: tonic::Code::Unimplemented, .. } => {
            "the trustee marked role = \"bank\" in the trustees file does not serve the Staff service".to_owned()
        }
        StaffError::Refused { .. } => "check the session state with `dlocker recoveries list`".to_owned(),
        _ => "the bank node answered with an unverifiable statement; report it".to_owned(),
    };
    hinted(e.to_string(), hint)
}

fn print_list(rows: &[PendingRecovery]) {
    let mut t = table(&[
        "Session",
        "Wallet",
        "State",
        "Opened (unix)",
        "Release not before",
        "Approvals",
        "Approved by",
    ]);
    for r in rows {
        t.add_row(vec![
            r.session_id.clone(),
            r.wallet_id.clone(),
            r.state.clone(),
            r.opened_at.to_string(),
            r.release_not_before.to_string(),
            format!("{} of {}", r.approvers.len(), r.approvals_required),
            r.approvers.join(", "),
        ]);
    }
    println!("{t}");
    println!("{} recoveries open at the bank", rows.len());
}

#[derive(Serialize)]
struct ApproveJson {
    session_id: String,
    approvers: Vec<String>,
    approvals_required: u32,
    approved: bool,
    expires_at: Option<u64>,
}

#[derive(Serialize)]
struct CancelJson {
    session_id: String,
    wallet_id: String,
    staff_id: String,
    trustees: Vec<CancelOutcome>,
}

pub(crate) fn keygen(out: &Path, json: bool) -> anyhow::Result<()> {
    let key = StaffKey::generate();
    key.save(out).map_err(|e| {
        hinted(
            e.to_string(),
            "choose a new file; an existing key is never overwritten",
        )
    })?;
    let public = key.public_key_hex();
    if json {
        return print_json(
            &serde_json::json!({ "key_file": out.display().to_string(), "public_key": public }),
        );
    }
    println!(
        "staff key written to {} (mode 0600; keep it secret)",
        out.display()
    );
    println!("public key: {public}");
    println!(
        "add it to the bank node: trustee-node config add-staff --data-dir DIR --id YOUR_ID --public-key {public} --roles approver,canceller"
    );
    Ok(())
}

pub(crate) async fn run_staff(cmd: StaffCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        StaffCommand::Keygen(a) => keygen(&a.out, json),
    }
}

pub(crate) async fn run_recoveries(cmd: RecoveriesCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        RecoveriesCommand::List(a) => {
            let (_, c) = client(&a)?;
            let rows = c
                .list_recoveries()
                .await
                .map_err(|e| explain(e, &c.public_key_hex(), ""))?;
            if json {
                return print_json(&rows);
            }
            print_list(&rows);
            Ok(())
        }
        RecoveriesCommand::Approve(a) => {
            let (_, c) = client(&a.common)?;
            let st = c
                .approve(&a.session)
                .await
                .map_err(|e| explain(e, &c.public_key_hex(), &a.session))?;
            let expires_at = st.approval.as_ref().map(|s| s.body().expires_at);
            if json {
                return print_json(&ApproveJson {
                    session_id: a.session,
                    approvers: st.approvers,
                    approvals_required: st.approvals_required,
                    approved: st.approval.is_some(),
                    expires_at,
                });
            }
            match expires_at {
                Some(exp) => println!(
                    "session {} APPROVED by {} ({} of {} required); the bank approval is valid until {exp} (unix) — the customer's device can now release after the delay",
                    a.session,
                    st.approvers.join(", "),
                    st.approvers.len(),
                    st.approvals_required
                ),
                None => println!(
                    "approval recorded: awaiting approval ({} of {}) — ask a second staff member to run `dlocker recoveries approve {} --trustees {} --key THEIR_KEY`",
                    st.approvers.len(),
                    st.approvals_required,
                    a.session,
                    a.common.trustees.display()
                ),
            }
            Ok(())
        }
        RecoveriesCommand::Cancel(a) => {
            let (set, c) = client(&a.common)?;
            let issued = c
                .cancel(&a.session)
                .await
                .map_err(|e| explain(e, &c.public_key_hex(), &a.session))?;
            let outcomes = present_bank_cancellation(&set, None, &issued.encoded).await;
            let b = issued.statement.body();
            let failed: Vec<String> = outcomes
                .iter()
                .filter_map(|o| o.error.as_ref().map(|e| format!("{} ({e})", o.name)))
                .collect();
            if json {
                print_json(&CancelJson {
                    session_id: a.session.clone(),
                    wallet_id: b.wallet_id.clone(),
                    staff_id: b.staff_id.clone(),
                    trustees: outcomes,
                })?;
            } else {
                println!(
                    "bank cancelled session {} (wallet {}, by {})",
                    a.session, b.wallet_id, b.staff_id
                );
                let mut t = table(&["Trustee", "Result"]);
                for o in &outcomes {
                    t.add_row(vec![
                        o.name.clone(),
                        o.error.clone().unwrap_or_else(|| "cancelled".into()),
                    ]);
                }
                println!("{t}");
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(hinted(
                    format!(
                        "the cancellation did not reach {} trustees: {}",
                        failed.len(),
                        failed.join("; ")
                    ),
                    "the bank's own session is cancelled, so no bank approval can be issued for this recovery and the other sessions can never release; they expire on their own",
                ))
            }
        }
    }
}
