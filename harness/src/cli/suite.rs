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
            return Err(Error::bad_input(format!("topology `{t}`: {e} (known: {})", known.join(", "))));
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
    /// No `--topology` was given: on a kernel booted in a VM, run every topology that needs
    /// no hardware ([`NO_HARDWARE`]; [`SECOND_BOOT`] in a boot of its own).
    pub everywhere: bool,
}

/// The topologies one boot provides when a run names none: everything that needs no
/// hardware and can be loaded together.
/// `nic-netdevsim` comes before `netdevsim-zcrx`: a case that can run on both runs on the
/// first the run provides, and on the real-NIC path where it can.
pub(super) const NO_HARDWARE: &[&str] = &["host", "nodev", "nic-netdevsim", "netdevsim-zcrx", "veth"];
/// Stock netdevsim cannot be loaded beside the zcrx-capable one: its cases get a boot of their own.
pub(super) const SECOND_BOOT: &[&str] = &["netdevsim"];

impl Suite {
    /// Checks the run arguments and loads the cases.
    pub fn prepare(s: &SelectArgs, vm: &VmArgs, stream: bool, start_at: usize) -> Result<Suite, Error> {
        check_topologies(&s.topology.names())?;
        let opts = RunOpts {
            topologies: s.topology.names(),
            selection: Selection {
                filter: s.filter.clone(),
                exact: s.exact,
                shard: s.shard.as_deref().map(run::parse_shard).transpose()?,
                fixes: s.fixes.iter().map(|f| run::parse_fix_prefix(f)).collect::<Result<_, _>>()?,
                cve: s.cve.iter().map(|c| run::parse_cve(c)).collect::<Result<_, _>>()?,
                repeat: s.repeat,
            },
            timeout: s.timeout.timeout,
            stream,
            quiet: s.quiet,
            start_at,
            self_check: s.self_check,
            jobs: s.jobs as usize,
            announce: false,
        };
        let paths = case_paths(&s.paths);
        let everywhere = s.topology.topology.is_empty();
        Ok(Suite { cases: load_cases(&paths)?, opts, paths, vm: vm.clone(), everywhere })
    }

    /// One case by its exact id, quietly, on the given topologies.
    pub fn one_case(id: &str, topology: &[String], timeout: f64) -> Result<Suite, Error> {
        check_topologies(topology)?;
        let opts = RunOpts {
            topologies: topology.to_vec(),
            selection: Selection { filter: vec![id.to_string()], exact: true, ..Default::default() },
            timeout,
            stream: false,
            quiet: true,
            start_at: 0,
            self_check: false,
            jobs: 1,
            announce: false,
        };
        let paths = case_paths(&[]);
        let cases = load_cases(&paths)?;
        if !cases.iter().any(|c| c.id == id) {
            let id = crate::report::escape::printable(id);
            return Err(Error::bad_input(format!("no case with id `{id}` (see `zcrx-conform run --list`)")));
        }
        Ok(Suite { cases, opts, paths, vm: VmArgs::default(), everywhere: false })
    }

    /// Runs the suite on one kernel: the host's, or one booted in a VM.
    pub fn run_on(&self, k: &vm::KernelSpec) -> Result<RunReport, Error> {
        if matches!(k, vm::KernelSpec::Host) {
            let mut rep = run::run(&self.cases, &self.opts, &Probe::run(), "host");
            vm::symbolize(k, None, &mut rep);
            return Ok(rep);
        }
        if !self.everywhere {
            return self.boot(k, &self.opts, &k.to_string());
        }
        let mut first = self.opts.clone();
        first.topologies = NO_HARDWARE.iter().map(|t| t.to_string()).collect();
        let rep = self.boot(k, &first, &k.to_string())?;
        say_what_is_left(k, &rep);
        Ok(rep)
    }

