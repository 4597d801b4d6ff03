//! Learn mode's reading (issue: learn): the kernel's AppArmor records of one run, turned into
//! the author's terms. The profile is derived from the config, so the answer to a record is
//! almost always a config key, an operator grant, or a gap in our own derivation, never a raw
//! profile rule.
//!
//! Every suggestion is checked, not guessed: the config with the key added is planned and
//! profiled again, and the real `apparmor_parser` decides (through the probe oracle of
//! [`crate::apparmor::probe`]) whether that profile allows the recorded access. Nothing here
//! edits a config, promotes a profile to enforce, or widens a profile.
//!
//! `audit` parses records, `access` turns them into accesses, `edit` lists the config keys
//! that could allow them, `classify` decides, `render` writes the report.

pub mod access;
pub mod audit;
mod classify;
pub mod edit;
pub mod kernel_log;
mod render;
pub mod widen;

use serde::Serialize;

pub use access::Access;
pub use audit::{Record, Verdict, parse_line, parse_log};
pub use classify::analyse;
pub use edit::Edit;
pub use render::human;

/// What one access needs, in the author's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Need {
    /// A config key would allow it: the YAML to add and what it costs in rating.
    ConfigKey {
        key: String,
        yaml: String,
        edit: Edit,
        rating_before: u8,
        rating_after: u8,
        /// Operator grants the key also needs under this policy (`--grant ...`).
        grants: Vec<String>,
    },
    /// The config asks for it already and the policy withheld it: `--grant` would allow it.
    OperatorGrant { grant: String },
    /// The config already justifies it and our profile denies it: a bug in our derivation.
    ProfileGap { justified_by: String },
    /// No config key allows it: the add-on tried it and runs without it.
    NeverNeeded,
}

/// One access the add-on attempted and its profile would refuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub access: Access,
    pub need: Need,
    /// How many records named it, and the programs that tried it.
    pub records: usize,
    pub programs: Vec<String>,
    /// The first record, as the kernel wrote it (for gaps and for people who want the raw line).
    pub record: String,
}

/// The reading of one run.
#[derive(Clone, Debug, Serialize)]
pub struct LearnReport {
    pub profile: String,
    pub rating: u8,
    /// Records of this profile (and its children) read.
    pub records: usize,
    pub findings: Vec<Finding>,
}

impl LearnReport {
    /// The distinct config keys to add, in the order first needed.
    pub fn keys_to_add(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for f in &self.findings {
            if let Need::ConfigKey { key, .. } = &f.need
                && !keys.contains(&key.as_str())
            {
                keys.push(key);
            }
        }
        keys
    }

    /// Whether the run needs nothing more: no key to add, no grant, no gap.
    pub fn needs_nothing(&self) -> bool {
        self.findings
            .iter()
            .all(|f| matches!(f.need, Need::NeverNeeded))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    #[error(transparent)]
    Oracle(#[from] crate::apparmor::probe::ProbeError),
}
