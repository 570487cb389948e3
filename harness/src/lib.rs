//! zcrx-conform: a conformance harness for Linux io_uring zero-copy receive (zcrx).
//!
//! The modules are the stages of a run, bottom first (see `docs/architecture.md`; the order is
//! enforced by `tests/architecture.rs`): `paths`, [`error`], [`model`] (what crosses
//! stages), `kernel` (uapi, raw calls, rings, probe, the zcrx fixture), [`topology`],
//! [`case`] (files -> typed cases), [`report`] (outputs), `exec` (one case against the
//! kernel), [`run`] (plan, isolate, collect), `vm` (the same inside a booted kernel) and
//! `bench` and `campaign` (kernel mutants and coverage). `main.rs` and [`cli`] sit on top.
//!
//! Only the stages the binary, the integration tests and the fuzz targets use are `pub`; the
//! others are `pub(crate)`, so the compiler reports what nothing in the crate uses.

// `print!`, `println!`, `eprint!` and `eprintln!` in every module below: the same output, but a
// failed write never panics (see `paths::stdio`). Unit tests keep the standard ones, which the
// test harness captures.
#[cfg(not(test))]
macro_rules! print {
    ($($t:tt)*) => { $crate::paths::stdio::out(format_args!($($t)*)) };
}
#[cfg(not(test))]
macro_rules! println {
    () => { $crate::paths::stdio::out_line(format_args!("")) };
    ($($t:tt)*) => { $crate::paths::stdio::out_line(format_args!($($t)*)) };
}
#[cfg(not(test))]
macro_rules! eprint {
    ($($t:tt)*) => { $crate::paths::stdio::err(format_args!($($t)*), false) };
}
#[cfg(not(test))]
macro_rules! eprintln {
    () => { $crate::paths::stdio::err(format_args!(""), true) };
    ($($t:tt)*) => { $crate::paths::stdio::err(format_args!($($t)*), true) };
}

pub(crate) mod bench;
pub(crate) mod campaign;
pub mod case;
pub mod cli;
pub mod error;
pub(crate) mod exec;
pub(crate) mod kernel;
pub mod model;
pub(crate) mod paths;
pub mod qualify;
pub mod report;
pub mod run;
pub mod topology;
pub(crate) mod upstream;
pub(crate) mod vm;

/// The stream pattern every sender writes (byte i of a stream is `pattern(i, 1)`).
pub use exec::pattern;
