//! The `addon-sandbox` command line.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use addon_sandbox::addon::{self, Addon};
use addon_sandbox::diag::Diagnostic;
use addon_sandbox::plan::{PolicyMode, SandboxPlan};
use addon_sandbox::policy::{self, PlanOptions, Right};
use addon_sandbox::{apparmor, gateway, launch, native, profile, report};

/// Reading a repository allocates a great deal of small, short-lived values (YAML tokens,
/// names, plan entries); glibc's malloc spent a sixth of the instructions of `check` on them,
/// mimalloc about a quarter of that. `benches/core.rs` uses the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "addon-sandbox",
    version,
    about = "Least-privilege sandboxing for Home Assistant add-ons"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate add-on folders (or repositories of them) exactly as the Supervisor does.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// One JSON object per add-on per line.
        #[arg(long)]
        json: bool,
    },
    /// The Supervisor's security rating (1-8) and the factors that moved it.
    Rate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The sandbox plan: granted and withheld rights, mounts, capabilities, namespaces.
    Plan {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        plan: PlanFlags,
    },
    /// The generated AppArmor profile of an add-on (least privilege, from its sandbox plan).
    Profile {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Annotate every rule with the config key (or base policy) that caused it.
        #[arg(long)]
        explain: bool,
        /// Write the profile to FILE instead of standard output (one add-on only).
        #[arg(
            short = 'o',
            long = "output",
            value_name = "FILE",
            conflicts_with = "out_dir"
        )]
        output: Option<PathBuf>,
        /// Write one profile per add-on into DIR, each named by the add-on's full slug.
        #[arg(long = "out", value_name = "DIR")]
        out_dir: Option<PathBuf>,
        #[command(flatten)]
        plan: PlanFlags,
    },
    /// Validate, plan, load the profile, create and start the container, attest it.
    Run {
        path: PathBuf,
        /// Image to run instead of the config's `image` and version.
        #[arg(long, value_name = "IMAGE[:TAG]")]
        image: Option<String>,
        /// Command to run instead of the image's (give it last: it takes the rest).
        #[arg(long = "command", value_name = "CMD", num_args = 1.., allow_hyphen_values = true)]
        command: Vec<String>,
        /// Run without AppArmor when this host cannot enforce the plan's profile (warned).
        #[arg(long)]
        allow_unconfined: bool,
        /// docker: a container through the engine; native: a confined process of this binary's
        /// own (namespaces, capabilities, no_new_privs, AppArmor or Landlock), needs --rootfs.
        #[arg(long, value_enum, default_value = "docker")]
        backend: BackendArg,
        /// The native backend's root filesystem: a directory (an exported image, a busybox tree).
        #[arg(long, value_name = "DIR")]
        rootfs: Option<PathBuf>,
        /// Native backend: apparmor, landlock, any (AppArmor if enforced, else Landlock, else
        /// refuse) or none (unconfined, warned).
        #[arg(long, value_enum, default_value = "any")]
        confinement: ConfinementArg,
        #[command(flatten)]
        engine: EngineFlags,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        plan: PlanFlags,
    },
    /// (internal) The native backend's sandbox setup; reads its spec on standard input.
    #[command(name = "__native-init", hide = true)]
    NativeInit,
    /// Stop a started add-on (its container stays, so `logs` still works).
    Stop {
        slug: String,
        #[command(flatten)]
        engine: EngineFlags,
    },
    /// Remove a started add-on: container, loaded profile, token. Its data stays.
    Rm {
        slug: String,
        #[command(flatten)]
        engine: EngineFlags,
    },
    /// The add-ons started by addon-sandbox, with their state and confinement.
    Ps {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineFlags,
    },
    /// The output of a started add-on.
    Logs {
        slug: String,
        #[arg(long, short = 'f')]
        follow: bool,
        #[command(flatten)]
        engine: EngineFlags,
    },
    /// The Supervisor API gateway (roles, `/auth`) and the ingress proxy, on one listener.
    /// Prints {"listen": "ADDR"} once it accepts connections; runs until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on; port 0 takes a free port (the bound address is printed).
        #[arg(long, default_value = "127.0.0.1:8099")]
        listen: std::net::SocketAddr,
        /// Where allowed API requests go, e.g. http://172.30.32.2:80.
        #[arg(long, value_name = "URL")]
        upstream: String,
        /// File holding the gateway's own upstream credential (sent as a Bearer token in
        /// place of the add-on's token, which is never forwarded).
        #[arg(long, value_name = "FILE")]
        upstream_token_file: Option<PathBuf>,
        /// File holding Home Assistant's token: unrestricted, and the only caller that may
        /// create ingress sessions.
        #[arg(long, value_name = "FILE")]
        core_token_file: Option<PathBuf>,
        /// Credential backend for `/auth`: an http URL with Home Assistant's hassio_auth
        /// contract (POST {username, password, addon}; 200 = match). Without it `/auth` is 503.
        #[arg(long, value_name = "URL")]
        auth_backend: Option<String>,
        /// Seconds an ingress session lives, fixed when it is created.
        #[arg(long, value_name = "SECONDS", default_value = "900")]
        session_ttl: u64,
        /// Tokens and records of started add-ons [default: as for run].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Worker threads; 1 keeps a request and its upstream call on one core, which is
        /// fastest unless one core cannot carry the load.
        #[arg(long, value_name = "N", default_value = "1")]
        threads: usize,
    },
    /// Boot a real AppArmor kernel (qemu) with the add-on's generated profile and show what it
    /// is denied: the standard attacks and needs, plus your own probes.
    Preview {
        path: PathBuf,
        /// An extra probe, "OP PATH" with OP one of read, write, create, exec, mmap, mount,
        /// connect, device (repeatable), e.g. --probe "write /share/notes.txt".
        #[arg(long = "probe", value_name = "OP PATH")]
        probes: Vec<String>,
        #[command(flatten)]
        plan: PlanFlags,
    },
    /// Compare the generated profile with the add-on's own apparmor.txt: what each allows
    /// that the other does not, and the attacker probes each lets through.
    Compare {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// One JSON object per add-on per line.
        #[arg(long)]
        json: bool,
        /// Ask only the attacker probes (faster; for surveys of many add-ons).
        #[arg(long)]
        attacks_only: bool,
        #[command(flatten)]
        plan: PlanFlags,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Docker,
    Native,
}

