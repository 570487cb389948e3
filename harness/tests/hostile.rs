//! Hostile inputs: every file under `tests/hostile/` goes through the real binary
//! (`zcrx-conform validate FILE`; topology files through `run --list --topology FILE`) and
//! must give the outcome written by hand in `tests/hostile/expected.txt`: exit 2 with the
//! exact `FILE:LINE:COLUMN: ` of the problem, or the documented safe behaviour. No input
//! may panic, print a backtrace, run longer than [`TIME_LIMIT`] or need more than
//! [`MEMORY_LIMIT`] of address space.
//!
//! The `replay_*` tests are the bugs of issue 16 that this corpus pins down.

use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIME_LIMIT: Duration = Duration::from_secs(5);
const MEMORY_LIMIT: u64 = 1 << 30;

fn hostile_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

/// What a run printed and how it ended.
struct Ran {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs the binary with a time and address-space limit.
fn run(args: &[&str]) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zcrx-conform"));
    cmd.args(args).env("RUST_BACKTRACE", "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: MEMORY_LIMIT, rlim_max: MEMORY_LIMIT };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("the zcrx-conform binary starts");
    let (mut out, mut err) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > TIME_LIMIT * 4 {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    Ran {
        code: status.code(),
        signal: status.signal(),
        stdout: reader.join().unwrap_or_default(),
        stderr: ereader.join().unwrap_or_default(),
        took,
    }
}

/// One line of `expected.txt`.
struct Expected {
    file: String,
    exit: i32,
    place: String,
    message: String,
}

fn expectations() -> Vec<Expected> {
    let text = fs::read_to_string(hostile_dir().join("expected.txt")).expect("expected.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "expected.txt: four tab-separated columns: {l:?}");
            Expected {
                file: f[0].into(),
                exit: f[1].parse().unwrap_or_else(|_| panic!("expected.txt: exit code in {l:?}")),
                place: f[2].into(),
                message: f[3].into(),
            }
        })
        .collect()
}

/// Checks one outcome; an error message on failure.
fn check(path: &Path, e: &Expected, r: &Ran) -> Result<(), String> {
    let shown = path.display().to_string();
    let all = format!("{}{}", r.stdout, r.stderr);
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        if all.contains(bad) {
            return Err(format!("{shown}: the output mentions `{bad}`:\n{all}"));
        }
    }
    if r.signal.is_some() || r.code != Some(e.exit) {
        return Err(format!("{shown}: exit {:?} (signal {:?}), expected {}:\n{all}", r.code, r.signal, e.exit));
    }
    if r.took > TIME_LIMIT {
        return Err(format!("{shown}: took {:?}, more than {TIME_LIMIT:?}", r.took));
    }
    if let Some(n) = e.place.strip_prefix("ok ") {
        let want = format!("{n} case(s) valid");
        return if r.stdout.contains(&want) { Ok(()) } else { Err(format!("{shown}: expected `{want}`:\n{all}")) };
    }
    // The line of the error: about the file given (or, for a directory, a file in it), at
    // the place expected.
    let (line, place) = if e.place == "file" {
        let prefix = format!("error: {shown}: ");
        (r.stderr.lines().find(|l| l.starts_with(&prefix)), prefix)
    } else {
        let place = format!(":{}: ", e.place);
        let found = r.stderr.lines().find(|line| {
            // `run` names a bad topology first: "error: topology `FILE`: FILE:L:C: ...".
            let line = line
                .strip_prefix(&format!("error: topology `{shown}`: "))
                .map_or(line.to_string(), |r| format!("error: {r}"));
            let Some(rest) = line.strip_prefix(&format!("error: {shown}")) else { return false };
            let rest = match rest.strip_prefix('/') {
                Some(r) => r.find(':').map_or("", |i| &r[i..]),
                None => rest,
            };
            rest.starts_with(&place)
        });
        (found, place)
    };
    let line = line.ok_or_else(|| format!("{shown}: no error at `{place}`:\n{}", r.stderr))?;
    if !line.contains(&e.message) {
        return Err(format!("{shown}: `{line}` lacks `{}`", e.message));
    }
    // One place per message: the reader's own "at line X column Y" never follows.
    if line.matches(&place).count() != 1 || line.contains(" column ") || line.contains("at line") {
        return Err(format!("{shown}: more than one place in `{line}`"));
    }
    if line.chars().any(|c| c.is_control()) {
        return Err(format!("{shown}: control characters in `{line:?}`"));
    }
    Ok(())
}

