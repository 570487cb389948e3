//! `bench --kernel SPEC --suite`: in one VM boot, three warm runs each of our comparable subset
//! (the cases `reports/liburing-comparison.md` maps to liburing's 47 checks), the whole
//! catalogue, and liburing's own `test/zcrx.t` (built by `vm/liburing.sh`); medians, per-case
//! p50/p95, the runner's peak RSS, and the ratio of our per-case time on the subset to
//! liburing's per-check time. Field names of the JSON are stable.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Error;
use crate::case::Case;
use crate::model::{Probe, Status};
use crate::run::{self, RunOpts};

/// The `--filter`s of the comparable subset (reports/liburing-comparison.md, "Commands").
pub const COMPARABLE: &[&str] = &[
    "registration.nodev_ok",
    "registration.nodev_rq_rounding",
    "registration.rq_entries_too_many",
    "region.",
    "area.checks",
    "area.pointer_fault",
    "registration.nodev_rx_buf_len",
    "recv.no_ifq",
    "recv.socket_kinds",
    "drain.ring_exit_in_flight",
    "import.export_without_zcrx",
    "import.errors",
    "import.export_readonly",
    "import.export_import",
    "import.exporter_ring_closed",
    "ctrl.errors",
    "rq.flush_returns",
    "drain.sizes",
    "drain.area_exhausted",
    "rq.wraparound",
    "rq.bad_entry_stops_flush",
    "rq.overfill",
    "deviations.invalid_rqe_silent",
];

/// liburing 2.15's `zcrx.t` makes this many checks (reports/liburing-comparison.md).
pub const LIBURING_CHECKS: usize = 47;

/// Warm runs of each measurement.
const RUNS: usize = 3;