#[derive(Clone, Copy, ValueEnum)]
enum ConfinementArg {
    Apparmor,
    Landlock,
    Any,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    Strict,
    Supervisor,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Args)]
struct PlanFlags {
    /// strict: least privilege (default); supervisor: exactly what the Supervisor does.
    #[arg(long, value_enum, default_value = "strict")]
    policy: PolicyArg,
    /// Protection mode (on by default): withholds the rights that reach the host.
    #[arg(long, value_enum, default_value = "on")]
    protection: OnOff,
    /// Grant one withheld right (repeatable), e.g. host_network, SYS_ADMIN, docker_api.
    #[arg(long = "grant", value_name = "RIGHT")]
    grants: Vec<String>,
    /// Repository name: the full slug is REPOSITORY_SLUG.
    #[arg(long, default_value = "local")]
    repository: String,
    /// Where add-on data lives on the host [default: /var/lib/addon-sandbox as root,
    /// $XDG_DATA_HOME/addon-sandbox (~/.local/share/addon-sandbox) otherwise].
    #[arg(long, value_name = "DIR")]
    data_root: Option<PathBuf>,
}

#[derive(Args)]
struct EngineFlags {
    /// Tokens, records and loaded profiles [default: /var/lib/addon-sandbox/state as root,
    /// $XDG_STATE_HOME/addon-sandbox (~/.local/state/addon-sandbox) otherwise].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Seconds to wait for any one answer of the Docker engine.
    #[arg(long, value_name = "SECONDS", default_value = "30")]
    timeout: u64,
}

