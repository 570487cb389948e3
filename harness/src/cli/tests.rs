//! The command line's own checks: every command and option documented, defaults and ranges.

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
        assert!(help.trim_end().ends_with(EXIT_CODES_HELP), "{name}: help does not end with the exit codes:\n{help}");
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

/// A flag a command does not use is refused, not ignored; the old kernel spellings are gone.
#[test]
fn unused_and_old_flags_are_refused() {
    let parse = |args: &str| Cli::try_parse_from(std::iter::once("zcrx-conform").chain(args.split_whitespace()));
    for bad in [
        "matrix --list",
        "matrix --vm",
        "matrix --kernels host",
        "matrix --stream",
        "run --vm",
        "run --vm debian:7.3.4",
        "bisect x --kernels debian:7.2..debian:7.3",
        "report-bug x --from out --kernel debian:7.3.4",
        "report-bug x --from out --timeout 5",
        "mutate tree:/",
        "run --kernel debian+16k:7.3.4",
        "run --kernel debian:7.3.4+rt",
        "run --timeout 0",
    ] {
        assert!(parse(bad).is_err(), "{bad} was accepted");
    }
    for good in [
        "run --kernel debian:7.3.4 --memory 4G",
        "run --kernel debian+rt:7.3.4",
        "kernel fetch --kernel debian+16k@arm64:7.3.4",
        "matrix --kernel debian:7.3.4,debian+rt:7.3.4",
        "run --kernel host --list",
        "matrix --kernel host,debian:7.3.4 --kernel debian:7.1..7.2 --junit-dir d",
        "bisect x --kernel debian:7.2..7.3",
        "report-bug x --kernel debian:7.3.4 --timeout 5",
        "bench --kernel debian:7.3.4 --suite",
        "qualify --topology nic-netdevsim --kernel debian:7.3.4",
        "kernel fetch --kernel debian:latest",
        "run --shard 2/3",
    ] {
        if let Err(e) = parse(good) {
            panic!("{good}: {e}");
        }
    }
}

/// The command line the VM runner gives the guest parses with this CLI, to the same options.
#[test]
fn the_guest_runner_command_line_parses() {
    use std::path::Path;
    let selection = run::Selection {
        filter: vec!["query.".into()],
        exact: true,
        shard: Some((2, 3)),
        fixes: vec!["4f02cc4071a1".into()],
        cve: vec!["CVE-2025-40046".into()],
        repeat: 20,
    };
    let topologies = vec!["host".to_string(), "veth".to_string()];
    let run = run::RunOpts {
        topologies,
        selection,
        timeout: 12.5,
        stream: false,
        quiet: true,
        start_at: 0,
        self_check: true,
        jobs: 2,
        announce: false,
    };
    let o = vm::VmOpts { paths: vec![], run, memory: "2G".into(), cpus: 2, env: vec![] };
    let cmd = vm::guest_command(Path::new("/bin/zcrx-conform"), &[PathBuf::from("/cases")], &o, 3, 2);
    let cli = Cli::try_parse_from(cmd.split_whitespace()).unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let Cmd::Run(a) = cli.cmd else { panic!("{cmd}: not `run`") };
    assert_eq!(a.select.paths, [PathBuf::from("/cases")]);
    assert_eq!(a.select.topology.topology, ["host", "veth"]);
    assert_eq!((a.select.filter.as_slice(), a.select.exact), (["query.".to_string()].as_slice(), true));
    assert_eq!((a.select.shard.as_deref(), a.select.timeout.timeout, a.select.jobs), (Some("2/3"), 12.5, 2));
    assert_eq!(
        (a.select.fixes.as_slice(), a.select.cve.as_slice()),
        (["4f02cc4071a1".to_string()].as_slice(), ["CVE-2025-40046".to_string()].as_slice())
    );
    assert!(a.select.self_check && a.stream && a.kernel.kernels.is_empty());
    assert_eq!((a.start_at, a.select.repeat), (3, 20));
}

/// So does the campaign's guest command line, which names no kernel.
#[test]
fn the_campaign_guest_command_line_parses() {
    let parse = |args: &[String]| Cli::try_parse_from(std::iter::once("zcrx-conform".to_string()).chain(args.to_vec()));
    let host = Cli::try_parse_from(["zcrx-conform", "mutate", "--topology=host,nodev", "--jobs=3"]).expect("parses");
    let Cmd::Mutate(m) = host.cmd else { panic!("not mutate") };
    let args = crate::campaign::guest_args(&m, std::path::Path::new("/zcrx.t"));
    let Cmd::Mutate(g) = parse(&args).unwrap_or_else(|e| panic!("{args:?}: {e}")).cmd else { panic!("not mutate") };
    assert_eq!((g.guest, g.topology, g.jobs), (Some(PathBuf::from("/zcrx.t")), m.topology, 3));
    assert!(g.kernel.kernels.is_empty());
}

/// A debug campaign's selection and case cap reach the guest as given.
#[test]
fn the_debug_campaign_guest_command_line_keeps_its_selection() {
    let parse = |args: &[String]| Cli::try_parse_from(std::iter::once("zcrx-conform".to_string()).chain(args.to_vec()));
    let host = Cli::try_parse_from([
        "zcrx-conform",
        "mutate",
        "--filter=rq.flush_returns,nic.outputs_readonly",
        "--filter",
        "registration.memlock_accounting",
        "--case-cap=300",
    ])
    .expect("parses");
    let Cmd::Mutate(m) = host.cmd else { panic!("not mutate") };
    let args = crate::campaign::guest_args(&m, std::path::Path::new("/zcrx.t"));
    let Cmd::Mutate(g) = parse(&args).unwrap_or_else(|e| panic!("{args:?}: {e}")).cmd else { panic!("not mutate") };
    assert_eq!(g.filter, ["rq.flush_returns", "nic.outputs_readonly", "registration.memlock_accounting"]);
    assert_eq!((g.case_cap, m.case_cap), (300, 300));
}

/// And qualify's.
#[test]
fn the_qualify_guest_command_line_parses() {
    let argv = ["zcrx-conform", "qualify", "--topology", "nic-netdevsim", "--soak", "90s", "--timeout", "45"];
    let Cmd::Qualify(q) = Cli::try_parse_from(argv).expect("parses").cmd else { panic!("not qualify") };
    let args = crate::qualify::guest_args(&q, "/t/nic.yaml", &[PathBuf::from("/cases")]);
    let parsed = Cli::try_parse_from(std::iter::once("zcrx-conform".to_string()).chain(args.clone()));
    let Cmd::Qualify(g) = parsed.unwrap_or_else(|e| panic!("{args:?}: {e}")).cmd else { panic!("not qualify") };
    assert!(g.emit_json && g.kernel.kernels.is_empty());
    assert_eq!((g.topology.as_str(), g.soak, g.timeout), ("/t/nic.yaml", Some("90s".into()), 45.0));
    assert_eq!(g.paths, [PathBuf::from("/cases")]);
}

#[test]
fn vm_flags_are_refused_without_a_vm() {
    let sized = VmArgs { memory: Some("4G".into()), cpus: None };
    assert!(sized.check(&[vm::KernelSpec::Host]).is_err());
    assert!(sized.check(&[vm::KernelSpec::Host, vm::KernelSpec::debian("7.3.4")]).is_ok());
    assert!(VmArgs::default().check(&[vm::KernelSpec::Host]).is_ok());
}

#[test]
fn version_names_the_commit() {
    let v = Cli::command().render_version().to_string();
    assert!(v.starts_with(&format!("zcrx-conform {} (", env!("CARGO_PKG_VERSION"))), "{v}");
}
