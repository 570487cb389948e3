//! The `process` step: a second process of the case that owns a zcrx instance and goes away
//! without closing it, so teardown on process exit (not on an explicit close) is exercised.
//!
//! The case process is single-threaded between steps except for sender threads, which only
//! write to sockets; the child allocates (glibc's malloc is fork-safe), calls the same
//! registration code as `register`, answers over a pipe and leaves with `_exit`.

use std::os::fd::AsFd;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::register::{queue_wait, QUEUE_RELEASE_WAIT_S};
use super::*;
use crate::kernel::zcrx::{Readonly, Target};

/// How long the child may take to register (including the wait for a queue's previous owner).
const START_LIMIT: Duration = Duration::from_secs(QUEUE_RELEASE_WAIT_S + 15);
/// How long the child may take to exit once released.
pub(super) const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// A started process: its pid and the pipe end whose closing tells it to exit.
pub(super) struct Proc {
    pub(super) pid: Pid,
    pub(super) release: Option<OwnedFd>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Closing the pipe lets it exit; reap it if it already has, else PDEATHSIG ends it
        // with the case process.
        self.release.take();
        let _ = waitpid(self.pid, Some(WaitPidFlag::WNOHANG));
    }
}

/// What the child sends back: the registration's answer (0 or an errno), or -1 when it
/// could not open its ring (-2: could not place the arguments).
fn answer(code: i32) -> [u8; 4] {
    code.to_ne_bytes()
}

/// Waits up to `limit` for `fd` to be readable.
pub(super) fn readable(fd: &OwnedFd, limit: Duration) -> bool {
    let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
    let ms = u16::try_from(limit.as_millis()).unwrap_or(u16::MAX);
    matches!(nix::poll::poll(&mut fds, ms), Ok(n) if n > 0)
}

/// Forks a helper process of the case that dies with it: stdio is flushed first (nothing is
/// written twice), and the child is killed when the case process goes (or leaves at once if it
/// already has).
///
/// # Safety
/// As `fork`: the child must run only async-signal-safe code and leave with `_exit`.
pub(super) unsafe fn fork_tied() -> Result<ForkResult, StepError> {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let parent = nix::unistd::getpid();
    // SAFETY: the caller's contract.
    let forked = unsafe { nix::unistd::fork() }.map_err(|e| harness(format!("fork: {e}")))?;
    if matches!(forked, ForkResult::Child) {
        die_with(parent);
    }
    Ok(forked)
}

/// In a forked child: be killed when `parent` (the case process) goes, and leave at once if it
/// already has.
fn die_with(parent: Pid) {
    // SAFETY: plain syscalls on our own process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent.as_raw() {
            libc::_exit(1);
        }
    }
}

/// Waits up to `limit` for `pid` to end: its status, or None if it is still running then.
pub(super) fn reap_within(pid: Pid, limit: Duration) -> Result<Option<WaitStatus>, StepError> {
    let until = Instant::now() + limit;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(s) => return Ok(Some(s)),
            Err(e) => return Err(harness(format!("waitpid({pid}): {e}"))),
        }
    }
}

