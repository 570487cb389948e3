//! Rules for what a case file says beyond its types: case ids, timeouts, kernel versions.

use super::yaml::short;

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

/// Shortest commit id a `fixes:` tag may give (`git log --abbrev=12`, as the kernel's own
/// `Fixes:` lines do).
pub const MIN_FIX_ID: usize = 12;

/// A `fixes:` commit id: 12 to 40 lower-case hex digits.
pub fn check_fix_id(id: &str) -> Result<(), String> {
    if !(MIN_FIX_ID..=40).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("fixes.id: `{}` is not a commit id (12 to 40 lower-case hex digits)", short(id)));
    }
    Ok(())
}

/// A `fixes:` subject: the commit's subject line, one line of printable text, at most 200 bytes.
pub fn check_fix_subject(subject: &str) -> Result<(), String> {
    if subject.trim().is_empty() {
        return Err("fixes.subject: empty (give the commit's subject line)".into());
    }
    if subject.len() > 200 || subject.chars().any(char::is_control) {
        return Err(format!("fixes.subject: `{}` is not one line of at most 200 bytes", short(subject)));
    }
    Ok(())
}

/// A `cve:` entry: `CVE-YYYY-NNNN`, the year four digits, the number four or more (at most 12).
pub fn check_cve(cve: &str) -> Result<(), String> {
    let ok = cve.strip_prefix("CVE-").and_then(|r| r.split_once('-')).is_some_and(|(y, n)| {
        y.len() == 4
            && y.bytes().all(|b| b.is_ascii_digit())
            && (4..=12).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(format!("cve: `{}` is not a CVE id (CVE-YYYY-NNNN, e.g. CVE-2025-40046)", short(cve)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_tags_follow_the_rules() {
        for ok in ["003049b1c4fb", "f12ecf5e1c5eca48b8652e893afcdb730384a6aa"] {
            assert_eq!(check_fix_id(ok), Ok(()), "{ok}");
        }
        for bad in ["003049b1c4f", "003049B1C4FB", "003049b1c4fg", "", "f12ecf5e1c5eca48b8652e893afcdb730384a6aa0"] {
            assert!(check_fix_id(bad).is_err(), "{bad}");
        }
        assert_eq!(check_fix_subject("io_uring/zcrx: clear RQ headers on init"), Ok(()));
        let long = "x".repeat(201);
        for bad in ["", "  ", "a\nb", long.as_str()] {
            assert!(check_fix_subject(bad).is_err(), "{bad}");
        }
        for ok in ["CVE-2025-40046", "CVE-2026-123456"] {
            assert_eq!(check_cve(ok), Ok(()), "{ok}");
        }
        for bad in ["CVE-2025-404", "cve-2025-40046", "CVE-25-40046", "CVE-2025-40046x", "CVE-2025", "2025-40046"] {
            assert!(check_cve(bad).is_err(), "{bad}");
        }
    }

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
