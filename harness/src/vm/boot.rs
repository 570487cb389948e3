//! Booting: the one `vng` command line every VM run uses, and whether KVM can be used here.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// udev coldplug under TCG loads ~33 modules (12-33 s); none of them matter here. And 16
/// huge pages of 2 MiB reserved at boot, for cases with an area in huge pages (nic.large_buffers).
/// `no_timer_check`: the IO-APIC timer check (`check_timer`) times the guest's timer against
/// wall time; under TCG on a loaded host it fails and the boot panics in `setup_IO_APIC` /
/// `clear_IO_APIC_pin` (six boots lost that way on 2026-12-06 at load 30+, reports/anomalies/).
const BLACKLIST: &str = "modprobe.blacklist=kvm_amd,kvm_intel,kvm,ccp,sr_mod,cdrom,sg,ahci,libahci,libata,iTCO_wdt,\
intel_pmc_bxt,psmouse,i2c_i801,i6300esb,serio_raw,pcspkr,lpc_ich,evdev,button,aesni_intel,qemu_fw_cfg hugepages=16 \
no_timer_check";

/// What a kernel's own configuration asks of its boot: a KASAN build needs `no5lvl` under TCG
/// (QEMU offers LA57; generic KASAN's shadow check then floods the console with wild-memory
/// reports from early boot, reports/debug-kernel.md) and `kasan_multi_shot` (else only the
/// first report of a boot is printed); a debug build (KASAN, kmemleak, lockdep) boots slowly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootNeeds {
    pub kasan: bool,
    /// kmemleak or lockdep: the boot (virtme-ng's udev coldplug) takes minutes under TCG.
    pub slow: bool,
}

/// How long a boot may take before the suite starts: a debug build's took 492 s (8 min) here
/// under load (reports/debug-kernel.md), a Debian kernel's 16-40 s.
pub fn boot_timeout(needs: BootNeeds) -> Duration {
    if needs.slow || needs.kasan {
        Duration::from_secs(1800)
    } else {
        Duration::from_secs(300)
    }
}

/// The `.config` of a built tree `vng --run` boots: the tree itself, or the tree around its
/// `arch/x86/boot/bzImage`. None for anything else (a Debian kernel: never a debug build).
fn tree_config(kernel: &Path) -> Option<std::path::PathBuf> {
    let root = if kernel.is_dir() {
        kernel.to_path_buf()
    } else {
        kernel.parent()?.parent()?.parent()?.parent()?.to_path_buf()
    };
    let c = root.join(".config");
    (kernel.is_dir() || kernel.ends_with("arch/x86/boot/bzImage")).then_some(c).filter(|c| c.is_file())
}

/// Reads what `kernel` needs at boot from its tree's `.config`.
pub fn boot_needs(kernel: &Path) -> BootNeeds {
    let Some(text) = tree_config(kernel).and_then(|c| std::fs::read_to_string(c).ok()) else {
        return BootNeeds::default();
    };
    needs_of_config(&text)
}

fn needs_of_config(text: &str) -> BootNeeds {
    let on = |opt: &str| text.lines().any(|l| l.trim() == format!("{opt}=y"));
    BootNeeds { kasan: on("CONFIG_KASAN"), slow: on("CONFIG_DEBUG_KMEMLEAK") || on("CONFIG_PROVE_LOCKING") }
}

/// The kernel command line's additions for `needs`.
fn append_for(needs: BootNeeds) -> String {
    let mut a = BLACKLIST.to_string();
    if needs.kasan {
        a.push_str(" no5lvl kasan_multi_shot");
    }
    a
}

/// Whether KVM can run ordinary guests here. `/dev/kvm` may exist and still fail (a
/// PVM host answers "failed to set MSR"), so a tiny guest is started once and the
/// answer cached under .cache/.
pub fn kvm_usable(kernel: &Path) -> bool {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        return false;
    }
    let cache = crate::paths::cache_dir().join("kvm-usable");
    let host = crate::kernel::sys::kernel_release();
    if let Ok(s) = std::fs::read_to_string(&cache) {
        if let Some((h, v)) = s.trim().split_once(' ') {
            if h == host {
                return v == "yes";
            }
        }
    }
    let image = if kernel.is_dir() { kernel.join("arch/x86/boot/bzImage") } else { kernel.to_path_buf() };
    let child = Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-m", "256", "-nographic", "-no-reboot", "-kernel"])
        .arg(&image)
        .args(["-append", "console=ttyS0 panic=-1 earlyprintk=serial"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let ok = match child {
        Err(_) => false,
        Ok(mut c) => {
            let (tx, rx) = mpsc::channel();
            if let Some(out) = c.stdout.take() {
                std::thread::spawn(move || {
                    for l in BufReader::new(out).lines().map_while(Result::ok) {
                        if l.contains("Linux version") || l.contains("Run /init") {
                            let _ = tx.send(true);
                            return;
                        }
                    }
                    let _ = tx.send(false);
                });
            }
            let r = rx.recv_timeout(Duration::from_secs(20)).unwrap_or(false);
            let _ =
                nix::sys::signal::killpg(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGKILL);
            let _ = c.wait();
            r
        }
    };
    let _ = std::fs::create_dir_all(cache.parent().unwrap_or(Path::new(".")));
    let _ = std::fs::write(&cache, format!("{host} {}\n", if ok { "yes" } else { "no" }));
    ok
}

pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=,:+@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The `vng` command that boots `kernel` (with `mem` and `cpus`) and runs `guest` (a shell
/// command line built with [`shell_quote`]) as root inside. Its stdout is the guest's.
pub fn vng(kernel: &Path, mem: &str, cpus: u32, verbose: bool, guest: &str) -> Command {
    let mut cmd = Command::new("vng");
    cmd.arg("--run").arg(kernel);
    if !kvm_usable(kernel) {
        cmd.arg("--disable-kvm");
    }
    cmd.args(["--force-9p", "--user", "root"]);
    if verbose {
        cmd.arg("--verbose");
    }
    let append = append_for(boot_needs(kernel));
    cmd.args(["-m", mem, "-p", &cpus.to_string()]).args(["--append", &append]).arg("--").arg(guest);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).process_group(0);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debug_config_asks_for_its_boot_options() {
        let debug = "CONFIG_KASAN=y\nCONFIG_DEBUG_KMEMLEAK=y\n# CONFIG_UBSAN is not set\n";
        let n = needs_of_config(debug);
        assert_eq!(n, BootNeeds { kasan: true, slow: true });
        assert!(append_for(n).ends_with(" no5lvl kasan_multi_shot"));
        assert_eq!(boot_timeout(n), Duration::from_secs(1800));
        let plain = needs_of_config("# CONFIG_KASAN is not set\nCONFIG_KASAN_SHADOW_OFFSET=0xdffffc0000000000\n");
        assert_eq!(plain, BootNeeds::default());
        assert_eq!(append_for(plain), BLACKLIST);
        assert_eq!(boot_timeout(plain), Duration::from_secs(300));
        let dir = std::env::temp_dir().join(format!("zcrx-boot-needs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("arch/x86/boot")).expect("tmp");
        std::fs::write(dir.join(".config"), debug).expect("config");
        std::fs::write(dir.join("arch/x86/boot/bzImage"), "").expect("image");
        assert_eq!(boot_needs(&dir), n);
        assert_eq!(boot_needs(&dir.join("arch/x86/boot/bzImage")), n);
        assert_eq!(boot_needs(&dir.join(".config")), BootNeeds::default());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
