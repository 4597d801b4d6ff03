//! `run`: validate, plan, load the profile, create and start the add-on, attest it; with the
//! Docker engine (the default) or the native backend.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use addon_sandbox::addon::Addon;
use addon_sandbox::plan::SandboxPlan;
use addon_sandbox::policy::PlanOptions;
use addon_sandbox::{launch, native};

use super::engine::runtime;
use super::flags::{DataRootFlag, EngineFlags, PlanFlags, TrustFlags, absolute};
use super::options::OptionsFlags;
use super::output::one_plan;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    Docker,
    Native,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ConfinementArg {
    Apparmor,
    Landlock,
    Any,
    None,
}

#[derive(Args)]
pub struct RunArgs {
    /// The add-on folder (or its config file).
    pub(super) path: PathBuf,
    /// Image to run instead of the config's `image` and version.
    #[arg(long, value_name = "IMAGE[:TAG]")]
    pub(super) image: Option<String>,
    /// Command to run instead of the image's (give it last: it takes the rest).
    #[arg(long = "command", value_name = "CMD", num_args = 1.., allow_hyphen_values = true)]
    pub(super) command: Vec<String>,
    /// Run without AppArmor when this host cannot enforce the plan's profile (warned).
    #[arg(long)]
    pub(super) allow_unconfined: bool,
    /// docker: a container through the engine; native: a confined process of this binary's
    /// own (namespaces, capabilities, no_new_privs, AppArmor or Landlock), needs --rootfs.
    #[arg(long, value_enum, default_value = "docker")]
    pub(super) backend: BackendArg,
    /// The native backend's root filesystem: a directory (an exported image, a busybox tree).
    #[arg(long, value_name = "DIR")]
    pub(super) rootfs: Option<PathBuf>,
    /// Native backend: apparmor, landlock, any (AppArmor if enforced, else Landlock, else
    /// refuse) or none (unconfined, warned).
    #[arg(long, value_enum, default_value = "any")]
    pub(super) confinement: ConfinementArg,
    /// The audio server an `audio: true` add-on's pulse client uses, as the add-on sees it: a
    /// socket path, unix:PATH or tcp:HOST:PORT [default: unix:/run/audio/pulse.sock, the
    /// socket in <data root>/audio/external, bound at /run/audio].
    #[arg(long, value_name = "ADDRESS")]
    pub(super) audio_server: Option<String>,
    #[command(flatten)]
    pub(super) engine: EngineFlags,
    /// What was started (or why not) as one JSON object.
    #[arg(long)]
    pub(super) json: bool,
    #[command(flatten)]
    pub(super) plan: PlanFlags,
    #[command(flatten)]
    pub(super) data_root: DataRootFlag,
    #[command(flatten)]
    pub(super) options: OptionsFlags,
    #[command(flatten)]
    pub(super) trust: TrustFlags,
}

pub fn exec(args: RunArgs, out: &mut impl Write) -> Result<ExitCode> {
    if let Some(address) = &args.audio_server {
        // Checked before anything else, whether or not the add-on uses audio.
        launch::audio_server_address(address)?;
    }
    match args.backend {
        BackendArg::Native => {
            if args.image.is_some() || args.allow_unconfined {
                anyhow::bail!(
                    "--image and --allow-unconfined are Docker options; the native backend takes --rootfs and --confinement"
                );
            }
            let rootfs = args
                .rootfs
                .as_deref()
                .context("--backend native needs --rootfs DIR")?;
            let rootfs = absolute(rootfs)?;
            run_native(out, args, rootfs)
        }
        BackendArg::Docker => {
            if args.rootfs.is_some() {
                anyhow::bail!("--rootfs is for --backend native");
            }
            run_docker(out, args)
        }
    }
}

pub(super) fn timezone() -> Option<String> {
    std::env::var("TZ").ok().filter(|t| !t.is_empty())
}

fn run_docker(out: &mut impl Write, args: RunArgs) -> Result<ExitCode> {
    let Some(Planned {
        options,
        addon,
        plan,
        addon_options,
    }) = planned(&args)?
    else {
        return Ok(ExitCode::from(1));
    };
    let info = addon
        .config
        .as_ref()
        .map(|config| launch::state::AddonInfo::new(config, &plan));
    let run_options = launch::RunOptions {
        info,
        image: args.image,
        command: (!args.command.is_empty()).then_some(args.command),
        allow_unconfined: args.allow_unconfined,
        data_root: PathBuf::from(&options.data_root),
        addon_profile: addon.apparmor_text,
        timezone: timezone(),
        options: Some(addon_options),
        audio_server: args.audio_server,
        learning: None,
        trust: Some(args.trust.settings(options.host.arch.as_deref())?),
    };
    let rt = runtime()?;
    let engine = &args.engine;
    let result = rt.block_on(async {
        let launcher = engine.launcher().await?;
        let interrupt = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        launcher.run(&plan, &run_options, interrupt).await
    });
    // An interrupted launch may leave a parser call running on a blocking thread: do not wait.
    rt.shutdown_background();
    print_outcome(out, &args.path, args.json, result)
}

