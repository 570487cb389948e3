//! Guests of another architecture than the host's: an arm64 kernel under `qemu-system-aarch64`
//! (TCG, `-M virt -cpu max`, which has the 16 KiB granule), booting the initramfs of
//! [`super::initramfs`] instead of the host's root (virtme-ng's way). What the VM runner reads
//! is the same as from `vng`: the guest runner's events on the process's stdout (a virtio
//! console, so no kernel message cuts into them), the serial console on its stderr (the tail a
//! crash reports), and the guest command's exit status ([`Foreign::exit_code`], from a virtio
//! port the guest writes it to).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use super::flavour::Arch;
use super::initramfs::{self, Cpio};
use super::Error;

/// The architecture of a kernel image: an arm64 `Image` (also Debian's EFI-stub one) carries
/// `ARM\x64` at offset 0x38; anything else (a bzImage, a build tree) is the host's.
pub fn image_arch(kernel: &Path) -> Arch {
    use std::io::Read;
    let mut head = [0u8; 64];
    let read = std::fs::File::open(kernel).and_then(|mut f| f.read_exact(&mut head));
    if read.is_ok() && &head[0x38..0x3c] == b"ARM\x64" {
        Arch::Arm64
    } else {
        Arch::HOST
    }
}

/// The harness built for `arch` guests by `vm/guest-harness.sh build` (from a checkout).
fn guest_harness(arch: Arch) -> Result<PathBuf, Error> {
    let dir = crate::paths::cache_dir().join("guest-harness").join(match arch {
        Arch::Arm64 => "aarch64",
        Arch::Amd64 => "x86_64",
    });
    let bin = dir.join("zcrx-conform");
    if !bin.is_file() {
        return Err(Error::NoGuestHarness { arch: arch.debian_name(), path: bin.display().to_string() });
    }
    // A binary from another commit may not speak this one's events or run its cases the same.
    let built = crate::paths::input::read_text(&dir.join("zcrx-conform.built"), 1 << 12, false).unwrap_or_default();
    let commit = built.lines().find_map(|l| l.split_once('=').filter(|(k, _)| *k == "commit").map(|(_, v)| v));
    let ours = env!("ZCRX_GIT_COMMIT");
    if commit != Some(ours) {
        eprintln!(
            "note: the {} guest harness ({}) was built from commit {}, this binary from {ours}; \
             rebuild it with vm/guest-harness.sh build",
            arch.debian_name(),
            bin.display(),
            commit.unwrap_or("unknown")
        );
    }
    Ok(bin)
}

/// A private directory removed when dropped.
struct PrivateDir(PathBuf);

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One run's foreign guest: the cached base archive, what each boot adds to it, and the
/// private directory each boot's initramfs and exit status are written to.
pub struct Foreign {
    kernel: PathBuf,
    base: PathBuf,
    /// Host directories of YAML files the guest reads at their host paths (the catalogue).
    trees: Vec<PathBuf>,
    /// Host files the guest's environment names (a netdevsim module), at their host paths.
    files: Vec<PathBuf>,
    dir: PrivateDir,
}

/// Where the guest runs the harness from.
pub const GUEST_EXE: &str = "/bin/zcrx-conform";

impl Foreign {
    /// Gets what an arm64 guest of `kernel` (a fetched Debian kernel) needs: busybox, the
    /// guest harness, the base archive. `paths` (the case paths) and the values of `env` that
    /// are files travel with each boot; returns the guest's environment, which adds the
    /// catalogue's root when the host runs from one on disk.
    pub fn prepare(
        kernel: &Path,
        arch: Arch,
        paths: &[PathBuf],
        env: &[(String, String)],
    ) -> Result<(Foreign, Vec<(String, String)>), Error> {
        let harness = guest_harness(arch)?;
        let busybox = super::script_path("guest-root.sh", &["busybox", arch.debian_name()])?;
        let kver = super::debian_kver(kernel).ok_or_else(|| {
            Error::BadSpec(format!("{}: an arm64 guest boots a fetched Debian kernel only yet", kernel.display()))
        })?;
        let modules = kernel.parent().unwrap_or(Path::new("/")).to_path_buf();
        let base =
            initramfs::base(&initramfs::Base { kver: &kver, modules: &modules, busybox: &busybox, harness: &harness })?;
        let mut trees: Vec<PathBuf> = paths.iter().filter(|p| !crate::paths::builtin::is_builtin(p)).cloned().collect();
        let mut env = env.to_vec();
        if let Some(root) = crate::paths::disk_root() {
            trees.push(root.join("cases"));
            trees.push(root.join("topologies"));
            env.push((crate::paths::ROOT_VAR.to_string(), root.display().to_string()));
        }
        let files = env.iter().map(|(_, v)| PathBuf::from(v)).filter(|p| p.is_absolute() && p.is_file()).collect();
        let dir = PrivateDir(super::scripts::private_dir("zcrx-conform-guest")?);
        Ok((Foreign { kernel: kernel.to_path_buf(), base, trees, files, dir }, env))
    }

