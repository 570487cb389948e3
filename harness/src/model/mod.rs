//! What crosses stages: a case's [`Status`] and [`Outcome`], the typed [`StepError`] a step
//! ends with, the [`CaseReport`] / [`RunReport`] every reporter reads, the [`Probe`] data and
//! the one [`event::Event`] stream (case child -> runner, guest -> host). Every stage may
//! import this module; it imports only [`crate::error`] (a stage's error inside a step).

pub mod event;
pub mod probe;
pub mod result;
pub mod splat;
pub mod template;
pub mod text;
pub mod timings;

use serde::{Deserialize, Serialize};

pub use probe::{Feature, Probe};
pub use result::{Answer, CaseResult, DeviationPattern, Failure, Mismatch, ObservedPattern, SkipReason, SplatPattern};
pub use splat::{is_splat, splat_kind, LeakedObject, SplatKind};

/// An upstream kernel commit a case guards against (a case's `fixes:` entry): the case fails on
/// the kernel without it. `id` is the commit id (12 to 40 lower-case hex digits), `subject` its
/// subject line.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FixTag {
    /// The commit id, 12 to 40 lower-case hex digits (`git log --abbrev=12`).
    pub id: String,
    /// The commit's subject line, e.g. "io_uring/zcrx: clear RQ headers on init".
    pub subject: String,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    #[default]
    Skip,
    /// Failed as a declared known deviation expects.
    Xfail,
    /// A declared known deviation no longer reproduces: counted as a failure so it is noticed.
    Xpass,
}

impl Status {
    /// Whether the run's exit code must report this.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Fail | Status::Xpass)
    }

    /// The word progress lines use.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "ok",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
            Status::Xfail => "xfail",
            Status::Xpass => "XPASS",
        }
    }

    /// The status a progress word names ([`Status::word`]).
    pub fn from_word(w: &str) -> Option<Status> {
        [Status::Pass, Status::Fail, Status::Skip, Status::Xfail, Status::Xpass].into_iter().find(|s| s.word() == w)
    }
}

/// How a step (and so a case) ended when it did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The kernel did not answer as expected.
    Fail(Failure),
    /// The environment cannot run the case.
    Skip(String),
    /// The harness itself failed (mmap, spawn, ...): not the kernel's fault.
    Harness(String),
    /// Self-check: assertion `n` held although its verdict was inverted.
    InvertedHeld { n: usize, what: String },
}

impl StepError {
    /// The same error at step `step` (from 1), with its location `at` in front of its message.
    pub fn context(self, step: usize, at: &str) -> StepError {
        match self {
            StepError::Fail(f) => {
                StepError::Fail(Failure { step: Some(step), message: format!("{at}: {}", f.message), ..f })
            }
            StepError::Skip(m) => StepError::Skip(m),
            StepError::Harness(m) => StepError::Harness(format!("{at}: {m}")),
            StepError::InvertedHeld { n, what } => StepError::InvertedHeld { n, what: format!("{at}: {what}") },
        }
    }

    /// A comparison that did not hold: `m` typed, `message` in words.
    pub fn mismatch(m: Mismatch, message: String) -> StepError {
        StepError::Fail(Failure::mismatch(m, message))
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Fail(x) => f.write_str(&x.message),
            StepError::Skip(m) => f.write_str(m),
            StepError::Harness(m) => write!(f, "harness error: {m}"),
            StepError::InvertedHeld { n, what } => write!(f, "inverted assertion #{n} held ({what})"),
        }
    }
}

impl From<String> for StepError {
    fn from(m: String) -> Self {
        StepError::Fail(Failure::new(m))
    }
}

/// A lower stage's error inside a step, by whose fault it is: what the case asked for that
/// cannot be done as asked (a name, an RQ layout) fails the case; the machine's (entering a
/// namespace, a device that cannot be set up) is a harness error, not the kernel's answer.
impl<E: crate::error::Classify + std::error::Error> From<E> for StepError {
    fn from(e: E) -> Self {
        match e.kind() {
            crate::error::Kind::BadInput => StepError::Fail(Failure::new(e.to_string())),
            crate::error::Kind::Environment => StepError::Harness(e.to_string()),
        }
    }
}

impl From<&str> for StepError {
    fn from(m: &str) -> Self {
        StepError::Fail(Failure::new(m))
    }
}

