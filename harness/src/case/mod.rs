//! The `case` stage: case files (YAML) -> typed, expanded, validated [`Case`]s.
//!
//! A file is read with file:line:column errors, its `matrix` is expanded into one case per
//! combination, and every expansion is checked statically. The JSON Schema
//! (`zcrx-conform schema`) is derived from the format's types.
//!
//! - `value.rs`: spanned values ([`Sp`]), [`Value`], [`Overrides`].
//! - `format.rs`: the case file ([`CaseFile`]) and its parts; `action.rs`: a [`Step`] and its
//!   [`Action`], one variant per kind of step, listed once with each kind's key and facts
//!   ([`STEP_KINDS`]); `steps.rs`, `ctrl_steps.rs`, `nic_steps.rs`: the bodies of the actions
//!   ([`Register`], [`Ctrl`], ...).
//! - `yaml.rs`: the file as a tree of nodes with their places; `de.rs`: serde over that tree.
//! - `matrix.rs`: matrix axes ([`Axis`]), their expansion and substitution into the tree.
//! - `validate.rs`, `rules.rs`: the checks serde cannot do (ids, timeouts, names, assertions).
//! - [`names`]: the symbolic constants a case may use.
//!
//! This file loads: [`load_all`], [`load_file`], [`load_str`], [`find_files`].

use crate::model::text::{clip, printable};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod action;
mod ctrl_steps;
mod de;
mod format;
mod matrix;
pub mod names;
mod nic_steps;
mod pages;
mod proc_steps;
mod rules;
mod steps;
mod stress;
mod vacuous;
mod validate;
mod value;
mod yaml;

pub use self::action::{step_reference, Action, Step, StepKind, STEP_KINDS};
pub use self::ctrl_steps::*;
pub use self::format::*;
pub use self::matrix::{table_by_name, Axis, ReservedOf, MAX_ROWS};
pub use self::nic_steps::*;
pub use self::proc_steps::*;
pub use self::rules::{check_cve, check_fix_id, check_id, MAX_ID_BYTES};
pub use self::steps::*;
pub use self::stress::{RaceOp, Stress};
pub use self::validate::check_out_key;
use self::validate::validate;
pub use self::value::*;

/// A loading or validation error with its place (line 0: the whole file).
#[derive(Debug, Clone)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub msg: String,
}

impl LoadError {
    fn new(file: &Path, line: u64, column: u64, msg: impl Into<String>) -> LoadError {
        LoadError { file: file.to_path_buf(), line, column, msg: msg.into() }
    }
}

/// Text from a file for a terminal: control characters escaped, at most this many characters.
const SHOWN: usize = 400;

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = printable(&clip(&self.file.display().to_string(), SHOWN));
        if self.line > 0 {
            write!(f, "{file}:{}:{}: {}", self.line, self.column, printable(&clip(&self.msg, SHOWN)))
        } else {
            write!(f, "{file}: {}", printable(&clip(&self.msg, SHOWN)))
        }
    }
}

/// One runnable case: a file, or one combination of its matrix.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub file: PathBuf,
    /// Index among the file's expansions.
    pub index: usize,
    pub params: Vec<(String, String)>,
    pub def: CaseFile,
}

/// Largest case file read.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// Most errors reported for one file.
const MAX_ERRORS: usize = 20;

/// Loads a case file and expands its matrix; validates every expansion.
pub fn load_file(path: &Path) -> Result<Vec<Case>, Vec<LoadError>> {
    load_file_located(path).map(|v| v.into_iter().map(|(c, _)| c).collect())
}

/// The file's text: a regular file of at most [`MAX_FILE_BYTES`], in UTF-8.
fn read_text(path: &Path) -> Result<String, LoadError> {
    use std::io::Read;
    let whole = |msg: String| LoadError::new(path, 0, 0, msg);
    if crate::paths::builtin::is_builtin(path) {
        return crate::paths::builtin::read(path)
            .map(String::from)
            .ok_or_else(|| whole("no such built-in file".into()));
    }
    // Opened without blocking and checked on the opened file: a FIFO is refused, not waited on.
    let f = crate::paths::input::open_regular(path, u64::MAX, true).map_err(|e| match e.kind() {
        std::io::ErrorKind::Other => whole(e.to_string()),
        _ => whole(format!("cannot read: {e}")),
    })?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| whole(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(whole(format!("file too large: more than {MAX_FILE_BYTES} bytes")));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let good = std::str::from_utf8(good).unwrap_or_default();
        let line = good.matches('\n').count() as u64 + 1;
        let column = good.rsplit('\n').next().unwrap_or_default().chars().count() as u64 + 1;
        let byte = e.as_bytes()[good.len()];
        LoadError::new(path, line, column, format!("not UTF-8: invalid byte {byte:#04x}"))
    })
}

