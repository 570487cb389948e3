//! Why `upstream` could not report: its arguments (bad input), or the machine, the scripts or
//! the VM (the environment).

use crate::error::{Classify, Kind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `--test` that is not a plain `.py` file name.
    #[error("--test {0}: expected a test file name under tools/testing/selftests/drivers/net/hw (e.g. iou-zcrx.py)")]
    TestName(String),
    /// A kernel without a Debian source package to take the tests from.
    #[error(
        "{0}: upstream runs the tests of a debian: kernel's own linux-source package (e.g. --kernel debian:7.3.4)"
    )]
    NotDebian(String),
    /// A script's result that is not where it should be.
    #[error("{0}: not inside a liburing tree (<liburing>/test/zcrx.t)")]
    Layout(String),
    /// The guest's records, unreadable.
    #[error(transparent)]
    Record(#[from] super::parse::BadRecord),
    /// The guest ended before it reported every test.
    #[error("the guest did not report every test: {0}")]
    Incomplete(String),
    #[error(transparent)]
    Vm(#[from] crate::vm::Error),
    #[error(transparent)]
    Guest(#[from] crate::vm::GuestError),
}

impl Classify for Error {
    fn kind(&self) -> Kind {
        match self {
            Error::TestName(_) | Error::NotDebian(_) => Kind::BadInput,
            Error::Vm(e) => e.kind(),
            Error::Layout(_) | Error::Record(_) | Error::Incomplete(_) | Error::Guest(_) => Kind::Environment,
        }
    }
}
