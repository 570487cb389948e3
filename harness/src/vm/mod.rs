//! Runs the suite inside virtme-ng VMs booting a chosen kernel. The host resolves the
//! kernel (Debian package, a bzImage/vmlinuz path, or a kernel build tree), boots it
//! with `vng`, and runs this same binary inside with `--stream`; results come back
//! line by line, so a guest panic or hang keeps every earlier result. The running
//! case is reported failed with the console tail and the VM is booted again for the
//! remaining cases.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::model::Probe;
use crate::model::Status;
use crate::model::{CaseReport, RunReport};
use crate::run::{INTERRUPTED, STREAM_TAG};

/// udev coldplug under TCG loads ~33 modules (12-33 s); none of them matter here.
const BLACKLIST: &str = "modprobe.blacklist=kvm_amd,kvm_intel,kvm,ccp,sr_mod,cdrom,sg,ahci,libahci,libata,iTCO_wdt,\
intel_pmc_bxt,psmouse,i2c_i801,i6300esb,serio_raw,pcspkr,lpc_ich,evdev,button,aesni_intel,qemu_fw_cfg";

/// How long a boot may take before the first line from the guest.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// Crashed or hung VMs tolerated in one run before giving up on the rest.
const MAX_REBOOTS: usize = 5;

#[derive(Clone, Debug)]
pub enum KernelSpec {
    /// Run on the host kernel, no VM.
    Host,
    /// A Debian kernel package version: "7.3.4", "7.3", "latest".
    Debian(String),
    /// A kernel image (bzImage/vmlinuz), or a kernel tree that is already built.
    Path(PathBuf),
    /// `tree:PATH`: a kernel source tree to configure (io_uring, zcrx, netdevsim, optional KASAN
    /// with `tree+kasan:PATH`) and build with vm/build-tree.sh before booting it.
    Tree { path: PathBuf, kasan: bool },
}

pub const DEFAULT_KERNEL: &str = "debian:7.3.4";

impl KernelSpec {
    pub fn parse(s: &str) -> Result<KernelSpec, String> {
        if s == "host" {
            return Ok(KernelSpec::Host);
        }
        if let Some(v) = s.strip_prefix("debian:") {
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "._+~-".contains(c)) {
                return Err(format!("`{s}`: a Debian kernel spec is debian:<version>, e.g. {DEFAULT_KERNEL}"));
            }
            return Ok(KernelSpec::Debian(v.to_string()));
        }
        for (prefix, kasan) in [("tree:", false), ("tree+kasan:", true)] {
            if let Some(t) = s.strip_prefix(prefix) {
                let p = Path::new(t);
                if !p.join("Makefile").is_file() || !p.join("Kconfig").is_file() {
                    return Err(format!("`{s}`: {t} is not a kernel source tree (no Makefile/Kconfig)"));
                }
                return p.canonicalize().map(|path| KernelSpec::Tree { path, kasan }).map_err(|e| format!("{s}: {e}"));
            }
        }
        let p = Path::new(s);
        if p.exists() {
            return p.canonicalize().map(KernelSpec::Path).map_err(|e| format!("{s}: {e}"));
        }
        Err(format!("kernel `{s}`: not `host`, `debian:<version>`, or an existing bzImage/vmlinuz/build tree"))
    }
}

fn vm_dir() -> PathBuf {
    crate::paths::repo_root().join("vm")
}

/// Runs vm/provision.sh (idempotent; well under a second when all is present).
pub fn provision() -> Result<(), String> {
    let script = vm_dir().join("provision.sh");
    let st = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({st})", script.display()))
    }
}

/// Resolves a spec to something `vng --run` accepts; fetches Debian kernels.
pub fn resolve(spec: &KernelSpec) -> Result<PathBuf, String> {
    match spec {
        KernelSpec::Host => Err("the host kernel needs no VM".into()),
        KernelSpec::Path(p) => Ok(p.clone()),
        KernelSpec::Tree { path, kasan } => {
            let p = path.display().to_string();
            let mut args = vec![p.as_str()];
            if *kasan {
                args.push("--kasan");
            }
            script_path("build-tree.sh", &args)
        }
        KernelSpec::Debian(v) => {
            let script = vm_dir().join("kernel.sh");
            let out = Command::new("bash")
                .arg(&script)
                .arg("fetch")
                .arg(format!("debian:{v}"))
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("{}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!("fetching debian:{v} failed ({})", out.status));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let path = text.lines().last().unwrap_or("").trim();
            if path.is_empty() || !Path::new(path).exists() {
                return Err(format!("kernel.sh fetch debian:{v} printed no kernel path"));
            }
            Ok(PathBuf::from(path))
        }
    }
}

/// Runs a vm/ script whose last stdout line is a path (kernel.sh, netdevsim.sh, ethtool.sh).
fn script_path(script: &str, args: &[&str]) -> Result<PathBuf, String> {
    let script = vm_dir().join(script);
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} {} failed ({})", script.display(), args.join(" "), out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let path = text.lines().last().unwrap_or("").trim();
    if path.is_empty() || !Path::new(path).exists() {
        return Err(format!("{} {} printed no path", script.display(), args.join(" ")));
    }
    Ok(PathBuf::from(path))
}

