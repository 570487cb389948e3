//! Where a case runs.
//!
//! Built in: `host` (the running kernel, no network set-up; a netdev registration defaults
//! to loopback rxq 0) and `nodev` (registrations default to ZCRX_REG_NODEV, 7.2+).
//! From files under `topologies/`: `veth`, `netdevsim`, `netdevsim-zcrx` (a linked pair of
//! ports in two network namespaces the harness creates) and `nic` (an interface the operator
//! names, and a peer). The harness records every setting it changes and restores it when the
//! run ends, fails or is interrupted; it touches no interface the file does not name.
//!
//! This file holds what a case needs to know ([`Topo`]) and the topology files themselves
//! (types, loading, validation). `env.rs` brings a file's topology up and owns its teardown
//! ([`Env`]); `tools.rs` runs `ip` and `ethtool` ([`Tools`], [`apply_settings`]).

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod env;
mod set;
mod tools;

pub use env::{clean_leftovers, Active, Env};
pub use set::Envs;
pub use tools::{apply_settings, read_settings, Tools};

pub const KNOWN: &[&str] = &["host", "nodev", "netdevsim", "veth", "nic", "netdevsim-zcrx"];

/// Topologies a run provides when none is named.
pub const DEFAULT_RUN: &[&str] = &["host", "nodev"];

/// Topologies a case supports when it names none.
pub const DEFAULT_CASE: &[&str] = &["host", "nodev"];

/// Environment variable carrying the active topology to case processes.
pub const ENV: &str = "ZCRX_CONFORM_TOPOLOGY";

/// What the executing case needs to know about its topology.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Topo {
    pub name: String,
    /// Default registration is ZCRX_REG_NODEV.
    pub nodev: bool,
    /// Default if_idx / if_rxq for a netdev registration (in the DUT namespace).
    pub if_idx: u32,
    pub if_rxq: u32,
    /// The peer device's ifindex (in the peer's namespace).
    pub peer_if_idx: u32,
    /// Network namespace (a /run/netns path) the case runs in; None = the harness's own.
    pub netns: Option<PathBuf>,
    /// Namespace of the peer that sends; None = the same as the case.
    pub peer_netns: Option<PathBuf>,
    /// The device under test and the peer's device.
    pub dut_dev: Option<String>,
    pub peer_dev: Option<String>,
    /// Addresses a TCP connection uses (listener on dut_addr, client from peer_addr).
    pub dut_addr: String,
    pub peer_addr: String,
    /// ethtool that can set tcp-data-split / hds-thresh (7.x).
    pub ethtool: Option<PathBuf>,
    /// Settings a case may change with the `ethtool` step.
    pub may_change: Vec<String>,
    /// debugfs directory of the DUT port (netdevsim), for fault knobs.
    pub debugfs: Option<PathBuf>,
    /// Number of rx queues of the DUT.
    pub queues: u32,
    /// Each case runs in a network namespace of its own (created by the case process, `lo`
    /// up, nothing else): the built-in topologies, which name no device of the machine.
    #[serde(default)]
    pub fresh_netns: bool,
}

impl Topo {
    /// The built-in topologies; the others come from [`TopologyFile::up`]. Their cases run
    /// in a fresh network namespace each (`fresh_netns`): `if_idx` is that of `lo` in the
    /// namespace this is called in, so the case process calls it again once it is in its own.
    pub fn builtin(name: &str) -> Option<Topo> {
        match name {
            "host" => Some(Topo {
                name: name.into(),
                if_idx: loopback_ifindex(),
                dut_addr: "127.0.0.1".into(),
                peer_addr: "127.0.0.1".into(),
                queues: 1,
                fresh_netns: true,
                ..Default::default()
            }),
            "nodev" => Some(Topo {
                name: name.into(),
                nodev: true,
                dut_addr: "127.0.0.1".into(),
                peer_addr: "127.0.0.1".into(),
                fresh_netns: true,
                ..Default::default()
            }),
            _ => None,
        }
    }

    /// The topology a case process was started with: the environment, else built in.
    pub fn for_case(name: &str) -> Result<Topo, String> {
        // The runner sets the variable for exactly the topology it chose for this case
        // (its name is the file's, `name` here is the kind the case asked for).
        if let Ok(j) = std::env::var(ENV) {
            return serde_json::from_str(&j).map_err(|e| format!("{ENV}: {e}"));
        }
        Topo::builtin(name).ok_or_else(|| format!("topology `{name}` is not set up in this run"))
    }
}

pub fn loopback_ifindex() -> u32 {
    nix::net::if_::if_nametoindex("lo").unwrap_or(1)
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Veth,
    Netdevsim,
    NetdevsimZcrx,
    Nic,
}

/// ethtool settings a topology applies (and restores).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// on | off | auto
    pub tcp_data_split: Option<String>,
    pub hds_thresh: Option<u32>,
    /// Combined channels.
    pub combined: Option<u32>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Network namespace the peer interface is in (an existing /run/netns name).
    pub netns: Option<String>,
    pub interface: Option<String>,
    /// The peer's address the DUT reaches it at; traffic goes nowhere else.
    pub address: String,
}

