//! Kernel modules through `finit_module` / `delete_module`, with in-tree dependencies resolved
//! from the running kernel's `modules.dep` (what modprobe would read), so no `insmod`,
//! `modprobe` or `rmmod` program is started.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::{NlError, NlResult};

/// MODULE_INIT_COMPRESSED_FILE: the kernel decompresses (.ko.xz / .ko.zst / .ko.gz).
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

/// Is a module of this name loaded (or built in with parameters)?
pub fn loaded(name: &str) -> bool {
    Path::new("/sys/module").join(name.replace('-', "_")).exists()
}

/// Loads the module file at `path` (EEXIST, already loaded, is success).
pub fn load_file(path: &Path) -> NlResult<()> {
    let f = std::fs::File::open(path)
        .map_err(|e| NlError::new(e.raw_os_error().unwrap_or(0), format!("{}: {e}", path.display())))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let flags = if name.ends_with(".ko") { 0 } else { MODULE_INIT_COMPRESSED_FILE };
    // SAFETY: finit_module(fd, "", flags) reads only the fd and the empty parameter string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), flags) };
    if r < 0 {
        let e = nix::errno::Errno::last();
        if e != nix::errno::Errno::EEXIST {
            return Err(NlError::sys(&format!("finit_module {}", path.display()), e));
        }
    }
    Ok(())
}

/// Unloads a module (O_NONBLOCK: fails with EWOULDBLOCK/EBUSY while in use, never waits).
pub fn unload(name: &str) -> NlResult<()> {
    let c = std::ffi::CString::new(name).map_err(|_| NlError::new(libc::EINVAL, "module name with a NUL byte"))?;
    // SAFETY: delete_module(name, flags) with a NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, c.as_ptr(), libc::O_NONBLOCK) };
    if r < 0 {
        return Err(NlError::sys(&format!("delete_module {name}"), nix::errno::Errno::last()));
    }
    Ok(())
}

/// The running kernel's module directory.
fn module_dir() -> NlResult<PathBuf> {
    let u = nix::sys::utsname::uname().map_err(|e| NlError::sys("uname", e))?;
    Ok(Path::new("/lib/modules").join(u.release()))
}

/// The files to load for module `name`, dependencies first, from `modules.dep`; empty when
/// the module is built in.
pub fn resolve(name: &str) -> NlResult<Vec<PathBuf>> {
    let dir = module_dir()?;
    let builtin = std::fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
    let base = |p: &str| {
        let f = p.rsplit('/').next().unwrap_or(p);
        f.split(".ko").next().unwrap_or(f).replace('-', "_")
    };
    let want = name.replace('-', "_");
    if builtin.lines().any(|l| base(l) == want) {
        return Ok(Vec::new());
    }
    let dep_path = dir.join("modules.dep");
    let deps = std::fs::read_to_string(&dep_path)
        .map_err(|e| NlError::new(e.raw_os_error().unwrap_or(0), format!("{}: {e}", dep_path.display())))?;
    let line = deps
        .lines()
        .find(|l| l.split(':').next().is_some_and(|m| base(m) == want))
        .ok_or_else(|| NlError::new(libc::ENOENT, format!("module {name} is not in {}", dep_path.display())))?;
    let (module, rest) = line.split_once(':').unwrap_or((line, ""));
    // modules.dep lists a module's dependencies so that the last is loaded first.
    let mut files: Vec<PathBuf> = rest.split_whitespace().rev().map(|d| dir.join(d)).collect();
    files.push(dir.join(module.trim()));
    Ok(files)
}

/// Loads an in-tree module and its dependencies (a no-op when loaded or built in).
pub fn load(name: &str) -> NlResult<()> {
    if loaded(name) {
        return Ok(());
    }
    for f in resolve(name)? {
        load_file(&f)?;
    }
    Ok(())
}
