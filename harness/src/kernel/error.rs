//! Why a kernel interface call of the harness failed: a request that cannot be made as asked
//! (an interface name that is not one, an RQ that does not fit its region: in a case step it
//! fails the case), or a syscall the machine refused (the environment).

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name, ring layout or entry that cannot be used as given.
    #[error("{0}")]
    Invalid(String),
    /// A syscall or ioctl the machine refused.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Sys { what, source }
    }

    pub(crate) fn errno(what: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> Error {
        let what = what.into();
        move |e| Error::Sys { what, source: std::io::Error::from(e) }
    }
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Invalid(_) => Kind::BadInput,
            Error::Sys { .. } => Kind::Environment,
        }
    }
}

/// For `exec`'s step helpers that still carry errors as text (a case step's message).
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}
