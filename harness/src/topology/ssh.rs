//! A traffic peer on another machine, reached over SSH (the kernel selftests' `REMOTE_TYPE=ssh`).
//!
//! The harness runs `ssh` with an argv it builds from the topology file's checked fields (no
//! local shell; `-F none`, `BatchMode`, `StrictHostKeyChecking=yes` against the operator's
//! known_hosts file and identity). At set-up it copies its own binary into a fresh `mktemp -d`
//! directory on the remote ([`deploy`]) and runs it there as `peer-agent`, which answers
//! [`Request`]s on its stdin with [`Response`]s on its stdout, one JSON object per line: connect
//! to the DUT, send the stream pattern, shut down, and read, apply and restore the remote
//! interface's settings (through the same netlink code as a local peer, read back after a
//! restore). The remote commands are fixed text plus the checked directory name; the remote
//! user's login shell runs them, as for any ssh command. The agent itself is `run::agent`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::tools::DevState;
use super::Settings;

/// Where on the remote the binary goes: `mktemp -d` with this template.
const REMOTE_TEMPLATE: &str = "/tmp/zcrx-conform.XXXXXXXX";
/// The binary's name in that directory.
const REMOTE_BIN: &str = "zcrx-conform";

/// Why a remote peer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// `ssh` (or `ssh-keygen`, `sshd` for a simulated lab) could not be started.
    #[error("{program}: cannot start it: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// ssh (or the remote command) ended unsuccessfully; its stderr says why (a host key that
    /// does not match, a key that is refused, a host that cannot be reached).
    #[error("ssh {host}: `{command}` ended with {status}: {stderr}")]
    Failed { host: String, command: String, status: String, stderr: String },
    /// The remote answered something this harness did not ask for or cannot read.
    #[error("ssh {host}: {what}")]
    Protocol { host: String, what: String },
    /// The remote machine is of another architecture than this binary.
    #[error("ssh {host}: the remote is {remote}, this binary is built for {local}")]
    Architecture { host: String, remote: String, local: String },
    /// The agent refused a request (its errno when the kernel gave one).
    #[error("ssh {host}: {what}: {message}")]
    Refused { host: String, what: String, errno: Option<i32>, message: String },
    /// No answer in time.
    #[error("ssh {host}: no answer to {what} within {secs} s")]
    Timeout { host: String, what: String, secs: u64 },
    /// A simulated lab's peer could not be used; what its sshd logged (`-e`) says why on the
    /// server's side (a refused key names its reason only there).
    #[error("{source}; the simulated lab's sshd logged: {sshd_log}")]
    Lab {
        #[source]
        source: Box<SshError>,
        sshd_log: String,
    },
    /// A local file of the lab (keys, config) that cannot be written or read.
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Who to log in as, where, and with which key and known_hosts file (all checked when the
/// topology file is read: `topology::check_ssh`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub user: String,
    pub port: u16,
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    /// The network namespace ssh runs in (a /run/netns path): the DUT's, when the topology
    /// puts it in one, since that is where the link to the peer is. None: the harness's own.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// A simulated lab's sshd log: its tail goes into the message of a session ssh ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_log: Option<PathBuf>,
}

impl SshTarget {
    /// `ssh` with the fixed options and this target, running `remote` there.
    fn command(&self, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        if let Some(ns) = &self.netns {
            // Opened here; entered in the child between fork and exec (a failure fails the spawn).
            let f = std::fs::File::open(ns);
            // SAFETY: only setns(2) on a descriptor opened before the fork.
            unsafe {
                use std::os::unix::process::CommandExt;
                c.pre_exec(move || {
                    let f = f.as_ref().map_err(|e| std::io::Error::new(e.kind(), e.to_string()))?;
                    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
                });
            }
        }
        c.args(["-F", "none", "-T", "-x", "-a"]);
        for o in [
            "BatchMode=yes".to_string(),
            "StrictHostKeyChecking=yes".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "GlobalKnownHostsFile=none".into(),
            "IdentitiesOnly=yes".into(),
            "IdentityAgent=none".into(),
            format!("IdentityFile={}", self.identity.display()),
            "ConnectTimeout=30".into(),
            "ServerAliveInterval=5".into(),
            "ServerAliveCountMax=3".into(),
            "LogLevel=ERROR".into(),
        ] {
            c.arg("-o").arg(o);
        }
        c.arg("-p").arg(self.port.to_string()).arg("-l").arg(&self.user).arg("--").arg(&self.host).arg(remote);
        c
    }

