//! Flags shared by several commands (the plan's choices, the engine and state directory) and
//! the default folders they fall back to.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use addon_sandbox::launch;
use addon_sandbox::plan::PolicyMode;
use addon_sandbox::policy::{self, PlanOptions, Right};

#[derive(Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    Strict,
    Supervisor,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Args, Clone)]
pub struct PlanFlags {
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
    /// The host architecture the add-on must list in `arch` (aarch64, amd64, armhf, armv7,
    /// i386) [default: this machine's].
    #[arg(long, value_name = "ARCH", value_parser = ["aarch64", "amd64", "armhf", "armv7", "i386"])]
    arch: Option<String>,
}

/// `--data-root`, for the commands whose output names host folders (`plan`, `run`); the
/// profile and what is judged in a kernel do not depend on it, so those commands refuse it.
#[derive(Args, Clone)]
pub struct DataRootFlag {
    /// Where add-on data lives on the host [default: /var/lib/addon-sandbox as root,
    /// $XDG_DATA_HOME/addon-sandbox (~/.local/share/addon-sandbox) otherwise].
    #[arg(long, value_name = "DIR")]
    data_root: Option<PathBuf>,
}

impl DataRootFlag {
    pub fn get(&self) -> Option<&Path> {
        self.data_root.as_deref()
    }

    /// The flag as if given `dir`.
    pub fn of(dir: &Path) -> DataRootFlag {
        DataRootFlag {
            data_root: Some(dir.to_path_buf()),
        }
    }
}

impl PlanFlags {
    /// The flags as given, for the same command run elsewhere (learn in the VM).
    pub fn to_args(&self) -> Vec<String> {
        let name = |v: Option<clap::builder::PossibleValue>| {
            v.map(|v| v.get_name().to_owned()).unwrap_or_default()
        };
        let mut out = vec![
            "--policy".to_owned(),
            name(self.policy.to_possible_value()),
            "--protection".to_owned(),
            name(self.protection.to_possible_value()),
            "--repository".to_owned(),
            self.repository.clone(),
        ];
        for g in &self.grants {
            out.extend(["--grant".to_owned(), g.clone()]);
        }
        if let Some(arch) = &self.arch {
            out.extend(["--arch".to_owned(), arch.clone()]);
        }
        out
    }

    /// The plan's options; `data_root` None is the default data root.
    pub fn options(&self, data_root: Option<&Path>) -> Result<PlanOptions> {
        let grants: BTreeSet<Right> = self
            .grants
            .iter()
            .map(|g| Right::parse(g))
            .collect::<Result<_, _>>()?;
        let data_root = match data_root {
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
                arch: Some(self.arch.clone().unwrap_or_else(|| host_arch().to_owned())),
                devices: launch::devices::host_facts(),
                ..policy::HostFacts::default()
            },
        })
    }
}

#[derive(Args, Clone)]
pub struct EngineFlags {
    /// Tokens, records and loaded profiles [default: /var/lib/addon-sandbox/state as root,
    /// $XDG_STATE_HOME/addon-sandbox (~/.local/state/addon-sandbox) otherwise].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Seconds to wait for any one answer of the Docker engine.
    #[arg(long, value_name = "SECONDS", default_value = "30")]
    timeout: u64,
}

impl EngineFlags {
    pub fn timeout_secs(&self) -> u64 {
        self.timeout.max(1)
    }

    pub fn state_dir(&self) -> Result<PathBuf> {
        state_dir_or_default(self.state_dir.as_deref())
    }

    pub async fn launcher(&self) -> Result<launch::Launcher, launch::LaunchError> {
        let dir = self
            .state_dir()
            .map_err(|e| launch::LaunchError::State(std::io::Error::other(e.to_string())))?;
        launch::Launcher::connect(&dir, std::time::Duration::from_secs(self.timeout.max(1))).await
    }
}

/// The state directory given, made absolute, or the default one.
pub fn state_dir_or_default(dir: Option<&Path>) -> Result<PathBuf> {
    match dir {
        Some(d) => absolute(d),
        None => Ok(default_state_dir()),
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

fn default_data_root() -> PathBuf {
    default_dir("/var/lib/addon-sandbox", "XDG_DATA_HOME", ".local/share")
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

/// `--trust-policy`, for the commands that verify images (`run`, `plan`, `trust verify`).
#[derive(Args, Clone, Default)]
pub struct TrustFlags {
    /// The image trust policy (YAML) [default: trust-policy.yaml in the config directory,
    /// /etc/addon-sandbox as root, $XDG_CONFIG_HOME/addon-sandbox (~/.config/addon-sandbox)
    /// otherwise; without that file every image is checked and a failure only warns].
    #[arg(long, value_name = "FILE")]
    trust_policy: Option<PathBuf>,
}

impl TrustFlags {
    /// The policy and the trusted root it names (the shipped one otherwise); `Err` after the
    /// policy's diagnostics were printed.
    pub fn settings(&self, arch: Option<&str>) -> Result<launch::TrustSettings> {
        let default = default_dir("/etc/addon-sandbox", "XDG_CONFIG_HOME", ".config")
            .join("trust-policy.yaml");
        let policy = match &self.trust_policy {
            Some(file) => Some(absolute(file)?),
            None => default.is_file().then_some(default),
        };
        let policy = match policy {
            Some(file) => addon_sandbox::trust::TrustPolicy::load(&file).map_err(|diags| {
                for d in &diags {
                    eprint!("{d}");
                }
                anyhow::anyhow!(
                    "the trust policy {} is invalid ({} problem{})",
                    file.display(),
                    diags.len(),
                    if diags.len() == 1 { "" } else { "s" }
                )
            })?,
            None => addon_sandbox::trust::TrustPolicy::default(),
        };
        let root = addon_sandbox::trust::trusted_root(policy.trusted_root.as_deref())?;
        Ok(launch::TrustSettings {
            policy,
            arch: arch.unwrap_or(host_arch()).to_owned(),
            root: Some(root),
        })
    }
}

/// The Supervisor's name of this machine's architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        "arm" => "armv7",
        "x86" => "i386",
        _ => "amd64",
    }
}

pub fn absolute(dir: &Path) -> Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current folder")?
        .join(dir))
}

/// `lint --format`.
#[derive(Clone, Copy, ValueEnum)]
pub enum LintFormat {
    Human,
    Json,
    Sarif,
    Github,
}

/// `lint --fail-on`: the least serious finding that makes the exit status 1.
#[derive(Clone, Copy, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Note,
}

impl FailOn {
    pub fn level(self) -> addon_sandbox::lint::Level {
        use addon_sandbox::lint::Level;
        match self {
            FailOn::Error => Level::Error,
            FailOn::Warning => Level::Warning,
            FailOn::Note => Level::Note,
        }
    }
}
