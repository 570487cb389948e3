//! `merge`: runs of one target (shards, or one kernel on several topologies) become one run.
//! Refused: a set of shards with a gap (a missing shard would go unnoticed: its cases are
//! simply absent) and runs of one target that ran on different kernels; with the inputs named
//! ([`check_inputs`]), a shard given twice, a case twice in one run, and a case executed with
//! two different results.

use super::Error;
use std::collections::BTreeMap;

use super::escape::clipped;
use crate::model::{RunReport, Shard, Status, MAX_SHARDS};

/// Joins runs: those of the same target become one run, keeping an executed result over a skip
/// of the same case.
pub fn merge(loaded: Vec<RunReport>) -> Result<Vec<RunReport>, Error> {
    check_kernels(&loaded)?;
    check_shards(&loaded)?;
    let mut runs: Vec<RunReport> = Vec::new();
    for r in loaded {
        match runs.iter_mut().find(|x| x.target == r.target) {
            Some(x) => {
                x.cases.extend(r.cases);
                x.topologies.extend(r.topologies);
                x.not_run.extend(r.not_run);
                x.duration_s += r.duration_s;
                if x.aborted.is_none() {
                    x.aborted = r.aborted;
                }
                x.started = [x.started.take(), r.started].into_iter().flatten().min();
                x.finished = [x.finished.take(), r.finished].into_iter().flatten().max();
                if x.hostname != r.hostname {
                    x.hostname =
                        [x.hostname.take(), r.hostname].into_iter().flatten().collect::<Vec<_>>().join(",").into();
                }
            }
            None => runs.push(r),
        }
    }
    for r in &mut runs {
        // Shards run disjoint cases; jobs of one kernel on different topologies run the same
        // cases, each executing some and skipping the rest: keep an executed result.
        r.cases.sort_by(|a, b| a.id.cmp(&b.id).then((a.status == Status::Skip).cmp(&(b.status == Status::Skip))));
        r.cases.dedup_by(|a, b| a.id == b.id);
        r.topologies.sort();
        r.topologies.dedup();
        r.not_run.sort();
        r.not_run.dedup();
        let cases = &r.cases;
        r.not_run.retain(|id| cases.binary_search_by(|c| c.id.as_str().cmp(id)).is_err());
        // Complete shard sets (checked above) make a complete run.
        r.shard = None;
    }
    Ok(runs)
}

