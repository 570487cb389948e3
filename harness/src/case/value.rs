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

/// The case reader (`de.rs`) answers with the node's line and column; any other
/// deserializer gives the value alone (line 0).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Sp<T>, A::Error> {
                let line = a.next_element()?.unwrap_or(0);
                let column = a.next_element()?.unwrap_or(0);
                let value = a.next_element()?.ok_or_else(|| serde::de::Error::custom("a value is missing"))?;
                Ok(Sp { value, line, column })
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Sp<T>, D::Error> {
                Ok(Sp { value: T::deserialize(d)?, line: 0, column: 0 })
            }
        }
        d.deserialize_newtype_struct(super::de::SPANNED, V(std::marker::PhantomData))
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
#[derive(Clone, Debug, Serialize, JsonSchema, PartialEq)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
    List(Vec<Value>),
}

/// Written by hand (as `untagged` would, with a message that says what is allowed): an
/// integer is `Int` unless only `UInt` holds it.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, a name, true/false, or a list of them")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::UInt(v)))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut l = Vec::new();
                while let Some(v) = a.next_element()? {
                    l.push(v);
                }
                Ok(Value::List(l))
            }
        }
        d.deserialize_any(V)
    }
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
