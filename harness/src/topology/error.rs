//! Why a topology could not be used: a file or name the user gave that is wrong, or a machine
//! on which it cannot be set up (a device, a namespace, a module, netlink).

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A topology name, file or field that is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The machine: a device, namespace, module or setting that cannot be set up, read or
    /// restored.
    #[error("{0}")]
    Setup(String),
    /// A netlink request or module load the kernel refused.
    #[error(transparent)]
    Netlink(#[from] crate::kernel::nl::NlError),
    /// A peer on another machine that cannot be reached, deployed to or used over ssh.
    #[error(transparent)]
    Ssh(#[from] super::ssh::SshError),
    /// A namespace or file of the machine that cannot be opened or entered.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::errno::Errno,
    },
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Invalid(_) => Kind::BadInput,
            Error::Setup(_) | Error::Netlink(_) | Error::Ssh(_) | Error::Sys { .. } => Kind::Environment,
        }
    }
}

/// For `exec`'s step helpers that still carry errors as text (a case step's message).
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}
