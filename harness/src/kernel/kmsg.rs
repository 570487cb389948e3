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

    /// Records printed since the last call, with the indented continuation lines that do not
    /// start with a capital (register dumps, raw stack words) left out.
    pub fn drain(&mut self) -> Vec<String> {
        self.drain_lines(|l| !l.starts_with(' ') || l.trim_start().starts_with(|c: char| c.is_ascii_uppercase()))
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
