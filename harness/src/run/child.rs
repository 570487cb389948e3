//! Isolation: each case runs in a forked child of the runner (no exec, no re-parsing: the
//! child already holds its case, topology and probe). The runner is single-threaded when it
//! forks; the child sends its [`Outcome`] as one [`Event`] over a pipe, its stdout and stderr
//! go to a second pipe (the tail is kept for crashes and timeouts), and it leaves with
//! `_exit`, so no destructor of the runner's state runs twice. The runner waits on a pidfd
//! with the case's timeout and kills the child (SIGKILL) past it or when the run is
//! interrupted; the child dies with the runner (PR_SET_PDEATHSIG). A case on a built-in
//! topology runs in a network namespace of its own ([`case_netns`]).

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use super::{signal, Error};
use crate::case::{Action, Case};
use crate::exec;
use crate::model::event::Event;
use crate::model::{CaseResult, Outcome, Probe};
use crate::topology::Topo;

/// Lines of the child's output kept for a crash or timeout report.
const TAIL: usize = 40;

/// Bytes of the child's output the runner keeps (the end of it: what [`TAIL`] is cut from).
const LOG_KEPT: usize = 64 * 1024;

/// Bytes of the result pipe kept: the outcome is its last line, and a case's outcome (its log,
/// observed values and assertion sites) stays far below this.
const RES_KEPT: usize = 64 * 1024 * 1024;

/// The log pipe's capacity (F_SETPIPE_SZ; the default 64 KiB when the system allows less):
/// what a case can log between two of the runner's ticks without waiting.
const LOG_PIPE: libc::c_int = 1024 * 1024;

/// What one isolated case produced; `interrupted` says the run was stopped meanwhile.
pub struct ChildResult {
    pub outcome: Outcome,
    pub interrupted: bool,
}

/// Forks the child for `case`; the runner then drives the returned handle.
pub fn spawn(case: &Case, topo: &Topo, probe: &Probe, timeout: f64, invert: Option<usize>) -> Result<Running, Error> {
    let (log_r, log_w) = crate::kernel::sys::cloexec_pipe()?;
    let (res_r, res_w) = crate::kernel::sys::cloexec_pipe()?;
    // Whatever the runner buffered must not be written again by the child.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let parent = nix::unistd::getpid();
    // SAFETY: the runner is single-threaded here (no thread of ours outlives a case), so the
    // child may allocate and run ordinary code; it never returns from `child_main`.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::Spawn(format!("fork: {e}")))? {
        nix::unistd::ForkResult::Child => {
            drop(log_r);
            drop(res_r);
            child_main(parent, case, topo, probe, invert, log_w, res_w)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(log_w);
            drop(res_w);
            for fd in [&log_r, &res_r] {
                nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))
                    .map_err(|e| Error::Spawn(format!("fcntl: {e}")))?;
            }
            // SAFETY: F_SETPIPE_SZ on our own pipe; a refusal keeps the default size.
            unsafe { libc::fcntl(log_r.as_raw_fd(), libc::F_SETPIPE_SZ, LOG_PIPE) };
            Ok(Running {
                pid: child,
                pidfd: pidfd_open(child),
                log: Some(log_r),
                res: Some(res_r),
                cap: Captured::default(),
                start: Instant::now(),
                timeout,
                status: None,
                killed: None,
                killed_at: None,
                stuck: None,
            })
        }
    }
}

/// The child: never returns.
fn child_main(
    parent: nix::unistd::Pid,
    case: &Case,
    topo: &Topo,
    probe: &Probe,
    invert: Option<usize>,
    log_w: OwnedFd,
    res_w: OwnedFd,
) -> ! {
    // SAFETY: plain syscalls on our own process and descriptors.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent.as_raw() {
            libc::_exit(1);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null >= 0 {
            libc::dup2(null, 0);
        }
        libc::dup2(log_w.as_raw_fd(), 1);
        libc::dup2(log_w.as_raw_fd(), 2);
    }
    signal::reset_handlers();
    let o = match case_netns(case, topo) {
        Ok(topo) => {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exec::execute(case, &topo, probe, invert)))
                .unwrap_or_else(|_| Outcome::harness("the case panicked in the harness (see the log)"))
        }
        Err(e) => Outcome::harness(e.to_string()),
    };
    let mut f = std::fs::File::from(res_w);
    let _ = writeln!(f, "{}", Event::Outcome { outcome: Box::new(o) }.encode());
    let _ = f.flush();
    let _ = std::io::stderr().flush();
    // SAFETY: leaving without running the runner's destructors or atexit handlers.
    unsafe { libc::_exit(0) }
}

