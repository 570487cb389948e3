//! Where a case runs.
//!
//! Built in: `host` (the running kernel, no network set-up; a netdev registration defaults
//! to loopback rxq 0) and `nodev` (registrations default to ZCRX_REG_NODEV, 7.2+).
//! From files under `topologies/`: `veth`, `netdevsim`, `netdevsim-zcrx` (a linked pair of
//! ports in two network namespaces the harness creates) and `nic` (an interface the operator
//! names, and a peer). The harness records every setting it changes and restores it when the
//! run ends, fails or is interrupted; it touches no interface the file does not name.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
}

impl Topo {
    /// The built-in topologies; the others come from [`TopologyFile::up`].
    pub fn builtin(name: &str) -> Option<Topo> {
        match name {
            "host" => Some(Topo {
                name: name.into(),
                if_idx: loopback_ifindex(),
                dut_addr: "127.0.0.1".into(),
                peer_addr: "127.0.0.1".into(),
                queues: 1,
                ..Default::default()
            }),
            "nodev" => Some(Topo {
                name: name.into(),
                nodev: true,
                dut_addr: "127.0.0.1".into(),
                peer_addr: "127.0.0.1".into(),
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

/// Runs a command (no shell) and returns its stdout, or an error with its stderr.
fn run(prog: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{} {}: {e}", prog.display(), args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}",
            prog.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> Result<String, String> {
    run(Path::new("ip"), args)
}

/// `ip -n NS ...`
fn ip_ns(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut v = vec!["-n", ns];
    v.extend_from_slice(args);
    ip(&v)
}

/// Runs ethtool, in a network namespace if one is given (`ip netns exec`).
fn ethtool_in(ethtool: &Path, netns: Option<&str>, args: &[&str]) -> Result<String, String> {
    match netns {
        Some(ns) => {
            let mut v = vec!["netns", "exec", ns, ethtool.to_str().unwrap_or("ethtool")];
            v.extend_from_slice(args);
            ip(&v)
        }
        None => run(ethtool, args),
    }
}

/// Reads the ethtool settings we may change (`-g` ring, `-l` channels).
pub fn read_settings(ethtool: &Path, netns: Option<&str>, dev: &str) -> Result<Settings, String> {
    let exec = |args: &[&str]| ethtool_in(ethtool, netns, args);
    let g = exec(&["-g", dev])?;
    let l = exec(&["-l", dev]).unwrap_or_default();
    let field = |text: &str, key: &str, after: Option<&str>| -> Option<String> {
        let start = after.and_then(|a| text.find(a)).unwrap_or(0);
        text[start..]
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .map(|l| l[l.find(':').unwrap_or(0) + 1..].trim().to_string())
    };
    let tds = field(&g, "TCP data split:", Some("Current hardware settings")).map(|v| v.to_lowercase());
    let hds = field(&g, "HDS thresh:", Some("Current hardware settings")).and_then(|v| v.parse().ok());
    let comb = field(&l, "Combined:", Some("Current hardware settings")).and_then(|v| v.parse().ok());
    Ok(Settings {
        tcp_data_split: tds
            .filter(|v| v == "on" || v == "off")
            .or(Some("auto".into()))
            .filter(|_| g.contains("TCP data split")),
        hds_thresh: hds,
        combined: comb,
    })
}

/// Applies settings with ethtool (only the ones given).
pub fn apply_settings(ethtool: &Path, netns: Option<&str>, dev: &str, s: &Settings) -> Result<(), String> {
    let exec = |args: &[&str]| ethtool_in(ethtool, netns, args);
    if let Some(c) = s.combined {
        let c = c.to_string();
        exec(&["-L", dev, "combined", &c])?;
    }
    let mut g: Vec<String> = vec!["-G".into(), dev.into()];
    if let Some(t) = &s.tcp_data_split {
        g.extend(["tcp-data-split".into(), t.clone()]);
    }
    if let Some(h) = s.hds_thresh {
        g.extend(["hds-thresh".into(), h.to_string()]);
    }
    if g.len() > 2 {
        let refs: Vec<&str> = g.iter().map(String::as_str).collect();
        exec(&refs)?;
    }
    Ok(())
}

/// A topology that is up. Dropping it tears it down (also on errors and Ctrl-C paths).
pub struct Active {
    pub topo: Topo,
    namespaces: Vec<String>,
    nsim_ids: Vec<u32>,
    /// (netns, device, settings before we changed them)
    restore: Vec<(Option<String>, String, Settings)>,
    pub log: Vec<String>,
}

/// Namespace names carry this prefix and the harness pid, so leftovers of a killed run can
/// be recognised and removed by the next one.
const NS_PREFIX: &str = "zcrxc";
const NSIM_ID_BASE: u32 = 7700;

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces and netdevsim devices left by harness runs that no longer exist.
pub fn clean_leftovers() -> Vec<String> {
    let mut done = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/run/netns") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = n.strip_prefix(NS_PREFIX) else { continue };
            let pid: i32 = rest.split('-').next().and_then(|p| p.parse().ok()).unwrap_or(0);
            if pid > 0 && !pid_alive(pid) && ip(&["netns", "del", &n]).is_ok() {
                done.push(format!("removed stale netns {n}"));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/sys/bus/netdevsim/devices") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let id: u32 = n.strip_prefix("netdevsim").and_then(|i| i.parse().ok()).unwrap_or(0);
            let owner_alive = std::fs::read_to_string(format!("/run/zcrx-conform-nsim-{id}"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
                .is_some_and(pid_alive);
            if (NSIM_ID_BASE..NSIM_ID_BASE + 1000).contains(&id)
                && !owner_alive
                && std::fs::write("/sys/bus/netdevsim/del_device", id.to_string()).is_ok()
            {
                let _ = std::fs::remove_file(format!("/run/zcrx-conform-nsim-{id}"));
                done.push(format!("removed stale netdevsim{id}"));
            }
        }
    }
    done
}

/// Options the host passes in: where the modules and ethtool are.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    pub ethtool: Option<PathBuf>,
    pub netdevsim_stock: Option<PathBuf>,
    pub netdevsim_zcrx: Option<PathBuf>,
}

impl Tools {
    /// From the environment (set by the VM runner): ZCRX_ETHTOOL, ZCRX_NETDEVSIM_{STOCK,ZCRX}.
    pub fn from_env() -> Tools {
        let p = |k: &str| std::env::var_os(k).map(PathBuf::from).filter(|p| p.exists());
        Tools {
            ethtool: p("ZCRX_ETHTOOL").or_else(|| which("ethtool")),
            netdevsim_stock: p("ZCRX_NETDEVSIM_STOCK"),
            netdevsim_zcrx: p("ZCRX_NETDEVSIM_ZCRX"),
        }
    }
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}

fn load_netdevsim(ko: &Path, variant: &str) -> Result<(), String> {
    if Path::new("/sys/module/netdevsim").exists() {
        let marker = std::fs::read_to_string("/run/zcrx-conform-nsim-variant").unwrap_or_default();
        if marker.trim() == variant {
            return Ok(());
        }
        let busy = std::fs::read_dir("/sys/bus/netdevsim/devices").map(|d| d.count()).unwrap_or(0);
        if busy > 0 {
            return Err(format!(
                "the {} netdevsim module is loaded with devices; netdevsim and netdevsim-zcrx cannot be up in one run",
                if marker.trim().is_empty() { "other" } else { marker.trim() }
            ));
        }
        run(Path::new("rmmod"), &["netdevsim"]).map_err(|e| format!("another netdevsim is loaded: {e}"))?;
    }
    let _ = run(Path::new("modprobe"), &["psample"]);
    run(Path::new("insmod"), &[ko.to_str().unwrap_or("")])?;
    let _ = std::fs::write("/run/zcrx-conform-nsim-variant", variant);
    Ok(())
}

impl TopologyFile {
    /// Sets the topology up. Everything created is recorded in the returned value first, so
    /// a failure half-way still tears down what exists.
    /// `slot` numbers the topologies of one run (names and netdevsim ids stay distinct).
    pub fn up(&self, tools: &Tools, slot: u32) -> Result<Active, String> {
        let pid = std::process::id();
        let mut a = Active {
            topo: Topo { name: self.name.clone(), if_rxq: self.rxq, queues: self.queues, ..Default::default() },
            namespaces: Vec::new(),
            nsim_ids: Vec::new(),
            restore: Vec::new(),
            log: clean_leftovers(),
        };
        a.topo.ethtool = tools.ethtool.clone();
        a.topo.may_change = self.may_change.clone();
        match self.kind {
            Kind::Nic => self.up_nic(&mut a, tools, pid, slot)?,
            _ => self.up_pair(&mut a, tools, pid, slot)?,
        }
        Ok(a)
    }

    fn up_pair(&self, a: &mut Active, tools: &Tools, pid: u32, slot: u32) -> Result<(), String> {
        let ns_dut = format!("{NS_PREFIX}{pid}-{slot}dut");
        let ns_peer = format!("{NS_PREFIX}{pid}-{slot}peer");
        self.up_pair_named(a, tools, pid, slot, &ns_dut, &ns_peer, None)
    }

    /// `rename`: names for the DUT and peer ports (the nic simulation).
    #[allow(clippy::too_many_arguments)]
    fn up_pair_named(
        &self,
        a: &mut Active,
        tools: &Tools,
        pid: u32,
        slot: u32,
        ns_dut: &str,
        ns_peer: &str,
        rename: Option<(&str, &str)>,
    ) -> Result<(), String> {
        let (ns_dut, ns_peer) = (ns_dut.to_string(), ns_peer.to_string());
        for ns in [&ns_dut, &ns_peer] {
            ip(&["netns", "add", ns])?;
            a.namespaces.push(ns.clone());
            ip_ns(ns, &["link", "set", "lo", "up"])?;
        }
        let (dut_dev, peer_dev) = match self.kind {
            Kind::Veth => {
                let _ = run(Path::new("modprobe"), &["veth"]);
                let q = self.queues.to_string();
                ip(&[
                    "link",
                    "add",
                    "zcrxv0",
                    "numrxqueues",
                    &q,
                    "numtxqueues",
                    &q,
                    "netns",
                    &ns_dut,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "zcrxv1",
                    "numrxqueues",
                    &q,
                    "numtxqueues",
                    &q,
                    "netns",
                    &ns_peer,
                ])?;
                ("zcrxv0".to_string(), "zcrxv1".to_string())
            }
            Kind::Netdevsim | Kind::NetdevsimZcrx => {
                let (ko, variant) = if self.kind == Kind::NetdevsimZcrx {
                    (tools.netdevsim_zcrx.as_ref(), "zcrx")
                } else {
                    (tools.netdevsim_stock.as_ref(), "stock")
                };
                if !Path::new("/sys/bus/netdevsim").exists() || ko.is_some() {
                    let ko = ko.ok_or_else(|| {
                        format!(
                            "no {variant} netdevsim module for this kernel (the VM runner builds it: vm/netdevsim.sh)"
                        )
                    })?;
                    load_netdevsim(ko, variant)?;
                }
                let mut names = Vec::new();
                for (i, ns) in [&ns_dut, &ns_peer].into_iter().enumerate() {
                    let id = NSIM_ID_BASE + (pid % 100) * 8 + (slot % 4) * 2 + i as u32;
                    std::fs::write("/sys/bus/netdevsim/new_device", format!("{id} 1 {}", self.queues))
                        .map_err(|e| format!("netdevsim new_device {id}: {e}"))?;
                    a.nsim_ids.push(id);
                    let _ = std::fs::write(format!("/run/zcrx-conform-nsim-{id}"), pid.to_string());
                    // udev renames the port (eth0 -> eni...): let it finish, and retry the move
                    // with the current name if the rename raced us.
                    let _ = run(Path::new("udevadm"), &["settle", "--timeout=10"]);
                    let mut moved = Err(String::new());
                    for _ in 0..10 {
                        let dev = wait_for_nsim_port(id)?;
                        moved = ip(&["link", "set", &dev, "netns", ns]).map(|_| dev);
                        if moved.is_ok() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    names.push(moved?);
                }
                if let Some((rd, rp)) = rename {
                    ip_ns(&ns_dut, &["link", "set", &names[0], "name", rd])?;
                    ip_ns(&ns_peer, &["link", "set", &names[1], "name", rp])?;
                    names = vec![rd.to_string(), rp.to_string()];
                }
                let (d, p) = (names[0].clone(), names[1].clone());
                let fd_dut = std::fs::File::open(format!("/run/netns/{ns_dut}")).map_err(|e| e.to_string())?;
                let fd_peer = std::fs::File::open(format!("/run/netns/{ns_peer}")).map_err(|e| e.to_string())?;
                let idx_d = ifindex_in(&ns_dut, &d)?;
                let idx_p = ifindex_in(&ns_peer, &p)?;
                // The fds must stay open across the write; sysfs resolves them in our task.
                use std::os::fd::AsRawFd;
                let link = format!("{}:{idx_d} {}:{idx_p}", fd_dut.as_fd().as_raw_fd(), fd_peer.as_fd().as_raw_fd());
                std::fs::write("/sys/bus/netdevsim/link_device", &link)
                    .map_err(|e| format!("netdevsim link_device: {e}"))?;
                a.topo.debugfs =
                    Some(PathBuf::from(format!("/sys/kernel/debug/netdevsim/netdevsim{}/ports/0", a.nsim_ids[0])));
                (d, p)
            }
            Kind::Nic => unreachable!("handled by up_nic"),
        };
        let (da, dp) = parse_cidr(&self.dut_address)?;
        let (pa, pp) = parse_cidr(&self.peer_address)?;
        ip_ns(&ns_dut, &["addr", "add", &format!("{da}/{dp}"), "dev", &dut_dev])?;
        ip_ns(&ns_peer, &["addr", "add", &format!("{pa}/{pp}"), "dev", &peer_dev])?;
        ip_ns(&ns_dut, &["link", "set", &dut_dev, "up"])?;
        ip_ns(&ns_peer, &["link", "set", &peer_dev, "up"])?;
        if self.dut != Settings::default() || self.peer != Settings::default() {
            let et = a.topo.ethtool.clone().ok_or("no ethtool found (vm/ethtool.sh fetches ethtool 7.x)")?;
            apply_settings(&et, Some(&ns_dut), &dut_dev, &self.dut)?;
            apply_settings(&et, Some(&ns_peer), &peer_dev, &self.peer)?;
        }
        a.topo.if_idx = ifindex_in(&ns_dut, &dut_dev)?;
        a.topo.peer_if_idx = ifindex_in(&ns_peer, &peer_dev)?;
        a.topo.netns = Some(PathBuf::from(format!("/run/netns/{ns_dut}")));
        a.topo.peer_netns = Some(PathBuf::from(format!("/run/netns/{ns_peer}")));
        a.topo.dut_dev = Some(dut_dev);
        a.topo.peer_dev = Some(peer_dev);
        a.topo.dut_addr = da;
        a.topo.peer_addr = pa;
        a.log.push(format!("topology {} up: {}", self.name, serde_json::to_string(&a.topo).unwrap_or_default()));
        Ok(())
    }

    fn up_nic(&self, a: &mut Active, tools: &Tools, pid: u32, slot: u32) -> Result<(), String> {
        let dev = self.interface.clone().ok_or("nic: no interface")?;
        let remote = self.remote.as_ref().ok_or("nic: no remote")?;
        let ns = self.netns.clone();
        if let Some(kind) = self.simulate {
            // Build the pair exactly where the file says the NIC and its peer are.
            let (Some(n), Some(pn), Some(pi)) = (&self.netns, &remote.netns, &remote.interface) else {
                return Err("nic simulate: netns, remote.netns and remote.interface are required".into());
            };
            let pair = TopologyFile {
                kind,
                dut: Settings::default(),
                peer: Settings { combined: Some(1), ..Default::default() },
                dut_address: self.dut_address.clone(),
                peer_address: format!("{}/{}", remote.address, parse_cidr(&self.dut_address)?.1),
                ..self.clone()
            };
            pair.up_pair_named(a, tools, pid, slot, n, pn, Some((&dev, pi)))?;
            a.topo.if_rxq = self.rxq;
        }
        let idx = match &ns {
            Some(n) => ifindex_in(n, &dev)?,
            None => nix::net::if_::if_nametoindex(dev.as_str()).map_err(|e| format!("nic: interface {dev}: {e}"))?,
        };
        let dut_addr = first_ipv4(ns.as_deref(), &dev)?;
        if !self.may_change.is_empty() || self.dut != Settings::default() {
            let et = a.topo.ethtool.clone().ok_or("no ethtool found")?;
            let before = read_settings(&et, ns.as_deref(), &dev)?;
            a.restore.push((ns.clone(), dev.clone(), before));
            apply_settings(&et, ns.as_deref(), &dev, &self.dut)?;
        }
        a.topo.if_idx = idx;
        a.topo.netns = ns.map(|n| PathBuf::from(format!("/run/netns/{n}")));
        a.topo.peer_netns = remote.netns.as_ref().map(|n| PathBuf::from(format!("/run/netns/{n}")));
        a.topo.dut_dev = Some(dev);
        a.topo.peer_dev = remote.interface.clone();
        a.topo.dut_addr = dut_addr;
        a.topo.peer_addr = remote.address.clone();
        a.log.push(format!("topology {} (nic) up: {}", self.name, serde_json::to_string(&a.topo).unwrap_or_default()));
        Ok(())
    }
}

fn first_ipv4(ns: Option<&str>, dev: &str) -> Result<String, String> {
    let out = match ns {
        Some(n) => ip_ns(n, &["-4", "-o", "addr", "show", "dev", dev])?,
        None => ip(&["-4", "-o", "addr", "show", "dev", dev])?,
    };
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(String::from)
        .ok_or_else(|| format!("nic: {dev} has no IPv4 address"))
}

fn ifindex_in(ns: &str, dev: &str) -> Result<u32, String> {
    let out = ip_ns(ns, &["-o", "link", "show", "dev", dev])?;
    out.split(':').next().and_then(|i| i.trim().parse().ok()).ok_or_else(|| format!("no ifindex for {dev} in {ns}"))
}

fn wait_for_nsim_port(id: u32) -> Result<String, String> {
    let dir = format!("/sys/bus/netdevsim/devices/netdevsim{id}/net");
    for _ in 0..200 {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            if let Some(e) = rd.flatten().next() {
                return Ok(e.file_name().to_string_lossy().into_owned());
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(format!("netdevsim{id}: no port appeared in {dir}"))
}

impl Active {
    /// Re-applies the recorded settings (after a case changed them).
    pub fn restore_settings(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let Some(et) = &self.topo.ethtool else { return errs };
        for (ns, dev, s) in &self.restore {
            if let Err(e) = apply_settings(et, ns.as_deref(), dev, s) {
                errs.push(e);
            }
        }
        errs
    }

    /// Records the DUT's current settings so a case may change them (pair topologies).
    pub fn snapshot_dut(&mut self) -> Result<(), String> {
        let (Some(et), Some(dev)) = (&self.topo.ethtool, &self.topo.dut_dev) else { return Ok(()) };
        if self.restore.iter().any(|(_, d, _)| d == dev) {
            return Ok(());
        }
        let ns = self.topo.netns.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let s = read_settings(et, ns.as_deref(), dev)?;
        self.restore.push((ns, dev.clone(), s));
        Ok(())
    }

    /// Tears everything down; returns what could not be undone.
    pub fn down(&mut self) -> Vec<String> {
        let mut errs = self.restore_settings();
        self.restore.clear();
        for id in self.nsim_ids.drain(..) {
            if let Err(e) = std::fs::write("/sys/bus/netdevsim/del_device", id.to_string()) {
                errs.push(format!("netdevsim del_device {id}: {e}"));
            }
            let _ = std::fs::remove_file(format!("/run/zcrx-conform-nsim-{id}"));
        }
        for ns in self.namespaces.drain(..) {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                errs.push(e);
            }
        }
        errs
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        for e in self.down() {
            eprintln!("topology teardown: {e}");
        }
    }
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
