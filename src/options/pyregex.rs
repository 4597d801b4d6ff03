//! Python `re` patterns (a schema's `match(...)`) run with `fancy_regex`, which has the
//! look-arounds and back-references Python patterns use; the few places where the two
//! syntaxes mean different things are rewritten first.

use fancy_regex::Regex;

/// `re.match(pattern, text)`: anchored at the start only.
pub fn python_match(pattern: &str, text: &str) -> Result<bool, String> {
    let translated = format!("\\A(?:{})", translate(pattern));
    let re = Regex::new(&translated).map_err(|e| format!("{pattern}: {e}"))?;
    re.is_match(text).map_err(|e| format!("{pattern}: {e}"))
}

/// Rewrite Python-only syntax: `$` (end or before a final newline) and `\Z` (end), `{,n}`
/// and literal `{`, octal escapes, and `[`/`&`/`~` in a class (set operators in Rust).
fn translate(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                i = escape(&chars, i, in_class, &mut out);
                continue;
            }
            '[' if in_class => out.push_str("\\["),
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '[' => {
                in_class = true;
                out.push('[');
                // A `]` right after `[` or `[^` is a literal in both syntaxes.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '$' if !in_class => out.push_str("(?=\\n?\\z)"),
            '{' if !in_class => match quantifier(&chars[i..]) {
                Some((text, len)) => {
                    out.push_str(&text);
                    i += len;
                    continue;
                }
                None => out.push_str("\\{"),
            },
            '}' if !in_class => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// One escape at `chars[i] == '\\'`; returns the index after it.
fn escape(chars: &[char], i: usize, in_class: bool, out: &mut String) -> usize {
    let next = chars[i + 1];
    let octal = |c: &char| ('0'..='7').contains(c);
    if next == 'Z' && !in_class {
        out.push_str("\\z");
        return i + 2;
    }
    let three_octal = chars.len() >= i + 4 && chars[i + 1..i + 4].iter().all(octal);
    if next == '0' || (three_octal && next <= '3') {
        // Python reads at most three octal digits (`\0` and up to two more, or `\ddd`).
        let digits: String = chars[i + 1..]
            .iter()
            .take(3)
            .take_while(|c| octal(c))
            .collect();
        let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
        out.push_str(&format!("\\x{{{code:x}}}"));
        return i + 1 + digits.len();
    }
    out.push('\\');
    out.push(next);
    i + 2
}

/// A Python quantifier `{m}`, `{m,}`, `{,n}`, `{m,n}` at the start of `chars`, written the
/// Rust way, and its length; `None` when the `{` is a literal.
fn quantifier(chars: &[char]) -> Option<(String, usize)> {
    let end = chars.iter().position(|&c| c == '}')?;
    let body: String = chars[1..end].iter().collect();
    let (lo, hi) = match body.split_once(',') {
        Some((lo, hi)) => (lo, Some(hi)),
        None => (body.as_str(), None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(lo) || !hi.is_none_or(digits) || (lo.is_empty() && hi.is_none()) {
        return None;
    }
    let lo = if lo.is_empty() { "0" } else { lo };
    let text = match hi {
        None => format!("{{{lo}}}"),
        Some(hi) => format!("{{{lo},{hi}}}"),
    };
    Some((text, end + 1))
}

#[cfg(test)]
mod tests {
    use super::python_match;

    #[test]
    fn python_semantics() {
        let m = |p: &str, t: &str| python_match(p, t).unwrap();
        assert!(m("[a-z]{2}", "abc"), "anchored at the start only");
        assert!(!m("[a-z]{2}", "1ab"));
        assert!(m("^a$", "a\n"), "$ matches before a final newline");
        assert!(!m("^a\\Z", "a\n"));
        assert!(m("a{,2}b", "aab"));
        assert!(
            m("a{x}", "a{x}"),
            "a brace that is no quantifier is a literal"
        );
        assert!(m("[[]", "["));
        assert!(m("\\101", "A"));
        assert!(m("a-(?=b)", "a-b"));
        assert!(!m("a-(?=b)", "a-c"));
        assert!(m("^(?i:(config|share))$", "SHARE"));
        assert!(python_match("(", "x").is_err());
    }
}
