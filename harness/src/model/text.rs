//! Text from case files, reports and kernels made safe to print: the one escaping every
//! stage uses for terminals and line-based formats (`report::escape` builds KTAP, XML and
//! shell text on it; `case` prints load errors with it).

/// Characters a terminal or a line-based format must not receive raw: C0/C1 controls and DEL,
/// the Unicode line and paragraph separators, and the bidirectional overrides (which make a
/// line read differently from what it is).
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
    }
}

/// `s` on one line with nothing a terminal interprets: newlines, tabs and other control
/// characters (ESC, BEL, ...) become `\n`, `\t`, `\x1b`, `\x07`...; a backslash becomes `\\`,
/// so the escaped text stands for exactly one original.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Like [`one_line`], only when there is something to escape (plain text, including its
/// backslashes, stays as it is): for human-readable lines where an unchanged message matters
/// more than an unambiguous one.
pub fn printable(s: &str) -> String {
    if s.chars().any(needs_escape) {
        one_line(s)
    } else {
        s.to_string()
    }
}

/// At most `max` characters of `s`, with `…` when some were cut.
pub fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_only_when_needed() {
        assert_eq!(printable("a\\b"), "a\\b");
        assert_eq!(printable("a\nb\x1b"), "a\\nb\\x1b");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
