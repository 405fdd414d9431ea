//! The document locker from the command line:
//!
//! * `dlocker docs keygen|list|upload|consent grant|consent revoke|consent list|fetch` — a holder's
//!   and a requester's side, with key files;
//! * `dlocker docs verify FILE` — issuer, holder, status and validity of a credential;
//!   `dlocker docs show FILE` — its decoded header and payload; `dlocker docs status-list` — an
//!   issuer's status list as the locker serves it;
//! * `dlocker issuers list|approve|suspend` and `dlocker requesters list|approve|suspend` — the
//!   bank's operator (a staff key with the `operator` role);
//! * the demo's last step, [`demo_documents`]: documents issued to the wallet before the phone
//!   was lost are re-issued to the recovered wallet's new key.

use crate::cluster::load_trustees;
use crate::output::{hinted, print_json, short, table};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use dlocker_proto::statement::StaffAction;
use dlocker_sdk::documents::{
    CredentialStatus, DocError, HolderClient, IssuerClient, LockerClient, OperatorClient,
    PrincipalKey, RequesterClient, VerifyReport, b64, load_key, save_key, vc,
};
use dlocker_sdk::{SoftwareAuthenticator, StaffClient, StaffKey, TrusteeSet};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(crate) enum DocsCommand {
    /// Create a wallet / requester key file (mode 0600) and print its public key.
    Keygen {
        /// Where to write it (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// A holder's documents.
    List(HolderArgs),
    /// Upload a file as a self-attested document, signed with the holder's wallet key.
    Upload(UploadArgs),
    /// Consents: grant, revoke, list.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// A requester fetches a document under a consent; the credential is verified.
    Fetch(FetchArgs),
    /// Verify a credential file: issuer, holder, status, validity (exit 1 unless all pass).
    Verify(VerifyArgs),
    /// Decode a credential file: its JOSE header and payload (no checks).
    Show {
        /// The credential (compact JWS).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// An issuer's status list, as the locker serves it (verified under the pinned key).
    StatusList(StatusListArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LockerArgs {
    /// The trustees file (the bank node, which runs the locker, is pinned from it).
    #[arg(long, value_name = "FILE")]
    trustees: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct HolderArgs {
    #[command(flatten)]
    locker: LockerArgs,
    /// The holder (the wallet id).
    #[arg(long)]
    holder: String,
    /// The holder's wallet key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    #[command(flatten)]
    holder: HolderArgs,
    /// Document type (A-Z 0-9), e.g. PHOTO.
    #[arg(long = "type", value_name = "TYPE")]
    doc_type: String,
    /// Media type; guessed from the file name when absent.
    #[arg(long)]
    media_type: Option<String>,
    /// The file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConsentCommand {
    /// Consent to a requester fetching documents for a purpose until a time.
    Grant(GrantArgs),
    /// Revoke a consent.
    Revoke {
        #[command(flatten)]
        holder: HolderArgs,
        /// The consent id.
        #[arg(value_name = "CONSENT")]
        consent: String,
    },
    /// The holder's consents.
    List(HolderArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    #[command(flatten)]
    holder: HolderArgs,
    /// The requester.
    #[arg(long)]
    requester: String,
    /// A document URI (repeat for several).
    #[arg(long = "uri", required = true)]
    uris: Vec<String>,
    /// Why the requester may fetch them.
    #[arg(long)]
    purpose: String,
    /// Days the consent lasts.
    #[arg(long, default_value_t = 30)]
    days: u64,
}

#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    #[command(flatten)]
    locker: LockerArgs,
    /// The requester id.
    #[arg(long)]
    requester: String,
    /// The requester's key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The document URI.
    #[arg(long)]
    uri: String,
    /// The consent id the holder gave.
    #[arg(long)]
    consent: String,
    /// Write the credential here (default: print it).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    locker: LockerArgs,
    /// The credential (compact JWS).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct StatusListArgs {
    #[command(flatten)]
    locker: LockerArgs,
    /// The issuer.
    #[arg(long)]
    issuer: String,
    /// The list number (0 = the current one).
    #[arg(long, default_value_t = 0)]
    list: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// Every registered issuer or requester and its state.
    List(OperatorArgs),
    /// Approve one (after checking who it is out of band).
    Approve(TargetArgs),
    /// Suspend one: no new documents; existing ones are reported as of a suspended issuer.
    Suspend(TargetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct OperatorArgs {
    #[command(flatten)]
    locker: LockerArgs,
    /// Your staff key (the bank lists it with the `operator` role).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The issuer or requester id.
    #[arg(value_name = "ID")]
    id: String,
    /// Approve: the key fingerprint `registry list` shows, checked with the organisation out of
    /// band (the locker refuses if the registered key differs). A fingerprint is base64url and
    /// may begin with `-` (1 key in 64): taken as the value, not as an option.
    #[arg(long, allow_hyphen_values = true)]
    fingerprint: Option<String>,
    #[command(flatten)]
    common: OperatorArgs,
}

fn locker(args: &LockerArgs) -> anyhow::Result<LockerClient> {
    let set = load_trustees(&args.trustees)?;
    Ok(LockerClient::new(set.bank()))
}

fn key_file(path: &Path) -> anyhow::Result<PrincipalKey> {
    load_key(path).map_err(|e| {
        hinted(
            e.to_string(),
            "create one with `dlocker docs keygen --out FILE`",
        )
    })
}

fn holder(a: &HolderArgs) -> anyhow::Result<HolderClient> {
    Ok(HolderClient::new(
        locker(&a.locker)?,
        &a.holder,
        key_file(&a.key)?,
    ))
}

/// Adds the next step to a locker refusal.
fn explain(e: DocError) -> anyhow::Error {
    let hint = match &e {
        DocError::Connect(_) => {
            "is the bank node running with [locker] enabled = true? check `dlocker cluster health --trustees FILE`"
        }
        DocError::Refused {
            code: tonic::Code::Unimplemented,
            ..
        } => {
            "the bank node does not serve the document locker: set [locker] enabled = true in its config.toml and restart it"
        }
        DocError::Refused {
            code: tonic::Code::Unauthenticated,
            ..
        } => {
            "the request was not accepted as signed by the registered key: check --key, --holder/--requester and the clock"
        }
        DocError::Refused {
            refusal: Some(_), ..
        } => "ask the holder for a consent that covers this document, requester and time",
        DocError::Refused {
            code: tonic::Code::PermissionDenied,
            ..
        } => {
            "the staff key lacks the operator role, or the party is not approved; ask the bank's operator"
        }
        DocError::Refused {
            code: tonic::Code::NotFound,
            ..
        } => "check the id (list them with `dlocker docs list` / `dlocker issuers list`)",
        DocError::Refused {
            code: tonic::Code::Unavailable,
            ..
        } => "the issuer's repository is down; nothing changed, try again later",
        _ => "run with RUST_LOG=info for details",
    };
    hinted(e.to_string(), hint)
}

fn guess_media_type(p: &Path) -> &'static str {
    match p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("json") => "application/json",
        _ => "text/plain",
    }
}

fn fmt_time(t: u64) -> String {
    if t == 0 {
        "-".into()
    } else {
        dlocker_sdk::documents::datetime::format(t)
    }
}

/// Prints a verification report the way `docs verify` does.
pub(crate) fn print_report(r: &VerifyReport) {
    let mut t = table(&["Field", "Value"]);
    let status = match r.status {
        CredentialStatus::Valid => format!("valid (not revoked; {})", r.status_entry),
        CredentialStatus::Revoked => format!("REVOKED ({})", r.status_entry),
        CredentialStatus::NotApplicable => "no status list (self-attested)".into(),
        other => format!("{other:?} ({})", r.status_entry),
    };
    let validity = format!(
        "{} → {}{}",
        fmt_time(r.valid_from),
        r.valid_until
            .map(fmt_time)
            .unwrap_or_else(|| "no expiry".into()),
        if r.in_validity_period {
            " (current)"
        } else {
            " (NOT current)"
        }
    );
    let issuer = format!(
        "{} ({}) — {}{}",
        r.issuer_id,
        if r.issuer_name.is_empty() {
            "-"
        } else {
            &r.issuer_name
        },
        r.issuer_state,
        if r.signature_valid {
            ", signature valid"
        } else {
            ", signature NOT verified"
        }
    );
    t.add_row(vec!["document".to_owned(), r.document_uri.clone()]);
    t.add_row(vec!["credential".to_owned(), r.credential_id.clone()]);
    t.add_row(vec!["issuer".to_owned(), issuer]);
    t.add_row(vec![
        "holder".to_owned(),
        format!(
            "{} (key {}, JWK thumbprint {})",
            r.holder_id,
            short(&r.holder_key),
            r.holder_key_thumbprint
        ),
    ]);
    t.add_row(vec!["status".to_owned(), status]);
    t.add_row(vec!["validity".to_owned(), validity]);
    for (k, v) in &r.claims {
        t.add_row(vec![format!("claim {k}"), v.clone()]);
    }
    println!("{t}");
    if r.ok {
        println!("VALID: signature, issuer, status and validity all check");
    } else {
        for p in &r.problems {
            println!("problem: {p}");
        }
    }
}

/// The decoded JOSE header and payload of a compact JWS (no checks).
pub(crate) fn decode(compact: &str) -> anyhow::Result<(serde_json::Value, serde_json::Value)> {
    let mut parts = compact.trim().split('.');
    let (Some(h), Some(p)) = (parts.next(), parts.next()) else {
        anyhow::bail!("not a compact JWS");
    };
    let json = |what: &'static str, part: &str| -> anyhow::Result<serde_json::Value> {
        let bytes = b64::decode(what, part).map_err(|e| anyhow::anyhow!("{e}"))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{what} is not JSON"))
    };
    Ok((json("header", h)?, json("payload", p)?))
}

#[derive(Serialize)]
struct StatusListJson {
    url: String,
    issuer: String,
    entries: u32,
    revoked: u32,
    revoked_indices: Vec<u32>,
    valid_from: u64,
    valid_until: u64,
    header: serde_json::Value,
    payload: serde_json::Value,
}

pub(crate) async fn run_docs(cmd: DocsCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        DocsCommand::Keygen { out } => {
            let key = PrincipalKey::generate();
            save_key(&key, &out).map_err(|e| {
                hinted(
                    e.to_string(),
                    "choose a new file; a key is never overwritten",
                )
            })?;
            if json {
                return print_json(
                    &serde_json::json!({ "key_file": out.display().to_string(), "public_key": key.public_key_hex() }),
                );
            }
            println!(
                "key written to {} (mode 0600; keep it secret)",
                out.display()
            );
            println!("public key: {}", key.public_key_hex());
            Ok(())
        }
        DocsCommand::List(a) => {
            let h = holder(&a)?;
            let docs = h.documents().await.map_err(explain)?;
            if json {
                return print_json(&docs.iter().map(doc_json).collect::<Vec<_>>());
            }
            let mut t = table(&[
                "Document URI",
                "Issuer",
                "Type",
                "Source",
                "State",
                "Credential",
                "Updated",
            ]);
            for d in &docs {
                t.add_row(vec![
                    d.document_uri.clone(),
                    d.issuer_id.clone(),
                    d.doc_type.clone(),
                    d.source.clone(),
                    d.state.clone(),
                    short(
                        d.credential_id
                            .trim_start_matches("urn:dlocker:credential:"),
                    ),
                    fmt_time(d.updated_at),
                ]);
            }
            println!("{t}");
            println!("{} documents in the locker for {}", docs.len(), a.holder);
            Ok(())
        }
        DocsCommand::Upload(a) => {
            let h = holder(&a.holder)?;
            let data =
                std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
            let name = a
                .file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("document")
                .to_owned();
            let media_type = a
                .media_type
                .clone()
                .unwrap_or_else(|| guess_media_type(&a.file).to_owned());
            let d = h
                .upload(
                    &a.doc_type,
                    &vc::Upload {
                        name,
                        media_type,
                        data,
                    },
                )
                .await
                .map_err(explain)?;
            if json {
                return print_json(&doc_json(&d));
            }
            println!(
                "uploaded and self-attested as {} (signed with the wallet key)",
                d.document_uri
            );
            Ok(())
        }
        DocsCommand::Consent(ConsentCommand::Grant(a)) => {
            let h = holder(&a.holder)?;
            let not_after = dlocker_proto::time::unix_now() + a.days.max(1) * 86_400;
            let c = h
                .grant_consent(&a.requester, &a.uris, &a.purpose, not_after)
                .await
                .map_err(explain)?;
            if json {
                return print_json(&consent_json(&c));
            }
            println!(
                "consent {} granted to {} for {} document(s), purpose {:?}, until {}",
                c.consent_id,
                c.requester_id,
                c.document_uris.len(),
                c.purpose,
                fmt_time(c.not_after)
            );
            println!(
                "give the requester the consent id and the URIs: `dlocker docs fetch --consent {} --uri …`",
                c.consent_id
            );
            Ok(())
        }
        DocsCommand::Consent(ConsentCommand::Revoke { holder: a, consent }) => {
            let c = holder(&a)?
                .revoke_consent(&consent)
                .await
                .map_err(explain)?;
            if json {
                return print_json(&consent_json(&c));
            }
            println!(
                "consent {} revoked at {}",
                c.consent_id,
                fmt_time(c.revoked_at)
            );
            Ok(())
        }
        DocsCommand::Consent(ConsentCommand::List(a)) => {
            let cs = holder(&a)?.consents().await.map_err(explain)?;
            if json {
                return print_json(&cs.iter().map(consent_json).collect::<Vec<_>>());
            }
            let mut t = table(&[
                "Consent",
                "Requester",
                "Documents",
                "Purpose",
                "Until",
                "State",
            ]);
            for c in &cs {
                t.add_row(vec![
                    c.consent_id.clone(),
                    c.requester_id.clone(),
                    c.document_uris.join("\n"),
                    c.purpose.clone(),
                    fmt_time(c.not_after),
                    c.state.clone(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        DocsCommand::Fetch(a) => {
            let r = RequesterClient::new(locker(&a.locker)?, &a.requester, key_file(&a.key)?);
            let got = r.fetch(&a.uri, &a.consent).await.map_err(explain)?;
            match &a.out {
                Some(p) => {
                    std::fs::write(p, format!("{}\n", got.credential_jws))
                        .with_context(|| format!("writing {}", p.display()))?;
                    if json {
                        return print_json(&got.report);
                    }
                    print_report(&got.report);
                    println!("credential written to {}", p.display());
                }
                None if json => print_json(
                    &serde_json::json!({ "credential_jws": got.credential_jws, "report": got.report }),
                )?,
                None => println!("{}", got.credential_jws),
            }
            Ok(())
        }
        DocsCommand::Verify(a) => {
            let text = std::fs::read_to_string(&a.file)
                .with_context(|| format!("reading {}", a.file.display()))?;
            let report = locker(&a.locker)?.verify(&text).await.map_err(explain)?;
            if json {
                print_json(&report)?;
            } else {
                print_report(&report);
            }
            if report.ok {
                Ok(())
            } else {
                Err(hinted(
                    format!(
                        "{} does not verify: {}",
                        a.file.display(),
                        report.problems.join("; ")
                    ),
                    "do not accept this credential; ask the holder to share a current one through the locker",
                ))
            }
        }
        DocsCommand::Show { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let (h, p) = decode(&text)?;
            if json {
                return print_json(&serde_json::json!({ "header": h, "payload": p }));
            }
            println!("header:\n{}", serde_json::to_string_pretty(&h)?);
            println!("payload:\n{}", serde_json::to_string_pretty(&p)?);
            Ok(())
        }
        DocsCommand::StatusList(a) => {
            let l = locker(&a.locker)?;
            let (sl, compact) = l.status_list(&a.issuer, a.list).await.map_err(explain)?;
            let (header, payload) = decode(&compact)?;
            let revoked_indices: Vec<u32> = (0..sl.bits.len())
                .filter(|i| sl.bits.get(*i) == Some(true))
                .collect();
            let out = StatusListJson {
                url: sl.url.clone(),
                issuer: a.issuer.clone(),
                entries: sl.bits.len(),
                revoked: revoked_indices.len() as u32,
                revoked_indices,
                valid_from: sl.valid_from,
                valid_until: sl.valid_until,
                header,
                payload,
            };
            if json {
                return print_json(&out);
            }
            println!(
                "status list {} (signed by locker {}, verified under the pinned key)",
                out.url,
                short(l.locker_id())
            );
            println!("header:\n{}", serde_json::to_string_pretty(&out.header)?);
            println!("payload:\n{}", serde_json::to_string_pretty(&out.payload)?);
            println!(
                "{} entries, {} revoked{}; valid {} → {}",
                out.entries,
                out.revoked,
                if out.revoked_indices.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (indices {})",
                        out.revoked_indices
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                fmt_time(out.valid_from),
                fmt_time(out.valid_until)
            );
            Ok(())
        }
    }
}

fn doc_json(d: &dlocker_proto::pb::LockerDocument) -> serde_json::Value {
    serde_json::json!({
        "document_uri": d.document_uri, "issuer_id": d.issuer_id, "doc_type": d.doc_type,
        "source": d.source, "state": d.state, "credential_id": d.credential_id,
        "updated_at": d.updated_at, "credential_jws": d.credential_jws,
    })
}

fn consent_json(c: &dlocker_proto::pb::ConsentRecord) -> serde_json::Value {
    serde_json::json!({
        "consent_id": c.consent_id, "holder_id": c.holder_id, "requester_id": c.requester_id,
        "document_uris": c.document_uris, "purpose": c.purpose, "not_after": c.not_after,
        "granted_at": c.granted_at, "revoked_at": c.revoked_at, "state": c.state,
        "carried_over_at": c.carried_over_at,
    })
}

fn operator(a: &OperatorArgs) -> anyhow::Result<OperatorClient> {
    let key = crate::staff::load_staff_key(&a.key)?;
    Ok(OperatorClient::new(key, locker(&a.locker)?))
}

/// `dlocker issuers …` (`issuers` true) and `dlocker requesters …`.
pub(crate) async fn run_registry(
    cmd: RegistryCommand,
    issuers: bool,
    json: bool,
) -> anyhow::Result<()> {
    let (approve, suspend) = if issuers {
        (StaffAction::ApproveIssuer, StaffAction::SuspendIssuer)
    } else {
        (StaffAction::ApproveRequester, StaffAction::SuspendRequester)
    };
    match cmd {
        RegistryCommand::List(a) => {
            let (is, rs) = operator(&a)?.list().await.map_err(explain)?;
            if issuers {
                if json {
                    return print_json(&is);
                }
                let mut t = table(&[
                    "Issuer",
                    "Name",
                    "Types",
                    "Mode",
                    "State",
                    "Decided by",
                    "Signing key",
                    "Key fingerprint",
                ]);
                for i in &is {
                    t.add_row(vec![
                        i.issuer_id.clone(),
                        i.name.clone(),
                        i.doc_types.join(","),
                        i.mode.clone(),
                        i.state.clone(),
                        i.decided_by.clone(),
                        short(&i.signing_key),
                        i.key_fingerprint.clone(),
                    ]);
                }
                println!("{t}");
                println!("{} issuers", is.len());
            } else {
                if json {
                    return print_json(&rs);
                }
                let mut t = table(&[
                    "Requester",
                    "Name",
                    "State",
                    "Decided by",
                    "Key fingerprint",
                ]);
                for r in &rs {
                    t.add_row(vec![
                        r.requester_id.clone(),
                        r.name.clone(),
                        r.state.clone(),
                        r.decided_by.clone(),
                        r.key_fingerprint.clone(),
                    ]);
                }
                println!("{t}");
                println!("{} requesters", rs.len());
            }
            Ok(())
        }
        RegistryCommand::Approve(a) => decide(&a, approve, json).await,
        RegistryCommand::Suspend(a) => decide(&a, suspend, json).await,
    }
}

/// Approves or suspends one issuer or requester.
async fn decide(a: &TargetArgs, action: StaffAction, json: bool) -> anyhow::Result<()> {
    let approving = matches!(
        action,
        StaffAction::ApproveIssuer | StaffAction::ApproveRequester
    );
    let target = match (&a.fingerprint, approving) {
        (Some(fp), _) => dlocker_sdk::documents::ids::approval_target(&a.id, fp),
        (None, true) => anyhow::bail!(
            "approving needs --fingerprint: check the key fingerprint `registry list` shows with the organisation, then pass it"
        ),
        (None, false) => a.id.clone(),
    };
    let d = operator(&a.common)?
        .decide(action, &target)
        .await
        .map_err(explain)?;
    if json {
        return print_json(
            &serde_json::json!({ "kind": d.kind, "id": d.id, "state": d.state, "decided_by": d.decided_by }),
        );
    }
    println!(
        "{} {} is now {} (by {})",
        d.kind,
        d.id,
        d.state.to_uppercase(),
        d.decided_by
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The demo's last step.

/// `dlocker demo`'s last step: the bank (a hosted issuer) and the example transport department
/// (a pull issuer) issue documents to the customer's wallet key; the customer consents to an
/// employer fetching one; the phone is gone and with it the wallet key; the bank approves the
/// recovered wallet's new key and the locker re-issues everything to it — the old credentials
/// revoked in their status lists, the consent carried over, the employer's fetch answered with
/// the new credential.
pub(crate) async fn demo_documents(
    say: &(dyn Fn(&str) + Sync),
    dir: &Path,
    set: &TrusteeSet,
    wallet_id: &str,
    auth: &mut SoftwareAuthenticator,
) -> anyhow::Result<DocumentTouches> {
    let staff_key = || -> anyhow::Result<StaffKey> {
        let p = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("staff-") && n.ends_with(".key"))
            })
            .context("the demo's staff key file")?;
        StaffKey::load(&p).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let locker = LockerClient::new(set.bank());
    let err = |e: DocError| {
        hinted(
            e.to_string(),
            "run with RUST_LOG=info to see the nodes' logs",
        )
    };
    say("\n[documents] Re-issuing the customer's ID documents to the recovered wallet's new key");
    say("  the bank's node runs the document locker ([locker] enabled = true)");

    // The wallet key the lost phone had (the demo keeps it only to show the old credentials).
    let old_key = PrincipalKey::generate();
    let holder = HolderClient::new(locker.clone(), wallet_id, old_key.clone());
    let before = auth.touches();
    holder.register(auth).await.map_err(err)?;
    let mut touches = DocumentTouches {
        holder_registration: auth.touches() - before,
        reissue: 0,
    };
    say(&format!(
        "  (before the loss) the wallet bound its key {} to the locker with one touch of the passkey (its challenge covers that key)",
        short(&old_key.public_key_hex())
    ));

    // Issuers: the bank itself (hosted key) and the example transport department (pull).
    let operator = OperatorClient::new(staff_key()?, locker.clone());
    let bank_issuer = IssuerClient::new(locker.clone(), "demo.bank", PrincipalKey::generate());
    let bank_entry = bank_issuer
        .register("Demo Bank KYC", &["IDCRD".to_owned()], true, "")
        .await
        .map_err(err)?;
    operator
        .approve(
            StaffAction::ApproveIssuer,
            "demo.bank",
            &bank_entry.key_fingerprint,
        )
        .await
        .map_err(err)?;
    let transport_key = PrincipalKey::generate();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the example issuer")?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let repo = dlocker_sdk::documents::repository::RepositoryServer::new(
        dlocker_locker_example::ISSUER_ID,
        transport_key.clone(),
        dlocker_locker_example::ExampleIssuer::sample(),
    )
    .with_locker_key(set.bank().public_key);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let repo_task = tokio::spawn(repo.serve(listener, async {
        let _ = stopped.await;
    }));
    let transport = IssuerClient::new(
        locker.clone(),
        dlocker_locker_example::ISSUER_ID,
        transport_key,
    );
    let transport_entry = transport
        .register(
            dlocker_locker_example::NAME,
            &[dlocker_locker_example::DOC_TYPE.to_owned()],
            false,
            &endpoint,
        )
        .await
        .map_err(err)?;
    operator
        .approve(
            StaffAction::ApproveIssuer,
            dlocker_locker_example::ISSUER_ID,
            &transport_entry.key_fingerprint,
        )
        .await
        .map_err(err)?;
    say(&format!(
        "  operator approved issuers demo.bank (hosted key) and {} (pull, repository at {endpoint})",
        dlocker_locker_example::ISSUER_ID
    ));
    let result = async {
        let claims = vc::Claims::from_pairs([("name", "Asha Rao"), ("customerNumber", "C-100442"), ("kycLevel", "full")])
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let card = bank_issuer.issue(wallet_id, "IDCRD", &claims, 0).await.map_err(err)?;
        let lookup = [("licence_number", "KA01-2020-0001234"), ("date_of_birth", "1990-04-12")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let licence = holder.pull(dlocker_locker_example::ISSUER_ID, "DRVLC", &lookup).await.map_err(err)?;
        say(&format!("  issued {} (signed by the locker with demo.bank's hosted key)", card.document_uri));
        say(&format!("  pulled {} from the transport department's repository", licence.document_uri));
        let employer_key = PrincipalKey::generate();
        let employer_fp = dlocker_sdk::documents::ids::key_fingerprint(&employer_key.public_key());
        let employer = RequesterClient::new(locker.clone(), "demo.employer", employer_key);
        employer.register("Demo Employer").await.map_err(err)?;
        operator.approve(StaffAction::ApproveRequester, "demo.employer", &employer_fp).await.map_err(err)?;
        let consent = holder
            .grant_consent("demo.employer", std::slice::from_ref(&licence.document_uri), "driver job application", dlocker_proto::time::unix_now() + 30 * 86_400)
            .await
            .map_err(err)?;
        let before = employer.fetch(&licence.document_uri, &consent.consent_id).await.map_err(err)?;
        say(&format!(
            "  consent {} lets demo.employer fetch the licence; fetched and verified (credential {})",
            short(&consent.consent_id),
            short(before.credential.credential_id.trim_start_matches("urn:dlocker:credential:"))
        ));

        say("  the lost phone held the wallet key: its credentials must not stay usable");
        let new_key = PrincipalKey::generate();
        say(&format!("  the recovered wallet makes a new key {} and asks the bank to approve it", short(&new_key.public_key_hex())));
        let staff = StaffClient::new(staff_key()?, set.bank());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let approving = tokio::spawn(async move {
            let Some(session) = rx.recv().await else { return Ok(Vec::new()) };
            staff.approve(&session).await.map(|s| s.approvers)
        });
        let approval = dlocker_sdk::documents::request_key_approval(
            set.bank(),
            wallet_id,
            &new_key.public_key(),
            Duration::from_millis(200),
            Duration::from_secs(60),
            &|session| {
                let _ = tx.send(session.to_owned());
            },
        )
        .await
        .map_err(err)?;
        match approving.await {
            Ok(Ok(who)) => say(&format!("  bank staff {} approved the new key (a BankApproval bound to it)", who.join(", "))),
            Ok(Err(e)) => return Err(hinted(e.to_string(), "the bank refused the demo staff key")),
            Err(e) => anyhow::bail!("staff task failed: {e}"),
        }
        let touched = auth.touches();
        let out = dlocker_sdk::documents::reissue(&locker, wallet_id, &new_key, &approval.approval, auth, true).await.map_err(err)?;
        touches.reissue = auth.touches() - touched;
        // The bank session behind the approval was never owner-authenticated: it blocks
        // nothing and expires on its own, so closing it would only cost the owner a touch.
        say(&format!(
            "  one passkey touch (covering the new key) + bank approval: the locker re-issued {} documents to the new key, revoked {} old credentials, carried {} consent over",
            out.reissued.len(),
            out.revoked_credential_ids.len(),
            out.consents_carried_over
        ));
        let mut t = table(&["Document URI", "Source", "New credential", "Bound to"]);
        for d in &out.reissued {
            t.add_row(vec![
                d.document_uri.clone(),
                d.source.clone(),
                short(d.credential_id.trim_start_matches("urn:dlocker:credential:")),
                short(&new_key.public_key_hex()),
            ]);
        }
        say(&t.to_string());
        let old = locker.verify(&before.credential_jws).await.map_err(err)?;
        say(&format!(
            "  the old licence credential now verifies as: {}",
            if old.status == CredentialStatus::Revoked { "REVOKED in the status list" } else { "NOT revoked (unexpected)" }
        ));
        let after = employer.fetch(&licence.document_uri, &consent.consent_id).await.map_err(err)?;
        say(&format!(
            "  under the same consent the employer now gets credential {}, bound to the new key, verified",
            short(after.credential.credential_id.trim_start_matches("urn:dlocker:credential:"))
        ));
        let saved = dir.join("credentials");
        std::fs::create_dir_all(&saved).with_context(|| format!("creating {}", saved.display()))?;
        std::fs::write(saved.join("licence-old.jwt"), format!("{}\n", before.credential_jws))?;
        std::fs::write(saved.join("licence-new.jwt"), format!("{}\n", after.credential_jws))?;
        say(&format!(
            "  both licence credentials saved in {}: `dlocker docs show FILE` decodes one, `dlocker docs verify FILE --trustees …` checks it while the bank node runs",
            saved.display()
        ));
        if old.status != CredentialStatus::Revoked || after.credential.holder_key != new_key.public_key() {
            anyhow::bail!("the re-issue did not revoke the old credential or bind the new one");
        }
        Ok(())
    }
    .await;
    let _ = stop.send(());
    let _ = repo_task.await;
    result.map(|()| touches)
}

/// The owner's passkey touches of the demo's document ceremonies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocumentTouches {
    /// Binding the wallet key at the locker.
    pub(crate) holder_registration: u64,
    /// Re-issuing to the recovered wallet's new key.
    pub(crate) reissue: u64,
}

use dlocker_sdk::documents::example_issuer as dlocker_locker_example;
