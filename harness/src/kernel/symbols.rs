//! Kernel backtraces symbolized: a frame as the kernel prints it (`io_zcrx_free_area+0x3c/0x80`,
//! `RIP: 0010:io_zcrx_scrub+0x12/0x1c0`, kmemleak's `[<ffffffff8123>] func+0x1b/0x30`) gets the
//! source file and line of that instruction, with the functions inlined there, read from the
//! DWARF of the matching vmlinux (a tree's, or Debian's `linux-image-*-dbg`). The address is the
//! symbol's (from the ELF symbol table; a name defined more than once is told apart by the
//! frame's function size) plus the frame's offset, as the kernel's scripts/decode_stacktrace.sh
//! computes it. Frames of modules (`[netdevsim]`) are left as printed: their objects are
//! relocatable and a module's load address is not in the log.

use std::collections::HashMap;
use std::path::Path;

use addr2line::Loader;
use object::{Object, ObjectSymbol, SymbolKind};

use crate::model::{CaseResult, RunReport, Status};

/// Why a vmlinux cannot symbolize.
#[derive(Debug, thiserror::Error)]
pub enum SymbolsError {
    #[error("{path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("{path}: not an ELF file with a symbol table: {reason}")]
    NotElf { path: String, reason: String },
    #[error("{path}: no DWARF line information (built without CONFIG_DEBUG_INFO?): {reason}")]
    NoDwarf { path: String, reason: String },
}

/// One frame of a backtrace line: the function, the offset into it, the function's size.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub function: &'a str,
    pub offset: u64,
    pub size: u64,
}

/// The frame a kernel log line prints, if it prints one of the kernel proper (a module's frame,
/// `func+0x1/0x2 [mod]`, is none).
pub fn frame_of(line: &str) -> Option<Frame<'_>> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        // "RIP: 0010:func+0x.." and "<IRQ>"-free words; the last ':' separates a segment.
        let w = w.rsplit(':').next().unwrap_or(w).trim_end_matches(',');
        let Some((function, rest)) = w.split_once('+') else { continue };
        let Some((off, size)) = rest.split_once('/') else { continue };
        let (Some(off), Some(size)) = (hex(off), hex(size)) else { continue };
        if function.is_empty() || !function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        if words.peek().is_some_and(|n| n.starts_with('[') && n.ends_with(']') && !n.starts_with("[<")) {
            return None;
        }
        return Some(Frame { function, offset: off, size });
    }
    None
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// A vmlinux opened for symbolizing.
pub struct Symbols {
    dwarf: Loader,
    /// name -> (address, size) of every function symbol.
    functions: HashMap<String, Vec<(u64, u64)>>,
    /// What the DWARF file names start with up to the tree's root (stripped from the output).
    root: Option<String>,
}

impl Symbols {
    pub fn open(vmlinux: &Path) -> Result<Symbols, SymbolsError> {
        let path = vmlinux.display().to_string();
        let file = std::fs::File::open(vmlinux).map_err(|source| SymbolsError::Open { path: path.clone(), source })?;
        // SAFETY: the file is opened read-only and only read through the map while it lives
        // here; a vmlinux changed under us (a rebuild) gives wrong lines, not memory unsafety of
        // our own data (object bounds-checks every read).
        let map =
            unsafe { memmap2::Mmap::map(&file) }.map_err(|source| SymbolsError::Open { path: path.clone(), source })?;
        let elf = object::File::parse(&*map)
            .map_err(|e| SymbolsError::NotElf { path: path.clone(), reason: e.to_string() })?;
        let mut functions: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
        for s in elf.symbols() {
            if s.kind() != SymbolKind::Text || s.address() == 0 {
                continue;
            }
            if let Ok(name) = s.name() {
                functions.entry(name.to_string()).or_default().push((s.address(), s.size()));
            }
        }
        if functions.is_empty() {
            return Err(SymbolsError::NotElf { path, reason: "no function symbols".into() });
        }
        let dwarf =
            Loader::new(vmlinux).map_err(|e| SymbolsError::NoDwarf { path: path.clone(), reason: e.to_string() })?;
        let mut s = Symbols { dwarf, functions, root: None };
        // The tree's root as DWARF spells it: where init/main.c's start_kernel is.
        let main = s.locate(&Frame { function: "start_kernel", offset: 0, size: 0 }).into_iter().next();
        s.root = main.and_then(|(_, file, _)| file.strip_suffix("init/main.c").map(str::to_string));
        if s.root.is_none() {
            return Err(SymbolsError::NoDwarf { path, reason: "start_kernel has no source line".into() });
        }
        Ok(s)
    }

    /// The frames at `f`, innermost (inlined) first: (function, file, line).
    fn locate(&self, f: &Frame<'_>) -> Vec<(String, String, u32)> {
        let Some(cands) = self.functions.get(f.function) else { return Vec::new() };
        let addr = match cands.as_slice() {
            [(a, _)] => a,
            many => match many.iter().find(|(_, size)| *size == f.size) {
                Some((a, _)) => a,
                None => return Vec::new(),
            },
        };
        let Ok(mut it) = self.dwarf.find_frames(addr + f.offset) else { return Vec::new() };
        let mut out = Vec::new();
        while let Ok(Some(fr)) = it.next() {
            let name = fr.function.as_ref().and_then(|n| n.raw_name().ok()).map(|n| n.to_string());
            let (Some(loc), Some(name)) = (fr.location, name) else { continue };
            let (Some(file), Some(line)) = (loc.file, loc.line) else { continue };
            out.push((name, file.to_string(), line));
        }
        out
    }

