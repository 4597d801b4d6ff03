//! `ps`: the add-ons started by addon-sandbox, engine containers and native sandboxes alike.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use addon_sandbox::launch::state::StateDir;
use addon_sandbox::{launch, native};

use super::engine::engine_command_or_native;
use super::flags::EngineFlags;

#[derive(Args)]
pub struct PsArgs {
    /// One JSON object per add-on per line.
    #[arg(long)]
    json: bool,
    /// Every add-on container of the engine, whichever state directory started it (each
    /// named with its state directory); by default only this state directory's.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    engine: EngineFlags,
}

pub fn exec(args: PsArgs) -> Result<ExitCode> {
    let PsArgs { json, all, engine } = args;
    let state_dir = engine.state_dir()?;
    engine_command_or_native(&engine, |l| async move {
        let mut list = match l {
            Some(l) => l.ps(all).await?,
            None => Vec::new(),
        };
        if let Some(state) = StateDir::existing(&state_dir) {
            list.extend(
                state
                    .records()
                    .iter()
                    .filter(|r| native::run::is_native(r))
                    .map(native::run::ps_entry)
                    .map(|e| launch::PsEntry {
                        state_dir: all.then(|| state_dir.display().to_string()),
                        ..e
                    }),
            );
        }
        list.sort_by(|a, b| a.full_slug.cmp(&b.full_slug));
        print_list(&list, json, all);
        Ok(())
    })
}

fn print_list(list: &[launch::PsEntry], json: bool, all: bool) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        for e in list {
            let _ = writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default());
        }
    } else {
        let _ = writeln!(
            out,
            "{:<32} {:<10} {:<28} {:<30} IMAGE",
            "ADD-ON", "STATE", "STATUS", "CONFINEMENT"
        );
        for e in list {
            let _ = writeln!(
                out,
                "{:<32} {:<10} {:<28} {:<30} {}",
                e.full_slug, e.state, e.status, e.confinement, e.image
            );
            if all {
                let _ = writeln!(out, "  state: {}", e.state_dir.as_deref().unwrap_or("?"));
            }
        }
    }
}
