//! The add-on config, after the Supervisor's migrations and validation.
//!
//! [`validate::validate`] turns a parsed [`Node`](crate::source::Node) tree into an
//! [`AddonConfig`] and a list of diagnostics. The rules are the Supervisor's
//! (`supervisor/apps/validate.py`): what it accepts we accept, what it rejects we reject, and
//! what it silently drops we report as a warning.

pub mod apparmor_txt;
pub mod build;
mod migrate;
pub mod options_schema;
pub mod rules;
pub mod validate;

use serde::Serialize;

use crate::source::Node;

/// `startup`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Startup {
    Initialize,
    System,
    Services,
    Application,
    Once,
}

/// `boot`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Boot {
    Auto,
    Manual,
    ManualOnly,
}

/// `stage`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Stable,
    Experimental,
    Deprecated,
}

/// `backup`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupMode {
    Hot,
    Cold,
}

/// `hassio_role`: the Supervisor API role of the add-on's token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Default,
    Homeassistant,
    Backup,
    Manager,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Default,
        Role::Homeassistant,
        Role::Backup,
        Role::Manager,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Default => "default",
            Role::Homeassistant => "homeassistant",
            Role::Backup => "backup",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// The capabilities an add-on may ask for in `privileged` (`supervisor/docker/const.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capability {
    Bpf,
    CheckpointRestore,
    DacReadSearch,
    IpcLock,
    NetAdmin,
    NetRaw,
    Perfmon,
    SysAdmin,
    SysModule,
    SysNice,
    SysPtrace,
    SysRawio,
    SysResource,
    SysTime,
}

impl Capability {
    pub const ALL: [Capability; 14] = [
        Capability::Bpf,
        Capability::CheckpointRestore,
        Capability::DacReadSearch,
        Capability::IpcLock,
        Capability::NetAdmin,
        Capability::NetRaw,
        Capability::Perfmon,
        Capability::SysAdmin,
        Capability::SysModule,
        Capability::SysNice,
        Capability::SysPtrace,
        Capability::SysRawio,
        Capability::SysResource,
        Capability::SysTime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Bpf => "BPF",
            Capability::CheckpointRestore => "CHECKPOINT_RESTORE",
            Capability::DacReadSearch => "DAC_READ_SEARCH",
            Capability::IpcLock => "IPC_LOCK",
            Capability::NetAdmin => "NET_ADMIN",
            Capability::NetRaw => "NET_RAW",
            Capability::Perfmon => "PERFMON",
            Capability::SysAdmin => "SYS_ADMIN",
            Capability::SysModule => "SYS_MODULE",
            Capability::SysNice => "SYS_NICE",
            Capability::SysPtrace => "SYS_PTRACE",
            Capability::SysRawio => "SYS_RAWIO",
            Capability::SysResource => "SYS_RESOURCE",
            Capability::SysTime => "SYS_TIME",
        }
    }

    /// Exact, case-sensitive, as `vol.Coerce(Capabilities)` does.
    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The capabilities that lower the Supervisor's security rating.
    pub fn lowers_rating(self) -> bool {
        matches!(
            self,
            Capability::Bpf
                | Capability::CheckpointRestore
                | Capability::DacReadSearch
                | Capability::NetAdmin
                | Capability::NetRaw
                | Capability::Perfmon
                | Capability::SysAdmin
                | Capability::SysModule
                | Capability::SysPtrace
                | Capability::SysRawio
        )
    }
}

/// `map` entry types (`MappingType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapType {
    Data,
    Config,
    Ssl,
    LocalApps,
    Addons,
    Backup,
    Share,
    Media,
    HomeassistantConfig,
    AllAppConfigs,
    AllAddonConfigs,
    AppConfig,
    AddonConfig,
}

impl MapType {
    pub const ALL: [MapType; 13] = [
        MapType::Data,
        MapType::Config,
        MapType::Ssl,
        MapType::LocalApps,
        MapType::Addons,
        MapType::Backup,
        MapType::Share,
        MapType::Media,
        MapType::HomeassistantConfig,
        MapType::AllAppConfigs,
        MapType::AllAddonConfigs,
        MapType::AppConfig,
        MapType::AddonConfig,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MapType::Data => "data",
            MapType::Config => "config",
            MapType::Ssl => "ssl",
            MapType::LocalApps => "local_apps",
            MapType::Addons => "addons",
            MapType::Backup => "backup",
            MapType::Share => "share",
            MapType::Media => "media",
            MapType::HomeassistantConfig => "homeassistant_config",
            MapType::AllAppConfigs => "all_app_configs",
            MapType::AllAddonConfigs => "all_addon_configs",
            MapType::AppConfig => "app_config",
            MapType::AddonConfig => "addon_config",
        }
    }

    pub fn parse(s: &str) -> Option<MapType> {
        MapType::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The current name of a legacy map type, if it is one.
    pub fn modern_name(self) -> Option<MapType> {
        match self {
            MapType::Addons => Some(MapType::LocalApps),
            MapType::AllAddonConfigs => Some(MapType::AllAppConfigs),
            MapType::AddonConfig => Some(MapType::AppConfig),
            _ => None,
        }
    }
}

