//! `fault_sweep`: one call run once per round with the N-th fault point of its io_uring
//! syscall failed (fail-nth), N = 1, 2, ... until the call reaches no N-th point
//! (docs/fault-injection.md). Each round starts from fresh state (a new main ring, the
//! `setup` steps) and drops it afterwards; the kernel log of each round is read here, whole,
//! for the injected stack (the runner's log keeps only the first line of each record).

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;

use super::*;
use crate::case::FaultSweep;
use crate::kernel::kmsg::Kmsg;
use crate::model::{splat_kind, Answer, Mismatch};

/// One round's answer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Answered {
    Success,
    Errno(String),
}

impl std::fmt::Display for Answered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answered::Success => f.write_str("success"),
            Answered::Errno(e) => f.write_str(e),
        }
    }
}

/// The injected failure in a round's kernel log: the capability (`failslab`, ...) and the
/// stack from the first frame below the fault-injection code to the syscall.
fn injected_stack(lines: &[String]) -> Option<(String, Vec<String>)> {
    let start = lines.iter().position(|l| l.contains("FAULT_INJECTION: forcing a failure"))?;
    // fail_dump's two lines are one record: /dev/kmsg shows its inner newline as `\x0a`.
    let cap = lines[start..]
        .iter()
        .take(2)
        .flat_map(|l| l.split("\\x0a"))
        .find_map(|l| l.trim().strip_prefix("name ").and_then(|r| r.split(',').next()))
        .unwrap_or("?")
        .to_string();
    let mut frames = Vec::new();
    let mut in_trace = false;
    for l in &lines[start..] {
        let t = l.trim();
        if t.starts_with("Call Trace:") {
            in_trace = true;
            continue;
        }
        if !in_trace || t.starts_with('<') && t != "</TASK>" {
            continue;
        }
        if t == "</TASK>" || t.starts_with("entry_SYSCALL") || t.starts_with("do_syscall") {
            break;
        }
        // Frames: `func+0x1/0x2`, possibly with a `? ` for unreliable ones.
        let f = t.trim_start_matches("? ").split_whitespace().next().unwrap_or("");
        let skip =
            ["dump_stack", "fail_dump", "should_fail", "__should_fail", "should_failslab", "should_fail_usercopy"];
        if f.contains("+0x") && !skip.iter().any(|s| f.starts_with(s)) {
            frames.push(f.to_string());
        }
    }
    Some((cap, frames))
}

