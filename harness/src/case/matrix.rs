//! Matrix expansion: the axes of a case file's `matrix` ([`Axis`], [`ReservedOf`]), the
//! expansion of a file into one row of placeholder values per combination (at most
//! [`MAX_ROWS`]), and the substitution of a row into the parsed file ([`substitute`]).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::de;
use super::yaml::{self, short, Kind, Node, Style};
use super::Value;
use crate::kernel::uapi::{self, FieldTable};

/// A matrix axis: a list of scalars, a list of rows (maps setting several placeholders
/// at once), or every reserved/output field of a uapi struct.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Axis {
    Values(Vec<Value>),
    /// Rows of named values: each row sets several `{name}` placeholders at once.
    Rows(Vec<BTreeMap<String, Value>>),
    Reserved(ReservedOf),
}

/// Written by hand: serde's untagged buffering loses maps with this YAML reader.
impl<'de> Deserialize<'de> for Axis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, SeqAccess, Visitor};
        struct V;
        enum Item {
            Scalar(Value),
            Row(BTreeMap<String, Value>),
        }
        struct ItemSeed;
        impl<'de> serde::de::DeserializeSeed<'de> for ItemSeed {
            type Value = Item;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Item, D::Error> {
                struct IV;
                impl<'de> Visitor<'de> for IV {
                    type Value = Item;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a scalar, a list, or a map of placeholder values")
                    }
                    fn visit_i64<E: Error>(self, v: i64) -> Result<Item, E> {
                        Ok(Item::Scalar(Value::Int(v)))
                    }
                    fn visit_u64<E: Error>(self, v: u64) -> Result<Item, E> {
                        Ok(Item::Scalar(i64::try_from(v).map(Value::Int).unwrap_or(Value::UInt(v))))
                    }
                    fn visit_bool<E: Error>(self, v: bool) -> Result<Item, E> {
                        Ok(Item::Scalar(Value::Bool(v)))
                    }
                    fn visit_str<E: Error>(self, v: &str) -> Result<Item, E> {
                        Ok(Item::Scalar(Value::Str(v.to_string())))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Item, A::Error> {
                        let mut l = Vec::new();
                        while let Some(v) = a.next_element::<Value>()? {
                            l.push(v);
                        }
                        Ok(Item::Scalar(Value::List(l)))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Item, A::Error> {
                        let mut m = BTreeMap::new();
                        while let Some((k, v)) = a.next_entry::<String, Value>()? {
                            m.insert(k, v);
                        }
                        Ok(Item::Row(m))
                    }
                }
                d.deserialize_any(IV)
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Axis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of values, a list of rows, or { reserved_of: STRUCT }")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Axis, A::Error> {
                let mut vals = Vec::new();
                let mut rows = Vec::new();
                while let Some(item) = a.next_element_seed(ItemSeed)? {
                    match item {
                        Item::Scalar(v) => vals.push(v),
                        Item::Row(r) => rows.push(r),
                    }
                }
                match (vals.is_empty(), rows.is_empty()) {
                    (_, true) => Ok(Axis::Values(vals)),
                    (true, false) => Ok(Axis::Rows(rows)),
                    _ => Err(A::Error::custom("a matrix axis mixes plain values and rows")),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Axis, A::Error> {
                let mut r = ReservedOf { reserved_of: String::new(), prefix: String::new(), except: Vec::new() };
                let mut seen = false;
                while let Some(k) = a.next_key::<String>()? {
                    match k.as_str() {
                        "reserved_of" => {
                            r.reserved_of = a.next_value()?;
                            seen = true;
                        }
                        "prefix" => r.prefix = a.next_value()?,
                        "except" => r.except = a.next_value()?,
                        other => return Err(A::Error::unknown_field(other, &["reserved_of", "prefix", "except"])),
                    }
                }
                if !seen {
                    return Err(A::Error::missing_field("reserved_of"));
                }
                Ok(Axis::Reserved(r))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservedOf {
    /// Struct name, e.g. io_uring_zcrx_ifq_reg.
    pub reserved_of: String,
    /// Only fields whose name starts with this (e.g. "zc_flush.").
    #[serde(default)]
    pub prefix: String,
    /// Field names to leave out.
    #[serde(default)]
    pub except: Vec<String>,
}

/// Most rows one case file's matrix may expand to.
pub const MAX_ROWS: usize = 10_000;
/// Most YAML nodes the rows of one file may come to together (rows x nodes of the file).
pub const MAX_EXPANDED_NODES: usize = 4_000_000;

/// One row of a matrix: (placeholder, value) for each placeholder, in axis order.
pub type Row = Vec<(String, String)>;

/// An error at a node of the file.
pub(super) struct At(pub u64, pub u64, pub String);

impl At {
    fn of(n: &Node, msg: String) -> At {
        At(n.line, n.column, msg)
    }
}

/// The file's matrix axes and every combination of them, one [`Row`] each; one empty row
/// when the file has no matrix. The number of rows is checked before any is built.
pub(super) fn rows(root: &Node) -> Result<(BTreeMap<String, Axis>, Vec<Row>), At> {
    let Some((key, m)) = root.entry("matrix") else { return Ok((BTreeMap::new(), vec![vec![]])) };
    let axes: BTreeMap<String, Axis> =
        de::from_node(m).map_err(|e| At(e.at.map_or(m.line, |a| a.0), e.at.map_or(m.column, |a| a.1), e.msg))?;
    let mut per_axis = Vec::new();
    for (name, axis) in &axes {
        let at = m.entry(name).map_or(key, |(k, _)| k);
        let values = axis_values(name, axis).map_err(|msg| At::of(at, msg))?;
        if values.is_empty() {
            return Err(At::of(at, format!("matrix axis `{}` has no values", short(name))));
        }
        per_axis.push(values);
    }
    let n = per_axis.iter().try_fold(1usize, |n, v| n.checked_mul(v.len()).filter(|&n| n <= MAX_ROWS));
    let Some(n) = n else {
        let shown = per_axis.iter().map(|v| v.len().to_string()).collect::<Vec<_>>().join(" x ");
        return Err(At::of(key, format!("the matrix expands to {shown} rows, more than {MAX_ROWS}: split the case")));
    };
    let nodes = root.count();
    if n.saturating_mul(nodes) > MAX_EXPANDED_NODES {
        let msg =
            format!("the matrix expands to {n} rows of {nodes} YAML nodes, more than {MAX_EXPANDED_NODES} in all");
        return Err(At::of(key, msg));
    }
    let mut combos: Vec<Row> = vec![vec![]];
    for values in per_axis {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.extend(v.iter().cloned());
                    c
                })
            })
            .collect();
    }
    Ok((axes, combos))
}

/// The file with a row's values in place of its placeholders, and an empty `matrix` (read
/// once, by [`rows`]). A `{name}` that is a whole node (a flow mapping of the one word `name`)
/// becomes the node the value's text reads as (YAML of its own: `[A, B]` is a list), at the
/// placeholder's line and column; written as a whole mapping entry (`{ {name} }`), the
/// mapping the value reads as is merged in; inside a longer scalar, or in a quoted one,
/// the value's text replaces the placeholder in that scalar's text.
pub(super) fn substitute(root: &Node, row: &Row) -> Result<Node, At> {
    let mut doc = root.clone();
    let mut s = Subst { row, parsed: Default::default() };
    if let Kind::Map { entries, .. } = &mut doc.kind {
        for (k, v) in entries.iter_mut() {
            if k.text() == Some("matrix") {
                v.kind = Kind::Map { entries: Vec::new(), bare: false };
            } else {
                s.node(k)?;
                s.node(v)?;
            }
        }
    }
    Ok(doc)
}

struct Subst<'a> {
    row: &'a Row,
    /// The values read as YAML, by placeholder.
    parsed: BTreeMap<&'a str, Node>,
}