impl Ctx<'_> {
    pub(super) fn process(&mut self, p: &Process, expect: Option<&Expect>) -> StepResult {
        match p {
            Process::Start(name) => self.process_start(name, expect),
            Process::Exit(name) => self.process_exit(name),
        }
    }

    fn process_start(&mut self, name: &str, expect: Option<&Expect>) -> StepResult {
        if self.procs.contains_key(name) {
            return Err(format!("process `{name}` is already running").into());
        }
        let mut reg = self.default_registration(&Register::default(), None)?;
        if let Target::Netdev { if_idx, .. } = reg.spec.target {
            self.device_allowed(if_idx)?;
        }
        let d = &self.case.def;
        let flags = setup_flags(&d.ring.flags)?;
        let (entries, cq_entries) = (d.ring.entries, d.ring.cq_entries);
        let wait = queue_wait(&reg.spec.target, expect);
        let (res_r, res_w) = sys::cloexec_pipe()?;
        let (rel_r, rel_w) = sys::cloexec_pipe()?;
        // SAFETY: the child runs only the registration code below and leaves with _exit.
        match unsafe { fork_tied() }? {
            ForkResult::Child => {
                drop(res_r);
                drop(rel_w);
                let code = match Ring::new(entries, flags, cq_entries) {
                    Err(_) => -1,
                    Ok(ring) => match reg.place(Readonly::default()) {
                        Err(_) => -2,
                        Ok(args) => {
                            let code = reg.call(ring.fd(), &args, 1, wait).0.err().unwrap_or(0);
                            // Held (never dropped) until the process exits.
                            std::mem::forget((ring, args));
                            code
                        }
                    },
                };
                let mut w = std::fs::File::from(res_w);
                let _ = w.write_all(&answer(code));
                drop(w);
                let mut b = [0u8; 1];
                // Blocks until the case closes its end (`exit`, or the case process ending).
                let _ = nix::unistd::read(&rel_r, &mut b);
                // SAFETY: leaving without running destructors: the ring and the instance go
                // with the process, which is what this step tests.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => {
                drop(res_w);
                drop(rel_r);
                drop(reg);
                let proc = Proc { pid: child, release: Some(rel_w) };
                let mut buf = [0u8; 4];
                let got = readable(&res_r, START_LIMIT)
                    .then(|| nix::unistd::read(&res_r, &mut buf).ok())
                    .flatten()
                    .filter(|n| *n == 4)
                    .map(|_| i32::from_ne_bytes(buf));
                let Some(code) = got else {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    return Err(harness(format!(
                        "process {name} (pid {child}) did not answer within {} s",
                        START_LIMIT.as_secs()
                    )));
                };
                self.procs.insert(name.to_string(), proc);
                let got: SysResult = match code {
                    0 => Ok(0),
                    -1 => return Err(harness(format!("process {name}: io_uring_setup of its ring failed"))),
                    c if c < 0 => return Err(harness(format!("process {name}: could not place the arguments"))),
                    e => Err(e),
                };
                self.note(format!("process {name} (pid {child}): IORING_REGISTER_ZCRX_IFQ -> {}", describe(&got)));
                self.check(&got, expect, &|_| None)
            }
        }
    }

    fn process_exit(&mut self, name: &str) -> StepResult {
        let mut p = self.procs.remove(name).ok_or_else(|| format!("no process named `{name}` is running"))?;
        p.release.take();
        let status = reap_within(p.pid, EXIT_LIMIT)?;
        self.note(format!("process {name} (pid {}) ended: {status:?}", p.pid));
        let r = match status {
            Some(WaitStatus::Exited(_, 0)) => Ok(()),
            None => {
                let _ = nix::sys::signal::kill(p.pid, nix::sys::signal::Signal::SIGKILL);
                Err(format!("process {name} did not exit within {} s of its release", EXIT_LIMIT.as_secs()).into())
            }
            Some(s) => Err(format!("process {name} ended with {s:?}, not exit status 0").into()),
        };
        self.verdict("process exit", r)
    }
}

