//! One job at a time: the runner and the case it forks take turns (the runner sleeps in
//! poll while the case runs), so they are kept on the CPU the runner is on. Every hand-over
//! between them (fork, the case's exit, pipe and pidfd wake-ups) and between a case's own
//! threads (its sender and its ring) then stays on one CPU instead of waking another; under
//! TCG each cross-CPU wake-up waits for the other vCPU's host thread, which on a loaded host
//! costs milliseconds. The previous CPU set comes back when the guard is dropped.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Restores the runner's CPU set on drop.
pub(super) struct OneCpu {
    before: CpuSet,
}

impl OneCpu {
    /// Keeps this process (and what it forks from now on) on the CPU it runs on; None when
    /// that cannot be read or set (the run goes on unpinned).
    pub(super) fn here() -> Option<OneCpu> {
        let before = sched_getaffinity(Pid::from_raw(0)).ok()?;
        // SAFETY: sched_getcpu takes no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        let cpu = usize::try_from(cpu).ok().filter(|c| before.is_set(*c).unwrap_or(false))?;
        let mut one = CpuSet::new();
        one.set(cpu).ok()?;
        sched_setaffinity(Pid::from_raw(0), &one).ok()?;
        Some(OneCpu { before })
    }
}

impl Drop for OneCpu {
    fn drop(&mut self) {
        let _ = sched_setaffinity(Pid::from_raw(0), &self.before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(s: &CpuSet) -> usize {
        (0..CpuSet::count()).filter(|c| s.is_set(*c).unwrap_or(false)).count()
    }

    #[test]
    fn pins_to_one_cpu_and_restores() {
        // A thread of its own: affinity is per thread and tests run in parallel.
        std::thread::spawn(|| {
            let before = sched_getaffinity(Pid::from_raw(0)).expect("getaffinity");
            {
                let Some(_g) = OneCpu::here() else { return };
                assert_eq!(count(&sched_getaffinity(Pid::from_raw(0)).expect("getaffinity")), 1);
            }
            assert_eq!(count(&sched_getaffinity(Pid::from_raw(0)).expect("getaffinity")), count(&before));
        })
        .join()
        .expect("thread");
    }
}
