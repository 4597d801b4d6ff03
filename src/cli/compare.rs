//! `compare`: the generated profile against the add-on's own `apparmor.txt`, judged by the
//! real `apparmor_parser`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::addon::Addon;
use addon_sandbox::plan::SandboxPlan;
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

/// Add-ons compared per run of the parser: large enough that one run amortises its start over
/// many profiles, small enough that results stream out every few seconds.
const CHUNK: usize = 8;

pub fn exec(args: CompareArgs, out: &mut impl Write) -> Result<ExitCode> {
    let options = args.plan.options(None)?;
    let parser = apparmor::Parser::find()?;
    let (plans, mut ok) = plans(&args.paths, &options);
    let mut items = Vec::new();
    for (a, plan) in &plans {
        if !a.has_apparmor_txt {
            eprintln!(
                "note: {}: no apparmor.txt, nothing to compare",
                a.dir.display()
            );
            continue;
        }
        match texts(a, plan) {
            Ok((ours, theirs)) => items.push((plan, ours, theirs)),
            Err(why) => {
                ok = false;
                eprintln!("error: {why}");
            }
        }
    }
    let progress = indicatif::ProgressBar::new(items.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("comparing {pos}/{len} add-ons {wide_bar} {eta}")?,
    );
    for chunk in items.chunks(CHUNK) {
        let comparisons = apparmor::compare::compare_many(&parser, chunk, args.attacks_only)?;
        progress.suspend(|| -> Result<()> {
            for c in &comparisons {
                if args.json {
                    writeln!(out, "{}", serde_json::to_string(c)?)?;
                } else {
                    write!(out, "{}", apparmor::compare::render(c))?;
                }
            }
            out.flush()?;
            Ok(())
        })?;
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(status(ok))
}

/// Our generated profile and the add-on's own `apparmor.txt`.
fn texts(a: &Addon, plan: &SandboxPlan) -> Result<(String, String), String> {
    let theirs_path = a.dir.join("apparmor.txt");
    let theirs = std::fs::read_to_string(&theirs_path)
        .map_err(|err| format!("{}: cannot read it: {err}", theirs_path.display()))?;
    let ours = profile::generate(plan)
        .and_then(|p| p.render(false))
        .map_err(|err| format!("{}: {err}", a.dir.display()))?;
    Ok((ours, theirs))
}
