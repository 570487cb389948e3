//! The kernel interface: the exact uapi with field tables ([`uapi`]), raw syscalls and memory
//! ([`sys`]), rings ([`ring`]), the probe ([`probe`]), TUN devices ([`netdev`]) and the
//! default zcrx registration and RQ publisher shared by the executor and `bench` ([`zcrx`]), a TCP
//! socket's state ([`tcpstate`]), and
//! netlink, ethtool, module, XDP and AF_XDP interfaces ([`nl`]).

pub mod creds;
pub mod debug;
mod error;
pub mod fds;
pub mod kmsg;
pub mod netdev;
pub mod nl;
pub mod probe;
pub mod ring;
pub mod softirq;
pub mod symbols;
pub mod sys;
pub mod tcpstate;
pub mod uapi;
pub mod uffd;
pub mod zcrx;
pub use error::Error;
