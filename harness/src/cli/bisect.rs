//! `bisect`: the first kernel where what the kernel observably does in one case changes.
//!
//! What is compared is [`Seen::key`]: whether the case ran at all, and its `observed` lines
//! (each step's errno or result, read-back fields, CQE res/flags: `CaseReport::observed`),
//! never its pass/fail status, which depends on the case's per-kernel expectations and would
//! hide exactly the change looked for. Over Debian versions the search is a plain binary
//! search ([`search`], booting only the versions it needs); over the commits of a kernel tree
//! it is `git bisect run` in a git worktree of the tree (the user's checkout is not touched),
//! with an incremental vm/build-tree.sh build per step ([`tree`]).

pub mod tree;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::suite::Suite;
use crate::error::{Error, Verdict};
use crate::model::{CaseReport, Status};
use crate::report::escape::printable;
use crate::vm::spec::versions_between;
use crate::vm::{KernelArg, KernelSpec};

/// What one kernel did in the case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Seen {
    /// Compared: (ran, observed lines).
    pub ran: bool,
    pub observed: Vec<String>,
    /// Shown only: the status under the case's expectations, its message, the kernel release.
    pub status: Status,
    pub message: String,
    pub release: String,
}

impl Seen {
    pub fn of(c: &CaseReport, release: &str) -> Seen {
        Seen {
            ran: c.status != Status::Skip,
            observed: c.observed.clone(),
            status: c.status,
            message: c.message.clone(),
            release: release.to_string(),
        }
    }

    fn key(&self) -> (bool, &[String]) {
        (self.ran, &self.observed)
    }

    pub fn same(&self, o: &Seen) -> bool {
        self.key() == o.key()
    }

    pub fn render(&self) -> String {
        let mut s = format!("  kernel {}: {}", printable(&self.release), self.status.word());
        if !self.ran {
            s.push_str(&format!(" (did not run: {})", printable(&self.message)));
        }
        s.push('\n');
        for l in &self.observed {
            s.push_str(&format!("    {}\n", printable(l)));
        }
        if self.ran && self.observed.is_empty() {
            s.push_str("    (no value observed)\n");
        }
        s
    }
}

/// The result of a search over `n` points (oldest first).
#[derive(Debug, PartialEq, Eq)]
pub struct Found<O> {
    pub last_old: usize,
    pub first_new: usize,
    pub old: O,
    pub new: O,
    /// Points observed (each a boot, or a build and a boot).
    pub observed: usize,
}

/// Binary search for the first point whose observation differs from point 0's, observing
/// both ends first and then only the midpoints it needs (each at most once). `None` when the
/// two ends agree. Assumes one change between the ends (as `git bisect` does); with several,
/// it finds one of them.
pub fn search<O: Clone>(
    n: usize,
    same: impl Fn(&O, &O) -> bool,
    mut observe: impl FnMut(usize) -> Result<O, Error>,
) -> Result<Option<Found<O>>, Error> {
    if n < 2 {
        return Err(Error::bad_input(format!("a bisection needs at least two kernels, the range has {n}")));
    }
    let mut seen: BTreeMap<usize, O> = BTreeMap::new();
    let mut get = |i: usize, seen: &mut BTreeMap<usize, O>| -> Result<O, Error> {
        if let Some(o) = seen.get(&i) {
            return Ok(o.clone());
        }
        let o = observe(i)?;
        seen.insert(i, o.clone());
        Ok(o)
    };
    let old = get(0, &mut seen)?;
    let mut new = get(n - 1, &mut seen)?;
    if same(&old, &new) {
        return Ok(None);
    }
    let (mut lo, mut hi) = (0, n - 1);
    let mut lo_obs = old.clone();
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let o = get(mid, &mut seen)?;
        if same(&o, &old) {
            lo = mid;
            lo_obs = o;
        } else {
            hi = mid;
            new = o;
        }
    }
    Ok(Some(Found { last_old: lo, first_new: hi, old: lo_obs, new, observed: seen.len() }))
}

/// Boots `kernel` and runs case `id` there.
pub fn observe(kernel: &KernelSpec, id: &str, topology: &[String], timeout: f64) -> Result<(Seen, usize), Error> {
    let suite = Suite::one_case(id, topology, timeout)?;
    let rep = suite.run_on(kernel)?;
    let boots = rep.timings.vm_boots.unwrap_or(0).max(1) as usize;
    let c = rep.cases.iter().find(|c| c.id == id).ok_or_else(|| {
        Error::environment(format!("{kernel}: the case did not run ({})", rep.aborted.clone().unwrap_or_default()))
    })?;
    if c.harness_error {
        return Err(Error::environment(format!("{kernel}: harness error: {}", printable(&c.message))));
    }
    Ok((Seen::of(c, &rep.probe.kernel_release), boots))
}

