//! What each fuzz target checks, shared by the targets (`fuzz_targets/*.rs`, nightly, libFuzzer)
//! and by the stable test that replays the corpus (`harness/tests/fuzz_corpus.rs`), so CI keeps
//! every corpus file passing without a nightly toolchain. Each function takes the raw input and
//! panics when a property fails.
// Each target uses one of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use zcrx_conform::model::{CaseReport, RunReport, Status};
use zcrx_conform::report::{self, baseline::Baseline};

/// The longest message a refusal of `merge` may print (item 2 of issue 27: no message grows
/// with a number or a string a file made up).
const MAX_MESSAGE: usize = 4096;

fn one_printable_line(what: &str, msg: &str) {
    assert!(!msg.contains('\n') && !msg.contains('\x1b'), "{what}: {msg:?}");
}

/// The case loader on any text: YAML reading, matrix expansion and substitution, typing and
/// validation answer Ok or located errors, never panic, and stay within their limits.
pub fn case_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match zcrx_conform::case::load_str(Path::new("fuzz.yaml"), text) {
        Ok(cases) => {
            assert!(!cases.is_empty());
            for c in &cases {
                zcrx_conform::case::check_id(&c.id).expect("a loaded case has a valid id");
                assert!(cases.len() <= zcrx_conform::case::MAX_ROWS);
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                // Messages are one line each, printable, with at most one place.
                one_printable_line("case error", &e.to_string());
            }
        }
    }
}

/// A report.json as `merge`, `html` and the report writers read it: what parses as a report
/// goes through merge's checks (refusals are one bounded line) and, merged, renders (JUnit,
/// KTAP, JSON, HTML, KCIDB, the matrix and catalogue tables) without panicking.
pub fn report_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rep) = report::parse_json(text, "fuzz.json") else { return };
    let named: Vec<(String, RunReport)> = rep.runs.iter().map(|r| ("fuzz.json".to_string(), r.clone())).collect();
    let refused = |e: String| {
        one_printable_line("merge refusal", &e);
        assert!(e.len() <= MAX_MESSAGE, "a {} byte refusal", e.len());
    };
    if let Err(e) = report::check_merge_inputs(&named) {
        return refused(e.to_string());
    }
    let runs = match report::merge(rep.runs) {
        Ok(runs) => runs,
        Err(e) => return refused(e.to_string()),
    };
    let refs: Vec<&RunReport> = runs.iter().collect();
    let _ = report::junit(&refs);
    let _ = report::json(&refs);
    let _ = report::matrix_table(&refs);
    let _ = report::changes::render(&refs);
    let _ = report::html::render(&refs);
    let _ = report::kcidb::export_at(&refs, "fuzz", UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let table = report::catalogue_table(&[], &refs);
    assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "catalogue: {table:?}");
    for r in &runs {
        let _ = report::ktap(r);
        let _ = r.summary();
    }
}

/// A topology file as `--topology FILE` reads it: Ok, or one printable line naming the file.
pub fn topology_loader(data: &[u8]) {
    let dir = std::env::temp_dir().join(format!("zcrx-fuzz-topology-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path: PathBuf = dir.join("fuzz.yaml");
    std::fs::write(&path, data).expect("write the input");
    let Some(name) = path.to_str() else { return };
    match zcrx_conform::topology::load(name) {
        Ok(t) => {
            let _ = format!("{t:?}");
        }
        Err(e) => {
            let e = e.to_string();
            one_printable_line("topology error", &e);
            assert!(e.starts_with(name), "{e}");
        }
    }
}

/// A baseline as `--baseline` and `--write-baseline` read it: what parses is compared with a
/// run, renders, records a run and writes back without panicking.
pub fn baseline_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut b) = serde_json::from_str::<Baseline>(text) else { return };
    let mut run = RunReport::new("host", Default::default(), &["host".to_string()]);
    run.probe.kernel_release = "7.3.4".into();
    run.cases = [("query.opcodes", Status::Pass), ("rq.fill", Status::Fail), ("drain.eof", Status::Skip)]
        .into_iter()
        .map(|(id, status)| CaseReport { status, ..CaseReport::new(id) })
        .collect();
    for target in b.targets.keys().take(4).cloned().collect::<Vec<_>>().into_iter().chain(["host".to_string()]) {
        run.target = target;
        let d = b.diff(&run);
        let _ = d.render();
    }
    b.record(std::slice::from_ref(&run));
    let back = serde_json::to_string_pretty(&b).expect("a baseline serializes");
    serde_json::from_str::<Baseline>(&back).expect("what is written reads back");
}
