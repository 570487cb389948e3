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
//! (types, loading, validation); `kind.rs` the kinds ([`Kind`]). `env.rs` brings a file's
//! topology up and owns its teardown ([`Env`]: each change pushes its undo next to it; a failed
//! undo is an [`Unrestored`]); `tools.rs` reads, changes and restores device settings through
//! netlink (`apply_settings`, `DevState`). No `ip`, `ethtool`, `modprobe` or `udevadm` is started.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

mod env;
mod error;
mod kind;
mod nsim;
mod remote;
mod set;
pub mod ssh;
pub mod ssh_lab;
mod tools;

pub use env::{Env, Unrestored, NSIM_ID_BASE};
pub use error::Error;
pub use kind::{kind_of, Kind};
use remote::check_ssh;
pub use remote::SshRemote;
pub use set::Envs;
pub use tools::{apply_here, apply_settings, read_state, restore, DevState, Tools};

/// Topologies a run provides when none is named (names, as `--topology` takes them).
pub const DEFAULT_RUN: &[&str] = &["host", "nodev"];

/// Topologies a case supports when it names none.
pub const DEFAULT_CASE: [Kind; 2] = [Kind::Host, Kind::Nodev];

/// What the executing case needs to know about its topology.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Topo {
    /// The topology's name: a built-in kind's, or the file's (`nic-netdevsim`).
    pub name: String,
    pub kind: Kind,
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
    /// IPv6 addresses of the DUT and the peer, when the topology has them.
    #[serde(default)]
    pub dut_addr6: Option<String>,
    #[serde(default)]
    pub peer_addr6: Option<String>,
    /// Device deletion, netns moves and link flaps are allowed (DISRUPTIVE in the kernel
    /// selftests); otherwise the cases doing them skip.
    #[serde(default)]
    pub destructive: bool,
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
    /// The peer is another machine: its agent, reached over SSH (`peer_netns` is then None).
    #[serde(default)]
    pub ssh: Option<ssh::SshAgent>,
}

impl Topo {
    /// The built-in topologies; the others come from [`TopologyFile::up`]. Their cases run
    /// in a fresh network namespace each (`fresh_netns`): `if_idx` is that of `lo` in the
    /// namespace this is called in, so the case process calls it again once it is in its own.
    pub fn builtin(kind: Kind) -> Option<Topo> {
        let local = Topo {
            name: kind.to_string(),
            kind,
            dut_addr: "127.0.0.1".into(),
            peer_addr: "127.0.0.1".into(),
            fresh_netns: true,
            ..Default::default()
        };
        match kind {
            Kind::Host => Some(Topo { if_idx: loopback_ifindex(), queues: 1, ..local }),
            Kind::Nodev => Some(Topo { nodev: true, ..local }),
            Kind::Veth | Kind::Netdevsim | Kind::NetdevsimZcrx | Kind::Nic => None,
        }
    }
}

