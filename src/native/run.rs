//! `run --backend native`, and `ps`, `stop`, `rm`, `logs` for native sandboxes: the same state
//! directory as the Docker backend (token, record, lock, profiles); the record's container id
//! is `native:<pid>:<start time>`.

use std::path::PathBuf;
use std::time::Duration;

use super::{Confinement, ConfinementChoice, NativeError};
use crate::launch::state::{Record, StateDir};
use crate::launch::{LaunchError, PsEntry, RunReport, host, new_token, profile_text};
use crate::plan::{self, SandboxPlan};

pub struct NativeOptions {
    pub rootfs: PathBuf,
    pub command: Vec<String>,
    pub confinement: ConfinementChoice,
    pub data_root: PathBuf,
    pub addon_profile: Option<String>,
    pub timezone: Option<String>,
    /// The validated options for `options.json` (see `launch::RunOptions::options`).
    pub options: Option<serde_json::Value>,
    /// The pulse client's `default-server` for audio add-ons.
    pub audio_server: Option<String>,
}

impl From<NativeError> for LaunchError {
    fn from(e: NativeError) -> LaunchError {
        match e {
            NativeError::CannotConfine(why) => LaunchError::NativeRefused(why),
            other => LaunchError::Native(other.to_string()),
        }
    }
}

pub fn is_native(record: &Record) -> bool {
    record.container_id.starts_with("native:")
}

fn log_path(state: &StateDir, slug: &str) -> PathBuf {
    state.token_path(slug).with_file_name("native.log")
}

/// Whether the kernel enforces AppArmor (the engine plays no part here).
fn apparmor_enforced() -> bool {
    let file = host::apparmor_enabled_file();
    let enabled = std::fs::read_to_string(&file).ok();
    matches!(
        host::decide_apparmor_support(&file, enabled.as_deref(), true, &[]),
        host::AppArmorSupport::Enforced
    )
}

pub fn run(
    state: &StateDir,
    plan: &SandboxPlan,
    opts: &NativeOptions,
) -> Result<RunReport, LaunchError> {
    crate::launch::devices::check(plan, std::path::Path::new("/dev"))?;
    let mut host_warnings = Vec::new();
    let plan = &crate::launch::present_on_host(plan, &mut host_warnings);
    let confinement = choose_confinement(plan, opts)?;
    let lock = state.lock(&plan.full_slug)?;
    let result = run_locked(state, plan, opts, confinement, host_warnings);
    // A failed start leaves no lock file or empty folder behind (as the Docker launch).
    state.release(lock);
    result
}

/// The start itself, under the add-on's lock.
fn run_locked(
    state: &StateDir,
    plan: &SandboxPlan,
    opts: &NativeOptions,
    confinement: Confinement,
    host_warnings: Vec<String>,
) -> Result<RunReport, LaunchError> {
    let slug = plan.full_slug.clone();
    replace_previous(state, &slug)?;
    // The files written before create (pulse client, asound), then every source checked:
    // a source that is or passes through a link is refused; the setup walks each again the
    // same way and binds the descriptor it gets (MountSpec::checked_from).
    crate::launch::write_host_files(plan, &opts.data_root, opts.audio_server.as_deref())?;
    let sources = crate::launch::check_sources(plan, &opts.data_root)?;
    crate::launch::write_options(plan, &sources, opts.options.as_ref())?;
    let loaded = write_and_load_profile(state, plan, opts, &confinement, &slug)?;
    let token = new_token()?;
    state.write_token(&slug, &token)?;
    let spec = super::spec(
        plan,
        &opts.rootfs,
        opts.command.clone(),
        &token,
        opts.timezone.as_deref().unwrap_or("UTC"),
        confinement.clone(),
        log_path(state, &slug),
    );
    let spec = spec.map(|mut s| {
        s.bind_checked(&sources);
        s
    });
    let pid = match spec.and_then(|s| super::start(&s)) {
        Ok(pid) => pid,
        Err(e) => {
            undo(state, &slug, &loaded);
            return Err(e.into());
        }
    };
    let id = super::record_id(pid);
    let record = Record::for_plan(
        plan,
        id.clone(),
        format!("rootfs:{}", opts.rootfs.display()),
        confinement.label(),
    );
    if let Err(e) = state.write_record(&record) {
        // Best effort: the write error is the one to report.
        let _ = super::stop(&id, Duration::from_secs(1));
        undo(state, &slug, &loaded);
        return Err(e.into());
    }
    Ok(RunReport {
        full_slug: slug,
        container_name: plan.container_name.clone(),
        container_id: id,
        image: record.image,
        confinement: record.confinement,
        granted: plan.granted.clone(),
        withheld: plan.withheld.clone(),
        warnings: host_warnings
            .into_iter()
            .chain(warnings(plan, &confinement))
            .collect(),
        ingress_token: None,
        // A native sandbox runs a root filesystem directory, not an image: nothing to verify.
        trust: None,
    })
}

