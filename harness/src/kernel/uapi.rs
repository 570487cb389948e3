//! Exact user API of io_uring zero-copy receive (x86-64), written from the kernel
//! headers' layout (`include/uapi/linux/io_uring.h`, `io_uring/zcrx.h`,
//! `io_uring/query.h`, 7.3). Every struct has compile-time size and offset asserts,
//! and every field (reserved words included) is reachable by name through
//! [`FieldTable`], so a case file can set or read any of them.

use std::mem::{offset_of, size_of};

pub const IORING_OP_RECV_ZC: u8 = 58;

pub const IORING_REGISTER_PROBE: u32 = 8;
pub const IORING_REGISTER_ZCRX_IFQ: u32 = 32;
pub const IORING_REGISTER_MEM_REGION: u32 = 34;
pub const IORING_REGISTER_QUERY: u32 = 35;
pub const IORING_REGISTER_ZCRX_CTRL: u32 = 36;

pub const IORING_SETUP_IOPOLL: u32 = 1 << 0;
pub const IORING_SETUP_SQPOLL: u32 = 1 << 1;
pub const IORING_SETUP_CQSIZE: u32 = 1 << 3;
pub const IORING_SETUP_CLAMP: u32 = 1 << 4;
pub const IORING_SETUP_SUBMIT_ALL: u32 = 1 << 7;
pub const IORING_SETUP_COOP_TASKRUN: u32 = 1 << 8;
pub const IORING_SETUP_TASKRUN_FLAG: u32 = 1 << 9;
pub const IORING_SETUP_SQE128: u32 = 1 << 10;
pub const IORING_SETUP_CQE32: u32 = 1 << 11;
pub const IORING_SETUP_SINGLE_ISSUER: u32 = 1 << 12;
pub const IORING_SETUP_DEFER_TASKRUN: u32 = 1 << 13;
pub const IORING_SETUP_NO_SQARRAY: u32 = 1 << 16;
pub const IORING_SETUP_CQE_MIXED: u32 = 1 << 18;

pub const IORING_RECVSEND_POLL_FIRST: u16 = 1 << 0;
pub const IORING_RECV_MULTISHOT: u16 = 1 << 1;

pub const IORING_CQE_F_BUFFER: u32 = 1 << 0;
pub const IORING_CQE_F_MORE: u32 = 1 << 1;
pub const IORING_CQE_F_SOCK_NONEMPTY: u32 = 1 << 2;
pub const IORING_CQE_F_NOTIF: u32 = 1 << 3;
pub const IORING_CQE_F_SKIP: u32 = 1 << 5;
pub const IORING_CQE_F_32: u32 = 1 << 15;

pub const IORING_MEM_REGION_TYPE_USER: u32 = 1;
/// Kernel-internal mmap offset base of the RQ region (io_uring/memmap.h); returned in
/// `region_desc.mmap_offset`.
pub const IORING_MAP_OFF_ZCRX_REGION: u64 = 0x3000_0000;
pub const IORING_OFF_ZCRX_SHIFT: u32 = 16;

pub const IORING_ZCRX_AREA_SHIFT: u32 = 48;
pub const IORING_ZCRX_AREA_MASK: u64 = !((1u64 << IORING_ZCRX_AREA_SHIFT) - 1);
pub const IORING_ZCRX_AREA_DMABUF: u32 = 1;

pub const ZCRX_REG_IMPORT: u32 = 1;
pub const ZCRX_REG_NODEV: u32 = 2;
pub const ZCRX_FEATURE_RX_PAGE_SIZE: u64 = 1 << 0;
pub const ZCRX_FEATURE_EVENT: u64 = 1 << 1;

pub const ZCRX_EVENT_ALLOC_FAIL: u32 = 0;
pub const ZCRX_EVENT_COPY: u32 = 1;
pub const ZCRX_EVENT_DESC_FLAG_STATS: u32 = 1;

pub const ZCRX_CTRL_FLUSH_RQ: u32 = 0;
pub const ZCRX_CTRL_EXPORT: u32 = 1;
pub const ZCRX_CTRL_ARM_EVENT: u32 = 2;
pub const ZCRX_CTRL_ADD_AREA: u32 = 3;

