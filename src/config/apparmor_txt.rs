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
    for (i, line) in text.split('\n').enumerate() {
        let Some(rest) = line.strip_prefix("profile ") else {
            continue;
        };
        let name: String = rest.chars().take_while(|c| *c != ' ').collect();
        // `[^ ]+` needs at least one character, and Python's `.` stops at a line break only.
        if name.is_empty() || name.contains('\n') {
            continue;
        }
        let pos = Pos {
            line: i as u32 + 1,
            column: 9,
        };
        if !names.iter().any(|(n, _)| *n == name) {
            names.push((name, pos));
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
    fn two_profiles_fail() {
        assert_eq!(run("profile a {\n}\nprofile b {\n}\n"), (None, 2));
    }
}
