//! Why a mutation or coverage campaign could not go on: the tree, mutant set, results file or
//! options the user gave (bad input), or the machine: a build, boot, gcov run or write that
//! failed (the environment).

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tree spec, mutant, results file or option that is wrong.
    #[error("{0}")]
    Input(String),
    /// A step of the campaign on this machine that failed (gcov data, a guest's result, a
    /// report that cannot be written).
    #[error("{0}")]
    Run(String),
    #[error(transparent)]
    Vm(#[from] crate::vm::Error),
    #[error(transparent)]
    Bench(#[from] crate::bench::Error),
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Input(_) => Kind::BadInput,
            Error::Run(_) => Kind::Environment,
            Error::Vm(e) => e.kind(),
            Error::Bench(e) => e.kind(),
        }
    }
}
