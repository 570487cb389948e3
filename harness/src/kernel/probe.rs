//! Asks the running kernel what it supports: IORING_REGISTER_QUERY (opcodes, zcrx,
//! zcrx_event), IORING_REGISTER_PROBE for RECV_ZC, CQE_MIXED ring set-up, kernel
//! release and CAP_NET_ADMIN. Never fails: what cannot be asked is reported so.

use std::collections::BTreeSet;

use crate::kernel::ring::Ring;
use crate::kernel::sys;
use crate::kernel::uapi::*;
use crate::model::probe::*;

fn query_one<T: Copy + Default>(op: u32) -> Result<QueryAnswer<T>, i32> {
    let mut data = T::default();
    let mut hdr = QueryHdr {
        query_data: &mut data as *mut T as u64,
        query_op: op,
        size: std::mem::size_of::<T>() as u32,
        ..Default::default()
    };
    sys::io_uring_register(-1, IORING_REGISTER_QUERY, &mut hdr as *mut QueryHdr as u64, 0)?;
    Ok(QueryAnswer { result: hdr.result, data: (hdr.result == 0).then_some(data) })
}

impl Probe {
    pub fn run() -> Probe {
        let release = sys::kernel_release();
        let mut p = Probe {
            kernel_version: sys::parse_version(&release),
            kernel_release: release,
            cap_net_admin: super::creds::has_cap_net_admin(),
            euid: nix::unistd::geteuid().as_raw(),
            ..Default::default()
        };
        match query_one::<QueryOpcodes>(IO_URING_QUERY_OPCODES) {
            Ok(a) => {
                p.opcodes = Some(QueryAnswer {
                    result: a.result,
                    data: a.data.map(|d| OpcodesInfo {
                        nr_request_opcodes: d.nr_request_opcodes,
                        nr_register_opcodes: d.nr_register_opcodes,
                        feature_flags: d.feature_flags,
                        ring_setup_flags: d.ring_setup_flags,
                        enter_flags: d.enter_flags,
                        sqe_flags: d.sqe_flags,
                        nr_query_opcodes: d.nr_query_opcodes,
                    }),
                });
                if let Ok(a) = query_one::<QueryZcrx>(IO_URING_QUERY_ZCRX) {
                    p.zcrx = Some(QueryAnswer {
                        result: a.result,
                        data: a.data.map(|d| ZcrxInfo {
                            register_flags: d.register_flags,
                            area_flags: d.area_flags,
                            nr_ctrl_opcodes: d.nr_ctrl_opcodes,
                            features: d.features,
                            rq_hdr_size: d.rq_hdr_size,
                            rq_hdr_alignment: d.rq_hdr_alignment,
                        }),
                    });
                }
                if let Ok(a) = query_one::<QueryZcrxEvent>(IO_URING_QUERY_ZCRX_EVENT) {
                    p.zcrx_event = Some(QueryAnswer {
                        result: a.result,
                        data: a.data.map(|d| ZcrxEventInfo {
                            event_flags: d.event_flags,
                            stats_size: d.stats_size,
                            stats_off_alignment: d.stats_off_alignment,
                        }),
                    });
                }
            }
            Err(e) => p.query_error = Some(sys::errno_name(e)),
        }
        let std_flags = IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQE32;
        if let Ok(r) = Ring::new(8, std_flags, None) {
            p.recv_zc = r.probe_op(IORING_OP_RECV_ZC);
        }
        let mixed = IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQE_MIXED;
        p.cqe_mixed = Ring::new(8, mixed, None).is_ok();
        p.kmsg = std::fs::File::open("/dev/kmsg").is_ok();
        p.kmemleak = super::debug::kmemleak_present();
        p.fault_injection = super::debug::fault_injection_present();
        p.features = p.derive_features();
        p
    }

