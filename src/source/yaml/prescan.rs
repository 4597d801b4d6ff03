//! The line scan before parsing: what libyaml (and so the Supervisor) refuses at the start of a
//! line that a YAML 1.2 parser would read, a tab in indentation or an explicit `?` key.

use crate::source::Pos;

const TAB_IN_INDENTATION: &str = "a tab where indentation is expected (YAML indents with \
                                  spaces; the Supervisor's PyYAML refuses the file)";
const EXPLICIT_KEY: &str = "an explicit '?' key, which add-on configs do not use (YAML 1.1 and \
                            1.2 parsers disagree on its corner cases, so it is refused)";

/// What is wrong at the start of a line, before the parser sees it:
/// - a tab in the blanks that start it, or after a block indicator (`- `, `? `) in them. YAML
///   1.2 parsers let some of these through as separation; libyaml, and so the Supervisor,
///   refuses each one.
/// - an explicit key (`? `), where granit-parser and libyaml read corner cases differently.
///
/// Lines inside quoted or block scalars are not told apart, so such a line there is refused
/// too (the safe side; no real config has one).
pub(super) fn indentation_problem(text: &str) -> Option<(Pos, &'static str)> {
    let bytes = text.as_bytes();
    // Only a line holding a tab or a '?' can have a problem, and in most files that is a few
    // lines (`str?` in a schema): look at those alone.
    let mut from = 0;
    while let Some(found) = memchr::memchr2(b'\t', b'?', &bytes[from..]) {
        let at = from + found;
        let start = memchr::memrchr(b'\n', &bytes[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        if let Some((column, why)) = line_indentation_problem(&text[start..end]) {
            let line = memchr::memchr_iter(b'\n', &bytes[..start]).count() as u32 + 1;
            return Some((Pos { line, column }, why));
        }
        from = end;
    }
    None
}

/// The column (from 1) and kind of an indentation problem in one line, if it has one.
fn line_indentation_problem(line: &str) -> Option<(u32, &'static str)> {
    let bytes = line.as_bytes();
    let column = |i: usize| line[..i].chars().count() as u32 + 1;
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            if bytes[i] == b'\t' {
                return Some((column(i), TAB_IN_INDENTATION));
            }
            i += 1;
        }
        // A block indicator followed by a blank (or the end) continues the indentation.
        match (bytes.get(i), bytes.get(i + 1)) {
            (Some(b'?'), None | Some(b' ' | b'\t' | b'\r')) => {
                return Some((column(i), EXPLICIT_KEY));
            }
            (Some(b'-'), Some(b' ' | b'\t')) => i += 1,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Looking only at the lines that hold a tab or a '?' finds what checking every line
        /// finds, at the same place.
        #[test]
        fn indentation_scan_skips_no_line(
            text in proptest::string::string_regex("[ \t?\\-a\r\né:]{0,40}").unwrap()
        ) {
            let every_line = text.split('\n').enumerate().find_map(|(index, line)| {
                line_indentation_problem(line).map(|(column, why)| {
                    (Pos { line: index as u32 + 1, column }, why)
                })
            });
            proptest::prop_assert_eq!(indentation_problem(&text), every_line);
        }
    }
}
