//! One Docker launch, step by step in the order of the module doc of [`super`]; what each
//! step changed is noted in `Created` so that a failure, timeout or interrupt undoes it.

use std::future::Future;
use std::path::Path;

use bollard::query_parameters::{InspectContainerOptions, RemoveContainerOptionsBuilder};

use super::body::{self, AppArmorMode, LABEL_SLUG, StartSpec};
use super::host::{self, AppArmorSupport};
use super::state::{self, AddonLock, Record};
use super::{
    Created, LaunchError, Launcher, RunOptions, RunReport, create_data_folders, docker_err,
    new_token, profile_text, status_of,
};
use crate::plan::{Confinement, SandboxPlan};

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
        let _lock = self.lock_addon(&slug).await?;
        self.replace_previous(&name, &slug).await?;
        self.require_image(&image).await?;

        create_data_folders(plan, &opts.data_root)?;

        if let (AppArmorMode::Profile(name), Some(text)) = (&mode, &profile_text) {
            self.write_and_load_profile(name, text, created).await?;
        }

        let plan = &with_possible_propagation(plan, &mut warnings);

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
        let id = self
            .create_container(plan, &spec, &name, created, &mut warnings)
            .await?;

        self.call("start", self.docker.start_container(&id, None))
            .await?
            .map_err(|e| docker_err("start", e))?;

        self.attest(&id, &mode).await?;

        let ingress_token = self.write_record(plan, &id, &image, &mode).await?;
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
        })
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
                let ours = existing
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|l| l.get(LABEL_SLUG).cloned())
                    .is_some_and(|s| s == slug);
                if !ours {
                    return Err(LaunchError::NameConflict(name.to_owned()));
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

    /// The image must be on this host already: no registry is asked.
    async fn require_image(&self, image: &str) -> Result<(), LaunchError> {
        match self
            .call("inspect image", self.docker.inspect_image(image))
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => {
                Err(LaunchError::ImageMissing(image.to_owned()))
            }
            Err(e) => Err(docker_err("inspect image", e)),
        }
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
        // The parser may take a while: off the runtime's thread, so an interrupt is seen.
        let cache = self.state.parser_cache();
        tokio::task::spawn_blocking(move || host::load_profile(&file, &cache))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
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
        let body = body::create_body(plan, spec);
        let create_opts = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(name)
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
    ) -> Result<Option<String>, LaunchError> {
        let (ingress_token, ingress_address) = match plan.ingress_port {
            Some(port) => (
                Some(new_token()?),
                self.container_ip(id, &plan.network_mode)
                    .await?
                    .map(|ip| format!("{ip}:{port}")),
            ),
            None => (None, None),
        };
        self.state.write_record(&Record {
            ingress_token: ingress_token.clone(),
            ingress_address,
            ..Record::for_plan(plan, id.to_owned(), image.to_owned(), mode.label())
        })?;
        Ok(ingress_token)
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
