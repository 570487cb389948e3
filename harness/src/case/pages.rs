//! Counts that a case writes in pages of the running kernel: a byte count of "six buffers"
//! (`send.bytes: "6*$page"`), an area of 1 MiB (`area_pages: "1048576/$page"`), the KiB a
//! number of pages pins (`expect_pinned.kib: "256*$page/1024"`). A plain number stays a plain
//! number. `$page` is the page size of the machine that loads the case (`sysconf`), which is
//! the one that runs it: a VM's guest runner loads the catalogue itself.
//!
//! The grammar is small on purpose: numbers and `$page` joined by `*` and `/`, left to right;
//! a division must be exact (a count that is not a whole number of pages is an error, never
//! rounded), and nothing may overflow.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// Evaluates `expr` with `$page` = `page`.
pub fn eval(expr: &str, page: u64) -> Result<u64, String> {
    let mut acc: Option<u64> = None;
    let mut op = '*';
    let mut rest = expr.trim();
    loop {
        let end = rest.find(['*', '/']).unwrap_or(rest.len());
        let tok = rest[..end].trim();
        let v = match tok {
            "$page" => page,
            t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                t.parse::<u64>().map_err(|_| format!("`{t}` is too large"))?
            }
            t => return Err(format!("`{t}` is neither a number nor $page (in `{expr}`)")),
        };
        acc = Some(match (acc, op) {
            (None, _) => v,
            (Some(a), '*') => a.checked_mul(v).ok_or_else(|| format!("`{expr}` overflows"))?,
            (Some(a), _) if v != 0 && a.is_multiple_of(v) => a / v,
            (Some(a), _) => return Err(format!("`{expr}`: {a} is not a multiple of {v}")),
        });
        let Some(c) = rest[end..].chars().next() else { break };
        op = c;
        rest = &rest[end + 1..];
    }
    acc.ok_or_else(|| format!("`{expr}` is empty"))
}

struct Count<T>(std::marker::PhantomData<T>);

impl<T: TryFrom<u64>> Visitor<'_> for Count<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer (u64), or a count in pages such as \"6*$page\" or \"1048576/$page\"")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} is too large here")))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        let page = crate::kernel::sys::page_size() as u64;
        let v = eval(s, page).map_err(E::custom)?;
        T::try_from(v).map_err(|_| E::custom(format!("`{s}` = {v} is too large here")))
    }
}

/// `deserialize_with` for a count that may be written in pages.
pub fn count<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(Count(std::marker::PhantomData))
}

/// `deserialize_with` for an optional count that may be written in pages.
pub fn opt_count<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    count(d).map(Some)
}

/// The schema of such a count: an integer, or a string in pages.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PageCount {
    Number(u64),
    /// Numbers and `$page` joined by `*` and `/` (exact).
    Pages(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_scale_and_divisions_are_exact() {
        assert_eq!(eval("6*$page", 4096), Ok(24576));
        assert_eq!(eval("6*$page", 16384), Ok(98304));
        assert_eq!(eval("$page", 16384), Ok(16384));
        assert_eq!(eval("1048576/$page", 4096), Ok(256));
        assert_eq!(eval("1048576/$page", 16384), Ok(64));
        assert_eq!(eval("256*$page/1024", 16384), Ok(4096));
        assert_eq!(eval(" 2 * $page ", 4096), Ok(8192));
        assert!(eval("1000/$page", 4096).is_err(), "not a whole number of pages");
        assert!(eval("1/0", 4096).is_err());
        assert!(eval("$page+1", 4096).is_err(), "only * and /");
        assert!(eval("$pages", 4096).is_err());
        assert!(eval("", 4096).is_err());
        assert!(eval("6*", 4096).is_err());
        assert!(eval("18446744073709551615*$page", 4096).is_err(), "overflow");
    }
}
