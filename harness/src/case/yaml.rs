//! A case file as a tree of YAML nodes ([`Node`]), each with the line and column it was
//! written at. The tree is read once per file; matrix values are substituted into copies of
//! it (`matrix.rs`) and each copy is deserialized (`de.rs`), so every error points into the
//! file as written.
//!
//! Reading is bounded: at most [`MAX_NODES`] nodes (aliases count as the nodes they copy),
//! [`MAX_DEPTH`] levels of nesting, one document, no tags.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Span, StructureStyle};

/// Most nodes a file may hold, aliases expanded.
pub const MAX_NODES: usize = 100_000;
/// Deepest nesting of lists and mappings.
pub const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Unquoted: its type (null, bool, number, string) follows from its text.
    Plain,
    /// Single- or double-quoted: always a string.
    Quoted,
    /// A `|` or `>` block: always a string.
    Block,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Scalar {
        text: String,
        style: Style,
    },
    Seq(Vec<Node>),
    /// `bare`: written `{word}`, a flow mapping of one key and no value (a placeholder).
    Map {
        entries: Vec<(Node, Node)>,
        bare: bool,
    },
}

/// A YAML node and where it starts (1-based line and column, in characters).
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub line: u64,
    pub column: u64,
}

/// A YAML syntax error or a limit reached, with its place.
#[derive(Clone, Debug)]
pub struct YamlError {
    pub line: u64,
    pub column: u64,
    pub msg: String,
}

impl Node {
    pub fn scalar(text: &str, style: Style, line: u64, column: u64) -> Node {
        Node { kind: Kind::Scalar { text: text.to_string(), style }, line, column }
    }

    /// A plain scalar that means null (`~`, `null`, nothing).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, style: Style::Plain } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The text of a scalar.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and the value of `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Map { entries, .. } => entries.iter().find(|(k, _)| k.text() == Some(key)).map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The `i`-th item of a list.
    pub fn item(&self, i: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.get(i),
            _ => None,
        }
    }

    /// How many nodes this one is made of (itself included).
    pub fn count(&self) -> usize {
        1 + match &self.kind {
            Kind::Scalar { .. } => 0,
            Kind::Seq(items) => items.iter().map(Node::count).sum(),
            Kind::Map { entries, .. } => entries.iter().map(|(k, v)| k.count() + v.count()).sum(),
        }
    }

    /// Moves this node and everything in it to one place (a substituted value is reported
    /// where its placeholder is).
    pub fn relocate(&mut self, line: u64, column: u64) {
        self.line = line;
        self.column = column;
        match &mut self.kind {
            Kind::Scalar { .. } => {}
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.relocate(line, column)),
            Kind::Map { entries, .. } => entries.iter_mut().for_each(|(k, v)| {
                k.relocate(line, column);
                v.relocate(line, column);
            }),
        }
    }

    /// What the node is, in words, for error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "nothing (null)".into(),
            Kind::Scalar { text, .. } => format!("`{}`", short(text)),
            Kind::Seq(_) => "a list".into(),
            Kind::Map { .. } => "a mapping".into(),
        }
    }

    /// The first key that appears twice in a mapping, anywhere in the tree:
    /// (the second key, the line of the first).
    pub fn duplicate_key(&self) -> Option<(&Node, u64)> {
        match &self.kind {
            Kind::Scalar { .. } => None,
            Kind::Seq(items) => items.iter().find_map(Node::duplicate_key),
            Kind::Map { entries, .. } => {
                let mut seen: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
                for (k, _) in entries {
                    if let Some(t) = k.text() {
                        if let Some(first) = seen.insert(t, k.line) {
                            return Some((k, first));
                        }
                    }
                }
                entries.iter().find_map(|(k, v)| k.duplicate_key().or_else(|| v.duplicate_key()))
            }
        }
    }
}

/// A user-written string for a message: control characters escaped, at most 60 characters.
pub fn short(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(60) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if s.chars().nth(60).is_some() {
        out.push_str(&format!("… ({} bytes)", s.len()));
    }
    out
}

enum Frame {
    Seq { node: Node, anchor: usize },
    Map { node: Node, anchor: usize, key: Option<Node>, key_end: Option<usize>, flow: bool },
}

struct Builder<'a> {
    text: &'a str,
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
}

fn at(span: &Span) -> (u64, u64) {
    (span.start.line() as u64, span.start.col() as u64 + 1)
}

fn err(span: &Span, msg: impl Into<String>) -> YamlError {
    let (line, column) = at(span);
    YamlError { line, column, msg: msg.into() }
}

fn scan_err(e: &ScanError) -> YamlError {
    let m = e.marker();
    let info = e.info();
    let msg =
        if info.trim().is_empty() { "invalid YAML".to_string() } else { format!("invalid YAML: {}", info.trim()) };
    YamlError { line: m.line() as u64, column: m.col() as u64 + 1, msg }
}

