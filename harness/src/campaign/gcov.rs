//! Line and function coverage of io_uring/zcrx.c from gcov's JSON (`gcov --json-format`),
//! lcov's tracefile, uncovered ranges, and the lines a patch changes.

use std::collections::{BTreeMap, BTreeSet};

use super::Error;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct GcovJson {
    files: Vec<GcovFile>,
}

#[derive(Deserialize)]
struct GcovFile {
    file: String,
    #[serde(default)]
    functions: Vec<GcovFunction>,
    #[serde(default)]
    lines: Vec<GcovLine>,
}

#[derive(Deserialize)]
struct GcovFunction {
    name: String,
    #[serde(default)]
    demangled_name: Option<String>,
    start_line: u32,
    end_line: u32,
    execution_count: u64,
}

#[derive(Deserialize)]
struct GcovLine {
    line_number: u32,
    count: u64,
}

/// The lines of C `source` inside a WARN_ON branch: the statement that an
/// `if (WARN_ON(...))` or `if (WARN_ON_ONCE(...))` guards (the lines after its condition, up to
/// the end of the statement or the braced block), which only a kernel bug runs. A body on the
/// condition's own line is not counted (that line also runs the check).
pub fn warn_branch_lines(source: &str) -> BTreeSet<u32> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(at) = lines[i].find("if (WARN_ON") else {
            i += 1;
            continue;
        };
        // The condition's closing parenthesis (it may span lines).
        let (mut depth, mut j, mut rest) = (0i32, i, None);
        let mut text = &lines[i][at + 3..];
        'cond: loop {
            for (k, ch) in text.char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            rest = Some(text[k + 1..].trim());
                            break 'cond;
                        }
                    }
                    _ => {}
                }
            }
            j += 1;
            if j >= lines.len() {
                break;
            }
            text = lines[j];
        }
        let Some(rest) = rest else { break };
        let next_is_brace = rest.is_empty() && lines.get(j + 1).is_some_and(|l| l.trim() == "{");
        let mut k = j + 1;
        if rest.starts_with('{') || next_is_brace {
            // A braced block: its lines up to the matching closing brace.
            k += usize::from(next_is_brace);
            let mut depth = 1i32;
            while k < lines.len() {
                depth += lines[k].matches('{').count() as i32 - lines[k].matches('}').count() as i32;
                if depth <= 0 {
                    break;
                }
                out.insert(k as u32 + 1);
                k += 1;
            }
        } else if rest.is_empty() {
            // One statement, up to its semicolon.
            while k < lines.len() {
                out.insert(k as u32 + 1);
                if lines[k].trim_end().ends_with(';') {
                    break;
                }
                k += 1;
            }
        } else {
            k = j;
        }
        i = k + 1;
    }
    out
}

/// One function of the file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Function {
    pub name: String,
    pub start: u32,
    pub end: u32,
    pub count: u64,
}

/// Coverage of one source file: executable lines with their counts, and the functions.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FileCoverage {
    pub file: String,
    pub lines: BTreeMap<u32, u64>,
    pub functions: Vec<Function>,
}

impl FileCoverage {
    /// From gcov's JSON: the entry whose path ends with `suffix` (e.g. `io_uring/zcrx.c`).
    pub fn from_gcov_json(text: &str, suffix: &str) -> Result<FileCoverage, Error> {
        let j: GcovJson = serde_json::from_str(text).map_err(|e| Error::Run(format!("gcov JSON: {e}")))?;
        let f = j
            .files
            .into_iter()
            .find(|f| f.file.ends_with(suffix))
            .ok_or_else(|| Error::Run(format!("gcov JSON has no entry for {suffix}")))?;
        let mut c = FileCoverage { file: suffix.to_string(), ..Default::default() };
        for l in f.lines {
            *c.lines.entry(l.line_number).or_default() += l.count;
        }
        c.functions = f
            .functions
            .into_iter()
            .map(|g| Function {
                name: g.demangled_name.unwrap_or(g.name),
                start: g.start_line,
                end: g.end_line,
                count: g.execution_count,
            })
            .collect();
        c.functions.sort_by_key(|f| f.start);
        Ok(c)
    }

    /// Adds another boot's counts of the same build (a VM booted again starts from zero).
    pub fn merge(&mut self, other: &FileCoverage) {
        for (l, c) in &other.lines {
            *self.lines.entry(*l).or_default() += c;
        }
        if self.functions.is_empty() {
            self.functions = other.functions.clone();
        } else {
            for f in &mut self.functions {
                f.count += other.functions.iter().filter(|g| g.name == f.name).map(|g| g.count).sum::<u64>();
            }
        }
    }

    /// Executable lines not in `skip`, and how many of them ran.
    pub fn hit_outside(&self, skip: &BTreeSet<u32>) -> (usize, usize) {
        let r: Vec<u64> = self.lines.iter().filter(|(l, _)| !skip.contains(l)).map(|(_, c)| *c).collect();
        (r.iter().filter(|c| **c > 0).count(), r.len())
    }

    pub fn lines_found(&self) -> usize {
        self.lines.len()
    }

    pub fn lines_hit(&self) -> usize {
        self.lines.values().filter(|c| **c > 0).count()
    }

    pub fn percent(&self) -> f64 {
        100.0 * self.lines_hit() as f64 / self.lines_found().max(1) as f64
    }

    /// The function a line belongs to.
    pub fn function_of(&self, line: u32) -> Option<&Function> {
        self.functions.iter().filter(|f| f.start <= line && line <= f.end).min_by_key(|f| f.end - f.start)
    }

    /// (hit, found) executable lines of a function.
    pub fn function_lines(&self, f: &Function) -> (usize, usize) {
        let r: Vec<u64> = self.lines.range(f.start..=f.end).map(|(_, c)| *c).collect();
        (r.iter().filter(|c| **c > 0).count(), r.len())
    }

