//! The bodies of the step actions: one struct (with its option enums) per kind of step, a
//! variant of [`Action`](super::Action) (the table of kinds is in `action.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Overrides, RegionKind, Value};

/// IORING_REGISTER_ZCRX_IFQ with a valid default registration (from the topology and the
/// case's `zcrx` defaults) and the named field overrides.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Name to refer to this instance later (default z0).
    pub name: Option<String>,
    /// Overrides of io_uring_zcrx_ifq_reg fields.
    #[serde(default)]
    pub ifq: Overrides,
    /// Overrides of io_uring_zcrx_area_reg fields.
    #[serde(default)]
    pub area: Overrides,
    /// Overrides of io_uring_region_desc fields.
    #[serde(default)]
    pub region: Overrides,
    /// zcrx_event_desc: present = event_desc points at it. `type_mask` takes event names.
    /// `stats_offset: auto` picks the first valid offset after the RQEs.
    pub event: Option<Overrides>,
    /// Area memory size in pages (default: the case's zcrx.area_pages); "1048576/$page": bytes.
    #[serde(default, deserialize_with = "super::pages::opt_count")]
    #[schemars(with = "Option<super::pages::PageCount>")]
    pub area_pages: Option<u32>,
    /// Region kind (default: the case's zcrx.region).
    pub region_kind: Option<RegionKind>,
    /// Register an import of this exported fd name (flags=IMPORT, if_idx=fd, rest 0).
    pub import: Option<String>,
    /// Place these structs on a read-only page: ifq, area, region, event.
    #[serde(default)]
    pub readonly: Vec<String>,
    #[serde(default = "one")]
    pub nr_args: u32,
    /// Protection of the area memory: `read` (read-only mapping) or `tail_none` (its last
    /// page unmapped-like, PROT_NONE), so pinning fails.
    pub area_prot: Option<AreaProt>,
    /// Put the area in 2 MiB huge pages (MAP_HUGETLB; the case skips when none are reserved).
    #[serde(default)]
    pub area_huge: bool,
    /// The area's physical layout: `same_page` maps one page at every page of the range, so its
    /// DMA segments are single pages (never contiguous beyond 4 KiB, whatever the allocator
    /// does); registration only, the data path is not meant to use it.
    pub area_layout: Option<AreaLayout>,
    /// Back the area with a dma-buf instead of user memory: a udmabuf over a sealed memfd of
    /// the area's size (flags=DMABUF, dmabuf_fd, addr 0: the offset in the buffer). Received
    /// bytes are read through the harness's mapping of the memfd; `$area.dmabuf_fd` and
    /// `$area.memfd` name the two fds, open until the case ends. Skips without /dev/udmabuf.
    #[serde(default)]
    pub area_dmabuf: bool,
    /// Fill the user-provided RQ region past the RQ entries (where `stats_offset: auto` puts the
    /// counters) with this byte before registering: memory that held something else before.
    pub region_fill: Option<u8>,
    /// Fill the whole user-provided RQ region, the head/tail header and the entries included,
    /// with this byte before registering: the kernel must start the RQ at head = tail = 0
    /// whatever the memory held.
    pub rq_fill: Option<u8>,
    /// When the kernel answers this errno, the device lacks what the case needs: the case
    /// skips with that reason instead of failing (e.g. EOPNOTSUPP for rx_buf_len on a driver
    /// without QCFG_RX_PAGE_SIZE).
    pub unsupported: Option<String>,
    /// Retry while the kernel answers EEXIST/EBUSY for up to this long (a queue being released
    /// asynchronously after a teardown); the final answer is what is checked.
    pub retry_ms: Option<u64>,
    /// Traffic in the middle of the call: the area struct's page is write-protected
    /// (userfaultfd), so the kernel's copy-out of it, the last thing a registration does after
    /// the queue was opened, stops; meanwhile the harness sends `bytes` on `conn`, waits until
    /// the receiving socket has queued them (in buffers of the new page pool), makes the page
    /// read-only and lets the write go on: EFAULT with buffers of the opened queue in flight.
    pub traffic_before_copy_out: Option<CopyOutTraffic>,
}