    /// Runs `remote` to its end with `input` on its stdin; its stdout.
    fn output(&self, remote: &str, input: Option<&Path>) -> Result<String, SshError> {
        let mut c = self.command(remote);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.stdin(match input {
            Some(p) => Stdio::from(
                std::fs::File::open(p).map_err(|e| SshError::File { path: p.display().to_string(), source: e })?,
            ),
            None => Stdio::null(),
        });
        let out = c.output().map_err(|e| SshError::Spawn { program: "ssh".into(), source: e })?;
        if !out.status.success() {
            let failed = SshError::Failed {
                host: self.host.clone(),
                command: remote.into(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().chars().take(2000).collect(),
            };
            return Err(match &self.lab_log {
                Some(log) => SshError::Lab { source: Box::new(failed), sshd_log: log_tail(log, LAB_LOG_LINES) },
                None => failed,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The agent copied to a remote: how to reach it and where it is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SshAgent {
    pub target: SshTarget,
    /// The remote directory `mktemp -d` made (checked: `/tmp/zcrx-conform.` and letters/digits).
    pub dir: String,
}

impl SshAgent {
    fn bin(&self) -> String {
        format!("{}/{REMOTE_BIN}", self.dir)
    }

    /// Removes the remote directory.
    pub fn remove(&self) -> Result<(), SshError> {
        self.target.output(&format!("rm -rf -- {}", self.dir), None).map(|_| ())
    }

    /// One request in a session of its own.
    pub fn call_once(&self, op: Op, limit: Duration) -> Result<Reply, SshError> {
        let mut s = Session::open(self)?;
        s.call(op, limit)
    }
}

/// How much of a simulated lab's sshd log an ssh failure carries.
const LAB_LOG_LINES: usize = 12;

/// The last `n` lines of a simulated lab's sshd log, on one line.
fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut tail: Vec<&str> = text.lines().rev().take(n).collect();
    tail.reverse();
    tail.join(" | ")
}

/// A remote directory name as `mktemp -d` makes it from [`REMOTE_TEMPLATE`].
fn checked_dir(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("/tmp/zcrx-conform.")?;
    (rest.len() >= 8 && rest.chars().all(|c| c.is_ascii_alphanumeric())).then_some(s)
}

/// Copies `bin` (this binary, unless a test names the harness binary) to a new directory on
/// the remote; the caller removes it ([`SshAgent::remove`]) when the topology goes down.
pub fn deploy(target: &SshTarget, bin: Option<&Path>) -> Result<SshAgent, SshError> {
    let proto = |what: String| SshError::Protocol { host: target.host.clone(), what };
    let out = target.output(&format!("uname -m && mktemp -d {REMOTE_TEMPLATE}"), None)?;
    let mut lines = out.lines();
    let arch = lines.next().unwrap_or("").trim().to_string();
    let dir = lines.next().unwrap_or("").trim().to_string();
    let dir =
        checked_dir(&dir).ok_or_else(|| proto(format!("mktemp -d printed `{}`", dir.escape_debug())))?.to_string();
    let agent = SshAgent { target: target.clone(), dir };
    if arch != std::env::consts::ARCH {
        let _ = agent.remove();
        return Err(SshError::Architecture {
            host: target.host.clone(),
            remote: arch.escape_debug().to_string(),
            local: std::env::consts::ARCH.into(),
        });
    }
    let me = bin.unwrap_or(Path::new("/proc/self/exe"));
    let bin = agent.bin();
    if let Err(e) = target.output(&format!("cat > {bin} && chmod 700 {bin}"), Some(me)) {
        let _ = agent.remove();
        return Err(e);
    }
    Ok(agent)
}

/// How a connection's sending end is closed.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// shutdown(SHUT_WR): the receiver reads the end of the stream.
    Write,
    /// close().
    Close,
    /// SO_LINGER 0 and close(): a reset.
    Reset,
}

/// What the harness asks the agent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Connect to the DUT's listener (TCP).
    Connect { addr: String, port: u16 },
    /// Send `bytes` of the stream pattern from position `start`, in writes of `chunk`.
    Send { conn: u32, start: u64, bytes: u64, chunk: u64 },
    /// Wait (after the connection's sends) until its TCP has nothing unacknowledged.
    Acked { conn: u32, timeout_ms: u64 },
    /// End a connection (after its sends).
    Shutdown { conn: u32, how: How },
    /// The interface's settings ([`DevState`]).
    State { dev: String },
    /// Apply settings to the interface.
    Apply { dev: String, settings: Settings },
    /// Put a recorded state back and read it again (a difference is refused).
    Restore { dev: String, state: DevState },
}

impl Op {
    fn what(&self) -> String {
        match self {
            Op::Connect { addr, port } => format!("connect to {addr} port {port}"),
            Op::Send { conn, bytes, .. } => format!("send {bytes} bytes on connection {conn}"),
            Op::Acked { conn, .. } => format!("waiting for the acknowledgement of connection {conn}"),
            Op::Shutdown { conn, how } => format!("shutdown ({how:?}) of connection {conn}"),
            Op::State { dev } => format!("reading the settings of {dev}"),
            Op::Apply { dev, .. } => format!("applying settings to {dev}"),
            Op::Restore { dev, .. } => format!("restoring the settings of {dev}"),
        }
    }
}

/// One request line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
}

/// What the agent answered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Connected: the connection's number and the remote's own address of it.
    Connected { conn: u32, local: String },
    /// All bytes of a send were written.
    Sent { conn: u32, bytes: u64 },
    /// Everything the connection sent is acknowledged, `waited_ms` after the request.
    Acked { waited_ms: u64 },
    /// Done (shutdown, apply, restore).
    Done,
    /// The interface's settings.
    State { state: DevState },
    /// Refused or failed, with the errno when there is one.
    Failed { errno: Option<i32>, message: String },
}

/// One answer line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(flatten)]
    pub reply: Reply,
}

