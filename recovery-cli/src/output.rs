//! How the CLI talks to people and scripts: tables, JSON, progress bars and one-line errors.

use comfy_table::{ContentArrangement, Table, presets};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::time::Duration;

/// An error with a next step for the operator (printed as `error:` then `hint:`).
#[derive(Debug)]
pub(crate) struct Hinted {
    pub(crate) message: String,
    pub(crate) hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// An `anyhow::Error` that carries a hint line.
pub(crate) fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hint: hint.into(),
    }
    .into()
}

/// Per-trustee failures as `(trustee, reason)` pairs, the shape the CLI's JSON has always had.
pub(crate) fn reason_pairs(failed: &[dlocker_sdk::Failure]) -> Vec<(String, String)> {
    failed
        .iter()
        .map(|(name, why)| (name.clone(), why.to_string()))
        .collect()
}

/// Prints a failure as exactly one `error:` line (plus a `hint:` line when there is one).
pub(crate) fn print_error(err: &anyhow::Error) {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("error: {}", one_line(&format!("{err:#}")));
    if let Some(h) = err.chain().find_map(|e| e.downcast_ref::<Hinted>()) {
        eprintln!("hint: {}", one_line(&h.hint));
    }
}

/// A table in the CLI's one style.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    t
}

/// Pretty JSON on stdout.
pub(crate) fn print_json(v: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A progress bar on stderr for an operation over `len` nodes (hidden for `--json`; indicatif
/// also hides it when stderr is not a terminal).
pub(crate) fn progress(len: usize, what: &str, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{bar:25}] {pos}/{len} nodes")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_owned());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// The first 12 characters of a long hex id, for tables.
pub(crate) fn short(id: &str) -> String {
    match id.get(..12) {
        Some(head) if id.len() > 12 => format!("{head}…"),
        _ => id.to_owned(),
    }
}
