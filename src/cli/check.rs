//! `check`: validate add-on folders (or repositories of them) exactly as the Supervisor does.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::addon::Addon;
use addon_sandbox::report;

use super::output::{collect, status};

#[derive(Args)]
pub struct CheckArgs {
    /// Add-on folders, config files, or repository folders (every add-on below is read).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One JSON object per add-on per line.
    #[arg(long)]
    json: bool,
}

pub fn exec(args: CheckArgs, out: &mut impl Write) -> Result<ExitCode> {
    let (addons, problems) = collect(&args.paths);
    for p in &problems {
        eprint!("{p}");
    }
    let mut all_valid = problems.is_empty();
    for a in &addons {
        all_valid &= a.valid();
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&report::check(a))?)?;
        } else {
            print_check(out, a)?;
        }
    }
    Ok(status(all_valid))
}

fn print_check(out: &mut impl Write, a: &Addon) -> Result<()> {
    let verdict = if a.valid() { "valid" } else { "INVALID" };
    writeln!(
        out,
        "{}: {} ({verdict})",
        a.dir.display(),
        a.slug().unwrap_or("?")
    )?;
    // Already in the one order every command uses (addon::load sorts them).
    for d in &a.diagnostics {
        write!(out, "{d}")?;
    }
    Ok(())
}
