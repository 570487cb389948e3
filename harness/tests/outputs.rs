//! What a run writes and how it exits, through the real binary (on the host; the cases used are
//! the `query.` ones, which run on any kernel with IORING_REGISTER_QUERY, or none at all):
//! reports written without following planted links, one run per `--out`, exit 3 for a run that
//! checked nothing, output paths checked before any case runs, interrupted runs that keep the
//! previous complete report, pure KTAP on stdout, and hostile ids escaped in every output.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use zcrx_conform::model::{CaseReport, RunReport, Shard, Status};
use zcrx_conform::report;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zcrx-conform"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("zcrx-conform")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zcrx-out-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// S1: a user who can write to the out directory plants links at the old predictable temp
/// names (`<file>.tmp~`, and `<stem>.tmp~` which the old code used) and at a target, all
/// pointing to a victim file. The old code wrote the report through them; now the victim stays
/// untouched: temp files are new, unpredictable and never follow a link, and a linked target is
/// refused before any case runs.
#[test]
fn symlink_attack_leaves_the_victim_untouched() {
    let d = temp_dir("s1");
    let victim = d.join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    let out = d.join("out");
    std::fs::create_dir_all(&out).expect("out");
    for name in ["junit.xml", "report.json", "ktap.txt"] {
        let stem = name.split('.').next().expect("stem");
        symlink(&victim, out.join(format!("{name}.tmp~"))).expect("link");
        symlink(&victim, out.join(format!("{stem}.tmp~"))).expect("link");
    }
    let o = run(&["run", "--filter", "query.", "-q", "--allow-empty", "--out", s(&out)]);
    assert!(o.status.code().is_some_and(|c| c == 0 || c == 1), "{o:?}");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious\n", "the victim was written");
    for name in ["junit.xml", "report.json", "ktap.txt"] {
        let m = std::fs::symlink_metadata(out.join(name)).expect(name);
        assert!(m.is_file(), "{name} is not a regular file");
    }

    // A link at the target itself: refused at once (exit 2), nothing run, victim untouched.
    std::fs::remove_file(out.join("junit.xml")).expect("rm");
    symlink(&victim, out.join("junit.xml")).expect("link");
    let o = run(&["run", "--filter", "query.", "-q", "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(text(&o.stderr).contains("symbolic link"), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("passed"), "cases ran: {}", text(&o.stdout));
    let junit = d.join("j.xml");
    symlink(&victim, &junit).expect("link");
    let o = run(&["run", "--filter", "query.", "-q", "--junit", s(&junit)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious\n", "the victim was written");
    let _ = std::fs::remove_dir_all(&d);
}

/// Two runs sharing `--out`: the second is refused at once with a clear message.
#[test]
fn a_second_run_on_the_same_out_dir_is_refused() {
    let d = temp_dir("lock");
    let held = report::files::lock_dir(&d).expect("lock");
    let t0 = Instant::now();
    let o = run(&["run", "--filter", "query.", "-q", "--out", s(&d)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(text(&o.stderr).contains("another zcrx-conform run"), "{}", text(&o.stderr));
    assert!(t0.elapsed() < Duration::from_secs(10), "not refused at once");
    drop(held);
    let o = run(&["run", "--filter", "query.", "-q", "--allow-empty", "--out", s(&d)]);
    assert!(o.status.code().is_some_and(|c| c == 0 || c == 1), "{o:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A CI gate must not go green on nothing.
#[test]
fn nothing_run_exits_3_unless_allow_empty() {
    let empty = temp_dir("empty");
    let nomatch = ["run", "--filter", "no-such-case-matches-this", "-q"];
    for (args, what) in [
        (nomatch.to_vec(), "run --filter nomatch"),
        (vec!["run", "-q", s(&empty)], "run EMPTYDIR"),
        (vec!["validate", s(&empty)], "validate EMPTYDIR"),
        (vec!["run", "--list", "--filter", "no-such-case-matches-this"], "run --list nomatch"),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(3), "{what}: {o:?}");
    }
    let o = run(&[&nomatch[..], &["--allow-empty"]].concat());
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let _ = std::fs::remove_dir_all(&empty);
}

/// Wrong output paths and baselines are found before any case runs (exit 2, no summary).
#[test]
fn bad_output_paths_and_baselines_fail_before_any_case_runs() {
    let d = temp_dir("pre");
    let afile = d.join("afile");
    std::fs::write(&afile, "x").expect("afile");
    let bad = d.join("bad.json");
    std::fs::write(&bad, "{ not json").expect("bad");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--junit".into(), "/proc/x/j.xml".into()], "/proc/x"),
        (vec!["--junit".into(), "/proc/self/j.xml".into()], "procfs"),
        (vec!["--json".into(), "/sys/kernel/r.json".into()], "sysfs"),
        (vec!["--out".into(), s(&afile).into()], "not a directory"),
        (vec!["--kcidb".into(), format!("{}/k.json", s(&afile))], "afile"),
        (vec!["--json".into(), s(&d).into()], "directory"),
        (vec!["--baseline".into(), s(&d.join("nosuch.json")).into()], "nosuch.json"),
        (vec!["--baseline".into(), s(&bad).into()], "not a baseline"),
        (vec!["--write-baseline".into(), s(&bad).into()], "not a baseline"),
        (vec!["--timeout".into(), "inf".into()], "--timeout"),
    ];
    for (extra, says) in cases {
        let mut args: Vec<String> = ["run", "--filter", "query.", "-q"].map(String::from).to_vec();
        args.extend(extra.iter().cloned());
        let o = bin().args(&args).output().expect("run");
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!text(&o.stdout).contains("passed"), "{args:?}: cases ran: {}", text(&o.stdout));
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// A run stopped by SIGINT writes an aborted report listing the cases it did not run, and the
/// complete report it replaces stays as *.prev.
#[test]
fn an_interrupted_run_keeps_the_previous_complete_report() {
    let d = temp_dir("sigint");
    let cases = d.join("cases");
    std::fs::create_dir_all(&cases).expect("cases");
    let head = "area: query\nabout: a case for the interruption test\nrequires: { features: [query], caps: [] }\nsteps:\n  - query: { op: OPCODES }\n    expect: { out: { hdr.result: 0 } }\n";
    let slow = "  - expect_cqes: { user_data: 9, timeout_ms: 30000, cqes: [ { res: 0 } ] }\n";
    std::fs::write(cases.join("a_slow.yaml"), format!("id: t.slow\n{head}{slow}")).expect("slow");
    std::fs::write(cases.join("b_fast.yaml"), format!("id: t.fast\n{head}")).expect("fast");
    let out = d.join("out");
    let o = run(&["run", s(&cases), "--filter", "t.fast", "-q", "--allow-empty", "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let complete = std::fs::read_to_string(out.join("report.json")).expect("report");

    let child = bin()
        .args(["run", s(&cases), "-q", "--out", s(&out), "--ktap"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(130), "{o:?}");
    let r = report::parse_json(&std::fs::read_to_string(out.join("report.json")).expect("report"), "r").expect("json");
    assert_eq!(r.runs[0].aborted.as_deref(), Some("interrupted"));
    assert_eq!(r.runs[0].not_run, ["t.slow", "t.fast"], "the case killed at SIGINT was not run to its end");
    assert_eq!(std::fs::read_to_string(out.join("report.json.prev")).expect("prev"), complete);
    for f in ["junit.xml.prev", "ktap.txt.prev"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let ktap = text(&o.stdout);
    assert!(ktap.contains("\n1..2\n") && ktap.ends_with("Bail out! interrupted (2 case(s) not run)\n"), "{ktap}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit");
    assert!(junit.contains("name=\"aborted\"") && junit.contains("type=\"not_run\""), "{junit}");
    let _ = std::fs::remove_dir_all(&d);
}

/// `--ktap` keeps stdout pure KTAP (the summary goes to stderr); JUnit names time, host and
/// file; JSON names the tool, schema and times; `--version` names the commit.
#[test]
fn conventions_of_a_real_run() {
    let d = temp_dir("conv");
    let o = run(&["run", "--filter", "query.", "-q", "--allow-empty", "--ktap", "--out", s(&d)]);
    assert!(o.status.code().is_some_and(|c| c == 0 || c == 1), "{o:?}");
    let stdout = text(&o.stdout);
    for l in stdout.lines() {
        let ktap = l == "KTAP version 1"
            || l.starts_with("1..")
            || l.starts_with("ok ")
            || l.starts_with("not ok ")
            || l.starts_with('#');
        assert!(ktap, "not KTAP on stdout: {l:?}");
    }
    assert!(text(&o.stderr).contains("zcrx-conform: "), "the summary goes to stderr");
    let junit = std::fs::read_to_string(d.join("junit.xml")).expect("junit");
    for attr in ["timestamp=\"", "hostname=\"", "file=\""] {
        assert!(junit.contains(attr) || !junit.contains("<testcase"), "{attr} missing: {junit}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).expect("json")).expect("json");
    assert_eq!(json["schema_version"], 1);
    assert!(json["tool_version"].as_str().is_some_and(|v| v.starts_with(env!("CARGO_PKG_VERSION"))));
    for k in ["started", "finished"] {
        assert!(json["runs"][0][k].as_str().is_some_and(|t| t.len() == 29 && t.ends_with("+00:00")), "{k}: {json}");
    }
    let v = text(&run(&["--version"]).stdout);
    let commit = v.trim().rsplit_once('(').map(|(_, c)| c.trim_end_matches(')')).expect("commit");
    assert!(!commit.is_empty() && (commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit())), "{v}");
    let _ = std::fs::remove_dir_all(&d);
}

fn case(id: &str, status: Status, message: &str) -> CaseReport {
    CaseReport {
        status,
        message: message.into(),
        file: "cases/query/x.yaml".into(),
        log: vec![format!("log {message}")],
        ..CaseReport::new(id)
    }
}

fn write_report(path: &Path, runs: &[RunReport]) {
    std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
    std::fs::write(path, report::json(&runs.iter().collect::<Vec<_>>())).expect("report");
}

fn host_run(kernel: &str, cases: Vec<CaseReport>) -> RunReport {
    let mut r = RunReport::new("host", Default::default(), &["host".to_string()]);
    r.probe.kernel_release = kernel.into();
    r.cases = cases;
    r
}

/// An id and a message with `'`, a newline carrying a fake KTAP line, ESC and BEL reach no
/// output raw: KTAP, JUnit, terminal lines and report-bug's "Reproduce" command.
#[test]
fn hostile_ids_are_escaped_in_every_output() {
    let d = temp_dir("hostile");
    let id = "q.x'; touch /tmp/zcrx-pwned; echo '\nok 999 injected\x1b[2J\x07";
    let msg = "it's\nnot ok 998 fake\x1b]0;title\x07";
    let input = d.join("in/report.json");
    write_report(&input, &[host_run("6.18", vec![case(id, Status::Fail, msg), case("q.ok", Status::Pass, "")])]);
    let out = d.join("out");
    let o = run(&["merge", s(&input), "--ktap", "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let raw = |t: &str| t.chars().any(|c| c.is_control() && c != '\n');
    for (what, t) in [
        ("stdout", text(&o.stdout)),
        ("stderr", text(&o.stderr)),
        ("ktap.txt", std::fs::read_to_string(out.join("ktap.txt")).expect("ktap")),
        ("junit.xml", std::fs::read_to_string(out.join("junit.xml")).expect("junit")),
    ] {
        assert!(!raw(&t), "{what} has control characters: {t:?}");
        if what != "junit.xml" {
            // (A failure's text in JUnit keeps its lines: XML text, not a line protocol.)
            assert!(!t.lines().any(|l| l.starts_with("ok 999") || l.starts_with("not ok 998")), "{what}: {t}");
        }
    }

    let o = run(&["report-bug", id, "--from", s(&input)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let bug = text(&o.stdout);
    assert!(!raw(&bug), "{bug:?}");
    let cmd = bug.lines().find_map(|l| l.strip_prefix("Reproduce: ")).expect("Reproduce line");
    // What a shell makes of the pasted command: the exact id as the --filter value, and no
    // other command run.
    let probe = format!("zcrx-conform() {{ for a in \"$@\"; do printf '%s\\0' \"$a\"; done; }}; {cmd}");
    let sh = Command::new("bash").args(["-c", &probe]).output().expect("bash");
    let words: Vec<String> = text(&sh.stdout).split('\0').map(String::from).collect();
    assert!(words.contains(&format!("--filter={id}")), "{words:?}");
    assert!(!Path::new("/tmp/zcrx-pwned").exists());

    // A passing case has no bug to report.
    let o = run(&["report-bug", "q.ok", "--from", s(&input)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
    assert!(text(&o.stderr).contains("no bug to report"), "{}", text(&o.stderr));
    // report-bug takes only its own flags.
    let o = run(&["report-bug", "q.ok", "--from", s(&input), "--jobs", "4"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// `merge` refuses a shard set with a gap and runs of one target on different kernels, and
/// does not panic on hostile durations.
#[test]
fn merge_refuses_gaps_and_mixed_kernels() {
    let d = temp_dir("merge");
    let shard = |k: u32, id: &str| {
        let mut r = host_run("6.18", vec![case(id, Status::Pass, "")]);
        r.shard = Some(Shard { k, n: 3 });
        let p = d.join(format!("s{k}/report.json"));
        write_report(&p, &[r]);
        p
    };
    let (s1, s2, s3) = (shard(1, "a"), shard(2, "b"), shard(3, "c"));
    let o = run(&["merge", s(&s1), s(&s2)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(text(&o.stderr).contains("3/3 missing"), "{}", text(&o.stderr));
    let o = run(&["merge", s(&s1), s(&s2), s(&s3)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");

    let other = d.join("other/report.json");
    write_report(&other, &[host_run("7.3.4", vec![case("a", Status::Pass, "")])]);
    let one = d.join("one/report.json");
    write_report(&one, &[host_run("6.18", vec![case("a", Status::Pass, "")])]);
    let o = run(&["merge", s(&one), s(&other)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(text(&o.stderr).contains("different kernels"), "{}", text(&o.stderr));

    let huge = d.join("huge/report.json");
    let text_of = std::fs::read_to_string(&one).expect("one").replace("\"duration_s\": 0.0", "\"duration_s\": 1e300");
    std::fs::create_dir_all(huge.parent().expect("dir")).expect("dir");
    std::fs::write(&huge, text_of).expect("huge");
    let o = run(&["merge", s(&huge), "--junit", s(&d.join("j.xml"))]);
    assert_eq!(o.status.code(), Some(2), "a clean refusal, not a panic: {o:?}");
    assert!(text(&o.stderr).contains("out of range"), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(&d);
}

/// The cases x kernels table and the what-changed list that `matrix` and `merge` print, exactly
/// (pinned when their case lookup went from a search per cell to a per-run index): rows in the
/// order the cases are first met, `-` where a run lacks the case, `+` for a kernel-specific
/// expectation, `*` and `~` marks, and the first of a repeated id in one run.
#[test]
fn the_matrix_table_and_what_changed_are_exact() {
    let mut special = case("q.d", Status::Pass, "");
    special.kernel_specific = vec!["[..7.2] EINVAL on older kernels".into()];
    let mut r1 = host_run("7.1.13", vec![case("q.a", Status::Pass, ""), case("q.c", Status::Skip, "no zcrx"), special]);
    r1.target = "debian:7.1.13".into();
    let mut r2 = host_run(
        "7.3.4",
        vec![
            case("q.a", Status::Fail, "errno 22"),
            case("q.b", Status::Pass, ""),
            case("q.d", Status::Pass, ""),
            case("q.a", Status::Pass, "a repeated id: the first counts"),
        ],
    );
    r2.target = "debian:7.3.4".into();
    let mut r3 = host_run("7.4.0", vec![case("q.e", Status::Pass, ""), case("q.b", Status::Pass, "")]);
    r3.target = "tree:/src/linux-next".into();
    let refs = [&r1, &r2, &r3];
    assert_eq!(
        report::matrix_table(&refs),
        concat!(
            "  case       7.1.13        7.3.4 c/linux-next\n",
            "* q.a           ok         FAIL            -\n",
            "  q.c         skip            -            -\n",
            "* q.d          ok+           ok            -\n",
            "~ q.b            -           ok           ok\n",
            "~ q.e            -            -           ok\n",
            "5 case(s); 2 behave differently between kernels (*), 2 run on some kernels only (~); \
             + = kernel-specific expectation\n",
            "* q.a\n",
            "    7.1.13         ok     \n",
            "    7.3.4          FAIL   errno 22\n",
            "    c/linux-next   -      not run\n",
            "* q.d\n",
            "    7.1.13         ok+    [..7.2] EINVAL on older kernels\n",
            "    7.3.4          ok     \n",
            "    c/linux-next   -      not run\n",
        )
    );
    assert_eq!(
        report::changes::render(&refs),
        concat!(
            "\nwhat changed along debian:7.1.13 -> debian:7.3.4 -> tree:/src/linux-next (2 case(s) change; \
             first version where each changed, then any later change):\n",
            "  q.a                                              first at debian:7.3.4     \
             (debian:7.1.13 had: ok) now: FAIL\n",
            "  q.d                                              first at debian:7.3.4     \
             (debian:7.1.13 had: ok [..7.2] EINVAL on older kernels) now: ok\n",
        )
    );
}
