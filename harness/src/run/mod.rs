//! Runs cases: decides run/skip from the probe, executes each case in its own child
//! process with a timeout, watches the kernel log, and collects results.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::case::{Cap, Case};
use crate::model::Probe;
use crate::model::{CaseReport, Outcome, RunReport, Status};
use crate::topology;

#[derive(Clone, Debug)]
pub struct RunOpts {
    pub topologies: Vec<String>,
    pub filter: Vec<String>,
    pub timeout: f64,
    /// Emit machine-readable progress lines on stdout (used inside VMs).
    pub stream: bool,
    pub quiet: bool,
    /// Skip this many selected cases (a VM booted again after a crash resumes here).
    pub start_at: usize,
    /// Run only shard K of N (1-based): a stable hash of the case id picks the shard, so
    /// N runners together run every case exactly once.
    pub shard: Option<(u32, u32)>,
    /// Run every case with its assertions inverted; report cases that still pass.
    pub self_check: bool,
}

/// FNV-1a of the case id: stable across runs, machines and added cases.
pub fn shard_of(id: &str, n: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n.max(1) as u64) as u32 + 1
}

/// Parses "K/N" with 1 <= K <= N.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (k, n) = s.split_once('/').ok_or_else(|| format!("--shard `{s}`: expected K/N, e.g. 2/3"))?;
    let k: u32 = k.trim().parse().map_err(|_| format!("--shard `{s}`: K is not a number"))?;
    let n: u32 = n.trim().parse().map_err(|_| format!("--shard `{s}`: N is not a number"))?;
    if n == 0 || k == 0 || k > n {
        return Err(format!("--shard `{s}`: need 1 <= K <= N"));
    }
    Ok((k, n))
}

/// The cases a run executes, in order: the filter, then the shard.
pub fn select<'c>(cases: &'c [Case], opts: &RunOpts) -> Vec<&'c Case> {
    cases
        .iter()
        .filter(|c| opts.filter.is_empty() || opts.filter.iter().any(|f| c.id.contains(f.as_str())))
        .filter(|c| opts.shard.is_none_or(|(k, n)| shard_of(&c.id, n) == k))
        .collect()
}

pub const STREAM_TAG: &str = "@@ZCRX@@";

pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C / SIGTERM stop the run after killing the running case; reports are still written.
pub fn install_signal_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let sa = SigAction::new(SigHandler::Handler(on_sigint), SaFlags::empty(), SigSet::empty());
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(s, &sa) };
    }
}

/// Decides where a case runs, or why it cannot.
pub fn plan(case: &Case, run_topos: &[String], probe: &Probe) -> Result<String, String> {
    let d = &case.def;
    let case_topos: Vec<String> = if d.requires.topology.is_empty() {
        topology::DEFAULT_CASE.iter().map(|s| s.to_string()).collect()
    } else {
        d.requires.topology.clone()
    };
    if let Some(k) = &d.requires.kernel {
        if !probe.version_in(k.min.as_deref(), k.max.as_deref()) {
            return Err(format!(
                "needs kernel {}{}; running {}",
                k.min.as_deref().map(|m| format!(">= {m}")).unwrap_or_default(),
                k.max.as_deref().map(|m| format!(" <= {m}")).unwrap_or_default(),
                probe.kernel_release
            ));
        }
    }
    for f in &d.requires.features {
        if !probe.features.contains(f) {
            return Err(probe.missing_reason(*f));
        }
    }
    let needs_admin = match &d.requires.caps {
        Some(c) => c.contains(&Cap::NetAdmin),
        None => d.steps.iter().any(|s| s.value.register.is_some()),
    };
    if needs_admin && !probe.cap_net_admin {
        return Err("needs CAP_NET_ADMIN (run as root)".into());
    }
    let mut why = Vec::new();
    for t in run_topos {
        if !case_topos.contains(t) {
            continue;
        }
        if t == "nodev" && !probe.features.contains(&crate::model::Feature::Nodev) {
            why.push(probe.missing_reason(crate::model::Feature::Nodev));
            continue;
        }
        return Ok(t.clone());
    }
    if why.is_empty() {
        Err(format!("needs topology {} (this run has {})", case_topos.join(" or "), run_topos.join(", ")))
    } else {
        Err(why.join("; "))
    }
}

/// Kernel log watcher over /dev/kmsg.
pub struct Kmsg {
    f: Option<std::fs::File>,
}

