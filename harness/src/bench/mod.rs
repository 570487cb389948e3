//! `zcrx-conform bench`: receive throughput and CPU time per GiB of RECV_ZC (a NODEV zcrx
//! instance: every byte is copied into the user area, buffers come back through the RQ and
//! `ZCRX_CTRL_FLUSH_RQ`) against plain `recv()` on the same socket path (loopback TCP), and
//! the suite's own costs (one case process; with `--vm`, VM boot against suite time).
//!
//! Nothing here is asserted: under TCG absolute numbers mean little, so the report gives
//! RECV_ZC / recv() ratios next to min/median/max of each measurement.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::kernel::ring::Ring;
use crate::kernel::sys::{self, Mem};
use crate::kernel::uapi::*;
use crate::model::Feature;

/// Arguments of `zcrx-conform bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Boot this kernel in a VM and measure there (like `run --vm`).
    #[arg(long, num_args = 0..=1, default_missing_value = crate::vm::DEFAULT_KERNEL)]
    pub vm: Option<String>,
    /// Where the data path runs: nodev (loopback TCP) or netdevsim-zcrx (not yet).
    #[arg(long, default_value = "nodev")]
    pub topology: String,
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
    /// With --vm: also run the suite in a VM (`run --vm`) for VM boot against suite time;
    /// these filters narrow it (default: the whole suite).
    #[arg(long)]
    pub suite_filter: Vec<String>,
    /// With --vm: do not run the suite for boot/suite timings.
    #[arg(long)]
    pub no_suite: bool,
    /// With --vm: seconds before the VM is killed.
    #[arg(long, default_value_t = 1800)]
    pub vm_timeout: u64,
    /// Print the result as one tagged JSON line on stdout (used inside the VM).
    #[arg(long, hide = true)]
    pub emit_json: bool,
}

/// The tag of the JSON line the guest prints.
const TAG: &str = "@@ZCRX-BENCH@@ ";
/// The trivial case the spawn timing runs (any kernel with IORING_REGISTER_QUERY).
const TRIVIAL_CASE: (&str, &str) = ("cases/query/opcodes.yaml", "query.opcodes");
const AREA_PAGES: usize = 1024;
/// NIC mode: an area larger than what the socket can queue, so the driver never falls back
/// to copied skbs (as a deployment sizes it), and an RQ that holds every buffer.
const NIC_AREA_PAGES: usize = 8192;
const NIC_RQ_ENTRIES: u32 = 8192;

/// Where the bench's TCP flow runs: loopback (nodev) or across a namespace topology, and
/// which device a netdev registration binds (None = NODEV).
#[derive(Clone, Debug)]
struct Net {
    dut_addr: String,
    peer_ns: Option<std::path::PathBuf>,
    netdev: Option<(u32, u32)>,
}

