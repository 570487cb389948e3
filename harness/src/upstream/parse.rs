//! The guest's records (vm/upstream.sh's `@upstream ...` lines, documented in its header) and
//! the KTAP each subtest printed, read into the typed [`Guest`] once, here; nothing after this
//! looks at the text again.

use super::{Counters, FileOutcome, Subtest, SubtestResult, TestFile, ZcrxT};

/// The record marker of vm/upstream.sh.
const MARK: &str = "@upstream";

/// What one guest run reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Guest {
    pub kernel_release: String,
    pub files: Vec<TestFile>,
    pub liburing: Option<ZcrxT>,
}

/// A record line that does not read as vm/upstream.sh writes them.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("guest record {line}: {why}: {text}")]
pub struct BadRecord {
    /// Line number in the guest's output (from 1).
    pub line: usize,
    pub why: &'static str,
    pub text: String,
}

/// Where the lines between two records go.
enum Sink {
    Nothing,
    List,
    Subtest(String),
    Liburing,
}

fn num<T: std::str::FromStr>(s: Option<&str>, line: usize, text: &str, why: &'static str) -> Result<T, BadRecord> {
    s.and_then(|v| v.parse().ok()).ok_or(BadRecord { line, why, text: text.to_string() })
}

/// `split=N fallback=N dropped=N` (a counter the module lacks reads `missing`: `None`).
fn counters(words: &[&str]) -> Counters {
    let mut c = Counters::default();
    for w in words {
        let Some((k, v)) = w.split_once('=') else { continue };
        let v = v.parse().ok();
        match k {
            "split" => c.split = v,
            "fallback" => c.fallback = v,
            "dropped" => c.dropped = v,
            _ => {}
        }
    }
    c
}

/// The KTAP result line of one subtest (`[not ]ok N NAME[ # SKIP|XFAIL reason]`) named
/// `name`; with the lines the test printed as its exception, for a failure.
pub fn ktap_result(output: &[String], name: &str) -> SubtestResult {
    for l in output {
        let (ok, rest) = match l.split_once(' ') {
            Some(("ok", rest)) => (true, rest),
            Some(("not", rest)) => match rest.split_once(' ') {
                Some(("ok", rest)) => (false, rest),
                _ => continue,
            },
            _ => continue,
        };
        let Some((n, rest)) = rest.split_once(' ') else { continue };
        if n.parse::<u32>().is_err() {
            continue;
        }
        let (got, directive) = match rest.split_once(" # ") {
            Some((g, d)) => (g.trim(), Some(d.trim())),
            None => (rest.trim(), None),
        };
        if got != name {
            continue;
        }
        let split = |d: &str| d.split_once(' ').map(|(k, r)| (k.to_string(), r.trim().to_string()));
        return match (ok, directive.and_then(split).or(directive.map(|d| (d.to_string(), String::new())))) {
            (true, Some((k, reason))) if k == "SKIP" => SubtestResult::Skipped { reason },
            (true, Some((k, reason))) if k == "XFAIL" => SubtestResult::Xfail { reason },
            (true, _) => SubtestResult::Passed,
            (false, _) => SubtestResult::Failed {
                exception: output
                    .iter()
                    .filter_map(|l| l.strip_prefix("# Exception|"))
                    .map(|l| l.trim_end().to_string())
                    .filter(|l| !l.trim().is_empty())
                    .collect(),
            },
        };
    }
    SubtestResult::NoResult
}