    fn relative<'a>(&self, file: &'a str) -> &'a str {
        let f = self.root.as_deref().and_then(|r| file.strip_prefix(r)).unwrap_or(file);
        f.strip_prefix("./").unwrap_or(f)
    }

    /// `line` with its frame's source position appended (`  (io_uring/zcrx.c:662)`, inlined
    /// functions first: `  (io_uring/zcrx.c:310 io_put_niov, inlined at io_uring/zcrx.c:662)`),
    /// or None when it prints no frame this vmlinux knows.
    pub fn symbolize(&self, line: &str) -> Option<String> {
        let f = frame_of(line)?;
        let frames = self.locate(&f);
        let (last, inlined) = frames.split_last()?;
        let mut s = String::new();
        for (name, file, l) in inlined {
            s.push_str(&format!("{}:{l} {name}, inlined at ", self.relative(file)));
        }
        s.push_str(&format!("{}:{}", self.relative(&last.1), last.2));
        Some(format!("{line}  ({s})"))
    }

    /// Every line of `lines` that prints a frame, symbolized in place; how many were.
    pub fn symbolize_all(&self, lines: &mut [String]) -> usize {
        let mut n = 0;
        for l in lines.iter_mut() {
            if l.ends_with(')') && l.contains("  (") {
                continue; // symbolized already
            }
            if let Some(s) = self.symbolize(l) {
                *l = s;
                n += 1;
            }
        }
        n
    }

    /// Every backtrace a report carries, symbolized: each case's kernel log, the lines of a
    /// splat, a leaked object's allocation trace, the kernel stack of a case stuck in the
    /// kernel. How many lines were.
    pub fn symbolize_report(&self, rep: &mut RunReport) -> usize {
        let mut n = 0;
        for c in &mut rep.cases {
            n += self.symbolize_all(&mut c.kernel_log);
            let mut r = std::mem::take(&mut c.result);
            let k = self.symbolize_result(&mut r);
            n += k;
            if k > 0 {
                c.set_result(r); // the message names the first splat line
            } else {
                c.result = r;
            }
        }
        n
    }

    fn symbolize_result(&self, r: &mut CaseResult) -> usize {
        traces(r).into_iter().map(|lines| self.symbolize_all(lines)).sum()
    }
}

/// The backtraces a result carries beside the case's kernel log: a splat's lines, a leaked
/// object's allocation trace, the kernel stack of a case stuck in the kernel, through the
/// results it wraps.
fn traces(r: &mut CaseResult) -> Vec<&mut Vec<String>> {
    match r {
        CaseResult::KernelSplat { lines, result, .. } => {
            let mut t = vec![lines];
            t.extend(traces(result));
            t
        }
        CaseResult::Leak { objects, result } => {
            let mut t: Vec<&mut Vec<String>> = objects.iter_mut().map(|o| &mut o.backtrace).collect();
            t.extend(traces(result));
            t
        }
        CaseResult::TimedOut { stuck: Some(stack), .. } => vec![stack],
        CaseResult::Unrestored { result, .. }
        | CaseResult::Xfail { result, .. }
        | CaseResult::FailedDifferently { result, .. } => traces(result),
        _ => Vec::new(),
    }
}

