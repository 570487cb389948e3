//! Issue 16, S5: the scripts the harness runs as root are the ones built into it. A `vm/`
//! tree planted in the current directory, or in a root named by `$ZCRX_CONFORM_ROOT`, is
//! never run; the variable, when it is used, is announced.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zcrx-conform"))
}

/// A `vm/` tree whose every script leaves `marker` behind when run (or sourced).
fn plant(root: &Path, marker: &Path) {
    let vm = root.join("vm");
    std::fs::create_dir_all(vm.join("netdevsim-zcrx")).expect("mkdir");
    for d in ["cases", "topologies"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let body = format!("#!/bin/bash\ntouch '{}'\nexit 0\n", marker.display());
    for s in ["kernel.sh", "lib.sh", "provision.sh", "ethtool.sh", "netdevsim.sh", "liburing.sh", "build-tree.sh"] {
        std::fs::write(vm.join(s), &body).expect("write");
    }
}

#[test]
fn kernel_list_runs_no_planted_script() {
    let t = std::env::temp_dir().join(format!("zcrx-s5-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&t);
    let (cwd, root) = (t.join("cwd"), t.join("root"));
    let (m_cwd, m_root) = (t.join("ran-from-cwd"), t.join("ran-from-root"));
    plant(&cwd, &m_cwd);
    plant(&root, &m_root);
    let mut child = Command::new(bin())
        .args(["kernel", "list", "7.3"])
        .current_dir(&cwd)
        .env("ZCRX_CONFORM_ROOT", &root)
        .env_remove("ZCRX_CACHE")
        // Nothing to fetch: the built-in kernel.sh fails fast without a network.
        .env("ZCRX_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
        .env("ZCRX_APT_MAX_AGE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    let ran_cwd = m_cwd.exists();
    let ran_root = m_root.exists();
    let _ = std::fs::remove_dir_all(&t);
    assert!(!ran_cwd, "kernel list ran vm/kernel.sh from the current directory\n{err}");
    assert!(!ran_root, "kernel list ran vm/kernel.sh from $ZCRX_CONFORM_ROOT\n{err}");
    assert!(err.contains("note: ZCRX_CONFORM_ROOT="), "the variable was used without a word:\n{err}");
}