pub const IO_URING_QUERY_OPCODES: u32 = 0;
pub const IO_URING_QUERY_ZCRX: u32 = 1;
pub const IO_URING_QUERY_SCQ: u32 = 2;
pub const IO_URING_QUERY_ZCRX_EVENT: u32 = 3;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZcrxRqe {
    pub off: u64,
    pub len: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZcrxCqe {
    pub off: u64,
    pub pad: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZcrxOffsets {
    pub head: u32,
    pub tail: u32,
    pub rqes: u32,
    pub resv2: u32,
    pub resv: [u64; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZcrxAreaReg {
    pub addr: u64,
    pub len: u64,
    pub rq_area_token: u64,
    pub flags: u32,
    pub dmabuf_fd: u32,
    pub resv2: [u64; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZcrxStats {
    pub copy_count: u64,
    pub copy_bytes: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZcrxEventDesc {
    pub user_data: u64,
    pub type_mask: u32,
    pub flags: u32,
    pub stats_offset: u64,
    pub resv2: [u64; 9],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZcrxIfqReg {
    pub if_idx: u32,
    pub if_rxq: u32,
    pub rq_entries: u32,
    pub flags: u32,
    pub area_ptr: u64,
    pub region_ptr: u64,
    pub offsets: ZcrxOffsets,
    pub zcrx_id: u32,
    pub rx_buf_len: u32,
    pub event_desc: u64,
    pub resv: [u64; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionDesc {
    pub user_addr: u64,
    pub size: u64,
    pub flags: u32,
    pub id: u32,
    pub mmap_offset: u64,
    pub resv: [u64; 4],
}

/// `struct zcrx_ctrl`; the 48-byte union is kept as raw words and addressed through
/// the field table under each member's name (`zc_export.zcrx_fd`, `zc_area.area_ptr`, ...).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZcrxCtrl {
    pub zcrx_id: u32,
    pub op: u32,
    pub resv: [u64; 2],
    pub body: [u64; 6],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryHdr {
    pub next_entry: u64,
    pub query_data: u64,
    pub query_op: u32,
    pub size: u32,
    pub result: i32,
    pub resv: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryOpcodes {
    pub nr_request_opcodes: u32,
    pub nr_register_opcodes: u32,
    pub feature_flags: u64,
    pub ring_setup_flags: u64,
    pub enter_flags: u64,
    pub sqe_flags: u64,
    pub nr_query_opcodes: u32,
    pub resv: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryZcrx {
    pub register_flags: u64,
    pub area_flags: u64,
    pub nr_ctrl_opcodes: u32,
    pub features: u32,
    pub rq_hdr_size: u32,
    pub rq_hdr_alignment: u32,
    pub resv2: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryZcrxEvent {
    pub event_flags: u32,
    pub stats_size: u32,
    pub stats_off_alignment: u32,
    pub resv1: u32,
    pub resv2: [u64; 4],
}

/// `struct io_uring_sqe`, 64 bytes, with the unions flattened to the members RECV_ZC uses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sqe {
    pub opcode: u8,
    pub flags: u8,
    pub ioprio: u16,
    pub fd: i32,
    pub off: u64,
    pub addr: u64,
    pub len: u32,
    pub msg_flags: u32,
    pub user_data: u64,
    pub buf_index: u16,
    pub personality: u16,
    pub zcrx_ifq_idx: u32,
    pub addr3: u64,
    pub pad2: u64,
}

macro_rules! assert_layout {
    ($t:ty, $size:expr, $($field:ident = $off:expr),* $(,)?) => {
        const _: () = assert!(size_of::<$t>() == $size);
        $(const _: () = assert!(offset_of!($t, $field) == $off);)*
    };
}

assert_layout!(ZcrxRqe, 16, off = 0, len = 8, pad = 12);
assert_layout!(ZcrxCqe, 16, off = 0, pad = 8);
assert_layout!(ZcrxOffsets, 32, head = 0, tail = 4, rqes = 8, resv2 = 12, resv = 16);
assert_layout!(ZcrxAreaReg, 48, addr = 0, len = 8, rq_area_token = 16, flags = 24, dmabuf_fd = 28, resv2 = 32);
assert_layout!(ZcrxStats, 16, copy_count = 0, copy_bytes = 8);
assert_layout!(ZcrxEventDesc, 96, user_data = 0, type_mask = 8, flags = 12, stats_offset = 16, resv2 = 24);
assert_layout!(
    ZcrxIfqReg,
    96,
    if_idx = 0,
    if_rxq = 4,
    rq_entries = 8,
    flags = 12,
    area_ptr = 16,
    region_ptr = 24,
    offsets = 32,
    zcrx_id = 64,
    rx_buf_len = 68,
    event_desc = 72,
    resv = 80
);
assert_layout!(RegionDesc, 64, user_addr = 0, size = 8, flags = 16, id = 20, mmap_offset = 24, resv = 32);
assert_layout!(ZcrxCtrl, 72, zcrx_id = 0, op = 4, resv = 8, body = 24);
assert_layout!(QueryHdr, 40, next_entry = 0, query_data = 8, query_op = 16, size = 20, result = 24, resv = 28);
assert_layout!(
    QueryOpcodes,
    48,
    nr_request_opcodes = 0,
    nr_register_opcodes = 4,
    feature_flags = 8,
    ring_setup_flags = 16,
    enter_flags = 24,
    sqe_flags = 32,
    nr_query_opcodes = 40
);
assert_layout!(
    QueryZcrx,
    40,
    register_flags = 0,
    area_flags = 8,
    nr_ctrl_opcodes = 16,
    features = 20,
    rq_hdr_size = 24,
    rq_hdr_alignment = 28,
    resv2 = 32
);
assert_layout!(QueryZcrxEvent, 48, event_flags = 0, stats_size = 4, stats_off_alignment = 8, resv1 = 12, resv2 = 16);
assert_layout!(
    Sqe,
    64,
    opcode = 0,
    flags = 1,
    ioprio = 2,
    fd = 4,
    off = 8,
    addr = 16,
    len = 24,
    msg_flags = 28,
    user_data = 32,
    buf_index = 40,
    personality = 42,
    zcrx_ifq_idx = 44,
    addr3 = 48,
    pad2 = 56
);

/// Whether a field is one the kernel requires to be zero on input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An ordinary input (or input/output) field.
    Field,
    /// A reserved word or padding: must be zero on input.
    Reserved,
    /// Written by the kernel; must be zero on input (e.g. `zcrx_id`).
    Output,
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    pub kind: Kind,
}

/// Name -> (offset, size) for one struct, so overrides and read-backs work on bytes.
#[derive(Debug)]
pub struct FieldTable {
    pub name: &'static str,
    pub size: usize,
    pub fields: &'static [Field],
}

impl FieldTable {
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|f| f.name)
    }

    pub fn reserved(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.kind != Kind::Field)
    }
}

/// Writes `value` into `buf` at the field, truncating to the field's width.
pub fn write_field(buf: &mut [u8], f: &Field, value: u64) {
    let bytes = value.to_ne_bytes();
    buf[f.offset..f.offset + f.size].copy_from_slice(&bytes[..f.size]);
}

pub fn read_field(buf: &[u8], f: &Field) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..f.size].copy_from_slice(&buf[f.offset..f.offset + f.size]);
    u64::from_ne_bytes(bytes)
}

/// View any of the plain-old-data uapi structs as bytes.
pub fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: the uapi structs are repr(C), Copy, and padding-free (asserted above).
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) }
}

pub fn as_bytes_mut<T: Copy>(v: &mut T) -> &mut [u8] {
    // SAFETY: as above; every bit pattern is a valid value of these integer-only structs.
    unsafe { std::slice::from_raw_parts_mut(v as *mut T as *mut u8, size_of::<T>()) }
}

macro_rules! fields {
    ($t:ty; $($name:literal => $kind:ident @ $field:ident $([$idx:literal])? $(. $sub:ident $([$sidx:literal])?)? : $sz:literal),* $(,)?) => {
        &[$(Field {
            name: $name,
            offset: offset_of!($t, $field) $(+ $idx * $sz)? $(+ fields!(@sub $sub $([$sidx])? ; $sz))?,
            size: $sz,
            kind: Kind::$kind,
        }),*]
    };
    (@sub $sub:ident [$sidx:literal]; $sz:literal) => { offset_of!(ZcrxOffsets, $sub) + $sidx * $sz };
    (@sub $sub:ident ; $sz:literal) => { offset_of!(ZcrxOffsets, $sub) };
}

pub static IFQ_REG: FieldTable = FieldTable {
    name: "io_uring_zcrx_ifq_reg",
    size: size_of::<ZcrxIfqReg>(),
    fields: fields!(ZcrxIfqReg;
        "if_idx" => Field @ if_idx: 4,
        "if_rxq" => Field @ if_rxq: 4,
        "rq_entries" => Field @ rq_entries: 4,
        "flags" => Field @ flags: 4,
        "area_ptr" => Field @ area_ptr: 8,
        "region_ptr" => Field @ region_ptr: 8,
        "offsets.head" => Field @ offsets.head: 4,
        "offsets.tail" => Field @ offsets.tail: 4,
        "offsets.rqes" => Field @ offsets.rqes: 4,
        "offsets.__resv2" => Field @ offsets.resv2: 4,
        "offsets.__resv[0]" => Field @ offsets.resv[0]: 8,
        "offsets.__resv[1]" => Field @ offsets.resv[1]: 8,
        "zcrx_id" => Output @ zcrx_id: 4,
        "rx_buf_len" => Field @ rx_buf_len: 4,
        "event_desc" => Field @ event_desc: 8,
        "__resv[0]" => Reserved @ resv[0]: 8,
        "__resv[1]" => Reserved @ resv[1]: 8,
    ),
};

pub static AREA_REG: FieldTable = FieldTable {
    name: "io_uring_zcrx_area_reg",
    size: size_of::<ZcrxAreaReg>(),
    fields: fields!(ZcrxAreaReg;
        "addr" => Field @ addr: 8,
        "len" => Field @ len: 8,
        "rq_area_token" => Output @ rq_area_token: 8,
        "flags" => Field @ flags: 4,
        "dmabuf_fd" => Field @ dmabuf_fd: 4,
        "__resv2[0]" => Reserved @ resv2[0]: 8,
        "__resv2[1]" => Reserved @ resv2[1]: 8,
    ),
};

pub static REGION_DESC: FieldTable = FieldTable {
    name: "io_uring_region_desc",
    size: size_of::<RegionDesc>(),
    fields: fields!(RegionDesc;
        "user_addr" => Field @ user_addr: 8,
        "size" => Field @ size: 8,
        "flags" => Field @ flags: 4,
        "id" => Reserved @ id: 4,
        "mmap_offset" => Output @ mmap_offset: 8,
        "__resv[0]" => Reserved @ resv[0]: 8,
        "__resv[1]" => Reserved @ resv[1]: 8,
        "__resv[2]" => Reserved @ resv[2]: 8,
        "__resv[3]" => Reserved @ resv[3]: 8,
    ),
};

pub static EVENT_DESC: FieldTable = FieldTable {
    name: "zcrx_event_desc",
    size: size_of::<ZcrxEventDesc>(),
    fields: fields!(ZcrxEventDesc;
        "user_data" => Field @ user_data: 8,
        "type_mask" => Field @ type_mask: 4,
        "flags" => Field @ flags: 4,
        "stats_offset" => Field @ stats_offset: 8,
        "__resv2[0]" => Reserved @ resv2[0]: 8,
        "__resv2[1]" => Reserved @ resv2[1]: 8,
        "__resv2[2]" => Reserved @ resv2[2]: 8,
        "__resv2[3]" => Reserved @ resv2[3]: 8,
        "__resv2[4]" => Reserved @ resv2[4]: 8,
        "__resv2[5]" => Reserved @ resv2[5]: 8,
        "__resv2[6]" => Reserved @ resv2[6]: 8,
        "__resv2[7]" => Reserved @ resv2[7]: 8,
        "__resv2[8]" => Reserved @ resv2[8]: 8,
    ),
};

const CB: usize = offset_of!(ZcrxCtrl, body);

macro_rules! union_words {
    ($($name:literal => $kind:ident @ $off:expr, $sz:literal),* $(,)?) => {
        &[
            Field { name: "zcrx_id", offset: offset_of!(ZcrxCtrl, zcrx_id), size: 4, kind: Kind::Field },
            Field { name: "op", offset: offset_of!(ZcrxCtrl, op), size: 4, kind: Kind::Field },
            Field { name: "__resv[0]", offset: offset_of!(ZcrxCtrl, resv), size: 8, kind: Kind::Reserved },
            Field { name: "__resv[1]", offset: offset_of!(ZcrxCtrl, resv) + 8, size: 8, kind: Kind::Reserved },
            $(Field { name: $name, offset: CB + $off, size: $sz, kind: Kind::$kind }),*
        ]
    };
}

pub static CTRL: FieldTable = FieldTable {
    name: "zcrx_ctrl",
    size: size_of::<ZcrxCtrl>(),
    fields: union_words!(
        "zc_export.zcrx_fd" => Output @ 0, 4,
        "zc_export.__resv1[0]" => Reserved @ 4, 4,
        "zc_export.__resv1[1]" => Reserved @ 8, 4,
        "zc_export.__resv1[2]" => Reserved @ 12, 4,
        "zc_export.__resv1[3]" => Reserved @ 16, 4,
        "zc_export.__resv1[4]" => Reserved @ 20, 4,
        "zc_export.__resv1[5]" => Reserved @ 24, 4,
        "zc_export.__resv1[6]" => Reserved @ 28, 4,
        "zc_export.__resv1[7]" => Reserved @ 32, 4,
        "zc_export.__resv1[8]" => Reserved @ 36, 4,
        "zc_export.__resv1[9]" => Reserved @ 40, 4,
        "zc_export.__resv1[10]" => Reserved @ 44, 4,
        "zc_flush.__resv[0]" => Reserved @ 0, 8,
        "zc_flush.__resv[1]" => Reserved @ 8, 8,
        "zc_flush.__resv[2]" => Reserved @ 16, 8,
        "zc_flush.__resv[3]" => Reserved @ 24, 8,
        "zc_flush.__resv[4]" => Reserved @ 32, 8,
        "zc_flush.__resv[5]" => Reserved @ 40, 8,
        "zc_arm_event.event_type" => Field @ 0, 4,
        "zc_arm_event.__resv[0]" => Reserved @ 4, 4,
        "zc_arm_event.__resv[1]" => Reserved @ 8, 4,
        "zc_arm_event.__resv[2]" => Reserved @ 12, 4,
        "zc_arm_event.__resv[3]" => Reserved @ 16, 4,
        "zc_arm_event.__resv[4]" => Reserved @ 20, 4,
        "zc_arm_event.__resv[5]" => Reserved @ 24, 4,
        "zc_arm_event.__resv[6]" => Reserved @ 28, 4,
        "zc_arm_event.__resv[7]" => Reserved @ 32, 4,
        "zc_arm_event.__resv[8]" => Reserved @ 36, 4,
        "zc_arm_event.__resv[9]" => Reserved @ 40, 4,
        "zc_arm_event.__resv[10]" => Reserved @ 44, 4,
        "zc_area.area_ptr" => Field @ 0, 8,
        "zc_area.__resv[0]" => Reserved @ 8, 8,
        "zc_area.__resv[1]" => Reserved @ 16, 8,
        "zc_area.__resv[2]" => Reserved @ 24, 8,
        "zc_area.__resv[3]" => Reserved @ 32, 8,
        "zc_area.__resv[4]" => Reserved @ 40, 8,
    ),
};

pub static QUERY_HDR: FieldTable = FieldTable {
    name: "io_uring_query_hdr",
    size: size_of::<QueryHdr>(),
    fields: fields!(QueryHdr;
        "next_entry" => Field @ next_entry: 8,
        "query_data" => Field @ query_data: 8,
        "query_op" => Field @ query_op: 4,
        "size" => Field @ size: 4,
        "result" => Output @ result: 4,
        "__resv[0]" => Reserved @ resv[0]: 4,
        "__resv[1]" => Reserved @ resv[1]: 4,
        "__resv[2]" => Reserved @ resv[2]: 4,
    ),
};

pub static QUERY_OPCODES: FieldTable = FieldTable {
    name: "io_uring_query_opcode",
    size: size_of::<QueryOpcodes>(),
    fields: fields!(QueryOpcodes;
        "nr_request_opcodes" => Output @ nr_request_opcodes: 4,
        "nr_register_opcodes" => Output @ nr_register_opcodes: 4,
        "feature_flags" => Output @ feature_flags: 8,
        "ring_setup_flags" => Output @ ring_setup_flags: 8,
        "enter_flags" => Output @ enter_flags: 8,
        "sqe_flags" => Output @ sqe_flags: 8,
        "nr_query_opcodes" => Output @ nr_query_opcodes: 4,
        "__resv" => Reserved @ resv: 4,
    ),
};

pub static QUERY_ZCRX: FieldTable = FieldTable {
    name: "io_uring_query_zcrx",
    size: size_of::<QueryZcrx>(),
    fields: fields!(QueryZcrx;
        "register_flags" => Output @ register_flags: 8,
        "area_flags" => Output @ area_flags: 8,
        "nr_ctrl_opcodes" => Output @ nr_ctrl_opcodes: 4,
        "features" => Output @ features: 4,
        "rq_hdr_size" => Output @ rq_hdr_size: 4,
        "rq_hdr_alignment" => Output @ rq_hdr_alignment: 4,
        "__resv2" => Reserved @ resv2: 8,
    ),
};

pub static QUERY_ZCRX_EVENT: FieldTable = FieldTable {
    name: "io_uring_query_zcrx_event",
    size: size_of::<QueryZcrxEvent>(),
    fields: fields!(QueryZcrxEvent;
        "event_flags" => Output @ event_flags: 4,
        "stats_size" => Output @ stats_size: 4,
        "stats_off_alignment" => Output @ stats_off_alignment: 4,
        "__resv1" => Reserved @ resv1: 4,
        "__resv2[0]" => Reserved @ resv2[0]: 8,
        "__resv2[1]" => Reserved @ resv2[1]: 8,
        "__resv2[2]" => Reserved @ resv2[2]: 8,
        "__resv2[3]" => Reserved @ resv2[3]: 8,
    ),
};

pub static SQE: FieldTable = FieldTable {
    name: "io_uring_sqe",
    size: size_of::<Sqe>(),
    fields: fields!(Sqe;
        "opcode" => Field @ opcode: 1,
        "flags" => Field @ flags: 1,
        "ioprio" => Field @ ioprio: 2,
        "fd" => Field @ fd: 4,
        "off" => Field @ off: 8,
        "addr" => Field @ addr: 8,
        "len" => Field @ len: 4,
        "msg_flags" => Field @ msg_flags: 4,
        "user_data" => Field @ user_data: 8,
        "buf_index" => Field @ buf_index: 2,
        "personality" => Field @ personality: 2,
        "zcrx_ifq_idx" => Field @ zcrx_ifq_idx: 4,
        "addr3" => Field @ addr3: 8,
        "__pad2" => Field @ pad2: 8,
    ),
};

pub static RQE: FieldTable = FieldTable {
    name: "io_uring_zcrx_rqe",
    size: size_of::<ZcrxRqe>(),
    fields: fields!(ZcrxRqe;
        "off" => Field @ off: 8,
        "len" => Field @ len: 4,
        "__pad" => Reserved @ pad: 4,
    ),
};

pub static STATS: FieldTable = FieldTable {
    name: "zcrx_stats",
    size: size_of::<ZcrxStats>(),
    fields: fields!(ZcrxStats;
        "copy_count" => Output @ copy_count: 8,
        "copy_bytes" => Output @ copy_bytes: 8,
    ),
};

/// Every table, by struct name (used by the schema and by `validate`).
pub static TABLES: &[&FieldTable] = &[
    &IFQ_REG,
    &AREA_REG,
    &REGION_DESC,
    &EVENT_DESC,
    &CTRL,
    &QUERY_HDR,
    &QUERY_OPCODES,
    &QUERY_ZCRX,
    &QUERY_ZCRX_EVENT,
    &SQE,
    &RQE,
    &STATS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_cover_each_struct_without_overlap() {
        for t in TABLES {
            let mut covered = vec![0u8; t.size];
            for f in t.fields {
                assert!(f.offset + f.size <= t.size, "{}.{} out of bounds", t.name, f.name);
                if t.name != "zcrx_ctrl" || !f.name.starts_with("zc_") {
                    for b in &mut covered[f.offset..f.offset + f.size] {
                        *b += 1;
                    }
                }
            }
            let ctrl_union = t.name == "zcrx_ctrl";
            for (i, c) in covered.iter().enumerate() {
                if ctrl_union && i >= CB {
                    continue;
                }
                assert_eq!(*c, 1, "{} byte {} covered {} times", t.name, i, c);
            }
        }
    }

    #[test]
    fn ctrl_union_members_each_cover_48_bytes() {
        for member in ["zc_export.", "zc_flush.", "zc_arm_event.", "zc_area."] {
            let total: usize = CTRL.fields.iter().filter(|f| f.name.starts_with(member)).map(|f| f.size).sum();
            assert_eq!(total, 48, "{member}");
        }
    }

    #[test]
    fn field_round_trip() {
        let mut reg = ZcrxIfqReg::default();
        let f = IFQ_REG.get("__resv[1]").expect("field");
        write_field(as_bytes_mut(&mut reg), f, 7);
        assert_eq!(reg.resv[1], 7);
        assert_eq!(read_field(as_bytes(&reg), f), 7);
        let f = IFQ_REG.get("offsets.tail").expect("field");
        write_field(as_bytes_mut(&mut reg), f, 0x1_0000_0005);
        assert_eq!(reg.offsets.tail, 5);
    }

    #[test]
    fn area_mask_is_upper_16_bits() {
        assert_eq!(IORING_ZCRX_AREA_MASK, 0xffff_0000_0000_0000);
    }
}
