//! Checks that cannot fail by construction are rejected:
//! - an absence check (`expect_no_cqe`) on a user_data that no earlier step can post a CQE for
//!   (no RECV_ZC submitted with it, no event descriptor naming it) passes whatever the kernel does;
//! - an expectation that can never be applied: a per-kernel `expect.kernels` entry or a
//!   `known_deviation` whose kernel range is empty, lies outside the kernels the case runs on
//!   (`requires.kernel`), or (for `expect.kernels`) is covered by an earlier entry, which is the
//!   one taken;
//! - a case whose only assertions are the implicit "must succeed" of its set-up steps.

use super::{Action, Case, LoadError, Step, Value};
use crate::model::probe::version_range as range;

type Version = (u32, u32, u32);

fn empty(r: (Version, Version)) -> bool {
    r.0 > r.1
}

fn disjoint(a: (Version, Version), b: (Version, Version)) -> bool {
    a.1 < b.0 || b.1 < a.0
}

fn covers(outer: (Version, Version), inner: (Version, Version)) -> bool {
    outer.0 <= inner.0 && inner.1 <= outer.1
}

/// Whether a step checks something beyond "the set-up call succeeded": a call with an
/// `expect`, an `expect_*`/`drain_data` step, a counter, a flush, a device or page-pool read.
fn checks_beyond_setup(s: &Step) -> bool {
    s.asserts() && !(s.action.kind().call && s.expect.is_none())
}

/// Where a dotted path of the case file is, or `or`.
pub(super) type Locate<'a> = &'a dyn Fn(&str, (u64, u64)) -> (u64, u64);

fn never_applied(case: &Case, at: Locate, or: (u64, u64)) -> Vec<LoadError> {
    let mut errs = Vec::new();
    let mut push = |(line, column): (u64, u64), msg: String| {
        errs.push(LoadError { file: case.file.clone(), line, column, msg });
    };
    let d = &case.def;
    let runs_on = d.requires.kernel.as_ref().map_or(range(None, None), |k| range(k.min.as_deref(), k.max.as_deref()));
    let why = |r: (Version, Version)| {
        if empty(r) {
            Some("its kernel range is empty (min above max)")
        } else if disjoint(r, runs_on) {
            Some("the case never runs on its kernel range (requires.kernel)")
        } else {
            None
        }
    };
    for (i, k) in d.known_deviation.iter().enumerate() {
        if let Some(why) = why(range(k.min.as_deref(), k.max.as_deref())) {
            let msg = format!("known_deviation {i} can never apply: {why}");
            push(at(&format!("known_deviation.{i}"), or), msg);
        }
    }
    for (i, step) in d.steps.iter().enumerate() {
        let Some(e) = &step.value.expect else { continue };
        // Each earlier entry's range and page condition (Some: it holds on one page size only).
        let mut earlier: Vec<((Version, Version), Option<u64>)> = Vec::new();
        for (j, k) in e.kernels.iter().enumerate() {
            let r = range(k.min.as_deref(), k.max.as_deref());
            let why = why(r).map(str::to_string).or_else(|| {
                earlier.iter().position(|(o, p)| covers(*o, r) && p.is_none()).map(|o| {
                    format!("entry {o} covers its whole range and the first entry that holds the kernel is taken")
                })
            });
            if let Some(why) = why {
                let msg = format!("expect.kernels entry {j} can never apply: {why}");
                push(at(&format!("steps.{i}.expect.kernels.{j}"), (step.line, step.column)), msg);
            }
            earlier.push((r, k.page.or(k.page_over)));
        }
    }
    errs
}

/// The user_data values earlier steps can make the kernel post CQEs with; None when a step
/// posts with a value known only at run time (any value may then be awaited).
fn sources(case: &Case, before: usize) -> Option<Vec<u64>> {
    let mut v = Vec::new();
    for step in &case.def.steps[..before] {
        let s = &step.value;
        match &s.action {
            Action::RecvZc(r) => v.push(r.user_data.unwrap_or(1)),
            Action::Register(r) => match r.event.as_ref().map(|ev| ev.get("user_data").map(|u| &u.value)) {
                Some(Some(Value::UInt(u))) => v.push(*u),
                Some(Some(_)) => return None,
                Some(None) => v.push(0),
                None => {}
            },
            _ => {}
        }
    }
    Some(v)
}

