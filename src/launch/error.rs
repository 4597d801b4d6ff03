//! What can stop a launch, and the exit status each gives the command line.

use crate::profile::ProfileError;

use super::host::LoadError;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Options(#[from] crate::options::OptionsError),
    #[error(
        "the plan confines the add-on with the AppArmor profile '{profile}', but this host cannot enforce it: {why}. Refusing to start it unconfined (nothing was created); pass --allow-unconfined to run it without AppArmor anyway"
    )]
    AppArmorUnavailable { profile: String, why: String },
    #[error("cannot reach the Docker engine: {0}")]
    Engine(String),
    #[error("choosing the Docker engine: {0}")]
    EngineHost(#[from] super::connect::EndpointError),
    #[error("the Docker engine did not answer {what} within {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    #[error(
        "image '{0}' is not on this host (no registry is asked): build or load it first, or pass --image"
    )]
    ImageMissing(String),
    #[error(
        "a container named '{0}' exists and was not started by addon-sandbox: remove or rename it"
    )]
    NameConflict(String),
    #[error(
        "the container '{name}' was started with the state directory {state}: rm it there first (addon-sandbox rm --state-dir {state})"
    )]
    OtherState { name: String, state: String },
    #[error("docker {what} failed: {msg}")]
    Docker { what: &'static str, msg: String },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("loading the AppArmor profile: {0}")]
    Load(#[from] LoadError),
    #[error("the container started but is not confined as planned ({0}); it was removed")]
    Attestation(String),
    #[error("mount source {0}")]
    UnsafePath(#[from] super::checked_path::CheckedPathError),
    #[error("state directory: {0}")]
    State(#[from] std::io::Error),
    #[error("interrupted: everything this launch had created was removed")]
    Interrupted,
    #[error(transparent)]
    Resolve(#[from] super::state::ResolveError),
    #[error(
        "{0}: refusing to start the sandbox unconfined (nothing was created); pass --confinement none to run it anyway"
    )]
    NativeRefused(String),
    #[error("network: {0}")]
    Network(String),
    #[error("native sandbox: {0}")]
    Native(String),
    #[error(
        "the add-on's apparmor.txt must hold the one profile '{expected}' (and its children), but the parser reads {}: loading it would replace the others in the kernel; refusing (nothing was created)",
        names.join(", ")
    )]
    ForeignProfiles {
        expected: String,
        names: Vec<String>,
    },
    #[error("apparmor_parser: {0}")]
    Parser(#[from] crate::apparmor::parser::ParserError),
    #[error("the plan confines the add-on with its own apparmor.txt, which is missing")]
    AddonProfileMissing,
    #[error(
        "learn mode reads what the generated profile would refuse: it needs the strict policy's generated profile, not the add-on's own apparmor.txt"
    )]
    LearningNeedsGenerated,
    #[error(
        "learn mode needs the add-on confined by its profile in complain mode, and this run would be {0}: nothing was started"
    )]
    LearningNeedsAppArmor(&'static str),
    #[error(transparent)]
    Device(#[from] super::devices::DeviceError),
    #[error("image trust: {0}. Refusing to start it (nothing was created)")]
    Untrusted(String),
    #[error(
        "audio server address {0:?} is not usable: give a socket path, unix:PATH or tcp:HOST:PORT on one line"
    )]
    BadAudioServer(String),
}

impl LaunchError {
    /// Exit status of the command line: 3 refused because the sandbox cannot be delivered,
    /// 4 engine unreachable or too slow, 130 interrupted, 1 any other failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            LaunchError::AppArmorUnavailable { .. }
            | LaunchError::NativeRefused(_)
            | LaunchError::LearningNeedsAppArmor(_)
            | LaunchError::Untrusted(_)
            | LaunchError::Device(super::devices::DeviceError::Withheld { .. }) => 3,
            LaunchError::Engine(_) | LaunchError::EngineHost(_) | LaunchError::Timeout { .. } => 4,
            LaunchError::Interrupted => 130,
            _ => 1,
        }
    }
}
