//! The transfers: one TCP flow received with plain `recv()` or with multishot RECV_ZC over a
//! zcrx instance from [`crate::kernel::zcrx`] (its default registration and RQ publisher).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{Error, Sample};
use crate::kernel::ring::Ring;
use crate::kernel::sys;
use crate::kernel::uapi::*;
use crate::kernel::zcrx::{Instance, RegionMem, Registration, Rq, Spec, Target};

/// NODEV: the area and RQ of a registration.
const AREA_PAGES: usize = 1024;
const RQ_ENTRIES: u32 = 1024;
/// NIC mode: an area larger than what the socket can queue, so the driver never falls back
/// to copied skbs (as a deployment sizes it), and an RQ that holds every buffer.
const NIC_AREA_PAGES: usize = 8192;
const NIC_RQ_ENTRIES: u32 = 8192;

/// Where the bench's TCP flow runs: loopback (nodev) or across a namespace topology, and
/// which device a netdev registration binds (None = NODEV).
#[derive(Clone, Debug)]
pub(super) struct Net {
    pub(super) dut_addr: String,
    pub(super) peer_ns: Option<std::path::PathBuf>,
    pub(super) netdev: Option<(u32, u32)>,
}

impl Net {
    pub(super) fn loopback() -> Net {
        Net { dut_addr: "127.0.0.1".into(), peer_ns: None, netdev: None }
    }
}

const CQ_ENTRIES: u32 = 4096;
const STALL: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Recv,
    RecvZc,
}

fn cpu_time(who: i32) -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `who` is RUSAGE_SELF or RUSAGE_THREAD, and ru is a valid out pointer.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One loopback TCP transfer of `total` bytes written in `size`-byte chunks.
pub(super) fn transfer(size: usize, total: u64, method: Method, net: &Net) -> Result<Sample, Error> {
    let io = |what: &'static str| move |source: std::io::Error| Error::Io { what: format!("bench: {what}"), source };
    let l = TcpListener::bind((net.dut_addr.as_str(), 0)).map_err(io("bind"))?;
    let addr = l.local_addr().map_err(io("local_addr"))?;
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let peer_ns = net.peer_ns.clone();
    let sender = std::thread::spawn(move || -> Result<f64, Error> {
        if let Some(ns) = &peer_ns {
            crate::topology::enter(ns)?;
        }
        let mut s = TcpStream::connect(addr).map_err(|e| Error::Measure(format!("bench: connect: {e}")))?;
        let chunk = crate::exec::pattern(0, size);
        // Start when the receiver is ready (registered, RECV_ZC armed).
        go_rx.recv().map_err(|_| Error::Measure("bench: receiver gone".into()))?;
        let c0 = cpu_time(libc::RUSAGE_THREAD);
        let mut left = total;
        while left > 0 {
            let n = left.min(size as u64) as usize;
            s.write_all(&chunk[..n]).map_err(|e| Error::Measure(format!("bench: send: {e}")))?;
            left -= n as u64;
        }
        let cpu = cpu_time(libc::RUSAGE_THREAD) - c0;
        drop(s);
        Ok(cpu)
    });
    let (conn, _) = l.accept().map_err(io("accept"))?;
    let r = match method {
        Method::Recv => recv_plain(conn, size, total, go_tx),
        Method::RecvZc => recv_zc(conn, total, go_tx, net.netdev),
    };
    let tx = sender.join().map_err(|_| Error::Measure("bench: sender thread panicked".into()))?;
    let mut s = r?;
    s.tx_cpu_s = tx?;
    Ok(s)
}

fn recv_plain(mut conn: TcpStream, size: usize, total: u64, go: std::sync::mpsc::Sender<()>) -> Result<Sample, Error> {
    let mut buf = vec![0u8; size];
    let (c0, p0) = (cpu_time(libc::RUSAGE_THREAD), cpu_time(libc::RUSAGE_SELF));
    let t0 = Instant::now();
    go.send(()).map_err(|_| Error::Measure("bench: sender gone".into()))?;
    let mut got = 0u64;
    while got < total {
        match conn.read(&mut buf) {
            Ok(0) => return Err(Error::Measure(format!("bench: recv: EOF after {got} of {total} bytes"))),
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Measure(format!("bench: recv: {e}"))),
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    Ok(Sample {
        bytes: got,
        wall_s: wall,
        rx_cpu_s: cpu_time(libc::RUSAGE_THREAD) - c0,
        proc_cpu_s: cpu_time(libc::RUSAGE_SELF) - p0,
        ..Default::default()
    })
}

/// Registers NODEV, or on `netdev` = (ifindex, rxq) in the caller's namespace: the default
/// registration with bench's sizes and a user region.
fn register(ring_fd: i32, netdev: Option<(u32, u32)>) -> Result<Instance, Error> {
    let (target, area_pages, rq_entries) = match netdev {
        Some((if_idx, if_rxq)) => (Target::Netdev { if_idx, if_rxq }, NIC_AREA_PAGES, NIC_RQ_ENTRIES),
        None => (Target::Nodev, AREA_PAGES, RQ_ENTRIES),
    };
    let mut reg = Registration::new(Spec { target, rq_entries, area_pages, region: RegionMem::User })
        .map_err(|e| Error::Measure(format!("bench: area/region mmap: {e}")))?;
    reg.register(ring_fd)
        .map_err(|e| Error::Measure(format!("bench: IORING_REGISTER_ZCRX_IFQ: {}", sys::errno_name(e))))?;
    if reg.area.rq_area_token != 0 {
        return Err(Error::Measure(format!(
            "bench: unexpected area token {:#x} for the first area",
            reg.area.rq_area_token
        )));
    }
    reg.finish(ring_fd).map_err(|e| Error::Measure(format!("bench: zcrx instance: {e}")))
}

/// ZCRX_CTRL_FLUSH_RQ: the only way buffers are recycled in NODEV mode.
fn flush(ring_fd: i32, id: u32) -> Result<(), Error> {
    let mut ctrl = ZcrxCtrl { zcrx_id: id, op: ZCRX_CTRL_FLUSH_RQ, ..Default::default() };
    sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_CTRL, &mut ctrl as *mut ZcrxCtrl as u64, 0)
        .map(drop)
        .map_err(|e| Error::Measure(format!("bench: ZCRX_CTRL_FLUSH_RQ: {}", sys::errno_name(e))))
}

