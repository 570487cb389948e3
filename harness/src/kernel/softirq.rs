//! The network receive softirq, run on purpose: what frees skbs another CPU deferred.

use std::io;

/// Runs the network receive softirq once on every CPU that can be pinned, by a UDP
/// datagram to itself over the loopback of the calling thread's network namespace from a thread
/// pinned to each CPU in turn; returns the CPUs done.
///
/// A TCP reader that consumes an skb on another CPU than the one that allocated it does not free
/// it: the skb goes on that CPU's defer list (`skb_attempt_defer_free`), freed at that CPU's next
/// `net_rx_action`. Until then the skb's buffers stay in flight in their page pool, however long
/// the CPU receives nothing else. A loopback datagram is received on the CPU that sent it, and
/// its `net_rx_action` flushes that CPU's defer list before the datagram arrives: the ordering
/// event a page pool's teardown waits for.
pub fn flush_skb_defer_lists() -> io::Result<usize> {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    // SAFETY: sysconf reads a constant.
    let configured = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.clamp(1, CpuSet::count() as i64) as usize;
    let mut done = 0;
    for cpu in 0..configured {
        let r = std::thread::scope(|s| {
            s.spawn(|| -> io::Result<bool> {
                let mut one = CpuSet::new();
                one.set(cpu).map_err(io::Error::from)?;
                // An offline CPU (or one a cpuset forbids) cannot be pinned: nothing to flush there
                // that this process could have left.
                if sched_setaffinity(Pid::from_raw(0), &one).is_err() {
                    return Ok(false);
                }
                let sock = std::net::UdpSocket::bind(("127.0.0.1", 0))?;
                sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
                sock.send_to(b"flush", sock.local_addr()?)?;
                let mut buf = [0u8; 8];
                sock.recv(&mut buf)?;
                Ok(true)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("defer-list flush thread panicked")))
        })?;
        done += usize::from(r);
    }
    Ok(done)
}
