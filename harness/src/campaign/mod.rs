//! Kernel campaigns on one gcov-enabled kernel tree: mutants of io_uring/zcrx.c (`mutate`)
//! and the file's line coverage (`coverage`), for this suite and liburing's zcrx.t side by
//! side. The tree is a campaign copy under `<cache>/mutate/` (vm/campaign.sh makes it; the
//! user's own tree is never changed); each mutant is applied, built incrementally, booted
//! once, and reverted. Results go to a JSON-lines file, one line per mutant as it finishes.

mod crash;
mod error;
pub mod gcov;
pub mod guest;
pub mod mutants;
pub mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use crate::vm::{KernelArgs, KernelSpec};
pub use error::Error;
use mutants::{KernelKind, Record, Verdict};

/// `mutate`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct MutateArgs {
    // The kernel tree, --kernel tree:PATH (copied to <cache>/mutate/ first, or used there if it
    // is such a copy already; the tree named is never changed), or tree+debug:PATH: the debug
    // kernel (build-tree.sh --debug; a tree already built so is rebuilt incrementally, in place
    // when it lies under <cache>/mutate/).
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// The mutant set: a directory with `series` and the patches (default: vm/mutants).
    #[arg(long)]
    pub mutants: Option<PathBuf>,
    /// Only the mutants with these names (repeatable).
    #[arg(long)]
    pub only: Vec<String>,
    /// The results file, one JSON line per mutant; a campaign resumes after the mutants it
    /// already holds (default: reports/mutation.jsonl).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Where mutation.md and mutation.json are written (default: reports/).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Topologies the suite runs on in each boot.
    #[arg(long, default_value = "host,nodev,netdevsim-zcrx", value_delimiter = ',')]
    pub topology: Vec<String>,
    /// Boot the unmutated tree again (a new baseline record, whose gcov data `coverage`
    /// reads), then stop.
    #[arg(long)]
    pub baseline_only: bool,
    /// Seconds one boot may take; a guest that panics, hangs or runs over is recorded as
    /// killed by crash.
    #[arg(long, default_value_t = 600)]
    pub cap: u64,
    /// Stop after this many mutants in this invocation (0: all that are left).
    #[arg(long, default_value_t = 0)]
    pub max: usize,
    /// Only write the reports from the results file (no build, no boot).
    #[arg(long)]
    pub report_only: bool,
    /// Only the cases these filters select (as `run --filter`; repeatable or comma-separated):
    /// a debug boot takes minutes, so each mutant runs its expected killers, not the catalogue.
    /// liburing's zcrx.t is not run then. Mutants are compared with the latest baseline of the
    /// same kernel kind on the cases both ran; make one with `--baseline-only` and a filter
    /// that covers every mutant's.
    #[arg(long, value_delimiter = ',')]
    pub filter: Vec<String>,
    /// Seconds one case may take in the guest (a debug kernel runs cases several times slower).
    #[arg(long, default_value_t = 45, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub case_cap: u64,
    /// Cases the guest runs at the same time.
    #[arg(long, short, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Inside the VM: measure with liburing's zcrx.t at this path.
    #[arg(long, hide = true)]
    pub guest: Option<PathBuf>,
}

