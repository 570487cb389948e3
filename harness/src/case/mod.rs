//! The case file format: types, loading with file:line:column errors, matrix
//! expansion and static validation. The JSON Schema (`zcrx-conform schema`) is
//! derived from these types.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

pub mod names;

use self::names as consts;
use crate::kernel::uapi::{self, FieldTable};
use crate::model::Feature;

/// A value with the place it was written, for error messages.
#[derive(Clone, Debug)]
pub struct Sp<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Sp { value: s.value, line: s.referenced.line(), column: s.referenced.column() })
    }
}

impl<T: Serialize> Serialize for Sp<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A number, a symbolic name (`EINVAL`, `NODEV`, `$z0.id`, `$area.addr+1`), or a
/// list of names/numbers that are OR-ed together (flags).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
    List(Vec<Value>),
}

impl Default for Value {
    fn default() -> Self {
        Value::Int(0)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v:#x}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(s) => write!(f, "{s}"),
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(|v| v.to_string()).collect();
                write!(f, "[{}]", parts.join(", "))
            }
        }
    }
}

/// Field overrides of one uapi struct: `{ "__resv[0]": 1, flags: [NODEV] }`.
pub type Overrides = BTreeMap<String, Sp<Value>>;

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
    pub kernel: Option<KernelRange>,
    /// Topologies the case can run on (default: host, nodev).
    #[serde(default)]
    pub topology: Vec<String>,
    /// Capabilities; when absent, a case with a `register` step needs net_admin.
    pub caps: Option<Vec<Cap>>,
}

/// A matrix axis: a list of scalars, a list of rows (maps setting several placeholders
/// at once), or every reserved/output field of a uapi struct.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Axis {
    Values(Vec<Value>),
    /// Rows of named values: each row sets several `{name}` placeholders at once.
    Rows(Vec<BTreeMap<String, Value>>),
    Reserved(ReservedOf),
}

