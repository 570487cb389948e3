//! `zcrx-conform qualify`: a driver qualification a NIC vendor can attach to a submission.
//!
//! On the machine with the NIC (or in a VM booting the chosen kernel, `--kernel SPEC`): read the device
//! ([`nic`]) and every DUT setting that can be read ([`settings`]), run the NIC-path cases (every
//! case that can run on a `nic` topology) with the topology up, optionally loop the data-path
//! cases for a while ([`soak`]), read the settings again, and write the qualification
//! ([`doc`]): `qualification.json`, `qualification.html`, and the usual `junit.xml` and
//! `report.json` of the run. A setting that differs afterwards fails the qualification.
//!
//! A `simulate:` topology (nic-netdevsim) has its simulated NIC created first, with nothing
//! set, so "before" is the device as the driver made it; it is deleted after "after".

pub mod doc;
mod error;
mod ioctl;
pub mod nic;
pub mod settings;
mod sha256;

/// SHA-256 as 64 hex digits (also for `upstream`'s record of the test files it ran).
pub(crate) use sha256::hex as sha256_hex;
pub mod soak;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use crate::case::Case;
use crate::error::{Error, Verdict};
use crate::model::{Probe, Status};
use crate::run::{self, RunOpts, Selection};
use crate::topology::{self, Envs, Kind, Settings, Tools, TopologyFile};
pub use error::Error as QError;

/// The line a guest's qualification travels to the host in.
const TAG: &str = "zcrx-conform-qualification ";

/// The data-path cases a soak loops.
pub const SOAK_CASES: &[&str] = &["nic.zero_copy", "nic.rq_wrap_refill"];

/// The report files `--out` receives.
pub const FILES: &[&str] = &["qualification.json", "qualification.html", "junit.xml", "report.json"];

#[derive(Args, Clone, Debug)]
pub struct QualifyArgs {
    /// The NIC's topology file (kind: nic): a name under topologies/ (nic-netdevsim) or a path.
    #[arg(long)]
    pub topology: String,
    // One kernel (default: host; another is booted in a virtme-ng VM and qualified inside).
    #[command(flatten)]
    pub kernel: crate::vm::KernelArgs,
    /// Where qualification.json, qualification.html, junit.xml and report.json go (locked for
    /// the run).
    #[arg(long, default_value = "out/qualify")]
    pub out: PathBuf,
    /// After the cases, loop the data-path cases for this long (90s, 10m, 2h) and judge
    /// memory and counters over time (a leak or a drifting counter fails).
    #[arg(long)]
    pub soak: Option<String>,
    /// Seconds before a case is killed (a case's own `timeout` wins); at most 86400.
    #[arg(long, default_value_t = 60.0, value_parser = run::parse_timeout)]
    pub timeout: f64,
    /// Case files or directories (default: the repository's or the built-in catalogue).
    pub paths: Vec<PathBuf>,
    /// Print the qualification as one tagged JSON line on stdout (used inside the VM).
    #[arg(long, hide = true)]
    pub emit_json: bool,
}

/// Runs the command.
pub fn main(a: &QualifyArgs, cases: &[Case]) -> Result<Verdict, Error> {
    let file = topology::load(&a.topology)?;
    if file.kind != Kind::Nic {
        return Err(Error::bad_input(format!(
            "--topology {}: qualify needs a `kind: nic` topology (the NIC under test)",
            a.topology
        )));
    }
    if file.remote.as_ref().is_none_or(|r| r.netns.is_none() && r.ssh.is_none()) {
        return Err(Error::bad_input(format!(
            "--topology {}: qualify needs remote.netns (the peer port in a network namespace of this machine, \
             cabled to the NIC) or remote.ssh (the peer on another machine): without either the cases' sender \
             runs in the DUT's namespace and its traffic never crosses the NIC (docs/qualifying-a-nic.md)",
            a.topology
        )));
    }
    let soak =
        a.soak.as_deref().map(soak::parse_duration).transpose().map_err(|e| Error::bad_input(format!("--soak {e}")))?;
    let nic_cases: Vec<Case> =
        cases.iter().filter(|c| run::plan::case_kinds(c).contains(&Kind::Nic)).cloned().collect();
    if nic_cases.is_empty() {
        return Err(Error::bad_input("no case in the catalogue runs on a nic topology"));
    }
    if a.emit_json {
        let q = here(&file, &nic_cases, a.timeout, soak, "host")?;
        println!("{TAG}{}", serde_json::to_string(&q).map_err(|e| Error::environment(format!("qualify: json: {e}")))?);
        return Ok(Verdict::Passed);
    }
    crate::report::files::check_output_dir(&a.out, "--out", FILES)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Error::bad_input(format!("--out {}: {e}", a.out.display())))?;
    let _lock = crate::report::files::lock_dir(&a.out)?;
    run::signal::install_handlers();
    let t0 = Instant::now();
    let q = match a.kernel.single("qualify")? {
        crate::vm::KernelSpec::Host => here(&file, &nic_cases, a.timeout, soak, "host")?,
        kernel => in_vm(&kernel, a, soak)?,
    };
    let wall = t0.elapsed().as_secs_f64();
    write(&a.out, &q)?;
    print_summary(&q, &a.out, wall);
    Ok(match q.verdict {
        doc::Verdict::Pass => Verdict::Passed,
        doc::Verdict::Fail => Verdict::Failed,
        doc::Verdict::NotTested => Verdict::Empty,
    })
}

