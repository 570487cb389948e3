//! Executes one case against the running kernel. Every step makes real syscalls and
//! compares what the kernel answered with the case's exact expectation. A step ends with a
//! typed [`StepError`] (fail, skip, harness error, or an inverted assertion that held); the
//! case's [`Outcome`] follows from it.
//!
//! One file per kind of step: [`register`], [`ctrl`] (control plane), [`data`] (RECV_ZC and
//! CQEs), [`rq`] (refill queue), [`env`] (connections, devices, settings); [`check`] holds the
//! assertions every step goes through.

mod check;
mod ctrl;
mod data;
mod env;
mod importer;
mod nic;
mod process;
mod register;
mod rq;
mod stress;
mod sweep;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::case::names::{self as consts, Ns};
use crate::case::*;
use crate::kernel::ring::{Cqe, Ring, RingError};
use crate::kernel::sys::{self, Mem, SysResult};
use crate::kernel::uapi::{self, *};
use crate::kernel::zcrx::Rq;
use crate::model::{Assertion, Outcome, Probe, StepError};
use crate::topology::Topo;

use check::{describe, exact, exact_min, overrides_summary};
pub use check::{dump, flag_names};

/// The byte at stream position `i` of the pattern every sender writes: not periodic
/// at any buffer size, so a misplaced or stale buffer shows as a mismatch.
pub fn pattern_byte(i: u64) -> u8 {
    let x = (i / 8).wrapping_add(0x5151).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> (8 * (i % 8))) as u8 ^ (i >> 12) as u8
}

pub fn pattern(start: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let end = start + len as u64;
    let mut i = start;
    // Byte by byte up to an 8-byte boundary, then a word at a time: the eight bytes of an
    // aligned group share one multiply and (4096 being a multiple of 8) one `i >> 12`.
    while i < end && !i.is_multiple_of(8) {
        out.push(pattern_byte(i));
        i += 1;
    }
    while i + 8 <= end {
        let x = (i / 8).wrapping_add(0x5151).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let hi = ((i >> 12) as u8 as u64).wrapping_mul(0x0101_0101_0101_0101);
        out.extend_from_slice(&(x ^ hi).to_le_bytes());
        i += 8;
    }
    while i < end {
        out.push(pattern_byte(i));
        i += 1;
    }
    out
}

struct Zcrx {
    ring: String,
    id: u32,
    region: Option<Rc<Mem>>,
    region_size: usize,
    mmap_offset: u64,
    offsets: ZcrxOffsets,
    rq_entries: u32,
    buf_shift: u32,
    areas: BTreeMap<u64, Rc<Mem>>,
    stats_offset: Option<u64>,
    /// Buffers received and not yet returned, oldest first.
    held: VecDeque<Held>,
    /// RQEs the harness has published (its tail counter, free-running).
    returned: u64,
}

/// A buffer user space holds: where its data is and which stream bytes it carries.
#[derive(Clone, Copy, Debug)]
struct Held {
    /// The CQE's offset (area in the top bits).
    off: u64,
    len: u32,
    /// Pattern position of its first byte (the connection's base plus its stream offset).
    pos: u64,
}

struct Conn {
    /// Where this connection's stream starts in the pattern: each connection of a case sends
    /// its own bytes (c0 from 0, the next from 1<<40, ...), so a buffer of one flow handed out
    /// as another's never matches by chance.
    base: u64,
    recv: OwnedFd,
    peer: Option<PeerEnd>,
    sent: u64,
    received: u64,
    senders: Vec<Sender>,
}

/// The sending end of a connection: a socket of this process, or a connection of the remote
/// peer's agent (a topology's `remote.ssh`), by its number there.
enum PeerEnd {
    Local(OwnedFd),
    Remote(u32),
}

/// A send in progress: a thread of this process, or a request the remote agent answers.
enum Sender {
    Thread(JoinHandle<std::io::Result<()>>),
    Remote(u64),
}

