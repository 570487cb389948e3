//! Steps that prepare the case's surroundings: connections and senders, TUN devices,
//! netdevsim knobs (device settings are in `nic.rs`).

use super::*;

impl Ctx<'_> {
    pub(super) fn tun(&mut self, t: &Tun) -> StepResult {
        let fd = crate::kernel::netdev::create_tun(&t.name)?;
        let idx = nix::net::if_::if_nametoindex(t.name.as_str()).map_err(|e| format!("if_nametoindex: {e}"))?;
        self.st.last.insert(format!("{}.ifindex", t.name), idx as u64);
        self.note(format!("tun device {} (ifindex {idx})", t.name));
        self.st.fds.insert(format!("{}.tunfd", t.name), fd);
        self.made_devices.push(t.name.clone());
        Ok(())
    }

    pub(super) fn netns(&mut self, n: &Netns) -> StepResult {
        if n.new {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare(NEWNET): {e}"))?;
            self.own_netns = true;
            self.note("moved into a new network namespace".into());
        }
        Ok(())
    }

    pub(super) fn close(&mut self, x: &Close) -> StepResult {
        if let Some(r) = &x.ring {
            self.st.rings.remove(r).ok_or_else(|| format!("no ring `{r}`"))?;
            self.st.zcrx.retain(|_, z| z.ring != *r);
        }
        if let Some(f) = &x.fd {
            self.st.fds.remove(f).ok_or_else(|| format!("no fd `{f}`"))?;
        }
        if let Some(c) = &x.conn {
            self.st.conns.remove(c).ok_or_else(|| format!("no connection `{c}`"))?;
        }
        self.note(format!("close {x:?}"));
        Ok(())
    }

    /// netdevsim-zcrx debugfs knobs and counters.
    pub(super) fn nsim(&mut self, n: &Nsim) -> StepResult {
        let dir = self.topo.debugfs.clone().map(|d| d.join("hds")).filter(|d| d.is_dir()).ok_or_else(|| {
            StepError::Skip(format!("topology {} has no netdevsim hds/ debugfs knobs", self.topo.name))
        })?;
        let write =
            |f: &str, v: String| std::fs::write(dir.join(f), v).map_err(|e| format!("{}/{f}: {e}", dir.display()));
        let read = |f: &str| -> Result<u64, String> {
            std::fs::read_to_string(dir.join(f))
                .map_err(|e| format!("{}/{f}: {e}", dir.display()))?
                .trim()
                .parse()
                .map_err(|_| format!("{}/{f}: not a number", dir.display()))
        };
        // Patches 0005/0006 add on_empty, dropped and pp_fail_*, 0011 copybreak and copied, 0012
        // segment and segmented; a module without the file a step needs skips.
        let need = |f: &str| {
            if dir.join(f).exists() {
                Ok(())
            } else {
                Err(StepError::Skip(format!(
                    "this netdevsim has no hds/{f} (a module built from an older vm/netdevsim-zcrx/ series)"
                )))
            }
        };
        if n.reset {
            write("split", "0".into())?;
            write("fallback", "0".into())?;
            for f in OPTIONAL_COUNTERS {
                if dir.join(f).exists() {
                    write(f, "0".into())?;
                }
            }
        }
        if let Some(b) = n.netmem_budget {
            write("netmem_budget", b.to_string())?;
        }
        if let Some(m) = n.on_empty {
            need("on_empty")?;
            write("on_empty", if m == OnEmpty::Copy { "copy" } else { "drop" }.into())?;
        }
        if let Some(v) = n.pp_fail_next {
            need("pp_fail_next")?;
            write("pp_fail_next", v.to_string())?;
        }
        if let Some(v) = n.pp_fail_interval {
            need("pp_fail_interval")?;
            write("pp_fail_interval", v.to_string())?;
        }
        if let Some(v) = n.copybreak {
            need("copybreak")?;
            write("copybreak", v.to_string())?;
        }
        if let Some(v) = n.segment {
            need("segment")?;
            write("segment", if v { "Y" } else { "N" }.into())?;
        }
        if let Some(v) = n.head_bytes {
            need("head_bytes")?;
            write("head_bytes", v.to_string())?;
        }
        if n.checks() {
            // Each counter with what the step expects of it: exactly, at least. A step that checks
            // a counter its module lacks skips before any verdict.
            let counters = [
                ("split", n.split, n.split_at_least),
                ("fallback", n.fallback, None),
                ("dropped", n.dropped, n.dropped_at_least),
                ("copied", n.copied, None),
                ("segmented", None, n.segmented_at_least),
                ("head_split", n.head_split, None),
            ];
            for (f, eq, min) in counters {
                if eq.is_some() || min.is_some() {
                    need(f)?;
                }
            }
            let mut values = Vec::new();
            for (f, eq, min) in counters {
                if dir.join(f).exists() {
                    values.push((f, read(f)?, eq, min));
                }
            }
            let shown: Vec<String> = values.iter().map(|(f, v, ..)| format!("{f}={v}")).collect();
            self.note(format!("netdevsim hds: {}", shown.join(" ")));
            for (f, v, eq, min) in values {
                if eq.is_some() {
                    self.verdict(&format!("netdevsim {f}"), exact(f, eq, v))?;
                }
                if let Some(min) = min {
                    self.verdict(&format!("netdevsim {f} at least"), exact_min(f, min, v))?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn connect(&mut self, c: &Connect) -> StepResult {
        let name = c.name.clone().unwrap_or_else(|| "c0".into());
        let io = |e: std::io::Error| harness(e.to_string());
        if c.rcvbuf.is_some() && c.kind != ConnKind::Tcp {
            return Err(harness(format!("connect {name}: rcvbuf applies to kind tcp only")));
        }
        let (recv, peer): (OwnedFd, Option<PeerEnd>) = match c.kind {
            ConnKind::Tcp => {
                let dut = if c.ipv6 {
                    self.topo
                        .dut_addr6
                        .clone()
                        .ok_or_else(|| StepError::Skip(format!("topology {} has no IPv6 addresses", self.topo.name)))?
                } else {
                    self.topo.dut_addr.clone()
                };
                let l = TcpListener::bind((dut.as_str(), 0)).map_err(io)?;
                if let Some(n) = c.rcvbuf {
                    let n = usize::try_from(n).map_err(|_| harness("rcvbuf out of range"))?;
                    nix::sys::socket::setsockopt(&l, nix::sys::socket::sockopt::RcvBuf, &n)
                        .map_err(|e| harness(format!("SO_RCVBUF {n}: {e}")))?;
                }
                let addr = l.local_addr().map_err(io)?;
                if self.topo.ssh.is_some() {
                    let conn = self.remote_connect(&l, &dut)?;
                    let (server, from) = l.accept().map_err(io)?;
                    // The stream must come from the remote peer, not from anything else here.
                    if from.ip().to_string() != self.topo.peer_addr
                        && Some(from.ip().to_string()) != self.topo.peer_addr6
                    {
                        return Err(harness(format!(
                            "connect {name}: accepted a connection from {from}, not from the remote peer {}",
                            self.topo.peer_addr
                        )));
                    }
                    (server.into(), Some(conn))
                } else {
                    let client = match self.topo.peer_netns.clone() {
                        // The peer connects from its own namespace: a thread we own enters it.
                        Some(ns) => std::thread::spawn(move || -> Result<TcpStream, String> {
                            crate::topology::enter(&ns)?;
                            TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                                .map_err(|e| format!("connect {addr}: {e}"))
                        })
                        .join()
                        .map_err(|_| "connect thread panicked".to_string())??,
                        None => TcpStream::connect(addr).map_err(io)?,
                    };
                    let (server, _) = l.accept().map_err(io)?;
                    (server.into(), Some(PeerEnd::Local(client.into())))
                }
            }
            ConnKind::TcpUnconnected => {
                let s = nix::sys::socket::socket(
                    nix::sys::socket::AddressFamily::Inet,
                    nix::sys::socket::SockType::Stream,
                    nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                    None,
                )
                .map_err(|e| harness(format!("socket: {e}")))?;
                (s, None)
            }
            ConnKind::Udp => {
                let a = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
                let b = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
                b.connect(a.local_addr().map_err(io)?).map_err(io)?;
                (a.into(), Some(PeerEnd::Local(b.into())))
            }
            ConnKind::Unix => {
                let (a, b) = UnixStream::pair().map_err(io)?;
                (a.into(), Some(PeerEnd::Local(b.into())))
            }
            ConnKind::Pipe => {
                let (r, w) = nix::unistd::pipe().map_err(|e| harness(format!("pipe: {e}")))?;
                (r, Some(PeerEnd::Local(w)))
            }
        };
        let peer_text = match &peer {
            Some(PeerEnd::Local(p)) => format!("peer fd {}", p.as_raw_fd()),
            Some(PeerEnd::Remote(n)) => format!("peer: connection {n} of the remote agent on {}", self.topo.peer_addr),
            None => "no peer".to_string(),
        };
        self.note(format!("connect {name} ({:?}): recv fd {}, {peer_text}", c.kind, recv.as_raw_fd()));
        let base = self.st.conns.values().map(|c| c.base + STREAM_SPACING).max().unwrap_or(0);
        self.st.conns.insert(name, Conn { base, recv, peer, sent: 0, received: 0, senders: Vec::new() });
        Ok(())
    }

    pub(super) fn send(&mut self, x: &Send) -> StepResult {
        let name = x.conn.clone().unwrap_or_else(|| "c0".into());
        let c = self.st.conns.get_mut(&name).ok_or_else(|| format!("no connection `{name}`"))?;
        let start = c.base + c.sent;
        let total = x.bytes;
        let chunk = x.chunk.unwrap_or(65536).max(1);
        match c.peer.as_ref().ok_or("the peer is closed")? {
            PeerEnd::Local(p) => {
                let peer = p.try_clone().map_err(|e| harness(format!("{e}")))?;
                c.sent += total;
                let h = std::thread::spawn(move || -> std::io::Result<()> {
                    let mut f = std::fs::File::from(peer);
                    let mut pos = start;
                    while pos < start + total {
                        let n = chunk.min(start + total - pos) as usize;
                        f.write_all(&pattern(pos, n))?;
                        pos += n as u64;
                    }
                    Ok(())
                });
                c.senders.push(Sender::Thread(h));
            }
            PeerEnd::Remote(conn) => {
                let conn = *conn;
                let s = self.remote.as_mut().ok_or_else(|| harness("no remote session"))?;
                let id = s
                    .submit(crate::topology::ssh::Op::Send { conn, start, bytes: total, chunk })
                    .map_err(|e| harness(e.to_string()))?;
                let c = self.st.conns.get_mut(&name).ok_or_else(|| format!("no connection `{name}`"))?;
                c.sent += total;
                c.senders.push(Sender::Remote(id));
            }
        }
        self.note(format!("send {total} bytes on {name} (pattern position {start})"));
        Ok(())
    }

    /// Waits for the sends of connection `name` to finish (their writes done).
    fn finish_sends(&mut self, name: &str) -> StepResult {
        let c = self.st.conns.get_mut(name).ok_or_else(|| format!("no connection `{name}`"))?;
        let senders: Vec<Sender> = c.senders.drain(..).collect();
        for h in senders {
            match h {
                Sender::Thread(h) => match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(format!("sender failed: {e}").into()),
                    Err(_) => return Err("sender thread panicked".into()),
                },
                Sender::Remote(id) => {
                    let s = self.remote.as_mut().ok_or_else(|| harness("no remote session"))?;
                    s.wait(id, REMOTE_SEND_LIMIT).map_err(|e| format!("remote sender failed: {e}"))?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn acked(&mut self, x: &Acked) -> StepResult {
        use crate::topology::ssh::{Op, Reply};
        let name = x.conn.clone().unwrap_or_else(|| "c0".into());
        self.finish_sends(&name)?;
        let timeout_ms = x.timeout_ms.unwrap_or(5000);
        let c = self.st.conns.get(&name).ok_or_else(|| format!("no connection `{name}`"))?;
        let waited_ms = match c.peer.as_ref().ok_or("the peer is closed")? {
            PeerEnd::Local(p) => {
                match crate::kernel::tcpstate::wait_acked(p.as_raw_fd(), Duration::from_millis(timeout_ms)) {
                    Ok(Ok(d)) => d.as_millis() as u64,
                    Ok(Err(u)) => return Err(format!("{name}: {u}").into()),
                    Err(e) => return Err(harness(format!("TCP_INFO of the peer of {name}: {e}"))),
                }
            }
            PeerEnd::Remote(conn) => {
                let conn = *conn;
                let s = self.remote.as_mut().ok_or_else(|| harness("no remote session"))?;
                let limit = REMOTE_LIMIT + Duration::from_millis(timeout_ms);
                match s.call(Op::Acked { conn, timeout_ms }, limit) {
                    Ok(Reply::Acked { waited_ms }) => waited_ms,
                    Ok(other) => return Err(harness(format!("remote acked: unexpected reply {other:?}"))),
                    Err(e) => return Err(format!("{name} (remote peer): {e}").into()),
                }
            }
        };
        self.note(format!("everything sent on {name} acknowledged ({waited_ms} ms)"));
        Ok(())
    }

    pub(super) fn shutdown(&mut self, x: &Shutdown) -> StepResult {
        use crate::topology::ssh::{How, Op};
        let name = x.conn.clone().unwrap_or_else(|| "c0".into());
        self.finish_sends(&name)?;
        let c = self.st.conns.get_mut(&name).ok_or_else(|| format!("no connection `{name}`"))?;
        let how = match (x.reset, x.close) {
            (true, _) => How::Reset,
            (false, true) => How::Close,
            (false, false) => How::Write,
        };
        match &c.peer {
            Some(PeerEnd::Local(p)) => {
                if x.reset {
                    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                    nix::sys::socket::setsockopt(p, nix::sys::socket::sockopt::Linger, &linger)
                        .map_err(|e| format!("SO_LINGER: {e}"))?;
                }
                if how == How::Write {
                    nix::sys::socket::shutdown(p.as_raw_fd(), nix::sys::socket::Shutdown::Write)
                        .map_err(|e| format!("shutdown: {e}"))?;
                }
            }
            Some(PeerEnd::Remote(conn)) => {
                let conn = *conn;
                let s = self.remote.as_mut().ok_or_else(|| harness("no remote session"))?;
                s.call(Op::Shutdown { conn, how }, REMOTE_LIMIT).map_err(|e| format!("remote shutdown: {e}"))?;
            }
            None => {}
        }
        if how != How::Write {
            if let Some(c) = self.st.conns.get_mut(&name) {
                c.peer = None;
            }
        }
        let how = match how {
            How::Reset => "reset (SO_LINGER 0, close)",
            How::Close => "close",
            How::Write => "shutdown(SHUT_WR)",
        };
        let remote = if self.topo.ssh.is_some() { " (on the remote peer)" } else { "" };
        self.note(format!("{how} peer of {name}{remote}"));
        Ok(())
    }

    /// The remote peer's agent connects to `l` (on `dut`); its connection number there.
    fn remote_connect(&mut self, l: &TcpListener, dut: &str) -> Result<PeerEnd, StepError> {
        use crate::topology::ssh::{Op, Reply, Session};
        let agent = self.topo.ssh.as_ref().ok_or_else(|| harness("no remote peer"))?;
        if self.remote.is_none() {
            self.remote = Some(Session::open(agent).map_err(|e| harness(e.to_string()))?);
        }
        let port = l.local_addr().map_err(|e| harness(e.to_string()))?.port();
        let s = self.remote.as_mut().ok_or_else(|| harness("no remote session"))?;
        match s.call(Op::Connect { addr: dut.to_string(), port }, REMOTE_LIMIT) {
            Ok(Reply::Connected { conn, local }) => {
                self.note(format!("remote peer: connection {conn} from {local} to {dut} port {port}"));
                Ok(PeerEnd::Remote(conn))
            }
            Ok(other) => Err(harness(format!("remote connect: answered {other:?}"))),
            Err(e) => Err(harness(format!("remote connect: {e}"))),
        }
    }
}

/// netdevsim-zcrx's counters that come with later patches of the series (0005/0006 dropped,
/// 0011 copied, 0012 segmented, 0013 head_split): `reset` zeroes those the module has.
const OPTIONAL_COUNTERS: [&str; 4] = ["dropped", "copied", "segmented", "head_split"];

/// How long the remote agent may take to connect or shut down, and to finish a send.
const REMOTE_LIMIT: Duration = Duration::from_secs(30);
const REMOTE_SEND_LIMIT: Duration = Duration::from_secs(600);

/// A netdevsim device a case made (`nsim_device`); deleted on drop unless the case did.
pub(super) struct Spare {
    id: u32,
    owner_file: std::path::PathBuf,
    deleted: bool,
}

/// Where the spares' ids start: after the topologies' (NSIM_ID_BASE + 0..800).
/// How far apart in the pattern the streams of two connections start (1 TiB: no case sends
/// that much on one connection).
const STREAM_SPACING: u64 = 1 << 40;

const SPARE_ID_BASE: u32 = crate::topology::NSIM_ID_BASE + 800;
const SPARE_IDS: u32 = 200;

impl Spare {
    fn delete(&mut self) -> std::io::Result<()> {
        self.deleted = true;
        let r = std::fs::write("/sys/bus/netdevsim/del_device", self.id.to_string());
        let _ = std::fs::remove_file(&self.owner_file);
        r
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        if !self.deleted {
            let _ = self.delete();
        }
    }
}

impl Ctx<'_> {
    pub(super) fn nsim_device(&mut self, d: &NsimDevice, expect: Option<&Expect>) -> StepResult {
        match d {
            NsimDevice::Create(name) => self.spare_create(name),
            NsimDevice::Delete(name) => {
                let s = self.spares.get_mut(name).ok_or_else(|| format!("no netdevsim device named `{name}`"))?;
                if s.deleted {
                    return Err(format!("netdevsim device `{name}` is already deleted").into());
                }
                let t = Instant::now();
                let r = s.delete();
                let id = s.id;
                let got: SysResult = r.map(|_| 0).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO));
                self.note(format!(
                    "netdevsim{id} ({name}): del_device -> {} in {:.0} ms",
                    describe(&got),
                    t.elapsed().as_secs_f64() * 1e3
                ));
                self.check(&got, expect, &|_| None)
            }
        }
    }

    fn spare_create(&mut self, name: &str) -> StepResult {
        use crate::kernel::nl::link;
        if self.spares.contains_key(name) || self.made_devices.iter().any(|d| d == name) {
            return Err(format!("a device named `{name}` was already made by this case").into());
        }
        if !std::path::Path::new("/sys/bus/netdevsim/new_device").exists() {
            return Err(StepError::Skip(format!(
                "topology {} has no netdevsim bus (the module is loaded by the netdevsim topologies)",
                self.topo.name
            )));
        }
        let before: Vec<u32> = link::list().map_err(|e| harness(e.msg))?.iter().map(|l| l.index).collect();
        // An id whose owner file this process creates (O_EXCL: never through a link).
        let pid = std::process::id();
        let mut spare = None;
        for k in 0..SPARE_IDS {
            let id = SPARE_ID_BASE + (pid + k) % SPARE_IDS;
            let owner_file = std::path::PathBuf::from(format!("/run/zcrx-conform-nsim-{id}"));
            if !crate::kernel::sys::claim_file(&owner_file, &pid.to_string()).unwrap_or(false) {
                continue;
            }
            match std::fs::write("/sys/bus/netdevsim/new_device", format!("{id} 1 {}", self.topo.queues.max(1))) {
                Ok(()) => {
                    spare = Some(Spare { id, owner_file, deleted: false });
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    let _ = std::fs::remove_file(&owner_file);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&owner_file);
                    return Err(harness(format!("netdevsim new_device {id}: {e}")));
                }
            }
        }
        let spare = spare.ok_or_else(|| harness("no free netdevsim id for a spare device".to_string()))?;
        let id = spare.id;
        self.spares.insert(name.to_string(), spare);
        // The port appears in this namespace (netdevsim creates it in its creator's).
        let new_port = || -> Result<_, StepError> {
            let now = link::list().map_err(|e| harness(e.msg))?;
            Ok(now.into_iter().find(|l| !before.contains(&l.index)))
        };
        let port = poll_until(Duration::from_secs(5), Duration::from_millis(20), new_port, Option::is_some)?
            .ok_or_else(|| harness(format!("netdevsim{id}: no new port appeared in this namespace within 5 s")))?;
        let want =
            crate::topology::Settings { tcp_data_split: Some("on".into()), hds_thresh: Some(0), ..Default::default() };
        crate::topology::apply_here(&port.name, &want)
            .map_err(|e| harness(format!("{}: tcp-data-split on, hds-thresh 0: {}", port.name, e.msg)))?;
        link::set_up(port.index, true).map_err(|e| harness(format!("{} up: {}", port.name, e.msg)))?;
        self.st.last.insert(format!("{name}.ifindex"), port.index as u64);
        self.made_devices.push(port.name.clone());
        self.note(format!(
            "netdevsim{id} ({name}): port {} (ifindex {}), tcp-data-split on, up",
            port.name, port.index
        ));
        Ok(())
    }
}
