//! The launcher (DESIGN §6): a plan and its profile become a running container through the
//! Docker API, or nothing is left behind. Order: AppArmor available? → lock → image present?
//! → data folders → profile written and loaded → token → create → start → attest → record.
//! Any failure, timeout or interrupt after the first change undoes every change of this launch.

pub mod body;
pub mod host;
pub mod state;

use std::future::Future;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Serialize;

use crate::plan::{Confinement, MountKind, SandboxPlan};
use crate::profile::{self, ProfileError};
use body::{AppArmorMode, LABEL_CONFINEMENT, LABEL_SLUG, StartSpec};
use host::{AppArmorSupport, LoadError};
use state::{Record, StateDir};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "the plan confines the add-on with the AppArmor profile '{profile}', but this host cannot enforce it: {why}. Refusing to start it unconfined (nothing was created); pass --allow-unconfined to run it without AppArmor anyway"
    )]
    AppArmorUnavailable { profile: String, why: String },
    #[error("cannot reach the Docker engine: {0}")]
    Engine(String),
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
    #[error("docker {what} failed: {msg}")]
    Docker { what: &'static str, msg: String },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("loading the AppArmor profile: {0}")]
    Load(#[from] LoadError),
    #[error("the container started but is not confined as planned ({0}); it was removed")]
    Attestation(String),
    #[error("state directory: {0}")]
    State(#[from] std::io::Error),
    #[error("interrupted: everything this launch had created was removed")]
    Interrupted,
    #[error("no add-on '{0}' was started by addon-sandbox (see addon-sandbox ps)")]
    Unknown(String),
    #[error(
        "{0}: refusing to start the sandbox unconfined (nothing was created); pass --confinement none to run it anyway"
    )]
    NativeRefused(String),
    #[error("native sandbox: {0}")]
    Native(String),
    #[error("the plan confines the add-on with its own apparmor.txt, which is missing")]
    AddonProfileMissing,
}

impl LaunchError {
    /// Exit status of the command line: 3 refused because the sandbox cannot be delivered,
    /// 4 engine unreachable or too slow, 130 interrupted, 1 any other failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            LaunchError::AppArmorUnavailable { .. } | LaunchError::NativeRefused(_) => 3,
            LaunchError::Engine(_) | LaunchError::Timeout { .. } => 4,
            LaunchError::Interrupted => 130,
            _ => 1,
        }
    }
}

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
}

#[derive(Clone, Debug, Serialize)]
pub struct PsEntry {
    pub full_slug: String,
    pub container_name: String,
    pub state: String,
    pub status: String,
    pub image: String,
    pub confinement: String,
}

/// What one launch has changed so far, to undo on failure.
#[derive(Default)]
struct Created {
    container: Option<String>,
    profile_loaded: Option<PathBuf>,
    token_for: Option<String>,
}

pub struct Launcher {
    docker: Docker,
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

/// The text of the profile `name` that confines `plan`: the add-on's own `apparmor.txt`
/// renamed, or the generated one.
pub fn profile_text(
    plan: &SandboxPlan,
    name: &str,
    addon_profile: Option<&str>,
) -> Result<String, LaunchError> {
    match plan.confinement {
        Confinement::AddonProfile => addon_profile
            .map(|text| rename_addon_profile(text, name))
            .ok_or(LaunchError::AddonProfileMissing),
        _ => Ok(profile::generate(plan)?.render(false)?),
    }
}

/// The plan's data folders under the data root, created owner-only (the add-on runs as root
/// inside); folders elsewhere (host paths the plan binds) are never created.
pub fn create_data_folders(plan: &SandboxPlan, data_root: &Path) -> std::io::Result<()> {
    for m in &plan.mounts {
        let source = Path::new(&m.source);
        if m.kind == MountKind::Directory && source.starts_with(data_root) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(source)?;
        }
    }
    Ok(())
}

/// 32 random bytes, hex: the add-on's token for one start.
pub fn new_token() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The author's profile with its name replaced by ours, as the Supervisor installs it.
pub fn rename_addon_profile(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len() + name.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done && line.starts_with("profile ") {
            let rest = &line["profile ".len()..];
            let after = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            out.push_str("profile ");
            out.push_str(name);
            out.push_str(&rest[after..]);
            done = true;
        } else {
            out.push_str(line);
        }
    }
    out
}

