//! Why a report could not be read, joined or written: a file, path or set of runs the user
//! gave that does not fit (bad input), or the report writer itself.

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A report, baseline or output path that is wrong, or runs that cannot be joined.
    #[error("{0}")]
    Invalid(String),
    /// A file the user named that cannot be read or used.
    #[error("{what}: {source}")]
    File {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The writer could not produce the format (a library error, not the input's).
    #[error("{0}")]
    Writer(String),
}

impl Error {
    pub(crate) fn file(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::File { what, source }
    }
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::Invalid(_) | Error::File { .. } => Kind::BadInput,
            Error::Writer(_) => Kind::Environment,
        }
    }
}
