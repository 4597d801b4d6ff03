//! One Docker launch, step by step in the order of the module doc of [`super`]; what each
//! step changed is noted in `Created` so that a failure, timeout or interrupt undoes it.

use std::future::Future;
use std::path::Path;

use bollard::query_parameters::{InspectContainerOptions, RemoveContainerOptionsBuilder};

use super::body::{self, AppArmorMode, LABEL_SLUG, LABEL_STATE, StartSpec};
use super::host::{self, AppArmorSupport};
use super::state::{self, AddonLock, Record};
use super::{
    Created, LaunchError, Launcher, RunOptions, RunReport, check_sources, docker_err, new_token,
    present_on_host, profile_text, status_of, write_host_files, write_options,
};
use crate::plan::{Confinement, SandboxPlan};

/// Said at every start on an engine older than API 1.44 (Docker 25), which binds read-only
/// only at the top and has no way to ask for more.
const READ_ONLY_NOT_RECURSIVE: &str = "this engine (API older than 1.44) makes read-only maps read-only only at their top: a mount below a read-only map's source on the host (a NAS under share, say) stays writable inside; Docker 25 and later, and the native backend, make them read-only all the way down";

/// Said when no `serve` runs for this state directory.
const NO_GATEWAY: &str = "no gateway is serving this state directory's add-ons: http://supervisor will not answer this one (start `addon-sandbox serve` with the same --state-dir, then run it again)";

