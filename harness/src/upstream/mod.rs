//! `upstream --kernel SPEC`: the kernel's own zcrx selftests (`tools/testing/selftests/
//! drivers/net/hw/iou-zcrx.py`, `nk_qlease.py`) from that kernel's source, unmodified, against
//! two linked netdevsim-zcrx ports in a VM booting it, with liburing's `zcrx.t` beside them
//! (docs/upstream-selftests.md). The host fetches and builds what they need through the vm/
//! scripts (the source subset and the C helper: `upstream.sh prepare`; sid's ethtool; the
//! netdevsim-zcrx module; liburing), records each test file's sha256, boots the kernel once and
//! runs `upstream.sh guest` there (through this binary's hidden `upstream-guest`). Each subtest's
//! KTAP result and the port's `hds/` counters around it become a [`Subtest`]; a pass of a test
//! that moves data counts only when the counters show the payload went through the memory
//! provider (split > 0, no copy fallback).

mod error;
mod parse;
mod render;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use error::Error;
pub use render::{markdown, run_report};

/// The tests run when none is named, in this order.
pub const DEFAULT_TESTS: &[&str] = &["iou-zcrx.py", "nk_qlease.py"];

/// The subtests that send data through a memory provider bound to a queue of NETIF (directly,
/// or leased to a netkit device), per test file (`None`: every subtest): a pass there must show
/// zero copy in the simulator's counters. Read from the tests' source: nk_qlease.py's test_attrs
/// and test_attach_xdp_with_mp bind a queue but send nothing.
const MOVES_DATA: &[(&str, Option<&[&str]>)] =
    &[("iou-zcrx.py", None), ("nk_qlease.py", Some(&["test_iou_zcrx", "test_iou_zcrx_large_buf", "test_destroy"]))];

/// The simulator features a subtest needs beyond a zcrx-capable queue (read from the tests'
/// source): its skip is put down to the simulator only when the module built for the kernel
/// lacks that feature ([`UpstreamRun::simulator_lacks`]), never from the skip's text.
const NEEDS: &[(&str, &str, Lack)] = &[
    ("iou-zcrx.py", "test_zcrx_large_chunks", Lack::LargeRxBuffers),
    ("nk_qlease.py", "test_iou_zcrx_large_buf", Lack::LargeRxBuffers),
];

fn moves_data(file: &str, subtest: &str) -> bool {
    MOVES_DATA.iter().any(|(f, subs)| *f == file && subs.is_none_or(|subs| subs.contains(&subtest)))
}

/// Where the tests are, under the source tree (the `KSRC` of the tests).
pub const HW_DIR: &str = "tools/testing/selftests/drivers/net/hw";

/// The simulator's counters of NETIF (netdevsim-zcrx debugfs `hds/`), set to 0 before a
/// subtest and read after it; `None`: the module has no such counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// skbs delivered split: headers in a linear skb, payload in memory-provider buffers.
    pub split: Option<u64>,
    /// skbs delivered unsplit (copied to user space by io_uring's fallback).
    pub fallback: Option<u64>,
    /// skbs dropped because the provider had no buffer.
    pub dropped: Option<u64>,
}

/// What the counters say about a subtest's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ZeroCopy {
    /// Payload went through the memory provider only.
    Proven { split: u64 },
    /// No payload reached the port through the provider.
    NoPayload,
    /// Some payload was delivered by copy.
    Copied { split: u64, fallback: u64 },
    /// The module lacks the counters (not netdevsim-zcrx 0004 or later).
    Unknown,
}

impl Counters {
    pub fn zero_copy(&self) -> ZeroCopy {
        match (self.split, self.fallback) {
            (Some(split), Some(0)) if split > 0 => ZeroCopy::Proven { split },
            (Some(0), Some(0)) => ZeroCopy::NoPayload,
            (Some(split), Some(fallback)) => ZeroCopy::Copied { split, fallback },
            _ => ZeroCopy::Unknown,
        }
    }
}

