//! A peer on another machine in a topology file (`remote.ssh`): the file's fields and their
//! checks, and bringing such a peer up ([`TopologyFile::up_ssh_peer`]: the agent deployed over
//! ssh, the peer interface's settings recorded, restored and read back at teardown, then
//! changed). The ssh mechanics are in `ssh.rs`; a simulated lab's sshd in `ssh_lab.rs`.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::env::{Env, Restore};
use super::{shown, Error, Peer, Settings, TopologyFile};
use crate::kernel::nl::netns;

/// How long a remote peer may take to answer a settings request.
const REMOTE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How to reach a peer on another machine (`remote.ssh`). Everything here is data: `ssh` is
/// started with an argv (`-F none`, BatchMode, StrictHostKeyChecking=yes), never a shell.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SshRemote {
    /// The remote machine: an IP address or a host name.
    pub host: String,
    /// Who logs in: root, or a user with CAP_NET_ADMIN (the peer's settings are changed).
    pub user: String,
    #[serde(default = "d_ssh_port")]
    pub port: u16,
    /// The private key to log in with (an absolute path). Omitted with `simulate`, whose lab
    /// makes its own.
    pub identity: Option<String>,
    /// A known_hosts file naming the remote's host key (an absolute path); nothing else is
    /// trusted. Omitted with `simulate`.
    pub known_hosts: Option<String>,
}

fn d_ssh_port() -> u16 {
    22
}

/// `remote.ssh`: a host and user no program takes for an option, absolute key files whose
/// names ssh reads as they are, and the rules of an ssh peer (its interface named, no local
/// namespace; with `simulate`, the lab's own keys at the peer's address).
pub(super) fn check_ssh(s: &SshRemote, r: &Peer, simulate: bool) -> Result<(), super::Bad> {
    let bad = |field: &'static str, why: String| (field, format!("{field}: {why}"));
    let host_ok = s.host.parse::<std::net::IpAddr>().is_ok()
        || (s.host.len() <= 253
            && !s.host.starts_with(['-', '.'])
            && s.host
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')));
    if !host_ok {
        return Err(bad("remote.ssh.host", format!("`{}` is not an IP address or host name", shown(&s.host))));
    }
    let user_ok = (1..=32).contains(&s.user.len())
        && s.user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.user.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if !user_ok {
        return Err(bad(
            "remote.ssh.user",
            format!("`{}` is not a user name (1 to 32 of a-z 0-9 _ . -, starting with a-z or _)", shown(&s.user)),
        ));
    }
    for (field, v) in [("remote.ssh.identity", &s.identity), ("remote.ssh.known_hosts", &s.known_hosts)] {
        match (v, simulate) {
            (Some(_), true) => return Err(bad(field, "not with `simulate` (the simulated lab makes its own)".into())),
            (None, false) => return Err(bad(field, "required (an absolute path)".into())),
            (Some(p), false) => check_key_path(p).map_err(|e| bad(field, e))?,
            (None, true) => {}
        }
    }
    if r.interface.is_none() {
        return Err(bad(
            "remote.ssh",
            "an ssh peer needs remote.interface (its settings are recorded and restored)".into(),
        ));
    }
    if simulate && (s.host == r.address || s.host.parse::<std::net::Ipv4Addr>().is_err()) {
        return Err(bad(
            "remote.ssh.host",
            format!(
                "with `simulate` the lab's sshd listens on a management link of its own: an IPv4 address other \
                 than remote.address {} (ssh over the link under test would land in the zcrx buffers of the queue a \
                 case binds)",
                r.address
            ),
        ));
    }
    if !simulate && r.netns.is_some() {
        return Err(("remote.netns", "remote.netns: not with remote.ssh (the peer is another machine)".into()));
    }
    Ok(())
}

/// A file name ssh reads as it is: absolute, no `..`, only letters, digits and `/._+-` (no
/// blank or quote it would split at, no `%` or `~` it would expand).
fn check_key_path(p: &str) -> Result<(), String> {
    let ok = p.starts_with('/')
        && p.len() <= 4096
        && p.chars().all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c))
        && !p.split('/').any(|c| c == "..");
    ok.then_some(())
        .ok_or_else(|| format!("`{}` is not an absolute path of letters, digits and / . _ + - (no `..`)", shown(p)))
}