    /// The initramfs of one boot: the base, then an archive with `guest` (the command line) as
    /// `/zcrx/cmd` and the catalogue and files at their host paths.
    fn initrd(&self, guest: &str) -> Result<PathBuf, Error> {
        let mut tail = Cpio::default();
        tail.file(Path::new("zcrx/cmd"), false, format!("{guest}\n").as_bytes());
        for t in &self.trees {
            if t.is_dir() {
                tail.yaml_tree(t)?;
            } else {
                tail.copy(t, t, false)?;
            }
        }
        for f in &self.files {
            tail.copy(f, f, false)?;
        }
        let base = std::fs::read(&self.base).map_err(Error::io(self.base.display().to_string()))?;
        let mut bytes = base;
        bytes.extend_from_slice(&tail.finish());
        let path = self.dir.0.join("initrd.cpio");
        initramfs::write_new(&path, &bytes)?;
        Ok(path)
    }

    fn status_path(&self) -> PathBuf {
        self.dir.0.join("status")
    }

    /// The `qemu-system-aarch64` command of one boot running `guest` (a shell command line
    /// built with `shell_quote`); its stdout is the guest command's, its stderr the console.
    pub fn command(&self, mem: &str, cpus: u32, guest: &str) -> Result<Command, Error> {
        let initrd = self.initrd(guest)?;
        let status = self.status_path();
        initramfs::write_new(&status, b"")?;
        let mut cmd = Command::new("qemu-system-aarch64");
        cmd.args(["-M", "virt", "-cpu", "max", "-smp", &cpus.to_string(), "-m", mem])
            .args(["-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none"])
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&initrd)
            // hugepages=16 as on amd64 (boot.rs): the areas of huge pages some cases map.
            .args(["-append", "console=ttyAMA0 panic=-1 rdinit=/init hugepages=16"])
            .args(["-chardev", "file,id=con,path=/dev/stderr", "-serial", "chardev:con"])
            .args(["-device", "virtio-serial-pci,id=vs"])
            .args(["-chardev", "stdio,id=ev,signal=off", "-device", "virtconsole,chardev=ev,bus=vs.0"])
            .arg("-chardev")
            .arg(format!("file,id=st,path={}", status.display()))
            .args(["-device", "virtserialport,chardev=st,name=zcrx-status,bus=vs.0"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).process_group(0);
        Ok(cmd)
    }

    /// The guest command's exit status as `vng` gives it: the number the guest wrote, or 255
    /// when the VM ended without one (a panic, or a poweroff before the command ended); None
    /// when qemu itself was killed.
    pub fn exit_code(&self, qemu: Option<ExitStatus>) -> Option<i32> {
        let text = crate::paths::input::read_text(&self.status_path(), 64, false).unwrap_or_default();
        match text.trim().parse::<i32>() {
            Ok(c) => Some(c),
            Err(_) => qemu.and_then(|s| s.code()).map(|_| 255),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arm64_image_is_told_from_its_header() {
        let dir = std::env::temp_dir().join(format!("zcrx-image-arch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let mut arm = vec![0u8; 128];
        arm[0x38..0x3c].copy_from_slice(b"ARM\x64");
        std::fs::write(dir.join("Image"), &arm).expect("image");
        std::fs::write(dir.join("bzImage"), vec![0u8; 128]).expect("image");
        std::fs::write(dir.join("short"), b"ARM").expect("image");
        assert_eq!(image_arch(&dir.join("Image")), Arch::Arm64);
        assert_eq!(image_arch(&dir.join("bzImage")), Arch::HOST);
        assert_eq!(image_arch(&dir.join("short")), Arch::HOST);
        assert_eq!(image_arch(&dir), Arch::HOST);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
