//! Fixes as text: one line of a file replaced by new text. A fix is offered as an edit only
//! where one line says the whole thing (a block-style `key: value`, a list item on its own
//! line); anything else is described in words and left to the author.

use serde::Serialize;

use crate::source::{Node, SourceText};

/// Replace the whole of line `line` (without its line break) of `file` by `new`. An empty
/// `new` leaves an empty line; a `new` with a line break inserts lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// The line as it is now, so an edit is never applied to a changed file.
    pub old: String,
    pub new: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("{file}: line {line} is not there")]
    NoLine { file: String, line: u32 },
    #[error("{file}:{line}: the line changed since it was linted")]
    Changed { file: String, line: u32 },
}

impl Edit {
    /// The text with this edit applied.
    pub fn apply(&self, text: &str) -> Result<String, EditError> {
        let mut out = String::with_capacity(text.len() + self.new.len());
        let mut found = false;
        for (i, piece) in text.split_inclusive('\n').enumerate() {
            if i + 1 != self.line as usize {
                out.push_str(piece);
                continue;
            }
            let body = piece.strip_suffix('\n').unwrap_or(piece);
            let (body, cr) = match body.strip_suffix('\r') {
                Some(b) => (b, "\r"),
                None => (body, ""),
            };
            if body != self.old {
                return Err(EditError::Changed {
                    file: self.file.clone(),
                    line: self.line,
                });
            }
            found = true;
            out.push_str(&self.new);
            out.push_str(cr);
            if piece.ends_with('\n') {
                out.push('\n');
            }
        }
        if found {
            Ok(out)
        } else {
            Err(EditError::NoLine {
                file: self.file.clone(),
                line: self.line,
            })
        }
    }

    /// Columns of the replaced text as SARIF counts them (code points, end exclusive).
    pub fn end_column(&self) -> u32 {
        self.old.chars().count() as u32 + 1
    }
}

/// The YAML text of a config, with what edits need to know.
pub struct Text<'a> {
    pub file: &'a str,
    pub source: &'a SourceText,
    /// Only YAML files get line edits (a JSON line holds commas and braces around the value).
    pub yaml: bool,
}

impl Text<'_> {
    fn line(&self, line: u32) -> Option<&str> {
        self.source.line(line)
    }

    /// Remove a top-level `key: value` written on one line of its own.
    pub fn delete_key(&self, key: &Node, value: &Node) -> Option<Edit> {
        let line = self.own_line(key, value)?;
        self.edit(key.pos.line, line, String::new())
    }

    /// Replace the value of a one-line `key: value` by `new_value` (a YAML scalar).
    pub fn set_value(&self, key: &Node, value: &Node, new_value: &str) -> Option<Edit> {
        let line = self.own_line(key, value)?;
        let name = key.as_str()?;
        let indent: String = line.chars().take_while(|c| *c == ' ').collect();
        let comment = comment_of(line);
        self.edit(
            key.pos.line,
            line,
            format!("{indent}{name}: {new_value}{comment}"),
        )
    }

    /// Put `new_line` (unindented) before the line of the top-level key `before`.
    pub fn insert_before(&self, before: &Node, new_line: &str) -> Option<Edit> {
        if !self.yaml || before.pos.column != 1 {
            return None;
        }
        let line = self.line(before.pos.line)?;
        self.edit(before.pos.line, line, format!("{new_line}\n{line}"))
    }

    /// Replace the word `old` in the line of `node` by `new`, when it stands there as a word
    /// once (a list item such as `- share:rw`, a flow list `[share:rw]`, `type: addons`).
    pub fn replace_word(&self, node: &Node, old: &str, new: &str) -> Option<Edit> {
        if !self.yaml {
            return None;
        }
        let line = self.line(node.pos.line)?;
        let hits: Vec<usize> = line
            .match_indices(old)
            .map(|(at, _)| at)
            .filter(|at| word_at(line, *at, old.len()))
            .collect();
        let [at] = hits.as_slice() else {
            return None;
        };
        let changed = format!("{}{new}{}", &line[..*at], &line[at + old.len()..]);
        self.edit(node.pos.line, line, changed)
    }

    /// Remove the block-list item `node` (a line `  - ITEM`). The last item of a list
    /// becomes `[]` on its line, so the key keeps a list (an empty value is null, which the
    /// Supervisor refuses where it wants a list).
    pub fn delete_item(&self, node: &Node, sole: bool) -> Option<Edit> {
        if !self.yaml {
            return None;
        }
        let line = self.line(node.pos.line)?;
        let code = line.split(" #").next().unwrap_or(line).trim();
        let item = code.strip_prefix("- ")?.trim();
        let written = item.trim_matches(|c| c == '"' || c == '\'');
        (Some(written) == node.as_str()).then_some(())?;
        let new = if sole {
            let indent = line.len() - line.trim_start().len();
            format!("{}[]", " ".repeat(indent.max(2)))
        } else {
            String::new()
        };
        self.edit(node.pos.line, line, new)
    }

    /// The line of a top-level `key: value`, when both are on it and nothing else is.
    fn own_line(&self, key: &Node, value: &Node) -> Option<&str> {
        if !self.yaml || key.pos.column != 1 || key.pos.line != value.pos.line {
            return None;
        }
        if matches!(
            value.value,
            crate::source::Value::Seq(_) | crate::source::Value::Map(_)
        ) {
            return None;
        }
        let line = self.line(key.pos.line)?;
        let name = key.as_str()?;
        line.strip_prefix(name)?
            .trim_start()
            .starts_with(':')
            .then_some(line)
    }

    fn edit(&self, line_no: u32, old: &str, new: String) -> Option<Edit> {
        Some(Edit {
            file: self.file.to_owned(),
            line: line_no,
            old: old.to_owned(),
            new,
        })
    }
}

/// A trailing ` # comment` of a line, kept by a value edit.
fn comment_of(line: &str) -> &str {
    match line.find(" #") {
        Some(at) if !line[..at].contains(['"', '\'']) => &line[at..],
        _ => "",
    }
}

/// `old` at byte `at` of `line` is a whole word (not part of a longer name).
fn word_at(line: &str, at: usize, len: usize) -> bool {
    let name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let before = line[..at].chars().next_back();
    let after = line[at + len..].chars().next();
    !before.is_some_and(name) && !after.is_some_and(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(line: u32, old: &str, new: &str) -> Edit {
        Edit {
            file: "f".into(),
            line,
            old: old.into(),
            new: new.into(),
        }
    }

    #[test]
    fn apply_replaces_one_line_and_keeps_line_ends() {
        let text = "a: 1\r\nb: 2\r\nc: 3";
        assert_eq!(
            edit(2, "b: 2", "b: 3").apply(text),
            Ok("a: 1\r\nb: 3\r\nc: 3".into())
        );
        assert_eq!(
            edit(3, "c: 3", "").apply(text),
            Ok("a: 1\r\nb: 2\r\n".into())
        );
        assert!(matches!(
            edit(2, "b: 9", "").apply(text),
            Err(EditError::Changed { .. })
        ));
        assert!(matches!(
            edit(7, "", "").apply(text),
            Err(EditError::NoLine { .. })
        ));
    }

    #[test]
    fn words_are_whole() {
        assert!(word_at("- addon_config:rw", 2, 12));
        assert!(!word_at("- all_addon_configs:rw", 6, 12));
    }
}
