//! `profile`: the generated AppArmor profile of an add-on (least privilege, from its plan).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use addon_sandbox::addon::Addon;
use addon_sandbox::plan::SandboxPlan;
use addon_sandbox::{launch, profile};

use super::flags::PlanFlags;
use super::output::{plans, status};

#[derive(Args)]
pub struct ProfileArgs {
    /// Add-on folders, config files, or repository folders (every add-on below is read).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Annotate every rule with the config key (or base policy) that caused it.
    #[arg(long)]
    explain: bool,
    /// Write the profile to FILE instead of standard output (one add-on only).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        conflicts_with = "out_dir"
    )]
    output: Option<PathBuf>,
    /// Write one profile per add-on into DIR, each named by the add-on's full slug.
    #[arg(long = "out", value_name = "DIR")]
    out_dir: Option<PathBuf>,
    #[command(flatten)]
    plan: PlanFlags,
}

pub fn exec(args: ProfileArgs, out: &mut impl Write) -> Result<ExitCode> {
    let options = args.plan.options(None)?;
    let (plans, mut ok) = plans(&args.paths, &options);
    if plans.len() > 1 && args.out_dir.is_none() {
        anyhow::bail!(
            "{} add-ons found: give --out DIR to write one profile per add-on",
            plans.len()
        );
    }
    if let Some(dir) = &args.out_dir {
        refuse_collisions(&plans, dir)?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (a, plan) in &plans {
        let text = match profile::generate(plan).and_then(|p| p.render(args.explain)) {
            Ok(text) => text,
            Err(err) => {
                ok = false;
                eprintln!("error: {}: {err}", a.dir.display());
                continue;
            }
        };
        let target = match (&args.output, &args.out_dir) {
            (Some(file), _) => Some(file.clone()),
            (None, Some(dir)) => Some(dir.join(&plan.full_slug)),
            (None, None) => None,
        };
        match target {
            Some(file) => launch::state::write_atomically(&file, text.as_bytes(), 0o600)
                .with_context(|| format!("writing {}", file.display()))?,
            None => out.write_all(text.as_bytes())?,
        }
    }
    Ok(status(ok))
}

/// Two add-ons with one full slug would write one file, the second silently replacing the
/// first: refuse before anything is written, naming both folders.
fn refuse_collisions(plans: &[(Addon, SandboxPlan)], dir: &Path) -> Result<()> {
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for (a, plan) in plans {
        if let Some(first) = seen.insert(&plan.full_slug, &a.dir) {
            anyhow::bail!(
                "{} and {} are both {}: their profiles would be one file, {}; profile them in separate runs with different --repository names",
                first.display(),
                a.dir.display(),
                plan.full_slug,
                dir.join(&plan.full_slug).display()
            );
        }
    }
    Ok(())
}
