//! What a debug kernel reports, as types: the kinds of kernel-log splat that fail the running
//! case ([`SplatKind`], one table of line markers), and an object kmemleak found unreferenced
//! ([`LeakedObject`]).

use serde::{Deserialize, Serialize};

/// The kind of a kernel-log line that fails the case that was running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplatKind {
    /// `WARNING:` (WARN_ON and friends) not named more precisely below.
    Warning,
    /// `BUG:` not named more precisely below.
    Bug,
    Oops,
    Kasan,
    Kfence,
    Ubsan,
    GeneralProtection,
    Panic,
    Refcount,
    ListCorruption,
    RcuStall,
    HungTask,
    /// lockdep: "possible circular locking dependency detected".
    CircularLocking,
    /// lockdep: "possible recursive locking detected".
    RecursiveLocking,
    /// lockdep: "inconsistent lock state".
    InconsistentLockState,
    /// lockdep (PROVE_RCU): "suspicious RCU usage".
    SuspiciousRcu,
    /// DEBUG_ATOMIC_SLEEP: "sleeping function called from invalid context".
    SleepInAtomic,
    /// The page allocator: "Bad page state".
    BadPageState,
    /// page_pool: "stalled pool shutdown", "Negative ... inflight", DMA tracking warnings.
    PagePool,
    /// kmemleak's own warnings (not the leaks a scan finds: those are [`LeakedObject`]s).
    Kmemleak,
}

/// Line markers, most precise first: a line is of the first kind whose marker it contains.
const SPLATS: &[(&str, SplatKind)] = &[
    ("BUG: KASAN", SplatKind::Kasan),
    ("BUG: KFENCE", SplatKind::Kfence),
    ("possible circular locking dependency", SplatKind::CircularLocking),
    ("possible recursive locking detected", SplatKind::RecursiveLocking),
    ("inconsistent lock state", SplatKind::InconsistentLockState),
    ("suspicious RCU usage", SplatKind::SuspiciousRcu),
    ("sleeping function called from invalid context", SplatKind::SleepInAtomic),
    ("Bad page state", SplatKind::BadPageState),
    ("stalled pool shutdown", SplatKind::PagePool),
    ("inflight packet-pages", SplatKind::PagePool),
    ("couldn't track DMA mapping", SplatKind::PagePool),
    ("unexpected DMA address, please report to netdev", SplatKind::PagePool),
    ("mem-provider init failed", SplatKind::PagePool),
    ("kmemleak: Cannot", SplatKind::Kmemleak),
    ("kmemleak: Kernel memory leak detector disabled", SplatKind::Kmemleak),
    ("UBSAN", SplatKind::Ubsan),
    ("KASAN", SplatKind::Kasan),
    ("general protection fault", SplatKind::GeneralProtection),
    ("Kernel panic", SplatKind::Panic),
    ("kernel BUG", SplatKind::Bug),
    ("refcount_t:", SplatKind::Refcount),
    ("list_add corruption", SplatKind::ListCorruption),
    ("list_del corruption", SplatKind::ListCorruption),
    ("RCU stall", SplatKind::RcuStall),
    ("hung_task", SplatKind::HungTask),
    ("Oops", SplatKind::Oops),
    ("WARNING:", SplatKind::Warning),
    ("BUG:", SplatKind::Bug),
];

/// Every kind the line markers name, each once (a known deviation's `kernel splat KIND` is one).
pub fn all_kinds() -> impl Iterator<Item = SplatKind> {
    SPLATS.iter().enumerate().filter(|(i, (_, k))| !SPLATS[..*i].iter().any(|(_, j)| j == k)).map(|(_, (_, k))| *k)
}

/// The kind of splat `line` is, if it is one.
pub fn splat_kind(line: &str) -> Option<SplatKind> {
    SPLATS.iter().find(|(m, _)| line.contains(m)).map(|(_, k)| *k)
}

/// Whether `line` fails the case that was running.
pub fn is_splat(line: &str) -> bool {
    splat_kind(line).is_some()
}