/// Whether a case on a built-in topology needs a network namespace of its own: it creates
/// devices (`tun`) or names an interface index itself (`ifq.if_idx`: in its own namespace only
/// `lo` exists, so any other index names no device). Every other registration uses the
/// topology's device and is checked by the `if_idx` guard; a `register_raw` step passes only
/// addresses of memory the harness fills (no ifq struct a case could aim at a device), so
/// such a case runs in the runner's namespace: a fresh namespace costs 16-30 ms per case under TCG (1.3 ms on a
/// host), more than most cases themselves.
fn needs_own_netns(case: &Case) -> bool {
    case.def.steps.iter().any(|s| match &s.value.action {
        Action::Tun(_) => true,
        Action::Register(r) => r.ifq.contains_key("if_idx"),
        _ => false,
    })
}

/// The network namespace the case runs in. On a built-in topology (`fresh_netns`), a case
/// that [needs one](needs_own_netns) gets a new one of its own with `lo` up, created here
/// while the child is still privileged (a `userns` case enters its user namespace later, in
/// `exec`, and keeps this network namespace): it can reach no device of the machine, and what
/// it creates (TUN devices, addresses) goes away with it. The topology is then described
/// again from inside (`lo`'s ifindex). A file topology's namespaces are entered by `exec`.
fn case_netns(case: &Case, topo: &Topo) -> Result<Topo, Error> {
    if !topo.fresh_netns {
        return Ok(topo.clone());
    }
    if !needs_own_netns(case) {
        return Ok(Topo { fresh_netns: false, ..topo.clone() });
    }
    crate::kernel::netdev::private_netns()
        .map_err(|e| Error::Spawn(format!("cannot give the case its own network namespace: {e}")))?;
    Ok(Topo::builtin(topo.kind).filter(|t| t.fresh_netns).unwrap_or_else(|| topo.clone()))
}

fn pidfd_open(pid: nix::unistd::Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    // SAFETY: a descriptor the kernel just gave us.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Output of the child, read as it comes.
#[derive(Default)]
struct Captured {
    log: Vec<u8>,
    res: Vec<u8>,
}

/// Why the runner killed a child.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Killed {
    Timeout,
    Interrupted,
}

/// A case child that runs; poll its [`fds`](Running::fds), then [`service`](Running::service)
/// it, until it is [`done`](Running::done).
pub struct Running {
    pid: nix::unistd::Pid,
    pidfd: Option<OwnedFd>,
    log: Option<OwnedFd>,
    res: Option<OwnedFd>,
    cap: Captured,
    start: Instant,
    timeout: f64,
    status: Option<WaitStatus>,
    killed: Option<Killed>,
    /// When SIGKILL was sent.
    killed_at: Option<Instant>,
    /// The kernel stack of a killed child that did not exit within [`KILL_GRACE`].
    stuck: Option<Vec<String>>,
}

/// How long a child may take to exit after SIGKILL before the runner leaves it behind (its
/// exit waits in the kernel: io_uring's cancellation of a request that never completes, a
/// lock never released) and goes on with the suite.
const KILL_GRACE: Duration = Duration::from_secs(20);

/// A process's kernel stack, one frame per line (/proc/PID/stack, root only).
fn kernel_stack(pid: nix::unistd::Pid) -> Vec<String> {
    match std::fs::read_to_string(format!("/proc/{pid}/stack")) {
        Ok(s) => s.lines().take(32).map(|l| l.trim().to_string()).collect(),
        Err(e) => vec![format!("(/proc/{pid}/stack: {e})")],
    }
}

/// Reads what a non-blocking pipe holds, keeping at most the last `keep` bytes; false at end
/// of file or on an error.
fn read_available(fd: &OwnedFd, into: &mut Vec<u8>, keep: usize) -> bool {
    let mut buf = [0u8; 8192];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                if into.len() > keep {
                    into.drain(..into.len() - keep);
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => return true,
            Err(_) => return false,
        }
    }
}

