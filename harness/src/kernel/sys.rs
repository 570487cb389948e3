//! Raw system calls and memory helpers. `io_uring_register` is called directly so a
//! case can pass any pointer (NULL, unmapped, read-only) and any `nr_args`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// Result of a raw syscall: `Ok(ret)` or `Err(errno)`.
pub type SysResult = Result<i64, i32>;

fn ret(r: libc::c_long) -> SysResult {
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    } else {
        Ok(r)
    }
}

/// `io_uring_register(fd, opcode, arg, nr_args)` with no checks at all. When a fault was
/// armed ([`arm_fault`]), the N-th fault point of this one syscall fails.
pub fn io_uring_register(fd: RawFd, opcode: u32, arg: u64, nr_args: u32) -> SysResult {
    // SAFETY: the kernel validates every argument; a bad pointer yields EFAULT.
    armed(|| ret(unsafe { libc::syscall(libc::SYS_io_uring_register, fd, opcode, arg as usize, nr_args) }))
}

/// Runs `call`, one io_uring syscall (`io_uring_register`, or the `io_uring_enter` of a
/// submission), with the fault armed by [`arm_fault`] if one is: fail-nth is written right
/// before it and read back right after.
pub fn armed<T>(call: impl FnOnce() -> T) -> T {
    match FAULT_ARMED.take() {
        None => call(),
        Some((fail_nth, n)) => {
            // Arming is the last syscall before the call (the count starts when the write is
            // done); nothing else of the harness runs in between.
            let arm = n.to_string();
            // SAFETY: writes our buffer to a descriptor the caller keeps open.
            let w = unsafe { libc::pwrite(fail_nth, arm.as_ptr().cast(), arm.len(), 0) };
            if w < 0 {
                FAULT_INJECTED.set(Some(Err(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))));
                return call();
            }
            let r = call();
            FAULT_INJECTED.set(Some(fail_nth_take(fail_nth)));
            r
        }
    }
}

thread_local! {
    /// The fail-nth descriptor and count armed for the next io_uring syscall ([`armed`]) of
    /// this thread.
    static FAULT_ARMED: std::cell::Cell<Option<(RawFd, u32)>> = const { std::cell::Cell::new(None) };
    /// Whether the armed fault was injected (`Err`: errno of arming or reading it back).
    static FAULT_INJECTED: std::cell::Cell<Option<Result<bool, i32>>> = const { std::cell::Cell::new(None) };
}

/// Arms the next io_uring syscall of this thread ([`armed`]: `io_uring_register`, or a
/// submission's `io_uring_enter`): its `n`-th fault point fails.
/// `fail_nth`: `/proc/thread-self/fail-nth`, opened read-write beforehand (opening it
/// allocates, so it cannot happen inside the window).
pub fn arm_fault(fail_nth: RawFd, n: u32) {
    FAULT_INJECTED.set(None);
    FAULT_ARMED.set(Some((fail_nth, n)));
}

/// After an armed call: `Some(Ok(true))` when the fault was injected, `Some(Ok(false))` when
/// the call reached fewer fault points, `None` when no armed call ran (and disarms).
pub fn fault_injected() -> Option<Result<bool, i32>> {
    FAULT_ARMED.set(None);
    FAULT_INJECTED.take()
}

/// Reads fail-nth back and disarms it. The read's own copy to user space is a fault point
/// while the count has not run out: a read that fails with EFAULT consumed the last count
/// (nothing was injected into the call); a write of 0 that fails the same way did too.
fn fail_nth_take(fd: RawFd) -> Result<bool, i32> {
    let mut buf = [0u8; 24];
    // SAFETY: reads into our buffer from a descriptor the caller keeps open.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        return if e == libc::EFAULT { Ok(false) } else { Err(e) };
    }
    let left: u64 =
        std::str::from_utf8(&buf[..n as usize]).ok().and_then(|s| s.trim().parse().ok()).ok_or(libc::EIO)?;
    if left == 0 {
        return Ok(true);
    }
    // SAFETY: as above; "0" disarms.
    let w = unsafe { libc::pwrite(fd, c"0".as_ptr().cast(), 1, 0) };
    if w < 0 {
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        if e != libc::EFAULT {
            return Err(e);
        }
    }
    Ok(false)
}