    /// [`Self::run_on`], and with no `--topology` on a kernel booted in a VM, a second boot for
    /// the cases that name stock netdevsim (it cannot be loaded beside netdevsim-zcrx): its own
    /// run in the report, labelled `<kernel> on stock netdevsim`, since those cases ran on
    /// another topology in the first.
    /// Each run is stamped ([`Self::stamp`]) with its own selection.
    pub fn run_everywhere(&self, k: &vm::KernelSpec) -> Result<Vec<RunReport>, Error> {
        let started = crate::report::time::now();
        let mut first = self.run_on(k)?;
        self.stamp(&mut first, started);
        if matches!(k, vm::KernelSpec::Host) || !self.everywhere || first.aborted.is_some() {
            return Ok(vec![first]);
        }
        let ids: Vec<String> = run::select(&self.cases, &self.opts.selection)
            .into_iter()
            .filter(|c| c.def.requires.topology.iter().any(|t| SECOND_BOOT.contains(&t.as_str())))
            .map(|c| c.id.clone())
            .collect();
        if ids.is_empty() {
            return Ok(vec![first]);
        }
        eprintln!(
            "{k}: {} case(s) name stock netdevsim, which cannot be loaded beside netdevsim-zcrx: a second boot",
            ids.len()
        );
        let mut opts = self.opts.clone();
        opts.topologies = SECOND_BOOT.iter().map(|t| t.to_string()).collect();
        opts.selection = Selection { filter: ids, exact: true, repeat: opts.selection.repeat, ..Default::default() };
        opts.start_at = 0;
        let started = crate::report::time::now();
        let mut second = self.boot(k, &opts, &format!("{k} on stock netdevsim"))?;
        stamp(&self.cases, &opts, &mut second, started);
        Ok(vec![first, second])
    }

    /// One boot of `k` running the suite with `opts`; `label` names the run in reports.
    fn boot(&self, k: &vm::KernelSpec, opts: &RunOpts, label: &str) -> Result<RunReport, Error> {
        let t0 = std::time::Instant::now();
        vm::provision()?;
        let kernel = vm::resolve(k)?;
        let env = vm::guest_tools(&kernel, &opts.topologies)?;
        let prep = t0.elapsed().as_secs_f64();
        let vopts = vm::VmOpts {
            paths: self.paths.clone(),
            run: opts.clone(),
            memory: self.vm.memory.clone().unwrap_or_else(|| "2G".into()),
            cpus: self.vm.cpus.unwrap_or(2),
            env,
        };
        let mut rep = vm::run_in_vm(label, &kernel, &vopts)?;
        rep.timings.provision_and_fetch_s = Some(prep);
        vm::symbolize(k, Some(&kernel), &mut rep);
        eprintln!(
            "{label}: set-up {prep:.1} s, VM boot {:.1} s ({} boot(s)), suite {:.1} s, end to end {:.1} s",
            rep.timings.vm_boot_s.unwrap_or(0.0),
            rep.timings.vm_boots.unwrap_or(0),
            rep.timings.suite_s.unwrap_or(0.0),
            prep + rep.duration_s
        );
        Ok(rep)
    }

    /// What the runner does not know about its report: when it ran, where, which shard, and
    /// the selected cases that did not run (a run stopped early).
    pub fn stamp(&self, rep: &mut RunReport, started: String) {
        stamp(&self.cases, &self.opts, rep, started)
    }
}

/// [`Suite::stamp`] for a run of `cases` with `opts`.
fn stamp(cases: &[Case], opts: &RunOpts, rep: &mut RunReport, started: String) {
    rep.started = Some(started);
    rep.finished = Some(crate::report::time::now());
    rep.hostname = hostname();
    rep.shard = opts.selection.shard.map(|(k, n)| Shard { k, n });
    let done: std::collections::HashSet<&str> = rep.cases.iter().map(|c| c.id.as_str()).collect();
    rep.not_run = run::select(cases, &opts.selection)
        .into_iter()
        .skip(opts.start_at)
        .filter(|c| !done.contains(c.id.as_str()))
        .map(|c| c.id.clone())
        .collect();
    if !rep.not_run.is_empty() && rep.aborted.is_none() {
        rep.aborted = Some(format!("{} selected case(s) did not run", rep.not_run.len()));
    }
}

/// The skip reasons of a run's cases, counted: what a run with every no-hardware topology
/// still could not do (a real NIC, another kernel's features).
fn say_what_is_left(k: &vm::KernelSpec, rep: &RunReport) {
    let mut why: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for c in rep.cases.iter().filter(|c| c.status == crate::model::Status::Skip) {
        *why.entry(c.message.as_str()).or_default() += 1;
    }
    if why.is_empty() {
        return;
    }
    let n: usize = why.values().sum();
    eprintln!("{k}: {n} case(s) skipped on every topology that needs no hardware:");
    let mut rows: Vec<(&str, usize)> = why.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (m, count) in rows {
        eprintln!("  {count:4}  {}", crate::report::escape::printable(m));
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
