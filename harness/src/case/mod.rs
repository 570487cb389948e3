//! The `case` stage: case files (YAML) -> typed, expanded, validated [`Case`]s.
//!
//! A file is read with file:line:column errors, its `matrix` is expanded into one case per
//! combination, and every expansion is checked statically. The JSON Schema
//! (`zcrx-conform schema`) is derived from the format's types.
//!
//! - `value.rs`: spanned values ([`Sp`]), [`Value`], [`Overrides`].
//! - `format.rs`: the case file ([`CaseFile`]) and its parts, down to [`Step`]; `steps.rs`:
//!   the bodies of the step actions ([`Register`], [`Ctrl`], ...).
//! - `matrix.rs`: matrix axes ([`Axis`]) and their expansion.
//! - `validate.rs`: the checks serde cannot do ([`validate()`]).
//! - [`names`]: the symbolic constants a case may use.
//!
//! This file loads: [`load_all`], [`load_file`], [`load_str`], [`find_files`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

mod format;
mod matrix;
pub mod names;
mod steps;
mod vacuous;
mod validate;
mod value;

pub use self::format::*;
pub use self::matrix::{table_by_name, Axis, ReservedOf};
pub use self::steps::*;
pub use self::validate::{check_out_key, validate};
pub use self::value::*;

/// A loading or validation error with its place.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub msg: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.msg)
        } else {
            write!(f, "{}: {}", self.file.display(), self.msg)
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

fn yaml_err(file: &Path, e: serde_saphyr::Error) -> LoadError {
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let msg = e.to_string();
    // The crate renders a multi-line snippet; keep the first line of its message.
    let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid YAML").trim().to_string();
    LoadError { file: file.to_path_buf(), line, column, msg: first }
}

/// Loads a case file and expands its matrix; validates every expansion.
pub fn load_file(path: &Path) -> Result<Vec<Case>, Vec<LoadError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![LoadError { file: path.to_path_buf(), line: 0, column: 0, msg: format!("cannot read: {e}") }]
    })?;
    load_str(path, &text)
}

pub fn load_str(path: &Path, text: &str) -> Result<Vec<Case>, Vec<LoadError>> {
    let combos = matrix::expand(path, text).map_err(|e| vec![e])?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (index, params) in combos.into_iter().enumerate() {
        let t = matrix::fill(text, &params);
        let def: CaseFile = match serde_saphyr::from_str(&t) {
            Ok(d) => d,
            Err(e) => {
                errors.push(yaml_err(path, e));
                break;
            }
        };
        let id = if params.is_empty() {
            def.id.clone()
        } else {
            let vals: Vec<&str> = params.iter().map(|(_, v)| v.as_str()).collect();
            format!("{}[{}]", def.id, vals.join(","))
        };
        let case = Case { id, file: path.to_path_buf(), index, params, def };
        errors.extend(validate(&case));
        out.push(case);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Finds case files under the given paths (files or directories, recursively).
pub fn find_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| LoadError {
            file: p.clone(),
            line: 0,
            column: 0,
            msg: format!("cannot open: {e}"),
        })?;
        if meta.is_dir() {
            walk(p, &mut files).map_err(|e| LoadError { file: p.clone(), line: 0, column: 0, msg: e.to_string() })?;
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Loads every case under `paths`; all errors are collected. Duplicate ids are errors.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Case>, Vec<LoadError>> {
    let files = find_files(paths).map_err(|e| vec![e])?;
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(c) => cases.extend(c),
            Err(e) => errors.extend(e),
        }
    }
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for c in &cases {
        if let Some(prev) = seen.insert(c.id.clone(), c.file.clone()) {
            errors.push(LoadError {
                file: c.file.clone(),
                line: 1,
                column: 1,
                msg: format!("duplicate case id `{}` (also in {})", c.id, prev.display()),
            });
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
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
        let c = load("id: a.b\narea: registration\nabout: x\nsteps:\n  - register: {}\n").expect("loads");
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
    fn schema_mentions_steps() {
        let s = schema().to_string();
        assert!(s.contains("expect_data") && s.contains("reserved_of"));
    }
}
