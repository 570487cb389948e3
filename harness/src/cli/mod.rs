//! The command line: the clap types (each argument struct declared once) and one function per
//! command ([`commands`]); `outputs` writes a run's reports and decides its verdict.

pub(crate) mod bisect;
pub mod commands;
pub mod outputs;
mod suite;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::EXIT_CODES_HELP;
use crate::{run, vm};

#[derive(Parser)]
#[command(
    name = "zcrx-conform",
    version = crate::report::TOOL_VERSION,
    about = "Conformance suite for Linux io_uring zero-copy receive (zcrx)",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// `--topology` of the commands that run cases on the topologies named.
#[derive(Args, Clone, Debug)]
pub struct TopologyArgs {
    /// Topologies this run provides, comma-separated (host, nodev, or a file under
    /// topologies/: veth, netdevsim, netdevsim-zcrx, nic-netdevsim, ...). Default: host,nodev;
    /// for `run` and `matrix` on a kernel booted in a VM, every topology that needs no hardware
    /// (host, nodev, netdevsim-zcrx, nic-netdevsim, veth, then stock netdevsim in a second boot).
    #[arg(long, value_delimiter = ',')]
    pub topology: Vec<String>,
}

impl TopologyArgs {
    /// The topologies named, or host,nodev when none is.
    pub fn names(&self) -> Vec<String> {
        if self.topology.is_empty() {
            vec!["host".into(), "nodev".into()]
        } else {
            self.topology.clone()
        }
    }
}

/// `--timeout` of the commands that run cases.
#[derive(Args, Clone, Debug)]
pub struct TimeoutArgs {
    /// Seconds before a case is killed (a case's own `timeout` wins); at most 86400.
    #[arg(long, default_value_t = 30.0, value_parser = run::parse_timeout)]
    pub timeout: f64,
}

/// Which cases, where, and how they run.
#[derive(Args, Clone, Debug)]
pub struct SelectArgs {
    /// Case files or directories (default: the repository's cases/).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// Only cases whose id contains this (repeatable).
    #[arg(long)]
    pub filter: Vec<String>,
    /// --filter matches whole case ids only.
    #[arg(long)]
    pub exact: bool,
    /// Only cases tagged `fixes:` with a commit whose id starts with this (7 to 40 hex digits;
    /// repeatable: any of them).
    #[arg(long, value_name = "ID_PREFIX")]
    pub fixes: Vec<String>,
    /// Only cases tagged with this CVE id (repeatable: any of them).
    #[arg(long, value_name = "CVE")]
    pub cve: Vec<String>,
    /// Run only shard K of N (e.g. 2/3; N at most 4096); N runners with 1/N..N/N run every case once.
    /// (Read as text and parsed by `run::parse_shard`, whose refusal quotes a bounded part of
    /// the value; clap's own would echo all of it.)
    #[arg(long)]
    pub shard: Option<String>,
    /// Run the selected cases N times, one pass after the other, in one process (one boot): how
    /// often a case that fails only sometimes fails (each pass's results are reported).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=run::MAX_REPEAT as i64))]
    pub repeat: u32,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
    /// Run up to N cases at the same time (cases holding an exclusive resource never overlap;
    /// after a kernel splat, the cases that overlapped are run again alone).
    #[arg(long, short, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Detection power: invert every assertion of every executed case; each must then fail.
    /// Cases that still pass are reported as failures ("unable to fail").
    #[arg(long)]
    pub self_check: bool,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The VM a kernel other than `host` boots in (refused on the host: nothing would use them).
#[derive(Args, Clone, Debug, Default)]
pub struct VmArgs {
    /// VM memory, with a --kernel other than host [default: 2G].
    #[arg(long)]
    pub memory: Option<String>,
    /// VM CPUs, with a --kernel other than host [default: 2].
    #[arg(long)]
    pub cpus: Option<u32>,
}

impl VmArgs {
    /// Refuses VM flags for a run that boots nothing.
    pub fn check(&self, kernels: &[vm::KernelSpec]) -> Result<(), crate::error::Error> {
        let boots = kernels.iter().any(|k| *k != vm::KernelSpec::Host);
        if !boots && (self.memory.is_some() || self.cpus.is_some()) {
            return Err(crate::error::Error::bad_input(
                "--memory and --cpus size the VM of a --kernel other than host; this run boots none",
            ));
        }
        Ok(())
    }
}

/// What a command writes, and how its result is judged.
#[derive(Args, Clone, Debug, Default)]
pub struct Outputs {
    /// Exit 0 rather than 3 when no case was selected or every selected case was skipped.
    #[arg(long)]
    pub allow_empty: bool,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the results as KernelCI KCIDB JSON (I/O schema v4) here.
    #[arg(long)]
    pub kcidb: Option<PathBuf>,
    /// KCIDB origin name (your CI system's, registered with KernelCI).
    #[arg(long, default_value = "zcrx_conform")]
    pub kcidb_origin: String,
    /// Print KTAP v1 on stdout (and nothing else there: the summary goes to stderr).
    #[arg(long)]
    pub ktap: bool,
    /// Write junit.xml, report.json and ktap.txt into this directory (created if missing;
    /// locked for the run: a second run on it is refused).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare with this baseline: the exit code reports only failures that are new for
    /// the target; fixed and newly broken cases are listed (and a baseline recorded on
    /// another kernel release is named as such).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Record this run in a baseline file (its target's entry, with the kernel release, is
    /// replaced; other targets' entries are kept). An aborted run is not recorded.
    #[arg(long)]
    pub write_baseline: Option<PathBuf>,
}

/// `run`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    // One kernel (default: host).
    #[command(flatten)]
    pub kernel: vm::KernelArgs,
    #[command(flatten)]
    pub vm: VmArgs,
    #[command(flatten)]
    pub outputs: Outputs,
    /// List the selected cases and where they would run on the running kernel, without
    /// running them (host only).
    #[arg(long)]
    pub list: bool,
    /// Machine-readable progress (encoded events) on stdout (used by the VM runner).
    #[arg(long, hide = true)]
    pub stream: bool,
    /// Skip the first N selected cases (used when a VM is booted again after a crash).
    #[arg(long, default_value_t = 0, hide = true)]
    pub start_at: usize,
}

