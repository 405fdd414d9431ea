//! Every `trustee-node` and `dlocker` command in the shell blocks of README.md and
//! docs/operating-a-node.md, and in `deploy/` (the systemd unit's install notes and `ExecStart`,
//! the commands quoted in the example configs' comments), names subcommands and `--flags` the
//! binaries really have: each is checked against the binary's own `--help`, so a renamed or
//! removed option fails here. (`deploy/local-cluster.sh` itself runs in `local_cluster_script`
//! and in the README's doc run.)

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

/// Commands in `deploy/`: the systemd unit's `#   ` install lines (backslash continuations
/// joined) and its `ExecStart=`, and every backticked `trustee-node …` / `dlocker …` span in the
/// example configs' comments, where `a/b` stands for either subcommand and `...` for more flags.
fn deploy_lines() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let unit = "deploy/systemd/trustee-node.service";
    let text = std::fs::read_to_string(workspace_root().join(unit)).expect("read unit");
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("ExecStart=") {
            out.push((unit.to_owned(), cmd.to_owned()));
            continue;
        }
        let Some(body) = line.strip_prefix("#   ") else {
            continue;
        };
        if let Some(head) = body.trim_end().strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(body);
        let line = std::mem::take(&mut pending);
        // `sudo -u USER CMD …`: the command is CMD.
        let line = match line.trim_start().strip_prefix("sudo ") {
            Some(rest) => {
                let mut words = rest.split_whitespace().peekable();
                while let Some(w) = words.next_if(|w| w.starts_with('-')) {
                    if w == "-u" {
                        words.next();
                    }
                }
                words.collect::<Vec<_>>().join(" ")
            }
            None => line,
        };
        out.push((unit.to_owned(), line));
    }
    for example in [
        "deploy/examples/bank-node.toml",
        "deploy/examples/trustee-node.toml",
    ] {
        let text = std::fs::read_to_string(workspace_root().join(example)).expect("read example");
        for line in text.lines().filter(|l| l.trim_start().starts_with('#')) {
            for (i, span) in line.split('`').enumerate() {
                if i % 2 == 0 {
                    continue;
                }
                let words: Vec<&str> = span
                    .split_whitespace()
                    .filter(|w| *w != "..." && *w != "…")
                    .collect();
                if !matches!(words.first(), Some(&"trustee-node" | &"dlocker")) {
                    continue;
                }
                // `staff add/remove/role/policy`: one command per alternative.
                let alternatives: Vec<Vec<String>> = words.iter().fold(vec![vec![]], |acc, w| {
                    let options: Vec<&str> = if w.starts_with('-') {
                        vec![*w]
                    } else {
                        w.split('/').collect()
                    };
                    acc.into_iter()
                        .flat_map(|prefix| {
                            options.iter().map(move |o| {
                                let mut p = prefix.clone();
                                p.push((*o).to_owned());
                                p
                            })
                        })
                        .collect()
                });
                for words in alternatives {
                    out.push((example.to_owned(), words.join(" ")));
                }
            }
        }
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
    let docs = ["README.md", "docs/operating-a-node.md"];
    let lines = docs
        .iter()
        .flat_map(|d| sh_lines(d).into_iter().map(|l| ((*d).to_owned(), l)))
        .chain(deploy_lines());
    let mut deploy_checked = 0;
    {
        for (doc, line) in lines {
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
                if doc.starts_with("deploy/") {
                    deploy_checked += 1;
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        deploy_checked >= 8,
        "only {deploy_checked} commands found in deploy/"
    );
    assert!(checked >= 20, "only {checked} commands found in the docs");
}
