//! Runs the suite inside virtme-ng VMs booting a chosen kernel. The host resolves the
//! kernel (Debian package, a bzImage/vmlinuz path, or a kernel build tree), boots it
//! with `vng`, and runs this same binary inside with `--stream`; results come back
//! line by line, so a guest panic or hang keeps every earlier result. The running
//! case is reported failed with the console tail and the VM is booted again for the
//! remaining cases.

pub(crate) mod boot;
mod error;
pub(crate) mod flavour;
mod initramfs;
pub(crate) mod kernel;
pub(crate) mod qemu;
pub(crate) mod scripts;
pub(crate) mod spec;
mod symbols;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::model::event::Event;
use crate::model::{CaseReport, CaseResult, Probe, RunReport};
use crate::run::progress::Progress;
use crate::run::{signal, RunOpts};

pub use boot::{kvm_usable, shell_quote};
pub use error::Error;
pub use kernel::*;
pub use scripts::series_left_out;
pub use spec::{KernelArg, KernelArgs, KernelSpec, DEFAULT_KERNEL};
pub use symbols::{symbolize, symbolize_saved};

/// The longest a guest's kmemleak scan may keep it silent (two scans of 20-64 s measured
/// under TCG with KASAN, on a loaded machine).
const LEAK_SCAN_LIMIT: Duration = Duration::from_secs(900);
/// Crashed or hung VMs tolerated in one run before giving up on the rest.
const MAX_REBOOTS: usize = 5;
/// Boots that die before the guest runner answers (a panic or exit during boot, not a
/// timeout), booted again before the run fails. Under TCG a multi-CPU guest sometimes
/// panics in early boot (text patching racing another vCPU); no case has run then, so a
/// second boot loses nothing. A kernel that cannot boot still fails after 1 + this many.
const BOOT_RETRIES: usize = 2;

#[derive(Clone, Debug)]
pub struct VmOpts {
    /// Case files or directories, passed to the guest runner.
    pub paths: Vec<PathBuf>,
    /// What the guest runner does (topologies, selection, timeout, self-check, quiet).
    pub run: RunOpts,
    pub memory: String,
    pub cpus: u32,
    /// Environment for the guest command (tool and module paths).
    pub env: Vec<(String, String)>,
}

enum Ev {
    Out(String),
    Err(String),
    OutClosed,
}

/// The guest's command line: this binary's `run --stream` with the run's options, resuming
/// after `start_at` results.
pub(crate) fn guest_command(exe: &Path, paths: &[PathBuf], o: &VmOpts, start_at: usize, jobs: usize) -> String {
    let r = &o.run;
    let mut guest = guest_prefix(exe, &o.env);
    guest.push("run".into());
    guest.extend(paths.iter().map(|p| shell_quote(&p.display().to_string())));
    guest.push(format!("--topology={}", shell_quote(&r.topologies.join(","))));
    guest.extend(r.selection.filter.iter().map(|f| format!("--filter={}", shell_quote(f))));
    guest.extend(r.selection.fixes.iter().map(|f| format!("--fixes={}", shell_quote(f))));
    guest.extend(r.selection.cve.iter().map(|c| format!("--cve={}", shell_quote(c))));
    if r.selection.exact {
        guest.push("--exact".into());
    }
    guest.push(format!("--timeout={}", r.timeout));
    guest.push(format!("--jobs={jobs}"));
    if r.self_check {
        guest.push("--self-check".into());
    }
    if let Some((k, n)) = r.selection.shard {
        guest.push(format!("--shard={k}/{n}"));
    }
    if r.selection.repeat > 1 {
        guest.push(format!("--repeat={}", r.selection.repeat));
    }
    guest.push(format!("--start-at={start_at}"));
    guest.push("--stream".into());
    guest.join(" ")
}

fn push_tail(console: &mut VecDeque<String>, l: String) {
    if console.len() >= 60 {
        console.pop_front();
    }
    console.push_back(l);
}

/// The last `n` lines of a console tail, one string.
fn last_lines(tail: &[String], n: usize) -> String {
    tail[tail.len().saturating_sub(n)..].join("\n")
}

/// The path of this binary, which the guest runs from the host's root (mounted read-only).
fn this_exe() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(Error::io("current_exe"))?;
    Ok(exe.canonicalize().unwrap_or(exe))
}

