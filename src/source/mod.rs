//! Reading config files into a position-carrying value tree.
//!
//! The Supervisor validates a plain Python dict; we validate a [`Node`] tree that is the same
//! data plus the line and column of every value, so each diagnostic can point at its cause.
//! YAML goes through serde-saphyr with resource budgets (untrusted input); JSON through a small
//! strict parser of our own, because serde_json keeps no positions.

mod json;
mod node;
mod resolve;
mod yaml;

pub use node::{Node, Pos, Value, python_float};

use std::path::Path;

/// Files larger than this are refused before parsing. Real add-on configs are a few KiB; the
/// largest in the corpus is under 40 KiB.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Nesting deeper than this is refused (real configs nest 4 levels).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("file is {size} bytes, larger than the {limit} byte limit for config files")]
    TooLarge { size: u64, limit: usize },
    #[error("file is not valid UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 {
        offset: usize,
        line: u32,
        column: u32,
    },
    #[error("file is empty")]
    Empty,
    #[error("{message}")]
    Syntax { message: String, pos: Pos },
}

impl SourceError {
    /// Where in the file the problem is, when it has a place.
    pub fn pos(&self) -> Option<Pos> {
        match self {
            SourceError::NotUtf8 { line, column, .. } => Some(Pos {
                line: *line,
                column: *column,
            }),
            SourceError::Syntax { pos, .. } => Some(*pos),
            _ => None,
        }
    }
}

/// The format of a config file, decided by its extension as the Supervisor does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A file's text, kept for snippets.
#[derive(Clone, Debug)]
pub struct SourceText {
    pub text: String,
    /// Byte offsets where lines start, built on the first snippet: a file with thousands of
    /// diagnostics would otherwise be walked from the top for each.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceText {
    pub fn new(text: String) -> SourceText {
        SourceText {
            text,
            line_starts: std::sync::OnceLock::new(),
        }
    }

    /// The text of 1-based line `line`, without its line break.
    pub fn line(&self, line: u32) -> Option<&str> {
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', self.text.as_bytes()).map(|i| i + 1))
                .collect()
        });
        let start = *starts.get((line as usize).checked_sub(1)?)?;
        if start == self.text.len() {
            // After a final line break (or in an empty file) there is no further line.
            return None;
        }
        // The next line's start is just past this line's break.
        let end = starts
            .get(line as usize)
            .map_or(self.text.len(), |next| next - 1);
        let text = &self.text[start..end];
        Some(text.strip_suffix('\r').unwrap_or(text))
    }
}

/// Decode bytes as UTF-8, reporting the position of the first bad byte.
pub fn decode(bytes: &[u8]) -> Result<&str, SourceError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(err) => {
            let offset = err.valid_up_to();
            let before = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
            let line = before.matches('\n').count() as u32 + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            Err(SourceError::NotUtf8 {
                offset,
                line,
                column,
            })
        }
    }
}

/// Parse text of the given format into a tree. An empty document is an error: the Supervisor
/// reads it as `None` and rejects it, and there is nothing useful to validate.
pub fn parse(text: &str, format: Format) -> Result<Node, SourceError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(SourceError::TooLarge {
            size: text.len() as u64,
            limit: MAX_CONFIG_BYTES,
        });
    }
    if text.trim().is_empty() {
        return Err(SourceError::Empty);
    }
    match format {
        Format::Yaml => yaml::parse(text),
        Format::Json => json::parse(text),
    }
}

/// Read a file of at most `limit` bytes and hand its bytes to `use_bytes`: one open and, for a
/// config-sized file, two reads, into a buffer each thread keeps (a fresh buffer per file cost
/// more than the parse of a small config). A larger file is refused after reading `limit + 1`
/// bytes, never read whole.
pub fn with_file<T>(
    path: &Path,
    limit: usize,
    use_bytes: impl FnOnce(&[u8]) -> T,
) -> Result<T, SourceError> {
    use std::cell::RefCell;
    use std::io::Read;
    const KEEP: usize = 64 * 1024;
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(KEEP));
    }
    let file = std::fs::File::open(path)?;
    BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        let read = (&file).take(limit as u64 + 1).read_to_end(&mut buffer);
        let result = match read {
            Err(err) => Err(SourceError::Io(err)),
            Ok(_) if buffer.len() > limit => {
                let size = file.metadata().map_or(buffer.len() as u64, |m| m.len());
                Err(SourceError::TooLarge { size, limit })
            }
            Ok(_) => Ok(use_bytes(&buffer)),
        };
        if buffer.capacity() > 4 * KEEP {
            buffer.clear();
            buffer.shrink_to(KEEP);
        }
        result
    })
}

/// Read and parse one file, with the size limit enforced while reading.
pub fn load(
    path: &Path,
    format: Format,
) -> Result<(Node, SourceText), (SourceError, Option<SourceText>)> {
    let text = with_file(path, MAX_CONFIG_BYTES, |bytes| {
        decode(bytes).map(str::to_owned)
    })
    .and_then(|decoded| decoded)
    .map_err(|e| (e, None))?;
    let source = SourceText::new(text);
    match parse(&source.text, format) {
        Ok(node) => Ok((node, source)),
        Err(err) => Err((err, Some(source))),
    }
}

#[cfg(test)]
mod tests {
    use super::SourceText;

    #[test]
    fn lines_as_str_lines_gives_them() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "\n\nx\n",
            "é\nü",
        ] {
            let source = SourceText::new(text.to_owned());
            for n in 0..6u32 {
                let want = if n == 0 {
                    None
                } else {
                    text.lines().nth(n as usize - 1)
                };
                assert_eq!(source.line(n), want, "{text:?} line {n}");
            }
        }
    }
}
