//! The `stress` step: a race repeated in rounds (issue 25 item 3). Each round builds fresh
//! state — a ring, a registration on the topology's queue, TCP connections whose sender
//! threads write the pattern, a multishot RECV_ZC on each — and runs the case's racing
//! operations (`case::RaceOp`) against the data path. The ring's thread is its only issuer
//! (DEFER_TASKRUN): it receives, checks every byte, returns every buffer through the RQ at once
//! and makes the ring's racing calls; the page pool refills from that RQ in the senders'
//! softirq on the other CPU; importer threads receive through rings of their own. Threads
//! report typed results ([`Broke`], [`SenderEnd`]); the round's checks go through
//! `Ctx::verdict` in a fixed order, so self-check can invert each.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex};

use super::*;
use crate::kernel::zcrx::{Instance, Readonly, Target};

/// How long a round may go without a byte arriving on any stream before it counts as stalled.
const STALL: Duration = Duration::from_secs(15);
/// How long a registration waits for the previous round's instance to let the queue go
/// (teardown is asynchronous; set-up, not an assertion).
const QUEUE_WAIT: Duration = Duration::from_secs(30);
/// Bytes a sender writes at a time.
const CHUNK: u64 = 65536;

/// What broke in a round: the first thing each check saw.
#[derive(Debug, Clone, thiserror::Error)]
enum Broke {
    #[error("stream {conn}: payload mismatch at stream byte {at}: got {got:#04x}, sent {want:#04x}")]
    Payload { conn: usize, at: u64, got: u8, want: u8 },
    #[error("stream {conn}: data CQE off {off:#x} len {len}: {what}")]
    Shape { conn: usize, off: u64, len: i32, what: &'static str },
    #[error("stream {conn}: RECV_ZC ended with res {} flags {} after {received} of {bytes} bytes", sys::res_name(*res as i64), flag_names(*flags))]
    End { conn: usize, res: i32, flags: u32, received: u64, bytes: u64 },
    #[error("a CQE with user_data {ud} names no request of the round")]
    Stray { ud: u64 },
    #[error("{op}: {}", sys::errno_name(*errno))]
    Call { op: &'static str, errno: i32 },
    #[error("no byte arrived for {}s: received {received:?} of {bytes} bytes per stream", STALL.as_secs())]
    Stalled { received: Vec<u64>, bytes: u64 },
    #[error("sender {conn} failed after {sent} bytes: {}", sys::errno_name(*errno))]
    Sender { conn: usize, sent: u64, errno: i32 },
    #[error("importer: {0}")]
    Importer(Box<Broke>),
}

/// How a sender thread ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SenderEnd {
    /// Wrote every byte and shut its side down.
    Done,
    /// Told to stop (the round ended first); a write error after that counts here too.
    Stopped,
    /// A write failed while the round was still running.
    Failed(i32),
}

/// A mapped range of user memory the kernel writes (the exporter's areas), readable from any
/// thread of the round; the round keeps the mapping until every thread has been joined.
#[derive(Clone, Copy)]
struct View {
    addr: usize,
    len: usize,
}

impl View {
    fn of(m: &Mem) -> View {
        View { addr: m.addr() as usize, len: m.len() }
    }

    fn slice(&self, off: usize, len: usize) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        // SAFETY: the range is inside a mapping the round keeps alive until every reader joined.
        (end <= self.len).then(|| unsafe { std::slice::from_raw_parts((self.addr + off) as *const u8, len) })
    }
}

/// The RQ, shared by the ring's thread and the importers (one lock around the tail).
struct SharedRq {
    region: View,
    head: usize,
    tail: usize,
    rqes: usize,
    entries: u32,
    lock: Mutex<()>,
}

impl SharedRq {
    fn word(&self, off: usize) -> Option<&AtomicU32> {
        self.region.slice(off, 4)?;
        // SAFETY: inside the mapping (checked above), aligned by the kernel's offsets.
        Some(unsafe { AtomicU32::from_ptr((self.region.addr + off) as *mut u32) })
    }

