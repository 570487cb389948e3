//! Architecture checks over `src/`: stage layering, file size and leftover string-prefix control flow.
//!
//! Every top-level module of the crate (`src/X.rs` or `src/X/`) is one stage. A stage may use only
//! the stages below it in [`STAGES`]; references are found in code with comments and literals removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The stages, bottom first. `src/main.rs` and `src/lib.rs` (apart from its module declarations) count as `cli`.
const STAGES: &[&str] = &[
    "paths", "error", "model", "kernel", "topology", "case", "report", "exec", "run", "vm", "bench", "campaign",
    "qualify", "cli",
];

/// No file under `src/` may be longer than this.
const MAX_LINES: usize = 600;

/// Leftovers of string-prefix control flow; forbidden anywhere under `src/`, comments included.
const FORBIDDEN: &[&str] = &["SKIP_PREFIX", "INVERTED", "@@OUTCOME@@", "@@ZCRX@@", "\"harness:", ".contains(crate::"];

/// One source file: its path relative to `src/` (with `/` separators) and its text.
struct Source {
    rel: String,
    text: String,
}

fn load_sources() -> Vec<Source> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Source>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel =
                    path.strip_prefix(root).expect("walked path is under src/").to_string_lossy().replace('\\', "/");
                out.push(Source { rel, text });
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    assert!(!out.is_empty(), "no .rs files found under {}", root.display());
    out
}

// Lexing: blank out comments and literals (keeping line breaks), then split into tokens.

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `src` with comments and string/char literals replaced by spaces; newlines are kept so lines still match.
fn strip_code(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && is_ident_char(c[i - 1]);
        let skip = match (c[i], at(i + 1)) {
            ('/', '/') => Some(c[i..].iter().position(|&x| x == '\n').map_or(c.len(), |n| i + n)),
            ('/', '*') => Some(block_comment_end(&c, i + 2)),
            ('"', _) => Some(quoted_end(&c, i + 1, '"')),
            ('\'', '\\') => Some(quoted_end(&c, i + 1, '\'')),
            // `'x'` is a char literal; `'a` without a closing quote right after is a lifetime or label.
            ('\'', _) if at(i + 2) == '\'' => Some(i + 3),
            ('r' | 'b' | 'c', _) if !prev_ident => raw_string_end(&c, i),
            _ => None,
        };
        let end = skip.unwrap_or(i + 1);
        out.extend(c[i..end].iter().map(|&x| if skip.is_none() || x == '\n' { x } else { ' ' }));
        i = end;
    }
    out
}

/// End (exclusive) of a possibly nested block comment whose body starts at `i`.
fn block_comment_end(c: &[char], mut i: usize) -> usize {
    let mut depth = 1;
    while i < c.len() && depth > 0 {
        match (c[i], c.get(i + 1)) {
            ('/', Some('*')) => (depth, i) = (depth + 1, i + 2),
            ('*', Some('/')) => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
    }
    i.min(c.len())
}

/// End (exclusive) of a quoted literal whose body starts at `i`, honouring backslash escapes.
fn quoted_end(c: &[char], mut i: usize, quote: char) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            x if x == quote => return i + 1,
            _ => i += 1,
        }
    }
    c.len()
}

/// End (exclusive) of a raw string `r"…"`, `r#"…"#`, `br"…"` or `cr"…"` starting at `i`, if there is one.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let j = match (c[i], c.get(i + 1)) {
        ('r', _) => i + 1,
        (_, Some('r')) => i + 2,
        _ => return None,
    };
    let hashes = c[j..].iter().take_while(|&&x| x == '#').count();
    let j = j + hashes;
    if c.get(j) != Some(&'"') {
        return None; // e.g. a raw identifier `r#type`
    }
    let closes = |k: usize| c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#'));
    Some((j + 1..c.len()).find(|&k| closes(k)).map_or(c.len(), |k| k + 1 + hashes))
}

struct Tok<'a> {
    text: &'a str,
    line: usize,
}

/// Identifiers (and numbers), `::`, and single punctuation characters, each with its 1-based line.
fn tokenize(code: &str) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    let mut line = 1;
    let mut chars = code.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            line += usize::from(c == '\n');
            continue;
        }
        let mut end = start + c.len_utf8();
        if is_ident_char(c) {
            while let Some((j, d)) = chars.next_if(|&(_, d)| is_ident_char(d)) {
                end = j + d.len_utf8();
            }
        } else if c == ':' && chars.next_if(|&(_, d)| d == ':').is_some() {
            end += 1;
        }
        toks.push(Tok { text: &code[start..end], line });
    }
    toks
}

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