pub fn loopback_ifindex() -> u32 {
    nix::net::if_::if_nametoindex("lo").unwrap_or(1)
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
    /// rx ring size (descriptors).
    pub rx_ring: Option<u32>,
    /// MTU (through rtnetlink).
    pub mtu: Option<u32>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Network namespace the peer interface is in (an existing /run/netns name).
    pub netns: Option<String>,
    pub interface: Option<String>,
    /// The peer's address the DUT reaches it at; traffic goes nowhere else.
    pub address: String,
    /// The peer's IPv6 address (IPv6 cases skip without it).
    pub address6: Option<String>,
    /// The peer is another machine, reached over SSH: the sender runs there.
    pub ssh: Option<SshRemote>,
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
    /// IPv6 addresses with prefix length (veth/netdevsim; nic: the DUT's, optional).
    pub dut_address6: Option<String>,
    pub peer_address6: Option<String>,
    /// Cases may delete the device, move it to another namespace and take the link down
    /// (the kernel selftests' DISRUPTIVE). Default false: those cases skip.
    #[serde(default)]
    pub destructive: bool,
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

const SETTING_NAMES: &[&str] = &["tcp-data-split", "hds-thresh", "combined", "rx-ring", "mtu", "ntuple", "rss", "xdp"];

/// Where topology files live: `topologies/` on disk, else those built into the binary.
pub fn dir() -> PathBuf {
    crate::paths::topology_dir()
}

/// A topology file's text: from disk, or built in (`builtin:/topologies/NAME.yaml`).
fn read_text(p: &Path) -> Result<String, Error> {
    match crate::paths::builtin::read(p) {
        Some(t) => Ok(t.to_string()),
        None if crate::paths::builtin::is_builtin(p) => {
            Err(Error::Invalid(format!("{}: no such built-in file", p.display())))
        }
        None => crate::paths::input::read_text(p, crate::paths::input::MAX_TOPOLOGY_BYTES, true)
            .map_err(|e| Error::Invalid(format!("{}: {e}", p.display()))),
    }
}

/// Loads `topologies/<name>.yaml` (or a path), with file:line:column errors.
pub fn load(name: &str) -> Result<TopologyFile, Error> {
    let p = if name.ends_with(".yaml") || name.contains('/') {
        PathBuf::from(name)
    } else {
        dir().join(format!("{name}.yaml"))
    };
    let text = read_text(&p)?;
    let located = |l: u64, c: u64, msg: &str| {
        if l > 0 {
            format!("{}:{l}:{c}: {msg}", p.display())
        } else {
            format!("{}: {msg}", p.display())
        }
    };
    let t: TopologyFile = serde_saphyr::from_str(&text).map_err(|e| {
        let (l, c) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        Error::Invalid(located(l, c, &yaml_message(&e)))
    })?;
    let places: Places = serde_saphyr::from_str(&text).unwrap_or_default();
    validate(&t).map_err(|(field, msg)| {
        let (l, c) = places.of(field);
        Error::Invalid(located(l, c, &msg))
    })?;
    Ok(t)
}

/// A YAML error in plain words, without its place (printed before it) or the reader's
/// option names.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::{Error as E, MessageFormatter, UserMessageFormatter};
    let e = e.without_snippet();
    let msg = match e {
        E::Budget { .. } => "file too large or nested too deep".to_string(),
        E::DuplicateMappingKey { key: Some(k), .. } => format!("duplicate key `{k}`"),
        E::DuplicateMappingKey { .. } => "duplicate key".to_string(),
        _ => UserMessageFormatter.format_message(e).into_owned(),
    };
    let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid YAML").trim();
    first.chars().flat_map(|c| if c.is_control() { c.escape_debug().collect() } else { vec![c] }).collect()
}

/// Where the checked fields of a topology file are (the file read a second time).
#[derive(Deserialize, Default)]
struct Places {
    name: Option<Spanned<IgnoredAny>>,
    interface: Option<Spanned<IgnoredAny>>,
    netns: Option<Spanned<IgnoredAny>>,
    dut_address: Option<Spanned<IgnoredAny>>,
    peer_address: Option<Spanned<IgnoredAny>>,
    dut_address6: Option<Spanned<IgnoredAny>>,
    peer_address6: Option<Spanned<IgnoredAny>>,
    may_change: Option<Spanned<IgnoredAny>>,
    queues: Option<Spanned<IgnoredAny>>,
    dut: Option<Spanned<IgnoredAny>>,
    peer: Option<Spanned<IgnoredAny>>,
    simulate: Option<Spanned<IgnoredAny>>,
    remote: Option<Spanned<PeerPlaces>>,
}

#[derive(Deserialize, Default)]
struct PeerPlaces {
    netns: Option<Spanned<IgnoredAny>>,
    interface: Option<Spanned<IgnoredAny>>,
    address: Option<Spanned<IgnoredAny>>,
    ssh: Option<Spanned<SshPlaces>>,
}

#[derive(Deserialize, Default)]
struct SshPlaces {
    host: Option<Spanned<IgnoredAny>>,
    user: Option<Spanned<IgnoredAny>>,
    identity: Option<Spanned<IgnoredAny>>,
    known_hosts: Option<Spanned<IgnoredAny>>,
}

