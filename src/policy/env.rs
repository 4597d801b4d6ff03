//! What the container runs with, past its rights: the image, the environment (and the keys a
//! report may show), the published ports, the ingress port, tmpfs mounts and ulimits. Strict
//! mode mounts its tmpfs `nosuid,nodev,noexec`; ports are published only off the host network.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::IngressPort;
use crate::plan::{PortBinding, UlimitSpec};

use super::Decision;

impl Decision<'_> {
    /// `/tmp` when asked for, and a private `/dev/shm` unless the host's IPC is shared.
    pub(super) fn tmpfs(&self, host_ipc: bool) -> BTreeMap<String, String> {
        let tmpfs_opts = if self.strict() {
            "rw,nosuid,nodev,noexec"
        } else {
            ""
        };
        let mut tmpfs = BTreeMap::new();
        if self.config.tmpfs {
            tmpfs.insert("/tmp".to_owned(), tmpfs_opts.to_owned());
        }
        if !host_ipc {
            tmpfs.insert("/dev/shm".to_owned(), tmpfs_opts.to_owned());
        }
        tmpfs
    }

    /// The config's ulimits, after the real-time priority and locked memory `realtime` asks for.
    pub(super) fn ulimits(&mut self) -> Vec<UlimitSpec> {
        let config = self.config;
        let mut ulimits = Vec::new();
        if config.realtime {
            self.granted.push("realtime".into());
            ulimits.push(UlimitSpec {
                name: "rtprio".into(),
                soft: 90,
                hard: 99,
            });
            ulimits.push(UlimitSpec {
                name: "memlock".into(),
                soft: 128 * 1024 * 1024,
                hard: 128 * 1024 * 1024,
            });
        }
        ulimits.extend(config.ulimits.iter().map(|u| UlimitSpec {
            name: u.name.clone(),
            soft: u.soft,
            hard: u.hard,
        }));
        ulimits
    }

    /// The environment (a legacy add-on also gets its scalar options) and every key the
    /// container sees, the tokens and `TZ` included.
    pub(super) fn environment(&self) -> (Vec<(String, String)>, Vec<String>) {
        let config = self.config;
        let mut environment = config.environment.clone();
        if config.legacy {
            for (k, v) in &config.option_scalars {
                environment.retain(|(n, _)| n != k);
                environment.push((k.clone(), v.clone()));
            }
        }
        let mut env_keys: BTreeSet<String> = environment.iter().map(|(k, _)| k.clone()).collect();
        env_keys.extend(["TZ", "SUPERVISOR_TOKEN", "HASSIO_TOKEN"].map(String::from));
        (environment, env_keys.into_iter().collect())
    }

    /// Ports: none with the host's network.
    pub(super) fn ports(&self, host_network: bool) -> Vec<PortBinding> {
        if host_network {
            return Vec::new();
        }
        self.config
            .ports
            .iter()
            .filter(|(_, host)| host.is_some())
            .map(|(spec, host)| PortBinding {
                container: spec.key.clone(),
                host: *host,
            })
            .collect()
    }

    pub(super) fn ingress_port(&self) -> Option<u16> {
        match (self.config.ingress, self.config.ingress_port) {
            (false, _) => None,
            (true, IngressPort::Fixed(p)) => Some(p),
            (true, IngressPort::Dynamic) => None,
        }
    }

    /// What the operator should know about how the add-on is reached: asked for the host's
    /// network, withheld it, and nothing published leaves it unreachable; `ingress_port: 0`
    /// (a port the Supervisor picks at start) gets no ingress here.
    pub(super) fn reach_notes(
        &self,
        host_network: bool,
        ports: &[PortBinding],
        ingress_port: Option<u16>,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        if self.config.host_network && !host_network && ports.is_empty() && ingress_port.is_none() {
            notes.push(
                "unreachable: host_network is withheld and the add-on publishes no ports and has no ingress; nothing outside its container reaches it (declare ports, or --grant host_network)"
                    .to_owned(),
            );
        }
        if self.config.ingress && ingress_port.is_none() {
            notes.push(
                "no ingress: ingress_port: 0 asks for a port the Supervisor picks at start; addon-sandbox assigns none, so the gateway has no ingress for this add-on (set a fixed ingress_port)"
                    .to_owned(),
            );
        }
        notes
    }

    /// The image reference with `{arch}`/`{machine}` filled in and the version as tag; a
    /// config without `image` is built locally as `local/{arch}-addon-{slug}`.
    pub(super) fn image(&self) -> String {
        let host = &self.options.host;
        let arch = host.arch.as_deref().unwrap_or("amd64");
        let machine = host.machine.as_deref().unwrap_or("qemux86-64");
        let repo = match &self.config.image {
            Some(image) => image.replace("{arch}", arch).replace("{machine}", machine),
            None => ["local/", arch, "-addon-", &self.config.slug].concat(),
        };
        [repo.as_str(), ":", &self.config.version].concat()
    }
}