/// The confinement the operator's choice and this kernel give the plan, or the refusal.
fn choose_confinement(
    plan: &SandboxPlan,
    opts: &NativeOptions,
) -> Result<Confinement, LaunchError> {
    let profile_name = match plan.confinement {
        plan::Confinement::Generated | plan::Confinement::AddonProfile => {
            plan.apparmor_profile.clone()
        }
        _ => None,
    };
    Ok(super::choose(
        opts.confinement,
        profile_name.as_deref(),
        apparmor_enforced(),
        super::landlock_abi(),
    )?)
}

/// A second run replaces the first.
fn replace_previous(state: &StateDir, slug: &str) -> Result<(), LaunchError> {
    if let Some(old) = state.read_record(slug) {
        if is_native(&old) {
            stopped(super::stop(&old.container_id, Duration::from_secs(5)))?;
        } else {
            return Err(LaunchError::Native(format!(
                "{slug} runs in Docker ({}): rm it first",
                old.container_name
            )));
        }
    }
    Ok(())
}

/// With AppArmor, the profile written and loaded (undone if the load fails); the file it was
/// written to, for undo.
fn write_and_load_profile(
    state: &StateDir,
    plan: &SandboxPlan,
    opts: &NativeOptions,
    confinement: &Confinement,
    slug: &str,
) -> Result<Option<PathBuf>, LaunchError> {
    let mut loaded: Option<PathBuf> = None;
    if let Confinement::Apparmor(name) = confinement {
        let text = profile_text(plan, name, opts.addon_profile.as_deref(), None)?;
        let file = state.profile_path(name);
        crate::launch::state::write_atomically(&file, text.as_bytes(), 0o644)?;
        loaded = Some(file.clone());
        if let Err(e) = host::load_profile(&file, &state.parser_cache()) {
            undo(state, slug, &loaded);
            return Err(e.into());
        }
    }
    Ok(loaded)
}

/// Unload and remove the profile this run loaded, and forget the add-on's token and record.
fn undo(state: &StateDir, slug: &str, loaded: &Option<PathBuf>) {
    if let Some(file) = loaded {
        let _ = host::unload_profile(file);
        let _ = std::fs::remove_file(file);
    }
    state.forget(slug);
}

fn warnings(plan: &SandboxPlan, confinement: &Confinement) -> Vec<String> {
    let mut warnings = Vec::new();
    if *confinement == Confinement::None {
        warnings.push("running UNCONFINED: --confinement none was given".to_owned());
    }
    if plan.ingress_port.is_some() {
        warnings.push(
            "ingress is not offered for native sandboxes (they have no network of their own)"
                .to_owned(),
        );
    }
    warnings
}

pub fn ps_entry(record: &Record) -> PsEntry {
    let running = super::live_pid(&record.container_id).is_some();
    PsEntry {
        full_slug: record.full_slug.clone(),
        container_name: record.container_name.clone(),
        state: if running { "running" } else { "exited" }.into(),
        status: format!(
            "native {}",
            record.container_id.trim_start_matches("native:")
        ),
        image: record.image.clone(),
        confinement: record.confinement.clone(),
        state_dir: None,
    }
}

/// Stop it and revoke its token (a stopped add-on's token opens nothing).
pub fn stop(state: &StateDir, record: &Record) -> Result<(), LaunchError> {
    let _lock = state.lock(&record.full_slug)?;
    stopped(super::stop(&record.container_id, Duration::from_secs(10)))?;
    Ok(state.revoke_token(&record.full_slug)?)
}

/// A process that outlived SIGKILL is an error: the record stays, so `rm` can be tried again.
fn stopped(outcome: super::Stopped) -> Result<(), LaunchError> {
    match outcome {
        super::Stopped::NotRunning | super::Stopped::Ended => Ok(()),
        super::Stopped::StillRunning(pid) => Err(LaunchError::Native(format!(
            "process {pid} still runs after SIGKILL (stuck in the kernel?); its record is kept"
        ))),
    }
}

/// Kill it (as `docker rm -f` does), unload its profile, forget its token and record; its
/// data and log stay.
pub fn rm(state: &StateDir, record: &Record) -> Result<(), LaunchError> {
    let lock = state.lock(&record.full_slug)?;
    stopped(super::stop(&record.container_id, Duration::ZERO))?;
    if let Some(name) = record.confinement.strip_prefix("apparmor:") {
        let file = state.profile_path(name);
        if file.exists() {
            host::unload_profile(&file)?;
            std::fs::remove_file(&file)?;
        }
    }
    state.forget(&record.full_slug);
    state.release(lock);
    Ok(())
}

pub fn logs(state: &StateDir, record: &Record) -> Result<String, LaunchError> {
    Ok(std::fs::read_to_string(log_path(state, &record.full_slug)).unwrap_or_default())
}
