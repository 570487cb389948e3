//! Report writers: JUnit XML (quick-junit), KTAP v1, JSON; and how they reach the disk
//! ([`files`]: no predictable temp names, no write through a link, one run per output
//! directory). Everything a case file or a report says is escaped on the way out ([`escape`]).

pub mod baseline;
pub mod bugreport;
mod catalogue;
pub mod changes;
mod error;
pub mod escape;
pub mod files;
pub mod html;
mod html_measured;
pub mod kcidb;
mod merge;
pub mod outcome;
pub mod time;

use std::collections::{HashMap, HashSet};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite, XmlString};

use crate::model::RunReport;
use crate::model::Status;
pub use catalogue::{catalogue_table, catalogue_tags};
pub use error::Error;
use escape::{ktap_name, one_line, printable, xml_safe};
pub use files::write_atomic;
pub use merge::{check_inputs as check_merge_inputs, merge};

/// This build: the crate version and the git commit it was built from (`unknown` when built
/// outside a git checkout).
pub const TOOL_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ZCRX_GIT_COMMIT"), ")");

/// The version of the JSON report's layout: 1 added `schema_version`, `tool_version`, and per
/// run `started`, `finished`, `hostname`, `shard`, `not_run` (files without it read as 0).
pub const SCHEMA_VERSION: u32 = 1;

fn case_text(c: &crate::model::CaseReport) -> String {
    let mut s = String::new();
    if let Some(d) = outcome::detail(c) {
        s.push_str(&format!("result: {d}\n"));
    }
    if let Some(t) = &c.topology {
        s.push_str(&format!("topology: {t}\n"));
    }
    for l in &c.log {
        s.push_str(l);
        s.push('\n');
    }
    if !c.kernel_log.is_empty() {
        s.push_str("--- kernel log during the case ---\n");
        for l in &c.kernel_log {
            s.push_str(l);
            s.push('\n');
        }
    }
    xml_safe(&s)
}

/// One JUnit testsuite per run (kernel).
pub fn junit(runs: &[&RunReport]) -> Result<String, Error> {
    let mut report = Report::new("zcrx-conform");
    for run in runs {
        let mut suite = TestSuite::new(xml_safe(&format!("zcrx-conform {}", run.target)));
        let mut attr = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                suite.extra.insert(XmlString::new(k), XmlString::new(xml_safe(v)));
            }
        };
        attr("timestamp", &run.started);
        attr("hostname", &run.hostname);
        suite.add_property(("kernel_release", run.probe.kernel_release.as_str()));
        suite.add_property(("target", run.target.as_str()));
        let feats = run.probe.feature_names().join(" ");
        suite.add_property(("features", feats.as_str()));
        let topos = run.topologies.join(",");
        suite.add_property(("topologies", topos.as_str()));
        if let Some(a) = &run.aborted {
            suite.add_property(("aborted", printable(a).as_str()));
        }
        if !run.not_run.is_empty() {
            suite.add_property(("not_run", run.not_run.len().to_string().as_str()));
        }
        if let Some(sh) = run.shard {
            suite.add_property(("shard", format!("{}/{}", sh.k, sh.n).as_str()));
        }
        for (k, v, _) in run.timings.entries() {
            let v = format!("{v:.3}");
            suite.add_property((k.as_str(), v.as_str()));
        }
        for c in &run.cases {
            let status = match c.status {
                Status::Pass => TestCaseStatus::success(),
                Status::Fail => {
                    let kind = if c.typed_result().is_harness_error() {
                        NonSuccessKind::Error
                    } else {
                        NonSuccessKind::Failure
                    };
                    let mut s = TestCaseStatus::non_success(kind);
                    if !matches!(c.result, crate::model::CaseResult::Untyped) {
                        s.set_type(c.result.kind());
                    }
                    s.set_message(printable(&c.message));
                    s.set_description(case_text(c));
                    s
                }
                Status::Skip => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(printable(&c.message));
                    s
                }
                Status::Xfail => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_type("xfail");
                    s.set_message(printable(&c.message));
                    s.set_description(case_text(c));
                    s
                }
                Status::Xpass => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_type("xpass");
                    s.set_message(printable(&c.message));
                    s.set_description(case_text(c));
                    s
                }
            };
            let mut tc = TestCase::new(one_line(&c.id), status);
            tc.set_classname(xml_safe(&format!("zcrx.{}", c.area)));
            tc.set_time(time::duration(c.duration_s));
            if !c.file.is_empty() {
                tc.extra.insert(XmlString::new("file"), XmlString::new(xml_safe(&c.file)));
            }
            if c.status == Status::Pass {
                tc.set_system_out(case_text(c));
            }
            if let Some(t) = &c.topology {
                tc.add_property(("topology", t.as_str()));
            }
            for f in &c.fixes {
                tc.add_property(("fixes", printable(&fix_line(f)).as_str()));
            }
            for cve in &c.cve {
                tc.add_property(("cve", printable(cve).as_str()));
            }
            suite.add_test_case(tc);
        }
        for id in &run.not_run {
            let mut s = TestCaseStatus::skipped();
            s.set_type("not_run");
            s.set_message(printable(&format!(
                "not run: {}",
                run.aborted.as_deref().unwrap_or("the run stopped early")
            )));
            suite.add_test_case(TestCase::new(one_line(id), s));
        }
        suite.set_time(time::duration(run.duration_s));
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| Error::Writer(format!("junit: {e}")))
}