impl Launcher {
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
            self.undo(&mut created, plan).await;
        }
        if let Some(lock) = created.lock.take() {
            self.state.release(lock);
        }
        result
    }

    /// Undo in reverse order, each step only once the step it undoes has ended: a parser still
    /// loading is ended before the profile is unloaded, and a create whose answer never came is
    /// looked up by name (and our labels) since the engine may have made the container anyway.
    async fn undo(&self, created: &mut Created, plan: &SandboxPlan) {
        let id = match created.container.clone() {
            Some(id) => Some(id),
            None if created.create_sent => self.ours_by_name(plan).await,
            None => None,
        };
        if let Some(id) = id {
            let opts = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            let _ = self
                .call("remove", self.docker.remove_container(&id, Some(opts)))
                .await;
        }
        if let Some((pid, waiter)) = created.loading.take() {
            host::kill_parser(pid);
            let _ = waiter.await;
        }
        if let Some(file) = &created.profile_loaded {
            let _ = host::unload_profile(file);
            let _ = std::fs::remove_file(file);
        }
        if let Some(slug) = &created.token_for {
            self.state.forget(slug);
        }
    }

    /// The id of the container named for `plan` when it is this state directory's.
    async fn ours_by_name(&self, plan: &SandboxPlan) -> Option<String> {
        let found = self
            .call(
                "inspect",
                self.docker
                    .inspect_container(&plan.container_name, None::<InspectContainerOptions>),
            )
            .await
            .ok()?
            .ok()?;
        let labels = found.config.and_then(|c| c.labels).unwrap_or_default();
        let ours = labels.get(LABEL_SLUG) == Some(&plan.full_slug)
            && labels.get(LABEL_STATE).map(String::as_str)
                == Some(&*self.state.root().to_string_lossy());
        ours.then_some(found.id).flatten()
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

    /// The launch in the order of the module doc of [`super`]; each change is noted in
    /// `created` as soon as it is made, for `undo`.
    async fn run_steps(
        &self,
        plan: &SandboxPlan,
        opts: &RunOptions,
        created: &mut Created,
    ) -> Result<RunReport, LaunchError> {
        let mut warnings = Vec::new();
        super::devices::check(plan, Path::new("/dev"))?;
        // Everything after this (profile, body, binds, record) is of what this host has.
        let plan = &present_on_host(plan, &mut warnings);
        let mode = self.apparmor_mode(plan, opts, &mut warnings)?;
        learning_confined(opts, &mode)?;
        let profile_text = match &mode {
            AppArmorMode::Profile(name) => Some(profile_text(
                plan,
                name,
                opts.addon_profile.as_deref(),
                opts.learning.as_deref(),
            )?),
            _ => None,
        };
        let image = opts.image.clone().unwrap_or_else(|| plan.image.clone());
        // Read from the trust cache before anything is created: a refusal leaves nothing.
        let verdict = self.trust_verdict(&image, opts.trust.as_ref(), &mut warnings)?;
        let slug = plan.full_slug.clone();
        let name = plan.container_name.clone();
        created.lock = Some(self.lock_addon(&slug).await?);
        // Before the previous container is replaced: a refused image leaves it as it was.
        let run_as = self
            .image_to_run(&image, verdict.as_ref(), &mut warnings)
            .await?;
        self.replace_previous(&name, &slug).await?;

        write_host_files(plan, &opts.data_root, opts.audio_server.as_deref())?;
        // Held until the container runs: the attestation compares its binds with these.
        let sources = check_sources(plan, &opts.data_root)?;
        write_options(plan, &sources, opts.options.as_ref())?;

        if let (AppArmorMode::Profile(name), Some(text)) = (&mode, &profile_text) {
            self.write_and_load_profile(name, text, created).await?;
        }

        let plan = &with_possible_propagation(plan, &mut warnings);

        let token = new_token()?;
        self.state.write_token(&slug, &token)?;
        created.token_for = Some(slug.clone());

        let spec = self.start_spec(plan, opts, &mode, run_as, token, &mut warnings);
        let id = self
            .create_container(plan, &spec, &name, created, &mut warnings)
            .await?;

        self.call("start", self.docker.start_container(&id, None))
            .await?
            .map_err(|e| docker_err("start", e))?;

        let pid = self.attest(&id, &mode, opts.learning.is_some()).await?;
        self.verify_binds(plan, &sources, pid, &mut warnings)?;

        let ingress_token = self
            .write_record(plan, &id, &image, &mode, opts.info.clone())
            .await?;
        Ok(RunReport {
            full_slug: slug,
            container_name: name,
            container_id: id,
            image,
            confinement: mode.label(),
            granted: plan.granted.clone(),
            withheld: plan.withheld.clone(),
            warnings,
            ingress_token,
            trust: verdict,
        })
    }

    /// What the container is created with besides the plan: image, command, token, time
    /// zone, confinement, the gateway's network and hosts.
    fn start_spec(
        &self,
        plan: &SandboxPlan,
        opts: &RunOptions,
        mode: &AppArmorMode,
        image: String,
        token: String,
        warnings: &mut Vec<String>,
    ) -> StartSpec {
        let (network, extra_hosts) = self.gateway_attachment(plan, warnings);
        let spec = StartSpec {
            image,
            command: opts.command.clone(),
            token,
            timezone: opts.timezone.clone().unwrap_or_else(|| "UTC".into()),
            apparmor: mode.clone(),
            recursive_read_only: self.recursive_read_only(),
            network,
            extra_hosts,
        };
        if !spec.recursive_read_only && plan.mounts.iter().any(|m| m.read_only) {
            warnings.push(READ_ONLY_NOT_RECURSIVE.to_owned());
        }
        spec
    }

    /// The add-on's lock, taken off the runtime's thread.
    async fn lock_addon(&self, slug: &str) -> Result<AddonLock, LaunchError> {
        let lock_state = self.state.clone();
        let lock_slug = slug.to_owned();
        let lock = tokio::task::spawn_blocking(move || lock_state.lock(&lock_slug))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(lock)
    }

    /// A second run replaces the first, as the Supervisor does; a foreign container with our
    /// name is left alone.
    async fn replace_previous(&self, name: &str, slug: &str) -> Result<(), LaunchError> {
        match self
            .call(
                "inspect",
                self.docker
                    .inspect_container(name, None::<InspectContainerOptions>),
            )
            .await?
        {
            Ok(existing) => {
                let labels = existing.config.and_then(|c| c.labels).unwrap_or_default();
                if labels.get(LABEL_SLUG).is_none_or(|s| s != slug) {
                    return Err(LaunchError::NameConflict(name.to_owned()));
                }
                let root = self.state.root().to_string_lossy();
                if let Some(other) = labels.get(LABEL_STATE).filter(|s| **s != *root) {
                    return Err(LaunchError::OtherState {
                        name: name.to_owned(),
                        state: other.clone(),
                    });
                }
                let opts = RemoveContainerOptionsBuilder::new().force(true).build();
                self.call("remove", self.docker.remove_container(name, Some(opts)))
                    .await?
                    .map_err(|e| docker_err("remove", e))?;
                self.state.forget(slug);
            }
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(docker_err("inspect", e)),
        }
        Ok(())
    }

    /// The profile written into the state directory (noted for undo from then on) and loaded.
    async fn write_and_load_profile(
        &self,
        name: &str,
        text: &str,
        created: &mut Created,
    ) -> Result<(), LaunchError> {
        let file = self.state.profile_path(name);
        state::write_atomically(&file, text.as_bytes(), 0o644)?;
        created.profile_loaded = Some(file.clone());
        // The parser may take a while: waited for off the runtime's thread, so an interrupt is
        // seen; undo ends it before unloading.
        let child = host::spawn_load(&file, &self.state.parser_cache())?;
        let pid = child.id();
        let waiter = tokio::task::spawn_blocking(move || host::finish_load(child));
        let (_, waiter) = created.loading.insert((pid, waiter));
        let loaded = waiter
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        created.loading = None;
        loaded?;
        Ok(())
    }

    /// Create the container from the plan and the start spec (noted for undo), keeping the
    /// engine's warnings; returns its id.
    async fn create_container(
        &self,
        plan: &SandboxPlan,
        spec: &StartSpec,
        name: &str,
        created: &mut Created,
        warnings: &mut Vec<String>,
    ) -> Result<String, LaunchError> {
        let mut body = body::create_body(plan, spec);
        body.labels.get_or_insert_default().insert(
            LABEL_STATE.to_owned(),
            self.state.root().to_string_lossy().into_owned(),
        );
        let create_opts = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(name)
            .build();
        created.create_sent = true;
        let resp = self
            .call(
                "create",
                self.docker.create_container(Some(create_opts), body),
            )
            .await?
            .map_err(|e| docker_err("create", e))?;
        created.container = Some(resp.id.clone());
        warnings.extend(resp.warnings);
        Ok(resp.id)
    }

    /// The record the gateway and `ps` read, with a fresh ingress token and the address the
    /// gateway reaches the ingress port at; returns the ingress token.
    async fn write_record(
        &self,
        plan: &SandboxPlan,
        id: &str,
        image: &str,
        mode: &AppArmorMode,
        mut info: Option<state::AddonInfo>,
    ) -> Result<Option<String>, LaunchError> {
        let ip = self.container_ip(id, &plan.network_mode).await?;
        let (ingress_token, ingress_address) = match plan.ingress_port {
            Some(port) => (
                Some(new_token()?),
                ip.as_ref().map(|ip| format!("{ip}:{port}")),
            ),
            None => (None, None),
        };
        if let Some(info) = info.as_mut() {
            info.ip_address = ip;
        }
        self.state.write_record(&Record {
            ingress_token: ingress_token.clone(),
            ingress_address,
            info,
            ..Record::for_plan(plan, id.to_owned(), image.to_owned(), mode.label())
        })?;
        Ok(ingress_token)
    }
}

