//! The io_uring instance a case drives, built on the `io-uring` crate. CQE32 rings use
//! the crate's builder; rings it cannot express (CQE_MIXED, no CQE32) are created with a
//! raw io_uring_setup and adopted with `IoUring::from_fd`, and their mixed 16/32-byte
//! CQEs are decoded here. SQEs are written from our own exact `Sqe` layout, so any
//! field (addr, msg_flags, ...) can be set.

use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, squeue, types, IoUring};

use crate::kernel::sys;
use crate::kernel::uapi::*;

const _: () = assert!(std::mem::size_of::<io_uring::Parameters>() == 120);
const _: () = assert!(std::mem::size_of::<squeue::Entry>() == std::mem::size_of::<Sqe>());

enum Inner {
    Big(IoUring<squeue::Entry, cqueue::Entry32>),
    Small(IoUring<squeue::Entry, cqueue::Entry>),
}

pub struct Ring {
    inner: Inner,
    pub mixed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
    /// The second 16 bytes of a 32-byte CQE (io_uring_zcrx_cqe for RECV_ZC).
    pub big: Option<[u64; 2]>,
}

/// Ring creation failed: the kernel's errno, or a combination the harness cannot drive.
#[derive(Debug)]
pub enum RingError {
    Kernel(i32),
    Unsupported(String),
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::Kernel(e) => write!(f, "io_uring_setup: {}", sys::errno_name(*e)),
            RingError::Unsupported(m) => write!(f, "{m}"),
        }
    }
}

