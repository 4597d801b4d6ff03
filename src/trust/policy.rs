//! The operator's trust policy (`--trust-policy FILE`): per image pattern a mode and who may
//! sign. Read through the project's position-keeping YAML reader, so every mistake is
//! reported with file, line and column, all at once; unknown keys are errors (a misspelt
//! `keyless` must not silently trust nobody, or everybody).

use std::path::{Path, PathBuf};

use sigstore_crypto::VerificationKey;
use sigstore_types::DerPublicKey;

use crate::diag::{Diagnostic, Severity, Sink, whole_file};
use crate::source::{self, Format, Node, Pos, Value};

/// What happens to an image a rule (or the default) covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Not checked at all.
    Off,
    /// Checked; a failure is a warning and the image runs by its reference.
    Warn,
    /// Checked; a failure refuses the start (fail closed).
    Require,
}

impl Mode {
    fn parse(text: &str) -> Option<Mode> {
        match text {
            "off" => Some(Mode::Off),
            "warn" => Some(Mode::Warn),
            "require" => Some(Mode::Require),
            _ => None,
        }
    }
}

/// How a keyless certificate's identity (its SAN) must look.
#[derive(Clone, Debug)]
pub enum IdentityRule {
    /// Starts with this text, which ends at a path or ref boundary (`/` or `@`).
    Prefix(String),
    /// The whole identity matches (anchored at both ends, unlike cosign's unanchored
    /// `--certificate-identity-regexp`: an unanchored pattern is a common trust hole).
    Regex(regex::Regex),
}

impl IdentityRule {
    pub fn matches(&self, identity: &str) -> bool {
        match self {
            IdentityRule::Prefix(p) => identity.starts_with(p.as_str()),
            IdentityRule::Regex(r) => r.is_match(identity),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            IdentityRule::Prefix(p) => format!("identity starting with {p}"),
            IdentityRule::Regex(r) => format!("identity matching {}", r.as_str()),
        }
    }
}

/// A keyless (Fulcio certificate) signer.
#[derive(Clone, Debug)]
pub struct Keyless {
    /// The OIDC issuer, compared exactly.
    pub issuer: String,
    pub identity: IdentityRule,
    /// The certificate's source repository (`owner/name` or a full URL), exactly.
    pub repository: Option<String>,
    /// The certificate's source repository ref (`refs/heads/main`), exactly.
    pub git_ref: Option<String>,
}

/// A pinned public key.
#[derive(Clone, Debug)]
pub struct Key {
    /// `key sha256:<first 16 hex of the SPKI digest>` and where it was written.
    pub label: String,
    pub spki: Vec<u8>,
}

impl Key {
    pub fn verification_key(&self) -> Option<VerificationKey> {
        VerificationKey::from_spki(&DerPublicKey::new(self.spki.clone())).ok()
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    /// The glob as written (`{arch}` not yet substituted).
    pub pattern: String,
    pub line: u32,
    pub mode: Mode,
    pub keyless: Vec<Keyless>,
    pub keys: Vec<Key>,
}

#[derive(Clone, Debug)]
pub struct TrustPolicy {
    /// The file read, or `None` for the built-in policy (no file at the default place).
    pub file: Option<PathBuf>,
    /// The mode of images no rule matches.
    pub default: Mode,
    pub rules: Vec<Rule>,
    /// A `trusted_root.json` replacing the one shipped with the tool.
    pub trusted_root: Option<PathBuf>,
}

impl Default for TrustPolicy {
    /// No file: every image is checked and a failure is a warning.
    fn default() -> Self {
        TrustPolicy {
            file: None,
            default: Mode::Warn,
            rules: Vec::new(),
            trusted_root: None,
        }
    }
}

/// What covers one image: the first matching rule, or the default.
pub struct Applied<'a> {
    pub mode: Mode,
    pub rule: Option<&'a Rule>,
}

