//! What every report says about a case's typed result beyond its status and message: the
//! kind, where it failed and the two values of a failed check.

use crate::model::{CaseReport, CaseResult};

/// The result's kind and, when it has them, its structured facts, in one line:
/// `failed at step 3, assertion #2: errno/result: expected EINVAL, observed success (0)`,
/// `timed_out after 30 s`, `kernel_splat: BUG: ...`. `None` for a pass, a skip, or a report
/// that carries no typed result.
pub fn detail(c: &CaseReport) -> Option<String> {
    Some(match c.typed_result() {
        CaseResult::Untyped | CaseResult::Pass | CaseResult::CanFail { .. } | CaseResult::Skipped { .. } => {
            return None
        }
        CaseResult::Xfail { result, .. } | CaseResult::FailedDifferently { result, .. } => {
            let inner = CaseReport { result: *result, ..CaseReport::new(&c.id) };
            format!("{}: {}", c.result.kind(), detail(&inner).unwrap_or_else(|| inner.result.kind().into()))
        }
        CaseResult::Failed(f) => {
            let mut s = String::from("failed");
            if let Some(n) = f.step {
                s.push_str(&format!(" at step {n}"));
            }
            if let Some(n) = f.assertion {
                s.push_str(&format!(", assertion #{n}"));
            }
            if let Some(n) = f.inverted_held {
                s.push_str(&format!(" (inverted assertion #{n} held)"));
            }
            if let Some(m) = &f.mismatch {
                s.push_str(&format!(": {}: expected {}, observed {}", m.what, m.expected, m.observed));
            }
            s
        }
        CaseResult::TimedOut { after_s, stuck: None } => format!("timed_out after {after_s} s"),
        CaseResult::TimedOut { after_s, stuck: Some(_) } => format!("timed_out after {after_s} s, stuck in the kernel"),
        CaseResult::KernelSplat { lines, kinds, .. } => match kinds.first() {
            Some(k) => format!("kernel_splat ({k}): {}", lines.first().map(String::as_str).unwrap_or("")),
            None => format!("kernel_splat: {}", lines.first().map(String::as_str).unwrap_or("")),
        },
        CaseResult::Leak { objects, .. } => {
            let mut s = format!("leak: {} object(s)", objects.len());
            for o in objects.iter().take(3) {
                s.push_str(&format!("; {o}: {}", o.backtrace.join(" <- ")));
            }
            s
        }
        r => r.kind().to_string(),
    })
}

/// The kernel splat lines to quote for a case: the typed result's, or (an untyped report) the
/// splat lines of its kernel log.
pub fn splat_lines(c: &CaseReport) -> Vec<&String> {
    match c.result.splat_lines() {
        [] => c.kernel_log.iter().filter(|l| crate::model::is_splat(l)).collect(),
        lines => lines.iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;

    /// A report written before results were typed loads; its result reads from its status.
    #[test]
    fn untyped_reports_load_and_new_ones_carry_the_kind() {
        let probe = serde_json::to_string(&crate::model::Probe::default()).expect("probe");
        let case = r#"{"id":"a.b","file":"f","area":"a","about":"","spec":[],"topology":null,"status":"fail",
            "message":"harness error: mmap","log":[],"kernel_log":[],"duration_s":0.5,"harness_error":true}"#;
        let old = format!(
            r#"{{"runs":[{{"target":"host","probe":{probe},"topologies":[],"cases":[{case}],"duration_s":1.0,"aborted":null,
            "timings":[["kvm",1.0]]}}]}}"#
        );
        let r = crate::report::parse_json(&old, "old").expect("an old report loads");
        let c = &r.runs[0].cases[0];
        assert_eq!((c.status, &c.result), (Status::Fail, &CaseResult::Untyped));
        assert!(c.typed_result().is_harness_error());
        assert_eq!(r.runs[0].timings.kvm, Some(true));
        let mut c = c.clone();
        c.set_result(CaseResult::TimedOut { after_s: 30.0, stuck: None });
        assert_eq!((c.status, c.message.as_str()), (Status::Fail, "timed out after 30 s; killed"));
        assert_eq!(detail(&c).as_deref(), Some("timed_out after 30 s"));
        let text = serde_json::to_string(&c).expect("ser");
        assert!(
            text.contains(r#""status":"fail""#) && text.contains(r#""result":{"kind":"timed_out","after_s":30.0}"#)
        );
    }

    /// JUnit and KTAP name the kind: a timeout's failure type, a harness error as an error.
    #[test]
    fn reports_render_the_kind() {
        let mut run = crate::model::RunReport::new("host", Default::default(), &[]);
        let mut t = CaseReport::new("a.timeout");
        t.set_result(CaseResult::TimedOut { after_s: 5.0, stuck: None });
        let mut h = CaseReport::new("a.harness");
        h.set_result(CaseResult::HarnessError { message: "mmap: ENOMEM".into() });
        run.cases = vec![t, h];
        let x = crate::report::junit(&[&run]).expect("junit");
        assert!(x.contains("type=\"timed_out\""), "{x}");
        assert!(x.contains("<error") && x.contains("type=\"harness_error\""), "{x}");
        let k = crate::report::ktap(&run);
        assert!(k.contains("# a.timeout: result: timed_out after 5 s\n"), "{k}");
    }
}