impl std::fmt::Display for SplatKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            SplatKind::Warning => "warning",
            SplatKind::Bug => "bug",
            SplatKind::Oops => "oops",
            SplatKind::Kasan => "KASAN",
            SplatKind::Kfence => "KFENCE",
            SplatKind::Ubsan => "UBSAN",
            SplatKind::GeneralProtection => "general protection fault",
            SplatKind::Panic => "panic",
            SplatKind::Refcount => "refcount",
            SplatKind::ListCorruption => "list corruption",
            SplatKind::RcuStall => "RCU stall",
            SplatKind::HungTask => "hung task",
            SplatKind::CircularLocking => "lockdep: circular locking",
            SplatKind::RecursiveLocking => "lockdep: recursive locking",
            SplatKind::InconsistentLockState => "lockdep: inconsistent lock state",
            SplatKind::SuspiciousRcu => "lockdep: suspicious RCU usage",
            SplatKind::SleepInAtomic => "sleeping in atomic context",
            SplatKind::BadPageState => "bad page state",
            SplatKind::PagePool => "page pool",
            SplatKind::Kmemleak => "kmemleak",
        };
        f.write_str(s)
    }
}

/// One object a kmemleak scan reported unreferenced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakedObject {
    /// Its address, as kmemleak printed it (`0xffff888108efe000`).
    pub address: String,
    pub size: u64,
    /// The task that allocated it: its command and pid (a case's forked child names the case).
    pub comm: String,
    pub pid: i32,
    /// When it was allocated, in the kernel's jiffies.
    pub jiffies: u64,
    /// The allocation's backtrace, innermost first (`io_register_zcrx+0x353/0x1e30`).
    pub backtrace: Vec<String>,
}

impl LeakedObject {
    /// Whether a frame of its backtrace is io_uring's, page_pool's or netdevsim's: what
    /// this suite is responsible for (and what no suppression may cover).
    pub fn in_scope(&self) -> bool {
        self.backtrace.iter().any(|f| {
            let func = f.split('+').next().unwrap_or("").trim_start_matches('_');
            ["io_", "zcrx", "page_pool", "nsim_", "net_mp_", "netif_mp_", "mp_dmabuf"]
                .iter()
                .any(|p| func.starts_with(p))
                || func.contains("io_uring")
                || func.contains("netdevsim")
        })
    }
}

impl std::fmt::Display for LeakedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes at {} (comm {}, pid {})", self.size, self.address, self.comm, self.pid)?;
        if let Some(top) = self.backtrace.iter().find(|l| !l.contains("kmalloc") && !l.contains("alloc_noprof")) {
            write!(f, " allocated in {top}")?;
        }
        Ok(())
    }
}

