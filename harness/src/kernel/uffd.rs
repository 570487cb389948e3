//! A page whose first write by the kernel stops until the harness lets it go on, through
//! userfaultfd's write-protect mode ([`WriteTrap`]): the way to make something happen in the
//! middle of a syscall, between two of its copies to user space (syzkaller's trick for widening
//! race windows). The kernel's read of the page is not stopped, only its write.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const UFFD_API: u64 = 0xAA;
const UFFD_FEATURE_PAGEFAULT_FLAG_WP: u64 = 1 << 0;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
const UFFD_PAGEFAULT_FLAG_WP: u64 = 1 << 1;
// _IOWR(0xAA, nr, size) and _IOR(0xAA, nr, size).
const UFFDIO_API: u64 = 0xC018_AA3F;
const UFFDIO_REGISTER: u64 = 0xC020_AA00;
const UFFDIO_WAKE: u64 = 0x8010_AA02;
const UFFDIO_WRITEPROTECT: u64 = 0xC018_AA06;

#[repr(C)]
#[derive(Default)]
struct Api {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Range {
    start: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct RegisterArg {
    range: Range,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct WriteProtect {
    range: Range,
    mode: u64,
}

fn ioctl<T>(fd: &OwnedFd, req: u64, arg: &mut T) -> io::Result<()> {
    // SAFETY: each request above takes a pointer to the struct it is given with, of that size.
    if unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A write-protected range of this process's anonymous memory: the first write to it (by the
/// kernel too, in copy_to_user) waits until [`WriteTrap::wait`] saw it and [`Self::refuse`]
/// let it go on. Dropping the trap releases a write still waiting (it then succeeds).
pub struct WriteTrap {
    uffd: OwnedFd,
    range: Range,
}

/// What [`WriteTrap::wait`] saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Trapped {
    /// A write at this address is waiting.
    Write(u64),
    /// `stop` became readable first: no write came.
    Stopped,
    /// Neither within the time given.
    Timeout,
}

impl WriteTrap {
    /// Arms the trap on `len` bytes at `addr` (page-aligned, populated, private anonymous).
    pub fn arm(addr: u64, len: u64) -> io::Result<WriteTrap> {
        // Kernel-mode faults are trapped too: no UFFD_USER_MODE_ONLY (root may).
        // SAFETY: userfaultfd takes flags only; a new fd is returned.
        let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a successful userfaultfd returns a new fd that we now own.
        let uffd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut api = Api { api: UFFD_API, features: UFFD_FEATURE_PAGEFAULT_FLAG_WP, ioctls: 0 };
        ioctl(&uffd, UFFDIO_API, &mut api)?;
        let range = Range { start: addr, len };
        let mut reg = RegisterArg { range, mode: UFFDIO_REGISTER_MODE_WP, ioctls: 0 };
        ioctl(&uffd, UFFDIO_REGISTER, &mut reg)?;
        let mut wp = WriteProtect { range, mode: UFFDIO_WRITEPROTECT_MODE_WP };
        ioctl(&uffd, UFFDIO_WRITEPROTECT, &mut wp)?;
        Ok(WriteTrap { uffd, range })
    }

    /// Waits up to `limit` for a trapped write, or for `stop` to become readable.
    pub fn wait(&self, stop: &OwnedFd, limit: Duration) -> io::Result<Trapped> {
        let mut fds = [
            libc::pollfd { fd: self.uffd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: stop.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        let ms = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: two pollfd structs, as counted.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if fds[0].revents & libc::POLLIN != 0 {
            let mut msg = [0u8; 32];
            // SAFETY: a 32-byte buffer for one uffd_msg.
            let r = unsafe { libc::read(self.uffd.as_raw_fd(), msg.as_mut_ptr() as *mut _, msg.len()) };
            if r != 32 {
                return Err(io::Error::other(format!("userfaultfd read returned {r}")));
            }
            let word = |o: usize| u64::from_ne_bytes(msg[o..o + 8].try_into().unwrap_or_default());
            let (flags, address) = (word(8), word(16));
            if msg[0] != UFFD_EVENT_PAGEFAULT || flags & UFFD_PAGEFAULT_FLAG_WP == 0 {
                return Err(io::Error::other(format!("unexpected userfaultfd event {:#x} flags {flags:#x}", msg[0])));
            }
            return Ok(Trapped::Write(address));
        }
        if fds[1].revents != 0 {
            return Ok(Trapped::Stopped);
        }
        Ok(Trapped::Timeout)
    }

    /// Lets the waiting write go on into a page that is now read-only: it fails (copy_to_user
    /// returns short, the syscall EFAULT).
    pub fn refuse(&self) -> io::Result<()> {
        // SAFETY: the trapped range is the caller's own mapping, alive while the trap is
        // (the registration's pages outlive the syscall that writes them).
        if unsafe { libc::mprotect(self.range.start as *mut _, self.range.len as usize, libc::PROT_READ) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut r = self.range;
        ioctl(&self.uffd, UFFDIO_WAKE, &mut r)
    }
}