impl<'a> Subst<'a> {
    fn value(&self, name: &str) -> Option<&'a (String, String)> {
        self.row.iter().find(|(k, _)| k == name)
    }

    /// The placeholder a bare `{name}` names, if it is one of the row's.
    fn placeholder(&self, n: &Node) -> Option<&'a (String, String)> {
        match &n.kind {
            Kind::Map { entries, bare: true } => {
                entries.first().and_then(|(k, _)| k.text()).and_then(|k| self.value(k))
            }
            _ => None,
        }
    }

    /// The value of a placeholder as a node, at `at`'s place.
    fn node_of(&mut self, p: &'a (String, String), at: &Node) -> Result<Node, At> {
        if !self.parsed.contains_key(p.0.as_str()) {
            // A word (a name, a number) reads as itself: no parser needed.
            let word = p.1.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '$' || c == '_')
                && p.1.chars().all(|c| c.is_ascii_alphanumeric() || "_.$".contains(c));
            let parsed = if word { Ok(Some(Node::scalar(&p.1, Style::Plain, 0, 0))) } else { yaml::parse(&p.1) };
            let n = match parsed {
                Ok(Some(n)) => n,
                Ok(None) => Node::scalar("", Style::Plain, 0, 0),
                Err(e) => {
                    let msg =
                        format!("the value `{}` of `{{{}}}` is not a YAML value: {}", short(&p.1), short(&p.0), e.msg);
                    return Err(At::of(at, msg));
                }
            };
            self.parsed.insert(p.0.as_str(), n);
        }
        let mut n = self.parsed[p.0.as_str()].clone();
        n.relocate(at.line, at.column);
        Ok(n)
    }

    fn node(&mut self, n: &mut Node) -> Result<(), At> {
        if let Some(p) = self.placeholder(n) {
            *n = self.node_of(p, n)?;
            return Ok(());
        }
        match &mut n.kind {
            Kind::Scalar { text, .. } => {
                if text.contains('{') {
                    *text = fill(text, self.row);
                }
            }
            Kind::Seq(items) => {
                for i in items {
                    self.node(i)?;
                }
            }
            Kind::Map { entries, .. } => {
                let mut out = Vec::with_capacity(entries.len());
                for (mut k, mut v) in std::mem::take(entries) {
                    match self.placeholder(&k) {
                        // `{ {name} }`: the entries the value reads as.
                        Some(p) if v.is_null() && v.text() == Some("") => match self.node_of(p, &k)? {
                            Node { kind: Kind::Map { entries: es, .. }, .. } => out.extend(es),
                            other => out.push((other, v)),
                        },
                        _ => {
                            self.node(&mut k)?;
                            self.node(&mut v)?;
                            out.push((k, v));
                        }
                    }
                }
                *entries = out;
            }
        }
        Ok(())
    }
}

