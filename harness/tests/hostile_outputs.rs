//! Hostile outputs (issue 27): what a careful root user still hit at the report paths of a run,
//! through the real binary. Each test names the item of the issue it pins down.

mod hostile_support;

use std::os::unix::fs::{symlink, FileTypeExt};
use std::time::Duration;

use hostile_support::*;

/// Item 1: an interrupted run checks whether the report it would replace is complete; a FIFO
/// planted there after the start-of-run checks hung it forever (holding the lock), a link to
/// /dev/zero grew it past 1 GB. Now neither is read: the run ends, says why it could not write
/// there, and leaves what was planted alone.
#[test]
fn an_interrupted_run_reads_no_fifo_or_device_at_a_report_path() {
    let d = temp_dir("planted");
    let cases = slow_cases(&d);
    let out = d.join("out");
    let (json, junit, kcidb) = (d.join("r.json"), d.join("j.xml"), d.join("k.json"));
    let child = start_slow_run(&cases, &out, &["--json", s(&json), "--junit", s(&junit), "--kcidb", s(&kcidb)]);
    mkfifo(&out.join("report.json"));
    mkfifo(&junit);
    symlink("/dev/zero", &json).expect("link");
    symlink("/dev/zero", &kcidb).expect("link");
    signal(&child, libc::SIGINT);
    let r = wait(child, Duration::from_secs(20));
    assert!(!r.hung, "the run hung on a planted FIFO: {r:?}");
    assert!(r.exited(130), "{r:?}");
    assert!(r.stderr.contains("not a regular file") && r.stderr.contains("symbolic link"), "{}", r.stderr);
    for p in [out.join("report.json"), junit.clone()] {
        assert!(std::fs::symlink_metadata(&p).expect("fifo").file_type().is_fifo(), "{}", p.display());
    }
    for p in [&json, &kcidb] {
        assert!(std::fs::symlink_metadata(p).expect("link").file_type().is_symlink(), "{}", p.display());
    }
    // The three files of --out go together (item 12): none is written beside the FIFO.
    assert!(!out.join("ktap.txt").exists() && r.stderr.contains("none of"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&d);
}

/// Runs the binary with stdout (or stderr) going to `sink` (a pipe nobody reads, /dev/full).
fn run_into(args: &[&str], sink: std::process::Stdio, stderr_too: bool) -> Ran {
    let mut c = command(args, None);
    if stderr_too {
        c.stderr(sink);
    } else {
        c.stdout(sink);
    }
    wait(c.spawn().expect("spawn"), Duration::from_secs(60))
}

/// A pipe whose read end is closed: a write to it fails with EPIPE.
fn broken_pipe() -> std::process::Stdio {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    drop(r);
    std::process::Stdio::from(w)
}

fn dev_full() -> std::process::Stdio {
    std::process::Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full"))
}

/// Item 4: a failed write to stdout (`run --ktap | head -1`, `probe > /dev/full`) panicked with
/// exit 101, and with `--write-baseline` the baseline was never written (it was recorded after
/// the summary was printed). Now: no panic, every report and the baseline written, the failed
/// write said on stderr, exit 2 (1 when a case failed).
#[test]
fn a_failed_stdout_write_neither_panics_nor_loses_the_baseline() {
    use zcrx_conform::model::Status;
    let d = temp_dir("stdout");
    let input = d.join("in/report.json");
    write_report(&input, &[host_run("6.18", vec![case("q.x", Status::Pass), case("q.y", Status::Pass)])]);
    for (what, sink) in [("EPIPE", broken_pipe()), ("ENOSPC", dev_full())] {
        let (baseline, out) = (d.join(format!("b-{what}.json")), d.join(format!("out-{what}")));
        let args = ["merge", s(&input), "--ktap", "--write-baseline", s(&baseline), "--out", s(&out)];
        let r = run_into(&args, sink, false);
        assert!(r.exited(2), "{what}: {r:?}");
        assert!(r.stderr.contains("stdout"), "{what}: {}", r.stderr);
        assert!(baseline.is_file(), "{what}: the baseline was not written");
        assert!(out.join("report.json").is_file(), "{what}: the reports were not written");
    }
    let failed = d.join("failed/report.json");
    write_report(&failed, &[host_run("6.18", vec![case("q.x", Status::Fail)])]);
    let r = run_into(&["merge", s(&failed), "--ktap"], broken_pipe(), false);
    assert!(r.exited(1), "a failure still exits 1: {r:?}");
    for args in [&["probe"][..], &["probe", "--json"], &["schema"], &["validate", "cases"], &["run", "--list"]] {
        let r = run_into(args, dev_full(), false);
        assert!(r.exited(2), "{args:?} > /dev/full: {r:?}");
    }
    let r = run_into(&["validate", "/nonexistent.yaml"], dev_full(), true);
    assert!(r.exited(2), "validate 2> /dev/full: {r:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Item 5: `--out DIR` was looked up by name again when the reports were written: DIR renamed
/// during the run and a link put in its place sent the reports to the link's target (replacing
/// its report.json) while the lock stayed on the old directory. Now the reports go into the
/// directory opened and locked at the start, wherever it is now.
#[test]
fn the_reports_go_to_the_out_directory_locked_at_the_start() {
    let d = temp_dir("moved");
    let cases = slow_cases(&d);
    let (out, moved, victim) = (d.join("out"), d.join("moved"), d.join("victim"));
    std::fs::create_dir_all(&victim).expect("victim");
    std::fs::write(victim.join("report.json"), "precious\n").expect("victim report");
    let child = start_slow_run(&cases, &out, &[]);
    std::fs::rename(&out, &moved).expect("rename");
    symlink(&victim, &out).expect("link");
    signal(&child, libc::SIGINT);
    let r = wait(child, Duration::from_secs(20));
    assert!(r.exited(130), "{r:?}");
    assert_eq!(std::fs::read_to_string(victim.join("report.json")).expect("victim"), "precious\n");
    let names: Vec<_> = std::fs::read_dir(&victim).expect("ls").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names, ["report.json"], "written into the link's target");
    for f in ["report.json", "junit.xml", "ktap.txt"] {
        assert!(moved.join(f).is_file(), "{f} is not in the locked directory");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Item 6: two outputs naming one file (`--out d --write-baseline d/report.json`, `--junit x
/// --json x`) were both written, one over the other; a run refused by the start-of-run checks
/// left the `--out` it had created, and its lock file, behind. Now both are refused before
/// anything is created, and a refused run removes what it created.
#[test]
fn outputs_naming_one_file_are_refused_and_a_refused_run_leaves_nothing() {
    use zcrx_conform::model::Status;
    let d = temp_dir("same");
    let nothing = ["run", "--filter", "no-such-case", "-q"];
    let (o, x) = (d.join("o"), d.join("x.json"));
    let dotted = format!("{}/./x.json", s(&d));
    let same: Vec<Vec<String>> = vec![
        vec!["--out".into(), s(&o).into(), "--write-baseline".into(), s(&o.join("report.json")).into()],
        vec!["--junit".into(), s(&x).into(), "--json".into(), s(&x).into()],
        vec!["--json".into(), s(&x).into(), "--kcidb".into(), dotted.clone()],
        vec!["--out".into(), s(&o).into(), "--junit".into(), s(&o.join("junit.xml")).into()],
        vec!["--out".into(), s(&o).into(), "--kcidb".into(), format!("{}/../o/ktap.txt", s(&o))],
    ];
    for extra in same {
        let args: Vec<&str> = nothing.iter().copied().chain(extra.iter().map(String::as_str)).collect();
        let r = run(&args);
        assert!(r.exited(2) && r.stderr.contains("same file"), "{args:?}: {r:?}");
        assert!(!o.exists() && !x.exists(), "{args:?}: created an output");
    }
    // One baseline read and then updated is fine.
    let input = d.join("in/report.json");
    write_report(&input, &[host_run("6.18", vec![case("q.x", Status::Pass)])]);
    let b = d.join("b.json");
    assert!(run(&["merge", s(&input), "--write-baseline", s(&b)]).exited(0));
    let r = run(&["merge", s(&input), "--baseline", s(&b), "--write-baseline", s(&b)]);
    assert!(r.exited(0), "{r:?}");

    // A refused run removes the --out it created (and the directories above it it created),
    // and the lock file it put in an --out that was there before.
    let (new_out, old_out) = (d.join("new/sub/out"), d.join("old"));
    std::fs::create_dir_all(&old_out).expect("old");
    let nosuch = d.join("nosuch.json");
    for out in [&new_out, &old_out] {
        let args = [&nothing[..], &["--out", s(out), "--baseline", s(&nosuch)]].concat();
        let r = run(&args);
        assert!(r.exited(2), "{r:?}");
    }
    assert!(!d.join("new").exists(), "the --out it created is left behind");
    let left: Vec<_> = std::fs::read_dir(&old_out).expect("ls").map(|e| e.expect("entry").file_name()).collect();
    assert!(left.is_empty(), "left in an existing --out: {left:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Item 10: `merge` of an aborted report exited 130 though it received no signal; the case
/// running at SIGINT was reported as a failure "interrupted" (JUnit failure, KCIDB ERROR) though
/// it was not run to its end; SIGHUP and SIGQUIT wrote no reports at all. Now: merge says the
/// input was aborted and exits 1 (its selected cases did not all run); the interrupted case is
/// not run (JUnit skipped, KCIDB MISS); SIGHUP and SIGQUIT stop a run as SIGTERM does.
#[test]
fn interruptions_are_reported_as_what_they_are() {
    use zcrx_conform::model::Status;
    let d = temp_dir("aborted");
    let mut aborted = host_run("6.18", vec![case("q.x", Status::Pass)]);
    aborted.aborted = Some("interrupted".into());
    aborted.not_run = vec!["q.y".into()];
    let input = d.join("in/report.json");
    write_report(&input, &[aborted]);
    let r = run(&["merge", s(&input)]);
    assert!(r.exited(1), "{r:?}");
    assert!(r.stderr.contains("aborted"), "{}", r.stderr);

    let cases = slow_cases(&d);
    let out = d.join("out");
    let kcidb = d.join("k.json");
    let child = start_slow_run(&cases, &out, &["--kcidb", s(&kcidb)]);
    signal(&child, libc::SIGINT);
    let r = wait(child, Duration::from_secs(20));
    assert!(r.exited(130), "{r:?}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit");
    assert!(!junit.contains("<failure"), "the interrupted case is a failure: {junit}");
    let k: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&kcidb).expect("kcidb")).expect("json");
    let tests = k["tests"].as_array().expect("tests");
    let slow = tests.iter().find(|t| t["path"] == "zcrx.t.slow").expect("the interrupted case is in KCIDB");
    assert_eq!(slow["status"], "MISS", "{slow}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report")).expect("json");
    assert_eq!(report["runs"][0]["not_run"], serde_json::json!(["t.slow", "t.fast"]), "{report}");

    for sig in [libc::SIGHUP, libc::SIGQUIT] {
        let out = d.join(format!("out-{sig}"));
        let child = start_slow_run(&cases, &out, &[]);
        signal(&child, sig);
        let r = wait(child, Duration::from_secs(20));
        assert!(r.exited(143), "signal {sig}: {r:?}");
        assert!(out.join("report.json").is_file(), "signal {sig}: no report");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Item 12: on a full disk the three reports of `--out` did not go together: ktap.txt was
/// replaced while junit.xml and report.json failed. Now every temp file is written first and
/// none is renamed unless all were: the directory keeps the previous three (a file-size limit
/// stands in for the full disk: a write past it fails as ENOSPC would).
#[test]
fn the_reports_of_out_go_together_when_the_disk_is_full() {
    use zcrx_conform::model::Status;
    let d = temp_dir("enospc");
    let (small, big) = (d.join("small/report.json"), d.join("big/report.json"));
    write_report(&small, &[host_run("6.18", vec![case("q.x", Status::Pass)])]);
    let many: Vec<_> = (0..200).map(|i| case(&format!("q.case_{i:03}"), Status::Pass)).collect();
    let big_run = host_run("6.18", many);
    write_report(&big, std::slice::from_ref(&big_run));
    let out = d.join("out");
    assert!(run(&["merge", s(&small), "--out", s(&out)]).exited(0));
    let before: Vec<String> = ["junit.xml", "report.json", "ktap.txt"]
        .iter()
        .map(|f| std::fs::read_to_string(out.join(f)).expect(f))
        .collect();
    let ktap_len = zcrx_conform::report::ktap(&big_run).len() as u64;
    let r = wait(
        command(&["merge", s(&big), "--out", s(&out)], Some(ktap_len + 64)).spawn().expect("spawn"),
        Duration::from_secs(60),
    );
    assert!(r.exited(2), "{r:?}");
    let after: Vec<String> = ["junit.xml", "report.json", "ktap.txt"]
        .iter()
        .map(|f| std::fs::read_to_string(out.join(f)).expect(f))
        .collect();
    let replaced: Vec<bool> = before.iter().zip(&after).map(|(b, a)| b != a).collect();
    assert_eq!(replaced, [false; 3], "replaced (junit.xml, report.json, ktap.txt): the three went apart");
    let left: Vec<_> = std::fs::read_dir(&out)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
    let _ = std::fs::remove_dir_all(&d);
}