impl TrustPolicy {
    /// The first rule (in file order) whose pattern, with `{arch}` replaced by `arch`, matches
    /// the normalised repository `name` (`ghcr.io/home-assistant/amd64-addon-ssh`).
    pub fn applied(&self, name: &str, arch: &str) -> Applied<'_> {
        for rule in &self.rules {
            if glob_regex(&rule.pattern.replace("{arch}", arch)).is_match(name) {
                return Applied {
                    mode: rule.mode,
                    rule: Some(rule),
                };
            }
        }
        Applied {
            mode: self.default,
            rule: None,
        }
    }

    /// Read and check a policy file; every problem, with its position.
    pub fn load(path: &Path) -> Result<TrustPolicy, Vec<Diagnostic>> {
        let (root, text) = match source::load(path, Format::Yaml) {
            Ok(parsed) => parsed,
            Err((err, text)) => {
                let mut sink = Sink::new(path, text.as_ref());
                match err.pos() {
                    Some(pos) => sink.error(pos, err.to_string()),
                    None => return Err(vec![whole_file(Severity::Error, path, err.to_string())]),
                }
                return Err(sink.diagnostics);
            }
        };
        let mut sink = Sink::new(path, Some(&text));
        let base = path.parent().unwrap_or(Path::new("."));
        let policy = read_policy(&root, base, &mut sink);
        match policy {
            Some(mut p) if !sink.has_errors() => {
                p.file = Some(path.to_path_buf());
                Ok(p)
            }
            _ => Err(sink.diagnostics),
        }
    }
}

/// `*` any characters but `/`, `**` any characters, `?` one character but `/`; the rest is
/// literal; anchored at both ends.
pub fn glob_regex(glob: &str) -> regex::Regex {
    let mut re = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                re.push_str(".*");
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).expect("an escaped glob is a valid regex")
}

fn check_keys(node: &Node, allowed: &[&str], what: &str, sink: &mut Sink) -> bool {
    let Some(entries) = node.as_map() else {
        sink.error(
            node.pos,
            format!("{what} must be a mapping, not {}", node.kind()),
        );
        return false;
    };
    for (key, _) in entries {
        match key.as_str() {
            Some(k) if allowed.contains(&k) => {}
            _ => sink.error(
                key.pos,
                format!(
                    "unknown key {} in {what} (expected one of: {})",
                    key.python_str().unwrap_or_else(|| key.kind().to_owned()),
                    allowed.join(", ")
                ),
            ),
        }
    }
    true
}

fn string<'a>(node: &'a Node, what: &str, sink: &mut Sink) -> Option<&'a str> {
    match &node.value {
        Value::Str(s) if !s.is_empty() => Some(s),
        _ => {
            sink.error(
                node.pos,
                format!("{what} must be a non-empty string, not {}", node.kind()),
            );
            None
        }
    }
}

fn mode(node: &Node, sink: &mut Sink) -> Option<Mode> {
    // YAML 1.1 (the reader's typing) reads a bare `off` as false.
    if node.value == Value::Bool(false) {
        return Some(Mode::Off);
    }
    let text = string(node, "mode", sink)?;
    let mode = Mode::parse(text);
    if mode.is_none() {
        sink.error(
            node.pos,
            format!("mode {text:?} is not one of off, warn, require"),
        );
    }
    mode
}

fn read_policy(root: &Node, base: &Path, sink: &mut Sink) -> Option<TrustPolicy> {
    if !check_keys(
        root,
        &["default", "rules", "trusted_root"],
        "the trust policy",
        sink,
    ) {
        return None;
    }
    let mut policy = TrustPolicy::default();
    if let Some(node) = root.get("default") {
        policy.default = mode(node, sink).unwrap_or(Mode::Warn);
    }
    if let Some(node) = root.get("trusted_root") {
        policy.trusted_root = string(node, "trusted_root", sink).map(|p| base.join(p));
    }
    if let Some(node) = root.get("rules") {
        match node.as_seq() {
            Some(items) => {
                for item in items {
                    if let Some(rule) = read_rule(item, base, sink) {
                        policy.rules.push(rule);
                    }
                }
            }
            None => sink.error(
                node.pos,
                format!("rules must be a list, not {}", node.kind()),
            ),
        }
    }
    Some(policy)
}

