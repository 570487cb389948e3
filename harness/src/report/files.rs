//! Writing report files as root into directories other users may write to.
//!
//! - [`write_atomic`] writes through a temp file with an unpredictable name, created with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` next to the target, synced and renamed over it: nothing written
//!   follows a symbolic link (a link planted at the temp name or at the target is never written
//!   through; a target that is a link is refused), and a reader sees the old file or the new
//!   one, never half of one.
//! - [`lock_dir`] holds an `flock` on `DIR/.zcrx-conform.lock` for a run, so two runs sharing
//!   `--out` cannot mix their files: the second is refused at once.
//! - [`check_output_file`] / [`check_output_dir`] find an unusable output path before any case
//!   runs (a missing parent that cannot be created, a directory where a file should be, procfs
//!   or sysfs, a read-only file system).
//! - [`keep_previous`] moves a report aside to `NAME.prev` (an aborted run does that to a
//!   complete report before replacing it).
//! - [`OutDir`] is `--out` opened once when it is locked: its writes, moves and reads go
//!   through that descriptor (`openat`/`renameat`), never through the directory's name again.

use super::Error;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file [`lock_dir`] creates in an output directory.
pub const LOCK_FILE: &str = ".zcrx-conform.lock";

/// 96 random bits as hex: `getrandom(2)`, else `/dev/urandom`. Should both fail, the time and
/// pid stand in: the name is then guessable, but `O_EXCL|O_NOFOLLOW` still refuse a planted
/// file or link (a guesser can only make the write fail).
fn random_hex() -> String {
    let mut buf = [0u8; 12];
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if usize::try_from(n).ok() != Some(buf.len()) {
        let urandom = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
        if urandom.is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let mix = (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32);
            buf[..8].copy_from_slice(&mix.to_le_bytes());
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a new file `path` (never an existing one, never through a link), mode 0644.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// A new temp file in `dir` named after `name` (`.NAME.RANDOM.tmp`).
fn create_temp(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    // Stay well under NAME_MAX (255 bytes) whatever the target's name.
    let short: String = name.chars().take(64).collect();
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..16 {
        let tmp = dir.join(format!(".{short}.{}.tmp", random_hex()));
        match create_new(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Why `path` cannot be replaced by a report, if it cannot: a link (never written through),
/// a directory, or something other than a regular file.
fn refuse_target(path: &Path) -> io::Result<()> {
    let refuse = |what: &str| Err(io::Error::other(format!("{} {what}", path.display())));
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            refuse("is a symbolic link: refusing to write through it (remove it or choose another path)")
        }
        Ok(m) if m.is_dir() => refuse("is a directory"),
        Ok(m) if !m.is_file() => refuse("is not a regular file"),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes a report atomically: a new temp file with an unpredictable name in the target's
/// directory (created if missing), synced, then renamed over the target. Refuses a target
/// that is a symbolic link; never follows one.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = parent(path);
    std::fs::create_dir_all(dir)?;
    refuse_target(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{}: not a file name", path.display())))?
        .to_string_lossy();
    let (tmp, mut f) = create_temp(dir, &name)?;
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    drop(f);
    // rename(2) replaces whatever is at `path` now (a link planted since the check included)
    // and never writes through it.
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// An output directory held by this run (the lock goes when this is dropped, or at exit).
#[derive(Debug)]
pub struct DirLock {
    _lock: nix::fcntl::Flock<File>,
}

/// Locks `dir` (which must exist) for this run: an exclusive `flock` on `DIR/.zcrx-conform.lock`
/// (created without following a link). Another run holding it: refused at once.
pub fn lock_dir(dir: &Path) -> Result<DirLock, Error> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path);
    lock_opened(f, &path, dir)
}

/// Takes the lock on the lock file just opened (`opened`, at `path`, in `dir`): a link there,
/// something other than a regular file, or another run holding it is refused at once.
fn lock_opened(opened: io::Result<File>, path: &Path, dir: &Path) -> Result<DirLock, Error> {
    use nix::fcntl::{Flock, FlockArg};
    let f = opened.map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => {
            Error::Invalid(format!("{} is a symbolic link: refusing to use it as the lock file", path.display()))
        }
        _ => Error::file(format!("{}: cannot create the lock file", path.display()))(e),
    })?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(Error::Invalid(format!(
            "{} is not a regular file: refusing to use it as the lock file",
            path.display()
        )));
    }
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(DirLock { _lock: lock }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(Error::Invalid(format!(
            "{}: another zcrx-conform run is writing its reports there (it holds {LOCK_FILE}); \
             wait for it to finish or choose another --out",
            dir.display()
        ))),
        Err((_, e)) => Err(Error::Invalid(format!("{}: cannot lock: {e}", path.display()))),
    }
}

/// File systems that hold no reports (writing there is at best an error, at worst a kernel
/// knob).
fn pseudo_fs(dir: &Path) -> Option<&'static str> {
    use nix::sys::statfs::*;
    let t = statfs(dir).ok()?.filesystem_type();
    [
        (PROC_SUPER_MAGIC, "procfs"),
        (SYSFS_MAGIC, "sysfs"),
        (CGROUP_SUPER_MAGIC, "cgroupfs"),
        (CGROUP2_SUPER_MAGIC, "cgroup2"),
        (DEBUGFS_MAGIC, "debugfs"),
        (TRACEFS_MAGIC, "tracefs"),
        (SECURITYFS_MAGIC, "securityfs"),
        (BPF_FS_MAGIC, "bpffs"),
        (DEVPTS_SUPER_MAGIC, "devpts"),
    ]
    .into_iter()
    .find(|(m, _)| *m == t)
    .map(|(_, n)| n)
}

