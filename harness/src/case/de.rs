//! serde over a [`Node`] tree: the case types are read from the tree (after matrix values
//! are substituted), and every error carries the line and column of the node it is about.
//!
//! Scalars are typed the way the YAML reader used before did: a plain scalar is null
//! (`~`, `null`, nothing), a boolean (`true`, `false`, `yes`, `no`, `on`, `off`, ...), an
//! integer (`12`, `-3`, `0x1f`, `0o17`, `0b101`, `1_000`), a float (`1.5`, `.inf`, `.nan`) or a
//! string; a quoted or block scalar is a string where the type allows it; a field that wants a
//! number or a string reads any scalar's text.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::yaml::{short, Kind, Node, Style};

/// The name [`Sp`](super::Sp) asks for: answered with (line, column, value).
pub const SPANNED: &str = "$zcrx_conform::case::Sp";

/// A deserialization error and, once known, the node it is about.
#[derive(Debug, Clone)]
pub struct Error {
    pub msg: String,
    pub at: Option<(u64, u64)>,
}

impl Error {
    fn new(msg: impl Into<String>) -> Error {
        Error { msg: msg.into(), at: None }
    }

    fn or_at(mut self, n: &Node) -> Error {
        self.at.get_or_insert((n.line, n.column));
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(msg.to_string())
    }
    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Error::new(format!("expected {exp}, found {}", found(unexp)))
    }
    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Error::new(format!("expected {exp}, found {}", found(unexp)))
    }
    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        Error::new(format!("expected {exp}, found {len} item(s)"))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::new(format!("unknown value `{}` (known: {})", short(variant), expected.join(", ")))
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::new(format!("unknown field `{}` (known: {})", short(field), expected.join(", ")))
    }
    fn missing_field(field: &'static str) -> Self {
        Error::new(format!("missing field `{field}`"))
    }
    fn duplicate_field(field: &'static str) -> Self {
        Error::new(format!("duplicate key `{field}`"))
    }
}

/// What was found, in the words of [`Node::describe`].
fn found(u: de::Unexpected) -> String {
    use de::Unexpected as U;
    match u {
        U::Unit | U::Option => "nothing (null)".into(),
        U::Map => "a mapping".into(),
        U::Seq => "a list".into(),
        U::Bool(b) => format!("`{b}`"),
        U::Signed(i) => format!("`{i}`"),
        U::Unsigned(i) => format!("`{i}`"),
        U::Float(f) => format!("`{f}`"),
        U::Str(t) => format!("`{}`", short(t)),
        other => other.to_string(),
    }
}

/// Deserializes `T` from a node.
pub fn from_node<'de, T: de::Deserialize<'de>>(n: &'de Node) -> Result<T, Error> {
    T::deserialize(De(n)).map_err(|e| e.or_at(n))
}

fn parse_bool(s: &str) -> Option<bool> {
    let t = s.trim_matches([' ', '\t', '\r', '\n']);
    let any = |w: &[&str]| w.iter().any(|x| t.eq_ignore_ascii_case(x));
    if any(&["true", "yes", "y", "on"]) {
        Some(true)
    } else if any(&["false", "no", "n", "off"]) {
        Some(false)
    } else {
        None
    }
}

/// Digits with single underscores between them, in a radix.
fn digits(d: &str, radix: u32) -> Option<u128> {
    let b = d.as_bytes();
    let mut v: u128 = 0;
    let mut saw = false;
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            if i == 0 || i + 1 == b.len() || b[i - 1] == b'_' || b[i + 1] == b'_' {
                return None;
            }
            continue;
        }
        let x = (c as char).to_digit(radix)?;
        v = v.checked_mul(radix as u128)?.checked_add(x as u128)?;
        saw = true;
    }
    saw.then_some(v)
}

