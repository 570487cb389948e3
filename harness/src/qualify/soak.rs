//! `qualify --soak DURATION`: the data-path cases again and again for a while, with the
//! machine's memory and the NIC's counters sampled after every round; a leak or a counter that
//! drifts fails the qualification.
//!
//! The rule ([`judge`]), over the samples after the first (the warm-up round):
//! - every round's cases pass;
//! - memory: for Slab, the process RSS and MemAvailable (inverted), the least-squares slope
//!   over time, projected over the soak, must stay below the limit ([`LIMITS_KB`]) — or the
//!   last sample must be within half the limit of the first (noise that returns is no leak);
//!   at least [`MIN_SAMPLES`] samples, else memory is not judged (and the report says so);
//! - counters: per round (the increments of a cumulative counter, or the values of a counter
//!   the cases reset every round), a counter of events the zero-copy path should not have
//!   (copy fallbacks, drops, errors, allocation failures) must not be higher in the last third
//!   of the rounds than 1.5 times the first third plus one; a level (page-pool pages in flight,
//!   pools still held by io_uring, anything outstanding) may be caught on its way back (teardown
//!   is asynchronous), but its floor (minimum) over the last third must not be above the first
//!   third's.

use super::QError as Error;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::html::escape;

/// Fewest samples (after the warm-up) for memory to be judged.
pub const MIN_SAMPLES: usize = 4;

/// Growth over the soak that counts as a leak, in KiB.
pub const LIMITS_KB: &[(&str, f64)] = &[("slab_kb", 16384.0), ("rss_kb", 8192.0), ("mem_used_kb", 65536.0)];

/// One round.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub round: usize,
    /// Seconds since the soak started (end of the round).
    pub t_s: f64,
    pub passed: usize,
    pub failed: usize,
    /// Bytes the DUT received this round (its rx_bytes), and per second.
    pub rx_bytes: u64,
    pub throughput_mbit_s: f64,
    /// MemTotal - MemAvailable, Slab, this process's VmRSS (KiB).
    pub mem_used_kb: u64,
    pub slab_kb: u64,
    pub rss_kb: u64,
    /// NIC and page-pool counters readable here (cumulative values), by name.
    pub counters: BTreeMap<String, i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakReport {
    pub duration_s: f64,
    pub rounds: usize,
    /// The cases each round ran.
    pub cases: Vec<String>,
    /// Where counters came from, or why there are none.
    pub counter_sources: Vec<String>,
    pub samples: Vec<Sample>,
    /// Why the soak failed (empty: it passed).
    pub failures: Vec<String>,
    /// What was not judged and why.
    pub notes: Vec<String>,
}

/// Parses `30s`, `10m`, `2h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<f64, Error> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| Error::Args(format!("`{s}`: expected a duration such as 90s, 10m or 2h")))?;
    let secs = v * mul;
    if secs.is_finite() && secs > 0.0 && secs <= 7.0 * 86400.0 {
        Ok(secs)
    } else {
        Err(Error::Args(format!("`{s}`: a duration above 0 and at most a week")))
    }
}

fn meminfo() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

fn rss_kb() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Memory now: (used, slab, rss) in KiB.
pub fn memory() -> (u64, u64, u64) {
    let m = meminfo();
    let used = m.get("MemTotal").unwrap_or(&0).saturating_sub(*m.get("MemAvailable").unwrap_or(&0));
    (used, *m.get("Slab").unwrap_or(&0), rss_kb())
}

/// Counters in a directory of one-number files (netdevsim-zcrx's debugfs `hds/`).
pub fn dir_counters(dir: &Path, prefix: &str, out: &mut BTreeMap<String, i64>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(v) = std::fs::read_to_string(e.path()).ok().and_then(|t| t.trim().parse::<i64>().ok()) {
                out.insert(format!("{prefix}{name}"), v);
            }
        }
    }
}

/// Levels (resources held right now): must end where they started.
fn is_level(name: &str) -> bool {
    ["inflight", "in_flight", "outstanding", "held"].iter().any(|w| name.contains(w))
}

/// Counters that count events the zero-copy path must not have (their rate must not grow).
fn is_event_counter(name: &str) -> bool {
    ["fallback", "copy", "alloc_fail", "drop", "error"].iter().any(|w| name.contains(w))
}

fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// Applies the module's rule; fills `failures` and `notes`.
pub fn judge(r: &mut SoakReport) {
    r.failures.clear();
    r.notes.clear();
    for s in &r.samples {
        if s.failed > 0 {
            r.failures.push(format!("round {}: {} case(s) failed", s.round, s.failed));
        }
    }
    let s: Vec<&Sample> = r.samples.iter().skip(1).collect();
    if s.len() < MIN_SAMPLES {
        r.notes.push(format!(
            "memory and counters not judged: {} sample(s) after the warm-up round, {MIN_SAMPLES} needed (soak longer)",
            s.len()
        ));
        return;
    }
    let t: Vec<f64> = s.iter().map(|x| x.t_s).collect();
    let span = t[t.len() - 1] - t[0];
    for (name, limit) in LIMITS_KB {
        let v: Vec<f64> = s
            .iter()
            .map(|x| match *name {
                "slab_kb" => x.slab_kb,
                "rss_kb" => x.rss_kb,
                _ => x.mem_used_kb,
            } as f64)
            .collect();
        let grown = slope(&t, &v) * span;
        let net = v[v.len() - 1] - v[0];
        if grown > *limit && net > limit / 2.0 {
            r.failures.push(format!(
                "leak: {name} grows {grown:.0} KiB over {span:.0} s (trend; {net:.0} KiB first to last), limit {limit:.0} KiB"
            ));
        }
    }
    let names: std::collections::BTreeSet<&String> = s.iter().flat_map(|x| x.counters.keys()).collect();
    for n in names {
        let v: Vec<Option<i64>> = s.iter().map(|x| x.counters.get(n).copied()).collect();
        let Some(v) = v.into_iter().collect::<Option<Vec<i64>>>() else {
            r.notes.push(format!("{n}: not read in every round, not judged"));
            continue;
        };
        if is_level(n) {
            // Teardown is asynchronous, so a sample may catch a level on its way back; a leak
            // keeps it up: its floor over the last third must not be above the first third's.
            let third = (v.len() / 3).max(1);
            let (first, last) = (v[..third].iter().min(), v[v.len() - third..].iter().min());
            if let (Some(f), Some(l)) = (first, last) {
                if l > f {
                    r.failures.push(format!("drift: {n} (a level) does not come back: its floor rose from {f} to {l}"));
                }
            }
            continue;
        }
        if !is_event_counter(n) {
            continue;
        }
        // Per round: the increments of a cumulative counter, or the values of one the cases
        // reset every round (netdevsim-zcrx's are).
        let per_round: Vec<f64> = if v.windows(2).all(|w| w[1] >= w[0]) {
            v.windows(2).map(|w| (w[1] - w[0]) as f64).collect()
        } else {
            v.iter().map(|&x| x as f64).collect()
        };
        let third = (per_round.len() / 3).max(1);
        let mean = |w: &[f64]| w.iter().sum::<f64>() / w.len().max(1) as f64;
        let (first, last) = (mean(&per_round[..third]), mean(&per_round[per_round.len() - third..]));
        if last > first * 1.5 + 1.0 {
            r.failures.push(format!("drift: {n} grows {last:.1} per round at the end, {first:.1} at the start"));
        }
    }
}

