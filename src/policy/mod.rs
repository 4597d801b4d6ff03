//! `Policy::decide`: config + protection + policy mode + operator grants → [`SandboxPlan`].
//!
//! Two modes (DESIGN §3). `supervisor` reproduces the Supervisor's Docker settings exactly.
//! `strict` starts from nothing (`CapDrop: ALL`, private namespaces, no-new-privileges,
//! Docker's seccomp profile, a generated AppArmor profile) and adds what the config declares,
//! except the rights that reach the host, which protection mode withholds unless the
//! operator grants them one by one.
//!
//! This module is the only place that grants or withholds a right. It checks the names that
//! become container, profile and folder names, then decides family by family, each in its
//! own file: the `map` folders (`mounts`), the rights that reach the host (`host`),
//! capabilities (`capabilities`), devices (`devices`), API access and role (`api`),
//! confinement (`confinement`) and the container's runtime settings (`env`); the literal path
//! checks they share are in `paths`. Every family records what it grants and withholds through
//! `Decision::allow`; the order the families run in is the order of the withheld list.

mod api;
mod capabilities;
mod confinement;
mod devclass;
mod devices;
mod env;
mod host;
mod mounts;
mod paths;

use std::collections::BTreeSet;
use std::fmt;

use crate::config::{AddonConfig, Capability};
use crate::plan::{Device, DeviceClass, Mount, PolicyMode, SandboxPlan, Withheld};
use crate::rating::{self, ApparmorMode};

pub use capabilities::{BASELINE_CAPS, high_risk};
pub use devclass::{
    DeviceFacts, NodeClass, NodeFact, NodeKind, class_by_name, class_by_number, class_of_fact,
    parse_proc_devices,
};
pub use devices::{CLASS_CGROUP_RULES, device_withheld, raw_device};
pub use env::ulimit_ceiling;
pub use mounts::exec_withheld;
pub use paths::{check_device_path, check_literal_path, check_target_path};

/// A right an operator can grant with `--grant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Right {
    HostNetwork,
    HostPid,
    HostIpc,
    HostUts,
    HostDbus,
    DockerApi,
    FullAccess,
    KernelModules,
    Cap(Capability),
    /// Honour `apparmor: false`.
    Unconfined,
    /// Let a `hassio_role: admin` add-on keep the admin role.
    AdminRole,
    /// Run without no-new-privileges (setuid binaries such as sudo).
    NewPrivileges,
    /// Run without Docker's seccomp profile.
    SeccompUnconfined,
    /// `devices` entries for physical memory, I/O ports, disks and partitions, generic
    /// SCSI/NVMe, raw flash, CPU registers and the kernel log.
    RawDevices,
    /// `devices` entries for the host's console, virtual terminals, screen and pseudo-terminals.
    HostConsole,
    /// `devices` entries of no known class.
    UnknownDevices,
    /// `ulimits` above the safe ceilings.
    Ulimits,
    /// Run code from a writable map inside a code directory (`/usr/local`, `/opt/...`).
    MapExec,
}

