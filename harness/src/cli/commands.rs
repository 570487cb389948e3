//! One function per command. Each returns what it found ([`Verdict`]) or why it could not
//! run ([`Error`]); `main` turns that into the exit code.

use std::path::{Path, PathBuf};

use super::outputs::{finish, load_report, load_runs};
use super::{Cmd, KernelCmd, Outputs, RunArgs};
use crate::case::{self, Case};
use crate::error::{Error, Verdict};

use crate::model::{Probe, RunReport, Status};
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
        Cmd::ReportBug { id, from, run } => report_bug(&id, from.as_deref(), run),
        Cmd::Catalogue { from, paths } => {
            let cases = load_cases(&paths)?;
            let runs = load_runs(&from)?;
            print!("{}", report::catalogue_table(&cases, &runs.iter().collect::<Vec<_>>()));
            Ok(Verdict::Passed)
        }
        Cmd::Html { inputs, out } => html_cmd(&inputs, &out),
        Cmd::Bench(b) => {
            crate::bench::main(&b)?;
            Ok(Verdict::Passed)
        }
    }
}

/// The case files of `paths` (default: the repository's cases/), loaded and expanded once.
fn load_cases(paths: &[PathBuf]) -> Result<Vec<Case>, Error> {
    let paths = if paths.is_empty() { vec![crate::paths::default_case_dir()] } else { paths.to_vec() };
    case::load_all(&paths).map_err(|errs| Error::Load(errs.iter().map(|e| e.to_string()).collect()))
}

/// Checks the run arguments and loads the cases.
fn prepare(a: &RunArgs) -> Result<(Vec<Case>, RunOpts), Error> {
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
    if s.timeout.is_nan() || s.timeout <= 0.0 {
        return Err("--timeout must be a positive number of seconds".into());
    }
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
    signal::install_handlers();
    if let Some(spec) = &a.vm.vm {
        let rep = run_target(spec, &cases, &opts, &a)?;
        return finish(&[rep], &a.outputs, opts.stream);
    }
    let probe = Probe::run();
    if a.select.list {
        for c in run::select(&cases, &opts.selection) {
            match plan::plan(c, &opts.topologies, &probe) {
                Ok(t) => println!("{}  [{}]", c.id, t),
                Err(why) => println!("{}  [skip: {why}]", c.id),
            }
        }
        return Ok(Verdict::Passed);
    }
    let rep = run::run(&cases, &opts, &probe, "host");
    finish(&[rep], &a.outputs, opts.stream)
}

/// Runs the suite on one target: `host`, or a kernel booted in a VM.
fn run_target(spec: &str, cases: &[Case], opts: &RunOpts, a: &RunArgs) -> Result<RunReport, String> {
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

fn report_bug(id: &str, from: Option<&Path>, mut a: RunArgs) -> Result<Verdict, Error> {
    let runs = match from {
        Some(p) => load_report(p)?.runs,
        None => {
            a.select.quiet = true;
            a.select.filter = vec![id.to_string()];
            a.select.exact = true;
            let (cases, opts) = prepare(&a)?;
            if !cases.iter().any(|c| c.id == id) {
                return Err(format!("no case with id `{id}` (see `zcrx-conform run --list`)").into());
            }
            let target = a.vm.vm.clone().unwrap_or_else(|| "host".into());
            vec![run_target(&target, &cases, &opts, &a)?]
        }
    };
    for r in &runs {
        if let Some(c) = r.cases.iter().find(|c| c.id == id) {
            print!("{}", bugreport::render(r, c));
            return if matches!(c.status, Status::Fail | Status::Xfail | Status::Xpass) {
                Ok(Verdict::Passed)
            } else {
                eprintln!("note: {id} did not fail ({})", c.status.word());
                Ok(Verdict::Failed)
            };
        }
    }
    Err(format!("case `{id}` is not in the report").into())
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

fn merge_cmd(inputs: &[PathBuf], outputs: &Outputs) -> Result<Verdict, Error> {
    if inputs.is_empty() {
        return Err("merge needs at least one report.json or directory".into());
    }
    let runs = report::merge(load_runs(inputs)?);
    if runs.len() > 1 {
        print!("{}", report::matrix_table(&runs.iter().collect::<Vec<_>>()));
    }
    finish(&runs, outputs, false)
}

fn matrix_cmd(kernels: &[String], junit_dir: Option<&Path>, a: RunArgs) -> Result<Verdict, Error> {
    let (cases, opts) = prepare(&a)?;
    for k in kernels {
        vm::KernelSpec::parse(k)?;
    }
    signal::install_handlers();
    let mut runs: Vec<RunReport> = Vec::new();
    for k in kernels {
        match run_target(k, &cases, &opts, &a) {
            Ok(r) => {
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
            Err(e) => eprintln!("error: {k}: {e}"),
        }
        if signal::interrupted().is_some() {
            break;
        }
    }
    print!("{}", report::matrix_table(&runs.iter().collect::<Vec<_>>()));
    let v = finish(&runs, &a.outputs, false)?;
    if runs.len() < kernels.len() && v == Verdict::Passed {
        return Ok(Verdict::Failed);
    }
    Ok(v)
}