/// One `map` entry after migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MapEntry {
    #[serde(rename = "type")]
    pub kind: MapType,
    pub read_only: bool,
    pub path: Option<String>,
}

/// `ports` key: `8080`, `8080/tcp` or `53/udp`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortSpec {
    /// The key as written (the Supervisor keeps it verbatim).
    pub key: String,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A `ulimits` entry, both limits resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `ingress_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngressPort {
    Fixed(u16),
    /// `0`: picked from 62000–65500 at install.
    Dynamic,
}

/// A validated add-on config: every key with its default applied.
#[derive(Clone, Debug, Serialize)]
pub struct AddonConfig {
    pub name: String,
    /// As the Supervisor formats it (`1.10` written as a YAML float is `1.1`).
    pub version: String,
    pub slug: String,
    pub description: String,
    pub arch: Vec<String>,
    pub machine: Vec<String>,
    pub url: Option<String>,
    pub startup: Startup,
    pub boot: Boot,
    pub init: bool,
    pub stage: Stage,
    pub ports: Vec<(PortSpec, Option<u16>)>,
    pub watchdog: Option<String>,
    pub webui: Option<String>,
    pub ingress: bool,
    pub ingress_port: IngressPort,
    pub ingress_entry: Option<String>,
    pub ingress_stream: bool,
    pub panel_icon: String,
    pub panel_title: Option<String>,
    pub panel_admin: bool,
    pub homeassistant: Option<String>,
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    pub host_uts: bool,
    pub host_dbus: bool,
    pub devices: Vec<String>,
    pub udev: bool,
    pub tmpfs: bool,
    pub map: Vec<MapEntry>,
    pub environment: Vec<(String, String)>,
    pub privileged: Vec<Capability>,
    pub apparmor: bool,
    pub full_access: bool,
    pub audio: bool,
    pub video: bool,
    pub gpio: bool,
    pub usb: bool,
    pub uart: bool,
    pub devicetree: bool,
    pub kernel_modules: bool,
    pub realtime: bool,
    pub hassio_api: bool,
    pub hassio_role: Role,
    pub homeassistant_api: bool,
    pub stdin: bool,
    pub legacy: bool,
    pub docker_api: bool,
    pub auth_api: bool,
    pub services: Vec<String>,
    pub discovery: Vec<String>,
    pub backup_exclude: Vec<String>,
    pub backup_pre: Option<String>,
    pub backup_post: Option<String>,
    pub backup: BackupMode,
    /// Scalar options by key, in file order (used for `legacy` environment variables).
    pub option_scalars: Vec<(String, String)>,
    pub image: Option<String>,
    pub ulimits: Vec<Ulimit>,
    pub timeout: u32,
    pub journald: bool,
    pub breaking_versions: Vec<String>,
}

/// `flag(name)` and `flag_mut(name)`: the boolean keys by their config name, for the code that
/// reads or sets keys by name (lint's fixes, learn's edits); None for any other name. One list
/// serves both.
macro_rules! boolean_keys {
    ($($key:ident),*) => {
        pub fn flag(&self, name: &str) -> Option<bool> {
            match name {
                $(stringify!($key) => Some(self.$key),)*
                _ => None,
            }
        }

        pub fn flag_mut(&mut self, name: &str) -> Option<&mut bool> {
            match name {
                $(stringify!($key) => Some(&mut self.$key),)*
                _ => None,
            }
        }
    };
}

impl AddonConfig {
    boolean_keys!(
        uart,
        usb,
        video,
        gpio,
        audio,
        devicetree,
        host_dbus,
        host_pid,
        host_ipc,
        host_uts,
        host_network,
        kernel_modules,
        full_access,
        docker_api
    );

    /// The effective map entry of a type: the last one written (the Supervisor keys them by type).
    pub fn map_entry(&self, kind: MapType) -> Option<&MapEntry> {
        self.map.iter().rev().find(|m| m.kind == kind)
    }

    /// No `image`: the Supervisor builds the image locally.
    pub fn needs_build(&self) -> bool {
        self.image.is_none()
    }
}

/// The options/schema values are kept only as far as a typed field needs them.
pub(crate) fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        crate::source::Value::Seq(_)
        | crate::source::Value::Map(_)
        | crate::source::Value::Null => None,
        _ => node.python_str(),
    }
}