#[derive(Clone)]
struct Recv {
    conn: String,
    zcrx: String,
    sqe: Sqe,
}

struct Ctx<'a> {
    case: &'a Case,
    topo: &'a Topo,
    probe: &'a Probe,
    /// The case's kernel objects and what refers to them (a fault sweep's round swaps in its own).
    st: Objects,
    fault: Mem,
    /// Kernel-specific expectations that applied (shown in logs and the matrix).
    notes: std::cell::RefCell<Vec<String>>,
    /// What the kernel answered at each checked value (`CaseReport::observed`).
    observed: std::cell::RefCell<Vec<String>>,
    /// Self-check: the assertion site (numbered from 1) whose verdict is inverted.
    invert: Option<usize>,
    /// Assertions evaluated so far (a site in a loop counts each time).
    asserts: std::cell::Cell<usize>,
    /// Assertion sites in the order first reached.
    sites: std::cell::RefCell<Vec<Assertion>>,
    /// Where the running step is ("step 3 (register, line 7)").
    at: String,
    log: Vec<String>,
    /// The network namespace the case is in was made for it alone (a built-in topology's,
    /// or one a `netns` step created): every device in it is the case's own.
    own_netns: bool,
    /// Devices this case created (`tun` steps), by name.
    made_devices: Vec<String>,
    /// AF_XDP sockets, ntuple rules and RSS contexts of the NIC steps.
    nic: nic::NicState,
    /// Processes started by `process` steps, by name.
    procs: HashMap<String, process::Proc>,
    /// Processes started by `importer` steps, by name.
    importers: HashMap<String, importer::Imp>,
    /// The highest page-pool id the device under test had when the case began: `page_pools`
    /// counts only the pools the case's own registrations made (a previous case's pool may
    /// still be tearing down).
    pp_floor: u32,
    /// netdevsim devices made by `nsim_device` steps, by name.
    spares: HashMap<String, env::Spare>,
    /// The session with the remote peer's agent (opened at the first connection).
    remote: Option<crate::topology::ssh::Session>,
}

/// The rings, zcrx instances, descriptors, connections and receives a case made, by name.
/// Dropped in field order with the case (a fault sweep's round drops its own in another order:
/// `sweep::put_state`).
#[derive(Default)]
struct Objects {
    rings: HashMap<String, Ring>,
    zcrx: HashMap<String, Zcrx>,
    fds: HashMap<String, OwnedFd>,
    conns: HashMap<String, Conn>,
    recvs: HashMap<u64, Recv>,
    pending: VecDeque<Cqe>,
    /// Exported fd name -> the zcrx instance it came from.
    exported_from: HashMap<String, String>,
    /// Addresses of the area/region memory of the last register step, for `$area.addr`.
    last: BTreeMap<String, u64>,
    /// FLUSH_RQ calls the data loops made ([`Ctx::flush`]), for their notes.
    flushes: u64,
}

type StepResult = Result<(), StepError>;

/// Log lines with this text record that a kernel-specific expectation applied.
const KERNEL_SPECIFIC: &str = "kernel-specific expectation";

/// The running kernel's page size (`$page` in a case): 4 KiB on x86-64, 4, 16 or 64 KiB on arm64.
fn page() -> usize {
    crate::kernel::sys::page_size()
}

