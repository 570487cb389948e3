//! A command's outputs: loads report.json inputs, checks every output path before any case
//! runs ([`preflight`]), writes every report a run asked for, applies baselines, prints the
//! summary, and decides the [`Verdict`].

use std::path::{Path, PathBuf};

use super::Outputs;
use crate::error::{Error, Verdict};
use crate::model::{RunReport, Status};
use crate::report::escape::printable;
use crate::report::files::{self, DirLock};
use crate::report::{self, baseline::Baseline, Format};

/// The files `--out DIR` holds.
const OUT_FILES: [&str; 3] = ["junit.xml", "report.json", "ktap.txt"];

pub fn load_report(path: &Path) -> Result<report::JsonReport, report::Error> {
    let path = if path.is_dir() { path.join("report.json") } else { path.to_path_buf() };
    let text = crate::paths::input::read_text(&path, crate::paths::input::MAX_REPORT_BYTES, true)
        .map_err(report::Error::file(path.display().to_string()))?;
    report::parse_json(&text, &path.display().to_string())
}

/// Every run of the given report.json files (or directories holding one), in order.
pub fn load_runs(inputs: &[PathBuf]) -> Result<Vec<RunReport>, report::Error> {
    let mut runs = Vec::new();
    for i in inputs {
        runs.extend(load_report(i)?.runs);
    }
    Ok(runs)
}

/// Every run of the given inputs, in order, each with the input it came from (as given).
pub fn load_named_runs(inputs: &[PathBuf]) -> Result<Vec<(String, RunReport)>, report::Error> {
    let mut runs = Vec::new();
    for i in inputs {
        let name = i.display().to_string();
        runs.extend(load_report(i)?.runs.into_iter().map(|r| (name.clone(), r)));
    }
    Ok(runs)
}

/// A command's result once stdout is flushed: a write there that failed (a closed pipe, a full
/// disk) is said on stderr and makes a clean exit 2 when nothing else went wrong (1 stays 1).
pub fn stdout_checked(r: Result<Verdict, Error>) -> Result<Verdict, Error> {
    let Some(e) = crate::paths::stdio::stdout_failure() else { return r };
    match r {
        Ok(Verdict::Passed | Verdict::Empty) => {
            Err(Error::bad_input(format!("writing to stdout: {e} (the reports and files asked for are written)")))
        }
        r => {
            eprintln!("error: writing to stdout: {e}");
            r
        }
    }
}

/// What [`preflight`] checked and holds until the reports are written: the `--out` lock and
/// the baselines, already read.
#[derive(Debug, Default)]
pub struct Ready {
    _lock: Option<DirLock>,
    /// `--out`, opened when it was locked: its reports are written there, whatever its name
    /// leads to by then.
    out_dir: Option<files::OutDir>,
    baseline: Option<Baseline>,
    /// The `--write-baseline` file as it is (its other targets are kept).
    recorded: Option<Baseline>,
}

/// Every file the outputs of `o` write, with the option that names it.
fn output_files(o: &Outputs) -> Vec<(String, PathBuf)> {
    let mut all = Vec::new();
    if let Some(d) = &o.out {
        for f in OUT_FILES {
            all.push((format!("--out {}", d.display()), d.join(f)));
            all.push((format!("--out {}", d.display()), files::prev_path(&d.join(f))));
        }
    }
    for (flag, p) in
        [("--junit", &o.junit), ("--json", &o.json), ("--kcidb", &o.kcidb), ("--write-baseline", &o.write_baseline)]
    {
        if let Some(p) = p {
            all.push((format!("{flag} {}", p.display()), p.clone()));
            all.push((format!("{flag} {}", p.display()), files::prev_path(p)));
        }
    }
    all
}

