//! Python's `repr()` and `str()` of JSON-like values: the Supervisor's error text ends with
//! `. Got <repr of the options>`, and `list(...)`/`match(...)` write `str(value)`.

use serde_json::Value;

use crate::source::python_float;

/// voluptuous' `humanize_error` cuts the repr at this many characters (`...` included).
pub const MAX_GOT: usize = 500;

/// `repr(value)` cut like `humanize_error` does: 497 characters and `...`.
pub fn got(value: &Value) -> String {
    let text = repr(value);
    if text.chars().count() <= MAX_GOT {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_GOT - 3).collect();
    cut.push_str("...");
    cut
}

/// Python's `str(value)`: a string as itself, anything else as its repr.
pub fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr(value)` of what `json.loads` would have made of it.
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(&repr_str(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&repr_str(k));
                out.push_str(": ");
                write_repr(v, out);
            }
            out.push('}');
        }
    }
}

/// An integer as Python writes it, a float as `repr(float)` (`1.0`, `1e+20`).
pub fn number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        python_float(n.as_f64().unwrap_or(f64::NAN))
    } else {
        n.to_string()
    }
}

/// Python's `repr(str)`: single quotes unless the text holds `'` and no `"`; backslash,
/// the quote, `\n\r\t` escaped; characters Python does not count as printable as `\xNN`,
/// `\uNNNN` or `\UNNNNNNNN`.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !printable(c) => {
                let code = c as u32;
                if code < 0x100 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else if code < 0x10000 {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one character: not a control, format, surrogate,
/// private-use or unassigned character, and no separator but the ASCII space. The ranges
/// are those of the common non-printable characters; rare unassigned code points print.
fn printable(c: char) -> bool {
    let code = c as u32;
    !(c.is_control()
        || matches!(
            code,
            0xa0 | 0xad
                | 0x600..=0x605
                | 0x61c
                | 0x6dd
                | 0x70f
                | 0x1680
                | 0x180e
                | 0x2000..=0x200f
                | 0x2028..=0x202f
                | 0x205f..=0x2064
                | 0x2066..=0x206f
                | 0x3000
                | 0xd800..=0xf8ff
                | 0xfeff
                | 0xfff9..=0xfffb
                | 0xfffe..=0xffff
                | 0x110bd
                | 0x1bca0..=0x1bca3
                | 0x1d173..=0x1d17a
                | 0xe0001..=0xe007f
                | 0xf0000..
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repr_matches_python() {
        let v = json!({"a": [1, 1.0, 1e20, true, null], "b'": "it's", "c": "x\"y'z\n\u{7f}é"});
        assert_eq!(
            repr(&v),
            r#"{'a': [1, 1.0, 1e+20, True, None], "b'": "it's", 'c': 'x"y\'z\n\x7fé'}"#
        );
        assert_eq!(str_of(&json!(["x"])), "['x']");
        assert_eq!(str_of(&json!(1.5)), "1.5");
    }

    #[test]
    fn got_is_cut_at_500_characters() {
        let long = json!({"k": "é".repeat(600)});
        let g = got(&long);
        assert_eq!(g.chars().count(), 500);
        assert!(g.ends_with("..."));
        assert_eq!(got(&json!({"k": 1})), "{'k': 1}");
    }
}
