//! A wallet app reduced to its ceremonies, which survive the app being killed: backup and
//! recovery save their sealed state at every checkpoint and `--resume` finishes them from it.
//! Kill it (Ctrl-C, `kill -9`) at any step and run it again with `--resume`. The integration
//! tests (`tests/tests/it/recovery_resume.rs`) do exactly that at every step.
//!
//! ```text
//! # against deploy/local-cluster.sh's trustees file; DIR/state-key is 64 hex digits:
//! cargo run -p dlocker-sdk --example resumable -- --trustees T --wallet W --dir DIR --backup 5365656421
//! cargo run -p dlocker-sdk --example resumable -- --trustees T --wallet W --dir DIR       # recover
//! cargo run -p dlocker-sdk --example resumable -- --trustees T --wallet W --dir DIR --resume
//! ```
//!
//! `resumable --trustees FILE --wallet ID --dir DIR [--resume] [--pause-at WHAT]`
//!
//! `DIR` holds what a phone would keep: `state-key` (the keystore key, hex), `passkey` (an
//! exportable software passkey) and `state` (the sealed recovery state, replaced atomically at
//! every checkpoint). Every checkpoint and progress event is printed as one line on stdout
//! (`CHECKPOINT <step>`, `EVENT <name> <detail>`), then `RECOVERED <hex of the data>` at the end.
//! `--pause-at` (`checkpoint:<Step>` or `event:<Name>`) prints `PAUSED` there and blocks forever,
//! so the test kills the process at exactly that point.
//!
//! `--backup DATA_HEX` backs the wallet up instead (a fresh exportable passkey saved to
//! `DIR/passkey` once registered; the sealed
//! `PreparedBackup` saved to `DIR/backup-state` at each checkpoint, `CHECKPOINT Backup<n>`);
//! with `--resume` it completes the saved one. `--hold-at checkpoint:Backup<n>` prints `HELD`
//! there and waits until the file `DIR/go` exists. Events are `EVENT TrusteeDone <name>` /
//! `EVENT TrusteeFailed <name> <reason>`; the end is `UNCONFIRMED <trustees the confirmation
//! missed>` then `BACKED-UP <receipts>`.
//!
//! `--rotate` re-splits the backed-up wallet (its secret from `DIR/backup-state`) to epoch 2,
//! 2-of-n over the same trustees, through the [`dlocker_sdk::Client`]: the sealed record is
//! saved to `DIR/rotation-state` after every step (`CHECKPOINT Rotation <phase>`; pause with
//! `--pause-at checkpoint:Rotation<phase>`, the first checkpoint in that phase, or
//! `checkpoint:Rotation<phase>#<n>`, the n-th); with `--resume`
//! it completes the saved one. The end is `ROTATED <epoch> <phase>`.

use anyhow::{Context, Result, bail};
use dlocker_sdk::{Checkpoint, RecoverEvent, RecoverOptions, RecoveryStep};
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
    let (mut hold_at, mut backup_data, mut rotate) = (None::<String>, None::<String>, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trustees" => trustees = args.next().map(PathBuf::from),
            "--wallet" => wallet = args.next(),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--resume" => resume = true,
            "--pause-at" => pause_at = args.next(),
            "--hold-at" => hold_at = args.next(),
            "--backup" => backup_data = args.next(),
            "--rotate" => rotate = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    let (Some(trustees), Some(wallet), Some(dir)) = (trustees, wallet, dir) else {
        bail!(
            "usage: resumable --trustees FILE --wallet ID --dir DIR [--resume] [--pause-at WHAT]"
        );
    };
    let set = TrusteeSet::load(&trustees)?;
    if let Some(data) = backup_data {
        return backup(
            &set,
            &wallet,
            &dir,
            resume,
            &data,
            pause_at.as_deref(),
            hold_at.as_deref(),
        )
        .await;
    }
    if rotate {
        return rotation(set, &dir, resume, pause_at.as_deref()).await;
    }
    let key = state_key(&dir)?;
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
        dlocker_sdk::protocol::resume_recovery(&set, &saved, &key, &mut auth, opts).await?
    } else {
        dlocker_sdk::protocol::recover(&set, &wallet, &mut auth, opts).await?
    };
    say(&format!("TOUCHES {}", auth.touches()));
    say(&format!(
        "RECOVERED {}",
        hex::encode(recovered.data().expose())
    ));
    Ok(())
}

fn state_key(dir: &Path) -> Result<StateKey> {
    let key_hex = std::fs::read_to_string(dir.join("state-key")).context("read state-key")?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(key_hex.trim(), &mut key).context("state-key is 32 bytes of hex")?;
    Ok(StateKey::from_bytes(key))
}

