//! Why a VM run could not happen: the user's kernel spec, or the machine (a script that
//! failed, a program that would not start, a VM that would not boot).

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel spec or path that names nothing usable.
    #[error("{0}")]
    BadSpec(String),
    /// A kernel of an architecture this host does not boot (amd64 from an aarch64 host):
    /// listed and fetched, not booted.
    #[error("{spec}: {arch} guests do not boot on this host (fetch it with `kernel fetch`; docs/flavours.md)")]
    NotBootable { spec: String, arch: &'static str },
    /// A guest of another architecture needs the harness built for it, which is not there.
    #[error(
        "no harness built for {arch} guests ({path}): run `vm/guest-harness.sh build` from a checkout once \
         (docs/flavours.md)"
    )]
    NoGuestHarness { arch: &'static str, path: String },
    /// A vm/ script refused its arguments (exit 2: a version that is not on the mirror ...).
    #[error("vm/{script} {args}: refused ({status})")]
    Refused { script: String, args: String, status: std::process::ExitStatus },
    /// A vm/ script failed (provisioning, fetching or building a kernel, guest tools).
    #[error("vm/{script} {args} failed ({status})")]
    Script { script: String, args: String, status: std::process::ExitStatus },
    /// A script ran but did not give what it promises.
    #[error("{0}")]
    Broken(String),
    /// Something on this machine (a program, a file, a directory) could not be used.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The VM did not boot, or died before the suite started.
    #[error("{0}")]
    Boot(String),
    /// A topology the run names.
    #[error(transparent)]
    Topology(#[from] crate::topology::Error),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// A script's exit status: 2 is its refusal of the input, anything else the machine's.
    pub(crate) fn script(script: &str, args: &[&str], status: std::process::ExitStatus) -> Error {
        let (script, args) = (script.to_string(), args.join(" "));
        if status.code() == Some(2) {
            Error::Refused { script, args, status }
        } else {
            Error::Script { script, args, status }
        }
    }
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::BadSpec(_) | Error::Refused { .. } | Error::NotBootable { .. } => Kind::BadInput,
            Error::Topology(e) => e.kind(),
            Error::Script { .. }
            | Error::Broken(_)
            | Error::Io { .. }
            | Error::Boot(_)
            | Error::NoGuestHarness { .. } => Kind::Environment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A script that refuses its input (exit 2) is the user's; any other failure the machine's.
    #[test]
    fn a_script_failure_is_the_machines_unless_it_refused_the_input() {
        let status = |code: i32| std::process::ExitStatus::from_raw(code << 8);
        let fetch = Error::script("kernel.sh", &["fetch", "debian:7.3.4"], status(1));
        assert_eq!(fetch.kind(), Kind::Environment);
        let e: crate::error::Error = fetch.into();
        assert_eq!(e.kind(), Kind::Environment);
        assert_eq!(Error::script("kernel.sh", &["fetch", "debian:9.9"], status(2)).kind(), Kind::BadInput);
        assert_eq!(Error::BadSpec("x".into()).kind(), Kind::BadInput);
    }
}