/// `register.traffic_before_copy_out`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyOutTraffic {
    /// The connection (default c0), made before the registration.
    pub conn: Option<String>,
    /// Bytes to send (1 to 65536).
    pub bytes: u64,
}

fn one() -> u32 {
    1
}

/// A known physical layout of the area's memory (`Register::area_layout`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AreaLayout {
    SamePage,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AreaProt {
    Read,
    TailNone,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConnKind {
    /// TCP over loopback (or between the topology's endpoints).
    #[default]
    Tcp,
    /// A TCP socket never connected (state CLOSE, no error, not shut down); no peer.
    TcpUnconnected,
    Udp,
    Unix,
    Pipe,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    /// Name (default c0).
    pub name: Option<String>,
    #[serde(default)]
    pub kind: ConnKind,
    /// TCP between the topology's IPv6 addresses (skips on a topology without them).
    #[serde(default)]
    pub ipv6: bool,
    /// TCP: SO_RCVBUF of the listening socket (inherited by the accepted one; the kernel doubles
    /// it), which bounds the receive window and so how many buffers in-flight data can occupy.
    pub rcvbuf: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Send {
    pub conn: Option<String>,
    /// Bytes to send from the peer ("6*$page": six pages); the pattern continues across sends.
    #[serde(deserialize_with = "super::pages::count")]
    #[schemars(with = "super::pages::PageCount")]
    pub bytes: u64,
    /// Size of each write() (default 64 KiB).
    pub chunk: Option<u64>,
}

/// Wait until the peer's sends are done and its TCP reports nothing unacknowledged.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acked {
    pub conn: Option<String>,
    /// How long to wait (default 5000 ms).
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    pub conn: Option<String>,
    /// Close the peer (true) rather than shutdown(SHUT_WR).
    #[serde(default)]
    pub close: bool,
    /// Close the peer with SO_LINGER 0: the connection is reset (an RST), not closed with a FIN.
    #[serde(default)]
    pub reset: bool,
}

/// Submit IORING_OP_RECV_ZC (multishot by default) on a connection.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecvZc {
    pub conn: Option<String>,
    pub zcrx: Option<String>,
    #[serde(default)]
    pub len: u32,
    /// user_data (default 1).
    pub user_data: Option<u64>,
    /// Overrides of io_uring_sqe fields (ioprio, addr, msg_flags, zcrx_ifq_idx, fd, ...).
    #[serde(default)]
    pub sqe: Overrides,
}

/// One expected CQE. `flags` is exact; on CQE_MIXED rings F_32 is required on big CQEs and not listed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CqeExpect {
    /// Result: a number or -ERRNO.
    pub res: Value,
    #[serde(default)]
    pub flags: Vec<String>,
    /// For a data CQE: compare the bytes at its offset with the pattern sent.
    #[serde(default)]
    pub data: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectCqes {
    /// user_data of the CQEs (default 1).
    pub user_data: Option<u64>,
    pub cqes: Vec<CqeExpect>,
    /// How long to wait for them (default 5000).
    pub timeout_ms: Option<u64>,
    pub zcrx: Option<String>,
    pub conn: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Recycle {
    /// Keep every buffer.
    #[default]
    None,
    /// Return each buffer through the RQ and ZCRX_CTRL_FLUSH_RQ.
    Flush,
    /// Return each buffer through the RQ only (the page pool refills from it).
    Rq,
}

/// Receive exactly `bytes` of the pattern as data CQEs (res > 0, F_MORE, valid area
/// offset, payload compared byte for byte), then optionally a final CQE.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectData {
    pub user_data: Option<u64>,
    #[serde(deserialize_with = "super::pages::count")]
    #[schemars(with = "super::pages::PageCount")]
    pub bytes: u64,
    #[serde(default)]
    pub recycle: Recycle,
    /// The CQE that must follow the data.
    #[serde(rename = "final")]
    pub final_cqe: Option<CqeExpect>,
    pub timeout_ms: Option<u64>,
    pub zcrx: Option<String>,
    pub conn: Option<String>,
    /// Area indexes the CQEs may name (default [0]).
    #[serde(default)]
    pub areas: Vec<u64>,
    /// With recycling: when the request ends with res=-ENOMEM (the area ran dry before the
    /// returned buffers were flushed), flush and submit the same RECV_ZC again, as the NODEV
    /// protocol prescribes. The number of re-arms is logged.
    #[serde(default)]
    pub rearm: bool,
}

