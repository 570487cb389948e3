//! The simulated second machine of a `simulate:` topology with `remote.ssh`: Debian's OpenSSH
//! server running in the peer's network namespace, with a host key and a login key made for the
//! run ([`Lab::start`]). The harness then reaches it over the simulated link exactly as it
//! reaches an operator's remote (`ssh.rs`).
//!
//! sshd needs its privilege-separation user (`sshd`) and directory (`/run/sshd`). A machine
//! without Debian's openssh-server package has neither; rather than change the machine, sshd
//! runs in a mount namespace of its own where `/etc/passwd` is a copy with that user added and
//! `/run` a fresh tmpfs holding the directory. Nothing outside its private directory and that
//! namespace is written. Dropping the [`Lab`] stops sshd (its process group) and removes the
//! directory.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ssh::SshError;

/// An OpenSSH server in a namespace, and the key files to reach it.
pub struct Lab {
    child: Child,
    pub dir: PathBuf,
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
}

fn file_err(p: &Path) -> impl Fn(std::io::Error) -> SshError + '_ {
    move |e| SshError::File { path: p.display().to_string(), source: e }
}

fn keygen(path: &Path, comment: &str) -> Result<(), SshError> {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SshError::Spawn { program: "ssh-keygen".into(), source: e })?;
    if !out.status.success() {
        return Err(SshError::Failed {
            host: "localhost".into(),
            command: "ssh-keygen".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().into(),
        });
    }
    Ok(())
}