/// What executing one case produced.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub result: CaseResult,
    pub log: Vec<String>,
    /// Kernel-specific expectations that applied ("[min..max] why").
    #[serde(default)]
    pub kernel_specific: Vec<String>,
    /// The assertion sites the case reached, in the order first evaluated (numbered from 1).
    #[serde(default)]
    pub assertions: Vec<Assertion>,
    /// What the kernel answered, whatever the case expected ([`CaseReport::observed`]).
    #[serde(default)]
    pub observed: Vec<String>,
}

/// One place where a case checks a value: a step's errno or result, one `out` field, a CQE's
/// res or flags, a data comparison, a counter. A site inside a loop (every data CQE) is one
/// assertion, however often it is evaluated.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Assertion {
    /// Where: "step 3 (register, line 7)".
    pub at: String,
    /// What: "errno/result", "out ifq.rq_entries", "CQE #1 res", "data CQE payload" ...
    pub what: String,
    /// The implicit "must succeed" of a set-up step (no `expect`).
    pub setup: bool,
}

/// `run --self-check` for one case: each assertion inverted alone must make the case fail
/// at that assertion.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SelfCheck {
    /// Assertions the passing case evaluated, and how many of them are set-up assertions.
    pub assertions: usize,
    pub setup: usize,
    /// Inverted alone, made the case fail exactly there.
    pub killed: usize,
    pub killed_setup: usize,
    /// The ones that did not, with what happened instead.
    pub survived: Vec<String>,
}

impl Outcome {
    pub fn pass(log: Vec<String>) -> Outcome {
        Outcome::of(CaseResult::Pass).with_log(log)
    }

    /// An outcome of kind `result` with nothing else recorded.
    pub fn of(result: CaseResult) -> Outcome {
        Outcome { result, ..Default::default() }
    }

    pub fn with_log(self, log: Vec<String>) -> Outcome {
        Outcome { log, ..self }
    }

    /// A failure of the harness (spawn, fork, mmap ...), not of the kernel.
    pub fn harness(message: impl Into<String>) -> Outcome {
        Outcome::of(CaseResult::HarnessError { message: message.into() })
    }

    /// The outcome of a case that ended with `e`.
    pub fn from_error(e: StepError, log: Vec<String>) -> Outcome {
        let message = e.to_string();
        let result = match e {
            StepError::Fail(f) => CaseResult::Failed(f),
            StepError::Skip(m) => CaseResult::Skipped { reason: SkipReason::Environment(m) },
            StepError::Harness(_) => CaseResult::HarnessError { message },
            StepError::InvertedHeld { n, .. } => {
                CaseResult::Failed(Failure { inverted_held: Some(n), ..Failure::new(message) })
            }
        };
        Outcome::of(result).with_log(log)
    }
}

/// One case's result, as reported.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: String,
    pub file: String,
    pub area: String,
    pub about: String,
    pub spec: Vec<String>,
    /// Upstream fixes the case guards (its `fixes:` tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<FixTag>,
    /// CVE ids of the bugs the case guards (its `cve:` tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cve: Vec<String>,
    pub topology: Option<String>,
    pub status: Status,
    /// Failure message or skip reason.
    pub message: String,
    pub log: Vec<String>,
    /// Kernel log lines printed while the case ran.
    pub kernel_log: Vec<String>,
    pub duration_s: f64,
    /// Kernel-specific expectations that applied ("[min..max] why").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_specific: Vec<String>,
    /// The harness failed, not the kernel.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub harness_error: bool,
    /// How the case ended, typed; `status`, `message` and `harness_error` are derived from it
    /// ([`CaseReport::set_result`]). A report written before it existed reads as `untyped`.
    #[serde(default)]
    pub result: CaseResult,
    /// With `run --self-check`: which of the case's assertions can fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_check: Option<SelfCheck>,
    /// What the kernel observably did, one line per checked value, independent of the case's
    /// expectations (kernel-specific ones included): each step's errno or result, each read-back
    /// field, each CQE's res and flags, up to where the case stopped. `bisect` compares these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<String>,
}

impl CaseReport {
    /// A report with the case's identity and no result yet (skipped, empty message).
    pub fn new(id: &str) -> CaseReport {
        CaseReport {
            id: id.to_string(),
            file: String::new(),
            area: id.split('.').next().unwrap_or("").to_string(),
            about: String::new(),
            spec: vec![],
            fixes: vec![],
            cve: vec![],
            topology: None,
            status: Status::Skip,
            message: String::new(),
            log: vec![],
            kernel_log: vec![],
            duration_s: 0.0,
            kernel_specific: vec![],
            harness_error: false,
            result: CaseResult::Untyped,
            self_check: None,
            observed: vec![],
        }
    }

