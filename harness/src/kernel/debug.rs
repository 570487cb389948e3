//! A debug kernel's facilities, through debugfs and procfs: kmemleak (scan, read, clear), the
//! jiffies clock its reports use, and fault injection (`/proc/thread-self/fail-nth` with the
//! failslab / fail_page_alloc / fail_usercopy knobs). Every path here is a fixed kernel
//! interface; nothing comes from a case file.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::model::splat::parse_kmemleak;
use crate::model::LeakedObject;

const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";
const TIMER_LIST: &str = "/proc/timer_list";
const GCOV: &str = "/sys/kernel/debug/gcov";
/// How deep the build tree's path under [`GCOV`] may go (`/work/cache/mutate/<tree>/io_uring`).
const GCOV_DEPTH: usize = 16;
/// kmemleak reports only objects older than this (`jiffies_min_age`, 5 s) and a margin.
pub const KMEMLEAK_MIN_AGE: Duration = Duration::from_secs(6);

fn write_knob(path: &str, value: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Whether this kernel has kmemleak, enabled (its debugfs file is there and writable).
pub fn kmemleak_present() -> bool {
    std::fs::OpenOptions::new().write(true).open(KMEMLEAK).is_ok()
}

/// Whether this kernel has the fault-injection knobs a sweep needs: fail-nth on the task and
/// the failslab and fail_page_alloc debugfs directories.
pub fn fault_injection_present() -> bool {
    std::path::Path::new("/proc/self/fail-nth").exists()
        && std::path::Path::new("/sys/kernel/debug/failslab").is_dir()
        && std::path::Path::new("/sys/kernel/debug/fail_page_alloc").is_dir()
}

/// The gcov counters of io_uring/zcrx.c (`zcrx.gcda` under debugfs's gcov directory, whose
/// folders mirror the build tree's path), on a kernel built with gcov on zcrx.o; None on any
/// other kernel.
pub fn zcrx_gcda() -> Option<Vec<u8>> {
    let mut stack = vec![(std::path::PathBuf::from(GCOV), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let p = e.path();
            if t.is_dir() && depth < GCOV_DEPTH {
                stack.push((p, depth + 1));
            } else if t.is_file() && e.file_name() == "zcrx.gcda" && p.parent().is_some_and(|q| q.ends_with("io_uring"))
            {
                return std::fs::read(p).ok();
            }
        }
    }
    None
}

/// One kmemleak scan (synchronous: the write returns when the scan is done), then what it
/// reports: every unreferenced object not cleared before. Two scans are needed for an object
/// allocated since the previous scan: the first only records its checksum.
pub fn kmemleak_scan() -> std::io::Result<Vec<LeakedObject>> {
    write_knob(KMEMLEAK, "scan")?;
    Ok(parse_kmemleak(&std::fs::read_to_string(KMEMLEAK)?))
}

/// Forgets the objects reported so far (they are not reported again).
pub fn kmemleak_clear() -> std::io::Result<()> {
    write_knob(KMEMLEAK, "clear")
}

/// A point where the kernel's jiffies and this process's monotonic clock were read together:
/// two of them turn an object's allocation jiffies into an [`Instant`].
#[derive(Clone, Copy, Debug)]
pub struct JiffiesMark {
    pub jiffies: u64,
    pub at: Instant,
}

/// Reads the jiffies counter (`/proc/timer_list`'s `jiffies:` line).
pub fn jiffies_now() -> Option<JiffiesMark> {
    let text = std::fs::read_to_string(TIMER_LIST).ok()?;
    let at = Instant::now();
    let j = text.lines().find_map(|l| l.trim().strip_prefix("jiffies:"))?.trim().parse().ok()?;
    Some(JiffiesMark { jiffies: j, at })
}

/// The instant of jiffies `j`, from two marks (the clock's rate comes from them); `None` when
/// the marks are too close to tell the rate.
pub fn jiffies_instant(a: JiffiesMark, b: JiffiesMark, j: u64) -> Option<Instant> {
    let dj = b.jiffies.checked_sub(a.jiffies)? as f64;
    let dt = b.at.checked_duration_since(a.at)?.as_secs_f64();
    if dj < 1.0 || dt < 0.5 {
        return None;
    }
    let secs = (j as f64 - a.jiffies as f64) * dt / dj;
    if secs >= 0.0 {
        Some(a.at + Duration::from_secs_f64(secs))
    } else {
        a.at.checked_sub(Duration::from_secs_f64(-secs))
    }
}

/// Fault-injection knobs of one capability, under /sys/kernel/debug/<name>/.
const CAPS: &[&str] = &["failslab", "fail_page_alloc", "fail_usercopy"];

/// Sets the knobs a fail-nth sweep needs (docs/fault-injection.md): sleeping allocations and
/// order-0 pages fail too, every injected failure prints its stack (verbose=2, no rate
/// limit to speak of), and the probability mode is off (fail-nth alone decides).
pub fn fault_knobs_for_sweep() -> std::io::Result<()> {
    for cap in CAPS {
        let dir = format!("/sys/kernel/debug/{cap}");
        if !std::path::Path::new(&dir).is_dir() {
            continue;
        }
        for (k, v) in [
            ("probability", "0"),
            ("interval", "1"),
            ("times", "-1"),
            ("space", "0"),
            ("verbose", "2"),
            ("verbose_ratelimit_burst", "100000"),
        ] {
            write_knob(&format!("{dir}/{k}"), v)?;
        }
        if *cap != "fail_usercopy" {
            write_knob(&format!("{dir}/ignore-gfp-wait"), "N")?;
        }
        // The task filter is off: fail-nth arms one task anyway.
        write_knob(&format!("{dir}/task-filter"), "N")?;
    }
    write_knob("/sys/kernel/debug/fail_page_alloc/min-order", "0")?;
    write_knob("/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jiffies_map_to_instants() {
        let t0 = Instant::now();
        let a = JiffiesMark { jiffies: 1000, at: t0 };
        let b = JiffiesMark { jiffies: 3000, at: t0 + Duration::from_secs(2) };
        let at = jiffies_instant(a, b, 2000).expect("between");
        assert_eq!(at.duration_since(t0).as_millis(), 1000);
        assert!(jiffies_instant(a, a, 2000).is_none());
        let before = jiffies_instant(a, b, 0);
        assert!(before.is_none_or(|i| i < t0));
    }
}