impl Ctx<'_> {
    /// Puts the case's objects back; the round's are dropped: connections and descriptors
    /// first, then the rings, then the instances.
    fn put_state(&mut self, saved: Objects) {
        let Objects { rings, zcrx, fds, conns, .. } = std::mem::replace(&mut self.st, saved);
        drop(conns);
        drop(fds);
        drop(rings);
        drop(zcrx);
    }

    /// One round: fresh state, `setup`, the armed call, `after` on success. Returns whether
    /// the fault was injected and what the call answered.
    fn sweep_round(&mut self, s: &FaultSweep, n: u32, fail_nth: RawFd) -> Result<(bool, Answered), StepError> {
        let d = &self.case.def;
        let flags = setup_flags(&d.ring.flags)?;
        let ring = Ring::new(d.ring.entries, flags, d.ring.cq_entries).map_err(|e| format!("round {n}: ring: {e}"))?;
        self.st.rings.insert("main".into(), ring);
        for st in &s.setup {
            self.step(st).map_err(|e| e.context(0, &format!("round {n}, setup {}", st.action.kind().key)))?;
        }
        let call = Step { expect: None, ..(*s.call).clone() };
        sys::arm_fault(fail_nth, n);
        let r = self.step(&call);
        let injected = match sys::fault_injected() {
            None => {
                return Err(harness(format!(
                    "round {n}: `{}` made no io_uring syscall a sweep can arm (io_uring_register, a submission)",
                    call.action.kind().key
                )))
            }
            Some(Err(e)) => return Err(harness(format!("round {n}: fail-nth: {}", sys::errno_name(e)))),
            Some(Ok(i)) => i,
        };
        let answered = match r {
            Ok(()) => Answered::Success,
            Err(StepError::Fail(f)) => match f.mismatch.as_deref().map(|m| &m.observed) {
                Some(Answer::Errno(e)) => Answered::Errno(e.clone()),
                _ => return Err(StepError::Fail(f)),
            },
            Err(e) => return Err(e),
        };
        if answered == Answered::Success {
            for st in &s.after {
                self.step(st).map_err(|e| e.context(0, &format!("round {n}, after {}", st.action.kind().key)))?;
            }
        }
        Ok((injected, answered))
    }

    pub(super) fn fault_sweep(&mut self, s: &FaultSweep) -> StepResult {
        if !self.probe.features.contains(&crate::model::Feature::FaultInjection) {
            return Err(StepError::Skip(format!(
                "fault injection: not in this kernel ({}): a fault sweep needs a debug kernel \
                 (vm/build-tree.sh --debug)",
                self.probe.kernel_release
            )));
        }
        crate::kernel::debug::fault_knobs_for_sweep().map_err(|e| harness(format!("fault-injection knobs: {e}")))?;
        let fail_nth = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/thread-self/fail-nth")
            .map_err(|e| harness(format!("/proc/thread-self/fail-nth: {e}")))?;
        let accept = s.accepted();
        let max = s.max_rounds.unwrap_or(400);
        let min = s.min_rounds.unwrap_or(2);
        let mut kmsg = Kmsg::open();
        let mut answers: BTreeMap<Answered, u32> = BTreeMap::new();
        let mut stacks: BTreeMap<(String, Vec<String>), Vec<u32>> = BTreeMap::new();
        let mut untraced = 0u32;
        let mut rounds = 0u32;
        let mut clean = false;
        let at = self.at.clone();
        for n in 1..=max {
            rounds = n;
            let saved = std::mem::take(&mut self.st);
            let r = self.sweep_round(s, n, fail_nth.as_raw_fd());
            self.put_state(saved);
            self.at = at.clone();
            let log = kmsg.drain_all();
            let (injected, answered) = r?;
            if let Some(l) = log.iter().find(|l| splat_kind(l).is_some()) {
                let what = format!("round {n}: no kernel splat");
                return self.verdict(&format!("fault_sweep {what}"), Err(format!("{what}: {l}").into()));
            }
            let stack = injected_stack(&log);
            let shown = match &stack {
                Some((cap, frames)) => {
                    format!("{cap}: {}", frames.iter().take(6).cloned().collect::<Vec<_>>().join(" <- "))
                }
                None if injected => "no trace (a __GFP_NOWARN allocation)".into(),
                None => "nothing injected".into(),
            };
            self.note(format!("  fault_sweep round {n}: {shown} -> {answered}"));
            *answers.entry(answered.clone()).or_default() += 1;
            match stack {
                Some(k) => stacks.entry(k).or_default().push(n),
                None if injected => untraced += 1,
                None => {}
            }
            if !injected {
                // The call reached fewer than N fault points: it ran with no failure and must
                // succeed, on the state every failed round before it left behind.
                let r = match &answered {
                    Answered::Success => Ok(()),
                    Answered::Errno(e) => Err(StepError::mismatch(
                        Mismatch {
                            what: "fault_sweep clean round".into(),
                            expected: Answer::Success(None),
                            observed: Answer::Errno(e.clone()),
                        },
                        format!("round {n} (no fault injected): expected success, kernel returned {e}"),
                    )),
                };
                self.verdict("fault_sweep clean round succeeds", r)?;
                clean = true;
                break;
            }
            let r = match &answered {
                Answered::Errno(e) if !accept.contains(e) => Err(StepError::mismatch(
                    Mismatch {
                        what: "fault_sweep injected round".into(),
                        expected: Answer::Text(accept.join(" or ")),
                        observed: Answer::Errno(e.clone()),
                    },
                    format!("round {n} ({shown}): expected {} or success, kernel returned {e}", accept.join(", ")),
                )),
                _ => Ok(()),
            };
            self.verdict("fault_sweep injected round ends cleanly", r)?;
        }
        let hist: Vec<String> = answers.iter().map(|(a, c)| format!("{a} x{c}")).collect();
        self.note(format!(
            "fault_sweep: {rounds} round(s), {} injected; answers: {}; {} distinct injected stack(s), {untraced} \
             injected without a trace",
            rounds - u32::from(clean),
            hist.join(", "),
            stacks.len()
        ));
        for ((cap, frames), rs) in &stacks {
            let rs: Vec<String> = rs.iter().map(|r| r.to_string()).collect();
            self.note(format!("  stack [{cap}] rounds {}: {}", rs.join(","), frames.join(" <- ")));
        }
        self.observe(format!("fault_sweep rounds={rounds} answers={}", hist.join(",")));
        let r = if !clean {
            Err(format!("no clean round within {max} rounds (raise max_rounds)").into())
        } else if rounds < min {
            Err(format!("{rounds} round(s): the call reached fewer than {min} fault points").into())
        } else {
            Ok(())
        };
        self.verdict("fault_sweep rounds", r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_injected_stack_is_cut_to_the_callers() {
        let log: Vec<String> = [
            "FAULT_INJECTION: forcing a failure.",
            "name failslab, interval 1, probability 0, space 0, times -1",
            "CPU: 0 UID: 0 PID: 96 Comm: zcrx-conform Not tainted 7.3.4 #1",
            "Call Trace:",
            " <TASK>",
            " dump_stack_lvl+0x1/0x2",
            " should_fail_ex+0x1/0x2",
            " should_failslab+0x1/0x2",
            " __kmalloc_cache_noprof+0x1/0x2",
            " io_register_zcrx+0x353/0x1e30",
            " ? __do_sys_io_uring_register+0xed0/0x23a0",
            " do_syscall_64+0xfe/0xf80",
            " entry_SYSCALL_64_after_hwframe+0x77/0x7f",
            " </TASK>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (cap, frames) = injected_stack(&log).expect("found");
        assert_eq!(cap, "failslab");
        assert_eq!(
            frames,
            [
                "__kmalloc_cache_noprof+0x1/0x2",
                "io_register_zcrx+0x353/0x1e30",
                "__do_sys_io_uring_register+0xed0/0x23a0"
            ]
        );
        assert!(injected_stack(&log[2..]).is_none());
        // As /dev/kmsg shows it: fail_dump's record in one line, a dictionary line in between.
        let mut kmsg = log.clone();
        kmsg.splice(0..2, ["FAULT_INJECTION: forcing a failure.\\x0aname fail_page_alloc, interval 1".to_string()]);
        kmsg.insert(4, " SUBSYSTEM=virtio".to_string());
        let (cap, again) = injected_stack(&kmsg).expect("found");
        assert_eq!((cap.as_str(), again), ("fail_page_alloc", frames));
    }
}
