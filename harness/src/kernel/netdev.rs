//! Network devices the harness creates for cases (no shell tools).

use std::os::fd::{AsRawFd, OwnedFd};

use crate::model::StepError;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;

/// Creates a TUN device named `name`; it lives as long as the returned fd.
pub fn create_tun(name: &str) -> Result<OwnedFd, StepError> {
    if name.is_empty() || name.len() > 15 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("tun: `{name}` is not a valid interface name (1-15 of [A-Za-z0-9_])").into());
    }
    let open = || std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").map(OwnedFd::from);
    let f = match open() {
        Ok(f) => f,
        Err(_) => {
            // The node exists only once the module is loaded on some systems.
            let _ = std::process::Command::new("modprobe").arg("tun").status();
            open().map_err(|e| StepError::Skip(format!("no TUN support here (/dev/net/tun: {e})")))?
        }
    };
    let mut ifr = [0u8; 40];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    ifr[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads a struct ifreq (40 bytes) from a buffer we own.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) };
    if r < 0 {
        return Err(format!("TUNSETIFF {name}: {}", std::io::Error::last_os_error()).into());
    }
    Ok(f)
}