/// The start of a guest command line: the environment assignments, then this binary.
fn guest_prefix(exe: &Path, env: &[(String, String)]) -> Vec<String> {
    let mut guest: Vec<String> = env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))).collect();
    guest.push(shell_quote(&exe.display().to_string()));
    guest
}

/// Boots `kernel` and runs the suite in it; `label` names the kernel in reports.
pub fn run_in_vm(spec_label: &str, kernel: &Path, o: &VmOpts) -> Result<RunReport, Error> {
    let exe = this_exe()?;
    let mut paths = Vec::new();
    for p in &o.paths {
        // A built-in path means the same to the guest, which runs this same binary.
        if crate::paths::builtin::is_builtin(p) {
            paths.push(p.clone());
            continue;
        }
        paths.push(p.canonicalize().map_err(|e| Error::BadSpec(format!("{}: {e}", p.display())))?);
    }
    // A guest of another architecture (arm64) boots its own initramfs under qemu (qemu.rs),
    // runs the harness built for it, and reads the catalogue copied to the host's paths.
    let (foreign, exe, guest_env) = match qemu::image_arch(kernel) {
        a if a == flavour::Arch::HOST => (None, exe, o.env.clone()),
        a => {
            let (f, env) = qemu::Foreign::prepare(kernel, a, &paths, &o.env)?;
            (Some(f), PathBuf::from(qemu::GUEST_EXE), env)
        }
    };
    let guest_opts = VmOpts { env: guest_env, ..o.clone() };
    let kvm = foreign.is_none() && kvm_usable(kernel);
    // How long a boot may take before the first line from the guest (a debug build's longer).
    let boot_timeout = boot::boot_timeout(boot::boot_needs(kernel));
    let t_all = Instant::now();
    let mut report = RunReport::new(spec_label, Probe::default(), &o.run.topologies);
    let mut total: Option<usize> = None;
    let mut boots = 0usize;
    let mut boot_times = Vec::new();
    let mut boot_failures = 0usize;
    let mut progress = Progress::new(false, o.run.quiet, spec_label);
    let mut jobs = o.run.jobs;
    loop {
        let start_at = report.cases.len();
        if total.is_some_and(|t| start_at >= t) {
            break;
        }
        if boots > MAX_REBOOTS {
            report.aborted = Some(format!("gave up after {boots} VM boots"));
            break;
        }
        if signal::interrupted().is_some() {
            report.aborted = Some("interrupted".into());
            break;
        }
        boots += 1;
        let line = guest_command(&exe, &paths, &guest_opts, start_at, jobs);
        let (mut cmd, what) = match &foreign {
            Some(f) => (f.command(&o.memory, o.cpus, &line)?, "starting qemu-system-aarch64 (vm/guest-root.sh)"),
            None => (
                boot::vng(kernel, &o.memory, o.cpus, true, &line),
                "starting vng (is virtme-ng installed? vm/provision.sh)",
            ),
        };
        cmd.stderr(Stdio::piped());
        let t_boot = Instant::now();
        let mut child = cmd.spawn().map_err(Error::io(what))?;
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (tx, rx) = mpsc::channel::<Ev>();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(Ev::Out(l)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Ev::OutClosed);
            });
        }
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for l in BufReader::new(err).lines().map_while(Result::ok) {
                    if tx.send(Ev::Err(l)).is_err() {
                        return;
                    }
                }
            });
        }
        let mut console: VecDeque<String> = VecDeque::new();
        // Each running case, when it started, and how long the host waits for it.
        let mut running: Vec<(String, Instant, Duration)> = Vec::new();
        let mut booted = false;
        // The boot itself ran past its timeout (a hang, not a panic: not booted again).
        let mut boot_timed_out = false;
        let mut last_activity = Instant::now();
        let mut died: Option<String> = None;
        // A case may run its own timeout; past that plus a margin (the guest kills it, then
        // reports) with nothing on the console, the guest is hung.
        let case_limit = |timeout_s: Option<f64>| Duration::from_secs_f64(timeout_s.unwrap_or(o.run.timeout) + 60.0);
        // A kmemleak scan (a debug kernel) holds the batch's results back and prints nothing
        // for minutes under TCG: the guest is not hung meanwhile.
        let mut scanning: Option<Instant> = None;
        // The guest's zcrx.gcda parts so far (Event::Gcov).
        let mut gcov: Vec<String> = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                // The guest's script writes to the console when virtme-ng finds no virtio-serial
                // port for it (udev settle cut short under load: "cannot find script I/O ports"),
                // so its events come on vng's stderr then; the frame marker tells them apart.
                Ok(Ev::Err(l)) if Event::decode(&l).is_none() => push_tail(&mut console, l),
                Ok(Ev::Out(l) | Ev::Err(l)) => {
                    last_activity = Instant::now();
                    let Some(ev) = Event::decode(&l) else { continue };
                    // A guest booted again repeats the total; outcomes are the guest runner's own.
                    if matches!(ev, Event::Outcome { .. }) || (matches!(ev, Event::Total { .. }) && total.is_some()) {
                        continue;
                    }
                    progress.event(&ev);
                    scanning = matches!(ev, Event::LeakScan { .. }).then(Instant::now);
                    match ev {
                        Event::Probe { probe } => {
                            if !booted {
                                boot_times.push(t_boot.elapsed().as_secs_f64());
                                booted = true;
                            }
                            report.probe = *probe;
                        }
                        Event::Total { total: t } => total = Some(t),
                        // A self-check starts one case once per inverted assertion: one entry.
                        Event::Start { id, timeout_s } => {
                            running.retain(|(r, _, _)| *r != id);
                            running.push((id, Instant::now(), case_limit(timeout_s)));
                        }
                        // Ended with a splat beside another case; it starts again alone later.
                        Event::Suspect { id } => running.retain(|(r, _, _)| *r != id),
                        Event::Result { case } => {
                            running.retain(|(id, _, _)| *id != case.id);
                            report.cases.push(*case);
                        }
                        Event::Leaked { id, objects } => {
                            if let Some(c) = report.cases.iter_mut().rev().find(|c| c.id == id) {
                                let result = CaseResult::Leak { objects, result: Box::new(c.result.clone()) };
                                c.set_result(result);
                            }
                        }
                        Event::Gcov { part, parts, hex } => {
                            if part == 0 {
                                gcov.clear();
                            }
                            if part == gcov.len() {
                                gcov.push(hex);
                            }
                            if part + 1 == parts && gcov.len() == parts {
                                report.zcrx_gcda.push(gcov.concat());
                            } else if part + 1 == parts {
                                eprintln!("{spec_label}: the guest's zcrx.gcda came with a part missing; not kept");
                            }
                        }
                        Event::Outcome { .. } | Event::LeakScan { .. } => {}
                    }
                }
                Ok(Ev::OutClosed) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if signal::interrupted().is_some() {
                died = Some("interrupted".into());
                break;
            }
            if !booted && t_boot.elapsed() > boot_timeout {
                died = Some(format!("the VM did not start the suite within {} s", boot_timeout.as_secs()));
                boot_timed_out = true;
                break;
            }
            let in_scan = scanning.is_some_and(|t| t.elapsed() < LEAK_SCAN_LIMIT);
            let overdue = running.iter().find(|(_, t, limit)| t.elapsed() > *limit && last_activity.elapsed() > *limit);
            if let (true, false, Some((_, _, limit))) = (booted, in_scan, overdue) {
                died = Some(format!("the VM stopped responding for {} s", limit.as_secs()));
                break;
            }
        }
        if died.is_some() {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        let status = child.wait().ok();
        let code = match &foreign {
            Some(f) => f.exit_code(status),
            None => status.and_then(|s| s.code()),
        };
        // Drain what stderr still had.
        while let Ok(ev) = rx.try_recv() {
            if let Ev::Err(l) = ev {
                push_tail(&mut console, l);
            }
        }
        let finished = total.is_some_and(|t| report.cases.len() >= t);
        if finished && died.is_none() {
            break;
        }
        let why = died.unwrap_or_else(|| match code {
            Some(255) => "the VM exited with 255 (kernel panic?)".into(),
            Some(c) => format!("the VM exited with {c} before the suite finished"),
            None => "the VM was killed".into(),
        });
        if why == "interrupted" {
            report.aborted = Some(why);
            break;
        }
        let tail: Vec<String> = console.iter().cloned().collect();
        if running.len() > 1 {
            // Several cases ran at once: the kernel cannot say which one crashed it. Boot
            // again and run the rest one at a time; the culprit then fails alone.
            eprintln!(
                "{spec_label}: {why} while {} cases ran at once; running the rest one at a time; console tail:\n{}",
                running.len(),
                last_lines(&tail, 40)
            );
            jobs = 1;
            continue;
        }
        match running.pop() {
            Some((id, t, _)) => {
                let mut c = CaseReport { log: tail, duration_s: t.elapsed().as_secs_f64(), ..CaseReport::new(&id) };
                c.set_result(CaseResult::GuestCrashed { why });
                progress.event(&Event::Result { case: Box::new(c.clone()) });
                report.cases.push(c);
            }
            None if !booted && !boot_timed_out && boot_failures < BOOT_RETRIES => {
                boot_failures += 1;
                eprintln!(
                    "{spec_label}: {why} during boot, before the suite started; booting again ({boot_failures} of \
                     {BOOT_RETRIES}); console tail:\n{}",
                    last_lines(&tail, 12)
                );
            }
            // Nothing to keep yet: the kernel does not boot.
            None if !booted && report.cases.is_empty() => {
                return Err(Error::Boot(format!("{why}; console tail:\n{}", tail.join("\n"))));
            }
            // A boot after a crash that never answers: the results so far are kept.
            None => {
                let when = if booted { "between cases" } else { "booting again after a crash" };
                report.aborted = Some(format!("{why} {when}; console tail:\n{}", tail.join("\n")));
                break;
            }
        }
    }
    progress.finish();
    if o.run.self_check {
        let (a, k, s, ks) = crate::run::selfcheck::totals(&report.cases);
        eprintln!("{spec_label}: self-check: {k} of {a} assertion(s) killed; set-up assertions {ks} of {s}");
    }
    report.duration_s = t_all.elapsed().as_secs_f64();
    let boot_total: f64 = boot_times.iter().sum();
    let t = &mut report.timings;
    t.vm_boots = Some(boots as u64);
    t.vm_boot_s = Some(boot_total);
    t.vm_boot_failures = Some(boot_failures as u64);
    t.suite_s = Some(report.cases.iter().map(|c| c.duration_s).sum());
    t.total_s = Some(report.duration_s);
    t.kvm = Some(kvm);
    Ok(report)
}