fn write(out: &Path, q: &doc::Qualification) -> Result<(), QError> {
    let json = serde_json::to_string_pretty(q).map_err(|e| QError::Setup(format!("qualify: json: {e}")))?;
    let junit = crate::report::junit(&[&q.run])?;
    for (name, text) in [
        ("qualification.json", json),
        ("qualification.html", doc::html(q)),
        ("junit.xml", junit),
        ("report.json", crate::report::json(&[&q.run])),
    ] {
        crate::report::write_atomic(&out.join(name), &text)
            .map_err(|e| QError::Setup(format!("{}: {e}", out.join(name).display())))?;
    }
    Ok(())
}

fn print_summary(q: &doc::Qualification, out: &Path, wall: f64) {
    use crate::report::escape::printable;
    println!(
        "qualification of {} ({}) on {}:",
        printable(&q.nic.interface),
        printable(&q.nic.driver.text()),
        printable(&q.kernel.release)
    );
    for r in &q.requirements {
        println!("  {:<3} {:<10} {}", r.id, format!("{:?}", r.verdict), printable(&r.requirement));
    }
    let changed = q.settings.iter().filter(|s| s.changed).count();
    println!("  settings: {} read, {changed} changed; {} case(s) not tested", q.settings.len(), q.untested.len());
    if let Some(s) = &q.soak {
        println!("  soak: {} round(s) in {:.0} s, {} failure(s)", s.rounds, s.duration_s, s.failures.len());
    }
    println!("verdict: {:?} in {wall:.1} s; {}", q.verdict, out.join("qualification.html").display());
}

/// The guest's command line: this binary's `qualify --emit-json` with the host's options, the
/// topology and case paths as the guest sees them.
pub(crate) fn guest_args(a: &QualifyArgs, topology: &str, paths: &[PathBuf]) -> Vec<String> {
    let mut args = vec![
        "qualify".to_string(),
        "--emit-json".into(),
        format!("--topology={topology}"),
        format!("--timeout={}", a.timeout),
    ];
    if let Some(s) = &a.soak {
        args.push(format!("--soak={s}"));
    }
    args.extend(paths.iter().map(|p| p.display().to_string()));
    args
}

