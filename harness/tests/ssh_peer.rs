//! Issue 31 item 4: a traffic peer on another machine, reached over SSH. Not a mock: Debian's
//! OpenSSH server (fetched by vm/openssh.sh, not installed) runs in the peer's network
//! namespace, at the far end of a veth pair, and the harness reaches it with the system's `ssh`
//! over that link, copies itself there and drives the peer agent.
//!
//! On the host kernel (netns and veth only; no zcrx device is needed for what this checks):
//! the simulated lab (`simulate: veth` with `remote.ssh`) comes up, a second topology names the
//! lab's key files as an operator would, the remote peer's interface settings are recorded,
//! changed and, at teardown, restored and read back; a stream sent by the remote agent arrives
//! in the DUT namespace from the peer's address, byte for byte; the remote directory is removed;
//! a known_hosts file with another key is refused (StrictHostKeyChecking), a typed error.
//! Needs root, ssh, ssh-keygen, apt (for vm/openssh.sh) and veth: ignored by a plain
//! `cargo test`; ci/test.sh runs it with `--include-ignored`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zcrx_conform::topology::ssh::{How, Op, Reply, Session, SshError};
use zcrx_conform::topology::{self, Error, Tools};

fn sshd() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vm/openssh.sh");
    let out = Command::new("bash").arg(script).arg("fetch").output().expect("bash vm/openssh.sh");
    assert!(out.status.success(), "vm/openssh.sh: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(text.lines().last().expect("a path").trim())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

fn remote_dirs() -> Vec<PathBuf> {
    std::fs::read_dir("/tmp")
        .expect("/tmp")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("zcrx-conform.")))
        .collect()
}

