//! `zcrx-conform bench`: receive throughput and CPU time per GiB of RECV_ZC (a NODEV zcrx
//! instance: every byte is copied into the user area, buffers come back through the RQ and
//! `ZCRX_CTRL_FLUSH_RQ`) against plain `recv()` on the same socket path (loopback TCP), and
//! the suite's own costs (one case process; in a VM (`--kernel SPEC`), VM boot against suite time).
//!
//! Nothing here is asserted: under TCG absolute numbers mean little, so the report gives
//! RECV_ZC / recv() ratios next to min/median/max of each measurement.

mod error;
mod render;
mod rx;
pub mod scaling;
pub mod suite;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::model::Feature;
use crate::topology::Kind;
pub use error::Error;
pub use render::{
    render, BenchReport, MethodResult, Ratios, Sample, SizeResult, SpawnResult, Stats, SuiteTimings, VmTimings,
};
use rx::{transfer, Method, Net};

/// Arguments of `zcrx-conform bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    // One kernel to measure on (default: host; another is booted in a VM, as `run --kernel`).
    #[command(flatten)]
    pub kernel: crate::vm::KernelArgs,
    /// Where the data path runs: nodev (loopback TCP) or netdevsim-zcrx (a netdevsim pair
    /// built with the zcrx patches of vm/netdevsim-zcrx/: true zero copy; in a VM).
    #[arg(long, default_value = "nodev", value_parser = parse_topology)]
    pub topology: Kind,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Sizes of the sender's writes (and of the recv() buffer), comma-separated: 4K, 64K, 1M.
    #[arg(long, default_value = "4K,64K,1M", value_delimiter = ',')]
    pub sizes: Vec<String>,
    /// MiB per transfer.
    #[arg(long, default_value_t = 32)]
    pub total_mib: u64,
    /// Transfers per size and method (min/median/max are reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// `zcrx-conform run` of one trivial case, this many times (0: skip).
    #[arg(long, default_value_t = 10)]
    pub spawns: u32,
    /// In a VM: also run the suite there (`run --kernel`) for VM boot against suite time;
    /// these filters narrow it (default: the whole suite).
    #[arg(long)]
    pub suite_filter: Vec<String>,
    /// In a VM: do not run the suite for boot/suite timings.
    #[arg(long)]
    pub no_suite: bool,
    /// In a VM: seconds before the VM is killed.
    #[arg(long, default_value_t = 1800)]
    pub vm_timeout: u64,
    /// Print the result as one tagged JSON line on stdout (used inside the VM).
    #[arg(long, hide = true)]
    pub emit_json: bool,
    /// In a VM: instead of the data path, measure the suite against liburing's zcrx.t in one
    /// VM boot (three warm runs each of our comparable subset, the whole catalogue and zcrx.t;
    /// `ratio` = our seconds per case on the subset / liburing's seconds per check).
    #[arg(long)]
    pub suite: bool,
    /// With --suite: cases our runner runs at the same time (`run -j`); the subset is also
    /// measured at -j 1 (`ratio_j1`).
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// On this machine, no kernel involved: how the report writers (html, merge) scale from
    /// 3000 to 30000 cases, each a ratio against its own small side; exit 1 when one looks
    /// quadratic (over 50x). `--json` writes the figures.
    #[arg(long, conflicts_with_all = ["suite", "kernels"])]
    pub reports: bool,
    /// Inside the VM: the --suite measurements, with liburing's zcrx.t at this path.
    #[arg(long, hide = true)]
    pub suite_guest: Option<PathBuf>,
}

/// `--topology`: where the data path runs, nodev (loopback) or netdevsim-zcrx (the topology file
/// of that name).
fn parse_topology(s: &str) -> Result<Kind, Error> {
    match Kind::named(s) {
        Some(k @ (Kind::Nodev | Kind::NetdevsimZcrx)) => Ok(k),
        _ => Err(Error::Args(format!("`{s}`: expected nodev or netdevsim-zcrx"))),
    }
}

/// The tag of the JSON line the guest prints.
const TAG: &str = "@@ZCRX-BENCH@@ ";
/// The trivial case the spawn timing runs (any kernel with IORING_REGISTER_QUERY).
const TRIVIAL_CASE: (&str, &str) = ("cases/query/opcodes.yaml", "query.opcodes");

