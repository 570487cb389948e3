//! A TCP socket's state as the kernel reports it (TCP_INFO, SO_MEMINFO, SIOCINQ): what a stalled
//! flow's log shows, so a stall says where the data is held (the receiver's out-of-order queue,
//! the sender's retransmission backoff) instead of only that nothing arrived.

use std::fmt;
use std::io;
use std::os::fd::RawFd;

/// What one socket holds and how its sender is backing off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpState {
    pub state: u8,
    pub ca_state: u8,
    pub retransmits: u8,
    pub backoff: u8,
    pub unacked: u32,
    pub lost: u32,
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

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "state={} ca_state={} retransmits={} backoff={} unacked={} lost={} rcv_ooopack={} rmem_alloc={} inq={}",
            self.state,
            self.ca_state,
            self.retransmits,
            self.backoff,
            self.unacked,
            self.lost,
            self.rcv_ooopack,
            self.rmem_alloc,
            self.inq
        )
    }
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
    }
}
