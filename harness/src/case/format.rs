//! The case file format: one [`CaseFile`] and the types it is made of, down to [`Step`]
//! (`action.rs`) and the bodies of its actions (`steps.rs`, `nic_steps.rs`). The JSON Schema is
//! derived from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Axis, Sp, Step, Value};
use crate::model::{Feature, FixTag};

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    Registration,
    Reserved,
    Import,
    Area,
    Rq,
    Events,
    Drain,
    Query,
    Ctrl,
    Recv,
    Nic,
    /// What one instance, ring or process must never see of another's.
    Isolation,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Registration => "registration",
            Area::Reserved => "reserved",
            Area::Import => "import",
            Area::Area => "area",
            Area::Rq => "rq",
            Area::Events => "events",
            Area::Drain => "drain",
            Area::Query => "query",
            Area::Ctrl => "ctrl",
            Area::Recv => "recv",
            Area::Nic => "nic",
            Area::Isolation => "isolation",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Cap {
    /// CAP_NET_ADMIN in the caller's user namespace.
    NetAdmin,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelRange {
    /// Lowest kernel version (inclusive), e.g. "7.2".
    pub min: Option<String>,
    /// Highest kernel version (inclusive), e.g. "7.2.99".
    pub max: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    #[serde(default)]
    pub features: Vec<Feature>,
    /// Features the kernel must NOT have: a case about what a kernel without them does (e.g.
    /// a reserved word before it got a meaning). Told by the probe, like `features`, so it
    /// follows the kernel rather than a version number.
    #[serde(default)]
    pub lacks: Vec<Feature>,
    pub kernel: Option<KernelRange>,
    /// Topologies the case can run on (default: host, nodev).
    #[serde(default)]
    pub topology: Vec<String>,
    /// Capabilities; when absent, a case with a `register` step needs net_admin.
    pub caps: Option<Vec<Cap>>,
    /// Resources this case must hold alone under `run -j N` (e.g. `hugepages`, a sysctl name):
    /// it never runs at the same time as another case naming one of them. Cases on a
    /// topology file (a NIC queue, a netdevsim device) and cases creating a TUN device hold
    /// those implicitly.
    #[serde(default)]
    pub exclusive: Vec<String>,
}

fn default_ring_flags() -> Value {
    Value::List(vec![
        Value::Str("DEFER_TASKRUN".into()),
        Value::Str("SINGLE_ISSUER".into()),
        Value::Str("CQE32".into()),
    ])
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RingSpec {
    /// IORING_SETUP_* names (without the prefix) or a number.
    #[serde(default = "default_ring_flags")]
    pub flags: Value,
    #[serde(default = "d_sq_entries")]
    pub entries: u32,
    /// CQ size (IORING_SETUP_CQSIZE is added when set).
    #[serde(default = "d_cq_entries")]
    pub cq_entries: Option<u32>,
}

fn d_sq_entries() -> u32 {
    64
}
fn d_cq_entries() -> Option<u32> {
    Some(1024)
}

impl Default for RingSpec {
    fn default() -> Self {
        RingSpec { flags: default_ring_flags(), entries: d_sq_entries(), cq_entries: d_cq_entries() }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegionKind {
    /// User memory (IORING_MEM_REGION_TYPE_USER).
    #[default]
    User,
    /// Kernel-allocated, mmapped at region_desc.mmap_offset.
    Kernel,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZcrxDefaults {
    #[serde(default = "d_rq_entries")]
    pub rq_entries: u32,
    #[serde(default = "d_area_pages")]
    pub area_pages: u32,
    #[serde(default)]
    pub region: RegionKind,
}

fn d_rq_entries() -> u32 {
    64
}
fn d_area_pages() -> u32 {
    132
}

impl Default for ZcrxDefaults {
    fn default() -> Self {
        ZcrxDefaults { rq_entries: d_rq_entries(), area_pages: d_area_pages(), region: RegionKind::User }
    }
}

/// One case file.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Unique id, dotted: `<area>.<name>`.
    pub id: String,
    /// The area (cases/<area>/): registration, reserved, import, area, rq, events, drain, query,
    /// ctrl, recv, nic, isolation.
    pub area: Area,
    /// One or two sentences: what the kernel must do and why.
    pub about: String,
    /// Rows of the spec this case checks (e.g. R5, N1).
    #[serde(default)]
    pub spec: Vec<String>,
    /// Upstream commits whose bug this case catches: `{ id: <12-40 hex digits>, subject: "..." }`.
    /// A tag counts only once the history mutant of that commit (vm/mutants/history/) has been
    /// shown to fail this case: `cargo test --test history` checks each tag against the proof
    /// record, reports/history-mutation.jsonl.
    #[serde(default)]
    pub fixes: Vec<FixTag>,
    /// CVE ids of the bugs this case catches (`CVE-YYYY-NNNN`, four or more digits at the end).
    #[serde(default)]
    pub cve: Vec<String>,
    /// What the case needs to run: `features`, `lacks`, `kernel` {min, max}, `topology`,
    /// `caps`, `exclusive`; a case that cannot run skips with the reason.
    #[serde(default)]
    pub requires: Requires,
    /// Seconds before the case is killed (default: the run's --timeout).
    pub timeout: Option<f64>,
    /// Parameters: every combination is one case; `{name}` in the file is replaced.
    #[serde(default)]
    pub matrix: BTreeMap<String, Axis>,
    /// The ring: `flags` (IORING_SETUP_* names), `entries`, `cq_entries`.
    #[serde(default)]
    pub ring: RingSpec,
    /// The default registration: `rq_entries`, `area_pages`, `region` (user or kernel).
    #[serde(default)]
    pub zcrx: ZcrxDefaults,
    /// The kernel is known to differ from this case's expectation (a kernel deviation):
    /// on a kernel in range, a failure is reported as xfail and a pass as xpass.
    #[serde(default)]
    pub known_deviation: Vec<KnownDeviation>,
    /// Run the case in a new user namespace: root there, but without CAP_NET_ADMIN in the
    /// initial namespace, which is where zcrx checks it.
    #[serde(default)]
    pub userns: bool,
    /// What the case does and checks, in order (the step kinds are in the table below).
    pub steps: Vec<Sp<Step>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownDeviation {
    /// What the kernel does instead, in a sentence.
    pub reason: String,
    /// Where it is written up (docs/deviations/..., a mailing-list thread).
    pub link: Option<String>,
    /// What the failed check must show, e.g. "kernel returned EFAULT" or "area.rq_area_token:
    /// expected 0x0, kernel wrote 0x1000000000000" (`[FIELD: ][expected ANSWER, ]kernel
    /// returned|wrote ANSWER`), matched against the check's typed values; a failure that does
    /// not show it is a real failure, not the known deviation.
    pub observed: Option<String>,
    pub min: Option<String>,
    pub max: Option<String>,
}

/// What the kernel must answer. Absent on an action step: the call must succeed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The syscall fails with this errno (name).
    pub errno: Option<String>,
    /// Exact non-negative return value.
    pub ret: Option<i64>,
    /// Values read back after the call: `ifq.rq_entries`, `area.rq_area_token`,
    /// `region.mmap_offset`, `ctrl.zc_export.zcrx_fd`, `hdr.result`, `data.features`, ...
    #[serde(default)]
    pub out: BTreeMap<String, Sp<Value>>,
    /// Per-kernel differences: the first entry whose range holds the running kernel (and whose
    /// `page`, if any, is its page size) replaces errno/ret/out.
    #[serde(default)]
    pub kernels: Vec<KernelExpect>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelExpect {
    pub min: Option<String>,
    pub max: Option<String>,
    /// Only where the running kernel's page size is this many bytes (a difference the page
    /// size makes; `why` cites the kernel code).
    pub page: Option<u64>,
    /// Only where the running kernel's page size is larger than this many bytes (a size the
    /// step uses that is below a page there).
    pub page_over: Option<u64>,
    pub errno: Option<String>,
    pub ret: Option<i64>,
    #[serde(default)]
    pub out: BTreeMap<String, Sp<Value>>,
    /// Why this kernel differs.
    pub why: String,
}
