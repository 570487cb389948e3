//! Why a qualification could not be made: a topology or option that does not qualify a NIC
//! (bad input), or a machine on which the NIC cannot be set up, read or booted (the
//! environment).

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A topology, option or catalogue that cannot qualify a NIC.
    #[error("{0}")]
    Args(String),
    /// The NIC or its namespace cannot be set up or read, or a result not had.
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Vm(#[from] crate::vm::Error),
    #[error(transparent)]
    Guest(#[from] crate::vm::GuestError),
    #[error(transparent)]
    Topology(#[from] crate::topology::Error),
    #[error(transparent)]
    Report(#[from] crate::report::Error),
    #[error(transparent)]
    Bench(#[from] crate::bench::Error),
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Args(_) => Kind::BadInput,
            Error::Setup(_) | Error::Guest(_) => Kind::Environment,
            Error::Vm(e) => e.kind(),
            Error::Topology(e) => e.kind(),
            Error::Report(e) => e.kind(),
            Error::Bench(e) => e.kind(),
        }
    }
}
