//! What happened to a case, as a type: [`CaseResult`] says which kind of ending it was (a
//! failed assertion with what it expected and what the kernel answered, a timeout, a kernel
//! splat, a harness error, a skip and why, a known deviation ...). The coarse [`Status`] every
//! report counts and the message every report prints are derived from it, and a known
//! deviation's `observed:` is matched against the typed failure ([`ObservedPattern`]), not
//! against the message text.

use serde::{Deserialize, Serialize};

use super::Status;

/// One value a check compares: what the case expected or what the kernel answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A call failed with this errno (its name, `EINVAL`).
    Errno(String),
    /// A call succeeded; with the value it returned (`None` in an expectation: any value).
    Success(Option<i64>),
    /// A value the kernel wrote back, posted or counted.
    Value(u64),
    /// Anything else, in words (CQE flags, a payload).
    Text(String),
    /// No CQE came within the step's timeout (a receive that stalled, a final CQE never posted).
    Nothing,
}

impl Answer {
    /// Whether this answer (a pattern's) covers `other` (a check's): `Success(None)` covers
    /// every success, a `Value` also covers the same number returned as a success.
    pub fn covers(&self, other: &Answer) -> bool {
        match (self, other) {
            (Answer::Success(None), Answer::Success(_)) => true,
            (Answer::Value(v), Answer::Success(Some(r))) | (Answer::Success(Some(r)), Answer::Value(v)) => {
                u64::try_from(*r).is_ok_and(|r| r == *v)
            }
            (a, b) => a == b,
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Errno(n) | Answer::Text(n) => f.write_str(n),
            Answer::Nothing => f.write_str("nothing"),
            Answer::Success(None) => f.write_str("success"),
            Answer::Success(Some(v)) => write!(f, "success ({v})"),
            Answer::Value(v) => write!(f, "{v:#x} ({v})"),
        }
    }
}

/// A check whose two values differ: what it checked, what the case expected, what the kernel
/// answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// `errno/result`, a read-back field (`area.rq_area_token`), `CQE #1 res` ...
    pub what: String,
    pub expected: Answer,
    pub observed: Answer,
}

/// A case that failed at a step: where, and (for a compared value) what differed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The step (from 1), when the case got to its steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The assertion site (from 1, [`super::Assertion`]) that did not hold, when one did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<usize>,
    /// The compared values, when the failure is a comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<Box<Mismatch>>,
    /// Self-check: this assertion held although its verdict was inverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverted_held: Option<usize>,
    /// The failure in words, with its location.
    pub message: String,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), ..Default::default() }
    }

    /// A comparison that did not hold.
    pub fn mismatch(m: Mismatch, message: impl Into<String>) -> Failure {
        Failure { mismatch: Some(Box::new(m)), message: message.into(), ..Default::default() }
    }
}

/// Why a case did not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "why", content = "detail")]
pub enum SkipReason {
    /// The plan: the kernel lacks a feature, the run does not provide the topology ...
    Requirement(String),
    /// A topology the case needs could not be set up.
    TopologyDown { topology: String, error: String },
    /// A step found that this machine cannot run it (no TUN, no user namespace ...).
    Environment(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Requirement(m) | SkipReason::Environment(m) => f.write_str(m),
            SkipReason::TopologyDown { topology, error } => {
                write!(f, "topology {topology} could not be set up: {error}")
            }
        }
    }
}

