//! `SandboxPlan`: the one place where an add-on's rights are decided.
//!
//! The AppArmor profile, the Docker create body and every report translate a plan; none of
//! them reads the config to add a right. A plan is plain data, serialisable as the `plan`
//! command's JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Role;
use crate::rating::{ApparmorMode, Rating};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Least privilege: protection mode withholds every right that reaches the host.
    Strict,
    /// Exactly what Home Assistant's Supervisor does.
    Supervisor,
}

impl PolicyMode {
    pub fn name(self) -> &'static str {
        match self {
            PolicyMode::Strict => "strict",
            PolicyMode::Supervisor => "supervisor",
        }
    }
}

/// A right the add-on asked for and did not get, and how an operator grants it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Withheld {
    pub right: String,
    pub reason: String,
    pub grant_with: String,
}

/// A bind mount into the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// `rslave` for share and media (mounts made on the host later appear inside).
    pub propagation: Option<String>,
    /// What is mounted: the AppArmor profile writes different rules for each kind.
    pub kind: MountKind,
    /// Read-only without making the submounts read-only (only `/dev`).
    #[serde(skip)]
    pub non_recursive: bool,
    /// A writable map the operator let run code (`--grant map_exec`): the profile allows
    /// execution there instead of denying it (W^X's one exception, strict mode only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
    /// The config key (or base policy) that caused this mount.
    #[serde(skip)]
    pub origin: String,
}

/// What a mount carries. The profile needs it: a read-only socket can still be connected to
/// (that takes AppArmor's `w`), a file mount has no subtree, and `/dev` is governed by the
/// device rules instead of the mount rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    /// A directory tree.
    Directory,
    /// A single regular file.
    File,
    /// A single unix socket the add-on connects to (`/run/docker.sock`).
    Socket,
    /// A directory holding unix sockets the add-on connects to (`/run/dbus`, `/run/audio`).
    SocketDirectory,
    /// The host's `/dev`; access to its nodes is decided by the device classes.
    Devices,
}

/// A class of host devices the add-on may open (cgroup rules plus profile rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    Video,
    Uart,
    Usb,
    Gpio,
    /// Every device node (`full_access`).
    FullAccess,
}

impl DeviceClass {
    pub fn name(self) -> &'static str {
        match self {
            DeviceClass::Video => "video",
            DeviceClass::Uart => "uart",
            DeviceClass::Usb => "usb",
            DeviceClass::Gpio => "gpio",
            DeviceClass::FullAccess => "full_access",
        }
    }
}

/// A device node passed into the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UlimitSpec {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A container port and the host port it is published on (None: not published).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortBinding {
    pub container: String,
    pub host: Option<u16>,
}

/// Where the AppArmor confinement of the container comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confinement {
    /// The profile this tool generates from the plan.
    Generated,
    /// The add-on's own `apparmor.txt`, renamed to the full slug (supervisor mode).
    AddonProfile,
    /// Docker's `docker-default` profile (supervisor mode without an `apparmor.txt`).
    DockerDefault,
    /// No AppArmor profile at all.
    Unconfined,
}

/// The origin of the mount of the add-on's own storage.
pub const DATA_MOUNT_ORIGIN: &str = "base: /data is the add-on's own storage";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SandboxPlan {
    pub full_slug: String,
    pub rating: u8,
    pub policy: PolicyMode,
    pub protected: bool,
    pub granted: Vec<String>,
    pub withheld: Vec<Withheld>,
    pub mounts: Vec<Mount>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub network_mode: String,
    pub pid_mode: Option<String>,
    pub uts_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub security_opt: Vec<String>,
    pub device_cgroup_rules: Vec<String>,
    pub devices: Vec<Device>,
    /// The device classes granted, in order.
    pub device_classes: Vec<DeviceClass>,
    /// The device rights (`raw_devices`, `host_console`, `unknown_devices`) the launch-time
    /// check lets a real node's class need: all of them outside strict protection.
    #[serde(skip)]
    pub device_grants: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub ulimits: Vec<UlimitSpec>,
    pub env_keys: Vec<String>,
    pub ports: Vec<PortBinding>,

    // What the launcher and the gateway need besides the fields above.
    pub container_name: String,
    pub hostname: Option<String>,
    pub image: String,
    pub init: bool,
    pub stdin: bool,
    pub confinement: Confinement,
    /// The AppArmor profile name the container runs under (None: unconfined or docker-default).
    pub apparmor_profile: Option<String>,
    pub seccomp_unconfined: bool,
    pub no_new_privileges: bool,
    pub docker_socket: bool,
    /// The Supervisor API role the add-on's token works with.
    pub effective_role: Role,
    pub hassio_api: bool,
    pub homeassistant_api: bool,
    pub auth_api: bool,
    pub ingress_port: Option<u16>,
    /// The Supervisor's own AppArmor mode, for the rating.
    pub apparmor_mode: ApparmorMode,
    pub rating_detail: Rating,
    /// Operator grants that had no effect, and other notes worth reading.
    pub notes: Vec<String>,
    /// The environment variables the config itself sets (the tokens and TZ are added at launch).
    #[serde(skip)]
    pub environment: Vec<(String, String)>,
}

impl SandboxPlan {
    /// Where the add-on's own storage is mounted: `/data`, or a `data` map entry's path.
    pub fn data_target(&self) -> &str {
        self.mounts
            .iter()
            .find(|m| m.origin == DATA_MOUNT_ORIGIN)
            .map_or("/data", |m| m.target.as_str())
    }
}