const SPLAT: &[&str] = &[
    "WARNING:",
    "BUG:",
    "Oops",
    "KASAN",
    "UBSAN",
    "kernel BUG",
    "general protection fault",
    "Kernel panic",
    "refcount_t:",
    "list_add corruption",
    "list_del corruption",
    "RCU stall",
    "hung_task",
];

pub fn is_splat(line: &str) -> bool {
    SPLAT.iter().any(|p| line.contains(p))
}

impl Kmsg {
    pub fn open() -> Kmsg {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").ok();
        let mut k = Kmsg { f };
        k.skip_to_end();
        k
    }

    fn skip_to_end(&mut self) {
        if let Some(f) = &self.f {
            // SAFETY: lseek on our own fd.
            unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
        }
    }

    /// Records printed since the last call.
    pub fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(f) = &mut self.f else { return out };
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let msg = rec.split_once(';').map(|(_, m)| m).unwrap_or(&rec);
                    for l in msg.lines() {
                        if !l.starts_with(' ') || l.trim_start().starts_with(|c: char| c.is_ascii_uppercase()) {
                            out.push(l.trim_end().to_string());
                        }
                    }
                }
                // EPIPE: records were overwritten; keep reading from the next one.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }
}

/// Runs one case in a child process (`<exe> exec-case`) with a timeout; the bool says
/// whether the run was interrupted meanwhile.
pub fn run_child(
    exe: &std::path::Path,
    case: &Case,
    topo: &str,
    timeout: f64,
    invert: bool,
    topo_json: Option<&str>,
) -> (Outcome, bool) {
    let mut cmd = Command::new(exe);
    // The case process dies with the harness (a killed run leaves nothing running).
    // SAFETY: prctl is async-signal-safe and touches only the child.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    if let Some(j) = topo_json {
        cmd.env(topology::ENV, j);
    }
    if invert {
        cmd.arg("exec-case").arg("--invert");
    } else {
        cmd.arg("exec-case");
    }
    let child = cmd
        .arg(&case.file)
        .arg("--index")
        .arg(case.index.to_string())
        .arg("--topology")
        .arg(topo)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (fail(format!("harness: spawn: {e}")), false),
    };
    let out = child.stdout.take().map(|s| std::thread::spawn(move || read_all(s)));
    let err = child.stderr.take().map(|s| std::thread::spawn(move || read_all(s)));
    let start = Instant::now();
    let mut timed_out = false;
    let mut interrupted = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(_) => break None,
        }
        if start.elapsed().as_secs_f64() > timeout {
            timed_out = true;
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            interrupted = true;
        }
        if timed_out || interrupted {
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    let parsed = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("@@OUTCOME@@ "))
        .and_then(|j| serde_json::from_str::<Outcome>(j).ok());
    let tail = |s: &str| -> Vec<String> {
        let lines: Vec<&str> = s.lines().filter(|l| !l.starts_with("@@OUTCOME@@")).collect();
        lines[lines.len().saturating_sub(40)..].iter().map(|l| l.to_string()).collect()
    };
    let outcome = match (parsed, timed_out, interrupted) {
        (_, true, _) => {
            let mut o = fail(format!("timed out after {timeout} s; killed"));
            o.log = tail(&stdout);
            o.log.extend(tail(&stderr).into_iter().map(|l| format!("stderr: {l}")));
            o
        }
        (_, _, true) => fail("interrupted".into()),
        (Some(o), _, _) => o,
        (None, _, _) => {
            let how = match status {
                Some(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    match s.signal() {
                        Some(sig) => format!("killed by signal {sig}"),
                        None => format!("exited with {}", s.code().unwrap_or(-1)),
                    }
                }
                None => "vanished".into(),
            };
            let mut o = fail(format!("case process crashed ({how}) without a result"));
            o.log = tail(&stdout);
            o.log.extend(tail(&stderr).into_iter().map(|l| format!("stderr: {l}")));
            o
        }
    };
    (outcome, interrupted)
}

fn read_all<R: Read>(r: R) -> String {
    let mut s = String::new();
    for line in BufReader::new(r).lines() {
        match line {
            Ok(l) => {
                s.push_str(&l);
                s.push('\n');
            }
            Err(_) => break,
        }
    }
    s
}

fn fail(message: String) -> Outcome {
    Outcome::fail(message)
}

