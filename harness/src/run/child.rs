//! Isolation: each case runs in a forked child of the runner (no exec, no re-parsing: the
//! child already holds its case, topology and probe). The runner is single-threaded when it
//! forks; the child sends its [`Outcome`] as one [`Event`] over a pipe, its stdout and stderr
//! go to a second pipe (the tail is kept for crashes and timeouts), and it leaves with
//! `_exit`, so no destructor of the runner's state runs twice. The runner waits on a pidfd
//! with the case's timeout and kills the child (SIGKILL) past it or when the run is
//! interrupted; the child dies with the runner (PR_SET_PDEATHSIG).

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::signal;
use crate::case::Case;
use crate::exec;
use crate::model::event::Event;
use crate::model::{Outcome, Probe};
use crate::topology::Topo;

/// Lines of the child's output kept for a crash or timeout report.
const TAIL: usize = 40;

/// What one isolated case produced; `interrupted` says the run was stopped meanwhile.
pub struct ChildResult {
    pub outcome: Outcome,
    pub interrupted: bool,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

/// Runs `case` in a forked child with a timeout (seconds).
pub fn run_isolated(case: &Case, topo: &Topo, probe: &Probe, timeout: f64, invert: bool) -> ChildResult {
    match spawn_and_wait(case, topo, probe, timeout, invert) {
        Ok(r) => r,
        Err(e) => ChildResult { outcome: Outcome::harness(e), interrupted: false },
    }
}

fn spawn_and_wait(case: &Case, topo: &Topo, probe: &Probe, timeout: f64, invert: bool) -> Result<ChildResult, String> {
    let (log_r, log_w) = pipe()?;
    let (res_r, res_w) = pipe()?;
    // Whatever the runner buffered must not be written again by the child.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let parent = nix::unistd::getpid();
    // SAFETY: the runner is single-threaded here (no thread of ours outlives a case), so the
    // child may allocate and run ordinary code; it never returns from `child_main`.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(log_r);
            drop(res_r);
            child_main(parent, case, topo, probe, invert, log_w, res_w)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(log_w);
            drop(res_w);
            Ok(wait(child, log_r, res_r, timeout))
        }
    }
}

/// The child: never returns.
fn child_main(
    parent: nix::unistd::Pid,
    case: &Case,
    topo: &Topo,
    probe: &Probe,
    invert: bool,
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
    let o = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exec::execute(case, topo, probe, invert)))
        .unwrap_or_else(|_| Outcome::harness("the case panicked in the harness (see the log)"));
    let mut f = std::fs::File::from(res_w);
    let _ = writeln!(f, "{}", Event::Outcome { outcome: Box::new(o) }.encode());
    let _ = f.flush();
    let _ = std::io::stderr().flush();
    // SAFETY: leaving without running the runner's destructors or atexit handlers.
    unsafe { libc::_exit(0) }
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

fn read_some(fd: &OwnedFd, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(fd, &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            into.extend_from_slice(&buf[..n]);
            true
        }
        Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => true,
        Err(_) => false,
    }
}

fn wait(child: nix::unistd::Pid, log_r: OwnedFd, res_r: OwnedFd, timeout: f64) -> ChildResult {
    use nix::sys::wait::{waitpid, WaitStatus};
    let pidfd = pidfd_open(child);
    let start = Instant::now();
    let limit = Duration::from_secs_f64(timeout);
    let mut cap = Captured::default();
    let (mut log_open, mut res_open) = (true, true);
    let mut timed_out = false;
    let mut interrupted = false;
    let mut status = None;
    loop {
        if status.is_none() {
            match waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(s) => status = Some(s),
                Err(_) => status = Some(WaitStatus::StillAlive),
            }
        }
        if status.is_some() && !log_open && !res_open {
            break;
        }
        if status.is_none() {
            timed_out = start.elapsed() > limit;
            interrupted = signal::interrupted().is_some();
            if timed_out || interrupted {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                status = waitpid(child, None).ok();
                break;
            }
        }
        // Once the child is gone, a grandchild it left may hold the pipes: read what is there.
        let wait_ms: u16 = if status.is_some() { 0 } else { 50 };
        let mut fds = Vec::new();
        if log_open {
            fds.push(PollFd::new(log_r.as_fd(), PollFlags::POLLIN));
        }
        if res_open {
            fds.push(PollFd::new(res_r.as_fd(), PollFlags::POLLIN));
        }
        if let (Some(p), None) = (&pidfd, &status) {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        let _ = poll(&mut fds, PollTimeout::from(wait_ms));
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        let mut k = 0;
        let mut progressed = false;
        if log_open {
            if ready[k] {
                log_open = read_some(&log_r, &mut cap.log);
                progressed = true;
            }
            k += 1;
        }
        if res_open && ready[k] {
            res_open = read_some(&res_r, &mut cap.res);
            progressed = true;
        }
        if status.is_some() && !progressed {
            break;
        }
    }
    finish(cap, status, timed_out, interrupted, timeout)
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

fn finish(
    cap: Captured,
    status: Option<nix::sys::wait::WaitStatus>,
    timed_out: bool,
    interrupted: bool,
    timeout: f64,
) -> ChildResult {
    use nix::sys::wait::WaitStatus;
    let parsed = String::from_utf8_lossy(&cap.res).lines().rev().find_map(|l| match Event::decode(l) {
        Some(Event::Outcome { outcome }) => Some(*outcome),
        _ => None,
    });
    let outcome = if timed_out {
        let mut o = Outcome::fail(format!("timed out after {timeout} s; killed"));
        o.log = tail(&cap.log);
        o
    } else if interrupted {
        Outcome::harness("interrupted")
    } else if let Some(o) = parsed {
        o
    } else {
        let how = match status {
            Some(WaitStatus::Signaled(_, sig, _)) => format!("killed by signal {}", sig as i32),
            Some(WaitStatus::Exited(_, code)) => format!("exited with {code}"),
            _ => "vanished".into(),
        };
        let mut o = Outcome::fail(format!("case process crashed ({how}) without a result"));
        o.log = tail(&cap.log);
        o
    };
    ChildResult { outcome, interrupted }
}