/// Runs a case; never panics on kernel answers (they are results).
/// `invert`: the assertion site to invert (self-check), numbered from 1 in the order sites
/// are first reached.
pub fn execute(case: &Case, topo: &Topo, probe: &Probe, invert: Option<usize>) -> Outcome {
    let fault = match sys::fault_page() {
        Ok(m) => m,
        Err(e) => return Outcome::harness(format!("mmap: {e}")),
    };
    let mut ctx = Ctx {
        case,
        topo,
        probe,
        st: Objects::default(),
        fault,
        notes: Default::default(),
        observed: Default::default(),
        invert,
        asserts: Default::default(),
        sites: Default::default(),
        at: String::new(),
        log: Vec::new(),
        own_netns: topo.fresh_netns,
        made_devices: Vec::new(),
        nic: Default::default(),
        procs: HashMap::new(),
        importers: HashMap::new(),
        pp_floor: 0,
        spares: HashMap::new(),
        remote: None,
    };
    let r = if case.def.userns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
            .map_err(|e| StepError::Skip(format!("cannot create a user namespace: {e}")))
            .and_then(|_| {
                ctx.log.push("running in a new user namespace (no CAP_NET_ADMIN in the initial one)".into());
                ctx.run()
            })
    } else {
        ctx.run()
    };
    let mut log = std::mem::take(&mut ctx.log);
    let mut notes = ctx.notes.take();
    notes.dedup();
    log.extend(notes.iter().map(|n| format!("{KERNEL_SPECIFIC} {n}")));
    log.push(format!("{} assertion(s) evaluated", ctx.asserts.get()));
    let mut o = match r {
        Ok(()) => Outcome::pass(log),
        Err(e) => Outcome::from_error(e, log),
    };
    o.kernel_specific = notes;
    o.assertions = ctx.sites.take();
    o.observed = ctx.observed.take();
    o
}

fn setup_flags(v: &Value) -> Result<u32, consts::NameError> {
    consts::resolve_static(v, Ns::Setup).map(|f| f as u32)
}

fn page_mem(readonly: bool, bytes: &[u8]) -> Result<Mem, StepError> {
    let m = Mem::anon(page().max(bytes.len())).map_err(|e| harness(format!("mmap: {e}")))?;
    m.write(0, bytes);
    if readonly {
        m.protect(libc::PROT_READ).map_err(|e| harness(format!("mprotect: {e}")))?;
    }
    Ok(m)
}

/// A failure of the harness itself (memory, pipes, threads), not of the kernel.
fn harness(m: impl Into<String>) -> StepError {
    StepError::Harness(m.into())
}

