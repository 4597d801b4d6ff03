//! Bare catch-all rules in a profile's text (`file,`, `capability,`, `network,` ...): each
//! allows everything of its kind. Our generated profiles never hold one
//! (`tests/profile_corpus.rs` checks with this scan); `lint` points at them in an author's `apparmor.txt`. Pure,
//! and textual: what the rest of a profile allows is `compare`'s question, for the parser.

/// The rule words that, written bare, allow a whole class of access.
pub const WORDS: [&str; 10] = [
    "file",
    "capability",
    "network",
    "mount",
    "signal",
    "ptrace",
    "unix",
    "dbus",
    "pivot_root",
    "change_profile",
];

/// A bare catch-all rule: its 1-based line and column, and its word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchAll {
    pub line: u32,
    pub column: u32,
    pub word: &'static str,
}

/// Every bare catch-all allow rule of a profile text (`audit` and `allow` prefixes count;
/// `deny` rules and comments do not).
pub fn find(text: &str) -> Vec<CatchAll> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        let trimmed = code.trim();
        let rule = trimmed
            .strip_prefix("audit ")
            .unwrap_or(trimmed)
            .trim_start();
        let rule = rule.strip_prefix("allow ").unwrap_or(rule).trim_start();
        let Some(word) = rule.strip_suffix(',').map(str::trim_end) else {
            continue;
        };
        if let Some(word) = WORDS.into_iter().find(|w| *w == word) {
            let column = code.len() - code.trim_start().len();
            out.push(CatchAll {
                line: i as u32 + 1,
                column: line[..column].chars().count() as u32 + 1,
                word,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_bare_rules_only() {
        let text = "profile x {\n  file,\n  audit capability,\n  deny network,\n  # mount,\n  /data/** rw,\n  signal (send) peer=x,\n  allow  unix ,\n}\n";
        let found = find(text);
        let words: Vec<(&str, u32, u32)> =
            found.iter().map(|c| (c.word, c.line, c.column)).collect();
        assert_eq!(
            words,
            [("file", 2, 3), ("capability", 3, 3), ("unix", 8, 3)]
        );
    }
}