/// An integer: sign, then decimal (no leading zero), `0x`, `0o` or `0b` digits.
fn parse_int(s: &str) -> Option<i128> {
    let t = s.trim_matches([' ', '\t', '\r', '\n']);
    let (neg, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = rest.get(..2).map(str::to_ascii_lowercase);
    let mag = match lower.as_deref() {
        Some("0x") => digits(&rest[2..], 16)?,
        Some("0o") => digits(&rest[2..], 8)?,
        Some("0b") => digits(&rest[2..], 2)?,
        _ if rest.starts_with('0') && rest != "0" => return None,
        _ => digits(rest, 10)?,
    };
    let v = i128::try_from(mag).ok()?;
    Some(if neg { -v } else { v })
}

/// A float: `.inf`, `-.inf`, `.nan` (any case of the first letter), or a finite number.
fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim_matches([' ', '\t', '\r', '\n']);
    let (neg, u) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    match u {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" => return Some(if neg { f64::NEG_INFINITY } else { f64::INFINITY }),
        _ => {}
    }
    // Rust also reads `inf` and `nan`: those stay strings.
    if !u.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

struct De<'a>(&'a Node);

impl<'a> De<'a> {
    fn scalar(&self, what: &str) -> Result<&'a str, Error> {
        match &self.0.kind {
            Kind::Scalar { text, .. } => Ok(text),
            _ => Err(Error::new(format!("expected {what}, found {}", self.0.describe()))),
        }
    }

    fn int(&self, ty: &str) -> Result<i128, Error> {
        let t = self.scalar(&format!("an integer ({ty})"))?;
        parse_int(t).ok_or_else(|| Error::new(format!("expected an integer ({ty}), found {}", self.0.describe())))
    }

    fn range<T: TryFrom<i128>>(&self, ty: &str) -> Result<T, Error> {
        let v = self.int(ty)?;
        T::try_from(v).map_err(|_| {
            let why = if v < 0 { "a negative number" } else { "too large" };
            Error::new(format!("expected an integer that fits {ty}, found {v} ({why})"))
        })
    }
}