impl Running {
    /// The descriptors that become readable when there is something to do.
    /// The child's pid (kmemleak names the task that allocated an object by it).
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    ///
    /// The log pipe is not among them while the child runs: every line a case logs would wake
    /// the runner (under TCG a wake-up and two context switches cost more than the line, and
    /// halved the time of the bench's subset at `-j 1` when they went). The runner drains it on
    /// every wake-up and tick instead ([`service`](Running::service)); a child that fills the
    /// pipe ([`LOG_PIPE`]) waits at most one tick. Once the child is gone, the pipe is polled
    /// until a grandchild that kept it open closes it.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let log = self.log.iter().filter(|_| self.status.is_some());
        let mut v: Vec<BorrowedFd<'_>> = log.chain(self.res.iter()).map(|f| f.as_fd()).collect();
        if self.status.is_none() {
            v.extend(self.pidfd.iter().map(|f| f.as_fd()));
        }
        v
    }

    /// Reads the pipes, reaps the child when it has exited, and kills it past its timeout or
    /// when the run is interrupted. Never blocks.
    pub fn service(&mut self) {
        if let Some(f) = &self.log {
            if !read_available(f, &mut self.cap.log, LOG_KEPT) {
                self.log = None;
            }
        }
        if let Some(f) = &self.res {
            if !read_available(f, &mut self.cap.res, RES_KEPT) {
                self.res = None;
            }
        }
        if self.status.is_none() {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(s) => self.status = Some(s),
                Err(_) => self.status = Some(WaitStatus::StillAlive),
            }
        }
        if self.status.is_none() {
            let why = if self.start.elapsed().as_secs_f64() > self.timeout {
                Some(Killed::Timeout)
            } else if signal::interrupted().is_some() {
                Some(Killed::Interrupted)
            } else {
                None
            };
            match (why, self.killed_at) {
                (Some(why), None) => {
                    let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
                    self.killed = Some(why);
                    self.killed_at = Some(Instant::now());
                }
                (_, Some(at)) if at.elapsed() > KILL_GRACE => {
                    // Never waited for without a bound: the suite goes on without it.
                    self.stuck = Some(kernel_stack(self.pid));
                    self.status = Some(WaitStatus::StillAlive);
                }
                _ => {}
            }
        }
        if self.status.is_some() {
            // Gone: take what the pipes hold now; a grandchild it left may keep them open.
            for (f, into, keep) in [(&self.log, &mut self.cap.log, LOG_KEPT), (&self.res, &mut self.cap.res, RES_KEPT)]
            {
                if let Some(f) = f {
                    read_available(f, into, keep);
                }
            }
            self.log = None;
            self.res = None;
        }
    }

    /// The child has exited (or was killed) and its output is read.
    pub fn done(&self) -> bool {
        self.status.is_some() && self.log.is_none() && self.res.is_none()
    }

    /// Its result; call once [`done`](Running::done).
    pub fn finish(self) -> ChildResult {
        let parsed = String::from_utf8_lossy(&self.cap.res).lines().rev().find_map(|l| match Event::decode(l) {
            Some(Event::Outcome { outcome }) => Some(*outcome),
            _ => None,
        });
        let outcome = match (self.killed, parsed) {
            (Some(Killed::Timeout), _) => {
                Outcome::of(CaseResult::TimedOut { after_s: self.timeout, stuck: self.stuck })
                    .with_log(tail(&self.cap.log))
            }
            (Some(Killed::Interrupted), _) => Outcome::of(CaseResult::Interrupted),
            (None, Some(o)) => o,
            (None, None) => {
                let how = match self.status {
                    Some(WaitStatus::Signaled(_, sig, _)) => format!("killed by signal {}", sig as i32),
                    Some(WaitStatus::Exited(_, code)) => format!("exited with {code}"),
                    _ => "vanished".into(),
                };
                Outcome::of(CaseResult::Crashed { how }).with_log(tail(&self.cap.log))
            }
        };
        ChildResult { outcome, interrupted: self.killed == Some(Killed::Interrupted) }
    }
}

fn tail(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: VecDeque<String> = VecDeque::new();
    for l in text.lines() {
        if lines.len() == TAIL {
            lines.pop_front();
        }
        lines.push_back(l.to_string());
    }
    lines.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that logs more than the runner keeps: the runner holds the end of it, no more,
    /// and reads to the end of the pipe without blocking.
    #[test]
    fn the_kept_log_is_its_last_bytes_and_bounded() {
        let (r, w) = crate::kernel::sys::cloexec_pipe().expect("pipe");
        nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).expect("fcntl");
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::File::from(w);
            for i in 0..20_000u32 {
                let _ = writeln!(f, "line {i:05}");
            }
        });
        let mut kept = Vec::new();
        while read_available(&r, &mut kept, 1000) {
            std::thread::sleep(Duration::from_millis(1));
        }
        writer.join().expect("writer");
        assert_eq!(kept.len(), 1000);
        assert!(kept.ends_with(b"line 19999\n"), "{:?}", String::from_utf8_lossy(&kept[kept.len() - 20..]));
        let last = tail(&kept);
        assert_eq!(last.len(), TAIL);
        assert_eq!(last.last().map(String::as_str), Some("line 19999"));
    }
}
