//! Report writers: JUnit XML (quick-junit), KTAP v1, JSON.

pub mod baseline;
pub mod bugreport;
pub mod html;
pub mod kcidb;

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::model::RunReport;
use crate::model::Status;

/// Strips characters XML 1.0 cannot carry (quick-junit escapes the rest).
fn xml_safe(s: &str) -> String {
    s.chars().map(|c| if c == '\n' || c == '\t' || c == '\r' || !c.is_control() { c } else { '\u{FFFD}' }).collect()
}

fn case_text(c: &crate::model::CaseReport) -> String {
    let mut s = String::new();
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
pub fn junit(runs: &[&RunReport]) -> Result<String, String> {
    let mut report = Report::new("zcrx-conform");
    for run in runs {
        let mut suite = TestSuite::new(xml_safe(&format!("zcrx-conform {}", run.target)));
        suite.add_property(("kernel_release", run.probe.kernel_release.as_str()));
        suite.add_property(("target", run.target.as_str()));
        let feats = run.probe.feature_names().join(" ");
        suite.add_property(("features", feats.as_str()));
        let topos = run.topologies.join(",");
        suite.add_property(("topologies", topos.as_str()));
        if let Some(a) = &run.aborted {
            suite.add_property(("aborted", a.as_str()));
        }
        for (k, v) in &run.timings {
            let v = format!("{v:.3}");
            suite.add_property((k.as_str(), v.as_str()));
        }
        for c in &run.cases {
            let status = match c.status {
                Status::Pass => TestCaseStatus::success(),
                Status::Fail => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(xml_safe(&c.message));
                    s.set_description(case_text(c));
                    s
                }
                Status::Skip => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(xml_safe(&c.message));
                    s
                }
                Status::Xfail => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_type("xfail");
                    s.set_message(xml_safe(&c.message));
                    s.set_description(case_text(c));
                    s
                }
                Status::Xpass => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_type("xpass");
                    s.set_message(xml_safe(&c.message));
                    s.set_description(case_text(c));
                    s
                }
            };
            let mut tc = TestCase::new(xml_safe(&c.id), status);
            tc.set_classname(xml_safe(&format!("zcrx.{}", c.area)));
            tc.set_time(duration(c.duration_s));
            if c.status == Status::Pass {
                tc.set_system_out(case_text(c));
            }
            if let Some(t) = &c.topology {
                tc.add_property(("topology", t.as_str()));
            }
            suite.add_test_case(tc);
        }
        suite.set_time(duration(run.duration_s));
        report.add_test_suite(suite);
    }
    report.to_string().map_err(|e| format!("junit: {e}"))
}