/// Reads the guest's output. Lines before the first record (the VM's own) are ignored.
pub fn parse(out: &str) -> Result<Guest, BadRecord> {
    let mut g = Guest::default();
    let mut sink = Sink::Nothing;
    let mut buf: Vec<String> = Vec::new();
    for (i, l) in out.lines().enumerate() {
        let line = i + 1;
        let l = l.trim_end_matches('\r');
        let mut w = l.split_whitespace();
        if w.next() != Some(MARK) {
            if !matches!(sink, Sink::Nothing) {
                buf.push(l.to_string());
            }
            continue;
        }
        let bad = |why| BadRecord { line, why, text: l.to_string() };
        let kind = w.next().ok_or(bad("no record kind"))?;
        let args: Vec<&str> = w.collect();
        let last_file = |g: &mut Guest, name: &str| -> Result<usize, BadRecord> {
            match g.files.iter().rposition(|f| f.name == name) {
                Some(i) => Ok(i),
                None => Err(BadRecord { line, why: "a test file not announced", text: l.to_string() }),
            }
        };
        match (kind, args.as_slice()) {
            ("kernel", [r]) => g.kernel_release = r.to_string(),
            ("file", [name]) => {
                flush(&mut g, &mut sink, &mut buf);
                g.files.push(TestFile {
                    name: name.to_string(),
                    sha256: None,
                    outcome: FileOutcome::Ran { subtests: Vec::new() },
                });
            }
            ("missing", [name]) => {
                let i = last_file(&mut g, name)?;
                g.files[i].outcome = FileOutcome::NotInSource;
            }
            ("list-exit", [name, code]) => {
                let i = last_file(&mut g, name)?;
                g.files[i].outcome =
                    FileOutcome::ListFailed { exit: num(Some(code), line, l, "exit code")?, output: Vec::new() };
                buf.clear();
                sink = Sink::List;
            }
            ("begin", [_, sub]) => {
                flush(&mut g, &mut sink, &mut buf);
                sink = Sink::Subtest(sub.to_string());
            }
            ("end", [name, sub, code, ms, rest @ ..]) => {
                let i = last_file(&mut g, name)?;
                if !matches!(&sink, Sink::Subtest(s) if s == sub) {
                    return Err(bad("an end without its begin"));
                }
                let output = std::mem::take(&mut buf);
                let stem = name.strip_suffix(".py").unwrap_or(name);
                let result = ktap_result(&output, &format!("{stem}.{sub}"));
                let st = Subtest {
                    name: sub.to_string(),
                    exit: num(Some(code), line, l, "exit code")?,
                    duration_s: num::<u64>(Some(ms), line, l, "milliseconds")? as f64 / 1000.0,
                    counters: counters(rest),
                    result,
                    output,
                };
                match &mut g.files[i].outcome {
                    FileOutcome::Ran { subtests } => subtests.push(st),
                    _ => return Err(bad("a subtest of a file that did not run")),
                }
                sink = Sink::Nothing;
            }
            ("liburing-begin", []) => {
                flush(&mut g, &mut sink, &mut buf);
                sink = Sink::Liburing;
            }
            ("liburing-end", [code, ms]) => {
                if !matches!(sink, Sink::Liburing) {
                    return Err(bad("an end without its begin"));
                }
                g.liburing = Some(ZcrxT {
                    exit: num(Some(code), line, l, "exit code")?,
                    duration_s: num::<u64>(Some(ms), line, l, "milliseconds")? as f64 / 1000.0,
                    output: std::mem::take(&mut buf),
                });
                sink = Sink::Nothing;
            }
            _ => return Err(bad("unknown record or wrong number of fields")),
        }
    }
    flush(&mut g, &mut sink, &mut buf);
    Ok(g)
}

