//! Bank support staff: `dlocker staff keygen` and `dlocker recoveries list|approve|cancel`.

use crate::cluster::load_trustees;
use crate::output::{hinted, print_json, table};
use clap::{Args, Subcommand};
use dlocker_sdk::proto::refusal::NodeRefusal;
use dlocker_sdk::proto::statement::StaffChange;
use dlocker_sdk::protocol::present_bank_cancellation;
use dlocker_sdk::staff::{PendingRecovery, StaffError, StaffKeyError};
use dlocker_sdk::{CancelOutcome, StaffClient, StaffKey, TrusteeSet};
use serde::Serialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Subcommand)]
pub(crate) enum StaffCommand {
    /// Create a staff signing key (file mode 0600) and print its public key for the bank config.
    Keygen(KeygenArgs),
    /// The bank's staff and approval policy (your key needs the `admin` role).
    List(StaffArgs),
    /// Add a staff member at the bank, live (admin).
    Add(AddStaffArgs),
    /// Remove a staff member at the bank, live (admin).
    Remove(StaffIdArgs),
    /// Replace a staff member's roles, live (admin).
    Role(RoleArgs),
    /// Set the distinct approvals a recovery needs, live (admin).
    Policy(PolicyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AddStaffArgs {
    /// The new member's staff id.
    #[arg(long)]
    id: String,
    /// Their public key (hex, from `dlocker staff keygen`).
    #[arg(long, value_name = "HEX")]
    public_key: String,
    /// Comma-separated roles: viewer, approver, canceller, operator, admin.
    #[arg(long, default_value = "approver,canceller")]
    roles: String,
    #[command(flatten)]
    common: StaffArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StaffIdArgs {
    /// The staff id.
    #[arg(value_name = "ID")]
    id: String,
    #[command(flatten)]
    common: StaffArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RoleArgs {
    /// The staff id.
    #[arg(value_name = "ID")]
    id: String,
    /// The new comma-separated roles (replacing the old ones).
    #[arg(long)]
    roles: String,
    #[command(flatten)]
    common: StaffArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    /// Distinct staff approvals a recovery needs (2 = four eyes).
    #[arg(long, value_name = "N")]
    approvals_required: u32,
    #[command(flatten)]
    common: StaffArgs,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the new key (never overwritten).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// Environment variable holding a staff key's passphrase (for services; never pass it in argv).
pub(crate) const PASSPHRASE_ENV: &str = "DLOCKER_STAFF_PASSPHRASE";

/// Where a staff key's passphrase comes from: a file, the environment
/// (`DLOCKER_STAFF_PASSPHRASE`) or the terminal. Never the command line, which other local users
/// can read.
#[derive(Debug, Args)]
pub(crate) struct PassphraseArgs {
    /// Read the staff key's passphrase from FILE (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "ask")]
    passphrase_file: Option<PathBuf>,
    /// Ask for the staff key's passphrase on the terminal.
    #[arg(long)]
    ask: bool,
}

impl PassphraseArgs {
    /// The passphrase from the file or the environment, else from the terminal when `--ask`
    /// (or when `prompt_if_tty` and stdin is a terminal); None when there is none.
    fn get(&self, prompt_if_tty: bool) -> anyhow::Result<Option<Zeroizing<String>>> {
        use std::io::IsTerminal as _;
        if let Some(f) = &self.passphrase_file {
            let text = Zeroizing::new(std::fs::read_to_string(f).map_err(|e| {
                hinted(
                    format!("passphrase file {}: {e}", f.display()),
                    "pass a readable file whose first line is the passphrase",
                )
            })?);
            let line = Zeroizing::new(text.lines().next().unwrap_or_default().to_owned());
            return non_empty(line).map(Some);
        }
        if let Ok(v) = std::env::var(PASSPHRASE_ENV) {
            return non_empty(Zeroizing::new(v)).map(Some);
        }
        if self.ask || (prompt_if_tty && std::io::stdin().is_terminal()) {
            let p = rpassword::prompt_password("staff key passphrase: ")
                .map(Zeroizing::new)
                .map_err(|e| {
                    hinted(
                        format!("cannot read the passphrase from the terminal: {e}"),
                        format!("use --passphrase-file FILE or {PASSPHRASE_ENV}"),
                    )
                })?;
            return non_empty(p).map(Some);
        }
        Ok(None)
    }
}

fn non_empty(p: Zeroizing<String>) -> anyhow::Result<Zeroizing<String>> {
    if p.is_empty() {
        return Err(hinted(
            "the staff key passphrase is empty",
            "use a long passphrase",
        ));
    }
    Ok(p)
}

#[derive(Debug, Subcommand)]
pub(crate) enum RecoveriesCommand {
    /// Recoveries open at the bank: the customer, whether the owner authenticated, the time-lock
    /// (local time) and the approvals.
    List(StaffArgs),
    /// One recovery open at the bank, in full.
    Show(TargetArgs),
    /// Approve the bank's recovery session SESSION (after verifying the customer out of band):
    /// shows the recovery and asks for confirmation.
    Approve(ApproveArgs),
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
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

impl StaffArgs {
    /// The trustees file.
    pub(crate) fn trustees(&self) -> &Path {
        &self.trustees
    }
}

#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The bank's session id (from `dlocker recoveries list`).
    #[arg(value_name = "SESSION")]
    session: String,
    #[command(flatten)]
    common: StaffArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ApproveArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Approve without asking (scripts). Without it the recovery is shown and confirmation is
    /// asked on the terminal; with stdin not a terminal, nothing is approved.
    #[arg(long)]
    yes: bool,
}

/// A staff key for commands without passphrase options (`events watch`, the locker operator):
/// an encrypted key's passphrase comes from `DLOCKER_STAFF_PASSPHRASE` or the terminal.
pub(crate) fn load_staff_key(path: &Path) -> anyhow::Result<StaffKey> {
    let pass = PassphraseArgs {
        passphrase_file: None,
        ask: false,
    };
    load_key(path, &pass)
}

fn load_key(path: &Path, pass: &PassphraseArgs) -> anyhow::Result<StaffKey> {
    let encrypted = StaffKey::is_encrypted(path).unwrap_or(false);
    let passphrase = if encrypted { pass.get(true)? } else { None };
    StaffKey::load_with(path, passphrase.as_ref().map(|p| p.as_bytes())).map_err(|e| match e {
        StaffKeyError::Io { .. } => hinted(
            e.to_string(),
            "create one with `dlocker staff keygen --out FILE`",
        ),
        StaffKeyError::Invalid(_) => {
            hinted(e.to_string(), "pass the file `dlocker staff keygen` wrote")
        }
        StaffKeyError::NeedsPassphrase(_) => hinted(
            e.to_string(),
            format!("pass --passphrase-file FILE or --ask, or set {PASSPHRASE_ENV}"),
        ),
        StaffKeyError::WrongPassphrase(_) => {
            hinted(e.to_string(), "check the passphrase; nothing was sent")
        }
        StaffKeyError::Encrypt(_) => hinted(e.to_string(), "report it"),
        _ => anyhow::anyhow!("{e}"),
    })
}

pub(crate) fn client(args: &StaffArgs) -> anyhow::Result<(TrusteeSet, StaffClient)> {
    let set = load_trustees(&args.trustees)?;
    let key = load_key(&args.key, &args.passphrase)?;
    let client = StaffClient::new(key, set.bank());
    Ok((set, client))
}

/// Adds the next step to a refused staff request.
pub(crate) fn explain(e: StaffError, key_hex: &str, session: &str) -> anyhow::Error {
    let hint = match &e {
        StaffError::Connect(_) => "is the bank node running? check `dlocker cluster health --trustees FILE`".to_owned(),
        StaffError::Refused { refusal: Some(NodeRefusal::StaffUnknown), .. } => format!(
            "ask the bank operator to add your key: `trustee-node config add-staff --data-dir DIR --id YOU --public-key {key_hex} --roles approver,canceller`, then reload the node (SIGHUP)"
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

/// Unix seconds as local time (the system time zone, or `TZ`), e.g. `2026-11-30 14:05:00 CET`.
pub(crate) fn local_time(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|| format!("{unix} (unix)"))
}

/// `2 of 2 approvals`.
fn approvals(r: &PendingRecovery) -> String {
    format!(
        "{} of {} approvals",
        r.approvers.len(),
        r.approvals_required
    )
}

fn customer(r: &PendingRecovery) -> String {
    match (&r.customer_user_name, &r.customer_reference) {
        (Some(n), Some(c)) => format!("{n} (customer {c})"),
        (Some(n), None) => n.clone(),
        (None, Some(c)) => format!("customer {c}"),
        (None, None) => "not recorded at enrollment".to_owned(),
    }
}

fn time_lock(r: &PendingRecovery, now: u64) -> String {
    let at = local_time(r.release_not_before);
    if r.release_not_before <= now {
        format!("{at} (passed)")
    } else {
        let left = r.release_not_before - now;
        format!("{at} (in {} min)", left.div_ceil(60))
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn print_list(rows: &[PendingRecovery]) {
    let now = dlocker_proto::time::unix_now();
    let mut t = table(&[
        "Session",
        "Customer",
        "Wallet",
        "State",
        "Owner authenticated",
        "Time-lock until",
        "Approvals",
        "Approved by",
    ]);
    for r in rows {
        t.add_row(vec![
            r.session_id.clone(),
            customer(r),
            r.wallet_id.clone(),
            r.state.clone(),
            yes_no(r.owner_authenticated).to_owned(),
            time_lock(r, now),
            approvals(r),
            r.approvers.join(", "),
        ]);
    }
    println!("{t}");
    println!("{} recoveries open at the bank", rows.len());
}

/// The recovery in full, one field a line.
fn describe(r: &PendingRecovery) -> String {
    let now = dlocker_proto::time::unix_now();
    let by = if r.approvers.is_empty() {
        String::new()
    } else {
        format!(" (by {})", r.approvers.join(", "))
    };
    [
        ("Session", r.session_id.clone()),
        ("Customer", customer(r)),
        ("Wallet", r.wallet_id.clone()),
        ("State", r.state.clone()),
        (
            "Owner authenticated",
            yes_no(r.owner_authenticated).to_owned(),
        ),
        ("Opened", local_time(r.opened_at)),
        ("Time-lock until", time_lock(r, now)),
        ("Session expires", local_time(r.expires_at)),
        ("Approvals", format!("{}{by}", approvals(r))),
        ("Bank approval signed", yes_no(r.approved).to_owned()),
        ("New device key", r.session_key.clone()),
    ]
    .iter()
    .map(|(k, v)| format!("{k:<21}{v}"))
    .collect::<Vec<_>>()
    .join("\n")
}

/// The live recovery SESSION at the bank (a signed list request, filtered).
async fn find(c: &StaffClient, session: &str) -> anyhow::Result<PendingRecovery> {
    let rows = c
        .list_recoveries()
        .await
        .map_err(|e| explain(e, &c.public_key_hex(), session))?;
    rows.into_iter()
        .find(|r| r.session_id == session)
        .ok_or_else(|| {
            hinted(
                format!("no live recovery session {session:?} at the bank"),
                "list the open ones with `dlocker recoveries list --trustees FILE --key FILE`",
            )
        })
}

/// Asks on the terminal; refuses when stdin is not one (a script must say `--yes`).
fn confirm(r: &PendingRecovery) -> anyhow::Result<()> {
    confirm_approval(
        &describe(r),
        "recovery",
        &format!(
            "Approve the recovery of {} after verifying them out of band?",
            customer(r)
        ),
    )
}

/// Shows `description` and asks `question` on the terminal; refuses without a terminal (the
/// caller's `--yes` skips this). `what` names the thing shown, for the hint.
pub(crate) fn confirm_approval(
    description: &str,
    what: &str,
    question: &str,
) -> anyhow::Result<()> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    eprintln!("{description}");
    if !std::io::stdin().is_terminal() {
        return Err(hinted(
            "not approved: confirmation needed and stdin is not a terminal",
            format!("check the {what} above, then run again with --yes"),
        ));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(hinted("not approved", "nothing was sent to the bank")),
    }
}

#[derive(Serialize)]
struct ApproveJson {
    session_id: String,
    recovery: PendingRecovery,
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

pub(crate) fn keygen(out: &Path, pass: &PassphraseArgs, json: bool) -> anyhow::Result<()> {
    let key = StaffKey::generate();
    let passphrase = pass.get(false)?;
    if pass.ask
        && let Some(p) = &passphrase
    {
        let again = rpassword::prompt_password("repeat the passphrase: ").map(Zeroizing::new)?;
        if *again != **p {
            return Err(hinted(
                "the passphrases differ",
                "nothing was written; run keygen again",
            ));
        }
    }
    let saved = match &passphrase {
        Some(p) => key.save_encrypted(out, p.as_bytes()),
        None => key.save(out),
    };
    saved.map_err(|e| {
        hinted(
            e.to_string(),
            "choose a new file; an existing key is never overwritten",
        )
    })?;
    let encrypted = passphrase.is_some();
    let public = key.public_key_hex();
    if json {
        return print_json(
            &serde_json::json!({ "key_file": out.display().to_string(), "public_key": public, "encrypted": encrypted }),
        );
    }
    if encrypted {
        println!(
            "staff key written to {} (encrypted under your passphrase; mode 0600)",
            out.display()
        );
    } else {
        println!(
            "staff key written to {} (mode 0600; NOT encrypted — keep it secret, or use --ask / --passphrase-file)",
            out.display()
        );
    }
    println!("public key: {public}");
    println!(
        "add it to the bank node: trustee-node config add-staff --data-dir DIR --id YOUR_ID --public-key {public} --roles approver,canceller, then reload it (SIGHUP)"
    );
    Ok(())
}

pub(crate) async fn run_staff(cmd: StaffCommand, json: bool) -> anyhow::Result<()> {
    let (args, change) = match cmd {
        StaffCommand::Keygen(a) => return keygen(&a.out, &a.passphrase, json),
        StaffCommand::List(a) => (a, StaffChange::List),
        StaffCommand::Add(a) => {
            let public_key =
                dlocker_proto::keys::public_key_from_hex(&a.public_key).map_err(|e| {
                    hinted(
                        format!("--public-key: {e}"),
                        "pass the public key `dlocker staff keygen` printed (66 hex characters)",
                    )
                })?;
            (
                a.common,
                StaffChange::Add {
                    id: a.id,
                    public_key,
                    roles: a.roles,
                },
            )
        }
        StaffCommand::Remove(a) => (a.common, StaffChange::Remove { id: a.id }),
        StaffCommand::Role(a) => (
            a.common,
            StaffChange::SetRoles {
                id: a.id,
                roles: a.roles,
            },
        ),
        StaffCommand::Policy(a) => (
            a.common,
            StaffChange::SetPolicy {
                approvals_required: a.approvals_required,
            },
        ),
    };
    let (_, c) = client(&args)?;
    let listing = change == StaffChange::List;
    let roster = c.manage_staff(change).await.map_err(|e| {
        let hint = match &e {
            StaffError::Refused {
                code: tonic::Code::PermissionDenied,
                ..
            } => "staff administration needs a staff key with the admin role".to_owned(),
            StaffError::Refused {
                code: tonic::Code::FailedPrecondition,
                ..
            } => "nothing was changed; see `dlocker staff list`".to_owned(),
            _ => return explain(e, &c.public_key_hex(), ""),
        };
        hinted(e.to_string(), hint)
    })?;
    if json {
        return print_json(&roster);
    }
    if !listing {
        println!("staff changed at the bank (in force now, and stored)");
    }
    let mut t = table(&["Staff", "Roles", "Public key"]);
    for m in &roster.staff {
        t.add_row(vec![m.id.clone(), m.roles.join(","), m.public_key.clone()]);
    }
    println!("{t}");
    println!(
        "approval policy: {} distinct approval(s) per recovery",
        roster.approvals_required
    );
    Ok(())
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
        RecoveriesCommand::Show(a) => {
            let (_, c) = client(&a.common)?;
            let r = find(&c, &a.session).await?;
            if json {
                return print_json(&r);
            }
            println!("{}", describe(&r));
            Ok(())
        }
        RecoveriesCommand::Approve(ApproveArgs { target: a, yes }) => {
            let (_, c) = client(&a.common)?;
            let recovery = find(&c, &a.session).await?;
            if yes {
                if !json {
                    println!("{}", describe(&recovery));
                }
            } else {
                confirm(&recovery)?;
            }
            let st = c
                .approve(&a.session)
                .await
                .map_err(|e| explain(e, &c.public_key_hex(), &a.session))?;
            let expires_at = st.approval.as_ref().map(|s| s.body().expires_at);
            if json {
                return print_json(&ApproveJson {
                    session_id: a.session,
                    recovery,
                    approvers: st.approvers,
                    approvals_required: st.approvals_required,
                    approved: st.approval.is_some(),
                    expires_at,
                });
            }
            match expires_at {
                Some(exp) => println!(
                    "session {} APPROVED by {} ({} of {} approvals); the bank approval is valid until {} — the customer's device can release once the time-lock passes",
                    a.session,
                    st.approvers.join(", "),
                    st.approvers.len(),
                    st.approvals_required,
                    local_time(exp)
                ),
                None => println!(
                    "approval recorded: {} of {} approvals — ask another staff member to run `dlocker recoveries approve {} --trustees {} --key THEIR_KEY`",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Hinted;

    fn hint_for(refusal: Option<NodeRefusal>, message: &str) -> String {
        let e = StaffError::Refused {
            bank: "bank".into(),
            action: "approve",
            code: tonic::Code::PermissionDenied,
            refusal,
            message: message.into(),
        };
        explain(e, "02ab", "s1")
            .chain()
            .find_map(|e| e.downcast_ref::<Hinted>())
            .map(|h| h.hint.clone())
            .unwrap_or_default()
    }

    #[test]
    fn the_refusal_code_picks_the_hint_not_the_message() {
        assert!(hint_for(Some(NodeRefusal::StaffUnknown), "anything").contains("add-staff"));
        assert!(
            !hint_for(
                Some(NodeRefusal::StaffForbidden),
                "signed by an unknown key"
            )
            .contains("add-staff")
        );
        assert!(hint_for(None, "signed by an unknown key").contains("lacks the role"));
    }
}