/// `text` with each `{name}` of the row replaced by its value (one pass: a value's own
/// braces are kept).
fn fill(text: &str, row: &Row) -> String {
    crate::model::template::fill(text, "{", "}", |name| row.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()))
}

/// Expands one axis into its rows of (placeholder, value).
fn axis_values(name: &str, axis: &Axis) -> Result<Vec<Vec<(String, String)>>, String> {
    let single = |v: Vec<String>| v.into_iter().map(|x| vec![(name.to_string(), x)]).collect();
    match axis {
        Axis::Values(v) => Ok(single(v.iter().map(|x| x.to_string()).collect())),
        Axis::Rows(rows) => {
            Ok(rows.iter().map(|r| r.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()).collect())
        }
        Axis::Reserved(r) => {
            let t = table_by_name(&r.reserved_of)
                .ok_or_else(|| format!("reserved_of: unknown struct `{}` (known: {})", r.reserved_of, table_names()))?;
            Ok(single(
                t.reserved()
                    .filter(|f| f.name.starts_with(&r.prefix) && !r.except.iter().any(|e| e == f.name))
                    .map(|f| f.name.to_string())
                    .collect(),
            ))
        }
    }
}

pub fn table_by_name(name: &str) -> Option<&'static FieldTable> {
    uapi::TABLES.iter().copied().find(|t| t.name == name)
}

fn table_names() -> String {
    uapi::TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::case::{load_str, Case, LoadError, Value};

    fn load(text: &str) -> Result<Vec<Case>, Vec<LoadError>> {
        load_str(Path::new("t.yaml"), text)
    }

    #[test]
    fn matrix_expands_reserved_fields() {
        let c = load(
            "id: r.ifq\narea: reserved\nabout: x\nmatrix:\n  field: { reserved_of: io_uring_zcrx_ifq_reg }\nsteps:\n  - register:\n      ifq: { \"{field}\": 1 }\n    expect: { errno: EINVAL }\n",
        )
        .expect("loads");
        let ids: Vec<&str> = c.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["r.ifq[zcrx_id]", "r.ifq[__resv[0]]", "r.ifq[__resv[1]]"]);
    }

    #[test]
    fn values_stay_inside_their_placeholder() {
        // Pasted into the text, this value would have added a step and moved the lines below.
        let text = "id: m.x\narea: rq\nabout: x\nmatrix:\n  v: [\"1\\n  - connect: {}\"]\nsteps:\n  - register: { nr_args: {v} }\n  - query: { op: NOPE }\n";
        let e = load(text).expect_err("fails");
        assert_eq!((e[0].line, e[0].column), (7, 26), "{}", e[0]);
        let e = load("id: m.x\narea: rq\nabout: x\nmatrix:\n  v: [1]\nsteps:\n  - register: { nr_args: {v} }\n  - query: { op: NOPE }\n")
            .expect_err("fails");
        assert_eq!(e[0].line, 8, "{}", e[0]);
    }

    #[test]
    fn placeholders_become_nodes_or_text() {
        let c = load(concat!(
            "id: m.y\narea: rq\nabout: x\nmatrix:\n  r: [{ f: flags, v: \"[NODEV, IMPORT]\", s: \"hds_thresh: 256\", ro: area }]\n",
            "steps:\n  - register: { ifq: { {f}: {v}, rq_entries: \"{v}\" }, readonly: [{ro}] }\n  - ethtool: { {s} }\n  - expect_rq: { head: 0 }\n"
        ))
        .expect("loads");
        let s = &c[0].def.steps;
        let crate::case::Action::Register(r) = &s[0].value.action else { panic!("register") };
        assert_eq!(r.ifq["flags"].value, Value::List(vec![Value::Str("NODEV".into()), Value::Str("IMPORT".into())]));
        assert_eq!(r.ifq["rq_entries"].value, Value::Str("[NODEV, IMPORT]".into()));
        assert_eq!((r.ifq["flags"].line, r.ifq["flags"].column), (7, 29));
        assert_eq!(r.readonly, ["area"]);
        let crate::case::Action::Ethtool(e) = &s[1].value.action else { panic!("ethtool") };
        assert_eq!(e.hds_thresh, Some(256));
    }

    #[test]
    fn huge_matrices_are_refused_before_expanding() {
        let many: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let text = format!(
            "id: m.z\narea: rq\nabout: x\nmatrix:\n  a: [{0}]\n  b: [{0}]\nsteps:\n  - register: {{}}\n",
            many.join(", ")
        );
        let e = load(&text).expect_err("fails");
        assert_eq!((e[0].line, e[0].column), (4, 1), "{}", e[0]);
        assert!(e[0].msg.contains("1000 x 1000 rows"), "{}", e[0]);
    }
}