fn run_native(out: &mut impl Write, args: RunArgs, rootfs: PathBuf) -> Result<ExitCode> {
    let Some(Planned {
        options,
        addon,
        plan,
        addon_options,
    }) = planned(&args)?
    else {
        return Ok(ExitCode::from(1));
    };
    let state = launch::state::StateDir::open(&args.engine.state_dir()?)?;
    let opts = native::run::NativeOptions {
        rootfs,
        command: args.command,
        confinement: match args.confinement {
            ConfinementArg::Apparmor => native::ConfinementChoice::Apparmor,
            ConfinementArg::Landlock => native::ConfinementChoice::Landlock,
            ConfinementArg::Any => native::ConfinementChoice::Any,
            ConfinementArg::None => native::ConfinementChoice::None,
        },
        data_root: PathBuf::from(&options.data_root),
        addon_profile: addon.apparmor_text,
        timezone: timezone(),
        options: Some(addon_options),
        audio_server: args.audio_server,
    };
    let result = native::run::run(&state, &plan, &opts);
    print_outcome(out, &args.path, args.json, result)
}

/// What both backends start from: the plan's options, the add-on, its plan and its validated
/// options.
pub(super) struct Planned {
    pub(super) options: PlanOptions,
    pub(super) addon: Addon,
    pub(super) plan: SandboxPlan,
    pub(super) addon_options: serde_json::Value,
}

/// The one add-on `args` names, planned, with its options validated; `None` after printing
/// why there is nothing to start (an invalid add-on, no plan, invalid options).
pub(super) fn planned(args: &RunArgs) -> Result<Option<Planned>> {
    let options = args.plan.options(args.data_root.get())?;
    let Some((addon, plan)) = one_plan(&args.path, &options, "run")? else {
        return Ok(None);
    };
    let Some(addon_options) = valid_options(args, &addon, &plan.full_slug)? else {
        return Ok(None);
    };
    Ok(Some(Planned {
        options,
        addon,
        plan,
        addon_options,
    }))
}

/// The options the start writes to options.json, or `None` after printing the
/// Supervisor's refusal (`App <slug> has invalid options: ...`): nothing is created then.
fn valid_options(
    args: &RunArgs,
    addon: &Addon,
    full_slug: &str,
) -> Result<Option<serde_json::Value>> {
    match args.options.validate(addon, full_slug, false)? {
        Ok(valid) => {
            for w in &valid.warnings {
                eprintln!("warning: {w}");
            }
            Ok(Some(valid.options))
        }
        Err(addon_sandbox::options::OptionsError::Invalid(error)) => {
            eprintln!(
                "error: {}: App {full_slug} has invalid options: {error}",
                args.path.display()
            );
            Ok(None)
        }
        Err(other) => Err(other.into()),
    }
}

/// Print what a start did (or why it failed) and turn it into the exit status.
fn print_outcome(
    out: &mut impl Write,
    path: &Path,
    json: bool,
    result: Result<launch::RunReport, launch::LaunchError>,
) -> Result<ExitCode> {
    match result {
        Ok(report) => {
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            if json {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            } else {
                writeln!(
                    out,
                    "started {} as {} ({}), confinement: {}",
                    report.full_slug, report.container_name, report.image, report.confinement
                )?;
                writeln!(out, "  granted: {}", report.granted.join(", "))?;
                if let Some(verdict) = &report.trust {
                    writeln!(out, "  image trust: {}", super::trust::summary(verdict))?;
                }
                if let Some(token) = &report.ingress_token {
                    writeln!(out, "  ingress: /ingress/{token}/ on the gateway (serve)")?;
                }
                for w in &report.withheld {
                    writeln!(
                        out,
                        "  withheld: {} ({}; {})",
                        w.right, w.reason, w.grant_with
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {}: {err}", path.display());
            Ok(ExitCode::from(err.exit_code()))
        }
    }
}