    /// Publishes as many of `rqes` as fit; returns how many.
    fn push(&self, rqes: &[ZcrxRqe]) -> usize {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(head), Some(tail)) = (self.word(self.head), self.word(self.tail)) else { return 0 };
        let mut t = tail.load(Ordering::Relaxed);
        let room = self.entries.saturating_sub(t.wrapping_sub(head.load(Ordering::Acquire))) as usize;
        let n = room.min(rqes.len());
        for r in &rqes[..n] {
            let slot = self.rqes + (t & (self.entries - 1)) as usize * std::mem::size_of::<ZcrxRqe>();
            if self.region.slice(slot, 16).is_none() {
                return 0;
            }
            // SAFETY: the slot is inside the region (checked above).
            unsafe { std::ptr::copy_nonoverlapping(as_bytes(r).as_ptr(), (self.region.addr + slot) as *mut u8, 16) };
            t = t.wrapping_add(1);
        }
        tail.store(t, Ordering::Release);
        n
    }
}

/// One receiving stream of the round.
struct Stream {
    base: u64,
    received: u64,
    eof: bool,
    /// The multishot receive ended with -ENOMEM (the area ran dry while the stream's buffers
    /// were out): once they are back in the RQ the receive is armed again.
    rearm: bool,
}

impl Stream {
    /// Checks a data CQE against the stream's next bytes and returns its RQE.
    fn take(&mut self, conn: usize, c: &Cqe, areas: &BTreeMap<u64, View>, buf_len: u32) -> Result<ZcrxRqe, Broke> {
        let shape = |off: u64, what: &'static str| Broke::Shape { conn, off, len: c.res, what };
        let big = c.big.ok_or_else(|| shape(0, "no 32-byte zcrx payload"))?;
        let off = big[0];
        if big[1] != 0 {
            return Err(shape(off, "io_uring_zcrx_cqe.__pad is not 0"));
        }
        let area = areas.get(&(off >> IORING_ZCRX_AREA_SHIFT)).ok_or_else(|| shape(off, "names no area"))?;
        let (in_area, len) = ((off & !IORING_ZCRX_AREA_MASK) as usize, c.res as usize);
        if (in_area % buf_len as usize) + len > buf_len as usize {
            return Err(shape(off, "crosses a buffer boundary"));
        }
        let got = area.slice(in_area, len).ok_or_else(|| shape(off, "outside the area"))?;
        let want = pattern(self.base + self.received, len);
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            return Err(Broke::Payload { conn, at: self.received + i as u64, got: got[i], want: want[i] });
        }
        self.received += len as u64;
        Ok(crate::kernel::zcrx::Rq::rqe(off, buf_len))
    }

    /// A CQE of this stream's request: data (F_MORE) or its end: EOF after every byte, or
    /// -ENOMEM when every buffer of the area was out (several streams share it; on the copy
    /// path, io_zcrx_copy_chunk, the receive then ends and must be armed again, as
    /// drain.area_exhausted shows). Any other end fails the round.
    fn on_cqe(
        &mut self,
        conn: usize,
        c: &Cqe,
        bytes: u64,
        areas: &BTreeMap<u64, View>,
        buf_len: u32,
        out: &mut Vec<ZcrxRqe>,
    ) -> Result<(), Broke> {
        if c.flags & IORING_CQE_F_MORE != 0 && c.res > 0 {
            out.push(self.take(conn, c, areas, buf_len)?);
            return Ok(());
        }
        if c.res == 0 && c.flags & IORING_CQE_F_MORE == 0 && self.received == bytes && !self.eof {
            self.eof = true;
            return Ok(());
        }
        if c.res == -libc::ENOMEM && c.flags & IORING_CQE_F_MORE == 0 && !self.eof && !self.rearm {
            self.rearm = true;
            return Ok(());
        }
        Err(Broke::End { conn, res: c.res, flags: c.flags, received: self.received, bytes })
    }
}

/// A small xorshift generator for the random points (its seed is logged).
struct Rng(u64);

impl Rng {
    fn between(&mut self, [lo, hi]: [u32; 2]) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo as u64 + self.0 % (hi as u64 - lo as u64 + 1))
    }
}

