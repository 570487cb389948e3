//! The root of a guest of another architecture than the host's (arm64 on x86-64): virtme-ng
//! boots the host's own root, which an aarch64 kernel cannot run, so such a guest boots a
//! minimal initramfs instead. Two archives, concatenated (the kernel unpacks one after the
//! other):
//!
//! - the base, cached per kernel release under `<cache>/guest-root/<release>/`: Debian's static
//!   busybox (`vm/guest-root.sh`), the harness built for the guest (`vm/guest-harness.sh`), the
//!   kernel's own modules the topologies load (with their dependencies, from the fetched
//!   `modules.dep`) and [`INIT`];
//! - per boot: the guest's command line (`/zcrx/cmd`), the catalogue the host runs from, and
//!   the files the guest's environment names (a netdevsim module built for the kernel), each at
//!   the path it has on the host.
//!
//! Archives are `newc` cpio, written here (no `cpio` program); every file put in one is read
//! without following a symbolic link, and bounded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::Error;

/// The kernel's modules the topologies load by name (`kernel::nl::kmod::load`): tun (TUN
/// devices), veth, psample (netdevsim's dependency). Their dependencies come along.
pub const MODULES: &[&str] = &["tun", "veth", "psample"];

/// The largest file put in an archive (the harness binary is about 10 MB).
const MAX_FILE: u64 = 256 << 20;

/// The guest's `/init` (busybox sh): the file systems the harness uses, `lo` up, then the
/// command of `/zcrx/cmd` with its stdout on the virtio console (`hvc0`, the event stream the
/// host decodes) and its stderr on the serial console; its exit status goes to the virtio port
/// named `zcrx-status`, then the guest powers off.
pub const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/hugepages /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t hugetlbfs hugetlbfs /dev/hugepages
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
ip link set lo up
status=/dev/null
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = zcrx-status ] && status=/dev/${p##*/}
done
cd /tmp
sh /zcrx/cmd </dev/null >/dev/hvc0 2>/dev/console
echo $? >"$status"
poweroff -f
"#;

/// A `newc` cpio archive being written.
#[derive(Default)]
pub struct Cpio {
    bytes: Vec<u8>,
    dirs: BTreeSet<String>,
    ino: u32,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [self.ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.bytes.extend_from_slice(b"070701");
        for f in fields {
            self.bytes.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        pad4(&mut self.bytes);
        self.bytes.extend_from_slice(data);
        pad4(&mut self.bytes);
    }

    /// The archive's name of an absolute or relative path (no leading `/`), its parent
    /// directories added first.
    fn name(&mut self, path: &Path) -> String {
        let rel = path.to_string_lossy().trim_start_matches('/').to_string();
        let mut dir = String::new();
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        for p in parts.iter().take(parts.len().saturating_sub(1)) {
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(p);
            if self.dirs.insert(dir.clone()) {
                self.entry(&dir.clone(), 0o040755, &[]);
            }
        }
        parts.join("/")
    }

    pub fn dir(&mut self, path: &Path) {
        let n = self.name(path);
        if self.dirs.insert(n.clone()) {
            self.entry(&n, 0o040755, &[]);
        }
    }

    pub fn file(&mut self, path: &Path, exec: bool, data: &[u8]) {
        let n = self.name(path);
        self.entry(&n, if exec { 0o100755 } else { 0o100644 }, data);
    }

    /// The host file `from` (a regular file; a symbolic link is refused) at `to`.
    pub fn copy(&mut self, from: &Path, to: &Path, exec: bool) -> Result<(), Error> {
        let data =
            crate::paths::input::read_regular(from, MAX_FILE, false).map_err(Error::io(from.display().to_string()))?;
        self.file(to, exec, &data);
        Ok(())
    }

    /// Every regular `*.yaml` file under the host directory `dir` (links are not followed), at
    /// its own path.
    pub fn yaml_tree(&mut self, dir: &Path) -> Result<(), Error> {
        let rd = std::fs::read_dir(dir).map_err(Error::io(dir.display().to_string()))?;
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_dir() {
                self.yaml_tree(&p)?;
            } else if t.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                self.copy(&p, &p, false)?;
            }
        }
        Ok(())
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }
}

/// The module files to load for `names` (dependencies included), relative to the module
/// directory, from the text of its `modules.dep`; a name built in or not listed is left out.
pub fn module_closure(dep: &str, names: &[&str]) -> Vec<String> {
    let base = |p: &str| {
        let f = p.rsplit('/').next().unwrap_or(p);
        f.split(".ko").next().unwrap_or(f).replace('-', "_")
    };
    let mut out = BTreeSet::new();
    for n in names {
        let want = n.replace('-', "_");
        let Some(line) = dep.lines().find(|l| l.split(':').next().is_some_and(|m| base(m) == want)) else { continue };
        let (module, rest) = line.split_once(':').unwrap_or((line, ""));
        out.insert(module.trim().to_string());
        out.extend(rest.split_whitespace().map(str::to_string));
    }
    out.into_iter().collect()
}

