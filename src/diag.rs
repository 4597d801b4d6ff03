//! Diagnostics: what is wrong (or suspicious) in an add-on folder, and exactly where.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::source::{Pos, SourceText};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    #[serde(skip)]
    pub severity: Severity,
    pub message: String,
    pub file: String,
    /// 1-based; 0 when the problem has no single place (a missing file, a missing key).
    pub line: u32,
    pub column: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line > 0 {
            writeln!(
                f,
                "{label}: {}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        } else {
            writeln!(f, "{label}: {}: {}", self.file, self.message)?;
        }
        if let Some(snippet) = &self.snippet {
            let gutter = self.line.to_string();
            writeln!(f, "  {gutter} | {snippet}")?;
            let pad = " ".repeat(gutter.len());
            let caret = " ".repeat(self.column.saturating_sub(1) as usize);
            writeln!(f, "  {pad} | {caret}^")?;
        }
        Ok(())
    }
}

/// Collects the diagnostics of one file, filling in the file name and snippets.
pub struct Sink<'a> {
    file: String,
    source: Option<&'a SourceText>,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub fn new(file: &Path, source: Option<&'a SourceText>) -> Sink<'a> {
        Sink {
            file: display_path(file),
            source,
            diagnostics: Vec::new(),
        }
    }

    pub fn push(&mut self, severity: Severity, pos: Pos, message: impl Into<String>) {
        let snippet = self
            .source
            .and_then(|s| s.line(pos.line))
            .map(|line| truncate(line, 160));
        self.diagnostics.push(Diagnostic {
            severity,
            message: message.into(),
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            snippet,
        });
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(Severity::Error, pos, message);
    }

    pub fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(Severity::Warning, pos, message);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

fn truncate(line: &str, max: usize) -> String {
    let clean: String = line
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if clean.chars().count() <= max {
        clean
    } else {
        clean.chars().take(max).collect::<String>() + "…"
    }
}

pub fn display_path(path: &Path) -> String {
    // What `path.display()` writes, without the formatting machinery (a path per file read).
    path.to_string_lossy().into_owned()
}

/// A diagnostic about a file or folder as a whole.
pub fn whole_file(severity: Severity, file: &Path, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity,
        message: message.into(),
        file: display_path(file),
        line: 0,
        column: 0,
        snippet: None,
    }
}