impl EngineFlags {
    fn state_dir(&self) -> Result<PathBuf> {
        match &self.state_dir {
            Some(d) => absolute(d),
            None => Ok(default_state_dir()),
        }
    }

    async fn launcher(&self) -> Result<launch::Launcher, launch::LaunchError> {
        let dir = self
            .state_dir()
            .map_err(|e| launch::LaunchError::State(std::io::Error::other(e.to_string())))?;
        launch::Launcher::connect(&dir, std::time::Duration::from_secs(self.timeout.max(1))).await
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn default_state_dir() -> PathBuf {
    default_dir(
        "/var/lib/addon-sandbox/state",
        "XDG_STATE_HOME",
        ".local/state",
    )
}

/// `root_dir` for root (/proc/self belongs to the effective uid: root may write /var/lib,
/// others may not), else `$<xdg_var>/addon-sandbox`, else `~/<home_dir>/addon-sandbox`.
fn default_dir(root_dir: &str, xdg_var: &str, home_dir: &str) -> PathBuf {
    if is_root() {
        return PathBuf::from(root_dir);
    }
    if let Some(xdg) = std::env::var_os(xdg_var).filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("addon-sandbox");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(home_dir).join("addon-sandbox"),
        None => PathBuf::from(root_dir),
    }
}

impl PlanFlags {
    fn options(&self) -> Result<PlanOptions> {
        let grants: BTreeSet<Right> = self
            .grants
            .iter()
            .map(|g| Right::parse(g))
            .collect::<Result<_, _>>()?;
        let data_root = match &self.data_root {
            Some(dir) => absolute(dir)?,
            None => default_data_root(),
        };
        Ok(PlanOptions {
            policy: match self.policy {
                PolicyArg::Strict => PolicyMode::Strict,
                PolicyArg::Supervisor => PolicyMode::Supervisor,
            },
            protected: matches!(self.protection, OnOff::On),
            grants,
            repository: self.repository.clone(),
            data_root: data_root.to_string_lossy().into_owned(),
            host: policy::HostFacts {
                arch: Some(host_arch().to_owned()),
                ..policy::HostFacts::default()
            },
        })
    }
}

/// The Supervisor's name of this machine's architecture.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        "arm" => "armv7",
        "x86" => "i386",
        _ => "amd64",
    }
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current folder")?
        .join(dir))
}

