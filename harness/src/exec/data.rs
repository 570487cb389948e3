//! The data path: RECV_ZC submission, waiting for CQEs, and the checks of data CQEs (shape,
//! zcrx_cqe, area, bounds and every payload byte against the sender's pattern).

use super::*;
use crate::kernel::tcpstate::{self, TcpState};
use crate::model::{Answer, Mismatch};

impl Ctx<'_> {
    pub(super) fn recv_zc(&mut self, ring: &str, x: &RecvZc) -> StepResult {
        let conn = x.conn.clone().unwrap_or_else(|| "c0".into());
        let zname = x.zcrx.clone().unwrap_or_else(|| "z0".into());
        let fd = self.st.conns.get(&conn).map(|c| c.recv.as_raw_fd()).unwrap_or(-1);
        let ud = x.user_data.unwrap_or(1);
        let mut sqe = Sqe {
            opcode: IORING_OP_RECV_ZC,
            ioprio: IORING_RECV_MULTISHOT,
            fd,
            len: x.len,
            user_data: ud,
            zcrx_ifq_idx: self.st.zcrx.get(&zname).map_or(0, |z| z.id),
            ..Default::default()
        };
        self.apply(as_bytes_mut(&mut sqe), &SQE, &x.sqe)?;
        let r = self.st.rings.get_mut(ring).ok_or_else(|| format!("no ring `{ring}`"))?;
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
            Ok(n) => return Err(format!("io_uring_enter submitted {n} SQEs, expected 1").into()),
            // Typed, so that a fault sweep of the submission sees the errno (EAGAIN: no request
            // could be allocated).
            Err(e) => {
                let m = Mismatch {
                    what: "io_uring_enter".into(),
                    expected: Answer::Success(Some(1)),
                    observed: Answer::Errno(sys::errno_name(e)),
                };
                return Err(StepError::mismatch(m, format!("io_uring_enter: {}", sys::errno_name(e))));
            }
        }
        self.st.recvs.insert(ud, Recv { conn, zcrx: zname, sqe });
        Ok(())
    }

    /// The next CQE with this user_data (or any, if None), waiting until the deadline.
    pub(super) fn next_cqe(&mut self, ring: &str, ud: Option<u64>, deadline: Instant) -> Result<Option<Cqe>, String> {
        loop {
            if let Some(i) = self.st.pending.iter().position(|c| ud.is_none_or(|u| c.user_data == u)) {
                return Ok(self.st.pending.remove(i));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let r = self.st.rings.get_mut(ring).ok_or_else(|| format!("no ring `{ring}`"))?;
            let got = r
                .wait((deadline - now).min(Duration::from_millis(100)))
                .map_err(|e| format!("io_uring_enter: {}", sys::errno_name(e)))?;
            self.st.pending.extend(got);
        }
    }

    /// A CQE's flags without the CQE_MIXED framing bit (F_32), which is checked apart.
    pub(super) fn plain_flags(&self, ring: &str, c: &Cqe) -> u32 {
        if self.ring_mixed(ring) {
            c.flags & !IORING_CQE_F_32
        } else {
            c.flags
        }
    }

    pub(super) fn ring_mixed(&self, ring: &str) -> bool {
        self.st.rings.get(ring).is_some_and(|r| r.mixed)
    }

    /// Verifies a data CQE: it names no buffer range user space still holds (a buffer handed
    /// out twice), then zcrx_cqe pad, area, bounds, buffer boundary and payload.
    pub(super) fn take_data(&mut self, ring: &str, ud: u64, c: &Cqe, areas_ok: &[u64]) -> StepResult {
        let r = self.not_held(ud, c);
        self.verdict("data CQE names no held buffer", r)?;
        let r = self.take_data_raw(ring, ud, c, areas_ok);
        self.verdict("data CQE payload", r)
    }

    fn not_held(&self, ud: u64, c: &Cqe) -> StepResult {
        let rv = self.st.recvs.get(&ud).ok_or_else(|| format!("no RECV_ZC with user_data {ud}"))?;
        let (Some(big), Some(z)) = (c.big, self.st.zcrx.get(&rv.zcrx)) else { return Ok(()) };
        let (off, len) = (big[0], c.res.max(0) as u64);
        match z.held.iter().find(|h| off < h.off + h.len as u64 && h.off < off + len) {
            Some(h) => Err(format!(
                "CQE off {off:#x} len {len} overlaps buffer {:#x} len {} that user space still holds (handed out twice)",
                h.off, h.len
            )
            .into()),
            None => Ok(()),
        }
    }

    pub(super) fn take_data_raw(&mut self, ring: &str, ud: u64, c: &Cqe, areas_ok: &[u64]) -> StepResult {
        let rv = self.st.recvs.get(&ud).cloned().ok_or_else(|| format!("no RECV_ZC with user_data {ud}"))?;
        if self.ring_mixed(ring) && c.flags & IORING_CQE_F_32 == 0 {
            return Err("data CQE on a CQE_MIXED ring without IORING_CQE_F_32".into());
        }
        let big = c.big.ok_or("data CQE without the 32-byte zcrx payload")?;
        let (off, pad) = (big[0], big[1]);
        if pad != 0 {
            return Err(format!("io_uring_zcrx_cqe.__pad = {pad:#x}, expected 0").into());
        }
        let z = self.st.zcrx.get(&rv.zcrx).ok_or_else(|| format!("no zcrx `{}`", rv.zcrx))?;
        let area = off >> IORING_ZCRX_AREA_SHIFT;
        if !areas_ok.contains(&area) {
            return Err(format!("CQE off {off:#x} names area {area}, expected one of {areas_ok:?}").into());
        }
        let mem = z.areas.get(&area).ok_or_else(|| format!("CQE off {off:#x} names unknown area {area}"))?;
        let in_area = (off & !IORING_ZCRX_AREA_MASK) as usize;
        let len = c.res as usize;
        let buf = 1usize << z.buf_shift;
        if (in_area % buf) + len > buf {
            return Err(format!("CQE off {off:#x} len {len} crosses a {buf}-byte buffer boundary").into());
        }
        let got = mem.slice(in_area, len).ok_or_else(|| format!("CQE off {off:#x}+{len} is outside the area"))?;
        let conn = self.st.conns.get_mut(&rv.conn).ok_or("connection gone")?;
        let want = pattern(conn.base + conn.received, len);
        if got != want.as_slice() {
            let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
            return Err(format!(
                "payload mismatch at stream byte {} (CQE off {off:#x}+{i}): got {:#04x}, sent {:#04x}",
                conn.received + i as u64,
                got[i],
                want[i]
            )
            .into());
        }
        let pos = conn.base + conn.received;
        conn.received += len as u64;
        if let Some(z) = self.st.zcrx.get_mut(&rv.zcrx) {
            z.held.push_back(Held { off, len: len as u32, pos });
        }
        Ok(())
    }

    pub(super) fn expect_cqes(&mut self, ring: &str, x: &ExpectCqes) -> StepResult {
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

    pub(super) fn expect_data(&mut self, ring: &str, x: &ExpectData) -> StepResult {
        let ud = x.user_data.unwrap_or(1);
        let timeout = Duration::from_millis(x.timeout_ms.unwrap_or(10000));
        let mut deadline = Instant::now() + timeout;
        let zname =
            self.st.recvs.get(&ud).map(|r| r.zcrx.clone()).ok_or_else(|| format!("no RECV_ZC with user_data {ud}"))?;
        let mut got = 0u64;
        let mut ncqe = 0u64;
        let mut rearms = 0u32;
        let flushes = self.st.flushes;
        while got < x.bytes {
            let c = self.next_cqe(ring, Some(ud), deadline)?;
            let Some(c) = c else {
                self.note_stall(ud);
                return Err(stalled(
                    "next data CQE",
                    "res>0, flags=MORE",
                    format!("timed out after {got} of {} bytes ({ncqe} data CQEs)", x.bytes),
                ));
            };
            let flags = self.plain_flags(ring, &c);
            if x.rearm && x.recycle != Recycle::None && c.res == -libc::ENOMEM && flags == 0 && rearms < 10_000 {
                let held = self.st.zcrx.get(&zname).map_or(0, |z| z.held.len());
                self.return_held(&zname, held)?;
                self.flush(&zname)?;
                let sqe = self.st.recvs.get(&ud).map(|r| r.sqe).ok_or("RECV_ZC gone")?;
                let r = self.st.rings.get_mut(ring).ok_or_else(|| format!("no ring `{ring}`"))?;
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
                )
                .into())
            } else {
                Ok(())
            };
            self.verdict("data CQE shape", shape)?;
            let areas = if x.areas.is_empty() { vec![0] } else { x.areas.clone() };
            self.take_data(ring, ud, &c, &areas)?;
            got += c.res as u64;
            ncqe += 1;
            if got > x.bytes {
                return Err(format!("received {got} bytes, more than the {} expected", x.bytes).into());
            }
            self.recycle(&zname, x.recycle)?;
            // Progress extends the deadline: the timeout bounds a stall, not the transfer.
            deadline = Instant::now() + timeout;
        }
        self.note(format!(
            "received {got} bytes in {ncqe} data CQEs, payload identical to the pattern ({rearms} re-arms after -ENOMEM, {} FLUSH_RQ)",
            self.st.flushes - flushes
        ));
        if let Some(f) = &x.final_cqe {
            let c = self.next_cqe(ring, Some(ud), deadline)?.ok_or_else(|| {
                stalled(
                    "final CQE",
                    &format!("res={}", f.res),
                    format!("timed out waiting for the final CQE (expected res={})", f.res),
                )
            })?;
            self.note(format!("final CQE res={} flags={}", sys::res_name(c.res as i64), flag_names(c.flags)));
            self.check_cqe(ring, &c, f, "final CQE")?;
        }
        Ok(())
    }

    pub(super) fn drain_data(&mut self, ring: &str, x: &DrainData) -> StepResult {
        let ud = x.user_data.unwrap_or(1);
        let zname =
            self.st.recvs.get(&ud).map(|r| r.zcrx.clone()).ok_or_else(|| format!("no RECV_ZC with user_data {ud}"))?;
        let (mut got, mut n) = (0u64, 0u64);
        let flushes = self.st.flushes;
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
            "drained {got} bytes in {n} data CQEs ({} FLUSH_RQ), payload identical to the pattern; ended by {}",
            self.st.flushes - flushes,
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
                self.verdict("final CQE", Err(format!("the request did not end (expected res={})", f.res).into()))
            }
            (None, Some(c)) => self.verdict(
                "request still armed",
                Err(format!(
                    "the request ended with res={} flags={}",
                    sys::res_name(c.res as i64),
                    flag_names(c.flags)
                )
                .into()),
            ),
            (None, None) => Ok(()),
        }
    }

    /// `expect_no_cqe`: nothing matching `user_data` (any CQE when None) before the marker of
    /// `until`, or, where nothing orders the absence, within `wait_ms`.
    pub(super) fn expect_no_cqe(&mut self, ring: &str, x: &ExpectNoCqe) -> StepResult {
        match (&x.until, x.wait_ms) {
            (Some(u), _) if u.nop => self.no_cqe_before_nop(ring, x.user_data),
            (Some(u), _) => self.no_cqe_before_data(ring, x.user_data, u.request.unwrap_or(1), u.send.unwrap_or(0)),
            (None, Some(ms)) => self.no_cqe_within(ring, x.user_data, ms),
            (None, None) => Err(harness("expect_no_cqe without `until` or `wait_ms` (validation refuses it)")),
        }
    }

    fn no_cqe_within(&mut self, ring: &str, forbidden: Option<u64>, wait_ms: u64) -> StepResult {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let r = match self.next_cqe(ring, forbidden, deadline)? {
            Some(c) => {
                // What the network did meanwhile: an event nothing in the test caused often
                // follows a frame the test did not send (a sender's retransmission).
                let mut conns: Vec<String> = self.st.conns.keys().cloned().collect();
                conns.sort();
                for conn in conns {
                    self.note_tcp_ends(&conn);
                }
                Err(unexpected(&c, "expected no CQE"))
            }
            None => {
                self.note(format!("no CQE within {wait_ms} ms"));
                Ok(())
            }
        };
        self.verdict("no CQE", r)
    }

    /// The marker is data: `bytes` more of the pattern from the peer of RECV_ZC `req`'s
    /// connection. Every CQE up to the last byte of it is read in order: the request's data
    /// CQEs are the marker (checked byte for byte), a CQE matching `forbidden` before it fails
    /// the absence, any other is kept for later steps.
    fn no_cqe_before_data(&mut self, ring: &str, forbidden: Option<u64>, req: u64, bytes: u64) -> StepResult {
        let conn = self
            .st
            .recvs
            .get(&req)
            .map(|r| r.conn.clone())
            .ok_or_else(|| format!("no RECV_ZC with user_data {req}"))?;
        let zname = self.st.recvs.get(&req).map(|r| r.zcrx.clone()).unwrap_or_default();
        let areas: Vec<u64> = self.st.zcrx.get(&zname).map(|z| z.areas.keys().copied().collect()).unwrap_or_default();
        self.send(&Send { conn: Some(conn.clone()), bytes, chunk: None })?;
        let deadline = Instant::now() + MARKER_LIMIT;
        let (mut got, mut early, mut ended, mut kept) = (0u64, None, None, VecDeque::new());
        while got < bytes {
            let Some(c) = self.next_cqe(ring, None, deadline)? else { break };
            let marker = c.user_data == req && c.res > 0 && self.plain_flags(ring, &c) == IORING_CQE_F_MORE;
            if marker {
                self.take_data(ring, req, &c, &areas)?;
                got += c.res as u64;
            } else if forbidden.is_none_or(|u| c.user_data == u) {
                early = Some(c);
                break;
            } else if c.user_data == req {
                ended = Some(c);
                break;
            } else {
                kept.push_back(c);
            }
        }
        while let Some(c) = kept.pop_back() {
            self.st.pending.push_front(c);
        }
        let r = match early {
            Some(c) => Err(unexpected(&c, &format!("expected no CQE before the marker ({bytes} bytes on {conn})"))),
            None => Ok(()),
        };
        self.verdict("no CQE", r)?;
        let arrived = if let Some(c) = ended {
            Err(unexpected(&c, &format!("expected the marker ({bytes} bytes on {conn}) on RECV_ZC {req:#x}")))
        } else if got == bytes {
            self.note(format!(
                "no CQE before the marker: {bytes} more bytes on {conn} arrived first on RECV_ZC {req:#x}"
            ));
            Ok(())
        } else {
            Err(format!(
                "the marker ({bytes} bytes sent on {conn}) did not arrive on RECV_ZC {req:#x} within {} s ({got} bytes came)",
                MARKER_LIMIT.as_secs()
            )
            .into())
        };
        self.verdict("marker data", arrived)
    }

    /// The marker is a NOP, submitted after the ring's pending task work ran (a DEFER_TASKRUN
    /// ring runs it when it is waited on), so its CQE follows every CQE posted or queued before.
    fn no_cqe_before_nop(&mut self, ring: &str, forbidden: Option<u64>) -> StepResult {
        let r = self.st.rings.get_mut(ring).ok_or_else(|| format!("no ring `{ring}`"))?;
        for _ in 0..8 {
            let got = r.wait(Duration::from_nanos(1)).map_err(|e| format!("io_uring_enter: {}", sys::errno_name(e)))?;
            if got.is_empty() {
                break;
            }
            self.st.pending.extend(got);
        }
        let sqe = Sqe { opcode: IORING_OP_NOP, user_data: NOP_MARKER, ..Default::default() };
        match r.submit_sqe(&sqe) {
            Ok(1) => {}
            Ok(n) => return Err(format!("io_uring_enter submitted {n} SQEs, expected the NOP").into()),
            Err(e) => return Err(format!("io_uring_enter (NOP): {}", sys::errno_name(e)).into()),
        }
        let deadline = Instant::now() + MARKER_LIMIT;
        let (mut nop, mut early, mut kept) = (None, None, VecDeque::new());
        while let Some(c) = self.next_cqe(ring, None, deadline)? {
            if c.user_data == NOP_MARKER {
                nop = Some(c);
                break;
            } else if forbidden.is_none_or(|u| c.user_data == u) {
                early = Some(c);
                break;
            }
            kept.push_back(c);
        }
        while let Some(c) = kept.pop_back() {
            self.st.pending.push_front(c);
        }
        let r = match early {
            Some(c) => Err(unexpected(&c, "expected no CQE before the NOP marker")),
            None => Ok(()),
        };
        self.verdict("no CQE", r)?;
        let arrived = match nop {
            Some(c) if c.res == 0 => {
                self.note("no CQE before the NOP marker".to_string());
                Ok(())
            }
            Some(c) => Err(format!("the NOP marker completed with res={}", sys::res_name(c.res as i64)).into()),
            None => Err(format!("the NOP marker did not complete within {} s", MARKER_LIMIT.as_secs()).into()),
        };
        self.verdict("marker NOP", arrived)
    }
}