impl Places {
    /// Line and column of a field (`remote.netns`), else of the nearest one written.
    fn of(&self, field: &str) -> (u64, u64) {
        let at = |s: &Option<Spanned<IgnoredAny>>| s.as_ref().map(|s| (s.referenced.line(), s.referenced.column()));
        let remote = self.remote.as_ref();
        let r = |f: fn(&PeerPlaces) -> &Option<Spanned<IgnoredAny>>| {
            remote.and_then(|p| at(f(&p.value))).or(remote.map(|p| (p.referenced.line(), p.referenced.column())))
        };
        let ssh = remote.and_then(|p| p.value.ssh.as_ref());
        let sf = |f: fn(&SshPlaces) -> &Option<Spanned<IgnoredAny>>| {
            ssh.and_then(|p| at(f(&p.value))).or(ssh.map(|p| (p.referenced.line(), p.referenced.column())))
        };
        let found = match field {
            "remote.ssh" => sf(|_| &None),
            "remote.ssh.host" => sf(|p| &p.host),
            "remote.ssh.user" => sf(|p| &p.user),
            "remote.ssh.identity" => sf(|p| &p.identity),
            "remote.ssh.known_hosts" => sf(|p| &p.known_hosts),
            "name" => at(&self.name),
            "interface" => at(&self.interface),
            "netns" => at(&self.netns),
            "dut_address" => at(&self.dut_address),
            "peer_address" => at(&self.peer_address),
            "dut_address6" => at(&self.dut_address6),
            "peer_address6" => at(&self.peer_address6),
            "may_change" => at(&self.may_change),
            "queues" => at(&self.queues),
            "dut" => at(&self.dut),
            "peer" => at(&self.peer),
            "simulate" => at(&self.simulate),
            "remote.netns" => r(|p| &p.netns),
            "remote.interface" => r(|p| &p.interface),
            "remote.address" => r(|p| &p.address),
            _ => None,
        };
        found.or(at(&self.name)).unwrap_or((1, 1))
    }
}

/// Printable text for a message (control characters escaped, at most 40 characters).
fn shown(s: &str) -> String {
    let mut t: String = s.chars().take(40).flat_map(char::escape_debug).collect();
    if s.chars().nth(40).is_some() {
        t.push('…');
    }
    t
}

/// An interface name the kernel accepts (`dev_valid_name`: 1 to 15 bytes, not `.` or `..`,
/// no `/`, `:` or blank) as it is (no `%`, which a new device's name expands to a number), that
/// no program takes for an option (no leading `-`) and that prints safely (no control
/// characters).
pub fn check_ifname(s: &str) -> Result<(), Error> {
    let bad = if s.is_empty() || s.len() > 15 {
        "1 to 15 bytes"
    } else if s == "." || s == ".." {
        "not `.` or `..`"
    } else if s.starts_with('-') {
        "not starting with `-`"
    } else if s.chars().any(|c| matches!(c, '/' | ':' | '%') || c.is_whitespace() || c.is_control()) {
        "without `/`, `:`, `%`, blanks or control characters"
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!("`{}` is not an interface name ({bad})", shown(s))))
}

/// A network namespace name (a file under /run/netns): 1 to 255 bytes, not `.` or `..`, no
/// `/`, no leading `-`, no control characters.
pub fn check_netns(s: &str) -> Result<(), Error> {
    let bad = if s.is_empty() || s.len() > 255 {
        "1 to 255 bytes"
    } else if s == "." || s == ".." {
        "not `.` or `..`"
    } else if s.starts_with('-') {
        "not starting with `-`"
    } else if s.chars().any(|c| c == '/' || c.is_control()) {
        "without `/` or control characters"
    } else {
        return Ok(());
    };
    Err(Error::Invalid(format!("`{}` is not a network namespace name ({bad})", shown(s))))
}

