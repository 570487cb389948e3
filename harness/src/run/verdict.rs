//! From a child's outcome to a case's result: known deviations (xfail / xpass, decided on the
//! typed failure) and kernel splats printed while the case ran (the self-check verdict is
//! [`super::selfcheck`]'s).

use crate::case::Case;
use crate::model::{splat_kind, CaseReport, CaseResult, DeviationPattern, Outcome, Probe, SplatKind};

/// Fills `cr` from the outcome and the kernel log lines printed meanwhile; `deviations`:
/// apply the case's known deviations (not for a self-check run with an inverted assertion).
pub fn judge(case: &Case, probe: &Probe, deviations: bool, o: Outcome, kernel_log: Vec<String>, cr: &mut CaseReport) {
    cr.log = o.log;
    cr.kernel_specific = o.kernel_specific;
    cr.observed = o.observed;
    let mut result = o.result;
    let (lines, kinds): (Vec<String>, Vec<SplatKind>) =
        kernel_log.iter().filter_map(|l| splat_kind(l).map(|k| (l.clone(), k))).unzip();
    if !lines.is_empty() {
        result = CaseResult::KernelSplat { lines, during: None, result: Box::new(result), kinds };
    }
    if deviations {
        result = apply_deviation(case, probe, result);
    }
    cr.kernel_log = kernel_log;
    cr.set_result(result);
}

/// Adds splat `lines` the case did not print while it ran (its teardown, after it ended) to a
/// result already judged; `note` goes into its kernel log before them.
pub fn late_splat(case: &Case, probe: &Probe, cr: &mut CaseReport, note: &str, lines: &[String]) {
    let new_kinds: Vec<SplatKind> = lines.iter().filter_map(|l| splat_kind(l)).collect();
    let result = match cr.result.clone() {
        CaseResult::KernelSplat { lines: mut before, during, result, mut kinds } => {
            before.extend(lines.iter().cloned());
            kinds.extend(new_kinds);
            CaseResult::KernelSplat { lines: before, during, result, kinds }
        }
        other => {
            // A pass its deviation called xpass is a pass again under the splat, which the
            // deviation then judges.
            let other = if matches!(other, CaseResult::Xpass { .. }) { CaseResult::Pass } else { other };
            let splat = CaseResult::KernelSplat {
                lines: lines.to_vec(),
                during: None,
                result: Box::new(other),
                kinds: new_kinds,
            };
            apply_deviation(case, probe, splat)
        }
    };
    cr.kernel_log.push(note.to_string());
    cr.kernel_log.extend(lines.iter().cloned());
    cr.set_result(result);
}

