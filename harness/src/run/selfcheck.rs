//! `run --self-check`, per assertion: a case that passes as written is run once more per
//! assertion site with only that assertion inverted; the case must then fail exactly there
//! (not earlier, not for another reason). An assertion that does not is reported as one that
//! cannot be made to fail; set-up assertions (the implicit "must succeed" of a step that
//! expects nothing) are counted apart. Inversion proves an assertion is reached and decides
//! the outcome; kernel mutants prove it can catch a broken kernel.

use crate::model::{is_splat, Assertion, CaseReport, CaseResult, SelfCheck, Status};

/// What the inverted runs of one case found so far.
#[derive(Clone, Debug)]
pub struct Tally {
    base: CaseReport,
    sites: Vec<Assertion>,
    done: Vec<bool>,
    check: SelfCheck,
    /// A kernel splat during an inverted run (it fails the case like any splat): the
    /// assertion inverted then, and the first splat line.
    splat: Option<(usize, String)>,
    /// Survivors that are not set-up assertions.
    survived_checks: usize,
    extra_s: f64,
}

impl Tally {
    /// After the passing run as written, which reached `sites`.
    pub fn new(base: CaseReport, sites: Vec<Assertion>) -> Tally {
        let setup = sites.iter().filter(|a| a.setup).count();
        let check = SelfCheck { assertions: sites.len(), setup, ..Default::default() };
        Tally { base, done: vec![false; sites.len()], sites, check, splat: None, survived_checks: 0, extra_s: 0.0 }
    }

    /// The run with assertion `k` (from 1) inverted ended: `held` is the inverted assertion
    /// that held, if one did; `cr` its report.
    pub fn record(&mut self, k: usize, held: Option<usize>, cr: &CaseReport) {
        let Some(site) = self.sites.get(k.wrapping_sub(1)) else { return };
        self.done[k - 1] = true;
        self.extra_s += cr.duration_s;
        if let Some(l) = cr.kernel_log.iter().find(|l| is_splat(l)) {
            self.splat.get_or_insert_with(|| (k, l.clone()));
        }
        if held == Some(k) {
            self.check.killed += 1;
            if site.setup {
                self.check.killed_setup += 1;
            }
            return;
        }
        let instead = match (cr.status, held) {
            (Status::Pass, _) => "the case still passed".to_string(),
            (_, Some(j)) => format!("it failed at assertion #{j} instead"),
            _ => format!("it failed otherwise: {}", cr.message),
        };
        if !site.setup {
            self.survived_checks += 1;
        }
        let kind = if site.setup { " (set-up)" } else { "" };
        self.check.survived.push(format!("#{k} {}: {}{kind}: {instead}", site.at, site.what));
    }

    pub fn complete(&self) -> bool {
        self.done.iter().all(|d| *d)
    }

    /// The case's report: passes when every assertion that is not a set-up assertion can fail.
    pub fn report(self) -> CaseReport {
        let mut cr = self.base;
        cr.duration_s += self.extra_s;
        let c = &self.check;
        let survived_checks = self.survived_checks;
        let result = if let Some((k, line)) = self.splat {
            let kinds = crate::model::splat_kind(&line).into_iter().collect();
            CaseResult::KernelSplat { lines: vec![line], during: Some(k), result: Box::new(CaseResult::Pass), kinds }
        } else if survived_checks > 0 {
            let survived = c.survived.clone();
            CaseResult::CannotFail { count: survived_checks, of: c.assertions - c.setup, survived }
        } else {
            CaseResult::CanFail {
                killed: c.killed - c.killed_setup,
                of: c.assertions - c.setup,
                killed_setup: c.killed_setup,
                setup: c.setup,
            }
        };
        cr.set_result(result);
        cr.self_check = Some(self.check);
        cr
    }
}

/// A case that did not pass as written (or reached no assertion) keeps its result; self-check
/// says why it did not invert anything.
pub fn not_checkable(mut cr: CaseReport, assertions: usize) -> CaseReport {
    if cr.status == Status::Pass && assertions == 0 {
        cr.set_result(CaseResult::NoAssertion);
    }
    cr
}

/// Totals over a run: (assertions, killed, set-up assertions, set-up killed).
pub fn totals(cases: &[CaseReport]) -> (usize, usize, usize, usize) {
    cases.iter().filter_map(|c| c.self_check.as_ref()).fold((0, 0, 0, 0), |(a, k, s, ks), c| {
        (a + c.assertions - c.setup, k + c.killed - c.killed_setup, s + c.setup, ks + c.killed_setup)
    })
}
