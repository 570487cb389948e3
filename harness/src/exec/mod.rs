//! Executes one case against the running kernel. Every step makes real syscalls and
//! compares what the kernel answered with the case's exact expectation.

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
use crate::model::{Outcome, Probe, Status};
use crate::topology::Topo;

/// The byte at stream position `i` of the pattern every sender writes: not periodic
/// at any buffer size, so a misplaced or stale buffer shows as a mismatch.
pub fn pattern_byte(i: u64) -> u8 {
    let x = (i / 8).wrapping_add(0x5151).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> (8 * (i % 8))) as u8 ^ (i >> 12) as u8
}

pub fn pattern(start: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|k| pattern_byte(start + k)).collect()
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
    held: VecDeque<u64>,
    /// RQEs the harness has published (its tail counter, free-running).
    returned: u64,
}

struct Conn {
    recv: OwnedFd,
    peer: Option<OwnedFd>,
    sent: u64,
    received: u64,
    senders: Vec<JoinHandle<std::io::Result<()>>>,
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
    rings: HashMap<String, Ring>,
    zcrx: HashMap<String, Zcrx>,
    fds: HashMap<String, OwnedFd>,
    conns: HashMap<String, Conn>,
    recvs: HashMap<u64, Recv>,
    pending: VecDeque<Cqe>,
    fault: Mem,
    /// Exported fd name -> the zcrx instance it came from.
    exported_from: HashMap<String, String>,
    /// Kernel-specific expectations that applied (shown in logs and the matrix).
    notes: std::cell::RefCell<Vec<String>>,
    /// Self-check: every assertion's verdict is inverted.
    invert: bool,
    /// Assertions evaluated so far.
    asserts: std::cell::Cell<usize>,
    log: Vec<String>,
    // Addresses of the area/region memory of the last register step, for `$area.addr`.
    last: BTreeMap<String, u64>,
}

type StepResult = Result<(), String>;

/// A self-check failure (an inverted assertion held) starts with this.
pub const INVERTED: &str = "inverted assertion held: ";

/// Log lines with this prefix record that a kernel-specific expectation applied.
pub const KERNEL_SPECIFIC: &str = "kernel-specific expectation ";

/// An error carrying this prefix means the environment cannot run the case: a skip.
pub const SKIP_PREFIX: &str = "skip: ";

const PAGE: usize = 4096;

/// Runs a case; never panics on kernel answers (they are results).
pub fn execute(case: &Case, topo: &Topo, probe: &Probe, invert: bool) -> Outcome {
    let fault = match sys::fault_page() {
        Ok(m) => m,
        Err(e) => return Outcome::harness(format!("mmap: {e}")),
    };
    let mut ctx = Ctx {
        case,
        topo,
        probe,
        rings: HashMap::new(),
        zcrx: HashMap::new(),
        fds: HashMap::new(),
        conns: HashMap::new(),
        recvs: HashMap::new(),
        pending: VecDeque::new(),
        fault,
        exported_from: HashMap::new(),
        notes: Default::default(),
        invert,
        asserts: Default::default(),
        log: Vec::new(),
        last: BTreeMap::new(),
    };
    let r = if case.def.userns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
            .map_err(|e| format!("{SKIP_PREFIX}cannot create a user namespace: {e}"))
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
    log.extend(notes);
    log.push(format!("{} assertion(s) evaluated", ctx.asserts.get()));
    match r {
        Ok(()) => Outcome { status: Status::Pass, message: String::new(), log, ..Default::default() },
        Err(m) => match m.find(SKIP_PREFIX) {
            Some(i) => Outcome {
                status: Status::Skip,
                message: m[i + SKIP_PREFIX.len()..].to_string(),
                log,
                ..Default::default()
            },
            None => Outcome { status: Status::Fail, message: m, log, ..Default::default() },
        },
    }
}

fn setup_flags(v: &Value) -> Result<u32, String> {
    consts::resolve_static(v, Ns::Setup).map(|f| f as u32)
}

fn page_mem(readonly: bool, bytes: &[u8]) -> Result<Mem, String> {
    let m = Mem::anon(PAGE.max(bytes.len())).map_err(|e| format!("harness: mmap: {e}"))?;
    m.write(0, bytes);
    if readonly {
        m.protect(libc::PROT_READ).map_err(|e| format!("harness: mprotect: {e}"))?;
    }
    Ok(m)
}

fn describe(got: &SysResult) -> String {
    match got {
        Ok(v) => format!("ok ({v})"),
        Err(e) => sys::errno_name(*e),
    }
}

impl<'a> Ctx<'a> {
    fn run(&mut self) -> StepResult {
        if let Some(ns) = &self.topo.netns {
            crate::topology::enter(ns)?;
            self.note(format!("in network namespace {}", ns.display()));
        }
        let d = &self.case.def;
        let flags = setup_flags(&d.ring.flags)?;
        let ring = Ring::new(d.ring.entries, flags, d.ring.cq_entries).map_err(|e| format!("main ring: {e}"))?;
        self.rings.insert("main".into(), ring);
        for (i, step) in self.case.def.steps.iter().enumerate() {
            let s = &step.value;
            let act = s.actions().first().copied().unwrap_or("?");
            self.step(s).map_err(|m| format!("step {} ({act}, line {}): {m}", i + 1, step.line))?;
        }
        let mut notes = Vec::new();
        for (name, c) in &mut self.conns {
            for h in c.senders.drain(..) {
                if h.is_finished() {
                    if let Ok(Err(e)) = h.join() {
                        notes.push(format!("note: sender on {name} ended with {e}"));
                    }
                }
            }
        }
        for n in notes {
            self.note(n);
        }
        Ok(())
    }

    /// Records a log line; it also goes to stderr at once, so a crash shows how far it got.
    fn note(&mut self, line: String) {
        eprintln!("{line}");
        self.log.push(line);
    }

    fn ring_name(s: &Step) -> String {
        s.ring.clone().unwrap_or_else(|| "main".into())
    }

    fn ring_fd(&self, name: &str) -> Result<RawFd, String> {
        self.rings.get(name).map(|r| r.fd()).ok_or_else(|| format!("no ring named `{name}`"))
    }

