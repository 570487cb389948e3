//! Where the harness finds its own files: the repository root (cases/, topologies/, .cache/).
//!
//! The scripts it runs (vm/*.sh, run as root) are not looked up anywhere: they are built into
//! the binary (`vm::scripts`). The root, for the catalogue and the cache, is, in this order:
//!
//! 1. `$ZCRX_CONFORM_ROOT`, announced on stderr whenever it is used;
//! 2. next to the real path of the executable (`/proc/self/exe`, symlinks resolved): its own
//!    directory or the first of the three above it that holds `cases/` and `topologies/`
//!    (`bin/` of an unpacked tree, `target/{debug,release}/` and `target/debug/deps/` of a
//!    checkout);
//! 3. else the executable's directory (where nothing is found, and errors say so).
//!
//! Never the current directory. When no root holds `cases/` and `topologies/` (a binary copied
//! alone to a lab machine), the catalogue and topology files built into the binary are used
//! ([`builtin`]); a directory or file named on the command line always wins.
//!
//! The cache is `$ZCRX_CACHE` when set (also announced), else `.cache/` in the root, else (no
//! root on disk) `$XDG_CACHE_HOME/zcrx-conform` or `$HOME/.cache/zcrx-conform`; the vm/ scripts
//! are always given that same directory.

pub mod builtin;
pub mod input;
pub mod stdio;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The variable that names the root.
pub const ROOT_VAR: &str = "ZCRX_CONFORM_ROOT";
/// The variable that names the cache (also read by the vm/ scripts).
pub const CACHE_VAR: &str = "ZCRX_CACHE";

/// Says once per process, on stderr, that a variable chose where files come from.
fn announce(var: &str, value: &Path, what: &str) {
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.insert(var.to_string()) {
        eprintln!("note: {var}={}: {what} come from there", value.display());
    }
}

/// The executable's real path (symlinks resolved).
pub fn executable() -> Option<PathBuf> {
    std::fs::canonicalize("/proc/self/exe").or_else(|_| std::env::current_exe()?.canonicalize()).ok()
}

/// The repository root next to the executable `exe`: its directory or one of the three above
/// it, the first that holds `cases/` and `topologies/`.
pub fn root_near(exe: &Path) -> Option<PathBuf> {
    exe.ancestors()
        .skip(1)
        .take(4)
        .find(|d| d.join("cases").is_dir() && d.join("topologies").is_dir())
        .map(Path::to_path_buf)
}

/// The root on disk: `$ZCRX_CONFORM_ROOT`, else the one next to the executable; `None` when
/// neither (the built-in files are then used).
pub fn disk_root() -> Option<PathBuf> {
    if std::env::var_os(ROOT_VAR).is_some_and(|r| !r.is_empty()) {
        return Some(repo_root());
    }
    if let Some(r) = executable().as_deref().and_then(root_near) {
        return Some(r);
    }
    #[cfg(test)]
    {
        let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        if built.join("cases").is_dir() {
            return Some(built.canonicalize().unwrap_or(built));
        }
    }
    None
}

/// The repository root (see the module's order).
pub fn repo_root() -> PathBuf {
    if let Some(r) = std::env::var_os(ROOT_VAR).filter(|r| !r.is_empty()) {
        let r = PathBuf::from(r);
        announce(ROOT_VAR, &r, "case files, topology files and the cache");
        return r;
    }
    let exe = executable();
    if let Some(r) = exe.as_deref().and_then(root_near) {
        return r;
    }
    // Unit tests run from target/debug/deps/ of the checkout; a shared CARGO_TARGET_DIR
    // elsewhere still finds it. Never compiled into the binary.
    #[cfg(test)]
    {
        let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        if built.join("cases").is_dir() {
            return built.canonicalize().unwrap_or(built);
        }
    }
    exe.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/nonexistent"))
}

/// The case files' default location: `cases/` in the root on disk, else the built-in
/// catalogue (`builtin:/cases`).
pub fn default_case_dir() -> PathBuf {
    match disk_root() {
        Some(r) => r.join("cases"),
        None => builtin::path("cases"),
    }
}

/// The topology files' location: `topologies/` in the root on disk, else the built-in ones.
pub fn topology_dir() -> PathBuf {
    match disk_root() {
        Some(r) => r.join("topologies"),
        None => builtin::path("topologies"),
    }
}

/// The download and build cache: `$ZCRX_CACHE`, else `.cache/` in the root (git-ignored).
pub fn cache_dir() -> PathBuf {
    if let Some(c) = std::env::var_os(CACHE_VAR).filter(|c| !c.is_empty()) {
        let c = PathBuf::from(c);
        announce(CACHE_VAR, &c, "downloaded kernels, tools and builds");
        return c;
    }
    if let Some(r) = disk_root() {
        return r.join(".cache");
    }
    let home = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    home.join("zcrx-conform")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_next_to_the_executable_only() {
        let t = std::env::temp_dir().join(format!("zcrx-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        for d in ["repo/cases", "repo/topologies", "repo/target/release", "repo/target/debug/deps", "repo/bin"] {
            std::fs::create_dir_all(t.join(d)).expect("mkdir");
        }
        let repo = t.join("repo");
        for exe in ["bin/zcrx-conform", "target/release/zcrx-conform", "target/debug/deps/zcrx_conform-0123"] {
            assert_eq!(root_near(&repo.join(exe)).as_deref(), Some(repo.as_path()), "{exe}");
        }
        // Too deep, or a directory that lacks topologies/: not a root.
        std::fs::create_dir_all(t.join("repo/a/b/c/d")).expect("mkdir");
        assert_eq!(root_near(&repo.join("a/b/c/d/x")), None);
        std::fs::create_dir_all(t.join("other/cases")).expect("mkdir");
        assert_eq!(root_near(&t.join("other/x")), None);
        let _ = std::fs::remove_dir_all(&t);
    }
}
