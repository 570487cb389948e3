//! Reading a device's state without starting a program, for what the ethtool netlink family
//! does not carry: the legacy ethtool ioctls (`SIOCETHTOOL`, through `kernel::nl::ethtool`)
//! for driver info, channels, flags, rxnfc rule counts and the RSS hash. Read only: no `SET`
//! command is built here. Rings come from `kernel::nl::ethtool::rings_reported`, page pools
//! from `kernel::nl::netdev::all_page_pools`.

use super::QError as Error;

pub const ETHTOOL_GDRVINFO: u32 = 0x03;
pub const ETHTOOL_GFLAGS: u32 = 0x25;
pub const ETHTOOL_GRXCLSRLCNT: u32 = 0x2e;
pub const ETHTOOL_GCHANNELS: u32 = 0x3c;
pub const ETHTOOL_GRSSH: u32 = 0x46;
/// `ETH_FLAG_NTUPLE` in the `ETHTOOL_GFLAGS` value: n-tuple filters enabled.
pub const ETH_FLAG_NTUPLE: u32 = 1 << 27;

/// One `SIOCETHTOOL` request on `dev`: `buf` starts with the command word and is filled in by
/// the kernel. The errno on failure.
pub fn ioctl(dev: &str, buf: &mut [u8]) -> Result<(), i32> {
    crate::kernel::nl::ethtool::sioc_ethtool(dev, buf)
}

/// A buffer for an ioctl command: `len` zero bytes with `cmd` (and `words` after it) in
/// native order.
pub fn request(cmd: u32, words: &[u32], len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    for (i, w) in std::iter::once(&cmd).chain(words).enumerate() {
        b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    b
}

/// The u32 at byte `off` of an ioctl answer.
pub fn word(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// The NUL-terminated string of `len` bytes at `off`.
pub fn cstr(b: &[u8], off: usize, len: usize) -> String {
    let s = b.get(off..off + len).unwrap_or_default();
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

/// `rings-get` of `dev` (in the calling thread's namespace): every ring attribute the driver
/// reports, by name.
pub fn rings(dev: &str) -> Result<Vec<(&'static str, u64)>, Error> {
    use crate::kernel::nl::{ethtool, link};
    let idx = link::by_name(dev).map_err(|e| Error::Setup(e.msg))?.index;
    ethtool::rings_reported(idx).map(|r| r.all).map_err(|e| Error::Setup(e.msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_drvinfo_and_rings_are_read_only_requests() {
        // lo has no driver info; the ioctl path still answers with an errno, never panics.
        let mut b = request(ETHTOOL_GDRVINFO, &[], 196);
        let _ = ioctl("lo", &mut b);
        assert_eq!(ioctl("this-name-is-too-long", &mut b), Err(libc::EINVAL));
        let _ = rings("lo");
        assert_eq!(word(&request(7, &[9], 8), 4), 9);
        assert_eq!(cstr(b"ab\0cd", 0, 5), "ab");
    }
}
