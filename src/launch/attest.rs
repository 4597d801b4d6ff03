//! After start: the container's address for the gateway, and the attestation that the engine
//! and the kernel both run it under the planned profile.

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::InspectContainerOptions;

use super::body::AppArmorMode;
use super::host;
use super::{LaunchError, Launcher, docker_err};

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
    /// the kernel for its first process.
    pub(super) async fn attest(&self, id: &str, mode: &AppArmorMode) -> Result<(), LaunchError> {
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
}
