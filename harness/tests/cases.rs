//! Every YAML case under cases/ as a `cargo test` test (libtest-mimic), so
//! `cargo test -- --list` and name filters work. Each test runs its one case through the real
//! runner (`zcrx-conform run FILE --filter ID --exact --stream`: the case in a forked child
//! with its timeout, the kernel log watched) and reads the result event; a case that cannot
//! run here is reported as ignored with its reason.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use zcrx_conform::model::event::Event;
use zcrx_conform::model::{CaseReport, Probe, Status};
use zcrx_conform::{case, run, topology};

/// Runs one case in a runner process; its result event.
fn run_one(exe: &Path, file: &Path, id: &str) -> Result<CaseReport, String> {
    let out = Command::new(exe)
        .arg("run")
        .arg(file)
        .args(["--filter", id, "--exact", "--stream", "--topology", &topology::DEFAULT_RUN.join(",")])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(Event::decode)
        .find_map(|e| match e {
            Event::Result { case } if case.id == id => Some(*case),
            _ => None,
        })
        .ok_or_else(|| format!("the runner gave no result for {id} ({}); output:\n{text}", out.status))
}

fn main() {
    let args = Arguments::from_args();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cases");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_zcrx-conform"));
    let cases = match case::load_all(std::slice::from_ref(&dir)) {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            std::process::exit(2);
        }
    };
    let probe = Probe::run();
    let topos: Vec<topology::Kind> =
        topology::DEFAULT_RUN.iter().filter_map(|s| topology::Kind::builtin_named(s)).collect();
    let trials = cases
        .into_iter()
        .map(|c| {
            let plan = run::plan::plan(&c, &topos, &probe);
            let exe = exe.clone();
            let kind = c.def.area.name();
            Trial::ignorable_test(c.id.clone(), move || match plan {
                Err(reason) => Ok(Completion::ignored_with(reason)),
                Ok(_) => {
                    let r = run_one(&exe, &c.file, &c.id)?;
                    match r.status {
                        Status::Pass => Ok(Completion::Completed),
                        Status::Skip => Ok(Completion::ignored_with(r.message)),
                        Status::Xfail => Ok(Completion::ignored_with(format!("xfail: {}", r.message))),
                        Status::Xpass | Status::Fail => {
                            Err(Failed::from(format!("{}\n{}", r.message, r.log.join("\n"))))
                        }
                    }
                }
            })
            .with_kind(kind)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