/// Hands the lines collected for a `list-exit` to its file; a subtest or zcrx.t cut off
/// before its end record (the VM died) stays unreported, and the caller sees it missing.
fn flush(g: &mut Guest, sink: &mut Sink, buf: &mut Vec<String>) {
    if let Sink::List = sink {
        if let Some(FileOutcome::ListFailed { output, .. }) = g.files.last_mut().map(|f| &mut f.outcome) {
            *output = std::mem::take(buf);
        }
    }
    buf.clear();
    *sink = Sink::Nothing;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ktap_results_of_each_kind() {
        let name = "iou-zcrx.test_zcrx.single";
        let out = lines(&["TAP version 13", "1..1", "ok 1 iou-zcrx.test_zcrx.single", "# Totals: pass:1"]);
        assert_eq!(ktap_result(&out, name), SubtestResult::Passed);
        let out = lines(&["ok 1 iou-zcrx.test_zcrx.single # SKIP Test requires NETIF with at least 2 combined"]);
        assert_eq!(
            ktap_result(&out, name),
            SubtestResult::Skipped { reason: "Test requires NETIF with at least 2 combined".into() }
        );
        let out = lines(&["ok 1 iou-zcrx.test_zcrx.single # XFAIL why"]);
        assert_eq!(ktap_result(&out, name), SubtestResult::Xfail { reason: "why".into() });
        let out =
            lines(&["# Exception| Traceback", "# Exception| TimeoutError: x", "not ok 1 iou-zcrx.test_zcrx.single"]);
        assert_eq!(
            ktap_result(&out, name),
            SubtestResult::Failed { exception: lines(&[" Traceback", " TimeoutError: x"]) }
        );
        // Another subtest's line, or none at all, is no result for this one.
        let out = lines(&["ok 1 iou-zcrx.test_zcrx.rss"]);
        assert_eq!(ktap_result(&out, name), SubtestResult::NoResult);
        assert_eq!(ktap_result(&[], name), SubtestResult::NoResult);
    }

    #[test]
    fn records_become_files_subtests_and_zcrx_t() {
        let out = "boot noise\n@upstream kernel 7.3.4+deb13-amd64\n@upstream file iou-zcrx.py\n\
                   @upstream begin iou-zcrx.py test_zcrx.single\nTAP version 13\n1..1\n\
                   ok 1 iou-zcrx.test_zcrx.single\n\
                   @upstream end iou-zcrx.py test_zcrx.single 0 41250 split=120 fallback=0 dropped=missing\n\
                   @upstream file nk_qlease.py\n@upstream list-exit nk_qlease.py 1\nTraceback\nboom\n\
                   @upstream file gone.py\n@upstream missing gone.py\n\
                   @upstream liburing-begin\nzcrx: ok\n@upstream liburing-end 0 2500\n";
        let g = parse(out).expect("parses");
        assert_eq!(g.kernel_release, "7.3.4+deb13-amd64");
        assert_eq!(g.files.len(), 3);
        let FileOutcome::Ran { subtests } = &g.files[0].outcome else { panic!("{:?}", g.files[0]) };
        assert_eq!(subtests.len(), 1);
        let s = &subtests[0];
        assert_eq!((s.name.as_str(), s.exit, s.duration_s), ("test_zcrx.single", 0, 41.25));
        assert_eq!(s.result, SubtestResult::Passed);
        assert_eq!(s.counters, Counters { split: Some(120), fallback: Some(0), dropped: None });
        assert_eq!(s.output.len(), 3);
        assert_eq!(g.files[1].outcome, FileOutcome::ListFailed { exit: 1, output: lines(&["Traceback", "boom"]) });
        assert_eq!(g.files[2].outcome, FileOutcome::NotInSource);
        assert_eq!(g.liburing, Some(ZcrxT { exit: 0, duration_s: 2.5, output: lines(&["zcrx: ok"]) }));
    }

    #[test]
    fn malformed_records_are_refused_with_their_line() {
        let e = parse("@upstream end iou-zcrx.py x 0 1 split=1\n").expect_err("no file");
        assert_eq!((e.line, e.why), (1, "a test file not announced"));
        let e = parse("@upstream file a.py\n@upstream end a.py x 0 1\n").expect_err("no begin");
        assert_eq!((e.line, e.why), (2, "an end without its begin"));
        let e = parse("@upstream file a.py\n@upstream begin a.py x\n@upstream end a.py x zero 1\n").expect_err("exit");
        assert_eq!((e.line, e.why), (3, "exit code"));
        let e = parse("x\n@upstream bogus\n").expect_err("kind");
        assert_eq!((e.line, e.why), (2, "unknown record or wrong number of fields"));
        // A subtest cut off (the VM died) is simply not there.
        let g = parse("@upstream file a.py\n@upstream begin a.py x\nok 1 a.x\n").expect("parses");
        assert_eq!(g.files[0].outcome, FileOutcome::Ran { subtests: vec![] });
    }
}