    fn derive_features(&self) -> BTreeSet<Feature> {
        let mut f = BTreeSet::new();
        let nr_reg = self.opcodes.as_ref().and_then(|o| o.data.as_ref()).map(|d| d.nr_register_opcodes);
        let ver = self.kernel_version.unwrap_or((0, 0, 0));
        // Without QUERY, fall back on the release: ZCRX_IFQ appeared in 6.15.
        let has_zcrx = match nr_reg {
            Some(n) => n > IORING_REGISTER_ZCRX_IFQ,
            None => ver >= (6, 15, 0),
        };
        if has_zcrx {
            f.insert(Feature::Zcrx);
        }
        if self.recv_zc == Some(true) {
            f.insert(Feature::RecvZc);
        }
        if self.query_error.is_none() && self.opcodes.is_some() {
            f.insert(Feature::Query);
        }
        if nr_reg.is_some_and(|n| n > IORING_REGISTER_ZCRX_CTRL) {
            f.insert(Feature::Ctrl);
        }
        if let Some(z) = self.zcrx.as_ref().and_then(|z| z.data.as_ref()) {
            f.insert(Feature::QueryZcrx);
            if z.register_flags & ZCRX_REG_NODEV as u64 != 0 {
                f.insert(Feature::Nodev);
            }
            if z.register_flags & ZCRX_REG_IMPORT as u64 != 0 {
                f.insert(Feature::Import);
            }
            if f.contains(&Feature::Ctrl) {
                for (op, feat) in [
                    (ZCRX_CTRL_FLUSH_RQ, Feature::FlushRq),
                    (ZCRX_CTRL_EXPORT, Feature::Export),
                    (ZCRX_CTRL_ARM_EVENT, Feature::ArmEvent),
                    (ZCRX_CTRL_ADD_AREA, Feature::AddArea),
                ] {
                    if z.nr_ctrl_opcodes > op {
                        f.insert(feat);
                    }
                }
            }
            if z.features as u64 & ZCRX_FEATURE_EVENT != 0 {
                f.insert(Feature::Event);
            }
            if z.features as u64 & ZCRX_FEATURE_RX_PAGE_SIZE != 0 {
                f.insert(Feature::RxBufLen);
            }
        }
        if self.cqe_mixed {
            f.insert(Feature::CqeMixed);
        }
        if self.fault_injection {
            f.insert(Feature::FaultInjection);
        }
        f
    }

    /// How the kernel tells whether it has `feat`: (the uapi name, where the answer came from).
    fn feature_source(&self, feat: Feature) -> (&'static str, String) {
        let zq = match &self.zcrx {
            Some(a) if a.data.is_none() => format!("IO_URING_QUERY_ZCRX result {}", sys::res_name(a.result as i64)),
            Some(_) => "per IO_URING_QUERY_ZCRX".into(),
            None => "IORING_REGISTER_QUERY unavailable".into(),
        };
        let what = match feat {
            Feature::Zcrx => "IORING_REGISTER_ZCRX_IFQ",
            Feature::RecvZc => "IORING_OP_RECV_ZC",
            Feature::Query => "IORING_REGISTER_QUERY",
            Feature::QueryZcrx => "IO_URING_QUERY_ZCRX",
            Feature::Nodev => "ZCRX_REG_NODEV",
            Feature::Import => "ZCRX_REG_IMPORT",
            Feature::Ctrl => "IORING_REGISTER_ZCRX_CTRL",
            Feature::FlushRq => "ZCRX_CTRL_FLUSH_RQ",
            Feature::Export => "ZCRX_CTRL_EXPORT",
            Feature::ArmEvent => "ZCRX_CTRL_ARM_EVENT",
            Feature::AddArea => "ZCRX_CTRL_ADD_AREA",
            Feature::Event => "ZCRX_FEATURE_EVENT",
            Feature::RxBufLen => "ZCRX_FEATURE_RX_PAGE_SIZE",
            Feature::CqeMixed => "IORING_SETUP_CQE_MIXED",
            Feature::FaultInjection => {
                return ("fault injection", "no /proc/self/fail-nth or no failslab/fail_page_alloc in debugfs".into())
            }
        };
        (what, zq)
    }