/// A topology file under topologies/.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    pub name: String,
    pub kind: Kind,
    pub about: String,
    /// rx queues per port (veth/netdevsim).
    #[serde(default = "d_queues")]
    pub queues: u32,
    /// The zcrx rx queue of the DUT.
    #[serde(default)]
    pub rxq: u32,
    /// Addresses with prefix length, DUT and peer (veth/netdevsim), e.g. 10.77.0.1/24.
    #[serde(default = "d_dut_addr")]
    pub dut_address: String,
    #[serde(default = "d_peer_addr")]
    pub peer_address: String,
    /// Settings applied to the DUT at set-up.
    #[serde(default)]
    pub dut: Settings,
    /// Settings applied to the peer at set-up (e.g. combined: 1 steers its flow to rx queue 0).
    #[serde(default)]
    pub peer: Settings,
    /// nic: the interface under test, and the namespace it is in (default: the harness's).
    pub interface: Option<String>,
    pub netns: Option<String>,
    /// nic: who sends.
    pub remote: Option<Peer>,
    /// Settings cases may change (restored after each case); nothing else is touched.
    #[serde(default)]
    pub may_change: Vec<String>,
    /// nic: create the named interface and peer as a zcrx-capable netdevsim pair first (in
    /// the named namespaces), then treat it exactly like a real NIC. Proves the nic path where
    /// there is no zcrx hardware.
    pub simulate: Option<Kind>,
}

fn d_queues() -> u32 {
    4
}
fn d_dut_addr() -> String {
    "10.77.0.1/24".into()
}
fn d_peer_addr() -> String {
    "10.77.0.2/24".into()
}

const SETTING_NAMES: &[&str] = &["tcp-data-split", "hds-thresh", "combined"];

/// Where topology files live.
pub fn dir() -> PathBuf {
    crate::paths::repo_root().join("topologies")
}

/// Loads `topologies/<name>.yaml` (or a path), with file:line:column errors.
pub fn load(name: &str) -> Result<TopologyFile, String> {
    let p = if name.ends_with(".yaml") || name.contains('/') {
        PathBuf::from(name)
    } else {
        dir().join(format!("{name}.yaml"))
    };
    let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let t: TopologyFile = serde_saphyr::from_str(&text).map_err(|e| {
        let (l, c) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        let first = e.to_string().lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid YAML").trim().to_string();
        format!("{}:{l}:{c}: {first}", p.display())
    })?;
    validate(&t).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(t)
}

fn valid_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn validate(t: &TopologyFile) -> Result<(), String> {
    for s in &t.may_change {
        if !SETTING_NAMES.contains(&s.as_str()) {
            return Err(format!("may_change: unknown setting `{s}` (known: {})", SETTING_NAMES.join(", ")));
        }
    }
    for a in [&t.dut_address, &t.peer_address] {
        parse_cidr(a)?;
    }
    for v in [&t.dut.tcp_data_split, &t.peer.tcp_data_split].into_iter().flatten() {
        if !["on", "off", "auto"].contains(&v.as_str()) {
            return Err(format!("tcp_data_split: `{v}` is not on, off or auto"));
        }
    }
    if t.queues == 0 || t.queues > 64 || t.rxq >= t.queues.max(1) && t.kind != Kind::Nic {
        return Err(format!("queues {} / rxq {}: need 1 <= queues <= 64 and rxq < queues", t.queues, t.rxq));
    }
    if t.kind == Kind::Nic {
        let i = t.interface.as_deref().ok_or("nic: `interface` is required")?;
        if !valid_ifname(i) {
            return Err(format!("nic: `{i}` is not an interface name"));
        }
        let r = t.remote.as_ref().ok_or("nic: `remote` (the peer that sends) is required")?;
        r.address
            .parse::<std::net::IpAddr>()
            .map_err(|_| format!("remote.address `{}` is not an address", r.address))?;
        for n in [&t.netns, &r.netns].into_iter().flatten() {
            if !valid_ifname(n) {
                return Err(format!("netns `{n}` is not a namespace name"));
            }
        }
    }
    Ok(())
}

fn parse_cidr(s: &str) -> Result<(String, u8), String> {
    let (a, p) = s.split_once('/').ok_or_else(|| format!("`{s}`: expected ADDRESS/PREFIX"))?;
    a.parse::<std::net::IpAddr>().map_err(|_| format!("`{s}`: bad address"))?;
    let p: u8 = p.parse().map_err(|_| format!("`{s}`: bad prefix length"))?;
    Ok((a.to_string(), p))
}

/// All topology files, by name.
pub fn available() -> BTreeMap<String, PathBuf> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir()) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|e| e.to_str()) == Some("yaml") {
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    m.insert(stem.to_string(), p.clone());
                }
            }
        }
    }
    m
}

/// Enters a network namespace on the calling thread.
pub fn enter(path: &Path) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_topologies_load() {
        for (name, _) in available() {
            load(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn bad_topology_is_located() {
        let dir = std::env::temp_dir().join(format!("zcrx-topo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let p = dir.join("bad.yaml");
        std::fs::write(&p, "name: bad\nkind: veth\nabout: x\nqueuez: 3\n").expect("write");
        let e = load(p.to_str().expect("utf8")).expect_err("must fail");
        assert!(e.contains("bad.yaml:4:"), "{e}");
        std::fs::write(
            &p,
            "name: bad\nkind: nic\nabout: x\ninterface: 'eth0; rm -rf /'\nremote: { address: 10.0.0.2 }\n",
        )
        .expect("write");
        assert!(load(p.to_str().expect("utf8")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
