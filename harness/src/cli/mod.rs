//! The command line: the clap types (each argument struct declared once) and one function per
//! command ([`commands`]); [`outputs`] writes a run's reports and decides its verdict.

pub mod bisect;
pub mod commands;
pub mod outputs;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::EXIT_CODES_HELP;

/// The longest `--timeout` (one day): longer is a typo, and `inf` would overflow the clocks.
pub const MAX_TIMEOUT_S: f64 = 86_400.0;

/// `--timeout`: a finite number of seconds in (0, [`MAX_TIMEOUT_S`]].
pub fn parse_timeout(s: &str) -> Result<f64, String> {
    let t: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if t.is_finite() && t > 0.0 && t <= MAX_TIMEOUT_S {
        Ok(t)
    } else {
        Err(format!("`{s}`: need a number of seconds above 0 and at most {MAX_TIMEOUT_S}"))
    }
}

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

/// Which cases, where, and how they run.
#[derive(Args, Clone, Debug)]
pub struct SelectArgs {
    /// Case files or directories (default: the repository's cases/).
    pub paths: Vec<PathBuf>,
    /// Topologies this run provides, comma-separated (host, nodev, ...).
    #[arg(long, default_value = "host,nodev", value_delimiter = ',')]
    pub topology: Vec<String>,
    /// Only cases whose id contains this (repeatable).
    #[arg(long)]
    pub filter: Vec<String>,
    /// --filter matches whole case ids only.
    #[arg(long)]
    pub exact: bool,
    /// Run only shard K of N (e.g. 2/3; N at most 4096); N runners with 1/N..N/N run every case
    /// once.
    #[arg(long)]
    pub shard: Option<String>,
    /// Seconds before a case is killed (a case's own `timeout` wins); at most 86400.
    #[arg(long, default_value_t = 30.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Run up to N cases at the same time (cases holding an exclusive resource never overlap;
    /// after a kernel splat, the cases that overlapped are run again alone).
    #[arg(long, short, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Detection power: invert every assertion of every executed case; each must then fail.
    /// Cases that still pass are reported as failures ("unable to fail").
    #[arg(long)]
    pub self_check: bool,
    /// List the selected cases and where they would run, without running them.
    #[arg(long)]
    pub list: bool,
    /// Machine-readable progress (encoded events) on stdout (used by the VM runner).
    #[arg(long, hide = true)]
    pub stream: bool,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip the first N selected cases (used when a VM is booted again after a crash).
    #[arg(long, default_value_t = 0, hide = true)]
    pub start_at: usize,
}

/// Where a run happens when it is not the running kernel.
#[derive(Args, Clone, Debug)]
pub struct VmArgs {
    /// Boot this kernel in a virtme-ng VM and run there: debian:<version>, a bzImage/vmlinuz,
    /// or a kernel build tree (default with no value: debian:7.3.4).
    #[arg(long, num_args = 0..=1, default_missing_value = crate::vm::DEFAULT_KERNEL)]
    pub vm: Option<String>,
    /// VM memory.
    #[arg(long, default_value = "2G")]
    pub memory: String,
    /// VM CPUs.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
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

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub vm: VmArgs,
    #[command(flatten)]
    pub outputs: Outputs,
}