impl TopologyFile {
    /// The peer on another machine: the agent copied there, its interface's settings recorded
    /// (restored and read back at teardown, over ssh), then the file's `peer` settings applied.
    pub(super) fn up_ssh_peer(
        &self,
        a: &mut Env,
        s: &SshRemote,
        remote: &Peer,
        bin: Option<&Path>,
    ) -> Result<(), Error> {
        use super::ssh::{self, Op, Reply};
        let (identity, known_hosts, lab_log) = match (&a.lab_keys, &s.identity, &s.known_hosts) {
            (Some((i, k, l)), _, _) => (i.clone(), k.clone(), Some(l.clone())),
            (None, Some(i), Some(k)) => (PathBuf::from(i), PathBuf::from(k), None),
            _ => return Err(Error::Invalid("remote.ssh: identity and known_hosts are required".into())),
        };
        for (field, p) in [("identity", &identity), ("known_hosts", &known_hosts)] {
            if !p.is_file() {
                return Err(Error::Invalid(format!("remote.ssh.{field}: {} is not a file", p.display())));
            }
        }
        let dev = remote.interface.clone().ok_or(Error::Invalid("remote.ssh: no remote.interface".into()))?;
        let host = s.host.clone();
        let target = ssh::SshTarget {
            host: host.clone(),
            user: s.user.clone(),
            port: s.port,
            identity,
            known_hosts,
            netns: self.netns.as_deref().map(netns::path),
            lab_log,
        };
        let agent = ssh::deploy(&target, bin)?;
        let g = agent.clone();
        a.defer(Restore::RemoteDir { host: host.clone(), dir: agent.dir.clone() }, move || Ok(g.remove()?));
        let state = match agent.call_once(Op::State { dev: dev.clone() }, REMOTE_LIMIT)? {
            Reply::State { state } => state,
            other => {
                return Err(Error::from(ssh::SshError::Protocol {
                    host,
                    what: format!("asked for the settings of {dev}, got {other:?}"),
                }))
            }
        };
        a.log.push(format!("remote peer {host}: agent in {}, {dev} recorded: {state:?}", agent.dir));
        let (g, d, st) = (agent.clone(), dev.clone(), state);
        a.defer(Restore::RemoteSettings { host: host.clone(), dev: dev.clone() }, move || {
            g.call_once(Op::Restore { dev: d.clone(), state: st.clone() }, REMOTE_LIMIT)?;
            Ok(())
        });
        if self.peer != Settings::default() {
            agent.call_once(Op::Apply { dev: dev.clone(), settings: self.peer.clone() }, REMOTE_LIMIT)?;
            a.log.push(format!("remote peer {host}: {dev} set to {:?}", self.peer));
        }
        a.topo.ssh = Some(agent);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// Each bad `remote.ssh` field is refused where it is written, before anything runs.
    #[test]
    fn bad_ssh_fields_are_located() {
        let dir = std::env::temp_dir().join(format!("zcrx-topo-ssh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let p = dir.join("t.yaml");
        let file = |host: &str, user: &str, id: &str, kh: &str, extra: &str| {
            format!(
                "name: n\nkind: nic\nabout: x\ninterface: eth0\nremote:\n  interface: eth1\n  address: 192.0.2.2\n  \
                 ssh:\n    host: {host}\n    user: {user}\n    identity: {id}\n    known_hosts: {kh}\n{extra}"
            )
        };
        let good = file("192.0.2.2", "root", "/etc/z/id", "/etc/z/known_hosts", "");
        std::fs::write(&p, &good).expect("write");
        let t = crate::topology::load(p.to_str().expect("utf8")).expect("valid");
        assert_eq!(t.remote.and_then(|r| r.ssh).map(|s| (s.host, s.port)), Some(("192.0.2.2".into(), 22)));
        for (text, want) in [
            (file("-oProxyCommand=x", "root", "/k", "/kh", ""), ":9:11: remote.ssh.host:"),
            (file("a..b", "root", "/k", "/kh", ""), ":9:11: remote.ssh.host:"),
            (file("lab1", "Root;x", "/k", "/kh", ""), ":10:11: remote.ssh.user:"),
            (file("lab1", "root", "id_ed25519", "/kh", ""), ":11:15: remote.ssh.identity:"),
            (file("lab1", "root", "/k", "\"/a b\"", ""), ":12:18: remote.ssh.known_hosts:"),
            (file("lab1", "root", "/k", "/etc/%h", ""), ":12:18: remote.ssh.known_hosts:"),
            (file("lab1", "root", "/k/../../x", "/kh", ""), ":11:15: remote.ssh.identity:"),
            (good.replace("    identity: /etc/z/id\n", ""), ":9:5: remote.ssh.identity: required"),
            (good.replace("  interface: eth1\n", "  netns: peer\n  interface: eth1\n"), ":6:10: remote.netns:"),
            (good.replace("  interface: eth1\n", ""), "remote.ssh: an ssh peer needs remote.interface"),
            (
                good.replace("kind: nic\n", "kind: nic\nsimulate: netdevsim-zcrx\nnetns: d\n")
                    .replace("  interface: eth1\n", "  netns: p\n  interface: eth1\n"),
                "remote.ssh.identity: not with `simulate`",
            ),
            (
                file("lab1", "root", "/k", "/kh", "").replace("    host", "    port: 22\n    hots"),
                ":10:5: unknown field `hots`",
            ),
        ] {
            std::fs::write(&p, &text).expect("write");
            let e = crate::topology::load(p.to_str().expect("utf8")).expect_err(&text).to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
