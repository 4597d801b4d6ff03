//! `rate`: the Supervisor's security rating (1-8) and the factors that moved it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::report;

use super::output::{collect, print_invalid, status};

#[derive(Args)]
pub struct RateArgs {
    /// Add-on folders, config files, or repository folders (every add-on below is read).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One JSON object per add-on per line.
    #[arg(long)]
    json: bool,
}

pub fn exec(args: RateArgs, out: &mut impl Write) -> Result<ExitCode> {
    let (addons, problems) = collect(&args.paths);
    let mut ok = problems.is_empty();
    for p in &problems {
        eprint!("{p}");
    }
    for a in &addons {
        let Some(r) = report::rating(a).filter(|_| a.valid()) else {
            ok = false;
            print_invalid(a);
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&report::not_planned(a, None))?
                )?;
            }
            continue;
        };
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&r)?)?;
        } else {
            writeln!(out, "{} ({}): rating {}/8", r.slug, r.path, r.rating)?;
            for f in &r.factors {
                // A factor that sets the rating shows the value it sets, not its delta (a
                // "+4" for docker_api would read as a bonus).
                match f.sets {
                    Some(value) => writeln!(out, "  ={value}  {}", f.reason)?,
                    None => writeln!(out, "  {:+}  {}", f.delta, f.reason)?,
                }
            }
        }
    }
    Ok(status(ok))
}
