//! The bodies of the steps about the case's own process: its limits, credentials and the
//! memory accounted to it (variants of [`Action`](super::Action), table in `action.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Limits of the case's own process, for paths a harness running as root never takes. Rings
/// opened afterwards (`open_ring`) are created under them.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Lower RLIMIT_NOFILE to one past the highest descriptor open now: the next new descriptor
    /// fails with EMFILE.
    #[serde(default)]
    pub nofile_used: bool,
    /// Set RLIMIT_MEMLOCK (soft and hard) to this many bytes.
    pub memlock: Option<u64>,
    /// Drop these capabilities from the effective set (names without CAP_: IPC_LOCK).
    #[serde(default)]
    pub drop_caps: Vec<String>,
    /// Keep only these capabilities in the effective set and drop every other one (e.g.
    /// `[NET_ADMIN]`: a process with CAP_NET_ADMIN and nothing else).
    pub keep_caps: Option<Vec<String>>,
    /// Switch the process to a user id no process has (done first, capabilities kept): its
    /// user_struct is held by nothing but this process, so a reference the kernel drops once
    /// too often frees it while still in use.
    #[serde(default)]
    pub fresh_uid: bool,
    /// Close descriptor 0 (the case's stdin), so that the next new descriptor is 0.
    #[serde(default)]
    pub close_stdin: bool,
}

/// The case process's pinned and accounted memory (VmPin of /proc/self/status): zcrx areas of
/// rings created without CAP_IPC_LOCK are accounted there, and given back when the instance
/// is freed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectPinned {
    /// The exact amount, in KiB ("256*$page/1024": what 256 pages pin).
    #[serde(deserialize_with = "super::pages::count")]
    #[schemars(with = "super::pages::PageCount")]
    pub kib: u64,
    /// Poll up to this long for it (a ring's teardown runs in a work item after its close);
    /// default 0: read once.
    #[serde(default)]
    pub wait_ms: u64,
}

/// The dma-buf behind a zcrx instance's area (`register: { area_dmabuf: true }`), found by its
/// inode among the dma-bufs the kernel lists in /sys/kernel/debug/dma_buf/bufinfo. An instance
/// takes a reference of its own at registration and must drop it when it is freed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dmabuf {
    /// The instance (default z0).
    pub zcrx: Option<String>,
    /// First close the case's own descriptor of the dma-buf, so that the kernel's references are
    /// the only ones left.
    #[serde(default)]
    pub close: bool,
    /// Whether the kernel must still list it.
    pub listed: bool,
    /// With `listed: false`, poll up to this long (an instance is freed in a work item after its
    /// ring's close); default 0: read once.
    #[serde(default)]
    pub wait_ms: u64,
}