fn default_data_root() -> PathBuf {
    default_dir("/var/lib/addon-sandbox", "XDG_DATA_HOME", ".local/share")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Every add-on named by the paths, with unresolvable paths reported as diagnostics.
fn collect(paths: &[PathBuf]) -> (Vec<Addon>, Vec<Diagnostic>) {
    let mut addons = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match addon::resolve(path) {
            Ok(dirs) => addons.extend(addon::load_all(&dirs)),
            Err(d) => problems.push(d),
        }
    }
    (addons, problems)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Check { paths, json } => {
            let (addons, problems) = collect(&paths);
            for p in &problems {
                eprint!("{p}");
            }
            let mut all_valid = problems.is_empty();
            for a in &addons {
                all_valid &= a.valid();
                if json {
                    writeln!(out, "{}", serde_json::to_string(&report::check(a))?)?;
                } else {
                    print_check(&mut out, a)?;
                }
            }
            Ok(status(all_valid))
        }
        Command::Rate { paths, json } => {
            let (addons, problems) = collect(&paths);
            let mut ok = problems.is_empty();
            for p in &problems {
                eprint!("{p}");
            }
            for a in &addons {
                let Some(r) = report::rating(a).filter(|_| a.valid()) else {
                    ok = false;
                    print_invalid(a);
                    continue;
                };
                if json {
                    writeln!(out, "{}", serde_json::to_string(&r)?)?;
                } else {
                    writeln!(out, "{} ({}): rating {}/8", r.slug, r.path, r.rating)?;
                    for f in &r.factors {
                        writeln!(out, "  {:+}  {}", f.delta, f.reason)?;
                    }
                }
            }
            Ok(status(ok))
        }
        Command::Profile {
            paths,
            explain,
            output,
            out_dir,
            plan,
        } => profile_command(
            &mut out,
            &paths,
            explain,
            output.as_deref(),
            out_dir.as_deref(),
            &plan,
        ),
        Command::NativeInit => Ok(ExitCode::from(native::init::main())),
        Command::Run {
            path,
            backend: BackendArg::Native,
            image,
            command,
            allow_unconfined,
            rootfs,
            confinement,
            engine,
            json,
            plan,
        } => {
            if image.is_some() || allow_unconfined {
                anyhow::bail!(
                    "--image and --allow-unconfined are Docker options; the native backend takes --rootfs and --confinement"
                );
            }
            let rootfs = rootfs.context("--backend native needs --rootfs DIR")?;
            native_run_command(
                &mut out,
                &path,
                absolute(&rootfs)?,
                command,
                confinement,
                &engine,
                json,
                &plan,
            )
        }
        Command::Run {
            path,
            image,
            command,
            allow_unconfined,
            rootfs,
            engine,
            json,
            plan,
            ..
        } => {
            if rootfs.is_some() {
                anyhow::bail!("--rootfs is for --backend native");
            }
            run_command(
                &mut out,
                &path,
                image,
                command,
                allow_unconfined,
                &engine,
                json,
                &plan,
            )
        }
        Command::Serve {
            listen,
            upstream,
            upstream_token_file,
            core_token_file,
            auth_backend,
            session_ttl,
            state_dir,
            threads,
        } => {
            let read_secret = |file: Option<PathBuf>| -> Result<Option<String>> {
                file.map(|f| {
                    std::fs::read_to_string(&f)
                        .map(|t| t.trim().to_owned())
                        .with_context(|| format!("reading {}", f.display()))
                })
                .transpose()
            };
            let config = gateway::GatewayConfig {
                upstream,
                upstream_token: read_secret(upstream_token_file)?,
                core_token: read_secret(core_token_file)?,
                state_dir: match state_dir {
                    Some(d) => absolute(&d)?,
                    None => default_state_dir(),
                },
                auth_backend,
                session_ttl: std::time::Duration::from_secs(session_ttl.max(1)),
                auth_limits: gateway::limit::AuthLimits::default(),
            };
            serve_command(listen, config, threads)
        }
        Command::Stop { slug, engine } => match native_record(&engine, &slug) {
            Some((state, record)) => native_result(
                native::run::stop(&state, &record).map(|()| println!("stopped {slug}")),
            ),
            None => engine_command(&engine, |l| async move {
                l.stop(&slug).await?;
                println!("stopped {slug}");
                Ok(())
            }),
        },
        Command::Rm { slug, engine } => match native_record(&engine, &slug) {
            Some((state, record)) => native_result(
                native::run::rm(&state, &record)
                    .map(|()| println!("removed {slug} (its data is kept)")),
            ),
            None => engine_command(&engine, |l| async move {
                l.rm(&slug).await?;
                println!("removed {slug} (its data is kept)");
                Ok(())
            }),
        },
        Command::Ps { json, engine } => {
            let state_dir = engine.state_dir()?;
            engine_command_or_native(&engine, |l| async move {
                let mut list = match l {
                    Some(l) => l.ps().await?,
                    None => Vec::new(),
                };
                if let Some(state) = launch::state::StateDir::existing(&state_dir) {
                    list.extend(
                        state
                            .records()
                            .iter()
                            .filter(|r| native::run::is_native(r))
                            .map(native::run::ps_entry),
                    );
                }
                list.sort_by(|a, b| a.full_slug.cmp(&b.full_slug));
                let stdout = std::io::stdout();
                let mut out = stdout.lock();
                if json {
                    for e in &list {
                        let _ = writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default());
                    }
                } else {
                    let _ = writeln!(
                        out,
                        "{:<32} {:<10} {:<28} {:<30} IMAGE",
                        "ADD-ON", "STATE", "STATUS", "CONFINEMENT"
                    );
                    for e in &list {
                        let _ = writeln!(
                            out,
                            "{:<32} {:<10} {:<28} {:<30} {}",
                            e.full_slug, e.state, e.status, e.confinement, e.image
                        );
                    }
                }
                Ok(())
            })
        }
        Command::Logs {
            slug,
            follow,
            engine,
        } => match native_record(&engine, &slug) {
            Some((state, record)) => {
                native_result(native::run::logs(&state, &record).map(|text| print!("{text}")))
            }
            None => engine_command(&engine, |l| async move {
                let mut out = std::io::stdout();
                l.logs(&slug, follow, &mut out).await
            }),
        },
        Command::Preview { path, probes, plan } => preview_command(&mut out, &path, &probes, &plan),
        Command::Compare {
            paths,
            json,
            attacks_only,
            plan,
        } => compare_command(&mut out, &paths, json, attacks_only, &plan),
        Command::Plan { paths, json, plan } => {
            let options = plan.options()?;
            let (plans, ok) = plans(&paths, &options);
            for (a, plan) in &plans {
                if json {
                    let r = report::PlanReport {
                        path: a.dir.display().to_string(),
                        plan,
                    };
                    writeln!(out, "{}", serde_json::to_string(&r)?)?;
                } else {
                    print_plan(&mut out, a, plan)?;
                }
            }
            Ok(status(ok))
        }
    }
}