pub fn main(a: &BenchArgs) -> Result<(), Error> {
    if let Some(zcrx_t) = &a.suite_guest {
        let b = suite::guest(zcrx_t, a.jobs as usize)?;
        eprint!("{}", suite::render(&b));
        return emit_result(&b);
    }
    if a.suite {
        let kernel = a.kernel.single("bench")?;
        let b = suite::in_vm(&kernel, a.jobs as usize, Duration::from_secs(a.vm_timeout))?;
        print!("{}", suite::render(&b));
        return a.json.as_deref().map_or(Ok(()), |p| write_json(p, &b));
    }
    let sizes = a.sizes.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>, _>>()?;
    if sizes.is_empty() || a.total_mib == 0 || a.repeat == 0 {
        return Err(Error::Args("bench: need at least one size, --total-mib > 0 and --repeat > 0".into()));
    }
    let report = match a.kernel.single("bench")? {
        crate::vm::KernelSpec::Host => local(a, &sizes, "host")?,
        kernel => in_vm(a, &kernel)?,
    };
    let table = render(&report);
    if a.emit_json {
        eprint!("{table}");
        emit_result(&report)?;
    } else {
        print!("{table}");
    }
    a.json.as_deref().map_or(Ok(()), |p| write_json(p, &report))
}

/// `bench --reports`: prints the writers' scaling ([`scaling`]); false when one looks quadratic.
pub fn reports(a: &BenchArgs) -> Result<bool, Error> {
    let s = scaling::measure()?;
    print!("{}", scaling::render(&s));
    if let Some(p) = a.json.as_deref() {
        write_json(p, &s)?;
    }
    Ok(s.iter().all(|x| x.linear))
}

/// Prints `v` as the one tagged line a guest's result travels in to the host.
pub(crate) fn emit_result<T: serde::Serialize>(v: &T) -> Result<(), Error> {
    println!("{TAG}{}", serde_json::to_string(v).map_err(|e| Error::Measure(format!("bench: json: {e}")))?);
    Ok(())
}

/// The result a guest printed with [`emit_result`] (its last tagged line).
pub(crate) fn guest_result<T: serde::de::DeserializeOwned>(out: &str) -> Result<T, Error> {
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(TAG))
        .ok_or_else(|| Error::Measure(format!("bench: the guest printed no result line; its output:\n{out}")))?;
    serde_json::from_str(line).map_err(|e| Error::Measure(format!("bench: the guest's result line: {e}")))
}

/// `v` as pretty JSON in `p`.
fn write_json<T: serde::Serialize>(p: &std::path::Path, v: &T) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Measure(format!("bench: json: {e}")))?;
    crate::report::write_atomic(p, &text).map_err(|e| Error::Args(format!("{}: {e}", p.display())))
}

/// "4K", "64KiB", "1M", "4096".
pub fn parse_size(s: &str) -> Result<usize, Error> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: usize = t[..digits].parse().map_err(|_| Error::Args(format!("size `{s}`: expected e.g. 4K, 64K, 1M")))?;
    let mult = match t[digits..].to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(Error::Args(format!("size `{s}`: expected e.g. 4K, 64K, 1M"))),
    };
    match n.checked_mul(mult) {
        Some(v) if v > 0 && v <= 64 << 20 => Ok(v),
        _ => Err(Error::Args(format!("size `{s}`: must be 1 byte .. 64 MiB"))),
    }
}

