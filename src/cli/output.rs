//! What the analysis commands share: finding the add-ons a path names, planning them, and
//! turning "everything went well" into the exit status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use addon_sandbox::addon::{self, Addon};
use addon_sandbox::diag::Diagnostic;
use addon_sandbox::plan::SandboxPlan;
use addon_sandbox::policy::{self, PlanOptions};

/// Exit status 0 when everything went well, 1 otherwise.
pub fn status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Every add-on named by the paths, with unresolvable paths reported as diagnostics.
pub fn collect(paths: &[PathBuf]) -> (Vec<Addon>, Vec<Diagnostic>) {
    let mut addons = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match addon::resolve(path) {
            Ok(dirs) => addons.extend(addon::load_all(&dirs)),
            Err(d) => problems.push(d),
        }
    }
    (addons, problems)
}

pub fn print_invalid(a: &Addon) {
    eprintln!("{}: invalid add-on, no rating or plan", a.dir.display());
    for d in a.errors() {
        eprint!("{d}");
    }
}

/// The one valid add-on `path` names, planned; None (after printing why) when it is invalid or
/// cannot be planned, an error when it names several.
pub fn one_plan(
    path: &Path,
    options: &PlanOptions,
    command: &str,
) -> Result<Option<(Addon, SandboxPlan)>> {
    let (mut plans, ok) = plans(std::slice::from_ref(&path.to_path_buf()), options);
    if !ok {
        return Ok(None);
    }
    if plans.len() != 1 {
        anyhow::bail!(
            "{} names {} add-ons; {command} takes one",
            path.display(),
            plans.len()
        );
    }
    Ok(Some(plans.remove(0)))
}

/// An add-on named on the command line that has no plan: invalid, or refused by the policy.
pub struct Unplanned {
    pub addon: Addon,
    /// The policy's reason; None when the config is invalid.
    pub refusal: Option<String>,
}

impl Unplanned {
    /// Says why on standard error.
    pub fn print(&self) {
        match &self.refusal {
            None => print_invalid(&self.addon),
            Some(err) => eprintln!("error: {}: {err}", self.addon.dir.display()),
        }
    }
}

/// One add-on named on the command line: planned, or why not.
pub type Planned = Result<(Addon, SandboxPlan), Unplanned>;

/// Every add-on under `paths`, planned or not, in order; unresolvable paths are printed and
/// make `ok` false.
pub fn plan_each(
    paths: &[PathBuf],
    options: &PlanOptions,
) -> (Vec<Planned>, bool) {
    let (addons, problems) = collect(paths);
    for p in &problems {
        eprint!("{p}");
    }
    let each = addons
        .into_iter()
        .map(|addon| {
            let Some(config) = addon.config.as_ref().filter(|_| addon.valid()) else {
                return Err(Unplanned {
                    addon,
                    refusal: None,
                });
            };
            match policy::decide(config, addon.apparmor_profile.is_some(), options) {
                Ok(plan) => Ok((addon, plan)),
                Err(err) => Err(Unplanned {
                    addon,
                    refusal: Some(err.to_string()),
                }),
            }
        })
        .collect();
    (each, problems.is_empty())
}

/// The plans of the valid add-ons under `paths`; problems are printed, and `ok` says whether
/// there were any.
pub fn plans(paths: &[PathBuf], options: &PlanOptions) -> (Vec<(Addon, SandboxPlan)>, bool) {
    let (each, mut ok) = plan_each(paths, options);
    let mut out = Vec::new();
    for planned in each {
        match planned {
            Ok(p) => out.push(p),
            Err(unplanned) => {
                ok = false;
                unplanned.print();
            }
        }
    }
    (out, ok)
}
