//! The `importer` step: another process that receives through an instance it is handed, the
//! way one application passes a zcrx instance to another. The process is forked holding
//! nothing of the case's (every inherited descriptor is closed, so the case's rings and files
//! stay the case's alone); the exported file and the receiving socket reach it over a Unix
//! socket with SCM_RIGHTS. It imports the instance on a ring of its own, arms a multishot
//! RECV_ZC and reports every CQE back as a fixed-size record; the case checks the bytes in the
//! exporter's area, which it keeps mapped (the process keeps the buffers, so they stay put).

use std::io::{IoSlice, IoSliceMut};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::sys::wait::WaitStatus;
use nix::unistd::ForkResult;

use super::process::{fork_tied, readable, reap_within, Proc, EXIT_LIMIT};
use super::*;
use crate::kernel::zcrx::{RegionMem, Registration, Spec, Target};

/// How long the process may take to import and arm its request.
const START_LIMIT: Duration = Duration::from_secs(15);
/// One record: kind (u32), res (i32), flags (u32), 4 spare bytes, off (u64).
const RECORD: usize = 24;
const KIND_STARTED: u32 = 0;
const KIND_CQE: u32 = 1;

/// A started importer, as the case sees it (the process is released and reaped like a
/// `process` step's when it goes).
pub(super) struct Imp {
    proc: Proc,
    sock: OwnedFd,
    conn: String,
    /// The exporter's areas (kept mapped even if the exporter's ring is closed) and buffer size.
    areas: BTreeMap<u64, Rc<Mem>>,
    buf_shift: u32,
    /// Bytes read from the socket that do not make a whole record yet.
    partial: Vec<u8>,
}

struct Record {
    kind: u32,
    res: i32,
    flags: u32,
    off: u64,
}

fn encode(r: &Record) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    b[0..4].copy_from_slice(&r.kind.to_ne_bytes());
    b[4..8].copy_from_slice(&r.res.to_ne_bytes());
    b[8..12].copy_from_slice(&r.flags.to_ne_bytes());
    b[16..24].copy_from_slice(&r.off.to_ne_bytes());
    b
}

fn decode(b: &[u8]) -> Record {
    let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut off = [0u8; 8];
    off.copy_from_slice(&b[16..24]);
    Record { kind: word(0), res: word(4) as i32, flags: word(8), off: u64::from_ne_bytes(off) }
}

/// What the child reports when it cannot start (the `res` of its STARTED record).
const NO_FDS: i32 = -1001;
const NO_RING: i32 = -1002;
const NO_SUBMIT: i32 = -1003;

/// The child's whole life: never returns.
fn child(sock: OwnedFd, release: OwnedFd, ring_spec: (u32, u32, Option<u32>)) -> ! {
    let send = |r: Record| {
        let b = encode(&r);
        // SAFETY: writing our own buffer to our own socket.
        unsafe { libc::write(sock.as_raw_fd(), b.as_ptr().cast(), RECORD) };
    };
    let started = |res: i32, id: u32| Record { kind: KIND_STARTED, res, flags: id, off: 0 };
    // The exported file and the socket, over SCM_RIGHTS.
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let mut fds: Vec<RawFd> = Vec::new();
    if readable(&sock, START_LIMIT) {
        let mut iov = [IoSliceMut::new(&mut byte)];
        if let Ok(msg) = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            for c in msg.cmsgs().into_iter().flatten() {
                if let ControlMessageOwned::ScmRights(v) = c {
                    fds.extend(v);
                }
            }
        }
    }
    let [file, socket] = fds[..] else {
        send(started(NO_FDS, 0));
        // SAFETY: leaving without running destructors.
        unsafe { libc::_exit(1) }
    };
    let (entries, flags, cq_entries) = ring_spec;
    let Ok(mut ring) = Ring::new(entries, flags, cq_entries) else {
        send(started(NO_RING, 0));
        // SAFETY: as above.
        unsafe { libc::_exit(1) }
    };
    let spec = Spec { target: Target::Import(file), rq_entries: 1, area_pages: 1, region: RegionMem::User };
    let (code, id) = match Registration::new(spec) {
        Err(_) => (NO_RING, 0),
        Ok(mut reg) => match reg.register(ring.fd()) {
            Ok(_) => (0, reg.ifq.zcrx_id),
            Err(e) => (e, 0),
        },
    };
    // The import holds its own reference: the file is not needed any more.
    // SAFETY: the descriptor came to us over SCM_RIGHTS and is ours.
    unsafe { libc::close(file) };
    if code != 0 {
        send(started(code, 0));
        // SAFETY: as above.
        unsafe { libc::_exit(0) }
    }
    let sqe = Sqe {
        opcode: IORING_OP_RECV_ZC,
        ioprio: IORING_RECV_MULTISHOT,
        fd: socket,
        user_data: 1,
        zcrx_ifq_idx: id,
        ..Default::default()
    };
    if ring.submit_sqe(&sqe) != Ok(1) {
        send(started(NO_SUBMIT, id));
        // SAFETY: as above.
        unsafe { libc::_exit(1) }
    }
    send(started(0, id));
    loop {
        if let Ok(cqes) = ring.wait(Duration::from_millis(20)) {
            for c in cqes {
                let off = c.big.map_or(u64::MAX, |b| b[0]);
                send(Record { kind: KIND_CQE, res: c.res, flags: c.flags, off });
            }
        }
        if readable(&release, Duration::ZERO) {
            // Released (or the case is gone): leave without closing anything.
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
    }
}