/// Reads `/sys/kernel/debug/kmemleak`'s report: every `unreferenced object` record.
pub fn parse_kmemleak(text: &str) -> Vec<LeakedObject> {
    let mut out: Vec<LeakedObject> = Vec::new();
    let mut in_trace = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("unreferenced object") {
            // `unreferenced object[ (percpu)] 0x... (size N):`
            let addr = rest.split_whitespace().find(|w| w.starts_with("0x")).unwrap_or("").to_string();
            let size = rest
                .split_once("(size ")
                .and_then(|(_, s)| s.split(')').next())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            out.push(LeakedObject { address: addr, size, ..Default::default() });
            in_trace = false;
            continue;
        }
        let Some(o) = out.last_mut() else { continue };
        if let Some(rest) = t.strip_prefix("comm \"") {
            if let Some((comm, tail)) = rest.split_once('"') {
                o.comm = comm.to_string();
                for part in tail.split(',') {
                    let part = part.trim();
                    if let Some(p) = part.strip_prefix("pid ") {
                        o.pid = p.trim().parse().unwrap_or(0);
                    } else if let Some(j) = part.strip_prefix("jiffies ") {
                        o.jiffies = j.trim().parse().unwrap_or(0);
                    }
                }
            }
        } else if t.starts_with("backtrace") {
            in_trace = true;
        } else if t.starts_with("hex dump") {
            in_trace = false;
        } else if in_trace && !t.is_empty() {
            o.backtrace.push(t.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_typed() {
        let k = |l: &str| splat_kind(l);
        assert_eq!(k("BUG: KASAN: slab-use-after-free in __io_zcrx_unmap_area+0x344/0x3d0"), Some(SplatKind::Kasan));
        assert_eq!(k("BUG: KFENCE: use-after-free read in io_zcrx_scrub+0x1/0x2"), Some(SplatKind::Kfence));
        assert_eq!(k("WARNING: possible circular locking dependency detected"), Some(SplatKind::CircularLocking));
        assert_eq!(k("WARNING: inconsistent lock state"), Some(SplatKind::InconsistentLockState));
        assert_eq!(k("WARNING: suspicious RCU usage"), Some(SplatKind::SuspiciousRcu));
        assert_eq!(
            k("BUG: sleeping function called from invalid context at mm/slab.c:1"),
            Some(SplatKind::SleepInAtomic)
        );
        assert_eq!(k("BUG: Bad page state in process zcrx-conform  pfn:10a2f"), Some(SplatKind::BadPageState));
        assert_eq!(
            k("page_pool_release_retry() stalled pool shutdown: id 7, 3 inflight 60 sec"),
            Some(SplatKind::PagePool)
        );
        assert_eq!(k("WARNING: io_uring/zcrx.c:458 at io_zcrx_free_area+0x1/0x2"), Some(SplatKind::Warning));
        assert_eq!(k("BUG: unable to handle page fault for address: 0"), Some(SplatKind::Bug));
        assert_eq!(k("FAULT_INJECTION: forcing a failure."), None);
        assert_eq!(k("zcrx-conform: page allocation failure: order:0, mode:0xcc0(GFP_KERNEL)"), None);
        assert_eq!(k("virtio_net virtio0: link up"), None);
    }

    #[test]
    fn kmemleak_records_parse() {
        let text = "unreferenced object 0xffff888108efe000 (size 1024):\n  comm \"zcrx-conform\", pid 104, \
                    jiffies 4295325084\n  hex dump (first 32 bytes):\n    00 00 00 00 00 00 00 00  ........\n  \
                    backtrace (crc dedc884):\n    __kmalloc_cache_noprof+0x4d5/0x670\n    \
                    io_register_zcrx+0x353/0x1e30\n    do_syscall_64+0xfe/0xf80\n\
                    unreferenced object (percpu) 0x607fdfc0 (size 8):\n  comm \"swapper/0\", pid 1, jiffies 4294937296\n  \
                    backtrace (crc 0):\n    pcpu_alloc_noprof+0x1/0x2\n";
        let v = parse_kmemleak(text);
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0],
            LeakedObject {
                address: "0xffff888108efe000".into(),
                size: 1024,
                comm: "zcrx-conform".into(),
                pid: 104,
                jiffies: 4295325084,
                backtrace: vec![
                    "__kmalloc_cache_noprof+0x4d5/0x670".into(),
                    "io_register_zcrx+0x353/0x1e30".into(),
                    "do_syscall_64+0xfe/0xf80".into()
                ],
            }
        );
        assert!(v[0].in_scope() && !v[1].in_scope());
        let frame = |f: &str| LeakedObject { backtrace: vec![f.into()], ..Default::default() };
        assert!(!frame("bio_alloc_bioset+0x1/0x2").in_scope() && !frame("folio_alloc+0x1/0x2").in_scope());
        assert!(frame("__io_zcrx_unmap_area+0x1/0x2").in_scope() && frame("page_pool_create+0x1/0x2").in_scope());
        assert_eq!((v[1].address.as_str(), v[1].size, v[1].pid), ("0x607fdfc0", 8, 1));
        assert_eq!(
            v[0].to_string(),
            "1024 bytes at 0xffff888108efe000 (comm zcrx-conform, pid 104) allocated in io_register_zcrx+0x353/0x1e30"
        );
        assert!(parse_kmemleak("").is_empty());
    }
}