async fn backup(
    set: &TrusteeSet,
    wallet: &str,
    dir: &Path,
    resume: bool,
    data_hex: &str,
    pause_at: Option<&str>,
    hold_at: Option<&str>,
) -> Result<()> {
    use dlocker_sdk::{BackupCheckpoint, protocol::ProgressEvent};
    use dlocker_sdk::{BackupPolicy, PreparedBackup};
    let key = state_key(dir)?;
    let state_path = dir.join("backup-state");
    let prepared = if resume {
        PreparedBackup::open_sealed(
            &std::fs::read(&state_path).context("read the saved backup")?,
            &key,
        )?
    } else {
        let data = hex::decode(data_hex).context("--backup takes hex")?;
        let policy = BackupPolicy {
            threshold: 3,
            recovery_delay_secs: 1,
        };
        PreparedBackup::new(set, wallet, &data, policy)?
    };
    let mut auth = SoftwareAuthenticator::exportable()?;
    let saves = std::sync::atomic::AtomicU32::new(0);
    let save = |bytes: &[u8]| {
        write_atomic(&state_path, bytes).map_err(|e| e.to_string())?;
        let n = saves.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        say(&format!("CHECKPOINT Backup{n}"));
        if hold_at == Some(format!("checkpoint:Backup{n}").as_str()) {
            say("HELD");
            while !dir.join("go").exists() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    };
    let progress = |e: ProgressEvent| {
        let (name, line) = match &e {
            ProgressEvent::TrusteeDone { name, .. } => {
                ("TrusteeDone", format!("EVENT TrusteeDone {name}"))
            }
            ProgressEvent::TrusteeFailed { name, reason } => (
                "TrusteeFailed",
                format!("EVENT TrusteeFailed {name} {reason}"),
            ),
            _ => return,
        };
        say(&line);
        pause_if(pause_at, &format!("event:{name}"));
    };
    let owner = dlocker_sdk::OwnerIdentity {
        user_name: "alice",
        customer_reference: None,
    };
    let receipts = dlocker_sdk::protocol::backup_with_checkpoint(
        set,
        &prepared,
        &owner,
        &mut auth,
        &progress,
        Some(BackupCheckpoint {
            key: &key,
            save: &save,
        }),
    )
    .await?;
    if let Some(keys) = auth.to_bytes().filter(|_| auth.touches() > 0) {
        // The registering run's passkey, for a later recovery (a platform passkey in a real app).
        write_atomic(&dir.join("passkey"), &keys)?;
    }
    say(&format!("TOUCHES {}", auth.touches()));
    // Trustees the backup-complete confirmation did not reach (0 when all took it).
    say(&format!("UNCONFIRMED {}", receipts.unconfirmed.len()));
    say(&format!("BACKED-UP {}", receipts.receipts.len()));
    Ok(())
}

async fn rotation(set: TrusteeSet, dir: &Path, resume: bool, pause_at: Option<&str>) -> Result<()> {
    use dlocker_sdk::{BackupPolicy, Client, PreparedBackup, RotationRecord};
    use dlocker_sdk::{RotateOptions, RotationCheckpoint, RotationPhase, RotationSource};
    let key = state_key(dir)?;
    // The live phone holds the wallet secret: here, in its sealed backup state.
    let prepared = PreparedBackup::open_sealed(
        &std::fs::read(dir.join("backup-state")).context("read the saved backup")?,
        &key,
    )?;
    let source = RotationSource::from_prepared(&prepared)?;
    let mut auth = Persisted {
        inner: SoftwareAuthenticator::from_bytes(
            &std::fs::read(dir.join("passkey")).context("read passkey")?,
        )?,
        path: dir.join("passkey"),
    };
    let state_path = dir.join("rotation-state");
    let seen = std::sync::Mutex::new(Vec::<RotationPhase>::new());
    let save = |phase: RotationPhase, bytes: &[u8]| {
        write_atomic(&state_path, bytes).map_err(|e| e.to_string())?;
        let name = format!("{phase:?}");
        say(&format!("CHECKPOINT Rotation {name}"));
        let n = {
            let mut seen = seen.lock().map_err(|_| "poisoned".to_owned())?;
            seen.push(phase);
            seen.iter().filter(|p| **p == phase).count()
        };
        if n == 1 {
            pause_if(pause_at, &format!("checkpoint:Rotation{name}"));
        }
        pause_if(pause_at, &format!("checkpoint:Rotation{name}#{n}"));
        Ok(())
    };
    let opts = RotateOptions::new("alice").checkpoint(RotationCheckpoint {
        key: &key,
        save: &save,
    });
    let client = Client::builder().trustees(set.clone()).build()?;
    let record = if resume {
        let mut record = RotationRecord::open_sealed(
            &std::fs::read(&state_path).context("read the saved rotation")?,
            &key,
        )?;
        say(&format!("RESUMING {}", record.phase.as_str()));
        client
            .resume_rotation(&mut record, &set, source.secret(), &mut auth, &opts)
            .await?;
        record
    } else {
        let policy = BackupPolicy {
            threshold: 2,
            recovery_delay_secs: 1,
        };
        client
            .rotate(&set, &source, policy, false, &mut auth, &opts)
            .await?
    };
    say(&format!("TOUCHES {}", auth.inner.touches()));
    say(&format!(
        "ROTATED {} {}",
        record.to_epoch,
        record.phase.as_str()
    ));
    Ok(())
}

/// The software passkey, saved to its file after every touch: like a phone's authenticator, its
/// signature counter survives the app being killed (the trustees refuse a counter that goes back).
struct Persisted {
    inner: SoftwareAuthenticator,
    path: PathBuf,
}

impl Persisted {
    fn save(&self) -> Result<(), dlocker_sdk::AuthError> {
        let bytes = self.inner.to_bytes().ok_or_else(|| {
            dlocker_sdk::AuthError::Authenticator("the passkey is not exportable".into())
        })?;
        write_atomic(&self.path, &bytes)
            .map_err(|e| dlocker_sdk::AuthError::Authenticator(format!("saving the passkey: {e}")))
    }
}

impl dlocker_sdk::protocol::OwnerAuthenticator for Persisted {
    fn register(
        &mut self,
        options: webauthn_rs_proto::CreationChallengeResponse,
    ) -> Result<webauthn_rs_proto::RegisterPublicKeyCredential, dlocker_sdk::AuthError> {
        let r = self.inner.register(options);
        self.save()?;
        r
    }

    fn authenticate(
        &mut self,
        options: webauthn_rs_proto::RequestChallengeResponse,
    ) -> Result<webauthn_rs_proto::PublicKeyCredential, dlocker_sdk::AuthError> {
        let r = self.inner.authenticate(options);
        self.save()?;
        r
    }
}