/// `steps_at` is where the file's `steps` key is.
pub(super) fn check(case: &Case, at: Locate, steps_at: (u64, u64)) -> Vec<LoadError> {
    let mut errs = never_applied(case, at, steps_at);
    let steps = &case.def.steps;
    if steps.iter().any(|s| s.value.asserts()) && !steps.iter().any(|s| checks_beyond_setup(&s.value)) {
        let (line, column) = steps_at;
        errs.push(LoadError {
            file: case.file.clone(),
            line,
            column,
            msg: "steps: no assertion after the set-up: every check is the implicit \"must succeed\" of a set-up \
                  call (give one an `expect`, or add an expect_* step)"
                .into(),
        });
    }
    for (i, step) in case.def.steps.iter().enumerate() {
        let Action::ExpectNoCqe(x) = &step.value.action else { continue };
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
        let e = errors(&format!(
            "{HEAD}  - register: {{}}\n  - expect_no_cqe: {{ user_data: 7, until: {{ nop: true }} }}\n"
        ));
        assert!(e.iter().any(|m| m.contains("t.yaml:7:") && m.contains("cannot fail")), "{e:?}");
        let e = errors(&format!("{HEAD}  - register: {{}}\n  - expect_no_cqe: {{ until: {{ nop: true }} }}\n"));
        assert!(e.iter().any(|m| m.contains("cannot fail")), "{e:?}");
    }

    #[test]
    fn absence_of_a_submitted_request_or_event_is_fine() {
        let ok = format!("{HEAD}  - register: {{}}\n  - connect: {{}}\n  - recv_zc: {{}}\n  - expect_no_cqe: {{ until: {{ send: 1 }} }}\n");
        assert!(errors(&ok).iter().all(|m| !m.contains("cannot fail")), "{:?}", errors(&ok));
        let ev = format!(
            "{HEAD}  - register: {{ event: {{ user_data: 0xfeed, type_mask: [COPY] }} }}\n  - expect_no_cqe: {{ user_data: 0xfeed, until: {{ nop: true }} }}\n"
        );
        assert!(errors(&ev).iter().all(|m| !m.contains("cannot fail")), "{:?}", errors(&ev));
    }

    #[test]
    fn a_case_with_only_setup_checks_is_rejected() {
        let e = errors(&format!("{HEAD}  - register: {{}}\n  - connect: {{}}\n  - send: {{ bytes: 4 }}\n"));
        assert!(e.iter().any(|m| m.contains("t.yaml:5:") && m.contains("no assertion after the set-up")), "{e:?}");
        let ok = format!("{HEAD}  - register: {{}}\n    expect: {{ errno: EINVAL }}\n");
        assert!(errors(&ok).is_empty(), "{:?}", errors(&ok));
    }

    #[test]
    fn an_expectation_that_never_applies_is_rejected() {
        let kernels = |entries: &str| {
            format!(
                "id: t.x\narea: drain\nabout: a\nspec: [x]\nrequires: {{ kernel: {{ min: \"7.2\" }} }}\nsteps:\n  \
                 - register: {{}}\n    expect:\n      errno: EINVAL\n      kernels:\n{entries}"
            )
        };
        let e = errors(&kernels("        - { max: \"7.1\", errno: EFAULT, why: w }\n"));
        assert!(e.iter().any(|m| m.contains("t.yaml:11:") && m.contains("never runs")), "{e:?}");
        let e = errors(&kernels("        - { min: \"7.3\", max: \"7.2\", errno: EFAULT, why: w }\n"));
        assert!(e.iter().any(|m| m.contains("empty")), "{e:?}");
        let e = errors(&kernels(
            "        - { min: \"7.2\", errno: EFAULT, why: w }\n        - { min: \"7.3\", max: \"7.3\", errno: ENOENT, why: w }\n",
        ));
        assert!(e.iter().any(|m| m.contains("t.yaml:12:") && m.contains("entry 0 covers")), "{e:?}");
        let ok = kernels(
            "        - { max: \"7.2\", errno: EFAULT, why: w }\n        - { min: \"7.3\", errno: ENOENT, why: w }\n",
        );
        assert!(errors(&ok).is_empty(), "{:?}", errors(&ok));
        let dev = "id: t.x\narea: drain\nabout: a\nspec: [x]\nrequires: { kernel: { max: \"7.1\" } }\n\
                   known_deviation:\n  - { min: \"7.2\", reason: r, observed: o }\nsteps:\n  - register: {}\n    expect: { errno: EINVAL }\n";
        let e = errors(dev);
        assert!(e.iter().any(|m| m.contains("t.yaml:7:") && m.contains("known_deviation 0")), "{e:?}");
    }

    /// An entry that holds on one page size only covers no later entry; a later entry behind
    /// one for every page size still never applies; a page that is no page size is refused.
    #[test]
    fn page_size_pins_cover_only_their_page_size() {
        let kernels = |entries: &str| {
            format!("{HEAD}  - register: {{}}\n    expect:\n      errno: EINVAL\n      kernels:\n{entries}")
        };
        let ok = kernels(
            "        - { page: 16384, errno: ERANGE, why: w }\n        - { min: \"7.2\", errno: EFAULT, why: w }\n",
        );
        assert!(errors(&ok).is_empty(), "{:?}", errors(&ok));
        let ok = kernels("        - { page_over: 8192, errno: ERANGE, why: w }\n        - { errno: EFAULT, why: w }\n");
        assert!(errors(&ok).is_empty(), "{:?}", errors(&ok));
        let e = errors(&kernels("        - { min: \"7.2\", errno: EFAULT, why: w }\n        - { min: \"7.3\", page: 16384, errno: ERANGE, why: w }\n"));
        assert!(e.iter().any(|m| m.contains("entry 0 covers")), "{e:?}");
        let e = errors(&kernels("        - { page: 5000, errno: ERANGE, why: w }\n"));
        assert!(e.iter().any(|m| m.contains("page 5000 is not a page size")), "{e:?}");
    }
}
