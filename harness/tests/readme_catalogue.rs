//! The catalogue table (docs/catalogue.md) is generated (`zcrx-conform catalogue --from ...`); this
//! fails when it is stale: its per-area case counts and total must be those of cases/ now, and so
//! must README's case count. README itself stays short enough to read in five minutes.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[test]
fn readme_catalogue_counts_match_the_cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cases = zcrx_conform::case::load_all(&[root.join("cases")]).expect("cases load");
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for c in &cases {
        *want.entry(c.def.area.name().to_string()).or_default() += 1;
    }
    let doc = std::fs::read_to_string(root.join("docs/catalogue.md")).expect("docs/catalogue.md");
    let section = doc.split("# The catalogue").nth(1).expect("docs/catalogue.md has its heading");
    let mut have: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = None;
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 4 || cols[2] == "cases" || cols[1].starts_with("---") {
            continue;
        }
        let n = cols[2].trim_matches('*').parse::<usize>();
        match (cols[1].trim_matches('*'), n) {
            ("all", Ok(n)) => total = Some(n),
            (area, Ok(n)) => {
                have.insert(area.to_string(), n);
            }
            _ => {}
        }
    }
    let regen =
        "regenerate it with `zcrx-conform catalogue --from HOST_DIR --from DEBIAN_7_2_DIR --from DEBIAN_7_3_DIR`";
    assert_eq!(have, want, "docs/catalogue.md's table is stale: {regen}");
    assert_eq!(total, Some(cases.len()), "docs/catalogue.md's total is stale: {regen}");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let areas = want.len();
    let figure = format!("**{} cases** in {areas} areas", cases.len());
    assert!(readme.contains(&figure), "README's case count is stale: want `{figure}`");
}

#[test]
fn readme_is_short() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let len = std::fs::metadata(root.join("README.md")).expect("README.md").len();
    assert!(len <= 15 * 1024, "README.md is {len} bytes: at most 15 KiB; move reference text to docs/");
}
