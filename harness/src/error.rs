//! The one error type of the commands and the one place that turns a command's result into
//! the process exit code: 0 every executed case passed, 1 a case failed (or a matrix lost a
//! kernel), 2 bad input, 3 nothing was run (no case selected or executed; a CI gate must not
//! go green on nothing), 130 interrupted by SIGINT, 143 by SIGTERM; and, for `git bisect run`
//! only (the hidden `bisect-step`), 125 for a commit that cannot be tested.

use std::process::ExitCode;

/// Why a command could not do its job.
#[derive(Debug)]
pub enum Error {
    /// Wrong arguments, a malformed or missing file, an unknown name: exit 2.
    BadInput(String),
    /// Several located errors (case files): each printed, then their count; exit 2.
    Load(Vec<String>),
}

impl From<String> for Error {
    fn from(m: String) -> Self {
        Error::BadInput(m)
    }
}

impl From<&str> for Error {
    fn from(m: &str) -> Self {
        Error::BadInput(m.to_string())
    }
}

/// What a command that ran found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything it checked is fine.
    Passed,
    /// A case failed, a report could not be written after cases ran, or a kernel of a matrix
    /// could not be run.
    Failed,
    /// Nothing was checked: no case selected, or every selected case skipped (`--allow-empty`
    /// turns this into `Passed`).
    Empty,
    /// Stopped by a signal (its number).
    Interrupted(i32),
    /// `bisect-step` only: this commit cannot be tested (it does not build or boot); 125 is
    /// what `git bisect run` reads as "skip this commit".
    Untestable,
}

/// The exit codes, as every command's help ends.
pub const EXIT_CODES_HELP: &str =
    "Exit codes: 0 pass, 1 fail, 2 bad input, 3 nothing run (no case selected or executed; \
     --allow-empty makes that 0), 130/143 interrupted (SIGINT/SIGTERM).";

/// The exit code of a command; prints the error, if any.
pub fn exit_code(r: Result<Verdict, Error>) -> ExitCode {
    match r {
        Ok(Verdict::Passed) => ExitCode::SUCCESS,
        Ok(Verdict::Failed) => ExitCode::from(1),
        Ok(Verdict::Empty) => ExitCode::from(3),
        Ok(Verdict::Interrupted(sig)) if sig == libc::SIGTERM => ExitCode::from(143),
        Ok(Verdict::Interrupted(_)) => ExitCode::from(130),
        Ok(Verdict::Untestable) => ExitCode::from(125),
        Err(Error::BadInput(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Error::Load(errs)) => {
            for e in &errs {
                eprintln!("error: {e}");
            }
            eprintln!("{} error(s)", errs.len());
            ExitCode::from(2)
        }
    }
}
