//! The qualification document: its JSON form ([`Qualification`], `schema_version` 1, fields
//! only ever added) and its HTML page. Built from the NIC facts, the run of the NIC-path cases
//! and the before/after settings; the verdicts are decided here and nowhere else.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::nic::NicFacts;
use super::settings::SettingDiff;
use super::soak::SoakReport;
use crate::model::{CaseReport, RunReport, Status};
use crate::report::html::escape;

pub const SCHEMA_VERSION: u32 = 1;

/// A requirement of a driver's zcrx support and the cases that are its evidence (case ids, or
/// their prefixes before a matrix's `[...]`).
pub struct Requirement {
    pub id: &'static str,
    pub text: &'static str,
    pub evidence: &'static [&'static str],
}

/// What a driver must do, in the order of the report.
pub const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        id: "R1",
        text: "An rx queue of the NIC can be bound to a zcrx interface queue (IORING_REGISTER_ZCRX_IFQ)",
        evidence: &["nic.zcrx_register"],
    },
    Requirement {
        id: "R2",
        text: "Registration is refused (EINVAL) without header split or with hds-thresh above 0, and accepted once they are set back",
        evidence: &["nic.hds_settings"],
    },
    Requirement {
        id: "R3",
        text: "Payload arrives zero-copy in the user area, byte-exact, with the refill queue returning buffers",
        evidence: &["nic.zero_copy"],
    },
    Requirement {
        id: "R4",
        text: "The refill queue wraps and the page pool keeps refilling from it under sustained traffic",
        evidence: &["nic.rq_wrap_refill"],
    },
    Requirement {
        id: "R5",
        text: "No kernel warning, BUG, Oops or sanitizer report while the cases ran",
        evidence: &["*"],
    },
    Requirement {
        id: "R6",
        text: "Every readable DUT setting is the same after the qualification as before it",
        evidence: &["settings-diff"],
    },
];

/// pass, fail, or not tested (no evidence ran).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    NotTested,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequirementResult {
    pub id: String,
    pub requirement: String,
    pub verdict: Verdict,
    /// The case ids (or `settings-diff`) that decided it.
    pub evidence: Vec<String>,
}

/// Why something was not tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Why {
    /// The kernel lacks a feature or is outside a case's version range.
    Kernel,
    /// The NIC, its driver or the topology cannot provide what the case needs.
    Hardware,
    /// The case changes a DUT setting and the topology is not `destructive: true`.
    NotDestructive,
    /// Anything else (no privileges, a tool missing).
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Untested {
    pub case: String,
    pub why: Why,
    pub reason: String,
}

/// The kernel the NIC was qualified on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelFacts {
    pub release: String,
    /// SHA-256 of the kernel config, and where it was read.
    pub config_sha256: Option<String>,
    pub config_source: String,
}

/// The qualification report (qualification.json).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Qualification {
    pub schema_version: u32,
    /// The crate version and the git commit it was built from.
    pub tool_version: String,
    pub tool_commit: String,
    pub topology: String,
    pub destructive: bool,
    pub nic: NicFacts,
    pub kernel: KernelFacts,
    pub requirements: Vec<RequirementResult>,
    pub untested: Vec<Untested>,
    pub settings: Vec<SettingDiff>,
    /// Settings that could not be read before or after (then R6 is not tested).
    pub settings_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakReport>,
    pub verdict: Verdict,
    /// The run of the cases (the usual report.json run).
    pub run: RunReport,
}

fn matches(case_id: &str, ev: &str) -> bool {
    ev == "*" || case_id == ev || case_id.strip_prefix(ev).is_some_and(|r| r.starts_with('['))
}

