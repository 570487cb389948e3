//! Reading a device's state without starting a program: the legacy ethtool ioctls
//! (`SIOCETHTOOL` on a datagram socket) and one generic-netlink request (`ETHTOOL_MSG_RINGS_GET`,
//! which alone carries header split, hds-thresh and rx-buf-len). Read only: no `SET` is sent.
//! The socket is opened in the network namespace of the calling thread.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
pub const ETHTOOL_GDRVINFO: u32 = 0x03;
pub const ETHTOOL_GFLAGS: u32 = 0x25;
pub const ETHTOOL_GRXCLSRLCNT: u32 = 0x2e;
pub const ETHTOOL_GCHANNELS: u32 = 0x3c;
pub const ETHTOOL_GRSSH: u32 = 0x46;
/// `ETH_FLAG_NTUPLE` in the `ETHTOOL_GFLAGS` value: n-tuple filters enabled.
pub const ETH_FLAG_NTUPLE: u32 = 1 << 27;

fn socket(domain: i32, ty: i32, proto: i32) -> Result<OwnedFd, String> {
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One `SIOCETHTOOL` request on `dev`: `buf` starts with the command word and is filled in by
/// the kernel. The errno on failure.
pub fn ioctl(dev: &str, buf: &mut [u8]) -> Result<(), i32> {
    let s = socket(libc::AF_INET, libc::SOCK_DGRAM, 0).map_err(|_| libc::EIO)?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    if dev.is_empty() || dev.len() >= ifr.ifr_name.len() {
        return Err(libc::EINVAL);
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(dev.bytes()) {
        *d = s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
    // SAFETY: SIOCETHTOOL reads the command from `buf` and writes at most the size the command
    // defines; every caller passes a buffer at least that large.
    let r = unsafe { libc::ioctl(s.as_raw_fd(), SIOCETHTOOL as _, &mut ifr) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO));
    }
    Ok(())
}

/// A buffer for an ioctl command: `len` zero bytes with `cmd` (and `words` after it) in
/// native order.
pub fn request(cmd: u32, words: &[u32], len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    for (i, w) in std::iter::once(&cmd).chain(words).enumerate() {
        b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    b
}

/// The u32 at byte `off` of an ioctl answer.
pub fn word(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// The NUL-terminated string of `len` bytes at `off`.
pub fn cstr(b: &[u8], off: usize, len: usize) -> String {
    let s = b.get(off..off + len).unwrap_or_default();
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

// Generic netlink.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const ETHTOOL_MSG_RINGS_GET: u8 = 15;
const ETHTOOL_A_RINGS_HEADER: u16 = 1;
const ETHTOOL_A_HEADER_DEV_NAME: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;

/// The ring attributes of `ETHTOOL_MSG_RINGS_GET_REPLY`, by name.
pub const RING_ATTRS: &[(u16, &str)] = &[
    (2, "rx_max"),
    (5, "tx_max"),
    (6, "rx"),
    (9, "tx"),
    (10, "rx_buf_len"),
    (11, "tcp_data_split"),
    (12, "cqe_size"),
    (17, "hds_thresh"),
    (18, "hds_thresh_max"),
];

fn attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The attributes of a message body: (type without flags, payload).
pub fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut v = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        v.push((ty, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    v
}

/// Sends one generic-netlink request and returns the body (after the genl header) of each
/// answer, or the errno the kernel returned.
fn genl(s: &OwnedFd, family: u16, cmd: u8, body: &[u8]) -> Result<Vec<Vec<u8>>, i32> {
    genl_flags(s, family, cmd, body, libc::NLM_F_REQUEST | libc::NLM_F_ACK)
}

fn genl_flags(s: &OwnedFd, family: u16, cmd: u8, body: &[u8], flags: i32) -> Result<Vec<Vec<u8>>, i32> {
    let mut msg = Vec::new();
    let len = (16 + 4 + body.len()) as u32;
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&family.to_ne_bytes());
    msg.extend_from_slice(&(flags as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[cmd, 1, 0, 0]);
    msg.extend_from_slice(body);
    // SAFETY: send(2) of a buffer we own.
    if unsafe { libc::send(s.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO));
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: recv(2) into a buffer we own, at most its length.
        let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return Err(libc::EIO);
        }
        let mut b = &buf[..n as usize];
        while b.len() >= 16 {
            let mlen = (word(b, 0) as usize).clamp(16, b.len());
            let ty = u16::from_ne_bytes([b[4], b[5]]);
            if ty == libc::NLMSG_ERROR as u16 {
                let err = word(b, 16) as i32;
                return if err == 0 { Ok(out) } else { Err(-err) };
            }
            if ty == libc::NLMSG_DONE as u16 {
                return Ok(out);
            }
            if mlen > 20 {
                out.push(b[20..mlen].to_vec());
            }
            b = &b[((mlen + 3) & !3).min(b.len())..];
        }
    }
}

/// The id of the generic-netlink family `name`.
fn family(s: &OwnedFd, name: &str) -> Result<u16, String> {
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    let mut body = Vec::new();
    attr(&mut body, CTRL_ATTR_FAMILY_NAME, &n);
    let fam = genl(s, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, &body)
        .map_err(|e| format!("the {name} netlink family: {}", std::io::Error::from_raw_os_error(e)))?;
    fam.iter()
        .flat_map(|m| attrs(m))
        .find(|(t, p)| *t == CTRL_ATTR_FAMILY_ID && p.len() >= 2)
        .map(|(_, p)| u16::from_ne_bytes([p[0], p[1]]))
        .ok_or_else(|| format!("the {name} netlink family has no id"))
}

/// An unsigned attribute of 1, 2, 4 or 8 bytes.
fn uint(p: &[u8]) -> Option<u64> {
    match p.len() {
        1 => Some(p[0] as u64),
        2 => Some(u16::from_ne_bytes([p[0], p[1]]) as u64),
        4 => Some(word(p, 0) as u64),
        8 => Some(u64::from_ne_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]])),
        _ => None,
    }
}

