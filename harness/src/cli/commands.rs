//! One function per command. Each returns what it found ([`Verdict`]) or why it could not
//! run ([`Error`]); `main` turns that into the exit code.

use std::path::{Path, PathBuf};

use super::outputs::{finish, load_report, load_runs, preflight};
use super::{BugArgs, Cmd, KernelCmd, Outputs, RunArgs};
use crate::case::{self, Case};
use crate::error::{Error, Verdict};

use crate::model::{Probe, RunReport, Shard, Status};
use crate::report::escape::printable;
use crate::report::{self, bugreport};
use crate::run::{self, plan, signal, RunOpts, Selection};
use crate::{topology, vm};

pub fn dispatch(cmd: Cmd) -> Result<Verdict, Error> {
    match cmd {
        Cmd::Probe { json } => {
            let p = Probe::run();
            if json {
                println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
            } else {
                print!("{}", p.render());
            }
            Ok(Verdict::Passed)
        }
        Cmd::Schema => {
            println!("{}", serde_json::to_string_pretty(&case::schema()).unwrap_or_default());
            Ok(Verdict::Passed)
        }
        Cmd::Validate { paths } => {
            let cases = load_cases(&paths)?;
            println!("{} case(s) valid", cases.len());
            if cases.is_empty() {
                eprintln!("zcrx-conform: no case files found: exit 3");
                return Ok(Verdict::Empty);
            }
            Ok(Verdict::Passed)
        }
        Cmd::Run(a) => run_cmd(a),
        Cmd::Kernel(KernelCmd::Fetch { spec }) => {
            let p = vm::resolve(&vm::KernelSpec::parse(&spec)?)?;
            println!("{}", p.display());
            Ok(Verdict::Passed)
        }
        Cmd::Kernel(KernelCmd::List { pattern }) => {
            vm::list_kernels(pattern.as_deref())?;
            Ok(Verdict::Passed)
        }
        Cmd::Matrix { kernels, junit_dir, run } => matrix_cmd(&kernels, junit_dir.as_deref(), run),
        Cmd::Merge { inputs, outputs } => merge_cmd(&inputs, &outputs),
        Cmd::ReportBug(b) => report_bug(b),
        Cmd::Catalogue { from, paths } => {
            let cases = load_cases(&paths)?;
            let runs = load_runs(&from)?;
            print!("{}", report::catalogue_table(&cases, &runs.iter().collect::<Vec<_>>()));
            Ok(Verdict::Passed)
        }
        Cmd::Html { inputs, out } => html_cmd(&inputs, &out),
        Cmd::Qualify(q) => {
            let cases = load_cases(&q.paths)?;
            crate::qualify::main(&q, &cases)
        }
        Cmd::Bench(b) => {
            crate::bench::main(&b)?;
            Ok(Verdict::Passed)
        }
        Cmd::Mutate(m) => {
            crate::campaign::mutate(&m)?;
            Ok(Verdict::Passed)
        }
        Cmd::Coverage(c) => {
            crate::campaign::coverage(&c)?;
            Ok(Verdict::Passed)
        }
        Cmd::Bisect(b) => super::bisect::main(&b),
        Cmd::BisectStep(b) => super::bisect::tree::step(&b),
    }
}

/// The case files of `paths` (default: the repository's cases/), loaded and expanded once.
fn load_cases(paths: &[PathBuf]) -> Result<Vec<Case>, Error> {
    let paths = if paths.is_empty() { vec![crate::paths::default_case_dir()] } else { paths.to_vec() };
    case::load_all(&paths).map_err(|errs| Error::Load(errs.iter().map(|e| e.to_string()).collect()))
}

/// Checks the run arguments and loads the cases.
pub(super) fn prepare(a: &RunArgs) -> Result<(Vec<Case>, RunOpts), Error> {
    for t in &a.select.topology {
        if topology::Topo::builtin(t).is_some() {
            continue;
        }
        if let Err(e) = topology::load(t) {
            let known: Vec<String> = ["host".to_string(), "nodev".to_string()]
                .into_iter()
                .chain(topology::available().into_keys())
                .collect();
            return Err(format!("topology `{t}`: {e} (known: {})", known.join(", ")).into());
        }
    }
    let s = &a.select;
    super::parse_timeout(&s.timeout.to_string()).map_err(|e| format!("--timeout {e}"))?;
    let shard = s.shard.as_deref().map(plan::parse_shard).transpose()?;
    let opts = RunOpts {
        topologies: s.topology.clone(),
        selection: Selection { filter: s.filter.clone(), exact: s.exact, shard },
        timeout: s.timeout,
        stream: s.stream,
        quiet: s.quiet,
        start_at: s.start_at,
        self_check: s.self_check,
        jobs: s.jobs as usize,
    };
    Ok((load_cases(&s.paths)?, opts))
}

