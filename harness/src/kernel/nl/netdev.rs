//! The netdev generic-netlink family (`netlink-bindings` netdev): which memory provider a
//! queue has (`queue-get`), the page pools of a device and their statistics.

use netlink_bindings::netdev;

use super::{ask, NetlinkSocket, NlError, NlResult};

/// NETDEV_QUEUE_TYPE_RX
const QUEUE_RX: u32 = 0;

/// What `queue-get` says about one rx queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// The io_uring memory provider is installed (NETDEV_A_QUEUE_IO_URING present).
    pub io_uring: bool,
    /// The io_uring provider's rx-buf-len (NETDEV_A_IO_URING_PROVIDER_INFO_RX_BUF_LEN), when given.
    pub io_uring_rx_buf_len: Option<u32>,
    /// A devmem dmabuf is bound (its id).
    pub dmabuf: Option<u32>,
    /// An AF_XDP socket's pool is on it (NETDEV_A_QUEUE_XSK present).
    pub xsk: bool,
    pub napi_id: Option<u32>,
}

/// `queue-get` of rx queue `id`; ENOENT-like answers are the kernel's errno.
pub fn rx_queue(ifindex: u32, id: u32) -> NlResult<Queue> {
    let mut sock = NetlinkSocket::new();
    let mut req = netdev::Request::new().op_queue_get_do();
    req.encode().push_ifindex(ifindex).push_type(QUEUE_RX).push_id(id);
    let what = format!("queue-get ifindex {ifindex} rx {id}");
    let mut r = ask!(sock, req, what)?;
    let a = r.recv_one().map_err(|e| NlError::reply(&what, &e))?;
    Ok(Queue {
        io_uring: a.get_io_uring().is_ok(),
        io_uring_rx_buf_len: a.get_io_uring().ok().and_then(|p| p.get_rx_buf_len().ok()),
        dmabuf: a.get_dmabuf().ok(),
        xsk: a.get_xsk().is_ok(),
        napi_id: a.get_napi_id().ok(),
    })
}

/// The rx queues of `ifindex` that have the io_uring memory provider installed (`queue-get`
/// dump), by id.
pub fn io_uring_rx_queues(ifindex: u32) -> NlResult<Vec<u32>> {
    let mut sock = NetlinkSocket::new();
    let mut req = netdev::Request::new().op_queue_get_dump();
    req.encode().push_ifindex(ifindex);
    let what = format!("queue-get dump ifindex {ifindex}");
    let mut r = ask!(sock, req, what)?;
    let mut out = Vec::new();
    while let Some(a) = r.recv() {
        let a = a.map_err(|e| NlError::reply(&what, &e))?;
        if a.get_type().ok() == Some(QUEUE_RX) && a.get_io_uring().is_ok() {
            out.push(a.get_id().unwrap_or(u32::MAX));
        }
    }
    Ok(out)
}

/// NETDEV_XDP_ACT_BASIC | REDIRECT | XSK_ZEROCOPY: what AF_XDP zero copy needs.
pub const XDP_ACT_ZC: u64 = 0x1 | 0x2 | 0x8;

/// The device's `xdp-features` (`dev-get`).
pub fn xdp_features(ifindex: u32) -> NlResult<u64> {
    let mut sock = NetlinkSocket::new();
    let mut req = netdev::Request::new().op_dev_get_do();
    req.encode().push_ifindex(ifindex);
    let what = format!("dev-get ifindex {ifindex}");
    let mut r = ask!(sock, req, what)?;
    let a = r.recv_one().map_err(|e| NlError::reply(&what, &e))?;
    Ok(a.get_xdp_features().unwrap_or(0))
}

/// One page pool of a device, with its statistics when the kernel keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagePool {
    pub id: u32,
    /// The device it serves (absent once the device is gone).
    pub ifindex: Option<u32>,
    /// Bytes of memory its pages still out hold.
    pub inflight_mem: Option<u32>,
    pub napi_id: Option<u32>,
    pub inflight: Option<u32>,
    /// The pool's memory provider is io_uring's.
    pub io_uring: bool,
    /// Detached from its device (being destroyed, buffers still in flight).
    pub detached: bool,
    pub alloc_fast: Option<u32>,
    pub alloc_slow: Option<u32>,
    pub alloc_empty: Option<u32>,
    pub alloc_refill: Option<u32>,
    pub recycle_ring: Option<u32>,
}

/// The page pools of `ifindex` (`page-pool-get` dump), with `page-pool-stats-get` merged in.
pub fn page_pools(ifindex: u32) -> NlResult<Vec<PagePool>> {
    let mut v = all_page_pools()?;
    v.retain(|p| p.ifindex == Some(ifindex));
    Ok(v)
}

/// Every page pool of the calling thread's network namespace (also those whose device is
/// gone), with `page-pool-stats-get` merged in.
pub fn all_page_pools() -> NlResult<Vec<PagePool>> {
    let mut sock = NetlinkSocket::new();
    let req = netdev::Request::new().op_page_pool_get_dump();
    let mut out = Vec::new();
    {
        let mut r = ask!(sock, req, "page-pool-get dump")?;
        while let Some(a) = r.recv() {
            let a = a.map_err(|e| NlError::reply("page-pool-get dump", &e))?;
            out.push(PagePool {
                id: a.get_id().unwrap_or(0),
                ifindex: a.get_ifindex().ok(),
                inflight_mem: a.get_inflight_mem().ok(),
                napi_id: a.get_napi_id().ok(),
                inflight: a.get_inflight().ok(),
                io_uring: a.get_io_uring().is_ok(),
                detached: a.get_detach_time().is_ok(),
                ..Default::default()
            });
        }
    }
    let req = netdev::Request::new().op_page_pool_stats_get_dump();
    // Statistics need CONFIG_PAGE_POOL_STATS; without it the dump fails and the pools are
    // returned without them.
    if let Ok(mut r) = sock.request(&req) {
        while let Some(Ok(s)) = r.recv() {
            let Ok(id) = s.get_info().and_then(|i| i.get_id()) else { continue };
            if let Some(p) = out.iter_mut().find(|p| p.id == id) {
                p.alloc_fast = s.get_alloc_fast().ok();
                p.alloc_slow = s.get_alloc_slow().ok();
                p.alloc_empty = s.get_alloc_empty().ok();
                p.alloc_refill = s.get_alloc_refill().ok();
                p.recycle_ring = s.get_recycle_ring().ok();
            }
        }
    }
    Ok(out)
}

/// The device's rx counters from `qstats-get` (scope device: the driver's base counters plus
/// every queue's), as far as the driver reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qstats {
    pub rx_packets: Option<u64>,
    pub rx_alloc_fail: Option<u64>,
}

pub fn qstats(ifindex: u32) -> NlResult<Qstats> {
    let mut sock = NetlinkSocket::new();
    let mut req = netdev::Request::new().op_qstats_get_dump();
    req.encode().push_ifindex(ifindex);
    let what = format!("qstats-get ifindex {ifindex}");
    let mut r = ask!(sock, req, what)?;
    let mut out = Qstats::default();
    while let Some(a) = r.recv() {
        let a = a.map_err(|e| NlError::reply(&what, &e))?;
        if a.get_ifindex().ok() != Some(ifindex) {
            continue;
        }
        out.rx_packets = a.get_rx_packets().ok().map(u64::from).or(out.rx_packets);
        out.rx_alloc_fail = a.get_rx_alloc_fail().ok().map(u64::from).or(out.rx_alloc_fail);
    }
    Ok(out)
}
