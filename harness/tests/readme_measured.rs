//! README's kernel-mutant and coverage figures come from reports/mutation.json and
//! reports/coverage.json (written by `mutate` and `coverage`); this fails when they are stale.

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
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = readme.split("## Kernel mutants and zcrx.c coverage").nth(1).expect("README has the section");
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
    assert!(section.contains(&want), "README's mutant figures are stale: want `{want}`");
    let want = format!("zcrx.t ({:.0}%)**", num(&m, "liburing_killed_pct"));
    assert!(section.contains(&want), "README's liburing figure is stale: want `{want}`");
    let c = json("coverage.json");
    let want = format!(
        "**this suite {:.1}% ({} of {}), liburing's zcrx.t {:.1}%, either {:.1}%**",
        num(&c, "suite_pct"),
        num(&c, "suite_lines_hit"),
        num(&c, "lines_found"),
        num(&c, "liburing_pct"),
        num(&c, "either_pct"),
    );
    assert!(section.contains(&want), "README's coverage figures are stale: want `{want}`");
}
