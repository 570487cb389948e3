//! The harness starts no program to set up or change a topology: links, addresses, namespaces,
//! modules and device settings go through netlink and syscalls (`kernel::nl`). A run on the
//! veth topology (namespaces, a veth pair, addresses, its cases) is traced with
//! `strace -f -e trace=execve`; the only program executed must be the harness itself.
//!
//! Allow-list: with a `--kernel` other than host, the host side also runs the vm/ scripts and vng/qemu; none of them
//! runs inside the guest, where the harness sets topologies up with the same code as here.
//! Needs root, strace and a kernel with veth; otherwise it says why and checks nothing.

use std::path::PathBuf;
use std::process::Command;

/// Programs a run on the host kernel may start: none but the harness.
const ALLOWED: &[&str] = &[];

#[test]
fn a_topology_run_starts_no_program() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: not root");
        return;
    }
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: no strace");
        return;
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_zcrx-conform"));
    let cases = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cases/nic/no_dma_device.yaml");
    let dir = std::env::temp_dir().join(format!("zcrx-noprog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let trace = dir.join("trace.txt");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=execve", "-o"])
        .arg(&trace)
        .arg(&bin)
        .args(["run", "--topology", "veth", "-q", "--out"])
        .arg(dir.join("out"))
        .arg(&cases)
        .output()
        .expect("strace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("could not be set up") {
        eprintln!("skipped: the veth topology cannot be set up here: {stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "the traced run failed: {stderr}");
    let text = std::fs::read_to_string(&trace).expect("trace");
    let execs: Vec<&str> = text.lines().filter(|l| l.contains("execve(")).collect();
    let bin_s = bin.to_string_lossy();
    let others: Vec<&&str> = execs
        .iter()
        .filter(|l| {
            let prog = l.split('"').nth(1).unwrap_or("");
            prog != bin_s && !ALLOWED.iter().any(|a| prog.ends_with(&format!("/{a}")))
        })
        .collect();
    assert!(execs.len() == 1, "expected exactly the harness's own execve, got {}: {execs:#?}", execs.len());
    assert!(others.is_empty(), "the harness started programs: {others:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