/// The kernel release of a fetched Debian kernel (`.../modules/<kver>/vmlinuz`).
pub fn debian_kver(kernel: &Path) -> Option<String> {
    let dir = kernel.parent()?;
    (dir.parent()?.file_name()? == "modules").then(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))?
}

/// What the guest needs for the run's topologies, as environment assignments: ethtool 7.x
/// and the netdevsim modules built for this kernel (host side: the guest has no network).
pub fn guest_tools(kernel: &Path, topologies: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut kinds = Vec::new();
    for t in topologies {
        if crate::topology::Topo::builtin(t).is_none() {
            let f = crate::topology::load(t)?;
            kinds.push(f.kind);
            kinds.extend(f.simulate);
        }
    }
    if kinds.is_empty() {
        return Ok(vec![]);
    }
    let mut env = vec![("ZCRX_ETHTOOL".to_string(), script_path("ethtool.sh", &["fetch"])?.display().to_string())];
    use crate::topology::Kind;
    let wants = |k: Kind| kinds.contains(&k);
    if wants(Kind::Netdevsim) || wants(Kind::NetdevsimZcrx) {
        let kver = debian_kver(kernel).ok_or_else(|| {
            format!(
                "{}: netdevsim is built only for Debian kernels; build your kernel with CONFIG_NETDEVSIM",
                kernel.display()
            )
        })?;
        for (k, variant, var) in
            [(Kind::Netdevsim, "stock", "ZCRX_NETDEVSIM_STOCK"), (Kind::NetdevsimZcrx, "zcrx", "ZCRX_NETDEVSIM_ZCRX")]
        {
            if wants(k) {
                let ko = script_path("netdevsim.sh", &["build", &kver, "--variant", variant])?;
                env.push((var.to_string(), ko.display().to_string()));
            }
        }
    }
    Ok(env)
}

/// Passes `kernel.sh list` through.
pub fn list_kernels(pattern: Option<&str>) -> Result<(), String> {
    let script = vm_dir().join("kernel.sh");
    let mut c = Command::new("bash");
    c.arg(&script).arg("list");
    if let Some(p) = pattern {
        c.arg(p);
    }
    let st = c.status().map_err(|e| format!("{}: {e}", script.display()))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("kernel.sh list failed ({st})"))
    }
}

