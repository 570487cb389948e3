//! The lab pipelines under `ci/`: the LAVA job template (`ci/lava/qualify.yaml`) and the
//! self-hosted-runner variants of the GitHub and GitLab pipelines that run `qualify` on the
//! machine carrying each NIC model.
//!
//! Always (no network): the files parse; every placeholder of the LAVA template is documented in
//! its header and every documented one is used; the job boots the kernel under test and runs
//! `zcrx-conform qualify --topology`; each self-hosted pipeline has one runner label per NIC
//! model (the same models in both), runs the static binary's `qualify --out DIR` and publishes
//! `DIR/junit.xml`.
//!
//! Ignored by a plain `cargo test` (ci/test.sh runs it with `--include-ignored`): the LAVA job
//! is validated with LAVA's own schema (Debian bookworm's `lava-common`, fetched by
//! ci/lava/validate.sh, strict), and a copy with an unknown key must be refused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const LAVA: &str = "ci/lava/qualify.yaml";
const GITHUB: &str = "ci/github/zcrx-qualify-self-hosted.yml";
const GITLAB: &str = "ci/gitlab/zcrx-qualify-self-hosted.gitlab-ci.yml";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn load(rel: &str) -> Value {
    serde_saphyr::from_str(&text(rel)).unwrap_or_else(|e| panic!("{rel}: not YAML: {e}"))
}