/// Exit status 0 when everything went well, 1 otherwise.
fn status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The one valid add-on `path` names, planned; None (after printing why) when it is invalid or
/// cannot be planned, an error when it names several.
fn one_plan(
    path: &Path,
    options: &PlanOptions,
    command: &str,
) -> Result<Option<(Addon, SandboxPlan)>> {
    let (mut plans, ok) = plans(std::slice::from_ref(&path.to_path_buf()), options);
    if !ok {
        return Ok(None);
    }
    if plans.len() != 1 {
        anyhow::bail!(
            "{} names {} add-ons; {command} takes one",
            path.display(),
            plans.len()
        );
    }
    Ok(Some(plans.remove(0)))
}

/// The plans of the valid add-ons under `paths`; problems are printed, and `ok` says whether
/// there were any.
fn plans(paths: &[PathBuf], options: &PlanOptions) -> (Vec<(Addon, SandboxPlan)>, bool) {
    let (addons, problems) = collect(paths);
    let mut ok = problems.is_empty();
    for p in &problems {
        eprint!("{p}");
    }
    let mut out = Vec::new();
    for a in addons {
        let Some(config) = a.config.as_ref().filter(|_| a.valid()) else {
            ok = false;
            print_invalid(&a);
            continue;
        };
        match policy::decide(config, a.apparmor_profile.is_some(), options) {
            Ok(plan) => out.push((a, plan)),
            Err(err) => {
                ok = false;
                eprintln!("error: {}: {err}", a.dir.display());
            }
        }
    }
    (out, ok)
}

fn profile_command(
    out: &mut impl Write,
    paths: &[PathBuf],
    explain: bool,
    output: Option<&Path>,
    out_dir: Option<&Path>,
    flags: &PlanFlags,
) -> Result<ExitCode> {
    let options = flags.options()?;
    let (plans, mut ok) = plans(paths, &options);
    if plans.len() > 1 && out_dir.is_none() {
        anyhow::bail!(
            "{} add-ons found: give --out DIR to write one profile per add-on",
            plans.len()
        );
    }
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (a, plan) in &plans {
        let text = match profile::generate(plan).and_then(|p| p.render(explain)) {
            Ok(text) => text,
            Err(err) => {
                ok = false;
                eprintln!("error: {}: {err}", a.dir.display());
                continue;
            }
        };
        let target = match (output, out_dir) {
            (Some(file), _) => Some(file.to_path_buf()),
            (None, Some(dir)) => Some(dir.join(&plan.full_slug)),
            (None, None) => None,
        };
        match target {
            Some(file) => launch::state::write_atomically(&file, text.as_bytes(), 0o600)
                .with_context(|| format!("writing {}", file.display()))?,
            None => out.write_all(text.as_bytes())?,
        }
    }
    Ok(status(ok))
}