/// `io_uring_setup(entries, params)`; returns the ring fd.
pub fn io_uring_setup(entries: u32, params: &mut [u8; 120]) -> Result<OwnedFd, i32> {
    // SAFETY: params is a 120-byte io_uring_params buffer the kernel reads and fills.
    let r = ret(unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, params.as_mut_ptr()) })?;
    // SAFETY: a successful io_uring_setup returns a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Anonymous, page-aligned memory owned by the harness.
pub struct Mem {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: Mem is plain memory; access is coordinated by the single case thread.
unsafe impl Send for Mem {}

impl Mem {
    /// Anonymous read/write mapping of `len` bytes (rounded up to pages).
    pub fn anon(len: usize) -> io::Result<Mem> {
        Self::map(len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    }

    /// Anonymous memory in 2 MiB huge pages (MAP_HUGETLB); `len` rounded up to 2 MiB. Fails
    /// (ENOMEM) when no huge pages are reserved (vm.nr_hugepages).
    pub fn huge(len: usize) -> io::Result<Mem> {
        let two_mb = 2 << 20;
        let len = len.max(1).div_ceil(two_mb) * two_mb;
        Self::map(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
            -1,
            0,
        )
    }

    /// `len` bytes (rounded up to pages) in which every page maps the same page of a one-page
    /// memfd: no page is physically followed by its neighbour, so pinned and mapped for DMA the
    /// range is one-page segments whatever the page allocator does (a known non-contiguous
    /// layout, e.g. for zcrx's check of rx_buf_len against the area's chunks).
    pub fn same_page(len: usize) -> io::Result<Mem> {
        let page = page_size();
        // SAFETY: the name is a NUL-terminated literal; the new fd is ours.
        let fd = unsafe { libc::memfd_create(c"zcrx-conform-same-page".as_ptr(), libc::MFD_CLOEXEC) };
        // SAFETY: a successful memfd_create returns a new fd that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(os_check(fd)?) };
        // SAFETY: our own memfd.
        os_check(unsafe { libc::ftruncate(fd.as_raw_fd(), page as libc::off_t) })?;
        // The range is reserved first (its Mem unmaps all of it), then each page replaced.
        let m = Self::map(len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)?;
        for off in (0..m.len).step_by(page) {
            // SAFETY: MAP_FIXED over a page of our own reservation; the memfd outlives the call
            // (the mapping keeps its file).
            let p = unsafe {
                libc::mmap(
                    m.as_ptr().add(off) as *mut _,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(m)
    }

    /// Maps `len` bytes of `fd` at `offset` shared (used for kernel-allocated RQ regions).
    pub fn map_fd(fd: RawFd, len: usize, offset: u64) -> io::Result<Mem> {
        Self::map(len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_POPULATE, fd, offset as i64)
    }

    fn map(len: usize, prot: i32, flags: i32, fd: RawFd, off: i64) -> io::Result<Mem> {
        let len = page_align(len.max(1));
        // SAFETY: a fresh mapping at a kernel-chosen address.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, off) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p as *mut u8).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Mem { ptr, len })
    }

    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn protect(&self, prot: i32) -> io::Result<()> {
        // SAFETY: our own mapping, whole length.
        if unsafe { libc::mprotect(self.ptr.as_ptr() as *mut _, self.len, prot) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn slice(&self, off: usize, len: usize) -> Option<&[u8]> {
        if off.checked_add(len)? > self.len {
            return None;
        }
        // SAFETY: bounds checked; the mapping lives as long as self.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) })
    }

    pub fn write(&self, off: usize, bytes: &[u8]) -> bool {
        if off.saturating_add(bytes.len()) > self.len {
            return false;
        }
        // SAFETY: bounds checked; the mapping is writable (callers protect only after).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(off), bytes.len()) };
        true
    }

    /// Atomic u32 at `off` (RQ head/tail), which must be 4-aligned and in bounds.
    pub fn atomic_u32(&self, off: usize) -> Option<&std::sync::atomic::AtomicU32> {
        if !off.is_multiple_of(4) || off + 4 > self.len {
            return None;
        }
        // SAFETY: aligned, in bounds, lives as long as self.
        Some(unsafe { &*(self.ptr.as_ptr().add(off) as *const std::sync::atomic::AtomicU32) })
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what we mapped.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut _, self.len) };
    }
}

/// A libc return value: the value, or errno as an io::Error when negative.
fn os_check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

pub fn page_align(n: usize) -> usize {
    let p = page_size();
    n.div_ceil(p) * p
}

/// A PROT_NONE page: an address that is mapped by nobody useful, so the kernel's
/// copy_from_user faults on it.
pub fn fault_page() -> io::Result<Mem> {
    let m = Mem::anon(page_size())?;
    m.protect(libc::PROT_NONE)?;
    Ok(m)
}

/// A dma-buf over ordinary memory: a sealed memfd of `len` bytes (rounded up to pages)
/// exported through /dev/udmabuf. Returns the memfd, the dma-buf fd and a shared mapping of
/// the memfd, through which the harness reads what a device wrote into the dma-buf.
/// Err(ENOENT) when the kernel has no udmabuf device.
pub struct Udmabuf {
    pub memfd: OwnedFd,
    pub dmabuf: OwnedFd,
    pub mem: Mem,
}

/// `struct udmabuf_create` of include/uapi/linux/udmabuf.h.
#[repr(C)]
struct UdmabufCreate {
    memfd: u32,
    flags: u32,
    offset: u64,
    size: u64,
}
/// _IOW('u', 0x42, struct udmabuf_create)
const UDMABUF_CREATE: libc::c_ulong =
    0x4000_0000 | ((std::mem::size_of::<UdmabufCreate>() as libc::c_ulong) << 16) | (0x75 << 8) | 0x42;
const UDMABUF_FLAGS_CLOEXEC: u32 = 1;

pub fn udmabuf(len: usize) -> io::Result<Udmabuf> {
    let len = page_align(len.max(1));
    let check = |r: libc::c_int| if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) };
    // SAFETY: a constant NUL-terminated name; the new fd is owned at once.
    let memfd = unsafe {
        OwnedFd::from_raw_fd(check(libc::memfd_create(
            c"zcrx-area".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        ))?)
    };
    // SAFETY: plain fcntl/ftruncate on our own fd.
    check(unsafe { libc::ftruncate(memfd.as_raw_fd(), len as libc::off_t) })?;
    // SAFETY: as above; udmabuf refuses a memfd that can still shrink.
    check(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) })?;
    // SAFETY: a constant path; the fd is owned at once.
    let dev =
        unsafe { OwnedFd::from_raw_fd(check(libc::open(c"/dev/udmabuf".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC))?) };
    let arg =
        UdmabufCreate { memfd: memfd.as_raw_fd() as u32, flags: UDMABUF_FLAGS_CLOEXEC, offset: 0, size: len as u64 };
    // SAFETY: UDMABUF_CREATE reads a udmabuf_create and returns a new dma-buf fd.
    let dmabuf = unsafe { OwnedFd::from_raw_fd(check(libc::ioctl(dev.as_raw_fd(), UDMABUF_CREATE, &arg))?) };
    let mem = Mem::map_fd(memfd.as_raw_fd(), len, 0)?;
    Ok(Udmabuf { memfd, dmabuf, mem })
}

/// The kernel's list of dma-bufs (drivers/dma-buf/dma-buf.c, dma_buf_debug_show).
pub const DMABUF_BUFINFO: &str = "/sys/kernel/debug/dma_buf/bufinfo";

/// In the text of [`DMABUF_BUFINFO`], the file count of the dma-buf whose inode is `ino`, or
/// None when none has it. Object lines are `size flags mode count exp_name ino name`, tab
/// separated (attachment lines start with a tab); a line that starts like an object line but
/// does not parse is returned as the error.
pub fn dmabuf_bufinfo_count(text: &str, ino: u64) -> Result<Option<u64>, String> {
    for line in text.lines() {
        if !line.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.trim().parse::<u64>().ok());
        let (Some(count), Some(this)) = (num(3), num(5)) else {
            return Err(line.chars().take(200).collect());
        };
        if this == ino {
            return Ok(Some(count));
        }
    }
    Ok(None)
}