// Paths: flatten `a::b::{c, d::{e as f}}` into one path per leaf.

struct UsePath {
    /// Segments with the line each one is on.
    segs: Vec<(String, usize)>,
    alias: Option<String>,
    /// A simple path directly followed by `!` (a macro invocation).
    macro_call: bool,
}

/// Flattens the path tree starting at token `i` (just after a `::`); returns the index after it.
fn use_tree(toks: &[Tok], mut i: usize, prefix: &mut Vec<(String, usize)>, out: &mut Vec<UsePath>) -> usize {
    let text = |i: usize| toks.get(i).map_or("", |t| t.text);
    match text(i) {
        "{" => {
            i += 1;
            loop {
                if text(i) == "}" {
                    return i + 1;
                }
                let next = use_tree(toks, i, prefix, out);
                match text(next) {
                    "," => i = next + 1,
                    "}" => return next + 1,
                    _ => return next, // malformed or cut short: stop here
                }
            }
        }
        t if is_ident(t) || t == "*" => {
            prefix.push((t.to_string(), toks[i].line));
            i += 1;
            if text(i) == "::" && (is_ident(text(i + 1)) || matches!(text(i + 1), "{" | "*")) {
                i = use_tree(toks, i + 1, prefix, out);
            } else {
                let alias = (text(i) == "as").then(|| text(i + 1).to_string());
                let macro_call = text(i) == "!";
                i += if alias.is_some() { 2 } else { 0 };
                out.push(UsePath { segs: prefix.clone(), alias, macro_call });
            }
            prefix.pop();
            i
        }
        _ => i,
    }
}

fn paths_at(toks: &[Tok], i: usize) -> Vec<UsePath> {
    let mut out = Vec::new();
    use_tree(toks, i, &mut Vec::new(), &mut out);
    out
}