    /// Why a feature is missing, in words a user can act on.
    pub fn missing_reason(&self, feat: Feature) -> String {
        let (what, zq) = self.feature_source(feat);
        format!("kernel {} lacks {what} ({zq})", self.kernel_release)
    }

    /// Why a case about kernels without `feat` does not run here.
    pub fn present_reason(&self, feat: Feature) -> String {
        let (what, zq) = self.feature_source(feat);
        format!("kernel {} has {what} ({zq}); the case is about kernels without it", self.kernel_release)
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.features
            .iter()
            .map(|f| serde_json::to_value(f).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())
            .collect()
    }

    /// Human-readable summary for `zcrx-conform probe`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let line = |s: &mut String, k: &str, v: String| s.push_str(&format!("{k:<22} {v}\n"));
        line(&mut s, "kernel", self.kernel_release.clone());
        line(
            &mut s,
            "euid / CAP_NET_ADMIN",
            format!("{} / {}", self.euid, if self.cap_net_admin { "yes" } else { "no" }),
        );
        match (&self.query_error, &self.opcodes) {
            (Some(e), _) => line(&mut s, "REGISTER_QUERY", format!("unsupported ({e})")),
            (None, Some(o)) => match &o.data {
                Some(d) => line(
                    &mut s,
                    "QUERY opcodes",
                    format!(
                        "request ops {}, register ops {}, query ops {}, features {:#x}, setup flags {:#x}",
                        d.nr_request_opcodes,
                        d.nr_register_opcodes,
                        d.nr_query_opcodes,
                        d.feature_flags,
                        d.ring_setup_flags
                    ),
                ),
                None => line(&mut s, "QUERY opcodes", format!("result {}", sys::res_name(o.result as i64))),
            },
            _ => {}
        }
        match &self.zcrx {
            Some(QueryAnswer { data: Some(z), .. }) => line(
                &mut s,
                "QUERY zcrx",
                format!(
                    "register_flags {:#x}, area_flags {:#x}, ctrl ops {}, features {:#x}, rq_hdr_size {}, rq_hdr_alignment {}",
                    z.register_flags, z.area_flags, z.nr_ctrl_opcodes, z.features, z.rq_hdr_size, z.rq_hdr_alignment
                ),
            ),
            Some(a) => line(&mut s, "QUERY zcrx", format!("unsupported (result {})", sys::res_name(a.result as i64))),
            None => line(&mut s, "QUERY zcrx", "unsupported (no IORING_REGISTER_QUERY)".into()),
        }
        match &self.zcrx_event {
            Some(QueryAnswer { data: Some(e), .. }) => line(
                &mut s,
                "QUERY zcrx_event",
                format!(
                    "event_flags {:#x}, stats_size {}, stats_off_alignment {}",
                    e.event_flags, e.stats_size, e.stats_off_alignment
                ),
            ),
            Some(a) => {
                line(&mut s, "QUERY zcrx_event", format!("unsupported (result {})", sys::res_name(a.result as i64)))
            }
            None => line(&mut s, "QUERY zcrx_event", "unsupported".into()),
        }
        line(
            &mut s,
            "RECV_ZC (op 58)",
            match self.recv_zc {
                Some(true) => "supported".into(),
                Some(false) => "not supported".into(),
                None => "unknown (probe failed)".into(),
            },
        );
        line(&mut s, "CQE_MIXED rings", if self.cqe_mixed { "yes" } else { "no" }.into());
        line(&mut s, "/dev/kmsg watched", if self.kmsg { "yes" } else { "no" }.into());
        line(
            &mut s,
            "kmemleak",
            if self.kmemleak { "yes (leaks are scanned for)" } else { "not in this kernel" }.into(),
        );
        line(&mut s, "features", self.feature_names().join(" "));
        s
    }
}