/// Lines of a guest's stderr a timeout reports (of the console tail [`push_tail`] keeps).
const GUEST_TAIL: usize = 12;

/// Why [`run_command_in_vm`] has no output.
#[derive(Debug)]
pub enum GuestError {
    /// The guest ran past its time limit and was killed; the last lines it wrote on stderr
    /// (a campaign guest's `start ID` lines name the case it hung in), and every `end STATUS
    /// ID` line it wrote (the cases it finished before).
    TimedOut(Duration, Vec<String>, Vec<String>),
    /// The guest command ran and exited unsuccessfully (or was killed by a signal inside the
    /// guest): its exit status, its stdout and the last lines of its stderr (a campaign guest's
    /// `start ID` lines name the case it was in).
    Exited { status: String, stdout: String, tail: Vec<String>, ended: Vec<String> },
    /// It could not start (the message says why).
    Failed(String),
    /// SIGINT or SIGTERM (its number) reached this process: the guest was killed.
    Interrupted(i32),
}

impl GuestError {
    /// The last lines the guest wrote on stderr, where it ran at all.
    pub fn stderr_tail(&self) -> &[String] {
        match self {
            GuestError::TimedOut(_, tail, _) | GuestError::Exited { tail, .. } => tail,
            GuestError::Failed(_) | GuestError::Interrupted(_) => &[],
        }
    }

