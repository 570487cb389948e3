//! Checks that cannot fail by construction are rejected: an absence check (`expect_no_cqe`)
//! on a user_data that no earlier step can post a CQE for (no RECV_ZC submitted with it, no
//! event descriptor naming it) passes whatever the kernel does.

use super::{Case, LoadError, Value};

/// The user_data values earlier steps can make the kernel post CQEs with; None when a step
/// posts with a value known only at run time (any value may then be awaited).
fn sources(case: &Case, before: usize) -> Option<Vec<u64>> {
    let mut v = Vec::new();
    for step in &case.def.steps[..before] {
        let s = &step.value;
        if let Some(r) = &s.recv_zc {
            v.push(r.user_data.unwrap_or(1));
        }
        if let Some(ev) = s.register.as_ref().and_then(|r| r.event.as_ref()) {
            match ev.get("user_data").map(|u| &u.value) {
                Some(Value::UInt(u)) => v.push(*u),
                Some(_) => return None,
                None => v.push(0),
            }
        }
    }
    Some(v)
}

pub(super) fn check(case: &Case) -> Vec<LoadError> {
    let mut errs = Vec::new();
    for (i, step) in case.def.steps.iter().enumerate() {
        let Some(x) = &step.value.expect_no_cqe else { continue };
        let Some(srcs) = sources(case, i) else { continue };
        let vacuous = match x.user_data {
            Some(u) => !srcs.contains(&u),
            None => srcs.is_empty(),
        };
        if vacuous {
            let what = x.user_data.map_or("any CQE".to_string(), |u| format!("a CQE with user_data {u:#x}"));
            errs.push(LoadError {
                file: case.file.clone(),
                line: step.line,
                column: step.column,
                msg: format!(
                    "expect_no_cqe waits for {what}, which no earlier step can make the kernel post \
                     (no recv_zc with that user_data, no event descriptor naming it): it cannot fail"
                ),
            });
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn errors(yaml: &str) -> Vec<String> {
        match crate::case::load_str(Path::new("t.yaml"), yaml) {
            Ok(_) => vec![],
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    const HEAD: &str = "id: t.x\narea: drain\nabout: a\nspec: [x]\nsteps:\n";

    #[test]
    fn absence_of_what_nothing_submitted_is_rejected() {
        let e = errors(&format!("{HEAD}  - register: {{}}\n  - expect_no_cqe: {{ user_data: 7 }}\n"));
        assert!(e.iter().any(|m| m.contains("t.yaml:7:") && m.contains("cannot fail")), "{e:?}");
        let e = errors(&format!("{HEAD}  - register: {{}}\n  - expect_no_cqe: {{}}\n"));
        assert!(e.iter().any(|m| m.contains("cannot fail")), "{e:?}");
    }

    #[test]
    fn absence_of_a_submitted_request_or_event_is_fine() {
        let ok = format!("{HEAD}  - register: {{}}\n  - connect: {{}}\n  - recv_zc: {{}}\n  - expect_no_cqe: {{}}\n");
        assert!(errors(&ok).iter().all(|m| !m.contains("cannot fail")), "{:?}", errors(&ok));
        let ev = format!(
            "{HEAD}  - register: {{ event: {{ user_data: 0xfeed, type_mask: [COPY] }} }}\n  - expect_no_cqe: {{ user_data: 0xfeed }}\n"
        );
        assert!(errors(&ev).iter().all(|m| !m.contains("cannot fail")), "{:?}", errors(&ev));
    }
}