/// One page pool, as `NETDEV_CMD_PAGE_POOL_GET` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PagePool {
    pub ifindex: Option<u32>,
    pub inflight: u64,
    pub inflight_mem: u64,
    /// Its netdev is gone but pages are still out.
    pub detached: bool,
    /// An io_uring (zcrx) memory provider is bound to it.
    pub io_uring: bool,
}

/// Every page pool the kernel lists for the calling thread's network namespace (a dump of
/// `NETDEV_CMD_PAGE_POOL_GET`; read only).
pub fn page_pools() -> Result<Vec<PagePool>, String> {
    const NETDEV_CMD_PAGE_POOL_GET: u8 = 5;
    let s = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_GENERIC)?;
    let fam = family(&s, "netdev")?;
    let replies = genl_flags(&s, fam, NETDEV_CMD_PAGE_POOL_GET, &[], libc::NLM_F_REQUEST | libc::NLM_F_DUMP)
        .map_err(|e| format!("NETDEV_CMD_PAGE_POOL_GET: {}", std::io::Error::from_raw_os_error(e)))?;
    Ok(replies
        .iter()
        .map(|m| {
            let mut pp = PagePool::default();
            for (t, p) in attrs(m) {
                match t {
                    2 => pp.ifindex = uint(p).map(|v| v as u32),
                    4 => pp.inflight = uint(p).unwrap_or(0),
                    5 => pp.inflight_mem = uint(p).unwrap_or(0),
                    6 => pp.detached = true,
                    8 => pp.io_uring = true,
                    _ => {}
                }
            }
            pp
        })
        .collect())
}

/// `ETHTOOL_MSG_RINGS_GET` for `dev`: the attributes of [`RING_ATTRS`] the driver reports.
pub fn rings(dev: &str) -> Result<Vec<(&'static str, u64)>, String> {
    let s = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_GENERIC)?;
    let family = family(&s, "ethtool")?;
    let mut devname = dev.as_bytes().to_vec();
    devname.push(0);
    let mut hdr = Vec::new();
    attr(&mut hdr, ETHTOOL_A_HEADER_DEV_NAME, &devname);
    let mut body = Vec::new();
    attr(&mut body, ETHTOOL_A_RINGS_HEADER | NLA_F_NESTED, &hdr);
    let replies = genl(&s, family, ETHTOOL_MSG_RINGS_GET, &body)
        .map_err(|e| format!("ETHTOOL_MSG_RINGS_GET {dev}: {}", std::io::Error::from_raw_os_error(e)))?;
    let mut v = Vec::new();
    for (t, p) in replies.iter().flat_map(|m| attrs(m)) {
        if let Some((_, name)) = RING_ATTRS.iter().find(|(a, _)| *a == t) {
            if let Some(val) = uint(p) {
                v.push((*name, val));
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut b = Vec::new();
        attr(&mut b, 2, b"abc\0");
        attr(&mut b, 17 | NLA_F_NESTED, &7u32.to_ne_bytes());
        attr(&mut b, 11, &[2]);
        let a = attrs(&b);
        assert_eq!(a, vec![(2, &b"abc\0"[..]), (17, &7u32.to_ne_bytes()[..]), (11, &[2u8][..])]);
        // A length past the end stops the walk instead of reading beyond it.
        let mut bad = b.clone();
        bad[0] = 200;
        assert!(attrs(&bad).is_empty());
    }

    #[test]
    fn loopback_answers_drvinfo_and_rings_are_read_only_requests() {
        // lo has no driver info; the ioctl path still answers with an errno, never panics.
        let mut b = request(ETHTOOL_GDRVINFO, &[], 196);
        let _ = ioctl("lo", &mut b);
        assert_eq!(ioctl("this-name-is-too-long", &mut b), Err(libc::EINVAL));
        let _ = rings("lo");
        // The dump answers (possibly with no pool at all) on any kernel with the netdev family.
        if let Ok(pools) = page_pools() {
            assert!(pools.iter().all(|p| p.inflight_mem >= p.inflight || p.inflight == 0), "{pools:?}");
        }
    }
}
