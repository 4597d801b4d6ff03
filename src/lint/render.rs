//! The human and GitHub Actions renderings of lint reports (SARIF is [`super::sarif`]).

use std::fmt::Write;

use super::{Finding, Level, Report};

/// A report for people: a header with the rating, then each finding with its place, snippet,
/// why, fix (and the edit, as the old and the new line) and the rating change.
pub fn human(report: &Report) -> String {
    let mut s = String::new();
    let slug = report.slug.as_deref().unwrap_or("?");
    let _ = match (report.rating, report.rating_fixed) {
        (Some(r), Some(f)) if f != r => writeln!(
            s,
            "{}: {slug}: rating {r}/8, {f}/8 with every fix",
            report.path
        ),
        (Some(r), _) => writeln!(s, "{}: {slug}: rating {r}/8", report.path),
        _ => writeln!(s, "{}: {slug}: invalid, only check's findings", report.path),
    };
    for f in &report.findings {
        finding(&mut s, f);
    }
    s
}

fn finding(s: &mut String, f: &Finding) {
    let place = if f.line > 0 {
        format!("{}:{}:{}", f.file, f.line, f.column)
    } else {
        f.file.clone()
    };
    let _ = writeln!(
        s,
        "{}[{}]: {place}: {}",
        f.level.name(),
        f.rule.id,
        f.message
    );
    if let Some(snippet) = &f.snippet {
        let gutter = f.line.to_string();
        let _ = writeln!(s, "  {gutter} | {snippet}");
        let caret = " ".repeat(f.column.saturating_sub(1) as usize);
        let _ = writeln!(s, "  {} | {caret}^", " ".repeat(gutter.len()));
    }
    if f.rule.id != super::rules::CHECK_ERROR.id && f.rule.id != super::rules::CHECK_WARNING.id {
        let _ = writeln!(s, "  why: {}", f.why);
    }
    if let Some(fix) = &f.fix {
        let rating = f
            .rating
            .map(|r| format!(" (rating {} → {})", r.before, r.after))
            .unwrap_or_default();
        let _ = writeln!(s, "  fix: {}{rating}", fix.description);
        if let Some(edit) = &fix.edit {
            let _ = writeln!(s, "    {}:{}", edit.file, edit.line);
            let _ = writeln!(s, "    - {}", edit.old);
            for line in edit.new.split('\n') {
                let _ = writeln!(s, "    +{}{line}", if line.is_empty() { "" } else { " " });
            }
        }
    }
}

/// GitHub Actions workflow commands, one line per finding.
pub fn github(report: &Report) -> String {
    let mut s = String::new();
    for f in &report.findings {
        let command = match f.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "notice",
        };
        let mut props = format!("file={}", property(&f.file));
        if f.line > 0 {
            let _ = write!(props, ",line={},col={}", f.line, f.column);
        }
        let _ = write!(props, ",title={}", property(f.rule.id));
        let mut text = f.message.clone();
        if let Some(fix) = &f.fix {
            let _ = write!(text, "\nfix: {}", fix.description);
            if let Some(r) = f.rating {
                let _ = write!(text, " (rating {} → {})", r.before, r.after);
            }
        }
        let _ = writeln!(s, "::{command} {props}::{}", data(&text));
    }
    s
}

/// A workflow command's message, escaped as the runner unescapes it.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_are_escaped() {
        assert_eq!(data("50%\na"), "50%25%0Aa");
        assert_eq!(property("a:b,c"), "a%3Ab%2Cc");
    }
}