macro_rules! ints {
    ($($f:ident $v:ident $t:ty),*) => {$(
        fn $f<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            let x: $t = self.range(stringify!($t)).map_err(|e| e.or_at(self.0))?;
            v.$v::<Error>(x).map_err(|e| e.or_at(self.0))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for De<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        let r = match &n.kind {
            Kind::Seq(items) => v.visit_seq(SeqAccess(items.iter())),
            Kind::Map { entries, .. } => v.visit_map(MapAccess { it: entries.iter(), value: None }),
            Kind::Scalar { .. } if n.is_null() => v.visit_unit::<Error>(),
            Kind::Scalar { text, style: Style::Plain } => {
                let t = text.trim_matches([' ', '\t', '\r', '\n']);
                if let Some(b) = parse_bool(t) {
                    v.visit_bool::<Error>(b)
                } else if let Some(i) = parse_int(t).filter(|_| t.starts_with('-')).and_then(|i| i64::try_from(i).ok())
                {
                    v.visit_i64::<Error>(i)
                } else if let Some(u) = parse_int(t).filter(|_| !t.starts_with('-')).and_then(|i| u64::try_from(i).ok())
                {
                    v.visit_u64::<Error>(u)
                } else if parse_int(t).is_some() {
                    Err(Error::new(format!("the number `{}` is too large", short(t))))
                } else if let Some(f) = parse_float(t) {
                    v.visit_f64::<Error>(f)
                } else {
                    v.visit_str::<Error>(text)
                }
            }
            Kind::Scalar { text, .. } => v.visit_str::<Error>(text),
        };
        r.map_err(|e| e.or_at(n))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        let t = self.scalar("true or false").map_err(|e| e.or_at(n))?;
        let b = parse_bool(t)
            .ok_or_else(|| Error::new(format!("expected true or false, found {}", n.describe())).or_at(n))?;
        v.visit_bool::<Error>(b).map_err(|e| e.or_at(n))
    }

    ints!(deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
          deserialize_i64 visit_i64 i64, deserialize_i128 visit_i128 i128, deserialize_u8 visit_u8 u8,
          deserialize_u16 visit_u16 u16, deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
          deserialize_u128 visit_u128 u128);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        let t = self.scalar("a number").map_err(|e| e.or_at(n))?;
        let f = parse_float(t)
            .or_else(|| parse_int(t).map(|i| i as f64))
            .ok_or_else(|| Error::new(format!("expected a number, found {}", n.describe())).or_at(n))?;
        v.visit_f64::<Error>(f).map_err(|e| e.or_at(n))
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        if n.is_null() {
            return Err(Error::new("expected a string, found nothing (null)").or_at(n));
        }
        let t = self.scalar("a string").map_err(|e| e.or_at(n))?;
        v.visit_str::<Error>(t).map_err(|e| e.or_at(n))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(Error::new("bytes are not supported here").or_at(self.0))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        if n.is_null() {
            v.visit_none::<Error>().map_err(|e| e.or_at(n))
        } else {
            v.visit_some(self).map_err(|e| e.or_at(n))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        if !n.is_null() {
            return Err(Error::new(format!("expected nothing (null), found {}", n.describe())).or_at(n));
        }
        v.visit_unit::<Error>().map_err(|e| e.or_at(n))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, v: V) -> Result<V::Value, Error> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        let r = if name == SPANNED { v.visit_seq(SpanAccess { n, i: 0 }) } else { v.visit_newtype_struct(self) };
        r.map_err(|e| e.or_at(n))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        match &n.kind {
            Kind::Seq(items) => v.visit_seq(SeqAccess(items.iter())).map_err(|e| e.or_at(n)),
            _ => Err(Error::new(format!("expected a list, found {}", n.describe())).or_at(n)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _: &'static str, _: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        match &n.kind {
            Kind::Map { entries, .. } => {
                v.visit_map(MapAccess { it: entries.iter(), value: None }).map_err(|e| e.or_at(n))
            }
            _ => Err(Error::new(format!("expected a mapping, found {}", n.describe())).or_at(n)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let n = self.0;
        let r = match &n.kind {
            Kind::Scalar { text, .. } if !n.is_null() => v.visit_enum(text.as_str().into_deserializer()),
            Kind::Map { entries, .. } if entries.len() == 1 => v.visit_enum(EnumAccess(&entries[0].0, &entries[0].1)),
            _ => Err(Error::new(format!("expected a name, found {}", n.describe()))),
        };
        r.map_err(|e| e.or_at(n))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.0;
        let t = self.scalar("a name").map_err(|e| e.or_at(n))?;
        v.visit_str::<Error>(t).map_err(|e| e.or_at(n))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit::<Error>()
    }
}

struct SeqAccess<'a>(std::slice::Iter<'a, Node>);

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(n) => seed.deserialize(De(n)).map(Some).map_err(|e| e.or_at(n)),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccess<'a> {
    it: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.it.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(De(k)).map(Some).map_err(|e| e.or_at(k))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let n = self.value.take().ok_or_else(|| Error::new("a value without a key"))?;
        seed.deserialize(De(n)).map_err(|e| e.or_at(n))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.it.len())
    }
}

/// `{ Variant: value }`.
struct EnumAccess<'a>(&'a Node, &'a Node);

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = Error;
    type Variant = De<'de>;
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, De<'de>), Error> {
        let v = seed.deserialize(De(self.0)).map_err(|e| e.or_at(self.0))?;
        Ok((v, De(self.1)))
    }
}

impl<'de> de::VariantAccess<'de> for De<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        let n = self.0;
        seed.deserialize(self).map_err(|e| e.or_at(n))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self, v)
    }
    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], v: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self, v)
    }
}

/// [`SPANNED`]: line, column, then the value.
struct SpanAccess<'a> {
    n: &'a Node,
    i: u8,
}

impl<'de> de::SeqAccess<'de> for SpanAccess<'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.i += 1;
        match self.i {
            1 => seed.deserialize(self.n.line.into_deserializer()).map(Some),
            2 => seed.deserialize(self.n.column.into_deserializer()).map(Some),
            3 => seed.deserialize(De(self.n)).map(Some).map_err(|e| e.or_at(self.n)),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_typed_like_yaml() {
        assert_eq!(parse_int("0x1f"), Some(31));
        assert_eq!(parse_int("-0b101"), Some(-5));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("0127"), None);
        assert_eq!(parse_int("1__0"), None);
        assert_eq!(parse_int("-"), None);
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert!(parse_float("-.inf").is_some_and(|f| f.is_infinite()));
        assert_eq!(parse_float("inf"), None);
        assert_eq!(parse_float("1e999"), None);
        assert_eq!(parse_bool("Off"), Some(false));
    }
}
