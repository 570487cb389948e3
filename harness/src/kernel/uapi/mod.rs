//! Exact user API of io_uring zero-copy receive (x86-64), written from the kernel
//! headers' layout (`include/uapi/linux/io_uring.h`, `io_uring/zcrx.h`,
//! `io_uring/query.h`, 7.3). Every struct has compile-time size and offset asserts,
//! and every field (reserved words included) is reachable by name through
//! [`FieldTable`], so a case file can set or read any of them.
//!
//! This file holds the constants, the `#[repr(C)]` structs with their asserts and the byte
//! views; the field tables are in `fields.rs`, re-exported here.

use std::mem::{offset_of, size_of};

mod fields;

pub use fields::*;

pub const IORING_OP_NOP: u8 = 0;
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
/// sqe->flags: always issue from io-wq.
pub const IOSQE_ASYNC: u8 = 1 << 4;

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

/// View any of the plain-old-data uapi structs as bytes.
pub fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: the uapi structs are repr(C), Copy, and padding-free (asserted above).
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) }
}

pub fn as_bytes_mut<T: Copy>(v: &mut T) -> &mut [u8] {
    // SAFETY: as above; every bit pattern is a valid value of these integer-only structs.
    unsafe { std::slice::from_raw_parts_mut(v as *mut T as *mut u8, size_of::<T>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_mask_is_upper_16_bits() {
        assert_eq!(IORING_ZCRX_AREA_MASK, 0xffff_0000_0000_0000);
    }
}
