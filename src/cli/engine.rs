//! What the running commands share: a runtime for one engine call, the launch error turned
//! into an exit status, and the lookup that sends a native sandbox to the native backend.

use std::process::ExitCode;

use anyhow::Result;

use addon_sandbox::launch::state::{Record, StateDir};
use addon_sandbox::{launch, native};

use super::flags::EngineFlags;

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A started add-on of the state directory, and the backend that runs it.
pub enum Target {
    Native(StateDir, Record),
    Engine(Record),
}

/// The add-on `name` (full slug, or a short one only one add-on has) of the state directory.
pub fn target(engine: &EngineFlags, name: &str) -> Result<Target, launch::LaunchError> {
    let unknown = || launch::state::ResolveError::Unknown(name.to_owned());
    let dir = engine.state_dir().map_err(|_| unknown())?;
    let state = StateDir::existing(&dir).ok_or_else(unknown)?;
    let record = state.resolve(name)?;
    Ok(if native::run::is_native(&record) {
        Target::Native(state, record)
    } else {
        Target::Engine(record)
    })
}

/// What a command waits for, told as it begins to wait.
pub fn note(what: &str) {
    eprintln!("{what}");
}

/// A launch error is printed and becomes the exit status.
pub fn launch_result(result: Result<(), launch::LaunchError>) -> Result<ExitCode> {
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    })
}

/// Run one engine call on a runtime of its own.
pub fn with_engine<T, F, Fut>(engine: &EngineFlags, f: F) -> Result<Result<T, launch::LaunchError>>
where
    F: FnOnce(launch::Launcher) -> Fut,
    Fut: std::future::Future<Output = Result<T, launch::LaunchError>>,
{
    Ok(runtime()?.block_on(async {
        let launcher = engine.launcher().await?;
        f(launcher).await
    }))
}

/// Run one engine command; a launch error is printed and becomes its exit status.
pub fn engine_command<F, Fut>(engine: &EngineFlags, f: F) -> Result<ExitCode>
where
    F: FnOnce(launch::Launcher) -> Fut,
    Fut: std::future::Future<Output = Result<(), launch::LaunchError>>,
{
    launch_result(with_engine(engine, f)?)
}

/// `engine_command` for listings that also cover native sandboxes: without a reachable engine,
/// `f` gets `None` when there are native sandboxes to show (and a warning is printed).
pub fn engine_command_or_native<F, Fut>(engine: &EngineFlags, f: F) -> Result<ExitCode>
where
    F: FnOnce(Option<launch::Launcher>) -> Fut,
    Fut: std::future::Future<Output = Result<(), launch::LaunchError>>,
{
    let has_native = engine
        .state_dir()
        .ok()
        .and_then(|d| StateDir::existing(&d))
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
    launch_result(result)
}
