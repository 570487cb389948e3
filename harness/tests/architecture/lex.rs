//! Lexing for the architecture checks: comments and literals blanked out, tokens, and `use`
//! trees flattened into one path per leaf.

// Lexing: blank out comments and literals (keeping line breaks), then split into tokens.

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `src` with comments and string/char literals replaced by spaces; newlines are kept so lines still match.
pub fn strip_code(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && is_ident_char(c[i - 1]);
        let skip = match (c[i], at(i + 1)) {
            ('/', '/') => Some(c[i..].iter().position(|&x| x == '\n').map_or(c.len(), |n| i + n)),
            ('/', '*') => Some(block_comment_end(&c, i + 2)),
            ('"', _) => Some(quoted_end(&c, i + 1, '"')),
            ('\'', '\\') => Some(quoted_end(&c, i + 1, '\'')),
            // `'x'` is a char literal; `'a` without a closing quote right after is a lifetime or label.
            ('\'', _) if at(i + 2) == '\'' => Some(i + 3),
            ('r' | 'b' | 'c', _) if !prev_ident => raw_string_end(&c, i),
            _ => None,
        };
        let end = skip.unwrap_or(i + 1);
        out.extend(c[i..end].iter().map(|&x| if skip.is_none() || x == '\n' { x } else { ' ' }));
        i = end;
    }
    out
}

/// End (exclusive) of a possibly nested block comment whose body starts at `i`.
fn block_comment_end(c: &[char], mut i: usize) -> usize {
    let mut depth = 1;
    while i < c.len() && depth > 0 {
        match (c[i], c.get(i + 1)) {
            ('/', Some('*')) => (depth, i) = (depth + 1, i + 2),
            ('*', Some('/')) => (depth, i) = (depth - 1, i + 2),
            _ => i += 1,
        }
    }
    i.min(c.len())
}

/// End (exclusive) of a quoted literal whose body starts at `i`, honouring backslash escapes.
fn quoted_end(c: &[char], mut i: usize, quote: char) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            x if x == quote => return i + 1,
            _ => i += 1,
        }
    }
    c.len()
}

/// End (exclusive) of a raw string `r"…"`, `r#"…"#`, `br"…"` or `cr"…"` starting at `i`, if there is one.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let j = match (c[i], c.get(i + 1)) {
        ('r', _) => i + 1,
        (_, Some('r')) => i + 2,
        _ => return None,
    };
    let hashes = c[j..].iter().take_while(|&&x| x == '#').count();
    let j = j + hashes;
    if c.get(j) != Some(&'"') {
        return None; // e.g. a raw identifier `r#type`
    }
    let closes = |k: usize| c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#'));
    Some((j + 1..c.len()).find(|&k| closes(k)).map_or(c.len(), |k| k + 1 + hashes))
}

pub struct Tok<'a> {
    pub text: &'a str,
    pub line: usize,
}

/// Identifiers (and numbers), `::`, and single punctuation characters, each with its 1-based line.
pub fn tokenize(code: &str) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    let mut line = 1;
    let mut chars = code.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            line += usize::from(c == '\n');
            continue;
        }
        let mut end = start + c.len_utf8();
        if is_ident_char(c) {
            while let Some((j, d)) = chars.next_if(|&(_, d)| is_ident_char(d)) {
                end = j + d.len_utf8();
            }
        } else if c == ':' && chars.next_if(|&(_, d)| d == ':').is_some() {
            end += 1;
        }
        toks.push(Tok { text: &code[start..end], line });
    }
    toks
}

pub fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

// Paths: flatten `a::b::{c, d::{e as f}}` into one path per leaf.

pub struct UsePath {
    /// Segments with the line each one is on.
    pub segs: Vec<(String, usize)>,
    pub alias: Option<String>,
    /// A simple path directly followed by `!` (a macro invocation).
    pub macro_call: bool,
}

/// Flattens the path tree starting at token `i` (just after a `::`); returns the index after it.
fn use_tree(toks: &[Tok], mut i: usize, prefix: &mut Vec<(String, usize)>, out: &mut Vec<UsePath>) -> usize {
    let text = |i: usize| toks.get(i).map_or("", |t| t.text);
    match text(i) {
        "{" => {
            i += 1;
            loop {
                if text(i) == "}" {
                    return i + 1;
                }
                let next = use_tree(toks, i, prefix, out);
                match text(next) {
                    "," => i = next + 1,
                    "}" => return next + 1,
                    _ => return next, // malformed or cut short: stop here
                }
            }
        }
        t if is_ident(t) || t == "*" => {
            prefix.push((t.to_string(), toks[i].line));
            i += 1;
            if text(i) == "::" && (is_ident(text(i + 1)) || matches!(text(i + 1), "{" | "*")) {
                i = use_tree(toks, i + 1, prefix, out);
            } else {
                let alias = (text(i) == "as").then(|| text(i + 1).to_string());
                let macro_call = text(i) == "!";
                i += if alias.is_some() { 2 } else { 0 };
                out.push(UsePath { segs: prefix.clone(), alias, macro_call });
            }
            prefix.pop();
            i
        }
        _ => i,
    }
}

pub fn paths_at(toks: &[Tok], i: usize) -> Vec<UsePath> {
    let mut out = Vec::new();
    use_tree(toks, i, &mut Vec::new(), &mut out);
    out
}
