//! The catalogue (`cases/`) and topology files (`topologies/`) the binary carries inside itself
//! (listed by `build.rs`), so one copied file runs without a checkout.
//!
//! A built-in file has a virtual path whose first component is [`ROOT`]:
//! `builtin:/cases/nic/zero_copy.yaml`. Errors name that path with the line and column, as
//! for a file on disk. Files on disk always win: a directory given on the command line, or the
//! root found next to the executable (`paths::repo_root`), is used before anything built in.

use std::path::{Component, Path, PathBuf};

/// The first component of every built-in path.
pub const ROOT: &str = "builtin:";

/// Every built-in file: (path relative to the repository root, text).
pub static FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_files.rs"));

/// The virtual path of `rel` (`cases/nic` -> `builtin:/cases/nic`).
pub fn path(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

/// `p` relative to the built-in root, when it is a built-in path (`builtin:/a/b` -> `a/b`).
fn relative(p: &Path) -> Option<PathBuf> {
    let mut c = p.components();
    match c.next() {
        Some(Component::Normal(first)) if first == ROOT => {}
        _ => return None,
    }
    let mut rel = PathBuf::new();
    for part in c {
        match part {
            Component::Normal(n) => rel.push(n),
            Component::CurDir | Component::RootDir => {}
            // No `..`: a built-in path names only what is built in.
            _ => return None,
        }
    }
    Some(rel)
}

/// Whether `p` names something built in (a file or a directory of them).
pub fn is_builtin(p: &Path) -> bool {
    let mut c = p.components();
    matches!(c.next(), Some(Component::Normal(first)) if first == ROOT)
}

/// The text of a built-in file.
pub fn read(p: &Path) -> Option<&'static str> {
    let rel = relative(p)?;
    FILES.iter().find(|(f, _)| Path::new(f) == rel).map(|(_, t)| *t)
}

/// The built-in files at or under `p` (a file, or a directory of them), by virtual path,
/// sorted; empty when `p` names nothing built in.
pub fn under(p: &Path) -> Vec<PathBuf> {
    let Some(rel) = relative(p) else { return Vec::new() };
    FILES.iter().filter(|(f, _)| Path::new(f).starts_with(&rel)).map(|(f, _)| path(f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn every_case_and_topology_file_is_built_in_verbatim() {
        for d in ["cases", "topologies"] {
            let mut on_disk = Vec::new();
            let mut stack = vec![repo().join(d)];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir).expect("list").flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                        on_disk.push(p);
                    }
                }
            }
            assert!(!on_disk.is_empty(), "{d}/ is empty");
            for p in &on_disk {
                let rel = p.strip_prefix(repo()).expect("under the repo").to_str().expect("utf8").to_string();
                let text = std::fs::read_to_string(p).expect("read");
                assert_eq!(read(&path(&rel)), Some(text.as_str()), "{rel} is not built in as it is on disk");
            }
            assert_eq!(under(&path(d)).len(), on_disk.len(), "{d}/: built-in files that are not on disk");
        }
    }

    #[test]
    fn virtual_paths() {
        assert!(is_builtin(Path::new("builtin:/cases")));
        assert!(!is_builtin(Path::new("/builtin:/cases")) && !is_builtin(Path::new("cases")));
        assert_eq!(path("cases/nic").display().to_string(), "builtin:/cases/nic");
        assert!(read(Path::new("builtin:/cases/../topologies/veth.yaml")).is_none());
        assert!(read(Path::new("builtin:/topologies/veth.yaml")).is_some());
        assert!(read(Path::new("builtin:/topologies")).is_none());
        assert!(under(Path::new("builtin:/nothing")).is_empty());
        let nic = under(Path::new("builtin:/cases/nic"));
        assert!(!nic.is_empty() && nic.iter().all(|p| p.starts_with("builtin:/cases/nic")), "{nic:?}");
        // A file is "under" itself.
        assert_eq!(under(&nic[0]), vec![nic[0].clone()]);
    }
}