fn cstr(p: &Path) -> Result<CString, SshError> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| SshError::File {
        path: p.display().to_string(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

impl Lab {
    /// Starts `sshd` (an absolute path) in network namespace `netns` (a /run/netns path),
    /// listening on `listen` port 22, accepting root with a key made here.
    pub fn start(sshd: &Path, netns: &Path, listen: &str) -> Result<Lab, SshError> {
        let dir = nix::unistd::mkdtemp(&std::env::temp_dir().join("zcrx-sshlab-XXXXXX")).map_err(|e| {
            SshError::File { path: "mkdtemp zcrx-sshlab".into(), source: std::io::Error::from_raw_os_error(e as i32) }
        })?;
        match Self::start_in(sshd, netns, listen, &dir) {
            Ok(l) => Ok(l),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn start_in(sshd: &Path, netns: &Path, listen: &str, dir: &Path) -> Result<Lab, SshError> {
        let (host_key, identity, known_hosts) = (dir.join("host_key"), dir.join("id"), dir.join("known_hosts"));
        keygen(&host_key, "zcrx-conform lab host")?;
        keygen(&identity, "zcrx-conform lab")?;
        let pubkey = |p: &Path| {
            let p = p.with_extension("pub");
            std::fs::read_to_string(&p).map_err(file_err(&p))
        };
        let host_pub = pubkey(&host_key)?;
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        let write = |p: PathBuf, text: String| std::fs::write(&p, text).map_err(file_err(&p));
        write(dir.join("authorized_keys"), pubkey(&identity)?)?;
        write(known_hosts.clone(), format!("{listen} {}\n", host_pub.join(" ")))?;
        let mut passwd = std::fs::read_to_string("/etc/passwd").map_err(file_err(Path::new("/etc/passwd")))?;
        if !passwd.lines().any(|l| l.starts_with("sshd:")) {
            if !passwd.ends_with('\n') {
                passwd.push('\n');
            }
            passwd.push_str("sshd:x:65534:65534:zcrx-conform lab sshd privsep:/run/sshd:/usr/sbin/nologin\n");
        }
        write(dir.join("passwd"), passwd)?;
        // Without PAM, sshd refuses an account whose password field is locked ("!..."), as
        // root's is in a virtme-ng guest ("User root not allowed because account is locked"):
        // the lab's machine gets root's field as "*" (no password, not locked) in a copy of
        // /etc/shadow seen only by its sshd.
        let shadow = match std::fs::read_to_string("/etc/shadow") {
            Ok(text) => Some(unlocked_root(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(file_err(Path::new("/etc/shadow"))(e)),
        };
        if let Some(text) = &shadow {
            use std::os::unix::fs::OpenOptionsExt;
            let p = dir.join("shadow");
            let mut f =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&p).map_err(file_err(&p))?;
            std::io::Write::write_all(&mut f, text.as_bytes()).map_err(file_err(&p))?;
        }
        let d = dir.display();
        write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress {listen}\nPort 22\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPidFile none\nPrintMotd no\nPrintLastLog no\nLogLevel VERBOSE\n"
            ),
        )?;
        let log = dir.join("sshd.log");
        let log_file = std::fs::File::create(&log).map_err(file_err(&log))?;
        let ns: OwnedFd = std::fs::File::open(netns).map_err(file_err(netns))?.into();
        let (passwd_c, etc_passwd) = (cstr(&dir.join("passwd"))?, cstr(Path::new("/etc/passwd"))?);
        let shadow_c = match shadow {
            Some(_) => Some((cstr(&dir.join("shadow"))?, cstr(Path::new("/etc/shadow"))?)),
            None => None,
        };
        let mut c = Command::new(sshd);
        // -r: no re-exec per connection (under TCG it alone can outlast the client's banner wait).
        c.args(["-D", "-e", "-r", "-f"]).arg(dir.join("sshd_config"));
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log_file).process_group(0);
        let ns_fd = ns.as_raw_fd();
        // SAFETY: between fork and exec only syscalls on values prepared before the fork.
        unsafe {
            c.pre_exec(move || {
                use nix::mount::{mount, MsFlags};
                let io = |e: nix::errno::Errno| std::io::Error::from_raw_os_error(e as i32);
                let fd = std::os::fd::BorrowedFd::borrow_raw(ns_fd);
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io)?;
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(io)?;
                mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                    .map_err(io)?;
                mount(Some(passwd_c.as_c_str()), etc_passwd.as_c_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(io)?;
                if let Some((ours, etc)) = &shadow_c {
                    mount(Some(ours.as_c_str()), etc.as_c_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
                        .map_err(io)?;
                }
                mount(Some("tmpfs"), "/run", Some("tmpfs"), MsFlags::empty(), Some("mode=0755")).map_err(io)?;
                nix::unistd::mkdir("/run/sshd", nix::sys::stat::Mode::from_bits_truncate(0o755)).map_err(io)?;
                Ok(())
            });
        }
        let child = c.spawn().map_err(|e| SshError::Spawn { program: sshd.display().to_string(), source: e })?;
        let mut lab = Lab { child, dir: dir.to_path_buf(), identity, known_hosts };
        // Ready when its port answers in the namespace.
        let addr: std::net::SocketAddr =
            format!("{listen}:22")
                .parse()
                .or_else(|_| format!("[{listen}]:22").parse())
                .map_err(|_| SshError::Protocol { host: listen.into(), what: "not an address".into() })?;
        let nsp = netns.to_path_buf();
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = lab.child.try_wait() {
                return Err(SshError::Failed {
                    host: listen.into(),
                    command: "sshd".into(),
                    status: st.to_string(),
                    stderr: std::fs::read_to_string(&log).unwrap_or_default().trim().into(),
                });
            }
            let p = nsp.clone();
            let tried = std::thread::spawn(move || {
                super::enter(&p).map_err(|e| e.to_string())?;
                std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())
            })
            .join()
            .unwrap_or_else(|_| Err("the probe thread panicked".into()));
            match tried {
                Ok(_) => return Ok(lab),
                Err(e) if t0.elapsed() >= READY_LIMIT => {
                    return Err(SshError::Failed {
                        host: listen.into(),
                        command: "sshd".into(),
                        status: format!("running, but {addr} did not accept within {} s ({e})", READY_LIMIT.as_secs()),
                        stderr: std::fs::read_to_string(&log).unwrap_or_default().trim().into(),
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// /etc/shadow with root's password field "*" where it was locked ("!..."): no password
/// login either way, but sshd without PAM lets a key in.
fn unlocked_root(shadow: &str) -> String {
    let mut out = String::with_capacity(shadow.len());
    for line in shadow.split_inclusive('\n') {
        match line.strip_prefix("root:") {
            Some(rest) if rest.starts_with('!') => {
                let tail = rest.split_once(':').map(|(_, t)| t).unwrap_or("\n");
                out.push_str("root:*:");
                out.push_str(tail);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// How long sshd may take to listen (TCG on a loaded machine is slow to start it).
const READY_LIMIT: Duration = Duration::from_secs(90);

impl Drop for Lab {
    fn drop(&mut self) {
        let pg = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(pg, nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(pg, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::unlocked_root;

    #[test]
    fn only_a_locked_root_is_unlocked() {
        let shadow = "root:!:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nbob:!$y$j9T$x:19000::::::\n";
        assert_eq!(
            unlocked_root(shadow),
            "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nbob:!$y$j9T$x:19000::::::\n"
        );
        let hashed = "root:$y$j9T$abc:19000:0:99999:7:::\n";
        assert_eq!(unlocked_root(hashed), hashed);
        assert_eq!(unlocked_root("root:!locked-no-newline"), "root:*:\n");
    }
}
