//! Runs cases: selects and plans them against the probed kernel ([`plan`]), brings up the
//! run's topologies, executes each case in a forked child with a timeout (`child`), reads
//! the kernel log around it (`kmsg`), turns the outcome into a status ([`verdict`]) and
//! reports progress as [`Event`]s (`progress`).

mod affinity;
pub mod agent;
pub(crate) mod child;
mod error;
mod leaks;
pub mod plan;
pub(crate) mod progress;
mod schedule;
pub(crate) mod selfcheck;
pub(crate) mod signal;
mod splats;
pub mod verdict;

use std::time::Instant;

use crate::case::Case;
use crate::model::event::Event;
use crate::model::{CaseReport, CaseResult, Probe, RunReport, SkipReason};
use crate::topology;

pub use error::Error;
pub use plan::{parse_cve, parse_fix_prefix, parse_shard, parse_timeout, select, Selection, MAX_REPEAT};

#[derive(Clone, Debug)]
pub struct RunOpts {
    pub topologies: Vec<String>,
    pub selection: Selection,
    /// Seconds before a case is killed (a case's own `timeout` wins).
    pub timeout: f64,
    /// Emit encoded events on stdout (a runner inside a VM).
    pub stream: bool,
    pub quiet: bool,
    /// Skip this many selected cases (a VM booted again after a crash resumes here).
    pub start_at: usize,
    /// Per-assertion self-check: run each passing case again once per assertion with only
    /// that one inverted (`selfcheck`).
    pub self_check: bool,
    /// Cases run at the same time (at least 1); cases holding an exclusive resource never
    /// overlap one another.
    pub jobs: usize,
    /// Print `start ID` on stderr as each case starts, quiet or not: a guest that hangs whole
    /// (no case timeout can fire) then names the case it was in, in its console's last lines.
    pub announce: bool,
}

impl RunOpts {
    /// A quiet run of the cases `filter` selects on the built-in topologies (host, nodev) with
    /// the default timeout: what `bench` measures.
    pub fn quiet_builtin(filter: &[String], jobs: usize) -> RunOpts {
        RunOpts {
            topologies: topology::DEFAULT_RUN.iter().map(|s| s.to_string()).collect(),
            selection: Selection { filter: filter.to_vec(), ..Default::default() },
            timeout: 30.0,
            stream: false,
            quiet: true,
            start_at: 0,
            self_check: false,
            jobs,
            announce: false,
        }
    }
}

/// A case's report before it ran: its identity from the case file.
pub(crate) fn blank_report(case: &Case) -> CaseReport {
    let d = &case.def;
    CaseReport {
        file: case.file.display().to_string(),
        area: d.area.name().to_string(),
        about: d.about.clone(),
        spec: d.spec.clone(),
        fixes: d.fixes.clone(),
        cve: d.cve.clone(),
        ..CaseReport::new(&case.id)
    }
}

/// Runs the cases, reporting each as it is known (results in catalogue order).
pub fn run(cases: &[Case], opts: &RunOpts, probe: &Probe, target: &str) -> RunReport {
    run_on(cases, opts, probe, target, topology::Envs::up(&opts.topologies, opts.quiet || opts.stream))
}

/// [`run`] on topologies that are already up (taken down when the run ends).
pub fn run_on(cases: &[Case], opts: &RunOpts, probe: &Probe, target: &str, mut provided: topology::Envs) -> RunReport {
    let start = Instant::now();
    let mut report = RunReport::new(target, probe.clone(), &opts.topologies);
    let selected = plan::passes(&select(cases, &opts.selection), &opts.selection);
    let kinds = provided.kinds();
    let mut progress = progress::Progress::new(opts.stream, opts.quiet, target);
    progress.announce(opts.announce);
    progress.event(&Event::Probe { probe: Box::new(probe.clone()) });
    progress.event(&Event::Total { total: selected.len() });
    progress.resume_at(opts.start_at);
    let todo: Vec<&Case> = selected.into_iter().skip(opts.start_at).collect();
    let mut sched = schedule::Scheduler::new(&todo, opts, probe, &provided, &mut progress);
    for (i, case) in todo.iter().enumerate() {
        match plan::plan(case, &kinds, probe) {
            Ok(kind) => sched.queue(i, kind),
            Err(reason) => {
                // A topology the case needs failed to come up: say so rather than "not provided".
                let mut cr = blank_report(case);
                let reason = match provided.broken(&plan::case_kinds(case)) {
                    Some((n, e)) => SkipReason::TopologyDown { topology: n.to_string(), error: e.to_string() },
                    None => reason,
                };
                cr.set_result(CaseResult::Skipped { reason });
                sched.done(i, cr);
            }
        }
    }
    let (cases_done, interrupted) = sched.run();
    report.cases = cases_done;
    // A kernel with gcov on zcrx.o (a debug tree): what the run reached of zcrx.c.
    if let Some(g) = crate::kernel::debug::zcrx_gcda() {
        for ev in Event::gcov_parts(&g) {
            progress.event(&ev);
        }
        report.zcrx_gcda.push(g.iter().map(|b| format!("{b:02x}")).collect());
    }
    if opts.self_check && !opts.stream {
        let (a, k, s, ks) = selfcheck::totals(&report.cases);
        eprintln!("self-check: {k} of {a} assertion(s) killed; set-up assertions {ks} of {s}");
    }
    if interrupted {
        report.aborted = Some("interrupted".into());
    }
    progress.finish();
    for e in provided.down() {
        eprintln!("topology teardown: {e}");
        report.timings.teardown_errors.push(e.to_string());
    }
    report.duration_s = start.elapsed().as_secs_f64();
    report
}