/// Runs the cases; `on_result` sees each result as it is known (progress, streaming).
pub fn run(cases: &[Case], opts: &RunOpts, probe: &Probe, target: &str) -> RunReport {
    let start = Instant::now();
    let mut kmsg = Kmsg::open();
    let mut report = RunReport {
        target: target.to_string(),
        probe: probe.clone(),
        topologies: opts.topologies.clone(),
        cases: Vec::new(),
        duration_s: 0.0,
        aborted: None,
        timings: Vec::new(),
    };
    let selected = select(cases, opts);
    // Bring up the topologies this run provides; a failure skips their cases with the reason.
    let tools = topology::Tools::from_env();
    let mut provided: Vec<(String, topology::Topo, Option<topology::Active>)> = Vec::new();
    let mut broken: Vec<(String, String)> = Vec::new();
    for (slot, name) in opts.topologies.iter().enumerate() {
        if let Some(t) = topology::Topo::builtin(name) {
            provided.push((name.clone(), t, None));
            continue;
        }
        match topology::load(name).and_then(|f| {
            let kind = serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            f.up(&tools, slot as u32).map(|a| (kind, a))
        }) {
            Ok((kind, mut a)) => {
                if let Err(e) = a.snapshot_dut() {
                    a.log.push(format!("cannot record DUT settings: {e}"));
                }
                for l in &a.log {
                    if !opts.quiet && !opts.stream {
                        eprintln!("{l}");
                    }
                }
                provided.push((kind, a.topo.clone(), Some(a)));
            }
            Err(e) => {
                eprintln!("topology {name}: {e}");
                broken.push((name.clone(), e));
            }
        }
    }
    let kinds: Vec<String> = provided.iter().map(|(k, _, _)| k.clone()).collect();
    if opts.stream {
        println!("{STREAM_TAG} probe {}", serde_json::to_string(probe).unwrap_or_default());
        println!("{STREAM_TAG} total {}", selected.len());
    }
    let tty = !opts.stream && !opts.quiet && nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
    let total = selected.len();
    for (n, case) in selected.into_iter().enumerate().skip(opts.start_at) {
        if INTERRUPTED.load(Ordering::SeqCst) {
            report.aborted = Some("interrupted".into());
            break;
        }
        let d = &case.def;
        let mut cr = CaseReport {
            id: case.id.clone(),
            file: case.file.display().to_string(),
            area: d.area.name().to_string(),
            about: d.about.clone(),
            spec: d.spec.clone(),
            topology: None,
            status: Status::Skip,
            message: String::new(),
            log: Vec::new(),
            kernel_log: Vec::new(),
            duration_s: 0.0,
            kernel_specific: vec![],
            harness_error: false,
        };
        if opts.stream {
            println!("{STREAM_TAG} start {}", serde_json::to_string(&case.id).unwrap_or_default());
        }
        if tty {
            eprint!("\r\x1b[K[{}/{total}] {} {}", n + 1, target, case.id);
        }
        match plan(case, &kinds, probe) {
            Err(reason) => {
                // A topology the case needs failed to come up: say so rather than "not provided".
                let wanted = &case.def.requires.topology;
                cr.message = match broken.iter().find(|(n, _)| wanted.contains(n)) {
                    Some((n, e)) => format!("topology {n} could not be set up: {e}"),
                    None => reason,
                };
            }
            Ok(kind) => {
                let t0 = Instant::now();
                kmsg.drain();
                let timeout = d.timeout.unwrap_or(opts.timeout);
                let entry = provided.iter().find(|(k, _, _)| *k == kind);
                let topo_json = entry.map(|(_, t, _)| serde_json::to_string(t).unwrap_or_default());
                let (o, interrupted) = match std::env::current_exe() {
                    Ok(exe) => run_child(&exe, case, &kind, timeout, opts.self_check, topo_json.as_deref()),
                    Err(e) => (fail(format!("harness: current_exe: {e}")), false),
                };
                if let Some((_, _, Some(a))) = entry {
                    if case.def.steps.iter().any(|s| s.value.ethtool.is_some()) {
                        for e in a.restore_settings() {
                            eprintln!("restoring settings after {}: {e}", case.id);
                        }
                    }
                }
                let topo = kind;
                cr.duration_s = t0.elapsed().as_secs_f64();
                cr.topology = Some(topo);
                cr.status = o.status;
                cr.message = o.message;
                if !opts.self_check {
                    apply_deviation(case, probe, &mut cr);
                }
                if opts.self_check {
                    // Inverted, a case must fail at an inverted assertion; passing means it
                    // cannot fail. Other failures (crash, timeout) stay failures.
                    match cr.status {
                        Status::Fail if cr.message.contains(crate::exec::INVERTED) => {
                            cr.status = Status::Pass;
                            cr.message = format!("can fail: {}", cr.message);
                        }
                        Status::Pass => {
                            cr.status = Status::Fail;
                            cr.message = "unable to fail: with every assertion inverted the case still passes".into();
                        }
                        _ => {}
                    }
                }
                cr.log = o.log;
                cr.kernel_log = kmsg.drain();
                let splats: Vec<&String> = cr.kernel_log.iter().filter(|l| is_splat(l)).collect();
                if !splats.is_empty() {
                    let first = splats[0].clone();
                    cr.status = Status::Fail;
                    cr.message = if cr.message.is_empty() {
                        format!("kernel splat during the case: {first}")
                    } else {
                        format!("{}; kernel splat during the case: {first}", cr.message)
                    };
                }
                if interrupted {
                    report.aborted = Some("interrupted".into());
                }
            }
        }
        if opts.stream {
            println!("{STREAM_TAG} result {}", serde_json::to_string(&cr).unwrap_or_default());
        } else if !opts.quiet && !tty {
            eprintln!("{:<4} [{}/{total}] {} {}", status_word(cr.status), n + 1, cr.id, short(&cr.message));
        } else if tty && cr.status == Status::Fail {
            eprintln!("\r\x1b[KFAIL [{}/{total}] {} {}", n + 1, cr.id, short(&cr.message));
        }
        report.cases.push(cr);
    }
    if tty {
        eprint!("\r\x1b[K");
    }
    for (_, _, a) in &mut provided {
        if let Some(a) = a {
            for e in a.down() {
                eprintln!("topology teardown: {e}");
                report.timings.push((format!("teardown error: {e}"), 0.0));
            }
        }
    }
    report.duration_s = start.elapsed().as_secs_f64();
    report
}

pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "ok",
        Status::Fail => "FAIL",
        Status::Skip => "skip",
        Status::Xfail => "xfail",
        Status::Xpass => "XPASS",
    }
}

/// Turns a result into xfail/xpass when the case declares a known deviation for this kernel.
pub fn apply_deviation(case: &Case, probe: &Probe, cr: &mut CaseReport) {
    let Some(d) = case.def.known_deviation.iter().find(|d| probe.version_in(d.min.as_deref(), d.max.as_deref())) else {
        return;
    };
    let link = d.link.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
    match cr.status {
        Status::Fail if d.observed.as_deref().is_some_and(|o| !cr.message.contains(o)) => {
            cr.message = format!(
                "failed differently from the known deviation (expected to see `{}`): {}",
                d.observed.as_deref().unwrap_or(""),
                cr.message
            );
        }
        Status::Fail => {
            cr.status = Status::Xfail;
            cr.message = format!("known deviation: {}{link}; observed: {}", d.reason, cr.message);
        }
        Status::Pass => {
            cr.status = Status::Xpass;
            cr.message = format!("known deviation no longer reproduces: {}{link}", d.reason);
        }
        _ => {}
    }
}

fn short(m: &str) -> String {
    if m.chars().count() > 160 {
        format!("{}…", m.chars().take(160).collect::<String>())
    } else {
        m.to_string()
    }
}

/// The case files' default location: `cases/` next to the workspace.
pub fn default_case_dir() -> PathBuf {
    crate::paths::repo_root().join("cases")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_case_once() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cases");
        let cases = crate::case::load_all(&[dir]).expect("cases load");
        for n in 1..=5u32 {
            let mut seen = std::collections::BTreeMap::new();
            for k in 1..=n {
                let opts = RunOpts {
                    topologies: vec![],
                    filter: vec![],
                    timeout: 1.0,
                    stream: false,
                    quiet: true,
                    start_at: 0,
                    shard: Some((k, n)),
                    self_check: false,
                };
                for c in select(&cases, &opts) {
                    *seen.entry(c.id.clone()).or_insert(0) += 1;
                }
            }
            assert_eq!(seen.len(), cases.len(), "n={n}");
            assert!(seen.values().all(|&v| v == 1), "n={n}");
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("x").is_err());
    }

    #[test]
    fn splat_lines() {
        assert!(is_splat("WARNING: CPU: 0 PID: 1 at io_uring/zcrx.c:100 io_zcrx_scrub+0x10/0x20"));
        assert!(is_splat("BUG: KASAN: use-after-free in io_zcrx_ring_refill"));
        assert!(!is_splat("virtio_net virtio0: link up"));
    }
}