impl Net {
    fn loopback() -> Net {
        Net { dut_addr: "127.0.0.1".into(), peer_ns: None, netdev: None }
    }
}
const RQ_ENTRIES: u32 = 1024;
const CQ_ENTRIES: u32 = 4096;
const STALL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Stats {
    fn of(v: &[f64]) -> Stats {
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
    /// From `run --vm` of the suite (vm::run_in_vm's timings), when it ran.
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

pub fn main(a: &BenchArgs) -> Result<(), String> {
    match a.topology.as_str() {
        "nodev" => {}
        "netdevsim-zcrx" => {}
        t => return Err(format!("bench --topology `{t}`: expected nodev or netdevsim-zcrx")),
    }
    let sizes = a.sizes.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>, _>>()?;
    if sizes.is_empty() || a.total_mib == 0 || a.repeat == 0 {
        return Err("bench: need at least one size, --total-mib > 0 and --repeat > 0".into());
    }
    let report = match &a.vm {
        Some(spec) => in_vm(a, spec)?,
        None => local(a, &sizes, "host")?,
    };
    let table = render(&report);
    if a.emit_json {
        eprint!("{table}");
        let line = serde_json::to_string(&report).map_err(|e| format!("bench: json: {e}"))?;
        println!("{TAG}{line}");
    } else {
        print!("{table}");
    }
    if let Some(p) = &a.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| format!("bench: json: {e}"))?;
        crate::report::write_atomic(p, &text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

/// "4K", "64KiB", "1M", "4096".
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: usize = t[..digits].parse().map_err(|_| format!("size `{s}`: expected e.g. 4K, 64K, 1M"))?;
    let mult = match t[digits..].to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return Err(format!("size `{s}`: expected e.g. 4K, 64K, 1M")),
    };
    match n.checked_mul(mult) {
        Some(v) if v > 0 && v <= 64 << 20 => Ok(v),
        _ => Err(format!("size `{s}`: must be 1 byte .. 64 MiB")),
    }
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

/// Measures in the running kernel.
fn local(a: &BenchArgs, sizes: &[usize], target: &str) -> Result<BenchReport, String> {
    let t0 = Instant::now();
    let probe = crate::model::Probe::run();
    let total = a.total_mib << 20;
    // A namespace topology stays up (and is torn down) with `_active`.
    let (net, _active) = match a.topology.as_str() {
        "nodev" => (Net::loopback(), None),
        name => {
            let f = crate::topology::load(name)?;
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
        topology: a.topology.clone(),
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Recv,
    RecvZc,
}

fn cpu_time(who: i32) -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `who` is RUSAGE_SELF or RUSAGE_THREAD, and ru is a valid out pointer.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// One loopback TCP transfer of `total` bytes written in `size`-byte chunks.
fn transfer(size: usize, total: u64, method: Method, net: &Net) -> Result<Sample, String> {
    let io = |what: &'static str| move |e: std::io::Error| format!("bench: {what}: {e}");
    let l = TcpListener::bind((net.dut_addr.as_str(), 0)).map_err(io("bind"))?;
    let addr = l.local_addr().map_err(io("local_addr"))?;
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let peer_ns = net.peer_ns.clone();
    let sender = std::thread::spawn(move || -> Result<f64, String> {
        if let Some(ns) = &peer_ns {
            crate::topology::enter(ns)?;
        }
        let mut s = TcpStream::connect(addr).map_err(|e| format!("bench: connect: {e}"))?;
        let chunk = crate::exec::pattern(0, size);
        // Start when the receiver is ready (registered, RECV_ZC armed).
        go_rx.recv().map_err(|_| "bench: receiver gone".to_string())?;
        let c0 = cpu_time(libc::RUSAGE_THREAD);
        let mut left = total;
        while left > 0 {
            let n = left.min(size as u64) as usize;
            s.write_all(&chunk[..n]).map_err(|e| format!("bench: send: {e}"))?;
            left -= n as u64;
        }
        let cpu = cpu_time(libc::RUSAGE_THREAD) - c0;
        drop(s);
        Ok(cpu)
    });
    let (conn, _) = l.accept().map_err(io("accept"))?;
    let r = match method {
        Method::Recv => recv_plain(conn, size, total, go_tx),
        Method::RecvZc => recv_zc(conn, total, go_tx, net.netdev),
    };
    let tx = sender.join().map_err(|_| "bench: sender thread panicked".to_string())?;
    let mut s = r?;
    s.tx_cpu_s = tx?;
    Ok(s)
}

fn recv_plain(mut conn: TcpStream, size: usize, total: u64, go: std::sync::mpsc::Sender<()>) -> Result<Sample, String> {
    let mut buf = vec![0u8; size];
    let (c0, p0) = (cpu_time(libc::RUSAGE_THREAD), cpu_time(libc::RUSAGE_SELF));
    let t0 = Instant::now();
    go.send(()).map_err(|_| "bench: sender gone".to_string())?;
    let mut got = 0u64;
    while got < total {
        match conn.read(&mut buf) {
            Ok(0) => return Err(format!("bench: recv: EOF after {got} of {total} bytes")),
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("bench: recv: {e}")),
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    Ok(Sample {
        bytes: got,
        wall_s: wall,
        rx_cpu_s: cpu_time(libc::RUSAGE_THREAD) - c0,
        proc_cpu_s: cpu_time(libc::RUSAGE_SELF) - p0,
        ..Default::default()
    })
}

/// A registered NODEV zcrx instance: its area, RQ region and what registration returned.
struct Zcrx {
    area: Mem,
    region: Mem,
    id: u32,
    offsets: ZcrxOffsets,
    rq_entries: u32,
    buf_shift: u32,
}

/// Registers NODEV, or on `netdev` = (ifindex, rxq) in the caller's namespace.
fn register(ring_fd: i32, netdev: Option<(u32, u32)>) -> Result<Zcrx, String> {
    let page = sys::page_size();
    let (pages, entries) = if netdev.is_some() { (NIC_AREA_PAGES, NIC_RQ_ENTRIES) } else { (AREA_PAGES, RQ_ENTRIES) };
    let area = Mem::anon(pages * page).map_err(|e| format!("bench: area mmap: {e}"))?;
    // The RQ header is at most 128 bytes (7.3); size the region for the entries after it.
    let region_size = sys::page_align(256 + 16 * entries as usize);
    let region = Mem::anon(region_size).map_err(|e| format!("bench: region mmap: {e}"))?;
    let mut area_reg = ZcrxAreaReg { addr: area.addr(), len: area.len() as u64, ..Default::default() };
    let mut region_desc = RegionDesc {
        user_addr: region.addr(),
        size: region_size as u64,
        flags: IORING_MEM_REGION_TYPE_USER,
        ..Default::default()
    };
    let (if_idx, if_rxq, flags) = match netdev {
        Some((i, q)) => (i, q, 0),
        None => (0, 0, ZCRX_REG_NODEV),
    };
    let mut ifq = ZcrxIfqReg {
        if_idx,
        if_rxq,
        rq_entries: entries,
        flags,
        area_ptr: &mut area_reg as *mut ZcrxAreaReg as u64,
        region_ptr: &mut region_desc as *mut RegionDesc as u64,
        ..Default::default()
    };
    sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_IFQ, &mut ifq as *mut ZcrxIfqReg as u64, 1)
        .map_err(|e| format!("bench: IORING_REGISTER_ZCRX_IFQ: {}", sys::errno_name(e)))?;
    // SAFETY: both are live locals the kernel wrote through the pointers above.
    let (ifq, area_reg) = unsafe { (std::ptr::read_volatile(&ifq), std::ptr::read_volatile(&area_reg)) };
    let buf_len = if ifq.rx_buf_len == 0 { page as u32 } else { ifq.rx_buf_len };
    if area_reg.rq_area_token != 0 {
        return Err(format!("bench: unexpected area token {:#x} for the first area", area_reg.rq_area_token));
    }
    Ok(Zcrx {
        area,
        region,
        id: ifq.zcrx_id,
        offsets: ifq.offsets,
        rq_entries: ifq.rq_entries,
        buf_shift: buf_len.trailing_zeros(),
    })
}

impl Zcrx {
    /// Writes RQEs for the buffers and publishes the tail (release).
    fn give_back(&self, offs: &[u64]) -> Result<(), String> {
        if offs.is_empty() {
            return Ok(());
        }
        let tail = self.region.atomic_u32(self.offsets.tail as usize).ok_or("bench: RQ tail outside the region")?;
        let mask = self.rq_entries.checked_sub(1).ok_or("bench: rq_entries is 0")?;
        let mut t = tail.load(std::sync::atomic::Ordering::Relaxed);
        for &off in offs {
            let slot = self.offsets.rqes as usize + (t & mask) as usize * 16;
            let rqe = ZcrxRqe { off: off & !((1u64 << self.buf_shift) - 1), len: 1 << self.buf_shift, pad: 0 };
            if !self.region.write(slot, as_bytes(&rqe)) {
                return Err("bench: RQE slot outside the region".into());
            }
            t = t.wrapping_add(1);
        }
        tail.store(t, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// ZCRX_CTRL_FLUSH_RQ: the only way buffers are recycled in NODEV mode.
    fn flush(&self, ring_fd: i32) -> Result<(), String> {
        let mut ctrl = ZcrxCtrl { zcrx_id: self.id, op: ZCRX_CTRL_FLUSH_RQ, ..Default::default() };
        sys::io_uring_register(ring_fd, IORING_REGISTER_ZCRX_CTRL, &mut ctrl as *mut ZcrxCtrl as u64, 0)
            .map(drop)
            .map_err(|e| format!("bench: ZCRX_CTRL_FLUSH_RQ: {}", sys::errno_name(e)))
    }
}

fn recv_zc(
    conn: TcpStream,
    total: u64,
    go: std::sync::mpsc::Sender<()>,
    netdev: Option<(u32, u32)>,
) -> Result<Sample, String> {
    let flags = IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQE32;
    let mut ring = Ring::new(64, flags, Some(CQ_ENTRIES)).map_err(|e| format!("bench: ring: {e}"))?;
    let z = register(ring.fd(), netdev)?;
    let sqe = Sqe {
        opcode: IORING_OP_RECV_ZC,
        ioprio: IORING_RECV_MULTISHOT,
        fd: conn.as_raw_fd(),
        user_data: 1,
        zcrx_ifq_idx: z.id,
        ..Default::default()
    };
    let area_len = z.area.len() as u64;
    let (c0, p0) = (cpu_time(libc::RUSAGE_THREAD), cpu_time(libc::RUSAGE_SELF));
    let t0 = Instant::now();
    ring.submit_sqe(&sqe).map_err(|e| format!("bench: RECV_ZC submit: {}", sys::errno_name(e)))?;
    go.send(()).map_err(|_| "bench: sender gone".to_string())?;
    let (mut got, mut cqes, mut rearms, mut flushes) = (0u64, 0u64, 0u64, 0u64);
    let mut done = Vec::with_capacity(CQ_ENTRIES as usize);
    let mut last_progress = Instant::now();
    while got < total {
        let batch = ring.wait(Duration::from_secs(1)).map_err(|e| format!("bench: wait: {}", sys::errno_name(e)))?;
        if batch.is_empty() {
            if last_progress.elapsed() > STALL {
                return Err(format!("bench: RECV_ZC stalled after {got} of {total} bytes"));
            }
            continue;
        }
        last_progress = Instant::now();
        let mut rearm = false;
        for c in batch.iter().filter(|c| c.user_data == 1) {
            if c.res > 0 {
                let off = c.big.ok_or("bench: data CQE without the zcrx payload")?[0];
                if off & IORING_ZCRX_AREA_MASK != 0 || (off & !IORING_ZCRX_AREA_MASK) + c.res as u64 > area_len {
                    return Err(format!("bench: CQE off {off:#x} len {} outside the area", c.res));
                }
                got += c.res as u64;
                cqes += 1;
                done.push(off);
            }
            if c.flags & IORING_CQE_F_MORE == 0 {
                if c.res == -libc::ENOMEM {
                    rearm = true;
                } else if c.res <= 0 && got < total {
                    return Err(format!(
                        "bench: RECV_ZC ended with res={} after {got} of {total} bytes",
                        sys::res_name(c.res as i64)
                    ));
                }
            }
        }
        z.give_back(&done)?;
        done.clear();
        // NIC mode: the page pool refills from the RQ by itself; NODEV needs the flush.
        if netdev.is_none() {
            z.flush(ring.fd())?;
            flushes += 1;
        }
        if rearm && got < total {
            ring.submit_sqe(&sqe).map_err(|e| format!("bench: re-arming RECV_ZC: {}", sys::errno_name(e)))?;
            rearms += 1;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let s = Sample {
        bytes: got,
        wall_s: wall,
        rx_cpu_s: cpu_time(libc::RUSAGE_THREAD) - c0,
        proc_cpu_s: cpu_time(libc::RUSAGE_SELF) - p0,
        cqes,
        rearms,
        flushes,
        ..Default::default()
    };
    // The ring (and with it the zcrx instance) goes before the socket.
    drop(ring);
    drop(z);
    drop(conn);
    Ok(s)
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
            .args(["--filter", id, "-q", "--json"])
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
fn in_vm(a: &BenchArgs, spec: &str) -> Result<BenchReport, String> {
    let ks = crate::vm::KernelSpec::parse(spec)?;
    if matches!(ks, crate::vm::KernelSpec::Host) {
        let sizes = a.sizes.iter().map(|s| parse_size(s)).collect::<Result<Vec<_>, _>>()?;
        return local(a, &sizes, "host");
    }
    crate::vm::provision()?;
    let kernel = crate::vm::resolve(&ks)?;
    let args: Vec<String> = vec![
        "bench".into(),
        "--emit-json".into(),
        "--topology".into(),
        a.topology.clone(),
        "--sizes".into(),
        a.sizes.join(","),
        "--total-mib".into(),
        a.total_mib.to_string(),
        "--repeat".into(),
        a.repeat.to_string(),
        "--spawns".into(),
        a.spawns.to_string(),
    ];
    let mut env = vec![("ZCRX_CONFORM_ROOT".to_string(), crate::paths::repo_root().display().to_string())];
    if a.topology != "nodev" {
        env.extend(crate::vm::guest_tools(&kernel, std::slice::from_ref(&a.topology))?);
    }
    eprintln!("bench: booting {spec} ({})", kernel.display());
    let t0 = Instant::now();
    let out = crate::vm::run_command_in_vm(&kernel, &args, &env, Duration::from_secs(a.vm_timeout))?;
    let wall = t0.elapsed().as_secs_f64();
    let line = out
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(TAG))
        .ok_or_else(|| format!("bench: the guest printed no result line; its output:\n{out}"))?;
    let mut report: BenchReport =
        serde_json::from_str(line).map_err(|e| format!("bench: the guest's result line: {e}"))?;
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
        vt.suite = Some(suite_in_vm(spec, &kernel, &a.suite_filter));
    }
    report.vm = Some(vt);
    Ok(report)
}

fn suite_in_vm(spec: &str, kernel: &std::path::Path, filter: &[String]) -> SuiteTimings {
    let run = crate::run::RunOpts {
        topologies: vec!["host".into(), "nodev".into()],
        selection: crate::run::Selection { filter: filter.to_vec(), ..Default::default() },
        timeout: 30.0,
        stream: false,
        quiet: true,
        start_at: 0,
        self_check: false,
    };
    let o = crate::vm::VmOpts {
        paths: vec![crate::paths::default_case_dir()],
        run,
        shard: None,
        memory: "2G".into(),
        cpus: 2,
        env: vec![],
    };
    let mut st = SuiteTimings { filter: filter.to_vec(), ..Default::default() };
    match crate::vm::run_in_vm(spec, kernel, &o) {
        Ok(r) => {
            let t = |k: &str| r.timings.iter().find(|(n, _)| n == k).map_or(0.0, |(_, v)| *v);
            st.cases = r.cases.len();
            st.executed = r.cases.iter().filter(|c| c.status != crate::model::Status::Skip).count();
            st.vm_boots = t("vm_boots");
            st.vm_boot_s = t("vm_boot_s");
            st.suite_s = t("suite_s");
            st.total_s = t("total_s");
            st.per_case_s = st.suite_s / st.cases.max(1) as f64;
            st.error = r.aborted;
        }
        Err(e) => st.error = Some(e),
    }
    st
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
    fn sizes() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err() && parse_size("x").is_err() && parse_size("1G").is_err());
    }

    #[test]
    fn stats() {
        let s = Stats::of(&[3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Stats::of(&[1.0, 2.0]).median, 1.5);
    }

    #[test]
    fn recv_loopback() {
        let s = transfer(4096, 1 << 20, Method::Recv, &Net::loopback()).expect("loopback transfer");
        assert_eq!(s.bytes, 1 << 20);
        assert!(s.wall_s > 0.0);
    }
}
