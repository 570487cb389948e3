//! The vm/ scripts the harness runs (as root), built into the binary: nothing in the current
//! directory, the repository root or the environment decides what runs. For each run they are
//! written to a fresh private directory (mkdtemp, 0700, files created exclusively) with what
//! they read next to themselves (`lib.sh`, the netdevsim-zcrx patch series), and the
//! directory is removed when the script has finished.

use super::Error;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::Command;

/// Every file the scripts use, by its path under vm/.
pub const FILES: &[(&str, &str)] = &[
    ("lib.sh", include_str!("../../../vm/lib.sh")),
    ("provision.sh", include_str!("../../../vm/provision.sh")),
    ("kernel.sh", include_str!("../../../vm/kernel.sh")),
    ("build-tree.sh", include_str!("../../../vm/build-tree.sh")),
    ("debug.config", include_str!("../../../vm/debug.config")),
    ("ethtool.sh", include_str!("../../../vm/ethtool.sh")),
    ("netdevsim.sh", include_str!("../../../vm/netdevsim.sh")),
    ("merge3.py", include_str!("../../../vm/merge3.py")),
    ("liburing.sh", include_str!("../../../vm/liburing.sh")),
    ("upstream.sh", include_str!("../../../vm/upstream.sh")),
    ("openssh.sh", include_str!("../../../vm/openssh.sh")),
    ("campaign.sh", include_str!("../../../vm/campaign.sh")),
    ("guest-root.sh", include_str!("../../../vm/guest-root.sh")),
    ("netdevsim-zcrx/series", include_str!("../../../vm/netdevsim-zcrx/series")),
    ("netdevsim-zcrx/base", include_str!("../../../vm/netdevsim-zcrx/base")),
    (
        "netdevsim-zcrx/0001-netdevsim-give-the-bus-device-a-64-bit-DMA-mask.patch",
        include_str!("../../../vm/netdevsim-zcrx/0001-netdevsim-give-the-bus-device-a-64-bit-DMA-mask.patch"),
    ),
    (
        "netdevsim-zcrx/0002-netdevsim-create-rx-page-pools-that-can-take-a-memor.patch",
        include_str!("../../../vm/netdevsim-zcrx/0002-netdevsim-create-rx-page-pools-that-can-take-a-memor.patch"),
    ),
    (
        "netdevsim-zcrx/0003-netdevsim-split-TCP-headers-from-payload-into-memory.patch",
        include_str!("../../../vm/netdevsim-zcrx/0003-netdevsim-split-TCP-headers-from-payload-into-memory.patch"),
    ),
    (
        "netdevsim-zcrx/0004-netdevsim-add-debugfs-counters-and-a-buffer-budget-f.patch",
        include_str!("../../../vm/netdevsim-zcrx/0004-netdevsim-add-debugfs-counters-and-a-buffer-budget-f.patch"),
    ),
    (
        "netdevsim-zcrx/0005-netdevsim-drop-payload-skbs-when-the-zcrx-page-pool-.patch",
        include_str!("../../../vm/netdevsim-zcrx/0005-netdevsim-drop-payload-skbs-when-the-zcrx-page-pool-.patch"),
    ),
    (
        "netdevsim-zcrx/0006-netdevsim-inject-page-pool-allocation-failures-into-.patch",
        include_str!("../../../vm/netdevsim-zcrx/0006-netdevsim-inject-page-pool-allocation-failures-into-.patch"),
    ),
    (
        "netdevsim-zcrx/0007-netdevsim-ntuple-rules-RSS-contexts-and-receive-stee.patch",
        include_str!("../../../vm/netdevsim-zcrx/0007-netdevsim-ntuple-rules-RSS-contexts-and-receive-stee.patch"),
    ),
    (
        "netdevsim-zcrx/0008-netdevsim-restart-rx-queues-on-reconfiguration-keepi.patch",
        include_str!("../../../vm/netdevsim-zcrx/0008-netdevsim-restart-rx-queues-on-reconfiguration-keepi.patch"),
    ),
    (
        "netdevsim-zcrx/0009-netdevsim-take-rx-buffers-larger-than-a-page-QCFG_RX.patch",
        include_str!("../../../vm/netdevsim-zcrx/0009-netdevsim-take-rx-buffers-larger-than-a-page-QCFG_RX.patch"),
    ),
    (
        "netdevsim-zcrx/0010-netdevsim-do-not-hand-the-sender-s-clones-to-GRO.patch",
        include_str!("../../../vm/netdevsim-zcrx/0010-netdevsim-do-not-hand-the-sender-s-clones-to-GRO.patch"),
    ),
    (
        "netdevsim-zcrx/0011-netdevsim-keep-short-payloads-linear-hds-copybreak.patch",
        include_str!("../../../vm/netdevsim-zcrx/0011-netdevsim-keep-short-payloads-linear-hds-copybreak.patch"),
    ),
    (
        "netdevsim-zcrx/0012-netdevsim-receive-GSO-frames-as-wire-segments-hds-segment.patch",
        include_str!("../../../vm/netdevsim-zcrx/0012-netdevsim-receive-GSO-frames-as-wire-segments-hds-segment.patch"),
    ),
    (
        "netdevsim-zcrx/0013-netdevsim-keep-part-of-a-split-payload-with-the-head.patch",
        include_str!("../../../vm/netdevsim-zcrx/0013-netdevsim-keep-part-of-a-split-payload-with-the-head.patch"),
    ),
    // What a version needs beyond the rebase onto it (netdevsim.sh's rebase_series).
    ("netdevsim-zcrx/compat/6.19/drop", include_str!("../../../vm/netdevsim-zcrx/compat/6.19/drop")),
];