/// A `fixes:` tag as one line, the kernel's own way: `<id> ("<subject>")`.
pub fn fix_line(f: &crate::model::FixTag) -> String {
    format!("{} (\"{}\")", f.id, f.subject)
}

/// KTAP v1 for one run. Names and messages are one line each (control characters escaped,
/// `#` in names becomes `_`). A run that stopped early plans every selected case, lists the
/// ones that did not run and ends with `Bail out! <reason>`.
pub fn ktap(run: &RunReport) -> String {
    let mut s = String::from("KTAP version 1\n");
    s.push_str(&format!("# zcrx-conform on {} ({})\n", one_line(&run.target), one_line(&run.probe.kernel_release)));
    s.push_str(&format!("1..{}\n", run.cases.len() + run.not_run.len()));
    for (i, c) in run.cases.iter().enumerate() {
        let name = ktap_name(&c.id);
        let msg = one_line(&c.message);
        for f in &c.fixes {
            s.push_str(&format!("# {name}: fixes: {}\n", one_line(&fix_line(f))));
        }
        for cve in &c.cve {
            s.push_str(&format!("# {name}: cve: {}\n", one_line(cve)));
        }
        match c.status {
            Status::Pass => s.push_str(&format!("ok {} {name}\n", i + 1)),
            Status::Skip => s.push_str(&format!("ok {} {name} # SKIP {msg}\n", i + 1)),
            Status::Xfail => s.push_str(&format!("not ok {} {name} # XFAIL {msg}\n", i + 1)),
            Status::Fail | Status::Xpass => {
                s.push_str(&format!("# {name}: {msg}\n"));
                if let Some(d) = outcome::detail(c) {
                    s.push_str(&format!("# {name}: result: {}\n", one_line(&d)));
                }
                for l in outcome::splat_lines(c).into_iter().take(5) {
                    s.push_str(&format!("# kernel: {}\n", one_line(l)));
                }
                let tag = if c.status == Status::Xpass { " # XPASS" } else { "" };
                s.push_str(&format!("not ok {} {name}{tag}\n", i + 1));
            }
        }
    }
    s.push_str(&format!(
        "# totals: pass:{} fail:{} skip:{} xfail:{} xpass:{}\n",
        run.count(Status::Pass),
        run.count(Status::Fail),
        run.count(Status::Skip),
        run.count(Status::Xfail),
        run.count(Status::Xpass)
    ));
    if run.aborted.is_some() || !run.not_run.is_empty() {
        for id in &run.not_run {
            s.push_str(&format!("# not run: {}\n", ktap_name(id)));
        }
        let why = run.aborted.as_deref().unwrap_or("the run stopped early");
        s.push_str(&format!("Bail out! {} ({} case(s) not run)\n", one_line(why), run.not_run.len()));
    }
    s
}

/// Every case id of the runs, each once, in the order first met (a set beside the list: the
/// report writers were quadratic in the cases with a search of the list per id).
pub(crate) fn case_ids<'r>(runs: &[&'r RunReport]) -> Vec<&'r str> {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for r in runs {
        for c in &r.cases {
            if seen.insert(c.id.as_str()) {
                ids.push(c.id.as_str());
            }
        }
    }
    ids
}

/// Each run's case ids to their index in `cases` (the first of a repeated id): one lookup per
/// cell of a cases x runs table instead of a search through the run.
pub(crate) fn case_index<'r>(runs: &[&'r RunReport]) -> Vec<HashMap<&'r str, usize>> {
    runs.iter()
        .map(|r| {
            let mut m = HashMap::with_capacity(r.cases.len());
            for (i, c) in r.cases.iter().enumerate() {
                m.entry(c.id.as_str()).or_insert(i);
            }
            m
        })
        .collect()
}

