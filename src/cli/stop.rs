//! `stop` and `rm`: stop a started add-on (its container stays, so `logs` still works), or
//! remove it (container, loaded profile, token; its data stays). A native sandbox is handled
//! by the native backend, everything else by the engine.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::launch::{self, state::Record};
use addon_sandbox::native;

use super::engine::{Target, launch_result, note, target, with_engine};
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
    let result = match target(&engine, &slug) {
        Ok(Target::Native(state, record)) => native::run::stop(&state, &record).map(|()| record),
        Ok(Target::Engine(record)) => with_engine(&engine, |l| async move {
            l.stop(&record, &mut note).await.map(|()| record)
        })?,
        Err(e) => Err(e),
    };
    report(out, result, "stopped", "(its token is revoked)")
}

pub fn rm(args: SlugArgs, out: &mut impl Write) -> Result<ExitCode> {
    let SlugArgs { slug, engine } = args;
    let result = match target(&engine, &slug) {
        Ok(Target::Native(state, record)) => native::run::rm(&state, &record).map(|()| record),
        Ok(Target::Engine(record)) => with_engine(&engine, |l| async move {
            l.rm(&record, &mut note).await.map(|()| record)
        })?,
        Err(e) => Err(e),
    };
    report(out, result, "removed", "(its data is kept)")
}

/// `<done> <full slug> <after>` on success; the error and its exit status otherwise.
fn report(
    out: &mut impl Write,
    result: Result<Record, launch::LaunchError>,
    done: &str,
    after: &str,
) -> Result<ExitCode> {
    match result {
        Ok(record) => {
            writeln!(out, "{done} {} {after}", record.full_slug)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => launch_result(Err(e)),
    }
}
