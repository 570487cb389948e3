use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use zcrx_conform::case::{self, LoadError};
use zcrx_conform::exec;
use zcrx_conform::model::{Probe, RunReport, Status};
use zcrx_conform::report::{self, baseline, bugreport};
use zcrx_conform::run::{self as runner, RunOpts};
use zcrx_conform::{topology, vm};

#[derive(Parser)]
#[command(name = "zcrx-conform", version, about = "Conformance suite for Linux io_uring zero-copy receive (zcrx)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Case files or directories (default: the repository's cases/).
    paths: Vec<PathBuf>,
    /// Topologies this run provides, comma-separated (host, nodev, ...).
    #[arg(long, default_value = "host,nodev", value_delimiter = ',')]
    topology: Vec<String>,
    /// Only cases whose id contains this (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the results as KernelCI KCIDB JSON (I/O schema v4) here.
    #[arg(long)]
    kcidb: Option<PathBuf>,
    /// KCIDB origin name (your CI system's, registered with KernelCI).
    #[arg(long, default_value = "zcrx_conform")]
    kcidb_origin: String,
    /// Print KTAP v1 on stdout.
    #[arg(long)]
    ktap: bool,
    /// Write junit.xml, report.json and ktap.txt into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seconds before a case is killed (a case's own `timeout` wins).
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// List the selected cases and where they would run, without running them.
    #[arg(long)]
    list: bool,
    /// Detection power: invert every assertion of every executed case; each must then fail.
    /// Cases that still pass are reported as failures ("unable to fail").
    #[arg(long)]
    self_check: bool,
    /// Machine-readable progress on stdout (used by the VM runner).
    #[arg(long, hide = true)]
    stream: bool,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
    /// Boot this kernel in a virtme-ng VM and run there: debian:<version>, a bzImage/vmlinuz,
    /// or a kernel build tree (default with no value: debian:7.3.4).
    #[arg(long, num_args = 0..=1, default_missing_value = vm::DEFAULT_KERNEL)]
    vm: Option<String>,
    /// VM memory.
    #[arg(long, default_value = "2G")]
    memory: String,
    /// VM CPUs.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// Compare with this baseline: the exit code reports only failures that are new for
    /// the kernel; fixed and newly broken cases are listed.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Record this run in a baseline file (other kernels' entries are kept).
    #[arg(long)]
    write_baseline: Option<PathBuf>,
    /// Run only shard K of N (e.g. 2/3); N runners with 1/N..N/N run every case once.
    #[arg(long)]
    shard: Option<String>,
    /// Skip the first N selected cases (used when a VM is booted again after a crash).
    #[arg(long, default_value_t = 0, hide = true)]
    start_at: usize,
}

impl RunArgs {
    fn for_reports(out: Option<PathBuf>, junit: Option<PathBuf>, json: Option<PathBuf>) -> RunArgs {
        RunArgs {
            paths: vec![],
            topology: vec![],
            filter: vec![],
            junit,
            json,
            ktap: false,
            out,
            timeout: 30.0,
            list: false,
            stream: false,
            quiet: true,
            vm: None,
            memory: String::new(),
            cpus: 0,
            shard: None,
            start_at: 0,
            self_check: false,
            baseline: None,
            write_baseline: None,
            kcidb: None,
            kcidb_origin: "zcrx_conform".into(),
        }
    }
}

#[derive(Subcommand)]
enum KernelCmd {
    /// Download and unpack a kernel (debian:7.3.4, debian:7.3, debian:latest); prints its path.
    Fetch { spec: String },
    /// Kernels the Debian mirror offers.
    List { pattern: Option<String> },
}

#[derive(Subcommand)]
enum Cmd {
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
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        junit: Option<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long)]
        kcidb: Option<PathBuf>,
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
    Bench(zcrx_conform::bench::BenchArgs),
    /// Run one case in this process (used by `run` for isolation).
    #[command(hide = true)]
    ExecCase {
        file: PathBuf,
        #[arg(long)]
        index: usize,
        #[arg(long)]
        topology: String,
        /// Invert every assertion (self-check).
        #[arg(long)]
        invert: bool,
    },
}

fn print_errors(errs: &[LoadError]) {
    for e in errs {
        eprintln!("error: {e}");
    }
    eprintln!("{} error(s)", errs.len());
}

