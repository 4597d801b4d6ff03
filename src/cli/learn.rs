//! `learn`: run an add-on under its generated profile in complain mode, exercise it, stop it,
//! and tell its author, in config keys, what the enforced profile would have refused. Or read
//! a saved log (`--from-log`) instead of running anything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use addon_sandbox::learn::widen::{self, Widen};
use addon_sandbox::learn::{self, LearnReport, kernel_log};
use addon_sandbox::plan::PolicyMode;
use addon_sandbox::{apparmor, launch, profile};

use super::engine::{note, runtime};
use super::flags::{DataRootFlag, EngineFlags, PlanFlags};
use super::options::OptionsFlags;
use super::output::one_plan;
use super::run::{self, BackendArg, ConfinementArg, Planned, RunArgs};

#[derive(Args)]
pub struct LearnArgs {
    /// The add-on folder (or its config file).
    pub(super) path: PathBuf,
    /// Image to run instead of the config's `image` and version.
    #[arg(long, value_name = "IMAGE[:TAG]")]
    pub(super) image: Option<String>,
    /// Seconds the add-on keeps running after the exercises, before it is stopped.
    #[arg(long = "for", value_name = "SECONDS", default_value = "30")]
    pub(super) seconds: u64,
    /// Wait for the add-on to exit by itself (or Ctrl-C) instead of --for.
    #[arg(long, conflicts_with = "seconds")]
    pub(super) until_exit: bool,
    /// A shell command run on this host once the add-on has started, to exercise it (a client
    /// request, `docker exec ...`); repeatable, run in order. $ADDON_CONTAINER names the
    /// container.
    #[arg(long, value_name = "CMD")]
    pub(super) exercise: Vec<String>,
    /// Read the records from this kernel log or auditd log (`-` for standard input) instead
    /// of running the add-on.
    #[arg(long, value_name = "FILE")]
    from_log: Option<PathBuf>,
    /// Learn in the AppArmor VM instead of on this host (whose kernel need not enforce
    /// AppArmor): DIR is the VM's root, the folder `scripts/build-vm-root` prints. The image
    /// (--image) is saved from this host's engine into it; the folders are scratch folders
    /// there, and the exercises run there.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "from_log",
        requires = "image"
    )]
    pub(super) vm: Option<PathBuf>,
    /// auditd's log, read too when the records go there [default: /var/log/audit/audit.log].
    #[arg(long, value_name = "FILE", default_value = kernel_log::AUDIT_LOG)]
    audit_log: PathBuf,
    /// What the container gets beyond the config while learning, so the kernel can see it
    /// used: maps (every folder, writable), devices (the uart, usb, video and gpio
    /// classes), capabilities (every `privileged` one: only on a disposable host). Comma-separated.
    #[arg(
        long,
        value_name = "FAMILIES",
        value_delimiter = ',',
        default_value = "maps,devices"
    )]
    pub(super) widen: Vec<String>,
    /// Also list the accesses no config key allows (the add-on runs without them).
    #[arg(short, long)]
    verbose: bool,
    /// The reading as one JSON object.
    #[arg(long)]
    json: bool,
    /// The audio server an `audio: true` add-on uses (as for `run`).
    #[arg(long, value_name = "ADDRESS")]
    pub(super) audio_server: Option<String>,
    #[command(flatten)]
    pub(super) engine: EngineFlags,
    #[command(flatten)]
    pub(super) plan: PlanFlags,
    #[command(flatten)]
    pub(super) data_root: DataRootFlag,
    #[command(flatten)]
    options: OptionsFlags,
}