/// Boots the kernel and qualifies inside; the guest runs this same binary.
fn in_vm(k: &crate::vm::KernelSpec, a: &QualifyArgs, soak: Option<f64>) -> Result<doc::Qualification, QError> {
    crate::vm::provision()?;
    let kernel = crate::vm::resolve(k)?;
    let mut env = crate::vm::guest_tools(&kernel, std::slice::from_ref(&a.topology))?;
    env.push((crate::paths::CACHE_VAR.to_string(), crate::paths::cache_dir().display().to_string()));
    let topo = if a.topology.contains('/') || a.topology.ends_with(".yaml") {
        let p = Path::new(&a.topology);
        if crate::paths::builtin::is_builtin(p) {
            p.to_path_buf()
        } else {
            p.canonicalize().map_err(|e| QError::Setup(format!("{}: {e}", p.display())))?
        }
        .display()
        .to_string()
    } else {
        a.topology.clone()
    };
    let mut paths = Vec::new();
    for p in &a.paths {
        paths.push(if crate::paths::builtin::is_builtin(p) {
            p.clone()
        } else {
            p.canonicalize().map_err(|e| QError::Setup(format!("{}: {e}", p.display())))?
        });
    }
    let args = guest_args(a, &topo, &paths);
    let limit = Duration::from_secs_f64(1800.0 + soak.unwrap_or(0.0) * 1.5);
    let out = crate::vm::run_command_in_vm(&kernel, &args, &env, limit)?;
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(TAG))
        .ok_or_else(|| QError::Setup(format!("qualify: the guest printed no qualification; its output:\n{out}")))?;
    let mut q: doc::Qualification =
        serde_json::from_str(line).map_err(|e| QError::Setup(format!("qualify: the guest's qualification: {e}")))?;
    q.run.target = k.to_string();
    Ok(q)
}

fn opts(timeout: f64) -> RunOpts {
    RunOpts {
        topologies: vec!["nic".into()],
        selection: Selection::default(),
        timeout,
        stream: false,
        quiet: false,
        start_at: 0,
        self_check: false,
        jobs: 1,
        announce: false,
    }
}

/// Qualifies the NIC of `file` on this machine.
pub fn here(
    file: &TopologyFile,
    cases: &[Case],
    timeout: f64,
    soak_s: Option<f64>,
    target: &str,
) -> Result<doc::Qualification, QError> {
    let probe = Probe::run();
    let tools = Tools::from_env();
    let dev = file.interface.clone().ok_or(QError::Setup("the topology names no interface".into()))?;
    let ns = file.netns.clone();
    // A simulated NIC is created first with nothing set: "before" is the device as its
    // driver made it. Deleted when this guard goes, after "after".
    let sim = match file.simulate {
        Some(_) => {
            let bare = TopologyFile {
                dut: Settings::default(),
                peer: Settings::default(),
                may_change: vec![],
                ..file.clone()
            };
            Some(bare.up(&tools, 0).map_err(|e| QError::Setup(format!("creating the simulated NIC: {e}")))?)
        }
        None => None,
    };
    let (d, n) = (dev.clone(), ns.clone());
    let facts = settings::in_netns(ns.as_deref(), move || nic::probe(&d, n.as_deref()))?;
    let before = settings::read_dut(ns.as_deref(), &dev);
    let mut run_file = TopologyFile { simulate: None, ..file.clone() };
    // A simulated lab's remote is reached with the keys it made.
    if let (Some((id, kh, _)), Some(s)) =
        (sim.as_ref().and_then(|s| s.lab_keys.clone()), run_file.remote.as_mut().and_then(|r| r.ssh.as_mut()))
    {
        s.identity = Some(id.display().to_string());
        s.known_hosts = Some(kh.display().to_string());
    }
    let up = |slot: u32| -> Result<Envs, QError> {
        let mut env = run_file.up(&tools, slot)?;
        if let Some(s) = &sim {
            env.topo.debugfs = s.topo.debugfs.clone();
        }
        Ok(Envs::with(env))
    };
    let mut report = run::run_on(cases, &opts(timeout), &probe, target, up(1)?);
    report.topologies = vec![file.name.clone()];
    let soak = match soak_s {
        Some(d) if run::signal::interrupted().is_none() => {
            Some(soak_loop(cases, d, &probe, &up, &dev, ns.as_deref(), sim.as_ref(), timeout))
        }
        _ => None,
    };
    let after = settings::read_dut(ns.as_deref(), &dev);
    drop(sim);
    let (diff, settings_error) = match (&before, &after) {
        (Ok(b), Ok(a)) => (settings::diff(b, a), None),
        (Err(e), _) => (vec![], Some(format!("before: {e}"))),
        (_, Err(e)) => (vec![], Some(format!("after: {e}"))),
    };
    let requirements = doc::judge(&report.cases, &diff, settings_error.is_none());
    let verdict = doc::overall(&requirements, soak.as_ref());
    let config = crate::report::bugreport::kernel_config(&probe.kernel_release);
    Ok(doc::Qualification {
        schema_version: doc::SCHEMA_VERSION,
        tool_version: crate::report::TOOL_VERSION.into(),
        tool_commit: env!("ZCRX_GIT_COMMIT").into(),
        topology: file.name.clone(),
        destructive: file.destructive,
        nic: facts,
        kernel: doc::KernelFacts {
            release: probe.kernel_release.clone(),
            config_sha256: config.as_deref().map(|c| sha256::hex(c.as_bytes())),
            config_source: if config.is_some() {
                "the config text of this release (/proc/config.gz, /boot/config-RELEASE or the fetched kernel package)"
                    .into()
            } else {
                "no config found for this release".into()
            },
        },
        untested: doc::untested(&report.cases),
        requirements,
        settings: diff,
        settings_error,
        soak,
        verdict,
        run: report,
    })
}