/// Cases, each with the line and column of its `id`.
type Located = Vec<(Case, (u64, u64))>;

fn load_file_located(path: &Path) -> Result<Located, Vec<LoadError>> {
    let text = read_text(path).map_err(|e| vec![e])?;
    load_located(path, &text)
}

/// Loads a case file's text (see [`load_file`]).
pub fn load_str(path: &Path, text: &str) -> Result<Vec<Case>, Vec<LoadError>> {
    load_located(path, text).map(|v| v.into_iter().map(|(c, _)| c).collect())
}

/// The cases of a file, each with the line and column of its `id`.
fn load_located(path: &Path, text: &str) -> Result<Located, Vec<LoadError>> {
    let one = |line, column, msg: String| vec![LoadError::new(path, line, column, msg)];
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => return Err(one(1, 1, "empty file: a case needs id, area, about and steps".into())),
        Err(e) => return Err(one(e.line, e.column, e.msg)),
    };
    if let Some((k, first)) = root.duplicate_key() {
        let msg = format!("duplicate key `{}` (first on line {first})", yaml::short(k.text().unwrap_or_default()));
        return Err(one(k.line, k.column, msg));
    }
    let (axes, rows) = matrix::rows(&root).map_err(|matrix::At(l, c, msg)| one(l, c, msg))?;
    let mut out = Vec::new();
    let mut errors: Vec<LoadError> = Vec::new();
    for (index, params) in rows.into_iter().enumerate() {
        let doc = if params.is_empty() {
            std::borrow::Cow::Borrowed(&root)
        } else {
            match matrix::substitute(&root, &params) {
                Ok(d) => std::borrow::Cow::Owned(d),
                Err(matrix::At(l, c, msg)) => {
                    errors.push(LoadError::new(path, l, c, msg));
                    break;
                }
            }
        };
        if let Some((k, first)) = doc.duplicate_key() {
            let msg = format!(
                "duplicate key `{}` (first on line {first}) with the matrix values {}",
                yaml::short(k.text().unwrap_or_default()),
                yaml::short(&format!("{params:?}"))
            );
            errors.push(LoadError::new(path, k.line, k.column, msg));
            break;
        }
        let def: CaseFile = match de::from_node(&doc) {
            Ok(d) if params.is_empty() => d,
            Ok(d) => CaseFile { matrix: axes.clone(), ..d },
            Err(e) => {
                let (l, c) = e.at.unwrap_or((1, 1));
                errors.push(LoadError::new(path, l, c, e.msg));
                break;
            }
        };
        let id = if params.is_empty() {
            def.id.clone()
        } else {
            let vals: Vec<&str> = params.iter().map(|(_, v)| v.as_str()).collect();
            format!("{}[{}]", def.id, vals.join(","))
        };
        let id_at = doc.get("id").map_or((1, 1), |n| (n.line, n.column));
        let case = Case { id, file: path.to_path_buf(), index, params, def };
        for e in validate(&case, &doc) {
            if !errors.iter().any(|x| (x.line, x.column, &x.msg) == (e.line, e.column, &e.msg)) {
                errors.push(e);
            }
        }
        out.push((case, id_at));
        if errors.len() >= MAX_ERRORS {
            break;
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.truncate(MAX_ERRORS);
        Err(errors)
    }
}

/// Finds case files under the given paths (files or directories, recursively). A directory
/// without any is no error here: a command that then has nothing to do says so (exit 3).
/// A built-in path (`builtin:/cases/...`) names the catalogue carried by the binary.
pub fn find_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        if crate::paths::builtin::is_builtin(p) {
            let found = crate::paths::builtin::under(p);
            if found.is_empty() {
                return Err(LoadError::new(p, 0, 0, "cannot open: no such built-in file or directory"));
            }
            files.extend(found.into_iter().filter(|f| f.starts_with(crate::paths::builtin::path("cases")) || *f == *p));
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| LoadError::new(p, 0, 0, format!("cannot open: {e}")))?;
        if meta.is_dir() {
            let mut seen = std::collections::HashSet::new();
            walk(p, &mut files, &mut seen, 0).map_err(|e| LoadError::new(p, 0, 0, e.to_string()))?;
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Regular `*.yaml`/`*.yml` files under `dir`; each directory is visited once (symbolic
/// links that lead back are not followed again), at most 32 levels down.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut std::collections::HashSet<(u64, u64)>,
    depth: usize,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)?;
    if depth > 32 || !seen.insert((meta.dev(), meta.ino())) {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.is_dir() {
            walk(&p, out, seen, depth + 1)?;
        } else if meta.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Loads every case under `paths`; all errors are collected. Duplicate ids are errors, at
/// the second `id`.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Case>, Vec<LoadError>> {
    let files = find_files(paths).map_err(|e| vec![e])?;
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file_located(&f) {
            Ok(c) => cases.extend(c),
            Err(e) => errors.extend(e),
        }
    }
    let mut seen: BTreeMap<&str, (&Path, u64, u64)> = BTreeMap::new();
    for (c, (line, column)) in &cases {
        match seen.get(c.id.as_str()) {
            Some((file, l, col)) => errors.push(LoadError::new(
                &c.file,
                *line,
                *column,
                format!("duplicate case id `{}` (first at {}:{l}:{col})", yaml::short(&c.id), file.display()),
            )),
            None => {
                seen.insert(&c.id, (&c.file, *line, *column));
            }
        }
    }
    if errors.is_empty() {
        Ok(cases.into_iter().map(|(c, _)| c).collect())
    } else {
        Err(errors)
    }
}

