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
    assert!(out.join("ktap.txt").is_file(), "the other reports are still written");
    let _ = std::fs::remove_dir_all(&d);
}
