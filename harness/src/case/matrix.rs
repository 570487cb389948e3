//! Matrix expansion: the axes of a case file's `matrix` ([`Axis`], [`ReservedOf`]) and the
//! expansion of a file into one row of placeholder values per combination.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::{yaml_err, LoadError, Sp, Value};
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

#[derive(Deserialize)]
struct MatrixOnly {
    #[serde(default)]
    matrix: Sp<BTreeMap<String, Axis>>,
}

/// Every combination of the file's matrix axes, each a row of (placeholder, value); one
/// empty row when the file has no matrix.
pub(super) fn expand(path: &Path, text: &str) -> Result<Vec<Vec<(String, String)>>, LoadError> {
    let m: MatrixOnly = serde_saphyr::from_str(text).map_err(|e| yaml_err(path, e))?;
    let mut combos: Vec<Vec<(String, String)>> = vec![vec![]];
    for (name, axis) in &m.matrix.value {
        let values = axis_values(name, axis).map_err(|msg| LoadError {
            file: path.to_path_buf(),
            line: m.matrix.line,
            column: m.matrix.column,
            msg,
        })?;
        if values.is_empty() {
            return Err(LoadError {
                file: path.to_path_buf(),
                line: m.matrix.line,
                column: m.matrix.column,
                msg: format!("matrix axis `{name}` has no values"),
            });
        }
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
    Ok(combos)
}

/// The file's text with each `{name}` placeholder of the row replaced by its value.
pub(super) fn fill(text: &str, params: &[(String, String)]) -> String {
    let mut t = text.to_string();
    for (k, v) in params {
        t = t.replace(&format!("{{{k}}}"), v);
    }
    t
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

    use crate::case::{load_str, Case, LoadError};

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
}
