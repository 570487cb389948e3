//! Baselines: a stored result per kernel, so a regression run fails on new failures only.

use super::Error;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::escape::one_line;
use crate::model::RunReport;
use crate::model::Status;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    /// By run target ("host", "debian:7.3.4", ...).
    pub targets: BTreeMap<String, TargetBaseline>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TargetBaseline {
    pub kernel_release: String,
    pub cases: BTreeMap<String, Status>,
}

/// What changed against the baseline for one target.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    pub target: String,
    /// Failing now, not failing in the baseline (or new cases that fail).
    pub newly_broken: Vec<String>,
    /// Failing in the baseline, passing now.
    pub fixed: Vec<String>,
    /// Failing in both.
    pub still_failing: Vec<String>,
    /// The baseline has no entry for this target.
    pub no_baseline: bool,
    /// The kernel the baseline's entry was recorded on, when it is not the run's: its
    /// differences are still counted, and the rendering says they may be the kernel's.
    pub other_kernel: Option<String>,
    /// The run's kernel.
    pub kernel: String,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let text = crate::paths::input::read_text(path, crate::paths::input::MAX_REPORT_BYTES, true)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{}:{}:{}: not a baseline file: {e}", path.display(), e.line(), e.column()))
        })
    }

    /// Records these runs, replacing their targets' entries and keeping the others.
    pub fn record(&mut self, runs: &[RunReport]) {
        self.version = 1;
        for r in runs {
            let cases = r.cases.iter().map(|c| (c.id.clone(), c.status)).collect();
            self.targets
                .insert(r.target.clone(), TargetBaseline { kernel_release: r.probe.kernel_release.clone(), cases });
        }
    }

    pub fn diff(&self, run: &RunReport) -> Diff {
        let mut d = Diff { target: run.target.clone(), kernel: run.probe.kernel_release.clone(), ..Default::default() };
        let base = self.targets.get(&run.target);
        d.no_baseline = base.is_none();
        d.other_kernel = base.map(|b| b.kernel_release.clone()).filter(|k| *k != run.probe.kernel_release);
        for c in &run.cases {
            let before = base.and_then(|b| b.cases.get(&c.id)).copied();
            let was_failing = before.is_some_and(|s| s.is_failure());
            match (was_failing, c.status.is_failure()) {
                (false, true) => d.newly_broken.push(c.id.clone()),
                (true, true) => d.still_failing.push(c.id.clone()),
                (true, false) if c.status == Status::Pass || c.status == Status::Xfail => d.fixed.push(c.id.clone()),
                _ => {}
            }
        }
        d
    }
}

impl Diff {
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(k) = &self.other_kernel {
            s.push_str(&format!(
                "warning: the baseline for {} was recorded on kernel {}, this run is on {}: \
                 the differences below are counted, but may come from the kernel change\n",
                one_line(&self.target),
                one_line(if k.is_empty() { "(unknown)" } else { k }),
                one_line(&self.kernel)
            ));
        }
        s.push_str(&format!(
            "baseline {}: {} newly broken, {} fixed, {} still failing{}{}\n",
            one_line(&self.target),
            self.newly_broken.len(),
            self.fixed.len(),
            self.still_failing.len(),
            if self.no_baseline { " (no baseline for this target: every failure is new)" } else { "" },
            match &self.other_kernel {
                Some(_) => " (baseline from another kernel)",
                None => "",
            }
        ));
        for (word, ids) in
            [("NEW FAIL", &self.newly_broken), ("fixed", &self.fixed), ("still failing", &self.still_failing)]
        {
            for id in ids {
                s.push_str(&format!("  {word:<13} {}\n", one_line(id)));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CaseReport;

    fn run(statuses: &[(&str, Status)]) -> RunReport {
        RunReport {
            target: "debian:7.3.4".into(),
            probe: Default::default(),
            topologies: vec![],
            cases: statuses
                .iter()
                .map(|(id, st)| CaseReport { area: String::new(), status: *st, ..CaseReport::new(id) })
                .collect(),
            duration_s: 0.0,
            aborted: None,
            timings: Default::default(),
            ..Default::default()
        }
    }

    #[test]
    fn new_failures_only() {
        let mut b = Baseline::default();
        b.record(&[run(&[("a", Status::Fail), ("b", Status::Pass), ("c", Status::Fail)])]);
        let d = b.diff(&run(&[("a", Status::Fail), ("b", Status::Fail), ("c", Status::Pass), ("d", Status::Fail)]));
        assert_eq!(d.newly_broken, ["b", "d"]);
        assert_eq!(d.fixed, ["c"]);
        assert_eq!(d.still_failing, ["a"]);
        let json = serde_json::to_string(&b).expect("ser");
        let back: Baseline = serde_json::from_str(&json).expect("de");
        assert_eq!(back.targets["debian:7.3.4"].cases["a"], Status::Fail);
        assert!(d.other_kernel.is_none() && !d.render().contains("warning"));
    }

    #[test]
    fn another_kernels_baseline_says_so_and_still_counts() {
        let mut b = Baseline::default();
        b.record(&[run(&[("a", Status::Pass)])]);
        let mut now = run(&[("a", Status::Fail)]);
        now.probe.kernel_release = "7.3.5".into();
        let d = b.diff(&now);
        assert_eq!(d.other_kernel.as_deref(), Some(""));
        assert_eq!(d.newly_broken, ["a"]);
        assert!(d.render().starts_with("warning: the baseline for debian:7.3.4 was recorded on kernel (unknown)"));
    }
}
