//! What the commands that run cases share (`run`, `matrix`, `report-bug`, `bisect`): the
//! cases and run options read once from the arguments ([`Suite::prepare`]), one run of them
//! on a kernel ([`Suite::run_on`]), and what the runner does not know about its report
//! ([`Suite::stamp`]).

use std::path::PathBuf;

use super::{SelectArgs, VmArgs};
use crate::case::{self, Case};
use crate::error::Error;
use crate::model::{Probe, RunReport, Shard};
use crate::run::{self, RunOpts, Selection};
use crate::{topology, vm};

/// The case files or directories given, or the repository's cases/ (the one place that
/// default is applied).
pub(super) fn case_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![crate::paths::default_case_dir()]
    } else {
        paths.to_vec()
    }
}

/// The case files of `paths` (default: the repository's cases/), loaded and expanded once.
pub(super) fn load_cases(paths: &[PathBuf]) -> Result<Vec<Case>, Error> {
    case::load_all(&case_paths(paths)).map_err(|errs| Error::Load(errs.iter().map(|e| e.to_string()).collect()))
}

/// Every topology named is built in or a topology file that loads.
fn check_topologies(names: &[String]) -> Result<(), Error> {
    for t in names {
        if topology::Kind::builtin_named(t).is_some() {
            continue;
        }
        if let Err(e) = topology::load(t) {
            let known: Vec<String> = topology::Kind::BUILTIN
                .iter()
                .map(|k| k.to_string())
                .chain(topology::available().into_keys())
                .collect();
            return Err(format!("topology `{t}`: {e} (known: {})", known.join(", ")).into());
        }
    }
    Ok(())
}

/// The cases of a run and how it runs them, read once from the arguments.
pub(super) struct Suite {
    pub cases: Vec<Case>,
    pub opts: RunOpts,
    /// The case files or directories (the default applied): the guest runner reads them too.
    pub paths: Vec<PathBuf>,
    pub vm: VmArgs,
}

impl Suite {
    /// Checks the run arguments and loads the cases.
    pub fn prepare(s: &SelectArgs, vm: &VmArgs, stream: bool, start_at: usize) -> Result<Suite, Error> {
        check_topologies(&s.topology.topology)?;
        let opts = RunOpts {
            topologies: s.topology.topology.clone(),
            selection: Selection { filter: s.filter.clone(), exact: s.exact, shard: s.shard },
            timeout: s.timeout.timeout,
            stream,
            quiet: s.quiet,
            start_at,
            self_check: s.self_check,
            jobs: s.jobs as usize,
        };
        let paths = case_paths(&s.paths);
        Ok(Suite { cases: load_cases(&paths)?, opts, paths, vm: vm.clone() })
    }

    /// One case by its exact id, quietly, on the given topologies.
    pub fn one_case(id: &str, topology: &[String], timeout: f64) -> Result<Suite, Error> {
        check_topologies(topology)?;
        let opts = RunOpts {
            topologies: topology.to_vec(),
            selection: Selection { filter: vec![id.to_string()], exact: true, shard: None },
            timeout,
            stream: false,
            quiet: true,
            start_at: 0,
            self_check: false,
            jobs: 1,
        };
        let paths = case_paths(&[]);
        let cases = load_cases(&paths)?;
        if !cases.iter().any(|c| c.id == id) {
            let id = crate::report::escape::printable(id);
            return Err(format!("no case with id `{id}` (see `zcrx-conform run --list`)").into());
        }
        Ok(Suite { cases, opts, paths, vm: VmArgs::default() })
    }

    /// Runs the suite on one kernel: the host's, or one booted in a VM.
    pub fn run_on(&self, k: &vm::KernelSpec) -> Result<RunReport, String> {
        if matches!(k, vm::KernelSpec::Host) {
            return Ok(run::run(&self.cases, &self.opts, &Probe::run(), "host"));
        }
        let t0 = std::time::Instant::now();
        vm::provision()?;
        let kernel = vm::resolve(k)?;
        let env = vm::guest_tools(&kernel, &self.opts.topologies)?;
        let prep = t0.elapsed().as_secs_f64();
        let vopts = vm::VmOpts {
            paths: self.paths.clone(),
            run: self.opts.clone(),
            memory: self.vm.memory.clone().unwrap_or_else(|| "2G".into()),
            cpus: self.vm.cpus.unwrap_or(2),
            env,
        };
        let label = k.to_string();
        let mut rep = vm::run_in_vm(&label, &kernel, &vopts)?;
        rep.timings.insert(0, ("provision_and_fetch_s".into(), prep));
        eprintln!(
            "{label}: set-up {prep:.1} s, VM boot {:.1} s ({} boot(s)), suite {:.1} s, end to end {:.1} s",
            rep.timing("vm_boot_s"),
            rep.timing("vm_boots"),
            rep.timing("suite_s"),
            prep + rep.duration_s
        );
        Ok(rep)
    }

    /// What the runner does not know about its report: when it ran, where, which shard, and
    /// the selected cases that did not run (a run stopped early).
    pub fn stamp(&self, rep: &mut RunReport, started: String) {
        let opts = &self.opts;
        rep.started = Some(started);
        rep.finished = Some(crate::report::time::now());
        rep.hostname = hostname();
        rep.shard = opts.selection.shard.map(|(k, n)| Shard { k, n });
        let done: std::collections::HashSet<&str> = rep.cases.iter().map(|c| c.id.as_str()).collect();
        rep.not_run = run::select(&self.cases, &opts.selection)
            .into_iter()
            .skip(opts.start_at)
            .filter(|c| !done.contains(c.id.as_str()))
            .map(|c| c.id.clone())
            .collect();
        if !rep.not_run.is_empty() && rep.aborted.is_none() {
            rep.aborted = Some(format!("{} selected case(s) did not run", rep.not_run.len()));
        }
    }
}

/// This machine's name.
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|h| !h.is_empty())
}
