//! What the host can enforce, and loading profiles into its kernel.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apparmor::parser::parser_program;

/// Whether this host enforces AppArmor profiles for containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppArmorSupport {
    Enforced,
    /// Not available, and why (shown to the operator).
    Unavailable(String),
}

/// Where the kernel says whether AppArmor is on. `ADDON_SANDBOX_APPARMOR_ENABLED` replaces the
/// path (tests use it to drive the load path on a host without AppArmor).
pub fn apparmor_enabled_file() -> PathBuf {
    std::env::var_os("ADDON_SANDBOX_APPARMOR_ENABLED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sys/module/apparmor/parameters/enabled"))
}

/// AppArmor is enforced when the kernel has it on and the engine reports it among its security
/// options (an engine in a container or rootless may not apply profiles even then).
pub fn apparmor_support(engine_security_options: &[String]) -> AppArmorSupport {
    let file = apparmor_enabled_file();
    let enabled = std::fs::read_to_string(&file).ok();
    // Tests that drive the load path on a host without AppArmor point the kernel file
    // elsewhere and set this too; the attestation after start still fails closed there.
    let engine_checked = std::env::var_os("ADDON_SANDBOX_TEST_ENGINE_APPARMOR").is_some();
    decide_apparmor_support(
        &file,
        enabled.as_deref(),
        engine_checked,
        engine_security_options,
    )
}

/// The decision itself, from what the kernel file says (None: missing) and the engine's
/// security options.
pub fn decide_apparmor_support(
    file: &Path,
    kernel_enabled: Option<&str>,
    engine_checked: bool,
    engine_security_options: &[String],
) -> AppArmorSupport {
    match kernel_enabled {
        Some(s) if s.trim() == "Y" => {}
        Some(s) => {
            return AppArmorSupport::Unavailable(format!(
                "the kernel has AppArmor disabled ({} says {:?})",
                file.display(),
                s.trim()
            ));
        }
        None => {
            return AppArmorSupport::Unavailable(format!(
                "the kernel has no AppArmor ({} is missing)",
                file.display()
            ));
        }
    }
    if engine_checked
        || engine_security_options
            .iter()
            .any(|o| o.split(',').any(|kv| kv == "name=apparmor"))
    {
        AppArmorSupport::Enforced
    } else {
        AppArmorSupport::Unavailable(
            "the Docker engine does not report AppArmor among its security options".into(),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("apparmor_parser not found; install the apparmor package")]
    NoParser,
    #[error("running apparmor_parser: {0}")]
    Spawn(std::io::Error),
    #[error("apparmor_parser {action} failed: {stderr}")]
    Failed {
        action: &'static str,
        stderr: String,
    },
}

fn parser() -> Result<PathBuf, LoadError> {
    parser_program().ok_or(LoadError::NoParser)
}

fn run(action: &'static str, args: &[&std::ffi::OsStr]) -> Result<(), LoadError> {
    finish(action, spawn(args)?)
}

/// The parser started in a process group of its own, so that it can be ended with everything
/// it started (see [`kill_parser`]).
fn spawn(args: &[&std::ffi::OsStr]) -> Result<std::process::Child, LoadError> {
    use std::os::unix::process::CommandExt;
    Command::new(parser()?)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(LoadError::Spawn)
}

fn finish(action: &'static str, child: std::process::Child) -> Result<(), LoadError> {
    let out = child.wait_with_output().map_err(LoadError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LoadError::Failed {
            action,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `apparmor_parser --replace` of `file` started: wait for it with [`finish_load`], or end it
/// with [`kill_parser`] first. Until it is waited for, its pid (and process group) stay its own.
pub fn spawn_load(file: &Path, cache: &Path) -> Result<std::process::Child, LoadError> {
    spawn(&[
        "--replace".as_ref(),
        "--write-cache".as_ref(),
        "--cache-loc".as_ref(),
        cache.as_os_str(),
        file.as_os_str(),
    ])
}

pub fn finish_load(child: std::process::Child) -> Result<(), LoadError> {
    finish("--replace", child)
}

/// End a parser started by [`spawn_load`] that has not been waited for, with its children.
pub fn kill_parser(pid: u32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Load (or replace) a profile in the kernel, with the Supervisor's cache options.
pub fn load_profile(file: &Path, cache: &Path) -> Result<(), LoadError> {
    finish_load(spawn_load(file, cache)?)
}

/// Unload a profile from the kernel.
pub fn unload_profile(file: &Path) -> Result<(), LoadError> {
    run("--remove", &["--remove".as_ref(), file.as_os_str()])
}

/// The confinement of a running process as the kernel reports it.
pub fn process_label(pid: i64) -> Option<String> {
    for path in [
        format!("/proc/{pid}/attr/apparmor/current"),
        format!("/proc/{pid}/attr/current"),
    ] {
        if let Ok(s) = std::fs::read_to_string(&path) {
            return Some(s.trim_end_matches(['\n', '\0']).to_owned());
        }
    }
    None
}

/// Whether a bind mount from `path` may ask for slave propagation: the mount holding it must be
/// shared or a slave itself (Docker refuses `rslave` from a private mount). On hosts where it is
/// private (many test machines), the launcher binds without propagation: host mounts made later
/// then do not appear inside, which withholds access rather than adding it.
pub fn propagation_possible(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut best: Option<(usize, bool)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mount_point) = fields.get(4) else {
            continue;
        };
        let mount_point = mount_point.replace("\\040", " ");
        if !path.starts_with(&mount_point) {
            continue;
        }
        let optional = fields[6..].iter().take_while(|f| **f != "-");
        let propagates = optional
            .clone()
            .any(|f| f.starts_with("shared:") || f.starts_with("master:"));
        if best.is_none_or(|(len, _)| mount_point.len() >= len) {
            best = Some((mount_point.len(), propagates));
        }
    }
    best.is_some_and(|(_, p)| p)
}