    /// Records how the case ended: its status, message and harness flag follow from it.
    pub fn set_result(&mut self, result: CaseResult) {
        if let Some(status) = result.status() {
            self.status = status;
            self.message = result.to_string();
            self.harness_error = result.is_harness_error();
        }
        self.result = result;
    }

    /// The result with its typed kind; an untyped one (an old report) rebuilt from the status
    /// and message it carries.
    pub fn typed_result(&self) -> CaseResult {
        match (&self.result, self.status) {
            (CaseResult::Untyped, Status::Pass) => CaseResult::Pass,
            (CaseResult::Untyped, Status::Skip) => {
                CaseResult::Skipped { reason: SkipReason::Requirement(self.message.clone()) }
            }
            (CaseResult::Untyped, _) if self.harness_error => {
                CaseResult::HarnessError { message: self.message.clone() }
            }
            (CaseResult::Untyped, _) => self.result.clone(),
            (r, _) => r.clone(),
        }
    }
}

/// The most shards a run may be cut into (`--shard K/N`, N at most this): a report claiming
/// more is refused, so no message or check grows with a number a file made up.
pub const MAX_SHARDS: u32 = 4096;

/// Which part of the catalogue a sharded run (`--shard K/N`) ran: shard `k` of `n` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub k: u32,
    pub n: u32,
}

/// A whole run on one kernel.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// Where it ran: "host" or the VM kernel spec.
    pub target: String,
    pub probe: Probe,
    pub topologies: Vec<String>,
    pub cases: Vec<CaseReport>,
    pub duration_s: f64,
    /// Set when the run stopped early (Ctrl-C, VM died).
    pub aborted: Option<String>,
    /// Extra timings (VM boot, etc.).
    #[serde(default)]
    pub timings: timings::Timings,
    /// The shard this run covered (`--shard K/N`); none for a run of every selected case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Selected cases that never ran because the run stopped early (see `aborted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_run: Vec<String>,
    /// When the run started and finished (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The machine that ran it (the VM's host for a VM run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// io_uring/zcrx.c's gcov counters (`zcrx.gcda`, hex) at the end of the run, one per boot
    /// (a VM booted again after a crash starts from zero), on a kernel built with gcov on zcrx.o;
    /// `coverage --run` reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zcrx_gcda: Vec<String>,
}

impl RunReport {
    pub fn new(target: &str, probe: Probe, topologies: &[String]) -> RunReport {
        RunReport {
            target: target.to_string(),
            probe,
            topologies: topologies.to_vec(),
            cases: Vec::new(),
            duration_s: 0.0,
            aborted: None,
            timings: Default::default(),
            ..Default::default()
        }
    }

    pub fn count(&self, s: Status) -> usize {
        self.cases.iter().filter(|c| c.status == s).count()
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} passed, {} failed, {} skipped",
            self.target,
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip)
        );
        let (xf, xp) = (self.count(Status::Xfail), self.count(Status::Xpass));
        if xf + xp > 0 {
            s.push_str(&format!(", {xf} xfail, {xp} xpass"));
        }
        s
    }

    pub fn failures(&self) -> usize {
        self.cases.iter().filter(|c| c.status.is_failure()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splat_lines() {
        assert!(is_splat("WARNING: CPU: 0 PID: 1 at io_uring/zcrx.c:100 io_zcrx_scrub+0x10/0x20"));
        assert!(is_splat("BUG: KASAN: use-after-free in io_zcrx_ring_refill"));
        assert!(!is_splat("virtio_net virtio0: link up"));
    }

    #[test]
    fn errors_become_outcomes() {
        let o = Outcome::from_error(StepError::Skip("no tun".into()).context(1, "step 1"), vec![]);
        assert_eq!((o.result.status(), o.result.to_string().as_str()), (Some(Status::Skip), "no tun"));
        let o = Outcome::from_error(StepError::InvertedHeld { n: 3, what: "CQE".into() }, vec![]);
        assert_eq!((o.result.status(), o.result.inverted_held()), (Some(Status::Fail), Some(3)));
        let o = Outcome::from_error(StepError::Harness("mmap: ENOMEM".into()), vec![]);
        assert!(o.result.is_harness_error() && o.result.status() == Some(Status::Fail));
        let e = StepError::from("expected EINVAL").context(2, "step 2 (ctrl, line 9)");
        let o = Outcome::from_error(e, vec![]);
        let CaseResult::Failed(f) = &o.result else { panic!("{:?}", o.result) };
        assert_eq!((f.step, f.message.as_str()), (Some(2), "step 2 (ctrl, line 9): expected EINVAL"));
    }
}