#[derive(Subcommand)]
pub enum KernelCmd {
    /// Download and unpack a kernel (debian:7.3.4, debian:7.3, debian:latest); prints its path.
    #[command(after_help = EXIT_CODES_HELP)]
    Fetch {
        /// The kernel: debian:<version>, debian:<major.minor> (newest of it) or debian:latest.
        spec: String,
    },
    /// Kernels the Debian mirror offers.
    #[command(after_help = EXIT_CODES_HELP)]
    List {
        /// Only versions containing this.
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
    /// Run cases against the running kernel.
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
    /// Run the suite on several kernels and print a cases x kernels table.
    ///
    /// Outputs, checks and exit codes as for `run`; a kernel that could not be run at all
    /// makes the exit code 1.
    #[command(after_help = EXIT_CODES_HELP)]
    Matrix {
        /// Comma-separated: host, debian:<version>, or a kernel image/tree path.
        #[arg(long, value_delimiter = ',', default_value = "host,debian:7.2.13,debian:7.3.4")]
        kernels: Vec<String>,
        /// Write one JUnit file per kernel here.
        #[arg(long)]
        junit_dir: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
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
    /// (--from), or by running the case now (on the host, or --vm SPEC).
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
    /// under TCG), and time the suite itself.
    #[command(after_help = EXIT_CODES_HELP)]
    Bench(crate::bench::BenchArgs),
    /// Kernel mutants: apply each mutant of vm/mutants to a campaign copy of a kernel tree
    /// (tree:PATH), build it with gcov on io_uring/zcrx.c, boot it once, run the catalogue
    /// (host, nodev, netdevsim-zcrx) and liburing's zcrx.t, and record killed or survived for
    /// both; resumable (one JSON line per mutant). Writes reports/mutation.md and .json.
    #[command(after_help = EXIT_CODES_HELP)]
    Mutate(crate::campaign::MutateArgs),
    /// Line coverage of io_uring/zcrx.c from a campaign's baseline boot, for the suite and
    /// liburing's zcrx.t (coverage.md, coverage.json, lcov tracefiles); with --diff or --patch,
    /// which changed lines the suite executes.
    #[command(after_help = EXIT_CODES_HELP)]
    Coverage(crate::campaign::CoverageArgs),
    /// Qualify a NIC's zcrx support: probe the device, run the NIC-path cases on its topology
    /// (kind: nic), compare every readable DUT setting before and after, and write
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
    /// timing are poor subjects.
    #[command(after_help = EXIT_CODES_HELP)]
    Bisect(BisectArgs),
    /// One `git bisect run` step of `bisect --kernels tree:PATH` (exit 0 old, 1 new, 125 skip).
    #[command(hide = true, after_help = EXIT_CODES_HELP)]
    BisectStep(BisectStepArgs),
}

/// `bisect`'s arguments.
#[derive(Args, Clone, Debug)]
pub struct BisectArgs {
    /// The exact case id.
    pub id: String,
    /// debian:A..debian:B (every Debian version from the oldest matching A to the newest
    /// matching B; `7.1` matches every 7.1.x), or tree:PATH (a kernel git tree; with --good
    /// and --bad).
    #[arg(long)]
    pub kernels: String,
    /// tree:PATH only: the old end (a commit where the case behaves the old way).
    #[arg(long)]
    pub good: Option<String>,
    /// tree:PATH only: the new end.
    #[arg(long)]
    pub bad: Option<String>,
    /// Topologies the runs provide, comma-separated (host, nodev, ...).
    #[arg(long, default_value = "host,nodev", value_delimiter = ',')]
    pub topology: Vec<String>,
    /// Seconds before the case is killed (a case's own `timeout` wins); at most 86400.
    #[arg(long, default_value_t = 30.0, value_parser = parse_timeout)]
    pub timeout: f64,
}

/// `bisect-step`'s arguments (given by `bisect` to `git bisect run`).
#[derive(Args, Clone, Debug)]
pub struct BisectStepArgs {
    /// The exact case id.
    pub id: String,
    /// Topologies, comma-separated.
    #[arg(long, default_value = "host,nodev", value_delimiter = ',')]
    pub topology: Vec<String>,
    /// Case timeout in seconds.
    #[arg(long, default_value_t = 30.0, value_parser = parse_timeout)]
    pub timeout: f64,
}

/// `report-bug`'s own arguments (no other `run` flag applies to one case's report).
#[derive(Args, Clone, Debug)]
pub struct BugArgs {
    /// The exact case id.
    pub id: String,
    /// A report.json (or a directory holding one) to take the result from instead of running
    /// the case.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Run the case in a virtme-ng VM with this kernel (as `run --vm`; default with no value:
    /// debian:7.3.4).
    #[arg(long, num_args = 0..=1, default_missing_value = crate::vm::DEFAULT_KERNEL, conflicts_with = "from")]
    pub vm: Option<String>,
    /// Seconds before the case is killed (a case's own `timeout` wins); at most 86400.
    #[arg(long, default_value_t = 30.0, value_parser = parse_timeout, conflicts_with = "from")]
    pub timeout: f64,
    /// Topologies this run provides, comma-separated (host, nodev, ...).
    #[arg(long, default_value = "host,nodev", value_delimiter = ',', conflicts_with = "from")]
    pub topology: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn all(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            all(sub, p.clone(), out);
            out.push((p, sub.clone()));
        }
    }

    /// Every command's help ends with the exit codes, and every flag and argument has help.
    #[test]
    fn every_help_ends_with_exit_codes_and_every_flag_is_explained() {
        let mut cmds = vec![("zcrx-conform".to_string(), Cli::command())];
        all(&Cli::command(), "zcrx-conform".into(), &mut cmds);
        for (name, mut c) in cmds {
            let help = c.render_long_help().to_string();
            assert!(
                help.trim_end().ends_with(EXIT_CODES_HELP),
                "{name}: help does not end with the exit codes:\n{help}"
            );
            for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(a.get_help().is_some() || a.get_long_help().is_some(), "{name}: `{id}` has no help");
            }
        }
    }

    #[test]
    fn bench_help_has_no_stale_not_yet() {
        let mut c = Cli::command();
        let bench = c.find_subcommand_mut("bench").expect("bench").render_long_help().to_string();
        assert!(!bench.contains("not yet"), "{bench}");
        assert!(bench.contains("netdevsim-zcrx"), "{bench}");
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("2.5"), Ok(2.5));
        for bad in ["0", "-1", "inf", "NaN", "1e300", "x", "86401"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_names_the_commit() {
        let v = Cli::command().render_version().to_string();
        assert!(v.starts_with(&format!("zcrx-conform {} (", env!("CARGO_PKG_VERSION"))), "{v}");
    }
}