/// Before [`merge`], with the input each run came from: refused, naming the case or shard and
/// both inputs, are a case twice in one run, a shard given twice, and a case of one target
/// executed in two inputs with different results (merge would keep whichever came first).
pub fn check_inputs(named: &[(String, RunReport)]) -> Result<(), String> {
    let mut shards: BTreeMap<(&str, Shard, Vec<&str>), &str> = BTreeMap::new();
    let mut results: BTreeMap<(&str, &str), (&str, Status)> = BTreeMap::new();
    for (input, r) in named {
        let target = clipped(&r.target, 80);
        let mut ids: Vec<&str> = r.cases.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "case {} is twice in one run of target {target} in {}",
                clipped(w[0], 200),
                clipped(input, 200)
            ));
        }
        if let Some(sh) = r.shard {
            let mut topos: Vec<&str> = r.topologies.iter().map(String::as_str).collect();
            topos.sort();
            if let Some(first) = shards.insert((&r.target, sh, topos), input) {
                return Err(format!(
                    "shard {}/{} of target {target} is given twice: in {} and in {}",
                    sh.k,
                    sh.n,
                    clipped(first, 200),
                    clipped(input, 200)
                ));
            }
        }
        for c in r.cases.iter().filter(|c| c.status != Status::Skip) {
            match results.insert((&r.target, &c.id), (input, c.status)) {
                Some((first, st)) if st != c.status => {
                    return Err(format!(
                        "case {} of target {target} has two results: {} in {} and {} in {}; \
                         merge would keep whichever came first",
                        clipped(&c.id, 200),
                        st.word(),
                        clipped(first, 200),
                        c.status.word(),
                        clipped(input, 200)
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Every run of a target ran on one kernel.
fn check_kernels(runs: &[RunReport]) -> Result<(), Error> {
    let mut kernel: BTreeMap<&str, &str> = BTreeMap::new();
    for r in runs {
        let k = r.probe.kernel_release.as_str();
        match kernel.insert(&r.target, k) {
            Some(prev) if prev != k && !prev.is_empty() && !k.is_empty() => {
                return Err(Error::Invalid(format!(
                    "runs of target {} ran on different kernels ({} and {}): they are not shards of one \
                     run; merge each kernel's runs separately, or give their runs different targets",
                    clipped(&r.target, 80),
                    clipped(prev, 80),
                    clipped(k, 80)
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A shard a report claims is one `--shard` accepts: 1 <= K <= N <= [`MAX_SHARDS`].
fn check_shard_numbers(runs: &[RunReport]) -> Result<(), Error> {
    for r in runs {
        if let Some(Shard { k, n }) = r.shard {
            if k == 0 || k > n || n > MAX_SHARDS {
                return Err(Error::Invalid(format!(
                    "a run of target {} says it is shard {k}/{n}: not a shard --shard makes (1 <= K <= N <= \
                     {MAX_SHARDS})",
                    clipped(&r.target, 80)
                )));
            }
        }
    }
    Ok(())
}

/// At most this many missing shards are named in a message (then how many more).
const NAMED_MISSING: usize = 10;

/// The shards of a target (per shard count and topologies) are 1/N..N/N, none missing.
fn check_shards(runs: &[RunReport]) -> Result<(), Error> {
    check_shard_numbers(runs)?;
    let mut sets: BTreeMap<(&str, u32, Vec<&str>), Vec<u32>> = BTreeMap::new();
    for r in runs {
        if let Some(sh) = r.shard {
            let mut topos: Vec<&str> = r.topologies.iter().map(String::as_str).collect();
            topos.sort();
            sets.entry((&r.target, sh.n, topos)).or_default().push(sh.k);
        }
    }
    for ((target, n, topos), have) in sets {
        let gaps = (1..=n).filter(|k| !have.contains(k));
        let mut missing: Vec<String> = gaps.clone().take(NAMED_MISSING).map(|k| format!("{k}/{n}")).collect();
        let more = gaps.count().saturating_sub(NAMED_MISSING);
        if more > 0 {
            missing.push(format!("and {more} more"));
        }
        if !missing.is_empty() {
            return Err(Error::Invalid(format!(
                "the shards of target {} (topologies {}) have a gap: shard(s) {} missing; \
                 their cases would be absent from the merged report",
                clipped(target, 80),
                clipped(&topos.join(","), 80),
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CaseReport;

    fn run(target: &str, kernel: &str, shard: Option<(u32, u32)>, ids: &[&str]) -> RunReport {
        let mut r = RunReport::new(target, Default::default(), &["host".to_string()]);
        r.probe.kernel_release = kernel.into();
        r.shard = shard.map(|(k, n)| Shard { k, n });
        r.cases = ids.iter().map(|id| CaseReport { status: Status::Pass, ..CaseReport::new(id) }).collect();
        r
    }

    #[test]
    fn complete_shards_join() {
        let m = merge(vec![
            run("host", "6.18", Some((1, 3)), &["a"]),
            run("host", "6.18", Some((3, 3)), &["c"]),
            run("host", "6.18", Some((2, 3)), &["b"]),
        ])
        .expect("complete");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].cases.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(m[0].shard, None);
    }

    #[test]
    fn a_gap_is_refused() {
        let e = merge(vec![run("host", "6.18", Some((1, 3)), &["a"]), run("host", "6.18", Some((2, 3)), &["b"])])
            .expect_err("gap")
            .to_string();
        assert!(e.contains("3/3 missing"), "{e}");
    }

    #[test]
    fn different_kernels_of_one_target_are_refused() {
        let e = merge(vec![run("host", "6.18", None, &["a"]), run("host", "7.3.4", None, &["a"])])
            .expect_err("kernels")
            .to_string();
        assert!(e.contains("different kernels"), "{e}");
        merge(vec![run("host", "6.18", None, &["a"]), run("debian:7.3.4", "7.3.4", None, &["a"])])
            .expect("two targets");
    }

    #[test]
    fn not_run_keeps_only_cases_no_run_executed() {
        let mut a = run("host", "6.18", None, &["a"]);
        a.not_run = vec!["b".into(), "c".into()];
        let b = run("host", "6.18", None, &["b"]);
        let m = merge(vec![a, b]).expect("merge");
        assert_eq!(m[0].not_run, ["c"]);
    }
}