fn serve_command(
    listen: std::net::SocketAddr,
    config: gateway::GatewayConfig,
    threads: usize,
) -> Result<ExitCode> {
    let gateway = std::sync::Arc::new(gateway::Gateway::new(config)?);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let bound = listener.local_addr()?;
        println!("{}", serde_json::json!({"listen": bound.to_string()}));
        std::io::stdout().flush()?;
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return std::future::pending().await,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        gateway.serve(listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The state and record of `slug` when it is a native sandbox.
fn native_record(
    engine: &EngineFlags,
    slug: &str,
) -> Option<(launch::state::StateDir, launch::state::Record)> {
    let state = launch::state::StateDir::existing(&engine.state_dir().ok()?)?;
    let record = state.read_record(slug)?;
    native::run::is_native(&record).then_some((state, record))
}

fn native_result(result: Result<(), launch::LaunchError>) -> Result<ExitCode> {
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn native_run_command(
    out: &mut impl Write,
    path: &Path,
    rootfs: PathBuf,
    command: Vec<String>,
    confinement: ConfinementArg,
    engine: &EngineFlags,
    json: bool,
    flags: &PlanFlags,
) -> Result<ExitCode> {
    let options = flags.options()?;
    let Some((addon, plan)) = one_plan(path, &options, "run")? else {
        return Ok(ExitCode::from(1));
    };
    let state = launch::state::StateDir::open(&engine.state_dir()?)?;
    let opts = native::run::NativeOptions {
        rootfs,
        command,
        confinement: match confinement {
            ConfinementArg::Apparmor => native::ConfinementChoice::Apparmor,
            ConfinementArg::Landlock => native::ConfinementChoice::Landlock,
            ConfinementArg::Any => native::ConfinementChoice::Any,
            ConfinementArg::None => native::ConfinementChoice::None,
        },
        data_root: PathBuf::from(&options.data_root),
        addon_profile: addon.apparmor_text,
        timezone: std::env::var("TZ").ok().filter(|t| !t.is_empty()),
    };
    run_outcome(out, path, json, native::run::run(&state, &plan, &opts))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Run one engine command; a launch error is printed and becomes its exit status.
fn engine_command<F, Fut>(engine: &EngineFlags, f: F) -> Result<ExitCode>
where
    F: FnOnce(launch::Launcher) -> Fut,
    Fut: std::future::Future<Output = Result<(), launch::LaunchError>>,
{
    let result = runtime()?.block_on(async {
        let launcher = engine.launcher().await?;
        f(launcher).await
    });
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    })
}

/// `engine_command` for listings that also cover native sandboxes: without a reachable engine,
/// `f` gets `None` when there are native sandboxes to show (and a warning is printed).
fn engine_command_or_native<F, Fut>(engine: &EngineFlags, f: F) -> Result<ExitCode>
where
    F: FnOnce(Option<launch::Launcher>) -> Fut,
    Fut: std::future::Future<Output = Result<(), launch::LaunchError>>,
{
    let has_native = engine
        .state_dir()
        .ok()
        .and_then(|d| launch::state::StateDir::existing(&d))
        .is_some_and(|s| s.records().iter().any(native::run::is_native));
    let result = runtime()?.block_on(async {
        match engine.launcher().await {
            Ok(launcher) => f(Some(launcher)).await,
            Err(e) if has_native && e.exit_code() == 4 => {
                eprintln!("warning: {e}; showing the native sandboxes only");
                f(None).await
            }
            Err(e) => Err(e),
        }
    });
    native_result(result)
}

#[allow(clippy::too_many_arguments)]
fn run_command(
    out: &mut impl Write,
    path: &Path,
    image: Option<String>,
    command: Vec<String>,
    allow_unconfined: bool,
    engine: &EngineFlags,
    json: bool,
    flags: &PlanFlags,
) -> Result<ExitCode> {
    let options = flags.options()?;
    let Some((addon, plan)) = one_plan(path, &options, "run")? else {
        return Ok(ExitCode::from(1));
    };
    let run_options = launch::RunOptions {
        image,
        command: (!command.is_empty()).then_some(command),
        allow_unconfined,
        data_root: PathBuf::from(&options.data_root),
        addon_profile: addon.apparmor_text,
        timezone: std::env::var("TZ").ok().filter(|t| !t.is_empty()),
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let launcher = engine.launcher().await?;
        let interrupt = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        launcher.run(&plan, &run_options, interrupt).await
    });
    // An interrupted launch may leave a parser call running on a blocking thread: do not wait.
    rt.shutdown_background();
    run_outcome(out, path, json, result)
}

/// Print what a start did (or why it failed) and turn it into the exit status.
fn run_outcome(
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

fn preview_command(
    out: &mut impl Write,
    path: &Path,
    extra: &[String],
    flags: &PlanFlags,
) -> Result<ExitCode> {
    let options = flags.options()?;
    let Some((_, plan)) = one_plan(path, &options, "preview")? else {
        return Ok(ExitCode::from(1));
    };
    let text = profile::generate(&plan)?.render(false)?;
    let name = plan.full_slug.clone();
    let mut probes = addon_sandbox::vm::standard_probes(&plan, &name);
    let standard = probes.len();
    for p in extra {
        let (op, target) = p
            .split_once(' ')
            .with_context(|| format!("--probe {p:?}: expected \"OP PATH\""))?;
        let op: &'static str = match op {
            "read" => "read",
            "write" => "write",
            "create" => "create",
            "exec" => "exec",
            "mmap" => "mmap",
            "mount" => "mount",
            "connect" => "connect",
            "device" => "device",
            other => anyhow::bail!("--probe: unknown operation {other:?}"),
        };
        policy::check_literal_path(target)
            .map_err(|why| anyhow::anyhow!("--probe path {target:?} {why}"))?;
        probes.push(addon_sandbox::vm::VmProbe {
            profile: name.clone(),
            op,
            path: target.to_owned(),
            expect_allowed: true,
        });
    }
    let kernel = addon_sandbox::vm::kernel()?;
    eprintln!("booting the AppArmor VM (qemu, software emulation: about a minute)...");
    let report = addon_sandbox::vm::run(&kernel, &[(name.clone(), text)], &probes, None)?;
    if !report.load_failures.is_empty() {
        anyhow::bail!(
            "the profile did not load: {}",
            report.load_failures.join("; ")
        );
    }
    writeln!(out, "{name} in a real AppArmor kernel:")?;
    let unix_mediated = report.extra.iter().any(|l| l == "UNIX yes");
    let mut surprises = 0;
    for (i, (p, outcome)) in probes.iter().zip(&report.outcomes).enumerate() {
        let expected = if i >= standard {
            "yours"
        } else if p.expect_allowed {
            "need"
        } else {
            "attack"
        };
        let allowed = outcome == "OK";
        let surprise = i < standard && allowed != p.expect_allowed && p.op != "connect";
        surprises += surprise as usize;
        writeln!(
            out,
            "  {:<7} {:<8} {:<52} {}{}",
            expected,
            p.op,
            p.path,
            if allowed {
                "allowed".to_owned()
            } else {
                format!("denied ({})", outcome.trim_start_matches("ERR "))
            },
            if surprise {
                "   <-- unexpected"
            } else if p.op == "connect" && !unix_mediated {
                "   (this kernel does not mediate unix sockets; the plan does not mount it)"
            } else {
                ""
            }
        )?;
    }
    Ok(status(surprises == 0))
}

fn compare_command(
    out: &mut impl Write,
    paths: &[PathBuf],
    json: bool,
    attacks_only: bool,
    flags: &PlanFlags,
) -> Result<ExitCode> {
    let options = flags.options()?;
    let parser = apparmor::Parser::find()?;
    let (plans, mut ok) = plans(paths, &options);
    let mut items = Vec::new();
    for (a, plan) in &plans {
        let theirs_path = a.dir.join("apparmor.txt");
        let theirs = match std::fs::read_to_string(&theirs_path) {
            Ok(t) => t,
            Err(err) => {
                ok = false;
                eprintln!(
                    "error: {}: nothing to compare with: {err}",
                    theirs_path.display()
                );
                continue;
            }
        };
        let ours = match profile::generate(plan).and_then(|p| p.render(false)) {
            Ok(t) => t,
            Err(err) => {
                ok = false;
                eprintln!("error: {}: {err}", a.dir.display());
                continue;
            }
        };
        items.push((plan, ours, theirs));
    }
    let comparisons = apparmor::compare::compare_many(&parser, &items, attacks_only)?;
    for c in &comparisons {
        if json {
            writeln!(out, "{}", serde_json::to_string(c)?)?;
        } else {
            write!(out, "{}", apparmor::compare::render(c))?;
        }
    }
    Ok(status(ok))
}

fn print_invalid(a: &Addon) {
    eprintln!("{}: invalid add-on, no rating or plan", a.dir.display());
    for d in a.errors() {
        eprint!("{d}");
    }
}

fn print_check(out: &mut impl Write, a: &Addon) -> Result<()> {
    let verdict = if a.valid() { "valid" } else { "INVALID" };
    writeln!(
        out,
        "{}: {} ({verdict})",
        a.dir.display(),
        a.slug().unwrap_or("?")
    )?;
    let mut diagnostics: Vec<_> = a.diagnostics.iter().collect();
    diagnostics.sort_by(|x, y| (&x.file, x.line, x.column).cmp(&(&y.file, y.line, y.column)));
    for d in diagnostics {
        write!(out, "{d}")?;
    }
    Ok(())
}

fn print_plan(out: &mut impl Write, a: &Addon, p: &SandboxPlan) -> Result<()> {
    writeln!(out, "{} ({})", p.full_slug, a.dir.display())?;
    writeln!(
        out,
        "  policy {}, protection {}, rating {}/8, image {}",
        p.policy.name(),
        if p.protected { "on" } else { "off" },
        p.rating,
        p.image
    )?;
    writeln!(out, "  granted:")?;
    for g in &p.granted {
        writeln!(out, "    {g}")?;
    }
    if !p.withheld.is_empty() {
        writeln!(out, "  WITHHELD:")?;
        for w in &p.withheld {
            writeln!(
                out,
                "    {}: {} (grant with {})",
                w.right, w.reason, w.grant_with
            )?;
        }
    }
    writeln!(out, "  mounts:")?;
    for m in &p.mounts {
        let mode = if m.read_only { "ro" } else { "rw" };
        let prop = m
            .propagation
            .as_deref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default();
        writeln!(out, "    {} -> {} ({mode}{prop})", m.source, m.target)?;
    }
    writeln!(
        out,
        "  capabilities: drop [{}] add [{}]",
        p.cap_drop.join(", "),
        p.cap_add.join(", ")
    )?;
    writeln!(
        out,
        "  namespaces: network {}, pid {}, uts {}, ipc {}",
        p.network_mode,
        p.pid_mode.as_deref().unwrap_or("private"),
        p.uts_mode.as_deref().unwrap_or("private"),
        p.ipc_mode.as_deref().unwrap_or("docker default")
    )?;
    writeln!(out, "  security options: {}", p.security_opt.join(", "))?;
    if !p.device_cgroup_rules.is_empty() || !p.devices.is_empty() {
        let devices: Vec<&str> = p.devices.iter().map(|d| d.path_on_host.as_str()).collect();
        writeln!(
            out,
            "  devices: [{}] cgroup rules [{}]",
            devices.join(", "),
            p.device_cgroup_rules.join(", ")
        )?;
    }
    for note in &p.notes {
        writeln!(out, "  note: {note}")?;
    }
    Ok(())
}
