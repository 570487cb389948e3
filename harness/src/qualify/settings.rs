//! Every DUT setting the tool can read, as one flat map, and the before/after difference that
//! proves a qualification left the device as it found it.
//!
//! [`read_dut`] is the one place that reads them (sysfs attributes, the ethtool ioctls and
//! `ETHTOOL_MSG_RINGS_GET`); swapping its backend (e.g. for a netlink library) changes nothing
//! else. It runs in the DUT's network namespace on a thread of its own, so the caller's
//! namespace is never changed.

use super::QError as Error;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ioctl::{self, request, word};

/// Setting name -> value, sorted.
pub type Snapshot = BTreeMap<String, String>;

/// sysfs attributes of /sys/class/net/DEV read as settings.
const SYSFS: &[&str] = &[
    "mtu",
    "flags",
    "tx_queue_len",
    "address",
    "gro_flush_timeout",
    "napi_defer_hard_irqs",
    "threaded",
    "carrier",
    "operstate",
];

/// Reads what can be read of `dev`, in `netns` (a /run/netns name) when given.
pub fn read_dut(netns: Option<&str>, dev: &str) -> Result<Snapshot, Error> {
    let dev = dev.to_string();
    in_netns(netns, move || read_here(&dev))?
}

/// Runs `f` on a thread of its own inside `netns` (a /run/netns name; `None`: ours). sysfs
/// shows the network devices of the namespace that mounted it, so the thread also takes a
/// private mount namespace and mounts a sysfs of its own on /sys (as `ip netns exec` does);
/// nothing of the caller's namespaces changes.
pub fn in_netns<T: Send + 'static>(netns: Option<&str>, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let netns = netns.map(String::from);
    std::thread::spawn(move || {
        if let Some(ns) = &netns {
            crate::topology::enter(&Path::new("/run/netns").join(ns))?;
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| Error::Setup(format!("unshare(NEWNS): {e}")))?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .map_err(|e| Error::Setup(format!("making / private: {e}")))?;
            umount2("/sys", MntFlags::MNT_DETACH).map_err(|e| Error::Setup(format!("umount /sys: {e}")))?;
            mount(Some("sysfs"), "/sys", Some("sysfs"), MsFlags::empty(), None::<&str>)
                .map_err(|e| Error::Setup(format!("mount sysfs: {e}")))?;
        }
        Ok(f())
    })
    .join()
    .map_err(|_| Error::Setup("the reader thread panicked".into()))?
}

fn read_here(dev: &str) -> Result<Snapshot, Error> {
    let base = Path::new("/sys/class/net").join(dev);
    if !base.exists() {
        return Err(Error::Setup(format!("{}: no such interface", base.display())));
    }
    let mut s = Snapshot::new();
    for a in SYSFS {
        if let Ok(v) = std::fs::read_to_string(base.join(a)) {
            s.insert(format!("sysfs.{a}"), v.trim().to_string());
        }
    }
    let count = |prefix: &str| {
        std::fs::read_dir(base.join("queues"))
            .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(prefix)).count())
            .unwrap_or(0)
    };
    s.insert("queues.rx".into(), count("rx-").to_string());
    s.insert("queues.tx".into(), count("tx-").to_string());
    let mut ch = request(ioctl::ETHTOOL_GCHANNELS, &[], 36);
    if ioctl::ioctl(dev, &mut ch).is_ok() {
        for (k, off) in [("rx", 20), ("tx", 24), ("other", 28), ("combined", 32)] {
            s.insert(format!("channels.{k}"), word(&ch, off).to_string());
        }
    }
    if let Ok(rings) = ioctl::rings(dev) {
        for (k, v) in rings {
            s.insert(format!("rings.{k}"), v.to_string());
        }
    }
    let mut f = request(ioctl::ETHTOOL_GFLAGS, &[], 8);
    if ioctl::ioctl(dev, &mut f).is_ok() {
        s.insert("ethtool.flags".into(), format!("{:#x}", word(&f, 4)));
    }
    let mut r = request(ioctl::ETHTOOL_GRXCLSRLCNT, &[], 192);
    if ioctl::ioctl(dev, &mut r).is_ok() {
        s.insert("ntuple.rules".into(), word(&r, 184).to_string());
    }
    let mut h = request(ioctl::ETHTOOL_GRSSH, &[], 24);
    if ioctl::ioctl(dev, &mut h).is_ok() {
        s.insert("rss.indir_size".into(), word(&h, 8).to_string());
        s.insert("rss.hfunc".into(), (h[16]).to_string());
    }
    Ok(s)
}

