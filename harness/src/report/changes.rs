//! "What changed" along a row of kernels (a matrix's columns, in the order given): for each
//! case, the kernels at which its result changes, i.e. its status, or the kernel-specific
//! expectation that applied (which is how a different errno or output value shows in a
//! passing case). The first entry is the first version where it changed.

use crate::model::{CaseReport, RunReport, Status};

use super::escape::one_line;

/// One case's result on one kernel, as far as "what changed" compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub status: Status,
    /// The kernel-specific expectations that applied ("[..7.2] why"), in order.
    pub special: Vec<String>,
}

impl Cell {
    fn of(c: &CaseReport) -> Cell {
        Cell { status: c.status, special: c.kernel_specific.clone() }
    }

    /// "pass", "pass [..7.2] why", "skip".
    pub fn render(&self) -> String {
        if self.special.is_empty() {
            self.status.word().to_string()
        } else {
            format!("{} {}", self.status.word(), self.special.join("; "))
        }
    }
}

/// A change of one case between two neighbouring kernels that both have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Index (into the runs) of the last kernel before the change and of the first after it.
    pub before: usize,
    pub after: usize,
    pub from: Cell,
    pub to: Cell,
}

/// The cases whose result changes along `runs`, each with its changes in kernel order.
/// A kernel that did not run the case at all (absent from its report) is passed over: the
/// change is reported between the kernels on either side of it.
pub fn what_changed(runs: &[&RunReport]) -> Vec<(String, Vec<Step>)> {
    let ids = super::case_ids(runs);
    let index = super::case_index(runs);
    let mut out = Vec::new();
    for id in ids {
        let mut last: Option<(usize, Cell)> = None;
        let mut steps = Vec::new();
        for (i, (r, ix)) in runs.iter().zip(&index).enumerate() {
            let Some(c) = ix.get(id).and_then(|&k| r.cases.get(k)) else { continue };
            let cell = Cell::of(c);
            if let Some((j, prev)) = &last {
                if *prev != cell {
                    steps.push(Step { before: *j, after: i, from: prev.clone(), to: cell.clone() });
                }
            }
            last = Some((i, cell));
        }
        if !steps.is_empty() {
            out.push((id.to_string(), steps));
        }
    }
    out
}

/// The "what changed" section printed under a matrix.
pub fn render(runs: &[&RunReport]) -> String {
    let changes = what_changed(runs);
    let labels: Vec<String> = runs.iter().map(|r| one_line(&r.target)).collect();
    let mut s = format!(
        "\nwhat changed along {} ({} case(s) change; first version where each changed, then any later change):\n",
        labels.join(" -> "),
        changes.len()
    );
    for (id, steps) in &changes {
        for (n, st) in steps.iter().enumerate() {
            let (head, when) = if n == 0 { (one_line(id), "first at") } else { (String::new(), "then at ") };
            s.push_str(&format!(
                "  {head:<48} {when} {:<16} ({} had: {}) now: {}\n",
                labels[st.after],
                labels[st.before],
                one_line(&st.from.render()),
                one_line(&st.to.render())
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: &str, cases: &[(&str, Status, &[&str])]) -> RunReport {
        let mut r = RunReport::new(target, Default::default(), &[]);
        for (id, st, special) in cases {
            let mut c = CaseReport::new(id);
            c.status = *st;
            c.kernel_specific = special.iter().map(|s| s.to_string()).collect();
            r.cases.push(c);
        }
        r
    }

    #[test]
    fn first_change_and_later_ones() {
        use Status::*;
        let old = "[..7.2] 7.2's RQ header";
        let runs = [
            run("debian:6.19", &[("a", Skip, &[]), ("b", Pass, &[old]), ("c", Pass, &[]), ("d", Pass, &[])]),
            run("debian:7.1", &[("a", Skip, &[]), ("b", Pass, &[old]), ("c", Pass, &[])]),
            run("debian:7.2", &[("a", Pass, &[]), ("b", Pass, &[old]), ("c", Pass, &[]), ("d", Pass, &[])]),
            run("debian:7.3", &[("a", Pass, &[]), ("b", Pass, &[]), ("c", Xfail, &[]), ("d", Pass, &[])]),
        ];
        let refs: Vec<&RunReport> = runs.iter().collect();
        let ch = what_changed(&refs);
        let ids: Vec<&str> = ch.iter().map(|(id, _)| id.as_str()).collect();
        // d never changes: its absence on 7.1 is not a change.
        assert_eq!(ids, ["a", "b", "c"]);
        let a = &ch[0].1;
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].before, a[0].after), (1, 2));
        assert_eq!((a[0].from.status, a[0].to.status), (Skip, Pass));
        // The same status with a different kernel-specific expectation is a change (an errno
        // or an output value changed).
        let b = &ch[1].1;
        assert_eq!((b[0].before, b[0].after), (2, 3));
        assert_eq!(b[0].from.render(), format!("{} {old}", Pass.word()));
        assert_eq!(b[0].to.render(), Pass.word());
        assert_eq!((ch[2].1[0].from.status, ch[2].1[0].to.status), (Pass, Xfail));
        let text = render(&refs);
        assert!(text.contains("3 case(s) change"), "{text}");
        assert!(text.contains("first at debian:7.2"), "{text}");
    }

    #[test]
    fn a_change_back_is_listed_after_the_first() {
        use Status::*;
        let runs = [run("k1", &[("x", Pass, &[])]), run("k2", &[("x", Fail, &[])]), run("k3", &[("x", Pass, &[])])];
        let refs: Vec<&RunReport> = runs.iter().collect();
        let ch = what_changed(&refs);
        assert_eq!(ch.len(), 1);
        let s: Vec<(usize, usize)> = ch[0].1.iter().map(|s| (s.before, s.after)).collect();
        assert_eq!(s, [(0, 1), (1, 2)]);
        let text = render(&refs);
        assert!(text.contains("first at k2") && text.contains("then at  k3"), "{text}");
        assert!(what_changed(&refs[..1]).is_empty());
    }
}
