//! `zcrx-conform html`: escaping, counts, and a page without external assets.

use zcrx_conform::model::Status;
use zcrx_conform::model::{CaseReport, RunReport};
use zcrx_conform::report::html;

fn case(id: &str, area: &str, status: Status, message: &str) -> CaseReport {
    CaseReport {
        id: id.into(),
        file: "cases/x.yaml".into(),
        area: area.into(),
        about: "about <b>this</b>".into(),
        spec: vec!["R1".into()],
        fixes: vec![],
        cve: vec![],
        topology: Some("nodev".into()),
        status,
        message: message.into(),
        log: vec!["IORING_REGISTER_ZCRX_IFQ(nodev) -> EINVAL <img src=x onerror=alert(1)>".into()],
        kernel_log: vec!["WARNING: CPU: 0 PID: 1 at io_uring/zcrx.c:1 <x>".into()],
        duration_s: 0.25,
        kernel_specific: vec![],
        harness_error: false,
        result: Default::default(),
        self_check: None,
        observed: vec![],
    }
}

fn run(target: &str, cases: Vec<CaseReport>) -> RunReport {
    RunReport {
        target: target.into(),
        probe: Default::default(),
        topologies: vec!["host".into(), "nodev".into()],
        cases,
        duration_s: 3.5,
        aborted: None,
        timings: zcrx_conform::model::timings::Timings {
            vm_boot_s: Some(42.0),
            suite_s: Some(136.0),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn runs() -> (RunReport, RunReport) {
    let a = run(
        "host",
        vec![
            case("reserved.a", "reserved", Status::Pass, ""),
            case("recv.b", "recv", Status::Fail, "expected EINVAL, got <script>alert(1)</script>"),
            case("drain.c", "drain", Status::Skip, "needs ZCRX_REG_NODEV & \"7.2\""),
            case("ctrl.d", "ctrl", Status::Xfail, "known deviation"),
        ],
    );
    let mut b = run(
        "debian:7.3.4",
        vec![
            case("reserved.a", "reserved", Status::Pass, ""),
            case("recv.b", "recv", Status::Pass, ""),
            case("drain.c", "drain", Status::Pass, ""),
            case("ctrl.d", "ctrl", Status::Xpass, "deviation no longer reproduces"),
            case("area.e", "area", Status::Pass, ""),
        ],
    );
    b.cases[0].kernel_specific.push("[<= 7.2] offsets differ".into());
    (a, b)
}

#[test]
fn tags_are_shown_escaped() {
    let (mut a, _) = runs();
    a.cases[1].fixes =
        vec![zcrx_conform::model::FixTag { id: "09cfd3c52ea7".into(), subject: "fix <recv> limit".into() }];
    a.cases[1].cve = vec!["CVE-2025-40046".into()];
    let page = html::render(&[&a]);
    assert!(page.contains("fixes 09cfd3c52ea7 (&quot;fix &lt;recv&gt; limit&quot;)"), "{page}");
    assert!(page.contains("cve CVE-2025-40046"), "{page}");
    assert_eq!(page.matches("fixes 09cfd3c52ea7").count(), 1);
}

#[test]
fn escapes_report_text() {
    let (a, b) = runs();
    for page in [html::render(&[&a]), html::render(&[&a, &b])] {
        assert!(!page.contains("<script>alert"), "unescaped message");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<img src=x"), "unescaped step log");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!page.contains("<b>this</b>"));
        assert!(page.contains("needs ZCRX_REG_NODEV &amp; &quot;7.2&quot;"));
        // Exactly one script element: the inline template.
        assert_eq!(page.matches("<script").count(), 1, "{page}");
    }
}

#[test]
fn counts_and_matrix() {
    let (a, b) = runs();
    let page = html::render(&[&a, &b]);
    // Filter labels carry the totals over both runs.
    assert!(page.contains("data-filter-status=\"pass\" checked> pass (5)"), "{page}");
    assert!(page.contains("data-filter-status=\"fail\" checked> fail (1)"));
    assert!(page.contains("data-filter-status=\"skip\" checked> skip (1)"));
    assert!(page.contains("data-filter-status=\"xfail\" checked> xfail (1)"));
    assert!(page.contains("data-filter-status=\"xpass\" checked> xpass (1)"));
    // One row per case id across runs.
    assert_eq!(page.matches("<tr class=\"case").count(), 5);
    // recv.b (FAIL vs pass), ctrl.d (xfail vs XPASS) and reserved.a (kernel-specific) differ;
    // drain.c ran on one kernel only; area.e is missing from the first run.
    assert_eq!(page.matches("<tr class=\"case differ\"").count(), 3, "{page}");
    assert_eq!(page.matches("<tr class=\"case partial\"").count(), 2, "{page}");
    assert!(page.contains(">pass+<"));
    // Failure details: the FAIL and the XPASS open, the xfail collapsed, with the kernel log.
    assert_eq!(page.matches("<details class=\"failure fail\"").count(), 1);
    assert_eq!(page.matches("<details class=\"failure xpass\"").count(), 1);
    assert_eq!(page.matches("<details class=\"failure xfail\"").count(), 1);
    assert!(page.contains("<span class=\"splat\">WARNING: CPU: 0 PID: 1 at io_uring/zcrx.c:1 &lt;x&gt;</span>"));
    // Header: timings and target.
    assert!(page.contains("vm_boot_s <b>42.0 s</b>"));
    assert!(page.contains("<h3>debian:7.3.4</h3>"));
}

#[test]
fn single_run_summary() {
    let (a, _) = runs();
    let page = html::render(&[&a]);
    assert!(page.contains("<td class=\"n\">4</td>"), "total cases");
    for st in ["pass", "fail", "skip", "xfail"] {
        assert!(page.contains(&format!("<td class=\"n st-{st}\">1</td>")), "{st}");
    }
    assert!(page.contains("<td class=\"n\">0</td>"), "no xpass");
    assert!(!page.contains("id=\"filter-differ\""), "no kernel comparison for one run");
}

#[test]
fn self_contained() {
    let (a, b) = runs();
    for page in [html::render(&[&a]), html::render(&[&a, &b])] {
        for bad in ["http:", "https:", "//", "src=\"", "<link", "@import", "url("] {
            assert!(!page.contains(bad), "page contains `{bad}`");
        }
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<style>") && page.contains("function apply()"));
        assert!(!page.contains("{{"), "unfilled template placeholder");
    }
}
