//! A case the runner kills at its timeout fails with what it logged until then: a hung case
//! says how far it got (its log lines reach the runner as they are made, not at its end).

use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn a_case_killed_at_its_timeout_keeps_its_log() {
    let dir = std::env::temp_dir().join(format!("zcrx-hung-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let case = dir.join("hangs.yaml");
    std::fs::write(
        &case,
        "id: query.hangs\narea: query\nabout: opens a ring, then waits longer than its timeout\nspec: [Q1]\n\
         requires: { topology: [host] }\ntimeout: 1\nsteps:\n  - open_ring: { name: r2 }\n  - ring: r2\n    \
         expect_cqes: { user_data: 7, cqes: [ { res: 0 } ], timeout_ms: 20000 }\n",
    )
    .expect("case");
    let json = dir.join("report.json");
    let o = Command::new(env!("CARGO_BIN_EXE_zcrx-conform"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .stdin(Stdio::null())
        .args(["run", "-q", "--topology", "host", "--json"])
        .arg(&json)
        .arg(&case)
        .output()
        .expect("zcrx-conform");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let report = std::fs::read_to_string(&json).expect("report.json");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(report.contains("timed_out"), "{report}");
    assert!(report.contains("io_uring_setup(flags"), "the killed case's log is lost: {report}");
}
