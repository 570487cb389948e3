//! Runs cases: selects and plans them against the probed kernel ([`plan`]), brings up the
//! run's topologies, executes each case in a forked child with a timeout ([`child`]), reads
//! the kernel log around it ([`kmsg`]), turns the outcome into a status ([`verdict`]) and
//! reports progress as [`Event`]s ([`progress`]).

pub mod child;
pub mod kmsg;
pub mod plan;
pub mod progress;
pub mod signal;
pub mod verdict;

use std::time::Instant;

use crate::case::Case;
use crate::model::event::Event;
use crate::model::{CaseReport, Probe, RunReport};
use crate::topology;

pub use plan::{parse_shard, select, shard_of, Selection};

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
    /// Run every case with its assertions inverted; report cases that still pass.
    pub self_check: bool,
}

/// The topologies of a run that are up; dropping it tears down what was set up.
struct Provided {
    /// (kind, what a case needs, the environment guard for file topologies)
    up: Vec<(String, topology::Topo, Option<topology::Active>)>,
    /// (name, why it could not be set up)
    broken: Vec<(String, String)>,
}

impl Provided {
    fn bring_up(names: &[String], quiet: bool) -> Provided {
        let tools = topology::Tools::from_env();
        let mut p = Provided { up: Vec::new(), broken: Vec::new() };
        for (slot, name) in names.iter().enumerate() {
            if let Some(t) = topology::Topo::builtin(name) {
                p.up.push((name.clone(), t, None));
                continue;
            }
            match topology::load(name).and_then(|f| {
                let kind =
                    serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                f.up(&tools, slot as u32).map(|a| (kind, a))
            }) {
                Ok((kind, mut a)) => {
                    if let Err(e) = a.snapshot_dut() {
                        a.log.push(format!("cannot record DUT settings: {e}"));
                    }
                    if !quiet {
                        a.log.iter().for_each(|l| eprintln!("{l}"));
                    }
                    p.up.push((kind, a.topo.clone(), Some(a)));
                }
                Err(e) => {
                    eprintln!("topology {name}: {e}");
                    p.broken.push((name.clone(), e));
                }
            }
        }
        p
    }

    fn kinds(&self) -> Vec<String> {
        self.up.iter().map(|(k, _, _)| k.clone()).collect()
    }

    /// Tears everything down now; the errors, if any.
    fn down(&mut self) -> Vec<String> {
        self.up.iter_mut().filter_map(|(_, _, a)| a.as_mut()).flat_map(|a| a.down()).collect()
    }
}

/// A case's report before it ran: its identity from the case file.
fn blank_report(case: &Case) -> CaseReport {
    let d = &case.def;
    CaseReport {
        file: case.file.display().to_string(),
        area: d.area.name().to_string(),
        about: d.about.clone(),
        spec: d.spec.clone(),
        ..CaseReport::new(&case.id)
    }
}

/// Runs the cases, reporting each as it is known.
pub fn run(cases: &[Case], opts: &RunOpts, probe: &Probe, target: &str) -> RunReport {
    let start = Instant::now();
    let mut kmsg = kmsg::Kmsg::open();
    let mut report = RunReport::new(target, probe.clone(), &opts.topologies);
    let selected = select(cases, &opts.selection);
    let mut provided = Provided::bring_up(&opts.topologies, opts.quiet || opts.stream);
    let kinds = provided.kinds();
    let mut progress = progress::Progress::new(opts.stream, opts.quiet, target);
    progress.event(&Event::Probe { probe: Box::new(probe.clone()) });
    progress.event(&Event::Total { total: selected.len() });
    progress.resume_at(opts.start_at);
    for case in selected.into_iter().skip(opts.start_at) {
        if signal::interrupted().is_some() {
            report.aborted = Some("interrupted".into());
            break;
        }
        let mut cr = blank_report(case);
        progress.event(&Event::Start { id: case.id.clone() });
        match plan::plan(case, &kinds, probe) {
            Err(reason) => {
                // A topology the case needs failed to come up: say so rather than "not provided".
                let wanted = &case.def.requires.topology;
                cr.message = match provided.broken.iter().find(|(n, _)| wanted.contains(n)) {
                    Some((n, e)) => format!("topology {n} could not be set up: {e}"),
                    None => reason,
                };
            }
            Ok(kind) => {
                let t0 = Instant::now();
                kmsg.drain();
                let timeout = case.def.timeout.unwrap_or(opts.timeout);
                let entry = provided.up.iter().find(|(k, _, _)| *k == kind);
                let fallback = topology::Topo::default();
                let topo = entry.map_or(&fallback, |(_, t, _)| t);
                let r = child::run_isolated(case, topo, probe, timeout, opts.self_check);
                if let Some((_, _, Some(a))) = entry {
                    if case.def.steps.iter().any(|s| s.value.ethtool.is_some()) {
                        for e in a.restore_settings() {
                            eprintln!("restoring settings after {}: {e}", case.id);
                        }
                    }
                }
                cr.duration_s = t0.elapsed().as_secs_f64();
                cr.topology = Some(kind);
                verdict::judge(case, probe, opts.self_check, r.outcome, kmsg.drain(), &mut cr);
                if r.interrupted {
                    report.aborted = Some("interrupted".into());
                }
            }
        }
        progress.event(&Event::Result { case: Box::new(cr.clone()) });
        report.cases.push(cr);
    }
    progress.finish();
    for e in provided.down() {
        eprintln!("topology teardown: {e}");
        report.timings.push((format!("teardown error: {e}"), 0.0));
    }
    report.duration_s = start.elapsed().as_secs_f64();
    report
}
