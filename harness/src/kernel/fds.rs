//! The descriptor table of the case process: using it up (`limit: { nofile_used: true }`).

use std::io;

use super::sys::{highest_fd, set_rlimit};

/// Uses up the descriptor table: RLIMIT_NOFILE (soft) one past the highest descriptor open, then
/// every free slot below it filled with a duplicate, so the next descriptor anything asks for is
/// EMFILE. The limit alone is not enough: the kernel gives the lowest free descriptor, and a case
/// process forked while other cases ran (`-j N`) inherits a table with holes below its highest
/// descriptor (pipes and pidfds of cases that ended), so a new descriptor still fitted.
/// Returns the limit and how many holes were filled.
pub fn use_up_fds() -> io::Result<(u64, usize)> {
    let top = highest_fd()?;
    let limit = top as u64 + 1;
    set_rlimit(libc::RLIMIT_NOFILE, limit, None)?;
    let mut filled = 0;
    loop {
        // SAFETY: F_DUPFD of an open descriptor makes a new one or fails; nothing else changes.
        let fd = unsafe { libc::fcntl(top, libc::F_DUPFD, 0) };
        if fd >= 0 {
            filled += 1;
            if filled as u64 > limit {
                return Err(io::Error::other("RLIMIT_NOFILE did not hold: more duplicates than the limit"));
            }
            continue;
        }
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EMFILE) => Ok((limit, filled)),
            _ => Err(e),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a forked child (the limit is the whole process's): a descriptor table with holes below
    /// its highest descriptor, as a case process forked at `-j N` inherits; then `fill` and one more
    /// open. Exit status 0: the open was EMFILE; 1: it still got a descriptor; 2: something else.
    fn open_after(fill: fn() -> io::Result<()>) -> i32 {
        // SAFETY: the child makes only syscalls (and glibc's fork-safe malloc) and leaves with _exit.
        match unsafe { libc::fork() } {
            0 => {
                let code = (|| {
                    let base = std::os::fd::IntoRawFd::into_raw_fd(std::fs::File::open("/dev/null").ok()?);
                    let top = highest_fd().ok()?;
                    // Holes: descriptors top+1 .. top+7 stay free below the new highest one.
                    // SAFETY: F_DUPFD of an open descriptor.
                    if unsafe { libc::fcntl(base, libc::F_DUPFD, top + 8) } < 0 {
                        return None;
                    }
                    fill().ok()?;
                    Some(match std::fs::File::open("/dev/null") {
                        Ok(_) => 1,
                        Err(e) if e.raw_os_error() == Some(libc::EMFILE) => 0,
                        Err(_) => 2,
                    })
                })()
                .unwrap_or(2);
                // SAFETY: leaves the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            pid if pid > 0 => {
                let mut status = 0;
                // SAFETY: waits for the child just forked.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    -1
                }
            }
            _ => panic!("fork: {}", io::Error::last_os_error()),
        }
    }

    /// import.export_emfile failed 1 of 3 passes at -j 4: the export got a descriptor in a hole.
    #[test]
    fn use_up_fds_leaves_no_free_descriptor() {
        fn limit_only() -> io::Result<()> {
            set_rlimit(libc::RLIMIT_NOFILE, highest_fd()? as u64 + 1, None)
        }
        assert_eq!(open_after(limit_only), 1, "the set-up has holes: the limit alone leaves a descriptor free");
        assert_eq!(open_after(|| use_up_fds().map(|_| ())), 0, "use_up_fds: the next open is EMFILE");
    }
}