/// One setting across the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingDiff {
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub changed: bool,
}

/// Every setting read before or after, with whether it changed. Settings that change on their
/// own (link state counters) are not read at all, so any difference is a failure.
/// Operational state is derived, not set: a driver that never reports it reads `unknown`
/// until the link is taken down and up again (netdevsim after a link flap reads `up`). Both
/// mean a usable link; any other change (a link left down) is a change.
fn same_operstate(name: &str, before: Option<&str>, after: Option<&str>) -> bool {
    name == "sysfs.operstate"
        && matches!((before, after), (Some("unknown"), Some("up")) | (Some("up"), Some("unknown")))
}

pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<SettingDiff> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| {
            let (b, a) = (before.get(n).cloned(), after.get(n).cloned());
            let changed = b != a && !same_operstate(n, b.as_deref(), a.as_deref());
            SettingDiff { name: n.clone(), changed, before: b, after: a }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_changed_added_and_removed() {
        let b: Snapshot = [("a", "1"), ("b", "2"), ("c", "3")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let a: Snapshot = [("a", "1"), ("b", "9"), ("d", "4")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let d = diff(&b, &a);
        let changed: Vec<&str> = d.iter().filter(|x| x.changed).map(|x| x.name.as_str()).collect();
        assert_eq!(changed, ["b", "c", "d"]);
        assert_eq!(d.len(), 4);
        assert!(diff(&b, &b).iter().all(|x| !x.changed));
        // A link that was usable stays usable whether the driver reports unknown or up; a
        // link left down is a change.
        let op = |v: &str| -> Snapshot { [("sysfs.operstate".to_string(), v.to_string())].into() };
        assert!(!diff(&op("unknown"), &op("up"))[0].changed);
        assert!(diff(&op("up"), &op("down"))[0].changed);
        assert!(diff(&op("unknown"), &op("down"))[0].changed);
    }

    /// A device in another network namespace is read there (its own sysfs), and a setting
    /// changed between two reads is exactly what the diff reports (a veth pair in a namespace).
    #[test]
    fn a_change_in_another_namespace_shows_in_the_diff() {
        use crate::kernel::nl::{link, netns};
        let ns = format!("zcrxq19t{}", std::process::id());
        if !nix::unistd::geteuid().is_root() {
            return eprintln!("skipped: needs root");
        }
        let Ok(path) = netns::add(&ns) else {
            return eprintln!("skipped: cannot add a network namespace here");
        };
        let made = netns::run_in(Some(&path), || link::add_veth("zq0", "zq1", 1)).is_ok();
        let result = made.then(|| {
            let before = read_dut(Some(&ns), "zq0");
            let changed = netns::run_in(Some(&path), || link::set_mtu(link::by_name("zq0")?.index, 1400)).is_ok();
            (before, changed, read_dut(Some(&ns), "zq0"), read_dut(None, "zq0"))
        });
        let _ = netns::del(&ns);
        let Some((before, changed, after, here)) = result else {
            return eprintln!("skipped: no veth on this kernel");
        };
        assert!(changed);
        assert!(here.is_err(), "zq0 must not be visible outside its namespace: {here:?}");
        let (before, after) = (before.expect("before"), after.expect("after"));
        assert_eq!(before.get("sysfs.mtu").map(String::as_str), Some("1500"));
        let d: Vec<SettingDiff> = diff(&before, &after).into_iter().filter(|x| x.changed).collect();
        assert_eq!(
            d,
            [SettingDiff {
                name: "sysfs.mtu".into(),
                before: Some("1500".into()),
                after: Some("1400".into()),
                changed: true
            }]
        );
    }

    #[test]
    fn loopback_is_readable_and_stable() {
        let one = read_dut(None, "lo").expect("lo");
        assert_eq!(one.get("sysfs.mtu").map(String::as_str), Some("65536"));
        assert_eq!(read_dut(None, "lo").expect("lo"), one);
        assert!(read_dut(None, "no-such-dev0").is_err());
    }
}