/// The patches of the netdevsim-zcrx series that netdevsim.sh leaves out when it builds the
/// module for kernel release `kver` (`7.3.4+deb13-amd64`): the file names its
/// `compat/<major>.<minor>/drop` lists (one a line, `#` starts a comment). Empty for a version
/// with no such list (the whole series applies) or a release that names no version.
pub fn series_left_out(kver: &str) -> Vec<&'static str> {
    let mut parts = kver.split(['.', '+', '-']);
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else { return Vec::new() };
    let drop = format!("netdevsim-zcrx/compat/{major}.{minor}/drop");
    let Some((_, text)) = FILES.iter().find(|(f, _)| *f == drop) else { return Vec::new() };
    text.lines().filter_map(|l| l.split('#').next()).map(str::trim).filter(|l| !l.is_empty()).collect()
}

/// The built-in scripts, written out; the directory goes away when this is dropped.
pub struct Unpacked {
    dir: PathBuf,
}

/// Where the private directory may be made: a directory nobody else can rename things in
/// (owned by root or us, and not writable by others unless sticky, like /tmp).
fn safe_parent() -> Result<PathBuf, Error> {
    let p = std::env::temp_dir();
    let m = std::fs::metadata(&p).map_err(Error::io(p.display().to_string()))?;
    let owner_ok = m.uid() == 0 || m.uid() == nix::unistd::geteuid().as_raw();
    let others_write = m.mode() & 0o022 != 0;
    let sticky = m.mode() & 0o1000 != 0;
    if !m.is_dir() || !owner_ok || (others_write && !sticky) {
        return Err(Error::Broken(format!(
            "{}: not a safe place for the scripts run as root (owner uid {}, mode {:o}); set TMPDIR to one",
            p.display(),
            m.uid(),
            m.mode() & 0o7777
        )));
    }
    Ok(p)
}