impl Ctx<'_> {
    fn run(&mut self) -> StepResult {
        if let Some(ns) = &self.topo.netns {
            crate::topology::enter(ns)?;
            self.note(format!("in network namespace {}", ns.display()));
        }
        self.wait_providers_released()?;
        if self.case.def.steps.iter().any(|s| matches!(s.value.action, Action::PagePools(_))) {
            self.pp_floor = self.page_pool_floor()?;
        }
        let d = &self.case.def;
        let flags = setup_flags(&d.ring.flags)?;
        let ring = Ring::new(d.ring.entries, flags, d.ring.cq_entries).map_err(|e| format!("main ring: {e}"))?;
        self.st.rings.insert("main".into(), ring);
        for (i, step) in self.case.def.steps.iter().enumerate() {
            let s = &step.value;
            self.at = format!("step {} ({}, line {})", i + 1, s.action.kind().key, step.line);
            self.step(s).map_err(|e| e.context(i + 1, &self.at))?;
        }
        let mut notes = Vec::new();
        for (name, c) in &mut self.st.conns {
            for h in c.senders.drain(..) {
                match h {
                    Sender::Thread(h) if h.is_finished() => {
                        if let Ok(Err(e)) = h.join() {
                            notes.push(format!("note: sender on {name} ended with {e}"));
                        }
                    }
                    Sender::Remote(id) => {
                        if let Some(s) = self.remote.as_mut().filter(|s| s.answered(id)) {
                            if let Err(e) = s.wait(id, Duration::ZERO) {
                                notes.push(format!("note: remote sender on {name} ended with {e}"));
                            }
                        }
                    }
                    Sender::Thread(_) => {}
                }
            }
        }
        for n in notes {
            self.note(n);
        }
        Ok(())
    }

    /// Records a log line; it also goes to stderr at once (one write), so a crash shows how far
    /// it got.
    fn note(&mut self, line: String) {
        let mut text = line.clone();
        text.push('\n');
        // A case the runner kills (a timeout) or that crashes has only what reached the pipe.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        self.log.push(line);
    }

    fn ring_fd(&self, name: &str) -> Result<RawFd, String> {
        self.st.rings.get(name).map(|r| r.fd()).ok_or_else(|| format!("no ring named `{name}`"))
    }

    /// Runs one step: one arm per kind of step (`case::Action`), each a method in the file of
    /// its kind.
    fn step(&mut self, s: &Step) -> StepResult {
        let ring = s.ring();
        let expect = s.expect.as_ref();
        match &s.action {
            Action::Register(r) => self.register(ring, r, expect),
            Action::Ctrl(c) => self.ctrl(ring, c, expect),
            Action::Query(q) => self.query(ring, q, expect),
            Action::RegisterRaw(r) => self.register_raw(ring, r, expect),
            Action::OpenRing(o) => self.open_ring(o, expect),
            Action::Connect(c) => self.connect(c),
            Action::Send(x) => self.send(x),
            Action::Acked(x) => self.acked(x),
            Action::Shutdown(x) => self.shutdown(x),
            Action::RecvZc(x) => self.recv_zc(ring, x),
            Action::ExpectCqes(x) => self.expect_cqes(ring, x),
            Action::ExpectData(x) => self.expect_data(ring, x),
            Action::DrainData(x) => self.drain_data(ring, x),
            Action::ExpectNoCqe(x) => self.expect_no_cqe(ring, x),
            Action::ReturnBuffers(x) => self.return_buffers(x),
            Action::RqPush(x) => self.rq_push(x),
            Action::RqSet(x) => self.rq_set(x),
            Action::ExpectRq(x) => self.expect_rq(x),
            Action::ExpectStats(x) => self.expect_stats(x),
            Action::ExpectPinned(x) => self.expect_pinned(x),
            Action::Dmabuf(x) => self.dmabuf(x),
            Action::MmapRegion(x) => self.mmap_region(ring, x, expect),
            Action::Close(x) => self.close(x),
            Action::Tun(t) => self.tun(t),
            Action::Netns(n) => self.netns(n),
            Action::Ethtool(e) => self.ethtool(e, expect),
            Action::Nsim(n) => self.nsim(n),
            Action::Link(x) => self.link_op(x, expect),
            Action::Xdp(x) => self.xdp(x, expect),
            Action::AfXdp(x) => self.af_xdp(x, expect),
            Action::Ntuple(x) => self.ntuple(x, expect),
            Action::Rss(x) => self.rss(x, expect),
            Action::QueueGet(x) => self.queue_get(x),
            Action::PagePools(x) => self.page_pools(x),
            Action::Process(x) => self.process(x, expect),
            Action::Importer(x) => self.importer(x),
            Action::NsimDevice(x) => self.nsim_device(x, expect),
            Action::Qstats(x) => self.qstats(x),
            Action::Limit(x) => self.limit(x),
            Action::FaultSweep(x) => self.fault_sweep(x),
            Action::Stress(x) => self.stress(x),
        }
    }

    /// `$name` references a case may use.
    fn reference(&self, r: &str) -> Option<u64> {
        match r {
            "fault" => return Some(self.fault.addr()),
            "page" => return Some(page() as u64),
            "lo" => return Some(crate::topology::loopback_ifindex() as u64),
            "topo.if_idx" => return Some(self.topo.if_idx as u64),
            "topo.if_rxq" => return Some(self.topo.if_rxq as u64),
            "topo.peer_if_idx" => return Some(self.topo.peer_if_idx as u64),
            "topo.queues" => return Some(self.topo.queues as u64),
            _ => {}
        }
        if let Some(v) = self.st.last.get(r) {
            return Some(*v);
        }
        let (name, attr) = r.split_once('.').unwrap_or((r, ""));
        if let Some(f) = self.st.fds.get(name) {
            return (attr.is_empty() || attr == "fd").then(|| f.as_raw_fd() as u64);
        }
        if let Some(ring) = self.st.rings.get(name) {
            return (attr == "fd").then(|| ring.fd() as u64);
        }
        if let Some(c) = self.st.conns.get(name) {
            return match attr {
                "fd" | "" => Some(c.recv.as_raw_fd() as u64),
                "peer" => match &c.peer {
                    Some(PeerEnd::Local(p)) => Some(p.as_raw_fd() as u64),
                    _ => None,
                },
                _ => None,
            };
        }
        let z = self.st.zcrx.get(name)?;
        match attr {
            "id" => Some(z.id as u64),
            "rq_entries" => Some(z.rq_entries as u64),
            "buf_len" => Some(1u64 << z.buf_shift),
            "rqes" => Some(z.offsets.rqes as u64),
            "mmap_offset" => Some(z.mmap_offset),
            "held" => Some(z.held.len() as u64),
            "returned" => Some(z.returned),
            _ => None,
        }
    }

    fn value(&self, v: &Value, ns: Ns) -> Result<u64, consts::NameError> {
        consts::resolve(v, ns, &|r| self.reference(r))
    }

    fn apply(&self, buf: &mut [u8], table: &FieldTable, ov: &Overrides) -> StepResult {
        for (k, v) in ov {
            let f = table.get(k).ok_or_else(|| format!("unknown field `{k}` of {}", table.name))?;
            let val =
                self.value(&v.value, consts::field_ns(table, k)).map_err(|e| format!("{}.{k}: {e}", table.name))?;
            uapi::write_field(buf, f, val);
        }
        Ok(())
    }
}