    /// The `end STATUS ID` lines the guest wrote before it hung or died (see
    /// [`crate::run::RunOpts::announce`]).
    pub fn ended(&self) -> &[String] {
        match self {
            GuestError::TimedOut(_, _, ended) | GuestError::Exited { ended, .. } => ended,
            GuestError::Failed(_) | GuestError::Interrupted(_) => &[],
        }
    }
}

impl std::fmt::Display for GuestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestError::TimedOut(d, tail, _) if tail.is_empty() => {
                write!(f, "the VM did not finish within {} s", d.as_secs())
            }
            GuestError::TimedOut(d, tail, _) => {
                write!(f, "the VM did not finish within {} s; its last lines:\n{}", d.as_secs(), tail.join("\n"))
            }
            GuestError::Exited { status, stdout, tail, .. } => {
                write!(f, "the guest command failed ({status}); output:\n{stdout}")?;
                if !tail.is_empty() {
                    write!(f, "\nits last lines on stderr:\n{}", tail.join("\n"))?;
                }
                Ok(())
            }
            GuestError::Failed(m) => f.write_str(m),
            GuestError::Interrupted(sig) => write!(f, "interrupted by signal {sig}; the VM was stopped"),
        }
    }
}

impl std::error::Error for GuestError {}

impl From<GuestError> for String {
    fn from(e: GuestError) -> String {
        e.to_string()
    }
}