pub fn exec(args: LearnArgs, out: &mut impl Write) -> Result<ExitCode> {
    let parser = apparmor::Parser::find().context("learn judges records with apparmor_parser")?;
    let ran = match (&args.from_log, &args.vm) {
        (Some(file), _) => Ok((read_log(file)?, None)),
        (None, Some(root)) => super::learn_vm::in_vm(&args, root)?.map(|(l, r)| (l, Some(r))),
        (None, None) => live(&args)?.map(|(l, r)| (l, Some(r))),
    };
    let (lines, run) = match ran {
        Ok(ran) => ran,
        Err(status) => return Ok(status),
    };
    let options = args.plan.options(args.data_root.get())?;
    let Some((addon, _)) = one_plan(&args.path, &options, "learn")? else {
        return Ok(ExitCode::from(1));
    };
    let config = addon
        .config
        .as_ref()
        .context("the add-on has no valid config")?;
    let dropped = kernel_log::dropped_records(&lines);
    if dropped {
        eprintln!(
            "warning: the kernel dropped audit records during the run (printk's rate limit, or auditd's backlog): the reading may miss a key. Set kernel.printk_ratelimit=0 (sysctl) or run auditd, and learn again"
        );
    }
    let records: Vec<_> = lines
        .iter()
        .filter_map(|l| learn::parse_line(l).map(|r| (r, l.clone())))
        .collect();
    let report = learn::analyse(config, addon.has_apparmor_txt, &options, &records, &parser)?;
    print(out, &report, args.json, args.verbose, run.as_ref(), dropped)?;
    Ok(ExitCode::SUCCESS)
}

fn read_log(file: &Path) -> Result<Vec<String>> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    Ok(text.lines().map(str::to_owned).collect())
}

/// What the live run did, for the report.
pub(super) struct RunSummary {
    pub(super) container: String,
    pub(super) exercises: Vec<(String, Option<i32>)>,
}

/// Start the add-on in complain mode, exercise it, stop and remove it, and return the log
/// lines written meanwhile; or the exit status after printing why it could not.
fn live(args: &LearnArgs) -> Result<Result<(Vec<String>, RunSummary), ExitCode>> {
    // Learning mounts every folder writable: scratch folders unless a data root is given, so
    // that no real Home Assistant folder is handed to the add-on by default.
    let scratch = match args.data_root.get() {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("addon-sandbox-learn-")
                .tempdir()?,
        ),
    };
    let mut run_args = as_run_args(args);
    if let Some(dir) = &scratch {
        eprintln!(
            "learning with scratch folders under {}",
            dir.path().display()
        );
        run_args.data_root = DataRootFlag::of(dir.path());
    }
    let Some(Planned {
        options,
        addon,
        plan,
        addon_options,
    }) = run::planned(&run_args)?
    else {
        return Ok(Err(ExitCode::from(1)));
    };
    if options.policy != PolicyMode::Strict {
        anyhow::bail!(
            "learn reads what the generated profile would refuse: use the strict policy (the supervisor policy runs the author's profile or Docker's)"
        );
    }
    let widen = widenings(&args.widen)?;
    let config = addon
        .config
        .as_ref()
        .context("the add-on has no valid config")?;
    // The profile is the config's own; the container gets the learning plan's rights.
    let profile = profile::generate(&plan)?.render_learning()?;
    let wide = widen::learning_plan(config, addon.has_apparmor_txt, &options, &widen)?;
    let mark = kernel_log::Mark::now(&args.audit_log)?;
    let run_options = launch::RunOptions {
        info: addon
            .config
            .as_ref()
            .map(|config| launch::state::AddonInfo::new(config, &wide)),
        image: args.image.clone(),
        data_root: PathBuf::from(&options.data_root),
        timezone: run::timezone(),
        options: Some(addon_options),
        audio_server: args.audio_server.clone(),
        learning: Some(profile),
        ..launch::RunOptions::default()
    };
    let rt = runtime()?;
    let summary = rt.block_on(learning_run(args, wide, &run_options));
    rt.shutdown_background();
    match summary {
        Ok(summary) => Ok(Ok((mark.since()?, summary))),
        Err(err) => {
            eprintln!("error: {}: {err}", args.path.display());
            Ok(Err(ExitCode::from(err.exit_code())))
        }
    }
}

