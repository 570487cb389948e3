//! From a child's outcome to a case's status: known deviations (xfail / xpass) and kernel
//! splats printed while the case ran (the self-check verdict is [`super::selfcheck`]'s).

use crate::case::Case;
use crate::model::{is_splat, CaseReport, Outcome, Probe, Status};

/// Fills `cr` from the outcome and the kernel log lines printed meanwhile; `deviations`:
/// apply the case's known deviations (not for a self-check run with an inverted assertion).
pub fn judge(case: &Case, probe: &Probe, deviations: bool, o: Outcome, kernel_log: Vec<String>, cr: &mut CaseReport) {
    cr.status = o.status;
    cr.message = o.message;
    cr.log = o.log;
    cr.kernel_specific = o.kernel_specific;
    cr.observed = o.observed;
    cr.harness_error = o.harness_error;
    if deviations {
        apply_deviation(case, probe, cr);
    }
    cr.kernel_log = kernel_log;
    if let Some(first) = cr.kernel_log.iter().find(|l| is_splat(l)).cloned() {
        cr.status = Status::Fail;
        cr.message = if cr.message.is_empty() {
            format!("kernel splat during the case: {first}")
        } else {
            format!("{}; kernel splat during the case: {first}", cr.message)
        };
    }
}

/// Turns a result into xfail/xpass when the case declares a known deviation for this kernel.
pub fn apply_deviation(case: &Case, probe: &Probe, cr: &mut CaseReport) {
    let Some(d) = case.def.known_deviation.iter().find(|d| probe.version_in(d.min.as_deref(), d.max.as_deref())) else {
        return;
    };
    let link = d.link.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
    match cr.status {
        Status::Fail if d.observed.as_deref().is_some_and(|o| !cr.message.contains(o)) => {
            cr.message = format!(
                "failed differently from the known deviation (expected to see `{}`): {}",
                d.observed.as_deref().unwrap_or(""),
                cr.message
            );
        }
        Status::Fail => {
            cr.status = Status::Xfail;
            cr.message = format!("known deviation: {}{link}; observed: {}", d.reason, cr.message);
        }
        Status::Pass => {
            cr.status = Status::Xpass;
            cr.message = format!("known deviation no longer reproduces: {}{link}", d.reason);
        }
        _ => {}
    }
}
