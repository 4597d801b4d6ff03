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

/// The plans of the valid add-ons under `paths`; problems are printed, and `ok` says whether
/// there were any.
pub fn plans(paths: &[PathBuf], options: &PlanOptions) -> (Vec<(Addon, SandboxPlan)>, bool) {
    let (addons, problems) = collect(paths);
    let mut ok = problems.is_empty();
    for p in &problems {
        eprint!("{p}");
    }
    let mut out = Vec::new();
    for a in addons {
        let Some(config) = a.config.as_ref().filter(|_| a.valid()) else {
            ok = false;
            print_invalid(&a);
            continue;
        };
        match policy::decide(config, a.apparmor_profile.is_some(), options) {
            Ok(plan) => out.push((a, plan)),
            Err(err) => {
                ok = false;
                eprintln!("error: {}: {err}", a.dir.display());
            }
        }
    }
    (out, ok)
}
