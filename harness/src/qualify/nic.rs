//! What the device under test is: driver, firmware, bus, queues, header split, RSS, n-tuple,
//! IOMMU. Read from sysfs and the ethtool ioctls ([`super::ioctl`]) and netlink (`kernel::nl`); nothing is changed.
//! A fact the device (or a simulator) does not have is said so in words, never left blank.

use super::QError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ioctl::{self, cstr, request, word};

/// A value, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    Value(String),
    Unavailable(String),
}

impl Fact {
    pub fn text(&self) -> String {
        match self {
            Fact::Value(v) => v.clone(),
            Fact::Unavailable(w) => format!("not available: {w}"),
        }
    }
    fn of(r: Result<String, QError>) -> Fact {
        match r {
            Ok(v) => Fact::Value(v),
            Err(w) => Fact::Unavailable(w.to_string()),
        }
    }
}

/// The NIC's named fields (the qualification report's "device" section).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicFacts {
    pub interface: String,
    pub netns: Option<String>,
    pub driver: Fact,
    pub driver_version: Fact,
    pub firmware: Fact,
    pub bus: Fact,
    pub bus_address: Fact,
    pub pci_id: Fact,
    pub queues: Fact,
    pub header_split: Fact,
    pub hds_thresh_range: Fact,
    pub rx_buf_len: Fact,
    pub rss: Fact,
    pub rss_contexts: Fact,
    pub ntuple: Fact,
    pub iommu: Fact,
}

fn errno(e: i32) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

fn read(p: &Path) -> Result<String, QError> {
    std::fs::read_to_string(p).map(|s| s.trim().to_string()).map_err(|e| QError::Setup(format!("{}: {e}", p.display())))
}

