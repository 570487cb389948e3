//! The bench report: its types (also the JSON the guest prints) and the readable table.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Stats {
    pub(super) fn of(v: &[f64]) -> Stats {
        let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stats::default();
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Stats { min: v[0], median, max: v[n - 1] }
    }
}

/// One transfer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sample {
    pub bytes: u64,
    pub wall_s: f64,
    /// CPU time (user+sys) of the receiving thread.
    pub rx_cpu_s: f64,
    /// CPU time of the sending thread (on loopback it also carries most of the TCP receive
    /// processing, which runs in its softirq context).
    pub tx_cpu_s: f64,
    /// getrusage(RUSAGE_SELF) over the transfer: both threads.
    pub proc_cpu_s: f64,
    /// RECV_ZC: data CQEs, re-arms after -ENOMEM, FLUSH_RQ calls.
    pub cqes: u64,
    pub rearms: u64,
    pub flushes: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MethodResult {
    /// "recv" or "recv_zc".
    pub method: String,
    pub samples: Vec<Sample>,
    pub mib_per_s: Stats,
    pub rx_cpu_s_per_gib: Stats,
    pub tx_cpu_s_per_gib: Stats,
    pub proc_cpu_s_per_gib: Stats,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ratios {
    /// Median throughput of RECV_ZC / recv() (> 1: RECV_ZC faster).
    pub throughput: f64,
    /// Median receiver CPU per GiB, RECV_ZC / recv() (< 1: RECV_ZC cheaper).
    pub rx_cpu_per_gib: f64,
    /// Median process CPU per GiB, RECV_ZC / recv().
    pub proc_cpu_per_gib: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SizeResult {
    pub size: usize,
    pub recv: MethodResult,
    pub recv_zc: Option<MethodResult>,
    pub ratio: Option<Ratios>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SpawnResult {
    pub case: String,
    pub n: u32,
    /// Wall time of one `zcrx-conform run FILE --filter ID -q` process.
    pub run_process_s: Stats,
    /// The case's duration as the runner measured it (exec-case child spawn + execution).
    pub case_s: Stats,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VmTimings {
    pub kernel: String,
    /// Wall time of the bench VM (boot + bench + poweroff) and the bench part of it.
    pub bench_vm_wall_s: f64,
    pub bench_in_guest_s: f64,
    /// bench_vm_wall_s - bench_in_guest_s: boot and poweroff.
    pub boot_and_poweroff_s: f64,
    /// From a `run --kernel SPEC` of the suite (vm::run_in_vm's timings), when it ran.
    pub suite: Option<SuiteTimings>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SuiteTimings {
    pub filter: Vec<String>,
    pub cases: usize,
    pub executed: usize,
    pub vm_boots: f64,
    pub vm_boot_s: f64,
    pub suite_s: f64,
    pub total_s: f64,
    pub per_case_s: f64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BenchReport {
    pub target: String,
    pub kernel_release: String,
    pub topology: String,
    pub total_mib: u64,
    pub repeat: u32,
    /// Why RECV_ZC was not measured, if it was not.
    pub recv_zc_skipped: Option<String>,
    pub sizes: Vec<SizeResult>,
    pub spawn: Option<SpawnResult>,
    pub vm: Option<VmTimings>,
    pub elapsed_s: f64,
}

fn human(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// The readable table.
pub fn render(r: &BenchReport) -> String {
    let mut s = format!(
        "bench on {} ({}), topology {}: {}, {} MiB per transfer, {} repeat(s); min/median/max\n",
        r.target,
        r.kernel_release,
        r.topology,
        if r.topology == "nodev" {
            "loopback TCP, NODEV registration".to_string()
        } else {
            format!("TCP across the {} pair, netdev registration on the DUT's rx queue", r.topology)
        },
        r.total_mib,
        r.repeat
    );
    if let Some(w) = &r.recv_zc_skipped {
        s.push_str(&format!("RECV_ZC not measured: {w}\n"));
    }
    s.push_str(&format!(
        "{:<8} {:<8} {:>26} {:>16} {:>16} {:>16} {:>22}\n",
        "size", "method", "MiB/s", "rx CPU s/GiB", "tx CPU s/GiB", "proc CPU s/GiB", "CQEs/re-arms/flushes"
    ));
    let tri = |x: &Stats| format!("{:.0}/{:.0}/{:.0}", x.min, x.median, x.max);
    for z in &r.sizes {
        for m in std::iter::once(&z.recv).chain(z.recv_zc.as_ref()) {
            let extra = if m.method == "recv_zc" {
                let med = |f: fn(&Sample) -> u64| {
                    Stats::of(&m.samples.iter().map(|x| f(x) as f64).collect::<Vec<_>>()).median
                };
                format!("{:.0}/{:.0}/{:.0}", med(|x| x.cqes), med(|x| x.rearms), med(|x| x.flushes))
            } else {
                "-".into()
            };
            s.push_str(&format!(
                "{:<8} {:<8} {:>26} {:>16.3} {:>16.3} {:>16.3} {:>22}\n",
                human(z.size),
                if m.method == "recv_zc" { "RECV_ZC" } else { "recv()" },
                tri(&m.mib_per_s),
                m.rx_cpu_s_per_gib.median,
                m.tx_cpu_s_per_gib.median,
                m.proc_cpu_s_per_gib.median,
                extra
            ));
        }
        if let Some(q) = &z.ratio {
            s.push_str(&format!(
                "{:<8} RECV_ZC/recv(): throughput x{:.2}, rx CPU/GiB x{:.2}, process CPU/GiB x{:.2}\n",
                human(z.size),
                q.throughput,
                q.rx_cpu_per_gib,
                q.proc_cpu_per_gib
            ));
        }
    }
    if let Some(sp) = &r.spawn {
        s.push_str(&format!(
            "suite overhead: `run` of {} x{}: process {:.3}/{:.3}/{:.3} s, case (exec-case child) {:.3}/{:.3}/{:.3} s{}\n",
            sp.case,
            sp.n,
            sp.run_process_s.min,
            sp.run_process_s.median,
            sp.run_process_s.max,
            sp.case_s.min,
            sp.case_s.median,
            sp.case_s.max,
            sp.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }
    if let Some(v) = &r.vm {
        s.push_str(&format!(
            "VM: bench VM wall {:.1} s = boot+poweroff {:.1} s + bench {:.1} s\n",
            v.bench_vm_wall_s, v.boot_and_poweroff_s, v.bench_in_guest_s
        ));
        if let Some(st) = &v.suite {
            s.push_str(&format!(
                "VM suite{}: {} cases ({} executed), {} boot(s) {:.1} s, suite {:.1} s ({:.2} s/case), total {:.1} s{}\n",
                if st.filter.is_empty() { String::new() } else { format!(" --filter {}", st.filter.join(",")) },
                st.cases,
                st.executed,
                st.vm_boots,
                st.vm_boot_s,
                st.suite_s,
                st.per_case_s,
                st.total_s,
                st.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            ));
        }
    }
    s.push_str(&format!("bench took {:.1} s\n", r.elapsed_s));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats() {
        let s = Stats::of(&[3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Stats::of(&[1.0, 2.0]).median, 1.5);
    }
}