/// A cases x kernels table. `*` marks rows where the kernels behave differently (a
/// kernel-specific expectation applied, or pass/fail differs); `~` rows ran on some kernels
/// only (skipped elsewhere, with the reason below). Details follow the table.
pub fn matrix_table(runs: &[&RunReport]) -> String {
    let ids = case_ids(runs);
    let index = case_index(runs);
    let width = ids.iter().map(|i| i.len()).max().unwrap_or(4).min(64);
    let cell = |r: &RunReport, ix: &HashMap<&str, usize>, id: &str| -> (String, String) {
        match ix.get(id).and_then(|&i| r.cases.get(i)) {
            Some(c) => {
                let special: Vec<&str> = c.kernel_specific.iter().map(String::as_str).collect();
                let word = c.status.word().to_string();
                if special.is_empty() {
                    (word, c.message.clone())
                } else {
                    (format!("{word}+"), special.join("; "))
                }
            }
            None => ("-".into(), "not run".into()),
        }
    };
    let mut s = format!("  {:<width$}", "case");
    for r in runs {
        s.push_str(&format!(" {:>12}", one_line(&short_label(&r.target))));
    }
    s.push('\n');
    let (mut differ, mut partial) = (Vec::new(), 0usize);
    for id in &ids {
        let cells: Vec<(String, String)> = runs.iter().zip(&index).map(|(r, ix)| cell(r, ix, id)).collect();
        let ran: Vec<&(String, String)> = cells.iter().filter(|(st, _)| st != "skip" && st != "-").collect();
        let behaves_differently =
            ran.iter().any(|(st, _)| st.ends_with('+')) || ran.windows(2).any(|w| w[0].0 != w[1].0);
        let mark = if behaves_differently {
            '*'
        } else if ran.len() != cells.len() && !ran.is_empty() {
            partial += 1;
            '~'
        } else {
            ' '
        };
        let name: String = one_line(id).chars().take(width).collect();
        s.push_str(&format!("{mark} {name:<width$}"));
        for (st, _) in &cells {
            s.push_str(&format!(" {st:>12}"));
        }
        s.push('\n');
        if behaves_differently {
            differ.push((id, cells));
        }
    }
    s.push_str(&format!(
        "{} case(s); {} behave differently between kernels (*), {} run on some kernels only (~); + = kernel-specific expectation\n",
        ids.len(),
        differ.len(),
        partial
    ));
    for (id, cells) in differ {
        s.push_str(&format!("* {}\n", one_line(id)));
        for (r, (st, msg)) in runs.iter().zip(cells) {
            s.push_str(&format!("    {:<14} {st:<6} {}\n", one_line(&short_label(&r.target)), one_line(&msg)));
        }
    }
    s
}

fn short_label(t: &str) -> String {
    let t = t.strip_prefix("debian:").unwrap_or(t);
    t.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect()
}

/// The JSON report: `{ "schema_version": 1, "tool_version": "...", "runs": [RunReport, ...] }`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct JsonReport {
    /// [`SCHEMA_VERSION`] of the writer; 0 for reports written before it existed.
    #[serde(default)]
    pub schema_version: u32,
    /// [`TOOL_VERSION`] of the writer.
    #[serde(default)]
    pub tool_version: String,
    pub runs: Vec<RunReport>,
}

pub fn json(runs: &[&RunReport]) -> String {
    let doc = serde_json::json!({ "schema_version": SCHEMA_VERSION, "tool_version": TOOL_VERSION, "runs": runs });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Reads a JSON report (`what` names it in errors) and checks what later stages rely on:
/// a schema this build knows, and durations that are numbers of seconds a report can hold.
pub fn parse_json(text: &str, what: &str) -> Result<JsonReport, Error> {
    let r: JsonReport = serde_json::from_str(text)
        .map_err(|e| Error::Invalid(format!("{what}:{}:{}: not a zcrx-conform report: {e}", e.line(), e.column())))?;
    if r.schema_version > SCHEMA_VERSION {
        return Err(Error::Invalid(format!(
            "{what}: report schema version {} is newer than this build's ({SCHEMA_VERSION}); use a newer zcrx-conform",
            r.schema_version
        )));
    }
    let ok = |s: f64| (0.0..=time::MAX_SECONDS).contains(&s);
    for run in &r.runs {
        if !ok(run.duration_s) {
            return Err(Error::Invalid(format!(
                "{what}: run on {}: duration_s {} is out of range",
                one_line(&run.target),
                run.duration_s
            )));
        }
        if let Some(c) = run.cases.iter().find(|c| !ok(c.duration_s)) {
            return Err(Error::Invalid(format!(
                "{what}: case {}: duration_s {} is out of range",
                one_line(&c.id),
                c.duration_s
            )));
        }
        if let Some(sh) = run.shard.filter(|sh| sh.k == 0 || sh.k > sh.n) {
            return Err(Error::Invalid(format!(
                "{what}: run on {}: shard {}/{} is not K/N with 1 <= K <= N",
                one_line(&run.target),
                sh.k,
                sh.n
            )));
        }
    }
    Ok(r)
}

/// The formats a report file can have, for [`is_complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Junit,
    Kcidb,
}