/// One set of cases, measured RUNS times.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CasesTiming {
    /// Cases selected and executed (not skipped) in a run.
    pub cases: usize,
    pub executed: usize,
    /// Median over the runs of the runner's wall time (planning, forks, kernel log, reports in
    /// memory; not loading the files).
    pub wall_s: f64,
    /// wall_s / executed.
    pub per_case_s: f64,
    /// Per executed case, over all runs.
    pub p50_case_s: f64,
    pub p95_case_s: f64,
    /// Every run's wall time.
    pub walls_s: Vec<f64>,
    /// Cases that did not pass or xfail in some run (they make the timing suspect).
    pub not_passing: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SuiteSide {
    /// The comparable subset.
    #[serde(flatten)]
    pub subset: CasesTiming,
    pub filters: Vec<String>,
    pub catalogue: CasesTiming,
    pub catalogue_per_case_s: f64,
    /// The runner's peak resident set (getrusage, children excluded), MiB.
    pub runner_peak_rss_mib: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LiburingSide {
    pub path: String,
    pub checks: usize,
    /// Median wall time of `zcrx.t` over the runs.
    pub wall_s: f64,
    pub walls_s: Vec<f64>,
    pub per_check_s: f64,
    /// Exit codes of the runs (0 = all passed).
    pub exit_codes: Vec<i32>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SuiteBench {
    pub target: String,
    pub kernel_release: String,
    pub runs: usize,
    /// Our cases run at the same time (`run -j`); liburing's checks run one after another.
    pub jobs: usize,
    pub suite: SuiteSide,
    pub liburing: LiburingSide,
    /// Our seconds per case on the subset / liburing's seconds per check, the median of
    /// [`ratios`](Self::ratios): at most 1.0 means a case costs no more than one of liburing's
    /// checks.
    pub ratio: f64,
    /// Each run of the subset against the run of zcrx.t right after it (`paired`).
    #[serde(default)]
    pub ratios: Vec<f64>,
    /// The comparable subset once more with one case at a time (`run -j 1`), paired the same way
    /// with zcrx.t (whose runs `liburing` reports), and the median of its ratios.
    pub subset_j1: CasesTiming,
    pub ratio_j1: f64,
    #[serde(default)]
    pub ratios_j1: Vec<f64>,
    /// Wall time of the whole VM (boot, measurements, poweroff).
    pub vm_wall_s: f64,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        0.0
    } else {
        s[s.len() / 2]
    }
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return 0.0;
    }
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn measure(cases: &[Case], filters: &[String], probe: &Probe, jobs: usize) -> CasesTiming {
    let mut t = CasesTiming::default();
    let mut durations = Vec::new();
    for _ in 0..RUNS {
        measure_once(cases, filters, probe, jobs, &mut t, &mut durations);
    }
    summarize(&mut t, &durations);
    t
}

/// One run of the selected cases into `t` (its wall time, cases, cases that did not pass) and
/// `durations` (each executed case's); returns the run's seconds per executed case.
fn measure_once(
    cases: &[Case],
    filters: &[String],
    probe: &Probe,
    jobs: usize,
    t: &mut CasesTiming,
    durations: &mut Vec<f64>,
) -> f64 {
    let opts = RunOpts::quiet_builtin(filters, jobs);
    let r = run::run(cases, &opts, probe, "bench");
    t.cases = r.cases.len();
    let executed: Vec<_> = r.cases.iter().filter(|c| c.status != Status::Skip).collect();
    t.executed = executed.len();
    durations.extend(executed.iter().map(|c| c.duration_s));
    for c in executed.iter().filter(|c| !matches!(c.status, Status::Pass | Status::Xfail)) {
        if !t.not_passing.contains(&c.id) {
            t.not_passing.push(c.id.clone());
        }
    }
    t.walls_s.push(r.duration_s);
    r.duration_s / t.executed.max(1) as f64
}

fn summarize(t: &mut CasesTiming, durations: &[f64]) {
    t.wall_s = median(&t.walls_s);
    t.per_case_s = t.wall_s / t.executed.max(1) as f64;
    t.p50_case_s = percentile(durations, 0.5);
    t.p95_case_s = percentile(durations, 0.95);
}

/// The subset at `jobs` and liburing's zcrx.t in turn, RUNS times: each ratio compares two
/// runs seconds apart, so a change of the machine's load during the boot (under TCG the guest's
/// vCPUs share the host's cores) moves both sides of it rather than one. Returns the subset's
/// timing, liburing's, and each pair's ratio (our seconds per case / liburing's per check).
fn paired(
    cases: &[Case],
    filters: &[String],
    probe: &Probe,
    jobs: usize,
    zcrx_t: &Path,
) -> (CasesTiming, LiburingSide, Vec<f64>) {
    let mut t = CasesTiming::default();
    let mut durations = Vec::new();
    let mut lib = LiburingSide { path: zcrx_t.display().to_string(), checks: LIBURING_CHECKS, ..Default::default() };
    let mut ratios = Vec::new();
    for _ in 0..RUNS {
        let ours = measure_once(cases, filters, probe, jobs, &mut t, &mut durations);
        let (code, wall) = run_zcrx_t(zcrx_t);
        lib.walls_s.push(wall);
        lib.exit_codes.push(code);
        ratios.push(ours / (wall / LIBURING_CHECKS as f64).max(1e-9));
    }
    summarize(&mut t, &durations);
    lib.wall_s = median(&lib.walls_s);
    lib.per_check_s = lib.wall_s / LIBURING_CHECKS as f64;
    (t, lib, ratios)
}

/// Runs liburing's zcrx.t once (from its own directory, output discarded): its exit code (-1 when
/// it could not run or was killed) and wall time.
pub(crate) fn run_zcrx_t(zcrx_t: &Path) -> (i32, f64) {
    let t0 = Instant::now();
    let st = Command::new(zcrx_t)
        .current_dir(zcrx_t.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    (st.ok().and_then(|s| s.code()).unwrap_or(-1), t0.elapsed().as_secs_f64())
}

fn fmt_ratios(r: &[f64]) -> String {
    format!("[{}]", r.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", "))
}

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    ru.ru_maxrss as f64 / 1024.0
}

/// Inside the guest: every measurement, as one JSON document.
pub fn guest(zcrx_t: &Path, jobs: usize) -> Result<SuiteBench, Error> {
    let cases = crate::case::load_all(&[crate::paths::default_case_dir()])
        .map_err(|e| Error::Args(format!("bench: {} case file error(s)", e.len())))?;
    let probe = Probe::run();
    let filters: Vec<String> = COMPARABLE.iter().map(|s| s.to_string()).collect();
    // One unmeasured pass warms the page cache and the kernel's io_uring paths.
    let _ = measure(&cases, &filters, &probe, jobs);
    let (subset, _, ratios) = paired(&cases, &filters, &probe, jobs, zcrx_t);
    let catalogue = measure(&cases, &[], &probe, jobs);
    let (subset_j1, lib, ratios_j1) = paired(&cases, &filters, &probe, 1, zcrx_t);
    let (ratio, ratio_j1) = (median(&ratios), median(&ratios_j1));
    Ok(SuiteBench {
        target: String::new(),
        kernel_release: probe.kernel_release.clone(),
        runs: RUNS,
        jobs,
        suite: SuiteSide {
            catalogue_per_case_s: catalogue.per_case_s,
            subset,
            filters,
            catalogue,
            runner_peak_rss_mib: peak_rss_mib(),
        },
        liburing: lib,
        ratio,
        ratios,
        subset_j1,
        ratio_j1,
        ratios_j1,
        vm_wall_s: 0.0,
    })
}

