//! Matrix values are substituted into the parsed file now; before, they were pasted into the
//! YAML text and the text parsed again. Every case under cases/ must expand exactly as it did:
//! this test keeps the old expansion (below, as it was) and compares, per case id, the
//! expanded case (its parameters and its whole `CaseFile`, places left out) with the loader's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zcrx_conform::case::{self, Axis, CaseFile};

#[derive(Deserialize)]
struct MatrixOnly {
    #[serde(default)]
    matrix: BTreeMap<String, Axis>,
}

/// The old `axis_values`: one axis as rows of (placeholder, value).
fn axis_values(name: &str, axis: &Axis) -> Vec<Row> {
    let single = |v: Vec<String>| v.into_iter().map(|x| vec![(name.to_string(), x)]).collect();
    match axis {
        Axis::Values(v) => single(v.iter().map(|x| x.to_string()).collect()),
        Axis::Rows(rows) => rows.iter().map(|r| r.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()).collect(),
        Axis::Reserved(r) => {
            let t = case::table_by_name(&r.reserved_of).expect("known struct");
            single(
                t.reserved()
                    .filter(|f| f.name.starts_with(&r.prefix) && !r.except.iter().any(|e| e == f.name))
                    .map(|f| f.name.to_string())
                    .collect(),
            )
        }
    }
}

/// A row of placeholder values.
type Row = Vec<(String, String)>;

/// The old expansion: every combination's values pasted into the text, which is parsed again.
fn old_expand(text: &str) -> Vec<(String, Row, CaseFile)> {
    let m: MatrixOnly = serde_saphyr::from_str(text).expect("the matrix parses");
    let mut combos: Vec<Row> = vec![vec![]];
    for (name, axis) in &m.matrix {
        let values = axis_values(name, axis);
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.extend(v.iter().cloned());
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|params| {
            let mut t = text.to_string();
            for (k, v) in &params {
                t = t.replace(&format!("{{{k}}}"), v);
            }
            let def: CaseFile = serde_saphyr::from_str(&t).expect("the expansion parses");
            let id = if params.is_empty() {
                def.id.clone()
            } else {
                let vals: Vec<&str> = params.iter().map(|(_, v)| v.as_str()).collect();
                format!("{}[{}]", def.id, vals.join(","))
            };
            (id, params, def)
        })
        .collect()
}

/// `Debug` of a case without the places (`Sp { value: .., line: N, column: M }`), which the
/// old reader reported in the pasted text.
fn shown(params: &[(String, String)], def: &CaseFile) -> String {
    let s = format!("{params:?} {def:?}");
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find(", line: ") {
        out.push_str(&rest[..i]);
        let t = rest[i + ", line: ".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        let t = t.strip_prefix(", column: ").unwrap_or(t);
        rest = t.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

#[test]
fn every_case_expands_as_before() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cases");
    let files = case::find_files(std::slice::from_ref(&dir)).expect("case files");
    let mut compared = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let old: BTreeMap<String, String> =
            old_expand(&text).into_iter().map(|(id, p, d)| (id, shown(&p, &d))).collect();
        let new: BTreeMap<String, String> = case::load_file(f)
            .unwrap_or_else(|e| panic!("{}: {:?}", f.display(), e))
            .into_iter()
            .map(|c| (c.id.clone(), shown(&c.params, &c.def)))
            .collect();
        assert_eq!(old.keys().collect::<Vec<_>>(), new.keys().collect::<Vec<_>>(), "{}: case ids", f.display());
        for (id, was) in &old {
            assert_eq!(was, &new[id], "{}: {id} expands differently", f.display());
        }
        compared += old.len();
    }
    assert!(compared >= 247, "{compared} cases compared");
}

#[test]
fn expansion_keeps_the_places_of_the_file() {
    // A value with a line break: pasted, it moved everything below it down a line.
    let text = "id: e.x\narea: rq\nabout: x\nmatrix:\n  v: [\"a\\nb\"]\nsteps:\n  - register: { nr_args: 1 }\n    expect: { errno: \"{v}\" }\n  - query: { op: NOPE }\n";
    let errs = case::load_str(Path::new("e.yaml"), text).expect_err("NOPE is no query op");
    assert!(errs.iter().any(|e| (e.line, e.column) == (9, 5) && e.msg.contains("query.op")), "{errs:?}");
}