/// The verdict of each requirement from the cases and the settings difference.
pub fn judge(cases: &[CaseReport], settings: &[SettingDiff], settings_ok: bool) -> Vec<RequirementResult> {
    REQUIREMENTS
        .iter()
        .map(|r| {
            let (verdict, evidence) = if r.evidence == ["settings-diff"] {
                let v = if !settings_ok {
                    Verdict::NotTested
                } else if settings.iter().any(|s| s.changed) {
                    Verdict::Fail
                } else {
                    Verdict::Pass
                };
                (v, vec!["settings-diff".to_string()])
            } else if r.evidence == ["*"] {
                let ran: Vec<&CaseReport> = cases.iter().filter(|c| c.status != Status::Skip).collect();
                let splat = ran.iter().filter(|c| c.kernel_log.iter().any(|l| crate::model::is_splat(l)));
                let bad: Vec<String> = splat.map(|c| c.id.clone()).collect();
                match (ran.is_empty(), bad.is_empty()) {
                    (true, _) => (Verdict::NotTested, vec![]),
                    (false, true) => (Verdict::Pass, ran.iter().map(|c| c.id.clone()).collect()),
                    (false, false) => (Verdict::Fail, bad),
                }
            } else {
                let ev: Vec<&CaseReport> =
                    cases.iter().filter(|c| r.evidence.iter().any(|e| matches(&c.id, e))).collect();
                let ran: Vec<&&CaseReport> = ev.iter().filter(|c| c.status != Status::Skip).collect();
                let failed: Vec<String> = ran
                    .iter()
                    .filter(|c| matches!(c.status, Status::Fail | Status::Xpass | Status::Xfail))
                    .map(|c| c.id.clone())
                    .collect();
                if ran.is_empty() {
                    (Verdict::NotTested, ev.iter().map(|c| c.id.clone()).collect())
                } else if !failed.is_empty() {
                    (Verdict::Fail, failed)
                } else if ran.len() < ev.len() {
                    // Part of the evidence did not run: what ran passed, but the requirement is
                    // not proven.
                    (Verdict::NotTested, ev.iter().map(|c| c.id.clone()).collect())
                } else {
                    (Verdict::Pass, ran.iter().map(|c| c.id.clone()).collect())
                }
            };
            RequirementResult { id: r.id.into(), requirement: r.text.into(), verdict, evidence }
        })
        .collect()
}

/// The skipped cases and why, sorted into [`Why`] by the reason the planner or case gave.
pub fn untested(cases: &[CaseReport]) -> Vec<Untested> {
    cases
        .iter()
        .filter(|c| c.status == Status::Skip)
        .map(|c| {
            let m = c.message.as_str();
            let why = if m.contains("does not allow changing") || m.contains("is destructive") {
                Why::NotDestructive
            } else if m.contains("kernel") || m.contains("IORING_REGISTER_QUERY") || m.contains("lacks") {
                Why::Kernel
            } else if m.contains("topology") || m.contains("device") || m.contains("debugfs") {
                Why::Hardware
            } else {
                Why::Other
            };
            Untested { case: c.id.clone(), why, reason: c.message.clone() }
        })
        .collect()
}

/// The overall verdict: fail when a requirement or the soak failed, pass when every
/// requirement passed, else not tested.
pub fn overall(reqs: &[RequirementResult], soak: Option<&SoakReport>) -> Verdict {
    if reqs.iter().any(|r| r.verdict == Verdict::Fail) || soak.is_some_and(|s| !s.failures.is_empty()) {
        Verdict::Fail
    } else if reqs.iter().all(|r| r.verdict == Verdict::Pass) {
        Verdict::Pass
    } else {
        Verdict::NotTested
    }
}

fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
        Verdict::NotTested => "not tested",
    }
}

