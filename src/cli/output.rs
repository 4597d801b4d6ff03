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

/// One add-on named on the command line, and its plan or why it has none.
pub struct Planned {
    pub addon: Addon,
    pub plan: Result<SandboxPlan, NoPlan>,
}

/// Why an add-on has no plan.
pub enum NoPlan {
    Invalid,
    /// The policy's reason.
    Refused(String),
}

impl Planned {
    /// Says on standard error why there is no plan.
    pub fn print_why(&self) {
        match &self.plan {
            Ok(_) => {}
            Err(NoPlan::Invalid) => print_invalid(&self.addon),
            Err(NoPlan::Refused(err)) => eprintln!("error: {}: {err}", self.addon.dir.display()),
        }
    }

    /// The policy's refusal, when that is why there is no plan.
    pub fn refusal(&self) -> Option<&str> {
        match &self.plan {
            Err(NoPlan::Refused(why)) => Some(why),
            _ => None,
        }
    }
}

/// Every add-on under `paths`, planned or not, in order; unresolvable paths are printed and
/// make `ok` false.
pub fn plan_each(paths: &[PathBuf], options: &PlanOptions) -> (Vec<Planned>, bool) {
    let (addons, problems) = collect(paths);
    for p in &problems {
        eprint!("{p}");
    }
    let each = addons
        .into_iter()
        .map(|addon| {
            let plan = match addon.config.as_ref().filter(|_| addon.valid()) {
                None => Err(NoPlan::Invalid),
                Some(config) => policy::decide(config, addon.apparmor_profile.is_some(), options)
                    .map_err(|err| NoPlan::Refused(err.to_string())),
            };
            Planned { addon, plan }
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
        planned.print_why();
        match planned.plan {
            Ok(plan) => out.push((planned.addon, plan)),
            Err(_) => ok = false,
        }
    }
    (out, ok)
}