/// Whether a case that did not pass or skip (failed, xfail, xpass) prints a frame of the kernel
/// proper: only then is a vmlinux worth finding, or fetching (a passing case's log, such as a
/// fault sweep's injected stacks, is symbolized when the vmlinux is at hand anyway).
pub fn has_frames(rep: &RunReport) -> bool {
    let any = |l: &[String]| l.iter().any(|l| frame_of(l).is_some());
    rep.cases.iter().filter(|c| matches!(c.status, Status::Fail | Status::Xfail | Status::Xpass)).any(|c| {
        // A copy of the (rare) failed result, so that one walk over its traces serves both.
        any(&c.kernel_log) || traces(&mut c.result.clone()).into_iter().any(|l| any(l))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_as_the_kernel_prints_them() {
        let f = |l| frame_of(l).map(|f| (f.function.to_string(), f.offset, f.size));
        assert_eq!(f("[   12.3]  io_zcrx_free_area+0x3c/0x80"), Some(("io_zcrx_free_area".into(), 0x3c, 0x80)));
        assert_eq!(f("RIP: 0010:io_zcrx_scrub+0x12/0x1c0"), Some(("io_zcrx_scrub".into(), 0x12, 0x1c0)));
        assert_eq!(f(" ? __kmalloc_cache_noprof.cold+0x5/0x9"), Some(("__kmalloc_cache_noprof.cold".into(), 5, 9)));
        assert_eq!(f("    [<ffffffff81234567>] io_import_umem+0x1b/0x30"), Some(("io_import_umem".into(), 0x1b, 0x30)));
        assert_eq!(f(" nsim_poll+0x10/0x40 [netdevsim]"), None);
        assert_eq!(
            f("WARNING: CPU: 0 PID: 1 at io_uring/zcrx.c:662 io_zcrx_ifq_free+0x3c/0x80"),
            Some(("io_zcrx_ifq_free".into(), 0x3c, 0x80))
        );
        assert_eq!(f("a+b/c"), None);
        assert_eq!(f("x+0x1/zz"), None);
        assert_eq!(f("no frame here"), None);
    }

    /// A small "vmlinux": two kernel-tree source files compiled with DWARF into one static
    /// executable (the C compiler netdevsim's build needs; a test without it fails, never passes).
    #[test]
    fn a_frame_gets_its_file_line_and_inlined_callers() {
        let dir = std::env::temp_dir().join(format!("zcrx-sym-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("init")).expect("init/");
        std::fs::create_dir_all(dir.join("io_uring")).expect("io_uring/");
        std::fs::write(dir.join("init/main.c"), "void start_kernel(void)\n{\n\tfor (;;);\n}\n").expect("main.c");
        let zcrx = "static inline __attribute__((always_inline)) int put_niov(volatile int *r)\n{\n\treturn --*r;\n}\n\nint io_zcrx_free_area(volatile int *r)\n{\n\tint n = 0;\n\tn += put_niov(r);\n\treturn n;\n}\n";
        std::fs::write(dir.join("io_uring/zcrx.c"), zcrx).expect("zcrx.c");
        let out = std::process::Command::new("cc")
            .current_dir(&dir)
            .args(["-g", "-O1", "-nostdlib", "-static", "-fno-pie", "-no-pie", "-Wl,-e,start_kernel", "-o", "vmlinux"])
            .args(["init/main.c", "io_uring/zcrx.c"])
            .output()
            .expect("cc (the C compiler) must be installed for this test");
        assert!(out.status.success(), "cc failed: {}", String::from_utf8_lossy(&out.stderr));
        let s = Symbols::open(&dir.join("vmlinux")).expect("a vmlinux with DWARF");
        // Every offset of the function: its own lines, and the inlined decrement reported with
        // the call site it was inlined at.
        let size = s.functions["io_zcrx_free_area"][0].1;
        let all: Vec<String> =
            (0..size).filter_map(|o| s.symbolize(&format!(" io_zcrx_free_area+0x{o:x}/0x{size:x}"))).collect();
        assert_eq!(all.len() as u64, size, "every offset is symbolized: {all:?}");
        assert!(
            all.iter().any(|l| l.ends_with("(io_uring/zcrx.c:3 put_niov, inlined at io_uring/zcrx.c:9)")),
            "{all:?}"
        );
        let own = |l: &String| (6..=11).any(|n| l.ends_with(&format!("  (io_uring/zcrx.c:{n})")));
        assert!(all.iter().any(own), "{all:?}");
        assert!(all.iter().all(|l| own(l) || l.contains("inlined at")), "{all:?}");
        assert_eq!(s.symbolize(" no_such_function+0x0/0x10"), None);
        assert_eq!(s.symbolize(" io_zcrx_free_area+0x0/0x10 [netdevsim]"), None);
        let mut lines = vec!["[ 1.0] Call Trace:".to_string(), format!("  io_zcrx_free_area+0x0/0x{size:x}")];
        assert_eq!(s.symbolize_all(&mut lines), 1);
        assert_eq!(s.symbolize_all(&mut lines), 0, "a symbolized line is not symbolized again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_a_case_that_did_not_pass_asks_for_symbols() {
        use crate::model::CaseReport;
        let frame = "  io_zcrx_scrub+0x12/0x1c0".to_string();
        let case = |status, log: &[String]| {
            let mut c = CaseReport::new("a.case");
            c.status = status;
            c.kernel_log = log.to_vec();
            c
        };
        let rep = |c: CaseReport| RunReport { cases: vec![c], ..Default::default() };
        assert!(!has_frames(&rep(case(Status::Pass, std::slice::from_ref(&frame)))));
        assert!(!has_frames(&rep(case(Status::Fail, &["no frame".to_string()]))));
        for s in [Status::Fail, Status::Xfail, Status::Xpass] {
            assert!(has_frames(&rep(case(s, std::slice::from_ref(&frame)))), "{s:?}");
        }
        let mut splat = case(Status::Fail, &[]);
        splat.result = CaseResult::KernelSplat {
            lines: vec![frame.clone()],
            during: None,
            result: Box::new(CaseResult::Pass),
            kinds: vec![],
        };
        assert!(has_frames(&rep(splat)));
    }

    #[test]
    fn a_file_that_is_no_vmlinux_is_refused() {
        let dir = std::env::temp_dir().join(format!("zcrx-sym-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("vmlinux");
        std::fs::write(&p, b"not an elf").expect("write");
        assert!(matches!(Symbols::open(&p), Err(SymbolsError::NotElf { .. })));
        assert!(matches!(Symbols::open(&dir.join("absent")), Err(SymbolsError::Open { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
