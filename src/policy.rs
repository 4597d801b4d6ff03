//! `Policy::decide`: config + protection + policy mode + operator grants → [`SandboxPlan`].
//!
//! Two modes (DESIGN §3). `supervisor` reproduces the Supervisor's Docker settings exactly.
//! `strict` starts from nothing (`CapDrop: ALL`, private namespaces, no-new-privileges,
//! Docker's seccomp profile, a generated AppArmor profile) and adds what the config declares,
//! except the rights that reach the host, which protection mode withholds unless the
//! operator grants them one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::config::{AddonConfig, Capability, IngressPort, MapType, Role};
use crate::plan::{
    Confinement, DATA_MOUNT_ORIGIN, Device, DeviceClass, Mount, MountKind, PolicyMode, PortBinding,
    SandboxPlan, UlimitSpec, Withheld,
};
use crate::rating::{self, ApparmorMode};

/// Capabilities every strict sandbox keeps: what an s6-overlay image needs to drop to its
/// service users and own its files, and nothing that reaches beyond the container.
pub const BASELINE_CAPS: [&str; 9] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
    "SYS_CHROOT",
];

/// Declared capabilities that strict protection withholds.
pub fn high_risk(cap: Capability) -> bool {
    !matches!(
        cap,
        Capability::IpcLock | Capability::SysNice | Capability::SysResource
    )
}

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
    /// `devices` entries for physical memory, I/O ports or whole disks and partitions.
    RawDevices,
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

/// System directories no map may cover: the image's code, and the kernel's interfaces.
const SYSTEM_DIRS: [&str; 15] = [
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
    "/sbin", "/sys", "/usr", "/var/run", "/init",
];

/// Check a path from the config that reaches the profile and the Docker body: absolute,
/// normalised and literal (no AppArmor pattern characters, quotes or control characters).
/// The profile quotes and escapes as well; rejecting here keeps a surprising path from ever
/// meaning something else in one of the two places.
pub fn check_literal_path(path: &str) -> Result<(), String> {
    if plain_normal_path(path) {
        return Ok(());
    }
    literal_path_problem(path)
}

/// Every rule of [`check_literal_path`], one at a time, to say which one a path breaks.
fn literal_path_problem(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must be absolute".into());
    }
    if path.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    if let Some(c) = path.chars().find(|c| {
        matches!(
            c,
            '*' | '?'
                | '['
                | ']'
                | '{'
                | '}'
                | '^'
                | '@'
                | '"'
                | '\\'
                | ','
                | '#'
                | '$'
                | '='
                | '\''
                | '~'
        )
    }) {
        return Err(format!("must not contain '{c}'"));
    }
    if path != "/"
        && (path.ends_with('/')
            || path.contains("//")
            || path.split('/').any(|s| s == "." || s == ".."))
    {
        return Err("must be normalised (no '.', '..', '//' or trailing '/')".into());
    }
    if path.split('/').any(|s| s != s.trim()) {
        return Err("must not have leading or trailing spaces in a component".into());
    }
    Ok(())
}

/// The common case of [`check_literal_path`] in one pass over the bytes: absolute, every
/// component non-empty, not `.` or `..`, and made of ASCII letters, digits and `._-+:` only.
/// Anything else takes the slow path, which says what is wrong.
fn plain_normal_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    // Split as bytes: `str::split` searches for a char, several times slower on short paths.
    rest.is_empty()
        || rest.as_bytes().split(|b| *b == b'/').all(|segment| {
            !segment.is_empty()
                && segment != b"."
                && segment != b".."
                && segment.iter().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b':')
                })
        })
}

/// Check a target path from the config: literal (see [`check_literal_path`]), not `/` and not
/// over a system directory.
pub fn check_target_path(path: &str) -> Result<(), String> {
    check_literal_path(path)?;
    if path == "/" {
        return Err("must not be '/'".into());
    }
    for dir in SYSTEM_DIRS {
        if path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            return Err(format!("must not be inside the system directory {dir}"));
        }
    }
    Ok(())
}