/// Measures in the running kernel.
fn local(a: &BenchArgs, sizes: &[usize], target: &str) -> Result<BenchReport, Error> {
    let t0 = Instant::now();
    let probe = crate::model::Probe::run();
    let total = a.total_mib << 20;
    // A namespace topology stays up (and is torn down) with `_active`.
    let (net, _active) = match a.topology {
        Kind::Nodev => (Net::loopback(), None),
        kind => {
            let f = crate::topology::load(kind.name())?;
            let act = f.up(&crate::topology::Tools::from_env(), 0)?;
            let t = act.topo.clone();
            if let Some(ns) = &t.netns {
                crate::topology::enter(ns)?;
            }
            let net =
                Net { dut_addr: t.dut_addr.clone(), peer_ns: t.peer_netns.clone(), netdev: Some((t.if_idx, t.if_rxq)) };
            (net, Some(act))
        }
    };
    let zc_skip = if net.netdev.is_some() {
        (!probe.cap_net_admin).then(|| "RECV_ZC needs CAP_NET_ADMIN to register a zcrx instance (run as root)".into())
    } else if !probe.features.contains(&Feature::Nodev) {
        Some(format!("RECV_ZC needs ZCRX_REG_NODEV (7.2+): {}", probe.missing_reason(Feature::Nodev)))
    } else if !probe.cap_net_admin {
        Some("RECV_ZC needs CAP_NET_ADMIN to register a zcrx instance (run as root)".into())
    } else {
        None
    };
    if let Some(w) = &zc_skip {
        eprintln!("bench: {w}; measuring recv() only");
    }
    let mut out = Vec::new();
    for &size in sizes {
        let mut rs = Vec::new();
        let mut zs = Vec::new();
        // Interleave the methods so a noisy neighbour hits both alike.
        for _ in 0..a.repeat {
            rs.push(transfer(size, total, Method::Recv, &net)?);
            if zc_skip.is_none() {
                zs.push(transfer(size, total, Method::RecvZc, &net)?);
            }
        }
        let recv = summarize("recv", rs);
        let recv_zc = (!zs.is_empty()).then(|| summarize("recv_zc", zs));
        let ratio = recv_zc.as_ref().map(|z| Ratios {
            throughput: z.mib_per_s.median / recv.mib_per_s.median,
            rx_cpu_per_gib: z.rx_cpu_s_per_gib.median / recv.rx_cpu_s_per_gib.median,
            proc_cpu_per_gib: z.proc_cpu_s_per_gib.median / recv.proc_cpu_s_per_gib.median,
        });
        out.push(SizeResult { size, recv, recv_zc, ratio });
    }
    let spawn = (a.spawns > 0).then(|| spawn_timing(a.spawns));
    Ok(BenchReport {
        target: target.into(),
        kernel_release: probe.kernel_release,
        topology: a.topology.to_string(),
        total_mib: a.total_mib,
        repeat: a.repeat,
        recv_zc_skipped: zc_skip,
        sizes: out,
        spawn,
        vm: None,
        elapsed_s: t0.elapsed().as_secs_f64(),
    })
}

fn summarize(method: &str, samples: Vec<Sample>) -> MethodResult {
    let per_gib = |f: fn(&Sample) -> f64| -> Stats {
        Stats::of(&samples.iter().map(|s| f(s) * (1u64 << 30) as f64 / s.bytes.max(1) as f64).collect::<Vec<_>>())
    };
    MethodResult {
        method: method.into(),
        mib_per_s: Stats::of(
            &samples.iter().map(|s| s.bytes as f64 / (1u64 << 20) as f64 / s.wall_s.max(1e-9)).collect::<Vec<_>>(),
        ),
        rx_cpu_s_per_gib: per_gib(|s| s.rx_cpu_s),
        tx_cpu_s_per_gib: per_gib(|s| s.tx_cpu_s),
        proc_cpu_s_per_gib: per_gib(|s| s.proc_cpu_s),
        samples,
    }
}

/// Times `zcrx-conform run` of one trivial case, n times.
fn spawn_timing(n: u32) -> SpawnResult {
    let (file, id) = TRIVIAL_CASE;
    let mut r = SpawnResult { case: id.into(), n, ..Default::default() };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            r.error = Some(format!("current_exe: {e}"));
            return r;
        }
    };
    let path = crate::paths::repo_root().join(file);
    let tmp = std::env::temp_dir().join(format!("zcrx-bench-{}.json", std::process::id()));
    let (mut walls, mut cases) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        let st = Command::new(&exe)
            .arg("run")
            .arg(&path)
            .args(["--filter", id, "-q", "--allow-empty", "--json"])
            .arg(&tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        walls.push(t0.elapsed().as_secs_f64());
        match st {
            Ok(s) if s.success() => {}
            Ok(s) => {
                r.error = Some(format!("`run {file} --filter {id}` exited with {s}"));
                break;
            }
            Err(e) => {
                r.error = Some(format!("spawning {}: {e}", exe.display()));
                break;
            }
        }
        let d = std::fs::read_to_string(&tmp)
            .ok()
            .and_then(|t| serde_json::from_str::<crate::report::JsonReport>(&t).ok())
            .and_then(|j| j.runs.into_iter().next())
            .and_then(|run| run.cases.into_iter().find(|c| c.id == id))
            .map(|c| c.duration_s);
        if let Some(d) = d {
            cases.push(d);
        }
    }
    let _ = std::fs::remove_file(&tmp);
    r.run_process_s = Stats::of(&walls);
    r.case_s = Stats::of(&cases);
    r
}