/// Take every data CQE that arrives (each checked like `expect_data`: F_MORE, area, bounds,
/// payload byte for byte) until the request ends or nothing arrives for `idle_ms`, when the
/// amount depends on the kernel's buffer caching rather than on the uapi.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainData {
    pub user_data: Option<u64>,
    #[serde(default)]
    pub recycle: Recycle,
    #[serde(default = "d_idle")]
    pub idle_ms: u64,
    /// At least this many bytes must arrive ("$page": one page).
    #[serde(default, deserialize_with = "super::pages::count")]
    #[schemars(with = "super::pages::PageCount")]
    pub min_bytes: u64,
    /// The request must end with this CQE (otherwise it must still be armed: no final CQE).
    #[serde(rename = "final")]
    pub final_cqe: Option<CqeExpect>,
}

fn d_idle() -> u64 {
    500
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectNoCqe {
    /// The CQEs that must not come (default: any).
    pub user_data: Option<u64>,
    /// A marker the kernel must post after anything the absence forbids: the check ends when
    /// it arrives, not after a fixed time. Exactly one of `until` and `wait_ms`.
    pub until: Option<Until>,
    /// A fixed wait, only for an absence that nothing the kernel does afterwards orders; `unordered` says why.
    pub wait_ms: Option<u64>,
    /// Why no later CQE orders this absence (required with `wait_ms`).
    pub unordered: Option<String>,
}

/// The user_data of the NOP an `until: { nop: true }` marker submits; no case step may use it.
pub const NOP_MARKER: u64 = 0x6e6f_705f_6d61_726b;

/// The marker of an ordered absence check (exactly one of `send` and `nop`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Until {
    /// The peer sends this many more bytes of the pattern on the connection of the multishot
    /// RECV_ZC `request`; that request's next CQEs must be exactly these bytes (data CQEs,
    /// byte-exact). One request posts its CQEs in the order of its socket's events, and
    /// deferred task work runs first in, first out, so whatever earlier data or events would
    /// post comes before them.
    pub send: Option<u64>,
    /// The RECV_ZC (its user_data) that receives `send` (default 1).
    pub request: Option<u64>,
    /// Run the ring's pending task work, then a NOP: its CQE comes after every CQE posted or
    /// queued as task work before it (for an absence after a request ended).
    #[serde(default)]
    pub nop: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnBuffers {
    pub zcrx: Option<String>,
    /// How many of the held buffers (default all), oldest first.
    pub count: Option<usize>,
    /// Then call ZCRX_CTRL_FLUSH_RQ.
    #[serde(default)]
    pub flush: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RqeSpec {
    /// Raw `off`; or use held/area+index.
    pub off: Option<Value>,
    /// The n-th held buffer's CQE offset.
    pub held: Option<usize>,
    /// With `index`: (area << 48) | (index << buffer shift).
    pub area: Option<u64>,
    pub index: Option<u64>,
    #[serde(default)]
    pub len: u32,
    #[serde(default)]
    pub pad: u32,
    /// Repeat this entry (a count, or an expression of `$page`: "$page/8").
    #[serde(default, deserialize_with = "super::pages::opt_count")]
    #[schemars(with = "Option<super::pages::PageCount>")]
    pub repeat: Option<u32>,
}

/// Write raw RQEs at the tail and advance the tail.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RqPush {
    pub zcrx: Option<String>,
    pub entries: Vec<RqeSpec>,
    /// Then call ZCRX_CTRL_FLUSH_RQ.
    #[serde(default)]
    pub flush: bool,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RqSet {
    pub zcrx: Option<String>,
    pub tail: Option<u32>,
    pub head: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectRq {
    pub zcrx: Option<String>,
    /// RQ head (kernel-owned); may use `$z0.returned` (RQEs the harness published).
    pub head: Option<Value>,
    /// The kernel consumed at least this many RQEs (head, not wrapped: 32-bit index).
    pub head_at_least: Option<Value>,
    pub tail: Option<Value>,
    /// Buffers the harness holds (received, not yet returned).
    pub held: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectStats {
    pub zcrx: Option<String>,
    pub copy_count: Option<u64>,
    pub copy_bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MmapRegion {
    pub zcrx: Option<String>,
    /// mmap offset (default: the region's mmap_offset).
    pub offset: Option<Value>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {
    pub ring: Option<String>,
    pub fd: Option<String>,
    pub conn: Option<String>,
}

/// Create a TUN device (a netdev without a DMA device) in the case's network namespace;
/// `$NAME.ifindex` refers to it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tun {
    pub name: String,
}

/// The simulated NIC's knobs (netdevsim-zcrx, debugfs `hds/`, vm/netdevsim-zcrx/ patches 0004-0006):
/// set the buffer budget, the on-empty mode or injected allocation failures, reset or check the
/// counters. Knobs a case sets are put back to their defaults after the case.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nsim {
    /// How many more buffers the rx path may take from the page pool (-1: no limit).
    pub netmem_budget: Option<i64>,
    /// What the rx path does with a payload frame when the page pool has no buffer:
    /// `drop` it like a NIC (the default) or deliver it unsplit, to be copied (`copy`).
    pub on_empty: Option<OnEmpty>,
    /// Make the next N buffer allocations of the rx path fail (like an empty pool, but the
    /// memory provider is not asked).
    pub pp_fail_next: Option<u32>,
    /// Then make every N-th allocation fail (0: none).
    pub pp_fail_interval: Option<u32>,
    /// Deliver a TCP payload of at most this many bytes whole in the skb's linear part, as
    /// drivers with rx copybreak do (0: off; patch 0011).
    pub copybreak: Option<u32>,
    /// Receive a GSO frame as the segments that were on the wire, each split into buffers of
    /// its own, as a NIC without LRO (GRO then merges them, with a frag_list past
    /// MAX_SKB_FRAGS frags; patch 0012).
    pub segment: Option<bool>,
    /// Keep up to this many bytes of a split frame's payload in the skb's linear part with the
    /// headers, the rest (one byte at least) in provider buffers, as a NIC whose header buffer
    /// takes a fixed amount of the frame (0: off; patch 0013).
    pub head_bytes: Option<u32>,
    /// Zero the counters.
    #[serde(default)]
    pub reset: bool,
    /// Exact expected values: skbs split into provider buffers / delivered unsplit / dropped
    /// for want of a buffer.
    pub split: Option<u64>,
    pub fallback: Option<u64>,
    pub dropped: Option<u64>,
    /// At least this many split skbs.
    pub split_at_least: Option<u64>,
    /// At least this many skbs dropped for want of a buffer.
    pub dropped_at_least: Option<u64>,
    /// Exact: skbs delivered with their payload linear (`copybreak`).
    pub copied: Option<u64>,
    /// At least this many GSO frames cut into segments (`segment`).
    pub segmented_at_least: Option<u64>,
    /// Exact: split skbs with payload in their linear part too (`head_bytes`).
    pub head_split: Option<u64>,
}

/// `hds/on_empty` of netdevsim-zcrx (patch 0005).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnEmpty {
    Drop,
    Copy,
}

impl Nsim {
    /// Whether the step sets a knob that must be put back after the case.
    pub fn sets_knobs(&self) -> bool {
        self.netmem_budget.is_some()
            || self.on_empty.is_some()
            || self.pp_fail_next.is_some()
            || self.pp_fail_interval.is_some()
            || self.copybreak.is_some()
            || self.segment.is_some()
            || self.head_bytes.is_some()
    }

    /// Whether the step checks a counter.
    pub fn checks(&self) -> bool {
        self.split.is_some()
            || self.fallback.is_some()
            || self.dropped.is_some()
            || self.split_at_least.is_some()
            || self.dropped_at_least.is_some()
            || self.copied.is_some()
            || self.segmented_at_least.is_some()
            || self.head_split.is_some()
    }
}

/// Move the case process into a fresh network namespace (devices created before stay behind).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Netns {
    #[serde(default)]
    pub new: bool,
}

/// A process of the case that receives through an exported instance it is handed over a Unix
/// socket (SCM_RIGHTS), as an application that gets the instance from another would. Exactly
/// one of `start`, `receive`, `exit`, `kill` names the process.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Importer {
    /// Fork a process holding nothing of the case's (every inherited descriptor closed), pass it
    /// the exported file `fd` and the receiving socket of `conn` with SCM_RIGHTS; it imports the
    /// instance on a ring of its own (ZCRX_REG_IMPORT, which must succeed), closes the file and
    /// arms a multishot RECV_ZC on the socket.
    pub start: Option<String>,
    /// With `start`: the exported file's name (an earlier `ctrl: { op: EXPORT, save_fd }`).
    pub fd: Option<String>,
    /// With `start`: the connection whose received bytes the process takes (default c0).
    pub conn: Option<String>,
    /// With `start`: the exporting instance, whose area the CQE offsets name (default z0).
    pub zcrx: Option<String>,
    /// The process's data CQEs: exactly `bytes` more of the connection's stream, each CQE a
    /// data CQE (res > 0, F_MORE) naming a buffer of the exporter's area that holds the stream's
    /// next bytes. The process keeps the buffers.
    pub receive: Option<String>,
    pub bytes: Option<u64>,
    /// How long `receive` waits for progress (default 10000).
    pub timeout_ms: Option<u64>,
    /// Let the process exit without closing anything (its ring and import go with it), and
    /// wait for exit status 0.
    pub exit: Option<String>,
    /// SIGKILL the process (for example while data flows) and reap it.
    pub kill: Option<String>,
}

/// Systematic fault injection (`/proc/thread-self/fail-nth`, docs/fault-injection.md): round N
/// builds fresh state (a new main ring, then the `setup` steps), arms the thread so that its
/// N-th fault point (failslab, fail_page_alloc with sleeping allocations and order-0 pages,
/// fail_usercopy) fails inside the first io_uring syscall of `call`, runs `call`, checks the
/// answer, runs `after`, and drops the round's rings, instances, descriptors and connections.
/// N = 1, 2, ... until the call reaches no N-th fault point; that round must succeed (the state
/// is usable after all the failures before it).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSweep {
    /// Steps run before the call in every round, outside the fault window.
    #[serde(default)]
    pub setup: Vec<super::Step>,
    /// The one step whose io_uring syscall is swept (its `expect` is ignored: an injected
    /// failure must end as an `accept`ed errno or a success).
    pub call: Box<super::Step>,
    /// Steps run after the call in every round where it succeeded (receive data, ...).
    #[serde(default)]
    pub after: Vec<super::Step>,
    /// The errnos an injected failure may end the call with (default ENOMEM, EFAULT).
    #[serde(default)]
    pub accept: Option<Vec<String>>,
    /// Rounds before the sweep gives up (default 400).
    pub max_rounds: Option<u32>,
    /// Fewer rounds than this fail the sweep (default 2: a call reaching no fault point
    /// proves nothing).
    pub min_rounds: Option<u32>,
}

impl FaultSweep {
    pub fn accepted(&self) -> Vec<String> {
        self.accept.clone().unwrap_or_else(|| vec!["ENOMEM".into(), "EFAULT".into()])
    }
}
