//! The kernel-mutant and coverage figures of README ("What it catches") and of
//! docs/measurements.md come from reports/mutation.json and reports/coverage.json (written by
//! `mutate` and `coverage`); this fails when they are stale.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("reports").join(name)).expect("report");
    serde_json::from_str(&text).expect("JSON")
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} is a number"))
}

#[test]
fn readme_mutant_and_coverage_figures_match_the_reports() {
    figures_match("README.md", "## What it catches");
}

#[test]
fn measurements_mutant_and_coverage_figures_match_the_reports() {
    figures_match("docs/measurements.md", "## Kernel mutants and zcrx.c coverage");
}

fn figures_match(file: &str, heading: &str) {
    let text = std::fs::read_to_string(root().join(file)).expect(file);
    let section = text.split(heading).nth(1).unwrap_or_else(|| panic!("{file} has `{heading}`"));
    let section = section.split("\n## ").next().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    let m = json("mutation.json");
    let killed = num(&m, "killed") + num(&m, "killed_by_crash");
    let want = format!(
        "**{} of {} mutants run, {} killed by this suite ({:.0}%), {} by liburing",
        num(&m, "run"),
        num(&m, "mutants"),
        killed,
        num(&m, "killed_pct"),
        num(&m, "liburing_killed"),
    );
    assert!(section.contains(&want), "{file}'s mutant figures are stale: want `{want}`");
    let want = format!("zcrx.t ({:.0}%)**", num(&m, "liburing_killed_pct"));
    assert!(section.contains(&want), "{file}'s liburing figure is stale: want `{want}`");
    let c = json("coverage.json");
    let want = format!(
        "**this suite {:.1}% ({} of {}), liburing's zcrx.t {:.1}%, either {:.1}%**",
        num(&c, "suite_pct"),
        num(&c, "suite_lines_hit"),
        num(&c, "lines_found"),
        num(&c, "liburing_pct"),
        num(&c, "either_pct"),
    );
    assert!(section.contains(&want), "{file}'s coverage figures are stale: want `{want}`");
}
