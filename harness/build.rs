//! Records the git commit the binary is built from (`ZCRX_GIT_COMMIT`, shown by `--version` and
//! in reports); `unknown` when building outside a git checkout or without git.
//!
//! Also lists the catalogue (`cases/`) and the topology files (`topologies/`) for the binary to
//! carry inside itself (`paths::builtin`): `$OUT_DIR/builtin_files.rs` is one array of
//! `(virtual path, include_str!(real path))`, sorted, YAML files only.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Regular `*.yaml`/`*.yml` files under `dir` (symbolic links are not followed).
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let Ok(t) = e.file_type() else { continue };
        let p = e.path();
        if t.is_dir() {
            yaml_files(&p, out);
        } else if t.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

fn builtin_files() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for d in ["cases", "topologies"] {
        println!("cargo:rerun-if-changed={}", top.join(d).display());
        yaml_files(&top.join(d), &mut files);
    }
    files.sort();
    let mut src = String::from("&[\n");
    for f in &files {
        let Ok(rel) = f.strip_prefix(&top) else { continue };
        let (Some(rel), Some(abs)) = (rel.to_str(), f.canonicalize().ok().and_then(|a| a.to_str().map(String::from)))
        else {
            panic!("{}: a built-in file needs a UTF-8 path", f.display());
        };
        src.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    src.push_str("]\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_files.rs");
    std::fs::write(&out, src).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

/// The suite's measured strength (`reports/mutation.json`, `reports/coverage.json`, written by
/// `mutate` and `coverage`) for the HTML report: `$OUT_DIR/measured.rs` holds each as
/// `Some(include_str!(..))`, or `None` when the file is not there.
fn measured() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The directory, not the files: a missing file named here would rebuild every time.
    println!("cargo:rerun-if-changed={}", top.join("reports").display());
    let mut src = String::new();
    for (name, file) in [("MUTATION_JSON", "reports/mutation.json"), ("COVERAGE_JSON", "reports/coverage.json")] {
        let abs = top.join(file).canonicalize().ok().filter(|p| p.is_file());
        match abs.as_deref().and_then(Path::to_str) {
            Some(a) => src.push_str(&format!("pub const {name}: Option<&str> = Some(include_str!({a:?}));\n")),
            None => src.push_str(&format!("pub const {name}: Option<&str> = None;\n")),
        }
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("measured.rs");
    std::fs::write(&out, src).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ZCRX_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    builtin_files();
    measured();
    // Build again when HEAD moves: HEAD itself (a checkout), the branch it names (a commit),
    // and packed-refs. Only existing files: a missing one would make every build rerun this.
    let mut watch = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watch.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for p in watch.into_iter().flatten() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}
