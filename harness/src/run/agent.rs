//! `peer-agent`: the remote peer's side of an ssh session (`topology::ssh`). Reads one
//! [`Request`] per line on stdin and writes one [`Response`] per line on stdout, nothing else.
//! Connections are TCP streams to the DUT made from this machine; each has a worker thread that
//! runs its sends and its shutdown in order, so a send does not hold up requests on other
//! connections. Settings go through the same netlink code as a local peer's (`topology`).
//! The agent exits when its stdin ends (the harness closed the session, or ssh died).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::exec::pattern;
use crate::topology::ssh::{How, Op, Reply, Request, Response};

type Out = Arc<Mutex<std::io::Stdout>>;

fn answer(out: &Out, id: u64, reply: Reply) {
    if let Ok(line) = serde_json::to_string(&Response { id, reply }) {
        if let Ok(mut o) = out.lock() {
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    }
}

fn failed(e: &std::io::Error, what: &str) -> Reply {
    Reply::Failed { errno: e.raw_os_error(), message: format!("{what}: {e}") }
}

/// A connection's worker: its sends and its end, in order.
fn worker(mut s: TcpStream, conn: u32, jobs: mpsc::Receiver<(u64, Op)>, out: Out) {
    for (id, op) in jobs {
        let reply = match op {
            Op::Send { start, bytes, chunk, .. } => {
                let chunk = chunk.max(1);
                let mut pos = start;
                let mut r = Ok(());
                while pos < start + bytes && r.is_ok() {
                    let n = chunk.min(start + bytes - pos) as usize;
                    r = s.write_all(&pattern(pos, n));
                    pos += n as u64;
                }
                match r {
                    Ok(()) => Reply::Sent { conn, bytes },
                    Err(e) => failed(&e, "send"),
                }
            }
            Op::Acked { timeout_ms, .. } => {
                use std::os::fd::AsRawFd;
                match crate::kernel::tcpstate::wait_acked(s.as_raw_fd(), Duration::from_millis(timeout_ms)) {
                    Ok(Ok(d)) => Reply::Acked { waited_ms: d.as_millis() as u64 },
                    Ok(Err(u)) => Reply::Failed { errno: None, message: u.to_string() },
                    Err(e) => failed(&e, "TCP_INFO"),
                }
            }
            Op::Shutdown { how, .. } => {
                let r = match how {
                    How::Write => s.shutdown(std::net::Shutdown::Write),
                    How::Close => Ok(()),
                    How::Reset => {
                        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                        nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Linger, &linger)
                            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
                    }
                };
                let done = match r {
                    Ok(()) => Reply::Done,
                    Err(e) => failed(&e, "shutdown"),
                };
                if how != How::Write {
                    drop(s); // closed (a reset with SO_LINGER 0), then answered
                    answer(&out, id, done);
                    return;
                }
                done
            }
            other => Reply::Failed { errno: None, message: format!("not a connection request: {other:?}") },
        };
        answer(&out, id, reply);
    }
}

/// Serves requests until stdin ends.
pub fn serve() -> Result<(), std::io::Error> {
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    let mut conns: HashMap<u32, mpsc::Sender<(u64, Op)>> = HashMap::new();
    let mut next_conn = 0u32;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                answer(&out, 0, Reply::Failed { errno: None, message: format!("unreadable request: {e}") });
                continue;
            }
        };
        let id = req.id;
        let reply = match req.op {
            Op::Connect { addr, port } => match addr.parse::<std::net::IpAddr>() {
                Err(_) => Reply::Failed { errno: None, message: format!("`{addr}` is not an IP address") },
                Ok(ip) => match TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(10)) {
                    Err(e) => failed(&e, &format!("connect {ip} port {port}")),
                    Ok(s) => {
                        let local = s.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                        next_conn += 1;
                        let (tx, rx) = mpsc::channel();
                        let o = out.clone();
                        let c = next_conn;
                        std::thread::spawn(move || worker(s, c, rx, o));
                        conns.insert(c, tx);
                        Reply::Connected { conn: c, local }
                    }
                },
            },
            op @ (Op::Send { .. } | Op::Acked { .. } | Op::Shutdown { .. }) => {
                let conn = match &op {
                    Op::Send { conn, .. } | Op::Acked { conn, .. } | Op::Shutdown { conn, .. } => *conn,
                    _ => 0,
                };
                let closing = matches!(op, Op::Shutdown { how: How::Close | How::Reset, .. });
                match conns.get(&conn).map(|tx| tx.send((id, op)).is_ok()) {
                    Some(true) => {
                        if closing {
                            conns.remove(&conn);
                        }
                        continue; // the worker answers
                    }
                    _ => Reply::Failed { errno: None, message: format!("no connection {conn}") },
                }
            }
            Op::State { dev } => match crate::topology::read_state(None, &dev) {
                Ok(state) => Reply::State { state },
                Err(e) => Reply::Failed { errno: errno_of(&e), message: e.to_string() },
            },
            Op::Apply { dev, settings } => match crate::topology::apply_settings(None, &dev, &settings) {
                Ok(()) => Reply::Done,
                Err(e) => Reply::Failed { errno: errno_of(&e), message: e.to_string() },
            },
            Op::Restore { dev, state } => match crate::topology::restore(None, &dev, &state) {
                Ok(()) => Reply::Done,
                Err(e) => Reply::Failed { errno: errno_of(&e), message: e.to_string() },
            },
        };
        answer(&out, id, reply);
    }
    Ok(())
}

fn errno_of(e: &crate::topology::Error) -> Option<i32> {
    match e {
        crate::topology::Error::Netlink(n) => Some(n.errno),
        _ => None,
    }
}
