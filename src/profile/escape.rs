//! The AppArmor escaper, registered with askama for `.apparmor` templates (see
//! `askama.toml`). Every `{{ value }}` in a profile template passes through it unless the
//! template marks it `|safe`, which the templates do only for text this crate writes.
//!
//! Literal paths are validated before they get here (no pattern characters, quotes or control
//! characters), so for them escaping changes nothing: it is the second wall. What it does:
//! pattern characters and quotes get a backslash, so they match themselves; control
//! characters (a line break would end a rule or a comment) become octal escapes, which the
//! parser reads back as the same byte inside a path and which cannot start a new line.

use std::fmt::{self, Write};

#[derive(Clone, Copy, Debug, Default)]
pub struct AppArmor;

impl askama::filters::Escaper for AppArmor {
    fn write_escaped_str<W: Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        for c in string.chars() {
            match c {
                '*' | '?' | '[' | ']' | '{' | '}' | '^' | '@' | '"' | '\\' => {
                    dest.write_char('\\')?;
                    dest.write_char(c)?;
                }
                c if (c as u32) < 0x20 || c == '\u{7f}' => write!(dest, "\\{:03o}", c as u32)?,
                // Other control characters (C1, line and paragraph separators) have no
                // meaning to the parser, but no profile needs them: write them as octal bytes.
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        write!(dest, "\\{b:03o}")?;
                    }
                }
                c => dest.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Escape a string as the template does (for tests and for text built outside a template).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    askama::filters::Escaper::write_escaped_str(&AppArmor, &mut out, s).expect("string write");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn pattern_characters_and_quotes_are_escaped() {
        assert_eq!(escape("/a*b?c[d]e{f}g^h@i"), r"/a\*b\?c\[d\]e\{f\}g\^h\@i");
        assert_eq!(escape(r#"/a"b\c"#), r#"/a\"b\\c"#);
        assert_eq!(escape("@{PROC}"), r"\@\{PROC\}");
    }

    #[test]
    fn control_characters_cannot_break_a_line() {
        let e = escape("/x\n/** rwix,\r\t\u{7f}\u{85}");
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert_eq!(e, r"/x\012/\*\* rwix,\015\011\177\302\205");
    }

    #[test]
    fn plain_paths_are_unchanged() {
        for p in [
            "/share/my files/x.conf",
            "/dev/ttyUSB0",
            "local_my-addon.v2",
            "/é",
        ] {
            assert_eq!(escape(p), p);
        }
    }
}