impl Right {
    pub fn name(self) -> &'static str {
        match self {
            Right::HostNetwork => "host_network",
            Right::HostPid => "host_pid",
            Right::HostIpc => "host_ipc",
            Right::HostUts => "host_uts",
            Right::HostDbus => "host_dbus",
            Right::DockerApi => "docker_api",
            Right::FullAccess => "full_access",
            Right::KernelModules => "kernel_modules",
            Right::Cap(c) => c.name(),
            Right::Unconfined => "unconfined",
            Right::AdminRole => "admin_role",
            Right::NewPrivileges => "new_privileges",
            Right::SeccompUnconfined => "seccomp_unconfined",
            Right::RawDevices => "raw_devices",
            Right::HostConsole => "host_console",
            Right::UnknownDevices => "unknown_devices",
            Right::Ulimits => "ulimits",
            Right::MapExec => "map_exec",
        }
    }

    /// All names `--grant` accepts.
    pub fn all() -> Vec<Right> {
        let mut all = vec![
            Right::HostNetwork,
            Right::HostPid,
            Right::HostIpc,
            Right::HostUts,
            Right::HostDbus,
            Right::DockerApi,
            Right::FullAccess,
            Right::KernelModules,
            Right::Unconfined,
            Right::AdminRole,
            Right::NewPrivileges,
            Right::SeccompUnconfined,
            Right::RawDevices,
            Right::HostConsole,
            Right::UnknownDevices,
            Right::Ulimits,
            Right::MapExec,
        ];
        all.extend(
            Capability::ALL
                .into_iter()
                .filter(|c| high_risk(*c))
                .map(Right::Cap),
        );
        all
    }

    /// Parse a `--grant` value. Capabilities in any case, with or without `CAP_`.
    pub fn parse(s: &str) -> Result<Right, PolicyError> {
        let lower = s.trim().to_ascii_lowercase();
        let cap = lower
            .strip_prefix("cap_")
            .unwrap_or(&lower)
            .to_ascii_uppercase();
        if let Some(c) = Capability::parse(&cap) {
            return Ok(Right::Cap(c));
        }
        Right::all()
            .into_iter()
            .find(|r| r.name() == lower)
            .ok_or_else(|| PolicyError::UnknownRight(s.to_owned()))
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("unknown right '{0}' for --grant (known: {known})", known = Right::all().iter().map(|r| r.name()).collect::<Vec<_>>().join(", "))]
    UnknownRight(String),
    #[error(
        "--grant applies to the strict policy; the supervisor policy grants exactly what the Supervisor does"
    )]
    GrantInSupervisorMode,
    #[error(
        "repository name '{0}' is not valid (expected lowercase letters, digits, '-' and '_', starting with a letter or digit)"
    )]
    BadRepository(String),
    #[error("map entry '{kind}': target path '{path}' {why}")]
    BadMapPath {
        kind: &'static str,
        path: String,
        why: String,
    },
    #[error(
        "slug {0:?} ends in a line break: the Supervisor's pattern lets it through, but it cannot name a container or a profile"
    )]
    BadSlug(String),
    #[error("device '{path}' {why}")]
    BadDevicePath { path: String, why: String },
    #[error("data root '{0}' must be an absolute path without '..' or control characters")]
    BadDataRoot(String),
    #[error(
        "the add-on is not available on {host}: its `arch` lists {listed} (the Supervisor does not offer it on this architecture; --arch chooses another)"
    )]
    NotAvailable { host: String, listed: String },
}

/// What the host offers that changes the Supervisor's Docker settings.
#[derive(Clone, Debug, Default)]
pub struct HostFacts {
    /// The host has GPIO devices (`/sys/class/gpio` and `/sys/devices/platform/soc` exist).
    pub gpio_sysfs: bool,
    /// The host architecture, for `{arch}` in image names (default amd64).
    pub arch: Option<String>,
    /// The host machine type, for `{machine}` in image names.
    pub machine: Option<String>,
    /// The host's device nodes, read by the caller: a `devices` entry found here is judged by
    /// what the node is, one not found by its name.
    pub devices: DeviceFacts,
}

#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub policy: PolicyMode,
    pub protected: bool,
    pub grants: BTreeSet<Right>,
    pub repository: String,
    pub data_root: String,
    pub host: HostFacts,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            policy: PolicyMode::Strict,
            protected: true,
            grants: BTreeSet::new(),
            repository: "local".into(),
            data_root: "/var/lib/addon-sandbox".into(),
            host: HostFacts::default(),
        }
    }
}

/// A repository name becomes part of container, profile and folder names.
fn check_repository(name: &str) -> Result<(), PolicyError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(PolicyError::BadRepository(name.to_owned()))
    }
}

fn check_data_root(root: &str) -> Result<(), PolicyError> {
    if !root.starts_with('/')
        || root.chars().any(|c| c.is_control())
        || root.split('/').any(|s| s == "..")
    {
        return Err(PolicyError::BadDataRoot(root.to_owned()));
    }
    Ok(())
}

