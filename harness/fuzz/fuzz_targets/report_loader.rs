//! A report.json as `merge`, `html` and the report writers read it: any JSON that parses as a
//! report must render (JUnit, KTAP, JSON, HTML, KCIDB, the matrix table) without panicking.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use zcrx_conform::report::{self, JsonReport};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(rep) = serde_json::from_str::<JsonReport>(text) else { return };
    let runs = report::merge(rep.runs);
    let refs: Vec<_> = runs.iter().collect();
    let _ = report::junit(&refs);
    let _ = report::json(&refs);
    let _ = report::matrix_table(&refs);
    let _ = report::html::render(&refs);
    let _ = report::kcidb::export_at(&refs, "fuzz", UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    for r in &runs {
        let _ = report::ktap(r);
        let _ = r.summary();
    }
});
