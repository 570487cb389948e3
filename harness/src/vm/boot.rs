//! Booting: the one `vng` command line every VM run uses, and whether KVM can be used here.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// udev coldplug under TCG loads ~33 modules (12-33 s); none of them matter here. And 16
/// huge pages of 2 MiB reserved at boot, for cases with an area in huge pages (nic.large_buffers).
const BLACKLIST: &str = "modprobe.blacklist=kvm_amd,kvm_intel,kvm,ccp,sr_mod,cdrom,sg,ahci,libahci,libata,iTCO_wdt,\
intel_pmc_bxt,psmouse,i2c_i801,i6300esb,serio_raw,pcspkr,lpc_ich,evdev,button,aesni_intel,qemu_fw_cfg hugepages=16";

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
    cmd.args(["-m", mem, "-p", &cpus.to_string()]).args(["--append", BLACKLIST]).arg("--").arg(guest);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).process_group(0);
    cmd
}