/// KTAP v1: one subtest block per run when several runs are given.
pub fn ktap(run: &RunReport) -> String {
    let mut s = String::from("KTAP version 1\n");
    s.push_str(&format!("# zcrx-conform on {} ({})\n", run.target, run.probe.kernel_release));
    s.push_str(&format!("1..{}\n", run.cases.len()));
    for (i, c) in run.cases.iter().enumerate() {
        let name = c.id.replace('#', "_");
        match c.status {
            Status::Pass => s.push_str(&format!("ok {} {name}\n", i + 1)),
            Status::Skip => s.push_str(&format!("ok {} {name} # SKIP {}\n", i + 1, one_line(&c.message))),
            Status::Xfail => s.push_str(&format!("not ok {} {name} # XFAIL {}\n", i + 1, one_line(&c.message))),
            Status::Fail | Status::Xpass => {
                s.push_str(&format!("# {name}: {}\n", one_line(&c.message)));
                for l in c.kernel_log.iter().filter(|l| crate::model::is_splat(l)).take(5) {
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
    s
}

fn one_line(s: &str) -> String {
    s.replace('\n', " | ")
}

/// A cases x kernels table. `*` marks rows where the kernels behave differently (a
/// kernel-specific expectation applied, or pass/fail differs); `~` rows ran on some kernels
/// only (skipped elsewhere, with the reason below). Details follow the table.
pub fn matrix_table(runs: &[&RunReport]) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for r in runs {
        for c in &r.cases {
            if !ids.contains(&c.id.as_str()) {
                ids.push(&c.id);
            }
        }
    }
    let width = ids.iter().map(|i| i.len()).max().unwrap_or(4).min(64);
    let cell = |r: &RunReport, id: &str| -> (String, String) {
        match r.cases.iter().find(|c| c.id == id) {
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
        s.push_str(&format!(" {:>12}", short_label(&r.target)));
    }
    s.push('\n');
    let (mut differ, mut partial) = (Vec::new(), 0usize);
    for id in &ids {
        let cells: Vec<(String, String)> = runs.iter().map(|r| cell(r, id)).collect();
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
        let name: String = id.chars().take(width).collect();
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
        s.push_str(&format!("* {id}\n"));
        for (r, (st, msg)) in runs.iter().zip(cells) {
            s.push_str(&format!("    {:<14} {st:<6} {}\n", short_label(&r.target), one_line(&msg)));
        }
    }
    s
}

/// A report's seconds as a duration; none that is negative, not a number or too large to hold.
fn duration(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn short_label(t: &str) -> String {
    let t = t.strip_prefix("debian:").unwrap_or(t);
    t.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect()
}

/// The JSON report: `{ "runs": [RunReport, ...] }`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct JsonReport {
    pub runs: Vec<RunReport>,
}

pub fn json(runs: &[&RunReport]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "runs": runs })).unwrap_or_default()
}

/// Writes a report atomically (temp file + rename), creating the directory.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Joins runs: those of the same kernel (shards, or one kernel on several topologies) become
/// one run, keeping an executed result over a skip of the same case.
pub fn merge(loaded: Vec<RunReport>) -> Vec<RunReport> {
    let mut runs: Vec<RunReport> = Vec::new();
    for r in loaded {
        match runs.iter_mut().find(|x| x.target == r.target) {
            Some(x) => {
                x.cases.extend(r.cases);
                x.topologies.extend(r.topologies);
                x.duration_s += r.duration_s;
                if x.aborted.is_none() {
                    x.aborted = r.aborted;
                }
            }
            None => runs.push(r),
        }
    }
    for r in &mut runs {
        // Shards run disjoint cases; jobs of one kernel on different topologies run the same
        // cases, each executing some and skipping the rest: keep an executed result.
        r.cases.sort_by(|a, b| a.id.cmp(&b.id).then((a.status == Status::Skip).cmp(&(b.status == Status::Skip))));
        r.cases.dedup_by(|a, b| a.id == b.id);
        r.topologies.sort();
        r.topologies.dedup();
    }
    runs
}

/// Markdown: per area, the number of cases, what they need, and per kernel how many ran.
pub fn catalogue_table(cases: &[crate::case::Case], runs: &[&RunReport]) -> String {
    use std::collections::BTreeMap;
    let mut by_area: BTreeMap<&str, Vec<&crate::case::Case>> = BTreeMap::new();
    for c in cases {
        by_area.entry(c.def.area.name()).or_default().push(c);
    }
    let mut s = String::from("| area | cases | needs |");
    for r in runs {
        s.push_str(&format!(" {} ({}) executed / passed |", r.target, r.probe.kernel_release));
    }
    s.push_str("\n|---|---|---|");
    for _ in runs {
        s.push_str("---|");
    }
    s.push('\n');
    let mut total = vec![(0usize, 0usize); runs.len()];
    for (area, list) in &by_area {
        let mut needs: BTreeMap<&str, usize> = BTreeMap::new();
        for c in list {
            *needs.entry(kernel_class(c)).or_default() += 1;
        }
        let needs: Vec<String> = needs.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
        s.push_str(&format!("| {area} | {} | {} |", list.len(), needs.join("; ")));
        for (i, r) in runs.iter().enumerate() {
            let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
            let ran: Vec<_> =
                r.cases.iter().filter(|c| ids.contains(&c.id.as_str()) && c.status != Status::Skip).collect();
            let ok = ran.iter().filter(|c| matches!(c.status, Status::Pass | Status::Xfail)).count();
            total[i].0 += ran.len();
            total[i].1 += ok;
            s.push_str(&format!(" {} / {} |", ran.len(), ok));
        }
        s.push('\n');
    }
    s.push_str(&format!("| **all** | **{}** | |", cases.len()));
    for (ran, ok) in total {
        s.push_str(&format!(" **{ran} / {ok}** |"));
    }
    s.push('\n');
    s
}

/// Which kernels a case can run on, in words: what the README table shows.
fn kernel_class(c: &crate::case::Case) -> &'static str {
    use crate::model::Feature::*;
    let r = &c.def.requires;
    let ver = |v: &Option<String>| v.as_deref().and_then(crate::kernel::sys::parse_version);
    let kmin = r.kernel.as_ref().and_then(|k| ver(&k.min));
    let kmax = r.kernel.as_ref().and_then(|k| ver(&k.max));
    if kmax.is_some_and(|v| v < (7, 2, 0)) {
        "before 7.2 only"
    } else if r.features.contains(&AddArea) || kmin.is_some_and(|v| v >= (7, 3, 0)) {
        "7.3 (ADD_AREA)"
    } else if kmax.is_some_and(|v| v < (7, 3, 0)) {
        "7.2 only"
    } else if r
        .features
        .iter()
        .any(|f| matches!(f, Nodev | Import | Ctrl | FlushRq | Export | ArmEvent | Event | RxBufLen | QueryZcrx))
        || kmin.is_some_and(|v| v >= (7, 2, 0))
    {
        "7.2+ (NODEV/CTRL)"
    } else {
        "any zcrx kernel"
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
            topology: Some("host".into()),
            status,
            message: msg.into(),
            log: vec!["line with \u{1} control".into()],
            kernel_log: vec![],
            duration_s: 0.01,
            kernel_specific: vec![],
            harness_error: false,
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
            timings: vec![],
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
