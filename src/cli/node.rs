//! `node load-profiles`: what the loader DaemonSet runs on every node (see `kube`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use addon_sandbox::apparmor::Parser;
use addon_sandbox::kube::{self, node};

#[derive(Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    command: NodeCommand,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Load, replace and unload AppArmor profiles so the kernel holds exactly the profiles of
    /// a folder (one file per profile, named by the profile; a mounted ConfigMap).
    LoadProfiles(LoadArgs),
}

#[derive(Args)]
struct LoadArgs {
    /// The profile texts.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The texts loaded so far (to replace and unload them).
    #[arg(long, value_name = "DIR", default_value = kube::LOADER_STATE_DIR)]
    state: PathBuf,
    /// One pass, then exit (status 1 if a profile failed).
    #[arg(long)]
    once: bool,
    /// Seconds between passes.
    #[arg(long, value_name = "SECONDS", default_value = "10")]
    interval: u64,
    /// Do not touch the kernel: compile each profile into DIR/<name>.bin (removed on unload).
    #[arg(long, value_name = "DIR")]
    compile_to: Option<PathBuf>,
}

pub fn exec(args: NodeArgs, out: &mut impl Write) -> Result<ExitCode> {
    let NodeCommand::LoadProfiles(args) = args.command;
    let parser = Parser::find()?;
    let mut apply: Box<dyn node::Apply> = match &args.compile_to {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Box::new(node::CompileTo {
                dir: dir.clone(),
                parser: parser.clone(),
            })
        }
        None => Box::new(node::Kernel {
            cache: args.state.join(".cache"),
        }),
    };
    let mut first = true;
    loop {
        let report = node::sync(&args.dir, &args.state, &parser, apply.as_mut(), first)?;
        let changed = !(report.loaded.is_empty()
            && report.replaced.is_empty()
            && report.unloaded.is_empty()
            && report.failed.is_empty());
        if first || changed {
            writeln!(out, "{}", serde_json::to_string(&report)?)?;
            out.flush()?;
        }
        for (name, why) in &report.failed {
            eprintln!("error: {name}: {why}");
        }
        if args.once {
            return Ok(super::output::status(report.failed.is_empty()));
        }
        first = false;
        std::thread::sleep(Duration::from_secs(args.interval.max(1)));
    }
}