/// A topology name: 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `-` or `.`.
fn check_topology_name(s: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !s.starts_with(['-', '.']);
    ok.then_some(()).ok_or_else(|| {
        Error::Invalid(format!(
            "`{}` is not a topology name (1 to 64 of A-Z a-z 0-9 - _ ., not starting with - or .)",
            shown(s)
        ))
    })
}

/// What is wrong, and the field it is about.
type Bad = (&'static str, String);

fn validate(t: &TopologyFile) -> Result<(), Bad> {
    let at = |field: &'static str| move |e: Error| (field, format!("{field}: {e}"));
    check_topology_name(&t.name).map_err(at("name"))?;
    for s in &t.may_change {
        if !SETTING_NAMES.contains(&s.as_str()) {
            let msg = format!("unknown setting `{}` (known: {})", shown(s), SETTING_NAMES.join(", "));
            return Err(at("may_change")(Error::Invalid(msg)));
        }
    }
    parse_cidr(&t.dut_address).map_err(at("dut_address"))?;
    parse_cidr(&t.peer_address).map_err(at("peer_address"))?;
    for (field, v) in [("dut_address6", &t.dut_address6), ("peer_address6", &t.peer_address6)] {
        if let Some(v) = v {
            let (a, _) = parse_cidr(v).map_err(at(field))?;
            if !a.contains(':') {
                return Err(at(field)(Error::Invalid(format!("`{}` is not an IPv6 address", shown(v)))));
            }
        }
    }
    for (field, v) in [("dut", &t.dut.tcp_data_split), ("peer", &t.peer.tcp_data_split)] {
        if let Some(v) = v.as_ref().filter(|v| !["on", "off", "auto"].contains(&v.as_str())) {
            return Err((field, format!("{field}.tcp_data_split: `{}` is not on, off or auto", shown(v))));
        }
    }
    if t.queues == 0 || t.queues > 64 || t.rxq >= t.queues.max(1) && t.kind != Kind::Nic {
        return Err((
            "queues",
            format!("queues {} / rxq {}: need 1 <= queues <= 64 and rxq < queues", t.queues, t.rxq),
        ));
    }
    if Kind::BUILTIN.contains(&t.kind) {
        return Err((
            "name",
            format!("kind: `{}` is built in; a file describes veth, netdevsim, netdevsim-zcrx or nic", t.kind),
        ));
    }
    if let Some(i) = &t.interface {
        check_ifname(i).map_err(at("interface"))?;
    }
    if let Some(n) = &t.netns {
        check_netns(n).map_err(at("netns"))?;
    }
    if let Some(r) = &t.remote {
        if let Some(n) = &r.netns {
            check_netns(n).map_err(at("remote.netns"))?;
        }
        if let Some(i) = &r.interface {
            check_ifname(i).map_err(at("remote.interface"))?;
        }
        r.address.parse::<std::net::IpAddr>().map_err(|_| {
            at("remote.address")(Error::Invalid(format!("`{}` is not an IP address", shown(&r.address))))
        })?;
        if let Some(a) = &r.address6 {
            a.parse::<std::net::Ipv6Addr>()
                .map_err(|_| at("remote.address")(Error::Invalid(format!("`{}` is not an IPv6 address", shown(a)))))?;
        }
        if let Some(s) = &r.ssh {
            check_ssh(s, r, t.simulate.is_some())?;
        }
    }
    if t.kind == Kind::Nic {
        t.interface.as_deref().ok_or(("name", "nic: `interface` is required".to_string()))?;
        let r = t.remote.as_ref().ok_or(("name", "nic: `remote` (the peer that sends) is required".to_string()))?;
        if t.simulate.is_some() && (t.netns.is_none() || r.netns.is_none() || r.interface.is_none()) {
            let msg = "simulate: netns, remote.netns and remote.interface are required".to_string();
            return Err(("simulate", msg));
        }
    }
    Ok(())
}

/// `ADDRESS/PREFIX`: an IPv4 address with a prefix of 0 to 32, or IPv6 with 0 to 128.
fn parse_cidr(s: &str) -> Result<(String, u8), Error> {
    let (a, p) = s.split_once('/').ok_or_else(|| Error::Invalid(format!("`{}`: expected ADDRESS/PREFIX", shown(s))))?;
    let addr = a.parse::<std::net::IpAddr>().map_err(|_| Error::Invalid(format!("`{}`: bad address", shown(s))))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let p: u8 = p
        .parse()
        .ok()
        .filter(|n| *n <= max && p.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Error::Invalid(format!("`{}`: the prefix length must be 0 to {max}", shown(s))))?;
    Ok((a.to_string(), p))
}

/// All topology files, by name.
pub fn available() -> BTreeMap<String, PathBuf> {
    let mut m = BTreeMap::new();
    let d = dir();
    let files: Vec<PathBuf> = if crate::paths::builtin::is_builtin(&d) {
        // Only the top level, as on disk (examples/ are templates, not topologies).
        crate::paths::builtin::under(&d).into_iter().filter(|p| p.parent() == Some(d.as_path())).collect()
    } else {
        std::fs::read_dir(&d).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default()
    };
    for p in files {
        if p.extension().and_then(|e| e.to_str()) == Some("yaml") {
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                m.insert(stem.to_string(), p.clone());
            }
        }
    }
    m
}