/// `bisect CASE --kernel debian:A..B` or `--kernel tree:PATH --good G --bad B`.
pub fn main(a: &super::BisectArgs) -> Result<Verdict, Error> {
    let (lo, hi, flavour) = match a.kernel.kernels.as_slice() {
        [KernelArg::One(KernelSpec::Tree { path, .. })] => {
            crate::run::signal::install_handlers();
            return tree::main(a, path);
        }
        [KernelArg::DebianRange { lo, hi, flavour }] => (lo, hi, *flavour),
        _ => return Err(Error::bad_input("bisect takes one --kernel: debian:A..B, or tree:PATH")),
    };
    crate::run::signal::install_handlers();
    let all = crate::vm::debian_versions(flavour)?;
    let versions = versions_between(&all, lo, hi)?;
    eprintln!("bisect: {} Debian versions from {} to {}: {}", versions.len(), lo, hi, versions.join(" "));
    let h = flavour.head();
    let mut boots = 0usize;
    let found = search(versions.len(), Seen::same, |i| {
        let kernel = KernelSpec::Debian { version: versions[i].clone(), flavour };
        eprintln!("bisect: observing {} on {kernel}", a.id);
        let (s, b) = observe(&kernel, &a.id, &a.topology.names(), a.timeout.timeout)?;
        boots += b;
        if crate::run::signal::interrupted().is_some() {
            return Err(Error::environment("interrupted"));
        }
        Ok(s)
    })?;
    match found {
        None => {
            println!(
                "{}: no observable change from {h}:{} to {h}:{} ({} boot(s))",
                printable(&a.id),
                versions[0],
                versions[versions.len() - 1],
                boots
            );
            Ok(Verdict::Passed)
        }
        Some(f) => {
            println!(
                "{}: changed between {h}:{} (last old) and {h}:{} (first new); {} kernel(s) observed, {} boot(s)",
                printable(&a.id),
                versions[f.last_old],
                versions[f.first_new],
                f.observed,
                boots
            );
            print!("last old:\n{}first new:\n{}", f.old.render(), f.new.render());
            Ok(Verdict::Passed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake kernel line: the value changes at index `at`; counts observations.
    fn run(n: usize, at: Option<usize>) -> (Option<Found<u32>>, Vec<usize>) {
        let mut asked = Vec::new();
        let f = search(
            n,
            |a: &u32, b: &u32| a == b,
            |i| {
                asked.push(i);
                Ok(if at.is_some_and(|a| i >= a) { 2 } else { 1 })
            },
        )
        .expect("search");
        (f, asked)
    }

    #[test]
    fn finds_the_first_change_with_few_observations() {
        for n in 2..40 {
            for at in 1..n {
                let (f, asked) = run(n, Some(at));
                let f = f.expect("a change");
                assert_eq!((f.last_old, f.first_new), (at - 1, at), "n={n} at={at}");
                assert_eq!((f.old, f.new), (1, 2));
                // Each point at most once; ends plus ceil(log2(n-1)) midpoints.
                let mut u = asked.clone();
                u.sort();
                u.dedup();
                assert_eq!(u.len(), asked.len(), "n={n} at={at}: {asked:?}");
                let bound = 2 + (usize::BITS - (n - 1).leading_zeros()) as usize;
                assert!(asked.len() <= bound, "n={n} at={at}: {} > {bound}", asked.len());
                assert_eq!(f.observed, asked.len());
                assert_eq!(&asked[..2], &[0, n - 1]);
            }
        }
    }

    #[test]
    fn no_change_observes_only_the_ends() {
        let (f, asked) = run(9, None);
        assert!(f.is_none());
        assert_eq!(asked, [0, 8]);
        assert!(search(1, |a: &u8, b: &u8| a == b, |_| Ok(0)).is_err());
    }

    #[test]
    fn an_observation_error_stops_the_search() {
        let r = search(
            5,
            |a: &u8, b: &u8| a == b,
            |i| if i == 2 { Err(Error::environment("boot failed")) } else { Ok(i as u8) },
        );
        assert_eq!(r.err().map(|e| e.to_string()).as_deref(), Some("boot failed"));
    }

    #[test]
    fn seen_compares_observations_not_status() {
        let mut c = CaseReport::new("registration.offsets_input_ignored");
        c.status = Status::Pass;
        c.observed = vec!["step 1: ok (0)".into(), "ifq.offsets.tail=0x4".into()];
        c.kernel_specific = vec!["[..7.2] 7.2's RQ header".into()];
        let a = Seen::of(&c, "7.2.13");
        let mut d = c.clone();
        d.kernel_specific.clear();
        d.status = Status::Fail; // status and expectations do not count
        assert!(a.same(&Seen::of(&d, "7.3.4")));
        d.observed[1] = "ifq.offsets.tail=0x40".into();
        assert!(!a.same(&Seen::of(&d, "7.3.4")));
        let mut s = CaseReport::new("x");
        s.status = Status::Skip;
        assert!(!Seen::of(&s, "7.1").same(&Seen::of(&CaseReport { status: Status::Pass, ..s.clone() }, "7.2")));
    }
}
