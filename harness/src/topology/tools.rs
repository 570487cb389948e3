//! Reading, changing and restoring a device's settings, through netlink (`kernel::nl`), in the
//! device's network namespace; and where the netdevsim modules are ([`Tools`]).
//!
//! [`read_state`] and [`apply_settings`] are the only ways the harness reads or writes device
//! settings; [`restore`] puts a recorded [`DevState`] back and reads it again to prove it.

use super::Error;
use std::path::{Path, PathBuf};

use super::Settings;
use crate::kernel::nl::{ethtool, link, netns, NlResult};

/// Runs `f` in the named network namespace (None: here).
pub fn in_ns<T: Send>(ns: Option<&str>, f: impl FnOnce() -> NlResult<T> + Send) -> Result<T, Error> {
    let p = ns.map(netns::path);
    Ok(netns::run_in(p.as_deref(), f)?)
}

fn tds_name(v: u8) -> &'static str {
    match v {
        ethtool::TDS_DISABLED => "off",
        ethtool::TDS_ENABLED => "on",
        _ => "auto",
    }
}

fn tds_value(s: &str) -> u8 {
    match s {
        "off" => ethtool::TDS_DISABLED,
        "on" => ethtool::TDS_ENABLED,
        _ => ethtool::TDS_UNKNOWN,
    }
}

/// What the harness records of a device before a case may change it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DevState {
    pub settings: Settings,
    pub up: bool,
    /// ntuple rule locations (empty when the device has none or no ntuple support).
    pub rules: Vec<u32>,
    /// The default RSS context's indirection table (empty: none reported).
    pub indir: Vec<u32>,
    /// Addresses with prefix lengths (a namespace move drops them; restored after it).
    pub addrs: Vec<(std::net::IpAddr, u8)>,
}

/// Reads the settings the harness may change, in the calling thread's namespace.
fn read_here(dev: &str) -> NlResult<DevState> {
    let l = link::by_name(dev)?;
    // A device without ring parameters (veth) has none to record.
    let r = match ethtool::rings(l.index) {
        Err(e) if e.errno == libc::EOPNOTSUPP => Default::default(),
        r => r?,
    };
    let (combined, _) = ethtool::channels(l.index).unwrap_or((None, None));
    Ok(DevState {
        settings: Settings {
            tcp_data_split: r.tcp_data_split.map(|v| tds_name(v).to_string()),
            hds_thresh: r.hds_thresh,
            combined,
            rx_ring: r.rx,
            mtu: Some(l.mtu),
        },
        up: l.up,
        rules: ethtool::flow_rules(dev).unwrap_or_default(),
        indir: ethtool::rss_indir(l.index, 0).unwrap_or_default(),
        addrs: {
            let mut a = link::addrs(l.index)?;
            // Link-local IPv6 addresses come and go with the link; the harness set none.
            a.retain(|(ip, _)| !matches!(ip, std::net::IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80));
            a.sort();
            a
        },
    })
}

/// The device's current state.
pub fn read_state(ns: Option<&str>, dev: &str) -> Result<DevState, Error> {
    let dev = dev.to_string();
    in_ns(ns, move || read_here(&dev))
}

/// Applies the settings given (the others stay), in the calling thread's namespace.
pub fn apply_here(dev: &str, s: &Settings) -> NlResult<()> {
    let idx = link::by_name(dev)?.index;
    if let Some(m) = s.mtu {
        link::set_mtu(idx, m)?;
    }
    if let Some(c) = s.combined {
        ethtool::set_combined(idx, c)?;
    }
    let rs = ethtool::RingsSet {
        rx: s.rx_ring,
        tcp_data_split: s.tcp_data_split.as_deref().map(tds_value),
        hds_thresh: s.hds_thresh,
    };
    ethtool::set_rings(idx, &rs)
}

/// Applies settings to a device in a namespace.
pub fn apply_settings(ns: Option<&str>, dev: &str, s: &Settings) -> Result<(), Error> {
    let (dev, s) = (dev.to_string(), s.clone());
    in_ns(ns, move || apply_here(&dev, &s))
}

/// Whether `indir` spreads over `queues` the way drivers do by default (entry i is i % queues).
fn is_default_spread(indir: &[u32], queues: u32) -> bool {
    queues > 0 && !indir.is_empty() && indir.iter().enumerate().all(|(i, q)| *q as usize == i % queues as usize)
}

