//! A command's outputs: loads report.json inputs, writes every report a run asked for, applies
//! baselines, prints the summary, and decides the [`Verdict`].

use std::path::{Path, PathBuf};

use super::Outputs;
use crate::error::{Error, Verdict};
use crate::model::{RunReport, Status};
use crate::report::{self, baseline};

pub fn load_report(path: &Path) -> Result<report::JsonReport, String> {
    let path = if path.is_dir() { path.join("report.json") } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}:{}:{}: not a zcrx-conform report: {e}", path.display(), e.line(), e.column()))
}

/// Every run of the given report.json files (or directories holding one), in order.
pub fn load_runs(inputs: &[PathBuf]) -> Result<Vec<RunReport>, String> {
    let mut runs = Vec::new();
    for i in inputs {
        runs.extend(load_report(i)?.runs);
    }
    Ok(runs)
}

/// Writes the reports and turns the results into the verdict. `stream`: the runner's stdout
/// carries events, so no summary is printed.
pub fn finish(runs: &[RunReport], o: &Outputs, stream: bool) -> Result<Verdict, Error> {
    let refs: Vec<&RunReport> = runs.iter().collect();
    let mut io_failed = false;
    let mut write = |path: &PathBuf, text: String| {
        if let Err(e) = report::write_atomic(path, &text) {
            eprintln!("error: writing {}: {e}", path.display());
            io_failed = true;
        }
    };
    let junit = report::junit(&refs)?;
    if let Some(p) = &o.junit {
        write(p, junit.clone());
    }
    if let Some(p) = &o.json {
        write(p, report::json(&refs));
    }
    if let Some(p) = &o.kcidb {
        write(p, serde_json::to_string_pretty(&report::kcidb::export(&refs, &o.kcidb_origin)).unwrap_or_default());
    }
    if let Some(d) = &o.out {
        write(&d.join("junit.xml"), junit);
        write(&d.join("report.json"), report::json(&refs));
        write(&d.join("ktap.txt"), runs.iter().map(report::ktap).collect());
    }
    if o.ktap {
        for r in runs {
            print!("{}", report::ktap(r));
        }
    }
    if !stream {
        for r in runs {
            for c in r.cases.iter().filter(|c| c.status == Status::Fail) {
                eprintln!("FAIL {}: {}", c.id, c.message);
            }
            eprintln!("{} in {:.1} s", r.summary(), r.duration_s);
        }
        let (p, f, s) = runs.iter().fold((0, 0, 0), |(p, f, s), r| {
            (p + r.count(Status::Pass) + r.count(Status::Xfail), f + r.failures(), s + r.count(Status::Skip))
        });
        println!("zcrx-conform: {p} passed, {f} failed, {s} skipped");
    }
    if let Some(p) = &o.write_baseline {
        let mut b = if p.exists() { baseline::Baseline::load(p)? } else { baseline::Baseline::default() };
        b.record(runs);
        write(p, serde_json::to_string_pretty(&b).unwrap_or_default());
    }
    let new_failures = match &o.baseline {
        Some(p) => {
            let b = baseline::Baseline::load(p)?;
            let mut n = 0;
            for r in runs {
                let d = b.diff(r);
                eprint!("{}", d.render());
                n += d.newly_broken.len();
            }
            Some(n)
        }
        None => None,
    };
    if runs.iter().any(|r| r.aborted.is_some()) {
        return Ok(Verdict::Interrupted(crate::run::signal::interrupted().unwrap_or(libc::SIGINT)));
    }
    if io_failed {
        return Err("some reports could not be written".into());
    }
    let failed = match new_failures {
        Some(n) => n > 0,
        None => runs.iter().any(|r| r.failures() > 0),
    };
    Ok(if failed { Verdict::Failed } else { Verdict::Passed })
}