/// `matrix`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct MatrixArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub kernel: vm::KernelArgs,
    #[command(flatten)]
    pub vm: VmArgs,
    #[command(flatten)]
    pub outputs: Outputs,
    /// Write one JUnit file per kernel here.
    #[arg(long)]
    pub junit_dir: Option<PathBuf>,
}

/// The kernels `matrix` runs when no --kernel is given.
pub const MATRIX_KERNELS: &[&str] = &["host", "debian:7.2.13", vm::DEFAULT_KERNEL];

#[derive(Subcommand)]
pub enum KernelCmd {
    /// Download and unpack one --kernel (debian:7.3.4, debian:7.3, debian:latest, any flavour:
    /// debian+rt:7.3.4, debian@arm64:7.3.4, debian+16k@arm64:7.3.4), or build a tree:PATH;
    /// prints its path.
    #[command(after_help = EXIT_CODES_HELP)]
    Fetch {
        #[command(flatten)]
        kernel: vm::KernelArgs,
    },
    /// Kernels the Debian mirror offers, every flavour (debian, debian+rt, debian@arm64,
    /// debian+16k@arm64, debian+rt@arm64), each line starting with its --kernel spec.
    #[command(after_help = EXIT_CODES_HELP)]
    List {
        /// Only versions starting with this (7.3), or one flavour's (debian+rt:, debian@arm64:7.3).
        pattern: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Print what the running kernel supports.
    #[command(after_help = EXIT_CODES_HELP)]
    Probe {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the case format.
    #[command(after_help = EXIT_CODES_HELP)]
    Schema,
    /// Check case files; errors name file:line:column. Exit 2 on any error, 3 when there is no
    /// case at all.
    #[command(after_help = EXIT_CODES_HELP)]
    Validate {
        /// Case files or directories (default: the repository's cases/).
        paths: Vec<PathBuf>,
    },
    /// Run cases against the running kernel, or against one --kernel booted in a
    /// virtme-ng VM.
    ///
    /// Output paths (--junit, --json, --kcidb, --out, --write-baseline) and --baseline are
    /// checked before any case runs (exit 2). A report that cannot be written after the cases
    /// ran exits 2 when no case failed and 1 when one did (the write error is printed either
    /// way). A run that selects no case, or skips every case it selects, exits 3 unless
    /// --allow-empty.
    ///
    /// An interrupted run (SIGINT, SIGTERM, SIGHUP and SIGQUIT as SIGTERM, a VM that died
    /// between cases) still writes its reports, marked aborted: report.json has `aborted` and
    /// `not_run` (the selected cases that did not run, the one killed at the signal included),
    /// JUnit an `aborted` property and the missing cases as skipped `not_run`, KCIDB them as
    /// MISS, KTAP ends with `Bail out!`. Without a signal (a VM that died; `merge` of an aborted
    /// report) the exit code is 1. A complete report it would replace is kept as NAME.prev
    /// (report.json.prev, junit.xml.prev, ktap.txt.prev, and the same next to --junit,
    /// --json and --kcidb files).
    #[command(after_help = EXIT_CODES_HELP)]
    Run(RunArgs),
    /// Fetch or list kernels for VM runs.
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Kernel(KernelCmd),
    /// Run the suite on several kernels (--kernel, repeatable, ranges expanded; default:
    /// host, debian:7.2.13, debian:7.3.4) and print a cases x kernels table.
    ///
    /// Outputs, checks and exit codes as for `run`; a kernel that could not be run at all
    /// makes the exit code 1.
    #[command(after_help = EXIT_CODES_HELP)]
    Matrix(MatrixArgs),
    /// Join reports (report.json files, or directories holding one) into one report; runs
    /// of the same target (shards, or one kernel on several topologies) become one run.
    /// Writes like `run` and prints the matrix.
    ///
    /// Refused (exit 2): shards with a gap (report.json records `shard` K/N: every K of a
    /// target's N must be there) and runs of one target on different kernel releases; a shard
    /// given twice, a case twice in one run, and a case of one target with two different
    /// results (each named with both inputs).
    #[command(after_help = EXIT_CODES_HELP)]
    Merge {
        /// report.json files or directories holding one.
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Print a plain-text bug report for one failing or xfail case: from a report.json
    /// (--from), or by running the case now (on the host, or one --kernel).
    ///
    /// A case that passed or was skipped has no bug to report: nothing is printed, exit 1.
    #[command(after_help = EXIT_CODES_HELP)]
    ReportBug(BugArgs),
    /// Print the catalogue as a Markdown table: cases per area, and, given reports, how many
    /// each kernel executed, passed and skipped.
    #[command(after_help = EXIT_CODES_HELP)]
    Catalogue {
        /// report.json files or directories (e.g. a matrix --out directory).
        #[arg(long)]
        from: Vec<PathBuf>,
        /// Case files or directories (default: the repository's cases/).
        paths: Vec<PathBuf>,
    },
    /// Render report.json files (a run, or a matrix --out directory) as one self-contained
    /// HTML page.
    #[command(after_help = EXIT_CODES_HELP)]
    Html {
        /// report.json files or directories holding one.
        inputs: Vec<PathBuf>,
        /// Where to write the page.
        #[arg(long, default_value = "out/report.html")]
        out: PathBuf,
    },
    /// Benchmark RECV_ZC against plain recv() on the same socket path (ratios, not absolutes,
    /// under TCG), and time the suite itself; on the host, or one --kernel booted in a VM.
    #[command(after_help = EXIT_CODES_HELP)]
    Bench(crate::bench::BenchArgs),
    /// Kernel mutants: apply each mutant of vm/mutants to a campaign copy of a kernel tree
    /// (--kernel tree:PATH), build it with gcov on io_uring/zcrx.c, boot it once, run the catalogue
    /// (host, nodev, netdevsim-zcrx) and liburing's zcrx.t, and record killed or survived for
    /// both; resumable (one JSON line per mutant). Writes reports/mutation.md and .json.
    #[command(after_help = EXIT_CODES_HELP)]
    Mutate(crate::campaign::MutateArgs),
    /// Line coverage of io_uring/zcrx.c from a campaign's baseline boot (--kernel tree:PATH as
    /// given to `mutate`), for the suite and liburing's zcrx.t (coverage.md, coverage.json, lcov tracefiles); with --diff or --patch,
    /// which changed lines the suite executes.
    #[command(after_help = EXIT_CODES_HELP)]
    Coverage(crate::campaign::CoverageArgs),
    /// Qualify a NIC's zcrx support (on the host, or inside a VM booting one --kernel): probe
    /// the device, run the NIC-path cases on its topology (kind: nic), compare every readable DUT setting before and after, and write
    /// qualification.json and qualification.html (plus junit.xml and report.json) into --out.
    ///
    /// Exit 0: every requirement passed; 1: one failed (a case, a kernel splat, a setting left
    /// changed, a soak leak or drift); 3: nothing failed but a requirement was not tested.
    #[command(after_help = EXIT_CODES_HELP)]
    Qualify(crate::qualify::QualifyArgs),
    /// Find the first kernel where what the kernel observably does in one case changes.
    ///
    /// Compared: whether the case ran, and each step's errno or result, read-back fields and
    /// CQE res/flags (report.json's `observed`), not the case's pass/fail, so the case's
    /// per-kernel expectations do not hide the change. Prints the last old and first new
    /// kernel, what each did, and the boots used. Data-path cases whose CQE count depends on
    /// timing are poor subjects. --kernel debian:A..B searches the Debian versions from A to B;
    /// --kernel tree:PATH with --good and --bad the commits of a kernel git tree.
    #[command(after_help = EXIT_CODES_HELP)]
    Bisect(BisectArgs),
    /// Run the kernel's own zcrx selftests (drivers/net/hw/iou-zcrx.py, nk_qlease.py) from its
    /// Debian source, unmodified, on two linked netdevsim-zcrx ports in a VM booting it, with
    /// liburing's zcrx.t beside them; each subtest's KTAP result and the simulated NIC's
    /// counters (zero copy or not) become cases `upstream.<test>.<subtest>` in report.json,
    /// junit.xml and ktap.txt (`merge` joins them with the catalogue's run of the same
    /// kernel), and --out also gets upstream.json and upstream.md. Exit codes as for `run`.
    #[command(after_help = EXIT_CODES_HELP)]
    Upstream(UpstreamArgs),
    /// Inside the VM of `upstream`: vm/upstream.sh's guest half.
    #[command(hide = true, after_help = EXIT_CODES_HELP)]
    UpstreamGuest {
        /// The extracted source subset (`upstream.sh prepare`'s result).
        ksrc: PathBuf,
        /// The netdevsim-zcrx module for the booted kernel.
        netdevsim: PathBuf,
        /// sid's ethtool.
        ethtool: PathBuf,
        /// liburing's test/zcrx.t.
        zcrx_t: PathBuf,
        /// Test files under tools/testing/selftests/drivers/net/hw.
        tests: Vec<String>,
    },
    /// One `git bisect run` step of `bisect --kernel tree:PATH` (exit 0 old, 1 new, 125 skip).
    #[command(hide = true, after_help = EXIT_CODES_HELP)]
    BisectStep(BisectStepArgs),
    /// The remote peer's agent, started by the harness over ssh on the peer machine (a
    /// topology's `remote.ssh`): one JSON request per stdin line, one answer per stdout line.
    #[command(hide = true, after_help = EXIT_CODES_HELP)]
    PeerAgent,
}

/// `upstream`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct UpstreamArgs {
    // One debian: kernel (its linux-source package holds the tests).
    #[command(flatten)]
    pub kernel: vm::KernelArgs,
    /// A test file under tools/testing/selftests/drivers/net/hw (repeatable; default:
    /// iou-zcrx.py and nk_qlease.py).
    #[arg(long = "test", value_name = "FILE.py")]
    pub tests: Vec<String>,
    /// Seconds the VM may take in all (boot, every test, power-off).
    #[arg(long, default_value_t = 5400)]
    pub vm_timeout: u64,
    #[command(flatten)]
    pub outputs: Outputs,
}

/// `bisect`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct BisectArgs {
    /// The exact case id.
    pub id: String,
    // debian:A..B (every Debian version from the oldest matching A to the newest matching B;
    // `7.1` matches every 7.1.x), or tree:PATH (a kernel git tree; with --good and --bad).
    #[command(flatten)]
    pub kernel: vm::KernelArgs,
    /// tree:PATH only: the old end (a commit where the case behaves the old way).
    #[arg(long)]
    pub good: Option<String>,
    /// tree:PATH only: the new end.
    #[arg(long)]
    pub bad: Option<String>,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

/// `bisect-step`'s arguments (given by `bisect` to `git bisect run`).
#[derive(Args, Clone, Debug)]
pub struct BisectStepArgs {
    /// The exact case id.
    pub id: String,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

/// `report-bug`'s own arguments (no other `run` flag applies to one case's report).
#[derive(Args, Clone, Debug)]
pub struct BugArgs {
    /// The exact case id.
    pub id: String,
    /// A report.json (or a directory holding one) to take the result from instead of running
    /// the case.
    #[arg(long, conflicts_with_all = ["kernels", "topology", "timeout"])]
    pub from: Option<PathBuf>,
    // One kernel to run the case on (default: host).
    #[command(flatten)]
    pub kernel: vm::KernelArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub timeout: TimeoutArgs,
}

#[cfg(test)]
mod tests;