/// Turns a result into xfail/xpass when the case declares a known deviation for this kernel:
/// a kernel failure is the deviation when it shows what the deviation's `observed:` says
/// ([`DeviationPattern`]: the failed check's expected and observed values, or the splat).
/// A deviation about answers decides on what the case found besides a splat, and the splat
/// still fails the case; only a `kernel splat ...` deviation stands for a splat.
pub fn apply_deviation(case: &Case, probe: &Probe, result: CaseResult) -> CaseResult {
    let Some(d) = case.def.known_deviation.iter().find(|d| probe.version_in(d.min.as_deref(), d.max.as_deref())) else {
        return result;
    };
    let pattern = d.observed.as_deref().map(DeviationPattern::parse);
    let about_splat = matches!(pattern, Some(Ok(DeviationPattern::Splat(_))));
    let (deviation, link) = (d.reason.clone(), d.link.clone());
    match result {
        CaseResult::KernelSplat { lines, during, result, kinds } if !about_splat => {
            CaseResult::KernelSplat { lines, during, result: Box::new(apply_deviation(case, probe, *result)), kinds }
        }
        CaseResult::Pass => CaseResult::Xpass { deviation, link },
        r if r.is_kernel_failure() || matches!(r, CaseResult::KernelSplat { .. }) => match (&d.observed, pattern) {
            (Some(text), Some(p)) if !p.as_ref().is_ok_and(|p| p.matches(&r)) => {
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
        let timeout = apply_deviation(&efault, &probe, CaseResult::TimedOut { after_s: 1.0, stuck: None });
        assert!(matches!(timeout, CaseResult::FailedDifferently { .. }), "{timeout:?}");
        let harness = CaseResult::HarnessError { message: "mmap".into() };
        assert_eq!(apply_deviation(&efault, &probe, harness.clone()), harness);
        let success = case("expected EINVAL, kernel returned success");
        let r = apply_deviation(&success, &probe, failed(errno("EINVAL"), Answer::Success(Some(0))));
        assert_eq!(r.to_string(), "known deviation: r; observed: step 1: expected EINVAL, ...");
        let old = Probe { kernel_version: Some((6, 19, 0)), ..Default::default() };
        assert_eq!(apply_deviation(&success, &old, CaseResult::Pass), CaseResult::Pass);
    }

    fn splat(function: &str, result: CaseResult) -> CaseResult {
        let line = format!("WARNING: include/net/netdev_lock.h:72 at {function}+0x1a4/0x1c0, CPU#1: zc/288");
        CaseResult::KernelSplat {
            lines: vec![line],
            during: None,
            result: Box::new(result),
            kinds: vec![crate::model::SplatKind::Warning],
        }
    }

    /// A `kernel splat KIND in FUNCTION` deviation stands for that splat on a case that otherwise
    /// passed, and for nothing else; a deviation about answers never hides a splat.
    #[test]
    fn splat_deviations_decide_on_kind_and_function() {
        let probe = Probe { kernel_version: Some((7, 2, 0)), ..Default::default() };
        let warn = case("kernel splat warning in netdev_queue_get_dma_dev");
        let r = apply_deviation(&warn, &probe, splat("netdev_queue_get_dma_dev", CaseResult::Pass));
        assert_eq!(r.status(), Some(Status::Xfail), "{r:?}");
        let r = apply_deviation(&warn, &probe, splat("netdev_queue_get_dma_dev_other", CaseResult::Pass));
        assert!(matches!(r, CaseResult::FailedDifferently { .. }), "{r:?}");
        let errno = |e: &str| Answer::Errno(e.into());
        let both = splat("netdev_queue_get_dma_dev", failed(errno("EINVAL"), errno("EFAULT")));
        assert!(matches!(apply_deviation(&warn, &probe, both), CaseResult::FailedDifferently { .. }));
        assert_eq!(apply_deviation(&warn, &probe, CaseResult::Pass).status(), Some(Status::Xpass));
        let bug = case("kernel splat bug in netdev_queue_get_dma_dev");
        let r = apply_deviation(&bug, &probe, splat("netdev_queue_get_dma_dev", CaseResult::Pass));
        assert!(matches!(r, CaseResult::FailedDifferently { .. }), "{r:?}");
        // An answer deviation applies under the splat, which still fails the case.
        let efault = case("kernel returned EFAULT");
        let r = apply_deviation(&efault, &probe, splat("f", failed(errno("EINVAL"), errno("EFAULT"))));
        let CaseResult::KernelSplat { result, .. } = &r else { panic!("{r:?}") };
        assert_eq!(result.status(), Some(Status::Xfail));
        assert_eq!(r.status(), Some(Status::Fail));
    }

    /// A splat printed after the case ended (its teardown) fails a result already judged, and
    /// adds to one that already had a splat; a splat deviation still decides on it.
    #[test]
    fn a_late_splat_fails_the_case_that_ended() {
        let probe = Probe { kernel_version: Some((6, 19, 0)), ..Default::default() };
        let c = case("kernel returned EFAULT");
        let line = "WARNING: CPU: 1 PID: 9 at io_uring/zcrx.c:662 io_zcrx_ifq_free+0x9/0x90".to_string();
        let mut cr = crate::run::blank_report(&c);
        cr.set_result(CaseResult::Pass);
        late_splat(&c, &probe, &mut cr, "note", std::slice::from_ref(&line));
        assert_eq!(cr.status, Status::Fail);
        assert_eq!(cr.kernel_log, vec!["note".to_string(), line.clone()]);
        let CaseResult::KernelSplat { lines, result, .. } = &cr.result else { panic!("{:?}", cr.result) };
        assert_eq!((lines.as_slice(), result.as_ref()), (std::slice::from_ref(&line), &CaseResult::Pass));
        late_splat(&c, &probe, &mut cr, "note", &["BUG: KASAN: use-after-free".to_string()]);
        let CaseResult::KernelSplat { lines, kinds, .. } = &cr.result else { panic!("{:?}", cr.result) };
        assert_eq!((lines.len(), kinds.len()), (2, 2));
        let in_range = Probe { kernel_version: Some((7, 2, 0)), ..Default::default() };
        let warn = case("kernel splat warning in netdev_queue_get_dma_dev");
        let mut cr = crate::run::blank_report(&warn);
        cr.set_result(CaseResult::Xpass { deviation: "r".into(), link: None });
        let CaseResult::KernelSplat { lines, .. } = splat("netdev_queue_get_dma_dev", CaseResult::Pass) else {
            unreachable!()
        };
        late_splat(&warn, &in_range, &mut cr, "note", &lines);
        assert_eq!(cr.status, Status::Xfail, "{:?}", cr.result);
    }

    /// A receive that stalls is typed (`kernel posted nothing`), so a deviation can name it.
    #[test]
    fn stall_deviations_decide_on_the_typed_failure() {
        let probe = Probe { kernel_version: Some((7, 2, 0)), ..Default::default() };
        let stall = case("final CQE: kernel posted nothing");
        let nothing = |what: &str| {
            let m =
                Mismatch { what: what.into(), expected: Answer::Text("res=-ENOMEM".into()), observed: Answer::Nothing };
            CaseResult::Failed(Failure::mismatch(m, "timed out"))
        };
        assert_eq!(apply_deviation(&stall, &probe, nothing("final CQE")).status(), Some(Status::Xfail));
        let r = apply_deviation(&stall, &probe, nothing("next data CQE"));
        assert!(matches!(r, CaseResult::FailedDifferently { .. }), "{r:?}");
        let r = apply_deviation(&stall, &probe, CaseResult::Failed(Failure::new("timed out waiting")));
        assert!(matches!(r, CaseResult::FailedDifferently { .. }), "{r:?}");
    }

    #[test]
    fn an_observed_that_names_no_check_does_not_load() {
        let text = "id: a.b\narea: ctrl\nabout: x\nspec: [C3]\nknown_deviation:\n  - { reason: r, observed: boom }\n\
                    steps:\n  - register: {}\n    expect: { errno: EINVAL }\n";
        let e = crate::case::load_str(std::path::Path::new("t.yaml"), text).expect_err("refused");
        assert!(e.iter().any(|e| e.msg.contains("known_deviation.observed")), "{e:?}");
    }
}
