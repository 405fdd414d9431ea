//! Every `trustee-node` and `dlocker` command in the shell blocks of README.md and
//! docs/operating-a-node.md names subcommands and `--flags` the binaries really have: each is
//! checked against the binary's own `--help`, so a renamed or removed option fails here.

use dlocker_integration_tests::bin_path;
use dlocker_integration_tests::bins::{DLOCKER, TRUSTEE_NODE, workspace_root};
use std::collections::BTreeMap;
use std::process::Command;

/// The ```sh blocks of a markdown file, as logical lines (backslash continuations joined).
fn sh_lines(doc: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join(doc)).expect("read doc");
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            // Every sh block, run or not (`sh no-run`, `sh background`): all must name real flags.
            in_sh = line.trim() == "```sh" || line.trim().starts_with("```sh ");
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        out.push(std::mem::take(&mut pending));
    }
    out
}

/// Words of a shell line up to a comment, with simple quoting; `|`, `;` and `&&` end a command.
fn commands(line: &str) -> Vec<Vec<String>> {
    let mut cmds = vec![Vec::new()];
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() || c == '|' || c == ';' || c == '&' => {
                if in_word {
                    cmds.last_mut()
                        .expect("cmd")
                        .push(std::mem::take(&mut word));
                    in_word = false;
                }
                if !c.is_whitespace() {
                    while chars.peek() == Some(&c) {
                        chars.next();
                    }
                    cmds.push(Vec::new());
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        cmds.last_mut().expect("cmd").push(word);
    }
    cmds.retain(|c| !c.is_empty());
    cmds
}

struct Helps {
    cache: BTreeMap<Vec<String>, String>,
}

impl Helps {
    fn help(&mut self, bin: &str, path: &[String]) -> String {
        let key: Vec<String> = std::iter::once(bin.to_owned())
            .chain(path.iter().cloned())
            .collect();
        self.cache
            .entry(key)
            .or_insert_with(|| {
                let out = Command::new(bin_path(bin))
                    .args(path)
                    .arg("--help")
                    .output()
                    .expect("run --help");
                assert!(out.status.success(), "{bin} {path:?} --help failed");
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .clone()
    }
}

/// Whether `help` lists `name` under "Commands:".
fn lists_subcommand(help: &str, name: &str) -> bool {
    help.split("Commands:")
        .nth(1)
        .map(|rest| rest.split("\n\n").next().unwrap_or_default())
        .is_some_and(|cmds| {
            cmds.lines()
                .any(|l| l.split_whitespace().next() == Some(name))
        })
}

/// Whether `help` documents the long option `flag` (e.g. `--data-dir`).
fn has_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        help[i + flag.len()..]
            .chars()
            .next()
            .is_none_or(|c| matches!(c, ' ' | ',' | '\n' | '=' | '<' | '['))
    })
}

#[test]
fn documented_commands_use_real_subcommands_and_flags() {
    let mut helps = Helps {
        cache: BTreeMap::new(),
    };
    let mut checked = 0;
    let mut problems = Vec::new();
    for doc in ["README.md", "docs/operating-a-node.md"] {
        for line in sh_lines(doc) {
            for words in commands(&line) {
                // Skip leading VAR=value assignments.
                let mut words = words
                    .into_iter()
                    .skip_while(|w| w.contains('=') && !w.starts_with('-'));
                let Some(first) = words.next() else { continue };
                let bin = match first.rsplit('/').next() {
                    Some(TRUSTEE_NODE) => TRUSTEE_NODE,
                    Some(DLOCKER) => DLOCKER,
                    _ => continue,
                };
                let rest: Vec<String> = words.collect();
                let mut path: Vec<String> = Vec::new();
                let mut unknown = None;
                for w in &rest {
                    if w.starts_with('-') {
                        break;
                    }
                    let help = helps.help(bin, &path);
                    if lists_subcommand(&help, w) {
                        path.push(w.clone());
                    } else {
                        // A command with subcommands takes no positional word before one.
                        if help.contains("Commands:") {
                            unknown = Some(w.clone());
                        }
                        break;
                    }
                }
                if let Some(w) = unknown {
                    problems.push(format!(
                        "{doc}: `{line}`: {bin} {} has no subcommand {w}",
                        path.join(" ")
                    ));
                    continue;
                }
                let help = helps.help(bin, &path);
                for w in rest.iter().filter(|w| w.starts_with("--")) {
                    let flag = w.split('=').next().unwrap_or(w);
                    if !has_flag(&help, flag) {
                        problems.push(format!(
                            "{doc}: `{line}`: {bin} {} has no {flag}",
                            path.join(" ")
                        ));
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 20, "only {checked} commands found in the docs");
}
