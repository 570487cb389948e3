//! Network devices and namespaces the harness creates for cases (no shell tools): TUN
//! devices, a case's private network namespace with `lo` up, and ifindex look-ups.

use super::Error;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::model::StepError;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;

/// `struct ifreq`: the name, then (at offset 16) the union (`ifr_ifindex`, `ifr_flags`, ...).
type IfReq = [u8; 40];
const IFNAMSIZ: usize = 16;

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
            let _ = super::nl::kmod::load("tun");
            open().map_err(|e| StepError::Skip(format!("no TUN support here (/dev/net/tun: {e})")))?
        }
    };
    let mut ifr: IfReq = [0; 40];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    ifr[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads a struct ifreq (40 bytes) from a buffer we own.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF as _, ifr.as_mut_ptr()) };
    if r < 0 {
        return Err(format!("TUNSETIFF {name}: {}", std::io::Error::last_os_error()).into());
    }
    Ok(f)
}

/// A socket for interface ioctls in the caller's network namespace.
fn ioctl_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Issues an interface ioctl on `ifr`.
fn ifreq_ioctl(sock: &OwnedFd, request: libc::c_ulong, ifr: &mut IfReq) -> std::io::Result<()> {
    // SAFETY: the SIOC*IF* requests used here read and write a struct ifreq (40 bytes) we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), request as _, ifr.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The name of the device `if_idx` names in the caller's network namespace; `None` when
/// it names none (verified with the kernel, not guessed).
pub fn ifname(if_idx: u32) -> Result<Option<String>, Error> {
    let Ok(idx) = i32::try_from(if_idx) else { return Ok(None) };
    if idx <= 0 {
        return Ok(None);
    }
    let sock = ioctl_socket().map_err(Error::sys("socket"))?;
    let mut ifr: IfReq = [0; 40];
    ifr[16..20].copy_from_slice(&idx.to_ne_bytes());
    match ifreq_ioctl(&sock, libc::SIOCGIFNAME as libc::c_ulong, &mut ifr) {
        Ok(()) => {
            let end = ifr[..IFNAMSIZ].iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
            Ok(Some(String::from_utf8_lossy(&ifr[..end]).into_owned()))
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENXIO)) => Ok(None),
        Err(e) => Err(Error::sys(format!("SIOCGIFNAME {if_idx}"))(e)),
    }
}

/// Sets interface `name` up in the caller's network namespace (SIOCGIFFLAGS, SIOCSIFFLAGS).
pub fn set_up(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() >= IFNAMSIZ {
        return Err(Error::Invalid(format!("`{name}` is not an interface name")));
    }
    let sock = ioctl_socket().map_err(Error::sys("socket"))?;
    let mut ifr: IfReq = [0; 40];
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    ifreq_ioctl(&sock, libc::SIOCGIFFLAGS as libc::c_ulong, &mut ifr)
        .map_err(Error::sys(format!("SIOCGIFFLAGS {name}")))?;
    let flags = i16::from_ne_bytes([ifr[16], ifr[17]]) | libc::IFF_UP as i16;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    ifreq_ioctl(&sock, libc::SIOCSIFFLAGS as libc::c_ulong, &mut ifr)
        .map_err(Error::sys(format!("SIOCSIFFLAGS {name}")))
}

/// Moves the calling process into a new network namespace of its own, with `lo` up: no
/// device of the machine is reachable from there.
pub fn private_netns() -> Result<(), Error> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(Error::errno("unshare(CLONE_NEWNET)"))?;
    set_up("lo")
}
