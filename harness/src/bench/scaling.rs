//! `bench --reports`: how the report writers scale with the number of cases. `html` once looked
//! each case up with a linear search per case (125k cases took 36 s), and `merge` did the same
//! per case and run (15000 cases of two targets cost 70 times what 1500 do). Ten times the cases
//! must cost well under a hundred times the time: each figure is a ratio against its own peer
//! (the same writer on a tenth of the cases) measured in the same run, best of three, so the
//! machine's speed and load cancel out; no test times anything.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::model::{CaseReport, RunReport, Status};
use crate::report;

/// Cases of the small and the large side.
pub const SMALL: usize = 3000;
pub const LARGE: usize = 30000;

/// Above this ratio a writer is taken for quadratic: linear with cache effects stays well under
/// it (about 10-30 here), quadratic is about 100. 3000 cases rather than 1500: a few
/// milliseconds were within the noise of a loaded machine.
pub const LIMIT: f64 = 50.0;

/// One writer at both sizes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scaling {
    pub what: String,
    pub small_cases: usize,
    pub large_cases: usize,
    /// Best of three, seconds.
    pub small_s: f64,
    pub large_s: f64,
    /// large_s / small_s.
    pub ratio: f64,
    /// ratio < LIMIT.
    pub linear: bool,
}

/// `k` runs of `n` cases each, of targets t0, t1, ...; in every odd run half the cases fail, so
/// a merge has changes to list.
fn runs(n: usize, k: usize) -> Vec<RunReport> {
    (0..k)
        .map(|j| {
            let mut r = RunReport::new(&format!("t{j}"), Default::default(), &["host".to_string()]);
            r.probe.kernel_release = format!("6.{j}");
            r.cases = (0..n)
                .map(|i| CaseReport {
                    status: if j % 2 == 1 && i % 2 == 1 { Status::Fail } else { Status::Pass },
                    file: "cases/q/x.yaml".into(),
                    ..CaseReport::new(&format!("q.case_{i:06}"))
                })
                .collect();
            r
        })
        .collect()
}

fn best_of_three(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn html(n: usize, k: usize) -> Result<f64, Error> {
    let rs = runs(n, k);
    let refs: Vec<&RunReport> = rs.iter().collect();
    Ok(best_of_three(|| {
        std::hint::black_box(report::html::render(&refs));
    }))
}

/// What `merge` does with runs of several targets: the inputs checked, merged, the cases x
/// kernels table and the changes between them. The inputs are checked and merged once before
/// the timing: a refusal is an error, not a fast path that would look linear.
fn merge(n: usize, k: usize) -> Result<f64, Error> {
    let named: Vec<(String, RunReport)> =
        runs(n, k).into_iter().enumerate().map(|(j, r)| (format!("in{j}/report.json"), r)).collect();
    let refused = |e: String| Error::Measure(format!("bench --reports: merging {k} runs of {n} cases: {e}"));
    report::check_merge_inputs(&named).map_err(|e| refused(e.to_string()))?;
    report::merge(named.iter().map(|(_, r)| r.clone()).collect()).map_err(|e| refused(e.to_string()))?;
    Ok(best_of_three(|| {
        let named = named.clone();
        let _ = report::check_merge_inputs(&named);
        if let Ok(merged) = report::merge(named.into_iter().map(|(_, r)| r).collect()) {
            let refs: Vec<&RunReport> = merged.iter().collect();
            std::hint::black_box((report::matrix_table(&refs), report::changes::render(&refs)));
        }
    }))
}

fn scaling(what: &str, cost: impl Fn(usize) -> Result<f64, Error>) -> Result<Scaling, Error> {
    let (small_s, large_s) = (cost(SMALL)?, cost(LARGE)?);
    let ratio = large_s / small_s.max(1e-9);
    Ok(Scaling {
        what: what.into(),
        small_cases: SMALL,
        large_cases: LARGE,
        small_s,
        large_s,
        ratio,
        linear: ratio < LIMIT,
    })
}

/// Every writer that once scaled badly, measured.
pub fn measure() -> Result<Vec<Scaling>, Error> {
    Ok(vec![
        scaling("html, 1 run", |n| html(n, 1))?,
        scaling("html, 2 runs", |n| html(n, 2))?,
        scaling("merge, 2 targets", |n| merge(n, 2))?,
    ])
}

pub fn render(s: &[Scaling]) -> String {
    let mut out = format!("report writers, {LARGE} cases against {SMALL} (best of 3; quadratic above {LIMIT}x)\n");
    for x in s {
        out.push_str(&format!(
            "  {:<18} {:.3} s / {:.3} s = {:.1}x{}\n",
            x.what,
            x.large_s,
            x.small_s,
            x.ratio,
            if x.linear { "" } else { "  QUADRATIC" }
        ));
    }
    out
}