/// The Supervisor's first availability check (`AppModel._validate_availability`): the host's
/// architecture must be in `arch`. An unavailable add-on is never installed, so it has no plan.
fn check_arch(config: &AddonConfig, host: &HostFacts) -> Result<(), PolicyError> {
    let Some(arch) = host.arch.as_deref() else {
        return Ok(());
    };
    if config.arch.iter().any(|a| a == arch) {
        return Ok(());
    }
    Err(PolicyError::NotAvailable {
        host: arch.to_owned(),
        listed: if config.arch.is_empty() {
            "no architecture".to_owned()
        } else {
            config.arch.join(", ")
        },
    })
}

/// Decide the sandbox of a validated add-on.
///
/// `ships_profile`: the add-on folder has an installable `apparmor.txt` (it moves the
/// Supervisor's rating and, in supervisor mode, is the profile the container runs under).
pub fn decide(
    config: &AddonConfig,
    ships_profile: bool,
    options: &PlanOptions,
) -> Result<SandboxPlan, PolicyError> {
    check_repository(&options.repository)?;
    if !config
        .slug
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(PolicyError::BadSlug(config.slug.clone()));
    }
    check_data_root(&options.data_root)?;
    check_arch(config, &options.host)?;
    if options.policy == PolicyMode::Supervisor && !options.grants.is_empty() {
        return Err(PolicyError::GrantInSupervisorMode);
    }
    let mut d = Decision::new(config, ships_profile, options);
    d.run()?;
    Ok(d.finish())
}

struct Decision<'a> {
    config: &'a AddonConfig,
    options: &'a PlanOptions,
    full_slug: String,
    apparmor_mode: ApparmorMode,
    granted: Vec<String>,
    withheld: Vec<Withheld>,
    used_grants: BTreeSet<Right>,
    mounts: Vec<Mount>,
    caps: BTreeSet<String>,
    devices: Vec<Device>,
    cgroup_rules: BTreeSet<String>,
    device_classes: BTreeSet<DeviceClass>,
    device_grants: Vec<String>,
}

impl<'a> Decision<'a> {
    fn new(config: &'a AddonConfig, ships_profile: bool, options: &'a PlanOptions) -> Self {
        Decision {
            config,
            options,
            full_slug: [options.repository.as_str(), "_", &config.slug].concat(),
            apparmor_mode: ApparmorMode::of(config, ships_profile),
            granted: Vec::new(),
            withheld: Vec::new(),
            used_grants: BTreeSet::new(),
            mounts: Vec::new(),
            caps: BTreeSet::new(),
            devices: Vec::new(),
            cgroup_rules: BTreeSet::new(),
            device_classes: BTreeSet::new(),
            device_grants: Vec::new(),
        }
    }

    fn strict(&self) -> bool {
        self.options.policy == PolicyMode::Strict
    }

    /// Whether a host-reaching right the config asks for is granted, recording why either way.
    /// In strict mode it is granted with protection off or by `--grant`; otherwise withheld.
    fn allow(&mut self, right: Right, reason: &str) -> bool {
        let name = right.name();
        let ok = if self.strict() {
            if self.options.grants.contains(&right) {
                self.used_grants.insert(right);
                true
            } else {
                !self.options.protected
            }
        } else {
            true
        };
        if ok {
            self.granted.push(name.to_owned());
        } else {
            self.withheld.push(Withheld {
                right: name.to_owned(),
                reason: reason.to_owned(),
                grant_with: ["--grant ", name].concat(),
            });
        }
        ok
    }

    /// Strict mode, one entry (a device, a limit) behind `right`: granted with protection off
    /// or by `--grant`, otherwise withheld and reported as `entry`.
    fn allow_entry(&mut self, right: Right, entry: &str, reason: &str) -> bool {
        if self.options.grants.contains(&right) {
            self.used_grants.insert(right);
            return true;
        }
        if !self.options.protected {
            return true;
        }
        self.withheld.push(Withheld {
            right: entry.to_owned(),
            reason: reason.to_owned(),
            grant_with: ["--grant ", right.name()].concat(),
        });
        false
    }

    /// Supervisor mode: a right that only protection withholds.
    fn allow_unprotected(&mut self, right: Right, reason: &str) -> bool {
        let name = right.name();
        if self.options.protected {
            self.withheld.push(Withheld {
                right: name.to_owned(),
                reason: reason.to_owned(),
                grant_with: "--protection off".to_owned(),
            });
            false
        } else {
            self.granted.push(name.to_owned());
            true
        }
    }