/// How one case ended. [`CaseResult::status`] is the coarse value reports count.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CaseResult {
    /// A report that carries only a status and a message: written before results were
    /// typed, or built from a status alone.
    #[default]
    Untyped,
    Pass,
    /// Self-check: the case passes and each of its assertions, inverted alone, failed it.
    CanFail {
        killed: usize,
        of: usize,
        killed_setup: usize,
        setup: usize,
    },
    /// The kernel did not answer as the case expects (or a step could not do what it says).
    Failed(Failure),
    /// The case ran past its timeout and was killed.
    TimedOut {
        after_s: f64,
        /// The process did not exit after SIGKILL: stuck in the kernel (an exit that waits on
        /// something that never comes). Its kernel stack (/proc/PID/stack) when it was left
        /// behind; the suite goes on without it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stuck: Option<Vec<String>>,
    },
    /// The case process died without a result.
    Crashed {
        how: String,
    },
    /// The VM died while this case ran.
    GuestCrashed {
        why: String,
    },
    /// The kernel printed a splat while the case ran (`lines`, the first one named); `during`:
    /// the assertion a self-check run had inverted; `result`: what the case found otherwise.
    KernelSplat {
        lines: Vec<String>,
        during: Option<usize>,
        result: Box<CaseResult>,
        /// The kind of each line of `lines` (empty in a report written before splats were
        /// typed).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        kinds: Vec<super::SplatKind>,
    },
    /// A kmemleak scan after the case found objects it allocated and never freed (attributed
    /// by the allocating task's pid, or by when they were allocated); `result`: what the case
    /// found otherwise.
    Leak {
        #[serde(default)]
        objects: Vec<super::LeakedObject>,
        #[serde(default)]
        result: Box<CaseResult>,
    },
    /// The harness failed, not the kernel.
    HarnessError {
        message: String,
    },
    /// What the case changed on a topology could not be put back afterwards.
    Unrestored {
        errors: Vec<String>,
        result: Box<CaseResult>,
    },
    Skipped {
        reason: SkipReason,
    },
    /// Failed as a declared known deviation expects.
    Xfail {
        deviation: String,
        link: Option<String>,
        result: Box<CaseResult>,
    },
    /// A declared known deviation no longer reproduces.
    Xpass {
        deviation: String,
        link: Option<String>,
    },
    /// Failed, but not as the known deviation that applies says (`expected`: its `observed:`).
    FailedDifferently {
        expected: String,
        result: Box<CaseResult>,
    },
    /// Self-check: `count` of the `of` assertions that are not set-up assertions could not be
    /// made to fail; `survived` says what happened to each survivor (set-up ones included).
    CannotFail {
        count: usize,
        of: usize,
        survived: Vec<String>,
    },
    /// Self-check: the case reached no assertion.
    NoAssertion,
    /// The run was stopped while the case ran.
    Interrupted,
}

impl CaseResult {
    /// The coarse status reports count; `Untyped` has none of its own (`None`).
    pub fn status(&self) -> Option<Status> {
        Some(match self {
            CaseResult::Untyped => return None,
            CaseResult::Pass | CaseResult::CanFail { .. } => Status::Pass,
            CaseResult::Skipped { .. } => Status::Skip,
            CaseResult::Xfail { .. } => Status::Xfail,
            CaseResult::Xpass { .. } => Status::Xpass,
            CaseResult::Failed(_)
            | CaseResult::TimedOut { .. }
            | CaseResult::Crashed { .. }
            | CaseResult::GuestCrashed { .. }
            | CaseResult::KernelSplat { .. }
            | CaseResult::Leak { .. }
            | CaseResult::HarnessError { .. }
            | CaseResult::Unrestored { .. }
            | CaseResult::FailedDifferently { .. }
            | CaseResult::CannotFail { .. }
            | CaseResult::NoAssertion
            | CaseResult::Interrupted => Status::Fail,
        })
    }

    /// The harness failed, not the kernel (reported as ERROR where formats have one).
    pub fn is_harness_error(&self) -> bool {
        match self {
            CaseResult::HarnessError { .. } | CaseResult::Unrestored { .. } | CaseResult::Interrupted => true,
            CaseResult::KernelSplat { result, .. }
            | CaseResult::FailedDifferently { result, .. }
            | CaseResult::Leak { result, .. } => result.is_harness_error(),
            _ => false,
        }
    }

