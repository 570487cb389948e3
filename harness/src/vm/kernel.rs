//! Kernels for VM runs: a [`KernelSpec`] (parsed in [`super::spec`]) fetched or built by the
//! `vm/` scripts built into the binary ([`super::scripts`]; their last stdout line is a path),
//! and the guest tools (ethtool, netdevsim modules) a run's topologies need.

use super::Error;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::scripts::Unpacked;
use super::spec::{Flavour, KernelSpec};

/// Runs vm/provision.sh (idempotent; well under a second when all is present).
pub fn provision() -> Result<(), Error> {
    let s = Unpacked::new()?;
    let st = s
        .command("provision.sh")?
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(Error::io("vm/provision.sh"))?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::script("provision.sh", &[], st))
    }
}

/// Resolves a spec to something `vng --run` accepts; fetches Debian kernels. A flavour of
/// another architecture than the host's is refused ([`fetch`] gets it all the same).
pub fn resolve(spec: &KernelSpec) -> Result<PathBuf, Error> {
    if let KernelSpec::Debian { flavour, .. } = spec {
        if !flavour.bootable() {
            return Err(Error::NotBootable { spec: spec.to_string(), arch: flavour.arch().debian_name() });
        }
    }
    fetch(spec)
}

/// The kernel a spec names, fetched or built: a path `vng` boots when its architecture is the
/// host's.
pub fn fetch(spec: &KernelSpec) -> Result<PathBuf, Error> {
    match spec {
        KernelSpec::Host => Err(Error::BadSpec("the host kernel needs no VM".into())),
        KernelSpec::Image(p) => Ok(p.clone()),
        KernelSpec::Tree { path, kasan, gcov, debug } => {
            let p = path.display().to_string();
            let mut args = vec![p.as_str()];
            if *debug {
                // --debug is --kasan + --gcov + vm/debug.config.
                args.push("--debug");
            } else if *kasan {
                args.push("--kasan");
            }
            if *gcov {
                args.push("--gcov");
            }
            script_path("build-tree.sh", &args)
        }
        KernelSpec::Debian { .. } => script_path("kernel.sh", &["fetch", &spec.to_string()]),
    }
}