/// What the test's KTAP line said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SubtestResult {
    Passed,
    /// `not ok`; the lines the test printed as its exception (`# Exception|`).
    Failed {
        exception: Vec<String>,
    },
    /// `ok ... # SKIP reason`: the test's own reason, verbatim.
    Skipped {
        reason: String,
    },
    /// `ok ... # XFAIL reason`.
    Xfail {
        reason: String,
    },
    /// No KTAP line for this subtest (the test died first).
    NoResult,
}

/// One subtest, run alone (`-t NAME`, the test's own selection).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subtest {
    /// As the test lists it (`test_zcrx.single`).
    pub name: String,
    pub result: SubtestResult,
    /// The test program's exit code.
    pub exit: i32,
    pub duration_s: f64,
    pub counters: Counters,
    /// Everything it printed (KTAP and stderr).
    pub output: Vec<String>,
}

/// How a test file went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FileOutcome {
    /// This kernel's source has no such test.
    NotInSource,
    /// Listing its subtests (`-l`, after its environment set-up) failed.
    ListFailed {
        exit: i32,
        output: Vec<String>,
    },
    Ran {
        subtests: Vec<Subtest>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestFile {
    /// The file name under [`HW_DIR`].
    pub name: String,
    /// sha256 of the file as run (read on the host, where it was extracted; never edited).
    pub sha256: Option<String>,
    pub outcome: FileOutcome,
}

/// liburing's test/zcrx.t, run in the same boot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZcrxT {
    /// 0 passed, 77 skipped (liburing's T_EXIT_SKIP), else failed.
    pub exit: i32,
    pub duration_s: f64,
    pub output: Vec<String>,
}

/// Why a subtest counts as it does in our reports: the typed verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Verdict {
    /// Passed; `zero_copy` when the file moves data (else not asked).
    Passed {
        zero_copy: Option<ZeroCopy>,
    },
    /// Passed by its KTAP line, but the counters do not show zero copy: a simulator defect.
    PassedWithoutZeroCopy {
        zero_copy: ZeroCopy,
    },
    Failed,
    /// Skipped by the test itself, with the simulator feature it lacks when we know it.
    Skipped {
        reason: String,
        lacks: Option<Lack>,
    },
    Xfail {
        reason: String,
    },
    NoResult {
        exit: i32,
    },
}

/// A simulator feature a test needs that the module built for a kernel may lack (named in the
/// report). Leasing a queue to netkit (nk_qlease.py) is not one: the core lends any queue of a
/// device with a parent and `queue_mgmt_ops`, which netdevsim has (measured: nk_qlease.py 5 of
/// 5 on 7.3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lack {
    /// Advertising `QCFG_RX_PAGE_SIZE` (rx buffers larger than a page): netdevsim-zcrx 0009.
    LargeRxBuffers,
}

impl Lack {
    pub const ALL: &[Lack] = &[Lack::LargeRxBuffers];

    pub fn describe(self) -> &'static str {
        match self {
            Lack::LargeRxBuffers => "rx buffers larger than a page (QCFG_RX_PAGE_SIZE, netdevsim-zcrx patch 0009)",
        }
    }

    /// The patch of vm/netdevsim-zcrx that gives the simulator this feature.
    pub fn patch(self) -> &'static str {
        match self {
            Lack::LargeRxBuffers => "0009-netdevsim-take-rx-buffers-larger-than-a-page-QCFG_RX.patch",
        }
    }

    /// The features a module built without the series patches `left_out` lacks.
    pub fn of_left_out(left_out: &[&str]) -> Vec<Lack> {
        Lack::ALL.iter().copied().filter(|l| left_out.contains(&l.patch())).collect()
    }
}

