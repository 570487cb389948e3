//! Links and addresses through rtnetlink (`netlink-bindings` rt-link / rt-addr), in the
//! network namespace of the calling thread.

use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_bindings::rt_addr::{self, Ifaddrmsg};
use netlink_bindings::rt_link::{self, Ifinfomsg};
use netlink_bindings::traits::Pusher;
use netlink_bindings::utils;

use super::{ack, ask, NetlinkSocket, NlError, NlResult};

const IFF_UP: u32 = libc::IFF_UP as u32;

/// One link of the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub up: bool,
    /// The id of the XDP program attached (any mode), 0 when none.
    pub xdp_prog: u32,
}

fn header(index: u32) -> Ifinfomsg {
    Ifinfomsg { ifi_index: index as i32, ..Default::default() }
}

fn cname(name: &str) -> NlResult<CString> {
    CString::new(name).map_err(|_| NlError::new(libc::EINVAL, format!("`{name}`: interface name with a NUL byte")))
}

/// Every link in the namespace.
pub fn list() -> NlResult<Vec<Link>> {
    let mut sock = NetlinkSocket::new();
    let req = rt_link::Request::new().op_getlink_dump(&header(0));
    let mut replies = ask!(sock, req, "getlink dump")?;
    let mut out = Vec::new();
    while let Some(r) = replies.recv() {
        let (h, attrs) = r.map_err(|e| NlError::reply("getlink dump", &e))?;
        let xdp_prog = attrs.get_xdp().ok().and_then(|x| x.get_prog_id().ok()).unwrap_or(0);
        out.push(Link {
            index: h.ifi_index as u32,
            name: attrs.get_ifname().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            mtu: attrs.get_mtu().unwrap_or(0),
            up: h.ifi_flags & IFF_UP != 0,
            xdp_prog,
        });
    }
    Ok(out)
}

/// The link with this index.
pub fn get(index: u32) -> NlResult<Link> {
    list()?
        .into_iter()
        .find(|l| l.index == index)
        .ok_or_else(|| NlError::new(libc::ENODEV, format!("no link with ifindex {index}")))
}

/// The link with this name.
pub fn by_name(name: &str) -> NlResult<Link> {
    list()?
        .into_iter()
        .find(|l| l.name == name)
        .ok_or_else(|| NlError::new(libc::ENODEV, format!("no link named {name}")))
}

/// Sets the administrative state (IFF_UP).
pub fn set_up(index: u32, up: bool) -> NlResult<()> {
    let mut sock = NetlinkSocket::new();
    let h = Ifinfomsg { ifi_flags: if up { IFF_UP } else { 0 }, ifi_change: IFF_UP, ..header(index) };
    let req = rt_link::Request::new().op_setlink_do(&h);
    ack!(sock, req, format!("set ifindex {index} {}", if up { "up" } else { "down" }))
}

pub fn set_mtu(index: u32, mtu: u32) -> NlResult<()> {
    let mut sock = NetlinkSocket::new();
    let mut req = rt_link::Request::new().op_setlink_do(&header(index));
    req.encode().push_mtu(mtu);
    ack!(sock, req, format!("set ifindex {index} mtu {mtu}"))
}

pub fn rename(index: u32, name: &str) -> NlResult<()> {
    let n = cname(name)?;
    let mut sock = NetlinkSocket::new();
    let mut req = rt_link::Request::new().op_setlink_do(&header(index));
    req.encode().push_ifname(&n);
    ack!(sock, req, format!("rename ifindex {index} to {name}"))
}

/// Moves the link into the namespace open at `ns`.
pub fn move_to(index: u32, ns: BorrowedFd<'_>) -> NlResult<()> {
    let mut sock = NetlinkSocket::new();
    let mut req = rt_link::Request::new().op_setlink_do(&header(index));
    req.encode().push_net_ns_fd(ns.as_raw_fd() as u32);
    ack!(sock, req, format!("move ifindex {index} to another network namespace"))
}

/// Attaches (`prog_fd` >= 0) or detaches (-1) an XDP program; `flags` are XDP_FLAGS_*.
pub fn set_xdp(index: u32, prog_fd: i32, flags: u32) -> NlResult<()> {
    let mut sock = NetlinkSocket::new();
    let mut req = rt_link::Request::new().op_setlink_do(&header(index));
    req.encode().nested_xdp().push_fd(prog_fd).push_flags(flags).end_nested();
    let what = if prog_fd >= 0 { "attach XDP to" } else { "detach XDP from" };
    ack!(sock, req, format!("{what} ifindex {index}"))
}

/// Creates a veth pair `name` / `peer` with `queues` rx and tx queues each, here.
pub fn add_veth(name: &str, peer: &str, queues: u32) -> NlResult<()> {
    let (n, p) = (cname(name)?, cname(peer)?);
    let mut sock = NetlinkSocket::new();
    let mut req = rt_link::Request::new().set_create().set_excl().op_newlink_do(&header(0));
    let mut info = req
        .encode()
        .push_ifname(&n)
        .push_num_rx_queues(queues)
        .push_num_tx_queues(queues)
        .nested_linkinfo()
        .push_kind(c"veth");
    // IFLA_INFO_DATA { VETH_INFO_PEER: struct ifinfomsg + the peer's attributes }: the veth
    // spec is not among the YNL specs, so this nest is written by hand.
    let buf = info.as_vec_mut();
    let data = utils::push_nested_header(buf, 2);
    let peer_at = utils::push_nested_header(buf, 1);
    buf.extend_from_slice(Ifinfomsg::default().as_slice());
    let name_bytes = p.as_bytes_with_nul();
    utils::push_header(buf, 3, name_bytes.len() as u16);
    buf.extend_from_slice(name_bytes);
    pad(buf);
    for (ty, v) in [(31u16, queues), (32u16, queues)] {
        utils::push_header(buf, ty, 4);
        buf.extend_from_slice(&v.to_ne_bytes());
    }
    utils::finalize_nested_header(buf, peer_at);
    utils::finalize_nested_header(buf, data);
    info.end_nested();
    ack!(sock, req, format!("create veth {name}/{peer}"))
}

fn pad(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// Adds an address with its prefix length.
pub fn add_addr(index: u32, addr: IpAddr, prefix: u8) -> NlResult<()> {
    let mut sock = NetlinkSocket::new();
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 } as u8;
    let h = Ifaddrmsg { ifa_family: family, ifa_prefixlen: prefix, ifa_index: index, ..Default::default() };
    let mut req = rt_addr::Request::new().set_create().set_excl().op_newaddr_do(&h);
    // IPv6 addresses are used at once, without duplicate address detection (IFA_F_NODAD).
    let flags = if addr.is_ipv6() { 0x02 } else { 0 };
    req.encode().push_local(addr).push_address(addr).push_flags(flags);
    ack!(sock, req, format!("add address {addr}/{prefix} to ifindex {index}"))
}

/// The addresses of a link, with their prefix lengths.
pub fn addrs(index: u32) -> NlResult<Vec<(IpAddr, u8)>> {
    let mut sock = NetlinkSocket::new();
    let req = rt_addr::Request::new().op_getaddr_dump(&Ifaddrmsg::default());
    let mut replies = ask!(sock, req, "getaddr dump")?;
    let mut out = Vec::new();
    while let Some(r) = replies.recv() {
        let (h, attrs) = r.map_err(|e| NlError::reply("getaddr dump", &e))?;
        if h.ifa_index == index {
            if let Ok(a) = attrs.get_local().or_else(|_| attrs.get_address()) {
                out.push((a, h.ifa_prefixlen));
            }
        }
    }
    Ok(out)
}
