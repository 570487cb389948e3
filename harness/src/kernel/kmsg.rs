//! The kernel log: /dev/kmsg from where it ends when opened. The runner reads it before and
//! after each case, so a splat is attributed to the case that was running when it was printed;
//! a fault sweep reads it after each round for the injected call's stack.

use std::io::Read;
use std::os::fd::AsRawFd;

/// Kernel log watcher over /dev/kmsg.
pub struct Kmsg {
    f: Option<std::fs::File>,
}
impl Kmsg {
    pub fn open() -> Kmsg {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").ok();
        let mut k = Kmsg { f };
        k.skip_to_end();
        k
    }

    fn skip_to_end(&mut self) {
        if let Some(f) = &self.f {
            // SAFETY: lseek on our own fd.
            unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
        }
    }

    /// Records printed since the last call, with the raw dumps among their indented
    /// continuation lines left out ([`kept`]).
    pub fn drain(&mut self) -> Vec<String> {
        self.drain_lines(kept)
    }

    /// Every line of the records printed since the last call.
    pub fn drain_all(&mut self) -> Vec<String> {
        self.drain_lines(|_| true)
    }

    fn drain_lines(&mut self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        let Some(f) = &mut self.f else { return out };
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let msg = rec.split_once(';').map(|(_, m)| m).unwrap_or(&rec);
                    out.extend(msg.lines().filter(|l| keep(l)).map(|l| l.trim_end().to_string()));
                }
                // EPIPE: records were overwritten; keep reading from the next one.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }
}

/// Whether [`Kmsg::drain`] keeps a line: every unindented line; of the indented continuation
/// lines, those that start with a capital (`RIP:`, `Call Trace:`, `Code:`, register names),
/// the backtrace's frames (`  io_zcrx_scrub+0x12/0x1c0`, `  ? foo+0x5/0x9`) and its context
/// markers (`<TASK>`, `<IRQ>`); raw memory (KASAN's shadow bytes, kmemleak's hex dumps, stack
/// words) is left out.
pub fn kept(l: &str) -> bool {
    let t = l.trim_start();
    !l.starts_with(' ')
        || t.starts_with(|c: char| c.is_ascii_uppercase())
        || t.starts_with('<')
        || super::symbols::frame_of(l).is_some()
}

#[cfg(test)]
mod tests {
    #[test]
    fn backtraces_are_kept_and_raw_memory_is_not() {
        for l in [
            "WARNING: include/net/netdev_lock.h:72 at netdev_queue_get_dma_dev+0x1a4/0x1c0",
            " RIP: 0010:netdev_queue_get_dma_dev+0x1b0/0x1c0",
            " Call Trace:",
            "  <TASK>",
            "  io_register_zcrx_ifq+0x353/0x1e30",
            "  ? __pfx_io_register_zcrx_ifq+0x10/0x10",
            "  </TASK>",
        ] {
            assert!(super::kept(l), "{l}");
        }
        for l in [
            "  ffff888101b0e000: fa fb fc fc 00 00 00 00",
            "    00 00 00 00 00 00 00 00  ........",
            "  0000000000000000",
        ] {
            assert!(!super::kept(l), "{l}");
        }
    }
}