/// Whether KVM can run ordinary guests here. `/dev/kvm` may exist and still fail (a
/// PVM host answers "failed to set MSR"), so a tiny guest is started once and the
/// answer cached under .cache/.
pub fn kvm_usable(kernel: &Path) -> bool {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        return false;
    }
    let cache = crate::paths::repo_root().join(".cache").join("kvm-usable");
    let host = crate::kernel::sys::kernel_release();
    if let Ok(s) = std::fs::read_to_string(&cache) {
        if let Some((h, v)) = s.trim().split_once(' ') {
            if h == host {
                return v == "yes";
            }
        }
    }
    let image = if kernel.is_dir() { kernel.join("arch/x86/boot/bzImage") } else { kernel.to_path_buf() };
    let child = Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-nographic", "-no-reboot", "-kernel"])
        .arg(&image)
        .args(["-append", "console=ttyS0 panic=-1 earlyprintk=serial"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let ok = match child {
        Err(_) => false,
        Ok(mut c) => {
            let (tx, rx) = mpsc::channel();
            if let Some(out) = c.stdout.take() {
                std::thread::spawn(move || {
                    for l in BufReader::new(out).lines().map_while(Result::ok) {
                        if l.contains("Linux version") || l.contains("Run /init") {
                            let _ = tx.send(true);
                            return;
                        }
                    }
                    let _ = tx.send(false);
                });
            }
            let r = rx.recv_timeout(Duration::from_secs(20)).unwrap_or(false);
            let _ =
                nix::sys::signal::killpg(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = c.wait();
            r
        }
    };
    let _ = std::fs::create_dir_all(cache.parent().unwrap_or(Path::new(".")));
    let _ = std::fs::write(&cache, format!("{host} {}\n", if ok { "yes" } else { "no" }));
    ok
}

#[derive(Clone, Debug)]
pub struct VmOpts {
    pub paths: Vec<PathBuf>,
    pub topologies: Vec<String>,
    pub filter: Vec<String>,
    pub timeout: f64,
    pub quiet: bool,
    pub memory: String,
    pub cpus: u32,
    pub shard: Option<String>,
    pub self_check: bool,
    /// Environment for the guest command (tool and module paths).
    pub env: Vec<(String, String)>,
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=,:+@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

enum Ev {
    Out(String),
    Err(String),
    OutClosed,
}

/// Boots `kernel` and runs the suite in it; `label` names the kernel in reports.
pub fn run_in_vm(spec_label: &str, kernel: &Path, o: &VmOpts) -> Result<RunReport, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let mut paths = Vec::new();
    for p in &o.paths {
        paths.push(p.canonicalize().map_err(|e| format!("{}: {e}", p.display()))?);
    }
    let kvm = kvm_usable(kernel);
    let t_all = Instant::now();
    let mut report = RunReport {
        target: spec_label.to_string(),
        probe: Probe::default(),
        topologies: o.topologies.clone(),
        cases: Vec::new(),
        duration_s: 0.0,
        aborted: None,
        timings: Vec::new(),
    };
    let mut total: Option<usize> = None;
    let mut boots = 0usize;
    let mut boot_times = Vec::new();
    let tty = !o.quiet && nix::unistd::isatty(std::io::stderr()).unwrap_or(false);
    loop {
        let start_at = report.cases.len();
        if total.is_some_and(|t| start_at >= t) {
            break;
        }
        if boots > MAX_REBOOTS {
            report.aborted = Some(format!("gave up after {boots} VM boots"));
            break;
        }
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            report.aborted = Some("interrupted".into());
            break;
        }
        boots += 1;
        let mut guest: Vec<String> = o.env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))).collect();
        guest.push(shell_quote(&exe.display().to_string()));
        guest.push("run".into());
        for p in &paths {
            guest.push(shell_quote(&p.display().to_string()));
        }
        guest.push(format!("--topology={}", shell_quote(&o.topologies.join(","))));
        for f in &o.filter {
            guest.push(format!("--filter={}", shell_quote(f)));
        }
        guest.push(format!("--timeout={}", o.timeout));
        if o.self_check {
            guest.push("--self-check".into());
        }
        if let Some(sh) = &o.shard {
            guest.push(format!("--shard={}", shell_quote(sh)));
        }
        guest.push(format!("--start-at={start_at}"));
        guest.push("--stream".into());
        let mut cmd = Command::new("vng");
        cmd.arg("--run").arg(kernel);
        if !kvm {
            cmd.arg("--disable-kvm");
        }
        cmd.args(["--force-9p", "--user", "root", "--verbose", "-m", &o.memory, "-p", &o.cpus.to_string()])
            .args(["--append", BLACKLIST])
            .arg("--")
            .arg(guest.join(" "))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let t_boot = Instant::now();
        let mut child =
            cmd.spawn().map_err(|e| format!("starting vng: {e} (is virtme-ng installed? vm/provision.sh)"))?;
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
        let mut running: Option<(String, Instant)> = None;
        let mut booted = false;
        let mut last_activity = Instant::now();
        let mut died: Option<String> = None;
        let case_limit = Duration::from_secs_f64(o.timeout + 60.0);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Ev::Err(l)) => {
                    if console.len() >= 60 {
                        console.pop_front();
                    }
                    console.push_back(l);
                }
                Ok(Ev::Out(l)) => {
                    last_activity = Instant::now();
                    let Some(rest) = l.strip_prefix(STREAM_TAG).map(str::trim_start) else { continue };
                    let (kind, json) = rest.split_once(' ').unwrap_or((rest, ""));
                    match kind {
                        "probe" => {
                            if !booted {
                                boot_times.push(t_boot.elapsed().as_secs_f64());
                                booted = true;
                            }
                            if let Ok(p) = serde_json::from_str::<Probe>(json) {
                                report.probe = p;
                            }
                        }
                        "total" if total.is_none() => total = json.trim().parse().ok(),
                        "start" => {
                            let id: String = serde_json::from_str(json).unwrap_or_default();
                            if tty {
                                eprint!(
                                    "\r\x1b[K[{}/{}] {spec_label} {id}",
                                    report.cases.len() + 1,
                                    total.map_or("?".into(), |t| t.to_string())
                                );
                            }
                            running = Some((id, Instant::now()));
                        }
                        "result" => {
                            if let Ok(c) = serde_json::from_str::<CaseReport>(json) {
                                progress_line(tty, o.quiet, spec_label, &c, report.cases.len() + 1, total);
                                report.cases.push(c);
                            }
                            running = None;
                        }
                        _ => {}
                    }
                }
                Ok(Ev::OutClosed) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                died = Some("interrupted".into());
                break;
            }
            if !booted && t_boot.elapsed() > BOOT_TIMEOUT {
                died = Some(format!("the VM did not start the suite within {} s", BOOT_TIMEOUT.as_secs()));
                break;
            }
            if booted
                && running.as_ref().is_some_and(|(_, t)| t.elapsed() > case_limit)
                && last_activity.elapsed() > case_limit
            {
                died = Some(format!("the VM stopped responding for {} s", case_limit.as_secs()));
                break;
            }
        }
        if died.is_some() {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        let status = child.wait().ok();
        // Drain what stderr still had.
        while let Ok(ev) = rx.try_recv() {
            if let Ev::Err(l) = ev {
                if console.len() >= 60 {
                    console.pop_front();
                }
                console.push_back(l);
            }
        }
        let finished = total.is_some_and(|t| report.cases.len() >= t);
        if finished && died.is_none() {
            break;
        }
        let why = died.unwrap_or_else(|| match status.and_then(|s| s.code()) {
            Some(255) => "the VM exited with 255 (kernel panic?)".into(),
            Some(c) => format!("the VM exited with {c} before the suite finished"),
            None => "the VM was killed".into(),
        });
        if why == "interrupted" {
            report.aborted = Some(why);
            break;
        }
        let tail: Vec<String> = console.iter().cloned().collect();
        match running.take() {
            Some((id, t)) => {
                let c = CaseReport {
                    status: Status::Fail,
                    message: format!("{why} while this case ran; console tail attached"),
                    log: tail,
                    duration_s: t.elapsed().as_secs_f64(),
                    ..CaseReport::new(&id)
                };
                progress_line(tty, o.quiet, spec_label, &c, report.cases.len() + 1, total);
                report.cases.push(c);
            }
            None if !booted => {
                return Err(format!("{why}; console tail:\n{}", tail.join("\n")));
            }
            None => {
                report.aborted = Some(format!("{why} between cases; console tail:\n{}", tail.join("\n")));
                break;
            }
        }
    }
    if tty {
        eprint!("\r\x1b[K");
    }
    report.duration_s = t_all.elapsed().as_secs_f64();
    let boot_total: f64 = boot_times.iter().sum();
    report.timings.push(("vm_boots".into(), boots as f64));
    report.timings.push(("vm_boot_s".into(), boot_total));
    report.timings.push(("suite_s".into(), report.cases.iter().map(|c| c.duration_s).sum()));
    report.timings.push(("total_s".into(), report.duration_s));
    report.timings.push(("kvm".into(), if kvm { 1.0 } else { 0.0 }));
    Ok(report)
}