impl Subtest {
    /// The verdict for a subtest of `file`, on a simulator that lacks `lacking`.
    pub fn verdict(&self, file: &str, lacking: &[Lack]) -> Verdict {
        let moves_data = moves_data(file, &self.name);
        match &self.result {
            SubtestResult::Passed if !moves_data => Verdict::Passed { zero_copy: None },
            SubtestResult::Passed => match self.counters.zero_copy() {
                z @ ZeroCopy::Proven { .. } => Verdict::Passed { zero_copy: Some(z) },
                z => Verdict::PassedWithoutZeroCopy { zero_copy: z },
            },
            SubtestResult::Failed { .. } => Verdict::Failed,
            SubtestResult::Skipped { reason } => Verdict::Skipped {
                reason: reason.clone(),
                lacks: NEEDS
                    .iter()
                    .find(|(f, sub, l)| *f == file && *sub == self.name && lacking.contains(l))
                    .map(|(_, _, l)| *l),
            },
            SubtestResult::Xfail { reason } => Verdict::Xfail { reason: reason.clone() },
            SubtestResult::NoResult => Verdict::NoResult { exit: self.exit },
        }
    }
}

/// A test whose environment refused to come up raises `KsftSkipEx` before its subtests run
/// (outside `ksft_run`, so as a traceback): its reason, from the traceback's last line.
pub fn env_skip(output: &[String]) -> Option<String> {
    output.iter().rev().find_map(|l| l.split_once("KsftSkipEx: ").map(|(_, r)| r.trim().to_string()))
}

/// Everything one `upstream` run found, as upstream.json holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpstreamRun {
    /// The kernel spec (`debian:7.3.4`).
    pub target: String,
    /// `uname -r` in the guest.
    pub kernel_release: String,
    /// The extracted source subset the tests ran from (`KSRC`).
    pub source: String,
    pub netdevsim: String,
    /// What that module lacks: the features of the series patches netdevsim.sh leaves out for
    /// this kernel's version (vm/netdevsim-zcrx/compat/<M.m>/drop).
    #[serde(default)]
    pub simulator_lacks: Vec<Lack>,
    pub ethtool: String,
    pub files: Vec<TestFile>,
    pub liburing: Option<ZcrxT>,
    pub liburing_path: String,
    /// Boot, tests and power-off.
    pub vm_wall_s: f64,
    /// Fetching and building before the boot.
    pub prepare_s: f64,
}

/// The `upstream` command's inputs.
pub struct Opts {
    pub kernel: crate::vm::KernelSpec,
    pub tests: Vec<String>,
    pub timeout: Duration,
}

/// A test file name as vm/upstream.sh accepts it: a plain `.py` name, no path.
pub fn check_test_name(t: &str) -> Result<(), Error> {
    let ok = t.len() > 3
        && t.ends_with(".py")
        && t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !t.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::TestName(t.to_string()))
    }
}

fn sha256_of(p: &Path) -> Option<String> {
    std::fs::read(p).ok().map(|b| crate::qualify::sha256_hex(&b))
}

