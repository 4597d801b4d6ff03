//! Attacker and need probes, decided by the real parser rather than by a model of AppArmor.
//!
//! The oracle: compile the profile as it is (`base`), with the probe's allow rule added, and
//! with the probe's deny rule added. AppArmor's compiled policy is a minimised automaton, so
//! adding a rule that changes nothing gives the same bytes. A probe is allowed exactly when
//!
//! * adding its allow rule changes nothing (the access is already allowed, or denied:
//!   a deny rule masks the new allow), and
//! * adding its deny rule does change something (so the access was not denied already).
//!
//! Every probe therefore costs one or two compiles; [`check_many`] does them in two parser
//! runs for any number of profiles.

use std::fmt;

use super::parser::{Parser, ParserError};
use crate::profile::escape::escape;
use crate::profile::rule::FilePerms;

/// One access an add-on could attempt.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    File {
        path: String,
        perms: FilePerms,
    },
    Capability(&'static str),
    /// `family` and `kind` as AppArmor writes them (`inet`, `raw`).
    Network {
        family: &'static str,
        kind: &'static str,
    },
    /// Mount anything onto this directory.
    Mount(&'static str),
    /// Send SIGKILL to a process outside any profile (a host process, with `host_pid`).
    SignalHost,
    /// Trace a process outside any profile.
    PtraceHost,
    /// Connect to a unix socket of a process outside any profile.
    UnixConnectHost,
}

impl Probe {
    pub fn file(path: &str, perms: FilePerms) -> Probe {
        Probe::File {
            path: path.to_owned(),
            perms,
        }
    }

    pub fn read(path: &str) -> Probe {
        Probe::file(path, FilePerms::READ)
    }

    pub fn write(path: &str) -> Probe {
        Probe::file(path, FilePerms::WRITE)
    }

    pub fn exec(path: &str) -> Probe {
        Probe::file(path, FilePerms::EXEC)
    }

    fn rule(&self, deny: bool) -> String {
        let d = if deny { "deny " } else { "" };
        match self {
            Probe::File { path, perms } => {
                format!("{d}\"{}\" {},", escape(path), perms.letters(deny))
            }
            Probe::Capability(c) => format!("{d}capability {c},"),
            Probe::Network { family, kind } => format!("{d}network {family} {kind},"),
            Probe::Mount(target) => format!("{d}mount -> \"{}\",", escape(target)),
            Probe::SignalHost => format!("{d}signal (send) set=(kill) peer=unconfined,"),
            Probe::PtraceHost => format!("{d}ptrace (trace) peer=unconfined,"),
            Probe::UnixConnectHost => {
                format!("{d}unix (connect, send, receive) type=stream peer=(label=unconfined),")
            }
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::File { path, perms } => {
                let verb = match perms.letters(false).as_str() {
                    "r" => "read".to_owned(),
                    "w" => "write".to_owned(),
                    "ix" => "exec".to_owned(),
                    "m" => "map executable".to_owned(),
                    _ => perms.words(),
                };
                write!(f, "{verb} {path}")
            }
            Probe::Capability(c) => write!(f, "capability {c}"),
            Probe::Network { family, kind } => write!(f, "{family} {kind} socket"),
            Probe::Mount(t) => write!(f, "mount onto {t}"),
            Probe::SignalHost => f.write_str("kill a host process"),
            Probe::PtraceHost => f.write_str("ptrace a host process"),
            Probe::UnixConnectHost => f.write_str("connect to a host daemon's unix socket"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Parser(#[from] ParserError),
    #[error("cannot find the closing brace of the top-level profile to add probe rules to")]
    NoClosingBrace,
}

/// The profile text with `rule` added at the end of the top-level profile (the last `}`
/// that is not in a trailing comment).
pub fn with_rule(profile: &str, rule: &str) -> Result<String, ProbeError> {
    let mut end = profile.len();
    for line in profile.lines().rev() {
        let trimmed = line.trim();
        let line_start = profile[..end]
            .rfind(line)
            .ok_or(ProbeError::NoClosingBrace)?;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            end = line_start;
            continue;
        }
        let code = trimmed.split('#').next().unwrap_or("").trim_end();
        if !code.ends_with('}') {
            return Err(ProbeError::NoClosingBrace);
        }
        let brace = line_start + line.rfind('}').ok_or(ProbeError::NoClosingBrace)?;
        let mut out = String::with_capacity(profile.len() + rule.len() + 4);
        out.push_str(&profile[..brace]);
        out.push_str("  ");
        out.push_str(rule);
        out.push('\n');
        out.push_str(&profile[brace..]);
        return Ok(out);
    }
    Err(ProbeError::NoClosingBrace)
}

/// Decide every probe of every profile: `result[i][j]` is whether profile `i` allows probe
/// `j` of its list.
pub fn check_many(
    parser: &Parser,
    work: &[(String, Vec<Probe>)],
) -> Result<Vec<Vec<bool>>, ProbeError> {
    // Round 1: each base, and each base with one allow rule added.
    let mut texts = Vec::new();
    let mut index = Vec::new(); // (profile, Some(probe) or None for the base)
    for (i, (text, probes)) in work.iter().enumerate() {
        texts.push(text.clone());
        index.push((i, None));
        for (j, p) in probes.iter().enumerate() {
            texts.push(with_rule(text, &p.rule(false))?);
            index.push((i, Some(j)));
        }
    }
    let compiled = parser.compile_many(&texts)?;
    let mut base: Vec<&[u8]> = vec![&[]; work.len()];
    for ((i, j), bin) in index.iter().zip(&compiled) {
        if j.is_none() {
            base[*i] = bin;
        }
    }
    let mut allow_same = vec![Vec::new(); work.len()];
    for (i, (_, probes)) in work.iter().enumerate() {
        allow_same[i] = vec![false; probes.len()];
    }
    for ((i, j), bin) in index.iter().zip(&compiled) {
        if let Some(j) = j {
            allow_same[*i][*j] = bin.as_slice() == base[*i];
        }
    }
    // Round 2: the deny rule, only where the allow rule changed nothing.
    let mut texts2 = Vec::new();
    let mut index2 = Vec::new();
    for (i, (text, probes)) in work.iter().enumerate() {
        for (j, p) in probes.iter().enumerate() {
            if allow_same[i][j] {
                texts2.push(with_rule(text, &p.rule(true))?);
                index2.push((i, j));
            }
        }
    }
    let compiled2 = parser.compile_many(&texts2)?;
    let mut result: Vec<Vec<bool>> = allow_same.iter().map(|v| vec![false; v.len()]).collect();
    for ((i, j), bin) in index2.iter().zip(&compiled2) {
        result[*i][*j] = bin.as_slice() != base[*i];
    }
    Ok(result)
}

/// A profile and what each of its probes is expected to be (true: allowed).
#[derive(Clone, Debug)]
pub struct Expectation {
    pub text: String,
    pub probes: Vec<Probe>,
    pub expected: Vec<bool>,
}

/// Check expectations with as few compiles as the answers allow, and return, per profile,
/// the probes whose real verdict differs from the expected one.
///
/// Group tests are sound because rules only add permissions or denials: if adding the deny
/// rules of all expected-denied probes at once changes nothing, each of them is denied
/// already; if adding the allow rules of all expected-allowed probes changes nothing, each is
/// allowed or denied (the deny rules then tell which, one by one). Probes a group cannot settle
/// are decided one by one as in [`check_many`].
pub fn verify_many(parser: &Parser, items: &[Expectation]) -> Result<Vec<Vec<usize>>, ProbeError> {
    let groups = group_round(parser, items)?;
    let (allow_same, mut deny_same) = single_round(parser, items, &groups)?;
    deny_round(parser, items, &groups.base, &allow_same, &mut deny_same)?;
    Ok(mismatches(items, &allow_same, &deny_same))
}

/// One compile of [`verify_many`]: a profile as it is, with a group of rules, or with one
/// probe's rule.
#[derive(Clone, Copy)]
enum Job {
    Base(usize),
    DenyGroup(usize),
    AllowGroup(usize),
    Allow(usize, usize),
    Deny(usize, usize),
}

fn build(items: &[Expectation], jobs: &[Job]) -> Result<Vec<String>, ProbeError> {
    jobs.iter()
        .map(|job| match *job {
            Job::Base(i) => Ok(items[i].text.clone()),
            Job::DenyGroup(i) | Job::AllowGroup(i) => {
                let want = matches!(job, Job::AllowGroup(_));
                let rules: Vec<String> = items[i]
                    .probes
                    .iter()
                    .zip(&items[i].expected)
                    .filter(|(_, e)| **e == want)
                    .map(|(p, _)| p.rule(!want))
                    .collect();
                with_rule(&items[i].text, &rules.join("\n  "))
            }
            Job::Allow(i, j) => with_rule(&items[i].text, &items[i].probes[j].rule(false)),
            Job::Deny(i, j) => with_rule(&items[i].text, &items[i].probes[j].rule(true)),
        })
        .collect()
}

/// Per profile: its compiled base, and whether each group test changed nothing.
struct Groups {
    base: Vec<Vec<u8>>,
    denied_group_ok: Vec<bool>,
    allow_group_ok: Vec<bool>,
}

/// Round 1: bases and the two group tests of each profile.
fn group_round(parser: &Parser, items: &[Expectation]) -> Result<Groups, ProbeError> {
    let n = items.len();
    let mut jobs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        jobs.push(Job::Base(i));
        if item.expected.iter().any(|e| !e) {
            jobs.push(Job::DenyGroup(i));
        }
        if item.expected.iter().any(|e| *e) {
            jobs.push(Job::AllowGroup(i));
        }
    }
    let bins = parser.compile_many(&build(items, &jobs)?)?;
    let mut base: Vec<Vec<u8>> = vec![Vec::new(); n];
    for (job, bin) in jobs.iter().zip(&bins) {
        if let Job::Base(i) = job {
            base[*i] = bin.clone();
        }
    }
    let mut denied_group_ok = vec![false; n];
    let mut allow_group_ok = vec![false; n];
    for (job, bin) in jobs.iter().zip(&bins) {
        match *job {
            Job::DenyGroup(i) => denied_group_ok[i] = *bin == base[i],
            Job::AllowGroup(i) => allow_group_ok[i] = *bin == base[i],
            _ => {}
        }
    }
    Ok(Groups {
        base,
        denied_group_ok,
        allow_group_ok,
    })
}

/// Per probe: Some(allow rule changed nothing), Some(deny rule changed nothing).
type Same = Vec<Vec<Option<bool>>>;

/// Round 2: one by one where a group did not settle it.
fn single_round(
    parser: &Parser,
    items: &[Expectation],
    groups: &Groups,
) -> Result<(Same, Same), ProbeError> {
    let Groups {
        base,
        denied_group_ok,
        allow_group_ok,
    } = groups;
    let mut jobs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        for (j, e) in item.expected.iter().enumerate() {
            if *e {
                if !allow_group_ok[i] {
                    jobs.push(Job::Allow(i, j));
                }
                jobs.push(Job::Deny(i, j));
            } else if !denied_group_ok[i] {
                jobs.push(Job::Allow(i, j));
            }
        }
    }
    let bins = parser.compile_many(&build(items, &jobs)?)?;
    let mut allow_same: Same = items.iter().map(|it| vec![None; it.probes.len()]).collect();
    let mut deny_same = allow_same.clone();
    for (i, item) in items.iter().enumerate() {
        for (j, e) in item.expected.iter().enumerate() {
            if *e && allow_group_ok[i] {
                allow_same[i][j] = Some(true);
            }
            if !*e && denied_group_ok[i] {
                allow_same[i][j] = Some(true);
                deny_same[i][j] = Some(true);
            }
        }
    }
    for (job, bin) in jobs.iter().zip(&bins) {
        match *job {
            Job::Allow(i, j) => allow_same[i][j] = Some(*bin == base[i]),
            Job::Deny(i, j) => deny_same[i][j] = Some(*bin == base[i]),
            _ => {}
        }
    }
    Ok((allow_same, deny_same))
}

/// Round 3: the deny rule of expected-denied probes whose allow rule changed nothing.
fn deny_round(
    parser: &Parser,
    items: &[Expectation],
    base: &[Vec<u8>],
    allow_same: &Same,
    deny_same: &mut Same,
) -> Result<(), ProbeError> {
    let mut jobs = Vec::new();
    for i in 0..items.len() {
        for j in 0..items[i].probes.len() {
            if allow_same[i][j] == Some(true) && deny_same[i][j].is_none() {
                jobs.push(Job::Deny(i, j));
            }
        }
    }
    let bins = parser.compile_many(&build(items, &jobs)?)?;
    for (job, bin) in jobs.iter().zip(&bins) {
        if let Job::Deny(i, j) = *job {
            deny_same[i][j] = Some(*bin == base[i]);
        }
    }
    Ok(())
}

/// Per profile, the probes whose verdict differs from the expected one.
fn mismatches(items: &[Expectation], allow_same: &Same, deny_same: &Same) -> Vec<Vec<usize>> {
    (0..items.len())
        .map(|i| {
            (0..items[i].probes.len())
                .filter(|&j| {
                    let allowed = allow_same[i][j] == Some(true) && deny_same[i][j] == Some(false);
                    allowed != items[i].expected[j]
                })
                .collect()
        })
        .collect()
}

/// Decide the probes of one profile.
pub fn check(parser: &Parser, profile: &str, probes: &[Probe]) -> Result<Vec<bool>, ProbeError> {
    let mut r = check_many(parser, &[(profile.to_owned(), probes.to_vec())])?;
    Ok(r.pop().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::with_rule;

    #[test]
    fn rules_go_before_the_last_brace() {
        let p = "profile a {\n  profile b {\n  }\n  /x r,\n}\n# end }\n\n";
        let out = with_rule(p, "/y w,").unwrap();
        assert_eq!(
            out,
            "profile a {\n  profile b {\n  }\n  /x r,\n  /y w,\n}\n# end }\n\n"
        );
        assert!(with_rule("profile a { /x r,\n", "/y w,").is_err());
    }
}
