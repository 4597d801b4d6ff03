//! The add-on's own `apparmor.txt`, checked as the Supervisor checks it before installing.
//!
//! The Supervisor collects the names of lines that match `^profile ([^ ]+)` at column 0 and
//! needs exactly one distinct name; it then renames that profile to the full slug. Anything
//! else makes the install fail.

use crate::diag::Sink;
use crate::source::Pos;

/// The one profile name of the file, or an error reported to `sink`.
pub fn check(text: &str, sink: &mut Sink) -> Option<String> {
    let mut names: Vec<(String, Pos)> = Vec::new();
    let bytes = text.as_bytes();
    // A profile file is mostly rules: find the few `profile ` words, then keep those that
    // start a line.
    let (mut line, mut counted_to) = (1, 0);
    for at in memchr::memmem::find_iter(bytes, b"profile ") {
        if at > 0 && bytes[at - 1] != b'\n' {
            continue;
        }
        let rest = &text[at + "profile ".len()..];
        let end = rest.find([' ', '\n']).unwrap_or(rest.len());
        // `[^ ]+` needs at least one character, and Python's `.` stops at a line break only.
        let name = &rest[..end];
        if name.is_empty() {
            continue;
        }
        line += memchr::memchr_iter(b'\n', &bytes[counted_to..at]).count() as u32;
        counted_to = at;
        let pos = Pos { line, column: 9 };
        if !names.iter().any(|(n, _)| n == name) {
            names.push((name.to_owned(), pos));
        }
    }
    match names.len() {
        1 => names.pop().map(|(n, _)| n),
        0 => {
            sink.error(
                Pos::default(),
                "no 'profile NAME' line at the start of a line: the Supervisor cannot install this add-on (\"Missing AppArmor profile inside file\")",
            );
            None
        }
        _ => {
            for (name, pos) in &names {
                sink.error(
                    *pos,
                    format!(
                        "profile '{name}' is one of {} different profiles: the Supervisor needs exactly one and cannot install this add-on (\"Too many AppArmor profiles inside file\")",
                        names.len()
                    ),
                );
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn run(text: &str) -> (Option<String>, usize) {
        let mut sink = Sink::new(Path::new("apparmor.txt"), None);
        let name = check(text, &mut sink);
        (name, sink.diagnostics.len())
    }

    #[test]
    fn one_profile() {
        assert_eq!(
            run("#include <tunables/global>\nprofile foo flags=(attach_disconnected) {\n}\n"),
            (Some("foo".into()), 0)
        );
    }

    #[test]
    fn same_name_twice_counts_once() {
        assert_eq!(
            run("profile foo {\n}\nprofile foo {\n}\n").0,
            Some("foo".into())
        );
    }

    #[test]
    fn indented_or_missing_profile_fails() {
        assert_eq!(run("  profile foo {\n}\n"), (None, 1));
        assert_eq!(run("foo {\n}\n"), (None, 1));
    }

    #[test]
    fn profile_lines_anywhere_in_the_file() {
        let text = "# profile not {\nabc profile no {\nprofile\nprofile \n\nprofile a {\n}\nx\nprofile b\n";
        let mut sink = Sink::new(Path::new("apparmor.txt"), None);
        assert_eq!(check(text, &mut sink), None);
        let at: Vec<_> = sink
            .diagnostics
            .iter()
            .map(|d| (d.line, d.column))
            .collect();
        assert_eq!(at, [(6, 9), (9, 9)]);
        assert_eq!(run("profile last"), (Some("last".into()), 0));
    }

    #[test]
    fn two_profiles_fail() {
        assert_eq!(run("profile a {\n}\nprofile b {\n}\n"), (None, 2));
    }
}