impl Launcher {
    /// Connect to the engine (`DOCKER_HOST` or the local socket), negotiating the API version:
    /// Debian's engine speaks 1.41, older than bollard's default.
    pub async fn connect(state_dir: &Path, timeout: Duration) -> Result<Launcher, LaunchError> {
        let secs = timeout.as_secs();
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| LaunchError::Engine(e.to_string()))?;
        let docker = tokio::time::timeout(timeout, docker.negotiate_version())
            .await
            .map_err(|_| LaunchError::Timeout {
                what: "the version negotiation",
                secs,
            })?
            .map_err(|e| LaunchError::Engine(e.to_string()))?;
        let info = tokio::time::timeout(timeout, docker.info())
            .await
            .map_err(|_| LaunchError::Timeout { what: "info", secs })?
            .map_err(|e| LaunchError::Engine(e.to_string()))?;
        Ok(Launcher {
            docker,
            state: StateDir::open(state_dir)?,
            timeout,
            security_options: info.security_options.unwrap_or_default(),
        })
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

    /// Validate-to-attest launch of one planned add-on. `interrupt` ends the launch early (the
    /// command line passes Ctrl-C); whatever was created by then is removed.
    pub async fn run(
        &self,
        plan: &SandboxPlan,
        opts: &RunOptions,
        interrupt: impl Future<Output = ()>,
    ) -> Result<RunReport, LaunchError> {
        let mut created = Created::default();
        let result = tokio::select! {
            r = self.run_steps(plan, opts, &mut created) => r,
            _ = interrupt => Err(LaunchError::Interrupted),
        };
        if result.is_err() {
            self.undo(&created).await;
        }
        result
    }

    async fn undo(&self, created: &Created) {
        if let Some(id) = &created.container {
            let opts = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            let _ = self
                .call("remove", self.docker.remove_container(id, Some(opts)))
                .await;
        }
        if let Some(file) = &created.profile_loaded {
            let _ = host::unload_profile(file);
            let _ = std::fs::remove_file(file);
        }
        if let Some(slug) = &created.token_for {
            self.state.forget(slug);
        }
    }

    /// How the container will be confined, or the refusal.
    fn apparmor_mode(
        &self,
        plan: &SandboxPlan,
        opts: &RunOptions,
        warnings: &mut Vec<String>,
    ) -> Result<AppArmorMode, LaunchError> {
        let wanted = match plan.confinement {
            Confinement::Unconfined => return Ok(AppArmorMode::Unconfined),
            Confinement::Generated | Confinement::AddonProfile => {
                AppArmorMode::Profile(plan.apparmor_profile.clone().unwrap_or_default())
            }
            Confinement::DockerDefault => AppArmorMode::DockerDefault,
        };
        match self.apparmor_support() {
            AppArmorSupport::Enforced => Ok(wanted),
            AppArmorSupport::Unavailable(why) => {
                let profile = match &wanted {
                    AppArmorMode::Profile(p) => p.clone(),
                    _ => "docker-default".into(),
                };
                if opts.allow_unconfined {
                    warnings.push(format!(
                        "running UNCONFINED: the plan's AppArmor profile '{profile}' cannot be enforced here ({why}); --allow-unconfined was given"
                    ));
                    Ok(AppArmorMode::Unconfined)
                } else {
                    Err(LaunchError::AppArmorUnavailable { profile, why })
                }
            }
        }
    }

    async fn run_steps(
        &self,
        plan: &SandboxPlan,
        opts: &RunOptions,
        created: &mut Created,
    ) -> Result<RunReport, LaunchError> {
        let mut warnings = Vec::new();
        let mode = self.apparmor_mode(plan, opts, &mut warnings)?;
        let profile_text = match &mode {
            AppArmorMode::Profile(name) => {
                Some(profile_text(plan, name, opts.addon_profile.as_deref())?)
            }
            _ => None,
        };
        let image = opts.image.clone().unwrap_or_else(|| plan.image.clone());
        let slug = plan.full_slug.clone();
        let name = plan.container_name.clone();
        let lock_state = self.state.clone();
        let lock_slug = slug.clone();
        let _lock = tokio::task::spawn_blocking(move || lock_state.lock(&lock_slug))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;

        // A second run replaces the first, as the Supervisor does; a foreign container with
        // our name is left alone.
        match self
            .call(
                "inspect",
                self.docker
                    .inspect_container(&name, None::<InspectContainerOptions>),
            )
            .await?
        {
            Ok(existing) => {
                let ours = existing
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|l| l.get(LABEL_SLUG).cloned())
                    .is_some_and(|s| s == slug);
                if !ours {
                    return Err(LaunchError::NameConflict(name));
                }
                let opts = RemoveContainerOptionsBuilder::new().force(true).build();
                self.call("remove", self.docker.remove_container(&name, Some(opts)))
                    .await?
                    .map_err(|e| docker_err("remove", e))?;
                self.state.forget(&slug);
            }
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(docker_err("inspect", e)),
        }

