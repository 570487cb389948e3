//! zcrx-conform: a conformance harness for Linux io_uring zero-copy receive (zcrx).
//!
//! Cases are YAML files (see [`case`]); each runs in its own process against the real
//! kernel ([`exec`], [`runner`]); results are written as JUnit, KTAP and JSON ([`report`]).

pub mod baseline;
pub mod bench;
pub mod bugreport;
pub mod case;
pub mod consts;
pub mod exec;
pub mod html;
pub mod kcidb;
pub mod netdev;
pub mod probe;
pub mod report;
pub mod ring;
pub mod runner;
pub mod sys;
pub mod topology;
pub mod uapi;
pub mod vm;

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