/// Loops the data-path cases for `secs`, sampling after every round.
#[allow(clippy::too_many_arguments)]
fn soak_loop(
    cases: &[Case],
    secs: f64,
    probe: &Probe,
    up: &dyn Fn(u32) -> Result<Envs, QError>,
    dev: &str,
    ns: Option<&str>,
    sim: Option<&topology::Env>,
    timeout: f64,
) -> soak::SoakReport {
    let data: Vec<Case> = cases.iter().filter(|c| SOAK_CASES.contains(&c.id.as_str())).cloned().collect();
    let hds = sim.and_then(|s| s.topo.debugfs.clone()).map(|d| d.join("hds")).filter(|d| d.is_dir());
    let mut r = soak::SoakReport {
        cases: data.iter().map(|c| c.id.clone()).collect(),
        counter_sources: vec![
            format!("/sys/class/net/{dev}/statistics (rx_bytes, rx_dropped, rx_errors)"),
            match &hds {
                Some(d) => format!("{} (netdevsim-zcrx: split skbs, copy fallbacks, buffer budget)", d.display()),
                None => "no driver debugfs counters (not a netdevsim-zcrx port)".into(),
            },
            "page pools of the DUT between rounds (netdev netlink NETDEV_CMD_PAGE_POOL_GET: pages in flight, pools still bound to io_uring, detached pools' pages)".into(),
            "the per-case zcrx copy stats are checked by the cases themselves (expect_stats), not sampled here".into(),
        ],
        ..Default::default()
    };
    let stats = |d: String, n: Option<String>| {
        settings::in_netns(n.as_deref(), move || {
            let mut m = std::collections::BTreeMap::new();
            soak::dir_counters(&Path::new("/sys/class/net").join(&d).join("statistics"), "stat.", &mut m);
            m.retain(|k, _| ["stat.rx_bytes", "stat.rx_dropped", "stat.rx_errors"].contains(&k.as_str()));
            // The DUT's page pools between rounds (every zcrx instance closed): pages still out,
            // pools still bound to io_uring, and pools whose device is gone with pages out.
            let idx: Option<u32> = std::fs::read_to_string(Path::new("/sys/class/net").join(&d).join("ifindex"))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            // A closed zcrx instance lets go of its pool asynchronously (io_uring frees the ring
            // in a work item): wait up to 5 s for that before reading the levels.
            let t = Instant::now();
            let mut pools = crate::kernel::nl::netdev::all_page_pools();
            while let Ok(p) = &pools {
                let settled = !p.iter().any(|p| p.io_uring || (p.detached && p.inflight.unwrap_or(0) > 0));
                if settled || t.elapsed() > Duration::from_secs(5) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
                pools = crate::kernel::nl::netdev::all_page_pools();
            }
            if let Ok(pools) = pools {
                m.insert("pp.settle_ms".into(), t.elapsed().as_millis() as i64);
                let mine: Vec<&crate::kernel::nl::netdev::PagePool> =
                    pools.iter().filter(|p| p.ifindex.is_some() && p.ifindex == idx).collect();
                m.insert("pp.inflight".into(), mine.iter().map(|p| p.inflight.unwrap_or(0) as i64).sum());
                m.insert("pp.io_uring_held".into(), mine.iter().filter(|p| p.io_uring).count() as i64);
                m.insert(
                    "pp.detached_inflight".into(),
                    pools.iter().filter(|p| p.detached).map(|p| p.inflight.unwrap_or(0) as i64).sum(),
                );
            }
            m
        })
        .unwrap_or_default()
    };
    let mut o = opts(timeout);
    o.quiet = true;
    let t0 = Instant::now();
    let mut last = stats(dev.to_string(), ns.map(String::from));
    let mut t_last = 0.0;
    while t0.elapsed().as_secs_f64() < secs && run::signal::interrupted().is_none() {
        let rep = match up(2) {
            Ok(envs) => run::run_on(&data, &o, probe, "soak", envs),
            Err(e) => {
                r.failures.push(format!("round {}: the topology did not come up: {e}", r.rounds));
                break;
            }
        };
        let mut counters = stats(dev.to_string(), ns.map(String::from));
        if let Some(d) = &hds {
            soak::dir_counters(d, "hds.", &mut counters);
        }
        let t = t0.elapsed().as_secs_f64();
        let rx = counters.get("stat.rx_bytes").copied().unwrap_or(0) - last.get("stat.rx_bytes").copied().unwrap_or(0);
        let (used, slab, rss) = soak::memory();
        r.samples.push(soak::Sample {
            round: r.rounds,
            t_s: t,
            passed: rep.cases.iter().filter(|c| c.status == Status::Pass).count(),
            failed: rep.cases.iter().filter(|c| c.status.is_failure()).count(),
            rx_bytes: rx.max(0) as u64,
            throughput_mbit_s: rx.max(0) as f64 * 8.0 / 1e6 / (t - t_last).max(1e-3),
            mem_used_kb: used,
            slab_kb: slab,
            rss_kb: rss,
            counters: counters.clone(),
        });
        last = counters;
        t_last = t;
        r.rounds += 1;
        eprintln!("soak: round {} done at {t:.0} s of {secs:.0} s", r.rounds);
    }
    r.duration_s = t0.elapsed().as_secs_f64();
    let pre = std::mem::take(&mut r.failures);
    soak::judge(&mut r);
    r.failures.splice(0..0, pre);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(topology: &str) -> QualifyArgs {
        QualifyArgs {
            topology: topology.into(),
            kernel: Default::default(),
            out: std::env::temp_dir().join(format!("zcrx-qualify-never-{}", std::process::id())),
            soak: None,
            timeout: 60.0,
            paths: vec![],
            emit_json: false,
        }
    }

    fn refused(text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("zcrx-qualify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let p = dir.join("t.yaml");
        std::fs::write(&p, text).expect("write");
        let e = match main(&args(p.to_str().expect("utf8")), &[]) {
            Err(e) if e.kind() == crate::error::Kind::BadInput => e.to_string(),
            other => panic!("not refused: {other:?}"),
        };
        let _ = std::fs::remove_dir_all(&dir);
        e
    }

    /// Bad input is refused before anything is set up or written.
    #[test]
    fn only_a_nic_with_a_namespace_peer_is_qualified() {
        let e = refused("name: v\nkind: veth\nabout: x\n");
        assert!(e.contains("needs a `kind: nic` topology"), "{e}");
        let e = refused("name: n\nkind: nic\nabout: x\ninterface: eth1\nremote: { address: 192.0.2.2 }\n");
        assert!(e.contains("needs remote.netns") && e.contains("or remote.ssh"), "{e}");
        let mut a = args("nic-netdevsim");
        a.soak = Some("soon".into());
        let soon = main(&a, &[]);
        assert!(matches!(&soon, Err(e) if e.kind() == crate::error::Kind::BadInput), "{soon:?}");
        assert!(soon.is_err_and(|e| e.to_string().starts_with("--soak `soon`")));
        assert!(!a.out.exists(), "nothing is written for bad input");
    }

    #[test]
    fn soak_cases_and_report_files_exist() {
        let cases = crate::case::load_all(&[crate::paths::default_case_dir()]).expect("cases");
        for id in SOAK_CASES {
            let c = cases.iter().find(|c| c.id == *id).unwrap_or_else(|| panic!("{id} is not in the catalogue"));
            assert!(c.def.requires.topology.iter().any(|t| t == "nic"), "{id} does not run on a nic");
        }
        for r in doc::REQUIREMENTS {
            for e in r.evidence.iter().filter(|e| e.starts_with("nic.")) {
                assert!(cases.iter().any(|c| c.id == *e || c.id.starts_with(&format!("{e}["))), "{}: {e}", r.id);
            }
        }
    }
}
