//! "Everything under a directory except these subtrees", in AppArmor patterns.
//!
//! AppArmor has no "except": a deny rule always wins over an allow rule, so `deny /sys/** w`
//! cannot be combined with a writable `/sys/class/gpio`. The way out (snapd's
//! `GenerateAAREExclusionPatterns`, moby's `/sys/[^f]*/**` chain) is to deny every path that
//! leaves the exempt prefixes at some character: after `/sys/` anything not starting with
//! `c` or `d`, after `/sys/c` anything not followed by `l`, and so on, plus the proper
//! prefixes themselves (a file named `/sys/cl`). This module builds that chain from a set of
//! literal prefixes; the result is checked against the real parser in the tests.

use std::collections::BTreeSet;

/// Deny patterns (base included) that together cover every path under `base` except the
/// exempt directories and their subtrees. `base` ends in `/`; exempt paths are relative to it,
/// literal (validated: no pattern characters) and without a trailing `/`.
///
/// Each result is `(literal, pattern)`: the literal part must be escaped, the pattern part is
/// trusted text made here.
pub fn deny_all_except(base: &str, exempt: &[&str]) -> Vec<(String, String)> {
    let suffixes: BTreeSet<String> = exempt.iter().map(|e| format!("{e}/")).collect();
    let mut out = Vec::new();
    walk(
        base,
        &suffixes.iter().map(String::as_str).collect::<Vec<_>>(),
        &mut out,
    );
    out
}

fn walk(prefix: &str, suffixes: &[&str], out: &mut Vec<(String, String)>) {
    if suffixes.iter().any(|s| s.is_empty()) {
        // `prefix` is an exempt directory followed by `/`: its whole subtree stays open.
        return;
    }
    let firsts: BTreeSet<char> = suffixes.iter().filter_map(|s| s.chars().next()).collect();
    // Every path that continues with another character leaves all exempt prefixes here.
    // A `-` goes first in the class, where it cannot form a range and needs no escape
    // (apparmor_parser warns about an escaped one).
    let dash = if firsts.contains(&'-') { "-" } else { "" };
    let class: String = dash.to_owned()
        + &firsts
            .iter()
            .filter(|c| **c != '-')
            .map(|c| class_char(*c))
            .collect::<String>();
    out.push((prefix.to_owned(), format!("[^{class}]**")));
    for c in firsts {
        let next = format!("{prefix}{c}");
        let rest: Vec<&str> = suffixes.iter().filter_map(|s| s.strip_prefix(c)).collect();
        // The proper prefix itself (`/sys/cl`) is a path too; the exempt directory's own name
        // (`/sys/class/gpio` before its `/`) stays open.
        if c != '/' && !rest.contains(&"/") {
            out.push((next.clone(), String::new()));
        }
        walk(&next, &rest, out);
    }
}

/// A character inside `[^...]` other than `-` (which goes first): `\\`, `]` and `^` are escaped.
fn class_char(c: char) -> String {
    match c {
        '\\' | ']' | '^' => format!("\\{c}"),
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::deny_all_except;

    #[test]
    fn one_prefix_gives_one_pattern_per_character() {
        let rules = deny_all_except("/sys/", &["ab"]);
        let text: Vec<String> = rules.iter().map(|(l, p)| format!("{l}{p}")).collect();
        assert_eq!(
            text,
            ["/sys/[^a]**", "/sys/a", "/sys/a[^b]**", "/sys/ab[^/]**"]
        );
    }

    #[test]
    fn shared_prefixes_branch() {
        let rules = deny_all_except("/s/", &["ab", "ac"]);
        let text: Vec<String> = rules.iter().map(|(l, p)| format!("{l}{p}")).collect();
        assert_eq!(
            text,
            [
                "/s/[^a]**",
                "/s/a",
                "/s/a[^bc]**",
                "/s/ab[^/]**",
                "/s/ac[^/]**"
            ]
        );
    }
}
