//! Netlink and the other kernel interfaces the topologies and the NIC steps use, all through
//! libraries or syscalls, never by starting `ip`, `ethtool`, `insmod` or `udevadm`:
//!
//! - [`link`]: links, addresses, netns moves, MTU, XDP attach (rtnetlink through
//!   `netlink-bindings`' rt-link / rt-addr, generated from the kernel's YNL specs);
//! - [`ethtool`]: rings (incl. tcp-data-split, hds-thresh), channels, RSS (the ethtool
//!   generic-netlink family), and ntuple rules through the `SIOCETHTOOL` ioctl (rxnfc has no
//!   netlink message; `ETHTOOL_SRXCLSRLINS`/`DEL`/`GRXCLSRLALL` is what ethtool itself uses);
//! - [`netdev`]: the netdev family's `queue-get`, `page-pool-get`, `page-pool-stats-get`;
//! - [`netns`]: named network namespaces (/run/netns bind mounts, like `ip netns add`), and
//!   running a closure in one (a thread that `setns`es, so the caller's namespace stays);
//! - [`kmod`]: `finit_module` / `delete_module`, dependencies resolved from `modules.dep`;
//! - [`xdp`]: a minimal XDP_PASS program (`bpf(BPF_PROG_LOAD)`) and AF_XDP sockets.
//!
//! Sockets are synchronous (`netlink-socket2` without an async runtime): case children are
//! forked, and a socket belongs to the network namespace of the thread that opened it, so every
//! call opens its own.

pub mod ethtool;
pub mod kmod;
pub mod link;
pub mod netdev;
pub mod netns;
pub mod xdp;

use std::fmt;

pub use netlink_socket2::NetlinkSocket;

/// A failed netlink request or syscall: the errno the kernel answered (0 when the failure is
/// not the kernel's, e.g. a reply that could not be parsed) and what was asked.
#[derive(Debug, Clone)]
pub struct NlError {
    pub errno: i32,
    pub msg: String,
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for NlError {}

impl From<NlError> for String {
    fn from(e: NlError) -> String {
        e.msg
    }
}

pub type NlResult<T> = Result<T, NlError>;

impl NlError {
    pub fn new(errno: i32, msg: impl Into<String>) -> NlError {
        NlError { errno, msg: msg.into() }
    }

    /// A reply error: its errno and the kernel's extended ack message, if any.
    pub(crate) fn reply(what: &str, e: &netlink_socket2::ReplyError) -> NlError {
        let errno = e.as_io_error().raw_os_error().unwrap_or(0);
        NlError { errno, msg: format!("{what}: {e}") }
    }

    pub(crate) fn sys(what: &str, e: nix::errno::Errno) -> NlError {
        NlError { errno: e as i32, msg: format!("{what}: {e}") }
    }

    pub(crate) fn parse(what: &str, e: impl fmt::Display) -> NlError {
        NlError { errno: 0, msg: format!("{what}: {e}") }
    }
}

/// Sends a request that expects only an acknowledgement.
macro_rules! ack {
    ($sock:expr, $req:expr, $what:expr) => {{
        let what: &str = &$what;
        match $sock.request(&$req) {
            Ok(mut r) => r.recv_ack().map_err(|e| $crate::kernel::nl::NlError::reply(what, &e)),
            Err(e) => Err($crate::kernel::nl::NlError::new(e.raw_os_error().unwrap_or(0), format!("{what}: {e}"))),
        }
    }};
}
pub(crate) use ack;

/// Opens the request and maps its send error; the caller reads the replies.
macro_rules! ask {
    ($sock:expr, $req:expr, $what:expr) => {{
        let what: &str = &$what;
        $sock
            .request(&$req)
            .map_err(|e| $crate::kernel::nl::NlError::new(e.raw_os_error().unwrap_or(0), format!("{what}: {e}")))
    }};
}
pub(crate) use ask;
