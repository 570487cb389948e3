//! KernelCI KCIDB export: runs as KCIDB I/O JSON, schema v4.
//!
//! The document is `{"version": {"major": 4, "minor": 0}, "checkouts": [...], "builds": [...],
//! "tests": [...]}`. It uses only fields that exist since v4.0, so it declares 4.0: every v4.x
//! consumer accepts it, and kcidb-io upgrades it to v5 (`ci/check-pipelines.sh` checks all of
//! that against the schemas shipped in the `kcidb-io` package).
//!
//! What each object stands for:
//!
//! - **checkout** and **build**: the kernel that was tested, one per kernel release
//!   (`<origin>:<release>`). Debian's kernels are prebuilt packages, so the build is Debian's
//!   and the checkout is its source version; a host run's is the running kernel's.
//! - **test**: one per case and run, `<origin>:<release>:<topologies>:<run start>:<case id>`, with
//!   the dotted `path` `zcrx.<case id>` (characters KCIDB paths cannot hold become `_`; the matrix
//!   values of a case make the last component). A run that stopped early (VM died, interrupted)
//!   adds one `zcrx` test with status ERROR and the reason, and each selected case it did not
//!   run (to its end: the one running at SIGINT included) with status MISS.
//!
//! Statuses: pass → PASS, fail → FAIL (ERROR when the harness itself failed: a case report
//! marked `harness_error`), skip → SKIP, xfail (a declared known deviation) → FAIL with
//! `waived: true`, xpass (the deviation no longer reproduces: the kernel now conforms) → PASS.
//!
//! Times: a [`RunReport`] carries durations, not wall-clock times, so the runs are taken to have
//! run one after another and to have ended at the time of the export, and each case to have
//! started when the one before it ended. `misc.start_time_estimated` says so.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::model::Status;
use crate::model::{CaseReport, RunReport};

pub use super::time::rfc3339;
use super::time::{duration, utc_parts};

/// The schema version the export declares.
pub const SCHEMA_MAJOR: u64 = 4;
pub const SCHEMA_MINOR: u64 = 0;
/// Origin used when the one given has no usable character.
pub const DEFAULT_ORIGIN: &str = "zcrx_conform";
/// Root of every test path.
pub const PATH_ROOT: &str = "zcrx";
/// `maxLength` of `log_excerpt` in the schema (characters).
pub const LOG_EXCERPT_MAX: usize = 16384;

const TRUNCATED: &str = "\n[... truncated by zcrx-conform]";

/// Exports `runs` as one KCIDB v4 document; the runs are taken to have ended now.
///
/// `origin` names the CI system; KCIDB allows `[a-z0-9_]` only, so other characters become `_`
/// and an empty origin becomes [`DEFAULT_ORIGIN`].
pub fn export(runs: &[&RunReport], origin: &str) -> Value {
    export_at(runs, origin, SystemTime::now())
}

/// [`export`] with the time the last run ended.
pub fn export_at(runs: &[&RunReport], origin: &str, ended: SystemTime) -> Value {
    let origin = sanitize_origin(origin);
    let mut checkouts = Vec::new();
    let mut builds = Vec::new();
    let mut tests = Vec::new();
    let mut kernels = BTreeSet::new();

    // Runs happened one after another; the last one ended at `ended`.
    let total: f64 = runs.iter().map(|r| seconds(r.duration_s)).sum();
    let mut start = ended.checked_sub(duration(total)).unwrap_or(UNIX_EPOCH);

    for run in runs {
        let kernel = kernel_key(run);
        let kernel_id = format!("{origin}:{kernel}");
        if kernels.insert(kernel_id.clone()) {
            checkouts.push(checkout(run, &origin, &kernel_id));
            builds.push(build(run, &origin, &kernel_id));
        }
        let run_start = start;
        let topologies = if run.topologies.is_empty() { "-".to_string() } else { run.topologies.join("+") };
        let run_id = format!("{kernel_id}:{topologies}:{}", compact_time(run_start));
        let env = environment(run);
        let mut case_start = run_start;
        for case in &run.cases {
            tests.push(test(case, run, &origin, &kernel_id, &run_id, case_start, &env));
            case_start = case_start.checked_add(duration(case.duration_s)).unwrap_or(case_start);
        }
        for id in &run.not_run {
            tests.push(not_run_test(id, run, &origin, &kernel_id, &run_id, case_start, &env));
        }
        if let Some(why) = &run.aborted {
            let mut t = Map::new();
            t.insert("id".into(), json!(format!("{run_id}:{PATH_ROOT}")));
            t.insert("build_id".into(), json!(kernel_id));
            t.insert("origin".into(), json!(origin));
            t.insert("path".into(), json!(PATH_ROOT));
            t.insert("status".into(), json!("ERROR"));
            t.insert("comment".into(), json!(format!("zcrx-conform run on {} stopped early", run.target)));
            t.insert("start_time".into(), json!(rfc3339(run_start)));
            t.insert("duration".into(), json!(millis(run.duration_s)));
            t.insert("log_excerpt".into(), json!(excerpt(&format!("run aborted: {why}"))));
            t.insert("environment".into(), env.clone());
            t.insert("misc".into(), json!({ "target": run.target, "aborted": why }));
            tests.push(Value::Object(t));
        }
        start = start.checked_add(duration(run.duration_s)).unwrap_or(start);
    }

    json!({
        "version": { "major": SCHEMA_MAJOR, "minor": SCHEMA_MINOR },
        "checkouts": checkouts,
        "builds": builds,
        "tests": tests,
    })
}

