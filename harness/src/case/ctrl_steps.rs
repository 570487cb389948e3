//! The bodies of the control-plane step actions: IORING_REGISTER_ZCRX_CTRL, IORING_REGISTER_QUERY,
//! raw register calls and extra rings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Overrides, RingSpec, Value};

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
    /// ADD_AREA: place the new area's io_uring_zcrx_area_reg on a read-only page (the kernel
    /// cannot write the new token back).
    #[serde(default)]
    pub area_readonly: bool,
    /// Pass this address instead of the struct (e.g. 0 or $fault).
    pub arg: Option<Value>,
    #[serde(default)]
    pub nr_args: u32,
    /// Make the call this many times (default 1), each checked as the step expects: e.g. 1023
    /// ADD_AREAs that must each succeed.
    pub repeat: Option<u32>,
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