/// `@NAME@` placeholders in `s` (NAME: capitals, digits and `_`).
fn placeholders(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = s.as_bytes();
    for (i, _) in s.match_indices('@') {
        let name: String = b[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
            .map(|&c| c as char)
            .collect();
        if !name.is_empty() && b.get(i + 1 + name.len()) == Some(&b'@') {
            out.insert(name);
        }
    }
    out
}

#[test]
fn lava_template_documents_every_placeholder_and_runs_qualify() {
    let t = text(LAVA);
    let (header, body): (Vec<&str>, Vec<&str>) = t.lines().partition(|l| l.starts_with('#'));
    let documented: BTreeSet<String> = header
        .iter()
        .filter_map(|l| l.trim_start_matches('#').trim_start().strip_prefix('@'))
        .filter_map(|l| l.split('@').next())
        .map(String::from)
        .collect();
    let used = placeholders(&body.join("\n"));
    assert!(!used.is_empty());
    assert_eq!(used, documented, "placeholders used vs documented in the header");
    let job = load(LAVA);
    let actions = job["actions"].as_array().expect("actions");
    let kinds: Vec<&str> =
        actions.iter().filter_map(|a| a.as_object().and_then(|o| o.keys().next()).map(String::as_str)).collect();
    assert_eq!(kinds, ["deploy", "boot", "test"]);
    assert_eq!(actions[0]["deploy"]["kernel"]["url"], "@KERNEL_URL@");
    assert_eq!(job["tags"][0], "@NIC_MODEL@", "one job per NIC model, picked by its device tag");
    let steps: Vec<String> = actions[2]["test"]["definitions"][0]["repository"]["run"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s.as_str().map(String::from))
        .collect();
    assert!(steps.iter().any(|s| s.contains("zcrx-conform qualify --topology ")), "{steps:?}");
    assert!(steps.iter().any(|s| s.contains("@ZCRX_CONFORM_URL@")), "the static binary is downloaded: {steps:?}");
    // Every requirement line qualify prints becomes a LAVA test case.
    assert!(steps.iter().any(|s| s.contains("lava-test-case \"$id\"")), "{steps:?}");
}

fn nic_models_github() -> Vec<String> {
    let wf = load(GITHUB);
    let job = &wf["jobs"]["qualify"];
    let labels: Vec<&str> = job["runs-on"].as_array().expect("runs-on").iter().filter_map(Value::as_str).collect();
    assert_eq!(labels, ["self-hosted", "linux", "zcrx-nic-${{ matrix.nic }}"]);
    job["strategy"]["matrix"]["nic"]
        .as_array()
        .expect("matrix.nic")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

fn nic_models_gitlab() -> Vec<String> {
    let ci = load(GITLAB);
    let job = &ci["qualify"];
    assert_eq!(job["tags"], serde_json::json!(["zcrx-nic-$NIC"]));
    job["parallel"]["matrix"][0]["NIC"]
        .as_array()
        .expect("parallel.matrix NIC")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

#[test]
fn self_hosted_pipelines_have_one_runner_label_per_nic_model() {
    let g = nic_models_github();
    let l = nic_models_gitlab();
    assert!(!g.is_empty());
    assert_eq!(g.iter().collect::<BTreeSet<_>>().len(), g.len(), "a NIC model twice: {g:?}");
    assert_eq!(g, l, "GitHub and GitLab qualify the same NIC models");
    for m in &g {
        assert!(m.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{m}");
    }
}

#[test]
fn self_hosted_pipelines_run_the_static_binary_and_publish_its_junit() {
    let wf = load(GITHUB);
    let build = serde_json::to_string(&wf["jobs"]["build"]).expect("json");
    assert!(build.contains("bash ci/static-build.sh --check out/static"), "{build}");
    let q = &wf["jobs"]["qualify"];
    assert_eq!(q["env"]["OUT"], "out/qualify-${{ matrix.nic }}");
    let steps = q["steps"].as_array().expect("steps");
    let run = steps.iter().find(|s| s["id"] == "qualify").and_then(|s| s["run"].as_str()).expect("qualify step");
    assert!(run.contains("zcrx-conform qualify --topology \"/etc/zcrx-conform/$NIC.yaml\" --out \"$OUT\""), "{run}");
    let junit = steps.iter().find_map(|s| s["with"]["report_paths"].as_str()).expect("junit step");
    assert_eq!(junit, "${{ env.OUT }}/junit.xml");
    let ci = load(GITLAB);
    let build = serde_json::to_string(&ci["static-build"]).expect("json");
    assert!(build.contains("bash ci/static-build.sh --check out/static"), "{build}");
    let q = &ci["qualify"];
    assert_eq!(q["variables"]["OUT"], "out/qualify-$NIC");
    let script = serde_json::to_string(&q["script"]).expect("json");
    assert!(script.contains("qualify --topology \\\"/etc/zcrx-conform/$NIC.yaml\\\" --out \\\"$OUT\\\""), "{script}");
    assert_eq!(q["artifacts"]["reports"]["junit"], "$OUT/junit.xml");
    // And `qualify --out DIR` writes exactly these names.
    assert!(zcrx_conform::qualify::FILES.contains(&"junit.xml"));
}

fn lava_tools_dir() -> PathBuf {
    std::env::var_os("ZCRX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".cache"))
        .join("ci-tools/lava/root/usr/lib/python3/dist-packages/lava_common")
}

fn validate(files: &[&Path]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(root().join("ci/lava/validate.sh"))
        .args(files)
        .current_dir(root())
        .output()
        .expect("bash ci/lava/validate.sh");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
#[ignore = "fetches lava-common with apt-get download on its first run (ci/test.sh runs it)"]
fn lava_job_validates_with_lava_common() {
    eprintln!("lava-common in {}", lava_tools_dir().display());
    let (ok, log) = validate(&[&root().join(LAVA)]);
    eprintln!("{log}");
    assert!(ok, "{log}");
    assert!(log.contains("ok    ") && log.contains("qualify.yaml (lava-common "), "{log}");
    // The validator can fail: an unknown key in the test action is refused.
    let dir = std::env::temp_dir().join(format!("zcrx-lava-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        text(LAVA).replace("      timeout: {minutes: 90}\n", "      timeout: {minutes: 90}\n      bogus: 1\n"),
    )
    .expect("write");
    let (ok, log) = validate(&[&bad]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok && log.contains("extra keys not allowed"), "{log}");
}