/// Module path of a file: `exec/data.rs` -> `[exec, data]`, `exec/mod.rs` -> `[exec]`, `lib.rs` -> `[]`.
fn module_path(rel: &str) -> Vec<String> {
    if rel == "lib.rs" || rel == "main.rs" {
        return Vec::new();
    }
    let mut parts: Vec<String> = rel.strip_suffix(".rs").unwrap_or(rel).split('/').map(String::from).collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn stage_of(rel: &str) -> String {
    module_path(rel).into_iter().next().unwrap_or_else(|| "cli".into())
}

fn rank(stage: &str) -> Option<usize> {
    STAGES.iter().position(|s| *s == stage)
}

// Analysis

/// What `crate::NAME` can resolve to besides a module: gathered from `lib.rs` and macro definitions.
#[derive(Default)]
struct Crate {
    modules: BTreeSet<String>,
    reexports: BTreeMap<String, String>,
    root_items: BTreeSet<String>,
    macros: BTreeSet<String>,
}

impl Crate {
    fn new(files: &[Source]) -> Crate {
        let modules = files.iter().filter(|f| f.rel != "lib.rs" && f.rel != "main.rs").map(|f| stage_of(&f.rel));
        let mut k = Crate { modules: modules.collect(), ..Crate::default() };
        for f in files {
            let code = strip_code(&f.text);
            let toks = tokenize(&code);
            let defs = toks.windows(3).filter(|w| w[0].text == "macro_rules" && w[1].text == "!");
            k.macros.extend(defs.map(|w| w[2].text.to_string()));
            if f.rel == "lib.rs" {
                k.scan_root(&toks);
            }
        }
        k
    }

    fn scan_root(&mut self, toks: &[Tok]) {
        let mut depth = 0usize;
        for (i, t) in toks.iter().enumerate() {
            let next = toks.get(i + 1).map_or("", |t| t.text);
            match t.text {
                "{" => depth += 1,
                "}" => depth = depth.saturating_sub(1),
                "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "mod"
                    if depth == 0 && is_ident(next) =>
                {
                    self.root_items.insert(next.to_string());
                }
                "use" if depth == 0 => {
                    let mut j = i + 1;
                    for skip in ["::", "crate", "::"] {
                        j += usize::from(toks.get(j).is_some_and(|t| t.text == skip));
                    }
                    for p in paths_at(toks, j) {
                        let (Some(first), Some(last)) = (p.segs.first(), p.segs.last()) else { continue };
                        if p.segs.len() > 1
                            && last.0 != "*"
                            && (rank(&first.0).is_some() || self.modules.contains(&first.0))
                        {
                            self.reexports.insert(p.alias.unwrap_or_else(|| last.0.clone()), first.0.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The stage `crate::name` belongs to; `Ok(None)` for names that are not a dependency (macros, `self`).
    fn resolve(&self, name: &str, macro_call: bool) -> Result<Option<String>, ()> {
        if matches!(name, "self" | "super" | "crate" | "*") || macro_call || self.macros.contains(name) {
            Ok(None)
        } else if rank(name).is_some() || self.modules.contains(name) {
            Ok(Some(name.to_string()))
        } else if let Some(stage) = self.reexports.get(name) {
            Ok(Some(stage.clone()))
        } else if self.root_items.contains(name) {
            Ok(Some("cli".into())) // defined in lib.rs, the crate root
        } else {
            Err(())
        }
    }
}

#[derive(Debug)]
struct Edge {
    file: String,
    line: usize,
    from: String,
    to: String,
    path: String,
}

#[derive(Default)]
struct Analysis {
    unknown_files: Vec<String>,
    unresolved: Vec<String>,
    edges: Vec<Edge>,
}

fn analyze(files: &[Source]) -> Analysis {
    let krate = Crate::new(files);
    let mut a = Analysis::default();
    for f in files {
        let from = stage_of(&f.rel);
        if rank(&from).is_none() {
            a.unknown_files.push(format!("src/{}: module `{from}` is not a stage; add it to the stage list", f.rel));
        }
        let code = strip_code(&f.text);
        let toks = tokenize(&code);
        let text = |i: usize| toks.get(i).map_or("", |t| t.text);
        let base = module_path(&f.rel);
        let mut inline: Vec<usize> = Vec::new(); // brace depth inside each enclosing inline `mod x { … }`
        let mut depth = 0usize;
        let mut seen = BTreeSet::new();
        for i in 0..toks.len() {
            let (prefix, j, in_binary) = match text(i) {
                "{" => {
                    depth += 1;
                    continue;
                }
                "}" => {
                    depth = depth.saturating_sub(1);
                    inline.retain(|&d| d <= depth);
                    continue;
                }
                "mod" if is_ident(text(i + 1)) && text(i + 2) == "{" => {
                    inline.push(depth + 1);
                    continue;
                }
                "crate" | "zcrx_conform" if text(i + 1) == "::" => {
                    (format!("{}::", text(i)), i + 2, f.rel == "main.rs" && text(i) == "crate")
                }
                "super" if text(i + 1) == "::" && (i == 0 || text(i - 1) != "::") => {
                    let mut j = i;
                    while text(j) == "super" && text(j + 1) == "::" {
                        j += 2;
                    }
                    let climb = (j - i) / 2;
                    if climb != base.len() + inline.len() {
                        continue; // stays inside this file's stage (or is invalid)
                    }
                    ("super::".repeat(climb), j, f.rel == "main.rs")
                }
                _ => continue,
            };
            for p in paths_at(&toks, j) {
                let Some((name, line)) = p.segs.first() else { continue };
                let shown = format!("{prefix}{}", p.segs.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join("::"));
                let to = if in_binary { Ok(Some("cli".to_string())) } else { krate.resolve(name, p.macro_call) };
                match to {
                    Ok(Some(to)) if to != from && seen.insert((*line, to.clone())) => {
                        a.edges.push(Edge { file: f.rel.clone(), line: *line, from: from.clone(), to, path: shown });
                    }
                    Ok(_) => {}
                    Err(()) => {
                        a.unresolved.push(format!("src/{}:{line}: `{shown}`: no module or lib.rs item `{name}`", f.rel))
                    }
                }
            }
        }
    }
    a
}

impl Analysis {
    fn up_edges(&self) -> Vec<String> {
        let up = |e: &&Edge| matches!((rank(&e.from), rank(&e.to)), (Some(from), Some(to)) if to >= from);
        let say = |e: &Edge| {
            format!("src/{}:{}: `{}`: stage {} uses {}, which is above it", e.file, e.line, e.path, e.from, e.to)
        };
        self.edges.iter().filter(up).map(say).collect()
    }

    /// Strongly connected components of the stage graph with more than one stage, one line each.
    fn cycles(&self) -> Vec<String> {
        let mut first: BTreeMap<(&str, &str), &Edge> = BTreeMap::new();
        for e in &self.edges {
            first.entry((e.from.as_str(), e.to.as_str())).or_insert(e);
        }
        let mut nodes: Vec<&str> = first.keys().flat_map(|&(a, b)| [a, b]).collect();
        nodes.sort_by_key(|s| (rank(s).unwrap_or(STAGES.len()), s.to_string()));
        nodes.dedup();
        let reach = |from: &str| {
            let (mut seen, mut todo) = (BTreeSet::new(), vec![from]);
            while let Some(n) = todo.pop() {
                todo.extend(first.keys().filter(|k| k.0 == n && seen.insert(k.1)).map(|k| k.1));
            }
            seen
        };
        let reaches: BTreeMap<&str, BTreeSet<&str>> = nodes.iter().map(|&n| (n, reach(n))).collect();
        let mut done = BTreeSet::new();
        let mut out = Vec::new();
        for &n in &nodes {
            let comp: Vec<&str> = nodes
                .iter()
                .copied()
                .filter(|m| m == &n || (reaches[n].contains(m) && reaches[m].contains(n)))
                .collect();
            if comp.len() < 2 || !done.insert(comp.clone()) {
                continue;
            }
            let links: Vec<String> = first
                .iter()
                .filter(|(k, _)| comp.contains(&k.0) && comp.contains(&k.1))
                .map(|(k, e)| format!("{} -> {} at src/{}:{}", k.0, k.1, e.file, e.line))
                .collect();
            out.push(format!("cycle among stages {{{}}}: {}", comp.join(", "), links.join("; ")));
        }
        out
    }
}

fn oversized(files: &[Source]) -> Vec<String> {
    files
        .iter()
        .map(|f| (f, f.text.lines().count()))
        .filter(|&(_, n)| n > MAX_LINES)
        .map(|(f, n)| format!("src/{}: {n} lines (max {MAX_LINES})", f.rel))
        .collect()
}

fn forbidden(files: &[Source]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        for (n, line) in f.text.lines().enumerate() {
            for pat in FORBIDDEN.iter().filter(|p| line.contains(*p)) {
                out.push(format!("src/{}:{}: `{pat}`", f.rel, n + 1));
            }
        }
    }
    out
}

fn assert_none(what: &str, problems: &[String], hint: &str) {
    assert!(problems.is_empty(), "{what}: {} problem(s)\n  {}\n{hint}", problems.len(), problems.join("\n  "));
}

// The checks on this crate.

#[test]
fn every_source_file_belongs_to_a_stage() {
    let a = analyze(&load_sources());
    assert_none("files outside the stages", &a.unknown_files, &format!("stages, bottom first: {STAGES:?}"));
}

#[test]
fn stages_use_only_lower_stages() {
    let a = analyze(&load_sources());
    let mut problems = a.up_edges();
    problems.extend(a.unresolved);
    let hint = format!("stages, bottom first: {STAGES:?}; items defined in src/lib.rs count as stage cli");
    assert_none("references to a stage that is not below", &problems, &hint);
}

#[test]
fn no_import_cycles_between_stages() {
    assert_none("import cycles", &analyze(&load_sources()).cycles(), "each cycle needs one of its edges reversed");
}

#[test]
fn no_source_file_over_the_line_limit() {
    assert_none("oversized files", &oversized(&load_sources()), "split these files along their stage's concerns");
}

#[test]
fn no_string_prefix_control_flow() {
    assert_none("string-prefix control flow", &forbidden(&load_sources()), "carry outcomes as typed values instead");
}

// Tests of the checker itself.

mod checker {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<Source> {
        list.iter().map(|(rel, text)| Source { rel: rel.to_string(), text: text.to_string() }).collect()
    }

    /// `file:line -> stage` for every edge found.
    fn edges(list: &[(&str, &str)]) -> Vec<String> {
        analyze(&files(list)).edges.iter().map(|e| format!("{}:{} -> {}", e.file, e.line, e.to)).collect()
    }

    #[test]
    fn an_up_edge_and_its_cycle_are_caught() {
        let a =
            analyze(&files(&[("model/mod.rs", "use crate::exec::Status;\n"), ("exec/x.rs", "use crate::model::X;")]));
        let up = "src/model/mod.rs:1: `crate::exec::Status`: stage model uses exec, which is above it";
        assert_eq!(a.up_edges(), [up]);
        let cycles = a.cycles();
        assert!(cycles.len() == 1 && cycles[0].starts_with("cycle among stages {model, exec}: "), "{cycles:?}");
    }

    #[test]
    fn a_use_group_over_several_lines_is_parsed() {
        let src = "use crate::{\n    kernel::{Ring,\n        Cqe},\n    model,\n    case::{self, Case as C},\n};\n";
        assert_eq!(
            edges(&[("exec/mod.rs", src)]),
            ["exec/mod.rs:2 -> kernel", "exec/mod.rs:4 -> model", "exec/mod.rs:5 -> case"]
        );
    }

    #[test]
    fn super_paths_climbing_out_of_the_stage_are_resolved() {
        let data = "use super::super::run::X;\nuse super::Local;\nmod tests {\n    use super::*;\n    use super::super::super::vm;\n}\n";
        let module = "use super::model::Event;\nfn f() { super::kernel::g() }\n";
        let want =
            ["exec/data.rs:1 -> run", "exec/data.rs:5 -> vm", "exec/mod.rs:1 -> model", "exec/mod.rs:2 -> kernel"];
        assert_eq!(edges(&[("exec/data.rs", data), ("exec/mod.rs", module)]), want);
    }

    #[test]
    fn comments_and_literals_are_ignored() {
        let src = "// crate::exec\n/* crate::exec /* nested */ crate::exec */\nlet s = \"crate::exec \\\" crate::exec\";\n\
                   let r = r#\"crate::exec \"quoted\" \"#;\nlet q = '\"'; let d = crate::paths::X;\nlet b = br\"crate::exec\";\n";
        assert_eq!(edges(&[("model/mod.rs", src)]), ["model/mod.rs:5 -> paths"]);
    }

    #[test]
    fn a_lifetime_does_not_start_a_char_literal() {
        assert_eq!(strip_code("fn f<'a>(x: &'a str) -> char { 'b' }"), "fn f<'a>(x: &'a str) -> char {     }");
        let src = "struct S<'a>(&'a str);\nfn g() -> char { '\\'' }\nuse crate::exec::Z;\n";
        assert_eq!(edges(&[("model/mod.rs", src)]), ["model/mod.rs:3 -> exec"]);
    }

    #[test]
    fn root_items_reexports_and_binary_paths_resolve() {
        let lib = "pub mod model;\npub use model::Event as Ev;\npub fn repo_root() {}\n";
        let main = "use zcrx_conform::{model, Ev};\nuse crate::args::Args;\n";
        let src = "fn f() { crate::repo_root(); crate::Ev::new(); crate::nope(); crate::log!(); }\n";
        let a = analyze(&files(&[("lib.rs", lib), ("main.rs", main), ("model/mod.rs", src), ("foo.rs", "")]));
        assert_eq!(a.up_edges(), ["src/model/mod.rs:1: `crate::repo_root`: stage model uses cli, which is above it"]);
        assert!(a.unresolved.len() == 1 && a.unresolved[0].contains("`crate::nope`"), "{:?}", a.unresolved);
        assert_eq!(a.unknown_files, ["src/foo.rs: module `foo` is not a stage; add it to the stage list"]);
        assert_eq!(a.edges.iter().filter(|e| e.file == "main.rs").count(), 1, "{:?}", a.edges);
    }

    #[test]
    fn a_file_over_the_limit_is_caught() {
        let (ok, long) = ("x\n".repeat(MAX_LINES), "x\n".repeat(MAX_LINES + 1));
        assert_eq!(oversized(&files(&[("a.rs", &ok), ("b/c.rs", &long)])), ["src/b/c.rs: 601 lines (max 600)"]);
    }

    #[test]
    fn forbidden_text_is_caught_even_in_comments() {
        let src = "fn f() {}\n// SKIP_PREFIX\nlet s = \"harness: x\";\n";
        assert_eq!(forbidden(&files(&[("a.rs", src)])), ["src/a.rs:2: `SKIP_PREFIX`", "src/a.rs:3: `\"harness:`"]);
    }
}
