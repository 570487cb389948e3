//! What `print!`, `println!`, `eprint!` and `eprintln!` mean in this crate (the macros of
//! `lib.rs` call these): a write to stdout or stderr that never panics. The standard macros
//! panic when the write fails (`run --ktap | head -1`, `probe > /dev/full`), which exited 101
//! before the reports or the baseline were written. Here the first failed stdout write is kept
//! (later writes are not tried) and `main` turns it into the exit code after everything else is
//! done ([`stdout_failure`]); a failed stderr write is ignored (there is nowhere left to say it).
// Unit tests keep the standard print macros (see lib.rs), so nothing calls these there.
#![cfg_attr(test, allow(dead_code))]

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

/// The first stdout write that failed.
static STDOUT_FAILED: Mutex<Option<String>> = Mutex::new(None);

fn failed() -> std::sync::MutexGuard<'static, Option<String>> {
    STDOUT_FAILED.lock().unwrap_or_else(|e| e.into_inner())
}

fn record(r: io::Result<()>) {
    if let Err(e) = r {
        failed().get_or_insert_with(|| e.to_string());
    }
}

/// `print!`: writes to stdout unless a write there already failed.
pub fn out(args: fmt::Arguments<'_>) {
    if failed().is_none() {
        record(io::stdout().lock().write_fmt(args));
    }
}

/// `println!`.
pub fn out_line(args: fmt::Arguments<'_>) {
    if failed().is_none() {
        let mut o = io::stdout().lock();
        record(o.write_fmt(args).and_then(|()| o.write_all(b"\n")));
    }
}

/// `eprint!` and `eprintln!` (`line`): a failure is ignored.
pub fn err(args: fmt::Arguments<'_>, line: bool) {
    let mut e = io::stderr().lock();
    let _ = e.write_fmt(args).and_then(|()| if line { e.write_all(b"\n") } else { Ok(()) });
}

/// Flushes stdout; the first write to it that failed, if one did.
pub fn stdout_failure() -> Option<String> {
    if failed().is_none() {
        record(io::stdout().lock().flush());
    }
    failed().clone()
}