impl Ctx<'_> {
    pub(super) fn importer(&mut self, x: &Importer) -> StepResult {
        match (&x.start, &x.receive, &x.exit, &x.kill) {
            (Some(p), None, None, None) => self.importer_start(p, x),
            (None, Some(p), None, None) => self.importer_receive(p, x),
            (None, None, Some(p), None) => self.importer_end(p, false),
            (None, None, None, Some(p)) => self.importer_end(p, true),
            _ => Err(harness("importer: exactly one of start, receive, exit, kill")),
        }
    }

    fn importer_start(&mut self, name: &str, x: &Importer) -> StepResult {
        if self.importers.contains_key(name) {
            return Err(format!("importer `{name}` is already running").into());
        }
        let fd_name = x.fd.as_deref().ok_or_else(|| harness("importer start needs `fd`"))?;
        let conn = x.conn.clone().unwrap_or_else(|| "c0".into());
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let file = self.st.fds.get(fd_name).ok_or_else(|| format!("no fd named `{fd_name}`"))?.as_raw_fd();
        let socket = self.st.conns.get(&conn).ok_or_else(|| format!("no connection `{conn}`"))?.recv.as_raw_fd();
        let z = self.st.zcrx.get(&zname).ok_or_else(|| format!("no zcrx `{zname}`"))?;
        let (areas, buf_shift) = (z.areas.clone(), z.buf_shift);
        let d = &self.case.def;
        let ring_spec = (d.ring.entries, setup_flags(&d.ring.flags)?, d.ring.cq_entries);
        let (mine, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| harness(format!("socketpair: {e}")))?;
        let (rel_r, rel_w) = sys::cloexec_pipe()?;
        // SAFETY: the child closes what it inherited and runs only `child`, which leaves with _exit.
        match unsafe { fork_tied() }? {
            ForkResult::Child => {
                drop(mine);
                drop(rel_w);
                let keep = [theirs.as_raw_fd(), rel_r.as_raw_fd()];
                let top = sys::highest_fd().unwrap_or(1023);
                for fd in 3..=top {
                    if !keep.contains(&fd) {
                        // SAFETY: the inherited descriptors are closed unread; the objects that
                        // own them in this copy of the case are never dropped (the child leaves
                        // with _exit).
                        unsafe { libc::close(fd) };
                    }
                }
                child(theirs, rel_r, ring_spec)
            }
            ForkResult::Parent { child } => {
                drop(theirs);
                drop(rel_r);
                let mut imp = Imp {
                    proc: Proc { pid: child, release: Some(rel_w) },
                    sock: mine,
                    conn: conn.clone(),
                    areas,
                    buf_shift,
                    partial: Vec::new(),
                };
                let fds = [file, socket];
                let cmsg = [ControlMessage::ScmRights(&fds)];
                sendmsg::<()>(imp.sock.as_raw_fd(), &[IoSlice::new(&[0u8])], &cmsg, MsgFlags::empty(), None)
                    .map_err(|e| harness(format!("sendmsg(SCM_RIGHTS): {e}")))?;
                let first = imp.next_record(Instant::now() + START_LIMIT)?;
                let Some(r) = first.filter(|r| r.kind == KIND_STARTED) else {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    return Err(harness(format!("importer {name} (pid {child}) did not start")));
                };
                self.importers.insert(name.to_string(), imp);
                let res =
                    match r.res {
                        NO_FDS => return Err(harness(format!("importer {name}: no descriptors arrived"))),
                        NO_RING => return Err(harness(format!("importer {name}: io_uring_setup failed"))),
                        NO_SUBMIT => return Err(harness(format!("importer {name}: could not submit RECV_ZC"))),
                        0 => Ok(()),
                        e => Err(format!("ZCRX_REG_IMPORT in importer {name}: kernel returned {}", sys::errno_name(e))
                            .into()),
                    };
                self.note(format!(
                    "importer {name} (pid {child}): {fd_name} and {conn} passed by SCM_RIGHTS; import -> {}, RECV_ZC armed on zcrx id {}",
                    if r.res == 0 { "ok".to_string() } else { sys::errno_name(r.res) },
                    r.flags
                ));
                self.verdict("import in another process", res)
            }
        }
    }

    fn importer_receive(&mut self, name: &str, x: &Importer) -> StepResult {
        let want = x.bytes.ok_or_else(|| harness("importer receive needs `bytes`"))?;
        let timeout = Duration::from_millis(x.timeout_ms.unwrap_or(10_000));
        let mut imp = self.importers.remove(name).ok_or_else(|| format!("no importer named `{name}` is running"))?;
        let r = self.importer_take(&mut imp, name, want, timeout);
        self.importers.insert(name.to_string(), imp);
        r
    }

    fn importer_take(&mut self, imp: &mut Imp, name: &str, want: u64, timeout: Duration) -> StepResult {
        let conn = self.st.conns.get(&imp.conn).ok_or("connection gone")?;
        let (base, mut at) = (conn.base, conn.received);
        let (mut got, mut n) = (0u64, 0u64);
        let mut deadline = Instant::now() + timeout;
        while got < want {
            let r = imp
                .next_record(deadline)?
                .ok_or_else(|| format!("importer {name}: timed out after {got} of {want} bytes ({n} data CQEs)"))?;
            let shape = if r.res <= 0 || r.flags & !IORING_CQE_F_32 != IORING_CQE_F_MORE {
                Err(format!(
                    "importer {name}, after {got} of {want} bytes: expected a data CQE (res>0, flags=MORE), kernel posted res={} flags={}",
                    sys::res_name(r.res as i64),
                    flag_names(r.flags)
                )
                .into())
            } else {
                Ok(())
            };
            self.verdict("importer data CQE shape", shape)?;
            let len = r.res as usize;
            let same = match imp.bytes_at(r.off, len).map(|b| b == pattern(base + at, len).as_slice()) {
                Err(e) => Err(e.into()),
                Ok(true) => Ok(()),
                Ok(false) => Err(format!(
                    "importer {name}: CQE off {:#x} len {len}: the exporter's area does not hold stream bytes {at}..",
                    r.off
                )
                .into()),
            };
            self.verdict("importer data CQE payload", same)?;
            got += len as u64;
            at += len as u64;
            n += 1;
            deadline = Instant::now() + timeout;
        }
        if let Some(c) = self.st.conns.get_mut(&imp.conn) {
            c.received = at;
        }
        let r =
            if got == want { Ok(()) } else { Err(format!("importer {name}: {got} bytes, more than {want}").into()) };
        self.verdict("importer byte count", r)?;
        self.note(format!("importer {name}: received {got} bytes in {n} data CQEs, payload identical to the stream"));
        Ok(())
    }

    fn importer_end(&mut self, name: &str, kill: bool) -> StepResult {
        let mut imp = self.importers.remove(name).ok_or_else(|| format!("no importer named `{name}` is running"))?;
        if kill {
            nix::sys::signal::kill(imp.proc.pid, nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| harness(format!("kill({}): {e}", imp.proc.pid)))?;
        }
        imp.proc.release.take();
        let status = reap_within(imp.proc.pid, EXIT_LIMIT)?;
        self.note(format!("importer {name} (pid {}) ended: {status:?}", imp.proc.pid));
        let r = match (kill, status) {
            (false, Some(WaitStatus::Exited(_, 0))) => Ok(()),
            (true, Some(WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _))) => Ok(()),
            (_, None) => {
                let _ = nix::sys::signal::kill(imp.proc.pid, nix::sys::signal::Signal::SIGKILL);
                Err(format!("importer {name} did not end within {} s", EXIT_LIMIT.as_secs()).into())
            }
            (_, Some(s)) => Err(format!("importer {name} ended with {s:?}").into()),
        };
        self.verdict("importer end", r)
    }
}

