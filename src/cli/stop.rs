//! `stop` and `rm`: stop a started add-on (its container stays, so `logs` still works), or
//! remove it (container, loaded profile, token; its data stays). A native sandbox is handled
//! by the native backend, everything else by the engine.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::native;

use super::engine::{launch_result, native_record, with_engine};
use super::flags::EngineFlags;

#[derive(Args)]
pub struct SlugArgs {
    /// The add-on's full slug (local_example), or its slug when only one add-on has it.
    slug: String,
    #[command(flatten)]
    engine: EngineFlags,
}

pub fn stop(args: SlugArgs, out: &mut impl Write) -> Result<ExitCode> {
    let SlugArgs { slug, engine } = args;
    let result = match native_record(&engine, &slug) {
        Some((state, record)) => native::run::stop(&state, &record),
        None => {
            let slug = slug.as_str();
            with_engine(&engine, |l| async move { l.stop(slug).await })?
        }
    };
    if result.is_ok() {
        writeln!(out, "stopped {slug}")?;
    }
    launch_result(result)
}

pub fn rm(args: SlugArgs, out: &mut impl Write) -> Result<ExitCode> {
    let SlugArgs { slug, engine } = args;
    let result = match native_record(&engine, &slug) {
        Some((state, record)) => native::run::rm(&state, &record),
        None => {
            let slug = slug.as_str();
            with_engine(&engine, |l| async move { l.rm(slug).await })?
        }
    };
    if result.is_ok() {
        writeln!(out, "removed {slug} (its data is kept)")?;
    }
    launch_result(result)
}
