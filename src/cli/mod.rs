//! The command line: one file per command (as cargo keeps `commands/<name>.rs`), the flags
//! several commands share in `flags`, what the analysis commands share in `output`, what the
//! running commands share in `engine`. The only place with `anyhow`.

mod check;
mod compare;
mod engine;
mod flags;
mod logs;
mod output;
mod plan;
mod preview;
mod profile;
mod ps;
mod rate;
mod run;
mod serve;
mod stop;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use addon_sandbox::native;

#[derive(Parser)]
#[command(
    name = "addon-sandbox",
    version,
    about = "Least-privilege sandboxing for Home Assistant add-ons"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate add-on folders (or repositories of them) exactly as the Supervisor does.
    Check(check::CheckArgs),
    /// The Supervisor's security rating (1-8) and the factors that moved it.
    Rate(rate::RateArgs),
    /// The sandbox plan: granted and withheld rights, mounts, capabilities, namespaces.
    Plan(plan::PlanArgs),
    /// The generated AppArmor profile of an add-on (least privilege, from its sandbox plan).
    Profile(profile::ProfileArgs),
    /// Validate, plan, load the profile, create and start the container, attest it.
    Run(run::RunArgs),
    /// (internal) The native backend's sandbox setup; reads its spec on standard input.
    #[command(name = "__native-init", hide = true)]
    NativeInit,
    /// Stop a started add-on (its container stays, so `logs` still works).
    Stop(stop::SlugArgs),
    /// Remove a started add-on: container, loaded profile, token. Its data stays.
    Rm(stop::SlugArgs),
    /// The add-ons started by addon-sandbox, with their state and confinement.
    Ps(ps::PsArgs),
    /// The output of a started add-on.
    Logs(logs::LogsArgs),
    /// The Supervisor API gateway (roles, `/auth`) and the ingress proxy, on one listener.
    /// Prints {"listen": "ADDR"} once it accepts connections; runs until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
    /// Boot a real AppArmor kernel (qemu) with the add-on's generated profile and show what it
    /// is denied: the standard attacks and needs, plus your own probes.
    Preview(preview::PreviewArgs),
    /// Compare the generated profile with the add-on's own apparmor.txt: what each allows
    /// that the other does not, and the attacker probes each lets through.
    Compare(compare::CompareArgs),
}

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Check(args) => check::exec(args, &mut out),
        Command::Rate(args) => rate::exec(args, &mut out),
        Command::Plan(args) => plan::exec(args, &mut out),
        Command::Profile(args) => profile::exec(args, &mut out),
        Command::Run(args) => run::exec(args, &mut out),
        Command::NativeInit => Ok(ExitCode::from(native::init::main())),
        Command::Stop(args) => stop::stop(args),
        Command::Rm(args) => stop::rm(args),
        Command::Ps(args) => ps::exec(args),
        Command::Logs(args) => logs::exec(args),
        Command::Serve(args) => serve::exec(args),
        Command::Preview(args) => preview::exec(args, &mut out),
        Command::Compare(args) => compare::exec(args, &mut out),
    }
}
