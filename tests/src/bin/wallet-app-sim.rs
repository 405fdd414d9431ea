//! A wallet app reduced to its recovery: what the resumable-recovery tests run as a separate
//! process and kill with SIGKILL at a chosen step, then run again with `--resume`.
//!
//! `wallet-app-sim --trustees FILE --wallet ID --dir DIR [--resume] [--pause-at WHAT]`
//!
//! `DIR` holds what a phone would keep: `state-key` (the keystore key, hex), `passkey` (an
//! exportable software passkey) and `state` (the sealed recovery state, replaced atomically at
//! every checkpoint). Every checkpoint and progress event is printed as one line on stdout
//! (`CHECKPOINT <step>`, `EVENT <name> <detail>`), then `RECOVERED <hex of the data>` at the end.
//! `--pause-at` (`checkpoint:<Step>` or `event:<Name>`) prints `PAUSED` there and blocks forever,
//! so the test kills the process at exactly that point.

use anyhow::{Context, Result, bail};
use dlocker_sdk::recover::{Checkpoint, RecoverEvent, RecoverOptions, RecoveryStep};
use dlocker_sdk::{SoftwareAuthenticator, StateKey, TrusteeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The test reads these lines; a closed pipe means it is gone, nothing to do.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn pause_if(pause_at: Option<&str>, here: &str) {
    if pause_at == Some(here) {
        say("PAUSED");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// Writes `bytes` to `path` durably: a temporary file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn event_line(e: &RecoverEvent) -> String {
    match e {
        RecoverEvent::SessionStatus { name, state } => {
            format!("EVENT SessionStatus {name} {state}")
        }
        RecoverEvent::SessionOpened { name, .. } => format!("EVENT SessionOpened {name}"),
        RecoverEvent::TrusteeFailed { name, reason } => {
            format!("EVENT TrusteeFailed {name} {reason}")
        }
        RecoverEvent::SessionsOpened { .. } => "EVENT SessionsOpened".into(),
        RecoverEvent::PasskeyRequested { .. } => "EVENT PasskeyRequested".into(),
        RecoverEvent::OwnerAuthenticated { name } => format!("EVENT OwnerAuthenticated {name}"),
        RecoverEvent::AwaitingApproval { bank_session_id } => {
            format!("EVENT AwaitingApproval {bank_session_id}")
        }
        RecoverEvent::ApprovalPending { .. } => "EVENT ApprovalPending".into(),
        RecoverEvent::Approved { .. } => "EVENT Approved".into(),
        RecoverEvent::Waiting { seconds_left } => format!("EVENT Waiting {seconds_left}"),
        RecoverEvent::ShareVerified { name, .. } => format!("EVENT ShareVerified {name}"),
        RecoverEvent::ShareRejected { name, reason } => {
            format!("EVENT ShareRejected {name} {reason}")
        }
        other => format!("EVENT Other {other:?}"),
    }
}

fn event_name(e: &RecoverEvent) -> String {
    event_line(e)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut trustees, mut wallet, mut dir, mut resume, mut pause_at) =
        (None, None, None, false, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trustees" => trustees = args.next().map(PathBuf::from),
            "--wallet" => wallet = args.next(),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--resume" => resume = true,
            "--pause-at" => pause_at = args.next(),
            other => bail!("unknown argument {other:?}"),
        }
    }
    let (Some(trustees), Some(wallet), Some(dir)) = (trustees, wallet, dir) else {
        bail!(
            "usage: wallet-app-sim --trustees FILE --wallet ID --dir DIR [--resume] [--pause-at WHAT]"
        );
    };
    let set = TrusteeSet::load(&trustees)?;
    let key_hex = std::fs::read_to_string(dir.join("state-key")).context("read state-key")?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(key_hex.trim(), &mut key).context("state-key is 32 bytes of hex")?;
    let key = StateKey::from_bytes(key);
    let mut auth = SoftwareAuthenticator::from_bytes(
        &std::fs::read(dir.join("passkey")).context("read passkey")?,
    )?;
    let state_path = dir.join("state");
    let pause_at = pause_at.as_deref();

    let save = |step: RecoveryStep, bytes: &[u8]| {
        write_atomic(&state_path, bytes).map_err(|e| e.to_string())?;
        say(&format!("CHECKPOINT {step:?}"));
        pause_if(pause_at, &format!("checkpoint:{step:?}"));
        Ok(())
    };
    let progress = |e: RecoverEvent| {
        say(&event_line(&e));
        pause_if(pause_at, &format!("event:{}", event_name(&e)));
    };
    let opts = RecoverOptions {
        poll_interval: Duration::from_millis(200),
        approval_timeout: Duration::from_secs(120),
        cancel: None,
        progress: &progress,
        checkpoint: Some(Checkpoint {
            key: &key,
            save: &save,
        }),
    };
    let recovered = if resume {
        let saved = std::fs::read(&state_path).context("read the saved state")?;
        dlocker_sdk::resume_recovery(&set, &saved, &key, &mut auth, opts).await?
    } else {
        dlocker_sdk::recover(&set, &wallet, &mut auth, opts).await?
    };
    say(&format!("TOUCHES {}", auth.touches()));
    say(&format!(
        "RECOVERED {}",
        hex::encode(recovered.data().expose())
    ));
    Ok(())
}
