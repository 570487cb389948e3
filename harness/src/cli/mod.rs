//! The command line: the clap types (each argument struct declared once) and one function per
//! command ([`commands`]); [`outputs`] writes a run's reports and decides its verdict.

pub mod commands;
pub mod outputs;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "zcrx-conform", version, about = "Conformance suite for Linux io_uring zero-copy receive (zcrx)")]
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
    /// Run only shard K of N (e.g. 2/3); N runners with 1/N..N/N run every case once.
    #[arg(long)]
    pub shard: Option<String>,
    /// Seconds before a case is killed (a case's own `timeout` wins).
    #[arg(long, default_value_t = 30.0)]
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

/// What a command writes.
#[derive(Args, Clone, Debug, Default)]
pub struct Outputs {
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
    /// Print KTAP v1 on stdout.
    #[arg(long)]
    pub ktap: bool,
    /// Write junit.xml, report.json and ktap.txt into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare with this baseline: the exit code reports only failures that are new for
    /// the kernel; fixed and newly broken cases are listed.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Record this run in a baseline file (other kernels' entries are kept).
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
    Fetch { spec: String },
    /// Kernels the Debian mirror offers.
    List { pattern: Option<String> },
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Print what the running kernel supports.
    Probe {
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the case format.
    Schema,
    /// Check case files; errors name file:line:column. Exit 2 on any error.
    Validate { paths: Vec<PathBuf> },
    /// Run cases against the running kernel.
    Run(RunArgs),
    /// Fetch or list kernels for VM runs.
    #[command(subcommand)]
    Kernel(KernelCmd),
    /// Run the suite on several kernels and print a cases x kernels table.
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
    /// of the same kernel (shards) become one run. Writes like `run` and prints the matrix.
    Merge {
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Print a plain-text bug report for one failing or xfail case: from a report.json
    /// (--from), or by running the case now (on the host, or --vm SPEC).
    ReportBug {
        /// The exact case id.
        id: String,
        /// A report.json (or a directory holding one) to take the result from.
        #[arg(long)]
        from: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Print the catalogue as a Markdown table: cases per area, and, given reports, how many
    /// each kernel executed, passed and skipped.
    Catalogue {
        /// report.json files or directories (e.g. a matrix --out directory).
        #[arg(long)]
        from: Vec<PathBuf>,
        paths: Vec<PathBuf>,
    },
    /// Render report.json files (a run, or a matrix --out directory) as one self-contained
    /// HTML page.
    Html {
        /// report.json files or directories holding one.
        inputs: Vec<PathBuf>,
        /// Where to write the page.
        #[arg(long, default_value = "out/report.html")]
        out: PathBuf,
    },
    /// Benchmark RECV_ZC against plain recv() on the same socket path (ratios, not absolutes,
    /// under TCG), and time the suite itself.
    Bench(crate::bench::BenchArgs),
}