fn run_cmd(a: RunArgs) -> Result<Verdict, Error> {
    let (cases, opts) = prepare(&a)?;
    if a.select.list && a.vm.vm.is_none() {
        let probe = Probe::run();
        let selected = run::select(&cases, &opts.selection);
        for c in &selected {
            match plan::plan(c, &opts.topologies, &probe) {
                Ok(t) => println!("{}  [{}]", printable(&c.id), t),
                Err(why) => println!("{}  [skip: {}]", printable(&c.id), printable(&why)),
            }
        }
        if selected.is_empty() && !a.outputs.allow_empty {
            eprintln!("zcrx-conform: no case was selected: exit 3 (--allow-empty accepts that)");
            return Ok(Verdict::Empty);
        }
        return Ok(Verdict::Passed);
    }
    let ready = preflight(&a.outputs)?;
    signal::install_handlers();
    let started = report::time::now();
    let mut rep = match &a.vm.vm {
        Some(spec) => run_target(spec, &cases, &opts, &a)?,
        None => run::run(&cases, &opts, &Probe::run(), "host"),
    };
    stamp(&mut rep, started, &cases, &opts);
    finish(&[rep], &a.outputs, ready, opts.stream)
}

/// What the runner does not know about its report: when it ran, where, which shard, and the
/// selected cases that did not run (a run stopped early).
fn stamp(rep: &mut RunReport, started: String, cases: &[Case], opts: &RunOpts) {
    rep.started = Some(started);
    rep.finished = Some(report::time::now());
    rep.hostname = hostname();
    rep.shard = opts.selection.shard.map(|(k, n)| Shard { k, n });
    let done: std::collections::HashSet<&str> = rep.cases.iter().map(|c| c.id.as_str()).collect();
    rep.not_run = run::select(cases, &opts.selection)
        .into_iter()
        .skip(opts.start_at)
        .filter(|c| !done.contains(c.id.as_str()))
        .map(|c| c.id.clone())
        .collect();
    if !rep.not_run.is_empty() && rep.aborted.is_none() {
        rep.aborted = Some(format!("{} selected case(s) did not run", rep.not_run.len()));
    }
}

/// This machine's name.
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|h| !h.is_empty())
}

/// Runs the suite on one target: `host`, or a kernel booted in a VM.
pub(super) fn run_target(spec: &str, cases: &[Case], opts: &RunOpts, a: &RunArgs) -> Result<RunReport, String> {
    let k = vm::KernelSpec::parse(spec)?;
    if matches!(k, vm::KernelSpec::Host) {
        return Ok(run::run(cases, opts, &Probe::run(), "host"));
    }
    let t0 = std::time::Instant::now();
    vm::provision()?;
    let kernel = vm::resolve(&k)?;
    let env = vm::guest_tools(&kernel, &opts.topologies)?;
    let prep = t0.elapsed().as_secs_f64();
    let paths = if a.select.paths.is_empty() { vec![crate::paths::default_case_dir()] } else { a.select.paths.clone() };
    let vopts = vm::VmOpts {
        paths,
        run: opts.clone(),
        shard: a.select.shard.clone(),
        memory: a.vm.memory.clone(),
        cpus: a.vm.cpus,
        env,
    };
    let mut rep = vm::run_in_vm(spec, &kernel, &vopts)?;
    rep.timings.insert(0, ("provision_and_fetch_s".into(), prep));
    eprintln!(
        "{spec}: set-up {prep:.1} s, VM boot {:.1} s ({} boot(s)), suite {:.1} s, end to end {:.1} s",
        rep.timing("vm_boot_s"),
        rep.timing("vm_boots"),
        rep.timing("suite_s"),
        prep + rep.duration_s
    );
    Ok(rep)
}