/// The KCIDB status of a case, and whether it is waived (a known deviation).
pub fn status(case: &CaseReport) -> (&'static str, bool) {
    match case.status {
        Status::Pass | Status::Xpass => ("PASS", false),
        Status::Skip => ("SKIP", false),
        Status::Xfail => ("FAIL", true),
        Status::Fail if case.typed_result().is_harness_error() => ("ERROR", false),
        Status::Fail => ("FAIL", false),
    }
}

/// The dotted KCIDB test path of a case id: `zcrx.area.name[.matrix_values]`.
pub fn test_path(case_id: &str) -> String {
    let (base, params) = match case_id.split_once('[') {
        Some((base, rest)) => (base, Some(rest.strip_suffix(']').unwrap_or(rest))),
        None => (case_id, None),
    };
    let mut parts = vec![PATH_ROOT.to_string()];
    parts.extend(base.split('.').map(path_component).filter(|p| !p.is_empty()));
    if let Some(p) = params.map(path_component).filter(|p| !p.is_empty()) {
        parts.push(p);
    }
    parts.join(".")
}

/// Keeps `[A-Za-z0-9_-]`; each run of other characters becomes one `_`, none at the end.
fn path_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut replaced = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
            replaced = false;
        } else if !replaced {
            out.push('_');
            replaced = true;
        }
    }
    if replaced {
        out.pop();
    }
    out
}

fn sanitize_origin(origin: &str) -> String {
    let o: String = origin
        .trim()
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' { c } else { '_' })
        .collect();
    if o.trim_matches('_').is_empty() {
        DEFAULT_ORIGIN.to_string()
    } else {
        o
    }
}

/// The kernel a run tested: its release, else its target.
fn kernel_key(run: &RunReport) -> String {
    let release = run.probe.kernel_release.trim();
    if release.is_empty() {
        run.target.clone()
    } else {
        release.to_string()
    }
}

fn checkout(run: &RunReport, origin: &str, id: &str) -> Value {
    let release = &run.probe.kernel_release;
    let mut c = Map::new();
    c.insert("id".into(), json!(id));
    c.insert("origin".into(), json!(origin));
    match run.target.strip_prefix("debian:") {
        Some(version) => {
            c.insert("tree_name".into(), json!("debian"));
            c.insert("comment".into(), json!(format!("Debian kernel {version} ({release})")));
        }
        None => {
            c.insert("comment".into(), json!(format!("kernel {release} ({})", run.target)));
        }
    }
    c.insert("valid".into(), json!(true));
    c.insert("misc".into(), json!({ "target": run.target, "kernel_release": release }));
    Value::Object(c)
}

fn build(run: &RunReport, origin: &str, id: &str) -> Value {
    let release = &run.probe.kernel_release;
    let mut b = Map::new();
    b.insert("id".into(), json!(id));
    b.insert("checkout_id".into(), json!(id));
    b.insert("origin".into(), json!(origin));
    if let Some(arch) = architecture(run) {
        b.insert("architecture".into(), json!(arch));
    }
    let comment = match run.target.strip_prefix("debian:") {
        Some(_) => format!("Debian's prebuilt kernel {release}"),
        None => format!("kernel {release} ({})", run.target),
    };
    b.insert("comment".into(), json!(comment));
    // It booted and ran the suite (a run is only reported when the kernel came up).
    b.insert("valid".into(), json!(true));
    let mut misc = json!({ "target": run.target, "kernel_release": release });
    if let Some((a, b, c)) = run.probe.kernel_version {
        misc["kernel_version"] = json!(format!("{a}.{b}.{c}"));
    }
    b.insert("misc".into(), misc);
    Value::Object(b)
}

