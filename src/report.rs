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
