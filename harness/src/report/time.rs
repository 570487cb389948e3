//! Times in reports: RFC 3339 timestamps (UTC, milliseconds) and the one conversion of a
//! report's seconds (`f64`, possibly hostile: NaN, negative, `1e300`) to a [`Duration`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest duration a report can express (100 years); longer ones are cut to it.
pub const MAX_SECONDS: f64 = 100.0 * 365.25 * 86_400.0;

/// `s` seconds as a [`Duration`]: NaN, infinite or negative values are zero, values past
/// [`MAX_SECONDS`] are cut to it. Never panics (`Duration::from_secs_f64` does).
pub fn duration(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(MAX_SECONDS))
    } else {
        Duration::ZERO
    }
}

/// `(year, month, day)` of a day count since 1970-01-01 (proleptic Gregorian, UTC).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `(year, month, day, hour, minute, second, millisecond)` of `t` in UTC.
pub fn utc_parts(t: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, da) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    (y, mo, da, sod / 3600, sod % 3600 / 60, sod % 60, d.subsec_millis())
}

/// RFC 3339 in UTC with milliseconds: `2026-11-22T02:33:00.123+00:00`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = utc_parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}+00:00")
}

/// Now, as [`rfc3339`].
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000+00:00");
    }

    #[test]
    fn hostile_seconds_do_not_panic() {
        assert_eq!(duration(f64::NAN), Duration::ZERO);
        assert_eq!(duration(-1.0), Duration::ZERO);
        assert_eq!(duration(f64::INFINITY), Duration::ZERO);
        assert_eq!(duration(1e300), Duration::from_secs_f64(MAX_SECONDS));
        assert_eq!(duration(1.5), Duration::from_millis(1500));
    }
}
