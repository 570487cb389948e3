//! Rules for what a case file says beyond its types: case ids, timeouts, and whether a case
//! checks anything at all.

use super::yaml::short;
use super::{NsimDevice, Step};

/// Longest case id, matrix values included.
pub const MAX_ID_BYTES: usize = 128;

/// Longest case timeout, in seconds (the same bound as `--timeout`).
pub const MAX_TIMEOUT_S: f64 = 3600.0;
/// Shortest case timeout, in seconds.
pub const MIN_TIMEOUT_S: f64 = 0.001;

/// A case id is printed into KTAP, JUnit, terminals and shell commands: printable ASCII
/// without `/`, `'` or `\`, not starting with `-` or `.`, 1 to [`MAX_ID_BYTES`] bytes.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("the case id is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("the case id `{}` is {} bytes long (at most {MAX_ID_BYTES})", short(id), id.len()));
    }
    if let Some(c) = id.chars().find(|c| !(' '..='~').contains(c)) {
        let c = c.escape_default();
        return Err(format!("the case id `{}` contains `{c}` (only printable ASCII is allowed)", short(id)));
    }
    if let Some(c) = id.chars().find(|c| matches!(c, '/' | '\'' | '\\')) {
        return Err(format!("the case id `{}` contains `{c}` (not allowed: / ' \\)", short(id)));
    }
    if let Some(c) = id.chars().next().filter(|c| matches!(c, '-' | '.')) {
        return Err(format!("the case id `{}` starts with `{c}`", short(id)));
    }
    Ok(())
}

/// A case's `timeout`, validated like `--timeout`.
pub fn check_timeout(t: f64) -> Result<(), String> {
    if t.is_finite() && (MIN_TIMEOUT_S..=MAX_TIMEOUT_S).contains(&t) {
        Ok(())
    } else {
        Err(format!("timeout: {t:?} is not a number of seconds from {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S}"))
    }
}

/// A kernel version in a case: `7`, `7.2` or `7.2.99`.
pub fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() <= 3 && parts.iter().all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether the step is one of the calls whose result an `expect` describes (success when absent).
pub fn kernel_call(s: &Step) -> bool {
    s.register.is_some()
        || s.ctrl.is_some()
        || s.query.is_some()
        || s.register_raw.is_some()
        || s.open_ring.is_some()
        || s.mmap_region.is_some()
}

/// Whether a step checks something the kernel does (an assertion that can fail). Calls that
/// take an `expect` check their result (success when absent); `expect_*`, `drain_data`,
/// netdevsim counters and a flush of the refill queue do too. Setting things up (`connect`,
/// `send`, `recv_zc`, `close`, `tun`, ...) checks nothing.
pub fn asserts(s: &Step) -> bool {
    let calls = kernel_call(s)
        || s.queue_get.is_some()
        || s.page_pools.is_some()
        || s.process.is_some()
        || s.nsim_device.as_ref().is_some_and(|d| matches!(d, NsimDevice::Delete(_)))
        || s.qstats.as_ref().is_some_and(|q| q.rx_alloc_fail.is_some() || q.rx_alloc_fail_at_least.is_some());
    let expects = s.expect_cqes.is_some()
        || s.expect_data.is_some()
        || s.drain_data.is_some()
        || s.expect_no_cqe.is_some()
        || s.expect_rq.is_some()
        || s.expect_stats.is_some()
        || s.expect.is_some();
    let counters = s.nsim.as_ref().is_some_and(|n| n.checks());
    let flush = s.return_buffers.as_ref().is_some_and(|r| r.flush) || s.rq_push.as_ref().is_some_and(|r| r.flush);
    calls || expects || counters || flush
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_rules() {
        for ok in ["a.b", "recv.prep_errors[ioprio,[MULTISHOT, 4]]", "nic.hds_settings[tcp_data_split: \"off\"]", "x"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in ["", "a/b", "a'b", "a\\b", "-a", ".a", "a\nb", "a\x1bb", "é", long.as_str()] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_id(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn versions_are_numbers() {
        assert!(is_version("7") && is_version("7.2") && is_version("7.2.99"));
        assert!(!is_version("7.x") && !is_version("") && !is_version("7..2") && !is_version("1.2.3.4"));
    }

    #[test]
    fn timeouts_are_bounded() {
        for bad in [0.0, -1.0, 1e-9, f64::NAN, f64::INFINITY, 3600.5] {
            assert!(check_timeout(bad).is_err(), "{bad}");
        }
        for ok in [0.001, 1.0, 3600.0] {
            assert!(check_timeout(ok).is_ok(), "{ok}");
        }
    }
}
