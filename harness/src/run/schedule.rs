//! Runs the planned cases, up to `jobs` at a time. A case starts when no running case holds
//! one of its exclusive resources (its topology file's device, a TUN name, what it declares in
//! `requires.exclusive`); with one job this is the plain sequential loop. The kernel log is
//! read while cases run and given to every case that was running; the kernel cannot tell two
//! concurrent cases apart, so when a splat appears while several ran, those cases are run
//! again alone afterwards and their solo results count, unless none of them prints a splat
//! alone (a WARN_ON_ONCE prints once per boot): then the splat fails all of them, since one
//! of them made it. Lines printed after a case ended and before the next began (its rings'
//! teardown runs after its process is gone) fail the cases that ended there. Results are
//! reported in catalogue order whatever the order they finish in.

use std::collections::VecDeque;
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::child::{self, Running};
use super::leaks::LeakScan;
use super::progress::Progress;
use super::splats::Suspects;
use super::{blank_report, selfcheck, signal, verdict, RunOpts};
use crate::case::{Action, Case};
use crate::kernel::kmsg::Kmsg;
use crate::model::event::Event;
use crate::model::{is_splat, Assertion, CaseReport, CaseResult, Outcome, Probe};
use crate::topology::{Envs, Kind};

/// A case waiting to start; `invert`: the assertion a self-check run inverts.
struct Job {
    idx: usize,
    kind: Kind,
    resources: Vec<Resource>,
    invert: Option<usize>,
    /// The splat this job is a suspect of (a group of `Scheduler::suspects`).
    group: Option<usize>,
}

/// A run that ended, to be judged.
struct Finished {
    job: Job,
    duration_s: f64,
    outcome: Outcome,
    kernel_log: Vec<String>,
    unrestored: Vec<String>,
}

/// Put into a case's kernel log before splat lines it did not print itself.
const SPLAT_NOT_ALONE: &str =
    "zcrx-conform: the lines below were printed while this case ran beside others; run again alone, none of them printed a splat, so it fails them all";
const SPLAT_AFTER_END: &str =
    "zcrx-conform: the lines below were printed after this case ended and before the next began (its teardown)";

/// Something a case holds alone while it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Resource {
    /// What the case declares in `requires.exclusive`.
    Declared(String),
    /// The devices of the run's topology of this kind (a file topology's).
    Topology(Kind),
    /// A TUN device the case creates, by name.
    Tun(String),
}

/// A case that runs.
struct Slot {
    job: Job,
    running: Running,
    t0: Instant,
    kernel_log: Vec<String>,
    /// Another case ran at the same time.
    overlapped: bool,
}

pub(super) struct Scheduler<'a> {
    cases: &'a [&'a Case],
    opts: &'a RunOpts,
    probe: &'a Probe,
    envs: &'a Envs,
    progress: &'a mut Progress,
    queue: VecDeque<Job>,
    results: Vec<Option<CaseReport>>,
    emitted: usize,
    /// Cases to run again alone (a splat while they overlapped others).
    rerun: Vec<Job>,
    /// Self-check: per case, what its inverted runs found so far.
    checks: Vec<Option<selfcheck::Tally>>,
    interrupted: bool,
    /// kmemleak after each batch (a debug kernel).
    leaks: LeakScan,
    /// Leaks found for a case whose result is not known yet (a self-check in progress).
    leaked: Vec<Vec<crate::model::LeakedObject>>,
    suspects: Suspects<Finished>,
    /// Cases that ended since the last case began: lines printed until the next begins are
    /// theirs, and their results wait for them.
    recent: Vec<usize>,
}

/// The resources a case holds alone.
fn resources(case: &Case, kind: Kind) -> Vec<Resource> {
    let mut r: Vec<Resource> = case.def.requires.exclusive.iter().cloned().map(Resource::Declared).collect();
    if !Kind::BUILTIN.contains(&kind) {
        r.push(Resource::Topology(kind));
    }
    r.extend(case.def.steps.iter().filter_map(|s| match &s.value.action {
        Action::Tun(t) => Some(Resource::Tun(t.name.clone())),
        _ => None,
    }));
    r
}

