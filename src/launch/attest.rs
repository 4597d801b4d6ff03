//! After start: the container's address for the gateway, and the attestation that the engine
//! and the kernel both run it under the planned profile.

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::InspectContainerOptions;

use std::os::unix::fs::MetadataExt;

use super::body::AppArmorMode;
use super::connect::Endpoint;
use super::{CheckedSources, LaunchError, Launcher, checked_path, docker_err, host};
use crate::plan::SandboxPlan;

impl Launcher {
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
    pub(super) async fn container_ip(
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
    /// the kernel for its first process; returns that process (0 when it has ended).
    /// In learn mode the profile is in complain mode, and the kernel must say so.
    pub(super) async fn attest(
        &self,
        id: &str,
        mode: &AppArmorMode,
        learning: bool,
    ) -> Result<i64, LaunchError> {
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
                let want = format!("{name} ({})", if learning { "complain" } else { "enforce" });
                if label != want {
                    return Err(LaunchError::Attestation(format!(
                        "process {pid} runs under '{label}', not '{want}'"
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
        Ok(pid)
    }

    /// The engine binds by path, so between the check and its mount a source could have been
    /// swapped: what the container's first process `pid` sees at each target must be the very
    /// object that was checked. Only a local engine's pids are ours to look at; a process that
    /// has ended, or a `/proc` we may not read, leaves a warning instead.
    pub(super) fn verify_binds(
        &self,
        plan: &SandboxPlan,
        sources: &CheckedSources,
        pid: i64,
        warnings: &mut Vec<String>,
    ) -> Result<(), LaunchError> {
        if !matches!(self.endpoint, Endpoint::Unix(_)) || sources.mounts.is_empty() {
            return Ok(());
        }
        for m in &plan.mounts {
            let Some(fd) = sources.mount(&m.source) else {
                continue;
            };
            let checked = checked_path::stat(fd).map_err(std::io::Error::from)?;
            let inside = format!("/proc/{pid}/root{}", m.target);
            match std::fs::metadata(&inside) {
                Ok(seen) if (seen.dev(), seen.ino()) == (checked.st_dev, checked.st_ino) => {}
                Ok(_) => {
                    return Err(LaunchError::Attestation(format!(
                        "{} inside is not the {} that was checked (was it replaced after the check?)",
                        m.target, m.source
                    )));
                }
                Err(e) => {
                    warnings.push(format!(
                        "the binds could not be verified from the host ({inside}: {e})"
                    ));
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