/// How long a marker may take to arrive (it is posted as soon as the kernel gets to it; this
/// only bounds a kernel that never does).
const MARKER_LIMIT: Duration = Duration::from_secs(10);

fn unexpected(c: &Cqe, what: &str) -> StepError {
    format!(
        "{what}, kernel posted ud={:#x} res={} flags={}",
        c.user_data,
        sys::res_name(c.res as i64),
        flag_names(c.flags)
    )
    .into()
}

impl Ctx<'_> {
    /// Logs where a stalled flow's buffers are: the TCP state of both ends of the connection
    /// RECV_ZC `ud` reads (the receiver's out-of-order queue, the sender's backoff), the CQEs of
    /// other requests set aside unread, and the sockets of the namespace holding receive memory.
    fn note_stall(&mut self, ud: u64) {
        let Some(conn) = self.st.recvs.get(&ud).map(|r| r.conn.clone()) else { return };
        self.note_tcp_ends(&conn);
        self.note_pending_and_held();
    }

    /// Logs the TCP state of both ends of connection `conn` (the sender's only when this process
    /// holds it).
    fn note_tcp_ends(&mut self, conn: &str) {
        let Some(c) = self.st.conns.get(conn) else { return };
        let mut ends = vec![("receiver", c.recv.as_raw_fd())];
        if let Some(PeerEnd::Local(p)) = &c.peer {
            ends.push(("sender", p.as_raw_fd()));
        }
        for (end, fd) in ends {
            let line = match TcpState::read(fd) {
                Ok(s) if end == "receiver" && s.held_out_of_order() => {
                    format!("{conn} {end}: {s} (receive memory held out of order)")
                }
                Ok(s) => format!("{conn} {end}: {s}"),
                Err(e) => format!("{conn} {end}: no TCP state ({e})"),
            };
            self.note(line);
        }
    }

    /// Logs the CQEs of other requests set aside unread and the sockets of the namespace that
    /// hold receive memory.
    fn note_pending_and_held(&mut self) {
        // CQEs of other requests that arrived meanwhile, set aside unread: data CQEs among them
        // hold buffers no step returns.
        let mut other: BTreeMap<u64, (usize, i64)> = BTreeMap::new();
        for c in &self.st.pending {
            let e = other.entry(c.user_data).or_default();
            e.0 += 1;
            e.1 += i64::from(c.res.max(0));
        }
        for (u, (n, bytes)) in other {
            self.note(format!("set aside unread: {n} CQE(s) of user_data {u:#x}, {bytes} bytes"));
        }
        // The connection's own sockets may hold nothing: say which sockets of the namespace do
        // (a closed one's out-of-order queue keeps its buffers with no descriptor to ask).
        match tcpstate::holding_receive_memory() {
            Ok(held) if held.is_empty() => self.note("no TCP socket of this namespace holds receive memory".into()),
            Ok(held) => {
                for h in held {
                    self.note(format!("holds receive memory: {h}"));
                }
            }
            Err(e) => self.note(format!("sock_diag: {e}")),
        }
    }
}

/// No CQE came within the timeout where `what` was expected (`expected`, in words): a typed
/// failure (`kernel posted nothing`), so a known deviation can name a stall.
fn stalled(what: &str, expected: &str, message: String) -> StepError {
    let m = Mismatch { what: what.into(), expected: Answer::Text(expected.into()), observed: Answer::Nothing };
    StepError::mismatch(m, message)
}