/// The architecture from a Debian flavour suffix, or this machine's for a host run.
fn architecture(run: &RunReport) -> Option<&'static str> {
    let release = &run.probe.kernel_release;
    let known = [("-amd64", "x86_64"), ("-cloud-amd64", "x86_64"), ("-arm64", "arm64"), ("-rt-amd64", "x86_64")];
    if let Some((_, arch)) = known.iter().find(|(suffix, _)| release.ends_with(suffix)) {
        return Some(arch);
    }
    (run.target == "host")
        .then_some(std::env::consts::ARCH)
        .filter(|a| a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

fn environment(run: &RunReport) -> Value {
    let kvm = run.timings.kvm;
    let comment = if run.target == "host" {
        "the host kernel".to_string()
    } else {
        let accel = match kvm {
            Some(true) => ", KVM",
            Some(false) => ", TCG",
            None => "",
        };
        format!("virtme-ng VM booting {}{accel}", run.target)
    };
    let mut misc = json!({
        "target": run.target,
        "topologies": run.topologies,
        "harness": format!("zcrx-conform {}", env!("CARGO_PKG_VERSION")),
    });
    if let Some(k) = kvm {
        misc["kvm"] = json!(k);
    }
    json!({ "comment": comment, "misc": misc })
}

/// A selected case the run did not run (to its end): status MISS.
fn not_run_test(
    id: &str,
    run: &RunReport,
    origin: &str,
    build_id: &str,
    run_id: &str,
    start: SystemTime,
    env: &Value,
) -> Value {
    let why = run.aborted.as_deref().unwrap_or("the run stopped early");
    json!({
        "id": format!("{run_id}:{id}"),
        "build_id": build_id,
        "origin": origin,
        "path": test_path(id),
        "status": "MISS",
        "start_time": rfc3339(start),
        "log_excerpt": excerpt(&format!("not run: {why}")),
        "environment": env,
        "misc": { "case_id": id, "kernel_release": run.probe.kernel_release, "target": run.target, "not_run": true },
    })
}

fn test(
    case: &CaseReport,
    run: &RunReport,
    origin: &str,
    build_id: &str,
    run_id: &str,
    start: SystemTime,
    env: &Value,
) -> Value {
    let (status, waived) = status(case);
    let mut t = Map::new();
    t.insert("id".into(), json!(format!("{run_id}:{}", case.id)));
    t.insert("build_id".into(), json!(build_id));
    t.insert("origin".into(), json!(origin));
    t.insert("path".into(), json!(test_path(&case.id)));
    t.insert("status".into(), json!(status));
    if waived {
        t.insert("waived".into(), json!(true));
    }
    if !case.about.trim().is_empty() {
        t.insert("comment".into(), json!(case.about.trim()));
    }
    t.insert("start_time".into(), json!(rfc3339(start)));
    t.insert("duration".into(), json!(millis(case.duration_s)));
    let log = case_log(case);
    if !log.is_empty() {
        t.insert("log_excerpt".into(), json!(excerpt(&log)));
    }
    t.insert("environment".into(), env.clone());
    let mut misc = json!({
        "case_id": case.id,
        "file": case.file,
        "area": case.area,
        "kernel_release": run.probe.kernel_release,
        "target": run.target,
        "status": case.status,
        "start_time_estimated": true,
    });
    if !matches!(case.result, crate::model::CaseResult::Untyped) {
        misc["result"] = json!(case.result.kind());
    }
    if let Some(topo) = &case.topology {
        misc["topology"] = json!(topo);
    }
    if !case.spec.is_empty() {
        misc["spec"] = json!(case.spec);
    }
    t.insert("misc".into(), misc);
    Value::Object(t)
}

/// The message (failure or skip reason), then the kernel log lines, then the case's own log.
fn case_log(case: &CaseReport) -> String {
    let mut s = String::new();
    if !case.message.is_empty() {
        s.push_str(&case.message);
        s.push('\n');
    }
    if let Some(d) = super::outcome::detail(case) {
        s.push_str(&format!("result: {d}\n"));
    }
    if !case.kernel_log.is_empty() {
        s.push_str("--- kernel log during the case ---\n");
        for l in &case.kernel_log {
            s.push_str(l);
            s.push('\n');
        }
    }
    if !case.log.is_empty() {
        s.push_str("--- case log ---\n");
        for l in &case.log {
            s.push_str(l);
            s.push('\n');
        }
    }
    s.trim_end().to_string()
}

/// At most [`LOG_EXCERPT_MAX`] characters, NULs removed (KCIDB strings cannot hold them).
fn excerpt(s: &str) -> String {
    let s: String = s.chars().filter(|&c| c != '\0').collect();
    if s.chars().count() <= LOG_EXCERPT_MAX {
        return s;
    }
    let keep = LOG_EXCERPT_MAX - TRUNCATED.chars().count();
    let cut = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    format!("{}{TRUNCATED}", &s[..cut])
}

fn seconds(s: f64) -> f64 {
    // At most ~31 years: sums and durations of a report read from a file stay representable.
    if s.is_finite() && s > 0.0 {
        s.min(1e9)
    } else {
        0.0
    }
}

fn millis(s: f64) -> f64 {
    (seconds(s) * 1000.0).round() / 1000.0
}

/// `20261122T023300Z`, for ids.
fn compact_time(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = utc_parts(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(target: &str, release: &str, aborted: Option<&str>) -> RunReport {
        let case = |id: &str, status: &str, message: &str, kernel_log: Vec<&str>| {
            json!({
                "id": id, "file": "cases/x.yaml", "area": "registration", "about": "checks a thing",
                "spec": ["R1"], "topology": "nodev", "status": status, "message": message,
                "log": ["step 1 ok"], "kernel_log": kernel_log, "duration_s": 0.25,
                "harness_error": message.starts_with("harness error"),
            })
        };
        let probe = crate::model::Probe {
            kernel_release: release.into(),
            kernel_version: Some((7, 3, 4)),
            ..Default::default()
        };
        let probe = serde_json::to_value(probe).expect("probe serializes");
        serde_json::from_value(json!({
            "target": target,
            "probe": probe,
            "topologies": ["nodev"],
            "cases": [
                case("registration.ifindex_unknown", "pass", "", vec![]),
                case("area.checks[EINVAL,addr,$area.addr+1]", "fail", "expected EINVAL, got 0",
                     vec!["WARNING: CPU: 0 PID: 1 at io_uring/zcrx.c:1"]),
                case("ctrl.resv_nonzero[__resv[0]]", "skip", "needs kernel >= 7.3", vec![]),
                case("deviations.x", "xfail", "known deviation", vec![]),
                case("deviations.y", "xpass", "deviation gone", vec![]),
                case("drain.eof[3000,false]", "fail", "harness error: mmap: ENOMEM", vec![]),
            ],
            "duration_s": 12.5,
            "aborted": aborted,
            "timings": [["kvm", 0.0]],
        }))
        .expect("fixture is a RunReport")
    }

    fn at() -> SystemTime {
        // 2026-11-22T02:33:00.500Z
        UNIX_EPOCH + Duration::from_millis(1_795_314_780_500)
    }

    #[test]
    fn shape_and_required_fields() {
        let r = run("debian:7.3.4", "7.3.4+deb13-amd64", None);
        let v = export_at(&[&r], "zcrx_conform", at());
        assert_eq!(v["version"], json!({ "major": 4, "minor": 0 }));
        let obj = v.as_object().expect("object");
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys, ["builds", "checkouts", "tests", "version"]);
        assert_eq!(v["checkouts"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["builds"].as_array().map(Vec::len), Some(1));
        let build = &v["builds"][0];
        assert_eq!(build["id"], "zcrx_conform:7.3.4+deb13-amd64");
        assert_eq!(build["checkout_id"], v["checkouts"][0]["id"]);
        assert_eq!(build["architecture"], "x86_64");
        assert_eq!(v["checkouts"][0]["tree_name"], "debian");
        let tests = v["tests"].as_array().expect("tests");
        assert_eq!(tests.len(), 6);
        for t in tests {
            for k in ["id", "build_id", "origin", "path", "status", "start_time", "duration", "misc", "environment"] {
                assert!(t.get(k).is_some_and(|x| !x.is_null()), "{k} missing in {t}");
            }
            let id = t["id"].as_str().expect("id");
            assert!(id.starts_with("zcrx_conform:7.3.4+deb13-amd64:nodev:20261122T023"), "{id}");
            assert_eq!(t["build_id"], build["id"]);
            assert_eq!(t["misc"]["kernel_release"], "7.3.4+deb13-amd64");
            assert_eq!(t["misc"]["topology"], "nodev");
        }
        let ids: BTreeSet<&str> = tests.iter().filter_map(|t| t["id"].as_str()).collect();
        assert_eq!(ids.len(), tests.len(), "test ids are unique");
    }

    #[test]
    fn statuses_paths_and_logs() {
        let r = run("debian:7.3.4", "7.3.4+deb13-amd64", None);
        let v = export_at(&[&r], "zcrx_conform", at());
        let by_path = |p: &str| v["tests"].as_array().and_then(|ts| ts.iter().find(|t| t["path"] == p)).cloned();
        let pass = by_path("zcrx.registration.ifindex_unknown").expect("pass case");
        assert_eq!(pass["status"], "PASS");
        assert_eq!(pass["start_time"], "2026-11-22T02:32:48.000+00:00");
        let fail = by_path("zcrx.area.checks.EINVAL_addr_area_addr_1").expect("fail case");
        assert_eq!(fail["status"], "FAIL");
        let log = fail["log_excerpt"].as_str().expect("log_excerpt");
        assert!(log.starts_with("expected EINVAL, got 0\n--- kernel log during the case ---\nWARNING:"), "{log}");
        assert_eq!(fail["start_time"], "2026-11-22T02:32:48.250+00:00");
        assert_eq!(by_path("zcrx.ctrl.resv_nonzero.__resv_0").expect("skip")["status"], "SKIP");
        let xfail = by_path("zcrx.deviations.x").expect("xfail");
        assert_eq!((xfail["status"].as_str(), xfail["waived"].as_bool()), (Some("FAIL"), Some(true)));
        assert_eq!(by_path("zcrx.deviations.y").expect("xpass")["status"], "PASS");
        assert_eq!(by_path("zcrx.drain.eof.3000_false").expect("harness error")["status"], "ERROR");
        for t in v["tests"].as_array().into_iter().flatten() {
            let p = t["path"].as_str().expect("path");
            assert!(
                p.split('.').all(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))),
                "{p}"
            );
        }
    }

    #[test]
    fn aborted_run_adds_an_error_node_and_origin_is_sanitized() {
        let r = run("host", "6.18.44-fc-v657", Some("VM died"));
        let v = export_at(&[&r], "My CI/Lab", at());
        let last = v["tests"].as_array().and_then(|t| t.last()).expect("tests");
        assert_eq!(last["path"], "zcrx");
        assert_eq!(last["status"], "ERROR");
        assert_eq!(last["origin"], "my_ci_lab");
        assert_eq!(v["checkouts"][0]["origin"], "my_ci_lab");
        assert!(v["checkouts"][0].get("tree_name").is_none());
        assert_eq!(export_at(&[&r], " ", at())["builds"][0]["origin"], DEFAULT_ORIGIN);
    }

    #[test]
    fn one_checkout_per_kernel_and_runs_in_sequence() {
        let a = run("debian:7.3.4", "7.3.4+deb13-amd64", None);
        let mut b = run("debian:7.3.4", "7.3.4+deb13-amd64", None);
        b.topologies = vec!["host".into()];
        let c = run("debian:7.2.13", "7.2.13+deb14-amd64", None);
        let v = export_at(&[&a, &b, &c], "zcrx_conform", at());
        assert_eq!(v["checkouts"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["builds"].as_array().map(Vec::len), Some(2));
        let tests = v["tests"].as_array().expect("tests");
        assert_eq!(tests.len(), 18);
        // Three runs of 12.5 s ending at `at()`: the first started 37.5 s before.
        assert_eq!(tests[0]["start_time"], "2026-11-22T02:32:23.000+00:00");
        assert_eq!(tests[12]["start_time"], "2026-11-22T02:32:48.000+00:00");
        let ids: BTreeSet<&str> = tests.iter().filter_map(|t| t["id"].as_str()).collect();
        assert_eq!(ids.len(), 18);
    }

    #[test]
    fn long_logs_are_cut_to_the_schema_limit() {
        let mut r = run("host", "6.18.44", None);
        r.cases[1].log = vec!["é".repeat(40_000)];
        let v = export_at(&[&r], "o", at());
        let log = v["tests"][1]["log_excerpt"].as_str().expect("log");
        assert_eq!(log.chars().count(), LOG_EXCERPT_MAX);
        assert!(log.ends_with(TRUNCATED));
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(compact_time(at()), "20261122T023300Z");
        assert_eq!(test_path("a.b[x,y]"), "zcrx.a.b.x_y");
        assert_eq!(test_path("weird..id[]"), "zcrx.weird.id");
    }
}
