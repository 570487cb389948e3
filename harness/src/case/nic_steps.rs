//! The bodies of the NIC-path step actions: the device under test through netlink (link, XDP,
//! AF_XDP, ntuple, RSS), the netdev family's views (`queue_get`, `page_pools`, `qstats`), and
//! the case's own processes and netdevsim devices.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Value;

/// Link operations on the DUT through rtnetlink. Taking the link down, moving it and deleting
/// it are destructive: they run only on a topology with `destructive: true`, else the case
/// skips. A vendor's management interface is never touched: only the topology's DUT.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkOp {
    /// Administrative state: up or down.
    pub state: Option<LinkState>,
    /// Move the DUT into a new network namespace the case creates (gone with the case; the
    /// topology's teardown deletes what is left).
    #[serde(default)]
    pub move_netns: bool,
    /// Delete the DUT.
    #[serde(default)]
    pub delete: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Up,
    Down,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// Driver (native) XDP.
    #[default]
    Drv,
    /// Generic (skb) XDP.
    Skb,
}

/// Attach (a minimal XDP_PASS program, loaded with bpf(BPF_PROG_LOAD)) or detach XDP on the DUT
/// through rtnetlink IFLA_XDP.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XdpStep {
    /// true: attach; false: detach.
    pub attach: bool,
    #[serde(default)]
    pub mode: XdpMode,
    /// Load the program with BPF_F_XDP_HAS_FRAGS (multi-buffer; the kernel refuses
    /// single-buffer XDP while tcp-data-split is on). Default true.
    #[serde(default = "yes")]
    pub frags: bool,
}

fn yes() -> bool {
    true
}

/// Bind an AF_XDP socket to an rx queue of the DUT (default: the topology's zcrx queue).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AfXdp {
    pub queue: Option<Value>,
    /// XDP_ZEROCOPY instead of XDP_COPY.
    #[serde(default)]
    pub zerocopy: bool,
}

/// Add or delete an ntuple (rxnfc) rule on the DUT: TCP to the local port of a connection's
/// receiving socket goes to `queue` (default: the zcrx queue), or to an RSS context.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ntuple {
    /// Name of the rule (default r0), for `delete`.
    pub name: Option<String>,
    /// Add a rule for this connection (its receiving socket's port and address family).
    pub conn: Option<String>,
    pub queue: Option<Value>,
    /// Steer into this RSS context (made by an `rss` step) instead of a queue.
    pub context: Option<String>,
    /// Delete the named rule.
    #[serde(default)]
    pub delete: bool,
}

/// RSS on the DUT: spread the default context over every queue but `exclude` (the zcrx queue,
/// as a real deployment does), or create a context over `queues`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rss {
    #[serde(default)]
    pub exclude: Vec<Value>,
    /// Create an RSS context with this name over `queues`.
    pub context: Option<String>,
    #[serde(default)]
    pub queues: Vec<Value>,
}

/// Another process of the case, forked from it. `start: NAME` opens a ring like the case's
/// main ring in that process, registers zcrx there with the default registration for the
/// topology (the step's `expect` checks the answer; success when absent) and holds the
/// instance; `exit: NAME` lets the process exit without closing anything, so the kernel tears
/// the instance down because its owner went away, and waits for it (exit status 0 within
/// 10 s). A process still running when the case ends exits then.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Process {
    Start(String),
    Exit(String),
}

/// A netdevsim device of the case's own, in the case's network namespace, on topologies
/// whose netdevsim module is loaded (other topologies skip). `create: NAME` makes it (one
/// port, the topology's queue count), sets it up for zcrx (tcp-data-split on, hds-thresh 0),
/// brings it up and names its index `$NAME.ifindex`; `delete: NAME` deletes it through the
/// bus's del_device, which returns once the kernel has unregistered the port (checked by the
/// step's `expect`; success when absent). A device the case did not delete goes when it ends.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NsimDevice {
    Create(String),
    Delete(String),
}

/// The DUT's counters from the netdev family's `qstats-get` (the driver's view, independent
/// of io_uring's). `save: NAME` remembers them; a later `since: NAME` checks how much they
/// grew since (without `since`, the totals): `rx_alloc_fail` exactly, or
/// `rx_alloc_fail_at_least`. A driver that does not report a counter checked makes the case
/// skip.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Qstats {
    pub save: Option<String>,
    pub since: Option<String>,
    pub rx_alloc_fail: Option<u64>,
    pub rx_alloc_fail_at_least: Option<u64>,
}

/// The netdev family's `queue-get` of a DUT rx queue: the io_uring memory provider must be
/// shown (`io_uring: true`) or gone (`false`), waiting up to `wait_ms` for it (the provider
/// is released asynchronously after a teardown).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueGet {
    pub queue: Option<Value>,
    pub io_uring: bool,
    #[serde(default)]
    pub wait_ms: u64,
    /// The io_uring provider's rx-buf-len must be exactly this many bytes ("$page": one page).
    #[serde(default, deserialize_with = "super::pages::opt_count")]
    #[schemars(with = "Option<super::pages::PageCount>")]
    pub rx_buf_len: Option<u64>,
}

/// The DUT's page pools (`page-pool-get`, `page-pool-stats-get`): exactly this many have the
/// io_uring memory provider (statistics are logged), and, with `detached_inflight`, the pools
/// already destroyed still hold exactly this many buffers (0: every buffer came back, none
/// leaked past teardown). Both are polled up to `wait_ms`; while `detached_inflight` is not
/// reached, the receive softirq is run on every CPU each second (`kernel::softirq::flush_skb_defer_lists`:
/// an skb read on another CPU than the one that received it is freed only at that CPU's next
/// receive softirq, and keeps its buffers in flight until then).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagePools {
    pub io_uring: u32,
    pub detached_inflight: Option<u64>,
    #[serde(default)]
    pub wait_ms: u64,
}