/// Written by hand: serde's untagged buffering loses maps with this YAML reader.
impl<'de> Deserialize<'de> for Axis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, SeqAccess, Visitor};
        struct V;
        enum Item {
            Scalar(Value),
            Row(BTreeMap<String, Value>),
        }
        struct ItemSeed;
        impl<'de> serde::de::DeserializeSeed<'de> for ItemSeed {
            type Value = Item;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Item, D::Error> {
                struct IV;
                impl<'de> Visitor<'de> for IV {
                    type Value = Item;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a scalar, a list, or a map of placeholder values")
                    }
                    fn visit_i64<E: Error>(self, v: i64) -> Result<Item, E> {
                        Ok(Item::Scalar(Value::Int(v)))
                    }
                    fn visit_u64<E: Error>(self, v: u64) -> Result<Item, E> {
                        Ok(Item::Scalar(i64::try_from(v).map(Value::Int).unwrap_or(Value::UInt(v))))
                    }
                    fn visit_bool<E: Error>(self, v: bool) -> Result<Item, E> {
                        Ok(Item::Scalar(Value::Bool(v)))
                    }
                    fn visit_str<E: Error>(self, v: &str) -> Result<Item, E> {
                        Ok(Item::Scalar(Value::Str(v.to_string())))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Item, A::Error> {
                        let mut l = Vec::new();
                        while let Some(v) = a.next_element::<Value>()? {
                            l.push(v);
                        }
                        Ok(Item::Scalar(Value::List(l)))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Item, A::Error> {
                        let mut m = BTreeMap::new();
                        while let Some((k, v)) = a.next_entry::<String, Value>()? {
                            m.insert(k, v);
                        }
                        Ok(Item::Row(m))
                    }
                }
                d.deserialize_any(IV)
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Axis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of values, a list of rows, or { reserved_of: STRUCT }")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Axis, A::Error> {
                let mut vals = Vec::new();
                let mut rows = Vec::new();
                while let Some(item) = a.next_element_seed(ItemSeed)? {
                    match item {
                        Item::Scalar(v) => vals.push(v),
                        Item::Row(r) => rows.push(r),
                    }
                }
                match (vals.is_empty(), rows.is_empty()) {
                    (_, true) => Ok(Axis::Values(vals)),
                    (true, false) => Ok(Axis::Rows(rows)),
                    _ => Err(A::Error::custom("a matrix axis mixes plain values and rows")),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Axis, A::Error> {
                let mut r = ReservedOf { reserved_of: String::new(), prefix: String::new(), except: Vec::new() };
                let mut seen = false;
                while let Some(k) = a.next_key::<String>()? {
                    match k.as_str() {
                        "reserved_of" => {
                            r.reserved_of = a.next_value()?;
                            seen = true;
                        }
                        "prefix" => r.prefix = a.next_value()?,
                        "except" => r.except = a.next_value()?,
                        other => return Err(A::Error::unknown_field(other, &["reserved_of", "prefix", "except"])),
                    }
                }
                if !seen {
                    return Err(A::Error::missing_field("reserved_of"));
                }
                Ok(Axis::Reserved(r))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservedOf {
    /// Struct name, e.g. io_uring_zcrx_ifq_reg.
    pub reserved_of: String,
    /// Only fields whose name starts with this (e.g. "zc_flush.").
    #[serde(default)]
    pub prefix: String,
    /// Field names to leave out.
    #[serde(default)]
    pub except: Vec<String>,
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
    pub area: Area,
    /// One or two sentences: what the kernel must do and why.
    pub about: String,
    /// Rows of the spec this case checks (e.g. R5, N1).
    #[serde(default)]
    pub spec: Vec<String>,
    #[serde(default)]
    pub requires: Requires,
    /// Seconds before the case is killed (default: the run's --timeout).
    pub timeout: Option<f64>,
    /// Parameters: every combination is one case; `{name}` in the file is replaced.
    #[serde(default)]
    pub matrix: BTreeMap<String, Axis>,
    #[serde(default)]
    pub ring: RingSpec,
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
    pub steps: Vec<Sp<Step>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownDeviation {
    /// What the kernel does instead, in a sentence.
    pub reason: String,
    /// Where it is written up (docs/deviations/..., a mailing-list thread).
    pub link: Option<String>,
    /// Text the failure message must contain (e.g. "kernel returned EFAULT"); a failure
    /// that does not is a real failure, not the known deviation.
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
    /// Per-kernel differences: the first entry whose range holds the running kernel
    /// replaces errno/ret/out.
    #[serde(default)]
    pub kernels: Vec<KernelExpect>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelExpect {
    pub min: Option<String>,
    pub max: Option<String>,
    pub errno: Option<String>,
    pub ret: Option<i64>,
    #[serde(default)]
    pub out: BTreeMap<String, Sp<Value>>,
    /// Why this kernel differs.
    pub why: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Which ring (default: main).
    pub ring: Option<String>,
    pub register: Option<Register>,
    pub ctrl: Option<Ctrl>,
    pub query: Option<Query>,
    pub register_raw: Option<RegisterRaw>,
    pub open_ring: Option<OpenRing>,
    pub connect: Option<Connect>,
    pub send: Option<Send>,
    pub shutdown: Option<Shutdown>,
    pub recv_zc: Option<RecvZc>,
    pub expect_cqes: Option<ExpectCqes>,
    pub expect_data: Option<ExpectData>,
    pub drain_data: Option<DrainData>,
    pub expect_no_cqe: Option<ExpectNoCqe>,
    pub return_buffers: Option<ReturnBuffers>,
    pub rq_push: Option<RqPush>,
    pub rq_set: Option<RqSet>,
    pub expect_rq: Option<ExpectRq>,
    pub expect_stats: Option<ExpectStats>,
    pub mmap_region: Option<MmapRegion>,
    pub close: Option<Close>,
    pub tun: Option<Tun>,
    pub netns: Option<Netns>,
    pub ethtool: Option<crate::topology::Settings>,
    pub nsim: Option<Nsim>,
    pub expect: Option<Expect>,
}

impl Step {
    /// Names of the action keys present.
    pub fn actions(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        macro_rules! has {
            ($($f:ident),*) => { $(if self.$f.is_some() { v.push(stringify!($f)); })* };
        }
        has!(
            register,
            ctrl,
            query,
            register_raw,
            open_ring,
            connect,
            send,
            shutdown,
            recv_zc,
            expect_cqes,
            expect_data,
            drain_data,
            expect_no_cqe,
            return_buffers,
            rq_push,
            rq_set,
            expect_rq,
            expect_stats,
            mmap_region,
            close,
            tun,
            netns,
            ethtool,
            nsim
        );
        v
    }
}

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
    /// Area memory size in pages (default: the case's zcrx.area_pages).
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
    /// Retry while the kernel answers EEXIST/EBUSY for up to this long (a queue being released
    /// asynchronously after a teardown); the final answer is what is checked.
    pub retry_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AreaProt {
    Read,
    TailNone,
}

/// IORING_REGISTER_ZCRX_CTRL.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ctrl {
    /// FLUSH_RQ, EXPORT, ARM_EVENT, ADD_AREA or a number.
    pub op: Value,
    /// The zcrx instance (default z0) whose id is used.
    pub zcrx: Option<String>,
    /// Overrides of zcrx_ctrl fields (zcrx_id, __resv[0], zc_arm_event.event_type, ...).
    #[serde(default)]
    pub set: Overrides,
    /// ADD_AREA: overrides of the new area's io_uring_zcrx_area_reg.
    #[serde(default)]
    pub area: Overrides,
    /// ADD_AREA: the new area's size in pages (default: the case's zcrx.area_pages).
    pub area_pages: Option<u32>,
    /// EXPORT: name under which the returned fd is kept (default box).
    pub save_fd: Option<String>,
    /// Place the zcrx_ctrl struct on a read-only page (the kernel cannot write results back).
    #[serde(default)]
    pub readonly: bool,
    /// Pass this address instead of the struct (e.g. 0 or $fault).
    pub arg: Option<Value>,
    #[serde(default)]
    pub nr_args: u32,
}

/// IORING_REGISTER_QUERY with one header.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// OPCODES, ZCRX, SCQ, ZCRX_EVENT or a number.
    pub op: Value,
    /// Overrides of io_uring_query_hdr (size defaults to the op's struct size).
    #[serde(default)]
    pub hdr: Overrides,
    /// Use a ring fd (true) or -1 (false, the default: queries work "blind").
    #[serde(default)]
    pub on_ring: bool,
    #[serde(default)]
    pub nr_args: u32,
    /// Chain this many copies of the header (tests the chain limit).
    pub chain: Option<u32>,
}

/// A raw io_uring_register call.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRaw {
    /// The fd to pass (default: the ring's); e.g. -1 for a "blind" call.
    pub fd: Option<Value>,
    pub opcode: Value,
    #[serde(default)]
    pub arg: Option<Value>,
    #[serde(default)]
    pub nr_args: u32,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRing {
    pub name: String,
    #[serde(default)]
    pub spec: RingSpec,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConnKind {
    /// TCP over loopback (or between the topology's endpoints).
    #[default]
    Tcp,
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
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Send {
    pub conn: Option<String>,
    /// Bytes to send from the peer; the pattern continues across sends.
    pub bytes: u64,
    /// Size of each write() (default 64 KiB).
    pub chunk: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    pub conn: Option<String>,
    /// Close the peer (true) rather than shutdown(SHUT_WR).
    #[serde(default)]
    pub close: bool,
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

/// One expected CQE. `flags` is exact; on CQE_MIXED rings F_32 is required on big
/// CQEs and not listed.
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
    /// At least this many bytes must arrive.
    #[serde(default)]
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
    pub user_data: Option<u64>,
    #[serde(default = "d_wait")]
    pub wait_ms: u64,
}

fn d_wait() -> u64 {
    200
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
    /// Repeat this entry.
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

/// The simulated NIC's knobs (netdevsim-zcrx, debugfs `hds/`): set the buffer budget,
/// reset or check the split/fallback counters.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nsim {
    /// How many more buffers the rx path may take from the page pool (-1: no limit).
    pub netmem_budget: Option<i64>,
    /// Zero the counters.
    #[serde(default)]
    pub reset: bool,
    /// Exact expected values: skbs split into provider buffers / delivered unsplit.
    pub split: Option<u64>,
    pub fallback: Option<u64>,
    /// At least this many split skbs.
    pub split_at_least: Option<u64>,
}

/// Move the case process into a fresh network namespace (devices created before stay behind).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Netns {
    #[serde(default)]
    pub new: bool,
}

/// A loading or validation error with its place.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub msg: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.msg)
        } else {
            write!(f, "{}: {}", self.file.display(), self.msg)
        }
    }
}

/// One runnable case: a file, or one combination of its matrix.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub file: PathBuf,
    /// Index among the file's expansions.
    pub index: usize,
    pub params: Vec<(String, String)>,
    pub def: CaseFile,
}

#[derive(Deserialize)]
struct MatrixOnly {
    #[serde(default)]
    matrix: Sp<BTreeMap<String, Axis>>,
}

impl<T: Default> Default for Sp<T> {
    fn default() -> Self {
        Sp { value: T::default(), line: 0, column: 0 }
    }
}

fn yaml_err(file: &Path, e: serde_saphyr::Error) -> LoadError {
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let msg = e.to_string();
    // The crate renders a multi-line snippet; keep the first line of its message.
    let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid YAML").trim().to_string();
    LoadError { file: file.to_path_buf(), line, column, msg: first }
}

/// Expands one axis into its rows of (placeholder, value).
fn axis_values(name: &str, axis: &Axis) -> Result<Vec<Vec<(String, String)>>, String> {
    let single = |v: Vec<String>| v.into_iter().map(|x| vec![(name.to_string(), x)]).collect();
    match axis {
        Axis::Values(v) => Ok(single(v.iter().map(|x| x.to_string()).collect())),
        Axis::Rows(rows) => {
            Ok(rows.iter().map(|r| r.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()).collect())
        }
        Axis::Reserved(r) => {
            let t = table_by_name(&r.reserved_of)
                .ok_or_else(|| format!("reserved_of: unknown struct `{}` (known: {})", r.reserved_of, table_names()))?;
            Ok(single(
                t.reserved()
                    .filter(|f| f.name.starts_with(&r.prefix) && !r.except.iter().any(|e| e == f.name))
                    .map(|f| f.name.to_string())
                    .collect(),
            ))
        }
    }
}

pub fn table_by_name(name: &str) -> Option<&'static FieldTable> {
    uapi::TABLES.iter().copied().find(|t| t.name == name)
}

fn table_names() -> String {
    uapi::TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// Loads a case file and expands its matrix; validates every expansion.
pub fn load_file(path: &Path) -> Result<Vec<Case>, Vec<LoadError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![LoadError { file: path.to_path_buf(), line: 0, column: 0, msg: format!("cannot read: {e}") }]
    })?;
    load_str(path, &text)
}

