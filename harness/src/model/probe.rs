//! What a run learned about its kernel (the data; `kernel::probe` asks the kernel): the QUERY
//! answers, RECV_ZC support, kernel release, CAP_NET_ADMIN and the derived [`Feature`] set.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use schemars::JsonSchema;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QueryAnswer<T> {
    /// hdr.result (0 = answered, -EOPNOTSUPP = unknown op).
    pub result: i32,
    pub data: Option<T>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpcodesInfo {
    pub nr_request_opcodes: u32,
    pub nr_register_opcodes: u32,
    pub feature_flags: u64,
    pub ring_setup_flags: u64,
    pub enter_flags: u64,
    pub sqe_flags: u64,
    pub nr_query_opcodes: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ZcrxInfo {
    pub register_flags: u64,
    pub area_flags: u64,
    pub nr_ctrl_opcodes: u32,
    pub features: u32,
    pub rq_hdr_size: u32,
    pub rq_hdr_alignment: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ZcrxEventInfo {
    pub event_flags: u32,
    pub stats_size: u32,
    pub stats_off_alignment: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Probe {
    pub kernel_release: String,
    pub kernel_version: Option<(u32, u32, u32)>,
    pub cap_net_admin: bool,
    pub euid: u32,
    /// IORING_REGISTER_QUERY: the errno name when the syscall itself fails.
    pub query_error: Option<String>,
    pub opcodes: Option<QueryAnswer<OpcodesInfo>>,
    pub zcrx: Option<QueryAnswer<ZcrxInfo>>,
    pub zcrx_event: Option<QueryAnswer<ZcrxEventInfo>>,
    /// IORING_REGISTER_PROBE says IORING_OP_RECV_ZC is supported.
    pub recv_zc: Option<bool>,
    /// A DEFER_TASKRUN|SINGLE_ISSUER|CQE_MIXED ring could be created.
    pub cqe_mixed: bool,
    /// /dev/kmsg can be read (kernel splats are watched).
    pub kmsg: bool,
    /// kmemleak is in the kernel and on (/sys/kernel/debug/kmemleak): leaks are scanned for.
    #[serde(default)]
    pub kmemleak: bool,
    /// /proc/self/fail-nth and debugfs failslab/fail_page_alloc exist.
    #[serde(default)]
    pub fault_injection: bool,
    pub features: BTreeSet<Feature>,
}

/// Kernel features a case may require; probed from the running kernel.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// IORING_REGISTER_ZCRX_IFQ exists.
    Zcrx,
    /// IORING_OP_RECV_ZC is supported (IORING_REGISTER_PROBE).
    RecvZc,
    /// IORING_REGISTER_QUERY exists.
    Query,
    /// IO_URING_QUERY_ZCRX answers.
    QueryZcrx,
    /// ZCRX_REG_NODEV is a register flag.
    Nodev,
    /// ZCRX_REG_IMPORT is a register flag.
    Import,
    /// IORING_REGISTER_ZCRX_CTRL exists.
    Ctrl,
    /// ZCRX_CTRL_FLUSH_RQ.
    FlushRq,
    /// ZCRX_CTRL_EXPORT.
    Export,
    /// ZCRX_CTRL_ARM_EVENT.
    ArmEvent,
    /// ZCRX_CTRL_ADD_AREA (7.3).
    AddArea,
    /// ZCRX_FEATURE_EVENT (event_desc, stats).
    Event,
    /// ZCRX_FEATURE_RX_PAGE_SIZE (rx_buf_len).
    RxBufLen,
    /// IORING_SETUP_CQE_MIXED rings can be created.
    CqeMixed,
    /// A debug kernel's fault injection: /proc/self/fail-nth and the failslab and
    /// fail_page_alloc knobs in debugfs (`fault_sweep` steps).
    FaultInjection,
}

impl Probe {
    pub fn version_in(&self, min: Option<&str>, max: Option<&str>) -> bool {
        let Some(v) = self.kernel_version else {
            return true;
        };
        let (lo, hi) = version_range(min, max);
        lo <= v && v <= hi
    }
}

/// The kernels a `min`/`max` pair admits, lowest and highest: no (or no readable) minimum is
/// 0.0.0, no maximum is unbounded, and "7.2" as a maximum means every 7.2.x.
pub fn version_range(min: Option<&str>, max: Option<&str>) -> ((u32, u32, u32), (u32, u32, u32)) {
    let lo = min.and_then(parse_version).unwrap_or((0, 0, 0));
    let hi = match max.and_then(|m| parse_version(m).map(|v| (m, v))) {
        Some((m, (a, b, _))) if m.split('.').count() < 3 => (a, b, u32::MAX),
        Some((_, v)) => v,
        None => (u32::MAX, u32::MAX, u32::MAX),
    };
    (lo, hi)
}

/// Parses the leading "X.Y.Z" of a release string.
pub fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let patch = if s.split('.').count() > 2 { it.next().and_then(|p| p.parse().ok()).unwrap_or(0) } else { 0 };
    Some((major, minor, patch))
}