/// `coverage`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct CoverageArgs {
    // The kernel tree the campaign ran on, --kernel tree:PATH as given to `mutate`.
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// The campaign's results file (its baseline holds the gcov data; default:
    /// reports/mutation.jsonl).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// The suite's counters from a `run` instead of the campaign's baseline: its report.json
    /// (or the --out directory holding it), from a kernel built with gcov on zcrx.o (the debug
    /// tree); liburing's side still comes from --results' baseline when it has one.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Where coverage.md, coverage.json and the lcov tracefiles are written (default: reports/).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Instead of the report: which lines of io_uring/zcrx.c that BASE..HEAD changes (in the
    /// tree given, a git checkout) the suite executes.
    #[arg(long, conflicts_with = "patch")]
    pub diff: Option<String>,
    /// As --diff, for the lines a patch file (unified diff) changes.
    #[arg(long)]
    pub patch: Option<PathBuf>,
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of a hex string.
pub fn unhex(s: &str) -> Result<Vec<u8>, Error> {
    if !s.len().is_multiple_of(2) {
        return Err(Error::Run("odd hex length".into()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("x"), 16).map_err(|e| Error::Run(e.to_string())))
        .collect()
}

fn default_in_reports(p: &Option<PathBuf>, name: &str) -> PathBuf {
    p.clone().unwrap_or_else(|| crate::paths::repo_root().join("reports").join(name))
}

/// The campaign's source tree, `--kernel tree:PATH` or `tree+debug:PATH`, and its kind.
fn tree_source(k: &KernelArgs) -> Result<(String, KernelKind), Error> {
    match k.single("a campaign")? {
        KernelSpec::Tree { path, kasan: false, debug, .. } => {
            Ok((path.display().to_string(), if debug { KernelKind::Debug } else { KernelKind::Production }))
        }
        other => Err(Error::Input(format!(
            "`{other}`: a campaign runs on one kernel tree, --kernel tree:PATH or tree+debug:PATH"
        ))),
    }
}

fn now_utc() -> String {
    crate::report::time::now()
}

/// `mutate`: the campaign, then its reports.
pub fn mutate(a: &MutateArgs) -> Result<(), Error> {
    if let Some(zcrx_t) = &a.guest {
        let r = guest::measure(zcrx_t, &a.topology, a.jobs as usize, &a.filter, a.case_cap as f64)?;
        return Ok(crate::bench::emit_result(&r)?);
    }
    let set_dir = a.mutants.clone().unwrap_or_else(|| crate::paths::repo_root().join("vm/mutants"));
    let set = mutants::load(&set_dir)?;
    if let Some(n) = a.only.iter().find(|n| !set.iter().any(|(m, _)| &m.name == *n)) {
        return Err(Error::Input(format!("--only {n}: no such mutant in {}", set_dir.display())));
    }
    let results = default_in_reports(&a.results, "mutation.jsonl");
    if !a.report_only {
        run_campaign(a, &set, &results)?;
    }
    let mut records = mutants::read_results(&results)?;
    // The set's current headers (what a mutant breaks, why it is equivalent) over the ones
    // recorded when it ran.
    for r in &mut records {
        if let Some((m, _)) = set.iter().find(|(m, _)| m.file == r.mutant.file) {
            r.mutant = m.clone();
        }
    }
    let s = render::summarise(&records, set.len());
    let dir = default_in_reports(&a.report_dir, "");
    write(&dir.join("mutation.md"), &render::mutation_md(&s))?;
    write(&dir.join("mutation.json"), &serde_json::to_string_pretty(&s).map_err(|e| Error::Run(e.to_string()))?)?;
    eprintln!(
        "mutate: {} of {} mutants run; killed by us {} ({:.0}%), by liburing {} ({:.0}%); reports in {}",
        s.run,
        s.mutants,
        s.killed + s.killed_by_crash,
        s.killed_pct,
        s.liburing_killed,
        s.liburing_killed_pct,
        dir.display()
    );
    Ok(())
}

fn write(p: &Path, text: &str) -> Result<(), Error> {
    crate::report::write_atomic(p, text).map_err(|e| Error::Run(format!("{}: {e}", p.display())))
}

/// The guest's command line: this binary's `mutate --guest`, on the campaign's topologies.
pub(crate) fn guest_args(a: &MutateArgs, zcrx_t: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec!["mutate".into(), "--guest".into(), zcrx_t.display().to_string()];
    args.push(format!("--topology={}", a.topology.join(",")));
    args.push(format!("--jobs={}", a.jobs));
    args.push(format!("--case-cap={}", a.case_cap));
    // Each filter as its own argument: a filter holds no comma (they split on it).
    args.extend(a.filter.iter().map(|f| format!("--filter={f}")));
    args
}

/// One boot of the campaign tree as it is now: build, boot, measure.
fn boot_once(
    tree: &Path,
    kind: KernelKind,
    a: &MutateArgs,
    zcrx_t: &Path,
) -> Result<Result<guest::GuestResult, crate::vm::GuestError>, Error> {
    // --debug includes --gcov; building a debug tree without it would configure it anew (and
    // rebuild it whole).
    let debug = kind == KernelKind::Debug;
    let kernel = crate::vm::resolve(&KernelSpec::Tree { path: tree.to_path_buf(), kasan: false, gcov: true, debug })?;
    let env = crate::vm::guest_tools(&kernel, &a.topology)?;
    let args = guest_args(a, zcrx_t);
    Ok(crate::vm::run_command_in_vm(&kernel, &args, &env, Duration::from_secs(a.cap)).and_then(|out| {
        crate::bench::guest_result::<guest::GuestResult>(&out).map_err(|e| crate::vm::GuestError::Failed(e.to_string()))
    }))
}

fn run_campaign(a: &MutateArgs, set: &[(mutants::Mutant, PathBuf)], results: &Path) -> Result<(), Error> {
    let (src, kind) = tree_source(&a.kernel)?;
    let src = src.as_str();
    crate::vm::provision()?;
    let tree = crate::vm::script_path("campaign.sh", &["prepare", src])?;
    let tree_s = tree.display().to_string();
    // A mutant left applied by an interrupted campaign goes first.
    crate::vm::script_status("campaign.sh", &["revert", &tree_s])?;
    let zcrx_t = crate::vm::liburing_zcrx_t()?;
    let mut done = mutants::read_results(results)?;
    if a.baseline_only || !done.iter().any(|r| r.verdict == Verdict::Baseline && r.kernel == kind) {
        eprintln!("mutate: baseline boot of {tree_s} (no mutant)");
        let t0 = Instant::now();
        let g = boot_once(&tree, kind, a, &zcrx_t)?
            .map_err(|e| Error::Run(format!("the unmutated kernel did not run the suite: {e}")))?;
        let failing = failure_lines(&g.failures, g.failures.keys());
        if !failing.is_empty() {
            eprintln!("mutate: note: on the unmutated kernel these cases fail (not counted as kills):\n{failing}");
        }
        let base = Record {
            mutant: mutants::Mutant { name: "baseline".into(), area: "-".into(), ..Default::default() },
            verdict: Verdict::Baseline,
            kernel: kind,
            filter: a.filter.clone(),
            killed_by: vec![],
            liburing_killed: None,
            liburing_exit: a.filter.is_empty().then_some(g.liburing_exit),
            executed: g.cases.values().filter(|s| **s != crate::model::Status::Skip).count(),
            duration_s: t0.elapsed().as_secs_f64(),
            when: now_utc(),
            kernel_release: g.kernel_release.clone(),
            crash: None,
            message: failing,
            cases: g.cases,
            gcda_suite: g.gcda_suite,
            gcda_liburing: g.gcda_liburing,
        };
        // Each mutant's build rewrites zcrx.gcno; coverage reads this boot's counters with
        // these notes.
        crate::vm::script_status("campaign.sh", &["save-gcno", &tree_s])?;
        mutants::append(results, &base)?;
        done.push(base);
    }
    if a.baseline_only {
        return Ok(());
    }
    // Mutants are compared with the latest baseline of their kernel kind.
    let base = done
        .iter()
        .rev()
        .find(|r| r.verdict == Verdict::Baseline && r.kernel == kind)
        .cloned()
        .ok_or(Error::Run("no baseline".into()))?;
    let mut ran = 0;
    for (m, patch) in mutants::round_robin(set) {
        // A mutant run on a production kernel runs again on the debug kernel (and the reverse).
        if (!a.only.is_empty() && !a.only.contains(&m.name))
            || done.iter().any(|r| r.mutant.file == m.file && r.kernel == kind)
        {
            continue;
        }
        if a.max > 0 && ran >= a.max {
            break;
        }
        if crate::run::signal::interrupted().is_some() {
            return Err(Error::Run("interrupted".into()));
        }
        ran += 1;
        eprintln!("mutate: {} ({})", m.name, m.file);
        let t0 = Instant::now();
        crate::vm::script_status("campaign.sh", &["apply", &tree_s, &patch.display().to_string()])?;
        let mut outcome = boot_once(&tree, kind, a, &zcrx_t);
        // A TCG guest sometimes panics in early boot whatever the kernel: a crash (not a hang
        // past the cap, which a second boot would only repeat) counts as a kill only when a
        // second boot of the same build crashes too.
        let crashed = match &outcome {
            Ok(Err(e @ (crate::vm::GuestError::Failed(_) | crate::vm::GuestError::Exited { .. }))) => {
                e.to_string().lines().next().map(str::to_string)
            }
            _ => None,
        };
        if let Some(last) = crashed {
            eprintln!("mutate: {}: the guest crashed ({last}); booting the same build once more", m.name);
            outcome = boot_once(&tree, kind, a, &zcrx_t);
        }
        crate::vm::script_status("campaign.sh", &["revert", &tree_s])?;
        if let Ok(Err(crate::vm::GuestError::Interrupted(_))) = outcome {
            // Not a verdict: the mutant runs again when the campaign resumes.
            return Err(Error::Run("interrupted".into()));
        }
        let mut r = Record {
            mutant: m.clone(),
            verdict: Verdict::Survived,
            kernel: kind,
            filter: a.filter.clone(),
            killed_by: vec![],
            liburing_killed: None,
            liburing_exit: None,
            executed: 0,
            duration_s: 0.0,
            when: now_utc(),
            kernel_release: base.kernel_release.clone(),
            crash: None,
            message: String::new(),
            cases: BTreeMap::new(),
            gcda_suite: None,
            gcda_liburing: None,
        };
        match outcome {
            Err(build) => {
                r.verdict = Verdict::BuildFailed;
                r.message = build.to_string();
            }
            Ok(Err(crash)) => {
                r.verdict = Verdict::KilledByCrash;
                r.crash = Some(match crash {
                    crate::vm::GuestError::TimedOut(..) => mutants::Crash::Hang,
                    _ => mutants::Crash::Exited,
                });
                // The cases that failed before the guest hung or died (its `end STATUS ID`
                // lines, against the baseline), then the case it was in (its last `start ID`).
                let ended = crash::ended_statuses(crash.ended());
                r.executed = ended.values().filter(|s| **s != crate::model::Status::Skip).count();
                r.killed_by = crash::crash_killers(&base.cases, &ended, crash.stderr_tail());
                r.message = crash::crash_message(&crash.to_string());
            }
            Ok(Ok(g)) => {
                let unbaselined;
                (r.killed_by, unbaselined) = if a.filter.is_empty() {
                    (mutants::changed(&base.cases, &g.cases), vec![])
                } else {
                    mutants::changed_in_selection(&base.cases, &g.cases)
                };
                r.message = failure_lines(&g.failures, r.killed_by.iter());
                if !unbaselined.is_empty() {
                    let note = format!(
                        "not compared (not in the baseline; run --baseline-only with this filter): {}",
                        unbaselined.join(" ")
                    );
                    eprintln!("mutate: {}: {note}", m.name);
                    r.message = [r.message.as_str(), note.as_str()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("\n");
                }
                r.verdict = if r.killed_by.is_empty() { Verdict::Survived } else { Verdict::Killed };
                r.executed = g.cases.values().filter(|s| **s != crate::model::Status::Skip).count();
                if a.filter.is_empty() {
                    r.liburing_exit = Some(g.liburing_exit);
                    r.liburing_killed = (base.liburing_exit == Some(0)).then_some(g.liburing_exit != 0);
                }
            }
        }
        r.duration_s = t0.elapsed().as_secs_f64();
        eprintln!("mutate: {}: {:?} in {:.0} s", m.name, r.verdict, r.duration_s);
        mutants::append(results, &r)?;
        done.push(r);
    }
    Ok(())
}

/// "id: first line of its message" for these failing cases (at most 20), so a record says why a
/// case failed: a kill that has nothing to do with the mutant shows itself.
fn failure_lines<'a>(failures: &BTreeMap<String, String>, ids: impl Iterator<Item = &'a String>) -> String {
    ids.take(20).filter_map(|id| failures.get(id).map(|m| format!("{id}: {m}"))).collect::<Vec<_>>().join("\n")
}

/// `coverage`: the report from the baseline's gcov data, or which changed lines run.
pub fn coverage(a: &CoverageArgs) -> Result<(), Error> {
    let (src, _) = tree_source(&a.kernel)?;
    let src = src.as_str();
    let results = default_in_reports(&a.results, "mutation.jsonl");
    let records = if a.run.is_some() && !results.exists() { Vec::new() } else { mutants::read_results(&results)? };
    let base = records.iter().rev().find(|r| r.verdict == Verdict::Baseline && r.gcda_suite.is_some());
    // With --run, the suite's counters are that run's (one gcda per boot); else the baseline's.
    let run = match &a.run {
        Some(p) => Some(read_run_gcda(p)?),
        None => None,
    };
    if run.is_none() && base.is_none() {
        return Err(Error::Input(format!("{}: no baseline with gcov data; run `mutate` first", results.display())));
    }
    let tree = crate::vm::script_path("campaign.sh", &["prepare", src])?;
    let tmp = nix::unistd::mkdtemp(&std::env::temp_dir().join("zcrx-cov-XXXXXX"))
        .map_err(|e| Error::Run(format!("mkdtemp: {e}")))?;
    let side = |name: &str, hexed: Option<&str>| -> Result<gcov::FileCoverage, Error> {
        let gcda = tmp.join(format!("{name}.gcda"));
        let json = tmp.join(format!("{name}.json"));
        std::fs::write(&gcda, unhex(hexed.unwrap_or(""))?).map_err(|e| Error::Run(e.to_string()))?;
        crate::vm::script_status(
            "campaign.sh",
            &["gcov", &tree.display().to_string(), &gcda.display().to_string(), &json.display().to_string()],
        )?;
        let text = std::fs::read_to_string(&json).map_err(|e| Error::Run(e.to_string()))?;
        gcov::FileCoverage::from_gcov_json(&text, "io_uring/zcrx.c")
    };
    let sides = || -> Result<(gcov::FileCoverage, gcov::FileCoverage), Error> {
        let us = match &run {
            Some(r) => {
                let mut us = gcov::FileCoverage::default();
                for (i, g) in r.gcda.iter().enumerate() {
                    us.merge(&side(&format!("run{i}"), Some(g))?);
                }
                us
            }
            None => side("suite", base.and_then(|b| b.gcda_suite.as_deref()))?,
        };
        let lib = match base.and_then(|b| b.gcda_liburing.as_deref()) {
            Some(g) => side("liburing", Some(g))?,
            // No liburing measurement: every line unexecuted on its side.
            None => gcov::FileCoverage { lines: us.lines.keys().map(|l| (*l, 0)).collect(), ..Default::default() },
        };
        Ok((us, lib))
    };
    let got = sides();
    let _ = std::fs::remove_dir_all(&tmp);
    let (us, lib) = got?;
    if a.diff.is_some() || a.patch.is_some() {
        let diff = match (&a.diff, &a.patch) {
            (Some(range), _) => crate::vm::script_stdout("campaign.sh", &["diff", src, range])?,
            (_, Some(p)) => std::fs::read_to_string(p).map_err(|e| Error::Input(format!("{}: {e}", p.display())))?,
            _ => unreachable!("checked above"),
        };
        print!("{}", diff_report(&us, &gcov::changed_lines(&diff, "io_uring/zcrx.c")));
        return Ok(());
    }
    let dir = default_in_reports(&a.report_dir, "");
    let reasons = reasons(&crate::paths::repo_root().join("vm/mutants/coverage-reasons.tsv"));
    let source = tree.join("io_uring/zcrx.c");
    let warn = gcov::warn_branch_lines(&std::fs::read_to_string(&source).map_err(|e| Error::Run(e.to_string()))?);
    let (release, when, origin) = match (&run, base) {
        (Some(r), _) => (
            r.release.clone(),
            r.when.clone(),
            format!(
                "the run in `{}` ({} boot(s), the whole run's counters); liburing's side from {}",
                r.label,
                r.gcda.len(),
                if base.is_some() { "the campaign's baseline boot" } else { "nothing (not measured)" }
            ),
        ),
        (None, Some(b)) => (
            b.kernel_release.clone(),
            b.when.clone(),
            "the campaign's baseline boot (gcov counters reset before each side)".to_string(),
        ),
        (None, None) => unreachable!("checked above"),
    };
    let c = render::coverage_summary(&us, &lib, &warn, &release, &when);
    write(&dir.join("coverage.md"), &render::coverage_md(&c, &reasons, &origin))?;
    write(&dir.join("coverage.json"), &serde_json::to_string_pretty(&c).map_err(|e| Error::Run(e.to_string()))?)?;
    let source = source.display().to_string();
    write(&dir.join("coverage-suite.info"), &us.lcov("zcrx-conform", &source))?;
    write(&dir.join("coverage-liburing.info"), &lib.lcov("liburing-zcrx.t", &source))?;
    eprintln!(
        "coverage: zcrx.c lines executed: us {:.1}% ({}/{}; outside WARN_ON branches {:.1}%, {}/{}), liburing {:.1}%; reports in {}",
        c.suite_pct,
        c.suite_lines_hit,
        c.lines_found,
        c.suite_pct_outside_warn,
        c.suite_hit_outside_warn,
        c.lines_outside_warn,
        c.liburing_pct,
        dir.display()
    );
    Ok(())
}

/// A run's gcov counters of zcrx.c (`report.json`'s `zcrx_gcda`, one per boot).
struct RunGcda {
    label: String,
    release: String,
    when: String,
    gcda: Vec<String>,
}

fn read_run_gcda(p: &Path) -> Result<RunGcda, Error> {
    let file = if p.is_dir() { p.join("report.json") } else { p.to_path_buf() };
    let text = std::fs::read_to_string(&file).map_err(|e| Error::Input(format!("{}: {e}", file.display())))?;
    let runs =
        crate::report::parse_json(&text, &file.display().to_string()).map_err(|e| Error::Input(e.to_string()))?.runs;
    let r = runs.into_iter().find(|r| !r.zcrx_gcda.is_empty()).ok_or_else(|| {
        Error::Input(format!(
            "{}: no run with zcrx.c gcov counters (a kernel built with gcov on zcrx.o)",
            file.display()
        ))
    })?;
    Ok(RunGcda {
        label: r.target.clone(),
        release: r.probe.kernel_release.clone(),
        when: r.finished.clone().unwrap_or_default(),
        gcda: r.zcrx_gcda,
    })
}

/// `function<TAB>why` lines: why the suite cannot reach a function's uncovered lines.
fn reasons(p: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(f, w)| (f.trim().to_string(), w.trim().to_string()))
        .collect()
}

