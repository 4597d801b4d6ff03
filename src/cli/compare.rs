//! `compare`: the generated profile against the add-on's own `apparmor.txt`, judged by the
//! real `apparmor_parser`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::{apparmor, profile};

use super::flags::PlanFlags;
use super::output::{plans, status};

#[derive(Args)]
pub struct CompareArgs {
    /// Add-on folders, config files, or repository folders (every add-on below is read).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One JSON object per add-on per line.
    #[arg(long)]
    json: bool,
    /// Ask only the attacker probes (faster; for surveys of many add-ons).
    #[arg(long)]
    attacks_only: bool,
    #[command(flatten)]
    plan: PlanFlags,
}

pub fn exec(args: CompareArgs, out: &mut impl Write) -> Result<ExitCode> {
    let options = args.plan.options(None)?;
    let parser = apparmor::Parser::find()?;
    let (plans, mut ok) = plans(&args.paths, &options);
    let mut items = Vec::new();
    for (a, plan) in &plans {
        let theirs_path = a.dir.join("apparmor.txt");
        let theirs = match std::fs::read_to_string(&theirs_path) {
            Ok(t) => t,
            Err(err) => {
                ok = false;
                eprintln!(
                    "error: {}: nothing to compare with: {err}",
                    theirs_path.display()
                );
                continue;
            }
        };
        let ours = match profile::generate(plan).and_then(|p| p.render(false)) {
            Ok(t) => t,
            Err(err) => {
                ok = false;
                eprintln!("error: {}: {err}", a.dir.display());
                continue;
            }
        };
        items.push((plan, ours, theirs));
    }
    let comparisons = apparmor::compare::compare_many(&parser, &items, args.attacks_only)?;
    for c in &comparisons {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(c)?)?;
        } else {
            write!(out, "{}", apparmor::compare::render(c))?;
        }
    }
    Ok(status(ok))
}