/// A new private directory (mkdtemp, mode 0700) named `<name>.XXXXXX` in the temporary
/// directory, which must be a safe place (see `safe_parent`).
pub(crate) fn private_dir(name: &str) -> Result<PathBuf, Error> {
    let template = safe_parent()?.join(format!("{name}.XXXXXX"));
    let mut buf = std::ffi::CString::new(template.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Broken(format!("{}: NUL in the path", template.display())))?
        .into_bytes_with_nul();
    // SAFETY: mkdtemp rewrites the XXXXXX of a NUL-terminated buffer we own and creates the
    // directory with mode 0700.
    if unsafe { libc::mkdtemp(buf.as_mut_ptr().cast()) }.is_null() {
        return Err(Error::Io {
            what: format!("mkdtemp {}", template.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    buf.pop();
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

impl Unpacked {
    /// Writes every built-in file to a new private directory.
    pub fn new() -> Result<Unpacked, Error> {
        let u = Unpacked { dir: private_dir("zcrx-conform-vm")? };
        for (rel, text) in FILES {
            let path = u.dir.join(rel);
            if let Some(parent) = path.parent().filter(|p| !p.exists()) {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(Error::io(parent.display().to_string()))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(Error::io(path.display().to_string()))?;
            f.write_all(text.as_bytes()).map_err(Error::io(path.display().to_string()))?;
        }
        Ok(u)
    }

    /// `bash <dir>/<script>`, with the cache the harness uses (`paths::cache_dir`).
    pub fn command(&self, script: &str) -> Result<Command, Error> {
        if !FILES.iter().any(|(f, _)| *f == script) {
            return Err(Error::Broken(format!("no built-in script {script}")));
        }
        let mut c = Command::new("bash");
        c.arg(self.dir.join(script)).env(crate::paths::CACHE_VAR, crate::paths::cache_dir());
        Ok(c)
    }
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vm")
    }

    #[test]
    fn every_file_the_scripts_read_is_built_in() {
        let has = |f: &str| FILES.iter().any(|(n, _)| *n == f);
        // Every patch of the series (netdevsim.sh applies them from next to itself).
        let series = std::fs::read_to_string(vm_dir().join("netdevsim-zcrx/series")).expect("series");
        for p in series.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            assert!(has(&format!("netdevsim-zcrx/{p}")), "patch {p} is not built in");
        }
        // The series' base, and every per-version compat file (netdevsim-zcrx/compat/<M.m>/*).
        assert!(has("netdevsim-zcrx/base"), "netdevsim-zcrx/base is not built in");
        for v in std::fs::read_dir(vm_dir().join("netdevsim-zcrx/compat")).expect("compat/").flatten() {
            for f in std::fs::read_dir(v.path()).expect("compat/<M.m>").flatten() {
                let rel = format!(
                    "netdevsim-zcrx/compat/{}/{}",
                    v.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                );
                assert!(has(&rel), "{rel} is not built in");
            }
        }
        // The debug kernel's fragment (build-tree.sh --debug reads it next to itself).
        assert!(has("debug.config"), "vm/debug.config is not built in");
        // Every script under vm/ but the guest-side checks of the simulator, run by hand, and
        // guest-harness.sh, which the user runs from the checkout it builds (never the harness).
        let by_hand = ["netdevsim-smoke.sh", "netdevsim-steer.sh", "guest-harness.sh"];
        for e in std::fs::read_dir(vm_dir()).expect("vm/").flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".sh") && !by_hand.contains(&n.as_str()) {
                assert!(has(&n), "vm/{n} is not built in");
            }
        }
    }

    #[test]
    fn the_patches_a_version_leaves_out_are_read_from_its_drop_list() {
        assert_eq!(
            series_left_out("6.19.14+deb13-amd64"),
            vec!["0009-netdevsim-take-rx-buffers-larger-than-a-page-QCFG_RX.patch"]
        );
        assert!(series_left_out("7.3.4+deb13-amd64").is_empty());
        assert!(series_left_out("bzImage").is_empty());
    }

    #[test]
    fn unpacked_is_private_and_removed() {
        let u = Unpacked::new().expect("unpack");
        let dir = u.dir.clone();
        let m = std::fs::metadata(&dir).expect("dir");
        assert_eq!(m.mode() & 0o777, 0o700);
        for (rel, text) in FILES {
            assert_eq!(std::fs::read_to_string(dir.join(rel)).expect("file"), *text);
        }
        drop(u);
        assert!(!dir.exists());
    }
}
