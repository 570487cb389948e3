//! What the hostile tests of the outputs and inputs share: the binary run with a deadline and
//! an address-space limit (a hang or a runaway read fails the test instead of the machine), temp
//! directories, report files, and the slow case an interruption test stops.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zcrx_conform::model::{CaseReport, RunReport, Status};
use zcrx_conform::report;

/// No hostile run may need more address space than this.
pub const MEMORY_LIMIT: u64 = 1 << 30;

/// What a run printed and how it ended; `hung` when it was killed at its deadline.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub hung: bool,
}

impl Ran {
    /// Exited by itself with `code`, without a panic.
    pub fn exited(&self, code: i32) -> bool {
        !self.hung && self.code == Some(code) && !self.stderr.contains("panicked")
    }
}

/// The binary, run from the repository root, with stdin closed, the address-space limit and,
/// when `fsize` is given, a file-size limit (a write past it fails with EFBIG, as on a full disk).
pub fn command(args: &[&str], fsize: Option<u64>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zcrx-conform"));
    cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit and signal are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: MEMORY_LIMIT, rlim_max: MEMORY_LIMIT };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(n) = fsize {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

/// Waits for `child` up to `deadline`, then kills it.
pub fn wait(mut child: Child, deadline: Duration) -> Ran {
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let ereader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let start = Instant::now();
    let mut hung = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > deadline {
            hung = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        code: status.code(),
        signal: status.signal(),
        stdout: reader.join().unwrap_or_default(),
        stderr: ereader.join().unwrap_or_default(),
        hung,
    }
}

/// Runs the binary to its end (at most 60 s).
pub fn run(args: &[&str]) -> Ran {
    wait(command(args, None).spawn().expect("zcrx-conform starts"), Duration::from_secs(60))
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zcrx-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
}

pub fn case(id: &str, status: Status) -> CaseReport {
    CaseReport { status, file: "cases/query/x.yaml".into(), ..CaseReport::new(id) }
}

pub fn host_run(kernel: &str, cases: Vec<CaseReport>) -> RunReport {
    let mut r = RunReport::new("host", Default::default(), &["host".to_string()]);
    r.probe.kernel_release = kernel.into();
    r.cases = cases;
    r
}

pub fn write_report(path: &Path, runs: &[RunReport]) {
    std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
    std::fs::write(path, report::json(&runs.iter().collect::<Vec<_>>())).expect("report");
}

/// Two case files in `dir`: `t.slow` waits 30 s for a completion that never comes (a run to
/// interrupt), `t.fast` passes at once. Both run on any kernel with IORING_REGISTER_QUERY.
pub fn slow_cases(dir: &Path) -> PathBuf {
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).expect("cases");
    let head = "area: query\nabout: a case for the interruption tests\nrequires: { features: [query], caps: [] }\nsteps:\n  - query: { op: OPCODES }\n    expect: { out: { hdr.result: 0 } }\n";
    let slow = "  - expect_cqes: { user_data: 9, timeout_ms: 30000, cqes: [ { res: 0 } ] }\n";
    std::fs::write(cases.join("a_slow.yaml"), format!("id: t.slow\n{head}{slow}")).expect("slow");
    std::fs::write(cases.join("b_fast.yaml"), format!("id: t.fast\n{head}")).expect("fast");
    cases
}

/// Starts `run` on the slow cases; returns once its start-of-run checks are done (the `--out`
/// lock is taken and a moment has passed) and the slow case is running.
pub fn start_slow_run(cases: &Path, out: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["run", s(cases), "-q", "--out", s(out)];
    args.extend_from_slice(extra);
    let child = command(&args, None).spawn().expect("spawn");
    let t0 = Instant::now();
    while !out.join(".zcrx-conform.lock").exists() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    child
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: a signal to a child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
}