pub fn html(s: &mut String, r: &SoakReport) {
    let _ = writeln!(
        s,
        "<h2>Soak</h2><p>{} round(s) of {} in {:.0} s: <b>{}</b></p>",
        r.rounds,
        escape(&r.cases.join(", ")),
        r.duration_s,
        if r.failures.is_empty() { "no leak or drift" } else { "FAILED" }
    );
    for f in r.failures.iter().chain(&r.notes) {
        let _ = writeln!(s, "<p>{}</p>", escape(f));
    }
    let _ = writeln!(s, "<p>Counters from: {}</p>", escape(&r.counter_sources.join("; ")));
    let names: std::collections::BTreeSet<&String> = r.samples.iter().flat_map(|x| x.counters.keys()).collect();
    s.push_str("<table><tr><th>round</th><th>s</th><th>pass/fail</th><th>Mbit/s</th><th>used KiB</th><th>slab KiB</th><th>RSS KiB</th>");
    for n in &names {
        let _ = write!(s, "<th>{}</th>", escape(n));
    }
    s.push_str("</tr>\n");
    for x in &r.samples {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{:.1}</td><td>{}/{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td>",
            x.round, x.t_s, x.passed, x.failed, x.throughput_mbit_s, x.mem_used_kb, x.slab_kb, x.rss_kb
        );
        for n in &names {
            let _ = write!(s, "<td>{}</td>", x.counters.get(*n).map(|v| v.to_string()).unwrap_or_default());
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: usize, f: impl Fn(usize) -> Sample) -> SoakReport {
        SoakReport {
            samples: (0..n).map(|i| Sample { round: i, t_s: i as f64 * 10.0, passed: 2, ..f(i) }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").ok(), Some(90.0));
        assert_eq!(parse_duration("10m").ok(), Some(600.0));
        assert_eq!(parse_duration("2h").ok(), Some(7200.0));
        assert_eq!(parse_duration("45").ok(), Some(45.0));
        for bad in ["", "0", "-1m", "x", "9d", "inf", "1e9h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn steady_memory_and_counters_pass_and_noise_is_no_leak() {
        let mut r = samples(12, |i| Sample {
            slab_kb: 100_000 + (i % 3) as u64 * 4000,
            rss_kb: 20_000,
            mem_used_kb: 500_000 + (i % 2) as u64 * 30_000,
            counters: [("hds.fallback".to_string(), 0), ("hds.split".to_string(), i as i64 * 1000)].into(),
            ..Default::default()
        });
        judge(&mut r);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
    }

    #[test]
    fn growing_slab_is_a_leak() {
        let mut r = samples(12, |i| Sample { slab_kb: 100_000 + i as u64 * 3000, ..Default::default() });
        judge(&mut r);
        assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
        assert!(r.failures[0].starts_with("leak: slab_kb"), "{:?}", r.failures);
        // The same growth in RSS, and a MemAvailable that keeps falling.
        let mut r = samples(12, |i| Sample { rss_kb: 10_000 + i as u64 * 2000, ..Default::default() });
        judge(&mut r);
        assert!(r.failures.iter().any(|f| f.starts_with("leak: rss_kb")), "{:?}", r.failures);
        let mut r = samples(12, |i| Sample { mem_used_kb: 10_000 + i as u64 * 10_000, ..Default::default() });
        judge(&mut r);
        assert!(r.failures.iter().any(|f| f.starts_with("leak: mem_used_kb")), "{:?}", r.failures);
    }

    #[test]
    fn a_rising_fallback_rate_and_a_level_that_does_not_return_drift() {
        // Copy fallbacks: none at first, then more and more per round.
        let mut r = samples(12, |i| Sample {
            counters: [("hds.fallback".to_string(), if i < 6 { 0 } else { ((i - 5) * (i - 5) * 10) as i64 })].into(),
            ..Default::default()
        });
        judge(&mut r);
        assert!(r.failures.iter().any(|f| f.starts_with("drift: hds.fallback")), "{:?}", r.failures);
        // The same with a counter the cases reset every round (the values are per round).
        let mut r = samples(12, |i| Sample {
            counters: [("hds.fallback".to_string(), if i < 6 { 0 } else { [40, 3][i % 2] })].into(),
            ..Default::default()
        });
        judge(&mut r);
        assert!(r.failures.iter().any(|f| f.starts_with("drift: hds.fallback")), "{:?}", r.failures);
        // A steady fallback rate is no drift.
        let mut r = samples(12, |i| Sample {
            counters: [("hds.fallback".to_string(), i as i64 * 5)].into(),
            ..Default::default()
        });
        judge(&mut r);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        // A level that keeps coming back (teardown caught half-way) is fine, even at the end...
        let mut r = samples(12, |i| Sample {
            counters: [("pp.inflight".to_string(), [0, 100, 0][i % 3] + if i == 11 { 64 } else { 0 })].into(),
            ..Default::default()
        });
        judge(&mut r);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        // ...one whose floor rises is a leak.
        let mut r = samples(12, |i| Sample {
            counters: [("pp.inflight".to_string(), [0, 100, 0][i % 3] + i as i64 * 8)].into(),
            ..Default::default()
        });
        judge(&mut r);
        assert!(r.failures.iter().any(|f| f.starts_with("drift: pp.inflight")), "{:?}", r.failures);
    }

    #[test]
    fn failed_rounds_fail_and_short_soaks_say_they_were_not_judged() {
        let mut r = samples(3, |i| Sample { slab_kb: i as u64 * 1_000_000, ..Default::default() });
        r.samples[1].failed = 1;
        judge(&mut r);
        assert_eq!(r.failures, vec!["round 1: 1 case(s) failed".to_string()]);
        assert!(r.notes[0].starts_with("memory and counters not judged"), "{:?}", r.notes);
    }
}