fn run_expected(dir: &Path, e: &Expected) -> Result<(), String> {
    let path = dir.join(&e.file);
    let shown = path.to_str().expect("utf-8 path");
    let r = if e.file.starts_with("topology/") {
        let ok = hostile_dir().join("timeout_hour.yaml");
        run(&["run", "--list", "--topology", shown, ok.to_str().expect("utf-8 path")])
    } else {
        run(&["validate", shown])
    };
    check(&path, e, &r)
}

#[test]
fn hostile_corpus_gives_the_expected_outcomes() {
    let dir = hostile_dir();
    let expected = expectations();
    // Every file here has an expectation.
    let mut listed: Vec<String> = expected.iter().map(|e| e.file.clone()).collect();
    listed.sort();
    for sub in ["", "topology/"] {
        for entry in fs::read_dir(dir.join(sub)).expect("hostile dir") {
            let name = format!("{sub}{}", entry.expect("entry").file_name().to_string_lossy());
            if name != "expected.txt" && name != "topology" {
                assert!(listed.binary_search(&name).is_ok(), "{name} has no line in expected.txt");
            }
        }
    }
    assert!(expected.len() >= 60, "{} hostile files", expected.len());
    let failures: Vec<String> = expected.iter().filter_map(|e| run_expected(&dir, e).err()).collect();
    assert!(failures.is_empty(), "{} of {} hostile inputs:\n{}", failures.len(), expected.len(), failures.join("\n\n"));
}

#[test]
fn generated_giants_are_refused() {
    let dir = std::env::temp_dir().join(format!("zcrx-hostile-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("tmp dir");
    let id = format!("id: {}\narea: rq\nabout: x\nsteps:\n  - register: {{}}\n", "a".repeat(2 << 20));
    fs::write(dir.join("id_2mb.yaml"), id).expect("write");
    let big =
        format!("id: h.big\narea: rq\nabout: x\nspec: [{}]\nsteps:\n  - register: {{}}\n", "R1, ".repeat(9 << 18));
    fs::write(dir.join("file_9mb.yaml"), big).expect("write");
    let cases = [
        Expected { file: "id_2mb.yaml".into(), exit: 2, place: "1:5".into(), message: "is 2097152 bytes long".into() },
        Expected { file: "file_9mb.yaml".into(), exit: 2, place: "file".into(), message: "file too large".into() },
    ];
    let failures: Vec<String> = cases.iter().filter_map(|e| run_expected(&dir, e).err()).collect();
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The line of the first error of `validate FILE`.
fn first_error_line(file: &str) -> (i32, u64, String) {
    let path = hostile_dir().join(file);
    let r = run(&["validate", path.to_str().expect("utf-8 path")]);
    let prefix = format!("error: {}:", path.display());
    let line = r.stderr.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{}", r.stderr)).to_string();
    let n = line[prefix.len()..].split(':').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    (r.code.unwrap_or(-1), n, line)
}

#[test]
fn replay_matrix_values_cannot_add_lines() {
    // Pasted into the text, the value made a 9-line file report an error on line 13.
    let lines = fs::read_to_string(hostile_dir().join("matrix_lines_injection.yaml")).expect("file").lines().count();
    let (code, line, msg) = first_error_line("matrix_lines_injection.yaml");
    assert_eq!(code, 2, "{msg}");
    assert!(line as usize <= lines && line == 8, "{msg}");
    // And cannot add keys: `EINVAL, ret: 5` was read as errno EINVAL and ret 5.
    let (code, line, msg) = first_error_line("matrix_key_injection.yaml");
    assert_eq!((code, line), (2, 8), "{msg}");
}

#[test]
fn replay_ids_with_quotes_or_newlines_are_refused() {
    for f in ["id_quote.yaml", "id_newline.yaml", "id_slash.yaml", "id_escape.yaml", "id_empty.yaml"] {
        let (code, line, msg) = first_error_line(f);
        assert_eq!((code, line), (2, 1), "{f}: {msg}");
    }
}

#[test]
fn replay_zero_timeout_and_empty_steps_are_refused() {
    for (f, at) in
        [("timeout_zero.yaml", 4), ("timeout_tiny.yaml", 4), ("steps_empty.yaml", 4), ("no_assertion.yaml", 4)]
    {
        let (code, line, msg) = first_error_line(f);
        assert_eq!((code, line), (2, at), "{f}: {msg}");
    }
}
