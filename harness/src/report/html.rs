//! A self-contained HTML report (no external assets) of one or more runs.
//!
//! The static parts (page skeleton, CSS, JS) are the templates under `reports/html/`; this module
//! fills in the runs. Every piece of report text goes through [`escape`]; the inline script only
//! toggles classes (no report data is embedded as code).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::model::timings::Unit;
use crate::model::Status;
use crate::model::{is_splat, CaseReport, RunReport};

use super::{case_ids, case_index};

const PAGE: &str = include_str!("../../../reports/html/page.html");
const STYLE: &str = include_str!("../../../reports/html/style.css");
const SCRIPT: &str = include_str!("../../../reports/html/script.js");

const STATUSES: [Status; 5] = [Status::Pass, Status::Fail, Status::Skip, Status::Xfail, Status::Xpass];

/// Kernel log lines shown in full up to this many; longer logs show an excerpt around splats.
const KLOG_FULL: usize = 80;

/// Renders the runs as one HTML page.
pub fn render(runs: &[&RunReport]) -> String {
    let ncases = case_ids(runs).len();
    let subtitle = format!(
        "{} run{} ({}), {} case{}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        runs.iter().map(|r| r.target.as_str()).collect::<Vec<_>>().join(", "),
        ncases,
        if ncases == 1 { "" } else { "s" }
    );
    let title = match runs {
        [one] => format!("zcrx-conform: {}", one.target),
        _ => format!("zcrx-conform: {} kernels", runs.len()),
    };
    let mut body = String::new();
    runs_section(&mut body, runs);
    summary_section(&mut body, runs);
    cases_section(&mut body, runs);
    failures_section(&mut body, runs);
    super::html_measured::section(&mut body);
    fill(
        PAGE,
        &[
            ("title", &escape(&title)),
            ("subtitle", &escape(&subtitle)),
            ("style", STYLE),
            ("script", SCRIPT),
            ("body", &body),
        ],
    )
}

/// Escapes text for HTML (one escaper for every page: [`super::escape::html`]).
pub use super::escape::html as escape;

/// Replaces each `{{name}}` of the template once, in a single pass (inserted text is never
/// scanned again, so report text cannot inject a placeholder).
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    crate::model::template::fill(template, "{{", "}}", |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
}

/// The lower-case name used in classes, filters and the JSON report.
pub fn status_key(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Skip => "skip",
        Status::Xfail => "xfail",
        Status::Xpass => "xpass",
    }
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "FAIL",
        Status::Skip => "skip",
        Status::Xfail => "xfail",
        Status::Xpass => "XPASS",
    }
}

fn seconds(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} s")
    } else if v >= 1.0 {
        format!("{v:.1} s")
    } else {
        format!("{v:.2} s")
    }
}

