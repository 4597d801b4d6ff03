//! `lint`: `check` plus Home Assistant's secure add-on practices, each finding with its fix
//! and the rating change the fix brings; human, JSON lines, SARIF or GitHub output.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::addon;
use addon_sandbox::lint::{self, Level, render, sarif};

use super::flags::{FailOn, LintFormat};
use super::output::status;

#[derive(Args)]
pub struct LintArgs {
    /// Add-on folders, config files, or repository folders (every add-on below is read).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// human: for people; json: one object per add-on per line; sarif: one SARIF 2.1.0 log
    /// (code scanning); github: GitHub Actions workflow commands.
    #[arg(long, value_enum, default_value = "human")]
    format: LintFormat,
    /// Exit 1 when a finding is at least this serious.
    #[arg(long, value_enum, default_value = "error")]
    fail_on: FailOn,
}

pub fn exec(args: LintArgs, out: &mut impl Write) -> Result<ExitCode> {
    // Standard output is line-buffered: a SARIF log of the corpus is 90,000 lines, and a write
    // each cost more than linting.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let mut dirs = Vec::new();
    let mut ok = true;
    for path in &args.paths {
        match addon::resolve(path) {
            Ok(found) => dirs.extend(found),
            Err(d) => {
                ok = false;
                eprint!("{d}");
            }
        }
    }
    // One pass per add-on on every core: read, check, lint, and the source tree is dropped.
    let reports: Vec<lint::Report> =
        addon_sandbox::parallel::map(&dirs, 0, |d| lint::lint(&addon::load_with_source(d)));
    let threshold = args.fail_on.level();
    ok &= !reports
        .iter()
        .filter_map(lint::Report::worst)
        .any(|l| l.reaches(threshold));
    match args.format {
        LintFormat::Human => {
            for r in &reports {
                write!(out, "{}", render::human(r))?;
            }
            summary(&reports);
        }
        LintFormat::Json => {
            for r in &reports {
                serde_json::to_writer(&mut out, r)?;
                writeln!(out)?;
            }
        }
        LintFormat::Sarif => {
            let doc = sarif::document(&reports, env!("CARGO_PKG_VERSION"));
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
        LintFormat::Github => {
            for r in &reports {
                write!(out, "{}", render::github(r))?;
            }
        }
    }
    out.flush()?;
    Ok(status(ok))
}

/// Counts by level, on standard error (standard output stays the findings).
fn summary(reports: &[lint::Report]) {
    let count = |l: Level| {
        reports
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| f.level == l)
            .count()
    };
    eprintln!(
        "{} add-ons: {} errors, {} warnings, {} notes",
        reports.len(),
        count(Level::Error),
        count(Level::Warning),
        count(Level::Note)
    );
}
