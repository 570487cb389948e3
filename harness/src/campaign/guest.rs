//! Inside the VM: one campaign measurement. The suite runs first, then liburing's zcrx.t, each
//! with the kernel's gcov counters reset before it, so the counters read after each are that
//! side's coverage of io_uring/zcrx.c (when the kernel was built with `--gcov`).

use std::collections::BTreeMap;

use super::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::model::{Probe, Status};
use crate::run::{self, RunOpts};

const GCOV_DIR: &str = "/sys/kernel/debug/gcov";

/// What one boot measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GuestResult {
    pub kernel_release: String,
    /// Every selected case's status, by id.
    pub cases: BTreeMap<String, Status>,
    /// The first line of each failing case's message.
    pub failures: BTreeMap<String, String>,
    pub suite_s: f64,
    /// zcrx.t's exit code (-1: it could not be started or was killed).
    pub liburing_exit: i32,
    pub liburing_s: f64,
    /// io_uring/zcrx.gcda after the suite and after zcrx.t, hex (absent without gcov).
    pub gcda_suite: Option<String>,
    pub gcda_liburing: Option<String>,
}

/// debugfs's gcov directory, mounting debugfs when it is not yet.
fn gcov_dir() -> Option<PathBuf> {
    let d = Path::new(GCOV_DIR);
    if !d.exists() {
        let _ = nix::mount::mount(
            Some("debugfs"),
            "/sys/kernel/debug",
            Some("debugfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
    d.is_dir().then(|| d.to_path_buf())
}

fn gcov_reset(dir: &Path) {
    let _ = std::fs::write(dir.join("reset"), "1");
}

/// The first regular file named zcrx.gcda under `dir` (its path mirrors the build tree's).
fn find_gcda(dir: &Path) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() && e.file_name() == "zcrx.gcda" && p.parent().is_some_and(|q| q.ends_with("io_uring"))
            {
                return Some(p);
            }
        }
    }
    None
}

fn read_gcda(dir: Option<&Path>) -> Option<String> {
    let bytes = std::fs::read(find_gcda(dir?)?).ok()?;
    Some(super::hex(&bytes))
}

/// Runs the catalogue (or the cases `filter` selects) on `topologies`, each case for at most
/// `case_cap` seconds, then `zcrx_t` (not with a filter), and returns what each did.
pub fn measure(
    zcrx_t: &Path,
    topologies: &[String],
    jobs: usize,
    filter: &[String],
    case_cap: f64,
) -> Result<GuestResult, Error> {
    let mut cases = crate::case::load_all(&[crate::paths::default_case_dir()])
        .map_err(|e| Error::Run(format!("campaign: {} case file error(s)", e.len())))?;
    // A mutant that stalls the data path would hold each data case for its whole timeout
    // (up to minutes) and the boot past the campaign's cap, losing every case's result: each
    // case gets at most `case_cap` here (`mutate --case-cap`, 45 s by default: the whole
    // catalogue takes about a minute unmutated on a production kernel).
    for c in &mut cases {
        c.def.timeout = Some(c.def.timeout.unwrap_or(case_cap).min(case_cap));
    }
    let probe = Probe::run();
    let gcov = gcov_dir();
    let mut opts = RunOpts::quiet_builtin(filter, jobs);
    opts.topologies = topologies.to_vec();
    // A guest that hangs whole names the case it was in: the host keeps its last lines.
    opts.announce = true;
    if let Some(d) = &gcov {
        gcov_reset(d);
    }
    let t0 = Instant::now();
    let report = run::run(&cases, &opts, &probe, "campaign");
    let suite_s = t0.elapsed().as_secs_f64();
    let gcda_suite = read_gcda(gcov.as_deref());
    let mut r = GuestResult {
        kernel_release: probe.kernel_release.clone(),
        suite_s,
        gcda_suite,
        liburing_exit: -1,
        ..Default::default()
    };
    for c in &report.cases {
        r.cases.insert(c.id.clone(), c.status);
        if c.status == Status::Fail || c.status == Status::Xpass {
            r.failures.insert(c.id.clone(), c.message.lines().next().unwrap_or("").to_string());
        }
    }
    if !filter.is_empty() {
        // A selection (a debug campaign's expected killers): zcrx.t is measured by the
        // catalogue campaigns, and would cost a debug boot minutes.
        return Ok(r);
    }
    if let Some(d) = &gcov {
        gcov_reset(d);
    }
    (r.liburing_exit, r.liburing_s) = crate::bench::suite::run_zcrx_t(zcrx_t);
    r.gcda_liburing = read_gcda(gcov.as_deref());
    Ok(r)
}