/// Enters a network namespace on the calling thread.
pub fn enter(path: &Path) -> Result<(), Error> {
    let f = std::fs::File::open(path).map_err(|e| Error::Setup(format!("{}: {e}", path.display())))?;
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::Setup(format!("setns {}: {e}", path.display())))
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
        let e = load(p.to_str().expect("utf8")).expect_err("must fail").to_string();
        assert!(e.contains("bad.yaml:4:"), "{e}");
        std::fs::write(
            &p,
            "name: bad\nkind: nic\nabout: x\ninterface: 'eth0; rm -rf /'\nremote: { address: 10.0.0.2 }\n",
        )
        .expect("write");
        assert!(load(p.to_str().expect("utf8")).is_err());
        let nic = |extra: &str| {
            format!(
                "name: n\nkind: nic\nabout: x\ninterface: eth0\n{extra}remote:\n  netns: peer\n  address: 10.0.0.2\n"
            )
        };
        for (text, want) in [
            (
                "name: bad\nkind: nic\nabout: x\ninterface: --help\nremote: { address: 10.0.0.2 }\n".to_string(),
                ":4:12: interface:",
            ),
            (nic("netns: ..\n"), ":5:8: netns:"),
            (nic("").replace("netns: peer", "netns: -all"), ":6:10: remote.netns:"),
            ("name: v\nkind: veth\nabout: x\ndut_address: 10.0.0.1/200\n".into(), ":4:14: dut_address:"),
            ("name: v\nkind: veth\nabout: x\npeer_address: \"::1/129\"\n".into(), ":4:15: peer_address:"),
            ("name: ../x\nkind: veth\nabout: x\n".into(), ":1:7: name:"),
            ("name: v\nkind: veth\nabout: x\nabout: y\n".into(), ":4:1: duplicate key `about`"),
        ] {
            std::fs::write(&p, &text).expect("write");
            let e = load(p.to_str().expect("utf8")).expect_err(&text).to_string();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("Options") && !e.contains("line"), "{e}");
        }
        std::fs::write(&p, nic("netns: dut\n").replace("remote:\n", "remote:\n  interface: eth1\n")).expect("write");
        let t = load(p.to_str().expect("utf8")).expect("valid");
        assert!(!t.destructive, "destructive defaults to false");
        std::fs::write(&p, nic("destructive: true\ndut_address6: \"fd00::1/64\"\n")).expect("write");
        let t = load(p.to_str().expect("utf8")).expect("valid");
        assert!(t.destructive);
        for (text, want) in [
            (nic("dut_address6: 10.0.0.1/24\n"), ":5:15: dut_address6:"),
            (nic("may_change: [mtu, flux]\n"), ":5:13: may_change: unknown setting `flux`"),
        ] {
            std::fs::write(&p, &text).expect("write");
            let e = load(p.to_str().expect("utf8")).expect_err(&text).to_string();
            assert!(e.contains(want), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