/// On the host: builds zcrx.t, boots the kernel once and runs [`guest`] there.
pub fn in_vm(ks: &crate::vm::KernelSpec, jobs: usize, vm_timeout: Duration) -> Result<SuiteBench, Error> {
    if matches!(ks, crate::vm::KernelSpec::Host) {
        return Err(Error::Args(
            "bench --suite needs --kernel SPEC (liburing and the catalogue run in one VM boot)".into(),
        ));
    }
    let spec = ks.to_string();
    crate::vm::provision()?;
    let kernel = crate::vm::resolve(ks)?;
    let zcrx_t: PathBuf = crate::vm::liburing_zcrx_t()?;
    let args: Vec<String> =
        vec!["bench".into(), "--jobs".into(), jobs.to_string(), "--suite-guest".into(), zcrx_t.display().to_string()];
    let env: Vec<(String, String)> = vec![];
    eprintln!("bench: booting {spec} for the suite and liburing's zcrx.t ({})", kernel.display());
    let t0 = Instant::now();
    let out = crate::vm::run_command_in_vm(&kernel, &args, &env, vm_timeout)?;
    let mut b: SuiteBench = super::guest_result(&out)?;
    b.target = spec;
    b.vm_wall_s = t0.elapsed().as_secs_f64();
    Ok(b)
}

/// A few lines for people.
pub fn render(b: &SuiteBench) -> String {
    let s = &b.suite;
    let mut out = format!(
        "suite (-j {}) vs liburing zcrx.t on {} ({}), {} warm runs each\n",
        b.jobs, b.target, b.kernel_release, b.runs
    );
    out.push_str(&format!(
        "  ours, comparable subset: {} executed, {:.2} s, {:.4} s/case (p50 {:.4}, p95 {:.4})\n",
        s.subset.executed, s.subset.wall_s, s.subset.per_case_s, s.subset.p50_case_s, s.subset.p95_case_s
    ));
    out.push_str(&format!(
        "  ours, whole catalogue:   {} executed, {:.2} s, {:.4} s/case (p50 {:.4}, p95 {:.4})\n",
        s.catalogue.executed,
        s.catalogue.wall_s,
        s.catalogue.per_case_s,
        s.catalogue.p50_case_s,
        s.catalogue.p95_case_s
    ));
    out.push_str(&format!(
        "  liburing zcrx.t:         {} checks, {:.2} s, {:.4} s/check (exit {:?})\n",
        b.liburing.checks, b.liburing.wall_s, b.liburing.per_check_s, b.liburing.exit_codes
    ));
    out.push_str(&format!(
        "  ratio (our s/case on the subset / liburing s/check, median of {} runs each paired with a zcrx.t run): {:.2} at -j {} {}, {:.2} at -j 1 {} ({:.4} s/case)\n",
        b.ratios_j1.len(),
        b.ratio,
        b.jobs,
        fmt_ratios(&b.ratios),
        b.ratio_j1,
        fmt_ratios(&b.ratios_j1),
        b.subset_j1.per_case_s
    ));
    out.push_str(&format!("  runner peak RSS: {:.1} MiB; VM wall {:.1} s\n", s.runner_peak_rss_mib, b.vm_wall_s));
    if !s.subset.not_passing.is_empty() || !s.catalogue.not_passing.is_empty() {
        out.push_str(&format!(
            "  note: not passing in some run: {:?} {:?}\n",
            s.subset.not_passing, s.catalogue.not_passing
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_comparable_filter_selects_a_case() {
        let cases = crate::case::load_all(&[crate::paths::default_case_dir()]).expect("cases load");
        for f in COMPARABLE {
            assert!(cases.iter().any(|c| c.id.contains(f)), "{f} selects nothing");
        }
    }

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95), 5.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
