//! ethtool settings through the ethtool generic-netlink family (`netlink-bindings` ethtool):
//! rings (rx size, tcp-data-split, hds-thresh), channels, RSS indirection and contexts; and
//! ntuple (rxnfc) rules through the `SIOCETHTOOL` ioctl, which is the only interface the kernel
//! has for them (the ethtool netlink family has no rxnfc messages; ethtool uses the same ioctl).

use netlink_bindings::ethtool;

use super::{ack, ask, NetlinkSocket, NlError, NlResult};

/// ETHTOOL_MSG_* request numbers (uapi `ethtool_netlink_generated.h`). netlink-bindings 0.3.5
/// numbers the ethtool family's requests by counting every operation of the spec, also the
/// notification-only ones, although the spec's `enum-model: directional` counts only the
/// operations that have a request (a `do` or `dump`): its rings-get goes out as PAUSE_GET (21
/// instead of 15). Every ethtool request here sets the right number itself.
mod msg {
    pub const RINGS_GET: u8 = 15;
    pub const RINGS_SET: u8 = 16;
    pub const CHANNELS_GET: u8 = 17;
    pub const CHANNELS_SET: u8 = 18;
    pub const RSS_GET: u8 = 38;
    pub const RSS_SET: u8 = 48;
    pub const RSS_CREATE_ACT: u8 = 49;
    pub const RSS_DELETE_ACT: u8 = 50;
}

/// ETHTOOL_A_RINGS_TCP_DATA_SPLIT values.
pub const TDS_UNKNOWN: u8 = 0;
pub const TDS_DISABLED: u8 = 1;
pub const TDS_ENABLED: u8 = 2;

/// What `rings-get` reports that the harness uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rings {
    pub rx: Option<u32>,
    pub rx_max: Option<u32>,
    pub tcp_data_split: Option<u8>,
    pub hds_thresh: Option<u32>,
}

/// The ring settings to change (None: leave as is).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingsSet {
    pub rx: Option<u32>,
    pub tcp_data_split: Option<u8>,
    pub hds_thresh: Option<u32>,
}

pub fn rings(index: u32) -> NlResult<Rings> {
    rings_reported(index).map(|r| r.rings)
}

/// Every ring attribute the driver reports, by the names `ethtool -g` uses, besides [`Rings`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RingsReport {
    pub rings: Rings,
    pub all: Vec<(&'static str, u64)>,
}

pub fn rings_reported(index: u32) -> NlResult<RingsReport> {
    let mut sock = NetlinkSocket::new();
    let mut req = ethtool::Request::new().op_rings_get_do();
    req.header_mut().cmd = msg::RINGS_GET;
    req.encode().nested_header().push_dev_index(index).end_nested();
    let what = format!("rings-get ifindex {index}");
    let mut r = ask!(sock, req, what)?;
    let a = r.recv_one().map_err(|e| NlError::reply(&what, &e))?;
    let all: Vec<(&'static str, u64)> = [
        ("rx_max", a.get_rx_max().ok()),
        ("tx_max", a.get_tx_max().ok()),
        ("rx", a.get_rx().ok()),
        ("tx", a.get_tx().ok()),
        ("rx_buf_len", a.get_rx_buf_len().ok()),
        ("tcp_data_split", a.get_tcp_data_split().ok().map(u32::from)),
        ("cqe_size", a.get_cqe_size().ok()),
        ("hds_thresh", a.get_hds_thresh().ok()),
        ("hds_thresh_max", a.get_hds_thresh_max().ok()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, u64::from(v))))
    .collect();
    let rings = Rings {
        rx: a.get_rx().ok(),
        rx_max: a.get_rx_max().ok(),
        tcp_data_split: a.get_tcp_data_split().ok(),
        hds_thresh: a.get_hds_thresh().ok(),
    };
    Ok(RingsReport { rings, all })
}

pub fn set_rings(index: u32, s: &RingsSet) -> NlResult<()> {
    if *s == RingsSet::default() {
        return Ok(());
    }
    let mut sock = NetlinkSocket::new();
    let mut req = ethtool::Request::new().op_rings_set_do();
    req.header_mut().cmd = msg::RINGS_SET;
    let mut e = req.encode().nested_header().push_dev_index(index).end_nested();
    if let Some(v) = s.rx {
        e = e.push_rx(v);
    }
    if let Some(v) = s.tcp_data_split {
        e = e.push_tcp_data_split(v);
    }
    if let Some(v) = s.hds_thresh {
        e = e.push_hds_thresh(v);
    }
    drop(e);
    ack!(sock, req, format!("rings-set ifindex {index} {s:?}"))
}

