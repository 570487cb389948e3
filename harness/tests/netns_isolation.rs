//! Issue 16, S2: no case file reaches a device the operator did not name.
//!
//! Each test runs the real binary inside a network namespace of its own (`unshare -n`), which
//! stands for the machine: a TUN device made there is "the machine's NIC". A case on the
//! built-in `host` topology that names its ifindex must get ENODEV (the case runs in a
//! namespace of its own), and a case on a `nic` topology may name only the topology's
//! interface, what it created, or an index that names no device.
//! Needs root, `unshare` (util-linux), iproute2, /dev/net/tun and a kernel with zcrx: ignored by
//! a plain `cargo test`; ci/test.sh installs them and runs it with `--include-ignored`, where a
//! missing one fails it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn can_run() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root".into());
    }
    for tool in ["ip", "unshare"] {
        Command::new(tool).arg("-V").output().map_err(|e| format!("no {tool}: {e}"))?;
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("no /dev/net/tun".into());
    }
    Ok(())
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zcrx-conform"))
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zcrx-netns-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp");
    d
}

/// Runs `script` (sh) in a new network namespace with `$ZC` = the binary; id -> (status, message)
/// of the report it leaves in `$OUT`.
fn run_in_netns(dir: &Path, script: &str) -> BTreeMap<String, (String, String)> {
    let out = dir.join("out");
    let st = Command::new("unshare")
        .args(["-n", "sh", "-euc", script])
        .env("ZC", bin())
        .env("OUT", &out)
        .current_dir(dir)
        .status()
        .expect("unshare");
    assert!(st.code().is_some_and(|c| c == 0 || c == 1), "the run in the namespace ended with {st}");
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut m = BTreeMap::new();
    for r in v["runs"].as_array().expect("runs") {
        for c in r["cases"].as_array().expect("cases") {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            m.insert(s("id"), (s("status"), s("message")));
        }
    }
    m
}

/// The ones the kernel could not run (no zcrx): the test has nothing to say then.
fn all_skipped(m: &BTreeMap<String, (String, String)>) -> bool {
    m.values().all(|(s, _)| s == "skip")
}

#[test]
#[ignore = "needs root, unshare, iproute2, /dev/net/tun and zcrx (ci/test.sh runs it)"]
fn host_case_cannot_reach_the_machines_device() {
    if let Err(why) = can_run() {
        panic!("cannot run here: {why}");
    }
    let dir = tmpdir("host");
    std::fs::write(
        dir.join("case.yaml"),
        "id: t.machine_nic\narea: registration\nabout: x\nrequires: { features: [zcrx], topology: [host] }\n\
         steps:\n  - register: { ifq: { if_idx: 2, if_rxq: 0, flags: 0 } }\n    expect: { errno: ENODEV }\n",
    )
    .expect("write");
    // The "machine" has lo and a device at ifindex 2 (a TUN: EOPNOTSUPP if it were reached).
    let m = run_in_netns(
        &dir,
        "ip link set lo up; ip tuntap add dev zmach0 mode tun; ip link set zmach0 up\n\
         [ \"$(ip -o link show zmach0 | cut -d: -f1)\" = 2 ] || exit 9\n\
         \"$ZC\" run case.yaml --topology host -q --out \"$OUT\" || true\n\
         ip link show zmach0 >/dev/null",
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!all_skipped(&m), "the kernel ran none of the cases (no zcrx?): {m:?}");
    let (st, msg) = &m["t.machine_nic"];
    assert_eq!(st, "pass", "the case reached the machine's device at ifindex 2: {msg}");
}

#[test]
#[ignore = "needs root, unshare, iproute2, /dev/net/tun and zcrx (ci/test.sh runs it)"]
fn nic_case_may_name_only_the_topologys_devices() {
    if let Err(why) = can_run() {
        panic!("cannot run here: {why}");
    }
    let dir = tmpdir("nic");
    std::fs::write(
        dir.join("nic.yaml"),
        "name: nic-guard\nkind: nic\nabout: x\ninterface: zdut0\nrxq: 0\nqueues: 1\nremote: { address: 10.9.0.2 }\n",
    )
    .expect("write");
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).expect("tmp");
    let head = "area: registration\nabout: x\nrequires: { features: [zcrx], topology: [nic] }\nsteps:\n";
    std::fs::write(
        cases.join("allowed.yaml"),
        format!(
            "id: t.allowed\n{head}\
             - register: {{ ifq: {{ if_idx: $topo.if_idx }} }}\n  expect: {{ errno: EOPNOTSUPP }}\n\
             - register: {{ ifq: {{ if_idx: 99999 }} }}\n  expect: {{ errno: ENODEV }}\n\
             - tun: {{ name: zmade0 }}\n\
             - register: {{ ifq: {{ if_idx: $zmade0.ifindex }} }}\n  expect: {{ errno: EOPNOTSUPP }}\n\
             - netns: {{ new: true }}\n\
             - register: {{ ifq: {{ if_idx: 1 }} }}\n  expect: {{ errno: EOPNOTSUPP }}\n"
        ),
    )
    .expect("write");
    // `lo` and `zother0` exist in the topology's namespace but the topology does not name them.
    for (id, idx) in [("t.lo", "$lo"), ("t.other", "3")] {
        std::fs::write(
            cases.join(format!("{id}.yaml")),
            format!("id: {id}\n{head}- register: {{ ifq: {{ if_idx: {idx} }} }}\n  expect: {{ errno: EOPNOTSUPP }}\n"),
        )
        .expect("write");
    }
    let m = run_in_netns(
        &dir,
        "ip link set lo up; ip tuntap add dev zdut0 mode tun; ip addr add 10.9.0.1/24 dev zdut0\n\
         ip link set zdut0 up; ip tuntap add dev zother0 mode tun\n\
         [ \"$(ip -o link show zother0 | cut -d: -f1)\" = 3 ] || exit 9\n\
         \"$ZC\" run cases --topology ./nic.yaml -q --out \"$OUT\" || true",
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!all_skipped(&m), "the kernel ran none of the cases (no zcrx?): {m:?}");
    let (st, msg) = &m["t.allowed"];
    assert_eq!(st, "pass", "{msg}");
    for (id, dev) in [("t.lo", "lo"), ("t.other", "zother0")] {
        let (st, msg) = &m[id];
        assert_eq!(st, "fail", "{id}: {msg}");
        assert!(msg.contains(&format!("names `{dev}`")) && msg.contains("refused before the syscall"), "{id}: {msg}");
    }
}