fn case_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![zcrx_conform::paths::default_case_dir()]
    } else {
        paths.to_vec()
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.cmd {
        Cmd::Probe { json } => {
            let p = Probe::run();
            if json {
                println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
            } else {
                print!("{}", p.render());
            }
            ExitCode::SUCCESS
        }
        Cmd::Schema => {
            println!("{}", serde_json::to_string_pretty(&case::schema()).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Cmd::Validate { paths } => match case::load_all(&case_paths(&paths)) {
            Ok(cases) => {
                println!("{} case(s) valid", cases.len());
                ExitCode::SUCCESS
            }
            Err(errs) => {
                print_errors(&errs);
                ExitCode::from(2)
            }
        },
        Cmd::ExecCase { file, index, topology, invert } => exec_case(&file, index, &topology, invert),
        Cmd::Run(a) => run_cmd(a),
        Cmd::Kernel(KernelCmd::Fetch { spec }) => match vm::KernelSpec::parse(&spec).and_then(|k| vm::resolve(&k)) {
            Ok(p) => {
                println!("{}", p.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Kernel(KernelCmd::List { pattern }) => match vm::list_kernels(pattern.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::Matrix { kernels, junit_dir, run } => matrix_cmd(&kernels, junit_dir.as_deref(), run),
        Cmd::Merge { inputs, out, junit, json, kcidb } => bad_input(merge_cmd(&inputs, out, junit, json, kcidb)),
        Cmd::ReportBug { id, from, run } => report_bug(&id, from.as_deref(), run),
        Cmd::Catalogue { from, paths } => catalogue(&from, &paths),
        Cmd::Html { inputs, out } => bad_input(html_cmd(&inputs, &out)),
        Cmd::Bench(b) => match zcrx_conform::bench::main(&b) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn exec_case(file: &std::path::Path, index: usize, topo: &str, invert: bool) -> ExitCode {
    let cases = match case::load_file(file) {
        Ok(c) => c,
        Err(errs) => {
            print_errors(&errs);
            return ExitCode::from(2);
        }
    };
    let Some(case) = cases.into_iter().find(|c| c.index == index) else {
        eprintln!("{}: no case #{index}", file.display());
        return ExitCode::from(2);
    };
    let topo = match topology::Topo::for_case(topo) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let probe = Probe::run();
    let o = exec::execute(&case, &topo, &probe, invert);
    println!("@@OUTCOME@@ {}", serde_json::to_string(&o).unwrap_or_default());
    ExitCode::SUCCESS
}

/// Checks the run arguments and loads the cases; Err is the exit code.
fn prepare(a: &RunArgs) -> Result<Vec<case::Case>, ExitCode> {
    for t in &a.topology {
        if topology::Topo::builtin(t).is_some() {
            continue;
        }
        if let Err(e) = topology::load(t) {
            let known: Vec<String> = ["host".to_string(), "nodev".to_string()]
                .into_iter()
                .chain(topology::available().into_keys())
                .collect();
            eprintln!("error: topology `{t}`: {e} (known: {})", known.join(", "));
            return Err(ExitCode::from(2));
        }
    }
    if a.timeout.is_nan() || a.timeout <= 0.0 {
        eprintln!("error: --timeout must be a positive number of seconds");
        return Err(ExitCode::from(2));
    }
    if let Some(s) = &a.shard {
        if let Err(e) = runner::parse_shard(s) {
            eprintln!("error: {e}");
            return Err(ExitCode::from(2));
        }
    }
    case::load_all(&case_paths(&a.paths)).map_err(|errs| {
        print_errors(&errs);
        ExitCode::from(2)
    })
}

fn run_cmd(a: RunArgs) -> ExitCode {
    let cases = match prepare(&a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    runner::install_signal_handlers();
    if let Some(spec) = &a.vm {
        return match run_target(spec, &cases, &a) {
            Ok(rep) => finish(&[rep], &a),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let probe = Probe::run();
    if a.list {
        for c in runner::select(&cases, &run_opts(&a)) {
            match runner::plan(c, &a.topology, &probe) {
                Ok(t) => println!("{}  [{}]", c.id, t),
                Err(why) => println!("{}  [skip: {why}]", c.id),
            }
        }
        return ExitCode::SUCCESS;
    }
    let rep = runner::run(&cases, &run_opts(&a), &probe, "host");
    finish(&[rep], &a)
}

fn run_opts(a: &RunArgs) -> RunOpts {
    RunOpts {
        topologies: a.topology.clone(),
        filter: a.filter.clone(),
        timeout: a.timeout,
        stream: a.stream,
        quiet: a.quiet,
        start_at: a.start_at,
        // Checked in prepare().
        shard: a.shard.as_deref().and_then(|s| runner::parse_shard(s).ok()),
        self_check: a.self_check,
    }
}

/// Runs the suite on one target: `host`, or a kernel booted in a VM.
fn run_target(spec: &str, cases: &[case::Case], a: &RunArgs) -> Result<RunReport, String> {
    let k = vm::KernelSpec::parse(spec)?;
    if matches!(k, vm::KernelSpec::Host) {
        return Ok(runner::run(cases, &run_opts(a), &Probe::run(), "host"));
    }
    let t0 = std::time::Instant::now();
    vm::provision()?;
    let kernel = vm::resolve(&k)?;
    let env = vm::guest_tools(&kernel, &a.topology)?;
    let prep = t0.elapsed().as_secs_f64();
    let opts = vm::VmOpts {
        paths: case_paths(&a.paths),
        topologies: a.topology.clone(),
        filter: a.filter.clone(),
        timeout: a.timeout,
        quiet: a.quiet,
        memory: a.memory.clone(),
        cpus: a.cpus,
        shard: a.shard.clone(),
        self_check: a.self_check,
        env,
    };
    let mut rep = vm::run_in_vm(spec, &kernel, &opts)?;
    rep.timings.insert(0, ("provision_and_fetch_s".into(), prep));
    let t = |k: &str| rep.timings.iter().find(|(n, _)| n == k).map_or(0.0, |(_, v)| *v);
    eprintln!(
        "{spec}: set-up {prep:.1} s, VM boot {:.1} s ({} boot(s)), suite {:.1} s, end to end {:.1} s",
        t("vm_boot_s"),
        t("vm_boots"),
        t("suite_s"),
        prep + rep.duration_s
    );
    Ok(rep)
}

fn load_report(path: &std::path::Path) -> Result<report::JsonReport, String> {
    let path = if path.is_dir() { path.join("report.json") } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}:{}:{}: not a zcrx-conform report: {e}", path.display(), e.line(), e.column()))
}

/// Every run of the given report.json files (or directories holding one), in order.
fn load_runs(inputs: &[PathBuf]) -> Result<Vec<RunReport>, String> {
    let mut runs = Vec::new();
    for i in inputs {
        runs.extend(load_report(i)?.runs);
    }
    Ok(runs)
}

fn report_bug(id: &str, from: Option<&std::path::Path>, mut a: RunArgs) -> ExitCode {
    let runs = match from {
        Some(p) => match load_report(p) {
            Ok(r) => r.runs,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            let cases = match prepare(&a) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let Some(case) = cases.into_iter().find(|c| c.id == id) else {
                eprintln!("error: no case with id `{id}` (see `zcrx-conform run --list`)");
                return ExitCode::from(2);
            };
            a.quiet = true;
            let target = a.vm.clone().unwrap_or_else(|| "host".into());
            a.filter = vec![id.to_string()];
            match run_target(&target, std::slice::from_ref(&case), &a) {
                Ok(r) => vec![r],
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    for r in &runs {
        if let Some(c) = r.cases.iter().find(|c| c.id == id) {
            print!("{}", bugreport::render(r, c));
            return if matches!(c.status, Status::Fail | Status::Xfail | Status::Xpass) {
                ExitCode::SUCCESS
            } else {
                eprintln!("note: {id} did not fail ({})", c.status.word());
                ExitCode::from(1)
            };
        }
    }
    eprintln!("error: case `{id}` is not in the report");
    ExitCode::from(2)
}

/// A command's bad input (unreadable report, wrong arguments) is exit code 2.
fn bad_input(r: Result<ExitCode, String>) -> ExitCode {
    r.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn html_cmd(inputs: &[PathBuf], out: &std::path::Path) -> Result<ExitCode, String> {
    let runs = load_runs(inputs)?;
    if runs.is_empty() {
        return Err("no runs in the inputs".into());
    }
    let page = zcrx_conform::report::html::render(&runs.iter().collect::<Vec<_>>());
    report::write_atomic(out, &page).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn catalogue(from: &[PathBuf], paths: &[PathBuf]) -> ExitCode {
    let cases = match case::load_all(&case_paths(paths)) {
        Ok(c) => c,
        Err(errs) => {
            print_errors(&errs);
            return ExitCode::from(2);
        }
    };
    let runs = match load_runs(from) {
        Ok(r) => r,
        Err(e) => return bad_input(Err(e)),
    };
    print!("{}", report::catalogue_table(&cases, &runs.iter().collect::<Vec<_>>()));
    ExitCode::SUCCESS
}

fn merge_cmd(
    inputs: &[PathBuf],
    out: Option<PathBuf>,
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
    kcidb: Option<PathBuf>,
) -> Result<ExitCode, String> {
    if inputs.is_empty() {
        return Err("merge needs at least one report.json or directory".into());
    }
    let loaded = load_runs(inputs)?;
    let mut runs: Vec<RunReport> = Vec::new();
    for r in loaded {
        match runs.iter_mut().find(|x| x.target == r.target) {
            Some(x) => {
                x.cases.extend(r.cases);
                x.topologies.extend(r.topologies);
                x.duration_s += r.duration_s;
                if x.aborted.is_none() {
                    x.aborted = r.aborted;
                }
            }
            None => runs.push(r),
        }
    }
    for r in &mut runs {
        // Shards run disjoint cases; jobs of one kernel on different topologies run the same
        // cases, each executing some and skipping the rest: keep an executed result.
        r.cases.sort_by(|a, b| a.id.cmp(&b.id).then((a.status == Status::Skip).cmp(&(b.status == Status::Skip))));
        r.cases.dedup_by(|a, b| a.id == b.id);
        r.topologies.sort();
        r.topologies.dedup();
    }
    if runs.len() > 1 {
        print!("{}", report::matrix_table(&runs.iter().collect::<Vec<_>>()));
    }
    let mut a = RunArgs::for_reports(out, junit, json);
    a.kcidb = kcidb;
    Ok(finish(&runs, &a))
}

fn matrix_cmd(kernels: &[String], junit_dir: Option<&std::path::Path>, a: RunArgs) -> ExitCode {
    let cases = match prepare(&a) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for k in kernels {
        if let Err(e) = vm::KernelSpec::parse(k) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    runner::install_signal_handlers();
    let mut runs = Vec::new();
    for k in kernels {
        match run_target(k, &cases, &a) {
            Ok(r) => {
                if let Some(d) = junit_dir {
                    let name = k.replace(['/', ':'], "_");
                    match report::junit(&[&r]) {
                        Ok(x) => {
                            if let Err(e) = report::write_atomic(&d.join(format!("junit-{name}.xml")), &x) {
                                eprintln!("error: {e}");
                            }
                        }
                        Err(e) => eprintln!("error: {e}"),
                    }
                }
                runs.push(r);
            }
            Err(e) => eprintln!("error: {k}: {e}"),
        }
        if runner::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
    }
    print!("{}", report::matrix_table(&runs.iter().collect::<Vec<_>>()));
    let code = finish(&runs, &a);
    if runs.len() < kernels.len() && code == ExitCode::SUCCESS {
        return ExitCode::from(1);
    }
    code
}

/// Writes the reports and turns the results into the exit code.
fn finish(runs: &[RunReport], a: &RunArgs) -> ExitCode {
    let refs: Vec<&RunReport> = runs.iter().collect();
    let mut io_failed = false;
    let mut write = |path: &PathBuf, text: String| {
        if let Err(e) = report::write_atomic(path, &text) {
            eprintln!("error: writing {}: {e}", path.display());
            io_failed = true;
        }
    };
    let junit = match report::junit(&refs) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(p) = &a.junit {
        write(p, junit.clone());
    }
    if let Some(p) = &a.json {
        write(p, report::json(&refs));
    }
    if let Some(p) = &a.kcidb {
        write(
            p,
            serde_json::to_string_pretty(&zcrx_conform::report::kcidb::export(&refs, &a.kcidb_origin))
                .unwrap_or_default(),
        );
    }
    if let Some(d) = &a.out {
        write(&d.join("junit.xml"), junit);
        write(&d.join("report.json"), report::json(&refs));
        write(&d.join("ktap.txt"), runs.iter().map(report::ktap).collect());
    }
    if a.ktap {
        for r in runs {
            print!("{}", report::ktap(r));
        }
    }
    if !a.stream {
        for r in runs {
            for c in r.cases.iter().filter(|c| c.status == Status::Fail) {
                eprintln!("FAIL {}: {}", c.id, c.message);
            }
            eprintln!("{} in {:.1} s", r.summary(), r.duration_s);
        }
        let (p, f, s) = runs.iter().fold((0, 0, 0), |(p, f, s), r| {
            (p + r.count(Status::Pass) + r.count(Status::Xfail), f + r.failures(), s + r.count(Status::Skip))
        });
        println!("zcrx-conform: {p} passed, {f} failed, {s} skipped");
    }
    if let Some(p) = &a.write_baseline {
        let mut b = if p.exists() {
            match baseline::Baseline::load(p) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        } else {
            baseline::Baseline::default()
        };
        b.record(runs);
        write(p, serde_json::to_string_pretty(&b).unwrap_or_default());
    }
    let mut new_failures = None;
    if let Some(p) = &a.baseline {
        match baseline::Baseline::load(p) {
            Ok(b) => {
                let mut n = 0;
                for r in runs {
                    let d = b.diff(r);
                    eprint!("{}", d.render());
                    n += d.newly_broken.len();
                }
                new_failures = Some(n);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if runs.iter().any(|r| r.aborted.is_some()) {
        return ExitCode::from(130);
    }
    if let Some(n) = new_failures {
        return if io_failed {
            ExitCode::from(2)
        } else if n > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        };
    }
    if io_failed {
        return ExitCode::from(2);
    }
    if runs.iter().any(|r| r.failures() > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
