//! A TCP socket's state as the kernel reports it (TCP_INFO, SO_MEMINFO, SIOCINQ): what a stalled
//! flow's log shows, so a stall says where the data is held (the receiver's out-of-order queue,
//! the sender's retransmission backoff) instead of only that nothing arrived.

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// What one socket holds and how its sender is backing off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpState {
    pub state: u8,
    pub ca_state: u8,
    pub retransmits: u8,
    pub backoff: u8,
    pub unacked: u32,
    pub lost: u32,
    /// Segments this socket retransmitted over its life (tcpi_total_retrans): a sender's
    /// retransmission (a tail loss probe, say) that reached the receiver is a frame the test did
    /// not send.
    pub total_retrans: u32,
    /// Out-of-order segments this socket received (tcpi_rcv_ooopack).
    pub rcv_ooopack: u32,
    /// Bytes charged to the receive side: the receive queue and the out-of-order queue.
    pub rmem_alloc: u32,
    /// Bytes the reader could read now, in sequence (SIOCINQ).
    pub inq: u32,
}

const SK_MEMINFO_RMEM_ALLOC: usize = 0;
const SK_MEMINFO_VARS: usize = 10;

impl TcpState {
    /// Reads the state of the TCP socket `fd`.
    pub fn read(fd: RawFd) -> io::Result<TcpState> {
        let mut ti: libc::tcp_info = zeroed();
        getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, &mut ti)?;
        let mut mem = [0u32; SK_MEMINFO_VARS];
        getsockopt(fd, libc::SOL_SOCKET, libc::SO_MEMINFO, &mut mem)?;
        let mut inq: libc::c_int = 0;
        // SAFETY: SIOCINQ writes one int to the pointer given.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut inq) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TcpState {
            state: ti.tcpi_state,
            ca_state: ti.tcpi_ca_state,
            retransmits: ti.tcpi_retransmits,
            backoff: ti.tcpi_backoff,
            unacked: ti.tcpi_unacked,
            lost: ti.tcpi_lost,
            total_retrans: ti.tcpi_total_retrans,
            rcv_ooopack: ti.tcpi_rcv_ooopack,
            rmem_alloc: mem[SK_MEMINFO_RMEM_ALLOC],
            inq: inq.max(0) as u32,
        })
    }

    /// Receive memory charged beyond what is readable in sequence: data held out of order.
    pub fn held_out_of_order(&self) -> bool {
        self.rmem_alloc > 0 && self.inq == 0
    }
}

/// A socket that still had data unacknowledged when [`wait_acked`] gave up: how long it waited
/// and the socket's state then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unacked {
    pub waited: Duration,
    pub state: TcpState,
}

impl fmt::Display for Unacked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "still unacknowledged after {} ms: {}", self.waited.as_millis(), self.state)
    }
}

/// Polls the TCP socket `fd` until it has nothing unacknowledged (every byte it sent was
/// acknowledged, so no retransmission of them can follow): Ok(how long that took), or
/// Err(its state at `timeout`).
pub fn wait_acked(fd: RawFd, timeout: Duration) -> io::Result<Result<Duration, Unacked>> {
    let start = Instant::now();
    loop {
        let s = TcpState::read(fd)?;
        if s.unacked == 0 {
            return Ok(Ok(start.elapsed()));
        }
        if start.elapsed() >= timeout {
            return Ok(Err(Unacked { waited: timeout, state: s }));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "state={} ca_state={} retransmits={} backoff={} unacked={} lost={} total_retrans={} rcv_ooopack={} rmem_alloc={} inq={}",
            self.state,
            self.ca_state,
            self.retransmits,
            self.backoff,
            self.unacked,
            self.lost,
            self.total_retrans,
            self.rcv_ooopack,
            self.rmem_alloc,
            self.inq
        )
    }
}

/// A TCP socket of the calling thread's network namespace that holds receive memory, as
/// sock_diag reports it: orphans (closed by their process, `inode` 0) included, which no
/// descriptor can ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldBy {
    pub local: std::net::SocketAddr,
    pub remote: std::net::SocketAddr,
    pub state: u8,
    pub inode: u32,
    /// Bytes readable in sequence (for a listener: its accept queue).
    pub rqueue: u32,
    pub rmem_alloc: u32,
}