fn read_rule(node: &Node, base: &Path, sink: &mut Sink) -> Option<Rule> {
    if !check_keys(node, &["match", "mode", "keyless", "keys"], "a rule", sink) {
        return None;
    }
    let Some(pattern_node) = node.get("match") else {
        sink.error(node.pos, "a rule needs `match: <image pattern>`");
        return None;
    };
    let pattern = string(pattern_node, "match", sink)?.to_owned();
    check_pattern(&pattern, pattern_node.pos, sink);
    let mode = match node.get("mode") {
        Some(m) => mode(m, sink)?,
        // A rule that names signers is there to require them.
        None => Mode::Require,
    };
    let mut rule = Rule {
        pattern,
        line: node.pos.line,
        mode,
        keyless: Vec::new(),
        keys: Vec::new(),
    };
    for_each(node.get("keyless"), "keyless", sink, |item, sink| {
        if let Some(k) = read_keyless(item, sink) {
            rule.keyless.push(k);
        }
    });
    for_each(node.get("keys"), "keys", sink, |item, sink| {
        if let Some(k) = read_key(item, base, sink) {
            rule.keys.push(k);
        }
    });
    if rule.mode != Mode::Off && rule.keyless.is_empty() && rule.keys.is_empty() {
        sink.error(
            node.pos,
            format!(
                "the rule for {} checks signatures but names no signer: add `keyless:` or `keys:` (or mode: off)",
                rule.pattern
            ),
        );
    }
    Some(rule)
}

fn for_each(node: Option<&Node>, what: &str, sink: &mut Sink, mut f: impl FnMut(&Node, &mut Sink)) {
    let Some(node) = node else { return };
    match node.as_seq() {
        Some(items) => items.iter().for_each(|i| f(i, sink)),
        None => sink.error(
            node.pos,
            format!("{what} must be a list, not {}", node.kind()),
        ),
    }
}

/// A pattern matches normalised names: one that cannot (no registry part) is an error with the
/// name it probably meant.
fn check_pattern(pattern: &str, pos: Pos, sink: &mut Sink) {
    let first = pattern.split('/').next().unwrap_or_default();
    let registry_like = pattern.contains('/')
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.contains('*'));
    if !registry_like {
        let hint = if pattern.contains('/') {
            format!("docker.io/{pattern}")
        } else {
            format!("docker.io/library/{pattern}")
        };
        sink.error(
            pos,
            format!(
                "pattern {pattern:?} never matches: patterns match normalised repositories (registry/repository, no tag), e.g. {hint:?}"
            ),
        );
    }
    if pattern.contains(['@'])
        || pattern
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        sink.error(
            pos,
            format!("pattern {pattern:?} has a tag or digest: patterns match repositories only"),
        );
    }
}

fn read_keyless(node: &Node, sink: &mut Sink) -> Option<Keyless> {
    let allowed = [
        "issuer",
        "identity_prefix",
        "identity_regexp",
        "repository",
        "ref",
    ];
    if !check_keys(node, &allowed, "a keyless signer", sink) {
        return None;
    }
    let Some(issuer) = node.get("issuer") else {
        sink.error(
            node.pos,
            "a keyless signer needs `issuer:` (the OIDC issuer URL, compared exactly)",
        );
        return None;
    };
    let issuer = string(issuer, "issuer", sink)?.to_owned();
    let identity = match (node.get("identity_prefix"), node.get("identity_regexp")) {
        (Some(p), None) => {
            let prefix = string(p, "identity_prefix", sink)?;
            if !(prefix.ends_with('/') || prefix.ends_with('@')) {
                sink.error(
                    p.pos,
                    format!("identity_prefix {prefix:?} must end with / or @ so that it cannot match a longer name (…/addons-evil)"),
                );
                return None;
            }
            IdentityRule::Prefix(prefix.to_owned())
        }
        (None, Some(r)) => {
            let text = string(r, "identity_regexp", sink)?;
            match regex::Regex::new(&format!("^(?:{text})$")) {
                Ok(re) => IdentityRule::Regex(re),
                Err(e) => {
                    sink.error(r.pos, format!("identity_regexp is not a valid regex: {e}"));
                    return None;
                }
            }
        }
        _ => {
            sink.error(
                node.pos,
                "a keyless signer needs exactly one of identity_prefix or identity_regexp",
            );
            return None;
        }
    };
    let opt = |key: &str, sink: &mut Sink| {
        node.get(key)
            .and_then(|n| string(n, key, sink))
            .map(str::to_owned)
    };
    Some(Keyless {
        issuer,
        identity,
        repository: opt("repository", sink),
        git_ref: opt("ref", sink),
    })
}

