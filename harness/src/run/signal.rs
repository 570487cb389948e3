//! SIGINT and SIGTERM stop a run after the running case is killed; reports are still written.
//! SIGHUP (the terminal went away) and SIGQUIT count as SIGTERM.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that interrupted the run, or 0.
static INTERRUPTED_BY: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    let sig = if sig == libc::SIGHUP || sig == libc::SIGQUIT { libc::SIGTERM } else { sig };
    INTERRUPTED_BY.store(sig, Ordering::SeqCst);
}

/// Installs the handlers (they only store the signal number).
pub fn install_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let sa = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(s, &sa) };
    }
}

/// Restores the default dispositions (in a case child, so a signal ends it at once).
pub fn reset_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let sa = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        // SAFETY: restoring the default disposition.
        let _ = unsafe { sigaction(s, &sa) };
    }
}

/// The signal that interrupted the run, if one did.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED_BY.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