/// Puts `want` back where a case may have changed it (only what differs), then reads the
/// device again: a setting that did not come back is an error.
pub fn restore(ns: Option<&str>, dev: &str, want: &DevState) -> Result<(), Error> {
    let (d, w) = (dev.to_string(), want.clone());
    in_ns(ns, move || {
        let now = read_here(&d)?;
        let idx = link::by_name(&d)?.index;
        if link::get(idx)?.xdp_prog != 0 {
            link::set_xdp(idx, -1, 0)?;
        }
        for r in now.rules.iter().filter(|r| !w.rules.contains(r)) {
            ethtool::delete_flow_rule(&d, *r)?;
        }
        let s = &w.settings;
        let n = &now.settings;
        // The indirection table may only name queues that exist: with fewer channels than now it
        // goes back first, with more (a case took some away) after the channels are back.
        let indir_first = matches!((s.combined, n.combined), (Some(a), Some(b)) if a < b);
        // A table that is the driver's default spread goes back as "the default" (an empty
        // table), not written out: written, it would count as configured by the user, and the
        // kernel then refuses fewer channels than it names (EINVAL), which it did not before.
        let default_spread = s.combined.is_some_and(|c| is_default_spread(&w.indir, c));
        let put_indir = || -> NlResult<()> {
            if now.indir != w.indir && !w.indir.is_empty() {
                ethtool::set_rss_indir(idx, if default_spread { &[] } else { &w.indir })?;
            }
            Ok(())
        };
        if indir_first {
            put_indir()?;
        }
        let diff = |a: Option<u32>, b: Option<u32>| if a != b { a } else { None };
        let change = Settings {
            mtu: diff(s.mtu, n.mtu),
            combined: diff(s.combined, n.combined),
            rx_ring: diff(s.rx_ring, n.rx_ring),
            hds_thresh: diff(s.hds_thresh, n.hds_thresh),
            tcp_data_split: s.tcp_data_split.clone().filter(|t| Some(t) != n.tcp_data_split.as_ref()),
        };
        if change != Settings::default() {
            apply_here(&d, &change)?;
        }
        if !indir_first {
            put_indir()?;
        }
        if now.up != w.up {
            link::set_up(idx, w.up)?;
        }
        for (ip, prefix) in w.addrs.iter().filter(|a| !now.addrs.contains(a)) {
            link::add_addr(idx, *ip, *prefix)?;
        }
        Ok(())
    })?;
    let back = read_state(ns, dev)?;
    if back != *want {
        return Err(Error::Setup(format!("{dev}: restored settings read back as {back:?}, expected {want:?}")));
    }
    Ok(())
}

/// The first IPv4 address of a device.
pub(super) fn first_ipv4(ns: Option<&str>, dev: &str) -> Result<String, Error> {
    let d = dev.to_string();
    let addrs = in_ns(ns, move || link::addrs(link::by_name(&d)?.index))?;
    addrs
        .into_iter()
        .find(|a| a.0.is_ipv4())
        .map(|a| a.0.to_string())
        .ok_or_else(|| Error::Setup(format!("nic: {dev} has no IPv4 address")))
}

pub(super) fn ifindex_in(ns: &str, dev: &str) -> Result<u32, Error> {
    let d = dev.to_string();
    in_ns(Some(ns), move || Ok(link::by_name(&d)?.index))
}

/// Options the host passes in: where the netdevsim modules are.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    pub netdevsim_stock: Option<PathBuf>,
    pub netdevsim_zcrx: Option<PathBuf>,
    /// OpenSSH's sshd for a simulated lab's remote (`simulate` with `remote.ssh`).
    pub sshd: Option<PathBuf>,
    /// The binary copied to an ssh peer as its agent (None: this one, /proc/self/exe; a test
    /// of the library names the harness binary).
    pub peer_agent: Option<PathBuf>,
}

impl Tools {
    /// From the environment (set by the VM runner): ZCRX_NETDEVSIM_{STOCK,ZCRX}, ZCRX_SSHD (an
    /// absolute path; else the machine's /usr/sbin/sshd if there is one).
    pub fn from_env() -> Tools {
        let p = |k: &str| std::env::var_os(k).map(PathBuf::from).filter(|p| Path::new(p).exists());
        let sshd = p("ZCRX_SSHD")
            .filter(|p| p.is_absolute())
            .or_else(|| Some(PathBuf::from("/usr/sbin/sshd")).filter(|p| p.exists()));
        Tools {
            netdevsim_stock: p("ZCRX_NETDEVSIM_STOCK"),
            netdevsim_zcrx: p("ZCRX_NETDEVSIM_ZCRX"),
            sshd,
            peer_agent: None,
        }
    }
}
