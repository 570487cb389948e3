//! The one error type of the commands and the one place that turns a command's result into
//! the process exit code: 0 every executed case passed, 1 a case failed (or a matrix lost a
//! kernel), 2 bad input (the user's: arguments, files, names), 3 nothing was run (no case
//! selected or executed; a CI gate must not go green on nothing), 4 the environment (a VM that
//! cannot be provisioned, a kernel that cannot be fetched, a tool missing, I/O on the
//! machine), 130 interrupted by SIGINT, 143 by SIGTERM; and, for `git bisect run` only (the
//! hidden `bisect-step`), 125 for a commit that cannot be tested.
//!
//! This stage sits below every other, so it cannot name their error types: each stage's error
//! enum says whose fault it is through [`Classify`], and converts into [`Error`] keeping itself
//! as the source.

use std::process::ExitCode;

/// Whose fault an error is: what decides between exit codes 2 and 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The user's input: arguments, files, names (exit 2).
    BadInput,
    /// The machine: a VM that cannot be provisioned, a kernel that cannot be fetched, a tool
    /// missing, I/O that failed (exit 4).
    Environment,
}

/// Implemented by each stage's error enum: the kind of each of its variants.
pub trait Classify {
    fn kind(&self) -> Kind;
}

/// Why a command could not do its job.
#[derive(Debug)]
pub enum Error {
    /// A stage's error (kept as the source), or a message, with its kind.
    Failed { kind: Kind, source: Box<dyn std::error::Error + Send + Sync> },
    /// Several located errors (case files): each printed, then their count; exit 2.
    Load(Vec<String>),
}

/// A message that is the whole error.
#[derive(Debug)]
struct Message(String);

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl Error {
    /// The user's input is wrong (exit 2).
    pub fn bad_input(m: impl Into<String>) -> Error {
        Error::Failed { kind: Kind::BadInput, source: Box::new(Message(m.into())) }
    }

    /// The machine cannot do it (exit 4).
    pub fn environment(m: impl Into<String>) -> Error {
        Error::Failed { kind: Kind::Environment, source: Box::new(Message(m.into())) }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Error::Failed { kind, .. } => *kind,
            Error::Load(_) => Kind::BadInput,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Failed { source, .. } => write!(f, "{source}"),
            Error::Load(errs) => write!(f, "{}", errs.join("; ")),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Failed { source, .. } => source.source(),
            Error::Load(_) => None,
        }
    }
}

impl<E: Classify + std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Error::Failed { kind: e.kind(), source: Box::new(e) }
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
    "Exit codes: 0 pass, 1 fail, 2 bad input (arguments, files, names), 3 nothing run (no case selected or \
     executed; --allow-empty makes that 0), 4 environment (a VM that cannot be provisioned, a kernel that \
     cannot be fetched, a tool missing, I/O), 130/143 interrupted (SIGINT/SIGTERM).";

/// The exit code of an error's kind.
fn code_of(kind: Kind) -> u8 {
    match kind {
        Kind::BadInput => 2,
        Kind::Environment => 4,
    }
}

/// The error's message, then each source whose text the message does not already carry.
pub fn describe(e: &Error) -> Vec<String> {
    let mut lines = vec![e.to_string()];
    if let Error::Failed { source, .. } = e {
        let mut next = source.source();
        while let Some(s) = next {
            let text = s.to_string();
            if !lines.iter().any(|l| l.contains(&text)) {
                lines.push(format!("caused by: {text}"));
            }
            next = s.source();
        }
    }
    lines
}

/// The exit code of a command; prints the error, if any.
pub fn exit_code(r: Result<Verdict, Error>) -> ExitCode {
    match r {
        Ok(Verdict::Passed) => ExitCode::SUCCESS,
        Ok(Verdict::Failed) => ExitCode::from(1),
        Ok(Verdict::Empty) => ExitCode::from(3),
        Ok(Verdict::Interrupted(sig)) if sig == libc::SIGTERM => ExitCode::from(143),
        Ok(Verdict::Interrupted(_)) => ExitCode::from(130),
        Ok(Verdict::Untestable) => ExitCode::from(125),
        Err(Error::Load(errs)) => {
            for e in &errs {
                eprintln!("error: {e}");
            }
            eprintln!("{} error(s)", errs.len());
            ExitCode::from(2)
        }
        Err(e) => {
            let lines = describe(&e);
            eprintln!("error: {}", lines.join("\n  "));
            ExitCode::from(code_of(e.kind()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fetch(std::io::Error);

    impl std::fmt::Display for Fetch {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot fetch the kernel")
        }
    }

    impl std::error::Error for Fetch {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    impl Classify for Fetch {
        fn kind(&self) -> Kind {
            Kind::Environment
        }
    }

    #[test]
    fn the_kind_chooses_the_exit_code_and_the_sources_are_printed() {
        let e: Error = Fetch(std::io::Error::other("connection refused")).into();
        assert_eq!(e.kind(), Kind::Environment);
        assert_eq!(code_of(e.kind()), 4);
        assert_eq!(describe(&e), ["cannot fetch the kernel", "caused by: connection refused"]);
        assert_eq!(exit_code(Err(e)), ExitCode::from(4));
        assert_eq!(exit_code(Err(Error::bad_input("unknown topology `x`"))), ExitCode::from(2));
        assert_eq!(exit_code(Err(Error::Load(vec!["a.yaml:1:1: x".into()]))), ExitCode::from(2));
        assert_eq!(exit_code(Err(Error::environment("no vng"))), ExitCode::from(4));
    }
}