fn report_bug(b: BugArgs) -> Result<Verdict, Error> {
    let id = b.id.as_str();
    let runs = match &b.from {
        Some(p) => load_report(p)?.runs,
        None => {
            let a = super::bisect::one_case_args(id, &b.topology, b.timeout, b.vm.clone());
            let (cases, opts) = prepare(&a)?;
            if !cases.iter().any(|c| c.id == id) {
                return Err(format!("no case with id `{}` (see `zcrx-conform run --list`)", printable(id)).into());
            }
            signal::install_handlers();
            let target = a.vm.vm.clone().unwrap_or_else(|| "host".into());
            vec![run_target(&target, &cases, &opts, &a)?]
        }
    };
    for r in &runs {
        if let Some(c) = r.cases.iter().find(|c| c.id == id) {
            if matches!(c.status, Status::Fail | Status::Xfail | Status::Xpass) {
                print!("{}", bugreport::render(r, c));
                return Ok(Verdict::Passed);
            }
            let why = if c.message.is_empty() { String::new() } else { format!(": {}", printable(&c.message)) };
            eprintln!(
                "error: {} {} on {} ({}){why}: there is no bug to report, so no report is printed",
                printable(id),
                if c.status == Status::Pass { "passed" } else { "was skipped" },
                printable(&r.target),
                printable(&r.probe.kernel_release)
            );
            return Ok(Verdict::Failed);
        }
    }
    Err(format!("case `{}` is not in the report", printable(id)).into())
}

fn html_cmd(inputs: &[PathBuf], out: &Path) -> Result<Verdict, Error> {
    let runs = load_runs(inputs)?;
    if runs.is_empty() {
        return Err("no runs in the inputs".into());
    }
    let page = report::html::render(&runs.iter().collect::<Vec<_>>());
    report::write_atomic(out, &page).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{}", out.display());
    Ok(Verdict::Passed)
}

/// Prints a table on stdout, or on stderr when stdout carries KTAP.
fn print_table(table: &str, ktap: bool) {
    if ktap {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
}

fn merge_cmd(inputs: &[PathBuf], outputs: &Outputs) -> Result<Verdict, Error> {
    if inputs.is_empty() {
        return Err("merge needs at least one report.json or directory".into());
    }
    let named = super::outputs::load_named_runs(inputs)?;
    report::check_merge_inputs(&named).map_err(|e| format!("merge: {e}"))?;
    let runs = report::merge(named.into_iter().map(|(_, r)| r).collect()).map_err(|e| format!("merge: {e}"))?;
    let ready = preflight(outputs)?;
    if runs.len() > 1 {
        let refs: Vec<&RunReport> = runs.iter().collect();
        print_table(&report::matrix_table(&refs), outputs.ktap);
        print_table(&report::changes::render(&refs), outputs.ktap);
    }
    finish(&runs, outputs, ready, false)
}

fn matrix_cmd(kernels: &[String], junit_dir: Option<&Path>, a: RunArgs) -> Result<Verdict, Error> {
    let (cases, opts) = prepare(&a)?;
    for k in kernels {
        vm::KernelSpec::parse(k)?;
    }
    if let Some(d) = junit_dir {
        report::files::check_output_dir(d, "--junit-dir", &[])?;
    }
    let ready = preflight(&a.outputs)?;
    signal::install_handlers();
    let mut runs: Vec<RunReport> = Vec::new();
    for k in kernels {
        let started = report::time::now();
        match run_target(k, &cases, &opts, &a) {
            Ok(mut r) => {
                stamp(&mut r, started, &cases, &opts);
                if let Some(d) = junit_dir {
                    let name = k.replace(['/', ':'], "_");
                    let written = report::junit(&[&r]).and_then(|x| {
                        report::write_atomic(&d.join(format!("junit-{name}.xml")), &x).map_err(|e| e.to_string())
                    });
                    if let Err(e) = written {
                        eprintln!("error: {e}");
                    }
                }
                runs.push(r);
            }
            Err(e) => eprintln!("error: {}: {}", printable(k), printable(&e)),
        }
        if signal::interrupted().is_some() {
            break;
        }
    }
    let refs: Vec<&RunReport> = runs.iter().collect();
    print_table(&report::matrix_table(&refs), a.outputs.ktap);
    if refs.len() > 1 {
        print_table(&report::changes::render(&refs), a.outputs.ktap);
    }
    let v = finish(&runs, &a.outputs, ready, false)?;
    if runs.len() < kernels.len() && matches!(v, Verdict::Passed | Verdict::Empty) {
        return Ok(Verdict::Failed);
    }
    Ok(v)
}
