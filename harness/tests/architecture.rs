//! Architecture checks over `src/`: stage layering, file size and leftover string-prefix control flow.
//!
//! Every top-level module of the crate (`src/X.rs` or `src/X/`) is one stage. The stages, bottom
//! first, and what each may use are the table under "Allowed dependencies" in
//! docs/architecture.md, read here ([`Rules`]): the one source of truth. A stage may use only
//! the stages its row names, all of them below it; the modules inside one stage (`cli/bisect`,
//! `cli/commands`, ...) may not use one another in a circle. References are found in code with
//! comments and literals removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

#[path = "architecture/lex.rs"]
mod lex;
use lex::{is_ident, paths_at, strip_code, tokenize, Tok};

/// The stages, bottom first, and the stages each may use: the table of docs/architecture.md.
/// `src/main.rs` and `src/lib.rs` (apart from its module declarations) count as `cli`.
struct Rules {
    stages: Vec<String>,
    allowed: BTreeMap<String, BTreeSet<String>>,
}

impl Rules {
    /// The rows of the table under the `## Allowed dependencies` heading: `| `stage` | `a`, `b` | why |`.
    fn parse(doc: &str) -> Result<Rules, String> {
        let section = doc.split("\n## Allowed dependencies").nth(1).ok_or("no `## Allowed dependencies` section")?;
        let mut r = Rules { stages: Vec::new(), allowed: BTreeMap::new() };
        for line in section.lines().skip(1).take_while(|l| !l.starts_with("## ")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 4 || !cells[1].starts_with('`') {
                continue;
            }
            let names = |c: &str| c.split('`').skip(1).step_by(2).map(String::from).collect::<Vec<_>>();
            let stage = names(cells[1]).into_iter().next().ok_or("a row without a stage")?;
            for used in names(cells[2]) {
                if !r.stages.contains(&used) {
                    return Err(format!("`{stage}` may use `{used}`, which is not a stage listed above it"));
                }
            }
            r.allowed.insert(stage.clone(), names(cells[2]).into_iter().collect());
            r.stages.push(stage);
        }
        if r.stages.is_empty() {
            return Err("the allowed-dependency table has no rows".into());
        }
        Ok(r)
    }
}

/// The rules of this crate, from docs/architecture.md.
fn rules() -> &'static Rules {
    static RULES: std::sync::OnceLock<Rules> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/architecture.md");
        let doc = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Rules::parse(&doc).unwrap_or_else(|e| panic!("docs/architecture.md: {e}"))
    })
}

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
    rules().stages.iter().position(|s| *s == stage)
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
    /// Between stages.
    edges: Vec<Edge>,
    /// Between the modules of one stage (`from`/`to`: `stage::module`, a module's files together).
    inner: Vec<Edge>,
}

/// The module of one stage a path leads to: `super::…` or `crate::STAGE::…` from a file of
/// module `base`, `inline` modules deep; `None` when it stays in the file's module or leaves
/// the stage.
fn inner_target(base: &[String], inline: usize, climb: Option<usize>, segs: &[String]) -> Option<String> {
    let target: Vec<&String> = match climb {
        Some(c) if c < base.len() + inline && base.len() + inline - c <= base.len() => {
            base[..base.len() + inline - c].iter().chain(segs).collect()
        }
        Some(_) => return None,
        None => segs.iter().collect(),
    };
    (target.first().copied() == base.first()).then(|| target.get(1).map(|m| m.to_string())).flatten()
}

fn analyze(files: &[Source]) -> Analysis {
    let krate = Crate::new(files);
    let modules: BTreeSet<Vec<String>> =
        files.iter().map(|f| module_path(&f.rel)).filter(|m| m.len() >= 2).map(|m| m[..2].to_vec()).collect();
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
                        // Inside this file's stage: an edge between two of its modules?
                        for p in paths_at(&toks, j) {
                            let segs: Vec<String> = p.segs.iter().map(|s| s.0.clone()).collect();
                            let to = inner_target(&base, inline.len(), Some(climb), &segs);
                            a.inner_edge(f, &base, &modules, to, p.segs.first().map_or(0, |s| s.1), &segs);
                        }
                        continue;
                    }
                    ("super::".repeat(climb), j, f.rel == "main.rs")
                }
                _ => continue,
            };
            for p in paths_at(&toks, j) {
                let segs: Vec<String> = p.segs.iter().map(|s| s.0.clone()).collect();
                if !prefix.starts_with("super") && !base.is_empty() {
                    let to = inner_target(&base, inline.len(), None, &segs);
                    a.inner_edge(f, &base, &modules, to, p.segs.first().map_or(0, |s| s.1), &segs);
                }
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
    /// Records `f` (module `base`) using module `to` of its own stage, when that is another module.
    fn inner_edge(
        &mut self,
        f: &Source,
        base: &[String],
        modules: &BTreeSet<Vec<String>>,
        to: Option<String>,
        line: usize,
        segs: &[String],
    ) {
        let (Some(stage), Some(own), Some(to)) = (base.first(), base.get(1), to) else { return };
        if &to == own || !modules.contains(&vec![stage.clone(), to.clone()]) {
            return;
        }
        let (from, to) = (format!("{stage}::{own}"), format!("{stage}::{to}"));
        if !self.inner.iter().any(|e| e.file == f.rel && e.to == to) {
            self.inner.push(Edge { file: f.rel.clone(), line, from, to, path: segs.join("::") });
        }
    }

    fn up_edges(&self) -> Vec<String> {
        let up = |e: &&Edge| matches!((rank(&e.from), rank(&e.to)), (Some(from), Some(to)) if to >= from);
        let say = |e: &Edge| {
            format!("src/{}:{}: `{}`: stage {} uses {}, which is above it", e.file, e.line, e.path, e.from, e.to)
        };
        self.edges.iter().filter(up).map(say).collect()
    }

    /// Edges to a lower stage that the table of `rules` does not list for the stage.
    fn unlisted_edges(&self, rules: &Rules) -> Vec<String> {
        let below = |e: &&Edge| matches!((rank(&e.from), rank(&e.to)), (Some(from), Some(to)) if to < from);
        let listed = |e: &&Edge| rules.allowed.get(&e.from).is_some_and(|a| a.contains(&e.to));
        let mut first = BTreeMap::new();
        for e in self.edges.iter().filter(below).filter(|e| !listed(e)) {
            first.entry((e.from.as_str(), e.to.as_str())).or_insert(e);
        }
        first
            .values()
            .map(|e| {
                format!(
                    "src/{}:{}: `{}`: stage {} uses {}, which docs/architecture.md's table does not allow",
                    e.file, e.line, e.path, e.from, e.to
                )
            })
            .collect()
    }

    /// Strongly connected components of the stage graph with more than one stage, one line each.
    fn cycles(&self) -> Vec<String> {
        cycles_of(&self.edges, "stages")
    }

    /// The same inside each stage, between its modules.
    fn inner_cycles(&self) -> Vec<String> {
        cycles_of(&self.inner, "modules of a stage")
    }
}

