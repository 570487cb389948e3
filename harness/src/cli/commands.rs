//! One function per command. Each returns what it found ([`Verdict`]) or why it could not
//! run ([`Error`]); `main` turns that into the exit code.

use std::path::{Path, PathBuf};

use super::outputs::{finish, load_report, load_runs, preflight};
use super::suite::{load_cases, Suite};
use super::{BugArgs, Cmd, KernelCmd, MatrixArgs, Outputs, RunArgs, MATRIX_KERNELS};
use crate::case;
use crate::error::{Error, Verdict};
use crate::model::{Probe, RunReport, Status};
use crate::report::escape::printable;
use crate::report::{self, bugreport};
use crate::run::{self, plan, signal};
use crate::topology;
use crate::vm::{self, KernelArg, KernelSpec};

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
        Cmd::Kernel(KernelCmd::Fetch { kernel }) => {
            let p = vm::fetch(&kernel.single("kernel fetch")?)?;
            println!("{}", p.display());
            Ok(Verdict::Passed)
        }
        Cmd::Kernel(KernelCmd::List { pattern }) => {
            vm::list_kernels(pattern.as_deref())?;
            Ok(Verdict::Passed)
        }
        Cmd::Matrix(m) => matrix_cmd(m),
        Cmd::Merge { inputs, outputs } => merge_cmd(&inputs, &outputs),
        Cmd::ReportBug(b) => report_bug(b),
        Cmd::Catalogue { from, paths } => {
            let cases = load_cases(&paths)?;
            let runs = load_runs(&from)?;
            print!("{}", report::catalogue_table(&cases, &runs.iter().collect::<Vec<_>>()));
            print!("\n{}", report::catalogue_tags(&cases));
            Ok(Verdict::Passed)
        }
        Cmd::Html { inputs, out } => html_cmd(&inputs, &out),
        Cmd::Qualify(q) => {
            let cases = load_cases(&q.paths)?;
            crate::qualify::main(&q, &cases)
        }
        Cmd::Bench(b) if b.reports => Ok(if crate::bench::reports(&b)? { Verdict::Passed } else { Verdict::Failed }),
        Cmd::Bench(b) => {
            signal::install_handlers();
            let r = crate::bench::main(&b);
            or_interrupted(r.map(|()| Verdict::Passed).map_err(Error::from))
        }
        Cmd::Mutate(m) => {
            if m.guest.is_none() {
                signal::install_handlers();
            }
            let r = crate::campaign::mutate(&m);
            or_interrupted(r.map(|()| Verdict::Passed).map_err(Error::from))
        }
        Cmd::Coverage(c) => {
            crate::campaign::coverage(&c)?;
            Ok(Verdict::Passed)
        }
        Cmd::Upstream(u) => upstream_cmd(u),
        Cmd::UpstreamGuest { ksrc, netdevsim, ethtool, zcrx_t, tests } => {
            crate::upstream::guest(&ksrc, &netdevsim, &ethtool, &zcrx_t, &tests)?;
            Ok(Verdict::Passed)
        }
        Cmd::Bisect(b) => super::bisect::main(&b),
        Cmd::BisectStep(b) => super::bisect::tree::step(&b),
        Cmd::PeerAgent => {
            run::agent::serve().map_err(|e| Error::environment(format!("peer-agent: {e}")))?;
            Ok(Verdict::Passed)
        }
    }
}

/// A command that boots VMs stops them on SIGINT/SIGTERM and returns an error: its exit
/// code is the signal's (130/143), not the environment's.
fn or_interrupted(r: Result<Verdict, Error>) -> Result<Verdict, Error> {
    match signal::interrupted() {
        Some(sig) => {
            if let Err(e) = &r {
                eprintln!("zcrx-conform: {e}");
            }
            Ok(Verdict::Interrupted(sig))
        }
        None => r,
    }
}