    fn step(&mut self, s: &Step) -> StepResult {
        let ring = Self::ring_name(s);
        if let Some(r) = &s.register {
            return self.register(&ring, r, s.expect.as_ref());
        }
        if let Some(c) = &s.ctrl {
            return self.ctrl(&ring, c, s.expect.as_ref());
        }
        if let Some(q) = &s.query {
            return self.query(&ring, q, s.expect.as_ref());
        }
        if let Some(r) = &s.register_raw {
            let op = self.value(&r.opcode, Ns::RegisterOp)? as u32;
            let arg = match &r.arg {
                Some(v) => self.value(v, Ns::Any)?,
                None => 0,
            };
            let fd = match &r.fd {
                Some(v) => self.value(v, Ns::Any)? as i64 as RawFd,
                None => self.ring_fd(&ring)?,
            };
            let got = sys::io_uring_register(fd, op, arg, r.nr_args);
            self.note(format!("io_uring_register(op {op}, arg {arg:#x}, nr_args {}) -> {}", r.nr_args, describe(&got)));
            return self.check(&got, s.expect.as_ref(), &|_| None);
        }
        if let Some(o) = &s.open_ring {
            let flags = setup_flags(&o.spec.flags)?;
            let got = match Ring::new(o.spec.entries, flags, o.spec.cq_entries) {
                Ok(r) => {
                    self.rings.insert(o.name.clone(), r);
                    Ok(0)
                }
                Err(RingError::Kernel(e)) => Err(e),
                Err(e) => return Err(e.to_string()),
            };
            self.note(format!("io_uring_setup(flags {flags:#x}) as {} -> {}", o.name, describe(&got)));
            return self.check(&got, s.expect.as_ref(), &|_| None);
        }
        if let Some(c) = &s.connect {
            return self.connect(c);
        }
        if let Some(x) = &s.send {
            return self.send(x);
        }
        if let Some(x) = &s.shutdown {
            return self.shutdown(x);
        }
        if let Some(x) = &s.recv_zc {
            return self.recv_zc(&ring, x);
        }
        if let Some(x) = &s.expect_cqes {
            return self.expect_cqes(&ring, x);
        }
        if let Some(x) = &s.expect_data {
            return self.expect_data(&ring, x);
        }
        if let Some(x) = &s.drain_data {
            return self.drain_data(&ring, x);
        }
        if let Some(x) = &s.expect_no_cqe {
            return self.expect_no_cqe(&ring, x);
        }
        if let Some(x) = &s.return_buffers {
            return self.return_buffers(x);
        }
        if let Some(x) = &s.rq_push {
            return self.rq_push(x);
        }
        if let Some(x) = &s.rq_set {
            let z = self.zcrx_mut(x.zcrx.as_deref())?;
            let (head, tail) = rq_ptrs(z)?;
            if let Some(t) = x.tail {
                tail.store(t, Ordering::Release);
            }
            if let Some(h) = x.head {
                head.store(h, Ordering::Release);
            }
            self.note(format!("rq_set head={:?} tail={:?}", x.head, x.tail));
            return Ok(());
        }
        if let Some(x) = &s.expect_rq {
            let want_head = x.head.as_ref().map(|v| self.value(v, Ns::Any)).transpose()?;
            let want_tail = x.tail.as_ref().map(|v| self.value(v, Ns::Any)).transpose()?;
            let z = self.zcrx_mut(x.zcrx.as_deref())?;
            let (head, tail) = rq_ptrs(z)?;
            let (h, t, held) = (head.load(Ordering::Acquire), tail.load(Ordering::Acquire), z.held.len());
            self.note(format!("rq head={h} tail={t} held={held}"));
            let r = exact("RQ head", want_head.map(|v| v as u32 as u64), h as u64)
                .and(exact("RQ tail", want_tail.map(|v| v as u32 as u64), t as u64))
                .and(exact("held buffers", x.held.map(|v| v as u64), held as u64));
            return self.verdict("RQ state", r);
        }
        if let Some(x) = &s.expect_stats {
            let z = self.zcrx_mut(x.zcrx.as_deref())?;
            let off = z.stats_offset.ok_or("this zcrx instance was registered without STATS")? as usize;
            let region = z.region.as_ref().ok_or("no RQ region mapped")?;
            let b = region.slice(off, 16).ok_or("stats_offset outside the region")?;
            let count = u64::from_ne_bytes(b[0..8].try_into().map_err(|_| "short")?);
            let bytes = u64::from_ne_bytes(b[8..16].try_into().map_err(|_| "short")?);
            self.note(format!("stats copy_count={count} copy_bytes={bytes}"));
            let r = exact("copy_count", x.copy_count, count).and(exact("copy_bytes", x.copy_bytes, bytes));
            return self.verdict("stats", r);
        }
        if let Some(x) = &s.mmap_region {
            return self.mmap_region(&ring, x, s.expect.as_ref());
        }
        if let Some(t) = &s.tun {
            let fd = crate::kernel::netdev::create_tun(&t.name)?;
            let idx = nix::net::if_::if_nametoindex(t.name.as_str()).map_err(|e| format!("if_nametoindex: {e}"))?;
            self.last.insert(format!("{}.ifindex", t.name), idx as u64);
            self.note(format!("tun device {} (ifindex {idx})", t.name));
            self.fds.insert(format!("{}.tunfd", t.name), fd);
            return Ok(());
        }
        if let Some(e) = &s.ethtool {
            return self.ethtool(e);
        }
        if let Some(n) = &s.nsim {
            return self.nsim(n);
        }
        if let Some(n) = &s.netns {
            if n.new {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("unshare(NEWNET): {e}"))?;
                self.note("moved into a new network namespace".into());
            }
            return Ok(());
        }
        if let Some(x) = &s.close {
            if let Some(r) = &x.ring {
                self.rings.remove(r).ok_or_else(|| format!("no ring `{r}`"))?;
                self.zcrx.retain(|_, z| z.ring != *r);
            }
            if let Some(f) = &x.fd {
                self.fds.remove(f).ok_or_else(|| format!("no fd `{f}`"))?;
            }
            if let Some(c) = &x.conn {
                self.conns.remove(c).ok_or_else(|| format!("no connection `{c}`"))?;
            }
            self.note(format!("close {x:?}"));
            return Ok(());
        }
        Err("step has no action".into())
    }

    /// `$name` references a case may use.
    fn reference(&self, r: &str) -> Option<u64> {
        match r {
            "fault" => return Some(self.fault.addr()),
            "page" => return Some(PAGE as u64),
            "lo" => return Some(crate::topology::loopback_ifindex() as u64),
            "topo.if_idx" => return Some(self.topo.if_idx as u64),
            "topo.if_rxq" => return Some(self.topo.if_rxq as u64),
            "topo.peer_if_idx" => return Some(self.topo.peer_if_idx as u64),
            "topo.queues" => return Some(self.topo.queues as u64),
            _ => {}
        }
        if let Some(v) = self.last.get(r) {
            return Some(*v);
        }
        let (name, attr) = r.split_once('.').unwrap_or((r, ""));
        if let Some(f) = self.fds.get(name) {
            return (attr.is_empty() || attr == "fd").then(|| f.as_raw_fd() as u64);
        }
        if let Some(ring) = self.rings.get(name) {
            return (attr == "fd").then(|| ring.fd() as u64);
        }
        if let Some(c) = self.conns.get(name) {
            return match attr {
                "fd" | "" => Some(c.recv.as_raw_fd() as u64),
                "peer" => c.peer.as_ref().map(|p| p.as_raw_fd() as u64),
                _ => None,
            };
        }
        let z = self.zcrx.get(name)?;
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

    fn value(&self, v: &Value, ns: Ns) -> Result<u64, String> {
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

    /// Compares a syscall result (and read-back values) with the expectation.
    /// Counts an assertion and, in self-check mode, inverts its verdict.
    fn verdict(&self, what: &str, r: StepResult) -> StepResult {
        self.asserts.set(self.asserts.get() + 1);
        match (self.invert, r) {
            (false, r) => r,
            (true, Ok(())) => Err(format!("{INVERTED}#{} ({what})", self.asserts.get())),
            (true, Err(_)) => Ok(()),
        }
    }

    fn check(&self, got: &SysResult, expect: Option<&Expect>, read: &dyn Fn(&str) -> Option<u64>) -> StepResult {
        let r = self.check_raw(got, expect, read);
        self.verdict("syscall result", r)
    }

    fn check_raw(&self, got: &SysResult, expect: Option<&Expect>, read: &dyn Fn(&str) -> Option<u64>) -> StepResult {
        let default = Expect::default();
        let e = expect.unwrap_or(&default);
        let mut errno = e.errno.clone();
        let mut ret = e.ret;
        let mut out = &e.out;
        for k in &e.kernels {
            if self.probe.version_in(k.min.as_deref(), k.max.as_deref()) {
                errno = k.errno.clone();
                ret = k.ret;
                out = &k.out;
                let range = format!("{}..{}", k.min.as_deref().unwrap_or(""), k.max.as_deref().unwrap_or(""));
                self.notes.borrow_mut().push(format!("{KERNEL_SPECIFIC}[{range}] {}", k.why));
                break;
            }
        }
        match (&errno, got) {
            (Some(name), Err(en)) => {
                let want = sys::errno_by_name(name).ok_or_else(|| format!("unknown errno {name}"))?;
                if want != *en {
                    return Err(format!("expected {name}, kernel returned {}", sys::errno_name(*en)));
                }
            }
            (Some(name), Ok(v)) => return Err(format!("expected {name}, kernel returned success ({v})")),
            (None, Err(en)) => return Err(format!("expected success, kernel returned {}", sys::errno_name(*en))),
            (None, Ok(v)) => {
                if let Some(r) = ret {
                    if r != *v {
                        return Err(format!("expected return {r}, kernel returned {v}"));
                    }
                }
            }
        }
        for (k, v) in out {
            let want = self.value(&v.value, Ns::Any)?;
            let have = read(k).ok_or_else(|| format!("cannot read back `{k}` here"))?;
            if want != have {
                return Err(format!("{k}: expected {want:#x} ({want}), kernel wrote {have:#x} ({have})"));
            }
        }
        Ok(())
    }

    fn register(&mut self, ring: &str, r: &Register, expect: Option<&Expect>) -> StepResult {
        let ring_fd = self.ring_fd(ring)?;
        let defs = &self.case.def.zcrx;
        let name = r.name.clone().unwrap_or_else(|| "z0".into());
        let import_fd = match &r.import {
            Some(f) => Some(self.fds.get(f).ok_or_else(|| format!("no exported fd named `{f}`"))?.as_raw_fd()),
            None => None,
        };
        // Size the region from the requested entry count (rounded up like the kernel).
        let rq_req = match r.ifq.get("rq_entries") {
            Some(v) => self.value(&v.value, Ns::Any)? as u32,
            None => defs.rq_entries,
        };
        let entries_eff = (rq_req.max(1) as u64).next_power_of_two().min(65536) as usize;
        let stats_auto = 256 + 16 * entries_eff;
        let region_size = sys::page_align(stats_auto + 16);
        let region_kind = r.region_kind.unwrap_or(defs.region);
        let pages = r.area_pages.unwrap_or(defs.area_pages) as usize;
        let area_mem = Mem::anon(pages.max(1) * PAGE).map_err(|e| format!("harness: area mmap: {e}"))?;
        match r.area_prot {
            Some(AreaProt::Read) => area_mem.protect(libc::PROT_READ).map_err(|e| format!("harness: {e}"))?,
            Some(AreaProt::TailNone) => {
                let last = (pages.max(1) - 1) * PAGE;
                // SAFETY: the last page of our own mapping.
                if unsafe { libc::mprotect(area_mem.as_ptr().add(last) as *mut _, PAGE, libc::PROT_NONE) } != 0 {
                    return Err(format!("harness: mprotect: {}", std::io::Error::last_os_error()));
                }
            }
            None => {}
        }
        let region_mem = match region_kind {
            RegionKind::User => Some(Mem::anon(region_size).map_err(|e| format!("harness: region mmap: {e}"))?),
            RegionKind::Kernel => None,
        };
        self.last.insert("area.addr".into(), area_mem.addr());
        self.last.insert("area.len".into(), (pages * PAGE) as u64);
        self.last.insert("region.addr".into(), region_mem.as_ref().map_or(0, |m| m.addr()));
        self.last.insert("region.size".into(), region_size as u64);
        self.last.insert("stats.auto".into(), stats_auto as u64);

        let mut area = ZcrxAreaReg { addr: area_mem.addr(), len: (pages * PAGE) as u64, ..Default::default() };
        self.apply(as_bytes_mut(&mut area), &AREA_REG, &r.area)?;
        let mut region = match &region_mem {
            Some(m) => RegionDesc {
                user_addr: m.addr(),
                size: region_size as u64,
                flags: IORING_MEM_REGION_TYPE_USER,
                ..Default::default()
            },
            None => RegionDesc { size: region_size as u64, ..Default::default() },
        };
        self.apply(as_bytes_mut(&mut region), &REGION_DESC, &r.region)?;
        let mut event = ZcrxEventDesc::default();
        if let Some(ev) = &r.event {
            let mut ev = ev.clone();
            if let Some(v) = ev.get_mut("stats_offset") {
                if v.value == Value::Str("auto".into()) {
                    v.value = Value::UInt(stats_auto as u64);
                }
            }
            self.apply(as_bytes_mut(&mut event), &EVENT_DESC, &ev)?;
        }
        let ro = |s: &str| r.readonly.iter().any(|x| x == s);
        let area_page = page_mem(ro("area"), as_bytes(&area))?;
        let region_page = page_mem(ro("region"), as_bytes(&region))?;
        let event_page = page_mem(ro("event"), as_bytes(&event))?;
        let mut ifq = match import_fd {
            Some(fd) => ZcrxIfqReg { if_idx: fd as u32, flags: ZCRX_REG_IMPORT, ..Default::default() },
            None => ZcrxIfqReg {
                if_idx: if self.topo.nodev { 0 } else { self.topo.if_idx },
                if_rxq: if self.topo.nodev { 0 } else { self.topo.if_rxq },
                rq_entries: defs.rq_entries,
                flags: if self.topo.nodev { ZCRX_REG_NODEV } else { 0 },
                area_ptr: area_page.addr(),
                region_ptr: region_page.addr(),
                event_desc: if r.event.is_some() { event_page.addr() } else { 0 },
                ..Default::default()
            },
        };
        self.apply(as_bytes_mut(&mut ifq), &IFQ_REG, &r.ifq)?;
        let ifq_page = page_mem(ro("ifq"), as_bytes(&ifq))?;

        self.note(format!("  arg {}", dump(&IFQ_REG, as_bytes(&ifq))));
        if ifq.area_ptr == area_page.addr() {
            self.note(format!("  area_ptr -> {}", dump(&AREA_REG, as_bytes(&area))));
        }
        if ifq.region_ptr == region_page.addr() {
            self.note(format!("  region_ptr -> {}", dump(&REGION_DESC, as_bytes(&region))));
        }
        if ifq.event_desc == event_page.addr() && ifq.event_desc != 0 {
            self.note(format!("  event_desc -> {}", dump(&EVENT_DESC, as_bytes(&event))));
        }
        let mut got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_IFQ, ifq_page.addr(), r.nr_args);
        if let Some(ms) = r.retry_ms {
            let until = Instant::now() + Duration::from_millis(ms);
            let mut tries = 1;
            while matches!(got, Err(libc::EEXIST) | Err(libc::EBUSY)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
                ifq_page.write(0, as_bytes(&ifq));
                got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_IFQ, ifq_page.addr(), r.nr_args);
                tries += 1;
            }
            if tries > 1 {
                self.note(format!("  registration tried {tries} times"));
            }
        }
        let summary = overrides_summary(&[("ifq", &r.ifq), ("area", &r.area), ("region", &r.region)], r.event.as_ref());
        self.note(format!(
            "IORING_REGISTER_ZCRX_IFQ({}{summary}) -> {}",
            if import_fd.is_some() {
                "import"
            } else if self.topo.nodev {
                "nodev"
            } else {
                "netdev"
            },
            describe(&got)
        ));
        let read = |k: &str| -> Option<u64> {
            let (p, f) = k.split_once('.')?;
            let (mem, table) = match p {
                "ifq" => (&ifq_page, &IFQ_REG),
                "area" => (&area_page, &AREA_REG),
                "region" => (&region_page, &REGION_DESC),
                "event" => (&event_page, &EVENT_DESC),
                _ => return None,
            };
            let field = table.get(f)?;
            Some(uapi::read_field(mem.slice(0, table.size)?, field))
        };
        self.check(&got, expect, &read)?;
        if got.is_err() {
            return Ok(());
        }
        // Registered: keep what the data path needs.
        let mut out = ZcrxIfqReg::default();
        as_bytes_mut(&mut out).copy_from_slice(ifq_page.slice(0, IFQ_REG.size).ok_or("short ifq page")?);
        let mut rd = RegionDesc::default();
        as_bytes_mut(&mut rd).copy_from_slice(region_page.slice(0, REGION_DESC.size).ok_or("short region page")?);
        let mut ar = ZcrxAreaReg::default();
        as_bytes_mut(&mut ar).copy_from_slice(area_page.slice(0, AREA_REG.size).ok_or("short area page")?);
        // An import is the same ifq: it shares the exporter's areas and RQ memory (this
        // process holds both), which lets an importer's data be checked byte for byte.
        let exporter = r.import.as_ref().and_then(|f| self.exported_from.get(f)).and_then(|z| self.zcrx.get(z));
        let region = match (region_mem, import_fd) {
            (_, Some(_)) => exporter.and_then(|z| z.region.clone()),
            (Some(m), None) => Some(Rc::new(m)),
            (None, None) => Some(Rc::new(
                Mem::map_fd(ring_fd, rd.size as usize, rd.mmap_offset)
                    .map_err(|e| format!("mmap of the kernel RQ region at {:#x}: {e}", rd.mmap_offset))?,
            )),
        };
        let mut areas = BTreeMap::new();
        if import_fd.is_none() {
            areas.insert(ar.rq_area_token >> IORING_ZCRX_AREA_SHIFT, Rc::new(area_mem));
        } else if let Some(z) = exporter {
            areas = z.areas.clone();
            out.rq_entries = z.rq_entries;
            out.rx_buf_len = 1 << z.buf_shift;
        }
        let stats_offset = match exporter {
            Some(z) => z.stats_offset,
            None => (event.flags & ZCRX_EVENT_DESC_FLAG_STATS != 0).then_some(event.stats_offset),
        };
        let buf_len = if out.rx_buf_len == 0 { PAGE as u32 } else { out.rx_buf_len };
        self.zcrx.insert(
            name.clone(),
            Zcrx {
                ring: ring.to_string(),
                id: out.zcrx_id,
                region,
                region_size: rd.size as usize,
                mmap_offset: if import_fd.is_some() {
                    IORING_MAP_OFF_ZCRX_REGION | ((out.zcrx_id as u64) << IORING_OFF_ZCRX_SHIFT)
                } else {
                    rd.mmap_offset
                },
                offsets: out.offsets,
                rq_entries: out.rq_entries,
                buf_shift: buf_len.trailing_zeros(),
                areas,
                stats_offset,
                held: VecDeque::new(),
                returned: 0,
            },
        );
        self.note(format!(
            "  {name}: id={} rq_entries={} offsets head={} tail={} rqes={} rx_buf_len={} token={:#x} mmap_offset={:#x}",
            out.zcrx_id,
            out.rq_entries,
            out.offsets.head,
            out.offsets.tail,
            out.offsets.rqes,
            out.rx_buf_len,
            ar.rq_area_token,
            rd.mmap_offset
        ));
        Ok(())
    }

    fn zcrx_mut(&mut self, name: Option<&str>) -> Result<&mut Zcrx, String> {
        let n = name.unwrap_or("z0");
        self.zcrx.get_mut(n).ok_or_else(|| format!("no registered zcrx instance `{n}`"))
    }

    fn ctrl_call(&mut self, ring: &str, c: &Ctrl, expect: Option<&Expect>) -> Result<SysResult, String> {
        let ring_fd = self.ring_fd(ring)?;
        let op = self.value(&c.op, Ns::CtrlOp)? as u32;
        let zname = c.zcrx.clone().unwrap_or_else(|| "z0".into());
        let mut ctrl = ZcrxCtrl { zcrx_id: self.zcrx.get(&zname).map_or(0, |z| z.id), op, ..Default::default() };
        let mut new_area = None;
        if op == ZCRX_CTRL_ADD_AREA {
            let pages = c.area_pages.unwrap_or(self.case.def.zcrx.area_pages) as usize;
            let mem = Mem::anon(pages.max(1) * PAGE).map_err(|e| format!("harness: mmap: {e}"))?;
            self.last.insert("new_area.addr".into(), mem.addr());
            let mut a = ZcrxAreaReg { addr: mem.addr(), len: (pages * PAGE) as u64, ..Default::default() };
            self.apply(as_bytes_mut(&mut a), &AREA_REG, &c.area)?;
            let page = page_mem(false, as_bytes(&a))?;
            ctrl.body[0] = page.addr();
            new_area = Some((mem, page));
        }
        self.apply(as_bytes_mut(&mut ctrl), &CTRL, &c.set)?;
        let page = page_mem(c.readonly, as_bytes(&ctrl))?;
        let arg = match &c.arg {
            Some(v) => self.value(v, Ns::Any)?,
            None => page.addr(),
        };
        self.note(format!("  arg {}", dump(&CTRL, as_bytes(&ctrl))));
        let got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_CTRL, arg, c.nr_args);
        self.note(format!(
            "IORING_REGISTER_ZCRX_CTRL(op {op}, zcrx_id {}{}) -> {}",
            ctrl.zcrx_id,
            overrides_summary(&[("set", &c.set), ("area", &c.area)], None),
            describe(&got)
        ));
        let read = |k: &str| -> Option<u64> {
            let (p, f) = k.split_once('.')?;
            match p {
                "ctrl" => Some(uapi::read_field(page.slice(0, CTRL.size)?, CTRL.get(f)?)),
                "area" => {
                    let (_, ap) = new_area.as_ref()?;
                    Some(uapi::read_field(ap.slice(0, AREA_REG.size)?, AREA_REG.get(f)?))
                }
                _ => None,
            }
        };
        self.check(&got, expect, &read)?;
        if got.is_ok() {
            match op {
                ZCRX_CTRL_EXPORT => {
                    let fd = read("ctrl.zc_export.zcrx_fd").ok_or("cannot read zcrx_fd")? as RawFd;
                    if !sys::fd_is_open(fd) {
                        return Err(format!("EXPORT returned fd {fd}, which is not open"));
                    }
                    // SAFETY: the kernel just installed this fd for us.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    let name = c.save_fd.clone().unwrap_or_else(|| "box".into());
                    self.note(format!("  exported fd {fd} saved as ${name} (cloexec={:?})", sys::cloexec(fd)));
                    self.last.insert(format!("{name}.cloexec"), sys::cloexec(fd).unwrap_or(false) as u64);
                    self.exported_from.insert(name.clone(), zname.clone());
                    self.fds.insert(name, owned);
                }
                ZCRX_CTRL_ADD_AREA => {
                    let token = read("area.rq_area_token").ok_or("cannot read the new token")?;
                    if let (Some((mem, _)), Some(z)) = (new_area, self.zcrx.get_mut(&zname)) {
                        z.areas.insert(token >> IORING_ZCRX_AREA_SHIFT, Rc::new(mem));
                    }
                    self.note(format!("  new area token {token:#x}"));
                }
                _ => {}
            }
        }
        Ok(got)
    }

    fn ctrl(&mut self, ring: &str, c: &Ctrl, expect: Option<&Expect>) -> StepResult {
        self.ctrl_call(ring, c, expect).map(drop)
    }

    fn flush(&mut self, zname: &str) -> StepResult {
        let ring = self.zcrx.get(zname).map(|z| z.ring.clone()).ok_or("no zcrx")?;
        let c = Ctrl { op: Value::Str("FLUSH_RQ".into()), zcrx: Some(zname.to_string()), ..Default::default() };
        self.ctrl_call(&ring, &c, None).map(drop)
    }

    fn query(&mut self, ring: &str, q: &Query, expect: Option<&Expect>) -> StepResult {
        let op = self.value(&q.op, Ns::QueryOp)? as u32;
        let data_table = match op {
            IO_URING_QUERY_OPCODES => Some(&QUERY_OPCODES),
            IO_URING_QUERY_ZCRX => Some(&QUERY_ZCRX),
            IO_URING_QUERY_ZCRX_EVENT => Some(&QUERY_ZCRX_EVENT),
            _ => None,
        };
        let n = q.chain.unwrap_or(1).max(1) as usize;
        let hdrs = Mem::anon(n * QUERY_HDR.size).map_err(|e| format!("harness: {e}"))?;
        let data = Mem::anon(PAGE).map_err(|e| format!("harness: {e}"))?;
        for i in 0..n {
            let mut h = QueryHdr {
                next_entry: if i + 1 < n { hdrs.addr() + ((i + 1) * QUERY_HDR.size) as u64 } else { 0 },
                query_data: data.addr(),
                query_op: op,
                size: data_table.map_or(64, |t| t.size as u32),
                ..Default::default()
            };
            self.apply(as_bytes_mut(&mut h), &QUERY_HDR, &q.hdr)?;
            hdrs.write(i * QUERY_HDR.size, as_bytes(&h));
        }
        let fd = if q.on_ring { self.ring_fd(ring)? } else { -1 };
        let got = sys::io_uring_register(fd, IORING_REGISTER_QUERY, hdrs.addr(), q.nr_args);
        let read = |k: &str| -> Option<u64> {
            let (p, f) = k.split_once('.')?;
            match p {
                "hdr" => {
                    let v = uapi::read_field(hdrs.slice(0, QUERY_HDR.size)?, QUERY_HDR.get(f)?);
                    // result is an s32: compare as a sign-extended value.
                    Some(if f == "result" { v as u32 as i32 as i64 as u64 } else { v })
                }
                "data" => {
                    let t = data_table?;
                    Some(uapi::read_field(data.slice(0, t.size)?, t.get(f)?))
                }
                _ => None,
            }
        };
        let result = read("hdr.result").unwrap_or(0) as i64;
        self.note(format!(
            "IORING_REGISTER_QUERY(fd {fd}, op {op}, chain {n}, nr_args {}) -> {} hdr.result={}",
            q.nr_args,
            describe(&got),
            sys::res_name(result)
        ));
        self.check(&got, expect, &read)
    }

    fn mmap_region(&mut self, ring: &str, x: &MmapRegion, expect: Option<&Expect>) -> StepResult {
        let ring_fd = self.ring_fd(ring)?;
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let (def_off, size) = match self.zcrx.get(&zname) {
            Some(z) => (z.mmap_offset, z.region_size.max(PAGE)),
            None => (IORING_MAP_OFF_ZCRX_REGION, PAGE),
        };
        let off = match &x.offset {
            Some(v) => self.value(v, Ns::Any)?,
            None => def_off,
        };
        let (got, mem) = match Mem::map_fd(ring_fd, size, off) {
            Ok(m) => (Ok(0), Some(m)),
            Err(e) => (Err(e.raw_os_error().unwrap_or(libc::EIO)), None),
        };
        self.note(format!("mmap(ring, offset {off:#x}, {size}) -> {}", describe(&got)));
        self.check(&got, expect, &|_| None)?;
        if let (Some(m), Some(z)) = (mem, self.zcrx.get_mut(&zname)) {
            if z.region.is_none() {
                z.region = Some(Rc::new(m));
            }
        }
        Ok(())
    }

    /// Changes DUT settings the topology allows (restored by the runner after the case).
    fn ethtool(&mut self, e: &crate::topology::Settings) -> StepResult {
        let et = self.topo.ethtool.clone().ok_or(format!("{SKIP_PREFIX}no ethtool for this topology"))?;
        let dev = self.topo.dut_dev.clone().ok_or(format!("{SKIP_PREFIX}topology {} has no device", self.topo.name))?;
        for (name, set) in [
            ("tcp-data-split", e.tcp_data_split.is_some()),
            ("hds-thresh", e.hds_thresh.is_some()),
            ("combined", e.combined.is_some()),
        ] {
            if set && !self.topo.may_change.iter().any(|m| m == name) {
                return Err(format!("{SKIP_PREFIX}topology {} does not allow changing {name}", self.topo.name));
            }
        }
        // Our thread is in the DUT namespace; ethtool inherits it.
        crate::topology::apply_settings(&et, None, &dev, e)?;
        self.note(format!("ethtool {dev}: {e:?}"));
        Ok(())
    }

    /// netdevsim-zcrx debugfs knobs and counters.
    fn nsim(&mut self, n: &Nsim) -> StepResult {
        let dir = self
            .topo
            .debugfs
            .clone()
            .map(|d| d.join("hds"))
            .filter(|d| d.is_dir())
            .ok_or(format!("{SKIP_PREFIX}topology {} has no netdevsim hds/ debugfs knobs", self.topo.name))?;
        let write =
            |f: &str, v: String| std::fs::write(dir.join(f), v).map_err(|e| format!("{}/{f}: {e}", dir.display()));
        let read = |f: &str| -> Result<u64, String> {
            std::fs::read_to_string(dir.join(f))
                .map_err(|e| format!("{}/{f}: {e}", dir.display()))?
                .trim()
                .parse()
                .map_err(|_| format!("{}/{f}: not a number", dir.display()))
        };
        if n.reset {
            write("split", "0".into())?;
            write("fallback", "0".into())?;
        }
        if let Some(b) = n.netmem_budget {
            write("netmem_budget", b.to_string())?;
        }
        if n.split.is_some() || n.fallback.is_some() || n.split_at_least.is_some() {
            let (sp, fb) = (read("split")?, read("fallback")?);
            self.note(format!("netdevsim hds: split={sp} fallback={fb}"));
            let mut r = exact("split", n.split, sp).and(exact("fallback", n.fallback, fb));
            if let Some(min) = n.split_at_least {
                if sp < min {
                    r = r.and(Err(format!("split: expected at least {min}, found {sp}")));
                }
            }
            return self.verdict("netdevsim counters", r);
        }
        Ok(())
    }

    fn connect(&mut self, c: &Connect) -> StepResult {
        let name = c.name.clone().unwrap_or_else(|| "c0".into());
        let io = |e: std::io::Error| format!("harness: {e}");
        let (recv, peer): (OwnedFd, OwnedFd) = match c.kind {
            ConnKind::Tcp => {
                let l = TcpListener::bind((self.topo.dut_addr.as_str(), 0)).map_err(io)?;
                let addr = l.local_addr().map_err(io)?;
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
                (server.into(), client.into())
            }
            ConnKind::Udp => {
                let a = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
                let b = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
                b.connect(a.local_addr().map_err(io)?).map_err(io)?;
                (a.into(), b.into())
            }
            ConnKind::Unix => {
                let (a, b) = UnixStream::pair().map_err(io)?;
                (a.into(), b.into())
            }
            ConnKind::Pipe => {
                let (r, w) = nix::unistd::pipe().map_err(|e| format!("harness: pipe: {e}"))?;
                (r, w)
            }
        };
        self.note(format!("connect {name} ({:?}): recv fd {}, peer fd {}", c.kind, recv.as_raw_fd(), peer.as_raw_fd()));
        self.conns.insert(name, Conn { recv, peer: Some(peer), sent: 0, received: 0, senders: Vec::new() });
        Ok(())
    }

    fn send(&mut self, x: &Send) -> StepResult {
        let name = x.conn.clone().unwrap_or_else(|| "c0".into());
        let c = self.conns.get_mut(&name).ok_or_else(|| format!("no connection `{name}`"))?;
        let peer = c.peer.as_ref().ok_or("the peer is closed")?.try_clone().map_err(|e| format!("harness: {e}"))?;
        let start = c.sent;
        let total = x.bytes;
        let chunk = x.chunk.unwrap_or(65536).max(1);
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
        c.senders.push(h);
        self.note(format!("send {total} bytes on {name} (pattern offset {start})"));
        Ok(())
    }

    fn shutdown(&mut self, x: &Shutdown) -> StepResult {
        let name = x.conn.clone().unwrap_or_else(|| "c0".into());
        let c = self.conns.get_mut(&name).ok_or_else(|| format!("no connection `{name}`"))?;
        for h in c.senders.drain(..) {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("sender failed: {e}")),
                Err(_) => return Err("sender thread panicked".into()),
            }
        }
        if x.close {
            c.peer = None;
        } else if let Some(p) = &c.peer {
            nix::sys::socket::shutdown(p.as_raw_fd(), nix::sys::socket::Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
        }
        self.note(format!("{} peer of {name}", if x.close { "close" } else { "shutdown(SHUT_WR)" }));
        Ok(())
    }

    fn recv_zc(&mut self, ring: &str, x: &RecvZc) -> StepResult {
        let conn = x.conn.clone().unwrap_or_else(|| "c0".into());
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let fd = self.conns.get(&conn).map(|c| c.recv.as_raw_fd()).unwrap_or(-1);
        let ud = x.user_data.unwrap_or(1);
        let mut sqe = Sqe {
            opcode: IORING_OP_RECV_ZC,
            ioprio: IORING_RECV_MULTISHOT,
            fd,
            len: x.len,
            user_data: ud,
            zcrx_ifq_idx: self.zcrx.get(&zname).map_or(0, |z| z.id),
            ..Default::default()
        };
        self.apply(as_bytes_mut(&mut sqe), &SQE, &x.sqe)?;
        let r = self.rings.get_mut(ring).ok_or_else(|| format!("no ring `{ring}`"))?;
        let got = r.submit_sqe(&sqe);
        self.note(format!(
            "RECV_ZC submit(fd {}, len {}, ioprio {:#x}, zcrx {}, ud {ud}{}) -> {:?}",
            sqe.fd,
            sqe.len,
            sqe.ioprio,
            sqe.zcrx_ifq_idx,
            overrides_summary(&[("sqe", &x.sqe)], None),
            got
        ));
        match got {
            Ok(1) => {}
            Ok(n) => return Err(format!("io_uring_enter submitted {n} SQEs, expected 1")),
            Err(e) => return Err(format!("io_uring_enter: {}", sys::errno_name(e))),
        }
        self.recvs.insert(ud, Recv { conn, zcrx: zname, sqe });
        Ok(())
    }

    /// The next CQE with this user_data (or any, if None), waiting until the deadline.
    fn next_cqe(&mut self, ring: &str, ud: Option<u64>, deadline: Instant) -> Result<Option<Cqe>, String> {
        loop {
            if let Some(i) = self.pending.iter().position(|c| ud.is_none_or(|u| c.user_data == u)) {
                return Ok(self.pending.remove(i));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let r = self.rings.get_mut(ring).ok_or_else(|| format!("no ring `{ring}`"))?;
            let got = r
                .wait((deadline - now).min(Duration::from_millis(100)))
                .map_err(|e| format!("io_uring_enter: {}", sys::errno_name(e)))?;
            self.pending.extend(got);
        }
    }

    /// A CQE's flags without the CQE_MIXED framing bit (F_32), which is checked apart.
    fn plain_flags(&self, ring: &str, c: &Cqe) -> u32 {
        if self.ring_mixed(ring) {
            c.flags & !IORING_CQE_F_32
        } else {
            c.flags
        }
    }

    /// Hands a just-received buffer back as the step's recycling mode says.
    fn recycle(&mut self, zname: &str, mode: Recycle) -> StepResult {
        if mode == Recycle::None {
            return Ok(());
        }
        self.recycle_held(zname)?;
        if mode == Recycle::Flush {
            self.flush(zname)?;
        }
        Ok(())
    }

    fn ring_mixed(&self, ring: &str) -> bool {
        self.rings.get(ring).is_some_and(|r| r.mixed)
    }

    /// Compares one CQE's res and flags; F_32 on mixed rings is checked separately.
    fn check_cqe(&self, ring: &str, c: &Cqe, e: &CqeExpect, what: &str) -> StepResult {
        let r = self.check_cqe_raw(ring, c, e, what);
        self.verdict(what, r)
    }

    fn check_cqe_raw(&self, ring: &str, c: &Cqe, e: &CqeExpect, what: &str) -> StepResult {
        let want_res = self.value(&e.res, Ns::Res)? as i64 as i32;
        let mut want_flags = 0u32;
        for f in &e.flags {
            want_flags |= consts::lookup(Ns::CqeFlags, f).ok_or_else(|| format!("unknown flag {f}"))? as u32;
        }
        let mut flags = c.flags;
        if self.ring_mixed(ring) && c.big.is_some() {
            flags &= !IORING_CQE_F_32;
        }
        if c.res != want_res || flags != want_flags {
            return Err(format!(
                "{what}: expected res={} flags={}, kernel posted res={} flags={} (user_data {:#x})",
                sys::res_name(want_res as i64),
                flag_names(want_flags),
                sys::res_name(c.res as i64),
                flag_names(flags),
                c.user_data
            ));
        }
        Ok(())
    }

    /// Verifies a data CQE: zcrx_cqe pad, area, bounds, buffer boundary and payload.
    fn take_data(&mut self, ring: &str, ud: u64, c: &Cqe, areas_ok: &[u64]) -> StepResult {
        let r = self.take_data_raw(ring, ud, c, areas_ok);
        self.verdict("data CQE payload", r)
    }

    fn take_data_raw(&mut self, ring: &str, ud: u64, c: &Cqe, areas_ok: &[u64]) -> StepResult {
        let rv = self.recvs.get(&ud).cloned().ok_or_else(|| format!("no RECV_ZC with user_data {ud}"))?;
        if self.ring_mixed(ring) && c.flags & IORING_CQE_F_32 == 0 {
            return Err("data CQE on a CQE_MIXED ring without IORING_CQE_F_32".into());
        }
        let big = c.big.ok_or("data CQE without the 32-byte zcrx payload")?;
        let (off, pad) = (big[0], big[1]);
        if pad != 0 {
            return Err(format!("io_uring_zcrx_cqe.__pad = {pad:#x}, expected 0"));
        }
        let z = self.zcrx.get(&rv.zcrx).ok_or_else(|| format!("no zcrx `{}`", rv.zcrx))?;
        let area = off >> IORING_ZCRX_AREA_SHIFT;
        if !areas_ok.contains(&area) {
            return Err(format!("CQE off {off:#x} names area {area}, expected one of {areas_ok:?}"));
        }
        let mem = z.areas.get(&area).ok_or_else(|| format!("CQE off {off:#x} names unknown area {area}"))?;
        let in_area = (off & !IORING_ZCRX_AREA_MASK) as usize;
        let len = c.res as usize;
        let buf = 1usize << z.buf_shift;
        if (in_area % buf) + len > buf {
            return Err(format!("CQE off {off:#x} len {len} crosses a {buf}-byte buffer boundary"));
        }
        let got = mem.slice(in_area, len).ok_or_else(|| format!("CQE off {off:#x}+{len} is outside the area"))?;
        let conn = self.conns.get_mut(&rv.conn).ok_or("connection gone")?;
        let want = pattern(conn.received, len);
        if got != want.as_slice() {
            let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
            return Err(format!(
                "payload mismatch at stream byte {} (CQE off {off:#x}+{i}): got {:#04x}, sent {:#04x}",
                conn.received + i as u64,
                got[i],
                want[i]
            ));
        }
        conn.received += len as u64;
        if let Some(z) = self.zcrx.get_mut(&rv.zcrx) {
            z.held.push_back(off);
        }
        Ok(())
    }

    fn expect_cqes(&mut self, ring: &str, x: &ExpectCqes) -> StepResult {
        let ud = x.user_data.unwrap_or(1);
        let deadline = Instant::now() + Duration::from_millis(x.timeout_ms.unwrap_or(5000));
        for (i, e) in x.cqes.iter().enumerate() {
            let c = self.next_cqe(ring, Some(ud), deadline)?.ok_or_else(|| {
                format!("timed out waiting for CQE #{} (user_data {ud:#x}, expected res={})", i + 1, e.res)
            })?;
            self.note(format!(
                "CQE ud={:#x} res={} flags={}",
                c.user_data,
                sys::res_name(c.res as i64),
                flag_names(c.flags)
            ));
            self.check_cqe(ring, &c, e, &format!("CQE #{}", i + 1))?;
            if e.data {
                self.take_data(ring, ud, &c, &[0])?;
            }
        }
        Ok(())
    }

    fn expect_data(&mut self, ring: &str, x: &ExpectData) -> StepResult {
        let ud = x.user_data.unwrap_or(1);
        let timeout = Duration::from_millis(x.timeout_ms.unwrap_or(10000));
        let mut deadline = Instant::now() + timeout;
        let zname =
            self.recvs.get(&ud).map(|r| r.zcrx.clone()).ok_or_else(|| format!("no RECV_ZC with user_data {ud}"))?;
        let mut got = 0u64;
        let mut ncqe = 0u64;
        let mut rearms = 0u32;
        while got < x.bytes {
            let c = self
                .next_cqe(ring, Some(ud), deadline)?
                .ok_or_else(|| format!("timed out after {got} of {} bytes ({ncqe} data CQEs)", x.bytes))?;
            let flags = self.plain_flags(ring, &c);
            if x.rearm && x.recycle != Recycle::None && c.res == -libc::ENOMEM && flags == 0 && rearms < 10_000 {
                let held = self.zcrx.get(&zname).map_or(0, |z| z.held.len());
                self.return_held(&zname, held)?;
                self.flush(&zname)?;
                let sqe = self.recvs.get(&ud).map(|r| r.sqe).ok_or("RECV_ZC gone")?;
                let r = self.rings.get_mut(ring).ok_or_else(|| format!("no ring `{ring}`"))?;
                r.submit_sqe(&sqe).map_err(|e| format!("re-arming RECV_ZC: {}", sys::errno_name(e)))?;
                rearms += 1;
                continue;
            }
            let shape = if c.res <= 0 || flags != IORING_CQE_F_MORE {
                Err(format!(
                    "after {got} of {} bytes: expected a data CQE (res>0, flags=MORE), kernel posted res={} flags={}",
                    x.bytes,
                    sys::res_name(c.res as i64),
                    flag_names(flags)
                ))
            } else {
                Ok(())
            };
            self.verdict("data CQE shape", shape)?;
            if c.res <= 0 {
                return Err("self-check: an inverted data CQE shape check cannot go on".into());
            }
            let areas = if x.areas.is_empty() { vec![0] } else { x.areas.clone() };
            self.take_data(ring, ud, &c, &areas)?;
            got += c.res as u64;
            ncqe += 1;
            if got > x.bytes {
                return Err(format!("received {got} bytes, more than the {} expected", x.bytes));
            }
            self.recycle(&zname, x.recycle)?;
            // Progress extends the deadline: the timeout bounds a stall, not the transfer.
            deadline = Instant::now() + timeout;
        }
        self.note(format!(
            "received {got} bytes in {ncqe} data CQEs, payload identical to the pattern ({rearms} re-arms after -ENOMEM)"
        ));
        if let Some(f) = &x.final_cqe {
            let c = self
                .next_cqe(ring, Some(ud), deadline)?
                .ok_or_else(|| format!("timed out waiting for the final CQE (expected res={})", f.res))?;
            self.note(format!("final CQE res={} flags={}", sys::res_name(c.res as i64), flag_names(c.flags)));
            self.check_cqe(ring, &c, f, "final CQE")?;
        }
        Ok(())
    }

    fn drain_data(&mut self, ring: &str, x: &DrainData) -> StepResult {
        let ud = x.user_data.unwrap_or(1);
        let zname =
            self.recvs.get(&ud).map(|r| r.zcrx.clone()).ok_or_else(|| format!("no RECV_ZC with user_data {ud}"))?;
        let (mut got, mut n) = (0u64, 0u64);
        let mut last: Option<Cqe> = None;
        loop {
            let deadline = Instant::now() + Duration::from_millis(x.idle_ms);
            let Some(c) = self.next_cqe(ring, Some(ud), deadline)? else { break };
            let flags = self.plain_flags(ring, &c);
            if c.res <= 0 || flags != IORING_CQE_F_MORE {
                last = Some(c);
                break;
            }
            self.take_data(ring, ud, &c, &[0])?;
            got += c.res as u64;
            n += 1;
            self.recycle(&zname, x.recycle)?;
        }
        self.note(format!(
            "drained {got} bytes in {n} data CQEs, payload identical to the pattern; ended by {}",
            last.map_or("silence".to_string(), |c| format!(
                "res={} flags={}",
                sys::res_name(c.res as i64),
                flag_names(c.flags)
            ))
        ));
        let r = exact_min("bytes", x.min_bytes, got);
        self.verdict("drained bytes", r)?;
        match (&x.final_cqe, last) {
            (Some(f), Some(c)) => self.check_cqe(ring, &c, f, "final CQE"),
            (Some(f), None) => {
                self.verdict("final CQE", Err(format!("the request did not end (expected res={})", f.res)))
            }
            (None, Some(c)) => self.verdict(
                "request still armed",
                Err(format!(
                    "the request ended with res={} flags={}",
                    sys::res_name(c.res as i64),
                    flag_names(c.flags)
                )),
            ),
            (None, None) => Ok(()),
        }
    }

    fn expect_no_cqe(&mut self, ring: &str, x: &ExpectNoCqe) -> StepResult {
        let deadline = Instant::now() + Duration::from_millis(x.wait_ms);
        let r = match self.next_cqe(ring, x.user_data, deadline)? {
            Some(c) => Err(format!(
                "expected no CQE, kernel posted ud={:#x} res={} flags={}",
                c.user_data,
                sys::res_name(c.res as i64),
                flag_names(c.flags)
            )),
            None => {
                self.note(format!("no CQE within {} ms", x.wait_ms));
                Ok(())
            }
        };
        self.verdict("no CQE", r)
    }

    /// Writes RQEs for the oldest `n` held buffers and publishes the tail.
    fn return_held(&mut self, zname: &str, n: usize) -> StepResult {
        let z = self.zcrx.get_mut(zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let offs: Vec<u64> = (0..n.min(z.held.len())).filter_map(|_| z.held.pop_front()).collect();
        let buf = 1u32 << z.buf_shift;
        let rqes: Vec<ZcrxRqe> = offs.iter().map(|&off| ZcrxRqe { off, len: buf, pad: 0 }).collect();
        push_rqes(z, &rqes)
    }

    /// Recycling: returns as many held buffers as the RQ has room for (tail - head <
    /// rq_entries), oldest first; the rest stay held until the kernel consumed entries.
    /// Writing past a full RQ would overwrite entries the kernel has not read yet.
    fn recycle_held(&mut self, zname: &str) -> StepResult {
        let z = self.zcrx.get_mut(zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let (head, tail) = rq_ptrs(z)?;
        let used = tail.load(Ordering::Relaxed).wrapping_sub(head.load(Ordering::Acquire));
        let room = z.rq_entries.saturating_sub(used) as usize;
        let n = room.min(z.held.len());
        let offs: Vec<u64> = (0..n).filter_map(|_| z.held.pop_front()).collect();
        let buf = 1u32 << z.buf_shift;
        let rqes: Vec<ZcrxRqe> = offs.iter().map(|&off| ZcrxRqe { off, len: buf, pad: 0 }).collect();
        push_rqes(z, &rqes)
    }

    fn return_buffers(&mut self, x: &ReturnBuffers) -> StepResult {
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let held = self.zcrx.get(&zname).map(|z| z.held.len()).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let n = x.count.unwrap_or(held);
        if n > held {
            return Err(format!("asked to return {n} buffers, only {held} held"));
        }
        self.return_held(&zname, n)?;
        self.note(format!("returned {n} buffers to the RQ of {zname}"));
        if x.flush {
            self.flush(&zname)?;
        }
        Ok(())
    }

    fn rq_push(&mut self, x: &RqPush) -> StepResult {
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let mut rqes = Vec::new();
        {
            let z = self.zcrx.get(&zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
            for e in &x.entries {
                let off = if let Some(h) = e.held {
                    *z.held.get(h).ok_or_else(|| format!("no held buffer #{h} (holding {})", z.held.len()))?
                } else if let Some(v) = &e.off {
                    self.value(v, Ns::Any)?
                } else {
                    (e.area.unwrap_or(0) << IORING_ZCRX_AREA_SHIFT) | (e.index.unwrap_or(0) << z.buf_shift)
                };
                for _ in 0..e.repeat.unwrap_or(1) {
                    rqes.push(ZcrxRqe { off, len: e.len, pad: e.pad });
                }
            }
        }
        let z = self.zcrx.get_mut(&zname).ok_or("no zcrx")?;
        // Entries naming held buffers hand them back.
        for e in &x.entries {
            if let Some(h) = e.held {
                if let Some(off) = z.held.get(h).copied() {
                    if let Some(p) = z.held.iter().position(|&o| o == off) {
                        z.held.remove(p);
                    }
                }
            }
        }
        push_rqes(z, &rqes)?;
        self.note(format!(
            "rq_push {} entries: {:?}",
            rqes.len(),
            rqes.iter().map(|r| (r.off, r.pad)).collect::<Vec<_>>()
        ));
        if x.flush {
            self.flush(&zname)?;
        }
        Ok(())
    }
}

fn rq_ptrs(z: &Zcrx) -> Result<(&std::sync::atomic::AtomicU32, &std::sync::atomic::AtomicU32), String> {
    let region = z.region.as_ref().ok_or("no RQ region mapped for this zcrx instance")?;
    let head = region.atomic_u32(z.offsets.head as usize).ok_or("RQ head offset outside the region")?;
    let tail = region.atomic_u32(z.offsets.tail as usize).ok_or("RQ tail offset outside the region")?;
    Ok((head, tail))
}

fn push_rqes(z: &mut Zcrx, rqes: &[ZcrxRqe]) -> StepResult {
    if rqes.is_empty() {
        return Ok(());
    }
    let region = z.region.as_ref().ok_or("no RQ region mapped for this zcrx instance")?;
    let (_, tail) = rq_ptrs(z)?;
    let mask = z.rq_entries.checked_sub(1).ok_or("rq_entries is 0")?;
    let mut t = tail.load(Ordering::Relaxed);
    for r in rqes {
        let slot = z.offsets.rqes as usize + (t & mask) as usize * 16;
        if !region.write(slot, as_bytes(r)) {
            return Err("RQE slot outside the region".into());
        }
        t = t.wrapping_add(1);
    }
    tail.store(t, Ordering::Release);
    z.returned += rqes.len() as u64;
    Ok(())
}

fn exact_min(what: &str, min: u64, have: u64) -> StepResult {
    if have < min {
        return Err(format!("{what}: expected at least {min}, found {have}"));
    }
    Ok(())
}

fn exact(what: &str, want: Option<u64>, have: u64) -> StepResult {
    match want {
        Some(w) if w != have => Err(format!("{what}: expected {w}, found {have}")),
        _ => Ok(()),
    }
}

/// `struct{field=value, ...}` with the nonzero fields (the union of zcrx_ctrl shown as words).
pub fn dump(t: &FieldTable, bytes: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut covered = vec![false; t.size];
    for f in t.fields {
        if covered[f.offset..f.offset + f.size].iter().any(|c| *c) {
            continue;
        }
        let v = uapi::read_field(bytes, f);
        if v != 0 {
            parts.push(format!("{}={v:#x}", f.name));
            covered[f.offset..f.offset + f.size].iter_mut().for_each(|c| *c = true);
        }
    }
    format!("{}{{{}}}", t.name, parts.join(", "))
}

pub fn flag_names(flags: u32) -> String {
    if flags == 0 {
        return "[]".into();
    }
    let mut v = Vec::new();
    let mut rest = flags;
    for (n, bit) in [
        ("BUFFER", IORING_CQE_F_BUFFER),
        ("MORE", IORING_CQE_F_MORE),
        ("SOCK_NONEMPTY", IORING_CQE_F_SOCK_NONEMPTY),
        ("NOTIF", IORING_CQE_F_NOTIF),
        ("SKIP", IORING_CQE_F_SKIP),
        ("F_32", IORING_CQE_F_32),
    ] {
        if flags & bit != 0 {
            v.push(n.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    format!("[{}]", v.join(","))
}

fn overrides_summary(groups: &[(&str, &Overrides)], event: Option<&Overrides>) -> String {
    let mut parts = Vec::new();
    for (g, ov) in groups {
        for (k, v) in ov.iter() {
            parts.push(format!("{g}.{k}={}", v.value));
        }
    }
    if let Some(ev) = event {
        parts.push("event_desc".into());
        for (k, v) in ev {
            parts.push(format!("event.{k}={}", v.value));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