    /// A failure the kernel caused (what a known deviation may stand for): a failed check, a
    /// timeout, a crash of the case process.
    pub fn is_kernel_failure(&self) -> bool {
        matches!(self, CaseResult::Failed(_) | CaseResult::TimedOut { .. } | CaseResult::Crashed { .. })
    }

    /// The name of the kind (`failed`, `timed_out`, ...), as the JSON report's `result.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            CaseResult::Untyped => "untyped",
            CaseResult::Pass => "pass",
            CaseResult::CanFail { .. } => "can_fail",
            CaseResult::Failed(_) => "failed",
            CaseResult::TimedOut { .. } => "timed_out",
            CaseResult::Crashed { .. } => "crashed",
            CaseResult::GuestCrashed { .. } => "guest_crashed",
            CaseResult::KernelSplat { .. } => "kernel_splat",
            CaseResult::Leak { .. } => "leak",
            CaseResult::HarnessError { .. } => "harness_error",
            CaseResult::Unrestored { .. } => "unrestored",
            CaseResult::Skipped { .. } => "skipped",
            CaseResult::Xfail { .. } => "xfail",
            CaseResult::Xpass { .. } => "xpass",
            CaseResult::FailedDifferently { .. } => "failed_differently",
            CaseResult::CannotFail { .. } => "cannot_fail",
            CaseResult::NoAssertion => "no_assertion",
            CaseResult::Interrupted => "interrupted",
        }
    }

    /// The kernel splat lines this result names (the first is the one reports quote).
    pub fn splat_lines(&self) -> &[String] {
        match self {
            CaseResult::KernelSplat { lines, .. } => lines,
            CaseResult::Unrestored { result, .. }
            | CaseResult::FailedDifferently { result, .. }
            | CaseResult::Leak { result, .. } => result.splat_lines(),
            _ => &[],
        }
    }

    /// Self-check: the inverted assertion that held, if the case ended there.
    pub fn inverted_held(&self) -> Option<usize> {
        match self {
            CaseResult::Failed(f) => f.inverted_held,
            _ => None,
        }
    }
}

fn link_text(link: &Option<String>) -> String {
    link.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()
}

/// The message reports print: the text each kind had before results were typed.
impl std::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaseResult::Untyped | CaseResult::Pass => Ok(()),
            CaseResult::CanFail { killed, of, killed_setup, setup } => {
                write!(f, "can fail: {killed} of {of} assertion(s) killed ({killed_setup} of {setup} set-up)")
            }
            CaseResult::Failed(x) => f.write_str(&x.message),
            CaseResult::TimedOut { after_s, stuck: None } => write!(f, "timed out after {after_s} s; killed"),
            CaseResult::TimedOut { after_s, stuck: Some(stack) } => write!(
                f,
                "timed out after {after_s} s; SIGKILL did not end it: stuck in the kernel at {}",
                stack.first().map(String::as_str).unwrap_or("(no stack)")
            ),
            CaseResult::Crashed { how } => write!(f, "case process crashed ({how}) without a result"),
            CaseResult::GuestCrashed { why } => write!(f, "{why} while this case ran; console tail attached"),
            CaseResult::KernelSplat { lines, during, result, .. } => {
                let first = lines.first().map(String::as_str).unwrap_or("");
                match during {
                    Some(k) => write!(f, "kernel splat with assertion #{k} inverted: {first}"),
                    None => {
                        let before = result.to_string();
                        if before.is_empty() {
                            write!(f, "kernel splat during the case: {first}")
                        } else {
                            write!(f, "{before}; kernel splat during the case: {first}")
                        }
                    }
                }
            }
            CaseResult::Leak { objects, result } => {
                let before = result.to_string();
                if !before.is_empty() {
                    write!(f, "{before}; ")?;
                }
                write!(f, "kmemleak: {} object(s) leaked", objects.len())?;
                if let Some(o) = objects.first() {
                    write!(f, ", first: {o}")?;
                }
                Ok(())
            }
            CaseResult::HarnessError { message } => f.write_str(message),
            CaseResult::Unrestored { errors, result } => {
                write!(f, "the topology could not be restored after the case ({}); {result}", errors.join("; "))
            }
            CaseResult::Skipped { reason } => write!(f, "{reason}"),
            CaseResult::Xfail { deviation, link, result } => {
                write!(f, "known deviation: {deviation}{}; observed: {result}", link_text(link))
            }
            CaseResult::Xpass { deviation, link } => {
                write!(f, "known deviation no longer reproduces: {deviation}{}", link_text(link))
            }
            CaseResult::FailedDifferently { expected, result } => {
                write!(f, "failed differently from the known deviation (expected to see `{expected}`): {result}")
            }
            CaseResult::CannotFail { count, of, survived } => {
                write!(f, "{count} of {of} assertion(s) cannot be made to fail: {}", survived.join("; "))
            }
            CaseResult::NoAssertion => f.write_str("unable to fail: the case reached no assertion"),
            CaseResult::Interrupted => f.write_str("interrupted"),
        }
    }
}