/// Boots the kernel, runs `bench --emit-json` inside, and optionally the suite for timings.
fn in_vm(a: &BenchArgs, ks: &crate::vm::KernelSpec) -> Result<BenchReport, Error> {
    let spec = ks.to_string();
    crate::vm::provision()?;
    let kernel = crate::vm::resolve(ks)?;
    let args: Vec<String> = vec![
        "bench".into(),
        "--emit-json".into(),
        "--topology".into(),
        a.topology.to_string(),
        "--sizes".into(),
        a.sizes.join(","),
        "--total-mib".into(),
        a.total_mib.to_string(),
        "--repeat".into(),
        a.repeat.to_string(),
        "--spawns".into(),
        a.spawns.to_string(),
    ];
    let mut env: Vec<(String, String)> = vec![];
    if a.topology != Kind::Nodev {
        env.extend(crate::vm::guest_tools(&kernel, &[a.topology.to_string()])?);
    }
    eprintln!("bench: booting {spec} ({})", kernel.display());
    let t0 = Instant::now();
    let out = crate::vm::run_command_in_vm(&kernel, &args, &env, Duration::from_secs(a.vm_timeout))?;
    let wall = t0.elapsed().as_secs_f64();
    let mut report: BenchReport = guest_result(&out)?;
    report.target = spec.to_string();
    let mut vt = VmTimings {
        kernel: kernel.display().to_string(),
        bench_vm_wall_s: wall,
        bench_in_guest_s: report.elapsed_s,
        boot_and_poweroff_s: wall - report.elapsed_s,
        suite: None,
    };
    if !a.no_suite {
        eprintln!("bench: running the suite in {spec} for VM boot vs suite time");
        vt.suite = Some(suite_in_vm(&spec, &kernel, &a.suite_filter));
    }
    report.vm = Some(vt);
    Ok(report)
}

fn suite_in_vm(spec: &str, kernel: &std::path::Path, filter: &[String]) -> SuiteTimings {
    let run = crate::run::RunOpts::quiet_builtin(filter, 1);
    let o = crate::vm::VmOpts {
        paths: vec![crate::paths::default_case_dir()],
        run,
        memory: "2G".into(),
        cpus: 2,
        env: vec![],
    };
    let mut st = SuiteTimings { filter: filter.to_vec(), ..Default::default() };
    match crate::vm::run_in_vm(spec, kernel, &o) {
        Ok(r) => {
            let t = &r.timings;
            st.cases = r.cases.len();
            st.executed = r.cases.iter().filter(|c| c.status != crate::model::Status::Skip).count();
            st.vm_boots = t.vm_boots.unwrap_or(0) as f64;
            st.vm_boot_s = t.vm_boot_s.unwrap_or(0.0);
            st.suite_s = t.suite_s.unwrap_or(0.0);
            st.total_s = t.total_s.unwrap_or(0.0);
            st.per_case_s = st.suite_s / st.cases.max(1) as f64;
            st.error = r.aborted;
        }
        Err(e) => st.error = Some(e.to_string()),
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4K").ok(), Some(4096));
        assert_eq!(parse_size("64KiB").ok(), Some(65536));
        assert_eq!(parse_size("1M").ok(), Some(1 << 20));
        assert_eq!(parse_size("100").ok(), Some(100));
        assert!(parse_size("0").is_err() && parse_size("x").is_err() && parse_size("1G").is_err());
    }
}
