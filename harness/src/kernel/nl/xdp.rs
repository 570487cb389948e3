//! A minimal XDP program (`r0 = XDP_PASS; exit`) loaded with `bpf(BPF_PROG_LOAD)`, and AF_XDP
//! sockets bound to one rx queue; no libbpf, no object file.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{NlError, NlResult};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
/// BPF_F_XDP_HAS_FRAGS: the program handles multi-buffer frames (needed next to header
/// split: the kernel refuses single-buffer XDP while tcp-data-split is on).
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// XDP_FLAGS_* for IFLA_XDP_FLAGS.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Loads `r0 = 2 (XDP_PASS); exit`.
pub fn load_pass(frags: bool) -> NlResult<OwnedFd> {
    let insns: [u8; 16] = [0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    let license = c"GPL";
    let mut attr = [0u8; 128];
    let put32 = |a: &mut [u8; 128], at: usize, v: u32| a[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    put32(&mut attr, 0, BPF_PROG_TYPE_XDP);
    put32(&mut attr, 4, 2);
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    put32(&mut attr, 44, if frags { BPF_F_XDP_HAS_FRAGS } else { 0 });
    attr[48..58].copy_from_slice(b"zcrx_pass\0");
    put32(&mut attr, 68, BPF_XDP);
    // SAFETY: bpf(BPF_PROG_LOAD, attr, size) reads attr and the instructions and license it
    // points at, all alive for the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_ptr(), attr.len() as u32) };
    if fd < 0 {
        return Err(NlError::sys("bpf(BPF_PROG_LOAD, XDP_PASS)", nix::errno::Errno::last()));
    }
    // SAFETY: a new fd the kernel just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

const AF_XDP: i32 = 44;
const SOL_XDP: i32 = 283;
const XDP_RX_RING: i32 = 2;
const XDP_UMEM_REG: i32 = 4;
const XDP_UMEM_FILL_RING: i32 = 5;
const XDP_UMEM_COMPLETION_RING: i32 = 6;
pub const XDP_COPY: u16 = 1 << 1;
pub const XDP_ZEROCOPY: u16 = 1 << 2;

/// An AF_XDP socket with its umem (kept mapped while the socket lives).
pub struct Xsk {
    pub fd: OwnedFd,
    umem: *mut libc::c_void,
    len: usize,
}

impl Drop for Xsk {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `bind`, unmapped once; the socket closes after.
        unsafe { libc::munmap(self.umem, self.len) };
    }
}

fn setopt(fd: &OwnedFd, opt: i32, val: &[u8], what: &str) -> NlResult<()> {
    // SAFETY: setsockopt reads `val` for the call.
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), SOL_XDP, opt, val.as_ptr().cast(), val.len() as u32) };
    if r < 0 {
        return Err(NlError::sys(what, nix::errno::Errno::last()));
    }
    Ok(())
}

/// Creates an AF_XDP socket (16-page umem, 64-entry rings) and binds it to rx queue `queue`
/// of `ifindex` with `flags` (XDP_COPY / XDP_ZEROCOPY / 0). The bind's errno is the answer.
pub fn bind(ifindex: u32, queue: u32, flags: u16) -> NlResult<Xsk> {
    // SAFETY: a new socket; checked below.
    let s = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(NlError::sys("socket(AF_XDP)", nix::errno::Errno::last()));
    }
    // SAFETY: the fd just returned.
    let fd = unsafe { OwnedFd::from_raw_fd(s) };
    let len = 16 * 4096;
    // SAFETY: an anonymous private mapping, owned by the returned Xsk.
    let umem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if umem == libc::MAP_FAILED {
        return Err(NlError::sys("mmap umem", nix::errno::Errno::last()));
    }
    let x = Xsk { fd, umem, len };
    // struct xdp_umem_reg { u64 addr; u64 len; u32 chunk_size; u32 headroom; u32 flags; u32 tx_metadata_len; }
    let mut reg = Vec::with_capacity(32);
    reg.extend_from_slice(&(umem as u64).to_ne_bytes());
    reg.extend_from_slice(&(len as u64).to_ne_bytes());
    reg.extend_from_slice(&4096u32.to_ne_bytes());
    reg.extend_from_slice(&[0u8; 12]);
    setopt(&x.fd, XDP_UMEM_REG, &reg, "setsockopt(XDP_UMEM_REG)")?;
    for (opt, what) in [
        (XDP_UMEM_FILL_RING, "setsockopt(XDP_UMEM_FILL_RING)"),
        (XDP_UMEM_COMPLETION_RING, "setsockopt(XDP_UMEM_COMPLETION_RING)"),
        (XDP_RX_RING, "setsockopt(XDP_RX_RING)"),
    ] {
        setopt(&x.fd, opt, &64u32.to_ne_bytes(), what)?;
    }
    // struct sockaddr_xdp { u16 family; u16 flags; u32 ifindex; u32 queue_id; u32 shared_umem_fd; }
    let mut sa = [0u8; 16];
    sa[0..2].copy_from_slice(&(AF_XDP as u16).to_ne_bytes());
    sa[2..4].copy_from_slice(&flags.to_ne_bytes());
    sa[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    sa[8..12].copy_from_slice(&queue.to_ne_bytes());
    // SAFETY: bind reads the 16-byte sockaddr_xdp.
    let r = unsafe { libc::bind(x.fd.as_raw_fd(), sa.as_ptr().cast(), sa.len() as u32) };
    if r < 0 {
        return Err(NlError::sys(
            &format!("bind AF_XDP to ifindex {ifindex} queue {queue}"),
            nix::errno::Errno::last(),
        ));
    }
    Ok(x)
}
