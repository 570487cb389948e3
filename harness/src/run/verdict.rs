//! From a child's outcome to a case's result: known deviations (xfail / xpass, decided on the
//! typed failure) and kernel splats printed while the case ran (the self-check verdict is
//! [`super::selfcheck`]'s).

use crate::case::Case;
use crate::model::{splat_kind, CaseReport, CaseResult, ObservedPattern, Outcome, Probe, SplatKind};

/// Fills `cr` from the outcome and the kernel log lines printed meanwhile; `deviations`:
/// apply the case's known deviations (not for a self-check run with an inverted assertion).
pub fn judge(case: &Case, probe: &Probe, deviations: bool, o: Outcome, kernel_log: Vec<String>, cr: &mut CaseReport) {
    cr.log = o.log;
    cr.kernel_specific = o.kernel_specific;
    cr.observed = o.observed;
    let mut result = o.result;
    if deviations {
        result = apply_deviation(case, probe, result);
    }
    let (lines, kinds): (Vec<String>, Vec<SplatKind>) =
        kernel_log.iter().filter_map(|l| splat_kind(l).map(|k| (l.clone(), k))).unzip();
    if !lines.is_empty() {
        result = CaseResult::KernelSplat { lines, during: None, result: Box::new(result), kinds };
    }
    cr.kernel_log = kernel_log;
    cr.set_result(result);
}

/// Turns a result into xfail/xpass when the case declares a known deviation for this kernel:
/// a kernel failure is the deviation when it shows what the deviation's `observed:` says
/// ([`ObservedPattern`], matched against the failed check's expected and observed values).
pub fn apply_deviation(case: &Case, probe: &Probe, result: CaseResult) -> CaseResult {
    let Some(d) = case.def.known_deviation.iter().find(|d| probe.version_in(d.min.as_deref(), d.max.as_deref())) else {
        return result;
    };
    let (deviation, link) = (d.reason.clone(), d.link.clone());
    match result {
        CaseResult::Pass => CaseResult::Xpass { deviation, link },
        r if r.is_kernel_failure() => match &d.observed {
            Some(text) if !ObservedPattern::parse(text).is_ok_and(|p| p.matches(&r)) => {
                CaseResult::FailedDifferently { expected: text.clone(), result: Box::new(r) }
            }
            _ => CaseResult::Xfail { deviation, link, result: Box::new(r) },
        },
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Answer, Failure, Mismatch, Status};

    fn case(observed: &str) -> Case {
        let text = format!(
            "id: a.b\narea: ctrl\nabout: x\nspec: [C3]\nrequires: {{ features: [nodev], topology: [nodev] }}\n\
             known_deviation:\n  - {{ reason: r, min: \"7.1\", max: \"7.3\", observed: \"{observed}\" }}\n\
             steps:\n  - register: {{}}\n    expect: {{ errno: EINVAL }}\n"
        );
        let mut cases = crate::case::load_str(std::path::Path::new("t.yaml"), &text).expect("loads");
        cases.remove(0)
    }

    fn failed(expected: Answer, observed: Answer) -> CaseResult {
        let m = Mismatch { what: "errno/result".into(), expected, observed };
        CaseResult::Failed(Failure { step: Some(1), ..Failure::mismatch(m, "step 1: expected EINVAL, ...") })
    }

    /// The catalogue's `observed:` forms decide on the failed check's values, on a kernel in
    /// the deviation's range only.
    #[test]
    fn deviations_decide_on_the_typed_failure() {
        let probe = Probe { kernel_version: Some((7, 2, 0)), ..Default::default() };
        let efault = case("kernel returned EFAULT");
        let errno = |e: &str| Answer::Errno(e.into());
        let r = apply_deviation(&efault, &probe, failed(errno("EINVAL"), errno("EFAULT")));
        assert_eq!(r.status(), Some(Status::Xfail), "{r:?}");
        let r = apply_deviation(&efault, &probe, failed(errno("EINVAL"), errno("EPERM")));
        assert!(matches!(r, CaseResult::FailedDifferently { .. }), "{r:?}");
        assert_eq!(apply_deviation(&efault, &probe, CaseResult::Pass).status(), Some(Status::Xpass));
        let timeout = apply_deviation(&efault, &probe, CaseResult::TimedOut { after_s: 1.0 });
        assert!(matches!(timeout, CaseResult::FailedDifferently { .. }), "{timeout:?}");
        let harness = CaseResult::HarnessError { message: "mmap".into() };
        assert_eq!(apply_deviation(&efault, &probe, harness.clone()), harness);
        let success = case("expected EINVAL, kernel returned success");
        let r = apply_deviation(&success, &probe, failed(errno("EINVAL"), Answer::Success(Some(0))));
        assert_eq!(r.to_string(), "known deviation: r; observed: step 1: expected EINVAL, ...");
        let old = Probe { kernel_version: Some((6, 19, 0)), ..Default::default() };
        assert_eq!(apply_deviation(&success, &old, CaseResult::Pass), CaseResult::Pass);
    }

    #[test]
    fn an_observed_that_names_no_check_does_not_load() {
        let text = "id: a.b\narea: ctrl\nabout: x\nspec: [C3]\nknown_deviation:\n  - { reason: r, observed: boom }\n\
                    steps:\n  - register: {}\n    expect: { errno: EINVAL }\n";
        let e = crate::case::load_str(std::path::Path::new("t.yaml"), text).expect_err("refused");
        assert!(e.iter().any(|e| e.msg.contains("known_deviation.observed")), "{e:?}");
    }
}