/// Polls `probe` every `every` until `done` holds for what it returned or `wait` has passed,
/// and returns the last value (the caller judges it; `wait` 0 probes once). A probe error ends
/// the poll. For state the kernel changes on its own schedule with nothing to wait on.
fn poll_until<T, E>(
    wait: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<T, E>,
    done: impl Fn(&T) -> bool,
) -> Result<T, E> {
    let deadline = Instant::now() + wait;
    loop {
        let v = probe()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if done(&v) || left.is_zero() {
            return Ok(v);
        }
        std::thread::sleep(every.min(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_until_stops_when_done_or_out_of_time() {
        let mut n = 0;
        let got: Result<i32, ()> = poll_until(
            Duration::from_secs(5),
            Duration::ZERO,
            || {
                n += 1;
                Ok(n)
            },
            |v| *v == 3,
        );
        assert_eq!(got, Ok(3));
        let mut calls = 0;
        let once: Result<i32, ()> = poll_until(
            Duration::ZERO,
            Duration::from_millis(1),
            || {
                calls += 1;
                Ok(0)
            },
            |_| false,
        );
        assert_eq!((once, calls), (Ok(0), 1));
        let failed: Result<i32, &str> = poll_until(Duration::from_secs(5), Duration::ZERO, || Err("gone"), |_| true);
        assert_eq!(failed, Err("gone"));
    }

    #[test]
    fn pattern_words_equal_bytes() {
        for (start, len) in [(0u64, 4096usize), (3, 100), (4090, 20), (1 << 20, 8), (7, 1), (12345, 0)] {
            let slow: Vec<u8> = (start..start + len as u64).map(pattern_byte).collect();
            assert_eq!(pattern(start, len), slow, "start {start} len {len}");
        }
    }

    #[test]
    fn pattern_is_not_periodic_at_page_size() {
        let a = pattern(0, 4096);
        let b = pattern(4096, 4096);
        assert_ne!(a, b);
        let c = pattern(100, 10);
        assert_eq!(&a[100..110], c.as_slice());
    }

    #[test]
    fn flag_names_render() {
        assert_eq!(flag_names(0), "[]");
        assert_eq!(flag_names(IORING_CQE_F_MORE | IORING_CQE_F_32), "[MORE,F_32]");
    }
}