    /// Runs of consecutive executable lines that never ran, as (first, last).
    pub fn uncovered_ranges(&self) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        let mut prev_hit = true;
        for (&l, &c) in &self.lines {
            if c == 0 {
                match out.last_mut() {
                    Some(r) if !prev_hit => r.1 = l,
                    _ => out.push((l, l)),
                }
            }
            prev_hit = c > 0;
        }
        out
    }

    /// lcov's tracefile (`SF`, `FN`, `FNDA`, `DA`, totals, `end_of_record`), `test` named `TN`.
    pub fn lcov(&self, test: &str, source: &str) -> String {
        let mut s = format!("TN:{test}\nSF:{source}\n");
        for f in &self.functions {
            let _ = writeln!(s, "FN:{},{}", f.start, f.name);
        }
        for f in &self.functions {
            let _ = writeln!(s, "FNDA:{},{}", f.count, f.name);
        }
        let _ =
            writeln!(s, "FNF:{}\nFNH:{}", self.functions.len(), self.functions.iter().filter(|f| f.count > 0).count());
        for (l, c) in &self.lines {
            let _ = writeln!(s, "DA:{l},{c}");
        }
        let _ = writeln!(s, "LF:{}\nLH:{}\nend_of_record", self.lines_found(), self.lines_hit());
        s
    }
}

/// The lines of `file` (as named after `+++ b/`) that a unified diff adds or changes, in the
/// new version's numbering.
pub fn changed_lines(diff: &str, file: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut in_file = false;
    for l in diff.lines() {
        if let Some(p) = l.strip_prefix("+++ ") {
            in_file = p.trim_start_matches("b/").split('\t').next() == Some(file);
            continue;
        }
        if !in_file {
            continue;
        }
        let Some(rest) = l.strip_prefix("@@ ") else { continue };
        let Some(new) = rest.split_whitespace().find(|t| t.starts_with('+')) else { continue };
        let new = &new[1..];
        let (start, count) = match new.split_once(',') {
            Some((a, b)) => (a.parse::<u32>().unwrap_or(0), b.parse::<u32>().unwrap_or(0)),
            None => (new.parse::<u32>().unwrap_or(0), 1),
        };
        out.extend(start..start.saturating_add(count));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const J: &str = r#"{"format_version":"1","files":[
      {"file":"/t/include/linux/x.h","functions":[],"lines":[{"line_number":3,"count":9}]},
      {"file":"/t/io_uring/zcrx.c","functions":[
        {"name":"a","demangled_name":"a","start_line":1,"end_line":5,"execution_count":2,"blocks":1,"blocks_executed":1},
        {"name":"b","demangled_name":"b","start_line":7,"end_line":9,"execution_count":0,"blocks":1,"blocks_executed":0}],
       "lines":[{"line_number":2,"count":2},{"line_number":3,"count":0},{"line_number":4,"count":0},
                {"line_number":5,"count":1},{"line_number":8,"count":0},{"line_number":9,"count":0}]}]}"#;

    #[test]
    fn parses_and_summarises() {
        let c = FileCoverage::from_gcov_json(J, "io_uring/zcrx.c").expect("parses");
        assert_eq!((c.lines_hit(), c.lines_found()), (2, 6));
        assert_eq!(c.uncovered_ranges(), vec![(3, 4), (8, 9)]);
        assert_eq!(c.function_of(8).map(|f| f.name.as_str()), Some("b"));
        assert_eq!(c.function_lines(&c.functions[0]), (2, 4));
        let t = c.lcov("suite", "/t/io_uring/zcrx.c");
        assert!(t.contains("FN:7,b\n") && t.contains("FNDA:0,b\n") && t.contains("DA:3,0\n"));
        assert!(t.ends_with("LF:6\nLH:2\nend_of_record\n"), "{t}");
        assert!(FileCoverage::from_gcov_json(J, "io_uring/net.c").is_err());
    }

    #[test]
    fn diff_lines() {
        let d = "diff --git a/io_uring/zcrx.c b/io_uring/zcrx.c\n--- a/io_uring/zcrx.c\n+++ b/io_uring/zcrx.c\n\
                 @@ -10,2 +10,3 @@ f\n-x\n+y\n@@ -40 +41 @@\n-p\n+q\n@@ -50,1 +52,0 @@\n-gone\n\
                 --- a/io_uring/net.c\n+++ b/io_uring/net.c\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(changed_lines(d, "io_uring/zcrx.c"), vec![10, 11, 12, 41]);
    }

    #[test]
    fn warn_branches() {
        let src = "int f(int x)\n{\n\tif (WARN_ON_ONCE(x))\n\t\treturn -EINVAL;\n\tif (WARN_ON(x >\n\t\t    1)) {\n\t\ta();\n\t\tif (x) { b(); }\n\t}\n\
                   \tif (WARN_ON_ONCE(x)) return 1;\n\tif (WARN_ON_ONCE(!x))\n\t{\n\t\tc();\n\t}\n\tWARN_ON_ONCE(x);\n\treturn 0;\n}\n";
        let got: Vec<u32> = warn_branch_lines(src).into_iter().collect();
        assert_eq!(got, vec![4, 7, 8, 13]);
        let mut c = FileCoverage::from_gcov_json(J, "io_uring/zcrx.c").expect("parses");
        let skip: BTreeSet<u32> = [3, 4].into_iter().collect();
        assert_eq!(c.hit_outside(&skip), (2, 4));
        let other = c.clone();
        c.merge(&other);
        assert_eq!((c.lines[&2], c.functions[0].count, c.lines_found()), (4, 4, 6));
    }
}
