//! Named network namespaces, made the way `ip netns add` makes them (a namespace of a thread of
//! ours, bind-mounted on /run/netns/NAME), and running code inside one.
//!
//! A network namespace belongs to a task (a thread), so [`run_in`] runs its closure on a
//! scoped thread that `setns`es: the caller's own namespace never changes.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::{NlError, NlResult};

pub const DIR: &str = "/run/netns";

/// The file of the named namespace.
pub fn path(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

/// /run/netns exists and is a shared mount (so a namespace mounted there is seen by every
/// mount namespace that shares it, as `ip` arranges).
fn prepare_dir() -> NlResult<()> {
    match std::fs::create_dir(DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(NlError::new(e.raw_os_error().unwrap_or(0), format!("mkdir {DIR}: {e}"))),
    }
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(None::<&str>, DIR, None::<&str>, shared, None::<&str>).is_ok() {
        return Ok(());
    }
    // Not a mount point yet: bind it onto itself, then make it shared.
    mount(Some(DIR), DIR, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| NlError::sys(&format!("bind mount {DIR}"), e))?;
    mount(None::<&str>, DIR, None::<&str>, shared, None::<&str>)
        .map_err(|e| NlError::sys(&format!("mount --make-shared {DIR}"), e))
}

/// Creates the named namespace (its `lo` is down, as in a new namespace).
pub fn add(name: &str) -> NlResult<PathBuf> {
    prepare_dir()?;
    let p = path(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)
        .map_err(|e| NlError::new(e.raw_os_error().unwrap_or(0), format!("create {}: {e}", p.display())))?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> NlResult<()> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NlError::sys("unshare(CLONE_NEWNET)", e))?;
            mount(Some("/proc/thread-self/ns/net"), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| NlError::sys(&format!("bind mount the namespace on {}", p.display()), e))
        })
        .join()
        .unwrap_or_else(|_| Err(NlError::new(0, "netns thread panicked")))
    });
    if let Err(e) = made {
        let _ = std::fs::remove_file(&p);
        return Err(e);
    }
    Ok(p)
}

/// Removes the named namespace (detaches its mount and the file); devices in it that nothing
/// else holds go with it, physical ones return to the initial namespace.
pub fn del(name: &str) -> NlResult<()> {
    let p = path(name);
    match umount2(&p, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(NlError::sys(&format!("umount {}", p.display()), e)),
    }
    std::fs::remove_file(&p)
        .map_err(|e| NlError::new(e.raw_os_error().unwrap_or(0), format!("rm {}: {e}", p.display())))
}

/// Runs `f` in the namespace at `ns` (None: here) on a thread of its own.
pub fn run_in<T: Send>(ns: Option<&Path>, f: impl FnOnce() -> NlResult<T> + Send) -> NlResult<T> {
    let Some(ns) = ns else { return f() };
    let file = std::fs::File::open(ns)
        .map_err(|e| NlError::new(e.raw_os_error().unwrap_or(0), format!("{}: {e}", ns.display())))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| NlError::sys(&format!("setns {}", ns.display()), e))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(NlError::new(0, "netns thread panicked")))
    })
}
