//! The case process's credentials and what is accounted to it: capabilities by name, the
//! effective set dropped or kept, a switch to a user nobody else is, and the pinned memory
//! io_uring accounts to the process (VmPin).

use std::io;

/// Capability numbers by name (without CAP_), for the ones cases drop.
pub fn cap_by_name(name: &str) -> Option<u32> {
    Some(match name {
        "NET_ADMIN" => 12,
        "IPC_LOCK" => 14,
        "SYS_ADMIN" => 21,
        "SYS_RESOURCE" => 24,
        _ => return None,
    })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Reads this thread's capability sets (capget), lets `edit` change them, and sets them
/// (capset).
fn edit_caps(edit: impl FnOnce(&mut [CapData; 2])) -> io::Result<()> {
    const VERSION_3: u32 = 0x2008_0522;
    let mut hdr = CapHeader { version: VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData words for version 3, as given.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    edit(&mut data);
    // SAFETY: capset reads the header and two CapData words.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Drops capabilities from this thread's effective set.
pub fn drop_effective_caps(caps: &[u32]) -> io::Result<()> {
    edit_caps(|data| {
        for &c in caps {
            data[(c / 32) as usize].effective &= !(1u32 << (c % 32));
        }
    })
}

/// Switches this process to a user id no process has: its user_struct is new and held only by
/// the process's credentials (and what the kernel takes from them later), as an unprivileged
/// application's would be. Capabilities survive the switch: PR_SET_KEEPCAPS keeps the permitted
/// set across setresuid, and the effective set (which setresuid clears) is restored from it.
/// Returns the uid chosen: the first from 1,500,000,000 + pid that no process in /proc runs as.
pub fn switch_to_fresh_uid() -> io::Result<u32> {
    let base = 1_500_000_000u32.saturating_add(std::process::id());
    let used = uids_in_use();
    let uid = (base..base.saturating_add(1000))
        .find(|u| !used.contains(u))
        .ok_or_else(|| io::Error::other("no unused uid near 1,500,000,000 + pid"))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let u = nix::unistd::Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(io::Error::from)?;
    edit_caps(|data| {
        for d in data {
            d.effective = d.permitted;
        }
    })?;
    Ok(uid)
}

/// The real uids of the processes listed in /proc now.
fn uids_in_use() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| {
        let e = e.ok()?;
        e.file_name().to_str()?.parse::<u32>().ok()?;
        let status = std::fs::read_to_string(e.path().join("status")).ok()?;
        status.lines().find_map(|l| l.strip_prefix("Uid:")?.split_whitespace().next()?.parse().ok())
    })
    .collect()
}

/// Pages pinned and accounted to this process's memory (VmPin in /proc/self/status, KiB):
/// io_uring accounts zcrx areas there for a ring created without CAP_IPC_LOCK.
pub fn vm_pin_kib() -> io::Result<u64> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmPin:")?.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| io::Error::other("no VmPin line in /proc/self/status"))
}

/// Keeps only `caps` in this thread's effective set (capget, then capset); every other
/// capability is dropped from it.
pub fn keep_effective_caps(caps: &[u32]) -> io::Result<()> {
    let all: Vec<u32> = (0..64).filter(|c| !caps.contains(c)).collect();
    drop_effective_caps(&all)
}

/// Whether the effective capability set holds CAP_NET_ADMIN (bit 12).
pub fn has_cap_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapEff:"))
                .and_then(|l| u64::from_str_radix(l["CapEff:".len()..].trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}