impl Ctx<'_> {
    /// The `limit` step: RLIMIT_NOFILE down to the descriptors open, RLIMIT_MEMLOCK, and
    /// capabilities dropped from the effective set, for the rest of the case's process.
    pub(super) fn limit(&mut self, x: &Limit) -> StepResult {
        use crate::kernel::{creds, sys};
        if x.fresh_uid {
            let uid = creds::switch_to_fresh_uid().map_err(|e| format!("fresh uid: {e}"))?;
            self.note(format!("running as uid {uid}, a user no other process has (capabilities kept)"));
        }
        if let Some(bytes) = x.memlock {
            sys::set_rlimit(libc::RLIMIT_MEMLOCK, bytes, Some(bytes)).map_err(|e| format!("RLIMIT_MEMLOCK: {e}"))?;
            self.note(format!("RLIMIT_MEMLOCK {bytes} bytes"));
        }
        if !x.drop_caps.is_empty() {
            let caps = x
                .drop_caps
                .iter()
                .map(|c| creds::cap_by_name(c).ok_or_else(|| format!("unknown capability {c}")))
                .collect::<Result<Vec<u32>, String>>()?;
            creds::drop_effective_caps(&caps).map_err(|e| format!("capset: {e}"))?;
            self.note(format!("dropped CAP_{} from the effective set", x.drop_caps.join(", CAP_")));
        }
        if let Some(keep) = &x.keep_caps {
            let caps = keep
                .iter()
                .map(|c| creds::cap_by_name(c).ok_or_else(|| format!("unknown capability {c}")))
                .collect::<Result<Vec<u32>, String>>()?;
            creds::keep_effective_caps(&caps).map_err(|e| format!("capset: {e}"))?;
            let kept = if keep.is_empty() { "none".to_string() } else { format!("CAP_{}", keep.join(", CAP_")) };
            self.note(format!("effective capabilities: {kept}"));
        }
        if x.close_stdin {
            // The case's own stdin (the runner gives it /dev/null), nothing the case opened.
            nix::unistd::close(0).map_err(|e| format!("close(0): {e}"))?;
            self.note("descriptor 0 closed: the next new descriptor is 0".into());
        }
        if x.nofile_used {
            let (limit, holes) = crate::kernel::fds::use_up_fds().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
            self.note(format!("RLIMIT_NOFILE {limit}, every descriptor below it open ({holes} free slot(s) filled)"));
        }
        Ok(())
    }

    /// The `expect_pinned` step: VmPin of the case process, polled up to `wait_ms`.
    pub(super) fn expect_pinned(&mut self, x: &ExpectPinned) -> StepResult {
        let have = poll_until(
            Duration::from_millis(x.wait_ms),
            Duration::from_millis(2),
            || crate::kernel::creds::vm_pin_kib().map_err(|e| format!("VmPin: {e}")),
            |have| *have == x.kib,
        )?;
        self.note(format!("VmPin {have} kB"));
        self.verdict("pinned KiB", exact("pinned KiB", Some(x.kib), have))
    }

    pub(super) fn dmabuf(&mut self, x: &Dmabuf) -> StepResult {
        let z = x.zcrx.as_deref().unwrap_or("z0");
        let ino = *self
            .st
            .last
            .get(&format!("{z}.dmabuf_ino"))
            .ok_or_else(|| format!("zcrx `{z}` has no dma-buf area (register: {{ area_dmabuf: true }})"))?;
        if x.close {
            self.st
                .fds
                .remove(&format!("{z}.dmabuf"))
                .ok_or_else(|| format!("`{z}`'s dma-buf descriptor is already closed"))?;
            self.note(format!("closed the case's descriptor of dma-buf ino {ino}"));
        }
        let wait = Duration::from_millis(if x.listed { 0 } else { x.wait_ms });
        let found = poll_until(wait, Duration::from_millis(5), || dmabuf_count(ino), |c| c.is_some() == x.listed)?;
        match found {
            Some(count) => self.note(format!("dma-buf ino {ino} listed, file count {count}")),
            None => self.note(format!("dma-buf ino {ino} not listed")),
        }
        self.verdict("dma-buf listed", exact("dma-buf listed", Some(u64::from(x.listed)), u64::from(found.is_some())))
    }
}

/// The file count of the dma-buf with inode `ino` as debugfs lists it, or None when it is not
/// listed (released); a kernel without the list skips.
fn dmabuf_count(ino: u64) -> Result<Option<u64>, StepError> {
    use crate::kernel::sys::{dmabuf_bufinfo_count, DMABUF_BUFINFO};
    let text = std::fs::read_to_string(DMABUF_BUFINFO).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            StepError::Skip(format!("no {DMABUF_BUFINFO} (debugfs not mounted, or a kernel without CONFIG_DEBUG_FS)"))
        }
        _ => harness(format!("{DMABUF_BUFINFO}: {e}")),
    })?;
    dmabuf_bufinfo_count(&text, ino).map_err(|line| harness(format!("{DMABUF_BUFINFO}: cannot read line `{line}`")))
}