/// No two outputs name one file (one would overwrite the other).
fn check_distinct(o: &Outputs) -> Result<(), Error> {
    let mut seen: std::collections::BTreeMap<PathBuf, String> = Default::default();
    for (flag, p) in output_files(o) {
        match seen.insert(files::resolved(&p), flag.clone()) {
            Some(first) if first != flag => {
                return Err(Error::bad_input(format!(
                    "{} and {}: the same file ({}); give each output its own",
                    printable(&first),
                    printable(&flag),
                    printable(&p.display().to_string())
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Before any case runs: every output path can take its report, no two name one file, `--out`
/// is locked for this run, `--baseline` (and an existing `--write-baseline`) reads and parses.
/// Exit 2 otherwise, leaving no directory or lock file this created.
pub fn preflight(o: &Outputs) -> Result<Ready, Error> {
    check_distinct(o)?;
    let files_dirs = [&o.junit, &o.json, &o.kcidb, &o.write_baseline].into_iter().flatten().filter_map(|p| p.parent());
    let dirs: Vec<&Path> = o.out.iter().map(PathBuf::as_path).chain(files_dirs).collect();
    let created: Vec<PathBuf> = dirs.iter().flat_map(|d| files::missing_dirs(d)).collect();
    let lock = o.out.as_ref().map(|d| d.join(files::LOCK_FILE)).filter(|l| std::fs::symlink_metadata(l).is_err());
    let r = preflight_steps(o);
    if r.is_err() {
        // Only a lock file nobody holds now (another run may have made it meanwhile).
        if let (Some(l), Some(d)) = (lock, &o.out) {
            if let Ok(_held) = files::lock_dir(d) {
                let _ = std::fs::remove_file(l);
            }
        }
        for d in &created {
            let _ = std::fs::remove_dir(d);
        }
    }
    r
}

/// The checks of [`preflight`], in order.
fn preflight_steps(o: &Outputs) -> Result<Ready, Error> {
    // --out first: creating it must not hide that a file option names the same path.
    let (lock, out_dir) = match &o.out {
        Some(d) => {
            files::check_output_dir(d, "--out", &OUT_FILES)?;
            let dir = files::OutDir::open(d)?;
            (Some(dir.lock()?), Some(dir))
        }
        None => (None, None),
    };
    for (flag, p) in
        [("--junit", &o.junit), ("--json", &o.json), ("--kcidb", &o.kcidb), ("--write-baseline", &o.write_baseline)]
    {
        if let Some(p) = p {
            files::check_output_file(p, flag)?;
        }
    }
    let baseline = o
        .baseline
        .as_deref()
        .map(|p| Baseline::load(p).map_err(|e| Error::bad_input(format!("--baseline {e}"))))
        .transpose()?;
    let recorded = match &o.write_baseline {
        Some(p) if p.exists() => {
            Some(Baseline::load(p).map_err(|e| Error::bad_input(format!("--write-baseline {e}")))?)
        }
        _ => None,
    };
    Ok(Ready { _lock: lock, out_dir, baseline, recorded })
}

/// Whether the report at `path` is a complete one that an aborted run must not replace
/// silently. Whatever is there now is read only if it is a regular file (no link followed, no
/// FIFO waited on, no device read, at most `MAX_REPORT_BYTES`): it may have been planted there
/// after the start-of-run checks.
fn complete_report_at(path: &Path, format: Format) -> bool {
    use crate::paths::input::{read_text, MAX_REPORT_BYTES};
    read_text(path, MAX_REPORT_BYTES, false).is_ok_and(|t| report::is_complete(format, &t))
}

/// Writes the three files of `--out` (`texts` in the order of `OUT_FILES`) into the directory
/// locked at the start, together: all or none is replaced. report.json says whether it holds a
/// complete run, which an aborted run keeps as NAME.prev.
fn write_out_dir(dir: &files::OutDir, texts: [String; 3], aborted: bool, io_failed: &std::cell::Cell<bool>) {
    use crate::paths::input::MAX_REPORT_BYTES;
    let keep = aborted
        && dir.read_regular("report.json", MAX_REPORT_BYTES).is_ok_and(|t| report::is_complete(Format::Json, &t));
    let files: Vec<(&str, &str)> = OUT_FILES.into_iter().zip(texts.iter().map(String::as_str)).collect();
    match dir.write_together(&files, keep) {
        Ok(kept) => {
            for name in kept {
                eprintln!(
                    "note: the run was aborted; the previous complete report is kept as {}",
                    dir.path(&format!("{name}.prev")).display()
                );
            }
        }
        Err((name, e)) => {
            eprintln!(
                "error: writing {}: {e}; none of {} replaced (they go together)",
                dir.path(&name).display(),
                OUT_FILES.join(", ")
            );
            io_failed.set(true);
        }
    }
}

/// Writes the reports and turns the results into the verdict. `stream`: the runner's stdout
/// carries events, so no summary is printed. `ready` comes from [`preflight`] (the `--out`
/// lock is released when it is dropped, after the last write).
pub fn finish(runs: &[RunReport], o: &Outputs, mut ready: Ready, stream: bool) -> Result<Verdict, Error> {
    let refs: Vec<&RunReport> = runs.iter().collect();
    let aborted = runs.iter().any(|r| r.aborted.is_some());
    let io_failed = std::cell::Cell::new(false);
    // `keep`: the file holds a complete report and this run was aborted: move it to NAME.prev.
    let write = |path: &Path, text: String, keep: bool| {
        if keep {
            match files::keep_previous(path) {
                Ok(true) => eprintln!(
                    "note: the run was aborted; the previous complete report is kept as {}",
                    files::prev_path(path).display()
                ),
                Ok(false) => {}
                Err(e) => {
                    eprintln!("error: keeping {} as .prev: {e}; not replacing it", path.display());
                    io_failed.set(true);
                    return;
                }
            }
        }
        if let Err(e) = report::write_atomic(path, &text) {
            eprintln!("error: writing {}: {e}", path.display());
            io_failed.set(true);
        }
    };
    let junit = report::junit(&refs)?;
    if let Some(p) = &o.junit {
        write(p, junit.clone(), aborted && complete_report_at(p, Format::Junit));
    }
    if let Some(p) = &o.json {
        write(p, report::json(&refs), aborted && complete_report_at(p, Format::Json));
    }
    if let Some(p) = &o.kcidb {
        let text = serde_json::to_string_pretty(&report::kcidb::export(&refs, &o.kcidb_origin)).unwrap_or_default();
        write(p, text, aborted && complete_report_at(p, Format::Kcidb));
    }
    if let Some(d) = &o.out {
        let opened = match ready.out_dir.take() {
            Some(dir) => Ok(dir),
            None => files::OutDir::open(d),
        };
        match opened {
            Ok(dir) => {
                let texts = [junit, report::json(&refs), runs.iter().map(report::ktap).collect()];
                write_out_dir(&dir, texts, aborted, &io_failed);
                ready.out_dir = Some(dir);
            }
            Err(e) => {
                eprintln!("error: {e}");
                io_failed.set(true);
            }
        }
    }
    // The baseline is recorded with the reports, before anything is printed (a closed stdout
    // must not lose it).
    if let Some(p) = &o.write_baseline {
        if aborted {
            eprintln!("error: not recording {}: the run was aborted (a partial run is no baseline)", p.display());
            io_failed.set(true);
        } else {
            let mut b = ready.recorded.clone().unwrap_or_default();
            b.record(runs);
            write(p, serde_json::to_string_pretty(&b).unwrap_or_default(), false);
        }
    }
    if o.ktap {
        for r in runs {
            print!("{}", report::ktap(r));
        }
    }
    if !stream {
        for r in runs {
            for c in r.cases.iter().filter(|c| c.status == Status::Fail) {
                eprintln!("FAIL {}: {}", printable(&c.id), printable(&c.message));
            }
            if let Some(why) = &r.aborted {
                eprintln!(
                    "{}: aborted ({}); {} case(s) not run",
                    printable(&r.target),
                    printable(why),
                    r.not_run.len()
                );
            }
            eprintln!("{} in {:.1} s", printable(&r.summary()), r.duration_s);
        }
        let (p, f, s) = runs.iter().fold((0, 0, 0), |(p, f, s), r| {
            (p + r.count(Status::Pass) + r.count(Status::Xfail), f + r.failures(), s + r.count(Status::Skip))
        });
        let line = format!("zcrx-conform: {p} passed, {f} failed, {s} skipped");
        // With --ktap, stdout is KTAP only.
        if o.ktap {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    let new_failures = ready.baseline.as_ref().map(|b| {
        let mut n = 0;
        for r in runs {
            let d = b.diff(r);
            eprint!("{}", d.render());
            n += d.newly_broken.len();
        }
        n
    });
    drop(ready);
    if aborted {
        if let Some(sig) = crate::run::signal::interrupted() {
            return Ok(Verdict::Interrupted(sig));
        }
        // No signal here (an aborted input to merge, a VM that died between cases): the results
        // say that selected cases did not run.
        let not_run: usize = runs.iter().map(|r| r.not_run.len()).sum();
        eprintln!("zcrx-conform: the results are of an aborted run ({not_run} selected case(s) not run): exit 1");
        return Ok(Verdict::Failed);
    }
    let failed = match new_failures {
        Some(n) => n > 0,
        None => runs.iter().any(|r| r.failures() > 0),
    };
    if io_failed.get() {
        if failed {
            eprintln!(
                "error: some reports could not be written; exit 1 because cases failed (a write error alone exits 2)"
            );
            return Ok(Verdict::Failed);
        }
        return Err(Error::bad_input("some reports could not be written (no case failed, so the exit code is 2)"));
    }
    if failed {
        return Ok(Verdict::Failed);
    }
    let selected: usize = runs.iter().map(|r| r.cases.len()).sum();
    let executed: usize = runs.iter().map(|r| r.cases.len() - r.count(Status::Skip)).sum();
    if executed == 0 && !o.allow_empty {
        if !stream {
            let what = if selected == 0 { "no case was selected" } else { "every selected case was skipped" };
            eprintln!("zcrx-conform: nothing was checked ({what}): exit 3 (--allow-empty accepts that)");
        }
        return Ok(Verdict::Empty);
    }
    Ok(Verdict::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CaseReport;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zcrx-outputs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn run(statuses: &[(&str, Status)], aborted: Option<&str>, not_run: &[&str]) -> RunReport {
        let mut r = RunReport::new("host", Default::default(), &["host".to_string()]);
        r.cases = statuses.iter().map(|(id, st)| CaseReport { status: *st, ..CaseReport::new(id) }).collect();
        r.aborted = aborted.map(str::to_string);
        r.not_run = not_run.iter().map(|s| s.to_string()).collect();
        r
    }

    /// A report that cannot be written after the cases ran: exit 2 when nothing failed,
    /// exit 1 (the failure wins) when a case failed.
    #[test]
    fn a_write_error_after_the_run_does_not_hide_a_failure() {
        let o = Outputs { json: Some(PathBuf::from("/proc/self/no-such-dir/r.json")), ..Default::default() };
        let failed = finish(&[run(&[("a", Status::Fail)], None, &[])], &o, Ready::default(), true);
        assert!(matches!(failed, Ok(Verdict::Failed)), "{failed:?}");
        let passed = finish(&[run(&[("a", Status::Pass)], None, &[])], &o, Ready::default(), true);
        assert!(matches!(&passed, Err(e) if e.kind() == crate::error::Kind::BadInput), "{passed:?}");
    }

    #[test]
    fn nothing_checked_is_empty_unless_allowed() {
        let skipped = [run(&[("a", Status::Skip)], None, &[])];
        assert!(matches!(finish(&skipped, &Outputs::default(), Ready::default(), true), Ok(Verdict::Empty)));
        assert!(matches!(
            finish(&[run(&[], None, &[])], &Outputs::default(), Ready::default(), true),
            Ok(Verdict::Empty)
        ));
        let o = Outputs { allow_empty: true, ..Default::default() };
        assert!(matches!(finish(&skipped, &o, Ready::default(), true), Ok(Verdict::Passed)));
    }

    /// An aborted run moves a complete report to *.prev before writing its own; a second
    /// aborted run leaves that *.prev alone.
    #[test]
    fn an_aborted_run_keeps_the_complete_report() {
        let d = temp_dir("prev");
        let o = Outputs { out: Some(d.clone()), ..Default::default() };
        let complete = run(&[("a", Status::Pass), ("b", Status::Pass)], None, &[]);
        let ready = preflight(&o).expect("preflight");
        assert!(matches!(finish(&[complete], &o, ready, true), Ok(Verdict::Passed)));
        let aborted = run(&[("a", Status::Pass)], Some("interrupted"), &["b"]);
        for _ in 0..2 {
            let ready = preflight(&o).expect("preflight");
            // No signal was received here: the results say cases did not run.
            assert!(matches!(finish(std::slice::from_ref(&aborted), &o, ready, true), Ok(Verdict::Failed)));
            let prev = load_report(&d.join("report.json.prev")).expect("prev");
            assert!(prev.runs[0].aborted.is_none() && prev.runs[0].cases.len() == 2);
            let now = load_report(&d).expect("now");
            assert_eq!(now.runs[0].not_run, ["b"]);
            for f in ["junit.xml.prev", "ktap.txt.prev"] {
                let t = std::fs::read_to_string(d.join(f)).expect(f);
                assert!(!t.contains("aborted") && !t.contains("Bail out!"), "{f}: {t}");
            }
            let ktap = std::fs::read_to_string(d.join("ktap.txt")).expect("ktap");
            assert!(ktap.ends_with("# not run: b\nBail out! interrupted (1 case(s) not run)\n"), "{ktap}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