/// The last component of the link at `p` (a driver or bus name).
fn link_name(p: &Path) -> Result<String, QError> {
    std::fs::read_link(p)
        .map_err(|e| QError::Setup(format!("{}: {e}", p.display())))
        .map(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

/// Reads the facts of `dev` in the calling thread's network namespace.
pub fn probe(dev: &str, netns: Option<&str>) -> NicFacts {
    let sys = PathBuf::from(format!("/sys/class/net/{dev}/device"));
    let mut drv = request(ioctl::ETHTOOL_GDRVINFO, &[], 196);
    let drvinfo = ioctl::ioctl(dev, &mut drv).map_err(|e| format!("ETHTOOL_GDRVINFO: {}", errno(e)));
    let field = |off: usize, what: &str| -> Fact {
        match &drvinfo {
            Err(e) => Fact::Unavailable(e.clone()),
            Ok(()) => {
                let v = cstr(&drv, off, 32).trim().to_string();
                if v.is_empty() || v == "N/A" {
                    Fact::Unavailable(format!("the driver reports no {what}"))
                } else {
                    Fact::Value(v)
                }
            }
        }
    };
    let bus = link_name(&sys.join("subsystem"));
    let is_pci = bus.as_ref().is_ok_and(|b| b == "pci");
    let pci_id = if is_pci {
        let ids: Result<Vec<String>, QError> = ["vendor", "device", "subsystem_vendor", "subsystem_device"]
            .iter()
            .map(|f| read(&sys.join(f)).map(|v| v.trim_start_matches("0x").to_string()))
            .collect();
        Fact::of(ids.map(|i| format!("{}:{} (subsystem {}:{})", i[0], i[1], i[2], i[3])))
    } else {
        Fact::Unavailable(format!(
            "not a PCI device (bus {})",
            bus.as_ref().map_or_else(|e| e.to_string(), |b| b.clone())
        ))
    };
    let bus_address = match std::fs::canonicalize(&sys) {
        Ok(p) => Fact::Value(p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        Err(e) => Fact::Unavailable(format!("{}: {e}", sys.display())),
    };
    NicFacts {
        interface: dev.to_string(),
        netns: netns.map(String::from),
        driver: match link_name(&sys.join("driver")) {
            Ok(d) => Fact::Value(d),
            Err(_) => field(4, "driver name"),
        },
        driver_version: field(36, "version"),
        firmware: field(68, "firmware version"),
        bus: Fact::of(bus),
        bus_address,
        pci_id,
        queues: queues(dev),
        header_split: Fact::Unavailable(String::new()),
        hds_thresh_range: Fact::Unavailable(String::new()),
        rx_buf_len: Fact::Unavailable(String::new()),
        rss: rss(dev),
        rss_contexts: rss_contexts(dev),
        ntuple: ntuple(dev),
        iommu: iommu(&sys),
    }
    .with_rings(dev)
}

impl NicFacts {
    fn with_rings(mut self, dev: &str) -> NicFacts {
        let rings = match ioctl::rings(dev) {
            Ok(r) => r.into_iter().collect::<BTreeMap<_, _>>(),
            Err(e) => {
                for f in [&mut self.header_split, &mut self.hds_thresh_range, &mut self.rx_buf_len] {
                    *f = Fact::Unavailable(e.to_string());
                }
                return self;
            }
        };
        self.header_split = match rings.get("tcp_data_split") {
            Some(0) => Fact::Value("unknown (the driver does not say)".into()),
            Some(1) => Fact::Value("supported, currently off".into()),
            Some(2) => Fact::Value("supported, currently on".into()),
            Some(v) => Fact::Value(format!("unknown value {v}")),
            None => Fact::Unavailable("the driver does not report tcp-data-split".into()),
        };
        self.hds_thresh_range = match (rings.get("hds_thresh"), rings.get("hds_thresh_max")) {
            (Some(c), Some(m)) => Fact::Value(format!("0..={m} (current {c})")),
            (None, Some(m)) => Fact::Value(format!("0..={m}")),
            _ => Fact::Unavailable("the driver does not report hds-thresh".into()),
        };
        self.rx_buf_len = match rings.get("rx_buf_len") {
            Some(v) => Fact::Value(format!("{v} (current; the driver reports no list of supported sizes)")),
            None => Fact::Unavailable("the driver does not report rx-buf-len".into()),
        };
        self
    }
}

fn queues(dev: &str) -> Fact {
    let rx = std::fs::read_dir(format!("/sys/class/net/{dev}/queues"))
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count())
        .unwrap_or(0);
    let mut b = request(ioctl::ETHTOOL_GCHANNELS, &[], 36);
    let ch = match ioctl::ioctl(dev, &mut b) {
        Ok(()) => format!(
            "channels: combined {} of max {}, rx {} of max {}, tx {} of max {}",
            word(&b, 32),
            word(&b, 16),
            word(&b, 20),
            word(&b, 4),
            word(&b, 24),
            word(&b, 8)
        ),
        Err(e) => format!("channels not reported (ETHTOOL_GCHANNELS: {})", errno(e)),
    };
    Fact::Value(format!("{rx} rx queues; {ch}"))
}

fn rss(dev: &str) -> Fact {
    let mut b = request(ioctl::ETHTOOL_GRSSH, &[], 24);
    match ioctl::ioctl(dev, &mut b) {
        Ok(()) => Fact::Value(format!("indirection table {} entries, key {} bytes", word(&b, 8), word(&b, 12))),
        Err(e) => Fact::Unavailable(format!("ETHTOOL_GRSSH: {}", errno(e))),
    }
}

/// Whether contexts beyond the default can exist, asked without creating one: the kernel
/// refuses context 1 with EOPNOTSUPP when the driver cannot have any.
fn rss_contexts(dev: &str) -> Fact {
    let mut b = request(ioctl::ETHTOOL_GRSSH, &[1], 24);
    match ioctl::ioctl(dev, &mut b) {
        Ok(()) => Fact::Value("supported (context 1 exists)".into()),
        Err(e) if e == libc::EOPNOTSUPP => Fact::Value("not supported (only the default context)".into()),
        Err(e) => Fact::Value(format!(
            "supported, none configured (context 1: {}); how many can be created is known only by creating them",
            errno(e)
        )),
    }
}

fn ntuple(dev: &str) -> Fact {
    let mut f = request(ioctl::ETHTOOL_GFLAGS, &[], 8);
    let enabled = ioctl::ioctl(dev, &mut f).map(|()| word(&f, 4) & ioctl::ETH_FLAG_NTUPLE != 0);
    let mut r = request(ioctl::ETHTOOL_GRXCLSRLCNT, &[], 192);
    let rules = ioctl::ioctl(dev, &mut r).map(|()| word(&r, 184));
    match (enabled, rules) {
        (Err(e), _) => Fact::Unavailable(format!("ETHTOOL_GFLAGS: {}", errno(e))),
        (Ok(on), Ok(n)) => Fact::Value(format!("{}; {n} rule(s) installed", if on { "enabled" } else { "disabled" })),
        (Ok(on), Err(e)) => Fact::Value(format!(
            "{}; rules not readable (ETHTOOL_GRXCLSRLCNT: {})",
            if on { "enabled" } else { "disabled" },
            errno(e)
        )),
    }
}

/// Whether an IOMMU translates the device's DMA: its IOMMU group and the group's domain type
/// (`identity` is pass-through: no translation).
fn iommu(sys: &Path) -> Fact {
    match std::fs::read_link(sys.join("iommu_group")) {
        Err(_) => Fact::Value("no: the device is in no IOMMU group (DMA addresses are not translated)".into()),
        Ok(g) => {
            let group = g.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            match read(&Path::new("/sys/kernel/iommu_groups").join(&group).join("type")) {
                Ok(t) if t == "identity" => {
                    Fact::Value(format!("no: IOMMU group {group} is identity-mapped (pass-through)"))
                }
                Ok(t) => Fact::Value(format!("yes: IOMMU group {group}, domain type {t}")),
                Err(e) => Fact::Value(format!("IOMMU group {group}; domain type unknown ({e})")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_facts_say_why_they_are_missing() {
        let f = probe("lo", None);
        assert!(matches!(&f.pci_id, Fact::Unavailable(w) if w.starts_with("not a PCI device")), "{:?}", f.pci_id);
        assert!(matches!(f.bus_address, Fact::Unavailable(_)), "{:?}", f.bus_address);
        assert!(f.iommu.text().starts_with("no:"), "{:?}", f.iommu);
        for x in [&f.driver, &f.firmware, &f.header_split, &f.rx_buf_len] {
            assert!(!x.text().is_empty());
        }
    }
}
