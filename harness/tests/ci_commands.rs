//! Every `zcrx-conform` command line the CI files run (ci/test.sh, the GitHub, GitLab and LAVA
//! pipelines) parses with this binary's command line, and no document or script still spells a
//! kernel the old ways (`--vm`, `--kernels`, a positional `tree:PATH`).

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use serde_json::Value;
use zcrx_conform::cli::Cli;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every string in a YAML document but names and descriptions (prose, not commands).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !["name", "description", "job_name", "check_name"].contains(&k.as_str()))
            .for_each(|(_, x)| strings(x, out)),
        _ => {}
    }
}

/// The arguments of each command line in `text` that starts with `bin` (shell variables given
/// example values, quotes removed, cut at a redirection or the end of the command).
fn commands(text: &str, bin: &str) -> Vec<Vec<String>> {
    let vars = [
        ("${DEBIAN_KERNEL}", "7.3.4"),
        ("$KERNEL", "debian:7.3.4"),
        ("${TOPOLOGY}", "nodev"),
        ("$TOPOLOGY", "nodev"),
        ("$OUT", "out/x"),
        ("$out", "out/ci"),
    ];
    let mut out = Vec::new();
    for line in text.replace("\\\n", " ").lines() {
        let Some(at) = line.find(bin) else { continue };
        let mut l = line[at + bin.len()..].to_string();
        for (k, v) in vars {
            l = l.replace(k, v);
        }
        let words: Vec<String> = l
            .split_whitespace()
            .take_while(|w| !(w.starts_with(['>', '|']) || w.starts_with("2>") || w.starts_with("&&") || *w == ";"))
            .map(|w| w.trim_matches(['"', '\'', ';']).to_string())
            .collect();
        let known = |w: &String| Cli::command().get_subcommands().any(|c| c.get_name() == w);
        if words.first().is_some_and(known) {
            out.push(words);
        }
    }
    out
}

fn parses(file: &str, args: &[String]) {
    let argv = std::iter::once("zcrx-conform".to_string()).chain(args.iter().cloned());
    if let Err(e) = Cli::try_parse_from(argv) {
        panic!("{file}: `zcrx-conform {}` does not parse:\n{e}", args.join(" "));
    }
}

#[test]
fn every_ci_command_line_parses() {
    let mut n = 0;
    for args in commands(&read("ci/test.sh"), "\"$bin\" ") {
        parses("ci/test.sh", &args);
        n += 1;
    }
    for file in [
        "ci/github/zcrx-conform.yml",
        "ci/github/zcrx-qualify-self-hosted.yml",
        "ci/gitlab/zcrx-conform.gitlab-ci.yml",
        "ci/gitlab/zcrx-qualify-self-hosted.gitlab-ci.yml",
        "ci/lava/qualify.yaml",
    ] {
        let doc: Value = serde_saphyr::from_str(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut all = Vec::new();
        strings(&doc, &mut all);
        for s in all {
            for args in commands(&s, "zcrx-conform ") {
                parses(file, &args);
                n += 1;
            }
        }
    }
    assert!(n >= 12, "only {n} command lines found: the extraction is broken");
}

#[test]
fn old_kernel_spellings_are_gone() {
    let mut files = vec!["README.md".to_string(), "ci/test.sh".to_string()];
    for dir in ["docs", "ci", "reports", "vm", "harness/tests"] {
        let mut todo = vec![root().join(dir)];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())).flatten() {
                let p = e.path();
                let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
                if p.is_dir() {
                    todo.push(p);
                } else if ["md", "sh", "yml", "yaml", "rs"].contains(&ext) {
                    files.push(p.strip_prefix(root()).unwrap_or(&p).display().to_string());
                }
            }
        }
    }
    let old = ["--vm ", "--vm`", "--vm\"", "--kernels", "mutate tree:", "coverage tree:"];
    let this = "harness/tests/ci_commands.rs";
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.ends_with(this)) {
        let text = String::from_utf8_lossy(&std::fs::read(root().join(f)).unwrap_or_default()).into_owned();
        for (i, line) in text.lines().enumerate() {
            if let Some(o) = old.iter().find(|o| line.contains(*o)) {
                found.push(format!("{f}:{}: `{o}`: {line}", i + 1));
            }
        }
    }
    assert!(found.is_empty(), "old kernel spellings (now --kernel SPEC):\n{}", found.join("\n"));
}
