//! The JSON objects of the `check`, `rate` and `plan` commands (other tools read them: the
//! field names are an interface).

use serde::Serialize;

use crate::addon::Addon;
use crate::diag::Diagnostic;
use crate::plan::SandboxPlan;
use crate::rating::{ApparmorMode, Factor, rate};

#[derive(Serialize)]
pub struct CheckReport<'a> {
    pub path: String,
    pub slug: Option<&'a str>,
    pub valid: bool,
    pub errors: Vec<&'a Diagnostic>,
    pub warnings: Vec<&'a Diagnostic>,
}

pub fn check(addon: &Addon) -> CheckReport<'_> {
    CheckReport {
        path: addon.dir.display().to_string(),
        slug: addon.slug(),
        valid: addon.valid(),
        errors: addon.errors().collect(),
        warnings: addon.warnings().collect(),
    }
}

#[derive(Serialize)]
pub struct RateReport<'a> {
    pub path: String,
    pub slug: &'a str,
    pub rating: u8,
    pub factors: Vec<Factor>,
}

/// The rating of a valid add-on (None when the config is invalid).
pub fn rating(addon: &Addon) -> Option<RateReport<'_>> {
    let config = addon.config.as_ref()?;
    let mode = ApparmorMode::of(config, addon.apparmor_profile.is_some());
    let r = rate(config, mode);
    Some(RateReport {
        path: addon.dir.display().to_string(),
        slug: &config.slug,
        rating: r.rating,
        factors: r.factors,
    })
}

#[derive(Serialize)]
pub struct PlanReport<'a> {
    pub path: String,
    #[serde(flatten)]
    pub plan: &'a SandboxPlan,
}

/// The object `plan --json` and `rate --json` print for an add-on they cannot plan or rate,
/// in place of its plan: `valid` says whether the config passed, `errors` why there is no
/// plan (the config's errors, or the policy's refusal), in the shape of `check`'s errors.
#[derive(Serialize)]
pub struct NotPlanned<'a> {
    pub path: String,
    pub slug: Option<&'a str>,
    pub valid: bool,
    pub errors: Vec<Diagnostic>,
}

/// `refusal`: the policy's reason when a valid add-on cannot be planned; None for an invalid one.
pub fn not_planned<'a>(addon: &'a Addon, refusal: Option<&str>) -> NotPlanned<'a> {
    let errors = match refusal {
        Some(why) => vec![Diagnostic {
            severity: crate::diag::Severity::Error,
            message: why.to_owned(),
            file: addon
                .config_file
                .as_deref()
                .unwrap_or(&addon.dir)
                .display()
                .to_string(),
            line: 0,
            column: 0,
            snippet: None,
        }],
        None => addon.errors().cloned().collect(),
    };
    NotPlanned {
        path: addon.dir.display().to_string(),
        slug: addon.slug(),
        valid: addon.valid(),
        errors,
    }
}
