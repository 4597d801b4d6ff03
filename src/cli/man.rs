//! `man`: manual pages (roff) from the clap definition: the main page, and with `--out` one
//! page per visible command (`addon-sandbox-plan.1`, ...), as `git` and `cargo` ship them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

use super::Cli;

#[derive(Args)]
pub struct ManArgs {
    /// Write addon-sandbox.1 and one addon-sandbox-COMMAND.1 per command into DIR instead of
    /// printing the main page.
    #[arg(long = "out", value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub fn exec(args: ManArgs, out: &mut impl Write) -> Result<ExitCode> {
    let command = Cli::command();
    let Some(dir) = args.out_dir else {
        clap_mangen::Man::new(command).render(out)?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("addon-sandbox.1".to_owned(), command.clone())];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("addon-sandbox-{}", sub.get_name());
        let usage = format!("addon-sandbox {}", sub.get_name());
        pages.push((
            format!("{name}.1"),
            sub.clone().display_name(name).bin_name(usage),
        ));
    }
    for (file, page) in pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        let path = dir.join(&file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        writeln!(out, "{}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
