//! Where the harness finds its own files: the repository root (cases/, topologies/, vm/).

use std::path::PathBuf;

/// The repository root: `$ZCRX_CONFORM_ROOT`, else the source tree this binary was
/// built from (when it still exists), else the current directory.
pub fn repo_root() -> PathBuf {
    if let Some(r) = std::env::var_os("ZCRX_CONFORM_ROOT") {
        return PathBuf::from(r);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if built.join("cases").is_dir() {
        return built.canonicalize().unwrap_or(built);
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// The case files' default location: `cases/` next to the workspace.
pub fn default_case_dir() -> PathBuf {
    repo_root().join("cases")
}

/// The download cache (`.cache/`, git-ignored).
pub fn cache_dir() -> PathBuf {
    repo_root().join(".cache")
}