/// (combined count, combined max)
pub fn channels(index: u32) -> NlResult<(Option<u32>, Option<u32>)> {
    let mut sock = NetlinkSocket::new();
    let mut req = ethtool::Request::new().op_channels_get_do();
    req.header_mut().cmd = msg::CHANNELS_GET;
    req.encode().nested_header().push_dev_index(index).end_nested();
    let what = format!("channels-get ifindex {index}");
    let mut r = ask!(sock, req, what)?;
    let a = r.recv_one().map_err(|e| NlError::reply(&what, &e))?;
    Ok((a.get_combined_count().ok(), a.get_combined_max().ok()))
}

pub fn set_combined(index: u32, combined: u32) -> NlResult<()> {
    let mut sock = NetlinkSocket::new();
    let mut req = ethtool::Request::new().op_channels_set_do();
    req.header_mut().cmd = msg::CHANNELS_SET;
    req.encode().nested_header().push_dev_index(index).end_nested().push_combined_count(combined);
    ack!(sock, req, format!("channels-set ifindex {index} combined {combined}"))
}

/// The RSS indirection table of a context (0: the default one).
pub fn rss_indir(index: u32, context: u32) -> NlResult<Vec<u32>> {
    let mut sock = NetlinkSocket::new();
    let mut req = ethtool::Request::new().op_rss_get_do();
    req.header_mut().cmd = msg::RSS_GET;
    let e = req.encode().nested_header().push_dev_index(index).end_nested();
    if context != 0 {
        e.push_context(context);
    } else {
        drop(e);
    }
    let what = format!("rss-get ifindex {index} context {context}");
    let mut r = ask!(sock, req, what)?;
    let a = r.recv_one().map_err(|e| NlError::reply(&what, &e))?;
    let raw = a.get_indir().unwrap_or(&[]);
    Ok(raw.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn indir_bytes(table: &[u32]) -> Vec<u8> {
    table.iter().flat_map(|q| q.to_ne_bytes()).collect()
}

/// Sets the default context's indirection table; an empty table restores the driver default.
pub fn set_rss_indir(index: u32, table: &[u32]) -> NlResult<()> {
    let mut sock = NetlinkSocket::new();
    let mut req = ethtool::Request::new().op_rss_set_do();
    req.header_mut().cmd = msg::RSS_SET;
    req.encode().nested_header().push_dev_index(index).end_nested().push_indir(&indir_bytes(table));
    ack!(sock, req, format!("rss-set ifindex {index} indir {table:?}"))
}

/// Creates an RSS context spreading over `table`; returns its id.
pub fn create_rss_context(index: u32, table: &[u32]) -> NlResult<u32> {
    let mut sock = NetlinkSocket::new();
    let mut req = ethtool::Request::new().op_rss_create_act_do();
    req.header_mut().cmd = msg::RSS_CREATE_ACT;
    req.encode().nested_header().push_dev_index(index).end_nested().push_indir(&indir_bytes(table));
    let what = format!("rss-create-act ifindex {index} indir {table:?}");
    let mut r = ask!(sock, req, what)?;
    let a = r.recv_one().map_err(|e| NlError::reply(&what, &e))?;
    a.get_context().map_err(|e| NlError::parse(&what, e))
}

/// Deletes the RSS context `context` (EBUSY while an ntuple rule still steers into it).
pub fn delete_rss_context(index: u32, context: u32) -> NlResult<()> {
    let mut sock = NetlinkSocket::new();
    let mut req = ethtool::Request::new().op_rss_delete_act_do();
    req.header_mut().cmd = msg::RSS_DELETE_ACT;
    req.encode().nested_header().push_dev_index(index).end_nested().push_context(context);
    ack!(sock, req, format!("rss-delete-act ifindex {index} context {context}"))
}

// ntuple rules (struct ethtool_rxnfc through SIOCETHTOOL).

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GRXCLSRLALL: u32 = 0x30;
const ETHTOOL_SRXCLSRLDEL: u32 = 0x31;
const ETHTOOL_SRXCLSRLINS: u32 = 0x32;
const TCP_V4_FLOW: u32 = 0x01;
const TCP_V6_FLOW: u32 = 0x05;
const FLOW_RSS: u32 = 0x2000_0000;
const RX_CLS_LOC_ANY: u32 = 0xffff_ffff;

/// `struct ethtool_rxnfc` with room for 64 rule locations: cmd@0, flow_type@4, data@8,
/// fs@16 (`struct ethtool_rx_flow_spec`, 168 bytes: flow_type@0, h_u@4, h_ext@56, m_u@76,
/// m_ext@128, ring_cookie@152, location@160), rule_cnt / rss_context@184, rule_locs@188.
#[repr(C, align(8))]
struct Rxnfc([u8; 192 + 64 * 4]);

impl Rxnfc {
    fn new(cmd: u32) -> Rxnfc {
        let mut r = Rxnfc([0; 192 + 256]);
        r.put32(0, cmd);
        r
    }
    fn put32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn get32(&self, at: usize) -> u32 {
        u32::from_ne_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
}

/// A TCP flow rule: packets to `dst_port` (IPv4 or IPv6) go to `queue`, or, with a `context`,
/// to queue `queue` of that RSS context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRule {
    pub ipv6: bool,
    pub dst_port: u16,
    pub queue: u32,
    pub context: Option<u32>,
}

/// One `SIOCETHTOOL` request on `dev` (in the calling thread's network namespace): `buf`
/// starts with the command word and the kernel reads and fills the rest, which must be as
/// large as the command's struct. The errno on failure.
pub fn sioc_ethtool(dev: &str, buf: &mut [u8]) -> Result<(), i32> {
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    if dev.is_empty() || dev.len() >= ifr.ifr_name.len() {
        return Err(libc::EINVAL);
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(dev.bytes()) {
        *d = s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
    // SAFETY: socket(2) with constant arguments; the fd is owned at once.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(nix::errno::Errno::last_raw());
    }
    // SAFETY: s is a new descriptor nobody else owns.
    let s = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(s) };
    // SAFETY: SIOCETHTOOL reads the command from `buf` and writes at most the size the command
    // defines; every caller passes a buffer at least that large.
    let r = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&s), SIOCETHTOOL as _, &mut ifr) };
    if r < 0 {
        return Err(nix::errno::Errno::last_raw());
    }
    Ok(())
}