/// An `observed:` text of no checkable form (the case file's).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(String);

/// A known deviation's `observed:` text read as what the failed check must show:
/// `[<what>: ][expected <answer>, ]kernel (returned|wrote|posted) <answer>`, an answer being an
/// errno name (`EFAULT`), `success`, `success (N)`, `return N`, a number (`0x1000`,
/// `16 (0x10)`) or `nothing` (no CQE within the timeout: `final CQE: kernel posted nothing`).
/// `kernel returned EFAULT` matches every failed check that observed EFAULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPattern {
    /// The read-back field or check it must be (any when absent).
    pub what: Option<String>,
    pub expected: Option<Answer>,
    pub observed: Answer,
}

impl ObservedPattern {
    pub fn parse(text: &str) -> Result<ObservedPattern, PatternError> {
        let bad = |why: &str| {
            let shown: String = text.chars().take(80).collect();
            PatternError(format!(
                "`{shown}`: {why} (write `[FIELD: ][expected ANSWER, ]kernel returned|wrote|posted ANSWER`, \
                 ANSWER an errno name, `success`, a number or `nothing`; or `kernel splat KIND in FUNCTION`)"
            ))
        };
        let t = text.trim();
        let (what, rest) = match t.split_once(": ") {
            Some((w, r)) => (Some(w.trim().to_string()), r.trim()),
            None => (None, t),
        };
        let (expected, rest) = match rest.strip_prefix("expected ") {
            Some(r) => {
                let (e, r) =
                    r.split_once(", ").ok_or_else(|| bad("`expected ...` is followed by no `, kernel ...`"))?;
                (Some(parse_answer(e).ok_or_else(|| bad(&format!("`{e}` is not an answer")))?), r.trim())
            }
            None => (None, rest),
        };
        let answer = ["kernel returned ", "kernel wrote ", "kernel posted "]
            .iter()
            .find_map(|p| rest.strip_prefix(p))
            .ok_or_else(|| bad("no `kernel returned`, `kernel wrote` or `kernel posted`"))?;
        let observed = parse_answer(answer).ok_or_else(|| bad(&format!("`{answer}` is not an answer")))?;
        Ok(ObservedPattern { what, expected, observed })
    }

    /// Whether `r`, the result a case ended with, is a failed check this pattern describes.
    pub fn matches(&self, r: &CaseResult) -> bool {
        let CaseResult::Failed(Failure { mismatch: Some(m), .. }) = r else { return false };
        self.what.as_ref().is_none_or(|w| *w == m.what)
            && self.expected.as_ref().is_none_or(|e| e.covers(&m.expected))
            && self.observed.covers(&m.observed)
    }
}