#[derive(Default)]
struct Inbox {
    replies: HashMap<u64, Reply>,
    /// The agent's stdout ended (with what ssh said on stderr).
    closed: Option<String>,
}

/// An agent session: one `ssh` running `peer-agent`, requests written to it, answers read by a
/// thread of this process. Dropping it closes the agent's stdin (it exits) and reaps ssh.
pub struct Session {
    host: String,
    child: Child,
    stdin: Option<ChildStdin>,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    next: u64,
    asked: HashMap<u64, String>,
}

impl Session {
    pub fn open(agent: &SshAgent) -> Result<Session, SshError> {
        let mut c = agent.target.command(&format!("{} peer-agent", agent.bin()));
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().map_err(|e| SshError::Spawn { program: "ssh".into(), source: e })?;
        let stdin = child.stdin.take();
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            return Err(SshError::Protocol { host: agent.target.host.clone(), what: "no pipes to ssh".into() });
        };
        let inbox = Arc::new((Mutex::new(Inbox::default()), Condvar::new()));
        let err_text = Arc::new(Mutex::new(String::new()));
        let e2 = err_text.clone();
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            if let Ok(mut t) = e2.lock() {
                *t = s.trim().chars().take(2000).collect();
            }
        });
        let ib = inbox.clone();
        let lab_log = agent.target.lab_log.clone();
        std::thread::spawn(move || {
            let (m, cv) = &*ib;
            let mut closed = "the agent ended".to_string();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Response>(&line) {
                    Ok(r) => {
                        if let Ok(mut i) = m.lock() {
                            i.replies.insert(r.id, r.reply);
                        }
                        cv.notify_all();
                    }
                    Err(e) => {
                        closed = format!("unreadable answer `{}`: {e}", line.chars().take(200).collect::<String>());
                        break;
                    }
                }
            }
            let _ = err_thread.join();
            let mut said = err_text.lock().map(|t| t.clone()).unwrap_or_default();
            if let (false, Some(log)) = (said.is_empty(), &lab_log) {
                said.push_str(&format!("; the simulated lab's sshd logged: {}", log_tail(log, LAB_LOG_LINES)));
            }
            if let Ok(mut i) = m.lock() {
                i.closed = Some(if said.is_empty() { closed } else { format!("{closed}; ssh said: {said}") });
            }
            cv.notify_all();
        });
        Ok(Session { host: agent.target.host.clone(), child, stdin, inbox, next: 1, asked: HashMap::new() })
    }

    /// Sends a request; its answer is collected with [`Session::wait`].
    pub fn submit(&mut self, op: Op) -> Result<u64, SshError> {
        let id = self.next;
        self.next += 1;
        self.asked.insert(id, op.what());
        let line = serde_json::to_string(&Request { id, op })
            .map_err(|e| SshError::Protocol { host: self.host.clone(), what: e.to_string() })?;
        let w = self
            .stdin
            .as_mut()
            .ok_or_else(|| SshError::Protocol { host: self.host.clone(), what: "the session is closed".into() })?;
        w.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| w.flush())
            .map_err(|e| self.gone(&format!("writing a request: {e}")))?;
        Ok(id)
    }

    /// Why the agent is gone (with what ssh said), as an error about `what`.
    fn gone(&self, what: &str) -> SshError {
        let (m, _) = &*self.inbox;
        let closed = m.lock().ok().and_then(|i| i.closed.clone()).unwrap_or_default();
        SshError::Protocol { host: self.host.clone(), what: format!("{what}: {closed}") }
    }

    /// The answer to request `id`: a [`Reply::Failed`] becomes [`SshError::Refused`].
    pub fn wait(&mut self, id: u64, limit: Duration) -> Result<Reply, SshError> {
        let what = self.asked.remove(&id).unwrap_or_else(|| format!("request {id}"));
        let (m, cv) = &*self.inbox;
        let until = Instant::now() + limit;
        let mut i = m.lock().map_err(|_| SshError::Protocol { host: self.host.clone(), what: "lock".into() })?;
        loop {
            if let Some(r) = i.replies.remove(&id) {
                return match r {
                    Reply::Failed { errno, message } => {
                        Err(SshError::Refused { host: self.host.clone(), what, errno, message })
                    }
                    r => Ok(r),
                };
            }
            if let Some(c) = &i.closed {
                return Err(SshError::Protocol { host: self.host.clone(), what: format!("{what}: {c}") });
            }
            let now = Instant::now();
            if now >= until {
                return Err(SshError::Timeout { host: self.host.clone(), what, secs: limit.as_secs() });
            }
            i = cv
                .wait_timeout(i, until - now)
                .map_err(|_| SshError::Protocol { host: self.host.clone(), what: "lock".into() })?
                .0;
        }
    }

    /// Whether request `id` has been answered (its answer stays for [`Session::wait`]).
    pub fn answered(&self, id: u64) -> bool {
        let (m, _) = &*self.inbox;
        m.lock().map(|i| i.replies.contains_key(&id) || i.closed.is_some()).unwrap_or(true)
    }

    pub fn call(&mut self, op: Op, limit: Duration) -> Result<Reply, SshError> {
        let id = self.submit(op)?;
        self.wait(id, limit)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_argv_is_fixed_options_then_the_checked_fields() {
        let t = SshTarget {
            host: "192.0.2.2".into(),
            user: "root".into(),
            port: 2222,
            identity: "/etc/zcrx/id".into(),
            known_hosts: "/etc/zcrx/known_hosts".into(),
            netns: None,
            lab_log: None,
        };
        let c = t.command("uname -m");
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(c.get_program(), "ssh");
        assert_eq!(&args[..5], ["-F", "none", "-T", "-x", "-a"]);
        for o in ["BatchMode=yes", "StrictHostKeyChecking=yes", "UserKnownHostsFile=/etc/zcrx/known_hosts"] {
            assert!(args.windows(2).any(|w| w[0] == "-o" && w[1] == o), "{o}: {args:?}");
        }
        assert_eq!(args[args.len() - 7..], ["-p", "2222", "-l", "root", "--", "192.0.2.2", "uname -m"]);
    }

    #[test]
    fn only_a_mktemp_directory_is_taken() {
        assert_eq!(checked_dir("/tmp/zcrx-conform.Ab12Cd34"), Some("/tmp/zcrx-conform.Ab12Cd34"));
        for bad in
            ["/tmp/zcrx-conform.Ab12; rm -rf /", "/tmp/zcrx-conform.", "/tmp/x.Ab12Cd34", "", "/tmp/zcrx-conform.a b"]
        {
            assert_eq!(checked_dir(bad), None, "{bad}");
        }
    }

    #[test]
    fn requests_and_replies_are_one_json_line_each() {
        let r = Request { id: 7, op: Op::Send { conn: 1, start: 0, bytes: 10, chunk: 4 } };
        let line = serde_json::to_string(&r).expect("json");
        assert_eq!(line, r#"{"id":7,"op":"send","conn":1,"start":0,"bytes":10,"chunk":4}"#);
        let back: Request = serde_json::from_str(&line).expect("back");
        assert_eq!(back.op, r.op);
        let a = Response { id: 7, reply: Reply::Failed { errno: Some(111), message: "refused".into() } };
        let line = serde_json::to_string(&a).expect("json");
        assert_eq!(serde_json::from_str::<Response>(&line).expect("back").reply, a.reply);
    }
}