/// `dir` (created if missing) is a directory this process can create files in, on a real file
/// system: checked by creating (and removing) a temp file the way [`write_atomic`] does.
fn check_dir(dir: &Path, what: &str) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Invalid(format!("{what} {}: cannot create it: {e}", dir.display())))?;
    if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Invalid(format!("{what} {}: not a directory", dir.display())));
    }
    if let Some(fs) = pseudo_fs(dir) {
        return Err(Error::Invalid(format!("{what} {}: on {fs}, which holds no reports", dir.display())));
    }
    let (tmp, f) = create_temp(dir, "write-check")
        .map_err(|e| Error::Invalid(format!("{what} {}: cannot create files there: {e}", dir.display())))?;
    drop(f);
    let _ = std::fs::remove_file(tmp);
    Ok(())
}

/// Before any case runs: `path` can take a report (its directory is usable, it is not a
/// link, a directory or a special file). `flag` names the option in messages.
pub fn check_output_file(path: &Path, flag: &str) -> Result<(), Error> {
    if path.file_name().is_none() || path.as_os_str().to_string_lossy().ends_with('/') {
        return Err(Error::Invalid(format!("{flag} {}: not a file name", path.display())));
    }
    check_dir(parent(path), &format!("{flag} {}: directory", path.display()))?;
    refuse_target(path).map_err(|e| Error::Invalid(format!("{flag}: {e}")))
}

/// Before any case runs: `dir` is (or can be made) a writable directory for `flag` (`--out`),
/// and its report `files` can be replaced.
pub fn check_output_dir(dir: &Path, flag: &str, files: &[&str]) -> Result<(), Error> {
    if std::fs::symlink_metadata(dir).is_ok() && !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Invalid(format!("{flag} {}: exists and is not a directory", dir.display())));
    }
    check_dir(dir, flag)?;
    for f in files {
        refuse_target(&dir.join(f)).map_err(|e| Error::Invalid(format!("{flag}: {e}")))?;
    }
    Ok(())
}

/// Where `path` leads, to compare two output paths: absolute, its longest existing ancestor
/// with links resolved, the rest with `.` and `..` applied by name.
pub fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let abs = std::env::current_dir().map(|c| c.join(path)).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component> = abs.components().collect();
    // The longest prefix that exists, with its links resolved; the rest applied by name.
    let (mut out, rest) = (0..=parts.len())
        .rev()
        .find_map(|n| {
            let prefix: PathBuf = parts[..n].iter().collect();
            prefix.canonicalize().ok().map(|c| (c, &parts[n..]))
        })
        .unwrap_or((PathBuf::from("/"), &parts[..]));
    for c in rest {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// The directories `dir` and above it that do not exist, deepest first: what creating `dir`
/// would create.
pub fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .filter(|d| !d.as_os_str().is_empty())
        .take_while(|d| std::fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect()
}

/// `path` with `.prev` appended to its name.
pub fn prev_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".prev");
    PathBuf::from(s)
}

/// Moves the regular file `path`, if there is one, to `NAME.prev` (replacing an older one).
pub fn keep_previous(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => std::fs::rename(path, prev_path(path)).map(|()| true),
        _ => Ok(false),
    }
}