fn timing_value(unit: Unit, v: f64) -> String {
    if unit == Unit::Seconds {
        seconds(v)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn runs_section(s: &mut String, runs: &[&RunReport]) {
    s.push_str("<section id=\"runs\"><h2>Runs</h2><div class=\"runs\">\n");
    for (i, r) in runs.iter().enumerate() {
        let p = &r.probe;
        let _ = write!(s, "<article class=\"card\" id=\"run-{i}\"><h3>{}</h3>", escape(&r.target));
        if let Some(a) = &r.aborted {
            let _ = write!(s, "<div class=\"aborted\">aborted: {}</div>", escape(a));
        }
        s.push_str("<dl>");
        let mut row = |k: &str, v: String| {
            let _ = write!(s, "<dt>{}</dt><dd>{v}</dd>", escape(k));
        };
        row("kernel release", format!("<code>{}</code>", escape(&p.kernel_release)));
        let feats = p.feature_names();
        row(
            "features probed",
            if feats.is_empty() {
                "<span class=\"none\">none</span>".into()
            } else {
                feats.iter().map(|f| format!("<span class=\"feat\">{}</span>", escape(f))).collect::<Vec<_>>().join("")
            },
        );
        let flags = format!(
            "CAP_NET_ADMIN {}, RECV_ZC opcode {}, CQE_MIXED {}, /dev/kmsg {}",
            yes_no(p.cap_net_admin),
            p.recv_zc.map(yes_no).unwrap_or("unknown"),
            yes_no(p.cqe_mixed),
            if p.kmsg { "watched" } else { "not readable" }
        );
        row("probe", escape(&flags));
        if let Some(e) = &p.query_error {
            row("QUERY", format!("<code>{}</code>", escape(e)));
        }
        row("topologies", escape(&r.topologies.join(", ")));
        row("cases", format!("{} in {}", r.cases.len(), escape(&seconds(r.duration_s))));
        if !r.timings.is_empty() {
            let t: Vec<String> = r
                .timings
                .entries()
                .into_iter()
                .map(|(k, v, unit)| format!("{} <b>{}</b>", escape(&k), escape(&timing_value(unit, v))))
                .collect();
            row("timings", t.join(" &middot; "));
        }
        s.push_str("</dl></article>\n");
    }
    s.push_str("</div></section>\n");
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn summary_section(s: &mut String, runs: &[&RunReport]) {
    s.push_str("<section id=\"summary\"><h2>Summary</h2><table class=\"summary\"><thead><tr><th>run</th>");
    s.push_str("<th>kernel</th><th>cases</th>");
    for st in STATUSES {
        let _ = write!(s, "<th class=\"st-{}\">{}</th>", status_key(st), status_key(st));
    }
    s.push_str("<th>time</th><th></th></tr></thead><tbody>\n");
    for r in runs {
        let total = r.cases.len().max(1) as f64;
        let _ = write!(
            s,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"n\">{}</td>",
            escape(&r.target),
            escape(&r.probe.kernel_release),
            r.cases.len()
        );
        let mut bar = String::from("<div class=\"bar\">");
        for st in STATUSES {
            let n = r.count(st);
            let _ = write!(
                s,
                "<td class=\"n{}\">{n}</td>",
                if n > 0 { format!(" st-{}", status_key(st)) } else { String::new() }
            );
            if n > 0 {
                let _ = write!(
                    bar,
                    "<span class=\"{}\" style=\"width:{:.2}%\" title=\"{n} {}\"></span>",
                    status_key(st),
                    n as f64 * 100.0 / total,
                    status_key(st)
                );
            }
        }
        bar.push_str("</div>");
        let _ =
            writeln!(s, "<td class=\"n\">{}</td><td class=\"barcell\">{bar}</td></tr>", escape(&seconds(r.duration_s)));
    }
    s.push_str("</tbody></table></section>\n");
}

/// One run's result for a case: status, the message, and kernel-specific expectation notes.
struct Cell<'a> {
    case: Option<&'a CaseReport>,
    special: Vec<&'a str>,
    /// The case's index in its run's `cases` (the failure anchors use it).
    idx: usize,
}

impl Cell<'_> {
    fn ran(&self) -> bool {
        self.case.is_some_and(|c| c.status != Status::Skip)
    }
    /// The word report::matrix_table compares: status, `+` when a kernel-specific expectation applied.
    fn word(&self) -> String {
        match self.case {
            Some(c) if self.special.is_empty() => status_label(c.status).into(),
            Some(c) => format!("{}+", status_label(c.status)),
            None => "-".into(),
        }
    }
}

fn cell<'a>(r: &'a RunReport, index: &std::collections::HashMap<&str, usize>, id: &str) -> Cell<'a> {
    let idx = index.get(id).copied().unwrap_or(0);
    let case = index.get(id).and_then(|&i| r.cases.get(i));
    let special = case.map(|c| c.kernel_specific.iter().map(String::as_str).collect()).unwrap_or_default();
    Cell { case, special, idx }
}

/// The same rule as report::matrix_table: `*` when a kernel-specific expectation applied or the
/// kernels that ran the case disagree; `~` when it ran on some kernels only.
fn mark(cells: &[Cell]) -> char {
    let ran: Vec<String> = cells.iter().filter(|c| c.ran()).map(Cell::word).collect();
    if ran.iter().any(|w| w.ends_with('+')) || ran.windows(2).any(|w| w[0] != w[1]) {
        '*'
    } else if ran.len() != cells.len() && !ran.is_empty() {
        '~'
    } else {
        ' '
    }
}

