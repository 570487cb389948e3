//! kmemleak verdicts, per batch of cases: a scan costs 20-64 s under TCG with KASAN and
//! kmemleak reports only objects older than 5 s, so the runner scans after a batch of cases
//! (every [`BATCH`] of wall time, and at the end), with no case running. A leaked object fails
//! the case whose forked child allocated it (its pid names the case); an io_uring, page_pool
//! or netdevsim object allocated by another task (a kworker tearing a ring down, a process a
//! case forked) goes to the case that ran when it was allocated (its jiffies, mapped to the
//! runner's clock). A result reported before its scan is amended afterwards
//! ([`crate::model::event::Event::Leaked`]).
//!
//! An object can stay "referenced" for a while after it leaked (a stale word somewhere kmemleak
//! scans): on the debug kernel with planted bug 01, each of five leaked instances was there, but
//! the scan right after the cases reported one or two and the others came in scans 5 and 10 s
//! later. So an object is attributed against every case of the run, not only the batch's, and
//! the last scan of a run is followed by [`LATE_SCANS`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::kernel::debug::{self, JiffiesMark};
use crate::model::LeakedObject;

/// Wall time between scans.
const BATCH: Duration = Duration::from_secs(600);

/// After the run's last scan, the waits before the scans that catch objects whose last stale
/// reference went away since (measured: 5 and 10 s after the cases, nothing new at 20 s).
const LATE_SCANS: [Duration; 3] = [Duration::from_secs(5), Duration::from_secs(5), Duration::from_secs(10)];

/// A case run of the batch: which result it is, its child's pid, when it ran.
struct Ran {
    idx: usize,
    pid: i32,
    start: Instant,
    end: Instant,
}

pub(super) struct LeakScan {
    on: bool,
    mark: Option<JiffiesMark>,
    last: Instant,
    batch: Vec<Ran>,
    /// Every case run of the batches scanned before: a late object may be theirs.
    earlier: Vec<Ran>,
}

/// What one scan found: leaked objects per result index, and those no case can be blamed for.
#[derive(Default)]
pub(super) struct Found {
    pub by_case: HashMap<usize, Vec<LeakedObject>>,
    pub elsewhere: Vec<LeakedObject>,
}

impl LeakScan {
    pub(super) fn new(on: bool) -> LeakScan {
        LeakScan {
            on,
            mark: if on { debug::jiffies_now() } else { None },
            last: Instant::now(),
            batch: Vec::new(),
            earlier: Vec::new(),
        }
    }

    /// Whether this kernel is scanned.
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// A case run ended.
    pub(super) fn ran(&mut self, idx: usize, pid: i32, start: Instant) {
        if self.on {
            self.batch.push(Ran { idx, pid, start, end: Instant::now() });
        }
    }

    /// Whether the batch is due for a scan (no new case starts until it is done).
    pub(super) fn due(&self) -> bool {
        self.on && !self.batch.is_empty() && self.last.elapsed() >= BATCH
    }

    /// Cases in the batch.
    pub(super) fn pending(&self) -> usize {
        self.batch.len()
    }

    /// Scans (twice: an object's first scan only records its checksum), attributes what was
    /// found and clears it. `last`: the run's last scan, followed by [`LATE_SCANS`].
    pub(super) fn scan(&mut self, last: bool) -> Result<Found, std::io::Error> {
        let batch = std::mem::take(&mut self.batch);
        if let Some(end) = batch.iter().map(|r| r.end).max() {
            let ready = end + debug::KMEMLEAK_MIN_AGE;
            if let Some(wait) = ready.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        self.earlier.extend(batch);
        debug::kmemleak_scan()?;
        let mut objects = debug::kmemleak_scan()?;
        debug::kmemleak_clear()?;
        if last {
            for wait in LATE_SCANS {
                std::thread::sleep(wait);
                objects.extend(debug::kmemleak_scan()?);
                debug::kmemleak_clear()?;
            }
        }
        let now = debug::jiffies_now();
        let mut found = Found::default();
        for o in objects {
            match attribute(&self.earlier, &o, self.mark.zip(now)) {
                Some(idx) => found.by_case.entry(idx).or_default().push(o),
                None => found.elsewhere.push(o),
            }
        }
        self.last = Instant::now();
        Ok(found)
    }
}

/// The case an object is blamed on: by its task's pid, else (an object of ours only) by when
/// it was allocated: the case that ran then, or the last one that had ended by then.
fn attribute(batch: &[Ran], o: &LeakedObject, marks: Option<(JiffiesMark, JiffiesMark)>) -> Option<usize> {
    if let Some(r) = batch.iter().find(|r| r.pid == o.pid) {
        return Some(r.idx);
    }
    if !o.in_scope() {
        return None;
    }
    let (a, b) = marks?;
    let at = debug::jiffies_instant(a, b, o.jiffies)?;
    let first = batch.iter().map(|r| r.start).min()?;
    if at < first {
        return None;
    }
    batch.iter().filter(|r| r.start <= at).max_by_key(|r| r.start).map(|r| r.idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_go_to_their_case() {
        let t0 = Instant::now();
        let s = |x: u64| t0 + Duration::from_secs(x);
        let batch = vec![
            Ran { idx: 3, pid: 100, start: s(10), end: s(12) },
            Ran { idx: 4, pid: 101, start: s(12), end: s(20) },
        ];
        let obj = |pid: i32, jiffies: u64, frame: &str| LeakedObject {
            pid,
            jiffies,
            backtrace: vec![frame.into()],
            ..Default::default()
        };
        // One jiffy a millisecond, jiffies 0 at t0.
        let marks = Some((JiffiesMark { jiffies: 0, at: t0 }, JiffiesMark { jiffies: 30_000, at: s(30) }));
        assert_eq!(attribute(&batch, &obj(101, 0, "kmalloc"), marks), Some(4));
        // A kworker's object while case 3 ran, and after case 4 ended (its teardown).
        assert_eq!(attribute(&batch, &obj(7, 11_000, "io_ring_exit_work+0x1/0x2"), marks), Some(3));
        assert_eq!(attribute(&batch, &obj(7, 25_000, "io_zcrx_free_area+0x1/0x2"), marks), Some(4));
        // Before the batch, or none of ours: nobody's.
        assert_eq!(attribute(&batch, &obj(7, 5_000, "io_ring_exit_work+0x1/0x2"), marks), None);
        assert_eq!(attribute(&batch, &obj(7, 11_000, "ext4_alloc_inode+0x1/0x2"), marks), None);
        assert_eq!(attribute(&batch, &obj(7, 11_000, "io_ring_exit_work+0x1/0x2"), None), None);
    }
}
