//! `logs`: the output of a started add-on, from the engine or the native sandbox's log.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::native;

use super::engine::{Target, engine_command, launch_result, target};
use super::flags::EngineFlags;

#[derive(Args)]
pub struct LogsArgs {
    /// The add-on's full slug (local_example), or its slug when only one add-on has it.
    slug: String,
    /// Keep printing what the add-on writes until it stops (engine containers).
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    engine: EngineFlags,
}

pub fn exec(args: LogsArgs, out: &mut impl Write) -> Result<ExitCode> {
    let LogsArgs {
        slug,
        follow,
        engine,
    } = args;
    match target(&engine, &slug) {
        Ok(Target::Native(state, record)) => match native::run::logs(&state, &record) {
            Ok(text) => {
                out.write_all(text.as_bytes())?;
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => launch_result(Err(err)),
        },
        Ok(Target::Engine(record)) => engine_command(&engine, |l| async move {
            let mut out = std::io::stdout();
            l.logs(&record, follow, &mut out).await
        }),
        Err(err) => launch_result(Err(err)),
    }
}
