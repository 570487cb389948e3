//! One-pass placeholder substitution, shared by matrix rows (`{name}` in case files) and the
//! HTML page template (`{{name}}`): inserted text is never scanned again, so a value cannot
//! inject a placeholder, and an unknown placeholder stays as written.

/// `text` with each `open name close` replaced by `value(name)` where that is Some.
pub fn fill<'v>(text: &str, open: &str, close: &str, value: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(open) {
        out.push_str(&rest[..i]);
        let after = &rest[i + open.len()..];
        match after.find(close).and_then(|j| value(&after[..j]).map(|v| (j, v))) {
            Some((j, v)) => {
                out.push_str(v);
                rest = &after[j + close.len()..];
            }
            None => {
                out.push_str(open);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn one_pass_and_unknown_names_stay() {
        let v = |n: &str| match n {
            "x" => Some("{y}"),
            "y" => Some("Y"),
            _ => None,
        };
        assert_eq!(fill("a{x}b{y}c{z}d{", "{", "}", v), "a{y}bYc{z}d{");
    }
}