/// A sender: connects from the peer's namespace, waits for `go`, writes `bytes` of the
/// pattern from `base` and shuts down, unless `stop` comes first.
fn sender(
    addr: SocketAddr,
    ns: Option<PathBuf>,
    base: u64,
    bytes: u64,
    go: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<(SenderEnd, u64), String> {
    if let Some(ns) = &ns {
        crate::topology::enter(ns).map_err(|e| e.to_string())?;
    }
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_write_timeout(Some(Duration::from_millis(100))).map_err(|e| e.to_string())?;
    while !go.load(Ordering::Acquire) {
        if stop.load(Ordering::Acquire) {
            return Ok((SenderEnd::Stopped, 0));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut sent = 0u64;
    while sent < bytes {
        let chunk = pattern(base + sent, CHUNK.min(bytes - sent) as usize);
        let mut done = 0;
        while done < chunk.len() {
            match s.write(&chunk[done..]) {
                Ok(n) => done += n,
                Err(_) if stop.load(Ordering::Acquire) => return Ok((SenderEnd::Stopped, sent + done as u64)),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Ok((SenderEnd::Failed(e.raw_os_error().unwrap_or(libc::EIO)), sent + done as u64)),
            }
        }
        sent += chunk.len() as u64;
    }
    match s.shutdown(std::net::Shutdown::Write) {
        Ok(()) => Ok((SenderEnd::Done, sent)),
        Err(_) if stop.load(Ordering::Acquire) => Ok((SenderEnd::Stopped, sent)),
        Err(e) => Ok((SenderEnd::Failed(e.raw_os_error().unwrap_or(libc::EIO)), sent)),
    }
}

/// What an importer thread needs.
struct ImporterArgs {
    box_fd: OwnedFd,
    sock: OwnedFd,
    ring: (u32, u32, Option<u32>),
    area: View,
    buf_len: u32,
    base: u64,
    bytes: u64,
    sqe_flags: u8,
    close_after: Duration,
    rq: Arc<SharedRq>,
    stop: Arc<AtomicBool>,
}

/// An importer: imports on its own ring, receives on its stream (every byte checked, every
/// buffer returned through the shared RQ) and closes its ring after `close_after`.
fn importer(a: ImporterArgs) -> Result<u64, Broke> {
    let start = Instant::now();
    let (entries, flags, cq) = a.ring;
    let mut ring = Ring::new(entries, flags, cq).map_err(|e| match e {
        RingError::Kernel(errno) => Broke::Call { op: "importer io_uring_setup", errno },
        RingError::Unsupported(_) => Broke::Call { op: "importer io_uring_setup", errno: libc::EINVAL },
    })?;
    let spec = crate::kernel::zcrx::Spec {
        target: Target::Import(a.box_fd.as_raw_fd()),
        rq_entries: 0,
        area_pages: 1,
        region: crate::kernel::zcrx::RegionMem::User,
    };
    let mut reg = crate::kernel::zcrx::Registration::new(spec)
        .map_err(|_| Broke::Call { op: "importer mmap", errno: libc::ENOMEM })?;
    reg.register(ring.fd()).map_err(|errno| Broke::Call { op: "ZCRX_REG_IMPORT", errno })?;
    drop(a.box_fd);
    let sqe = Sqe {
        opcode: IORING_OP_RECV_ZC,
        flags: a.sqe_flags,
        ioprio: IORING_RECV_MULTISHOT,
        fd: a.sock.as_raw_fd(),
        user_data: 1,
        zcrx_ifq_idx: reg.ifq.zcrx_id,
        ..Default::default()
    };
    ring.submit_sqe(&sqe).map_err(|errno| Broke::Call { op: "importer RECV_ZC submit", errno })?;
    let areas = BTreeMap::from([(0u64, a.area)]);
    let mut s = Stream { base: a.base, received: 0, eof: false, rearm: false };
    let mut back = Vec::new();
    while start.elapsed() < a.close_after && !a.stop.load(Ordering::Acquire) && !s.eof {
        let cqes = ring
            .wait(Duration::from_millis(2))
            .map_err(|errno| Broke::Call { op: "importer io_uring_enter", errno })?;
        for c in &cqes {
            if c.user_data != 1 {
                return Err(Broke::Stray { ud: c.user_data });
            }
            s.on_cqe(0, c, a.bytes, &areas, a.buf_len, &mut back)?;
        }
        let n = a.rq.push(&back);
        back.drain(..n);
        if std::mem::take(&mut s.rearm) {
            ring.submit_sqe(&sqe).map_err(|errno| Broke::Call { op: "importer RECV_ZC re-arm", errno })?;
        }
    }
    drop(ring);
    Ok(s.received)
}

/// The checks of one round, in the order they are judged.
#[derive(Default)]
struct Round {
    setup: Option<Broke>,
    data: Option<Broke>,
    calls: Option<Broke>,
    /// Some when the round had to complete every stream.
    complete: Option<Option<Broke>>,
    importers: Option<Option<Broke>>,
    senders: Option<Broke>,
    log: String,
}

fn first(slot: &mut Option<Broke>, b: Broke) {
    slot.get_or_insert(b);
}

impl Ctx<'_> {
    pub(super) fn stress(&mut self, x: &Stress) -> StepResult {
        let now_ns =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let seed = now_ns ^ ((std::process::id() as u64) << 32) ^ 0x9E37_79B9_7F4A_7C15;
        let mut rng = Rng(seed | 1);
        let began = Instant::now();
        let until = began + Duration::from_secs(x.seconds as u64);
        self.note(format!("stress {:?}: up to {} rounds or {} s (seed {seed:#x})", x.race, x.rounds, x.seconds));
        let mut n = 0;
        while n < x.rounds && (n == 0 || Instant::now() < until) {
            n += 1;
            let r = self.stress_round(x, &mut rng)?;
            let judge = |b: Option<Broke>| b.map_or(Ok(()), |b| Err(StepError::from(format!("round {n}: {b}"))));
            self.verdict("stress: each round's ring, registration and RECV_ZC set up", judge(r.setup))?;
            self.verdict("stress: every data CQE is the stream's next bytes, and no other CQE", judge(r.data))?;
            self.verdict("stress: the racing calls (FLUSH_RQ, ADD_AREA, EXPORT) return 0", judge(r.calls))?;
            if let Some(c) = r.complete {
                self.verdict("stress: every stream complete, then EOF (res 0)", judge(c))?;
            }
            if let Some(i) = r.importers {
                self.verdict("stress: each importer receives its stream's bytes", judge(i))?;
            }
            self.verdict("stress: every sender ends done, or stopped at the round's end", judge(r.senders))?;
            if n == 1 || n == x.rounds {
                self.note(format!("round {n}: {}", r.log));
            }
        }
        self.note(format!("stress: {n} round(s) in {:.1} s, 0 failures", began.elapsed().as_secs_f64()));
        Ok(())
    }

    /// One round; `Err` only for the harness's own failures.
    fn stress_round(&mut self, x: &Stress, rng: &mut Rng) -> Result<Round, StepError> {
        let mut r = Round::default();
        let d = &self.case.def;
        let flags = setup_flags(&d.ring.flags)?;
        let ring_spec = (d.ring.entries, flags, d.ring.cq_entries);
        let mut ring = match Ring::new(ring_spec.0, ring_spec.1, ring_spec.2) {
            Ok(ring) => Some(ring),
            Err(e) => return Err(harness(format!("stress ring: {e}"))),
        };
        let ring_fd = ring.as_ref().map_or(-1, |r| r.fd());
        let mut reg = self.default_registration(&Register::default(), None)?;
        let args = reg.place(Readonly::default()).map_err(|e| harness(format!("mmap: {e}")))?;
        let wait = matches!(reg.spec.target, Target::Netdev { .. }).then_some(QUEUE_WAIT);
        let (got, tries) = reg.call(ring_fd, &args, 1, wait);
        if let Err(errno) = got {
            r.setup = Some(Broke::Call { op: "IORING_REGISTER_ZCRX_IFQ", errno });
            return Ok(r);
        }
        let inst: Instance = reg.finish(ring_fd).map_err(|e| harness(format!("region: {e}")))?;
        let Some(rq) = inst.rq.as_ref() else { return Err(harness("registration without an RQ")) };
        let rq = Arc::new(SharedRq {
            region: View::of(rq.region()),
            head: inst.offsets.head as usize,
            tail: inst.offsets.tail as usize,
            rqes: inst.offsets.rqes as usize,
            entries: inst.rq_entries,
            lock: Mutex::new(()),
        });
        let mut areas = BTreeMap::from([(inst.area_token >> IORING_ZCRX_AREA_SHIFT, View::of(&inst.area))]);
        let mut keep: Vec<Mem> = Vec::new();
        let ctrl = |op: u32, body0: u64| -> (SysResult, ZcrxCtrl) {
            let mut c = ZcrxCtrl { zcrx_id: inst.id, op, ..Default::default() };
            c.body[0] = body0;
            let Ok(page) = page_mem(false, as_bytes(&c)) else { return (Err(libc::ENOMEM), c) };
            let got = sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_CTRL, page.addr(), 0);
            if let Some(b) = page.slice(0, std::mem::size_of::<ZcrxCtrl>()) {
                as_bytes_mut(&mut c).copy_from_slice(b);
            }
            (got, c)
        };
        let mut box_fd = None;
        if x.race.iter().any(|o| o.needs_export()) {
            match ctrl(ZCRX_CTRL_EXPORT, 0) {
                // SAFETY: the kernel just installed this descriptor for us.
                (Ok(_), c) => box_fd = Some(unsafe { OwnedFd::from_raw_fd(c.body[0] as u32 as RawFd) }),
                (Err(errno), _) => r.setup = Some(Broke::Call { op: "ZCRX_CTRL_EXPORT", errno }),
            }
        }
        // Connections: the ring's streams, then one per importer.
        let (go, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let importers = if x.has(RaceOp::Importer) { 1 } else { 0 };
        let total = x.connections() as usize + importers;
        let mut socks = Vec::new();
        let mut senders = Vec::new();
        for i in 0..total {
            let l = TcpListener::bind((self.topo.dut_addr.as_str(), 0)).map_err(|e| harness(format!("listen: {e}")))?;
            let addr = l.local_addr().map_err(|e| harness(e.to_string()))?;
            let (ns, base, bytes) = (self.topo.peer_netns.clone(), (i as u64) << 40, x.bytes());
            let (g, s) = (go.clone(), stop.clone());
            senders.push(std::thread::spawn(move || sender(addr, ns, base, bytes, g, s)));
            let (sock, _) = l.accept().map_err(|e| harness(format!("accept: {e}")))?;
            socks.push(OwnedFd::from(sock));
        }
        let sqe_flags = if x.async_recv { IOSQE_ASYNC } else { 0 };
        let mut streams: Vec<Stream> = Vec::new();
        let mut sqes: Vec<Sqe> = Vec::new();
        for (i, sock) in socks.iter().enumerate().take(x.connections() as usize) {
            let sqe = Sqe {
                opcode: IORING_OP_RECV_ZC,
                flags: sqe_flags,
                ioprio: IORING_RECV_MULTISHOT,
                fd: sock.as_raw_fd(),
                user_data: i as u64 + 1,
                zcrx_ifq_idx: inst.id,
                ..Default::default()
            };
            if let Some(Err(errno)) = ring.as_mut().map(|ring| ring.submit_sqe(&sqe)) {
                first(&mut r.setup, Broke::Call { op: "RECV_ZC submit", errno });
            }
            streams.push(Stream { base: (i as u64) << 40, received: 0, eof: false, rearm: false });
            sqes.push(sqe);
        }
        let start = Instant::now();
        let mut imps = Vec::new();
        if let (true, Some(b)) = (importers > 0, box_fd.as_ref()) {
            let imp_box = b.try_clone().map_err(|e| harness(format!("dup: {e}")))?;
            let i = x.connections() as usize;
            let a = ImporterArgs {
                box_fd: imp_box,
                sock: socks[i].try_clone().map_err(|e| harness(format!("dup: {e}")))?,
                ring: ring_spec,
                area: View::of(&inst.area),
                buf_len: inst.buf_len,
                base: (i as u64) << 40,
                bytes: x.bytes(),
                sqe_flags,
                close_after: rng.between(x.at_ms()),
                rq: rq.clone(),
                stop: stop.clone(),
            };
            imps.push(std::thread::spawn(move || importer(a)));
        }
        go.store(true, Ordering::Release);
        let close_at =
            x.race.iter().any(|o| o.cuts() || *o == RaceOp::CloseExport).then(|| start + rng.between(x.at_ms()));
        let mut add_at = x.has(RaceOp::AddArea).then(|| start + rng.between(x.at_ms()));
        let (mut back, mut last_progress, mut closed) = (Vec::new(), Instant::now(), false);
        let mut flushes = 0u64;
        while r.setup.is_none() && r.data.is_none() && r.calls.is_none() {
            let now = Instant::now();
            if close_at.is_some_and(|t| now >= t) {
                if x.has(RaceOp::CloseRing) && ring.is_some() {
                    ring = None;
                    closed = true;
                    break;
                }
                if x.has(RaceOp::CloseExport) {
                    box_fd = None;
                }
            }
            if add_at.is_some_and(|t| now >= t) {
                add_at = None;
                let pages = self.case.def.zcrx.area_pages as usize;
                let mem = Mem::anon(pages.max(1) * page()).map_err(|e| harness(format!("mmap: {e}")))?;
                let a = ZcrxAreaReg { addr: mem.addr(), len: (pages * page()) as u64, ..Default::default() };
                let ap = page_mem(false, as_bytes(&a))?;
                match ctrl(ZCRX_CTRL_ADD_AREA, ap.addr()) {
                    (Ok(_), _) => {
                        let token = ap.slice(16, 8).map_or(0, |b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])));
                        areas.insert(token >> IORING_ZCRX_AREA_SHIFT, View::of(&mem));
                        keep.push(mem);
                    }
                    (Err(errno), _) => first(&mut r.calls, Broke::Call { op: "ZCRX_CTRL_ADD_AREA", errno }),
                }
            }
            if streams.iter().all(|s| s.eof) && close_at.is_none_or(|t| now >= t) {
                break;
            }
            if now - last_progress > STALL {
                r.data =
                    Some(Broke::Stalled { received: streams.iter().map(|s| s.received).collect(), bytes: x.bytes() });
                break;
            }
            let Some(rg) = ring.as_mut() else { break };
            let cqes = match rg.wait(Duration::from_millis(2)) {
                Ok(c) => c,
                Err(errno) => {
                    r.calls = Some(Broke::Call { op: "io_uring_enter", errno });
                    break;
                }
            };
            for c in &cqes {
                let i = (c.user_data as usize).wrapping_sub(1);
                let Some(s) = streams.get_mut(i) else {
                    first(&mut r.data, Broke::Stray { ud: c.user_data });
                    break;
                };
                if let Err(b) = s.on_cqe(i, c, x.bytes(), &areas, inst.buf_len, &mut back) {
                    first(&mut r.data, b);
                    break;
                }
                last_progress = Instant::now();
            }
            let n = rq.push(&back);
            back.drain(..n);
            for (s, sqe) in streams.iter_mut().zip(&sqes) {
                if std::mem::take(&mut s.rearm) {
                    if let Some(Err(errno)) = ring.as_mut().map(|ring| ring.submit_sqe(sqe)) {
                        first(&mut r.data, Broke::Call { op: "RECV_ZC re-arm", errno });
                    }
                }
            }
            // With an importer the RQ also takes its returns: flush every pass, not only after ours.
            if x.has(RaceOp::FlushRq) && (n > 0 || importers > 0) {
                flushes += 1;
                if let (Err(errno), _) = ctrl(ZCRX_CTRL_FLUSH_RQ, 0) {
                    first(&mut r.calls, Broke::Call { op: "ZCRX_CTRL_FLUSH_RQ", errno });
                }
            }
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Release);
        drop(ring);
        drop(box_fd);
        drop(socks);
        if !closed && !x.race.iter().any(|o| o.cuts()) {
            let short = streams.iter().enumerate().find(|(_, s)| !s.eof);
            r.complete = Some(short.map(|(i, s)| Broke::End {
                conn: i,
                res: 0,
                flags: 0,
                received: s.received,
                bytes: x.bytes(),
            }));
        }
        for (i, h) in senders.into_iter().enumerate() {
            match h.join().map_err(|_| harness("sender thread panicked"))?.map_err(harness)? {
                (SenderEnd::Done, _) | (SenderEnd::Stopped, _) => {}
                (SenderEnd::Failed(errno), sent) => first(&mut r.senders, Broke::Sender { conn: i, sent, errno }),
            }
        }
        if !imps.is_empty() {
            let mut bad = None;
            for h in imps {
                if let Err(b) = h.join().map_err(|_| harness("importer thread panicked"))? {
                    bad.get_or_insert(Broke::Importer(Box::new(b)));
                }
            }
            r.importers = Some(bad);
        } else if importers > 0 && r.setup.is_none() {
            r.importers = Some(Some(Broke::Call { op: "importer start", errno: libc::EBADF }));
        }
        let got: Vec<u64> = streams.iter().map(|s| s.received).collect();
        r.log = format!(
            "{tries} registration tries, {elapsed:.1?}, received {got:?}, {flushes} flushes{}",
            if closed { ", ring closed" } else { "" }
        );
        drop(keep);
        drop(inst);
        Ok(r)
    }
}
