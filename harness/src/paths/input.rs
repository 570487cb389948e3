//! Reading a file the user named that is not a case file's catalogue entry: a report, a
//! baseline, a topology file, or a report a run would replace. Only a regular file is read: it
//! is opened with `O_NONBLOCK` (a FIFO is refused at once, never waited on), checked with
//! `fstat` on the opened file (not the name, which may change meanwhile), and read up to a
//! size cap (a device such as /dev/zero is refused before a byte is read; a file that grows
//! while it is read stops at the cap).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest report.json, KCIDB or baseline file read (a report of 125,000 cases is about
/// 100 MB).
pub const MAX_REPORT_BYTES: u64 = 256 << 20;

/// The largest topology file read.
pub const MAX_TOPOLOGY_BYTES: u64 = 1 << 20;

/// What a file that is not regular is, for messages.
fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading without blocking; `follow`: whether a symbolic link at `path` is
/// followed (an input named by the user) or refused (a report this process writes there).
/// Refused: anything but a regular file, and a file over `max` bytes.
pub fn open_regular(path: &Path, max: u64, follow: bool) -> io::Result<File> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let f = OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) if !follow => io::Error::other("is a symbolic link: not read"),
        _ => e,
    })?;
    let m = f.metadata()?;
    if !m.is_file() {
        let k = kind(m.file_type());
        let k = if k == "not a regular file" { k.to_string() } else { format!("not a regular file ({k})") };
        return Err(io::Error::other(k));
    }
    if m.len() > max {
        return Err(io::Error::other(format!("too large: {} bytes, more than {max}", m.len())));
    }
    Ok(f)
}

/// The bytes of the regular file `path` (see [`open_regular`]), at most `max`.
pub fn read_regular(path: &Path, max: u64, follow: bool) -> io::Result<Vec<u8>> {
    let f = open_regular(path, max, follow)?;
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other(format!("too large: more than {max} bytes")));
    }
    Ok(bytes)
}

/// The text of the regular file `path` (see [`open_regular`]), at most `max` bytes, in UTF-8.
pub fn read_text(path: &Path, max: u64, follow: bool) -> io::Result<String> {
    String::from_utf8(read_regular(path, max, follow)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8: {}", e.utf8_error())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("zcrx-input-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let d = temp_dir("regular");
        let f = d.join("f");
        std::fs::write(&f, "text").expect("write");
        assert_eq!(read_text(&f, 4, true).expect("read"), "text");
        let e = read_text(&f, 3, true).expect_err("over the cap");
        assert!(e.to_string().contains("too large"), "{e}");
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
        let e = read_text(&fifo, 100, true).expect_err("a FIFO");
        assert!(e.to_string().contains("FIFO"), "{e}");
        let e = read_text(Path::new("/dev/zero"), 100, true).expect_err("a device");
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_text(&d, 100, true).expect_err("a directory");
        assert!(e.to_string().contains("directory"), "{e}");
        let link = d.join("link");
        std::os::unix::fs::symlink(&f, &link).expect("link");
        assert_eq!(read_text(&link, 100, true).expect("followed"), "text");
        let e = read_text(&link, 100, false).expect_err("not followed");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