fn cases_section(s: &mut String, runs: &[&RunReport]) {
    let ids = case_ids(runs);
    let index = case_index(runs);
    let areas: BTreeSet<&str> = runs.iter().flat_map(|r| r.cases.iter().map(|c| c.area.as_str())).collect();
    let multi = runs.len() > 1;
    s.push_str("<section id=\"cases\"><h2>Cases</h2>\n<div class=\"filters\"><span>status:</span>");
    for st in STATUSES {
        let n: usize = runs.iter().map(|r| r.count(st)).sum();
        let _ = write!(
            s,
            "<label class=\"badge st-{k}\"><input type=\"checkbox\" data-filter-status=\"{k}\" checked> {k} ({n})</label>",
            k = status_key(st)
        );
    }
    s.push_str("<label>area: <select id=\"filter-area\"><option value=\"\">all</option>");
    for a in &areas {
        let _ = write!(s, "<option value=\"{a}\">{a}</option>", a = escape(a));
    }
    s.push_str("</select></label>");
    if multi {
        s.push_str("<label><input type=\"checkbox\" id=\"filter-differ\"> only cases that differ (*)</label>");
    }
    s.push_str("<label>id: <input type=\"search\" id=\"filter-text\" placeholder=\"substring\"></label>");
    s.push_str("<button type=\"button\" id=\"filter-expand\">expand all</button><span class=\"count\" id=\"filter-count\"></span></div>\n");
    if multi {
        s.push_str(
            "<p class=\"legend\"><b>*</b> the kernels behave differently (a kernel-specific expectation applied, \
             marked <b>+</b>, or the kernels that ran it disagree); <b>~</b> ran on some kernels only. Hover a cell \
             for the reason; click a row for details.</p>\n",
        );
    } else {
        s.push_str("<p class=\"legend\">Click a row for the message and the step log.</p>\n");
    }
    s.push_str("<table class=\"cases\" id=\"cases-table\"><thead><tr><th></th><th>case</th><th>area</th>");
    if multi {
        for r in runs {
            let _ = write!(s, "<th title=\"{}\">{}</th>", escape(&r.probe.kernel_release), escape(&r.target));
        }
    } else {
        s.push_str("<th>topology</th><th>status</th><th>time</th><th>message</th>");
    }
    s.push_str("</tr></thead><tbody>\n");
    let ncols = if multi { 3 + runs.len() } else { 7 };
    for id in ids {
        let cells: Vec<Cell> = runs.iter().zip(&index).map(|(r, ix)| cell(r, ix, id)).collect();
        let m = if multi { mark(&cells) } else { ' ' };
        let area = cells.iter().find_map(|c| c.case.map(|c| c.area.as_str())).unwrap_or("");
        let statuses: BTreeSet<&str> = cells.iter().filter_map(|c| c.case.map(|c| status_key(c.status))).collect();
        let class = match m {
            '*' => "case differ",
            '~' => "case partial",
            _ => "case",
        };
        let _ = write!(
            s,
            "<tr class=\"{class}\" data-id=\"{}\" data-area=\"{}\" data-status=\"{}\"><td class=\"mark\">{}</td>\
             <td class=\"id\">{}</td><td>{}</td>",
            escape(id),
            escape(area),
            statuses.into_iter().collect::<Vec<_>>().join(" "),
            if m == ' ' { String::new() } else { m.to_string() },
            escape(id),
            escape(area)
        );
        if multi {
            for c in &cells {
                status_cell(s, c);
            }
        } else if let Some(c) = cells.first().and_then(|c| c.case) {
            let _ = write!(s, "<td>{}</td>", escape(c.topology.as_deref().unwrap_or("-")));
            status_cell(s, &cells[0]);
            let _ = write!(
                s,
                "<td class=\"n\">{}</td><td class=\"msg\" title=\"{m}\">{m}</td>",
                escape(&seconds(c.duration_s)),
                m = escape(&c.message)
            );
        }
        s.push_str("</tr>\n");
        let _ = write!(s, "<tr class=\"detail hidden\"><td></td><td colspan=\"{}\">", ncols - 1);
        detail(s, runs, &cells);
        s.push_str("</td></tr>\n");
    }
    s.push_str("</tbody></table></section>\n");
}

