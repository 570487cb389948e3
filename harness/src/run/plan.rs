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
    /// Commit id prefixes ([`parse_fix_prefix`]): only cases with a `fixes:` tag whose id starts
    /// with one of them. Empty: no such condition.
    pub fixes: Vec<String>,
    /// CVE ids ([`parse_cve`]): only cases tagged with one of them. Empty: no such condition.
    pub cve: Vec<String>,
    /// Each selected case this many times in a row (0 and 1: once).
    pub repeat: u32,
}

/// Shortest commit id prefix `--fixes` takes: shorter ones name too many commits.
pub const MIN_FIX_PREFIX: usize = 7;

/// `--fixes PREFIX`: 7 to 40 hex digits, compared in lower case.
pub fn parse_fix_prefix(s: &str) -> Result<String, Error> {
    let t = s.trim().to_ascii_lowercase();
    if (MIN_FIX_PREFIX..=40).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t)
    } else {
        let shown = crate::report::escape::clipped(s, 48);
        Err(Error::Selection(format!(
            "--fixes `{shown}`: expected a commit id prefix of {MIN_FIX_PREFIX} to 40 hex digits"
        )))
    }
}

/// `--cve ID`: a CVE id, compared in upper case.
pub fn parse_cve(s: &str) -> Result<String, Error> {
    let t = s.trim().to_ascii_uppercase();
    crate::case::check_cve(&t).map(|()| t).map_err(|_| {
        let shown = crate::report::escape::clipped(s, 48);
        Error::Selection(format!("--cve `{shown}`: expected a CVE id such as CVE-2025-40046"))
    })
}

/// Whether a case carries one of the selected tags (true when none are selected).
fn tagged(case: &Case, sel: &Selection) -> bool {
    let d = &case.def;
    (sel.fixes.is_empty() || d.fixes.iter().any(|f| sel.fixes.iter().any(|p| f.id.starts_with(p.as_str()))))
        && (sel.cve.is_empty() || d.cve.iter().any(|c| sel.cve.contains(c)))
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
        .filter(|c| tagged(c, sel))
        .filter(|c| sel.shard.is_none_or(|(k, n)| shard_of(&c.id, n) == k))
        .flat_map(|c| std::iter::repeat_n(c, sel.repeat.max(1) as usize))
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
    fn tags_select_cases() {
        let case = |id: &str, tags: &str| {
            let text = format!(
                "id: {id}\narea: rq\nabout: x\n{tags}steps:\n  - register: {{}}\n    expect: {{ errno: EINVAL }}\n"
            );
            crate::case::load_str(std::path::Path::new("t.yaml"), &text).expect("loads").remove(0)
        };
        let cases = [
            case("rq.a", "fixes: [{ id: 4f02cc4071a1, subject: s }]\n"),
            case("rq.b", "fixes: [{ id: 09cfd3c52ea7, subject: s }]\ncve: [CVE-2025-40046]\n"),
            case("rq.c", ""),
        ];
        let ids = |sel: &Selection| select(&cases, sel).iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        let fixes = |p: &[&str]| p.iter().map(|p| parse_fix_prefix(p).expect("prefix")).collect::<Vec<_>>();
        assert_eq!(ids(&Selection::default()), ["rq.a", "rq.b", "rq.c"]);
        assert_eq!(ids(&Selection { fixes: fixes(&["4F02CC4"]), ..Default::default() }), ["rq.a"]);
        assert_eq!(
            ids(&Selection { fixes: fixes(&["4f02cc4", "09cfd3c52ea7"]), ..Default::default() }),
            ["rq.a", "rq.b"]
        );
        assert_eq!(
            ids(&Selection { cve: vec![parse_cve("cve-2025-40046").expect("cve")], ..Default::default() }),
            ["rq.b"]
        );
        let both = Selection { fixes: fixes(&["4f02cc4"]), cve: vec!["CVE-2025-40046".into()], ..Default::default() };
        assert!(ids(&both).is_empty(), "the two selectors are both conditions");
        let with_filter = Selection { filter: vec!["rq.b".into()], fixes: fixes(&["4f02cc4"]), ..Default::default() };
        assert!(ids(&with_filter).is_empty());
        for bad in ["4f02cc", "4f02cc4x", "", "4f02cc4071a14f02cc4071a14f02cc4071a14f02c"] {
            assert!(parse_fix_prefix(bad).is_err(), "{bad}");
        }
        for bad in ["CVE-2025", "40046", "CVE-2025-40046;x"] {
            assert!(parse_cve(bad).is_err(), "{bad}");
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
        let sel = Selection { filter: vec!["query.opcodes".into()], exact: true, ..Default::default() };
        let ids: Vec<&str> = select(&cases, &sel).iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["query.opcodes"]);
    }
}