/// Boots `kernel` and runs this binary with `args` inside; returns the guest's stdout.
/// For commands other than `run` (bench, probe): no streaming, no resume.
pub fn run_command_in_vm(
    kernel: &Path,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let mut guest: Vec<String> = env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))).collect();
    guest.push(shell_quote(&exe.display().to_string()));
    guest.extend(args.iter().map(|a| shell_quote(a)));
    let mut cmd = Command::new("vng");
    cmd.arg("--run").arg(kernel);
    if !kvm_usable(kernel) {
        cmd.arg("--disable-kvm");
    }
    let mut child = cmd
        .args(["--force-9p", "--user", "root", "-m", "2G", "-p", "2", "--append", BLACKLIST, "--"])
        .arg(guest.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting vng: {e}"))?;
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let out = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(out), &mut s);
        let _ = tx.send(s);
    });
    match rx.recv_timeout(timeout) {
        Ok(s) => {
            let st = child.wait().map_err(|e| e.to_string())?;
            if st.success() {
                Ok(s)
            } else {
                Err(format!("the guest command failed ({st}); output:\n{s}"))
            }
        }
        Err(_) => {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            Err(format!("the VM did not finish within {} s", timeout.as_secs()))
        }
    }
}

fn progress_line(tty: bool, quiet: bool, label: &str, c: &CaseReport, n: usize, total: Option<usize>) {
    let t = total.map_or("?".into(), |t| t.to_string());
    if quiet {
        return;
    }
    if tty {
        if c.status.is_failure() {
            eprintln!("\r\x1b[KFAIL [{n}/{t}] {label} {} {}", c.id, c.message);
        }
    } else {
        eprintln!("{:<4} [{n}/{t}] {label} {} {}", c.status.word(), c.id, c.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert!(matches!(KernelSpec::parse("host"), Ok(KernelSpec::Host)));
        assert!(matches!(KernelSpec::parse("debian:7.3.4"), Ok(KernelSpec::Debian(v)) if v == "7.3.4"));
        assert!(KernelSpec::parse("debian:").is_err());
        assert!(KernelSpec::parse("debian:7.3;rm -rf /").is_err());
        assert!(KernelSpec::parse("/nonexistent/bzImage").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