fn read_key(node: &Node, base: &Path, sink: &mut Sink) -> Option<Key> {
    if !check_keys(node, &["file", "pem"], "a key", sink) {
        return None;
    }
    let (pem, origin, pos) = match (node.get("file"), node.get("pem")) {
        (Some(f), None) => {
            let name = string(f, "file", sink)?;
            let path = base.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => (text, format!("file {}", path.display()), f.pos),
                Err(e) => {
                    sink.error(
                        f.pos,
                        format!("cannot read the key file {}: {e}", path.display()),
                    );
                    return None;
                }
            }
        }
        (None, Some(p)) => (
            string(p, "pem", sink)?.to_owned(),
            format!("line {}", p.pos.line),
            p.pos,
        ),
        _ => {
            sink.error(node.pos, "a key needs exactly one of `file:` or `pem:`");
            return None;
        }
    };
    let der = match DerPublicKey::from_pem(&pem) {
        Ok(der) => der,
        Err(e) => {
            sink.error(pos, format!("not a PEM public key ({e})"));
            return None;
        }
    };
    if let Err(e) = VerificationKey::from_spki(&der) {
        sink.error(
            pos,
            format!(
                "unsupported public key ({e}); ECDSA P-256 keys (cosign's default) are supported"
            ),
        );
        return None;
    }
    Some(Key {
        label: format!(
            "key {} ({origin})",
            &super::sha256_digest(der.as_bytes())[..23]
        ),
        spki: der.as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<TrustPolicy, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.yaml");
        std::fs::write(&file, text).unwrap();
        TrustPolicy::load(&file)
    }

    #[test]
    fn every_mistake_has_its_position() {
        let text = "default: maybe\nrules:\n  - match: busybox\n    mode: require\n    keyles:\n      - issuer: x\n  - match: \"ghcr.io/x/*\"\n    keyless:\n      - issuer: https://token.actions.githubusercontent.com\n        identity_prefix: https://github.com/x/add\n";
        let diags = load(text).unwrap_err();
        let at: Vec<(u32, u32)> = diags.iter().map(|d| (d.line, d.column)).collect();
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(at.contains(&(1, 10)), "{messages:?} {at:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("\"maybe\" is not one of off, warn, require"))
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("\"docker.io/library/busybox\"")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("unknown key keyles in a rule")),
            "{messages:?}"
        );
        assert!(at.contains(&(5, 5)), "{at:?}");
        assert!(
            messages.iter().any(|m| m.contains("must end with / or @")),
            "{messages:?}"
        );
        assert!(at.contains(&(10, 26)), "{at:?}");
    }

    #[test]
    fn first_matching_rule_applies_with_arch() {
        let text = "rules:\n  - match: \"ghcr.io/home-assistant/{arch}-addon-*\"\n    keyless:\n      - issuer: https://token.actions.githubusercontent.com\n        identity_regexp: 'https://github\\.com/home-assistant/addons/.*'\n  - match: \"ghcr.io/**\"\n    mode: off\n";
        let policy = load(text).unwrap();
        assert_eq!(policy.default, Mode::Warn);
        let applied = policy.applied("ghcr.io/home-assistant/amd64-addon-ssh", "amd64");
        assert_eq!(applied.mode, Mode::Require);
        assert_eq!(applied.rule.unwrap().line, 2);
        let other_arch = policy.applied("ghcr.io/home-assistant/amd64-addon-ssh", "aarch64");
        assert_eq!(other_arch.mode, Mode::Off);
        assert_eq!(
            policy.applied("docker.io/library/busybox", "amd64").mode,
            Mode::Warn
        );
        let IdentityRule::Regex(re) = &policy.rules[0].keyless[0].identity else {
            panic!("regex")
        };
        // Anchored: a longer identity does not match by containing the pattern.
        assert!(!re.is_match("x https://github.com/home-assistant/addons/y"));
    }

    #[test]
    fn glob_stars() {
        assert!(glob_regex("a/*/c").is_match("a/b/c"));
        assert!(!glob_regex("a/*").is_match("a/b/c"));
        assert!(glob_regex("a/**").is_match("a/b/c"));
        assert!(!glob_regex("a.b/*").is_match("axb/c"));
    }
}
