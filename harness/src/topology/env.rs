//! The environment a topology file describes, while it is up: [`Env`].
//!
//! [`TopologyFile::up`] brings the topology up and returns an [`Env`] guard. Each step that
//! creates something (a namespace, a netdevsim device) or changes a setting pushes its undo onto
//! the guard right after the change, where it is made ([`Env::defer`], as the kernel selftests'
//! drivers/net/lib/py does with `defer`), so a failure half-way still undoes what exists;
//! dropping the guard (or calling [`Env::down`]) runs the undos, last first. The DUT's state at
//! set-up is put back after each case that changes the device ([`Env::restore_settings`]).
//! An undo that fails is reported as an [`Unrestored`] (what, and why), never dropped.
//! Namespaces and devices carry the harness pid, so [`clean_leftovers`] can remove those of a
//! run that was killed before it could tear down.

use super::Error;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::tools::{apply_settings, first_ipv4, ifindex_in, in_ns, read_state, restore};
use super::{parse_cidr, Kind, Settings, Tools, Topo, TopologyFile};
use crate::kernel::nl::{kmod, link, netns};
use crate::kernel::sys;

/// What an undo puts back: the name of a restore in logs and reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restore {
    /// Delete a network namespace the topology made.
    Netns(String),
    /// Delete a netdevsim device the topology made, and its owner file in /run.
    NetdevsimDevice(u32),
    /// Put a device's settings back and read them again.
    Settings { netns: Option<String>, dev: String },
    /// A netdevsim-zcrx fault knob back to its default.
    NetdevsimKnob(PathBuf),
    /// Remove the directory the agent was copied to on a remote peer.
    RemoteDir { host: String, dir: String },
    /// Put a remote peer's interface settings back and read them again (over ssh).
    RemoteSettings { host: String, dev: String },
    /// Stop the simulated lab's sshd (in the named peer namespace) and remove its keys.
    Sshd(String),
}

impl std::fmt::Display for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Restore::Netns(n) => write!(f, "deleting network namespace {n}"),
            Restore::NetdevsimDevice(id) => write!(f, "deleting netdevsim{id}"),
            Restore::Settings { netns: Some(n), dev } => write!(f, "restoring the settings of {dev} (netns {n})"),
            Restore::Settings { netns: None, dev } => write!(f, "restoring the settings of {dev}"),
            Restore::NetdevsimKnob(p) => write!(f, "resetting {}", p.display()),
            Restore::RemoteDir { host, dir } => write!(f, "removing {dir} on {host}"),
            Restore::RemoteSettings { host, dev } => write!(f, "restoring the settings of {dev} on {host}"),
            Restore::Sshd(n) => write!(f, "stopping the lab's sshd (netns {n})"),
        }
    }
}

/// A restore that failed: what it was to put back, and why it could not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unrestored {
    pub what: Restore,
    pub error: String,
}

impl std::fmt::Display for Unrestored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.error)
    }
}

/// One undo, pushed next to the change it undoes.
struct Undo {
    what: Restore,
    undo: Box<dyn Fn() -> Result<(), Error>>,
}

impl Undo {
    fn run(&self) -> Result<(), Unrestored> {
        (self.undo)().map_err(|e| Unrestored { what: self.what.clone(), error: e.to_string() })
    }
}

/// A topology that is up. Dropping it tears it down (also on errors and Ctrl-C paths).
pub struct Env {
    pub topo: Topo,
    /// Run at teardown, last first.
    teardown: Vec<Undo>,
    /// Run after each case that changes the device: the DUT back to its state at set-up.
    after_case: Vec<Undo>,
    pub log: Vec<String>,
    /// A simulated lab's ssh login key and known_hosts file (`simulate` with `remote.ssh`).
    pub lab_keys: Option<(PathBuf, PathBuf, PathBuf)>,
}

/// A veth pair with `queues` queues, `names.0` in namespace `ns` and `names.1` moved into
/// `peer_ns`. veth may be built in: the module is loaded only when the kernel does not know
/// the kind.
fn veth_across(ns: &str, peer_ns: &str, names: (&str, &str), queues: u32) -> Result<(), Error> {
    let (name, peer) = names;
    if let Err(e) = in_ns(Some(ns), || link::add_veth(name, peer, queues)) {
        kmod::load("veth").map_err(|m| Error::Setup(format!("{e}; loading veth: {m}")))?;
        in_ns(Some(ns), || link::add_veth(name, peer, queues))?;
    }
    let to = std::fs::File::open(netns::path(peer_ns)).map_err(|e| Error::Setup(format!("{peer_ns}: {e}")))?;
    in_ns(Some(ns), || link::move_to(link::by_name(peer)?.index, to.as_fd()))?;
    Ok(())
}

