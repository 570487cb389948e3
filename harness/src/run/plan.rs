//! Which cases a run executes and where: the filter, the shard, and each case's requirements
//! against the probed kernel and the topologies the run provides.

use super::Error;
use crate::case::{Action, Cap, Case};
use crate::model::SkipReason;
use crate::model::{Feature, Probe, MAX_SHARDS};
use crate::topology::{self, Kind};

/// What a run selects.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Substrings of case ids (any matches); empty selects all.
    pub filter: Vec<String>,
    /// Match whole ids instead of substrings.
    pub exact: bool,
    /// Run only shard K of N (1-based): a stable hash of the case id picks the shard, so
    /// N runners together run every case exactly once.
    pub shard: Option<(u32, u32)>,
}

/// FNV-1a of the case id: stable across runs, machines and added cases.
pub fn shard_of(id: &str, n: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % n.max(1) as u64) as u32 + 1
}

/// The longest `--timeout` (one day): longer is a typo, and `inf` would overflow the clocks.
pub const MAX_TIMEOUT_S: f64 = 86_400.0;

/// `--timeout`: a finite number of seconds in (0, [`MAX_TIMEOUT_S`]] (the only parser of it).
pub fn parse_timeout(s: &str) -> Result<f64, Error> {
    let t: f64 = s.trim().parse().map_err(|_| Error::Selection(format!("`{s}` is not a number of seconds")))?;
    if t.is_finite() && t > 0.0 && t <= MAX_TIMEOUT_S {
        Ok(t)
    } else {
        Err(Error::Selection(format!("`{s}`: need a number of seconds above 0 and at most {MAX_TIMEOUT_S}")))
    }
}

/// Parses "K/N" with 1 <= K <= N <= [`MAX_SHARDS`].
pub fn parse_shard(s: &str) -> Result<(u32, u32), Error> {
    let shown = crate::report::escape::clipped(s, 40);
    let bad = |m: String| Error::Selection(m);
    let (k, n) = s.split_once('/').ok_or_else(|| bad(format!("--shard `{shown}`: expected K/N, e.g. 2/3")))?;
    let k: u32 = k.trim().parse().map_err(|_| bad(format!("--shard `{shown}`: K is not a number")))?;
    let n: u32 =
        n.trim().parse().map_err(|_| bad(format!("--shard `{shown}`: N is not a number up to {MAX_SHARDS}")))?;
    if n == 0 || k == 0 || k > n {
        return Err(bad(format!("--shard `{shown}`: need 1 <= K <= N")));
    }
    if n > MAX_SHARDS {
        return Err(bad(format!("--shard `{shown}`: at most {MAX_SHARDS} shards")));
    }
    Ok((k, n))
}

/// The cases a run executes, in order: the filter, then the shard.
pub fn select<'c>(cases: &'c [Case], sel: &Selection) -> Vec<&'c Case> {
    let matches = |id: &str, f: &str| if sel.exact { id == f } else { id.contains(f) };
    cases
        .iter()
        .filter(|c| sel.filter.is_empty() || sel.filter.iter().any(|f| matches(&c.id, f)))
        .filter(|c| sel.shard.is_none_or(|(k, n)| shard_of(&c.id, n) == k))
        .collect()
}

/// The topology kinds a case runs on (`requires.topology`, validated names; default host, nodev).
pub fn case_kinds(case: &Case) -> Vec<Kind> {
    let named = &case.def.requires.topology;
    if named.is_empty() {
        topology::DEFAULT_CASE.to_vec()
    } else {
        named.iter().filter_map(|t| Kind::named(t)).collect()
    }
}

/// Decides where a case runs (the topology kind), or why it cannot.
pub fn plan(case: &Case, run_kinds: &[Kind], probe: &Probe) -> Result<Kind, SkipReason> {
    let d = &case.def;
    let case_topos = case_kinds(case);
    if let Some(k) = &d.requires.kernel {
        if !probe.version_in(k.min.as_deref(), k.max.as_deref()) {
            return Err(SkipReason::Requirement(format!(
                "needs kernel {}{}; running {}",
                k.min.as_deref().map(|m| format!(">= {m}")).unwrap_or_default(),
                k.max.as_deref().map(|m| format!(" <= {m}")).unwrap_or_default(),
                probe.kernel_release
            )));
        }
    }
    for f in &d.requires.features {
        if !probe.features.contains(f) {
            return Err(SkipReason::Requirement(probe.missing_reason(*f)));
        }
    }
    for f in &d.requires.lacks {
        if probe.features.contains(f) {
            return Err(SkipReason::Requirement(probe.present_reason(*f)));
        }
    }
    let needs_admin = match &d.requires.caps {
        Some(c) => c.contains(&Cap::NetAdmin),
        None => d.steps.iter().any(|s| matches!(s.value.action, Action::Register(_))),
    };
    if needs_admin && !probe.cap_net_admin {
        return Err(SkipReason::Requirement("needs CAP_NET_ADMIN (run as root)".into()));
    }
    let mut why = Vec::new();
    for &t in run_kinds {
        if !case_topos.contains(&t) {
            continue;
        }
        if t == Kind::Nodev && !probe.features.contains(&Feature::Nodev) {
            why.push(probe.missing_reason(Feature::Nodev));
            continue;
        }
        return Ok(t);
    }
    if why.is_empty() {
        let join = |k: &[Kind]| k.iter().map(|k| k.name()).collect::<Vec<_>>();
        Err(SkipReason::Requirement(format!(
            "needs topology {} (this run has {})",
            join(&case_topos).join(" or "),
            join(run_kinds).join(", ")
        )))
    } else {
        Err(SkipReason::Requirement(why.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_case_once() {
        let cases = crate::case::load_all(&[crate::paths::default_case_dir()]).expect("cases load");
        for n in 1..=5u32 {
            let mut seen = std::collections::BTreeMap::new();
            for k in 1..=n {
                let sel = Selection { shard: Some((k, n)), ..Default::default() };
                for c in select(&cases, &sel) {
                    *seen.entry(c.id.clone()).or_insert(0) += 1;
                }
            }
            assert_eq!(seen.len(), cases.len(), "n={n}");
            assert!(seen.values().all(|&v| v == 1), "n={n}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("2.5").ok(), Some(2.5));
        for bad in ["0", "-1", "inf", "NaN", "1e300", "x", "86401"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("2/3").ok(), Some((2, 3)));
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert!(parse_shard("x").is_err());
        assert_eq!(parse_shard("4096/4096").ok(), Some((4096, 4096)));
        assert!(parse_shard("1/4097").is_err());
        assert!(parse_shard(&format!("1/{}", "9".repeat(1000))).is_err_and(|e| e.to_string().len() < 200));
    }

    #[test]
    fn exact_selection() {
        let cases = crate::case::load_all(&[crate::paths::default_case_dir()]).expect("cases load");
        let sel = Selection { filter: vec!["query.opcodes".into()], exact: true, shard: None };
        let ids: Vec<&str> = select(&cases, &sel).iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["query.opcodes"]);
    }
}