/// Strongly connected components with more than one node, one line each.
fn cycles_of(edges: &[Edge], what: &str) -> Vec<String> {
    {
        let mut first: BTreeMap<(&str, &str), &Edge> = BTreeMap::new();
        for e in edges {
            first.entry((e.from.as_str(), e.to.as_str())).or_insert(e);
        }
        let mut nodes: Vec<&str> = first.keys().flat_map(|&(a, b)| [a, b]).collect();
        nodes.sort_by_key(|s| (rank(s).unwrap_or(usize::MAX), s.to_string()));
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
            out.push(format!("cycle among {what} {{{}}}: {}", comp.join(", "), links.join("; ")));
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
    let stages = &rules().stages;
    assert_none("files outside the stages", &a.unknown_files, &format!("stages, bottom first: {stages:?}"));
}

#[test]
fn stages_use_only_lower_stages() {
    let a = analyze(&load_sources());
    let mut problems = a.up_edges();
    problems.extend(a.unresolved);
    let stages = &rules().stages;
    let hint = format!("stages, bottom first: {stages:?}; items defined in src/lib.rs count as stage cli");
    assert_none("references to a stage that is not below", &problems, &hint);
}

#[test]
fn stages_use_only_what_the_doc_allows() {
    let a = analyze(&load_sources());
    let hint = "the table under `## Allowed dependencies` in docs/architecture.md is the rule: change the code, or \
                the table if the dependency is right";
    assert_none("dependencies the doc does not allow", &a.unlisted_edges(rules()), hint);
}

#[test]
fn no_import_cycles_inside_a_stage() {
    let a = analyze(&load_sources());
    assert_none("import cycles inside a stage", &a.inner_cycles(), "move what both use into a third module");
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
    fn a_circle_between_two_modules_of_one_stage_is_caught() {
        let a = analyze(&files(&[
            ("cli/mod.rs", "pub mod a;\npub mod b;\npub struct Args;\n"),
            ("cli/a.rs", "use super::b::run;\nuse super::Args;\n"),
            ("cli/b.rs", "fn f() { crate::cli::a::g(); }\nmod tests {\n    use super::super::a::X;\n}\n"),
            ("cli/b/deep.rs", "use super::super::super::cli::a::Y;\nuse super::f;\n"),
            ("cli/c.rs", "use super::a::Z;\n"),
        ]));
        let inner: Vec<String> =
            a.inner.iter().map(|e| format!("{}:{} {} -> {}", e.file, e.line, e.from, e.to)).collect();
        assert_eq!(
            inner,
            ["cli/a.rs:1 cli::a -> cli::b", "cli/b.rs:1 cli::b -> cli::a", "cli/c.rs:1 cli::c -> cli::a"],
            "the root (`super::Args`), a module's own files (`super::f`) and repeats are no edges"
        );
        assert_eq!(a.inner_cycles(), ["cycle among modules of a stage {cli::a, cli::b}: cli::a -> cli::b at src/cli/a.rs:1; cli::b -> cli::a at src/cli/b.rs:1"]);
        assert!(a.cycles().is_empty(), "no cycle between stages");
    }

    #[test]
    fn the_doc_table_is_the_rule() {
        let doc = "# A\n\n## Allowed dependencies\n\n| stage | may use |\n|---|---|\n| `paths` | |\n\
                   | `model` | `paths` |\n| `exec` | `model` |\n\n## Next\n| `cli` | `exec` |\n";
        let r = Rules::parse(doc).expect("parses");
        assert_eq!(r.stages, ["paths", "model", "exec"]);
        let a = analyze(&files(&[("exec/mod.rs", "use crate::model::X;\nuse crate::paths::Y;\n")]));
        assert_eq!(
            a.unlisted_edges(&r),
            ["src/exec/mod.rs:2: `crate::paths::Y`: stage exec uses paths, which docs/architecture.md's table does not allow"]
        );
        let above = "\n## Allowed dependencies\n| `paths` | `model` |\n| `model` | |\n";
        assert!(Rules::parse(above).is_err_and(|e| e.contains("not a stage listed above it")));
        assert!(Rules::parse("no table").is_err());
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