/// On the host: prepares everything, boots the kernel once, runs the tests there.
pub fn run(o: &Opts) -> Result<UpstreamRun, Error> {
    for t in &o.tests {
        check_test_name(t)?;
    }
    if !matches!(o.kernel, crate::vm::KernelSpec::Debian { .. }) {
        return Err(Error::NotDebian(o.kernel.to_string()));
    }
    let t0 = Instant::now();
    crate::vm::provision()?;
    let kernel = crate::vm::resolve(&o.kernel)?;
    let kver = crate::vm::debian_kver(&kernel).ok_or_else(|| Error::NotDebian(kernel.display().to_string()))?;
    let ko = crate::vm::script_path("netdevsim.sh", &["build", &kver, "--variant", "zcrx"])?;
    let ethtool = crate::vm::script_path("ethtool.sh", &["fetch"])?;
    let zcrx_t = crate::vm::liburing_zcrx_t()?;
    // <liburing>/test/zcrx.t: the tree liburing.sh built.
    let lib = zcrx_t.parent().and_then(Path::parent).ok_or_else(|| Error::Layout(zcrx_t.display().to_string()))?;
    let ksrc: PathBuf = crate::vm::script_path("upstream.sh", &["prepare", &kver, &lib.display().to_string()])?;
    let prepare_s = t0.elapsed().as_secs_f64();
    let hashes: Vec<Option<String>> = o.tests.iter().map(|t| sha256_of(&ksrc.join(HW_DIR).join(t))).collect();
    let mut args: Vec<String> = vec!["upstream-guest".into()];
    args.extend([&ksrc, &ko, &ethtool, &zcrx_t].iter().map(|p| p.display().to_string()));
    args.extend(o.tests.iter().cloned());
    eprintln!("upstream: booting {} for {} ({})", o.kernel, o.tests.join(", "), kernel.display());
    let t1 = Instant::now();
    let out = crate::vm::run_command_in_vm(&kernel, &args, &[], o.timeout)?;
    let vm_wall_s = t1.elapsed().as_secs_f64();
    let mut g = parse::parse(&out)?;
    for (f, h) in g.files.iter_mut().zip(&hashes) {
        f.sha256 = h.clone();
    }
    let missing: Vec<&String> = o.tests.iter().filter(|t| !g.files.iter().any(|f| &f.name == *t)).collect();
    if !missing.is_empty() {
        return Err(Error::Incomplete(format!("no record of {missing:?}; the guest printed:\n{out}")));
    }
    Ok(UpstreamRun {
        target: o.kernel.to_string(),
        kernel_release: g.kernel_release,
        source: ksrc.display().to_string(),
        netdevsim: ko.display().to_string(),
        simulator_lacks: Lack::of_left_out(&crate::vm::series_left_out(&kver)),
        ethtool: ethtool.display().to_string(),
        files: g.files,
        liburing: g.liburing,
        liburing_path: zcrx_t.display().to_string(),
        vm_wall_s,
        prepare_s,
    })
}