impl<'a> Scheduler<'a> {
    pub(super) fn new(
        cases: &'a [&'a Case],
        opts: &'a RunOpts,
        probe: &'a Probe,
        envs: &'a Envs,
        progress: &'a mut Progress,
    ) -> Scheduler<'a> {
        Scheduler {
            cases,
            opts,
            probe,
            envs,
            progress,
            queue: VecDeque::new(),
            results: vec![None; cases.len()],
            emitted: 0,
            rerun: Vec::new(),
            checks: vec![None; cases.len()],
            interrupted: false,
            leaks: LeakScan::new(probe.kmemleak),
            leaked: vec![Vec::new(); cases.len()],
            suspects: Suspects::default(),
            recent: Vec::new(),
        }
    }

    /// Case `idx` runs on topology `kind`.
    pub(super) fn queue(&mut self, idx: usize, kind: Kind) {
        let resources = resources(self.cases[idx], kind);
        self.queue.push_back(Job { idx, kind, resources, invert: None, group: None });
    }

    /// Case `idx` has its result (a skip decided by the plan, or a finished run).
    pub(super) fn done(&mut self, idx: usize, mut cr: CaseReport) {
        let objects = std::mem::take(&mut self.leaked[idx]);
        if !objects.is_empty() {
            let result = CaseResult::Leak { objects, result: Box::new(cr.result.clone()) };
            cr.set_result(result);
        }
        self.results[idx] = Some(cr);
    }

    /// Reports, in catalogue order, every result that no earlier case still waits for.
    fn emit_ready(&mut self) {
        while let Some(Some(cr)) = self.results.get(self.emitted) {
            if self.recent.contains(&self.emitted) {
                break;
            }
            self.progress.event(&Event::Result { case: Box::new(cr.clone()) });
            self.emitted += 1;
        }
    }

    /// Runs everything queued; the reports in catalogue order and whether the run was
    /// interrupted.
    pub(super) fn run(mut self) -> (Vec<CaseReport>, bool) {
        let mut kmsg = Kmsg::open();
        let jobs = self.opts.jobs.max(1);
        self.emit_ready();
        self.drive(&mut kmsg, jobs);
        // Splats while cases overlapped: each suspect again, alone.
        let suspects = std::mem::take(&mut self.rerun);
        self.queue.extend(suspects);
        self.drive(&mut kmsg, 1);
        if !self.interrupted {
            self.scan_leaks(true);
        }
        let interrupted = self.interrupted;
        (self.results.into_iter().flatten().collect(), interrupted)
    }

    fn drive(&mut self, kmsg: &mut Kmsg, jobs: usize) {
        let _one_cpu = (jobs == 1 && !self.queue.is_empty()).then(super::affinity::OneCpu::here);
        let mut slots: Vec<Slot> = Vec::new();
        loop {
            if signal::interrupted().is_some() {
                self.interrupted = true;
            }
            if slots.is_empty() && self.leaks.due() && !self.interrupted {
                self.scan_leaks(false);
            }
            while slots.len() < jobs && !self.interrupted && !self.leaks.due() {
                let busy: Vec<&Resource> = slots.iter().flat_map(|s| s.job.resources.iter()).collect();
                let Some(pos) = self.queue.iter().position(|j| j.resources.iter().all(|r| !busy.contains(&r))) else {
                    break;
                };
                let Some(job) = self.queue.remove(pos) else { break };
                // Lines printed before a case starts are not its own: the running cases', or
                // with none running, those of the cases that just ended.
                let before = kmsg.drain();
                if slots.is_empty() {
                    self.late(before);
                } else {
                    for s in &mut slots {
                        s.kernel_log.extend(before.iter().cloned());
                    }
                }
                if let Some(slot) = self.start(job) {
                    slots.push(slot);
                }
            }
            if slots.is_empty() {
                let after = kmsg.drain();
                self.late(after);
                self.emit_ready();
                break;
            }
            wait_any(&mut slots);
            let lines = kmsg.drain();
            // Marked here, before any of them can finish: whoever ran while another did.
            let concurrent = slots.len() > 1;
            for s in &mut slots {
                s.kernel_log.extend(lines.iter().cloned());
                s.overlapped |= concurrent;
            }
            let mut i = 0;
            while i < slots.len() {
                if slots[i].running.done() {
                    let slot = slots.swap_remove(i);
                    self.finish(slot);
                } else {
                    i += 1;
                }
            }
            // With a case still running, the lines to come are its own (as before).
            if !slots.is_empty() {
                self.recent.clear();
            }
            self.emit_ready();
        }
    }

    fn start(&mut self, job: Job) -> Option<Slot> {
        let case = self.cases[job.idx];
        let timeout = case.def.timeout.unwrap_or(self.opts.timeout);
        self.progress.event(&Event::Start { id: case.id.clone(), timeout_s: Some(timeout) });
        let topo = self.envs.topo(job.kind).cloned().unwrap_or_default();
        let t0 = Instant::now();
        match child::spawn(case, &topo, self.probe, timeout, job.invert) {
            Ok(running) => Some(Slot { job, running, t0, kernel_log: Vec::new(), overlapped: false }),
            Err(e) => {
                let mut cr = blank_report(case);
                cr.topology = Some(job.kind.to_string());
                verdict::judge(case, self.probe, true, Outcome::harness(e.to_string()), Vec::new(), &mut cr);
                match job.invert {
                    None => self.done(job.idx, cr),
                    Some(k) => self.inverted_done(job.idx, k, None, cr),
                }
                None
            }
        }
    }

    fn finish(&mut self, slot: Slot) {
        let case = self.cases[slot.job.idx];
        if self.leaks.on() {
            self.leaks.ran(slot.job.idx, slot.running.pid(), slot.t0);
        }
        let r = slot.running.finish();
        // What could not be put back fails the case that changed it: every later case would
        // otherwise run on a device that is not what the topology says.
        let mut unrestored = Vec::new();
        if let Some(env) = self.envs.env(slot.job.kind) {
            if case.def.steps.iter().any(|s| s.value.changes_device()) {
                unrestored.extend(env.restore_settings());
            }
            if case.def.steps.iter().any(|s| matches!(&s.value.action, Action::Nsim(n) if n.sets_knobs())) {
                unrestored.extend(env.restore_nsim_knobs());
            }
        }
        for e in &unrestored {
            eprintln!("restoring after {}: {e}", case.id);
        }
        if r.interrupted {
            // Not run to its end: no result; the report lists it with the cases not run.
            self.interrupted = true;
            return;
        }
        let splats: Vec<&String> = slot.kernel_log.iter().filter(|l| is_splat(l)).collect();
        if slot.overlapped && !splats.is_empty() {
            let mut job = slot.job;
            if job.group.is_none() {
                job.group = Some(self.suspects.suspect(&splats));
                self.progress.event(&Event::Suspect { id: case.id.clone() });
            }
            self.rerun.push(job);
            return;
        }
        let reproduced = !splats.is_empty();
        let f = Finished {
            duration_s: slot.t0.elapsed().as_secs_f64(),
            job: slot.job,
            outcome: r.outcome,
            kernel_log: slot.kernel_log,
            unrestored: unrestored.iter().map(|u| u.to_string()).collect(),
        };
        let Some(g) = f.job.group else { return self.conclude(f) };
        for (mut f, carried) in self.suspects.ran_alone(g, f, reproduced) {
            if let Some(lines) = carried {
                f.kernel_log.push(SPLAT_NOT_ALONE.into());
                f.kernel_log.extend(lines);
            }
            self.conclude(f);
        }
    }

    /// Judges a run that ended and gives its result to whoever waits for it.
    fn conclude(&mut self, f: Finished) {
        let case = self.cases[f.job.idx];
        let mut cr = blank_report(case);
        cr.duration_s = f.duration_s;
        cr.topology = Some(f.job.kind.to_string());
        let mut outcome = f.outcome;
        let assertions = std::mem::take(&mut outcome.assertions);
        let held = outcome.result.inverted_held();
        verdict::judge(case, self.probe, f.job.invert.is_none(), outcome, f.kernel_log, &mut cr);
        if !f.unrestored.is_empty() {
            let result = CaseResult::Unrestored { errors: f.unrestored, result: Box::new(cr.result.clone()) };
            cr.set_result(result);
        }
        match f.job.invert {
            Some(k) => self.inverted_done(f.job.idx, k, held, cr),
            None if self.opts.self_check => self.base_done(f.job, assertions, cr),
            None => {
                self.recent.push(f.job.idx);
                self.done(f.job.idx, cr);
            }
        }
    }

    /// Kernel lines printed while no case ran: a splat among them fails the cases that ended
    /// last (their rings and pools are torn down after their processes are gone).
    fn late(&mut self, lines: Vec<String>) {
        let recent = std::mem::take(&mut self.recent);
        let splats: Vec<String> = lines.into_iter().filter(|l| is_splat(l)).collect();
        if splats.is_empty() {
            return;
        }
        for idx in recent {
            let case = self.cases[idx];
            if let Some(cr) = self.results[idx].as_mut() {
                verdict::late_splat(case, self.probe, cr, SPLAT_AFTER_END, &splats);
            }
        }
    }

    /// The batch's kmemleak scan: each leaked object fails the case it is attributed to (a
    /// result already reported is amended by an [`Event::Leaked`]).
    fn scan_leaks(&mut self, last: bool) {
        if self.leaks.pending() == 0 {
            return;
        }
        self.progress.event(&Event::LeakScan { cases: self.leaks.pending() });
        match self.leaks.scan(last) {
            Ok(found) => {
                for o in &found.elsewhere {
                    eprintln!("kmemleak: unreferenced object of no case: {o}: {}", o.backtrace.join(" <- "));
                }
                let mut found: Vec<_> = found.by_case.into_iter().collect();
                found.sort_by_key(|(idx, _)| *idx);
                for (idx, objects) in found {
                    let Some(cr) = self.results[idx].as_mut() else {
                        // A self-check still running: applied when its result is known.
                        self.leaked[idx].extend(objects);
                        continue;
                    };
                    // A case blamed again by a later scan keeps one list of its objects.
                    let result = match cr.result.clone() {
                        CaseResult::Leak { objects: mut before, result } => {
                            before.extend(objects.iter().cloned());
                            CaseResult::Leak { objects: before, result }
                        }
                        other => CaseResult::Leak { objects: objects.clone(), result: Box::new(other) },
                    };
                    cr.set_result(result);
                    if idx < self.emitted {
                        self.progress.event(&Event::Leaked { id: cr.id.clone(), objects });
                    }
                }
            }
            Err(e) => eprintln!("kmemleak: the scan failed ({e}); this batch's leaks are not checked"),
        }
    }

    /// Self-check: the case ran as written. A passing case is run again once per assertion,
    /// with that assertion inverted; any other result stands.
    fn base_done(&mut self, job: Job, assertions: Vec<Assertion>, cr: CaseReport) {
        let n = assertions.len();
        if cr.status != crate::model::Status::Pass || n == 0 {
            let cr = selfcheck::not_checkable(cr, n);
            self.done(job.idx, cr);
            return;
        }
        for k in 1..=n {
            self.queue.push_back(Job {
                idx: job.idx,
                kind: job.kind,
                resources: job.resources.clone(),
                invert: Some(k),
                group: None,
            });
        }
        self.checks[job.idx] = Some(selfcheck::Tally::new(cr, assertions));
    }

    /// Self-check: the run with assertion `k` inverted ended (`held`: the inverted assertion
    /// that held, if one did).
    fn inverted_done(&mut self, idx: usize, k: usize, held: Option<usize>, cr: CaseReport) {
        let Some(tally) = self.checks[idx].as_mut() else { return };
        tally.record(k, held, &cr);
        if tally.complete() {
            if let Some(t) = self.checks[idx].take() {
                self.done(idx, t.report());
            }
        }
    }
}

/// Waits until one of the running cases has something to do (at most 50 ms), then services
/// them all.
fn wait_any(slots: &mut [Slot]) {
    {
        let mut fds: Vec<PollFd> =
            slots.iter().flat_map(|s| s.running.fds()).map(|f| PollFd::new(f, PollFlags::POLLIN)).collect();
        let _ = poll(&mut fds, PollTimeout::from(50u16));
    }
    for s in slots.iter_mut() {
        s.running.service();
    }
}
