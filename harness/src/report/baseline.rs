//! Baselines: a stored result per kernel, so a regression run fails on new failures only.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

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
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{}:{}:{}: not a baseline file: {e}", path.display(), e.line(), e.column()))
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
        let mut d = Diff { target: run.target.clone(), ..Default::default() };
        let base = self.targets.get(&run.target);
        d.no_baseline = base.is_none();
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
        let mut s = format!(
            "baseline {}: {} newly broken, {} fixed, {} still failing{}\n",
            self.target,
            self.newly_broken.len(),
            self.fixed.len(),
            self.still_failing.len(),
            if self.no_baseline { " (no baseline for this target: every failure is new)" } else { "" }
        );
        for (word, ids) in
            [("NEW FAIL", &self.newly_broken), ("fixed", &self.fixed), ("still failing", &self.still_failing)]
        {
            for id in ids {
                s.push_str(&format!("  {word:<13} {id}\n"));
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
                .map(|(id, st)| CaseReport {
                    id: id.to_string(),
                    file: String::new(),
                    area: String::new(),
                    about: String::new(),
                    spec: vec![],
                    topology: None,
                    status: *st,
                    message: String::new(),
                    log: vec![],
                    kernel_log: vec![],
                    duration_s: 0.0,
                    kernel_specific: vec![],
                    harness_error: false,
                    self_check: None,
                })
                .collect(),
            duration_s: 0.0,
            aborted: None,
            timings: vec![],
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
    }
}