/// The report as one self-contained HTML page; every value escaped.
pub fn html(q: &Qualification) -> String {
    let mut s = String::new();
    let e = |t: &str| escape(t);
    let title = format!("zcrx qualification: {} ({})", q.nic.interface, q.nic.driver.text());
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #999;padding:.3em .6em;text-align:left;vertical-align:top}}\
         .pass{{background:#dfd}}.fail{{background:#fdd}}.not_tested{{background:#eee}}</style></head><body>\n\
         <h1>{}</h1>\n<p>Verdict: <b class=\"{}\">{}</b></p>\n",
        e(&title),
        e(&title),
        e(&serde_json::to_value(q.verdict).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()),
        word(q.verdict)
    );
    let row = |s: &mut String, k: &str, v: &str| {
        let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", e(k), e(v));
    };
    s.push_str("<h2>Device</h2><table>\n");
    let n = &q.nic;
    row(
        &mut s,
        "interface",
        &format!("{}{}", n.interface, n.netns.as_ref().map(|x| format!(" (netns {x})")).unwrap_or_default()),
    );
    for (k, f) in [
        ("driver", &n.driver),
        ("driver version", &n.driver_version),
        ("firmware", &n.firmware),
        ("bus", &n.bus),
        ("bus address", &n.bus_address),
        ("PCI id", &n.pci_id),
        ("queues", &n.queues),
        ("header split", &n.header_split),
        ("hds-thresh range", &n.hds_thresh_range),
        ("rx_buf_len", &n.rx_buf_len),
        ("RSS", &n.rss),
        ("RSS contexts", &n.rss_contexts),
        ("ntuple", &n.ntuple),
        ("IOMMU translates DMA", &n.iommu),
    ] {
        row(&mut s, k, &f.text());
    }
    s.push_str("</table>\n<h2>Kernel and tool</h2><table>\n");
    row(&mut s, "kernel release", &q.kernel.release);
    row(
        &mut s,
        "kernel config sha256",
        &format!("{} ({})", q.kernel.config_sha256.as_deref().unwrap_or("not available"), q.kernel.config_source),
    );
    row(&mut s, "tool", &format!("zcrx-conform {} (commit {})", q.tool_version, q.tool_commit));
    row(&mut s, "topology", &format!("{} (destructive: {})", q.topology, q.destructive));
    row(&mut s, "target", &q.run.target);
    s.push_str("</table>\n<h2>Requirements</h2><table><tr><th>id</th><th>requirement</th><th>verdict</th><th>evidence</th></tr>\n");
    for r in &q.requirements {
        let class = serde_json::to_value(r.verdict).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            e(&r.id),
            e(&r.requirement),
            e(&class),
            word(r.verdict),
            e(&r.evidence.join(", "))
        );
    }
    s.push_str("</table>\n<h2>Not tested</h2>\n");
    if q.untested.is_empty() {
        s.push_str("<p>Every NIC-path case ran.</p>\n");
    } else {
        s.push_str("<table><tr><th>case</th><th>why</th><th>reason</th></tr>\n");
        for u in &q.untested {
            let why = serde_json::to_value(u.why).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            let _ = writeln!(s, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", e(&u.case), e(&why), e(&u.reason));
        }
        s.push_str("</table>\n");
    }
    s.push_str("<h2>Cases</h2><table><tr><th>case</th><th>status</th><th>seconds</th><th>message</th></tr>\n");
    for c in &q.run.cases {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
            e(&c.id),
            e(c.status.word()),
            c.duration_s,
            e(&c.message)
        );
    }
    s.push_str("</table>\n<h2>DUT settings before and after</h2>\n");
    if let Some(err) = &q.settings_error {
        let _ = writeln!(s, "<p class=\"not_tested\">Not compared: {}</p>", e(err));
    }
    s.push_str("<table><tr><th>setting</th><th>before</th><th>after</th><th></th></tr>\n");
    for d in &q.settings {
        let _ = writeln!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if d.changed { "fail" } else { "pass" },
            e(&d.name),
            e(d.before.as_deref().unwrap_or("(absent)")),
            e(d.after.as_deref().unwrap_or("(absent)")),
            if d.changed { "CHANGED" } else { "same" }
        );
    }
    s.push_str("</table>\n");
    if let Some(soak) = &q.soak {
        super::soak::html(&mut s, soak);
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qualify::nic::Fact;

    fn sample() -> Qualification {
        let v = |s: &str| Fact::Value(s.into());
        let mut run = RunReport::new("host", crate::model::Probe::default(), &["nic".to_string()]);
        let mut c = CaseReport::new("nic.zcrx_register");
        c.status = Status::Pass;
        let mut h = CaseReport::new("nic.hds_settings[1]");
        h.message = "topology nic does not allow changing hds-thresh".into();
        run.cases = vec![c, h];
        Qualification {
            schema_version: SCHEMA_VERSION,
            tool_version: "0.1.0 (abc)".into(),
            tool_commit: "abc".into(),
            topology: "nic".into(),
            destructive: false,
            nic: NicFacts {
                interface: "eth<1>".into(),
                netns: None,
                driver: v("drv<script>alert(1)</script>"),
                driver_version: v("1"),
                firmware: Fact::Unavailable("the driver reports no firmware version".into()),
                bus: v("pci"),
                bus_address: v("0000:01:00.0"),
                pci_id: v("15b3:1021 (subsystem 15b3:0028)"),
                queues: v("8"),
                header_split: v("supported, currently on"),
                hds_thresh_range: v("0..=1024"),
                rx_buf_len: v("4096"),
                rss: v("indirection table 128 entries"),
                rss_contexts: v("supported"),
                ntuple: v("enabled"),
                iommu: v("yes"),
            },
            kernel: KernelFacts { release: "7.3.4".into(), config_sha256: None, config_source: "none".into() },
            requirements: judge(&run.cases, &[], true),
            untested: untested(&run.cases),
            settings: vec![SettingDiff {
                name: "rings.hds_thresh".into(),
                before: Some("0".into()),
                after: Some("0".into()),
                changed: false,
            }],
            settings_error: None,
            soak: None,
            verdict: Verdict::NotTested,
            run,
        }
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    }

    /// The JSON form is a published schema: names change only with `schema_version`.
    #[test]
    fn json_schema_is_stable() {
        let j = serde_json::to_value(sample()).expect("json");
        let mut top = keys(&j);
        top.sort();
        assert_eq!(
            top,
            [
                "destructive",
                "kernel",
                "nic",
                "requirements",
                "run",
                "schema_version",
                "settings",
                "settings_error",
                "tool_commit",
                "tool_version",
                "topology",
                "untested",
                "verdict"
            ]
        );
        let mut nic = keys(&j["nic"]);
        nic.sort();
        assert_eq!(
            nic,
            [
                "bus",
                "bus_address",
                "driver",
                "driver_version",
                "firmware",
                "hds_thresh_range",
                "header_split",
                "interface",
                "iommu",
                "netns",
                "ntuple",
                "pci_id",
                "queues",
                "rss",
                "rss_contexts",
                "rx_buf_len"
            ]
        );
        assert_eq!(j["nic"]["driver_version"], serde_json::json!({"value": "1"}));
        assert_eq!(j["nic"]["firmware"], serde_json::json!({"unavailable": "the driver reports no firmware version"}));
        // (serde_json's maps are sorted.)
        assert_eq!(keys(&j["kernel"]), ["config_sha256", "config_source", "release"]);
        assert_eq!(keys(&j["requirements"][0]), ["evidence", "id", "requirement", "verdict"]);
        assert_eq!(keys(&j["untested"][0]), ["case", "reason", "why"]);
        assert_eq!(keys(&j["settings"][0]), ["after", "before", "changed", "name"]);
        assert_eq!(j["verdict"], "not_tested");
        assert_eq!(j["untested"][0]["why"], "not_destructive");
        assert_eq!(j["schema_version"], 1);
        // And it reads back.
        let back: Qualification = serde_json::from_value(j.clone()).expect("reads back");
        assert_eq!(serde_json::to_value(back).expect("json"), j);
    }

    #[test]
    fn verdicts_follow_the_evidence() {
        let q = sample();
        let by = |id: &str| q.requirements.iter().find(|r| r.id == id).expect("requirement").clone();
        assert_eq!(by("R1").verdict, Verdict::Pass);
        assert_eq!(by("R1").evidence, ["nic.zcrx_register"]);
        // The only evidence of R2 was skipped: not tested, with the case named.
        assert_eq!(by("R2").verdict, Verdict::NotTested);
        assert_eq!(by("R2").evidence, ["nic.hds_settings[1]"]);
        assert_eq!(by("R3").verdict, Verdict::NotTested);
        assert_eq!(by("R6").verdict, Verdict::Pass);
        // A changed setting fails R6 and the whole qualification; a failed case fails its requirement.
        let changed =
            [SettingDiff { name: "sysfs.mtu".into(), before: Some("1500".into()), after: None, changed: true }];
        let r = judge(&q.run.cases, &changed, true);
        assert_eq!(r[5].verdict, Verdict::Fail);
        assert_eq!(overall(&r, None), Verdict::Fail);
        assert_eq!(judge(&q.run.cases, &[], false)[5].verdict, Verdict::NotTested);
        let mut cases = q.run.cases.clone();
        cases[0].status = Status::Fail;
        cases[0].kernel_log = vec!["WARNING: CPU: 0 PID: 1 at net/core/page_pool.c:1 x".into()];
        let r = judge(&cases, &[], true);
        assert_eq!((r[0].verdict, r[4].verdict), (Verdict::Fail, Verdict::Fail));
        assert_eq!(r[4].evidence, ["nic.zcrx_register"]);
        // A soak failure fails an otherwise passing qualification.
        let all_pass: Vec<RequirementResult> =
            r.iter().map(|x| RequirementResult { verdict: Verdict::Pass, ..x.clone() }).collect();
        assert_eq!(overall(&all_pass, None), Verdict::Pass);
        let soak = SoakReport { failures: vec!["leak".into()], ..Default::default() };
        assert_eq!(overall(&all_pass, Some(&soak)), Verdict::Fail);
    }

    #[test]
    fn html_escapes_everything_from_the_device_and_the_cases() {
        let page = html(&sample());
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("drv&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("eth&lt;1&gt;"));
        assert!(page.contains("not available: the driver reports no firmware version"));
    }
}
