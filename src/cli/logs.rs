//! `logs`: the output of a started add-on, from the engine or the native sandbox's log.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::native;

use super::engine::{engine_command, launch_result, native_record};
use super::flags::EngineFlags;

#[derive(Args)]
pub struct LogsArgs {
    slug: String,
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    engine: EngineFlags,
}

pub fn exec(args: LogsArgs) -> Result<ExitCode> {
    let LogsArgs {
        slug,
        follow,
        engine,
    } = args;
    match native_record(&engine, &slug) {
        Some((state, record)) => {
            launch_result(native::run::logs(&state, &record).map(|text| print!("{text}")))
        }
        None => engine_command(&engine, |l| async move {
            let mut out = std::io::stdout();
            l.logs(&slug, follow, &mut out).await
        }),
    }
}
