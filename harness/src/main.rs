use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use zcrx_conform::case::{self, LoadError};
use zcrx_conform::exec::{self, Status};
use zcrx_conform::probe::Probe;
use zcrx_conform::runner::{self, RunOpts, RunReport};
use zcrx_conform::{report, topology};

#[derive(Parser)]
#[command(
    name = "zcrx-conform",
    version,
    about = "Conformance suite for Linux io_uring zero-copy receive (zcrx)"
)]
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
    /// Machine-readable progress on stdout (used by the VM runner).
    #[arg(long, hide = true)]
    stream: bool,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
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
    /// Run one case in this process (used by `run` for isolation).
    #[command(hide = true)]
    ExecCase {
        file: PathBuf,
        #[arg(long)]
        index: usize,
        #[arg(long)]
        topology: String,
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
        vec![runner::default_case_dir()]
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
            println!(
                "{}",
                serde_json::to_string_pretty(&case::schema()).unwrap_or_default()
            );
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
        Cmd::ExecCase {
            file,
            index,
            topology,
        } => exec_case(&file, index, &topology),
        Cmd::Run(a) => run_cmd(a),
    }
}

fn exec_case(file: &std::path::Path, index: usize, topo: &str) -> ExitCode {
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
    let topo = match topology::Topo::new(topo) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let probe = Probe::run();
    let o = exec::execute(&case, &topo, &probe);
    println!(
        "@@OUTCOME@@ {}",
        serde_json::to_string(&o).unwrap_or_default()
    );
    ExitCode::SUCCESS
}

fn run_cmd(a: RunArgs) -> ExitCode {
    for t in &a.topology {
        if !topology::KNOWN.contains(&t.as_str()) {
            eprintln!(
                "error: unknown topology `{t}` (known: {})",
                topology::KNOWN.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    if a.timeout.is_nan() || a.timeout <= 0.0 {
        eprintln!("error: --timeout must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let cases = match case::load_all(&case_paths(&a.paths)) {
        Ok(c) => c,
        Err(errs) => {
            print_errors(&errs);
            return ExitCode::from(2);
        }
    };
    let probe = Probe::run();
    if a.list {
        for c in cases
            .iter()
            .filter(|c| a.filter.is_empty() || a.filter.iter().any(|f| c.id.contains(f.as_str())))
        {
            match runner::plan(c, &a.topology, &probe) {
                Ok(t) => println!("{}  [{}]", c.id, t),
                Err(why) => println!("{}  [skip: {why}]", c.id),
            }
        }
        return ExitCode::SUCCESS;
    }
    runner::install_signal_handlers();
    let opts = RunOpts {
        topologies: a.topology.clone(),
        filter: a.filter.clone(),
        timeout: a.timeout,
        stream: a.stream,
        quiet: a.quiet,
    };
    let rep = runner::run(&cases, &opts, &probe, "host");
    finish(&[rep], &a)
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
            (
                p + r.count(Status::Pass),
                f + r.count(Status::Fail),
                s + r.count(Status::Skip),
            )
        });
        println!("zcrx-conform: {p} passed, {f} failed, {s} skipped");
    }
    if runs.iter().any(|r| r.aborted.is_some()) {
        return ExitCode::from(130);
    }
    if io_failed {
        return ExitCode::from(2);
    }
    if runs.iter().any(|r| r.count(Status::Fail) > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
