//! Why a benchmark could not be measured: its arguments (bad input), or the machine, the
//! kernel or the VM it runs on (the environment).

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Sizes, topologies or flags that are wrong.
    #[error("{0}")]
    Args(String),
    /// A transfer, registration or guest result that could not be had.
    #[error("{0}")]
    Measure(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Vm(#[from] crate::vm::Error),
    #[error(transparent)]
    Guest(#[from] crate::vm::GuestError),
    #[error(transparent)]
    Topology(#[from] crate::topology::Error),
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Args(_) => Kind::BadInput,
            Error::Vm(e) => e.kind(),
            Error::Topology(e) => e.kind(),
            Error::Measure(_) | Error::Io { .. } | Error::Guest(_) => Kind::Environment,
        }
    }
}