/// Device nodes that reach past every file permission of the host: physical memory and I/O
/// ports, and block devices (a whole disk or partition, raw). The Supervisor passes them like
/// any other device; strict protection withholds them.
pub fn raw_device(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/dev/") else {
        return false;
    };
    matches!(name, "mem" | "kmem" | "port")
        || [
            "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "dm-", "md", "loop", "sr", "nbd", "zram",
            "disk/", "mapper/",
        ]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Check a device path from the config: a literal path under `/dev`.
pub fn check_device_path(path: &str) -> Result<(), String> {
    check_literal_path(path)?;
    if !path.starts_with("/dev/") {
        return Err("must be under /dev".into());
    }
    Ok(())
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

    fn root(&self, rel: &str) -> String {
        [self.options.data_root.trim_end_matches('/'), "/", rel].concat()
    }

    fn mount(&mut self, source: String, target: &str, read_only: bool, origin: &str) {
        self.mount_kind(source, target, MountKind::Directory, read_only, origin);
    }

    fn mount_kind(
        &mut self,
        source: String,
        target: &str,
        kind: MountKind,
        read_only: bool,
        origin: &str,
    ) {
        self.mounts.push(Mount {
            source,
            target: target.to_owned(),
            read_only,
            kind,
            propagation: None,
            non_recursive: false,
            origin: origin.to_owned(),
        });
    }

    fn run(&mut self) -> Result<(), PolicyError> {
        self.map_mounts()?;
        self.host_mounts();
        self.capabilities();
        self.devices()?;
        Ok(())
    }

    /// DESIGN §4: the map types, in the Supervisor's order.
    fn map_mounts(&mut self) -> Result<(), PolicyError> {
        let config = self.config;
        let target = |kind: MapType, default: &str| -> Result<String, PolicyError> {
            let path = config
                .map_entry(kind)
                .and_then(|m| m.path.clone())
                .unwrap_or_else(|| default.to_owned());
            if path != default {
                check_target_path(&path).map_err(|why| PolicyError::BadMapPath {
                    kind: kind.name(),
                    path: path.clone(),
                    why,
                })?;
            }
            Ok(path)
        };
        // Prefer the modern name of a pair; the legacy entry is ignored when both are given.
        let pick = |modern: MapType, legacy: MapType| {
            config
                .map_entry(modern)
                .map(|m| (modern, m))
                .or_else(|| config.map_entry(legacy).map(|m| (legacy, m)))
        };

        let data_target = target(MapType::Data, "/data")?;
        let data_source = self.root(&["apps/data/", &self.full_slug].concat());
        self.mount(data_source, &data_target, false, DATA_MOUNT_ORIGIN);

        if let Some(entry) = config.map_entry(MapType::Config) {
            let t = target(MapType::Config, "/config")?;
            self.map_right("config", entry.read_only);
            self.mount(
                self.root("homeassistant"),
                &t,
                entry.read_only,
                "map: config",
            );
        } else {
            if let Some((kind, entry)) = pick(MapType::AppConfig, MapType::AddonConfig) {
                let t = target(kind, "/config")?;
                self.map_right(kind.name(), entry.read_only);
                let src = self.root(&["app_configs/", &self.full_slug].concat());
                self.mount(src, &t, entry.read_only, &["map: ", kind.name()].concat());
            }
            if let Some(entry) = config.map_entry(MapType::HomeassistantConfig) {
                let t = target(MapType::HomeassistantConfig, "/homeassistant")?;
                self.map_right("homeassistant_config", entry.read_only);
                self.mount(
                    self.root("homeassistant"),
                    &t,
                    entry.read_only,
                    "map: homeassistant_config",
                );
            }
        }
        if let Some((kind, entry)) = pick(MapType::AllAppConfigs, MapType::AllAddonConfigs) {
            let default = if kind == MapType::AllAppConfigs {
                "/app_configs"
            } else {
                "/addon_configs"
            };
            let t = target(kind, default)?;
            self.map_right(kind.name(), entry.read_only);
            self.mount(
                self.root("app_configs"),
                &t,
                entry.read_only,
                &["map: ", kind.name()].concat(),
            );
        }
        if let Some(entry) = config.map_entry(MapType::Ssl) {
            let t = target(MapType::Ssl, "/ssl")?;
            self.map_right("ssl", entry.read_only);
            self.mount(self.root("ssl"), &t, entry.read_only, "map: ssl");
        }
        if let Some((kind, entry)) = pick(MapType::LocalApps, MapType::Addons) {
            let default = if kind == MapType::LocalApps {
                "/local_apps"
            } else {
                "/addons"
            };
            let t = target(kind, default)?;
            self.map_right(kind.name(), entry.read_only);
            self.mount(
                self.root("apps/local"),
                &t,
                entry.read_only,
                &["map: ", kind.name()].concat(),
            );
        }
        if let Some(entry) = config.map_entry(MapType::Backup) {
            let t = target(MapType::Backup, "/backup")?;
            self.map_right("backup", entry.read_only);
            self.mount(self.root("backup"), &t, entry.read_only, "map: backup");
        }
        for (kind, default) in [(MapType::Share, "/share"), (MapType::Media, "/media")] {
            if let Some(entry) = config.map_entry(kind) {
                let t = target(kind, default)?;
                self.map_right(kind.name(), entry.read_only);
                self.mount(
                    self.root(kind.name()),
                    &t,
                    entry.read_only,
                    &["map: ", kind.name()].concat(),
                );
                if let Some(m) = self.mounts.last_mut() {
                    m.propagation = Some("rslave".into());
                }
            }
        }

        // Two entries with one target would shadow each other.
        let mut seen = BTreeSet::new();
        for m in &self.mounts {
            if !seen.insert(m.target.clone()) {
                return Err(PolicyError::BadMapPath {
                    kind: "map",
                    path: m.target.clone(),
                    why: "is the target of two mounts".into(),
                });
            }
        }
        Ok(())
    }

    /// A raw device (memory, ports, disks) in strict mode: granted with protection off or by
    /// `--grant raw_devices`, otherwise withheld and reported by path.
    fn allow_device(&mut self, path: &str) -> bool {
        let right = Right::RawDevices;
        if self.options.grants.contains(&right) {
            self.used_grants.insert(right);
            return true;
        }
        if !self.options.protected {
            return true;
        }
        self.withheld.push(Withheld {
            right: ["device:", path].concat(),
            reason: "raw memory, I/O ports or a whole disk: access past every file permission of the host".into(),
            grant_with: ["--grant ", right.name()].concat(),
        });
        false
    }

    fn map_right(&mut self, kind: &str, read_only: bool) {
        self.grant(["map:", kind, if read_only { ":ro" } else { ":rw" }].concat());
    }

    /// Host paths the Supervisor binds for device, socket and log access.
    fn host_mounts(&mut self) {
        let config = self.config;
        if config.gpio && self.options.host.gpio_sysfs {
            for path in ["/sys/class/gpio", "/sys/devices/platform/soc"] {
                self.mount(path.into(), path, false, "gpio: true");
            }
        }
        if config.devicetree {
            self.grant("devicetree");
            self.mount(
                "/sys/firmware/devicetree/base".into(),
                "/device-tree",
                true,
                "devicetree: true",
            );
        }
        if config.udev {
            self.grant("udev");
            self.mount("/run/udev".into(), "/run/udev", true, "udev: true");
        }
        if config.kernel_modules {
            let ok = if self.strict() {
                self.allow(
                    Right::KernelModules,
                    "loading kernel modules changes the host kernel",
                )
            } else {
                self.grant("kernel_modules");
                true
            };
            if ok {
                self.mount(
                    "/lib/modules".into(),
                    "/lib/modules",
                    true,
                    "kernel_modules: true",
                );
            }
        }
        if config.docker_api {
            let ok = if self.strict() {
                self.allow(
                    Right::DockerApi,
                    "the Docker socket gives full control of the host",
                )
            } else {
                self.allow_unprotected(
                    Right::DockerApi,
                    "protection mode does not mount the Docker socket",
                )
            };
            if ok {
                self.mount_kind(
                    "/run/docker.sock".into(),
                    "/run/docker.sock",
                    MountKind::Socket,
                    true,
                    "docker_api: true",
                );
            }
        }
        if config.host_dbus {
            let ok = if self.strict() {
                self.allow(Right::HostDbus, "the host's D-Bus controls host services")
            } else {
                self.grant("host_dbus");
                true
            };
            if ok {
                self.mount_kind(
                    "/run/dbus".into(),
                    "/run/dbus",
                    MountKind::SocketDirectory,
                    true,
                    "host_dbus: true",
                );
            }
        }
        if config.audio {
            self.grant("audio");
            let pulse = self.root(&["tmp/", &self.full_slug, "_pulse"].concat());
            self.mount_kind(
                pulse,
                "/etc/pulse/client.conf",
                MountKind::File,
                true,
                "audio: true",
            );
            self.mount_kind(
                self.root("audio/external"),
                "/run/audio",
                MountKind::SocketDirectory,
                true,
                "audio: true",
            );
            self.mount_kind(
                self.root("audio/asound"),
                "/etc/asound.conf",
                MountKind::File,
                true,
                "audio: true",
            );
        }
        if config.journald {
            self.grant("journald");
            for path in ["/var/log/journal", "/run/log/journal"] {
                self.mount(path.into(), path, true, "journald: true");
            }
        }
    }

    fn capabilities(&mut self) {
        let config = self.config;
        let mut declared: Vec<Capability> = config.privileged.clone();
        if config.kernel_modules {
            declared.push(Capability::SysModule);
        }
        if config.realtime {
            declared.push(Capability::SysNice);
        }
        declared.sort();
        declared.dedup();
        if self.strict() {
            self.caps
                .extend(BASELINE_CAPS.iter().map(|c| c.to_string()));
            for cap in declared {
                let granted = if cap == Capability::SysModule && config.kernel_modules {
                    // Decided together with the /lib/modules mount.
                    self.granted.iter().any(|g| g == "kernel_modules")
                } else if high_risk(cap) {
                    self.allow(
                        Right::Cap(cap),
                        "a high-risk capability that reaches beyond the container",
                    )
                } else {
                    self.grant(cap.name());
                    true
                };
                if granted {
                    self.caps.insert(cap.name().to_owned());
                }
            }
        } else {
            for cap in declared {
                self.grant(cap.name());
                self.caps.insert(cap.name().to_owned());
            }
        }
    }

    fn devices(&mut self) -> Result<(), PolicyError> {
        let config = self.config;
        let full_access = config.full_access
            && if self.strict() {
                self.allow(Right::FullAccess, "every host device, disks included")
            } else {
                self.allow_unprotected(
                    Right::FullAccess,
                    "protection mode limits device access to the declared classes",
                )
            };
        if full_access {
            self.cgroup_rules.insert("a *:* rwm".into());
            self.device_classes.insert(DeviceClass::FullAccess);
            return Ok(());
        }
        let classes: [(bool, DeviceClass, &[&str]); 3] = [
            (
                config.video,
                DeviceClass::Video,
                &["c 226:* rwm", "c 29:* rwm", "c 81:* rwm"],
            ),
            (
                config.uart,
                DeviceClass::Uart,
                &["c 166:* rwm", "c 188:* rwm", "c 204:* rwm"],
            ),
            (
                config.usb,
                DeviceClass::Usb,
                &["c 180:* rwm", "c 189:* rwm"],
            ),
        ];
        for (wanted, class, rules) in classes {
            if wanted {
                self.grant(class.name());
                self.cgroup_rules
                    .extend(rules.iter().map(|r| r.to_string()));
                self.device_classes.insert(class);
            }
        }
        if config.gpio {
            // The gpio majors are dynamic (read from the host's udev database at launch).
            self.grant("gpio");
            self.device_classes.insert(DeviceClass::Gpio);
        }
        for path in &config.devices {
            if !self.strict() {
                self.granted.push(["device:", path].concat());
                continue;
            }
            // A trailing '/' names a directory of devices (`/dev/dvb/`): Docker passes every
            // node under it. One is dropped so the path is normalised.
            let path = path.strip_suffix('/').unwrap_or(path);
            check_device_path(path).map_err(|why| PolicyError::BadDevicePath {
                path: path.to_owned(),
                why,
            })?;
            if raw_device(path) && !self.allow_device(path) {
                continue;
            }
            self.granted.push(["device:", path].concat());
            self.devices.push(Device {
                path_on_host: path.to_owned(),
                path_in_container: path.to_owned(),
                cgroup_permissions: "rwm".into(),
            });
        }
        Ok(())
    }

    fn finish(mut self) -> SandboxPlan {
        let config = self.config;
        let strict = self.strict();
        let protected = self.options.protected;

        // Namespaces.
        let host_network = config.host_network
            && (!strict
                || self.allow(
                    Right::HostNetwork,
                    "protection mode isolates the network; declared ports are published instead",
                ));
        let host_pid = config.host_pid
            && if strict {
                self.allow(
                    Right::HostPid,
                    "the host's processes are visible and can be signalled",
                )
            } else {
                self.allow_unprotected(
                    Right::HostPid,
                    "protection mode keeps a private PID namespace",
                )
            };
        let host_uts = config.host_uts
            && (!strict || self.allow(Right::HostUts, "the host's hostname could be changed"));
        let host_ipc = config.host_ipc
            && (!strict
                || self.allow(
                    Right::HostIpc,
                    "the host's shared memory and semaphores are reachable",
                ));
        if !strict {
            for (flag, name) in [
                (host_network, "host_network"),
                (host_uts, "host_uts"),
                (host_ipc, "host_ipc"),
            ] {
                if flag {
                    self.granted.push(name.into());
                }
            }
        }

        // Role.
        let mut effective_role = config.hassio_role;
        if config.hassio_role == Role::Admin
            && strict
            && !self.allow(
                Right::AdminRole,
                "the admin role can switch off protection mode",
            )
        {
            effective_role = Role::Manager;
        }
        if config.hassio_api {
            self.granted
                .push(["hassio_api:", effective_role.name()].concat());
        }
        if config.homeassistant_api {
            self.granted.push("homeassistant_api".into());
        }
        if config.auth_api {
            self.granted.push("auth_api".into());
        }
        if config.realtime {
            self.granted.push("realtime".into());
        }

        // Confinement.
        let (confinement, apparmor_profile) = if strict {
            if !config.apparmor
                && self.allow(
                    Right::Unconfined,
                    "protection mode always confines with the generated profile",
                )
            {
                (Confinement::Unconfined, None)
            } else {
                (Confinement::Generated, Some(self.full_slug.clone()))
            }
        } else {
            match self.apparmor_mode {
                ApparmorMode::Disable => (Confinement::Unconfined, None),
                ApparmorMode::Profile => (Confinement::AddonProfile, Some(self.full_slug.clone())),
                ApparmorMode::Default => (Confinement::DockerDefault, None),
            }
        };
        let seccomp_unconfined = !strict || self.grant_used(Right::SeccompUnconfined);
        let no_new_privileges = strict && !self.grant_used(Right::NewPrivileges);
        let mut security_opt = Vec::new();
        if strict {
            match &apparmor_profile {
                Some(p) => security_opt.push(["apparmor=", p].concat()),
                None => security_opt.push("apparmor=unconfined".into()),
            }
            if no_new_privileges {
                security_opt.push("no-new-privileges:true".into());
            }
            if seccomp_unconfined {
                security_opt.push("seccomp=unconfined".into());
            }
        } else {
            security_opt.push("seccomp=unconfined".into());
            match confinement {
                Confinement::Unconfined => security_opt.push("apparmor=unconfined".into()),
                Confinement::AddonProfile => {
                    security_opt.push(["apparmor=", &self.full_slug].concat())
                }
                _ => {}
            }
        }

        // /dev: the Supervisor always binds the host's /dev read-only and gates access with
        // cgroup rules; strict mode binds it only for the device classes that need it.
        if !strict || !self.device_classes.is_empty() {
            self.mounts.insert(
                0,
                Mount {
                    source: "/dev".into(),
                    target: "/dev".into(),
                    read_only: true,
                    kind: MountKind::Devices,
                    propagation: None,
                    non_recursive: true,
                    origin: if strict {
                        "device access (video/uart/usb/gpio/full_access)".into()
                    } else {
                        "base (Supervisor): host /dev".into()
                    },
                },
            );
        }

        // tmpfs.
        let tmpfs_opts = if strict { "rw,nosuid,nodev,noexec" } else { "" };
        let mut tmpfs = BTreeMap::new();
        if config.tmpfs {
            tmpfs.insert("/tmp".to_owned(), tmpfs_opts.to_owned());
        }
        if !host_ipc {
            tmpfs.insert("/dev/shm".to_owned(), tmpfs_opts.to_owned());
        }

        // ulimits.
        let mut ulimits = Vec::new();
        if config.realtime {
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

        // Environment.
        let mut environment = config.environment.clone();
        if config.legacy {
            for (k, v) in &config.option_scalars {
                environment.retain(|(n, _)| n != k);
                environment.push((k.clone(), v.clone()));
            }
        }
        let mut env_keys: BTreeSet<String> = environment.iter().map(|(k, _)| k.clone()).collect();
        env_keys.extend(["TZ", "SUPERVISOR_TOKEN", "HASSIO_TOKEN"].map(String::from));

        // Ports: none with the host's network.
        let ports = if host_network {
            Vec::new()
        } else {
            config
                .ports
                .iter()
                .filter(|(_, host)| host.is_some())
                .map(|(spec, host)| PortBinding {
                    container: spec.key.clone(),
                    host: *host,
                })
                .collect()
        };

        let image = self.image();
        let ingress_port = match (config.ingress, config.ingress_port) {
            (false, _) => None,
            (true, IngressPort::Fixed(p)) => Some(p),
            (true, IngressPort::Dynamic) => None,
        };

        let unused: Vec<String> = self
            .options
            .grants
            .iter()
            .filter(|g| !self.used_grants.contains(g))
            .map(|g| format!("--grant {g} has no effect: the add-on does not ask for it, or protection is already off"))
            .collect();
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
            protected,
            granted,
            withheld: self.withheld,
            mounts: self.mounts,
            cap_add,
            cap_drop: if strict {
                vec!["ALL".into()]
            } else {
                Vec::new()
            },
            network_mode: if host_network { "host" } else { "default" }.into(),
            pid_mode: host_pid.then(|| "host".into()),
            uts_mode: host_uts.then(|| "host".into()),
            ipc_mode: if strict {
                Some(if host_ipc { "host" } else { "private" }.into())
            } else {
                None
            },
            security_opt,
            device_cgroup_rules: self.cgroup_rules.into_iter().collect(),
            devices: self.devices,
            device_classes: self.device_classes.into_iter().collect(),
            tmpfs,
            ulimits,
            env_keys: env_keys.into_iter().collect(),
            ports,
            hostname,
            image,
            init: config.init,
            stdin: config.stdin,
            confinement,
            apparmor_profile,
            seccomp_unconfined,
            no_new_privileges,
            docker_socket: false,
            effective_role,
            hassio_api: config.hassio_api,
            homeassistant_api: config.homeassistant_api,
            auth_api: config.auth_api,
            ingress_port,
            apparmor_mode: self.apparmor_mode,
            rating_detail,
            notes: unused,
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

    /// The image reference with `{arch}`/`{machine}` filled in and the version as tag; a
    /// config without `image` is built locally as `local/{arch}-addon-{slug}`.
    fn image(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass check accepts nothing the rule-by-rule check refuses.
        #[test]
        fn fast_path_check_is_never_looser(path in "[/a.:+_~* \u{e9}\n-]{0,12}") {
            if plain_normal_path(&path) {
                prop_assert!(literal_path_problem(&path).is_ok(), "{path:?}");
            }
        }
    }

    #[test]
    fn fast_path_takes_the_usual_paths() {
        for path in [
            "/",
            "/dev/ttyUSB0",
            "/share/my-app_1.2",
            "/dev/serial/by-id/usb-x:1.0",
        ] {
            assert!(plain_normal_path(path), "{path}");
        }
        for path in [
            "",
            "dev",
            "/a/",
            "//a",
            "/a/./b",
            "/a/..",
            "/a b",
            "/a*",
            "/caf\u{e9}",
        ] {
            assert!(!plain_normal_path(path), "{path}");
        }
    }
}