impl fmt::Display for HeldBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = if self.inode == 0 { "orphan".to_string() } else { format!("inode {}", self.inode) };
        write!(
            f,
            "{} -> {} state={} {owner} rmem_alloc={} in_sequence={}",
            self.local, self.remote, self.state, self.rmem_alloc, self.rqueue
        )
    }
}

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const INET_DIAG_SKMEMINFO: u16 = 7;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// The TCP sockets (IPv4 and IPv6) of this network namespace with receive memory charged.
pub fn holding_receive_memory() -> io::Result<Vec<HeldBy>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        dump(family as u8, &mut out)?;
    }
    Ok(out)
}

fn dump(family: u8, out: &mut Vec<HeldBy>) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor just opened and owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // nlmsghdr (16) + inet_diag_req_v2 (56): every TCP state, with the memory info extension.
    let mut req = [0u8; 72];
    req[0..4].copy_from_slice(&72u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = family;
    req[17] = libc::IPPROTO_TCP as u8;
    req[18] = 1 << (INET_DIAG_SKMEMINFO - 1);
    req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    // SAFETY: sends the buffer's bytes; the kernel reads at most its length.
    if unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut msgs = &buf[..n as usize];
        if msgs.is_empty() {
            return Ok(());
        }
        while msgs.len() >= 16 {
            let len = u32_at(msgs, 0) as usize;
            let kind = u16::from_ne_bytes([msgs[4], msgs[5]]);
            if len < 16 || len > msgs.len() {
                return Err(io::Error::other("sock_diag: a truncated message"));
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let errno = msgs.get(16..20).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                SOCK_DIAG_BY_FAMILY => {
                    if let Some(h) = parse(&msgs[16..len]) {
                        out.push(h);
                    }
                }
                _ => {}
            }
            msgs = &msgs[(len + 3) & !3..];
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// An inet_diag_msg (72 bytes) and its attributes; only a socket with receive memory.
fn parse(m: &[u8]) -> Option<HeldBy> {
    if m.len() < 72 {
        return None;
    }
    let (family, state) = (m[0], m[1]);
    let port = |at: usize| u16::from_be_bytes([m[at], m[at + 1]]);
    let addr = |at: usize, p: u16| -> std::net::SocketAddr {
        if family == libc::AF_INET as u8 {
            (std::net::Ipv4Addr::new(m[at], m[at + 1], m[at + 2], m[at + 3]), p).into()
        } else {
            let mut o = [0u8; 16];
            o.copy_from_slice(&m[at..at + 16]);
            (std::net::Ipv6Addr::from(o), p).into()
        }
    };
    let (local, remote) = (addr(8, port(4)), addr(24, port(6)));
    let (rqueue, inode) = (u32_at(m, 56), u32_at(m, 68));
    let mut attrs = &m[72..];
    let mut rmem_alloc = 0;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            break;
        }
        if kind == INET_DIAG_SKMEMINFO {
            rmem_alloc = u32_at(attrs, 4 + 4 * SK_MEMINFO_RMEM_ALLOC);
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    (rmem_alloc > 0).then_some(HeldBy { local, remote, state, inode, rqueue, rmem_alloc })
}

fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for plain C structs of integers, for which all-zero bytes are valid.
    unsafe { std::mem::zeroed() }
}

fn getsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, out: &mut T) -> io::Result<()> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes to `out`, which is a `T` of that size.
    let r = unsafe { libc::getsockopt(fd, level, name, (out as *mut T).cast(), &mut len) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_connected_pair_reports_what_it_holds_in_sequence() {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("listen");
        let mut a = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (b, _) = l.accept().expect("accept");
        a.write_all(&[7u8; 1000]).expect("write");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let s = loop {
            let s = TcpState::read(b.as_raw_fd()).expect("read");
            if s.inq == 1000 || std::time::Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        // 1: TCP_ESTABLISHED (include/net/tcp_states.h)
        assert_eq!((s.state, s.inq, s.rcv_ooopack), (1, 1000, 0));
        assert!(s.rmem_alloc >= 1000, "{s}");
        assert!(!s.held_out_of_order());
        // sock_diag sees the same socket holding the same memory.
        let local = b.local_addr().expect("addr");
        let held = holding_receive_memory().expect("sock_diag");
        let me = held.iter().find(|h| h.local == local && h.state == 1).expect("listed");
        assert_eq!((me.rqueue, me.rmem_alloc), (1000, s.rmem_alloc), "{me}");
        assert_ne!(me.inode, 0);
    }
}
