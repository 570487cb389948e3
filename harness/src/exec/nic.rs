//! Steps on the topology's device under test through netlink (`kernel::nl`): settings
//! (`ethtool`), link state and namespace moves (`link`), XDP and AF_XDP, ntuple rules, RSS,
//! and the netdev family's view of the bound queue (`queue_get`, `page_pools`).
//!
//! The case process is in the DUT's network namespace, so every request here acts there.
//! Only the topology's DUT is touched, and only what its `may_change` allows; link flaps and
//! namespace moves need `destructive: true`.

use std::os::fd::AsFd;

use super::*;
use crate::kernel::nl::{self, ethtool, link, netdev, xdp, NlError};

/// How long a case waits for the io_uring memory providers of the case before it to leave the
/// device under test ([`Ctx::wait_providers_released`]).
const PROVIDER_RELEASE_WAIT: Duration = Duration::from_secs(30);

/// What the NIC steps of a case hold while it runs.
#[derive(Default)]
pub(super) struct NicState {
    xsks: Vec<xdp::Xsk>,
    /// Counters saved by `qstats: { save }`.
    qstats: HashMap<String, netdev::Qstats>,
    rules: HashMap<String, u32>,
    contexts: HashMap<String, u32>,
    /// What the case added to the device, in order; dropped with the case, last first.
    added: Vec<Added>,
}

/// A steering object a case added, removed when the case ends however it ends (an expectation
/// that failed, or one inverted by the self-check, ends it early): an RSS context outlives the
/// case process, and the next case's (or the next self-check round's) context would find the
/// device's contexts used up (EBUSY on netdevsim). The runner deletes leftover ntuple rules too,
/// but only after the case, and a context cannot go while a rule steers into it.
enum Added {
    Rule { dev: String, loc: u32 },
    Context { index: u32, id: u32 },
}

impl Drop for NicState {
    fn drop(&mut self) {
        for a in self.added.drain(..).rev() {
            let r = match &a {
                Added::Rule { dev, loc } => ethtool::delete_flow_rule(dev, *loc),
                Added::Context { index, id } => ethtool::delete_rss_context(*index, *id),
            };
            if let Err(e) = r {
                eprintln!("clean-up: {}", e.msg);
            }
        }
    }
}

/// A netlink answer as a syscall result (0 or the errno), for `Ctx::check`.
fn as_sys<T>(r: &Result<T, NlError>) -> SysResult {
    match r {
        Ok(_) => Ok(0),
        Err(e) if e.errno > 0 => Err(e.errno),
        Err(_) => Ok(0),
    }
}