fn recv_zc(
    conn: TcpStream,
    total: u64,
    go: std::sync::mpsc::Sender<()>,
    netdev: Option<(u32, u32)>,
) -> Result<Sample, Error> {
    let flags = IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQE32;
    let mut ring = Ring::new(64, flags, Some(CQ_ENTRIES)).map_err(|e| Error::Measure(format!("bench: ring: {e}")))?;
    let z = register(ring.fd(), netdev)?;
    let rq = z.rq.as_ref().ok_or(Error::Measure("bench: the zcrx instance has no RQ".into()))?;
    let sqe = Sqe {
        opcode: IORING_OP_RECV_ZC,
        ioprio: IORING_RECV_MULTISHOT,
        fd: conn.as_raw_fd(),
        user_data: 1,
        zcrx_ifq_idx: z.id,
        ..Default::default()
    };
    let area_len = z.area.len() as u64;
    let (c0, p0) = (cpu_time(libc::RUSAGE_THREAD), cpu_time(libc::RUSAGE_SELF));
    let t0 = Instant::now();
    ring.submit_sqe(&sqe).map_err(|e| Error::Measure(format!("bench: RECV_ZC submit: {}", sys::errno_name(e))))?;
    go.send(()).map_err(|_| Error::Measure("bench: sender gone".into()))?;
    let (mut got, mut cqes, mut rearms, mut flushes) = (0u64, 0u64, 0u64, 0u64);
    let mut done = Vec::with_capacity(CQ_ENTRIES as usize);
    let mut last_progress = Instant::now();
    while got < total {
        let batch = ring
            .wait(Duration::from_secs(1))
            .map_err(|e| Error::Measure(format!("bench: wait: {}", sys::errno_name(e))))?;
        if batch.is_empty() {
            if last_progress.elapsed() > STALL {
                return Err(Error::Measure(format!("bench: RECV_ZC stalled after {got} of {total} bytes")));
            }
            continue;
        }
        last_progress = Instant::now();
        let mut rearm = false;
        for c in batch.iter().filter(|c| c.user_data == 1) {
            if c.res > 0 {
                let off = c.big.ok_or(Error::Measure("bench: data CQE without the zcrx payload".into()))?[0];
                if off & IORING_ZCRX_AREA_MASK != 0 || (off & !IORING_ZCRX_AREA_MASK) + c.res as u64 > area_len {
                    return Err(Error::Measure(format!("bench: CQE off {off:#x} len {} outside the area", c.res)));
                }
                got += c.res as u64;
                cqes += 1;
                done.push(Rq::rqe(off, z.buf_len));
            }
            if c.flags & IORING_CQE_F_MORE == 0 {
                if c.res == -libc::ENOMEM {
                    rearm = true;
                } else if c.res <= 0 && got < total {
                    return Err(Error::Measure(format!(
                        "bench: RECV_ZC ended with res={} after {got} of {total} bytes",
                        sys::res_name(c.res as i64)
                    )));
                }
            }
        }
        rq.push(&done).map_err(|e| Error::Measure(format!("bench: {e}")))?;
        done.clear();
        // NIC mode: the page pool refills from the RQ by itself; NODEV needs the flush.
        if netdev.is_none() {
            flush(ring.fd(), z.id)?;
            flushes += 1;
        }
        if rearm && got < total {
            ring.submit_sqe(&sqe)
                .map_err(|e| Error::Measure(format!("bench: re-arming RECV_ZC: {}", sys::errno_name(e))))?;
            rearms += 1;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let s = Sample {
        bytes: got,
        wall_s: wall,
        rx_cpu_s: cpu_time(libc::RUSAGE_THREAD) - c0,
        proc_cpu_s: cpu_time(libc::RUSAGE_SELF) - p0,
        cqes,
        rearms,
        flushes,
        ..Default::default()
    };
    // The ring (and with it the zcrx instance) goes before the socket.
    drop(ring);
    drop(z);
    drop(conn);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recv_loopback() {
        let s = transfer(4096, 1 << 20, Method::Recv, &Net::loopback()).expect("loopback transfer");
        assert_eq!(s.bytes, 1 << 20);
        assert!(s.wall_s > 0.0);
    }
}