/// A pipe whose two ends close on exec: (read end, write end).
pub fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), super::Error> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(super::Error::errno("pipe"))
}

pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

pub fn cloexec(fd: RawFd) -> Option<bool> {
    // SAFETY: as above.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    (r >= 0).then_some(r & libc::FD_CLOEXEC != 0)
}

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        /// Errno names the case files may use.
        pub const ERRNOS: &[(&str, i32)] = &[$((stringify!($name), libc::$name)),*];
    };
}

errnos!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EPIPE,
    EDOM,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENODATA,
    ETIME,
    EOVERFLOW,
    EBADFD,
    ENOTSOCK,
    EDESTADDRREQ,
    EMSGSIZE,
    EPROTOTYPE,
    ENOPROTOOPT,
    EPROTONOSUPPORT,
    EOPNOTSUPP,
    EAFNOSUPPORT,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ENETDOWN,
    ENETUNREACH,
    ECONNABORTED,
    ECONNRESET,
    ENOBUFS,
    EISCONN,
    ENOTCONN,
    ETIMEDOUT,
    ECONNREFUSED,
    EALREADY,
    EINPROGRESS,
    ECANCELED,
    EOWNERDEAD,
);

pub fn errno_by_name(name: &str) -> Option<i32> {
    ERRNOS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

pub fn errno_name(e: i32) -> String {
    ERRNOS.iter().find(|(_, v)| *v == e).map(|(n, _)| n.to_string()).unwrap_or_else(|| format!("errno {e}"))
}

/// `-EINVAL`-style rendering of a CQE result or syscall return.
pub fn res_name(res: i64) -> String {
    if res < 0 {
        format!("-{}", errno_name((-res) as i32))
    } else {
        res.to_string()
    }
}

/// Claims `path` for this process: creates the file only if nothing is there (`O_EXCL`, so
/// never through a link) and writes `text`. `Ok(false)` when the name is taken.
pub fn claim_file(path: &std::path::Path, text: &str) -> io::Result<bool> {
    use std::io::Write;
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut f) => f.write_all(text.as_bytes()).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `text` as the new content of a file of ours in a shared directory (/run): whatever is at
/// `path` (an old file, a link someone planted) is unlinked first, which never follows a link,
/// and the file is created anew with `O_EXCL`.
pub fn replace_file(path: &std::path::Path, text: &str) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if claim_file(path, text)? {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{}: created by another process", path.display())))
    }
}