/// Whether `text`, a report file of `format` this tool wrote before, is the report of a run
/// that finished (no run marked aborted). Unreadable text is not a complete report.
pub fn is_complete(format: Format, text: &str) -> bool {
    match format {
        Format::Json => parse_json(text, "").is_ok_and(|r| r.runs.iter().all(|r| r.aborted.is_none())),
        Format::Junit => Report::deserialize_from_str(text)
            .is_ok_and(|r| r.test_suites.iter().all(|s| s.properties.iter().all(|p| p.name.as_str() != "aborted"))),
        Format::Kcidb => serde_json::from_str::<serde_json::Value>(text)
            .is_ok_and(|v| v["tests"].as_array().is_some_and(|t| t.iter().all(|t| t["misc"].get("aborted").is_none()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CaseReport;

    fn run() -> RunReport {
        let mk = |id: &str, status, msg: &str| CaseReport {
            id: id.into(),
            file: "f.yaml".into(),
            area: "reserved".into(),
            about: String::new(),
            spec: vec![],
            fixes: vec![],
            cve: vec![],
            topology: Some("host".into()),
            status,
            message: msg.into(),
            log: vec!["line with \u{1} control".into()],
            kernel_log: vec![],
            duration_s: 0.01,
            kernel_specific: vec![],
            harness_error: false,
            result: Default::default(),
            self_check: None,
            observed: vec![],
        };
        RunReport {
            target: "host".into(),
            probe: Default::default(),
            topologies: vec!["host".into()],
            cases: vec![
                mk("a", Status::Pass, ""),
                mk("b", Status::Fail, "expected EINVAL\u{7}"),
                mk("c", Status::Skip, "no nodev"),
            ],
            duration_s: 1.0,
            aborted: None,
            timings: Default::default(),
            ..Default::default()
        }
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = junit(&[&run()]).expect("junit");
        assert!(x.contains("tests=\"3\""), "{x}");
        assert!(x.contains("failures=\"1\""), "{x}");
        assert!(x.contains("skipped=\"1\""), "{x}");
        assert!(!x.contains('\u{7}') && !x.contains('\u{1}'));
    }

    /// An id and a message with `'`, a newline carrying a fake KTAP result, ESC and BEL.
    const HOSTILE_ID: &str = "x'y\nok 999 injected\x1b[2J\x07";
    const HOSTILE_MSG: &str = "it's\nnot ok 998 fake\x1b]0;title\x07";

    fn hostile() -> RunReport {
        let mut r = run();
        r.cases[1].id = HOSTILE_ID.into();
        r.cases[1].message = HOSTILE_MSG.into();
        r.cases[2].id = HOSTILE_ID.replace('x', "z");
        r.cases[2].message = HOSTILE_MSG.into();
        r.aborted = Some("killed\nok 997 more".into());
        r.not_run = vec![HOSTILE_ID.replace('x', "w")];
        r.started = Some("2026-11-22T02:33:00.000+00:00".into());
        r.hostname = Some("runner-1".into());
        r
    }

    #[test]
    fn ktap_escapes_hostile_ids_and_messages() {
        let k = ktap(&hostile());
        assert!(!k.chars().any(|c| c.is_control() && c != '\n'), "{k:?}");
        for l in k.lines() {
            let ok = l.starts_with("ok ") || l.starts_with("not ok ") || l.starts_with('#') || l.starts_with("1..");
            assert!(ok || l == "KTAP version 1" || l.starts_with("Bail out! "), "not a KTAP line: {l:?}");
            assert!(!l.contains("injected") || l.contains("\\n"), "{l:?}");
        }
        assert!(k.contains("not ok 2 x'y\\nok 999 injected\\x1b[2J\\x07\n"), "{k}");
        assert!(k.contains("1..4\n"));
        assert!(k.ends_with("Bail out! killed\\nok 997 more (1 case(s) not run)\n"), "{k}");
    }

    #[test]
    fn junit_escapes_and_carries_time_host_file_and_not_run() {
        let x = junit(&[&hostile()]).expect("junit");
        assert!(!x.chars().any(|c| c.is_control() && c != '\n'), "{x:?}");
        assert!(x.contains("timestamp=\"2026-11-22T02:33:00.000+00:00\""), "{x}");
        assert!(x.contains("hostname=\"runner-1\""), "{x}");
        assert!(x.contains("file=\"f.yaml\""), "{x}");
        assert!(x.contains("type=\"not_run\""), "{x}");
        assert!(x.contains("<property name=\"aborted\""), "{x}");
        let back = Report::deserialize_from_str(&x).expect("well-formed XML");
        assert_eq!(back.test_suites[0].test_cases.len(), 4);
        assert!(!is_complete(Format::Junit, &x));
        assert!(is_complete(Format::Junit, &junit(&[&run()]).expect("junit")));
    }

    #[test]
    fn json_carries_versions_and_rejects_hostile_durations() {
        let j = json(&[&run()]);
        let back = parse_json(&j, "r").expect("parses");
        assert_eq!(back.schema_version, SCHEMA_VERSION);
        assert_eq!(back.tool_version, TOOL_VERSION);
        assert!(is_complete(Format::Json, &j));
        assert!(!is_complete(Format::Json, &json(&[&hostile()])));
        let probe = serde_json::to_string(&crate::model::Probe::default()).expect("probe");
        let old = format!(
            r#"{{"runs":[{{"target":"host","probe":{probe},"topologies":[],"cases":[],"duration_s":1.0,"aborted":null}}]}}"#
        );
        let parsed = parse_json(&old, "old").expect("a report written before schema_version");
        assert_eq!(parsed.schema_version, 0);
        let huge = old.replace("1.0", "1e300");
        assert!(parse_json(&huge, "huge").expect_err("1e300").to_string().contains("out of range"));
        let newer = old.replace("{\"runs\"", "{\"schema_version\":99,\"runs\"");
        assert!(parse_json(&newer, "newer").is_err());
        // The writers never panic on what a report can hold.
        let mut r = run();
        r.duration_s = 1e300;
        r.cases[0].duration_s = f64::NAN;
        junit(&[&r]).expect("junit of hostile durations");
        kcidb::export(&[&r], "o");
    }

    fn tagged() -> RunReport {
        let mut r = run();
        r.cases[1].fixes = vec![crate::model::FixTag {
            id: "09cfd3c52ea7".into(),
            subject: "io_uring/zcrx: fix overshooting recv limit".into(),
        }];
        r.cases[1].cve = vec!["CVE-2025-40046".into()];
        r
    }

    #[test]
    fn tags_reach_junit_properties_and_ktap_diagnostics() {
        let x = junit(&[&tagged()]).expect("junit");
        assert!(
            x.contains("<property name=\"fixes\" value=\"09cfd3c52ea7 (&quot;io_uring/zcrx: fix overshooting recv limit&quot;)\"/>"),
            "{x}"
        );
        assert!(x.contains("<property name=\"cve\" value=\"CVE-2025-40046\"/>"), "{x}");
        assert_eq!(x.matches("name=\"fixes\"").count(), 1, "only the tagged case: {x}");
        let k = ktap(&tagged());
        let want =
            "# b: fixes: 09cfd3c52ea7 (\"io_uring/zcrx: fix overshooting recv limit\")\n# b: cve: CVE-2025-40046\n";
        assert!(k.contains(want), "{k}");
        assert!(k.find(want) < k.find("not ok 2 b\n"), "diagnostics precede the result line: {k}");
        let j = serde_json::to_value(&tagged().cases).expect("json");
        assert_eq!(j[1]["fixes"][0]["id"], "09cfd3c52ea7");
        assert_eq!(j[1]["cve"][0], "CVE-2025-40046");
        assert!(j[0].get("fixes").is_none() && j[0].get("cve").is_none(), "untagged cases carry no empty lists");
    }

    #[test]
    fn ktap_shape() {
        let k = ktap(&run());
        assert!(k.starts_with("KTAP version 1\n"));
        assert!(k.contains("1..3\n"));
        assert!(k.contains("ok 1 a\n"));
        assert!(k.contains("not ok 2 b\n"));
        assert!(k.contains("ok 3 c # SKIP no nodev\n"));
    }
}
