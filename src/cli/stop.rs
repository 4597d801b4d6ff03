//! `stop` and `rm`: stop a started add-on (its container stays, so `logs` still works), or
//! remove it (container, loaded profile, token; its data stays). A native sandbox is handled
//! by the native backend, everything else by the engine.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::native;

use super::engine::{engine_command, launch_result, native_record};
use super::flags::EngineFlags;

#[derive(Args)]
pub struct SlugArgs {
    slug: String,
    #[command(flatten)]
    engine: EngineFlags,
}

pub fn stop(args: SlugArgs) -> Result<ExitCode> {
    let SlugArgs { slug, engine } = args;
    match native_record(&engine, &slug) {
        Some((state, record)) => {
            launch_result(native::run::stop(&state, &record).map(|()| println!("stopped {slug}")))
        }
        None => engine_command(&engine, |l| async move {
            l.stop(&slug).await?;
            println!("stopped {slug}");
            Ok(())
        }),
    }
}

pub fn rm(args: SlugArgs) -> Result<ExitCode> {
    let SlugArgs { slug, engine } = args;
    match native_record(&engine, &slug) {
        Some((state, record)) => launch_result(
            native::run::rm(&state, &record)
                .map(|()| println!("removed {slug} (its data is kept)")),
        ),
        None => engine_command(&engine, |l| async move {
            l.rm(&slug).await?;
            println!("removed {slug} (its data is kept)");
            Ok(())
        }),
    }
}