/// What the cached base archive is made of (a change in any rebuilds it).
pub struct Base<'a> {
    pub kver: &'a str,
    /// The fetched kernel's module directory (`.../lib/modules/<kver>`).
    pub modules: &'a Path,
    pub busybox: &'a Path,
    pub harness: &'a Path,
}

/// A file's identity for the cache stamp: path, size and modification time.
fn ident(p: &Path) -> Result<String, Error> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).map_err(Error::io(p.display().to_string()))?;
    Ok(format!("{} {} {}.{}", p.display(), m.len(), m.mtime(), m.mtime_nsec()))
}

/// The base archive for `b`, built once and kept as `<cache>/guest-root/<kver>/base.cpio`
/// (with `base.stamp`, what it was built from); returns its path.
pub fn base(b: &Base) -> Result<PathBuf, Error> {
    let dir = crate::paths::cache_dir().join("guest-root").join(b.kver);
    let (cpio, stamp_path) = (dir.join("base.cpio"), dir.join("base.stamp"));
    let stamp = format!(
        "{}\n{}\n{}\nmodules {}\ninit:\n{INIT}",
        ident(b.busybox)?,
        ident(b.harness)?,
        ident(&b.modules.join("modules.dep"))?,
        MODULES.join(" "),
    );
    let same = crate::paths::input::read_text(&stamp_path, 1 << 16, false).is_ok_and(|s| s == stamp);
    if same && cpio.is_file() {
        return Ok(cpio);
    }
    let mut a = Cpio::default();
    for d in ["dev", "proc", "sys", "tmp", "run", "etc", "zcrx"] {
        a.dir(Path::new(d));
    }
    a.copy(b.busybox, Path::new("bin/busybox"), true)?;
    a.copy(b.harness, Path::new("bin/zcrx-conform"), true)?;
    a.file(Path::new("init"), true, INIT.as_bytes());
    a.file(Path::new("etc/hosts"), false, b"127.0.0.1 localhost\n::1 localhost\n");
    let mdir = Path::new("lib/modules").join(b.kver);
    let dep_path = b.modules.join("modules.dep");
    let dep = crate::paths::input::read_text(&dep_path, MAX_FILE, false)
        .map_err(Error::io(dep_path.display().to_string()))?;
    for f in ["modules.dep", "modules.builtin", "modules.order"] {
        if b.modules.join(f).is_file() {
            a.copy(&b.modules.join(f), &mdir.join(f), false)?;
        }
    }
    for m in module_closure(&dep, MODULES) {
        a.copy(&b.modules.join(&m), &mdir.join(&m), false)?;
    }
    std::fs::create_dir_all(&dir).map_err(Error::io(dir.display().to_string()))?;
    write_new(&cpio, &a.finish())?;
    write_new(&stamp_path, stamp.as_bytes())?;
    Ok(cpio)
}

/// Writes `path` whole: a new file next to it (created exclusively, never through a link),
/// then renamed over it.
pub fn write_new(path: &Path, data: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("new.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(Error::io(tmp.display().to_string()))?;
    f.write_all(data).map_err(Error::io(tmp.display().to_string()))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_entries_are_aligned_and_parents_come_first() {
        let mut a = Cpio::default();
        a.file(Path::new("/work/x/c.yaml"), false, b"abc");
        let bytes = a.finish();
        let text = String::from_utf8_lossy(&bytes);
        let (w, x, c) = (text.find("work\0"), text.find("work/x\0"), text.find("work/x/c.yaml\0"));
        assert!(w < x && x < c && w.is_some(), "parents first: {text:?}");
        assert_eq!(bytes.len() % 4, 0);
        // Each header starts at a multiple of 4 and has the newc magic.
        let starts: Vec<usize> = text.match_indices("070701").map(|(i, _)| i).collect();
        assert_eq!(starts.len(), 4, "work, work/x, the file, the trailer: {text:?}");
        assert!(starts.iter().all(|s| s % 4 == 0));
        // The file's size field (the 7th) is 3.
        let h = &text[starts[2]..starts[2] + 110];
        assert_eq!(&h[6 + 6 * 8..6 + 7 * 8], "00000003");
        assert!(text.contains("TRAILER!!!\0"));
    }

    #[test]
    fn module_closure_takes_dependencies_and_skips_the_unknown() {
        let dep = "kernel/net/psample/psample.ko.xz:\nkernel/drivers/net/veth.ko.xz:\n\
                   kernel/drivers/net/foo-bar.ko.xz: kernel/net/psample/psample.ko.xz\n";
        assert_eq!(
            module_closure(dep, &["foo_bar", "nothing"]),
            vec!["kernel/drivers/net/foo-bar.ko.xz", "kernel/net/psample/psample.ko.xz"]
        );
        assert_eq!(module_closure(dep, &["veth"]), vec!["kernel/drivers/net/veth.ko.xz"]);
    }
}