/// Runs a vm/ script and returns its stdout (its stderr goes to ours).
pub fn script_stdout(script: &str, args: &[&str]) -> Result<String, Error> {
    let s = Unpacked::new()?;
    let out = s
        .command(script)?
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(Error::io(format!("vm/{script}")))?;
    if !out.status.success() {
        return Err(Error::script(script, args, out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a vm/ script for its effect (its stdout goes to our stderr).
pub fn script_status(script: &str, args: &[&str]) -> Result<(), Error> {
    let out = script_stdout(script, args)?;
    eprint!("{out}");
    Ok(())
}

/// Runs a vm/ script whose last stdout line is a path (kernel.sh, netdevsim.sh, ethtool.sh).
pub fn script_path(script: &str, args: &[&str]) -> Result<PathBuf, Error> {
    let text = script_stdout(script, args)?;
    let path = text.lines().last().unwrap_or("").trim();
    if path.is_empty() || !Path::new(path).exists() {
        return Err(Error::Broken(format!("vm/{script} {} printed no path", args.join(" "))));
    }
    Ok(PathBuf::from(path))
}

/// The vmlinux with DWARF that symbolizes backtraces of `spec` (booted as `kernel`, what
/// [`resolve`] gave): a tree's own `vmlinux`; for a Debian kernel its `linux-image-*-dbg`
/// package's, fetched once into the cache (`kernel.sh dbg`, about 1.2 GB); for the host kernel
/// Debian's installed one (`/usr/lib/debug/boot/vmlinux-<release>`), if any. `None`: this
/// kernel has none.
pub fn debug_vmlinux(spec: &KernelSpec, kernel: Option<&Path>) -> Result<Option<PathBuf>, Error> {
    let file = |p: PathBuf| p.is_file().then_some(p);
    Ok(match spec {
        KernelSpec::Host => {
            file(PathBuf::from(format!("/usr/lib/debug/boot/vmlinux-{}", crate::kernel::sys::kernel_release())))
        }
        KernelSpec::Tree { path, .. } => file(path.join("vmlinux")),
        // A built tree, or its arch/<arch>/boot/bzImage: the tree's vmlinux (a directory with
        // a Makefile beside it, so that a stray vmlinux above a lone image is not taken).
        KernelSpec::Image(p) => {
            p.ancestors().take(5).filter(|d| d.join("Makefile").is_file()).find_map(|d| file(d.join("vmlinux")))
        }
        KernelSpec::Debian { .. } => match kernel.and_then(debian_kver) {
            Some(kver) => Some(script_path("kernel.sh", &["dbg", &kver])?),
            None => None,
        },
    })
}

/// The kernel release of a fetched Debian kernel (`.../modules/<kver>/vmlinuz`).
pub fn debian_kver(kernel: &Path) -> Option<String> {
    let dir = kernel.parent()?;
    (dir.parent()?.file_name()? == "modules").then(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))?
}

/// What the guest needs for the run's topologies, as environment assignments: the netdevsim
/// modules built for this kernel (host side: the guest has no network).
pub fn guest_tools(kernel: &Path, topologies: &[String]) -> Result<Vec<(String, String)>, Error> {
    let mut kinds = Vec::new();
    let mut ssh_lab = false;
    for t in topologies {
        if crate::topology::Kind::builtin_named(t).is_none() {
            let f = crate::topology::load(t)?;
            kinds.push(f.kind);
            kinds.extend(f.simulate);
            ssh_lab |= f.simulate.is_some() && f.remote.as_ref().is_some_and(|r| r.ssh.is_some());
        }
    }
    if kinds.is_empty() {
        return Ok(vec![]);
    }
    // Device settings go through netlink: no ethtool binary is needed in the guest.
    let mut env = Vec::new();
    if ssh_lab {
        // The simulated remote runs Debian's OpenSSH server (fetched, not installed).
        env.push(("ZCRX_SSHD".to_string(), script_path("openssh.sh", &["fetch"])?.display().to_string()));
    }
    use crate::topology::Kind;
    let wants = |k: Kind| kinds.contains(&k);
    if wants(Kind::Netdevsim) || wants(Kind::NetdevsimZcrx) {
        // Another kernel (a tree build) brings netdevsim built in, or the topology says it
        // has none when it comes up.
        let Some(kver) = debian_kver(kernel) else { return Ok(env) };
        for (k, variant, var) in
            [(Kind::Netdevsim, "stock", "ZCRX_NETDEVSIM_STOCK"), (Kind::NetdevsimZcrx, "zcrx", "ZCRX_NETDEVSIM_ZCRX")]
        {
            if wants(k) {
                let ko = script_path("netdevsim.sh", &["build", &kver, "--variant", variant])?;
                env.push((var.to_string(), ko.display().to_string()));
            }
        }
    }
    Ok(env)
}

/// liburing's `test/zcrx.t`, built (once, cached) by vm/liburing.sh.
pub fn liburing_zcrx_t() -> Result<PathBuf, Error> {
    script_path("liburing.sh", &["build"])
}

/// The upstream versions of the Debian kernels of one flavour that `kernel.sh list` offers
/// ("7.3.4", "7.3~rc7").
pub fn debian_versions(flavour: Flavour) -> Result<Vec<String>, Error> {
    let s = Unpacked::new()?;
    let head = format!("{}:", flavour.head());
    let out = s
        .command("kernel.sh")?
        .args(["list", head.as_str()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(Error::io("vm/kernel.sh"))?;
    if !out.status.success() {
        return Err(Error::script("kernel.sh", &["list", head.as_str()], out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.strip_prefix(head.as_str()).map(str::to_string))
        .collect())
}

/// Passes `kernel.sh list` through.
pub fn list_kernels(pattern: Option<&str>) -> Result<(), Error> {
    let s = Unpacked::new()?;
    let mut c = s.command("kernel.sh")?;
    c.arg("list");
    if let Some(p) = pattern {
        c.arg(p);
    }
    let st = c.status().map_err(Error::io("vm/kernel.sh"))?;
    if st.success() {
        Ok(())
    } else {
        Err(Error::script("kernel.sh", &["list"], st))
    }
}