impl TopologyFile {
    /// Sets the topology up. Everything created is recorded in the returned value first, so
    /// a failure half-way still tears down what exists.
    /// `slot` numbers the topologies of one run (names and netdevsim ids stay distinct).
    pub fn up(&self, tools: &Tools, slot: u32) -> Result<Env, Error> {
        let pid = std::process::id();
        let topo = Topo {
            name: self.name.clone(),
            kind: self.kind,
            if_rxq: self.rxq,
            queues: self.queues,
            ..Default::default()
        };
        let mut a = Env { topo, teardown: Vec::new(), after_case: Vec::new(), log: clean_leftovers(), lab_keys: None };
        a.topo.may_change = self.may_change.clone();
        match self.kind {
            Kind::Nic => self.up_nic(&mut a, tools, pid, slot)?,
            _ => self.up_pair(&mut a, tools, pid, slot)?,
        }
        if let Err(e) = a.snapshot_dut() {
            a.log.push(format!("cannot record DUT settings: {e}"));
        }
        Ok(a)
    }

    fn up_pair(&self, a: &mut Env, tools: &Tools, pid: u32, slot: u32) -> Result<(), Error> {
        let ns_dut = format!("{NS_PREFIX}{pid}-{slot}dut");
        let ns_peer = format!("{NS_PREFIX}{pid}-{slot}peer");
        self.up_pair_named(a, tools, pid, slot, &ns_dut, &ns_peer, None)
    }