/// Boots `kernel` and runs this binary with `args` inside; returns the guest's stdout.
/// For commands other than `run` (bench, probe): no streaming, no resume.
pub fn run_command_in_vm(
    kernel: &Path,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<String, GuestError> {
    if qemu::image_arch(kernel) != flavour::Arch::HOST {
        return Err(GuestError::Failed(format!(
            "{}: a guest of another architecture runs `run` only yet (docs/flavours.md)",
            kernel.display()
        )));
    }
    let mut guest = guest_prefix(&this_exe().map_err(|e| GuestError::Failed(e.to_string()))?, env);
    guest.extend(args.iter().map(|a| shell_quote(a)));
    let mut child = boot::vng(kernel, "2G", 2, false, &guest.join(" "))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| GuestError::Failed(format!("starting vng: {e}")))?;
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = child.stdout.take().ok_or_else(|| GuestError::Failed("no stdout".into()))?;
    // The guest's stderr goes on to ours, and its last lines are kept for a timeout.
    let tail = std::sync::Arc::new(std::sync::Mutex::new(VecDeque::<String>::new()));
    let ended = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (err_done, stderr_closed) = mpsc::channel::<()>();
    if let Some(err) = child.stderr.take() {
        let tail = tail.clone();
        let ended = ended.clone();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(BufReader::new(err)).map_while(Result::ok) {
                eprintln!("{line}");
                if line.starts_with("end ") {
                    if let Ok(mut e) = ended.lock() {
                        e.push(line.clone());
                    }
                }
                if let Ok(mut t) = tail.lock() {
                    push_tail(&mut t, line);
                }
            }
            let _ = err_done.send(());
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(out), &mut s);
        let _ = tx.send(s);
    });
    // The last GUEST_TAIL lines of the guest's stderr (not the module's `last_lines`, which
    // joins a console tail for a message).
    let stderr_tail = |tail: &std::sync::Mutex<VecDeque<String>>| -> Vec<String> {
        tail.lock().map(|t| t.iter().skip(t.len().saturating_sub(GUEST_TAIL)).cloned().collect()).unwrap_or_default()
    };
    let ended_lines = |ended: &std::sync::Mutex<Vec<String>>| ended.lock().map(|e| e.clone()).unwrap_or_default();
    // Waits in short steps so that SIGINT/SIGTERM (the handlers only record them) stops the
    // VM's whole process group instead of leaving it running.
    let deadline = std::time::Instant::now() + timeout;
    let stop = |child: &mut std::process::Child| {
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    };
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if let Some(sig) = crate::run::signal::interrupted() {
            stop(&mut child);
            return Err(GuestError::Interrupted(sig));
        }
        match rx.recv_timeout(left.min(Duration::from_millis(250))) {
            Ok(stdout) => {
                let st = child.wait().map_err(|e| GuestError::Failed(e.to_string()))?;
                if st.success() {
                    return Ok(stdout);
                }
                // The guest has exited; its stderr is drained once the forwarding thread sees
                // the pipe close (bounded, should something else still hold the pipe open).
                let _ = stderr_closed.recv_timeout(Duration::from_secs(5));
                return Err(GuestError::Exited {
                    status: st.to_string(),
                    stdout,
                    tail: stderr_tail(&tail),
                    ended: ended_lines(&ended),
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                stop(&mut child);
                return Err(GuestError::Failed("the guest's stdout reader stopped".into()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                stop(&mut child);
                return Err(GuestError::TimedOut(timeout, stderr_tail(&tail), ended_lines(&ended)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_tail_keeps_the_last_lines() {
        let t: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        assert_eq!(last_lines(&t, 2), "4\n5");
        assert_eq!(last_lines(&t, 40), "1\n2\n3\n4\n5");
        assert_eq!(last_lines(&[], 3), "");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