        match self
            .call("inspect image", self.docker.inspect_image(&image))
            .await?
        {
            Ok(_) => {}
            Err(e) if status_of(&e) == Some(404) => return Err(LaunchError::ImageMissing(image)),
            Err(e) => return Err(docker_err("inspect image", e)),
        }

        create_data_folders(plan, &opts.data_root)?;

        if let (AppArmorMode::Profile(name), Some(text)) = (&mode, &profile_text) {
            let file = self.state.profile_path(name);
            state::write_atomically(&file, text.as_bytes(), 0o644)?;
            created.profile_loaded = Some(file.clone());
            // The parser may take a while: off the runtime's thread, so an interrupt is seen.
            let cache = self.state.parser_cache();
            tokio::task::spawn_blocking(move || host::load_profile(&file, &cache))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))??;
        }

        // Slave propagation needs a shared or slave source mount; without one, bind privately.
        let mut plan = plan.clone();
        for m in plan.mounts.iter_mut() {
            if m.propagation.is_some() && !host::propagation_possible(Path::new(&m.source)) {
                warnings.push(format!(
                    "{} is bound without {} propagation: its host mount is private, so mounts made on the host later will not appear inside",
                    m.target,
                    m.propagation.as_deref().unwrap_or_default()
                ));
                m.propagation = None;
            }
        }
        let plan = &plan;

        let token = new_token()?;
        self.state.write_token(&slug, &token)?;
        created.token_for = Some(slug.clone());

        let spec = StartSpec {
            image: image.clone(),
            command: opts.command.clone(),
            token,
            timezone: opts.timezone.clone().unwrap_or_else(|| "UTC".into()),
            apparmor: mode.clone(),
        };
        let body = body::create_body(plan, &spec);
        let create_opts = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(&name)
            .build();
        let resp = self
            .call(
                "create",
                self.docker.create_container(Some(create_opts), body),
            )
            .await?
            .map_err(|e| docker_err("create", e))?;
        created.container = Some(resp.id.clone());
        warnings.extend(resp.warnings);

        self.call("start", self.docker.start_container(&resp.id, None))
            .await?
            .map_err(|e| docker_err("start", e))?;

        self.attest(&resp.id, &mode).await?;

        let (ingress_token, ingress_address) = match plan.ingress_port {
            Some(port) => (
                Some(new_token()?),
                self.container_ip(&resp.id, &plan.network_mode)
                    .await?
                    .map(|ip| format!("{ip}:{port}")),
            ),
            None => (None, None),
        };
        self.state.write_record(&Record {
            ingress_token: ingress_token.clone(),
            ingress_address,
            ..Record::for_plan(plan, resp.id.clone(), image.clone(), mode.label())
        })?;
        Ok(RunReport {
            full_slug: slug,
            container_name: name,
            container_id: resp.id,
            image,
            confinement: mode.label(),
            granted: plan.granted.clone(),
            withheld: plan.withheld.clone(),
            warnings,
            ingress_token,
        })
    }

    async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, LaunchError> {
        self.call(
            "inspect",
            self.docker
                .inspect_container(id, None::<InspectContainerOptions>),
        )
        .await?
        .map_err(|e| docker_err("inspect", e))
    }

    /// Where the gateway reaches the container: its address on its first network, or the
    /// host's loopback when it shares the host's network.
    async fn container_ip(
        &self,
        id: &str,
        network_mode: &str,
    ) -> Result<Option<String>, LaunchError> {
        if network_mode == "host" {
            return Ok(Some("127.0.0.1".into()));
        }
        let info = self.inspect(id).await?;
        let ip = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|nets| {
                let mut nets: Vec<_> = nets.into_iter().collect();
                nets.sort_by(|a, b| a.0.cmp(&b.0));
                nets.into_iter()
                    .filter_map(|(_, n)| n.ip_address)
                    .find(|ip| !ip.is_empty())
            });
        Ok(ip)
    }

    /// After start: the engine says the container runs under the planned profile, and so does
    /// the kernel for its first process.
    async fn attest(&self, id: &str, mode: &AppArmorMode) -> Result<(), LaunchError> {
        let info = self.inspect(id).await?;
        let engine_profile = info.app_armor_profile.unwrap_or_default();
        let pid = info.state.as_ref().and_then(|s| s.pid).unwrap_or(0);
        match mode {
            AppArmorMode::Profile(name) => {
                if &engine_profile != name {
                    return Err(LaunchError::Attestation(format!(
                        "the engine reports profile '{engine_profile}', not '{name}'"
                    )));
                }
                let label = host::process_label(pid).unwrap_or_default();
                if label != format!("{name} (enforce)") {
                    return Err(LaunchError::Attestation(format!(
                        "process {pid} runs under '{label}', not '{name} (enforce)'"
                    )));
                }
            }
            AppArmorMode::Unconfined => {
                if !(engine_profile.is_empty() || engine_profile == "unconfined") {
                    return Err(LaunchError::Attestation(format!(
                        "the engine reports profile '{engine_profile}' for an unconfined run"
                    )));
                }
            }
            AppArmorMode::DockerDefault => {}
        }
        Ok(())
    }

    /// The container name of a started add-on (full slug, or a plain slug when unique).
    fn resolve(&self, slug: &str) -> Result<Record, LaunchError> {
        if let Some(r) = self.state.read_record(slug) {
            return Ok(r);
        }
        let matches: Vec<Record> = self
            .state
            .records()
            .into_iter()
            .filter(|r| r.full_slug.split_once('_').is_some_and(|(_, s)| s == slug))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(LaunchError::Unknown(slug.to_owned())),
        }
    }

    pub async fn stop(&self, slug: &str) -> Result<(), LaunchError> {
        let record = self.resolve(slug)?;
        let _lock = self.state.lock(&record.full_slug)?;
        let opts = StopContainerOptionsBuilder::new().t(10).build();
        match self
            .call(
                "stop",
                self.docker
                    .stop_container(&record.container_name, Some(opts)),
            )
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) if matches!(status_of(&e), Some(304)) => Ok(()),
            Err(e) => Err(docker_err("stop", e)),
        }
    }

    /// Remove the container, unload and delete its profile, forget its token; data stays.
    pub async fn rm(&self, slug: &str) -> Result<(), LaunchError> {
        let record = self.resolve(slug)?;
        let _lock = self.state.lock(&record.full_slug)?;
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        match self
            .call(
                "remove",
                self.docker
                    .remove_container(&record.container_name, Some(opts)),
            )
            .await?
        {
            Ok(()) => {}
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(docker_err("remove", e)),
        }
        if let Some(name) = record.confinement.strip_prefix("apparmor:") {
            let file = self.state.profile_path(name);
            if file.exists() {
                host::unload_profile(&file)?;
                std::fs::remove_file(&file)?;
            }
        }
        self.state.forget(&record.full_slug);
        Ok(())
    }

    pub async fn ps(&self) -> Result<Vec<PsEntry>, LaunchError> {
        let filters = std::collections::HashMap::from([("label", vec![LABEL_SLUG])]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .call("list", self.docker.list_containers(Some(opts)))
            .await?
            .map_err(|e| docker_err("list", e))?;
        let mut out: Vec<PsEntry> = list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                PsEntry {
                    full_slug: labels.get(LABEL_SLUG).cloned().unwrap_or_default(),
                    container_name: c
                        .names
                        .and_then(|n| n.first().cloned())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_owned(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    status: c.status.unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    confinement: labels.get(LABEL_CONFINEMENT).cloned().unwrap_or_default(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.full_slug.cmp(&b.full_slug));
        Ok(out)
    }

    /// Copy the container's output to `out`; with `follow`, until the container stops.
    pub async fn logs(
        &self,
        slug: &str,
        follow: bool,
        out: &mut impl Write,
    ) -> Result<(), LaunchError> {
        let record = self.resolve(slug)?;
        let opts = LogsOptionsBuilder::new()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(&record.container_name, Some(opts));
        loop {
            // Without --follow a stalled stream is a slow engine; with it, silence is normal.
            let next = if follow {
                stream.next().await
            } else {
                tokio::time::timeout(self.timeout, stream.next())
                    .await
                    .map_err(|_| LaunchError::Timeout {
                        what: "logs",
                        secs: self.timeout.as_secs(),
                    })?
            };
            match next {
                None => return Ok(()),
                Some(Ok(chunk)) => out.write_all(&chunk.into_bytes())?,
                Some(Err(e)) => return Err(docker_err("logs", e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{new_token, rename_addon_profile};

    #[test]
    fn the_authors_profile_gets_the_installed_name() {
        let text = "#include <tunables/global>\nprofile example flags=(attach_disconnected) {\n  profile child {\n  }\n}\n";
        let renamed = rename_addon_profile(text, "local_example");
        assert!(renamed.contains("\nprofile local_example flags=(attach_disconnected) {\n"));
        assert!(
            renamed.contains("  profile child {"),
            "children keep their names"
        );
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