    /// `rename`: names for the DUT and peer ports (the nic simulation).
    #[allow(clippy::too_many_arguments)]
    fn up_pair_named(
        &self,
        a: &mut Env,
        tools: &Tools,
        pid: u32,
        slot: u32,
        ns_dut: &str,
        ns_peer: &str,
        rename: Option<(&str, &str)>,
    ) -> Result<(), Error> {
        let (ns_dut, ns_peer) = (ns_dut.to_string(), ns_peer.to_string());
        for ns in [&ns_dut, &ns_peer] {
            netns::add(ns)?;
            let n = ns.clone();
            a.defer(Restore::Netns(ns.clone()), move || Ok(netns::del(&n)?));
            in_ns(Some(ns), || link::set_up(link::by_name("lo")?.index, true))?;
        }
        let (dut_dev, peer_dev) = match self.kind {
            Kind::Veth => {
                veth_across(&ns_dut, &ns_peer, ("zcrxv0", "zcrxv1"), self.queues)?;
                match rename {
                    // The nic simulation names the pair as its file does.
                    Some((rd, rp)) => {
                        in_ns(Some(&ns_dut), || link::rename(link::by_name("zcrxv0")?.index, rd))?;
                        in_ns(Some(&ns_peer), || link::rename(link::by_name("zcrxv1")?.index, rp))?;
                        (rd.to_string(), rp.to_string())
                    }
                    None => ("zcrxv0".to_string(), "zcrxv1".to_string()),
                }
            }
            Kind::Netdevsim | Kind::NetdevsimZcrx => {
                let (ko, variant) = if self.kind == Kind::NetdevsimZcrx {
                    (tools.netdevsim_zcrx.as_ref(), "zcrx")
                } else {
                    (tools.netdevsim_stock.as_ref(), "stock")
                };
                if !Path::new("/sys/bus/netdevsim").exists() || ko.is_some() {
                    let ko = ko.ok_or_else(|| {
                        Error::Setup(format!(
                            "no {variant} netdevsim module for this kernel (the VM runner builds it: vm/netdevsim.sh)"
                        ))
                    })?;
                    load_netdevsim(ko, variant)?;
                }
                let mut names = Vec::new();
                let mut ids = Vec::new();
                for (i, ns) in [&ns_dut, &ns_peer].into_iter().enumerate() {
                    let id = NSIM_ID_BASE + (pid % 100) * 8 + (slot % 4) * 2 + i as u32;
                    std::fs::write("/sys/bus/netdevsim/new_device", format!("{id} 1 {}", self.queues))
                        .map_err(|e| Error::Setup(format!("netdevsim new_device {id}: {e}")))?;
                    a.defer(Restore::NetdevsimDevice(id), move || del_nsim(id));
                    ids.push(id);
                    if let Err(e) = sys::replace_file(&nsim_owner(id), &pid.to_string()) {
                        a.log
                            .push(format!("netdevsim{id}: its owner is not recorded ({e}): a later run may remove it"));
                    }
                    // Moved by ifindex, so a udev rename (eth0 -> eni...) racing us does not
                    // matter; once in the namespace, nothing renames it.
                    let idx = wait_for_nsim_port(id)?;
                    let ns_file =
                        std::fs::File::open(netns::path(ns)).map_err(|e| Error::Setup(format!("{ns}: {e}")))?;
                    let mut moved = Err(Error::Setup(String::new()));
                    for _ in 0..10 {
                        moved = link::move_to(idx, ns_file.as_fd()).map_err(Error::from);
                        if moved.is_ok() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    moved?;
                    let moved_name = in_ns(Some(ns), || {
                        let l = link::list()?;
                        Ok(l.into_iter().find(|l| l.index == idx).map(|l| l.name))
                    })?
                    .ok_or_else(|| Error::Setup(format!("netdevsim{id}: port ifindex {idx} not found in {ns}")))?;
                    names.push(moved_name);
                }
                if let Some((rd, rp)) = rename {
                    for (ns, old, new) in [(&ns_dut, &names[0], rd), (&ns_peer, &names[1], rp)] {
                        in_ns(Some(ns), || link::rename(link::by_name(old)?.index, new))?;
                    }
                    names = vec![rd.to_string(), rp.to_string()];
                }
                let (d, p) = (names[0].clone(), names[1].clone());
                let fd_dut =
                    std::fs::File::open(format!("/run/netns/{ns_dut}")).map_err(|e| Error::Setup(e.to_string()))?;
                let fd_peer =
                    std::fs::File::open(format!("/run/netns/{ns_peer}")).map_err(|e| Error::Setup(e.to_string()))?;
                let idx_d = ifindex_in(&ns_dut, &d)?;
                let idx_p = ifindex_in(&ns_peer, &p)?;
                // The fds must stay open across the write; sysfs resolves them in our task.
                use std::os::fd::AsRawFd;
                let link = format!("{}:{idx_d} {}:{idx_p}", fd_dut.as_fd().as_raw_fd(), fd_peer.as_fd().as_raw_fd());
                std::fs::write("/sys/bus/netdevsim/link_device", &link)
                    .map_err(|e| Error::Setup(format!("netdevsim link_device: {e}")))?;
                a.topo.debugfs =
                    Some(PathBuf::from(format!("/sys/kernel/debug/netdevsim/netdevsim{}/ports/0", ids[0])));
                (d, p)
            }
            Kind::Nic | Kind::Host | Kind::Nodev => {
                return Err(Error::Invalid(format!("topology {}: kind {} has no device pair", self.name, self.kind)))
            }
        };
        let (da, dp) = parse_cidr(&self.dut_address)?;
        let (pa, pp) = parse_cidr(&self.peer_address)?;
        let six =
            [(&ns_dut, &dut_dev, self.dut_address6.as_deref()), (&ns_peer, &peer_dev, self.peer_address6.as_deref())];
        for ((ns, dev, a6), (addr, prefix)) in six.into_iter().zip([(&da, dp), (&pa, pp)]) {
            let ip: std::net::IpAddr = addr.parse().map_err(|_| Error::Setup(format!("bad address {addr}")))?;
            let v6 = a6.map(parse_cidr).transpose()?;
            in_ns(Some(ns), || {
                let idx = link::by_name(dev)?.index;
                link::add_addr(idx, ip, prefix)?;
                if let Some((a6, p6)) = &v6 {
                    let ip6 =
                        a6.parse().map_err(|_| crate::kernel::nl::NlError::new(libc::EINVAL, "bad IPv6 address"))?;
                    link::add_addr(idx, ip6, *p6)?;
                }
                link::set_up(idx, true)
            })?;
        }
        apply_settings(Some(&ns_dut), &dut_dev, &self.dut)?;
        apply_settings(Some(&ns_peer), &peer_dev, &self.peer)?;
        a.topo.if_idx = ifindex_in(&ns_dut, &dut_dev)?;
        a.topo.peer_if_idx = ifindex_in(&ns_peer, &peer_dev)?;
        a.topo.netns = Some(PathBuf::from(format!("/run/netns/{ns_dut}")));
        a.topo.peer_netns = Some(PathBuf::from(format!("/run/netns/{ns_peer}")));
        a.topo.dut_dev = Some(dut_dev);
        a.topo.peer_dev = Some(peer_dev);
        a.topo.dut_addr = da;
        a.topo.peer_addr = pa;
        a.topo.dut_addr6 = self.dut_address6.as_deref().map(parse_cidr).transpose()?.map(|a| a.0);
        a.topo.peer_addr6 = self.peer_address6.as_deref().map(parse_cidr).transpose()?.map(|a| a.0);
        a.topo.destructive = self.destructive;
        a.log.push(format!("topology {} up: {}", self.name, serde_json::to_string(&a.topo).unwrap_or_default()));
        Ok(())
    }

    /// The simulated lab's management network: a veth pair between the DUT's namespace `n` and
    /// the peer's `pn`, the peer side at `remote.ssh.host`, the DUT side at the first other
    /// address of its /24. Returns the address sshd listens on. ssh must not run over the link
    /// under test: once a case binds zcrx to the DUT's queue, the peer's packets land in zcrx
    /// buffers and ssh's own read() gets EFAULT ("kex_exchange_identification: read: Bad
    /// address"), as a second machine's ssh would if it came in over the NIC under test. The
    /// pair goes with the namespaces.
    fn lab_management_link(&self, n: &str, pn: &str, remote: &super::Peer) -> Result<String, Error> {
        let host = remote.ssh.as_ref().map(|s| s.host.clone()).unwrap_or_default();
        // Checked with the file (topology::remote): an IPv4 address, not remote.address.
        let peer_ip: std::net::Ipv4Addr =
            host.parse().map_err(|_| Error::Invalid(format!("remote.ssh.host `{host}`: not an IPv4 address")))?;
        let o = peer_ip.octets();
        let dut_ip = std::net::Ipv4Addr::new(o[0], o[1], o[2], if o[3] == 1 { 2 } else { 1 });
        veth_across(n, pn, ("zcrxmgmt0", "zcrxmgmt1"), 1)?;
        for (ns, dev, ip) in [(n, "zcrxmgmt0", dut_ip), (pn, "zcrxmgmt1", peer_ip)] {
            in_ns(Some(ns), || {
                let idx = link::by_name(dev)?.index;
                link::add_addr(idx, std::net::IpAddr::V4(ip), 24)?;
                link::set_up(idx, true)
            })?;
        }
        Ok(host)
    }

    fn up_nic(&self, a: &mut Env, tools: &Tools, pid: u32, slot: u32) -> Result<(), Error> {
        let dev = self.interface.clone().ok_or(Error::Invalid("nic: no interface".into()))?;
        let remote = self.remote.as_ref().ok_or(Error::Invalid("nic: no remote".into()))?;
        let ns = self.netns.clone();
        if let Some(kind) = self.simulate {
            // Build the pair exactly where the file says the NIC and its peer are.
            let (Some(n), Some(pn), Some(pi)) = (&self.netns, &remote.netns, &remote.interface) else {
                return Err(Error::Setup("nic simulate: netns, remote.netns and remote.interface are required".into()));
            };
            // An ssh peer gets its settings (the file's `peer`) over ssh, as a real remote would.
            let steer = if remote.ssh.is_some() { None } else { Some(1) };
            let pair = TopologyFile {
                kind,
                dut: Settings::default(),
                peer: Settings { combined: steer, ..Default::default() },
                dut_address: self.dut_address.clone(),
                peer_address: format!("{}/{}", remote.address, parse_cidr(&self.dut_address)?.1),
                peer_address6: match (&remote.address6, &self.dut_address6) {
                    (Some(r), Some(d)) => Some(format!("{r}/{}", parse_cidr(d)?.1)),
                    _ => None,
                },
                ..self.clone()
            };
            pair.up_pair_named(a, tools, pid, slot, n, pn, Some((&dev, pi)))?;
            a.topo.if_rxq = self.rxq;
            if remote.ssh.is_some() {
                let sshd = tools.sshd.clone().ok_or_else(|| {
                    Error::Setup("simulate with remote.ssh: no sshd (ZCRX_SSHD; vm/openssh.sh fetches Debian's)".into())
                })?;
                let listen = self.lab_management_link(n, pn, remote)?;
                let lab = super::ssh_lab::Lab::start(&sshd, &netns::path(pn), &listen)?;
                a.lab_keys = Some((lab.identity.clone(), lab.known_hosts.clone(), lab.dir.join("sshd.log")));
                a.log.push(format!(
                    "simulated remote: sshd in netns {pn} at {listen} (management link zcrxmgmt0/1), keys in {}",
                    lab.dir.display()
                ));
                let cell = std::cell::RefCell::new(Some(lab));
                a.defer(Restore::Sshd(pn.clone()), move || {
                    drop(cell.borrow_mut().take());
                    Ok(())
                });
            }
        }
        if let Some(s) = &remote.ssh {
            self.up_ssh_peer(a, s, remote, tools.peer_agent.as_deref())?;
        }
        let idx = match &ns {
            Some(n) => ifindex_in(n, &dev)?,
            None => nix::net::if_::if_nametoindex(dev.as_str())
                .map_err(|e| Error::Setup(format!("nic: interface {dev}: {e}")))?,
        };
        let dut_addr = first_ipv4(ns.as_deref(), &dev)?;
        if !self.may_change.is_empty() || self.dut != Settings::default() {
            let before = read_state(ns.as_deref(), &dev)?;
            let (n, d) = (ns.clone(), dev.clone());
            a.defer(Restore::Settings { netns: ns.clone(), dev: dev.clone() }, move || {
                restore(n.as_deref(), &d, &before)
            });
            apply_settings(ns.as_deref(), &dev, &self.dut)?;
        }
        a.topo.if_idx = idx;
        a.topo.netns = ns.map(|n| PathBuf::from(format!("/run/netns/{n}")));
        a.topo.peer_netns = match remote.ssh {
            Some(_) => None,
            None => remote.netns.as_ref().map(|n| PathBuf::from(format!("/run/netns/{n}"))),
        };
        a.topo.dut_dev = Some(dev);
        a.topo.peer_dev = remote.interface.clone();
        a.topo.dut_addr = dut_addr;
        a.topo.peer_addr = remote.address.clone();
        a.topo.dut_addr6 = self.dut_address6.as_deref().map(parse_cidr).transpose()?.map(|a| a.0);
        a.topo.peer_addr6 = remote.address6.clone();
        a.topo.destructive = self.destructive;
        a.log.push(format!("topology {} (nic) up: {}", self.name, serde_json::to_string(&a.topo).unwrap_or_default()));
        Ok(())
    }
}

/// The ifindex of netdevsim device `id`'s port, once it exists.
fn wait_for_nsim_port(id: u32) -> Result<u32, Error> {
    let dir = format!("/sys/bus/netdevsim/devices/netdevsim{id}/net");
    for _ in 0..200 {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            if let Some(e) = rd.flatten().next() {
                if let Some(i) =
                    std::fs::read_to_string(e.path().join("ifindex")).ok().and_then(|t| t.trim().parse().ok())
                {
                    return Ok(i);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(Error::Setup(format!("netdevsim{id}: no port appeared in {dir}")))
}

impl Env {
    /// Pushes the undo of a change just made; teardown runs the undos last first.
    pub(super) fn defer(&mut self, what: Restore, undo: impl Fn() -> Result<(), Error> + 'static) {
        self.teardown.push(Undo { what, undo: Box::new(undo) });
    }

    /// Puts the DUT back to its state at set-up (after a case changed it) and reads it back.
    pub fn restore_settings(&self) -> Vec<Unrestored> {
        self.after_case.iter().filter_map(|u| u.run().err()).collect()
    }

    /// Records the DUT's state at set-up, which [`Env::restore_settings`] puts back.
    fn snapshot_dut(&mut self) -> Result<(), Error> {
        let Some(dev) = self.topo.dut_dev.clone() else { return Ok(()) };
        let ns = self.topo.netns.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        let state = read_state(ns.as_deref(), &dev)?;
        let what = Restore::Settings { netns: ns.clone(), dev: dev.clone() };
        self.after_case.push(Undo { what, undo: Box::new(move || restore(ns.as_deref(), &dev, &state)) });
        Ok(())
    }

    /// Tears everything down, last change first; returns what could not be undone.
    pub fn down(&mut self) -> Vec<Unrestored> {
        self.after_case.clear();
        let mut errs = Vec::new();
        while let Some(u) = self.teardown.pop() {
            errs.extend(u.run().err());
        }
        errs
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for e in self.down() {
            eprintln!("topology teardown: {e}");
        }
    }
}

/// The file naming the harness process that owns netdevsim device `id`.
fn nsim_owner(id: u32) -> PathBuf {
    PathBuf::from(format!("/run/zcrx-conform-nsim-{id}"))
}

/// Deletes netdevsim device `id` and then its owner file.
fn del_nsim(id: u32) -> Result<(), Error> {
    std::fs::write("/sys/bus/netdevsim/del_device", id.to_string())
        .map_err(|e| Error::Setup(format!("del_device: {e}")))?;
    match std::fs::remove_file(nsim_owner(id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::Setup(format!("{}: {e}", nsim_owner(id).display())))
        }
        _ => Ok(()),
    }
}

/// Namespace names carry this prefix and the harness pid, so leftovers of a killed run can
/// be recognised and removed by the next one.
const NS_PREFIX: &str = "zcrxc";
pub const NSIM_ID_BASE: u32 = 7700;

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
            if pid > 0 && !pid_alive(pid) && netns::del(&n).is_ok() {
                done.push(format!("removed stale netns {n}"));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/sys/bus/netdevsim/devices") {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let id: u32 = n.strip_prefix("netdevsim").and_then(|i| i.parse().ok()).unwrap_or(0);
            let owner_alive = std::fs::read_to_string(nsim_owner(id))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
                .is_some_and(pid_alive);
            if (NSIM_ID_BASE..NSIM_ID_BASE + 1000).contains(&id) && !owner_alive {
                match del_nsim(id) {
                    Ok(()) => done.push(format!("removed stale netdevsim{id}")),
                    Err(e) => done.push(format!("stale netdevsim{id} not removed: {e}")),
                }
            }
        }
    }
    done
}

fn load_netdevsim(ko: &Path, variant: &str) -> Result<(), Error> {
    if Path::new("/sys/module/netdevsim").exists() {
        let marker = std::fs::read_to_string("/run/zcrx-conform-nsim-variant").unwrap_or_default();
        if marker.trim() == variant {
            return Ok(());
        }
        let busy = std::fs::read_dir("/sys/bus/netdevsim/devices").map(|d| d.count()).unwrap_or(0);
        if busy > 0 {
            return Err(Error::Setup(format!(
                "the {} netdevsim module is loaded with devices; netdevsim and netdevsim-zcrx cannot be up in one run",
                if marker.trim().is_empty() { "other" } else { marker.trim() }
            )));
        }
        kmod::unload("netdevsim").map_err(|e| Error::Setup(format!("another netdevsim is loaded: {e}")))?;
    }
    // netdevsim needs psample (in tree): loaded from the kernel's own modules.dep.
    kmod::load("psample")?;
    kmod::load_file(ko)?;
    let _ = sys::replace_file(Path::new("/run/zcrx-conform-nsim-variant"), variant);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Undos run last first, each once; one that fails is reported by what it was to restore,
    /// and the others still run.
    #[test]
    fn undos_run_last_first_and_failures_are_named() {
        let done = Rc::new(RefCell::new(Vec::new()));
        let mut env = Env {
            topo: Topo::default(),
            teardown: Vec::new(),
            after_case: Vec::new(),
            log: Vec::new(),
            lab_keys: None,
        };
        for (what, fails) in [(Restore::Netns("a".into()), false), (Restore::NetdevsimDevice(7), true)] {
            let (d, w) = (done.clone(), what.clone());
            env.defer(what, move || {
                d.borrow_mut().push(w.clone());
                if fails {
                    Err(Error::Setup("busy".into()))
                } else {
                    Ok(())
                }
            });
        }
        let settings = Restore::Settings { netns: None, dev: "eth0".into() };
        let d = done.clone();
        env.after_case.push(Undo {
            what: settings.clone(),
            undo: Box::new(move || Err(Error::Setup(format!("{} calls", d.borrow().len())))),
        });
        assert_eq!(env.restore_settings(), [Unrestored { what: settings, error: "0 calls".into() }]);
        let failed = env.down();
        assert_eq!(*done.borrow(), [Restore::NetdevsimDevice(7), Restore::Netns("a".into())]);
        assert_eq!(failed, [Unrestored { what: Restore::NetdevsimDevice(7), error: "busy".into() }]);
        assert_eq!(failed[0].to_string(), "deleting netdevsim7: busy");
        assert!(env.down().is_empty() && env.restore_settings().is_empty(), "each undo runs once");
    }
}