/// A known deviation's `observed:`: what the failed check must show ([`ObservedPattern`]), or
/// the kernel splat the case must end with ([`SplatPattern`], `kernel splat KIND in FUNCTION`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviationPattern {
    Check(ObservedPattern),
    Splat(SplatPattern),
}

impl DeviationPattern {
    pub fn parse(text: &str) -> Result<DeviationPattern, PatternError> {
        match text.trim().strip_prefix("kernel splat ") {
            Some(rest) => SplatPattern::parse(text, rest).map(DeviationPattern::Splat),
            None => ObservedPattern::parse(text).map(DeviationPattern::Check),
        }
    }

    /// Whether `r`, the result a case ended with, is what this pattern describes.
    pub fn matches(&self, r: &CaseResult) -> bool {
        match self {
            DeviationPattern::Check(p) => p.matches(r),
            DeviationPattern::Splat(p) => p.matches(r),
        }
    }
}

/// A kernel splat a known deviation stands for: a splat line of this kind naming this function
/// (`WARNING: ... at netdev_queue_get_dma_dev+0x1a4/0x1c0`), on a case that otherwise passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplatPattern {
    pub kind: super::SplatKind,
    /// The function the splat line names (matched as `FUNCTION+`, its offset following).
    pub function: String,
}

impl SplatPattern {
    /// `rest`: what follows `kernel splat ` in `text`: `KIND in FUNCTION`, KIND as reports name it
    /// (`warning`, `bug`, `KASAN`, `lockdep: circular locking` ...).
    fn parse(text: &str, rest: &str) -> Result<SplatPattern, PatternError> {
        let shown: String = text.chars().take(80).collect();
        let bad = |why: String| PatternError(format!("`{shown}`: {why} (write `kernel splat KIND in FUNCTION`)"));
        let (kind, function) = rest.rsplit_once(" in ").ok_or_else(|| bad("no ` in FUNCTION`".into()))?;
        let function = function.trim();
        if function.is_empty() || !function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(bad(format!("`{function}` is not a function name")));
        }
        let kind = super::splat::all_kinds()
            .find(|k| k.to_string() == kind.trim())
            .ok_or_else(|| bad(format!("`{}` is not a splat kind", kind.trim())))?;
        Ok(SplatPattern { kind, function: function.to_string() })
    }

    /// Whether `r` is a splat of this kind in this function, the case having otherwise passed.
    pub fn matches(&self, r: &CaseResult) -> bool {
        let CaseResult::KernelSplat { lines, during: None, result, .. } = r else { return false };
        let site = format!("{}+", self.function);
        **result == CaseResult::Pass
            && lines.iter().any(|l| {
                super::splat_kind(l) == Some(self.kind)
                    && l.split_whitespace().any(|w| w.trim_start_matches(['(', '[']).starts_with(&site))
            })
    }
}

fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `EINVAL`, `success`, `success (N)`, `return N`, `N`, `N (M)` (a number with its other base).
fn parse_answer(s: &str) -> Option<Answer> {
    let s = s.trim();
    if s.len() > 1 && s.starts_with('E') && s[1..].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        return Some(Answer::Errno(s.to_string()));
    }
    if s == "success" {
        return Some(Answer::Success(None));
    }
    if s == "nothing" {
        return Some(Answer::Nothing);
    }
    if let Some(n) = s.strip_prefix("success (").and_then(|r| r.strip_suffix(')')) {
        return n.trim().parse().ok().map(|n| Answer::Success(Some(n)));
    }
    if let Some(n) = s.strip_prefix("return ") {
        return n.trim().parse().ok().map(|n| Answer::Success(Some(n)));
    }
    let (n, other) = match s.split_once(" (") {
        Some((n, o)) => (n, Some(o.strip_suffix(')')?)),
        None => (s, None),
    };
    let v = parse_number(n)?;
    if other.is_some_and(|o| parse_number(o) != Some(v)) {
        return None;
    }
    Some(Answer::Value(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(what: &str, expected: Answer, observed: Answer) -> CaseResult {
        CaseResult::Failed(Failure::mismatch(Mismatch { what: what.into(), expected, observed }, "m"))
    }

    /// The `observed:` texts the catalogue's known deviations use decide as the message
    /// substrings did.
    #[test]
    fn catalogue_patterns_match_typed_failures() {
        let einval_success = ObservedPattern::parse("expected EINVAL, kernel returned success").expect("parses");
        let errno = |e: &str| Answer::Errno(e.into());
        assert!(einval_success.matches(&failed("errno/result", errno("EINVAL"), Answer::Success(Some(0)))));
        assert!(!einval_success.matches(&failed("errno/result", errno("EINVAL"), errno("EFAULT"))));
        assert!(!einval_success.matches(&failed("errno/result", Answer::Success(None), Answer::Success(Some(0)))));
        let efault = ObservedPattern::parse("kernel returned EFAULT").expect("parses");
        assert!(efault.matches(&failed("errno/result", errno("EINVAL"), errno("EFAULT"))));
        assert!(!efault.matches(&failed("errno/result", errno("EINVAL"), errno("EPERM"))));
        assert!(!efault.matches(&CaseResult::TimedOut { after_s: 1.0, stuck: None }));
        let token = ObservedPattern::parse("area.rq_area_token: expected 0x0 (0), kernel wrote 0x1000000000000")
            .expect("parses");
        assert_eq!(token.what.as_deref(), Some("area.rq_area_token"));
        assert!(token.matches(&failed("area.rq_area_token", Answer::Value(0), Answer::Value(1 << 48))));
        assert!(!token.matches(&failed("area.rq_area_token", Answer::Value(0), Answer::Value(1 << 47))));
        assert!(!token.matches(&failed("area.rq_area_len", Answer::Value(0), Answer::Value(1 << 48))));
        assert!(!token.matches(&CaseResult::Failed(Failure::new(
            "area.rq_area_token: expected 0x0 (0), kernel wrote 0x1000000000000 (281474976710656)"
        ))));
    }

    #[test]
    fn patterns_that_say_nothing_checkable_are_refused() {
        for bad in [
            "o",
            "kernel returned",
            "expected EINVAL kernel returned EFAULT",
            "kernel said EFAULT",
            "x: kernel wrote 1 (2)",
        ] {
            assert!(ObservedPattern::parse(bad).is_err(), "{bad}");
        }
        let p = ObservedPattern::parse("CQE #1 res: kernel posted return 5").expect("parses");
        assert!(p.matches(&failed("CQE #1 res", Answer::Value(0), Answer::Value(5))));
    }

    #[test]
    fn status_and_message_follow_the_kind() {
        let f = failed("errno/result", Answer::Errno("EINVAL".into()), Answer::Success(Some(0)));
        let x = CaseResult::Xfail { deviation: "r".into(), link: Some("l".into()), result: Box::new(f.clone()) };
        assert_eq!((x.status(), x.to_string().as_str()), (Some(Status::Xfail), "known deviation: r (l); observed: m"));
        let s = CaseResult::KernelSplat {
            lines: vec!["BUG: x".into()],
            during: None,
            result: Box::new(f),
            kinds: vec![crate::model::SplatKind::Bug],
        };
        assert_eq!(
            (s.status(), s.to_string().as_str()),
            (Some(Status::Fail), "m; kernel splat during the case: BUG: x")
        );
        let t = CaseResult::TimedOut { after_s: 30.0, stuck: None };
        assert_eq!(t.to_string(), "timed out after 30 s; killed");
        assert!(CaseResult::Interrupted.is_harness_error() && !t.is_harness_error());
        let back: CaseResult = serde_json::from_str(&serde_json::to_string(&s).expect("ser")).expect("de");
        assert_eq!(back, s);
    }
}
