//! Values as written in a case file: [`Sp`] (a value with its file:line:column), [`Value`]
//! (a number, a name or a list of them) and [`Overrides`] (uapi struct fields to set).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// A value with the place it was written, for error messages.
#[derive(Clone, Debug)]
pub struct Sp<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Sp { value: s.value, line: s.referenced.line(), column: s.referenced.column() })
    }
}

impl<T: Serialize> Serialize for Sp<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

impl<T: Default> Default for Sp<T> {
    fn default() -> Self {
        Sp { value: T::default(), line: 0, column: 0 }
    }
}

/// A number, a symbolic name (`EINVAL`, `NODEV`, `$z0.id`, `$area.addr+1`), or a
/// list of names/numbers that are OR-ed together (flags).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
    List(Vec<Value>),
}

impl Default for Value {
    fn default() -> Self {
        Value::Int(0)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v:#x}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(s) => write!(f, "{s}"),
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(|v| v.to_string()).collect();
                write!(f, "[{}]", parts.join(", "))
            }
        }
    }
}

/// Field overrides of one uapi struct: `{ "__resv[0]": 1, flags: [NODEV] }`.
pub type Overrides = BTreeMap<String, Sp<Value>>;
