//! The AppArmor profile of a plan (DESIGN §5).
//!
//! [`generate`] translates a [`SandboxPlan`] into typed [`rule::Rule`]s (`derive`), sorts and
//! deduplicates them, and [`Profile::render`] writes them through the askama template
//! `templates/profile.apparmor`, whose values pass through the AppArmor escaper. The result is
//! byte-stable: the same plan gives the same text.

pub mod derive;
pub mod escape;
pub mod exclusion;
mod mounts;
pub mod rule;

use std::collections::BTreeMap;

use askama::Template;

use crate::plan::{Confinement, SandboxPlan};
use rule::{BadPath, Peer, Rule};

/// The profile's ABI: pinned, so that a newer parser or kernel cannot change what it means
/// (with ABI 4.0 `network` stops covering unix sockets; containerd#12726).
pub const ABI: &str = "abi/3.0";

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "the plan does not use a generated profile ({0}); use the strict policy, or see the plan's confinement"
    )]
    NotGenerated(&'static str),
    #[error(
        "profile name '{0}' is not valid (expected a letter or digit, then letters, digits, '.', '_' or '-', at most 200 characters)"
    )]
    BadName(String),
    #[error(transparent)]
    BadPath(#[from] BadPath),
    #[error("capability '{0}' is not one AppArmor ABI 3.0 knows")]
    UnknownCapability(String),
    #[error("rendering the profile template: {0}")]
    Render(#[from] askama::Error),
}

/// One rule and every reason it is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub rule: Rule,
    pub reasons: Vec<String>,
}

impl Entry {
    fn reason(&self) -> String {
        self.reasons.join("; ")
    }
}

struct Section<'a> {
    title: &'static str,
    entries: Vec<&'a Entry>,
}

/// A generated profile: its name and its rules, sorted and deduplicated.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub entries: Vec<Entry>,
}

#[derive(Template)]
#[template(path = "profile.apparmor")]
struct ProfileTemplate<'a> {
    name: &'a str,
    abi: &'a str,
    sections: Vec<Section<'a>>,
    explain: bool,
    /// Learn mode: complain instead of enforce, and every deny rule audited.
    learning: bool,
}

/// The rules of a plan's profile. Fails when the plan is not confined by a generated profile,
/// or when a name or path cannot be written safely.
pub fn generate(plan: &SandboxPlan) -> Result<Profile, ProfileError> {
    let name = match (plan.confinement, &plan.apparmor_profile) {
        (Confinement::Generated, Some(name)) => name.clone(),
        (Confinement::AddonProfile, _) => {
            return Err(ProfileError::NotGenerated(
                "supervisor policy: the add-on's own apparmor.txt",
            ));
        }
        (Confinement::DockerDefault, _) => {
            return Err(ProfileError::NotGenerated(
                "supervisor policy: Docker's docker-default",
            ));
        }
        _ => return Err(ProfileError::NotGenerated("unconfined")),
    };
    check_name(&name)?;
    let derived = derive::derive(plan)?;
    let mut merged: BTreeMap<Rule, Vec<String>> = BTreeMap::new();
    for (rule, why) in derived.rules {
        let reasons = merged.entry(rule).or_default();
        if !reasons.contains(&why) {
            reasons.push(why);
        }
    }
    Ok(Profile {
        name,
        entries: merged
            .into_iter()
            .map(|(rule, reasons)| Entry { rule, reasons })
            .collect(),
    })
}

/// Profile names: `<repository>_<slug>`, already checked by the policy; checked again here
/// because the name is written into the profile.
pub fn check_name(name: &str) -> Result<(), ProfileError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.len() <= 200;
    if ok {
        Ok(())
    } else {
        Err(ProfileError::BadName(name.to_owned()))
    }
}

impl Profile {
    /// The profile text; with `explain`, every rule is followed by the reason it is there.
    pub fn render(&self, explain: bool) -> Result<String, ProfileError> {
        self.render_as(explain, false)
    }

    /// The profile for learn mode: the same rules in complain mode, where an access the
    /// enforced profile would refuse goes through and is logged as `ALLOWED`, an explicitly
    /// denied one too (seen in Debian's 6.1 kernel, tests/learn_vm.rs) once its deny rule is
    /// made `audit deny`: a plain deny rule is quiet, and its refusal would not be logged.
    pub fn render_learning(&self) -> Result<String, ProfileError> {
        self.render_as(false, true)
    }

    fn render_as(&self, explain: bool, learning: bool) -> Result<String, ProfileError> {
        let mut sections: Vec<Section> = Vec::new();
        for entry in &self.entries {
            let title = entry.rule.section();
            match sections.last_mut() {
                Some(s) if s.title == title => s.entries.push(entry),
                _ => sections.push(Section {
                    title,
                    entries: vec![entry],
                }),
            }
        }
        let template = ProfileTemplate {
            name: &self.name,
            abi: ABI,
            sections,
            explain,
            learning,
        };
        Ok(template.render()?)
    }

    /// The rules (for checks that look at the model rather than the text).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.entries.iter().map(|e| &e.rule)
    }
}