/// Start the add-on on the learning plan, exercise it, wait, then stop and remove it (the
/// profile is unloaded with it, whatever the exercises did).
async fn learning_run(
    args: &LearnArgs,
    wide: addon_sandbox::plan::SandboxPlan,
    run_options: &launch::RunOptions,
) -> Result<RunSummary, launch::LaunchError> {
    let launcher = args.engine.launcher().await?;
    let wide = known_to_engine(&launcher, wide);
    let report = launcher
        .run(&wide, run_options, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    eprintln!(
        "learning: {} started as {} under {} (complain mode)",
        report.full_slug, report.container_name, report.confinement
    );
    let exercises = exercise(&args.exercise, &report.container_name);
    wait(&launcher, &report.container_name, args).await;
    if let Some(record) = launcher.state().read_record(&report.full_slug) {
        let stopped = launcher.stop(&record, &mut note).await;
        launcher.rm(&record, &mut note).await?;
        stopped?;
    }
    Ok(RunSummary {
        container: report.container_name,
        exercises,
    })
}

/// The learning plan as this engine can run it: the capabilities the engine does not know
/// are left out (said here), as a launch only ever removes a right. Their use is then not
/// seen.
fn known_to_engine(
    launcher: &launch::Launcher,
    mut plan: addon_sandbox::plan::SandboxPlan,
) -> addon_sandbox::plan::SandboxPlan {
    let (known, unknown): (Vec<String>, Vec<String>) = plan
        .cap_add
        .into_iter()
        .partition(|c| launcher.knows_capability(c));
    if !unknown.is_empty() {
        eprintln!(
            "learning: this Docker engine does not know {}: not given while learning (their use is not seen)",
            unknown.join(", ")
        );
    }
    plan.cap_add = known;
    plan
}

fn widenings(names: &[String]) -> Result<Vec<Widen>> {
    names
        .iter()
        .filter(|n| !n.is_empty() && *n != "none")
        .map(|n| {
            Widen::parse(n).with_context(|| {
                format!("--widen {n:?}: expected maps, devices, capabilities or none")
            })
        })
        .collect()
}

/// `run`'s arguments for the same add-on: Docker, never unconfined.
pub(super) fn as_run_args(args: &LearnArgs) -> RunArgs {
    RunArgs {
        path: args.path.clone(),
        image: args.image.clone(),
        command: Vec::new(),
        allow_unconfined: false,
        backend: BackendArg::Docker,
        rootfs: None,
        confinement: ConfinementArg::Apparmor,
        audio_server: args.audio_server.clone(),
        engine: args.engine.clone(),
        json: args.json,
        plan: args.plan.clone(),
        data_root: args.data_root.clone(),
        options: args.options.clone(),
        // Learn mode's run does not verify the image (its RunOptions carry no trust settings).
        trust: Default::default(),
    }
}

fn exercise(commands: &[String], container: &str) -> Vec<(String, Option<i32>)> {
    commands
        .iter()
        .map(|cmd| {
            eprintln!("exercise: {cmd}");
            // The exercise's output goes to standard error: standard output is the reading
            // (one JSON object with --json).
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("ADDON_CONTAINER", container)
                .stdout(std::io::stderr())
                .status()
                .ok()
                .and_then(|s| s.code());
            if status != Some(0) {
                eprintln!("warning: exercise `{cmd}` ended with {status:?}");
            }
            (cmd.clone(), status)
        })
        .collect()
}

/// `--for` seconds, or until the container exits (`--until-exit`), or Ctrl-C.
async fn wait(launcher: &launch::Launcher, container: &str, args: &LearnArgs) {
    let start = Instant::now();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        if !args.until_exit && start.elapsed() >= Duration::from_secs(args.seconds) {
            return;
        }
        if args.until_exit {
            let running = launcher
                .docker()
                .inspect_container(container, None)
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.running)
                .unwrap_or(false);
            if !running {
                return;
            }
        }
        tokio::select! {
            _ = &mut interrupted => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

fn print(
    out: &mut impl Write,
    report: &LearnReport,
    json: bool,
    verbose: bool,
    run: Option<&RunSummary>,
    dropped: bool,
) -> Result<()> {
    if json {
        let mut value = serde_json::to_value(report)?;
        value["dropped_records"] = dropped.into();
        if let Some(run) = run {
            value["container"] = run.container.clone().into();
            value["exercises"] = serde_json::to_value(&run.exercises)?;
        }
        writeln!(out, "{value}")?;
    } else {
        out.write_all(learn::human(report, verbose).as_bytes())?;
    }
    Ok(())
}
