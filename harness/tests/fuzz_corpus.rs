//! Replays every file of the fuzz corpus (`harness/fuzz/corpus/<target>/`) through the same
//! checks the fuzz targets run (`harness/fuzz/checks.rs`), on the stable toolchain: what the
//! fuzzer found once stays fixed in CI, which has no nightly.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    let mut failed = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("corpus dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    for p in files {
        let data = std::fs::read(&p).expect("corpus file");
        n += 1;
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(p.display().to_string());
        }
    }
    assert!(n >= 10, "{target}: only {n} corpus files");
    assert!(failed.is_empty(), "{target}: {} of {n} corpus files fail:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn case_loader_corpus() {
    replay("case_loader", checks::case_loader);
}

#[test]
fn report_loader_corpus() {
    replay("report_loader", checks::report_loader);
}

#[test]
fn topology_loader_corpus() {
    replay("topology_loader", checks::topology_loader);
}

#[test]
fn baseline_loader_corpus() {
    replay("baseline_loader", checks::baseline_loader);
}