/// Sets a resource limit (soft, and hard when given).
pub fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: Option<u64>) -> io::Result<()> {
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct.
    if unsafe { libc::getrlimit(resource, &mut cur) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let new = libc::rlimit { rlim_cur: soft, rlim_max: hard.unwrap_or(cur.rlim_max) };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(resource, &new) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The highest descriptor this process has open.
pub fn highest_fd() -> io::Result<i32> {
    let fds: Vec<i32> =
        std::fs::read_dir("/proc/self/fd")?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    // The directory's own descriptor is closed by now; it may be the highest listed.
    Ok(fds.into_iter().filter(|fd| fd_is_open(*fd)).max().unwrap_or(2))
}

/// Kernel release, e.g. "6.18.44-fc-v657".
pub fn kernel_release() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into())
}

pub use crate::model::probe::parse_version;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmabuf_bufinfo_lines() {
        let text = "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n\
                    00262144\t00000002\t00080007\t00000002\tudmabuf\t00000042\t<none>\n\
                    \tAttached Devices:\n\tnetdevsim.1\nTotal 1 devices attached\n\n\
                    00004096\t00000002\t00080007\t00000001\tudmabuf\t00000043\t<none>\n\
                    \tAttached Devices:\nTotal 0 devices attached\n\n\nTotal 2 objects, 266240 bytes\n";
        assert_eq!(dmabuf_bufinfo_count(text, 42), Ok(Some(2)));
        assert_eq!(dmabuf_bufinfo_count(text, 43), Ok(Some(1)));
        assert_eq!(dmabuf_bufinfo_count(text, 4), Ok(None));
        assert_eq!(dmabuf_bufinfo_count("12\tx\n", 12), Err("12\tx".to_string()));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.18.44-fc-v657"), Some((6, 18, 44)));
        assert_eq!(parse_version("7.3.4+deb13-amd64"), Some((7, 3, 4)));
        assert_eq!(parse_version("7.3"), Some((7, 3, 0)));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn errno_names_round_trip() {
        assert_eq!(errno_by_name("EINVAL"), Some(libc::EINVAL));
        assert_eq!(errno_name(libc::EOPNOTSUPP), "EOPNOTSUPP");
        assert_eq!(res_name(-(libc::ENOMEM as i64)), "-ENOMEM");
        assert_eq!(errno_by_name("EWHAT"), None);
    }

    #[test]
    fn replace_and_claim_never_write_through_a_link() {
        let dir = std::env::temp_dir().join(format!("zcrx-sys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").expect("victim");
        let link = dir.join("owner");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        assert!(!claim_file(&link, "1").expect("claim"), "a name that is taken is not claimed");
        replace_file(&link, "42").expect("replace");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "precious");
        assert_eq!(std::fs::read_to_string(&link).expect("read"), "42");
        assert!(!std::fs::symlink_metadata(&link).expect("meta").file_type().is_symlink());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
