//! Why the runner could not do its part: a selection argument that is wrong, or a case
//! process it could not start.

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--shard` and the like, malformed.
    #[error("{0}")]
    Selection(String),
    /// A case process, pipe or namespace the machine would not give.
    #[error("{0}")]
    Spawn(String),
    /// A pipe or namespace call the machine refused.
    #[error(transparent)]
    Kernel(#[from] crate::kernel::Error),
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Selection(_) => Kind::BadInput,
            Error::Spawn(_) => Kind::Environment,
            Error::Kernel(e) => e.kind(),
        }
    }
}