    fn grant(&mut self, name: impl Into<String>) {
        self.granted.push(name.into());
    }

    fn run(&mut self) -> Result<(), PolicyError> {
        self.map_mounts()?;
        // Host paths the Supervisor binds for device, socket and log access, in its order.
        self.gpio_sysfs();
        self.devicetree();
        self.udev();
        self.kernel_modules();
        self.docker_api();
        self.host_dbus();
        self.audio();
        self.journald();
        self.capabilities();
        self.devices()?;
        Ok(())
    }

    /// The decisions made last (namespaces, role, confinement: in this order, which is the
    /// order they are withheld in), then the plan.
    fn finish(mut self) -> SandboxPlan {
        let config = self.config;
        let strict = self.strict();
        let namespaces = self.namespaces();
        let effective_role = self.api_access();
        let security = self.security();
        self.dev_mount();
        let tmpfs = self.tmpfs(namespaces.ipc);
        let ulimits = self.ulimits();
        let (environment, env_keys) = self.environment();
        let ports = self.ports(namespaces.network);
        let image = self.image();
        let ingress_port = self.ingress_port();
        let mut notes = self.unused_grants();
        notes.extend(self.reach_notes(namespaces.network, &ports, ingress_port));
        let rating_detail = rating::rate(config, self.apparmor_mode);

        let cap_add: Vec<String> = self.caps.iter().cloned().collect();
        let mut granted = self.granted;
        // Equal names are the same text, so an unstable sort gives the same list, sooner.
        granted.sort_unstable();
        granted.dedup();
        let hostname = (!config.host_uts).then(|| self.full_slug.replace('_', "-"));
        SandboxPlan {
            container_name: ["app_", &self.full_slug].concat(),
            full_slug: self.full_slug,
            rating: rating_detail.rating,
            policy: self.options.policy,
            protected: self.options.protected,
            granted,
            withheld: self.withheld,
            mounts: self.mounts,
            cap_add,
            cap_drop: if strict {
                vec!["ALL".into()]
            } else {
                Vec::new()
            },
            network_mode: namespaces.network_mode(),
            pid_mode: namespaces.pid_mode(),
            uts_mode: namespaces.uts_mode(),
            ipc_mode: namespaces.ipc_mode(strict),
            security_opt: security.security_opt,
            device_cgroup_rules: self.cgroup_rules.into_iter().collect(),
            devices: self.devices,
            device_classes: self.device_classes.into_iter().collect(),
            device_grants: self.device_grants,
            tmpfs,
            ulimits,
            env_keys,
            ports,
            hostname,
            image,
            init: config.init,
            stdin: config.stdin,
            confinement: security.confinement,
            apparmor_profile: security.apparmor_profile,
            seccomp_unconfined: security.seccomp_unconfined,
            no_new_privileges: security.no_new_privileges,
            docker_socket: false,
            effective_role,
            hassio_api: config.hassio_api,
            homeassistant_api: config.homeassistant_api,
            auth_api: config.auth_api,
            ingress_port,
            apparmor_mode: self.apparmor_mode,
            rating_detail,
            notes,
            environment,
        }
        .with_docker_socket()
    }

    fn grant_used(&mut self, right: Right) -> bool {
        if self.options.grants.contains(&right) {
            self.used_grants.insert(right);
            self.granted.push(right.name().to_owned());
            true
        } else {
            false
        }
    }

    /// A note for each `--grant` that changed nothing.
    fn unused_grants(&self) -> Vec<String> {
        self.options
            .grants
            .iter()
            .filter(|g| !self.used_grants.contains(g))
            .map(|g| format!("--grant {g} has no effect: the add-on does not ask for it, or protection is already off"))
            .collect()
    }
}

impl SandboxPlan {
    fn with_docker_socket(mut self) -> SandboxPlan {
        self.docker_socket = self.mounts.iter().any(|m| m.target == "/run/docker.sock");
        self
    }

    /// The grants that have an effect in this plan are exactly the granted rights.
    pub fn is_granted(&self, right: &str) -> bool {
        self.granted.iter().any(|g| g == right)
    }
}