fn status_cell(s: &mut String, c: &Cell) {
    match c.case {
        Some(cr) => {
            let mut why = cr.message.clone();
            for sp in &c.special {
                if !why.is_empty() {
                    why.push('\n');
                }
                why.push_str("kernel-specific expectation ");
                why.push_str(sp);
            }
            let _ = write!(
                s,
                "<td class=\"st st-{}\" title=\"{}\">{}</td>",
                status_key(cr.status),
                escape(&why),
                escape(&c.word())
            );
        }
        None => s.push_str("<td class=\"st st-none\" title=\"not in this run\">-</td>"),
    }
}

fn detail(s: &mut String, runs: &[&RunReport], cells: &[Cell]) {
    if let Some(about) = cells.iter().find_map(|c| c.case.map(|c| c.about.trim())).filter(|a| !a.is_empty()) {
        let _ = write!(s, "<div class=\"muted\">{}</div>", escape(about));
    }
    if let Some(c) = cells.iter().find_map(|c| c.case) {
        let mut meta = format!("file {}", c.file);
        if !c.spec.is_empty() {
            meta.push_str(&format!(", spec {}", c.spec.join(" ")));
        }
        let _ = write!(s, "<div class=\"muted mono\">{}</div>", escape(&meta));
        for f in &c.fixes {
            let _ = write!(s, "<div class=\"muted mono\">fixes {}</div>", escape(&super::fix_line(f)));
        }
        if !c.cve.is_empty() {
            let _ = write!(s, "<div class=\"muted mono\">cve {}</div>", escape(&c.cve.join(" ")));
        }
    }
    s.push_str("<table><tbody>");
    for (ri, (r, c)) in runs.iter().zip(cells).enumerate() {
        let _ = write!(s, "<tr><td>{}</td>", escape(&r.target));
        match c.case {
            Some(cr) => {
                let mut why = String::new();
                if let Some(t) = &cr.topology {
                    why.push_str(&format!("[{t}] "));
                }
                why.push_str(&cr.message);
                for sp in &c.special {
                    why.push_str(&format!("\nkernel-specific expectation {sp}"));
                }
                let link = if matches!(cr.status, Status::Fail | Status::Xpass | Status::Xfail) {
                    format!(" <a href=\"#f-{ri}-{}\">details</a>", c.idx)
                } else {
                    String::new()
                };
                let _ = write!(
                    s,
                    "<td class=\"st st-{}\">{}</td><td class=\"why\">{}{link}</td>",
                    status_key(cr.status),
                    escape(&c.word()),
                    escape(&why)
                );
            }
            None => s.push_str("<td class=\"st st-none\">-</td><td class=\"why\">not in this run</td>"),
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    if runs.len() == 1 {
        if let Some(cr) = cells.first().and_then(|c| c.case) {
            if !cr.log.is_empty() {
                let _ = write!(s, "<h4>steps</h4><pre>{}</pre>", escape(&cr.log.join("\n")));
            }
        }
    }
}

fn failures_section(s: &mut String, runs: &[&RunReport]) {
    s.push_str("<section id=\"failures\"><h2>Failures</h2>\n");
    let mut any = false;
    for pass in [[Status::Fail, Status::Xpass], [Status::Xfail, Status::Xfail]] {
        if pass[0] == Status::Xfail {
            let n: usize = runs.iter().map(|r| r.count(Status::Xfail)).sum();
            if n == 0 {
                continue;
            }
            let _ = writeln!(s, "<h3>Known deviations (xfail): {n}</h3>");
        }
        for (ri, r) in runs.iter().enumerate() {
            for (ci, c) in r.cases.iter().enumerate().filter(|(_, c)| pass.contains(&c.status)) {
                any = true;
                failure(s, ri, ci, r, c);
            }
        }
    }
    if !any {
        s.push_str("<p class=\"none\">No case failed.</p>\n");
    }
    s.push_str("</section>\n");
}

fn failure(s: &mut String, ri: usize, ci: usize, r: &RunReport, c: &CaseReport) {
    let k = status_key(c.status);
    let open = if c.status == Status::Xfail { "" } else { " open" };
    let _ = write!(
        s,
        "<details class=\"failure {k}\" id=\"f-{ri}-{ci}\"{open}><summary><span class=\"badge st-{k}\">{}</span> \
         <span class=\"mono\">{}</span> on {} <span class=\"muted\">({}, {})</span></summary>",
        status_label(c.status),
        escape(&c.id),
        escape(&r.target),
        escape(c.topology.as_deref().unwrap_or("no topology")),
        escape(&seconds(c.duration_s))
    );
    let _ = write!(s, "<div class=\"message\">{}</div>", escape(&c.message));
    if let Some(d) = super::outcome::detail(c) {
        let _ = write!(s, "<div class=\"muted mono\">{}</div>", escape(&d));
    }
    let _ = write!(s, "<div class=\"muted mono\">{}</div>", escape(&c.file));
    s.push_str("<h4>step log</h4>");
    if c.log.is_empty() {
        s.push_str("<p class=\"none\">no steps logged</p>");
    } else {
        let _ = write!(s, "<pre>{}</pre>", escape(&c.log.join("\n")));
    }
    let splats = c.kernel_log.iter().filter(|l| is_splat(l)).count();
    let _ = write!(s, "<h4>kernel log ({} line(s), {splats} WARN/BUG-like)</h4>", c.kernel_log.len());
    if c.kernel_log.is_empty() {
        s.push_str("<p class=\"none\">nothing printed while the case ran</p>");
    } else {
        s.push_str("<pre>");
        s.push_str(&kernel_excerpt(&c.kernel_log));
        s.push_str("</pre>");
    }
    s.push_str("</details>\n");
}

/// The kernel log, escaped, with splat lines highlighted; a long log keeps its first lines and
/// five lines around each splat line.
fn kernel_excerpt(lines: &[String]) -> String {
    let keep: Vec<bool> = if lines.len() <= KLOG_FULL {
        vec![true; lines.len()]
    } else {
        let mut k = vec![false; lines.len()];
        for (i, l) in lines.iter().enumerate() {
            if i < 20 {
                k[i] = true;
            }
            if is_splat(l) {
                let end = (i + 6).min(lines.len());
                k[i.saturating_sub(5)..end].iter_mut().for_each(|x| *x = true);
            }
        }
        k
    };
    let mut out = String::new();
    let mut skipped = 0usize;
    for (l, keep) in lines.iter().zip(keep) {
        if !keep {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            let _ = writeln!(out, "<span class=\"omitted\">[{skipped} line(s) omitted]</span>");
            skipped = 0;
        }
        if is_splat(l) {
            let _ = writeln!(out, "<span class=\"splat\">{}</span>", escape(l));
        } else {
            let _ = writeln!(out, "{}", escape(l));
        }
    }
    if skipped > 0 {
        let _ = writeln!(out, "<span class=\"omitted\">[{skipped} line(s) omitted]</span>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_single_pass() {
        assert_eq!(fill("a{{x}}b{{y}}c{{z}}", &[("x", "{{y}}"), ("y", "Y")]), "a{{y}}bYc{{z}}");
    }

    #[test]
    fn escapes_everything() {
        assert_eq!(escape("<a href='x'>&\"\u{7}"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;\u{FFFD}");
    }

    #[test]
    fn excerpt_keeps_splats() {
        let mut l: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
        l[150] = "WARNING: CPU: 0 PID: 1 at io_uring/zcrx.c".into();
        let e = kernel_excerpt(&l);
        assert!(e.contains("line 19\n") && !e.contains("line 20\n"));
        assert!(e.contains("line 145\n") && e.contains("line 155\n") && !e.contains("line 156\n"));
        assert!(e.contains("<span class=\"splat\">WARNING:"));
        assert!(e.contains("[125 line(s) omitted]") && e.contains("[44 line(s) omitted]"));
    }
}
