//! Running the `ip` and `ethtool` programs (never through a shell), and finding them.
//!
//! Every helper returns the program's stdout, or an error that names the command line and
//! carries its stderr. [`read_settings`] and [`apply_settings`] are the only ways the harness
//! reads or writes ethtool settings; [`Tools`] says where ethtool and the netdevsim modules are.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Settings;

/// Runs a command (no shell) and returns its stdout, or an error with its stderr.
pub(super) fn run(prog: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{} {}: {e}", prog.display(), args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}",
            prog.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(super) fn ip(args: &[&str]) -> Result<String, String> {
    run(Path::new("ip"), args)
}

/// `ip -n NS ...`
pub(super) fn ip_ns(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut v = vec!["-n", ns];
    v.extend_from_slice(args);
    ip(&v)
}

/// Runs ethtool, in a network namespace if one is given (`ip netns exec`).
fn ethtool_in(ethtool: &Path, netns: Option<&str>, args: &[&str]) -> Result<String, String> {
    match netns {
        Some(ns) => {
            let mut v = vec!["netns", "exec", ns, ethtool.to_str().unwrap_or("ethtool")];
            v.extend_from_slice(args);
            ip(&v)
        }
        None => run(ethtool, args),
    }
}

/// Reads the ethtool settings we may change (`-g` ring, `-l` channels).
pub fn read_settings(ethtool: &Path, netns: Option<&str>, dev: &str) -> Result<Settings, String> {
    let exec = |args: &[&str]| ethtool_in(ethtool, netns, args);
    let g = exec(&["-g", dev])?;
    let l = exec(&["-l", dev]).unwrap_or_default();
    let field = |text: &str, key: &str, after: Option<&str>| -> Option<String> {
        let start = after.and_then(|a| text.find(a)).unwrap_or(0);
        text[start..]
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .map(|l| l[l.find(':').unwrap_or(0) + 1..].trim().to_string())
    };
    let tds = field(&g, "TCP data split:", Some("Current hardware settings")).map(|v| v.to_lowercase());
    let hds = field(&g, "HDS thresh:", Some("Current hardware settings")).and_then(|v| v.parse().ok());
    let comb = field(&l, "Combined:", Some("Current hardware settings")).and_then(|v| v.parse().ok());
    Ok(Settings {
        tcp_data_split: tds
            .filter(|v| v == "on" || v == "off")
            .or(Some("auto".into()))
            .filter(|_| g.contains("TCP data split")),
        hds_thresh: hds,
        combined: comb,
    })
}

/// Applies settings with ethtool (only the ones given).
pub fn apply_settings(ethtool: &Path, netns: Option<&str>, dev: &str, s: &Settings) -> Result<(), String> {
    let exec = |args: &[&str]| ethtool_in(ethtool, netns, args);
    if let Some(c) = s.combined {
        let c = c.to_string();
        exec(&["-L", dev, "combined", &c])?;
    }
    let mut g: Vec<String> = vec!["-G".into(), dev.into()];
    if let Some(t) = &s.tcp_data_split {
        g.extend(["tcp-data-split".into(), t.clone()]);
    }
    if let Some(h) = s.hds_thresh {
        g.extend(["hds-thresh".into(), h.to_string()]);
    }
    if g.len() > 2 {
        let refs: Vec<&str> = g.iter().map(String::as_str).collect();
        exec(&refs)?;
    }
    Ok(())
}

pub(super) fn first_ipv4(ns: Option<&str>, dev: &str) -> Result<String, String> {
    let out = match ns {
        Some(n) => ip_ns(n, &["-4", "-o", "addr", "show", "dev", dev])?,
        None => ip(&["-4", "-o", "addr", "show", "dev", dev])?,
    };
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .map(String::from)
        .ok_or_else(|| format!("nic: {dev} has no IPv4 address"))
}

pub(super) fn ifindex_in(ns: &str, dev: &str) -> Result<u32, String> {
    let out = ip_ns(ns, &["-o", "link", "show", "dev", dev])?;
    out.split(':').next().and_then(|i| i.trim().parse().ok()).ok_or_else(|| format!("no ifindex for {dev} in {ns}"))
}

/// Options the host passes in: where the modules and ethtool are.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    pub ethtool: Option<PathBuf>,
    pub netdevsim_stock: Option<PathBuf>,
    pub netdevsim_zcrx: Option<PathBuf>,
}

impl Tools {
    /// From the environment (set by the VM runner): ZCRX_ETHTOOL, ZCRX_NETDEVSIM_{STOCK,ZCRX}.
    pub fn from_env() -> Tools {
        let p = |k: &str| std::env::var_os(k).map(PathBuf::from).filter(|p| p.exists());
        Tools {
            ethtool: p("ZCRX_ETHTOOL").or_else(|| which("ethtool")),
            netdevsim_stock: p("ZCRX_NETDEVSIM_STOCK"),
            netdevsim_zcrx: p("ZCRX_NETDEVSIM_ZCRX"),
        }
    }
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(prog)).find(|p| p.is_file())
}