impl Launcher {
    /// Where a running `serve` of this state directory asks add-ons to join, or a warning
    /// that none serves them (the add-on starts anyway: many never call the API).
    fn gateway_attachment(
        &self,
        plan: &SandboxPlan,
        warnings: &mut Vec<String>,
    ) -> (Option<String>, Vec<String>) {
        match super::network::GatewayRecord::read(self.state.root()) {
            Some(gateway) => gateway.attachment(&plan.network_mode),
            None => {
                warnings.push(NO_GATEWAY.to_owned());
                (None, Vec::new())
            }
        }
    }
}

/// Learn mode needs the add-on confined by its profile (in complain mode).
fn learning_confined(opts: &RunOptions, mode: &AppArmorMode) -> Result<(), LaunchError> {
    match (&opts.learning, mode) {
        (None, _) | (Some(_), AppArmorMode::Profile(_)) => Ok(()),
        (Some(_), AppArmorMode::Unconfined) => {
            Err(LaunchError::LearningNeedsAppArmor("unconfined"))
        }
        (Some(_), _) => Err(LaunchError::LearningNeedsAppArmor(
            "under Docker's default profile",
        )),
    }
}

/// Slave propagation needs a shared or slave source mount; without one, bind privately.
fn with_possible_propagation(plan: &SandboxPlan, warnings: &mut Vec<String>) -> SandboxPlan {
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
    plan
}