impl Ctx<'_> {
    fn dut(&self) -> Result<(u32, String), StepError> {
        let dev = self
            .topo
            .dut_dev
            .clone()
            .ok_or_else(|| StepError::Skip(format!("topology {} has no device under test", self.topo.name)))?;
        Ok((self.topo.if_idx, dev))
    }

    fn may_change(&self, name: &str) -> StepResult {
        if self.topo.may_change.iter().any(|m| m == name) {
            return Ok(());
        }
        Err(StepError::Skip(format!("topology {} does not allow changing {name} (may_change)", self.topo.name)))
    }

    fn destructive(&self, what: &str) -> StepResult {
        if self.topo.destructive {
            return Ok(());
        }
        Err(StepError::Skip(format!(
            "{what} is destructive: topology {} does not say `destructive: true`",
            self.topo.name
        )))
    }

    /// Checks a netlink answer against the step's expectation; a failure that is not the
    /// kernel's (no errno) is a harness error.
    fn check_nl<T>(
        &mut self,
        what: String,
        r: Result<T, NlError>,
        expect: Option<&Expect>,
    ) -> Result<Option<T>, StepError> {
        if let Err(e) = &r {
            self.note(format!("{what}: {}", e.msg));
            if e.errno == 0 {
                return Err(harness(e.msg.clone()));
            }
            // A step that expects success on a device without the feature cannot run here.
            if expect.is_none() && e.errno == libc::EOPNOTSUPP {
                return Err(StepError::Skip(format!("{what}: the device does not support it (EOPNOTSUPP)")));
            }
        } else {
            self.note(format!("{what}: ok"));
        }
        self.check(&as_sys(&r), expect, &|_| None)?;
        Ok(r.ok())
    }

    /// Changes DUT settings the topology allows (restored by the runner after the case).
    pub(super) fn ethtool(&mut self, e: &crate::topology::Settings, expect: Option<&Expect>) -> StepResult {
        let (_, dev) = self.dut()?;
        for (name, set) in [
            ("tcp-data-split", e.tcp_data_split.is_some()),
            ("hds-thresh", e.hds_thresh.is_some()),
            ("combined", e.combined.is_some()),
            ("rx-ring", e.rx_ring.is_some()),
            ("mtu", e.mtu.is_some()),
        ] {
            if set {
                self.may_change(name)?;
            }
        }
        let r = crate::topology::apply_here(&dev, e);
        self.check_nl(format!("set {dev}: {e:?}"), r, expect)?;
        Ok(())
    }

    pub(super) fn link_op(&mut self, l: &LinkOp, expect: Option<&Expect>) -> StepResult {
        let (idx, dev) = self.dut()?;
        if let Some(st) = l.state {
            self.destructive("a link flap")?;
            let r = link::set_up(idx, st == LinkState::Up);
            self.check_nl(format!("link {dev} {st:?}"), r, expect)?;
        }
        if l.move_netns {
            self.destructive("moving the device to another network namespace")?;
            // The new namespace lives on a thread's fd only; the device comes back here at
            // once (a netdevsim port would otherwise die with that namespace).
            let here = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| harness(e.to_string()))?;
            let other = nl::netns::run_in(Some(std::path::Path::new("/proc/thread-self/ns/net")), || {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| NlError::sys("unshare", e))?;
                std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| NlError::new(0, e.to_string()))
            })
            .map_err(|e| harness(e.msg))?;
            let r = link::move_to(idx, other.as_fd());
            let moved = r.is_ok();
            // The device comes back before the verdict is returned: a failed (or, in a
            // self-check, inverted) expectation ends the case, and a device left in a namespace
            // that dies with this thread would be gone for every later case.
            let checked = self.check_nl(format!("move {dev} to a new network namespace"), r, expect);
            if moved {
                let back = nl::netns::run_in(
                    Some(std::path::Path::new(&format!("/proc/self/fd/{}", other.as_fd().as_raw_fd()))),
                    || {
                        let l = link::list()?
                            .into_iter()
                            .find(|l| l.index == idx)
                            .ok_or_else(|| NlError::new(libc::ENODEV, "moved device not found"))?;
                        link::move_to(l.index, here.as_fd())
                    },
                );
                back.map_err(|e| harness(format!("moving {dev} back: {}", e.msg)))?;
                self.note(format!("{dev} moved back"));
            }
            checked?;
        }
        if l.delete {
            self.destructive("deleting the device")?;
            return Err(StepError::Skip(
                "deleting the device under test would end the topology for every later case; not done yet".into(),
            ));
        }
        Ok(())
    }

    pub(super) fn xdp(&mut self, x: &XdpStep, expect: Option<&Expect>) -> StepResult {
        self.may_change("xdp")?;
        let (idx, dev) = self.dut()?;
        let flags = match x.mode {
            XdpMode::Drv => xdp::XDP_FLAGS_DRV_MODE,
            XdpMode::Skb => xdp::XDP_FLAGS_SKB_MODE,
        };
        if x.attach {
            let prog = xdp::load_pass(x.frags)
                .map_err(|e| StepError::Skip(format!("cannot load an XDP program: {}", e.msg)))?;
            let r = link::set_xdp(idx, prog.as_raw_fd(), flags);
            self.check_nl(format!("attach XDP ({:?}, frags {}) to {dev}", x.mode, x.frags), r, expect)?;
        } else {
            let r = link::set_xdp(idx, -1, flags);
            self.check_nl(format!("detach XDP from {dev}"), r, expect)?;
        }
        Ok(())
    }

    pub(super) fn af_xdp(&mut self, a: &AfXdp, expect: Option<&Expect>) -> StepResult {
        let (idx, dev) = self.dut()?;
        let q = match &a.queue {
            Some(v) => self.value(v, Ns::Any)? as u32,
            None => self.topo.if_rxq,
        };
        if a.zerocopy {
            let f = netdev::xdp_features(idx).map_err(|e| harness(e.msg))?;
            if f & netdev::XDP_ACT_ZC != netdev::XDP_ACT_ZC {
                return Err(StepError::Skip(format!("{dev} has no AF_XDP zero copy (xdp-features {f:#x})")));
            }
        }
        let flags = if a.zerocopy { xdp::XDP_ZEROCOPY } else { xdp::XDP_COPY };
        let r = xdp::bind(idx, q, flags);
        if let Some(x) = self.check_nl(format!("bind AF_XDP to {dev} queue {q}"), r, expect)? {
            self.nic.xsks.push(x);
        }
        Ok(())
    }

    pub(super) fn ntuple(&mut self, n: &Ntuple, expect: Option<&Expect>) -> StepResult {
        self.may_change("ntuple")?;
        let (_, dev) = self.dut()?;
        let name = n.name.clone().unwrap_or_else(|| "r0".into());
        if n.delete {
            let loc = *self.nic.rules.get(&name).ok_or_else(|| format!("no ntuple rule `{name}`"))?;
            let r = ethtool::delete_flow_rule(&dev, loc);
            if r.is_ok() {
                self.nic.added.retain(|a| !matches!(a, Added::Rule { loc: l, .. } if *l == loc));
            }
            if self.check_nl(format!("delete ntuple rule {name} (location {loc})"), r, expect)?.is_some() {
                self.nic.rules.remove(&name);
            }
            return Ok(());
        }
        let cname = n.conn.clone().unwrap_or_else(|| "c0".into());
        let c = self.st.conns.get(&cname).ok_or_else(|| format!("no connection `{cname}`"))?;
        let local: std::net::SocketAddr =
            nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(c.recv.as_raw_fd())
                .ok()
                .and_then(|s| {
                    s.as_sockaddr_in()
                        .map(|a| std::net::SocketAddr::from((a.ip(), a.port())))
                        .or_else(|| s.as_sockaddr_in6().map(|a| std::net::SocketAddr::from((a.ip(), a.port()))))
                })
                .ok_or_else(|| format!("connection `{cname}` is not a TCP/IP socket"))?;
        let context = match &n.context {
            Some(c) => Some(*self.nic.contexts.get(c).ok_or_else(|| format!("no RSS context `{c}`"))?),
            None => None,
        };
        let queue = match &n.queue {
            Some(v) => self.value(v, Ns::Any)? as u32,
            None if context.is_some() => 0,
            None => self.topo.if_rxq,
        };
        let rule = ethtool::FlowRule { ipv6: local.is_ipv6(), dst_port: local.port(), queue, context };
        let r = ethtool::add_flow_rule(&dev, &rule);
        // Recorded before the verdict, which may end the case.
        if let Ok(loc) = &r {
            self.nic.added.push(Added::Rule { dev: dev.clone(), loc: *loc });
        }
        if let Some(loc) = self.check_nl(format!("add ntuple rule {name}: {rule:?}"), r, expect)? {
            self.nic.rules.insert(name, loc);
        }
        Ok(())
    }

    pub(super) fn rss(&mut self, r: &Rss, expect: Option<&Expect>) -> StepResult {
        self.may_change("rss")?;
        let (idx, dev) = self.dut()?;
        let queues = |vals: &[Value]| -> Result<Vec<u32>, StepError> {
            vals.iter().map(|v| self.value(v, Ns::Any).map(|q| q as u32).map_err(StepError::from)).collect()
        };
        if let Some(name) = &r.context {
            let qs = queues(&r.queues)?;
            let res = ethtool::create_rss_context(idx, &qs);
            // Recorded before the verdict, which may end the case.
            if let Ok(id) = &res {
                self.nic.added.push(Added::Context { index: idx, id: *id });
            }
            if let Some(id) = self.check_nl(format!("create RSS context {name} over {qs:?} on {dev}"), res, expect)? {
                self.nic.contexts.insert(name.clone(), id);
            }
            return Ok(());
        }
        let ex = queues(&r.exclude)?;
        let cur = ethtool::rss_indir(idx, 0).map_err(|e| StepError::Skip(format!("no RSS table: {}", e.msg)))?;
        // The queues the device has now (a case may have changed the channels).
        let rx_queues = ethtool::channels(idx).ok().and_then(|c| c.0).unwrap_or(self.topo.queues);
        let keep: Vec<u32> = (0..rx_queues).filter(|q| !ex.contains(q)).collect();
        if cur.is_empty() || keep.is_empty() {
            return Err(StepError::Skip(format!("{dev}: no RSS indirection table to change ({} entries)", cur.len())));
        }
        let table: Vec<u32> = (0..cur.len()).map(|i| keep[i % keep.len()]).collect();
        let res = ethtool::set_rss_indir(idx, &table);
        self.check_nl(format!("RSS indirection of {dev} over {keep:?}"), res, expect)?;
        Ok(())
    }

    pub(super) fn queue_get(&mut self, q: &QueueGet) -> StepResult {
        let (idx, dev) = self.dut()?;
        let id = match &q.queue {
            Some(v) => self.value(v, Ns::Any)? as u32,
            None => self.topo.if_rxq,
        };
        let got = poll_until(
            Duration::from_millis(q.wait_ms),
            Duration::from_millis(10),
            || netdev::rx_queue(idx, id).map_err(|e| harness(e.msg)),
            |r| r.io_uring == q.io_uring,
        )?;
        self.note(format!("queue-get {dev} rx {id}: {got:?}"));
        let r = if got.io_uring != q.io_uring {
            let state = if got.io_uring { "still shows" } else { "does not show" };
            Err(format!("queue-get: {dev} rx {id} {state} the io_uring memory provider after {} ms", q.wait_ms).into())
        } else {
            Ok(())
        };
        self.verdict("queue-get io_uring provider", r)?;
        if let Some(want) = q.rx_buf_len {
            let got = got.io_uring_rx_buf_len.map(u64::from);
            let r = if got == Some(want) {
                Ok(())
            } else {
                Err(format!("queue-get: {dev} rx {id}: io_uring rx-buf-len {got:?}, expected {want}").into())
            };
            self.verdict("queue-get io_uring rx-buf-len", r)?;
        }
        Ok(())
    }

    pub(super) fn qstats(&mut self, q: &Qstats) -> StepResult {
        let (idx, dev) = self.dut()?;
        let now = netdev::qstats(idx).map_err(|e| harness(e.msg))?;
        self.note(format!("qstats-get {dev}: {now:?}"));
        if let Some(n) = &q.save {
            self.nic.qstats.insert(n.clone(), now);
        }
        if q.rx_alloc_fail.is_none() && q.rx_alloc_fail_at_least.is_none() {
            return Ok(());
        }
        let Some(cur) = now.rx_alloc_fail else {
            return Err(StepError::Skip(format!("{dev}: the driver reports no rx-alloc-fail in qstats-get")));
        };
        let base = match &q.since {
            Some(n) => {
                let saved = self.nic.qstats.get(n).ok_or_else(|| format!("no qstats saved as `{n}`"))?;
                saved.rx_alloc_fail.unwrap_or(0)
            }
            None => 0,
        };
        let grew = cur.saturating_sub(base);
        if let Some(want) = q.rx_alloc_fail {
            self.verdict("qstats rx-alloc-fail", exact("rx-alloc-fail", Some(want), grew))?;
        }
        if let Some(min) = q.rx_alloc_fail_at_least {
            self.verdict("qstats rx-alloc-fail (at least)", exact_min("rx-alloc-fail", min, grew))?;
        }
        Ok(())
    }

    /// Waits until no rx queue of the device under test has an io_uring memory provider: the
    /// ordering event that ends the case before. Cases on a device run one at a time, but the
    /// kernel tears a zcrx instance down after its process has gone (io_uring's ring exit work),
    /// so the next case could start while the last one's provider was still bound. The core then
    /// refuses some settings (tcp-data-split off or a non-zero hds-thresh: EINVAL, which fits
    /// nic.hds_settings' one failure after nic.flow_ipv6), and the old instance's page pools tear
    /// down inside the new case. Past [`PROVIDER_RELEASE_WAIT`] the earlier teardown never
    /// finished: a harness error, not this case's verdict.
    pub(super) fn wait_providers_released(&mut self) -> StepResult {
        let Some(dev) = self.topo.dut_dev.clone() else { return Ok(()) };
        let idx = self.topo.if_idx;
        let t0 = Instant::now();
        let mut polls = 0u32;
        loop {
            let bound = netdev::io_uring_rx_queues(idx).map_err(|e| harness(e.msg))?;
            if bound.is_empty() {
                if polls > 0 {
                    self.note(format!(
                        "waited {} ms for an earlier case's io_uring provider to leave {dev}",
                        t0.elapsed().as_millis()
                    ));
                }
                return Ok(());
            }
            if t0.elapsed() >= PROVIDER_RELEASE_WAIT {
                return Err(harness(format!(
                    "{dev} rx queue(s) {bound:?} still have an io_uring memory provider {} s after the case began \
                     (an earlier case's zcrx instance was never torn down)",
                    PROVIDER_RELEASE_WAIT.as_secs()
                )));
            }
            polls += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The highest page-pool id of the device under test now.
    pub(super) fn page_pool_floor(&mut self) -> Result<u32, StepError> {
        let (idx, _) = self.dut()?;
        let pools = netdev::page_pools(idx).map_err(|e| harness(e.msg))?;
        Ok(pools.iter().map(|p| p.id).max().unwrap_or(0))
    }

    /// Page pools of the device under test that the case made (ids above `pp_floor`), polled up to
    /// `wait_ms` for the asynchronous teardown.
    pub(super) fn page_pools(&mut self, p: &PagePools) -> StepResult {
        let (idx, dev) = self.dut()?;
        let deadline = Instant::now() + Duration::from_millis(p.wait_ms);
        let count = |pools: &[netdev::PagePool]| pools.iter().filter(|p| p.io_uring && !p.detached).count() as u32;
        let held = |pools: &[netdev::PagePool]| -> u64 {
            pools.iter().filter(|p| p.detached).map(|p| u64::from(p.inflight.unwrap_or(0))).sum()
        };
        let floor = self.pp_floor;
        // Buffers of skbs that were read on another CPU than the one that received them stay in
        // flight until that CPU's next receive softirq (kernel::softirq::flush_skb_defer_lists); with no
        // traffic left, that could be never. Each flush is that ordering event, made to happen;
        // the pool's own release work (every second) then gives them back.
        let mut flushed_at: Option<Instant> = None;
        let pools = loop {
            let mut pools = netdev::page_pools(idx).map_err(|e| harness(e.msg))?;
            pools.retain(|p| p.id > floor);
            let settled = count(&pools) == p.io_uring && p.detached_inflight.is_none_or(|d| held(&pools) == d);
            if settled || Instant::now() >= deadline {
                break pools;
            }
            if p.detached_inflight.is_some() && flushed_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                let before = held(&pools);
                let cpus = crate::kernel::softirq::flush_skb_defer_lists()
                    .map_err(|e| harness(format!("flushing skb defer lists: {e}")))?;
                if flushed_at.is_none() {
                    self.note(format!(
                        "{before} buffer(s) in flight in detached page pools: receive softirq run on {cpus} CPU(s) to free deferred skbs"
                    ));
                }
                flushed_at = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.note(format!("page pools of {dev} made by this case (ids above {floor}): {}", pools.len()));
        for pp in &pools {
            self.note(format!("page pool of {dev}: {pp:?}"));
        }
        self.verdict(
            "page pools with the io_uring provider",
            exact("io_uring page pools", Some(p.io_uring as u64), count(&pools) as u64),
        )?;
        if let Some(d) = p.detached_inflight {
            self.verdict(
                "buffers held by destroyed page pools",
                exact("buffers in flight in detached page pools", Some(d), held(&pools)),
            )?;
        }
        Ok(())
    }
}