fn ethtool_ioctl(dev: &str, buf: &mut Rxnfc, what: &str) -> NlResult<()> {
    sioc_ethtool(dev, &mut buf.0)
        .map_err(|e| NlError::sys(&format!("{what} (SIOCETHTOOL on {dev})"), nix::errno::Errno::from_raw(e)))
}

/// Inserts a rule at a location the driver picks; returns the location.
pub fn add_flow_rule(dev: &str, rule: &FlowRule) -> NlResult<u32> {
    let mut b = Rxnfc::new(ETHTOOL_SRXCLSRLINS);
    let mut flow = if rule.ipv6 { TCP_V6_FLOW } else { TCP_V4_FLOW };
    if let Some(c) = rule.context {
        flow |= FLOW_RSS;
        b.put32(184, c);
    }
    b.put32(4, flow);
    b.put32(16, flow);
    // h_u / m_u: tcp_ip4_spec pdst @10, tcp_ip6_spec pdst @34 (big endian; mask all ones).
    let port_at = if rule.ipv6 { 34 } else { 10 };
    b.0[16 + 4 + port_at..16 + 4 + port_at + 2].copy_from_slice(&rule.dst_port.to_be_bytes());
    b.0[16 + 76 + port_at..16 + 76 + port_at + 2].copy_from_slice(&[0xff, 0xff]);
    b.0[16 + 152..16 + 160].copy_from_slice(&(rule.queue as u64).to_ne_bytes());
    b.put32(16 + 160, RX_CLS_LOC_ANY);
    ethtool_ioctl(dev, &mut b, &format!("ntuple insert {rule:?}"))?;
    Ok(b.get32(16 + 160))
}

pub fn delete_flow_rule(dev: &str, location: u32) -> NlResult<()> {
    let mut b = Rxnfc::new(ETHTOOL_SRXCLSRLDEL);
    b.put32(16 + 160, location);
    ethtool_ioctl(dev, &mut b, &format!("ntuple delete rule {location}"))
}

/// The locations of the rules the device has (at most 64 are listed).
pub fn flow_rules(dev: &str) -> NlResult<Vec<u32>> {
    let mut b = Rxnfc::new(ETHTOOL_GRXCLSRLALL);
    b.put32(184, 64);
    ethtool_ioctl(dev, &mut b, "ntuple list")?;
    let n = b.get32(184).min(64) as usize;
    Ok((0..n).map(|i| b.get32(188 + 4 * i)).collect())
}
