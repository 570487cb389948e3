//! Name -> (offset, size, kind) tables for every uapi struct, so a case file can set or read
//! any field (reserved words included) by its kernel name, and [`read_field`] / [`write_field`]
//! to do it on the struct's bytes.

use std::mem::{offset_of, size_of};

use super::{
    QueryHdr, QueryOpcodes, QueryZcrx, QueryZcrxEvent, RegionDesc, Sqe, ZcrxAreaReg, ZcrxCtrl, ZcrxEventDesc,
    ZcrxIfqReg, ZcrxOffsets, ZcrxRqe, ZcrxStats,
};

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
    use crate::kernel::uapi::{as_bytes, as_bytes_mut};

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
}