#[test]
#[ignore = "needs root, ssh, ssh-keygen, apt (Debian's sshd) and veth (ci/test.sh runs it)"]
fn a_remote_peer_over_ssh_sends_and_its_settings_come_back() {
    assert!(nix::unistd::geteuid().is_root(), "cannot run here: not root");
    let pid = std::process::id();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_zcrx-conform"));
    let tools = Tools { sshd: Some(sshd()), peer_agent: Some(bin), ..Default::default() };
    let dir = std::env::temp_dir().join(format!("zcrx-sshpeer-{pid}"));
    std::fs::create_dir_all(&dir).expect("tmp");
    let (ns_d, ns_p) = (format!("zcrxssh{pid}d"), format!("zcrxssh{pid}p"));
    // The lab: a veth pair across two namespaces, sshd in the peer's.
    let lab = write(
        &dir,
        "lab.yaml",
        &format!(
            "name: ssh-lab\nkind: nic\nabout: x\nsimulate: veth\ninterface: sshdut0\nnetns: {ns_d}\nqueues: 2\n\
             dut_address: 10.77.9.1/24\nremote:\n  netns: {ns_p}\n  interface: sshpeer0\n  address: 10.77.9.2\n\
             \x20 ssh: {{ host: 10.77.10.2, user: root }}\n"
        ),
    );
    let before = remote_dirs();
    let lab_env = topology::load(&lab).expect("lab topology").up(&tools, 0).expect("the lab comes up");
    let (id, kh, _) = lab_env.lab_keys.clone().expect("the lab made keys");
    assert!(lab_env.topo.ssh.is_some() && lab_env.topo.peer_netns.is_none(), "{:?}", lab_env.topo);
    let peer_before = topology::read_state(Some(&ns_p), "sshpeer0").expect("peer state");
    assert_eq!(peer_before.settings.mtu, Some(1500));

    // The operator's view: another machine at 10.77.9.2, its key files named.
    let op = write(
        &dir,
        "op.yaml",
        &format!(
            "name: ssh-op\nkind: nic\nabout: x\ninterface: sshdut0\nnetns: {ns_d}\nremote:\n  interface: sshpeer0\n  \
             address: 10.77.9.2\n  ssh: {{ host: 10.77.10.2, user: root, identity: {}, known_hosts: {} }}\n\
             peer: {{ mtu: 1400 }}\n",
            id.display(),
            kh.display()
        ),
    );
    let env = topology::load(&op).expect("operator topology").up(&tools, 1).expect("the remote peer comes up");
    let agent = env.topo.ssh.clone().expect("an agent");
    assert!(Path::new(&agent.dir).join("zcrx-conform").is_file(), "the binary was copied to {}", agent.dir);
    assert_eq!(topology::read_state(Some(&ns_p), "sshpeer0").expect("peer").settings.mtu, Some(1400), "peer: changed");

    // A stream from the remote agent, received in the DUT's namespace.
    let ns_path = PathBuf::from(format!("/run/netns/{ns_d}"));
    let bytes: u64 = 3 * 1024 * 1024 + 17;
    let recv = std::thread::spawn(move || {
        topology::enter(&ns_path).expect("enter the DUT namespace");
        let l = TcpListener::bind("10.77.9.1:0").expect("listen");
        let port = l.local_addr().expect("addr").port();
        let mut s = Session::open(&agent).expect("a session");
        let Reply::Connected { conn, local } =
            s.call(Op::Connect { addr: "10.77.9.1".into(), port }, Duration::from_secs(30)).expect("connect")
        else {
            panic!("not connected")
        };
        assert_eq!(local, "10.77.9.2");
        let (mut c, from) = l.accept().expect("accept");
        let id = s.submit(Op::Send { conn, start: 5, bytes, chunk: 65536 }).expect("send");
        let mut got = Vec::new();
        let reader = std::thread::spawn(move || {
            c.read_to_end(&mut got).expect("read");
            got
        });
        assert_eq!(s.wait(id, Duration::from_secs(120)).expect("sent"), Reply::Sent { conn, bytes });
        // Acked follows the send on the connection's worker: everything sent is acknowledged
        // (the reader keeps reading, so the window never closes).
        let acked = s.call(Op::Acked { conn, timeout_ms: 30_000 }, Duration::from_secs(60)).expect("acked");
        assert!(matches!(acked, Reply::Acked { .. }), "{acked:?}");
        assert_eq!(s.call(Op::Shutdown { conn, how: How::Write }, Duration::from_secs(30)).expect("shut"), Reply::Done);
        let got = reader.join().expect("reader");
        let again = s.call(Op::Send { conn: 99, start: 0, bytes: 1, chunk: 1 }, Duration::from_secs(30));
        assert!(matches!(again, Err(SshError::Refused { .. })), "{again:?}");
        let again = s.call(Op::Acked { conn: 99, timeout_ms: 1 }, Duration::from_secs(30));
        assert!(matches!(again, Err(SshError::Refused { .. })), "{again:?}");
        (from.ip().to_string(), got)
    });
    let (from, got) = recv.join().expect("the receiving thread");
    assert_eq!(from, "10.77.9.2", "the stream came from the peer's address");
    assert_eq!(got.len() as u64, bytes);
    assert!(got == zcrx_conform::pattern(5, bytes as usize), "the stream is the pattern, byte for byte");

    // Teardown: the peer's settings back (read back over ssh), the remote directory gone.
    let mut env = env;
    assert_eq!(env.down(), vec![], "every restore succeeded");
    assert_eq!(topology::read_state(Some(&ns_p), "sshpeer0").expect("peer"), peer_before);

    // Another host key in known_hosts: refused by ssh itself.
    let other = dir.join("other");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let key = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let bad_kh = write(
        &dir,
        "bad_known_hosts",
        &format!("10.77.9.2 {}\n", key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")),
    );
    let bad =
        write(&dir, "bad.yaml", &std::fs::read_to_string(&op).expect("op").replace(&kh.display().to_string(), &bad_kh));
    match topology::load(&bad).expect("loads").up(&tools, 2) {
        Err(Error::Ssh(SshError::Failed { stderr, .. })) => {
            assert!(stderr.contains("Host key verification failed"), "{stderr}")
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a wrong host key was accepted"),
    }
    drop(lab_env);
    assert_eq!(remote_dirs(), before, "every remote directory was removed");
    assert!(!Path::new(&format!("/run/netns/{ns_p}")).exists(), "the lab's namespaces are gone");
    let _ = std::fs::remove_dir_all(&dir);
}
