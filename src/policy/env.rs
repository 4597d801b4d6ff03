//! What the container runs with, past its rights: the image, the environment (and the keys a
//! report may show), the published ports, the ingress port, tmpfs mounts and ulimits. Strict
//! mode mounts its tmpfs `nosuid,nodev,noexec`; ports are published only off the host network.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::IngressPort;
use crate::plan::{PortBinding, UlimitSpec};

use super::{Decision, Right};

/// The locked memory `realtime: true` gives (as the Supervisor does): 128 MiB.
const REALTIME_MEMLOCK: i64 = 128 * 1024 * 1024;

/// The highest value strict protection lets a `ulimits` entry have without `--grant ulimits`;
/// None: the limit only ever restrains the add-on itself. `realtime` declares real-time
/// scheduling, so it raises the real-time priority ceiling to the Supervisor's 99.
pub fn ulimit_ceiling(name: &str, realtime: bool) -> Option<i64> {
    match name {
        "rtprio" => Some(if realtime { 99 } else { 0 }),
        "nice" => Some(0),
        "memlock" => Some(REALTIME_MEMLOCK),
        "nproc" => Some(65536),
        "nofile" => Some(1_048_576),
        _ => None,
    }
}

/// What a limit above its ceiling lets the add-on do to the host.
fn ulimit_risk(name: &str) -> &'static str {
    match name {
        "rtprio" => "real-time priority can starve the host's own processes",
        "nice" => "raising its priority above normal takes CPU from the host",
        "memlock" => "locked memory cannot be reclaimed or swapped by the host",
        "nproc" => "processes of the same user id count against the whole host",
        _ => "open files take kernel memory of the host",
    }
}

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
    /// Strict protection clamps each limit above its ceiling ([`ulimit_ceiling`]) to it and
    /// reports it withheld, unless `ulimits` is granted.
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
                soft: REALTIME_MEMLOCK,
                hard: REALTIME_MEMLOCK,
            });
        }
        for u in &config.ulimits {
            let mut spec = UlimitSpec {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            };
            if self.strict() {
                self.clamp_ulimit(&mut spec);
            }
            ulimits.push(spec);
        }
        ulimits
    }

    /// One limit above its ceiling: withheld (clamped to the ceiling, reported) or granted.
    fn clamp_ulimit(&mut self, spec: &mut UlimitSpec) {
        let Some(ceiling) = ulimit_ceiling(&spec.name, self.config.realtime) else {
            return;
        };
        // Negative is unlimited.
        let above = |v: i64| v < 0 || v > ceiling;
        if !above(spec.soft) && !above(spec.hard) {
            return;
        }
        let show = |v: i64| {
            if v < 0 {
                "unlimited".to_owned()
            } else {
                v.to_string()
            }
        };
        let reason = format!(
            "{} {}/{} (soft/hard) is above the safe ceiling {ceiling}: {}; clamped to {ceiling}",
            spec.name,
            show(spec.soft),
            show(spec.hard),
            ulimit_risk(&spec.name),
        );
        if !self.allow_entry(Right::Ulimits, &["ulimit:", &spec.name].concat(), &reason) {
            for v in [&mut spec.soft, &mut spec.hard] {
                if above(*v) {
                    *v = ceiling;
                }
            }
        }
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
