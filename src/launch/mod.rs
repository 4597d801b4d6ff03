//! The launcher (DESIGN §6): a plan and its profile become a running container through the
//! Docker API, or nothing is left behind. Order: AppArmor available? → lock → image present?
//! → data folders → profile written and loaded → token → create → start → attest → record.
//! Any failure, timeout or interrupt after the first change undoes every change of this launch.
//!
//! The launch itself is in `run` (with the post-start checks in `attest`), the host-side
//! preparation it shares with the native backend in `prepare`, and `stop`, `rm`, `ps` and
//! `logs` in `manage`.

mod attest;
pub mod body;
pub mod checked_path;
pub mod connect;
pub mod devices;
mod error;
pub mod host;
mod manage;
pub mod network;
mod prepare;
mod run;
pub mod state;
mod trust;

pub use error::LaunchError;
pub use prepare::{
    CheckedSource, CheckedSources, DEFAULT_AUDIO_SERVER, audio_server_address, check_sources,
    new_token, present_on_host, profile_text, rename_addon_profile, write_host_files,
    write_options,
};

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use serde::Serialize;

pub use trust::TrustSettings;

use host::AppArmorSupport;
use state::StateDir;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Replaces the plan's image.
    pub image: Option<String>,
    pub command: Option<Vec<String>>,
    /// Run without AppArmor when the host cannot enforce the plan's profile.
    pub allow_unconfined: bool,
    /// The data root of the plan (folders under it are created for the mounts).
    pub data_root: PathBuf,
    /// The add-on's own `apparmor.txt`, for plans confined by it (supervisor policy).
    pub addon_profile: Option<String>,
    /// `TZ` for the container (default UTC).
    pub timezone: Option<String>,
    /// The validated options, written to `options.json` in the data folder before the
    /// container is created (`None`: no file, for callers that validate nothing).
    pub options: Option<serde_json::Value>,
    /// The pulse client's `default-server` for audio add-ons (default
    /// [`DEFAULT_AUDIO_SERVER`]).
    pub audio_server: Option<String>,
    /// The add-on's own facts for a standalone gateway (kept in its record).
    pub info: Option<state::AddonInfo>,
    /// Learn mode: the complain-mode profile to load under the plan's profile name instead of
    /// the plan's own (see [`crate::profile::Profile::render_learning`]; learn renders it from
    /// the config's plan while the container runs the widened learning plan), and complain,
    /// not enforce, attested. Refused without AppArmor: learning unconfined records nothing.
    pub learning: Option<String>,
    /// Verify the image against the trust policy from the trust cache (`None`: not checked).
    pub trust: Option<TrustSettings>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub full_slug: String,
    pub container_name: String,
    pub container_id: String,
    pub image: String,
    pub confinement: String,
    pub granted: Vec<String>,
    pub withheld: Vec<crate::plan::Withheld>,
    pub warnings: Vec<String>,
    /// `/ingress/<token>/` on the gateway (`serve`) reaches the add-on's ingress port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_token: Option<String>,
    /// The image trust verdict (none when the image was not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<crate::trust::Verdict>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PsEntry {
    pub full_slug: String,
    pub container_name: String,
    pub state: String,
    pub status: String,
    pub image: String,
    pub confinement: String,
    /// With `ps --all`: the state directory that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
}

/// What one launch has changed so far, to undo on failure.
#[derive(Default)]
struct Created {
    /// The add-on's lock, released (and its file removed if nothing is left) last.
    lock: Option<state::AddonLock>,
    /// The create call was sent: even without its answer (timeout, interrupt) the engine may
    /// have made the container.
    create_sent: bool,
    container: Option<String>,
    profile_loaded: Option<PathBuf>,
    /// A parser still loading the profile: its pid and the task that waits for it.
    loading: Option<(u32, tokio::task::JoinHandle<Result<(), host::LoadError>>)>,
    token_for: Option<String>,
}

pub struct Launcher {
    docker: Docker,
    endpoint: connect::Endpoint,
    state: StateDir,
    timeout: Duration,
    security_options: Vec<String>,
}

fn docker_err(what: &'static str, e: bollard::errors::Error) -> LaunchError {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError { message, .. } => LaunchError::Docker { what, msg: message },
        E::HyperResponseError { .. } | E::IOError { .. } | E::SocketNotFoundError(_) => {
            LaunchError::Engine(e.to_string())
        }
        other => LaunchError::Docker {
            what,
            msg: other.to_string(),
        },
    }
}

fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

impl Launcher {
    /// API 1.44 (Docker 25) added recursive read-only binds.
    fn recursive_read_only(&self) -> bool {
        let v = self.docker.client_version();
        (v.major_version, v.minor_version) >= (1, 44)
    }

    /// Whether the engine knows capability `name` (`BPF`, `NET_ADMIN`): engines before API
    /// 1.42 (Docker 23) refuse a container that adds BPF, PERFMON or CHECKPOINT_RESTORE
    /// (`invalid CapAdd: unknown capability`).
    pub fn knows_capability(&self, name: &str) -> bool {
        const SINCE_1_42: [&str; 3] = ["BPF", "PERFMON", "CHECKPOINT_RESTORE"];
        let v = self.docker.client_version();
        (v.major_version, v.minor_version) >= (1, 42) || !SINCE_1_42.contains(&name)
    }

    /// Connect to the engine `DOCKER_HOST` or the docker CLI's context selects (else the local
    /// socket), negotiating the API version: Debian's engine speaks 1.41, older than bollard's
    /// default.
    pub async fn connect(state_dir: &Path, timeout: Duration) -> Result<Launcher, LaunchError> {
        let endpoint = connect::endpoint_from_env()?;
        let secs = timeout.as_secs();
        let unreachable =
            |e: bollard::errors::Error| LaunchError::Engine(connect::describe(&endpoint, &e));
        let docker = connect::client(&endpoint).map_err(unreachable)?;
        let docker = tokio::time::timeout(timeout, docker.negotiate_version())
            .await
            .map_err(|_| LaunchError::Timeout {
                what: "the version negotiation",
                secs,
            })?
            .map_err(unreachable)?;
        let info = tokio::time::timeout(timeout, docker.info())
            .await
            .map_err(|_| LaunchError::Timeout { what: "info", secs })?
            .map_err(unreachable)?;
        Ok(Launcher {
            docker,
            endpoint,
            state: StateDir::open(state_dir)?,
            timeout,
            security_options: info.security_options.unwrap_or_default(),
        })
    }

    /// The engine this launcher talks to.
    pub fn endpoint(&self) -> &connect::Endpoint {
        &self.endpoint
    }

    pub fn state(&self) -> &StateDir {
        &self.state
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn apparmor_support(&self) -> AppArmorSupport {
        host::apparmor_support(&self.security_options)
    }

    async fn call<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<Result<T, bollard::errors::Error>, LaunchError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| LaunchError::Timeout {
                what,
                secs: self.timeout.as_secs(),
            })
    }
}
