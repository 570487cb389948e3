//! Where a case runs. `host`: the running kernel with no network set-up; a netdev
//! registration defaults to loopback rxq 0 (no zcrx-capable device). `nodev`: the
//! running kernel, registrations default to ZCRX_REG_NODEV (7.2+).
//! The namespace topologies (netdevsim, veth, nic, netdevsim-zcrx) are named here so
//! cases can declare them; a run that does not set them up skips those cases.

use serde::{Deserialize, Serialize};

pub const KNOWN: &[&str] = &["host", "nodev", "netdevsim", "veth", "nic", "netdevsim-zcrx"];

/// Topologies a run provides when none is named.
pub const DEFAULT_RUN: &[&str] = &["host", "nodev"];

/// Topologies a case supports when it names none.
pub const DEFAULT_CASE: &[&str] = &["host", "nodev"];

/// What the executing case needs to know about its topology.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Topo {
    pub name: String,
    /// Default registration is ZCRX_REG_NODEV.
    pub nodev: bool,
    /// Default if_idx / if_rxq for a netdev registration.
    pub if_idx: u32,
    pub if_rxq: u32,
}

impl Topo {
    pub fn new(name: &str) -> Result<Topo, String> {
        match name {
            "host" => Ok(Topo { name: name.into(), nodev: false, if_idx: loopback_ifindex(), if_rxq: 0 }),
            "nodev" => Ok(Topo { name: name.into(), nodev: true, if_idx: 0, if_rxq: 0 }),
            other if KNOWN.contains(&other) => {
                Err(format!("topology `{other}` is not set up by this version of the harness"))
            }
            other => Err(format!("unknown topology `{other}` (known: {})", KNOWN.join(", "))),
        }
    }
}

pub fn loopback_ifindex() -> u32 {
    nix::net::if_::if_nametoindex("lo").unwrap_or(1)
}