impl Imp {
    /// The next record the process sent, waiting until `deadline`.
    fn next_record(&mut self, deadline: Instant) -> Result<Option<Record>, StepError> {
        loop {
            if self.partial.len() >= RECORD {
                let r = decode(&self.partial[..RECORD]);
                self.partial.drain(..RECORD);
                return Ok(Some(r));
            }
            let now = Instant::now();
            if now >= deadline || !readable(&self.sock, deadline - now) {
                return Ok(None);
            }
            let mut buf = [0u8; 64 * RECORD];
            let n = nix::unistd::read(&self.sock, &mut buf).map_err(|e| harness(format!("importer socket: {e}")))?;
            if n == 0 {
                return Ok(None);
            }
            self.partial.extend_from_slice(&buf[..n]);
        }
    }

    /// `len` bytes at a CQE's offset in the exporter's area, checked against its bounds.
    fn bytes_at(&self, off: u64, len: usize) -> Result<&[u8], String> {
        let area = off >> IORING_ZCRX_AREA_SHIFT;
        let mem =
            self.areas.get(&area).ok_or_else(|| format!("CQE off {off:#x} names area {area}, not the exporter's"))?;
        let at = (off & !IORING_ZCRX_AREA_MASK) as usize;
        let buf = 1usize << self.buf_shift;
        if (at % buf) + len > buf {
            return Err(format!("CQE off {off:#x} len {len} crosses a {buf}-byte buffer boundary"));
        }
        mem.slice(at, len).ok_or_else(|| format!("CQE off {off:#x}+{len} is outside the exporter's area"))
    }
}