/// In the guest (`upstream-guest`): runs vm/upstream.sh's guest half and passes its records
/// through on stdout.
pub fn guest(ksrc: &Path, ko: &Path, ethtool: &Path, zcrx_t: &Path, tests: &[String]) -> Result<(), Error> {
    for t in tests {
        check_test_name(t)?;
    }
    let paths: Vec<String> = [ksrc, ko, ethtool, zcrx_t].iter().map(|p| p.display().to_string()).collect();
    let mut args: Vec<&str> = vec!["guest"];
    args.extend(paths.iter().map(String::as_str));
    args.extend(tests.iter().map(String::as_str));
    let out = crate::vm::script_stdout("upstream.sh", &args)?;
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(result: SubtestResult, split: u64, fallback: u64) -> Subtest {
        Subtest {
            name: "test_zcrx.single".into(),
            result,
            exit: 0,
            duration_s: 1.0,
            counters: Counters { split: Some(split), fallback: Some(fallback), dropped: Some(0) },
            output: vec![],
        }
    }

    #[test]
    fn a_pass_that_moves_data_needs_zero_copy() {
        let v = |s: &Subtest| s.verdict("iou-zcrx.py", &[]);
        assert_eq!(
            v(&sub(SubtestResult::Passed, 12, 0)),
            Verdict::Passed { zero_copy: Some(ZeroCopy::Proven { split: 12 }) }
        );
        assert_eq!(
            v(&sub(SubtestResult::Passed, 12, 1)),
            Verdict::PassedWithoutZeroCopy { zero_copy: ZeroCopy::Copied { split: 12, fallback: 1 } }
        );
        assert_eq!(
            v(&sub(SubtestResult::Passed, 0, 0)),
            Verdict::PassedWithoutZeroCopy { zero_copy: ZeroCopy::NoPayload }
        );
        let mut s = sub(SubtestResult::Passed, 0, 0);
        s.counters = Counters::default();
        assert_eq!(v(&s), Verdict::PassedWithoutZeroCopy { zero_copy: ZeroCopy::Unknown });
        // nk_qlease.py: the subtests that send through the leased queue are asked, the others not.
        let mut s = sub(SubtestResult::Passed, 0, 0);
        s.name = "test_iou_zcrx".into();
        assert_eq!(s.verdict("nk_qlease.py", &[]), Verdict::PassedWithoutZeroCopy { zero_copy: ZeroCopy::NoPayload });
        s.name = "test_destroy".into();
        s.counters.split = Some(9);
        assert_eq!(s.verdict("nk_qlease.py", &[]), Verdict::Passed { zero_copy: Some(ZeroCopy::Proven { split: 9 }) });
        s.name = "test_attrs".into();
        s.counters.split = Some(0);
        assert_eq!(s.verdict("nk_qlease.py", &[]), Verdict::Passed { zero_copy: None });
    }

    #[test]
    fn a_skip_is_put_down_to_the_simulator_only_when_its_module_lacks_what_the_subtest_needs() {
        let large = "Large chunks are not supported -95";
        let mut s = sub(SubtestResult::Skipped { reason: large.into() }, 0, 0);
        s.name = "test_zcrx_large_chunks".into();
        // The module built for 6.19 lacks patch 0009; the one for 7.3 has it.
        let lacks_0009 = Lack::of_left_out(&["0009-netdevsim-take-rx-buffers-larger-than-a-page-QCFG_RX.patch"]);
        assert_eq!(lacks_0009, vec![Lack::LargeRxBuffers]);
        assert_eq!(
            s.verdict("iou-zcrx.py", &lacks_0009),
            Verdict::Skipped { reason: large.into(), lacks: Some(Lack::LargeRxBuffers) }
        );
        assert_eq!(s.verdict("iou-zcrx.py", &[]), Verdict::Skipped { reason: large.into(), lacks: None });
        s.name = "test_iou_zcrx_large_buf".into();
        assert_eq!(
            s.verdict("nk_qlease.py", &lacks_0009),
            Verdict::Skipped { reason: large.into(), lacks: Some(Lack::LargeRxBuffers) }
        );
        // Another subtest's skip is not the simulator's, whatever its text says.
        s.name = "test_zcrx.single".into();
        assert_eq!(s.verdict("iou-zcrx.py", &lacks_0009), Verdict::Skipped { reason: large.into(), lacks: None });
        let env = vec!["Traceback".to_string(), "net.lib.py.ksft.KsftSkipEx: LOCAL_PREFIX_V6 required".to_string()];
        assert_eq!(env_skip(&env).as_deref(), Some("LOCAL_PREFIX_V6 required"));
        assert_eq!(env_skip(&env[..1]), None);
        let s = sub(SubtestResult::Skipped { reason: "Test requires IPv6 connectivity".into() }, 0, 0);
        assert_eq!(s.verdict("iou-zcrx.py", &lacks_0009), Verdict::Skipped { reason: s_reason(&s), lacks: None });
        let mut s = sub(SubtestResult::NoResult, 0, 0);
        s.exit = 4;
        assert_eq!(s.verdict("iou-zcrx.py", &[]), Verdict::NoResult { exit: 4 });
    }

    fn s_reason(s: &Subtest) -> String {
        match &s.result {
            SubtestResult::Skipped { reason } => reason.clone(),
            _ => String::new(),
        }
    }

    #[test]
    fn test_names_are_plain_python_files() {
        for ok in ["iou-zcrx.py", "nk_qlease.py"] {
            assert!(check_test_name(ok).is_ok(), "{ok}");
        }
        for bad in ["../x.py", "a/b.py", "x.sh", ".py", ".hidden.py", "a b.py", "x.py;rm"] {
            assert!(matches!(check_test_name(bad), Err(Error::TestName(_))), "{bad}");
        }
    }
}