fn run_cmd(a: RunArgs) -> Result<Verdict, Error> {
    let kernel = a.kernel.single("run")?;
    a.vm.check(std::slice::from_ref(&kernel))?;
    let suite = Suite::prepare(&a.select, &a.vm, a.stream, a.start_at)?;
    if a.list {
        if kernel != KernelSpec::Host {
            return Err(Error::bad_input(
                "--list plans against the running kernel; with --kernel it would need a boot",
            ));
        }
        let probe = Probe::run();
        let kinds = suite.opts.topologies.iter().map(|t| topology::kind_of(t)).collect::<Result<Vec<_>, _>>()?;
        let selected = run::select(&suite.cases, &suite.opts.selection);
        for c in &selected {
            match plan::plan(c, &kinds, &probe) {
                Ok(t) => println!("{}  [{}]", printable(&c.id), t),
                Err(why) => println!("{}  [skip: {}]", printable(&c.id), printable(&why.to_string())),
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
    let reps = suite.run_everywhere(&kernel)?;
    finish(&reps, &a.outputs, ready, suite.opts.stream)
}

fn upstream_cmd(u: super::UpstreamArgs) -> Result<Verdict, Error> {
    let kernel = u.kernel.single("upstream")?;
    let tests: Vec<String> = if u.tests.is_empty() {
        crate::upstream::DEFAULT_TESTS.iter().map(|t| t.to_string()).collect()
    } else {
        u.tests.clone()
    };
    for t in &tests {
        crate::upstream::check_test_name(t)?;
    }
    let ready = preflight(&u.outputs)?;
    signal::install_handlers();
    let opts = crate::upstream::Opts {
        kernel: kernel.clone(),
        tests: tests.clone(),
        timeout: std::time::Duration::from_secs(u.vm_timeout),
    };
    let run = crate::upstream::run(&opts)?;
    let mut command = format!("zcrx-conform upstream --kernel {kernel}");
    if !u.tests.is_empty() {
        command.push_str(&tests.iter().map(|t| format!(" --test {t}")).collect::<String>());
    }
    if let Some(dir) = &u.outputs.out {
        command.push_str(&format!(" --out {}", dir.display()));
        let json = serde_json::to_string_pretty(&run).map_err(|e| Error::environment(format!("upstream.json: {e}")))?;
        for (name, text) in [("upstream.json", json), ("upstream.md", crate::upstream::markdown(&run, &command))] {
            let p = dir.join(name);
            report::write_atomic(&p, &text).map_err(|e| Error::environment(format!("{}: {e}", p.display())))?;
        }
    }
    eprint!("{}", crate::upstream::markdown(&run, &command));
    finish(&[crate::upstream::run_report(&run)], &u.outputs, ready, false)
}

fn report_bug(b: BugArgs) -> Result<Verdict, Error> {
    let id = b.id.as_str();
    let runs = match &b.from {
        Some(p) => load_report(p)?.runs,
        None => {
            let kernel = b.kernel.single("report-bug")?;
            let suite = Suite::one_case(id, &b.topology.names(), b.timeout.timeout)?;
            signal::install_handlers();
            vec![suite.run_on(&kernel)?]
        }
    };
    for mut r in runs {
        if let Some(c) = r.cases.iter().find(|c| c.id == id) {
            if matches!(c.status, Status::Fail | Status::Xfail | Status::Xpass) {
                if b.from.is_some() {
                    r.cases.retain(|c| c.id == id);
                    crate::vm::symbolize_saved(&mut r);
                }
                let Some(c) = r.cases.iter().find(|c| c.id == id) else { break };
                print!("{}", bugreport::render(&r, c));
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
    Err(Error::bad_input(format!("case `{}` is not in the report", printable(id))))
}

fn html_cmd(inputs: &[PathBuf], out: &Path) -> Result<Verdict, Error> {
    let runs = load_runs(inputs)?;
    if runs.is_empty() {
        return Err(Error::bad_input("no runs in the inputs"));
    }
    let page = report::html::render(&runs.iter().collect::<Vec<_>>());
    report::write_atomic(out, &page).map_err(|e| Error::bad_input(format!("{}: {e}", out.display())))?;
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
        return Err(Error::bad_input("merge needs at least one report.json or directory"));
    }
    let named = super::outputs::load_named_runs(inputs)?;
    report::check_merge_inputs(&named).map_err(|e| Error::bad_input(format!("merge: {e}")))?;
    let runs = report::merge(named.into_iter().map(|(_, r)| r).collect())
        .map_err(|e| Error::bad_input(format!("merge: {e}")))?;
    let ready = preflight(outputs)?;
    if runs.len() > 1 {
        let refs: Vec<&RunReport> = runs.iter().collect();
        print_table(&report::matrix_table(&refs), outputs.ktap);
        print_table(&report::changes::render(&refs), outputs.ktap);
    }
    finish(&runs, outputs, ready, false)
}

fn matrix_cmd(a: MatrixArgs) -> Result<Verdict, Error> {
    let suite = Suite::prepare(&a.select, &a.vm, false, 0)?;
    let given = if a.kernel.kernels.is_empty() {
        MATRIX_KERNELS.iter().map(|k| KernelArg::parse(k)).collect::<Result<Vec<_>, _>>()?
    } else {
        a.kernel.kernels.clone()
    };
    let kernels = vm::spec::expand(&given)?;
    a.vm.check(&kernels)?;
    if let Some(d) = &a.junit_dir {
        report::files::check_output_dir(d, "--junit-dir", &[])?;
    }
    let ready = preflight(&a.outputs)?;
    signal::install_handlers();
    let mut runs: Vec<RunReport> = Vec::new();
    for k in &kernels {
        let started = report::time::now();
        match suite.run_on(k) {
            Ok(mut r) => {
                suite.stamp(&mut r, started);
                if let Some(d) = &a.junit_dir {
                    let name = k.to_string().replace(['/', ':'], "_");
                    let written = report::junit(&[&r]).and_then(|x| {
                        let p = d.join(format!("junit-{name}.xml"));
                        report::write_atomic(&p, &x).map_err(report::Error::file(p.display().to_string()))
                    });
                    if let Err(e) = written {
                        eprintln!("error: {e}");
                    }
                }
                runs.push(r);
            }
            Err(e) => eprintln!("error: {}: {}", printable(&k.to_string()), printable(&e.to_string())),
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
