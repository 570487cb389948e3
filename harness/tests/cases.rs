//! Every YAML case under cases/ as a `cargo test` test (libtest-mimic), so
//! `cargo test -- --list` and name filters work. Each case runs in its own
//! `zcrx-conform exec-case` process against the running kernel; a case that cannot
//! run here is reported as ignored with its reason.

use std::path::PathBuf;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use zcrx_conform::model::{Probe, Status};
use zcrx_conform::{case, run as runner, topology};

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
    let topos: Vec<String> = topology::DEFAULT_RUN.iter().map(|s| s.to_string()).collect();
    let trials = cases
        .into_iter()
        .map(|c| {
            let name = c.id.clone();
            let plan = runner::plan(&c, &topos, &probe);
            let probe = probe.clone();
            let exe = exe.clone();
            let timeout = c.def.timeout.unwrap_or(30.0);
            let kind = c.def.area.name();
            Trial::ignorable_test(name, move || match plan {
                Err(reason) => Ok(Completion::ignored_with(reason)),
                Ok(topo) => {
                    let (o, _) = runner::run_child(&exe, &c, &topo, timeout, false, None);
                    let deviation = c
                        .def
                        .known_deviation
                        .iter()
                        .find(|d| probe.version_in(d.min.as_deref(), d.max.as_deref()))
                        .filter(|d| {
                            d.observed.as_deref().is_none_or(|x| o.message.contains(x) || o.status == Status::Pass)
                        })
                        .map(|d| d.reason.clone());
                    match (o.status, deviation) {
                        (Status::Pass, None) => Ok(Completion::Completed),
                        (Status::Pass, Some(d)) => {
                            Err(Failed::from(format!("xpass: known deviation no longer reproduces: {d}")))
                        }
                        (Status::Fail, Some(d)) => Ok(Completion::ignored_with(format!("xfail: {d}: {}", o.message))),
                        (Status::Skip, _) => Ok(Completion::ignored_with(o.message)),
                        (_, _) => Err(Failed::from(format!("{}\n{}", o.message, o.log.join("\n")))),
                    }
                }
            })
            .with_kind(kind)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