/// Markdown: the top-level keys of a case file with their descriptions, from the JSON Schema
/// (the doc comments of [`CaseFile`]); docs/case-format.md holds it (`BLESS=1 cargo test --test
/// doc_steps`).
pub fn field_reference() -> String {
    let schema = schema();
    let required: Vec<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    let mut s = String::from("| key | required | what |\n|---|---|---|\n");
    if let Some(props) = schema["properties"].as_object() {
        for (k, v) in props {
            let what = v["description"].as_str().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
            let req = if required.contains(&k.as_str()) { "yes" } else { "" };
            s.push_str(&format!("| `{k}` | {req} | {} |\n", what.replace('|', "\\|")));
        }
    }
    s
}

/// JSON Schema of the case format.
pub fn schema() -> serde_json::Value {
    let s = schemars::schema_for!(CaseFile);
    serde_json::to_value(s).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Case>, Vec<LoadError>> {
        load_str(Path::new("t.yaml"), text)
    }

    #[test]
    fn minimal_case_loads_with_defaults() {
        let c = load("id: a.b\narea: registration\nabout: x\nsteps:\n  - register: {}\n  - expect_rq: { head: 0 }\n")
            .expect("loads");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].def.zcrx.rq_entries, 64);
        assert_eq!(c[0].def.ring.cq_entries, Some(1024));
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = load("id: a.b\narea: registration\nabout: x\nstepz: []\n").expect_err("fails");
        assert_eq!(e[0].line, 4, "{}", e[0]);
        assert!(e[0].msg.contains("stepz"), "{}", e[0]);
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = load("id: a.b\narea: registration\nabout: x\ntimeout: soon\nsteps: []\n").expect_err("fails");
        assert_eq!(e[0].line, 4, "{}", e[0]);
    }

    #[test]
    fn built_in_catalogue_is_the_one_on_disk_and_errors_name_the_virtual_path() {
        let disk = load_all(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cases")]).expect("disk");
        let built = load_all(&[crate::paths::builtin::path("cases")]).expect("built in");
        let ids = |v: &[Case]| v.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&built), ids(&disk));
        assert!(built.iter().all(|c| c.file.starts_with("builtin:/cases")), "{:?}", built[0].file);
        // A broken built-in text is reported at the virtual path, line and column.
        let f = &built[0].file;
        let text = crate::paths::builtin::read(f).expect("text");
        let e = load_str(f, &format!("{text}\nbogus_key: 1\n")).expect_err("unknown key");
        let line = text.lines().count() + 2;
        assert!(e[0].to_string().starts_with(&format!("{}:{line}:1: ", f.display())), "{}", e[0]);
        let e = load_all(&[crate::paths::builtin::path("cases/nothing")]).expect_err("missing");
        assert_eq!(e[0].to_string(), "builtin:/cases/nothing: cannot open: no such built-in file or directory");
    }

    #[test]
    fn every_top_level_key_is_described() {
        let t = field_reference();
        for key in ["id", "area", "about", "fixes", "cve", "steps", "requires", "ring", "zcrx"] {
            let row =
                t.lines().find(|l| l.starts_with(&format!("| `{key}` |"))).unwrap_or_else(|| panic!("{key}: {t}"));
            assert!(!row.ends_with("|  |"), "{key} has no description: {row}");
        }
    }

    #[test]
    fn schema_mentions_steps() {
        let s = schema().to_string();
        assert!(s.contains("expect_data") && s.contains("reserved_of"));
    }
}
