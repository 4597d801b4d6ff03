//! `completions`: shell completions generated from the same clap definition that parses the
//! command line, so they never drift from it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn exec(args: CompletionsArgs, out: &mut impl Write) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut buffer = Vec::new();
    clap_complete::generate(args.shell, &mut command, "addon-sandbox", &mut buffer);
    out.write_all(&buffer)?;
    Ok(ExitCode::SUCCESS)
}