/// Which changed lines are executable, and which of those the suite executes.
pub fn diff_report(us: &gcov::FileCoverage, changed: &[u32]) -> String {
    let exec: Vec<u32> = changed.iter().copied().filter(|l| us.lines.contains_key(l)).collect();
    let hit: Vec<u32> = exec.iter().copied().filter(|l| us.lines.get(l).is_some_and(|c| *c > 0)).collect();
    let mut o = format!(
        "io_uring/zcrx.c: {} changed line(s), {} executable, {} executed by the suite\n",
        changed.len(),
        exec.len(),
        hit.len()
    );
    for l in exec.iter().filter(|l| !hit.contains(l)) {
        let f = us.function_of(*l).map(|f| f.name.as_str()).unwrap_or("?");
        o.push_str(&format!("  not executed: line {l} ({f})\n"));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 1, 0xab]), "0001ab");
        assert_eq!(unhex("0001ab").ok(), Some(vec![0, 1, 0xab]));
        assert!(unhex("abc").is_err() && unhex("zz").is_err());
    }

    #[test]
    fn diff_report_names_unexecuted_lines() {
        let mut c = gcov::FileCoverage::default();
        c.lines.insert(10, 3);
        c.lines.insert(11, 0);
        c.functions.push(gcov::Function { name: "f".into(), start: 9, end: 12, count: 1 });
        let r = diff_report(&c, &[10, 11, 12]);
        assert!(r.starts_with("io_uring/zcrx.c: 3 changed line(s), 2 executable, 1 executed"), "{r}");
        assert!(r.contains("not executed: line 11 (f)"), "{r}");
    }
}
