//! Escaping for everything the harness prints that came from a case file, a report or the
//! kernel: one-line text for KTAP and terminals, XML-safe text for JUnit, and shell quoting for
//! the copy-paste commands of bug reports. Case ids and messages have no guaranteed character
//! set (a report.json can say anything), so none of them reaches an output unescaped.

use crate::model::text::{needs_escape, push_escaped};
pub use crate::model::text::{one_line, printable};

/// A KTAP test name: one line, and no `#` (KTAP starts a directive there), which becomes `_`.
pub fn ktap_name(id: &str) -> String {
    one_line(id).replace('#', "_")
}

/// Text XML 1.0 can carry: newlines, tabs and carriage returns stay (multi-line logs); other
/// control characters and the non-characters U+FFFE/U+FFFF become visible escapes
/// (quick-junit escapes `<`, `&`, quotes).
pub fn xml_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' | '\r' => out.push(c),
            '\u{FFFE}' | '\u{FFFF}' => push_escaped(&mut out, c),
            c if needs_escape(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html(t: &str) -> String {
    let mut s = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            // Control characters other than newline/tab are not valid in HTML text.
            c if c.is_control() && c != '\n' && c != '\t' => s.push('\u{FFFD}'),
            c => s.push(c),
        }
    }
    s
}

/// One word for a POSIX shell: as it is when it holds only characters no shell treats
/// specially, else in single quotes (a `'` inside becomes `'\''`). A word with control
/// characters is written `$'...'` with `\xNN` escapes instead (bash, zsh, ksh, and POSIX sh
/// since 2024), so printing the command sends no control character to the terminal and a
/// paste gives back the same bytes.
pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=,+@%-".contains(c);
    if !s.is_empty() && s.chars().all(plain) && !s.starts_with('-') {
        return s.to_string();
    }
    if s.chars().any(needs_escape) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if needs_escape(c) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id that tries everything: a quote, a newline with a fake KTAP result, ESC, BEL.
    const HOSTILE: &str = "a'b\nok 999 injected\x1b[2J\x07#x\\";

    #[test]
    fn one_line_escapes_controls_and_backslashes() {
        let s = one_line(HOSTILE);
        assert_eq!(s, "a'b\\nok 999 injected\\x1b[2J\\x07#x\\\\");
        assert!(!s.chars().any(|c| c.is_control()));
        assert_eq!(one_line("caf\u{e9} \u{202E}x"), "caf\u{e9} \\u{202e}x");
        assert_eq!(printable("C:\\path"), "C:\\path");
        assert_eq!(printable("a\nb\\"), "a\\nb\\\\");
    }

    #[test]
    fn ktap_names_have_no_directive() {
        assert_eq!(ktap_name("x#SKIP\n"), "x_SKIP\\n");
    }

    #[test]
    fn xml_keeps_newlines_and_drops_other_controls() {
        assert_eq!(xml_safe("a\nb\x1b[0m\x07\u{FFFE}"), "a\nb\\x1b[0m\\x07\\u{fffe}");
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_quote("registration.ok[4096,2]"), "'registration.ok[4096,2]'");
        assert_eq!(shell_quote("cases/a.yaml"), "cases/a.yaml");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("-rf"), "'-rf'");
        assert_eq!(shell_quote(HOSTILE), "$'a\\'b\\x0aok 999 injected\\x1b[2J\\x07#x\\\\'");
    }

    /// The quoted word, read back by a real shell, is the original string.
    #[test]
    fn shell_words_round_trip() {
        for s in ["it's", "a b", "$(touch /tmp/x)", "`id`", "x'; rm -rf /; '", HOSTILE, "tab\there"] {
            let out = std::process::Command::new("bash")
                .args(["-c", &format!("printf %s {}", shell_quote(s))])
                .output()
                .expect("bash");
            assert_eq!(String::from_utf8_lossy(&out.stdout), s, "{}", shell_quote(s));
        }
    }
}
