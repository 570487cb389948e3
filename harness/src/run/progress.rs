//! The one progress printer. The run loop and the VM runner (decoding its guest's stream) feed
//! it the same [`Event`]s: a stream runner prints them encoded on stdout, a person sees a
//! line per case on stderr (on a terminal: one updating line, failures kept). Ids and messages
//! come from case files and kernels: their control characters are escaped, and escape codes
//! are only sent to a terminal that declares it understands them.

use std::io::Write;

use crate::model::event::Event;
use crate::report::escape::printable;

enum Mode {
    /// Encoded events on stdout (a runner inside a VM).
    Stream,
    /// One line per result on stderr.
    Lines,
    /// One updating line on a terminal; failures stay.
    Tty,
    Quiet,
}

pub struct Progress {
    mode: Mode,
    label: String,
    total: Option<usize>,
    done: usize,
    /// What the kernel lacks of the debug facilities was said (once per run, not per boot).
    noted: bool,
    /// `start ID` and `end STATUS ID` lines on stderr whatever the mode
    /// ([`super::RunOpts::announce`]).
    announce: bool,
}

fn short(m: &str) -> String {
    let m = printable(m);
    if m.chars().count() > 160 {
        format!("{}…", m.chars().take(160).collect::<String>())
    } else {
        m
    }
}

/// Whether progress may redraw one line with escape codes: stderr is a terminal and `TERM`
/// names one that has them (set, and not `dumb`).
fn fancy_terminal(stderr_is_tty: bool, term: Option<&str>) -> bool {
    stderr_is_tty && term.is_some_and(|t| !t.is_empty() && t != "dumb")
}

impl Progress {
    /// `label` names the kernel in lines ("host", "debian:7.3.4").
    pub fn new(stream: bool, quiet: bool, label: &str) -> Progress {
        let term = std::env::var("TERM").ok();
        let tty = fancy_terminal(nix::unistd::isatty(std::io::stderr()).unwrap_or(false), term.as_deref());
        let mode = match (stream, quiet, tty) {
            (true, _, _) => Mode::Stream,
            (_, true, _) => Mode::Quiet,
            (_, _, true) => Mode::Tty,
            _ => Mode::Lines,
        };
        Progress { mode, label: label.to_string(), total: None, done: 0, noted: false, announce: false }
    }

    /// Print each case's start on stderr (see [`super::RunOpts::announce`]).
    pub fn announce(&mut self, on: bool) {
        self.announce = on;
    }

    /// Results already known (a VM booted again resumes after them).
    pub fn resume_at(&mut self, done: usize) {
        self.done = done;
    }

    pub fn event(&mut self, ev: &Event) {
        if let Mode::Stream = self.mode {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", ev.encode());
            let _ = out.flush();
            return;
        }
        let total = |t: Option<usize>| t.map_or("?".into(), |t| t.to_string());
        match ev {
            Event::Total { total } => self.total = Some(*total),
            Event::Start { id, .. } => {
                if self.announce {
                    eprintln!("start {}", short(id));
                }
                if let Mode::Tty = self.mode {
                    let id = short(id);
                    eprint!("\r\x1b[K[{}/{}] {} {id}", self.done + 1, total(self.total), printable(&self.label));
                }
            }
            Event::Suspect { id } => {
                if self.announce {
                    // Provisional: its run alone decides; a later `end` line for it replaces this.
                    eprintln!("end {} {}", crate::model::Status::Fail.word(), short(id));
                }
            }
            Event::Result { case } => {
                self.done += 1;
                if self.announce {
                    // What a guest that later hangs whole has still told the host.
                    eprintln!("end {} {}", case.status.word(), short(&case.id));
                }
                let line = format!(
                    "{:<4} [{}/{}] {} {} {}",
                    case.status.word(),
                    self.done,
                    total(self.total),
                    printable(&self.label),
                    short(&case.id),
                    short(&case.message)
                );
                match self.mode {
                    Mode::Lines => eprintln!("{line}"),
                    Mode::Tty if case.status.is_failure() => eprintln!("\r\x1b[K{line}"),
                    _ => {}
                }
            }
            Event::Probe { probe } => {
                if !self.noted && !probe.kmemleak && !probe.kernel_release.is_empty() {
                    if let Mode::Lines | Mode::Tty = self.mode {
                        eprintln!("{}: kmemleak: not in this kernel (no leak scans)", printable(&self.label));
                    }
                }
                self.noted = true;
            }
            Event::LeakScan { cases } => {
                if let Mode::Lines = self.mode {
                    eprintln!("{}: kmemleak scan after {cases} case run(s)", printable(&self.label));
                }
            }
            Event::Leaked { id, objects } => {
                let first = objects.first().map(|o| o.to_string()).unwrap_or_default();
                let line = format!(
                    "FAIL {} {} kmemleak: {} object(s) leaked, first: {}",
                    printable(&self.label),
                    short(id),
                    objects.len(),
                    short(&first)
                );
                match self.mode {
                    Mode::Lines => eprintln!("{line}"),
                    Mode::Tty => eprintln!("\r\x1b[K{line}"),
                    _ => {}
                }
            }
            Event::Outcome { .. } | Event::Gcov { .. } => {}
        }
    }

    /// Clears the terminal's progress line.
    pub fn finish(&mut self) {
        if let Mode::Tty = self.mode {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_codes_only_for_real_terminals() {
        assert!(fancy_terminal(true, Some("xterm-256color")));
        assert!(!fancy_terminal(true, Some("dumb")));
        assert!(!fancy_terminal(true, Some("")));
        assert!(!fancy_terminal(true, None));
        assert!(!fancy_terminal(false, Some("xterm")));
    }

    #[test]
    fn progress_text_has_no_control_characters() {
        let s = short("a'b\nok 9 x\x1b[2J\x07");
        assert_eq!(s, "a'b\\nok 9 x\\x1b[2J\\x07");
    }
}