pub fn load_str(path: &Path, text: &str) -> Result<Vec<Case>, Vec<LoadError>> {
    let err1 = |e| vec![yaml_err(path, e)];
    let m: MatrixOnly = serde_saphyr::from_str(text).map_err(err1)?;
    let mut combos: Vec<Vec<(String, String)>> = vec![vec![]];
    for (name, axis) in &m.matrix.value {
        let values = axis_values(name, axis).map_err(|msg| {
            vec![LoadError { file: path.to_path_buf(), line: m.matrix.line, column: m.matrix.column, msg }]
        })?;
        if values.is_empty() {
            return Err(vec![LoadError {
                file: path.to_path_buf(),
                line: m.matrix.line,
                column: m.matrix.column,
                msg: format!("matrix axis `{name}` has no values"),
            }]);
        }
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.extend(v.iter().cloned());
                    c
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (index, params) in combos.into_iter().enumerate() {
        let mut t = text.to_string();
        for (k, v) in &params {
            t = t.replace(&format!("{{{k}}}"), v);
        }
        let def: CaseFile = match serde_saphyr::from_str(&t) {
            Ok(d) => d,
            Err(e) => {
                errors.push(yaml_err(path, e));
                break;
            }
        };
        let id = if params.is_empty() {
            def.id.clone()
        } else {
            let vals: Vec<&str> = params.iter().map(|(_, v)| v.as_str()).collect();
            format!("{}[{}]", def.id, vals.join(","))
        };
        let case = Case { id, file: path.to_path_buf(), index, params, def };
        errors.extend(validate(&case));
        out.push(case);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Finds case files under the given paths (files or directories, recursively).
pub fn find_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| LoadError {
            file: p.clone(),
            line: 0,
            column: 0,
            msg: format!("cannot open: {e}"),
        })?;
        if meta.is_dir() {
            walk(p, &mut files).map_err(|e| LoadError { file: p.clone(), line: 0, column: 0, msg: e.to_string() })?;
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Loads every case under `paths`; all errors are collected. Duplicate ids are errors.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Case>, Vec<LoadError>> {
    let files = find_files(paths).map_err(|e| vec![e])?;
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(c) => cases.extend(c),
            Err(e) => errors.extend(e),
        }
    }
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for c in &cases {
        if let Some(prev) = seen.insert(c.id.clone(), c.file.clone()) {
            errors.push(LoadError {
                file: c.file.clone(),
                line: 1,
                column: 1,
                msg: format!("duplicate case id `{}` (also in {})", c.id, prev.display()),
            });
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// Static checks that serde cannot do: one action per step, field names, constants,
/// errno names, topology names, version strings.
pub fn validate(case: &Case) -> Vec<LoadError> {
    let mut errs = Vec::new();
    let file = &case.file;
    let push = |errs: &mut Vec<LoadError>, line: u64, column: u64, msg: String| {
        errs.push(LoadError { file: file.clone(), line, column, msg });
    };
    let check = |errs: &mut Vec<LoadError>, table: &FieldTable, ov: &Overrides| {
        for (k, v) in ov {
            if k == "stats_offset" && v.value == Value::Str("auto".into()) {
                continue;
            }
            match table.get(k) {
                None => push(
                    errs,
                    v.line,
                    v.column,
                    format!(
                        "unknown field `{k}` of {} (fields: {})",
                        table.name,
                        table.names().collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(_) => {
                    if let Err(e) = consts::resolve_static(&v.value, consts::field_ns(table, k)) {
                        push(errs, v.line, v.column, format!("{}.{k}: {e}", table.name));
                    }
                }
            }
        }
    };
    let d = &case.def;
    for t in &d.requires.topology {
        if !crate::topology::KNOWN.contains(&t.as_str()) {
            let msg =
                format!("requires.topology: unknown topology `{t}` (known: {})", crate::topology::KNOWN.join(", "));
            push(&mut errs, 1, 1, msg);
        }
    }
    if let Some(k) = &d.requires.kernel {
        for v in [&k.min, &k.max].into_iter().flatten() {
            if crate::kernel::sys::parse_version(v).is_none() {
                push(&mut errs, 1, 1, format!("requires.kernel: `{v}` is not a version"));
            }
        }
    }
    if let Err(e) = consts::resolve_static(&d.ring.flags, consts::Ns::Setup) {
        push(&mut errs, 1, 1, format!("ring.flags: {e}"));
    }
    for step in &d.steps {
        let (l, c) = (step.line, step.column);
        let s = &step.value;
        let acts = s.actions();
        if acts.len() != 1 {
            push(&mut errs, l, c, format!("a step needs exactly one action, found {}: {:?}", acts.len(), acts));
            continue;
        }
        if let Some(r) = &s.register {
            check(&mut errs, &uapi::IFQ_REG, &r.ifq);
            check(&mut errs, &uapi::AREA_REG, &r.area);
            check(&mut errs, &uapi::REGION_DESC, &r.region);
            if let Some(ev) = &r.event {
                check(&mut errs, &uapi::EVENT_DESC, ev);
            }
            for ro in &r.readonly {
                if !["ifq", "area", "region", "event"].contains(&ro.as_str()) {
                    push(&mut errs, l, c, format!("register.readonly: `{ro}` is not one of ifq, area, region, event"));
                }
            }
        }
        if let Some(x) = &s.ctrl {
            if let Err(e) = consts::resolve_static(&x.op, consts::Ns::CtrlOp) {
                push(&mut errs, l, c, format!("ctrl.op: {e}"));
            }
            check(&mut errs, &uapi::CTRL, &x.set);
            check(&mut errs, &uapi::AREA_REG, &x.area);
        }
        if let Some(q) = &s.query {
            if let Err(e) = consts::resolve_static(&q.op, consts::Ns::QueryOp) {
                push(&mut errs, l, c, format!("query.op: {e}"));
            }
            check(&mut errs, &uapi::QUERY_HDR, &q.hdr);
        }
        if let Some(r) = &s.register_raw {
            if let Err(e) = consts::resolve_static(&r.opcode, consts::Ns::RegisterOp) {
                push(&mut errs, l, c, format!("register_raw.opcode: {e}"));
            }
        }
        if let Some(o) = &s.open_ring {
            if let Err(e) = consts::resolve_static(&o.spec.flags, consts::Ns::Setup) {
                push(&mut errs, l, c, format!("open_ring.flags: {e}"));
            }
        }
        if let Some(r) = &s.recv_zc {
            check(&mut errs, &uapi::SQE, &r.sqe);
        }
        let mut cqes: Vec<&CqeExpect> = Vec::new();
        if let Some(e) = &s.expect_cqes {
            cqes.extend(e.cqes.iter());
        }
        if let Some(e) = &s.expect_data {
            cqes.extend(e.final_cqe.iter());
        }
        if let Some(e) = &s.drain_data {
            cqes.extend(e.final_cqe.iter());
        }
        for cq in cqes {
            if let Err(e) = consts::resolve_static(&cq.res, consts::Ns::Res) {
                push(&mut errs, l, c, format!("res: {e}"));
            }
            for f in &cq.flags {
                if consts::lookup(consts::Ns::CqeFlags, f).is_none() {
                    let msg = format!("unknown CQE flag `{f}` (known: {})", consts::names(consts::Ns::CqeFlags));
                    push(&mut errs, l, c, msg);
                }
            }
        }
        if let Some(e) = &s.expect {
            let errnos = e.errno.iter().chain(e.kernels.iter().filter_map(|k| k.errno.as_ref()));
            for en in errnos {
                if crate::kernel::sys::errno_by_name(en).is_none() {
                    push(&mut errs, l, c, format!("expect.errno: unknown errno `{en}`"));
                }
            }
            for v in e.kernels.iter().flat_map(|k| [&k.min, &k.max]).flatten() {
                if crate::kernel::sys::parse_version(v).is_none() {
                    push(&mut errs, l, c, format!("expect.kernels: `{v}` is not a version"));
                }
            }
            for (k, v) in e.out.iter().chain(e.kernels.iter().flat_map(|k| k.out.iter())) {
                if let Err(msg) = check_out_key(k) {
                    push(&mut errs, v.line, v.column, msg);
                }
                if let Err(msg) = consts::resolve_static(&v.value, consts::Ns::Any) {
                    push(&mut errs, v.line, v.column, format!("expect.out.{k}: {msg}"));
                }
            }
            if !matches!(acts[0], "register" | "ctrl" | "query" | "register_raw" | "open_ring" | "mmap_region") {
                push(&mut errs, l, c, format!("`expect` does not apply to a {} step", acts[0]));
            }
        }
    }
    errs
}

/// `out` keys are `<struct>.<field>`: ifq, area, region, event, ctrl, hdr, data.
pub fn check_out_key(k: &str) -> Result<(), String> {
    let (prefix, field) = k
        .split_once('.')
        .ok_or_else(|| format!("expect.out: `{k}` needs a prefix (ifq., area., region., ctrl., hdr., data.)"))?;
    let table: &FieldTable = match prefix {
        "ifq" => &uapi::IFQ_REG,
        "area" => &uapi::AREA_REG,
        "region" => &uapi::REGION_DESC,
        "event" => &uapi::EVENT_DESC,
        "ctrl" => &uapi::CTRL,
        "hdr" => &uapi::QUERY_HDR,
        "data" => {
            return if [&uapi::QUERY_OPCODES, &uapi::QUERY_ZCRX, &uapi::QUERY_ZCRX_EVENT]
                .iter()
                .any(|t| t.get(field).is_some())
            {
                Ok(())
            } else {
                Err(format!("expect.out: `{field}` is no field of a query result"))
            }
        }
        _ => return Err(format!("expect.out: unknown prefix `{prefix}` (ifq, area, region, event, ctrl, hdr, data)")),
    };
    table.get(field).map(|_| ()).ok_or_else(|| format!("expect.out: unknown field `{field}` of {}", table.name))
}

/// JSON Schema of the case format.
pub fn schema() -> serde_json::Value {
    let s = schemars::schema_for!(CaseFile);
    serde_json::to_value(s).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Case>, Vec<LoadError>> {
        load_str(Path::new("t.yaml"), text)
    }

    #[test]
    fn minimal_case_loads_with_defaults() {
        let c = load("id: a.b\narea: registration\nabout: x\nsteps:\n  - register: {}\n").expect("loads");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].def.zcrx.rq_entries, 64);
        assert_eq!(c[0].def.ring.cq_entries, Some(1024));
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = load("id: a.b\narea: registration\nabout: x\nstepz: []\n").expect_err("fails");
        assert_eq!(e[0].line, 4, "{}", e[0]);
        assert!(e[0].msg.contains("stepz"), "{}", e[0]);
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = load("id: a.b\narea: registration\nabout: x\ntimeout: soon\nsteps: []\n").expect_err("fails");
        assert_eq!(e[0].line, 4, "{}", e[0]);
    }

    #[test]
    fn unknown_struct_field_is_located() {
        let e = load("id: a.b\narea: reserved\nabout: x\nsteps:\n  - register:\n      ifq: { nope: 1 }\n")
            .expect_err("fails");
        assert_eq!((e[0].line, e[0].column > 0), (6, true), "{}", e[0]);
        assert!(e[0].msg.contains("unknown field `nope`"), "{}", e[0]);
    }

    #[test]
    fn unknown_errno_is_an_error() {
        let e = load("id: a.b\narea: registration\nabout: x\nsteps:\n  - register: {}\n    expect: { errno: EWHAT }\n")
            .expect_err("fails");
        assert!(e[0].msg.contains("EWHAT"), "{}", e[0]);
        assert_eq!(e[0].line, 5);
    }

    #[test]
    fn matrix_expands_reserved_fields() {
        let c = load(
            "id: r.ifq\narea: reserved\nabout: x\nmatrix:\n  field: { reserved_of: io_uring_zcrx_ifq_reg }\nsteps:\n  - register:\n      ifq: { \"{field}\": 1 }\n    expect: { errno: EINVAL }\n",
        )
        .expect("loads");
        let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["r.ifq[zcrx_id]", "r.ifq[__resv[0]]", "r.ifq[__resv[1]]"]);
    }

    #[test]
    fn two_actions_in_one_step_is_an_error() {
        let e = load("id: a\narea: rq\nabout: x\nsteps:\n  - { register: {}, connect: {} }\n").expect_err("fails");
        assert!(e[0].msg.contains("exactly one action"), "{}", e[0]);
    }

    #[test]
    fn schema_mentions_steps() {
        let s = schema().to_string();
        assert!(s.contains("expect_data") && s.contains("reserved_of"));
    }
}