impl Builder<'_> {
    fn count(&mut self, n: usize, span: &Span) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(err(span, format!("file too large: more than {MAX_NODES} YAML nodes (aliases included)")));
        }
        Ok(())
    }

    /// Adds a finished node to its parent (or makes it the document).
    fn attach(&mut self, node: Node, anchor: usize, end: Option<usize>) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { node: Node { kind: Kind::Seq(items), .. }, .. }) => items.push(node),
            Some(Frame::Map { node: Node { kind: Kind::Map { entries, .. }, .. }, key, key_end, .. }) => {
                match key.take() {
                    None => {
                        *key = Some(node);
                        *key_end = end;
                    }
                    Some(k) => entries.push((k, node)),
                }
            }
            Some(_) => {}
        }
    }

    fn push(&mut self, frame: Frame, span: &Span) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(err(span, format!("nested too deep: more than {MAX_DEPTH} levels")));
        }
        self.count(1, span)?;
        self.stack.push(frame);
        Ok(())
    }

    fn event(&mut self, ev: Event<'_>, span: &Span) -> Result<(), YamlError> {
        let (line, column) = at(span);
        let untagged = |tag: Option<&serde_saphyr::granit_parser::Tag>| match tag {
            None => Ok(()),
            Some(t) => {
                let m = span.tag_start.unwrap_or(span.start);
                let msg = format!("YAML tags are not supported (`{}`)", short(&t.original()));
                Err(YamlError { line: m.line() as u64, column: m.col() as u64 + 1, msg })
            }
        };
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                untagged(tag.as_deref())?;
                self.count(1, span)?;
                let implicit = span.start.index() == span.end.index() && style == ScalarStyle::Plain;
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                    _ => Style::Quoted,
                };
                let text = if implicit { "" } else { text.as_ref() };
                self.attach(Node::scalar(text, style, line, column), anchor, span.end.byte_offset());
            }
            Event::SequenceStart(_, anchor, tag) => {
                untagged(tag.as_deref())?;
                self.push(Frame::Seq { node: Node { kind: Kind::Seq(Vec::new()), line, column }, anchor }, span)?;
            }
            Event::MappingStart(style, anchor, tag) => {
                untagged(tag.as_deref())?;
                let node = Node { kind: Kind::Map { entries: Vec::new(), bare: false }, line, column };
                let flow = style == StructureStyle::Flow;
                self.push(Frame::Map { node, anchor, key: None, key_end: None, flow }, span)?;
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { node, anchor }) => self.attach(node, anchor, None),
                Some(Frame::Map { mut node, anchor, key_end, flow, .. }) => {
                    if flow {
                        self.mark_bare(&mut node, key_end, span.start.byte_offset());
                    }
                    self.attach(node, anchor, None);
                }
                None => return Err(err(span, "invalid YAML: a list or mapping ends that never started")),
            },
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| err(span, "alias of an unknown anchor"))?;
                self.count(node.count(), span)?;
                self.attach(node, 0, None);
            }
            _ => {}
        }
        Ok(())
    }

    /// `{word}`: one plain key, no value, nothing but blanks up to the `}`.
    fn mark_bare(&self, node: &mut Node, key_end: Option<usize>, close: Option<usize>) {
        let Kind::Map { entries, bare } = &mut node.kind else { return };
        let [(k, v)] = entries.as_slice() else { return };
        let plain_key = matches!(&k.kind, Kind::Scalar { style: Style::Plain, text } if !text.is_empty());
        let no_value = matches!(&v.kind, Kind::Scalar { style: Style::Plain, text } if text.is_empty());
        let blank_to_close = match (key_end, close) {
            (Some(a), Some(b)) if a <= b => self.text.get(a..b).is_some_and(|s| s.trim().is_empty()),
            _ => false,
        };
        *bare = plain_key && no_value && blank_to_close;
    }
}

/// Reads one YAML document; `None` for a file with no document (empty, or only comments).
pub fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut opts = serde_saphyr::granit_parser::Options::default();
    opts.set_emit_comments(false);
    // The scanner reads ahead of the events: with room above ours, our limit (and message)
    // is reached first; the parser keeps its states on the heap.
    opts.flow_nesting_limit = MAX_DEPTH * 16;
    opts.block_nesting_limit = MAX_DEPTH * 16;
    let mut parser = Parser::new_from_str_with_options(text, opts);
    let mut b = Builder { text, stack: Vec::new(), anchors: Default::default(), nodes: 0, root: None };
    let mut documents = 0;
    while let Some(r) = parser.next_event() {
        let (ev, span) = r.map_err(|e| scan_err(&e))?;
        match ev {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(err(&span, "a second YAML document starts here (a case file holds one)"));
                }
            }
            Event::StreamEnd => break,
            ev => b.event(ev, &span)?,
        }
    }
    Ok(b.root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_placeholders_are_marked() {
        let n = parse("a: { {x}: {y} }\nb: { {z} }\nc: {x: }\nd: { x }\n").expect("parses").expect("doc");
        let bare = |n: &Node| matches!(n.kind, Kind::Map { bare: true, .. });
        let a = n.get("a").expect("a");
        let Kind::Map { entries, .. } = &a.kind else { panic!("map") };
        assert!(bare(&entries[0].0) && bare(&entries[0].1));
        let Kind::Map { entries, .. } = &n.get("b").expect("b").kind else { panic!("map") };
        assert!(bare(&entries[0].0) && entries[0].1.is_null());
        assert!(!bare(n.get("c").expect("c")));
        assert!(bare(n.get("d").expect("d")));
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = parse(&deep).expect_err("too deep");
        assert!(e.msg.contains("nested too deep"), "{}", e.msg);
        let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 { "a".to_string() } else { format!("l{}", i - 1) };
            laughs.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let e = parse(&laughs).expect_err("too many nodes");
        assert!(e.msg.contains("file too large"), "{}", e.msg);
        assert!(parse("a: 1\n---\nb: 2\n").expect_err("two docs").line == 2);
        assert!(parse("# nothing\n").expect("parses").is_none());
        assert!(parse("a: !!str 1\n").expect_err("tag").msg.contains("tags"));
    }

    #[test]
    fn duplicate_keys_are_found() {
        let n = parse("a: 1\nb:\n  c: 1\n  c: 2\n").expect("parses").expect("doc");
        let (k, first) = n.duplicate_key().expect("dup");
        assert_eq!((k.line, k.column, first), (4, 3, 3));
    }
}