fn io_errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl Ring {
    pub fn new(entries: u32, flags: u32, cq_entries: Option<u32>) -> Result<Ring, RingError> {
        let flags = if cq_entries.is_some() { flags | IORING_SETUP_CQSIZE } else { flags };
        if flags & IORING_SETUP_CQE32 != 0 {
            Self::new_big(entries, flags, cq_entries)
        } else {
            Self::new_small(entries, flags, cq_entries)
        }
    }

    fn new_big(entries: u32, flags: u32, cq_entries: Option<u32>) -> Result<Ring, RingError> {
        let mut b = IoUring::<squeue::Entry, cqueue::Entry32>::builder();
        let mut rest = flags & !IORING_SETUP_CQE32;
        let mut take = |bit: u32| {
            let had = rest & bit != 0;
            rest &= !bit;
            had
        };
        if take(IORING_SETUP_DEFER_TASKRUN) {
            b.setup_defer_taskrun();
        }
        if take(IORING_SETUP_SINGLE_ISSUER) {
            b.setup_single_issuer();
        }
        if take(IORING_SETUP_CLAMP) {
            b.setup_clamp();
        }
        if take(IORING_SETUP_SUBMIT_ALL) {
            b.setup_submit_all();
        }
        if take(IORING_SETUP_COOP_TASKRUN) {
            b.setup_coop_taskrun();
        }
        if take(IORING_SETUP_TASKRUN_FLAG) {
            b.setup_taskrun_flag();
        }
        if take(IORING_SETUP_NO_SQARRAY) {
            b.setup_no_sqarray();
        }
        if take(IORING_SETUP_CQSIZE) {
            if let Some(n) = cq_entries {
                b.setup_cqsize(n);
            }
        }
        if rest != 0 {
            // Ask the kernel first: a combination it refuses is a result, not our limit.
            let mut params = [0u8; 120];
            params[8..12].copy_from_slice(&flags.to_ne_bytes());
            params[4..8].copy_from_slice(&cq_entries.unwrap_or(0).to_ne_bytes());
            return match sys::io_uring_setup(entries, &mut params) {
                Err(e) => Err(RingError::Kernel(e)),
                Ok(_) => Err(RingError::Unsupported(format!(
                    "setup flags {rest:#x} together with CQE32 cannot be driven by the harness"
                ))),
            };
        }
        let ring = b.build(entries).map_err(|e| RingError::Kernel(io_errno(e)))?;
        Ok(Ring { inner: Inner::Big(ring), mixed: false })
    }

    fn new_small(entries: u32, flags: u32, cq_entries: Option<u32>) -> Result<Ring, RingError> {
        let mut params = [0u8; 120];
        // struct io_uring_params: sq_entries@0, cq_entries@4, flags@8.
        params[4..8].copy_from_slice(&cq_entries.unwrap_or(0).to_ne_bytes());
        params[8..12].copy_from_slice(&flags.to_ne_bytes());
        let fd = sys::io_uring_setup(entries, &mut params).map_err(RingError::Kernel)?;
        // SAFETY: io_uring::Parameters is repr(transparent) over io_uring_params (120
        // bytes, asserted above), filled in by the kernel for this fd.
        let p: io_uring::Parameters = unsafe { std::mem::transmute::<[u8; 120], io_uring::Parameters>(params) };
        // SAFETY: fd is a fresh io_uring fd we own, and p is what the kernel returned.
        let ring = unsafe { IoUring::from_fd(fd.into_raw_fd(), p) }.map_err(|e| RingError::Kernel(io_errno(e)))?;
        Ok(Ring { inner: Inner::Small(ring), mixed: flags & IORING_SETUP_CQE_MIXED != 0 })
    }

    pub fn fd(&self) -> RawFd {
        match &self.inner {
            Inner::Big(r) => r.as_raw_fd(),
            Inner::Small(r) => r.as_raw_fd(),
        }
    }

    /// IORING_REGISTER_PROBE: whether `op` is supported (None if the probe failed).
    pub fn probe_op(&self, op: u8) -> Option<bool> {
        let mut p = io_uring::Probe::new();
        let r = match &self.inner {
            Inner::Big(r) => r.submitter().register_probe(&mut p),
            Inner::Small(r) => r.submitter().register_probe(&mut p),
        };
        r.ok().map(|_| p.is_supported(op))
    }

    /// Queues one SQE exactly as given and submits it.
    pub fn submit_sqe(&mut self, sqe: &Sqe) -> Result<usize, i32> {
        // SAFETY: squeue::Entry is repr(C) over the 64-byte io_uring_sqe, as is Sqe.
        let entry: squeue::Entry = unsafe { std::mem::transmute::<Sqe, squeue::Entry>(*sqe) };
        let pushed = match &mut self.inner {
            // SAFETY: the SQE references no user memory the kernel writes to.
            Inner::Big(r) => unsafe { r.submission().push(&entry) },
            Inner::Small(r) => unsafe { r.submission().push(&entry) },
        };
        pushed.map_err(|_| libc::EBUSY)?;
        // The submission's io_uring_enter is the one syscall a fault sweep may arm here.
        crate::kernel::sys::armed(|| match &self.inner {
            Inner::Big(r) => r.submit(),
            Inner::Small(r) => r.submit(),
        })
        .map_err(io_errno)
    }

    /// Waits until at least one CQE is there or `timeout` passed, running deferred task
    /// work, then returns every CQE available.
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<Cqe>, i32> {
        let ts = types::Timespec::new().sec(timeout.as_secs()).nsec(timeout.subsec_nanos());
        let args = types::SubmitArgs::new().timespec(&ts);
        let r = match &self.inner {
            Inner::Big(r) => r.submitter().submit_with_args(1, &args),
            Inner::Small(r) => r.submitter().submit_with_args(1, &args),
        };
        match r.map_err(io_errno) {
            Ok(_) | Err(libc::ETIME) | Err(libc::EINTR) | Err(libc::EBUSY) => {}
            Err(e) => return Err(e),
        }
        Ok(self.reap())
    }

    /// Every CQE currently in the ring, decoded.
    pub fn reap(&mut self) -> Vec<Cqe> {
        let mut out = Vec::new();
        match &mut self.inner {
            Inner::Big(r) => {
                for e in r.completion() {
                    out.push(Cqe {
                        user_data: e.user_data(),
                        res: e.result(),
                        flags: e.flags(),
                        big: Some(*e.big_cqe()),
                    });
                }
            }
            Inner::Small(r) => {
                let mixed = self.mixed;
                let mut it = r.completion();
                while let Some(e) = it.next() {
                    let flags = e.flags();
                    if mixed && flags & IORING_CQE_F_SKIP != 0 {
                        continue;
                    }
                    let big = if mixed && flags & IORING_CQE_F_32 != 0 {
                        // The second half of a 32-byte CQE occupies the next 16-byte slot.
                        it.next().map(|x| [x.user_data(), (x.result() as u32 as u64) | ((x.flags() as u64) << 32)])
                    } else {
                        None
                    };
                    out.push(Cqe { user_data: e.user_data(), res: e.result(), flags, big });
                }
            }
        }
        out
    }
}
