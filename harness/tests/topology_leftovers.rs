//! After any run, including one killed with SIGKILL while its topology was up, no network
//! namespace or netdevsim device of the harness remains once the next run has finished.
//! Needs root: ignored by a plain `cargo test`; ci/test.sh runs it with `--include-ignored`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ours() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/run/netns") {
        v.extend(rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("zcrxc")));
    }
    v
}

fn can_run() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root".into());
    }
    Ok(())
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zcrx-conform"))
}

fn cases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cases/nic")
}

#[test]
#[ignore = "needs root and veth (ci/test.sh runs it)"]
fn no_leftovers_after_normal_and_killed_runs() {
    if let Err(why) = can_run() {
        panic!("cannot run here: {why}");
    }
    let before = ours();
    // A normal run.
    let st = Command::new(bin()).args(["run", "--topology", "veth", "-q"]).arg(cases()).status().expect("run");
    assert!(st.code().is_some_and(|c| c == 0 || c == 1), "{st}");
    assert_eq!(ours(), before, "a normal run left namespaces behind");

    // A run killed while its topology is up: a slow case keeps it up long enough.
    let dir = std::env::temp_dir().join(format!("zcrx-leftover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    std::fs::write(
        dir.join("slow.yaml"),
        "id: t.slow\narea: nic\nabout: waits\nrequires: { topology: [veth], caps: [] }\nsteps:\n  - connect: {}\n  - expect_cqes: { user_data: 9, timeout_ms: 20000, cqes: [ { res: 0 } ] }\n",
    )
    .expect("write");
    let mut child = Command::new(bin())
        .args(["run", "--topology", "veth", "-q"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while ours().len() <= before.len() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ours().len() > before.len(), "the topology never came up");
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(ours().len() > before.len(), "SIGKILL cannot clean up: the namespaces must still be there");
    // The next run removes what the killed one left.
    let st = Command::new(bin()).args(["run", "--topology", "veth", "-q"]).arg(cases()).status().expect("run");
    assert!(st.code().is_some_and(|c| c == 0 || c == 1), "{st}");
    // The killed run's case process may linger until its own timeout; it holds no namespace name.
    assert_eq!(ours(), before, "leftovers of the killed run were not removed");
    let _ = std::fs::remove_dir_all(&dir);
}