/// An output directory (`--out`) opened once at the start of a run: every later operation on
/// its files is relative to this descriptor (`openat`, `fstatat`, `renameat`), never to its
/// name, so a directory renamed during the run and a link put in its place change nothing.
#[derive(Debug)]
pub struct OutDir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl OutDir {
    /// Opens the directory `path` (which must exist).
    pub fn open(path: &Path) -> Result<OutDir, Error> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, nix::sys::stat::Mode::empty())
            .map_err(|e| Error::Invalid(format!("{}: cannot open the directory: {e}", path.display())))?;
        Ok(OutDir { fd, path: path.to_path_buf() })
    }

    /// `NAME` in this directory, as the user named the directory (for messages).
    pub fn path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn open_at(&self, name: &str, flags: nix::fcntl::OFlag) -> io::Result<File> {
        let flags = flags | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, name, flags, nix::sys::stat::Mode::from_bits_truncate(0o644))?;
        Ok(File::from(fd))
    }

    /// Locks this directory for the run, as [`lock_dir`] does, on the lock file in this
    /// directory (not the one its name leads to now).
    pub fn lock(&self) -> Result<DirLock, Error> {
        use nix::fcntl::OFlag;
        let f = self.open_at(LOCK_FILE, OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NONBLOCK);
        lock_opened(f, &self.path(LOCK_FILE), &self.path)
    }

    /// What is at `name` now, without following a link: `None` when nothing is.
    fn kind_at(&self, name: &str) -> io::Result<Option<libc::mode_t>> {
        use nix::fcntl::AtFlags;
        match nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st.st_mode & libc::S_IFMT)),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// As [`refuse_target`], for `name` in this directory.
    fn refuse_target(&self, name: &str) -> io::Result<()> {
        let refuse = |what: &str| Err(io::Error::other(format!("{} {what}", self.path(name).display())));
        match self.kind_at(name)? {
            Some(libc::S_IFLNK) => {
                refuse("is a symbolic link: refusing to write through it (remove it or choose another path)")
            }
            Some(libc::S_IFDIR) => refuse("is a directory"),
            Some(libc::S_IFREG) | None => Ok(()),
            Some(_) => refuse("is not a regular file"),
        }
    }

    /// A new temp file here named after `name`, created as [`create_temp`] does.
    fn create_temp(&self, name: &str) -> io::Result<(String, File)> {
        use nix::fcntl::OFlag;
        let short: String = name.chars().take(64).collect();
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..16 {
            let tmp = format!(".{short}.{}.tmp", random_hex());
            match self.open_at(&tmp, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL) {
                Ok(f) => return Ok((tmp, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn remove(&self, name: &str) {
        let _ = nix::unistd::unlinkat(&self.fd, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(nix::fcntl::renameat(&self.fd, from, &self.fd, to)?)
    }

    /// As [`write_atomic`], for `name` in this directory.
    pub fn write_atomic(&self, name: &str, text: &str) -> io::Result<()> {
        self.refuse_target(name)?;
        let (tmp, mut f) = self.create_temp(name)?;
        let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
        drop(f);
        if let Err(e) = written.and_then(|()| self.rename(&tmp, name)) {
            self.remove(&tmp);
            return Err(e);
        }
        let _ = nix::unistd::fsync(&self.fd);
        Ok(())
    }

    /// Writes several files here as one: every temp file is written and synced first, and only
    /// when all were is each renamed over its target (`keep`: after moving a regular file there
    /// to `NAME.prev`). A failure (a full disk) replaces nothing and leaves no temp file; it
    /// names the file it happened to. On success, the names kept as `.prev`.
    pub fn write_together(&self, files: &[(&str, &str)], keep: bool) -> Result<Vec<String>, (String, io::Error)> {
        let mut temps: Vec<(String, &str)> = Vec::new();
        let undo = |temps: &[(String, &str)]| temps.iter().for_each(|(t, _)| self.remove(t));
        for &(name, text) in files {
            let written = self.refuse_target(name).and_then(|()| self.create_temp(name)).and_then(|(tmp, mut f)| {
                let w = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
                if w.is_err() {
                    self.remove(&tmp);
                }
                w.map(|()| tmp)
            });
            match written {
                Ok(tmp) => temps.push((tmp, name)),
                Err(e) => {
                    undo(&temps);
                    return Err((name.to_string(), e));
                }
            }
        }
        let mut kept = Vec::new();
        for &(_, name) in temps.iter().filter(|_| keep) {
            match self.keep_previous(name) {
                Ok(true) => kept.push(name.to_string()),
                Ok(false) => {}
                Err(e) => {
                    undo(&temps);
                    return Err((name.to_string(), e));
                }
            }
        }
        for (i, (tmp, name)) in temps.iter().enumerate() {
            if let Err(e) = self.rename(tmp, name) {
                undo(&temps[i..]);
                return Err((name.to_string(), e));
            }
        }
        let _ = nix::unistd::fsync(&self.fd);
        Ok(kept)
    }

    /// As [`keep_previous`], for `name` in this directory.
    pub fn keep_previous(&self, name: &str) -> io::Result<bool> {
        match self.kind_at(name)? {
            Some(libc::S_IFREG) => self.rename(name, &format!("{name}.prev")).map(|()| true),
            _ => Ok(false),
        }
    }

    /// The text of `name` here if it is a regular file (no link followed, no FIFO waited on)
    /// of at most `max` bytes.
    pub fn read_regular(&self, name: &str, max: u64) -> io::Result<String> {
        use nix::fcntl::OFlag;
        let f = self.open_at(name, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)?;
        let m = f.metadata()?;
        if !m.is_file() || m.len() > max {
            return Err(io::Error::other("not a regular file of at most the size of a report"));
        }
        let mut text = String::new();
        f.take(max).read_to_string(&mut text)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zcrx-files-{name}-{}-{}", std::process::id(), random_hex()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn writes_replace_and_leave_no_temp_file() {
        let d = temp_dir("write");
        let p = d.join("report.json");
        write_atomic(&p, "one").expect("write");
        write_atomic(&p, "two").expect("rewrite");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "two");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode & !0o644, 0, "mode {mode:o}");
        let names: Vec<_> = std::fs::read_dir(&d).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, ["report.json"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn temp_names_are_unpredictable() {
        assert_ne!(random_hex(), random_hex());
        assert_eq!(random_hex().len(), 24);
    }

    #[test]
    fn a_link_at_the_target_is_refused_and_its_victim_untouched() {
        let d = temp_dir("link");
        let victim = d.join("victim");
        std::fs::write(&victim, "precious").expect("victim");
        let p = d.join("junit.xml");
        symlink(&victim, &p).expect("link");
        let e = write_atomic(&p, "report").expect_err("a link target is refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious");
        assert!(check_output_file(&p, "--junit").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let d = temp_dir("lock");
        let first = lock_dir(&d).expect("first lock");
        let e = lock_dir(&d).expect_err("second lock").to_string();
        assert!(e.contains("another zcrx-conform run"), "{e}");
        drop(first);
        lock_dir(&d).expect("free again");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_linked_lock_file_is_refused() {
        let d = temp_dir("lock-link");
        let victim = d.join("victim");
        std::fs::write(&victim, "precious").expect("victim");
        symlink(&victim, d.join(LOCK_FILE)).expect("link");
        let e = lock_dir(&d).expect_err("linked lock file").to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn unusable_output_paths_are_found_early() {
        let d = temp_dir("check");
        let file = d.join("afile");
        std::fs::write(&file, "x").expect("file");
        assert!(check_output_dir(&file, "--out", &[]).is_err(), "--out AFILE");
        assert!(check_output_file(&file.join("j.xml"), "--junit").is_err(), "parent is a file");
        assert!(check_output_file(&d, "--junit").is_err(), "a directory");
        assert!(check_output_file(Path::new("/proc/self/j.xml"), "--junit").is_err());
        assert!(check_output_file(Path::new("/proc/x/j.xml"), "--junit").is_err());
        assert!(check_output_file(Path::new("/sys/kernel/j.xml"), "--junit").is_err());
        check_output_file(&d.join("new/sub/j.xml"), "--junit").expect("a new directory is fine");
        check_output_dir(&d.join("out"), "--out", &["junit.xml"]).expect("a new --out");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn previous_reports_move_aside() {
        let d = temp_dir("prev");
        let p = d.join("report.json");
        assert!(!keep_previous(&p).expect("nothing to keep"));
        std::fs::write(&p, "complete").expect("write");
        assert!(keep_previous(&p).expect("kept"));
        assert_eq!(std::fs::read_to_string(d.join("report.json.prev")).expect("prev"), "complete");
        let _ = std::fs::remove_dir_all(&d);
    }
}
